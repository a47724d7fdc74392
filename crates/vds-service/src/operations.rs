//! Refresh and reenumerate: the operations that talk to arrays, run on the live providers, persist
//! what they commit, and report what they did and what they could not do.
//!
//! - A refresh runs each subsystem under its own gate and its own cross-process lock, concurrently;
//!   each subsystem is saved as soon as it is committed (in batches: a subsystem that finishes while
//!   a batch is being written waits for the next one), so a slow array delays nothing else, in
//!   memory or on disk. A subsystem that is busy, or that its provider fails to refresh, is reported
//!   and the others go on.
//! - A reenumerate holds its provider (exclusively), replaces its set of subsystems and saves it
//!   with [`vds_store::Store::save_enumeration`]. On a damaged cache file it first has the store
//!   keep the file aside and start an empty one (every provider then answers
//!   `VDS_E_PROVIDER_CACHE_CORRUPT` until it reenumerates and refreshes: the documented recovery).

use std::sync::{Arc, Mutex};

use vds_api::{ErrorBody, NotificationDoc, OperationReport, SubsystemFailure};
use vds_model::{
    CacheHealth, Error, HwProvider, Notification, ObjectId, SubSystemSnapshot, Subject,
};
use vds_store::StoreError;

use crate::view::{refreshed, worst};
use crate::{Inner, Service, SubsystemSel};

/// What a refresh covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every subsystem of every provider.
    All,
    /// Every subsystem of one provider.
    Provider(String),
    /// One subsystem.
    Subsystem(SubsystemSel),
}

/// How many committed subsystems one save writes at most.
const SAVE_BATCH: usize = 256;

fn failure(provider: &str, subsystem: &str, e: &Error) -> SubsystemFailure {
    SubsystemFailure {
        provider: provider.to_string(),
        subsystem: subsystem.to_string(),
        error: ErrorBody {
            hresult: e.code_hex(),
            name: e.code_name(),
            message: e.message(),
            subject: None,
        },
    }
}

/// What one provider's part of an operation produced.
#[derive(Default)]
struct Part {
    health: Option<CacheHealth>,
    notifications: Vec<NotificationDoc>,
    subsystems: Vec<vds_api::RefreshedSubsystem>,
    failures: Vec<SubsystemFailure>,
    kept: Option<String>,
}

fn report(operation: &str, parts: Vec<Part>) -> OperationReport {
    let mut r = OperationReport {
        operation: operation.to_string(),
        cache_health: CacheHealth::Good.label().to_string(),
        notifications: 0,
        corrupt_cache_kept_at: None,
        subsystems: Vec::new(),
        events: Vec::new(),
        failures: Vec::new(),
    };
    let mut health = CacheHealth::Good;
    for p in parts {
        if let Some(h) = p.health {
            health = worst(health, h);
        }
        r.events.extend(p.notifications);
        r.subsystems.extend(p.subsystems);
        r.failures.extend(p.failures);
        if p.kept.is_some() {
            r.corrupt_cache_kept_at = p.kept;
        }
    }
    r.notifications = r.events.len();
    r.cache_health = health.label().to_string();
    r
}

/// What a subsystem whose provider is not defined answers.
pub(crate) fn orphan_error(subsystem: &str, provider: &str) -> Error {
    Error::new(vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND)
        .about(Subject::Provider(provider.to_string()))
        .because(format!(
            "subsystem {subsystem:?} is registered with it, but vds.toml does not define it \
             (add it with `vdsadm provider add`, or remove the subsystem)"
        ))
}

fn docs(provider: &str, batch: &[Notification]) -> Vec<NotificationDoc> {
    batch
        .iter()
        .map(|n| NotificationDoc::new(provider, n))
        .collect()
}

impl Inner {
    /// The registrations of `provider` its kind cannot use (a secret that cannot be read, a portal
    /// that does not parse, …): their subsystems are recorded `FAILED` by the provider, and the
    /// operation reports each as not done, so that the exit status says so.
    fn unusable_registrations(&self, provider: &str) -> Vec<SubsystemFailure> {
        self.unusable(provider)
            .iter()
            .map(|(name, e)| failure(provider, name, e))
            .collect()
    }

    /// The subsystems of `provider` whose registration its kind cannot use, with why.
    fn unusable(&self, provider: &str) -> Vec<(String, Error)> {
        let Ok(config) = self.provider_config(provider) else {
            return Vec::new();
        };
        let Some(kind) = vds_providers::kind(&config.kind) else {
            return Vec::new();
        };
        if !kind.info().takes_registrations {
            return Vec::new();
        }
        let Ok(registrations) = self.registrations(provider, None) else {
            return Vec::new();
        };
        registrations
            .iter()
            .filter_map(|r| {
                let e = kind.check_registration(r).err()?;
                let e = e
                    .about_if_unset(Subject::Subsystem(r.name.clone()))
                    .because("its registration cannot be used; it is recorded FAILED");
                Some((r.name.clone(), e))
            })
            .collect()
    }

    /// The registered subsystems whose provider is not defined (a hand edit of `vds.toml`).
    pub(crate) fn orphans(&self) -> Result<Vec<SubsystemFailure>, Error> {
        let config = self.store.config()?;
        Ok(config
            .orphans()
            .map(|s| {
                let e = orphan_error(&s.name, &s.provider);
                failure(&s.provider, &s.name, &e)
            })
            .collect())
    }

    /// Saves `subsystems` of `model` (provider `provider`) with the provider's health, off the
    /// runtime's threads; then delivers the notifications about them (even when the save failed:
    /// the model changed, and the failure is reported by the caller).
    pub(crate) async fn save(
        self: &Arc<Inner>,
        model: &HwProvider,
        provider: &str,
        subsystems: Vec<SubSystemSnapshot>,
        health: CacheHealth,
    ) -> Result<(), Error> {
        let ids: Vec<ObjectId> = subsystems
            .iter()
            .map(|s| model.id().child("subsystem", &s.key))
            .collect();
        let inner = self.clone();
        let name = provider.to_string();
        let saved =
            tokio::task::spawn_blocking(move || inner.store.save(&name, &subsystems, health)).await;
        self.deliver(provider, Some(&ids));
        saved
            .map_err(|e| {
                Error::new(vds_model::Hresult::E_UNEXPECTED)
                    .because(format!("the save task failed: {e}"))
            })?
            .map_err(Error::from)
    }

    /// Refreshes every subsystem of `provider`.
    async fn refresh_provider(self: &Arc<Inner>, provider: &str) -> Part {
        let mut part = Part::default();
        let entry = match self.live_entry(provider) {
            Ok(e) => e,
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return part;
            }
        };
        let model = &entry.model;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SubSystemSnapshot>();
        // The persister: saves what is committed, in batches, while the refresh goes on.
        let persister = {
            let inner = self.clone();
            let provider = provider.to_string();
            let model = model.clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < SAVE_BATCH {
                        match rx.try_recv() {
                            Ok(s) => batch.push(s),
                            Err(_) => break,
                        }
                    }
                    let keys: Vec<String> = batch.iter().map(|s| s.key.clone()).collect();
                    if let Err(e) = inner
                        .save(&model, &provider, batch, model.cache_health())
                        .await
                    {
                        errors.extend(keys.into_iter().map(|k| (k, e.clone())));
                    }
                }
                errors
            })
        };
        let store = &self.store;
        let events = Mutex::new(Vec::new());
        let result = model
            .refresh_with(
                |key: &str| store.lock_subsystem(provider, key).map_err(Error::from),
                |done| {
                    if let Ok(snapshot) = done.result {
                        // The receiver lives until the persister ends, after the refresh.
                        let _ = tx.send(snapshot.clone());
                    }
                    events
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(docs(provider, done.notifications));
                },
            )
            .await;
        drop(tx);
        let save_errors = persister.await.unwrap_or_default();
        self.deliver(provider, None);
        let health = model.cache_health();
        match result {
            Ok(r) => {
                for (_, key, e) in &r.failures {
                    part.failures.push(failure(provider, key, e));
                }
                // A refresh that completed the recovery records it.
                if let Err(e) = self.store.set_health(provider, health) {
                    part.failures.push(failure(provider, "", &e.into()));
                }
            }
            Err(e) => part.failures.push(failure(provider, "", &e)),
        }
        for (key, e) in save_errors {
            part.failures.push(failure(provider, &key, &e));
        }
        part.failures.extend(self.unusable_registrations(provider));
        part.health = Some(health);
        part.notifications = events.into_inner().unwrap_or_else(|e| e.into_inner());
        part.subsystems = refreshed(provider, &model.export());
        part
    }

    /// Reenumerates `provider`, on a cache file known to be readable.
    async fn reenumerate_provider(self: &Arc<Inner>, provider: &str) -> Part {
        let mut part = Part::default();
        let _lock = match self.store.lock_provider(provider) {
            Ok(l) => l,
            Err(e) => {
                part.failures.push(failure(provider, "", &e.into()));
                return part;
            }
        };
        let entry = match self.live_entry(provider) {
            Ok(e) => e,
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return part;
            }
        };
        let model = &entry.model;
        match model.reenumerate().await {
            Ok(batch) => part.notifications = docs(provider, &batch),
            Err(e) => {
                part.failures.push(failure(provider, "", &e));
                return part;
            }
        }
        let inner = self.clone();
        let (name, snaps, health) = (provider.to_string(), model.export(), model.cache_health());
        let saved = tokio::task::spawn_blocking(move || {
            inner.store.save_enumeration(&name, &snaps, health)
        })
        .await;
        self.deliver(provider, None);
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => part.failures.push(failure(provider, "", &e.into())),
            Err(e) => part.failures.push(failure(
                provider,
                "",
                &Error::new(vds_model::Hresult::E_UNEXPECTED)
                    .because(format!("the save task failed: {e}")),
            )),
        }
        part.failures.extend(self.unusable_registrations(provider));
        part.health = Some(model.cache_health());
        part.subsystems = refreshed(provider, &model.export());
        part
    }

    /// Keeps a damaged cache file aside and starts an empty one, when the file is damaged. Returns
    /// where it went.
    fn rebuild_if_damaged(self: &Arc<Inner>) -> Result<Option<String>, Error> {
        match self.store.load_everything() {
            Ok(_) => Ok(None),
            Err(StoreError::CacheCorrupt { path, reason }) => {
                tracing::warn!(cache = %path.display(), %reason, "the cache is corrupt: rebuilding it");
                // Every picture held came from the damaged file.
                self.providers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                let kept = self.store.rebuild_cache()?;
                Ok(kept.map(|p| p.display().to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Service {
    /// The providers an operation on `provider` (all when `None`) covers, in configuration order;
    /// `VDS_E_OBJECT_NOT_FOUND` for a provider that is not configured.
    fn providers_for(&self, provider: Option<&str>) -> Result<Vec<String>, Error> {
        let config = self.inner.store.config()?;
        if let Some(p) = provider {
            if config.provider(p).is_none() {
                return Err(Error::new(vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND)
                    .about(Subject::Provider(p.to_string())));
            }
        }
        Ok(config
            .providers
            .iter()
            .filter(|p| provider.is_none_or(|only| only == p.name))
            .map(|p| p.name.clone())
            .collect())
    }

    /// `IVdsHwProvider::Refresh` of every provider, of one, or of one subsystem
    /// (`refresh --subsystem`). Finds no new subsystems. What could not be refreshed (a busy
    /// subsystem, a provider that cannot be built, a save that failed) is in the report's
    /// `failures`; the call itself fails only for a single subsystem (its error) or a provider that
    /// does not exist.
    pub async fn refresh(&self, scope: Scope) -> Result<OperationReport, Error> {
        match scope {
            Scope::Subsystem(sel) => self.refresh_subsystem(&sel).await,
            Scope::All | Scope::Provider(_) => {
                let only = match &scope {
                    Scope::Provider(p) => Some(p.as_str()),
                    _ => None,
                };
                let providers = self.providers_for(only)?;
                let runs = providers.iter().map(|p| self.inner.refresh_provider(p));
                let mut parts = futures_util::future::join_all(runs).await;
                if only.is_none() {
                    parts.push(Part {
                        failures: self.inner.orphans()?,
                        ..Part::default()
                    });
                }
                Ok(report("refresh", parts))
            }
        }
    }

    async fn refresh_subsystem(&self, sel: &SubsystemSel) -> Result<OperationReport, Error> {
        let provider = self.resolve(sel)?;
        let _lock = self.inner.store.lock_subsystem(&provider, &sel.name)?;
        let entry = self.inner.live_entry(&provider)?;
        let model = &entry.model;
        let sub = model.sub_system_by_key(&sel.name)?;
        let batch = model.refresh_subsystem(&sub).await?;
        let snapshot = model
            .export_subsystem(sub.id())
            .into_iter()
            .collect::<Vec<_>>();
        self.inner
            .save(model, &provider, snapshot.clone(), model.cache_health())
            .await?;
        if let Some((_, e)) = self
            .inner
            .unusable(&provider)
            .into_iter()
            .find(|(n, _)| *n == sel.name)
        {
            return Err(e);
        }
        Ok(report(
            "refresh",
            vec![Part {
                health: Some(model.cache_health()),
                notifications: docs(&provider, &batch),
                subsystems: refreshed(&provider, &snapshot),
                failures: Vec::new(),
                kept: None,
            }],
        ))
    }

    /// `IVdsHwProvider::Reenumerate` of every provider (or of one): finds the subsystems that
    /// arrived and departed, and rebuilds a damaged cache (see the module documentation). What could
    /// not be done (a busy provider, one that cannot be built) is in the report's `failures`.
    pub async fn reenumerate(&self, provider: Option<&str>) -> Result<OperationReport, Error> {
        let providers = self.providers_for(provider)?;
        let kept = self.inner.rebuild_if_damaged()?;
        let runs = providers.iter().map(|p| self.inner.reenumerate_provider(p));
        let mut parts = futures_util::future::join_all(runs).await;
        if let Some(p) = parts.first_mut() {
            p.kept = kept;
        }
        if provider.is_none() {
            parts.push(Part {
                failures: self.inner.orphans()?,
                ..Part::default()
            });
        }
        Ok(report("reenumerate", parts))
    }
}
