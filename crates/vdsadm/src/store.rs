//! Every command against the store (`vds-store`) and real arrays (`vds-providers`' SendTargets
//! provider), as opposed to `--sim`.
//!
//! - **Queries** (`list`, `detail`) read the cache only: the provider they build has a backend that
//!   can contact nothing ([`CachedOnly`]), and a query that names one subsystem loads just that
//!   subsystem's rows. A cache the store finds damaged is handed to the model as
//!   [`CacheHealth::Corrupt`], so the model answers `VDS_E_PROVIDER_CACHE_CORRUPT` as VDS would.
//! - **`refresh` / `reenumerate`** take the store's locks of every configured subsystem (fail fast:
//!   `VDS_E_ANOTHER_CALL_IN_PROGRESS`), load the cache into a provider over a `SendTargetsBackend`
//!   built from the configuration and the secrets, run the model's `refresh()`/`reenumerate()`, and
//!   save the result in one transaction with the provider's cache health. `reenumerate` on a corrupt
//!   cache first has the store move the damaged file aside (`rebuild_cache`); it saves what it
//!   enumerated and drops only subsystems no longer configured (`save_enumeration`), so a
//!   `subsystem add` running at the same time is not lost from the cache.
//! - **`subsystem add`** copies the secret files into the store, registers the subsystem, then
//!   reenumerates and refreshes that subsystem alone and saves just its rows.
//! - **`discover`** is one SendTargets exchange; it opens no store.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use vds_model::{
    CacheHealth, Hresult, HwProvider, HwProviderType, ProviderBackend, ProviderInfo,
    SubSystemSnapshot, SubSystemStatus,
};
use vds_providers::sendtargets::{
    DiscoveryPortal, PROVIDER_NAME, SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem,
};
use vds_store::{Config, Store, StoreError, SubsystemConfig, SubsystemLock};

use crate::args::{Command, Credentials, Globals, PortalArg};
use crate::error::{CliError, CliResult};
use crate::output::{
    self, AddReport, CacheView, ChapView, ConfigView, DiscoveredAddress, DiscoveredTarget,
    OperationReport, RemoveReport,
};
use crate::progress::Bar;
use crate::view::{self, Loaded, subject};
use crate::{Printed, print_doc};

/// The `provider` value of subsystems registered by `vdsadm subsystem add`.
pub const PROVIDER_KIND: &str = "sendtargets";

/// Test-only: when set to a number of milliseconds, `refresh` and `reenumerate` sleep that long
/// after taking the subsystem locks and before contacting anything. Lets tests hit the locked
/// section deterministically; never set it in production.
pub const TEST_HOLD_ENV: &str = "VDSADM_TEST_HOLD_LOCKS_MS";

/// The backend of query commands: the provider's name (so ids are the ones `refresh` computed),
/// and no way to reach an array. Queries never call it; if one did, it would get
/// `VDS_E_NOT_SUPPORTED` rather than touch the network.
struct CachedOnly;

impl ProviderBackend for CachedOnly {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: PROVIDER_NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    fn reenumerate(&self, _: &[SubSystemSnapshot]) -> Result<Vec<SubSystemSnapshot>, Hresult> {
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    }

    fn refresh(&self, _: &[SubSystemSnapshot]) -> Result<Vec<SubSystemSnapshot>, Hresult> {
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    }
}

/// The one mapping from a store error to what the user reads.
fn store_error(e: StoreError) -> CliError {
    let hr = e.hresult();
    match &e {
        StoreError::CacheCorrupt { .. } => {
            CliError::new(hr, "provider cache", Some(&e.to_string()))
        }
        StoreError::Busy { name } if name == "vds.toml" => CliError::new(hr, "configuration", None),
        StoreError::Busy { name } => CliError::new(hr, subject(name), None),
        StoreError::NotFound { name } => CliError::new(hr, subject(name), None),
        StoreError::NameExists { name } => CliError::with_cause(
            hr,
            subject(name),
            "a subsystem of that name is already registered",
        ),
        _ => CliError::with_cause(hr, "store", e.to_string()),
    }
}

fn provider_error(e: vds_providers::ProviderError) -> CliError {
    CliError::with_cause(e.hresult(), "provider", e.to_string())
}

/// RFC 3339 UTC with seconds: `2026-11-02T10:04:05Z`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The name of a subsystem's secret file in the store: `<name>.chap` / `<name>.mutual` when the
/// subsystem name is a valid file name, else a digest of it (`subsystem-<hex>.chap`).
fn secret_name(subsystem: &str, kind: &str) -> String {
    let plain = format!("{subsystem}.{kind}");
    if vds_store::validate_secret_name(&plain).is_ok() {
        return plain;
    }
    let digest = subsystem.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("subsystem-{digest:016x}.{kind}")
}

/// The whole store-backed session of one command.
struct Session {
    store: Store,
}

/// Runs `command` against the store at `--store`, `$VDS_HOME` or the default root.
pub fn run(globals: &Globals, command: &Command) -> CliResult<Printed> {
    let json = globals.json;
    if let Command::Discover {
        portal,
        credentials,
    } = command
    {
        return discover(json, portal, credentials);
    }
    let root = globals.store.clone().unwrap_or_else(Store::default_root);
    tracing::debug!(store = %root.display(), "opening the store");
    let store = Store::open(&root).map_err(store_error)?;
    let s = Session { store };
    match command {
        Command::ListSubsystems => s.list_subsystems(json),
        Command::ListTportals { subsystem } => {
            let loaded = s.load_one(subsystem)?;
            let rows = view::list_portals(&loaded, subsystem)?;
            print_doc(json, &rows, output::portals_table(subsystem, &rows))
        }
        Command::ListTargets { subsystem } => {
            let loaded = s.load_one(subsystem)?;
            let rows = view::list_targets(&loaded, subsystem)?;
            print_doc(json, &rows, output::targets_table(subsystem, &rows))
        }
        Command::ListTpgroups { subsystem, target } => {
            let loaded = s.load_one(subsystem)?;
            let rows = view::list_groups(&loaded, subsystem, target)?;
            print_doc(json, &rows, output::groups_table(target, &rows))
        }
        Command::DetailSubsystem { name } => s.detail_subsystem(json, name),
        Command::DetailTportal { subsystem, portal } => {
            let loaded = s.load_one(subsystem)?;
            let d = view::portal_detail(&loaded, subsystem, portal)?;
            print_doc(json, &d, output::portal_detail_text(&d))
        }
        Command::DetailTarget { subsystem, target } => {
            let loaded = s.load_one(subsystem)?;
            let d = view::target_detail(&loaded, subsystem, target)?;
            print_doc(json, &d, output::target_detail_text(&d))
        }
        Command::Refresh => s.refresh(json),
        Command::Reenumerate => s.reenumerate(json),
        Command::SubsystemAdd {
            name,
            portals,
            credentials,
            no_refresh,
        } => s.add(json, name, portals, credentials, *no_refresh),
        Command::SubsystemRemove { name } => s.remove(json, name),
        Command::Discover { .. } | Command::Completions(_) | Command::Man => Err(
            CliError::with_cause(Hresult::E_UNEXPECTED, "", "not a store command"),
        ),
    }
}

/// A provider whose cache is flagged corrupt, for the model to answer from.
fn corrupt_provider(why: String) -> Loaded {
    let (provider, _) = HwProvider::from_cache(CachedOnly, Vec::new(), CacheHealth::Corrupt);
    Loaded::new(provider, &[], Some(why))
}

impl Session {
    /// A provider over the cached picture of `name` alone (the hot path of `list tportals`).
    fn load_one(&self, name: &str) -> CliResult<Loaded> {
        // One read transaction for the health and the rows: the whole store cost of the query.
        let (health, snap) = match self.store.load_subsystem_and_health(name) {
            Ok(x) => x,
            Err(e @ StoreError::CacheCorrupt { .. }) => return Ok(corrupt_provider(e.to_string())),
            Err(e) => return Err(store_error(e)),
        };
        if snap.is_none() && health == CacheHealth::Good {
            // Not cached: say whether it is registered (only this error path reads the config).
            if self.config()?.subsystem(name).is_some() {
                return Err(CliError::with_cause(
                    Hresult::VDS_E_OBJECT_NOT_FOUND,
                    subject(name),
                    "registered but not enumerated yet: run `vdsadm reenumerate`",
                ));
            }
        }
        let snaps: Vec<SubSystemSnapshot> = snap.into_iter().map(|(s, _)| s).collect();
        Ok(self.provider_over(snaps, health))
    }

    fn provider_over(&self, snaps: Vec<SubSystemSnapshot>, health: CacheHealth) -> Loaded {
        let details = view::details_of(&snaps);
        let (provider, problem) = HwProvider::from_cache(CachedOnly, snaps, health);
        let corrupt = match (problem, health) {
            (Some(p), _) => Some(format!("the cached picture breaks a rule: {p}")),
            (None, CacheHealth::Rebuilt) => Some(
                "the cache was rebuilt by `vdsadm reenumerate`; a `vdsadm refresh` completes the \
                 recovery"
                    .to_string(),
            ),
            (None, CacheHealth::Corrupt) => Some("the cache is recorded as corrupt".to_string()),
            (None, CacheHealth::Good) => None,
        };
        let mut loaded = Loaded::new(provider, &[], corrupt);
        loaded.details = details;
        loaded
    }

    fn config(&self) -> CliResult<Config> {
        self.store.config().map_err(store_error)
    }

    fn list_subsystems(&self, json: bool) -> CliResult<Printed> {
        let config = self.config()?;
        let configured: Vec<String> = config.subsystems.iter().map(|s| s.name.clone()).collect();
        let loaded = match self.store.load_cache() {
            Ok(cached) => self.provider_over(cached.subsystems, cached.health),
            Err(e @ StoreError::CacheCorrupt { .. }) => corrupt_provider(e.to_string()),
            Err(e) => return Err(store_error(e)),
        };
        let rows = view::list_subsystems(&loaded, &configured)?;
        print_doc(json, &rows, output::subsystems_table(&rows))
    }

    fn detail_subsystem(&self, json: bool, name: &str) -> CliResult<Printed> {
        let config = self.config()?;
        let cfg = config.subsystem(name);
        let secrets = self.store.secret_names().map_err(store_error)?;
        let chap = |user: &Option<String>, secret: &Option<String>| {
            user.as_ref().map(|u| ChapView {
                user: u.clone(),
                secret_set: secret.as_ref().is_some_and(|s| secrets.contains(s)),
            })
        };
        let config_view = cfg.map(|c| ConfigView {
            portals: c.portals.clone(),
            initiator_name: c.initiator_name.clone(),
            chap: chap(&c.chap_user, &c.chap_secret),
            mutual: chap(&c.mutual_user, &c.mutual_secret),
        });
        let (loaded, refreshed_at, health) = match self.store.load_subsystem_and_health(name) {
            Ok((health, Some((snap, at)))) => (
                self.provider_over(vec![snap], health),
                Some(rfc3339(at)),
                health,
            ),
            Ok((health, None)) => {
                if cfg.is_some() && health == CacheHealth::Good {
                    return Err(CliError::with_cause(
                        Hresult::VDS_E_OBJECT_NOT_FOUND,
                        subject(name),
                        "registered but not enumerated yet: run `vdsadm reenumerate`",
                    ));
                }
                (self.provider_over(Vec::new(), health), None, health)
            }
            Err(e @ StoreError::CacheCorrupt { .. }) => {
                (corrupt_provider(e.to_string()), None, CacheHealth::Corrupt)
            }
            Err(e) => return Err(store_error(e)),
        };
        let cache = CacheView {
            health: view::health_label(health),
            refreshed_at,
        };
        let d = view::subsystem_detail(&loaded, name, config_view, cache)?;
        print_doc(json, &d, output::subsystem_detail_text(&d))
    }

    /// The provider's view of the configured subsystems `only` (all when `None`), secrets read.
    fn sendtargets_config(
        &self,
        config: &Config,
        only: Option<&str>,
    ) -> CliResult<Vec<SendTargetsSubsystem>> {
        let mut out = Vec::new();
        for c in &config.subsystems {
            if only.is_some_and(|n| n != c.name) {
                continue;
            }
            if c.provider != PROVIDER_KIND {
                return Err(CliError::with_cause(
                    Hresult::E_INVALIDARG,
                    subject(&c.name),
                    format!(
                        "unknown provider {:?} (vdsadm knows {PROVIDER_KIND:?})",
                        c.provider
                    ),
                ));
            }
            let mut portals = Vec::new();
            for p in &c.portals {
                portals.push(p.parse::<DiscoveryPortal>().map_err(|e| {
                    CliError::with_cause(Hresult::E_INVALIDARG, subject(&c.name), e.to_string())
                })?);
            }
            let cred = |user: &Option<String>, secret: &Option<String>| -> CliResult<_> {
                match (user, secret) {
                    (Some(u), Some(s)) => {
                        let secret = self.store.read_secret(s).map_err(|e| {
                            CliError::with_cause(e.hresult(), subject(&c.name), e.to_string())
                        })?;
                        Ok(Some(iscsi_client::ChapCredentials::new(
                            u.clone(),
                            iscsi_client::Secret::new(secret.expose().to_vec()),
                        )))
                    }
                    _ => Ok(None),
                }
            };
            out.push(SendTargetsSubsystem {
                name: c.name.clone(),
                portals,
                initiator_name: c.initiator_name.clone(),
                chap: cred(&c.chap_user, &c.chap_secret)?,
                mutual: cred(&c.mutual_user, &c.mutual_secret)?,
            });
        }
        Ok(out)
    }

    fn backend(
        &self,
        subsystems: Vec<SendTargetsSubsystem>,
        bar: &Bar,
    ) -> CliResult<SendTargetsBackend> {
        for s in &subsystems {
            let portals: Vec<String> = s.portals.iter().map(ToString::to_string).collect();
            tracing::info!(subsystem = %s.name, portals = %portals.join(", "), "will contact");
        }
        let progress_bar = bar.clone();
        let options = SendTargetsOptions {
            progress: Some(Arc::new(move |p: vds_providers::sendtargets::Progress| {
                progress_bar.set(p.done, p.total)
            })),
            ..SendTargetsOptions::default()
        };
        SendTargetsBackend::new(subsystems, options).map_err(provider_error)
    }

    /// The locks of every configured subsystem, fail fast.
    fn lock_all(&self, config: &Config) -> CliResult<SubsystemLock> {
        let names: Vec<&str> = config.subsystems.iter().map(|s| s.name.as_str()).collect();
        let lock = self.store.lock_subsystems(&names).map_err(store_error)?;
        if let Some(ms) = std::env::var(TEST_HOLD_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        Ok(lock)
    }

    fn report(
        &self,
        op: &str,
        provider: &HwProvider,
        n: usize,
        kept: Option<String>,
    ) -> OperationReport {
        OperationReport {
            operation: op.to_string(),
            cache_health: view::health_label(provider.cache_health()),
            notifications: n,
            corrupt_cache_kept_at: kept,
            subsystems: view::refreshed(&provider.export()),
        }
    }

    fn refresh(&self, json: bool) -> CliResult<Printed> {
        let config = self.config()?;
        let _lock = self.lock_all(&config)?;
        let cached = match self.store.load_cache() {
            Ok(c) => c,
            Err(e @ StoreError::CacheCorrupt { .. }) => {
                // The model answers for a corrupt cache: refresh alone cannot clear it.
                let loaded = corrupt_provider(e.to_string());
                let hr = loaded
                    .provider
                    .refresh()
                    .err()
                    .unwrap_or(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT);
                return Err(CliError::new(
                    hr,
                    "provider cache",
                    loaded.corrupt.as_deref(),
                ));
            }
            Err(e) => return Err(store_error(e)),
        };
        let bar = Bar::new(cached.subsystems.len(), "refresh");
        let backend = self.backend(self.sendtargets_config(&config, None)?, &bar)?;
        let (provider, problem) = HwProvider::from_cache(backend, cached.subsystems, cached.health);
        let result = provider.refresh();
        bar.finish();
        let batch = result.map_err(|hr| {
            let why = problem.map(|p| format!("the cached picture breaks a rule: {p}"));
            CliError::new(hr, "provider cache", why.as_deref()).with_subject_for(hr)
        })?;
        let snaps = provider.export();
        self.store
            .save_subsystems(&snaps, provider.cache_health())
            .map_err(store_error)?;
        let report = self.report("refresh", &provider, batch.len(), None);
        print_doc(json, &report, output::operation_text(&report))
    }

    fn reenumerate(&self, json: bool) -> CliResult<Printed> {
        let config = self.config()?;
        let _lock = self.lock_all(&config)?;
        let mut kept = None;
        let (snaps, health) = match self.store.load_cache() {
            Ok(c) => (c.subsystems, c.health),
            Err(StoreError::CacheCorrupt { path, reason }) => {
                tracing::warn!(cache = %path.display(), %reason, "the cache is corrupt: rebuilding it");
                kept = self.store.rebuild_cache().map_err(store_error)?;
                (Vec::new(), CacheHealth::Corrupt)
            }
            Err(e) => return Err(store_error(e)),
        };
        let bar = Bar::new(config.subsystems.len(), "reenumerate");
        let backend = self.backend(self.sendtargets_config(&config, None)?, &bar)?;
        let (provider, problem) = HwProvider::from_cache(backend, snaps, health);
        if problem.is_some() && kept.is_none() {
            // The rows loaded but break a model rule: keep them aside too before replacing them.
            kept = self.store.rebuild_cache().map_err(store_error)?;
        }
        let result = provider.reenumerate();
        bar.finish();
        let batch = result.map_err(|hr| CliError::new(hr, "provider", None))?;
        // Not `save_cache`: a subsystem registered by another process since `config` was read is
        // in neither `config` nor the export, and must not be dropped from the cache.
        self.store
            .save_enumeration(&provider.export(), provider.cache_health())
            .map_err(store_error)?;
        let kept = kept.map(|p| p.display().to_string());
        let report = self.report("reenumerate", &provider, batch.len(), kept);
        print_doc(json, &report, output::operation_text(&report))
    }

    fn add(
        &self,
        json: bool,
        name: &str,
        portals: &[PortalArg],
        creds: &Credentials,
        no_refresh: bool,
    ) -> CliResult<Printed> {
        vds_store::validate_name("subsystem", name).map_err(store_error)?;
        let _lock = self.store.lock_subsystems(&[name]).map_err(store_error)?;
        if self.config()?.subsystem(name).is_some() {
            return Err(store_error(StoreError::NameExists { name: name.into() }));
        }
        let mut cfg = SubsystemConfig::new(name, PROVIDER_KIND);
        cfg.portals = portals.iter().map(ToString::to_string).collect();
        cfg.initiator_name = creds.initiator_name.clone();
        let mut written = Vec::new();
        let mut put =
            |kind: &str, c: &crate::args::ChapCredential| -> CliResult<(String, String)> {
                let secret = secret_name(name, kind);
                self.store
                    .put_secret(&secret, c.secret.expose())
                    .map_err(store_error)?;
                written.push(secret.clone());
                Ok((c.user.clone(), secret))
            };
        let registered = (|| {
            if let Some(c) = &creds.chap {
                let (u, s) = put("chap", c)?;
                cfg.chap_user = Some(u);
                cfg.chap_secret = Some(s);
            }
            if let Some(c) = &creds.mutual {
                let (u, s) = put("mutual", c)?;
                cfg.mutual_user = Some(u);
                cfg.mutual_secret = Some(s);
            }
            self.store.add_subsystem(cfg.clone()).map_err(store_error)
        })();
        if let Err(e) = registered {
            for s in &written {
                let _ = self.store.remove_secret(s);
            }
            return Err(e);
        }
        tracing::info!(subsystem = name, "registered");
        let mut subsystem = None;
        if !no_refresh {
            let config = self.config()?;
            let bar = Bar::new(1, "add");
            let backend = self.backend(self.sendtargets_config(&config, Some(name))?, &bar)?;
            let (provider, _) = HwProvider::from_cache(backend, Vec::new(), CacheHealth::Good);
            let err = |hr| CliError::new(hr, subject(name), None);
            provider.reenumerate().map_err(err)?;
            provider.refresh().map_err(err)?;
            bar.finish();
            let snaps = provider.export();
            match self.store.cache_health() {
                Ok(health) => self
                    .store
                    .save_subsystems(&snaps, health)
                    .map_err(store_error)?,
                Err(e @ StoreError::CacheCorrupt { .. }) => {
                    return Err(CliError::new(
                        Hresult::VDS_E_PROVIDER_CACHE_CORRUPT,
                        "provider cache",
                        Some(&format!(
                            "subsystem {name:?} was registered but not cached: {e}"
                        )),
                    ));
                }
                Err(e) => return Err(store_error(e)),
            }
            subsystem = view::refreshed(&snaps).into_iter().find(|s| s.name == name);
            if let Some(s) = &subsystem {
                if s.status != SubSystemStatus::Online.label() {
                    eprintln!(
                        "vdsadm: warning: subsystem {name:?} is {}{}",
                        s.status,
                        s.detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        let report = AddReport {
            name: name.to_string(),
            portals: cfg.portals.clone(),
            refreshed: !no_refresh,
            subsystem,
        };
        let mut text = format!("Subsystem {name:?} registered.\n");
        text.push_str(&output::refreshed_table(report.subsystem.as_slice()));
        print_doc(json, &report, text)
    }

    fn remove(&self, json: bool, name: &str) -> CliResult<Printed> {
        let _lock = self.store.lock_subsystems(&[name]).map_err(store_error)?;
        let removed = self.store.remove_subsystem(name).map_err(store_error)?;
        for secret in [&removed.chap_secret, &removed.mutual_secret]
            .into_iter()
            .flatten()
        {
            match self.store.remove_secret(secret) {
                Ok(()) | Err(StoreError::Secret { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        let report = RemoveReport {
            name: name.to_string(),
            removed: true,
        };
        print_doc(json, &report, format!("Subsystem {name:?} removed.\n"))
    }
}

impl CliError {
    /// Errors of a provider-wide operation are about the provider cache when the cache is the
    /// cause, and about the provider otherwise.
    fn with_subject_for(mut self, hr: Hresult) -> CliError {
        if hr != Hresult::VDS_E_PROVIDER_CACHE_CORRUPT {
            self.subject = "provider".into();
        }
        self
    }
}

fn host_text(host: &iscsi_client::Host) -> String {
    match host {
        iscsi_client::Host::Ipv4(a) => a.to_string(),
        iscsi_client::Host::Ipv6 { addr, zone: None } => addr.to_string(),
        iscsi_client::Host::Ipv6 {
            addr,
            zone: Some(z),
        } => format!("{addr}%{z}"),
        iscsi_client::Host::Name(n) => n.clone(),
    }
}

/// `discover`: one SendTargets exchange with `portal`; no store.
fn discover(json: bool, portal: &PortalArg, creds: &Credentials) -> CliResult<Printed> {
    let mut opts = iscsi_client::DiscoveryOptions::default();
    if let Some(n) = &creds.initiator_name {
        opts.initiator_name = n.clone();
    }
    let chap = |c: &crate::args::ChapCredential| {
        iscsi_client::ChapCredentials::new(
            c.user.clone(),
            iscsi_client::Secret::new(c.secret.expose().to_vec()),
        )
    };
    opts.chap = creds.chap.as_ref().map(chap);
    opts.mutual = creds.mutual.as_ref().map(chap);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::with_cause(Hresult::from_io_error(&e), "runtime", e.to_string()))?;
    tracing::info!(portal = %portal, "SendTargets discovery");
    let p = &portal.portal;
    let result = runtime
        .block_on(iscsi_client::discover(&p.host, p.port, &opts))
        .map_err(|e| {
            CliError::with_cause(
                e.hresult(),
                format!("portal {portal}"),
                format!("{}: {}", e.phase(), e.kind()),
            )
        })?;
    let targets: Vec<DiscoveredTarget> = result
        .targets
        .iter()
        .map(|t| DiscoveredTarget {
            name: t.name.clone(),
            addresses: t
                .addresses_or(&result.portal)
                .iter()
                .map(|a| DiscoveredAddress {
                    address: host_text(&a.host),
                    port: a.port,
                    tag: a.tag,
                })
                .collect(),
        })
        .collect();
    print_doc(
        json,
        &targets,
        output::discovered_text(&portal.to_string(), &targets),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn secret_names_are_valid() {
        assert_eq!(secret_name("lab", "chap"), "lab.chap");
        let odd = secret_name("my array/1", "mutual");
        assert!(vds_store::validate_secret_name(&odd).is_ok(), "{odd}");
        assert_ne!(odd, secret_name("my array/2", "mutual"));
    }
}
