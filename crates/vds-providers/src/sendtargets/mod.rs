//! The SendTargets provider: each configured subsystem is an array reached through one or more
//! discovery portals; its portals, targets and portal groups are what iSCSI SendTargets discovery
//! says, and the status of each portal is what a discovery login to it says. It is discovery-only:
//! [`ProviderBackend::apply`] answers `VDS_E_NOT_SUPPORTED`, and it never logs in to a target.
//!
//! # What `reenumerate` and `refresh` do
//!
//! [`ProviderBackend::reenumerate`] discovers every configured subsystem; a subsystem the model knew
//! that is no longer configured departs. [`ProviderBackend::refresh`] discovers the subsystems the
//! model knows that are still configured; one that is no longer configured comes back `OFFLINE`
//! with its previous objects and the detail "no longer configured" (a configured subsystem the model
//! does not know is found by `reenumerate` only).
//!
//! All subsystems run concurrently, and so do all discovery portals of a subsystem; then the
//! portals that only appeared in `TargetAddress` answers are probed (a discovery login and logout),
//! concurrently (at most [`MAX_PROBES_PER_SUBSYSTEM`] per subsystem). At most
//! [`SendTargetsOptions::concurrency`] connections are open at once.
//!
//! # How answers become objects
//!
//! - **Portals**: every configured discovery portal (in configured order, answered or not), then
//!   every other address seen in a `TargetAddress`, sorted (IPv4, IPv6, names; then address, then
//!   port), so ids and enumeration order are stable. Names stay `VDS_IPT_TEXT`; an IPv6 zone becomes
//!   the scope id (a number as is, an interface name looked up here, 0 if unknown). A portal that
//!   stops appearing in every answer and is not a discovery portal departs.
//! - **Targets**: every `TargetName`, sorted by name. A target without `TargetAddress` is reached at
//!   the discovery portal that listed it. Friendly name, CHAP and LUN count are not part of
//!   SendTargets: empty, `false`, 0.
//! - **Portal groups**: `(target, tag)`. An address without a tag gets the `TargetPortalGroupTag`
//!   of the discovery login that reported it, or [`DEFAULT_PORTAL_GROUP_TAG`] (1) when the login
//!   sent none (RFC 7143 requires the tag; arrays that omit it have one group). An array that puts a
//!   portal in two groups of one target is logged (`warn`) and the first group keeps it.
//!
//! # Status
//!
//! | connection result | portal status |
//! |---|---|
//! | discovery answered / probe logged in | `ONLINE` |
//! | no connection, timeout, connection reset | `OFFLINE` |
//! | login status 0x0301 service unavailable, 0x0302 out of resources | `NOT_READY` |
//! | login status 0x0300 target error, any other refusal, a protocol violation | `FAILED` |
//! | authentication (0x0201) or authorization (0x0202) refused, mutual CHAP proof failed | `FAILED` |
//!
//! An authentication failure marks the portal `FAILED` rather than `ONLINE`: the portal is up, but
//! unusable with the configured credentials, and `FAILED` (not merely disconnected) is what tells
//! the administrator to act. Probes use the subsystem's discovery credentials.
//!
//! The subsystem is `ONLINE` when every discovery portal answered (health `HEALTHY` if every portal
//! is `ONLINE`, else `DEGRADED`), `PARTIALLY_MANAGED` when some did. When none did: `FAILED` if the
//! array refused us (credentials, or a target or protocol error; the model's queries then answer
//! `VDS_E_OBJECT_STATUS_FAILED`), else `NOT_READY` if a portal was busy, else `OFFLINE`. With no
//! answer, the previous portals and targets are kept, discovery portals get their own status and
//! every other portal is marked `OFFLINE`, so the administrator still sees what was there. `detail`
//! names each failed discovery portal and its cause (`127.0.0.1:3260: authentication failure (login
//! status 0x0201)`);
//! it never contains a secret. Flags: `SUPPORTS_AUTH_CHAP | SUPPORTS_AUTH_MUTUAL_CHAP`; friendly
//! name: the configured name; identification: the discovery portals joined by `", "`.
//!
//! # Threads
//!
//! The backend owns a small tokio runtime (two worker threads) and the seam is synchronous:
//! `reenumerate` and `refresh` block the calling thread until every discovery is done. They are not
//! meant to be called from inside another tokio runtime (use `spawn_blocking` there); if they are,
//! the work runs on a scoped helper thread instead of panicking, still blocking the caller.

mod discover;
mod merge;
mod portal;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use iscsi_client::{ChapCredentials, DiscoveryOptions};
use vds_model::{
    Hresult, HwProviderType, MAX_FRIENDLY_NAME_BYTES, ProviderBackend, ProviderInfo,
    SubSystemSnapshot,
};

pub use merge::DEFAULT_PORTAL_GROUP_TAG;
pub use portal::{DEFAULT_PORT, DiscoveryPortal, DiscoveryPortalError, vds_address};

use crate::ProviderError;

/// The provider's name (its id is derived from it).
pub const PROVIDER_NAME: &str = "vds-sendtargets";

/// The default for [`SendTargetsOptions::concurrency`].
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The most portals probed per subsystem and run. The addresses come from the array's answer, so
/// this bounds the connections an array (or whoever answers in its place) can make us open; the
/// portals past it (in portal order) are reported with status `UNKNOWN`.
pub const MAX_PROBES_PER_SUBSYSTEM: usize = 256;

/// One array, as the administrator configured it.
///
/// `Debug` never shows the CHAP secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendTargetsSubsystem {
    /// The subsystem's name: its key in the model and its friendly name. Unique, not empty, at most
    /// 255 bytes.
    pub name: String,
    /// Where to ask for targets; at least one, no address twice.
    pub portals: Vec<DiscoveryPortal>,
    /// Our iSCSI name for this array; `None` uses [`SendTargetsOptions::discovery`]'s.
    pub initiator_name: Option<String>,
    /// Discovery CHAP (our name and secret); `None` uses [`SendTargetsOptions::discovery`]'s.
    pub chap: Option<ChapCredentials>,
    /// Mutual CHAP (what the array must prove); `None` uses [`SendTargetsOptions::discovery`]'s.
    /// Needs `chap`.
    pub mutual: Option<ChapCredentials>,
}

/// How far a `reenumerate`/`refresh` has got, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Subsystems finished (discovery, probes and merge).
    pub done: usize,
    /// Subsystems in this run.
    pub total: usize,
}

/// A progress callback. It runs on the provider's runtime threads: keep it short and never block.
pub type ProgressFn = dyn Fn(Progress) + Send + Sync;

/// How the provider talks to arrays.
#[derive(Clone)]
pub struct SendTargetsOptions {
    /// Timeouts, limits and the default initiator name and credentials of every connection.
    pub discovery: DiscoveryOptions,
    /// The most connections (discoveries and probes) open at once, across all subsystems; at least 1.
    /// Default [`DEFAULT_CONCURRENCY`] (64).
    pub concurrency: usize,
    /// Called each time a subsystem is finished.
    pub progress: Option<Arc<ProgressFn>>,
}

impl Default for SendTargetsOptions {
    fn default() -> Self {
        SendTargetsOptions {
            discovery: DiscoveryOptions::default(),
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
        }
    }
}

impl fmt::Debug for SendTargetsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendTargetsOptions")
            .field("discovery", &self.discovery)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

/// A configured subsystem with the options its connections use.
pub(crate) struct Configured {
    pub(crate) config: SendTargetsSubsystem,
    pub(crate) options: DiscoveryOptions,
}

/// The SendTargets provider backend. Give it to [`vds_model::HwProvider::new`].
///
/// ```no_run
/// use vds_model::HwProvider;
/// use vds_providers::sendtargets::{SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let array = SendTargetsSubsystem {
///     name: "array-1".into(),
///     portals: vec!["192.0.2.10".parse()?, "[2001:db8::10]:3260".parse()?],
///     initiator_name: None,
///     chap: None,
///     mutual: None,
/// };
/// let backend = SendTargetsBackend::new(vec![array], SendTargetsOptions::default())?;
/// let provider = HwProvider::new(backend);
/// provider.initialize()?;
/// provider.reenumerate()?;
/// for portal in provider.sub_system_by_key("array-1")?.query_portals()? {
///     let p = portal.get_properties()?;
///     println!("{} {}", p.address, p.status);
/// }
/// # Ok(())
/// # }
/// ```
pub struct SendTargetsBackend {
    subsystems: Vec<Arc<Configured>>,
    by_name: HashMap<String, usize>,
    concurrency: usize,
    progress: Option<Arc<ProgressFn>>,
    // An `Option` only so that `Drop` can take it.
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for SendTargetsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendTargetsBackend")
            .field(
                "subsystems",
                &self
                    .subsystems
                    .iter()
                    .map(|s| &s.config)
                    .collect::<Vec<_>>(),
            )
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: String) -> ProviderError {
    ProviderError::InvalidConfig(msg)
}

impl SendTargetsBackend {
    /// A backend for `subsystems`, with its own runtime. Touches no network.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfig`] for an empty, duplicate or over-long (255 bytes) subsystem
    /// name, a subsystem without discovery portals or with one twice, mutual CHAP without CHAP, an
    /// empty initiator name, or `concurrency` 0; [`ProviderError::Runtime`] if the runtime's threads
    /// cannot be started.
    pub fn new(
        subsystems: Vec<SendTargetsSubsystem>,
        options: SendTargetsOptions,
    ) -> Result<SendTargetsBackend, ProviderError> {
        if options.concurrency == 0 {
            return Err(invalid("concurrency must be at least 1".into()));
        }
        let mut by_name = HashMap::new();
        let mut configured = Vec::with_capacity(subsystems.len());
        for config in subsystems {
            let name = &config.name;
            if name.trim().is_empty() {
                return Err(invalid("a subsystem has an empty name".into()));
            }
            if name.len() > MAX_FRIENDLY_NAME_BYTES {
                return Err(invalid(format!(
                    "subsystem name {name:?} is longer than {MAX_FRIENDLY_NAME_BYTES} bytes"
                )));
            }
            if by_name.insert(name.clone(), configured.len()).is_some() {
                return Err(invalid(format!("subsystem {name:?} is configured twice")));
            }
            if config.portals.is_empty() {
                return Err(invalid(format!(
                    "subsystem {name:?} has no discovery portal"
                )));
            }
            let mut seen = HashSet::new();
            for p in &config.portals {
                let key = p
                    .vds_address()
                    .ok_or_else(|| invalid(format!("subsystem {name:?}: portal {p} is invalid")))?
                    .canonical_key();
                if !seen.insert(key) {
                    return Err(invalid(format!(
                        "subsystem {name:?}: discovery portal {p} is listed twice"
                    )));
                }
            }
            let mut opts = options.discovery.clone();
            if let Some(n) = &config.initiator_name {
                opts.initiator_name = n.clone();
            }
            if let Some(c) = &config.chap {
                opts.chap = Some(c.clone());
            }
            if let Some(m) = &config.mutual {
                opts.mutual = Some(m.clone());
            }
            if opts.initiator_name.trim().is_empty() {
                return Err(invalid(format!(
                    "subsystem {name:?}: the initiator name is empty"
                )));
            }
            if opts.mutual.is_some() && opts.chap.is_none() {
                return Err(invalid(format!(
                    "subsystem {name:?}: mutual CHAP needs CHAP credentials as well"
                )));
            }
            configured.push(Arc::new(Configured {
                config,
                options: opts,
            }));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vds-sendtargets")
            .enable_io()
            .enable_time()
            .build()
            .map_err(ProviderError::Runtime)?;
        Ok(SendTargetsBackend {
            subsystems: configured,
            by_name,
            concurrency: options.concurrency,
            progress: options.progress,
            runtime: Some(runtime),
        })
    }

    /// The configured subsystems, in order.
    pub fn subsystems(&self) -> impl Iterator<Item = &SendTargetsSubsystem> {
        self.subsystems.iter().map(|s| &s.config)
    }

    /// Discovers `jobs` (configured subsystem, previous picture) on the runtime; see the module doc
    /// for why a helper thread is used inside another runtime.
    fn run(
        &self,
        jobs: Vec<(Arc<Configured>, Option<SubSystemSnapshot>)>,
    ) -> Result<Vec<SubSystemSnapshot>, Hresult> {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(Hresult::E_UNEXPECTED);
        };
        let work = discover::run_all(jobs, self.concurrency, self.progress.clone());
        if tokio::runtime::Handle::try_current().is_ok() {
            // `Runtime::block_on` panics on a thread that is already driving a runtime.
            std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(work))
                    .join()
                    .unwrap_or(Err(Hresult::E_UNEXPECTED))
            })
        } else {
            runtime.block_on(work)
        }
    }

    fn configured(&self, key: &str) -> Option<&Arc<Configured>> {
        self.by_name.get(key).and_then(|i| self.subsystems.get(*i))
    }
}

impl Drop for SendTargetsBackend {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its workers stop, which tokio forbids inside another
        // runtime; there, let them stop in the background.
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                drop(runtime);
            }
        }
    }
}

impl ProviderBackend for SendTargetsBackend {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: PROVIDER_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    /// Discovers every configured subsystem, in configured order; known subsystems that are no
    /// longer configured are left out (they depart).
    fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Hresult> {
        let jobs = self
            .subsystems
            .iter()
            .map(|c| {
                let prev = previous.iter().find(|p| p.key == c.config.name).cloned();
                (c.clone(), prev)
            })
            .collect();
        self.run(jobs)
    }

    /// Discovers the known subsystems that are still configured; the others come back `OFFLINE`
    /// ("no longer configured").
    fn refresh(&self, previous: &[SubSystemSnapshot]) -> Result<Vec<SubSystemSnapshot>, Hresult> {
        let jobs: Vec<_> = previous
            .iter()
            .filter_map(|p| {
                self.configured(&p.key)
                    .map(|c| (c.clone(), Some(p.clone())))
            })
            .collect();
        let mut fresh: HashMap<String, SubSystemSnapshot> = self
            .run(jobs)?
            .into_iter()
            .map(|s| (s.key.clone(), s))
            .collect();
        Ok(previous
            .iter()
            .map(|p| fresh.remove(&p.key).unwrap_or_else(|| merge::retired(p)))
            .collect())
    }
}
