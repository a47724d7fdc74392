//! The `sendtargets` provider kind: builds a [`SendTargetsBackend`] from the registrations of its
//! subsystems (`subsystem add NAME --portal …`) and the provider's settings.
//!
//! Settings: `concurrency` (an integer ≥ 1: the most connections open at once, default
//! [`DEFAULT_CONCURRENCY`]). A registration is checked before it is saved with the same rules and
//! limits the connections apply (RFC 7143's, from `iscsi_proto::limits`), so a subsystem accepted
//! by `subsystem add` is never refused later; a registration that still cannot be used when the
//! provider is built (a secret file gone or opened to others) makes that subsystem `FAILED` with
//! the reason, and the others work.

use iscsi_proto::limits;
use vds_model::{Error, Hresult, ProviderBackend};

use super::{
    BrokenSubsystem, DEFAULT_CONCURRENCY, DiscoveryPortal, SendTargetsBackend, SendTargetsOptions,
    SendTargetsSubsystem,
};
use crate::{BuildContext, Credential, KindInfo, ProviderKind, Registration, unknown_setting};

const KNOWN: &[&str] = &["concurrency"];

/// The `sendtargets` kind. See the module documentation.
#[derive(Debug)]
pub struct SendTargetsKind;

fn invalid(why: impl Into<String>) -> Error {
    Error::new(Hresult::E_INVALIDARG).because(why)
}

fn concurrency(settings: &toml::Table) -> Result<usize, Error> {
    match settings.get("concurrency") {
        None => Ok(DEFAULT_CONCURRENCY),
        Some(toml::Value::Integer(n)) if *n >= 1 && *n <= 4096 => Ok(*n as usize),
        Some(v) => Err(invalid(format!(
            "setting \"concurrency\" is {v}; it is a whole number from 1 to 4096"
        ))),
    }
}

/// The registration as the backend takes it: portals parsed, credentials complete.
fn resolve(r: &Registration) -> Result<SendTargetsSubsystem, Error> {
    if r.portals.is_empty() {
        return Err(invalid("it has no discovery portal"));
    }
    let mut portals: Vec<DiscoveryPortal> = Vec::with_capacity(r.portals.len());
    for text in &r.portals {
        let p: DiscoveryPortal = text.parse().map_err(|e| invalid(format!("{e}")))?;
        if portals.contains(&p) {
            return Err(invalid(format!("discovery portal {p} is listed twice")));
        }
        portals.push(p);
    }
    if let Some(n) = &r.initiator_name {
        limits::check_iscsi_name(n).map_err(|e| invalid(format!("initiator name: {e}")))?;
    }
    let credential = |c: &Option<Credential>, what: &str| -> Result<_, Error> {
        let Some(c) = c else { return Ok(None) };
        limits::check_chap_user(&c.user).map_err(|e| invalid(format!("{what}: {e}")))?;
        let secret = c.secret.clone()?;
        limits::check_chap_secret(secret.expose()).map_err(|e| invalid(format!("{what}: {e}")))?;
        Ok(Some(iscsi_client::ChapCredentials::new(
            c.user.clone(),
            secret,
        )))
    };
    let chap = credential(&r.chap, "CHAP")?;
    let mutual = credential(&r.mutual, "mutual CHAP")?;
    if mutual.is_some() && chap.is_none() {
        return Err(invalid(
            "mutual CHAP needs one-way CHAP as well (a CHAP user and secret)",
        ));
    }
    Ok(SendTargetsSubsystem {
        name: r.name.clone(),
        portals,
        initiator_name: r.initiator_name.clone(),
        chap,
        mutual,
    })
}

impl ProviderKind for SendTargetsKind {
    fn info(&self) -> KindInfo {
        KindInfo {
            name: "sendtargets",
            description: "arrays registered by their iSCSI discovery portals (subsystem add); \
                          discovery only, changes nothing on the array",
            manages_arrays: false,
            takes_registrations: true,
        }
    }

    fn check_settings(&self, settings: &toml::Table) -> Result<(), Error> {
        for key in settings.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(unknown_setting("sendtargets", key, KNOWN));
            }
        }
        concurrency(settings).map(|_| ())
    }

    fn check_registration(&self, registration: &Registration) -> Result<(), Error> {
        resolve(registration).map(|_| ())
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn ProviderBackend>, Error> {
        self.check_settings(ctx.settings)?;
        let options = SendTargetsOptions {
            concurrency: concurrency(ctx.settings)?,
            progress: ctx.progress.clone().map(|p| {
                let f: std::sync::Arc<super::ProgressFn> =
                    std::sync::Arc::new(move |pr: super::Progress| p(pr.done, pr.total));
                f
            }),
            ..SendTargetsOptions::default()
        };
        let mut broken = Vec::new();
        let ready = ctx.registrations.filter_map(|r| match resolve(&r) {
            Ok(s) => Some(s),
            Err(problem) => {
                broken.push(BrokenSubsystem {
                    identification: r.portals.join(", "),
                    name: r.name,
                    problem,
                });
                None
            }
        });
        let mut backend = SendTargetsBackend::new(ctx.name, ready, options)?;
        for b in broken {
            backend = backend.with_broken(b)?;
        }
        Ok(Box::new(backend))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(portals: &[&str]) -> Registration {
        Registration {
            name: "a".into(),
            portals: portals.iter().map(|p| p.to_string()).collect(),
            ..Registration::default()
        }
    }

    #[test]
    fn registrations_are_checked_with_the_connection_limits() {
        let k = SendTargetsKind;
        assert!(k.check_registration(&reg(&["127.0.0.1"])).is_ok());
        for bad in [
            &[][..],
            &["nope:x"][..],
            &["127.0.0.1", "127.0.0.1:3260"][..],
        ] {
            assert_eq!(
                k.check_registration(&reg(bad)).map_err(|e| e.code()),
                Err(Hresult::E_INVALIDARG),
                "{bad:?}"
            );
        }
        let mut r = reg(&["127.0.0.1"]);
        r.initiator_name = Some("x".repeat(224));
        assert!(k.check_registration(&r).is_err());
        r.initiator_name = Some("iqn.2026-12.org.example:host".into());
        r.chap = Some(Credential {
            user: "u".into(),
            secret: Ok(vds_secret::Secret::new(vec![b'x'; 1025])),
        });
        let e = k.check_registration(&r).unwrap_err();
        assert!(e.to_string().contains("1024"), "{e}");
        r.chap = None;
        r.mutual = Some(Credential {
            user: "u".into(),
            secret: Ok(vds_secret::Secret::new(b"0123456789abcdef".to_vec())),
        });
        let e = k.check_registration(&r).unwrap_err();
        assert!(e.to_string().contains("one-way"), "{e}");
    }

    #[test]
    fn settings_are_checked_by_name() {
        let k = SendTargetsKind;
        let mut t = toml::Table::new();
        assert!(k.check_settings(&t).is_ok());
        t.insert("concurrency".into(), toml::Value::Integer(0));
        assert!(k.check_settings(&t).is_err());
        t.insert("concurrency".into(), toml::Value::Integer(8));
        assert!(k.check_settings(&t).is_ok());
        t.insert("socket".into(), toml::Value::String("/x".into()));
        let e = k.check_settings(&t).unwrap_err();
        assert!(e.to_string().contains("\"socket\""), "{e}");
    }
}
