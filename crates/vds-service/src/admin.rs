//! The administration of the service itself: providers added and removed, subsystems registered
//! with the providers whose kind takes registrations, and one-shot discovery.
//!
//! - `add_provider` checks the kind and its settings, writes the configuration and the kind's
//!   initial state, then (for kinds that enumerate their own subsystems) reenumerates and refreshes
//!   the new provider so it answers at once.
//! - `add_subsystem` checks the registration with the kind's own rules before anything is written,
//!   then, under the configuration's lock, stores each secret under a new file name (never
//!   replacing one) and writes the configuration that names it; then it discovers that subsystem
//!   alone (each portal once) and saves just its rows. If that save fails, the registration is
//!   taken back, so a failed add leaves nothing; a process killed mid-way leaves secret files no
//!   configuration names, which the next change of the configuration removes.
//! - `set_subsystem` changes a registration the same way (new secrets in new files; the old ones
//!   go with the change).
//! - Removals take the locks their operation needs, drop the cached rows first, then the
//!   configuration, then the secrets or the state.

use vds_api::{AddReport, DiscoveredAddress, DiscoveredTarget, ProviderReport, RemoveReport};
use vds_model::{CacheHealth, Error, Hresult, HwProvider, Subject, Win32Error};
use vds_providers::{Credential, Registration};
use vds_secret::Secret;
use vds_store::{ProviderConfig, Selection, StoreError, SubsystemConfig, V1_PROVIDER_NAME};

use crate::operations::Scope;
use crate::providers::kind_named;
use crate::view::refreshed;
use crate::{Service, SubsystemSel};

/// A CHAP credential as given: the user and the secret's bytes.
#[derive(Clone, Debug)]
pub struct NewSubsystemCredential {
    /// The CHAP user name.
    pub user: String,
    /// The secret.
    pub secret: Secret,
}

/// A change of a registration (`subsystem set`): what is `Some` replaces what was registered.
#[derive(Clone, Debug, Default)]
pub struct SubsystemChange {
    /// New discovery portals.
    pub portals: Option<Vec<String>>,
    /// A new initiator name (`Some(None)` goes back to the default).
    pub initiator_name: Option<Option<String>>,
    /// New one-way CHAP (`Some(None)` removes CHAP, mutual included).
    pub chap: Option<Option<NewSubsystemCredential>>,
    /// New mutual CHAP (`Some(None)` removes it).
    pub mutual: Option<Option<NewSubsystemCredential>>,
}

/// A subsystem to register.
#[derive(Clone, Debug, Default)]
pub struct NewSubsystem {
    /// Its name.
    pub name: String,
    /// Its discovery portals, `HOST[:PORT]`.
    pub portals: Vec<String>,
    /// The initiator name to present, when not the default.
    pub initiator_name: Option<String>,
    /// One-way CHAP.
    pub chap: Option<NewSubsystemCredential>,
    /// Mutual CHAP (needs one-way CHAP).
    pub mutual: Option<NewSubsystemCredential>,
}

fn provider_subject(name: &str) -> Subject {
    Subject::Provider(name.to_string())
}

impl Service {
    /// Adds a provider `name` of `kind` with the kind's `settings`, then, for a kind that enumerates
    /// its own subsystems and when `enumerate`, reenumerates and refreshes it. `VDS_E_NAME_NOT_UNIQUE`
    /// for a name in use; `E_INVALIDARG` for an unknown kind or a bad setting (the error names it).
    pub async fn add_provider(
        &self,
        name: &str,
        kind: &str,
        settings: toml::Table,
        enumerate: bool,
    ) -> Result<ProviderReport, Error> {
        let store = &self.inner.store;
        vds_store::validate_name("provider", name)?;
        let k = kind_named(kind).map_err(|e| e.about(provider_subject(name)))?;
        let settings = k
            .complete_settings(&settings)
            .map_err(|e| e.about_if_unset(provider_subject(name)))?;
        let initial = k.initial_state(&settings)?;
        store.update_config(|c| {
            if c.provider(name).is_some() {
                return Err(StoreError::NameExists {
                    what: "provider",
                    name: name.to_string(),
                });
            }
            c.providers.push(ProviderConfig {
                name: name.to_string(),
                kind: kind.to_string(),
                settings: settings.clone(),
            });
            Ok(())
        })?;
        let state = store.state_file(name);
        match initial {
            Some(bytes) => state.write(&bytes)?,
            None => state.remove()?,
        }
        self.inner.forget(name);
        tracing::info!(provider = name, kind, "provider added");
        let mut subsystems = Vec::new();
        if enumerate && !k.info().takes_registrations {
            self.reenumerate(Some(name)).await?;
            let report = self.refresh(Scope::Provider(name.to_string())).await?;
            subsystems = report.subsystems;
        }
        Ok(ProviderReport {
            name: name.to_string(),
            kind: kind.to_string(),
            action: "added".into(),
            subsystems,
            detail: None,
        })
    }

    /// Removes provider `name`: its cached pictures, its state and its configuration. A provider
    /// that still has registered subsystems is refused (`HRESULT_FROM_WIN32(ERROR_DIR_NOT_EMPTY)`,
    /// naming them): remove them first.
    pub async fn remove_provider(&self, name: &str) -> Result<ProviderReport, Error> {
        let store = &self.inner.store;
        let config = self.inner.provider_config(name)?;
        let _lock = store.lock_provider(name)?;
        let registered: Vec<String> = store
            .config()?
            .subsystems_of(name)
            .map(|s| format!("{:?}", s.name))
            .collect();
        if !registered.is_empty() {
            return Err(Error::new(Hresult::from_win32(Win32Error::DIR_NOT_EMPTY.0))
                .about(provider_subject(name))
                .because(format!(
                    "it still has registered subsystems ({}); remove them first with `subsystem \
                     remove`",
                    registered.join(", ")
                )));
        }
        let dropped = match store.load(name, Selection::All) {
            Ok(c) => refreshed(name, &c.snapshots()),
            Err(_) => Vec::new(),
        };
        match store.remove_cached_provider(name) {
            Ok(()) | Err(StoreError::CacheCorrupt { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        store.update_config(|c| {
            c.providers.retain(|p| p.name != name);
            Ok(())
        })?;
        store.state_file(name).remove()?;
        self.inner.forget(name);
        tracing::info!(provider = name, "provider removed");
        // Outside the store: what the kind registered elsewhere (an iSNS Control node).
        let detail = match kind_named(&config.kind)
            .ok()
            .and_then(|k| k.retire(&config.settings))
        {
            Some(work) => match work.await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(provider = name, error = %e, "could not undo the provider's registration");
                    Some(format!(
                        "removed from the store, but its registration outside it could not be \
                         withdrawn: {}",
                        e.message()
                    ))
                }
            },
            None => None,
        };
        Ok(ProviderReport {
            name: name.to_string(),
            kind: config.kind,
            action: "removed".into(),
            subsystems: dropped,
            detail,
        })
    }

    /// The provider a new registration goes to: `provider` when given (its kind must take
    /// registrations), else the only provider whose kind does; with none, the SendTargets provider
    /// of vds 0.1 (`vds-sendtargets`), created.
    fn registration_provider(&self, provider: Option<&str>) -> Result<(String, bool), Error> {
        let config = self.inner.store.config()?;
        if let Some(p) = provider {
            let pc = config.provider(p).ok_or_else(|| {
                Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(provider_subject(p))
            })?;
            let k = kind_named(&pc.kind)?;
            if !k.info().takes_registrations {
                return Err(Error::new(Hresult::VDS_E_NOT_SUPPORTED)
                    .about(provider_subject(p))
                    .because(format!(
                        "a {} provider enumerates its own subsystems; subsystems are registered \
                         with a sendtargets provider",
                        pc.kind
                    )));
            }
            return Ok((p.to_string(), false));
        }
        let takers: Vec<&ProviderConfig> = config
            .providers
            .iter()
            .filter(|p| vds_providers::kind(&p.kind).is_some_and(|k| k.info().takes_registrations))
            .collect();
        match takers.as_slice() {
            [] => Ok((V1_PROVIDER_NAME.to_string(), true)),
            [one] => Ok((one.name.clone(), false)),
            many => Err(Error::new(Hresult::VDS_E_NAME_NOT_UNIQUE).because(format!(
                "providers {} take registrations; choose one with --provider",
                many.iter()
                    .map(|p| format!("{:?}", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Registers subsystem `new` with a provider (see [`registration_provider`]), then, when
    /// `refresh`, discovers it alone and saves its rows. The subsystem is registered even when it
    /// cannot be reached (the report says how it is). `VDS_E_NAME_NOT_UNIQUE` when the provider has
    /// a subsystem of that name; `E_INVALIDARG` for a registration the kind refuses.
    ///
    /// [`registration_provider`]: Self::add_subsystem
    pub async fn add_subsystem(
        &self,
        provider: Option<&str>,
        new: NewSubsystem,
        refresh: bool,
    ) -> Result<AddReport, Error> {
        let store = &self.inner.store;
        let name = new.name.as_str();
        let subject = || Subject::Subsystem(name.to_string());
        vds_store::validate_name("subsystem", name)?;
        let (provider, create_provider) = self.registration_provider(provider)?;
        let kind = kind_named("sendtargets")?;
        let kind = if create_provider {
            kind
        } else {
            kind_named(&self.inner.provider_config(&provider)?.kind)?
        };
        let credential = |c: &Option<NewSubsystemCredential>| {
            c.as_ref().map(|c| Credential {
                user: c.user.clone(),
                secret: Ok(c.secret.clone()),
            })
        };
        kind.check_registration(&Registration {
            name: name.to_string(),
            portals: new.portals.clone(),
            initiator_name: new.initiator_name.clone(),
            chap: credential(&new.chap),
            mutual: credential(&new.mutual),
        })
        .map_err(|e| e.about_if_unset(subject()))?;
        let _lock = store.lock_subsystem(&provider, name)?;
        if store.config()?.subsystem(&provider, name).is_some() {
            return Err(Error::new(Hresult::VDS_E_NAME_NOT_UNIQUE)
                .about(subject())
                .because(format!(
                    "provider {provider:?} has a subsystem of that name"
                )));
        }
        // The secrets are made under the configuration's lock, with the change that names them:
        // a process killed between the two leaves files the next change removes.
        let registered = store.update_config(|c| {
            let mut cfg = SubsystemConfig::new(name, provider.clone());
            cfg.portals = new.portals.clone();
            cfg.initiator_name = new.initiator_name.clone();
            if let Some(cred) = &new.chap {
                cfg.chap_secret =
                    Some(store.create_secret(c, name, "chap", cred.secret.expose())?);
                cfg.chap_user = Some(cred.user.clone());
            }
            if let Some(cred) = &new.mutual {
                cfg.mutual_secret =
                    Some(store.create_secret(c, name, "mutual", cred.secret.expose())?);
                cfg.mutual_user = Some(cred.user.clone());
            }
            if create_provider && c.provider(&provider).is_none() {
                c.providers
                    .push(ProviderConfig::new(provider.clone(), "sendtargets"));
            }
            c.subsystems.push(cfg.clone());
            Ok(cfg)
        });
        let cfg = registered.map_err(|e| Error::from(e).about_if_unset(subject()))?;
        self.inner.forget(&provider);
        tracing::info!(subsystem = name, provider = %provider, "registered");
        let mut subsystem = None;
        if refresh {
            match self.discover_new(&provider, name).await {
                Ok(s) => subsystem = s,
                Err(e) => {
                    // Registered but not saved: take it back, so a failed add leaves nothing.
                    if let Err(undo) = self.unregister(&provider, name) {
                        tracing::warn!(error = %undo, "could not take back the registration");
                    }
                    return Err(e.because("the registration was taken back"));
                }
            }
        }
        Ok(AddReport {
            name: name.to_string(),
            portals: cfg.portals,
            refreshed: refresh,
            subsystem,
        })
    }

    /// Changes the registration of subsystem `sel` (`subsystem set`): the portals and credentials
    /// given replace those registered (new secrets get new files; the old ones go), the result is
    /// checked with the kind's rules before anything is written, and the subsystem is discovered
    /// again (unless `refresh` is false). `VDS_E_OBJECT_NOT_FOUND` for a subsystem that is not
    /// registered.
    pub async fn set_subsystem(
        &self,
        sel: &SubsystemSel,
        change: SubsystemChange,
        refresh: bool,
    ) -> Result<AddReport, Error> {
        let store = &self.inner.store;
        let name = sel.name.as_str();
        let subject = || Subject::Subsystem(name.to_string());
        let provider = self.resolve(sel)?;
        let _lock = store.lock_subsystem(&provider, name)?;
        let config = store.config()?;
        let Some(old) = config.subsystem(&provider, name).cloned() else {
            return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                .about(subject())
                .because(format!(
                    "provider {provider:?} has no registered subsystem of that name"
                )));
        };
        let kind = kind_named(
            &config
                .provider(&provider)
                .map(|p| p.kind.clone())
                .unwrap_or_default(),
        )?;
        // The registration as it will be, secrets read where they are kept.
        let kept = |user: &Option<String>, secret: &Option<String>| {
            user.as_ref().map(|u| Credential {
                user: u.clone(),
                secret: secret
                    .as_ref()
                    .map(|s| store.read_secret(s).map_err(Error::from))
                    .unwrap_or_else(|| Err(Error::new(Hresult::E_INVALIDARG))),
            })
        };
        let given = |c: &Option<NewSubsystemCredential>| {
            c.as_ref().map(|c| Credential {
                user: c.user.clone(),
                secret: Ok(c.secret.clone()),
            })
        };
        let chap = match &change.chap {
            Some(c) => given(c),
            None => kept(&old.chap_user, &old.chap_secret),
        };
        let mutual = match (&change.mutual, &change.chap) {
            (Some(m), _) => given(m),
            (None, Some(None)) => None,
            (None, _) => kept(&old.mutual_user, &old.mutual_secret),
        };
        let portals = change
            .portals
            .clone()
            .unwrap_or_else(|| old.portals.clone());
        let initiator_name = change
            .initiator_name
            .clone()
            .unwrap_or_else(|| old.initiator_name.clone());
        kind.check_registration(&Registration {
            name: name.to_string(),
            portals: portals.clone(),
            initiator_name: initiator_name.clone(),
            chap,
            mutual,
        })
        .map_err(|e| e.about_if_unset(subject()))?;
        let cfg = store
            .update_config(|c| {
                let at = c.position(&provider, name)?;
                let mut cfg = c.subsystems[at].clone();
                cfg.portals = portals.clone();
                cfg.initiator_name = initiator_name.clone();
                if let Some(chap) = &change.chap {
                    cfg.chap_user = None;
                    cfg.chap_secret = None;
                    if let Some(cred) = chap {
                        cfg.chap_secret =
                            Some(store.create_secret(c, name, "chap", cred.secret.expose())?);
                        cfg.chap_user = Some(cred.user.clone());
                    }
                }
                let drop_mutual = matches!(change.chap, Some(None));
                if change.mutual.is_some() || drop_mutual {
                    cfg.mutual_user = None;
                    cfg.mutual_secret = None;
                }
                if let Some(Some(cred)) = &change.mutual {
                    cfg.mutual_secret =
                        Some(store.create_secret(c, name, "mutual", cred.secret.expose())?);
                    cfg.mutual_user = Some(cred.user.clone());
                }
                c.subsystems[at] = cfg.clone();
                Ok(cfg)
            })
            .map_err(|e| Error::from(e).about_if_unset(subject()))?;
        self.inner.forget(&provider);
        let subsystem = if refresh {
            self.discover_new(&provider, name).await?
        } else {
            None
        };
        Ok(AddReport {
            name: name.to_string(),
            portals: cfg.portals,
            refreshed: refresh,
            subsystem,
        })
    }

    /// Discovers the newly registered subsystem `name` of `provider` alone (one reenumerate of a
    /// backend that knows only it: each portal is contacted once) and saves its rows with the
    /// provider's recorded health (a registration does not mend a cache).
    async fn discover_new(
        &self,
        provider: &str,
        name: &str,
    ) -> Result<Option<vds_api::RefreshedSubsystem>, Error> {
        let store = &self.inner.store;
        let subject = || Subject::Subsystem(name.to_string());
        let pc = self.inner.provider_config(provider)?;
        let (_, backend) = self.inner.build_backend(&pc, Some(name))?;
        let (model, _) = HwProvider::from_cache_boxed(backend, Vec::new(), CacheHealth::Good);
        model
            .reenumerate()
            .await
            .map_err(|e| e.about_if_unset(subject()))?;
        let snaps = model.export();
        let health = match store.load(provider, Selection::One(name)) {
            Ok(c) => c.health,
            Err(e @ StoreError::CacheCorrupt { .. }) => {
                return Err(Error::from(e).because(format!(
                    "subsystem {name:?} could not be saved in the cache"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let saved = store.save(provider, &snaps, health);
        self.inner.deliver(provider, None);
        saved?;
        Ok(refreshed(provider, &snaps).into_iter().next())
    }

    /// Takes back a registration whose rows were never saved: the configuration only, so a cache
    /// that cannot be written (the reason the add failed) does not stop it; its secrets go with
    /// the configuration change, as files vds made that nothing names.
    fn unregister(&self, provider: &str, name: &str) -> Result<(), Error> {
        let store = &self.inner.store;
        store.remove_registration(provider, name)?;
        self.inner.forget(provider);
        Ok(())
    }

    /// Forgets a registered subsystem: its cached picture, its registration and its secrets.
    pub async fn remove_subsystem(&self, sel: &SubsystemSel) -> Result<RemoveReport, Error> {
        let store = &self.inner.store;
        let provider = self.resolve(sel)?;
        let _lock = store.lock_subsystem(&provider, &sel.name)?;
        let removed = store.remove_subsystem(&provider, &sel.name).map_err(|e| {
            let e = Error::from(e);
            if e == Hresult::VDS_E_OBJECT_NOT_FOUND {
                e.because(format!(
                    "provider {provider:?} has no registered subsystem of that name"
                ))
            } else {
                e
            }
        })?;
        for secret in [&removed.chap_secret, &removed.mutual_secret]
            .into_iter()
            .flatten()
        {
            match store.remove_secret(secret) {
                Ok(()) | Err(StoreError::Secret { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.inner.forget(&provider);
        Ok(RemoveReport {
            name: sel.name.clone(),
            removed: true,
        })
    }
}

/// One SendTargets discovery of `portal` (`HOST[:PORT]`), touching no store: what the target
/// answered, in its order.
pub async fn discover(
    portal: &str,
    initiator_name: Option<&str>,
    chap: Option<&NewSubsystemCredential>,
    mutual: Option<&NewSubsystemCredential>,
) -> Result<Vec<DiscoveredTarget>, Error> {
    use vds_providers::sendtargets::{DiscoveryPortal, discover_portal};
    let p: DiscoveryPortal = portal
        .parse()
        .map_err(|e| Error::new(Hresult::E_INVALIDARG).because(format!("{e}")))?;
    let mut options = iscsi_client::DiscoveryOptions::default();
    if let Some(n) = initiator_name {
        options.initiator_name = n.to_string();
    }
    let creds = |c: &NewSubsystemCredential| {
        iscsi_client::ChapCredentials::new(c.user.clone(), c.secret.clone())
    };
    options.chap = chap.map(creds);
    options.mutual = mutual.map(creds);
    tracing::info!(portal = %p, "SendTargets discovery");
    let found = discover_portal(&p, &options).await?;
    // The names move into the answer rather than being copied (and the copies freed).
    let portal = found.portal;
    Ok(found
        .targets
        .into_iter()
        .map(|t| {
            let addresses = t
                .addresses_or(&portal)
                .iter()
                .map(|a| DiscoveredAddress {
                    address: match &a.host {
                        iscsi_client::Host::Ipv4(a) => vds_model::dotted_quad(*a),
                        iscsi_client::Host::Ipv6 { addr, zone: None } => addr.to_string(),
                        iscsi_client::Host::Ipv6 {
                            addr,
                            zone: Some(z),
                        } => format!("{addr}%{z}"),
                        iscsi_client::Host::Name(n) => n.clone(),
                    },
                    port: a.port,
                    tag: a.tag,
                })
                .collect();
            DiscoveredTarget {
                name: t.name,
                addresses,
            }
        })
        .collect())
}
