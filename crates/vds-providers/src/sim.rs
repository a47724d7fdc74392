//! The `sim` provider kind: the model's simulator ([`vds_model::sim::SimBackend`]) as a provider
//! like any other, its simulated array kept in the provider's state in the store, so that every
//! command, the cache, the locks and persistence run through the same code as for a real array,
//! across processes.
//!
//! Settings (all optional): `subsystems` and `portals` (whole numbers) start the array with that
//! many subsystems of that many portals each (`SimBackend::scaled`, for scale tests); without them
//! it starts as the demonstration array (`sim-array-1`, `sim-array-2`).
//!
//! Every operation reads the array from the state first (another process may have changed it); a
//! mutation is a read-modify-write under the state's lock, so two processes changing different
//! subsystems of one simulated array lose nothing.

use std::sync::Arc;

use vds_model::sim::{SimBackend, SimControl};
use vds_model::{
    Applied, Error, Hresult, Mutation, ProviderBackend, ProviderInfo, SubSystemSnapshot,
};

use crate::{BuildContext, KindInfo, KindState, ProviderKind, unknown_setting};

const KNOWN: &[&str] = &["subsystems", "portals"];

/// The most subsystems × portals a simulated array may be made with.
pub const MAX_SIM_PORTALS: i64 = 10_000_000;

/// The `sim` kind. See the module documentation.
#[derive(Debug)]
pub struct SimKind;

fn invalid(why: impl Into<String>) -> Error {
    Error::new(Hresult::E_INVALIDARG).because(why)
}

fn count(settings: &toml::Table, key: &str) -> Result<Option<usize>, Error> {
    match settings.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if *n >= 0 && *n <= MAX_SIM_PORTALS => Ok(Some(*n as usize)),
        Some(v) => Err(invalid(format!(
            "setting {key:?} is {v}; it is a whole number from 0 to {MAX_SIM_PORTALS}"
        ))),
    }
}

/// The array a new simulated provider starts with.
fn initial_array(settings: &toml::Table) -> Result<Vec<SubSystemSnapshot>, Error> {
    let subsystems = count(settings, "subsystems")?;
    let portals = count(settings, "portals")?;
    Ok(match (subsystems, portals) {
        (None, None) => SimBackend::demo().control().truth(),
        (s, p) => {
            let (s, p) = (s.unwrap_or(1), p.unwrap_or(1));
            if (s as i64).saturating_mul(p as i64) > MAX_SIM_PORTALS {
                return Err(invalid(format!(
                    "{s} subsystems of {p} portals is more than {MAX_SIM_PORTALS} portals"
                )));
            }
            SimBackend::scaled(s, p).control().truth()
        }
    })
}

fn encode(array: &[SubSystemSnapshot]) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(array).map_err(|e| {
        Error::new(Hresult::E_UNEXPECTED).because(format!("cannot encode the simulated array: {e}"))
    })
}

fn decode(bytes: &[u8]) -> Result<Vec<SubSystemSnapshot>, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT)
            .because(format!("the simulated array's state does not parse: {e}"))
    })
}

impl ProviderKind for SimKind {
    fn info(&self) -> KindInfo {
        KindInfo {
            name: "sim",
            description: "the built-in simulator: a simulated array kept in the store, for trying \
                          every command without an array",
            manages_arrays: true,
            takes_registrations: false,
        }
    }

    fn check_settings(&self, settings: &toml::Table) -> Result<(), Error> {
        for key in settings.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(unknown_setting("sim", key, KNOWN));
            }
        }
        initial_array(settings).map(|_| ())
    }

    fn initial_state(&self, settings: &toml::Table) -> Result<Option<Vec<u8>>, Error> {
        encode(&initial_array(settings)?).map(Some)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn ProviderBackend>, Error> {
        self.check_settings(ctx.settings)?;
        let array = match ctx.state.read()? {
            Some(bytes) => decode(&bytes)?,
            None => initial_array(ctx.settings)?,
        };
        let sim = SimBackend::with_subsystems(array).with_name(ctx.name);
        let control = sim.control();
        Ok(Box::new(PersistentSim {
            sim,
            control,
            state: ctx.state,
        }))
    }
}

/// The simulator with its array read from, and written back to, the provider's state.
struct PersistentSim {
    sim: SimBackend,
    control: SimControl,
    state: Arc<dyn KindState>,
}

impl PersistentSim {
    /// Reads the array another process may have changed.
    fn reload(&self) -> Result<(), Error> {
        if let Some(bytes) = self.state.read()? {
            let array = decode(&bytes)?;
            self.control.edit(|subs| *subs = array);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ProviderBackend for PersistentSim {
    fn info(&self) -> ProviderInfo {
        self.sim.info()
    }

    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        self.reload()?;
        self.sim.reenumerate(previous).await
    }

    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        self.reload()?;
        self.sim.refresh(previous).await
    }

    async fn apply(
        &self,
        subsystem: &SubSystemSnapshot,
        mutation: &Mutation,
    ) -> Result<Applied, Error> {
        let _lock = self.state.lock()?;
        self.reload()?;
        let applied = self.sim.apply(subsystem, mutation).await?;
        self.state.write(&encode(&self.control.truth())?)?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemoryState(Mutex<Option<Vec<u8>>>);

    impl KindState for MemoryState {
        fn read(&self) -> Result<Option<Vec<u8>>, Error> {
            Ok(self.0.lock().unwrap().clone())
        }
        fn write(&self, bytes: &[u8]) -> Result<(), Error> {
            *self.0.lock().unwrap() = Some(bytes.to_vec());
            Ok(())
        }
        fn lock(&self) -> Result<Box<dyn Send>, Error> {
            Ok(Box::new(()))
        }
    }

    fn build(state: Arc<dyn KindState>, settings: &toml::Table) -> Box<dyn ProviderBackend> {
        SimKind
            .build(BuildContext {
                name: "lab",
                settings,
                registrations: Box::new(std::iter::empty()),
                state,
                progress: None,
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_change_made_by_one_backend_is_seen_by_another() {
        let state: Arc<MemoryState> = Arc::default();
        let settings = toml::Table::new();
        *state.0.lock().unwrap() = SimKind.initial_state(&settings).unwrap();
        let first = build(state.clone(), &settings);
        let second = build(state.clone(), &settings);
        assert_eq!(first.info().name, "lab");
        let subs = first.reenumerate(&[]).await.unwrap();
        let array2 = subs.iter().find(|s| s.key == "sim-array-2").unwrap();
        first
            .apply(
                array2,
                &Mutation::CreateTarget {
                    iscsi_name: Some("iqn.2026-12.test:made".into()),
                    friendly_name: "made".into(),
                },
            )
            .await
            .unwrap();
        let seen = second.refresh(array2).await.unwrap();
        assert_eq!(seen.targets.len(), 1);
        assert_eq!(seen.targets[0].iscsi_name, "iqn.2026-12.test:made");
    }

    #[test]
    fn settings_pick_the_array() {
        let mut t = toml::Table::new();
        t.insert("subsystems".into(), toml::Value::Integer(3));
        t.insert("portals".into(), toml::Value::Integer(2));
        let array = decode(&SimKind.initial_state(&t).unwrap().unwrap()).unwrap();
        assert_eq!(array.len(), 3);
        assert!(array.iter().all(|s| s.portals.len() == 2));
        t.insert("portals".into(), toml::Value::Integer(-1));
        assert!(SimKind.check_settings(&t).is_err());
        let mut t = toml::Table::new();
        t.insert("server".into(), toml::Value::Boolean(true));
        assert!(SimKind.check_settings(&t).is_err());
    }
}
