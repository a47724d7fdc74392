//! The tokio driver for iSCSI SendTargets discovery: it owns the TCP connection, every deadline
//! and the size limits, and runs the sans-IO [`iscsi_proto::DiscoverySession`] on it. It knows no
//! protocol itself.
//!
//! - [`discover`]: connect, log in (discovery session, CHAP if configured), `SendTargets`, log
//!   out. Follows login redirects up to `max_redirects`, refusing to revisit an address.
//! - [`probe`]: connect, log in, log out: tells whether a portal is up and accepts a discovery
//!   login.
//!
//! Every wait has a deadline: `connect_timeout` per connection attempt, `pdu_timeout` per read,
//! `overall_timeout` for the whole call (redirects included). Nothing the peer sends can make the
//! client panic or allocate more than `max_answer_bytes` of answer plus one PDU of at most our
//! MaxRecvDataSegmentLength.
//!
//! Once the SendTargets answer is complete, a failure during logout (timeout, closed connection,
//! bad Logout Response) does not throw the answer away: the result is returned with
//! [`DiscoveryResult::logout_clean`] set to `false`.
//!
//! # Example
//!
//! ```no_run
//! use iscsi_client::{DiscoveryOptions, Host, discover};
//!
//! # async fn run() -> Result<(), iscsi_client::Error> {
//! let found = discover(&Host::Ipv4([127, 0, 0, 1].into()), 3260, &DiscoveryOptions::default()).await?;
//! for t in &found.targets {
//!     for a in t.addresses_or(&found.portal) {
//!         println!("{} at {a}", t.name);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod resolve;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use error::{Deadline, Error, ErrorKind, Phase};
pub use iscsi_proto::{
    ChapAlgorithm, ChapCredentials, DiscoveredTarget, Host, LoginFailure, LoginFailureReason,
    Secret, SendTargetsQuery, TargetAddress,
};
pub use resolve::{resolve, scope_id};

use iscsi_proto::session::{DiscoverySession, Event, Purpose, SessionConfig, SessionSeed};

/// The initiator name used when none is configured.
pub const DEFAULT_INITIATOR_NAME: &str = "iqn.2026-11.org.vds:initiator";

/// How to run a discovery.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Our iSCSI name; default [`DEFAULT_INITIATOR_NAME`] (`iqn.2026-11.org.vds:initiator`).
    pub initiator_name: String,
    /// One-way CHAP: our user and secret (the secret is zeroed on drop, never printed).
    pub chap: Option<ChapCredentials>,
    /// Mutual CHAP: the user and secret the target must prove. Needs `chap`.
    pub mutual: Option<ChapCredentials>,
    /// CHAP algorithms offered, most preferred first; default MD5, SHA-1, SHA-256, SHA3-256
    /// ([`iscsi_proto::session::DEFAULT_CHAP_ALGORITHMS`] says why MD5 comes first).
    pub chap_algorithms: Vec<ChapAlgorithm>,
    /// `SendTargets=All` (default) or `SendTargets=<iqn>`.
    pub query: SendTargetsQuery,
    /// Deadline for each TCP connection attempt; default 3 s.
    pub connect_timeout: Duration,
    /// Deadline for each read (the target must send something within it); default 5 s.
    pub pdu_timeout: Duration,
    /// Deadline for the whole call, redirects included; default 15 s.
    pub overall_timeout: Duration,
    /// Cap on the SendTargets answer text; default 16 MiB.
    pub max_answer_bytes: usize,
    /// Cap on PDUs received per connection; default 4096.
    pub max_pdus: usize,
    /// The MaxRecvDataSegmentLength we declare (512..=16777215); default 262144.
    pub max_recv_data_segment_length: u32,
    /// Most login redirects followed; default 4.
    pub max_redirects: u8,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        let proto = SessionConfig::new(DEFAULT_INITIATOR_NAME);
        DiscoveryOptions {
            initiator_name: DEFAULT_INITIATOR_NAME.to_owned(),
            chap: None,
            mutual: None,
            chap_algorithms: proto.chap_algorithms,
            query: SendTargetsQuery::All,
            connect_timeout: Duration::from_secs(3),
            pdu_timeout: Duration::from_secs(5),
            overall_timeout: Duration::from_secs(15),
            max_answer_bytes: 16 << 20,
            max_pdus: 4096,
            max_recv_data_segment_length: 262_144,
            max_redirects: 4,
        }
    }
}

impl DiscoveryOptions {
    fn session_config(&self, purpose: Purpose) -> SessionConfig {
        SessionConfig {
            initiator_name: self.initiator_name.clone(),
            chap: self.chap.clone(),
            mutual: self.mutual.clone(),
            chap_algorithms: self.chap_algorithms.clone(),
            purpose,
            max_recv_data_segment_length: self.max_recv_data_segment_length,
            max_pdus: self.max_pdus,
            max_answer_bytes: self.max_answer_bytes,
        }
    }
}

/// What [`discover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryResult {
    /// The socket the answer came from (after redirects).
    pub connected_to: SocketAddr,
    /// The portal that answered, as a TargetAddress (host as given or redirected to, port, and
    /// the login's portal group tag): pass it to [`DiscoveredTarget::addresses_or`].
    pub portal: TargetAddress,
    /// The targets, in the order the target listed them.
    pub targets: Vec<DiscoveredTarget>,
    /// `TargetPortalGroupTag` from the login response, if the target sent one.
    pub portal_group_tag: Option<u16>,
    /// PDUs received on the final connection.
    pub pdus: usize,
    /// Bytes received on the final connection.
    pub bytes: usize,
    /// Login redirects followed.
    pub redirects: u8,
    /// Whether the logout completed normally (see the crate doc).
    pub logout_clean: bool,
    /// Wall time of the whole call.
    pub elapsed: Duration,
}

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The socket that accepted the login.
    pub connected_to: SocketAddr,
    /// The portal that answered (see [`DiscoveryResult::portal`]).
    pub portal: TargetAddress,
    /// `TargetPortalGroupTag` from the login response, if the target sent one.
    pub portal_group_tag: Option<u16>,
    /// Login redirects followed.
    pub redirects: u8,
    /// Whether the logout completed normally.
    pub logout_clean: bool,
    /// Wall time of the whole call.
    pub elapsed: Duration,
}

/// Runs one SendTargets discovery against `host:port`. See the crate doc.
///
/// # Errors
/// Every failure is an [`Error`] naming the portal, the phase and the cause; see [`ErrorKind`].
pub async fn discover(
    host: &Host,
    port: u16,
    opts: &DiscoveryOptions,
) -> Result<DiscoveryResult, Error> {
    let start = Instant::now();
    let o = run(host, port, opts, Purpose::SendTargets(opts.query.clone())).await?;
    Ok(DiscoveryResult {
        connected_to: o.connected_to,
        portal: o.portal,
        targets: o.targets.unwrap_or_default(),
        portal_group_tag: o.portal_group_tag,
        pdus: o.pdus,
        bytes: o.bytes,
        redirects: o.redirects,
        logout_clean: o.logout_clean,
        elapsed: start.elapsed(),
    })
}

/// Logs in to `host:port` with a discovery session and logs out at once, without SendTargets.
///
/// # Errors
/// As [`discover`].
pub async fn probe(host: &Host, port: u16, opts: &DiscoveryOptions) -> Result<ProbeResult, Error> {
    let start = Instant::now();
    let o = run(host, port, opts, Purpose::Probe).await?;
    Ok(ProbeResult {
        connected_to: o.connected_to,
        portal: o.portal,
        portal_group_tag: o.portal_group_tag,
        redirects: o.redirects,
        logout_clean: o.logout_clean,
        elapsed: start.elapsed(),
    })
}

struct Outcome {
    connected_to: SocketAddr,
    portal: TargetAddress,
    targets: Option<Vec<DiscoveredTarget>>,
    portal_group_tag: Option<u16>,
    pdus: usize,
    bytes: usize,
    redirects: u8,
    logout_clean: bool,
}

enum ConnectionEnd {
    Done(Outcome),
    Redirected(TargetAddress),
}

fn portal_string(host: &Host, port: u16) -> String {
    format!("{host}:{port}")
}

async fn run(
    host: &Host,
    port: u16,
    opts: &DiscoveryOptions,
    purpose: Purpose,
) -> Result<Outcome, Error> {
    let overall = Instant::now() + opts.overall_timeout;
    let mut current = TargetAddress {
        host: host.clone(),
        port,
        tag: None,
    };
    let mut visited: HashSet<(Host, u16)> = HashSet::new();
    let mut redirects = 0u8;
    loop {
        let portal = portal_string(&current.host, current.port);
        if !visited.insert((current.host.clone(), current.port)) {
            return Err(Error::new(
                ErrorKind::RedirectLoop(current),
                portal,
                None,
                Phase::Login,
            ));
        }
        let (stream, addr) = connect(&current, opts, overall, &portal).await?;
        match converse(
            stream,
            addr,
            &current,
            opts,
            purpose.clone(),
            overall,
            &portal,
        )
        .await?
        {
            ConnectionEnd::Done(mut o) => {
                o.redirects = redirects;
                return Ok(o);
            }
            ConnectionEnd::Redirected(to) => {
                if redirects >= opts.max_redirects {
                    return Err(Error::new(
                        ErrorKind::TooManyRedirects {
                            max: opts.max_redirects,
                        },
                        portal,
                        Some(addr),
                        Phase::Login,
                    ));
                }
                redirects += 1;
                tracing::info!(
                    from = %portal,
                    to = %portal_string(&to.host, to.port),
                    "login redirected"
                );
                current = TargetAddress {
                    host: to.host,
                    port: to.port,
                    tag: None,
                };
            }
        }
    }
}

/// The earlier of `now + step` and `overall`, and which one it is.
fn deadline(step: Duration, step_kind: Deadline, overall: Instant) -> (Instant, Deadline) {
    let now = Instant::now();
    match now.checked_add(step) {
        Some(d) if d < overall => (d, step_kind),
        _ => (overall, Deadline::Overall),
    }
}

async fn connect(
    target: &TargetAddress,
    opts: &DiscoveryOptions,
    overall: Instant,
    portal: &str,
) -> Result<(TcpStream, SocketAddr), Error> {
    let (until, which) = deadline(opts.connect_timeout, Deadline::Connect, overall);
    let addrs =
        match tokio::time::timeout_at(until.into(), resolve(&target.host, target.port)).await {
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout {
                        phase: Phase::Resolve,
                        deadline: which,
                    },
                    portal.to_owned(),
                    None,
                    Phase::Resolve,
                ));
            }
            Ok(Err(e)) => {
                return Err(Error::new(
                    ErrorKind::Resolve(e.into()),
                    portal.to_owned(),
                    None,
                    Phase::Resolve,
                ));
            }
            Ok(Ok(a)) => a,
        };
    let mut last = None;
    for addr in addrs {
        let (until, which) = deadline(opts.connect_timeout, Deadline::Connect, overall);
        match tokio::time::timeout_at(until.into(), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Login and text exchanges are small request/response pairs: Nagle would hold
                // them back behind delayed ACKs.
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Ok(Err(e)) => {
                last = Some(Error::new(
                    ErrorKind::Connect(e.into()),
                    portal.to_owned(),
                    Some(addr),
                    Phase::Connect,
                ));
            }
            Err(_) => {
                last = Some(Error::new(
                    ErrorKind::Timeout {
                        phase: Phase::Connect,
                        deadline: which,
                    },
                    portal.to_owned(),
                    Some(addr),
                    Phase::Connect,
                ));
                if which == Deadline::Overall {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(
            ErrorKind::Resolve(
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address").into(),
            ),
            portal.to_owned(),
            None,
            Phase::Resolve,
        )
    }))
}

/// Largest read per syscall.
const READ_CHUNK: usize = 64 * 1024;

/// The first read's size: a discovery answer of a hundred targets (about 7 KB) fits in one. A read
/// that fills the buffer doubles it, up to [`READ_CHUNK`], so a large answer still comes in large
/// reads while a refresh's many connections at once each hold an eighth of it.
const READ_FIRST: usize = 8 * 1024;

async fn converse(
    mut stream: TcpStream,
    addr: SocketAddr,
    target: &TargetAddress,
    opts: &DiscoveryOptions,
    purpose: Purpose,
    overall: Instant,
    portal: &str,
) -> Result<ConnectionEnd, Error> {
    let fail = |kind, phase| Error::new(kind, portal.to_owned(), Some(addr), phase);
    let mut session = DiscoverySession::new(opts.session_config(purpose), SessionSeed::random())
        .map_err(|e| fail(ErrorKind::from_proto(e), Phase::Login))?;
    // Read into spare capacity (`read_buf`): a zeroed buffer per connection cost more than the
    // discovery answer it receives.
    let mut buf: Vec<u8> = Vec::with_capacity(READ_FIRST);
    let mut targets: Option<Vec<DiscoveredTarget>> = None;
    let mut tag = None;
    let mut redirect = None;
    let mut logged_out = false;

    // Once the answer is in hand, logout trouble is not worth losing it over.
    let finish =
        |targets: Option<Vec<DiscoveredTarget>>, tag, session: &DiscoverySession, clean| {
            let stats = session.stats();
            ConnectionEnd::Done(Outcome {
                connected_to: addr,
                portal: TargetAddress {
                    host: target.host.clone(),
                    port: target.port,
                    tag,
                },
                targets,
                portal_group_tag: tag,
                pdus: stats.pdus_received,
                bytes: stats.bytes_received,
                redirects: 0,
                logout_clean: clean,
            })
        };

    loop {
        let phase = Phase::from(session.phase());
        // Logout is reached only after the answer (or, for a probe, the login) succeeded.
        let in_logout = phase == Phase::Logout;
        if let Some(out) = session.poll_transmit() {
            let (until, which) = deadline(opts.pdu_timeout, Deadline::Pdu, overall);
            match tokio::time::timeout_at(until.into(), stream.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) if in_logout => {
                    return Ok(finish(targets, tag, &session, false));
                }
                Ok(Err(e)) => return Err(fail(ErrorKind::Io(e.into()), phase)),
                Err(_) => {
                    return Err(fail(
                        ErrorKind::Timeout {
                            phase,
                            deadline: which,
                        },
                        phase,
                    ));
                }
            }
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                Event::LoggedIn {
                    portal_group_tag, ..
                } => tag = portal_group_tag,
                Event::Targets(t) => targets = Some(t),
                Event::Redirected { address, .. } => redirect = Some(address),
                Event::LoggedOut => logged_out = true,
                _ => {}
            }
        }
        if let Some(to) = redirect.take() {
            return Ok(ConnectionEnd::Redirected(to));
        }
        if logged_out {
            return Ok(finish(targets, tag, &session, true));
        }
        let phase = Phase::from(session.phase());
        let in_logout = phase == Phase::Logout;
        let (until, which) = deadline(opts.pdu_timeout, Deadline::Pdu, overall);
        buf.clear();
        let n = match tokio::time::timeout_at(until.into(), stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ if in_logout => return Ok(finish(targets, tag, &session, false)),
            Ok(Err(e)) => return Err(fail(ErrorKind::Io(e.into()), phase)),
            Err(_) => {
                return Err(fail(
                    ErrorKind::Timeout {
                        phase,
                        deadline: which,
                    },
                    phase,
                ));
            }
        };
        if n == 0 {
            if in_logout {
                return Ok(finish(targets, tag, &session, false));
            }
            return Err(match session.handle_eof() {
                Err(e) => fail(ErrorKind::from_proto(e), phase),
                Ok(()) => fail(ErrorKind::Closed { phase }, phase),
            });
        }
        if let Err(e) = session.handle_bytes(&buf) {
            if in_logout {
                return Ok(finish(targets, tag, &session, false));
            }
            return Err(fail(ErrorKind::from_proto(e), phase));
        }
        if n == buf.capacity() && n < READ_CHUNK {
            buf.reserve_exact((2 * n).min(READ_CHUNK) - n);
        }
    }
}
