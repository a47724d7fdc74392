//! The iSNS provider: every array of an iSCSI fabric, from the fabric's iSNS server (RFC 4171).
//! Arrays register their network entities, portals, storage nodes and portal groups there; this
//! provider reads the directory and turns it into VDS subsystems, so `reenumerate` finds arrays
//! nobody typed in. It is discovery-only: [`ProviderBackend::apply`] answers
//! `VDS_E_NOT_SUPPORTED`.
//!
//! # How the directory becomes objects
//!
//! One subsystem per network entity that has at least one storage node of type Target, keyed and
//! named by its entity id (EID); its portals are the entity's portals, its targets the entity's
//! target nodes (alias as friendly name), and each target's portal groups are its portal group
//! tags (PGT) in the directory with the portals that carry them. A NULL PGT means "no access" and
//! makes no group. The exact rules (order, what is left out and said) are in `map.rs`. Entities
//! with only initiators (or only our own Control node) are not subsystems.
//!
//! # Reenumerate and refresh
//!
//! [`ProviderBackend::reenumerate`] reads the whole visible directory: one DevAttrQry for every
//! storage node, falling back (when isnsd answers status 11, its 8 KiB reply buffer being too
//! small) to a DevGetNext walk and one query per node, transparently
//! ([`isns_client::Client::query_all`]). Entities that are no longer there depart, new ones
//! arrive. Portals it has not seen before are probed; a portal it knew keeps its last status
//! (`IVdsHwProvider::Reenumerate` finds subsystems, `Refresh` refreshes their properties).
//! [`ProviderBackend::refresh`] asks the directory about one entity and probes every portal of it:
//! without a Control node, a DevAttrQry keyed on its EID (with the same fallback); as a Control
//! node, to which open-isns shows nothing through such a query, the whole query, shared by the
//! refreshes that asked while it was not yet sent (so a refresh of every subsystem reads the
//! directory once, and no refresh reads an answer older than its own request). An entity that is gone is reported
//! `OFFLINE`, its previous objects kept, until the next reenumerate removes it. When the directory
//! cannot be asked, a refresh probes the portals the subsystem had and says why in the detail.
//!
//! # Portal status
//!
//! The SendTargets provider's probe (a discovery login and logout, as our source name), with its
//! table of results: answered `ONLINE`; no connection `OFFLINE`; busy `NOT_READY`; refused or
//! broken `FAILED`. A subsystem is `ONLINE` when every portal answered, `PARTIALLY_MANAGED` when
//! some did, and `OFFLINE` when none did (or the entity registered none): registered in the
//! directory is not the same as up. At most [`MAX_PROBES_PER_SUBSYSTEM`](crate::sendtargets::MAX_PROBES_PER_SUBSYSTEM) portals are probed per
//! subsystem; the rest are `UNKNOWN`.
//!
//! # Visibility
//!
//! Without a Control node registration, we see what an unregistered source may see: under
//! open-isns's `DefaultDiscoveryDomain = 1` every node outside discovery domains, under `= 0`
//! nothing at all. An answer with no storage node at all is therefore ambiguous; it is reported
//! as one `OFFLINE` subsystem keyed `iSNS <server>` whose detail says so, never as a healthy empty
//! fabric. With `control_node`, the provider registers our entity and node (type Control) before
//! its queries (an update that renews the registration, again before the registration period the
//! server granted is half over) and sees every node; an empty answer is then an empty fabric.
//! A server with `Security = 1` wants authenticated requests, which vds does not make: open-isns
//! then ignores our requests (a deadline expires) or refuses the source (status 8); both errors
//! say that iSNS authentication is not supported.
//!
//! # Limits
//!
//! Everything accepted from the directory is bounded: the codec caps PDUs, attributes per message,
//! string lengths (iSCSI names 223 bytes, EIDs and aliases 255) and objects per query
//! ([`isns_proto`]); every exchange has a deadline, and so does a whole query
//! ([`IsnsOptions::query_deadline`]); probes are bounded per subsystem and by
//! [`IsnsOptions::concurrency`]. Text from the directory (EIDs, names, aliases) reaches the
//! terminal only through vdsadm's escaping.
//!
//! # HRESULTs
//!
//! [`error_code`] maps what the iSNS client reports, in one place:
//!
//! | `isns_client::ErrorKind` | HRESULT |
//! |---|---|
//! | `Resolve` | `HRESULT_FROM_WIN32(WSAHOST_NOT_FOUND)` 0x80072AF9 |
//! | `Connect(io)`, `Io { .. }` | `Hresult::from_io_error` (refused → 0x8007274D, …) |
//! | `Timeout { .. }` | `HRESULT_FROM_WIN32(WSAETIMEDOUT)` 0x8007274C |
//! | `Closed { .. }` | `HRESULT_FROM_WIN32(WSAECONNRESET)` 0x80072746 |
//! | `Status(8)` (source unauthorized: authentication wanted) | `VDS_E_NOT_SUPPORTED` 0x80042400 |
//! | `Status(_)` (any other) | `VDS_E_PROVIDER_FAILURE` 0x80042442 |
//! | `Malformed`, `ReplyTooLarge` | `VDS_E_BAD_PROVIDER_DATA` 0x80042441 |
//! | `InvalidRequest` | `E_INVALIDARG` 0x80070057 |
//!
//! # Live changes
//!
//! The kind's watcher ([`crate::ProviderKind::watch`], in `watch.rs`) registers for state change
//! notifications and turns each into a refresh of the entity it names, or a reenumerate when an
//! entity arrives or loses its last target. open-isns raises SCNs only for storage nodes: adding
//! or removing a portal raises none, so portal changes are seen by the next (periodic) refresh.

mod kind;
mod map;
mod watch;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iscsi_client::DiscoveryOptions;
use isns_client::{Client, ClientConfig, ErrorKind, Objects, Status};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use vds_model::{
    Error, Hresult, HwProviderType, ProviderBackend, ProviderInfo, SubSystemSnapshot, Subject,
    Win32Error,
};

pub use kind::{DEFAULT_ISNS_PORT, IsnsKind, IsnsServer, IsnsSettings};

use crate::ProgressFn;
use crate::sendtargets::{DEFAULT_CONCURRENCY, ProbeTarget, probe_portals};
use map::{EntityView, PortalState};

/// Connections to the iSNS server open at once (a refresh of every subsystem asks about each
/// entity; the server is one process).
pub const MAX_SERVER_CONNECTIONS: usize = 4;

/// How the provider talks to the server and to the portals.
#[derive(Clone)]
pub struct IsnsOptions {
    /// Deadline for connecting to the server; default 3 s.
    pub connect_timeout: Duration,
    /// Deadline for one request and its whole reply; default 5 s.
    pub exchange_timeout: Duration,
    /// Deadline for a whole query of the directory (the fallback walk may take many exchanges);
    /// default 120 s.
    pub query_deadline: Duration,
    /// Portal probes: timeouts and the initiator name (our source name).
    pub discovery: DiscoveryOptions,
    /// Probes open at once; default [`DEFAULT_CONCURRENCY`].
    pub concurrency: usize,
    /// Called as subsystems finish during a reenumerate.
    pub progress: Option<Arc<ProgressFn>>,
}

impl IsnsOptions {
    /// The defaults, probing as `source_name`.
    pub fn for_source(source_name: &str) -> IsnsOptions {
        IsnsOptions {
            connect_timeout: Duration::from_secs(3),
            exchange_timeout: Duration::from_secs(5),
            query_deadline: Duration::from_secs(120),
            discovery: DiscoveryOptions {
                initiator_name: source_name.to_owned(),
                ..DiscoveryOptions::default()
            },
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
        }
    }

    pub(crate) fn client_config(&self, source_name: &str) -> ClientConfig {
        let mut c = ClientConfig::new(source_name);
        c.connect_timeout = self.connect_timeout;
        c.exchange_timeout = self.exchange_timeout;
        c
    }
}

impl fmt::Debug for IsnsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsnsOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("exchange_timeout", &self.exchange_timeout)
            .field("query_deadline", &self.query_deadline)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// The HRESULT a VDS caller sees for what the iSNS client reports (the table is in the module
/// documentation).
pub fn error_code(kind: &ErrorKind) -> Hresult {
    match kind {
        ErrorKind::Resolve(_) => Hresult::from_win32(Win32Error::WSAHOST_NOT_FOUND.0),
        ErrorKind::Connect(e) => Hresult::from_io_error(e),
        ErrorKind::Io { source, .. } => Hresult::from_io_error(source),
        ErrorKind::Timeout { .. } => Hresult::from_win32(Win32Error::WSAETIMEDOUT.0),
        ErrorKind::Closed { .. } => Hresult::from_win32(Win32Error::WSAECONNRESET.0),
        ErrorKind::Status(Status::SOURCE_UNAUTHORIZED) => Hresult::VDS_E_NOT_SUPPORTED,
        ErrorKind::Status(_) => Hresult::VDS_E_PROVIDER_FAILURE,
        ErrorKind::Malformed(_) | ErrorKind::ReplyTooLarge { .. } => {
            Hresult::VDS_E_BAD_PROVIDER_DATA
        }
        ErrorKind::InvalidRequest(_) => Hresult::E_INVALIDARG,
        _ => Hresult::E_FAIL,
    }
}

/// What to add to a client error so the administrator knows what to do.
fn hint(kind: &ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::Status(Status::SOURCE_UNAUTHORIZED) => Some(
            "the server accepts only authenticated requests (Security = 1); iSNS authentication \
             is not supported by vds",
        ),
        ErrorKind::Timeout {
            phase: isns_client::Phase::Receive,
            ..
        } => Some(
            "a server with Security = 1 ignores unauthenticated requests without answering, and \
             iSNS authentication is not supported by vds",
        ),
        _ => None,
    }
}

/// The model error for a client error: its code ([`error_code`]), the server as subject, the
/// request and what went wrong as cause, and a hint where one helps.
pub(crate) fn client_error(server: &str, e: &isns_client::Error) -> Error {
    let mut cause = match e.function().and_then(|f| f.name()) {
        Some(f) => format!("{f}: {}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(h) = hint(e.kind()) {
        cause = format!("{cause} ({h})");
    }
    Error::new(error_code(e.kind()))
        .about(server_subject(server))
        .because(cause)
}

pub(crate) fn server_subject(server: &str) -> Subject {
    Subject::Other(format!("iSNS server {server}"))
}

/// When our Control node registration is next due.
#[derive(Clone, Copy, Debug)]
struct Registered {
    renew_at: Instant,
}

/// How long a registration may go without being renewed: half the period the server granted
/// (at least half a second), or a minute when it granted none (registrations that never expire;
/// renewing still puts back one a restarted server lost).
pub(crate) fn renew_interval(granted: Option<u32>) -> Duration {
    match granted {
        Some(p) if p > 0 => {
            Duration::from_millis(u64::from(p) * 500).max(Duration::from_millis(500))
        }
        _ => Duration::from_secs(60),
    }
}

/// What [`IsnsBackend::ask`] asks the server.
enum Ask<'a> {
    /// Every visible storage node ([`Client::query_all`]).
    All,
    /// One entity ([`Client::query_entity`]).
    Entity(&'a str),
}

/// The last whole read of the directory: it serves every request ticket below `covers` (those
/// asked before it was sent).
struct Directory {
    covers: u64,
    answer: Result<Arc<Objects>, Error>,
}

/// The iSNS provider backend. Give it to [`vds_model::HwProvider::new`].
///
/// ```no_run
/// use vds_model::HwProvider;
/// use vds_providers::isns::{IsnsBackend, IsnsOptions, IsnsSettings};
///
/// # async fn run() -> Result<(), vds_model::Error> {
/// let settings = IsnsSettings {
///     server: "192.0.2.5".parse()?,
///     source_name: "iqn.2026-12.org.example:vds".into(),
///     control_node: true,
///     scn_listen: None,
/// };
/// let options = IsnsOptions::for_source(&settings.source_name);
/// let provider = HwProvider::new(IsnsBackend::new("fabric", settings, options));
/// provider.initialize()?;
/// provider.reenumerate().await?;
/// for s in provider.query_sub_systems()? {
///     println!("{}", s.get_properties()?.friendly_name);
/// }
/// # Ok(())
/// # }
/// ```
pub struct IsnsBackend {
    name: String,
    settings: IsnsSettings,
    server: String,
    options: IsnsOptions,
    permits: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    idle: Mutex<Vec<Client>>,
    registered: Mutex<Option<Registered>>,
    asks: AtomicU64,
    directory: tokio::sync::Mutex<Option<Directory>>,
}

impl fmt::Debug for IsnsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsnsBackend")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A connection taken from the backend's pool for one operation; given back with
/// [`IsnsBackend::give_back`] (a connection that failed is dropped instead).
struct Lease {
    client: Client,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl IsnsBackend {
    /// A backend named `name` (its id and every object id under it derive from it). Touches no
    /// network.
    pub fn new(
        name: impl Into<String>,
        settings: IsnsSettings,
        options: IsnsOptions,
    ) -> IsnsBackend {
        IsnsBackend {
            name: name.into(),
            server: settings.server.to_string(),
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            connections: Arc::new(Semaphore::new(MAX_SERVER_CONNECTIONS)),
            idle: Mutex::new(Vec::new()),
            registered: Mutex::new(None),
            asks: AtomicU64::new(0),
            directory: tokio::sync::Mutex::new(None),
            settings,
            options,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &IsnsSettings {
        &self.settings
    }

    async fn lease(&self) -> Result<Lease, Error> {
        let slot = self
            .connections
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| {
                Error::new(Hresult::E_UNEXPECTED).because("the connection pool is closed")
            })?;
        let client = lock(&self.idle).pop().unwrap_or_else(|| {
            Client::new(
                self.server.clone(),
                self.options.client_config(&self.settings.source_name),
            )
        });
        Ok(Lease {
            client,
            _slot: slot,
        })
    }

    fn give_back(&self, lease: Lease) {
        if lease.client.peer_addr().is_some() {
            lock(&self.idle).push(lease.client);
        }
    }

    /// Registers our Control node (an update: it renews the registration and keeps whatever a
    /// watcher of ours registered with it), unless that was done recently enough.
    async fn ensure_registered(&self, client: &mut Client) -> Result<(), Error> {
        if !self.settings.control_node {
            return Ok(());
        }
        if lock(&self.registered).is_some_and(|r| Instant::now() < r.renew_at) {
            return Ok(());
        }
        let node = watch::control_node(&self.settings, None);
        let reply = client
            .register_control_node(&node, false)
            .await
            .map_err(|e| {
                client_error(&self.server, &e)
                    .because("registering as a Control node (--control-node)")
            })?;
        let renew = renew_interval(isns_proto::control::granted_period(&reply));
        *lock(&self.registered) = Some(Registered {
            renew_at: Instant::now() + renew,
        });
        Ok(())
    }

    fn whole_query_timeout(&self) -> Error {
        Error::new(Hresult::from_win32(Win32Error::WSAETIMEDOUT.0))
            .about(server_subject(&self.server))
            .because(format!(
                "the query of the directory took longer than {:?}",
                self.options.query_deadline
            ))
    }

    /// Asks the server `what` on a pooled connection, registered first when we are a Control
    /// node, all within [`IsnsOptions::query_deadline`]: the objects, `None` for an entity the
    /// server does not have.
    async fn ask(&self, what: Ask<'_>) -> Result<Option<Objects>, Error> {
        let mut lease = self.lease().await?;
        let result = tokio::time::timeout(self.options.query_deadline, async {
            self.ensure_registered(&mut lease.client).await?;
            let answer = match what {
                Ask::All => lease.client.query_all().await.map(|r| Some(r.objects)),
                Ask::Entity(eid) => lease.client.query_entity(eid).await,
            };
            answer.map_err(|e| client_error(&self.server, &e))
        })
        .await;
        match result {
            Ok(Ok(answer)) => {
                self.give_back(lease);
                Ok(answer)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.whole_query_timeout()),
        }
    }

    /// The whole directory, read after this call began: a read already sent when it began is not
    /// used, one sent since (for another caller) is shared, failure included.
    async fn directory(&self) -> Result<Arc<Objects>, Error> {
        let ticket = self.asks.fetch_add(1, Ordering::SeqCst);
        let mut last = self.directory.lock().await;
        if let Some(d) = last.as_ref().filter(|d| d.covers > ticket) {
            return d.answer.clone();
        }
        let covers = self.asks.load(Ordering::SeqCst);
        let answer = self
            .ask(Ask::All)
            .await
            .map(|o| Arc::new(o.unwrap_or_default()));
        *last = Some(Directory {
            covers,
            answer: answer.clone(),
        });
        answer
    }

    /// One entity as a subsystem shows it, `None` when the directory no longer has it with a
    /// target node.
    async fn entity(&self, eid: &str) -> Result<Option<EntityView>, Error> {
        if self.settings.control_node {
            let all = self.directory().await?;
            return Ok(map::entity_view(&all, eid));
        }
        Ok(self
            .ask(Ask::Entity(eid))
            .await?
            .and_then(|o| map::entity_view(&o, eid)))
    }

    /// Probes the portals of `view` for which `known` has no state (with the SendTargets
    /// provider's probe and its cap per subsystem), and returns every portal's state.
    async fn probe(
        &self,
        view: &EntityView,
        mut known: HashMap<String, PortalState>,
    ) -> HashMap<String, PortalState> {
        let todo: Vec<ProbeTarget> = view
            .portals
            .iter()
            .filter(|p| !known.contains_key(&p.address.canonical_key()))
            .map(|p| ProbeTarget {
                key: p.address.canonical_key(),
                host: p.host.clone(),
                port: p.port,
            })
            .collect();
        let probed = probe_portals(&view.eid, todo, &self.options.discovery, &self.permits).await;
        for (key, result) in probed {
            known.insert(key, PortalState::probed(&result));
        }
        known
    }
}

#[async_trait::async_trait]
impl ProviderBackend for IsnsBackend {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    /// Reads the directory; every entity with a target is a subsystem. Portals the previous
    /// picture had keep their status; new ones are probed.
    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        let objects = self.directory().await?;
        let eids = map::target_entities(&objects);
        if eids.is_empty() {
            if !self.settings.control_node && objects.nodes.is_empty() {
                return Ok(vec![map::nothing_visible(
                    &self.server,
                    &self.settings.source_name,
                )]);
            }
            return Ok(Vec::new());
        }
        let total = eids.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let runs = eids.iter().filter_map(|eid| {
            let view = map::entity_view(&objects, eid)?;
            let known: HashMap<String, PortalState> = previous
                .iter()
                .find(|p| p.key == *eid)
                .map(|p| {
                    p.portals
                        .iter()
                        .map(|q| (q.address.canonical_key(), PortalState::kept(q.status)))
                        .collect()
                })
                .unwrap_or_default();
            let done = &done;
            Some(async move {
                let states = self.probe(&view, known).await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
                if let Some(report) = &self.options.progress {
                    report(n, total);
                }
                map::snapshot(&view, &self.server, &states)
            })
        });
        Ok(futures_util::future::join_all(runs).await)
    }

    /// Asks the directory about this entity and probes every portal it has.
    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        if map::is_nothing_visible(previous, &self.server) {
            return Ok(match self.directory().await {
                Ok(o) if o.nodes.is_empty() => {
                    map::nothing_visible(&self.server, &self.settings.source_name)
                }
                Ok(o) => {
                    let mut s = map::nothing_visible(&self.server, &self.settings.source_name);
                    s.detail = Some(format!(
                        "the iSNS server now shows {} storage nodes: `vdsadm reenumerate` lists \
                         their arrays",
                        o.nodes.len()
                    ));
                    s
                }
                Err(e) => {
                    let mut s = map::nothing_visible(&self.server, &self.settings.source_name);
                    s.detail = Some(e.message());
                    s
                }
            });
        }
        match self.entity(&previous.key).await {
            Ok(Some(view)) => {
                let states = self.probe(&view, HashMap::new()).await;
                Ok(map::snapshot(&view, &self.server, &states))
            }
            Ok(None) => Ok(map::retired(previous, &self.server)),
            Err(e) => {
                // The directory cannot be asked; the array may well be up: probe what it had.
                let view = map::view_of_previous(previous);
                let states = self.probe(&view, HashMap::new()).await;
                let mut s = map::snapshot(&view, &self.server, &states);
                let why = format!(
                    "{}; the portals and targets are the last the directory gave",
                    e.message()
                );
                s.detail = Some(match s.detail {
                    Some(d) => format!("{why}; {d}"),
                    None => why,
                });
                Ok(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn error_codes_follow_the_table() {
        let io = |k| Arc::new(io::Error::new(k, "test"));
        let rows: Vec<(ErrorKind, u32)> = vec![
            (ErrorKind::Resolve(io(io::ErrorKind::NotFound)), 0x8007_2AF9),
            (
                ErrorKind::Connect(io(io::ErrorKind::ConnectionRefused)),
                0x8007_274D,
            ),
            (
                ErrorKind::Timeout {
                    phase: isns_client::Phase::Receive,
                    after: Duration::from_secs(1),
                },
                0x8007_274C,
            ),
            (
                ErrorKind::Closed {
                    phase: isns_client::Phase::Receive,
                    received: 3,
                },
                0x8007_2746,
            ),
            (ErrorKind::Status(Status::SOURCE_UNAUTHORIZED), 0x8004_2400),
            (ErrorKind::Status(Status::INVALID_QUERY), 0x8004_2442),
            (ErrorKind::ReplyTooLarge { len: 9, max: 1 }, 0x8004_2441),
        ];
        for (kind, code) in rows {
            assert_eq!(error_code(&kind).code(), code, "{kind}");
        }
    }

    #[test]
    fn registrations_are_renewed_within_the_period() {
        assert_eq!(renew_interval(Some(600)), Duration::from_secs(300));
        assert_eq!(renew_interval(Some(4)), Duration::from_secs(2));
        assert_eq!(renew_interval(Some(1)), Duration::from_millis(500));
        assert_eq!(renew_interval(Some(0)), Duration::from_secs(60));
        assert_eq!(renew_interval(None), Duration::from_secs(60));
    }
}
