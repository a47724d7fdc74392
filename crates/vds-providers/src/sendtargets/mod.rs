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
//! A subsystem whose registration cannot be used (a discovery portal that does not parse, no
//! portal, a secret that cannot be read, mutual CHAP without one-way CHAP) does not stop the others:
//! it is reported `FAILED`, its previous objects kept, with the problem as its detail.
//!
//! # HRESULTs
//!
//! [`error_code`] maps what the iSCSI client reports to the code a VDS caller sees, in one place:
//!
//! | `iscsi_client::ErrorKind` | HRESULT |
//! |---|---|
//! | `Resolve` (DNS name or IPv6 zone) | `HRESULT_FROM_WIN32(WSAHOST_NOT_FOUND 11001)` = 0x80072AF9 |
//! | `Connect(io)`, `Io(io)` | `Hresult::from_io_error` (refused → 0x8007274D, unreachable → 0x80072751, ...) |
//! | `Timeout { .. }` (any deadline) | `HRESULT_FROM_WIN32(WSAETIMEDOUT 10060)` = 0x8007274C |
//! | `Closed { .. }` (target hung up early) | `HRESULT_FROM_WIN32(WSAECONNRESET 10054)` = 0x80072746 |
//! | `Login`, `AuthenticationFailed`, `MutualAuthenticationFailed`, `RedirectLoop`, `TooManyRedirects` | `VDS_E_ISCSI_LOGIN_FAILED` 0x80042708 |
//! | `Protocol` (garbage or protocol violation, Reject PDU) | `VDS_E_BAD_PROVIDER_DATA` 0x80042441 |
//! | `AnswerTooLarge`, `TooManyPdus` (caps exceeded) | `VDS_E_BAD_PROVIDER_DATA` 0x80042441 (the provider's data is unusable; VDS has no "too large" code) |
//! | `InvalidOptions` | `E_INVALIDARG` 0x80070057 |
//!
//! # Runtime
//!
//! The backend owns no runtime: its methods are `async` and run on the caller's tokio runtime (the
//! service's), spawning one task per subsystem and per connection there.

mod discover;
mod kind;
mod merge;
mod portal;

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use iscsi_client::{ChapCredentials, DiscoveryOptions};
use tokio::sync::Semaphore;
use vds_model::{
    Error, Fresh, Hresult, HwProviderType, MAX_FRIENDLY_NAME_BYTES, ProviderBackend, ProviderInfo,
    SubSystemSnapshot,
};

pub(crate) use discover::probe_portals;
pub use discover::{discover_portal, error_code};
pub use kind::SendTargetsKind;
pub use merge::DEFAULT_PORTAL_GROUP_TAG;
#[cfg(test)]
pub(crate) use merge::FailureClass;
#[doc(hidden)]
pub use merge::bench;
pub(crate) use merge::{Failure, ProbeTarget, sort_key};
pub use portal::{DEFAULT_PORT, DiscoveryPortal, DiscoveryPortalError, vds_address};

/// The name of the SendTargets provider of vds 0.1, from which the ids of its subsystems are
/// derived; a provider of that name keeps them.
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
#[derive(Clone, Debug)]
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
/// A subsystem ready to discover: what the merge reads of its configuration, and its connection
/// options, into which its initiator name and credentials are folded (so a fleet's backend keeps
/// 72 bytes a subsystem here, not the whole configuration).
pub(crate) struct Configured {
    pub(crate) name: String,
    pub(crate) portals: Vec<DiscoveryPortal>,
    /// Shared by every subsystem that changes none of the defaults: a fleet is mostly those.
    pub(crate) options: Arc<DiscoveryOptions>,
}

/// A subsystem whose registration cannot be used: what it is called, what identifies it, and why.
#[derive(Clone, Debug)]
pub struct BrokenSubsystem {
    /// Its name (key).
    pub name: String,
    /// Its discovery portals as registered (for the snapshot's identification).
    pub identification: String,
    /// What is wrong.
    pub problem: Error,
}

/// One configured subsystem, in 16 bytes: a fleet's backend holds thousands, nearly all
/// ready, and a broken one's reason (an [`Error`]) is large.
enum Entry {
    Ready(Arc<Configured>),
    Broken(Box<BrokenSubsystem>),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Ready(c) => &c.name,
            Entry::Broken(b) => &b.name,
        }
    }
}

/// The SendTargets provider backend. Give it to [`vds_model::HwProvider::new`].
///
/// ```no_run
/// use vds_model::HwProvider;
/// use vds_providers::sendtargets::{SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let array = SendTargetsSubsystem {
///     name: "array-1".into(),
///     portals: vec!["192.0.2.10".parse()?, "[2001:db8::10]:3260".parse()?],
///     initiator_name: None,
///     chap: None,
///     mutual: None,
/// };
/// let backend = SendTargetsBackend::new("vds-sendtargets", vec![array], SendTargetsOptions::default())?;
/// let provider = HwProvider::new(backend);
/// provider.initialize()?;
/// provider.reenumerate().await?;
/// for portal in provider.sub_system_by_key("array-1")?.query_portals()? {
///     let p = portal.get_properties()?;
///     println!("{} {}", p.address, p.status);
/// }
/// # Ok(())
/// # }
/// ```
pub struct SendTargetsBackend {
    name: String,
    subsystems: Vec<Entry>,
    /// Where each name is in `subsystems`, by the name's hash: the names themselves stay in the
    /// entries, not copied into the index (a fleet's backend holds thousands).
    by_name: hashbrown::HashTable<usize>,
    hasher: std::hash::RandomState,
    permits: Arc<Semaphore>,
    progress: Option<Arc<ProgressFn>>,
}

impl fmt::Debug for SendTargetsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendTargetsBackend")
            .field("name", &self.name)
            .field(
                "subsystems",
                &self.subsystems.iter().map(Entry::name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn invalid(msg: String) -> Error {
    Error::new(Hresult::E_INVALIDARG).because(msg)
}

/// Checks one subsystem's configuration and resolves its connection options.
fn options_of(
    config: &SendTargetsSubsystem,
    defaults: &Arc<DiscoveryOptions>,
) -> Result<Arc<DiscoveryOptions>, Error> {
    let name = &config.name;
    if name.trim().is_empty() {
        return Err(invalid("a subsystem has an empty name".into()));
    }
    if name.len() > MAX_FRIENDLY_NAME_BYTES {
        return Err(invalid(format!(
            "subsystem name {name:?} is longer than {MAX_FRIENDLY_NAME_BYTES} bytes"
        )));
    }
    if config.portals.is_empty() {
        return Err(invalid("it has no discovery portal".into()));
    }
    let mut seen = HashSet::new();
    for p in &config.portals {
        let key = p
            .vds_address()
            .ok_or_else(|| invalid(format!("portal {p} is invalid")))?
            .canonical_key();
        if !seen.insert(key) {
            return Err(invalid(format!("discovery portal {p} is listed twice")));
        }
    }
    let mut opts = defaults.clone();
    if config.initiator_name.is_some() || config.chap.is_some() || config.mutual.is_some() {
        let own = Arc::make_mut(&mut opts);
        if let Some(n) = &config.initiator_name {
            own.initiator_name = n.clone();
        }
        if let Some(c) = &config.chap {
            own.chap = Some(c.clone());
        }
        if let Some(m) = &config.mutual {
            own.mutual = Some(m.clone());
        }
    }
    if opts.initiator_name.trim().is_empty() {
        return Err(invalid("the initiator name is empty".into()));
    }
    if opts.mutual.is_some() && opts.chap.is_none() {
        return Err(invalid(
            "mutual CHAP needs one-way CHAP credentials as well".into(),
        ));
    }
    Ok(opts)
}

impl SendTargetsBackend {
    /// A backend named `name` (the provider's name; its id and every object id under it are derived
    /// from it) for `subsystems`. Touches no network.
    ///
    /// # Errors
    /// `E_INVALIDARG` for a name used twice or `concurrency` 0. A subsystem whose configuration
    /// cannot be used (empty or over-long name, no discovery portal or one twice, mutual CHAP
    /// without CHAP, an empty initiator name) does not fail the backend: it is reported `FAILED`
    /// with the reason (see [`with_broken`](Self::with_broken)).
    pub fn new(
        name: impl Into<String>,
        subsystems: impl IntoIterator<Item = SendTargetsSubsystem>,
        options: SendTargetsOptions,
    ) -> Result<SendTargetsBackend, Error> {
        if options.concurrency == 0 {
            return Err(invalid("concurrency must be at least 1".into()));
        }
        let subsystems = subsystems.into_iter();
        let mut backend = SendTargetsBackend {
            name: name.into(),
            subsystems: Vec::with_capacity(subsystems.size_hint().0),
            by_name: hashbrown::HashTable::new(),
            hasher: std::hash::RandomState::new(),
            permits: Arc::new(Semaphore::new(options.concurrency)),
            progress: options.progress,
        };
        let defaults = Arc::new(options.discovery);
        for config in subsystems {
            let entry = match options_of(&config, &defaults) {
                Ok(options) => Entry::Ready(Arc::new(Configured {
                    name: config.name,
                    portals: config.portals,
                    options,
                })),
                Err(problem) => Entry::Broken(Box::new(BrokenSubsystem {
                    identification: config
                        .portals
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    name: config.name,
                    problem,
                })),
            };
            backend.push(entry)?;
        }
        // Grown as the subsystems came, with no count ahead: kept at their number.
        backend.subsystems.shrink_to_fit();
        Ok(backend)
    }

    /// Adds a subsystem whose registration cannot be used: `refresh` and `reenumerate` report it
    /// `FAILED` with the problem as its detail, and keep its previous objects.
    pub fn with_broken(mut self, broken: BrokenSubsystem) -> Result<SendTargetsBackend, Error> {
        self.push(Entry::Broken(Box::new(broken)))?;
        Ok(self)
    }

    fn push(&mut self, entry: Entry) -> Result<(), Error> {
        let (subsystems, hasher) = (&self.subsystems, &self.hasher);
        let name = entry.name();
        match self.by_name.entry(
            hasher.hash_one(name),
            |&i| subsystems[i].name() == name,
            |&i| hasher.hash_one(subsystems[i].name()),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => {
                return Err(invalid(format!("subsystem {name:?} is configured twice")));
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(subsystems.len());
            }
        }
        self.subsystems.push(entry);
        Ok(())
    }

    /// The names of the configured subsystems, in order.
    pub fn subsystem_names(&self) -> impl Iterator<Item = &str> {
        self.subsystems.iter().map(Entry::name)
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        let i = self.by_name.find(self.hasher.hash_one(key), |&i| {
            self.subsystems[i].name() == key
        })?;
        self.subsystems.get(*i)
    }

    /// The picture of one entry.
    async fn picture(
        &self,
        entry: &Entry,
        previous: Option<&SubSystemSnapshot>,
    ) -> SubSystemSnapshot {
        match entry {
            Entry::Ready(c) => discover::subsystem(c, previous, &self.permits).await,
            Entry::Broken(b) => merge::broken(b, previous),
        }
    }
}

#[async_trait::async_trait]
impl ProviderBackend for SendTargetsBackend {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    /// Discovers every configured subsystem concurrently, answering in configured order; known
    /// subsystems that are no longer configured are left out (they depart).
    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        let total = self.subsystems.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let runs = self.subsystems.iter().map(|entry| {
            let prev = previous.iter().find(|p| p.key == entry.name());
            let done = &done;
            async move {
                let snap = self.picture(entry, prev).await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
                if let Some(report) = &self.progress {
                    report(Progress { done: n, total });
                }
                snap
            }
        });
        Ok(futures_util::future::join_all(runs).await)
    }

    /// Discovers one known subsystem; one that is no longer configured comes back `OFFLINE` ("no
    /// longer configured") with its previous picture.
    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        Ok(match self.entry(&previous.key) {
            Some(entry) => self.picture(entry, Some(previous)).await,
            None => merge::retired(previous),
        })
    }

    /// [`refresh`](Self::refresh) up to the previous picture: a subsystem one of whose discovery
    /// portals answered is a [`Fresh::Picture`]; one none answered, one whose registration cannot
    /// be used and one no longer configured keep their previous objects, and wait for them.
    async fn refresh_without_previous(&self, key: &str) -> Option<Result<Fresh, Error>> {
        let fresh = match self.entry(key) {
            Some(Entry::Ready(c)) => match discover::answer(c, &self.permits).await {
                discover::Answer::Picture(p) => Fresh::Picture(p),
                unanswered => Fresh::NeedsPrevious(Box::new(move |previous| {
                    unanswered.finish(Some(previous))
                })),
            },
            Some(Entry::Broken(b)) => {
                let b = b.clone();
                Fresh::NeedsPrevious(Box::new(move |previous| merge::broken(&b, Some(previous))))
            }
            None => Fresh::NeedsPrevious(Box::new(merge::retired)),
        };
        Some(Ok(fresh))
    }
}
