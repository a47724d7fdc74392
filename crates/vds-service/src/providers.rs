//! Provider instances: each configured provider as a model [`HwProvider`] over its cached picture,
//! built on demand and kept for the service's life.
//!
//! Two ways to build one:
//! - **for a query**: the cached picture alone (only the subsystem asked about, when one is) over a
//!   backend that can contact nothing ([`Detached`]): no kind is built, no secret is read, so a
//!   query costs one read transaction;
//! - **live**: every cached subsystem, over the backend the provider's kind builds from the
//!   configuration, the secrets and the kind's state. Operations need it.
//!
//! A daemon makes every load live ([`crate::Service::hold_pictures`]), so each provider's picture
//! is loaded once; callers asking at once wait for one load (`Inner::loading`).
//!
//! An entry that covers what a call needs is reused; a live one covers everything. A change of the
//! configuration drops the entries of the providers it concerns ([`Inner::forget`]): they are built
//! again from the store, where everything they knew was saved.

use std::collections::HashMap;
use std::sync::Arc;

use vds_model::{
    CacheHealth, Error, Hresult, HwProvider, HwProviderType, ProviderBackend, ProviderInfo,
    SubSystemSnapshot, Subject,
};
use vds_providers::{BuildContext, Credential, KindState, ProviderKind, Registration};

use vds_store::{ProviderConfig, Selection, StoreError};

use crate::Inner;
use crate::renewing::{Renewals, Renewing};

/// How many subsystems one read of a picture being loaded takes.
const LOAD_PAGE: usize = 256;

/// What an entry's picture holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every cached subsystem.
    All,
    /// One subsystem (by key) or none of it (not cached).
    Only(String),
}

/// A provider instance as the service holds it.
pub(crate) struct Entry {
    pub(crate) model: HwProvider,
    pub(crate) scope: Scope,
    /// True when the backend is the kind's (it can reach arrays).
    pub(crate) live: bool,
    /// What the live backend notes of subsystems whose fresh picture is the one cached.
    pub(crate) renewals: Option<Arc<Renewals>>,
}

impl Entry {
    fn covers(&self, selection: Selection<'_>) -> bool {
        match (&self.scope, selection) {
            (Scope::All, _) => true,
            (Scope::Only(k), Selection::One(key)) => k == key,
            (Scope::Only(_), Selection::All | Selection::Keys(_)) => false,
        }
    }
}

/// The backend of a picture loaded for queries: it has the provider's name (so ids are the ones a
/// refresh computed) and contacts nothing. Queries never call it.
pub(crate) struct Detached(pub(crate) String);

#[async_trait::async_trait]
impl ProviderBackend for Detached {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.0.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    async fn reenumerate(&self, _: &[SubSystemSnapshot]) -> Result<Vec<SubSystemSnapshot>, Error> {
        Err(detached())
    }

    async fn refresh(&self, _: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        Err(detached())
    }
}

fn detached() -> Error {
    Error::new(Hresult::E_UNEXPECTED).because("a picture loaded for queries contacts no array")
}

/// The kind's state over the store's state file.
struct StoreState(vds_store::StateFile);

impl KindState for StoreState {
    fn read(&self) -> Result<Option<Vec<u8>>, Error> {
        self.0.read().map_err(Error::from)
    }

    fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        self.0.write(bytes).map_err(Error::from)
    }

    fn lock(&self) -> Result<Box<dyn Send>, Error> {
        Ok(Box::new(self.0.lock().map_err(Error::from)?))
    }
}

/// The kind named `kind`, or an error naming the kinds there are.
pub(crate) fn kind_named(kind: &str) -> Result<&'static dyn ProviderKind, Error> {
    vds_providers::kind(kind).ok_or_else(|| {
        let known: Vec<&str> = vds_providers::kinds()
            .iter()
            .map(|k| k.info().name)
            .collect();
        Error::new(Hresult::E_INVALIDARG).because(format!(
            "there is no provider kind {kind:?}; this vds knows {}",
            known.join(", ")
        ))
    })
}

impl Inner {
    /// The configured provider named `name`.
    pub(crate) fn provider_config(&self, name: &str) -> Result<ProviderConfig, Error> {
        self.store.config()?.provider(name).cloned().ok_or_else(|| {
            Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::Provider(name.to_string()))
        })
    }

    /// The one provider holding subsystem `name`, answered from the pictures held when they cover
    /// every configured provider (a daemon, once it has answered about each): no cache read, so
    /// queries do not queue on the store's connection. `None` when they do not cover them all, or
    /// when no provider or more than one has the subsystem (the store then answers, as usual).
    pub(crate) fn resolve_held(&self, name: &str) -> Option<String> {
        let providers = {
            let mut known = self.configured.lock().unwrap_or_else(|e| e.into_inner());
            if known.is_none() {
                let config = self.store.config().ok()?;
                *known = Some(config.providers.iter().map(|p| p.name.clone()).collect());
            }
            // Shared, not copied: this runs on every query that names a subsystem alone.
            known.clone()?
        };
        let entries = self.entries();
        let mut found = None;
        for p in providers.iter() {
            let entry = entries.get(p)?;
            if entry.scope != Scope::All {
                return None;
            }
            if entry.model.sub_system_by_key(name).is_ok() {
                if found.is_some() {
                    return None;
                }
                found = Some(p.clone());
            }
        }
        found
    }

    /// True when the service holds a live picture of `provider`.
    pub(crate) fn holds_live(&self, provider: &str) -> bool {
        self.held(provider, |e| e.live).is_some()
    }

    /// Drops what the service holds of `provider`, so the next call builds it again from the store.
    pub(crate) fn forget(&self, provider: &str) {
        self.entries().remove(provider);
        *self.configured.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The entry held for `provider`, if `wanted`.
    fn held(&self, provider: &str, wanted: impl Fn(&Entry) -> bool) -> Option<Arc<Entry>> {
        self.entries().get(provider).filter(|e| wanted(e)).cloned()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A model provider over `backend` holding the cached picture of `provider` for `selection`,
    /// read from the store; a damaged cache (or a picture that breaks a rule of the model) gives a
    /// provider flagged corrupt, with why. The picture of every subsystem is read a page of
    /// [`LOAD_PAGE`] subsystems at a time and indexed as it comes, so loading a fleet never holds
    /// its snapshots all at once (each subsystem is read whole in one transaction; pages are
    /// separate ones).
    fn load_model(
        &self,
        backend: Box<dyn ProviderBackend>,
        provider: &str,
        selection: Selection<'_>,
    ) -> Result<HwProvider, Error> {
        let corrupt = |backend, e: StoreError| {
            let (model, _) =
                HwProvider::from_cache_boxed(backend, Vec::new(), CacheHealth::Corrupt);
            model.mark_cache_corrupt(e.to_string());
            model
        };
        if !matches!(selection, Selection::All) {
            return match self.store.load(provider, selection) {
                Ok(cache) => Ok(HwProvider::from_cache_boxed(
                    backend,
                    cache.subsystems.into_iter().map(|(s, _)| s),
                    cache.health,
                )
                .0),
                Err(e @ StoreError::CacheCorrupt { .. }) => Ok(corrupt(backend, e)),
                Err(e) => Err(e.into()),
            };
        }
        let (health, keys) = match self.store.subsystem_keys(provider) {
            Ok(v) => v,
            Err(e @ StoreError::CacheCorrupt { .. }) => return Ok(corrupt(backend, e)),
            Err(e) => return Err(e.into()),
        };
        let failed: std::cell::RefCell<Option<StoreError>> = std::cell::RefCell::new(None);
        let snapshots = keys
            .chunks(LOAD_PAGE)
            .map_while(
                |page| match self.store.load(provider, Selection::Keys(page)) {
                    Ok(cache) => Some(cache.subsystems.into_iter().map(|(s, _)| s)),
                    Err(e) => {
                        *failed.borrow_mut() = Some(e);
                        None
                    }
                },
            )
            .flatten();
        let (model, _problem) = HwProvider::from_cache_boxed(backend, snapshots, health);
        match failed.into_inner() {
            None => Ok(model),
            Some(e @ StoreError::CacheCorrupt { .. }) => {
                // What was indexed before the damaged page came from the damaged file too: the
                // provider answers as for any damaged cache, and keeps its backend.
                model.mark_cache_corrupt(e.to_string());
                Ok(model)
            }
            Some(e) => Err(e.into()),
        }
    }

    /// The entry of `provider` for a query about `selection`.
    pub(crate) fn query_entry(
        self: &Arc<Self>,
        provider: &str,
        selection: Selection<'_>,
    ) -> Result<Arc<Entry>, Error> {
        if let Some(e) = self.held(provider, |e| e.covers(selection)) {
            return Ok(e);
        }
        if self.holds.load(std::sync::atomic::Ordering::Acquire) {
            match self.live_entry(provider) {
                Ok(e) => return Ok(e),
                Err(e) => tracing::debug!(
                    provider, error = %e,
                    "the live picture cannot be loaded; loading it for queries alone"
                ),
            }
        }
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        // Loaded by whoever held the lock before.
        if let Some(e) = self.held(provider, |e| e.covers(selection)) {
            return Ok(e);
        }
        let model = self.load_model(
            Box::new(Detached(provider.to_string())),
            provider,
            selection,
        )?;
        let entry = Arc::new(Entry {
            model,
            scope: match selection {
                Selection::One(k) => Scope::Only(k.to_string()),
                // Queries ask for one subsystem or all of them.
                Selection::All | Selection::Keys(_) => Scope::All,
            },
            live: false,
            renewals: None,
        });
        let mut entries = self.entries();
        // A live entry made meanwhile wins: it covers more.
        match entries.get(provider) {
            Some(e) if e.live => Ok(e.clone()),
            _ => {
                entries.insert(provider.to_string(), entry.clone());
                Ok(entry)
            }
        }
    }

    /// The registrations of `provider`'s subsystems, in order, each made (its secrets read) as it
    /// is taken: a secret that cannot be read stays an error of that one subsystem. With `only`,
    /// just that subsystem.
    pub(crate) fn registrations<'a>(
        &'a self,
        provider: &'a str,
        only: Option<&'a str>,
    ) -> Result<impl Iterator<Item = Registration> + 'a, Error> {
        let config = self.store.config()?;
        let read = move |user: &Option<String>, secret: &Option<String>, what: &str| match (
            user, secret,
        ) {
            (Some(user), Some(secret)) => Some(Credential {
                user: user.clone(),
                secret: self.store.read_secret(secret).map_err(Error::from),
            }),
            (Some(user), None) => Some(Credential {
                user: user.clone(),
                secret: Err(Error::new(Hresult::E_INVALIDARG)
                    .because(format!("{what} user {user:?} has no secret configured"))),
            }),
            (None, Some(secret)) => Some(Credential {
                user: String::new(),
                secret: Err(Error::new(Hresult::E_INVALIDARG)
                    .because(format!("{what} secret {secret:?} has no user configured"))),
            }),
            (None, None) => None,
        };
        // The iterator holds the configuration it reads (by index: it cannot borrow from itself).
        Ok((0..config.subsystems.len()).filter_map(move |i| {
            let s = &config.subsystems[i];
            (s.provider == provider && only.is_none_or(|o| o == s.name)).then(|| Registration {
                name: s.name.clone(),
                portals: s.portals.clone(),
                initiator_name: s.initiator_name.clone(),
                chap: read(&s.chap_user, &s.chap_secret, "CHAP"),
                mutual: read(&s.mutual_user, &s.mutual_secret, "mutual CHAP"),
            })
        }))
    }

    /// The backend the kind of `config` builds, for every registration (or just `only`).
    pub(crate) fn build_backend(
        &self,
        config: &ProviderConfig,
        only: Option<&str>,
    ) -> Result<(&'static dyn ProviderKind, Box<dyn ProviderBackend>), Error> {
        let kind = kind_named(&config.kind)?;
        let registrations: vds_providers::Registrations<'_> = if kind.info().takes_registrations {
            Box::new(self.registrations(&config.name, only)?)
        } else {
            Box::new(std::iter::empty())
        };
        let backend = kind
            .build(BuildContext {
                name: &config.name,
                settings: &config.settings,
                registrations,
                state: Arc::new(StoreState(self.store.state_file(&config.name))),
                progress: self.progress.clone(),
            })
            .map_err(|e| e.about_if_unset(Subject::Provider(config.name.clone())))?;
        Ok((kind, backend))
    }

    /// The live entry of `provider`: every cached subsystem over the kind's backend. `corrupt`
    /// receives why the cache could not be read, when it could not.
    pub(crate) fn live_entry(self: &Arc<Self>, provider: &str) -> Result<Arc<Entry>, Error> {
        if let Some(e) = self.held(provider, |e| e.live) {
            return Ok(e);
        }
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        // Loaded by whoever held the lock before.
        if let Some(e) = self.held(provider, |e| e.live) {
            return Ok(e);
        }
        let config = self.provider_config(provider)?;
        let (_, backend) = self.build_backend(&config, None)?;
        let renewals = Arc::new(Renewals::default());
        let backend = Box::new(Renewing::new(backend, self, provider, renewals.clone()));
        let model = self.load_model(backend, provider, Selection::All)?;
        self.forward_notifications(provider, &model);
        let entry = Arc::new(Entry {
            model,
            scope: Scope::All,
            live: true,
            renewals: Some(renewals),
        });
        let mut entries = self.entries();
        match entries.get(provider) {
            Some(e) if e.live => Ok(e.clone()),
            _ => {
                entries.insert(provider.to_string(), entry.clone());
                Ok(entry)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{SIMULATOR_PROVIDER, Service};
    use vds_store::Selection;

    #[tokio::test]
    async fn callers_at_once_share_one_load_and_a_held_picture_is_the_live_one() {
        let service = Service::simulator().await.expect("simulator");
        let inner = service.inner.clone();
        inner.forget(SIMULATOR_PROVIDER);
        let barrier = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let ask = || {
                barrier.wait();
                inner
                    .query_entry(SIMULATOR_PROVIDER, Selection::All)
                    .expect("entry")
            };
            let a = s.spawn(ask);
            let b = s.spawn(ask);
            (a.join().expect("a"), b.join().expect("b"))
        });
        assert!(std::sync::Arc::ptr_eq(&a, &b), "one load, shared");
        assert!(!a.live, "a query's picture, without hold_pictures");

        service.hold_pictures();
        inner.forget(SIMULATOR_PROVIDER);
        let held = inner
            .query_entry(SIMULATOR_PROVIDER, Selection::All)
            .expect("entry");
        assert!(
            held.live,
            "with hold_pictures, a query loads the live picture"
        );
        let again = inner.live_entry(SIMULATOR_PROVIDER).expect("live");
        assert!(
            std::sync::Arc::ptr_eq(&held, &again),
            "and operations use it"
        );
    }
}
