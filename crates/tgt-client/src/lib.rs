//! A thin tokio client for tgtd's management socket (what `tgtadm` talks to). It owns the Unix
//! socket, the deadlines and the reply cap; every byte of protocol comes from [`tgt_proto`]. It
//! knows nothing of VDS.
//!
//! One request per connection, as tgtd wants: connect, write the request, read the 8-byte reply
//! header and then until the announced length (tgtd writes long replies in several pieces), and
//! close. [`Client::send`] returns the raw reply; the typed methods ([`Client::show_targets`],
//! [`Client::new_target`], …) turn a tgtd error code into [`ErrorKind::Tgtd`] and parse `show`
//! text.
//!
//! # Limits
//!
//! | what | default | why |
//! |---|---|---|
//! | `connect_timeout` | 2 s | a local socket connects at once or not at all; 2 s covers a loaded machine |
//! | `exchange_timeout` | 10 s | tgtd is single-threaded and answers between I/O events; listing 400 targets takes milliseconds, so 10 s means tgtd is stuck |
//! | `max_reply_bytes` | 8 MiB | 400 targets with their controller LUN made a 249 KB `show` (~620 B each); with a data LUN, a session and a few ACLs and accounts a target takes ~1.5–4 KB, so 2,000 targets fit in 8 MiB |
//!
//! A reply announcing more than the cap is refused after its 8-byte header, before anything else
//! is read or allocated.
//!
//! # Socket path
//!
//! tgtd listens on `<prefix>.<control>`: the prefix is `$TGT_IPC_SOCKET` or
//! `/var/run/tgtd/socket`, the control port is `tgtd -C N` (default 0). [`socket_path`] builds it,
//! [`default_socket_path`] reads the environment as tgtadm does.
//!
//! # Access
//!
//! tgtd serves only clients whose uid **and** gid equal its own (SO_PEERCRED). Another user gets
//! [`ErrorKind::PermissionDenied`] at connect (the socket is mode 0755); if the socket was made
//! world-writable, tgtd closes without a reply: [`ErrorKind::ClosedWithoutReply`].
//!
//! ```no_run
//! use tgt_client::{Client, ClientConfig, default_socket_path};
//!
//! # async fn run() -> Result<(), tgt_client::Error> {
//! let client = Client::new(ClientConfig::new(default_socket_path()));
//! client.new_target(1, "iqn.2026-12.org.vds:t1").await?;
//! for t in client.show_targets().await? {
//!     println!("{} {}", t.tid, t.name.escape_debug());
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub use error::{Deadline, Error, ErrorKind};
pub use tgt_proto::show::{Lld, PortalEntry, SystemInfo, Target};
pub use tgt_proto::{
    AccountBinding, AccountDirection, AccountScope, Acl, ErrorCode, Request, Secret, SystemParam,
    TargetState,
};

use tgt_proto::wire::REPLY_HEADER_LEN;
use tgt_proto::{InvalidMessage, ReplyRepr, reply_text, show};

/// The environment variable naming the socket prefix (tgtd's and tgtadm's convention).
pub const SOCKET_ENV: &str = "TGT_IPC_SOCKET";

/// The socket prefix without `TGT_IPC_SOCKET`.
pub const DEFAULT_SOCKET_PREFIX: &str = "/var/run/tgtd/socket";

/// Default [`ClientConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default [`ClientConfig::exchange_timeout`].
pub const DEFAULT_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default [`ClientConfig::max_reply_bytes`]: 8 MiB (see the crate doc).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 8 << 20;

/// Size of each read: big replies arrive in a few reads, small ones in one.
const READ_CHUNK: usize = 64 << 10;

/// `<prefix>.<control>`, with `prefix` defaulting to [`DEFAULT_SOCKET_PREFIX`] when `None` or
/// empty.
pub fn socket_path(prefix: Option<&OsStr>, control: u16) -> PathBuf {
    let mut p: OsString = match prefix {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => DEFAULT_SOCKET_PREFIX.into(),
    };
    p.push(format!(".{control}"));
    PathBuf::from(p)
}

/// The socket of control port 0, as tgtadm finds it: `$TGT_IPC_SOCKET.0`, else
/// `/var/run/tgtd/socket.0`.
pub fn default_socket_path() -> PathBuf {
    socket_path(std::env::var_os(SOCKET_ENV).as_deref(), 0)
}

/// Where and how to talk to tgtd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The socket path (see [`socket_path`]).
    pub socket: PathBuf,
    /// Deadline for connecting; default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Deadline for writing the request and reading the whole reply; default
    /// [`DEFAULT_EXCHANGE_TIMEOUT`].
    pub exchange_timeout: Duration,
    /// Largest reply accepted, header included; default [`DEFAULT_MAX_REPLY_BYTES`].
    pub max_reply_bytes: usize,
}

impl ClientConfig {
    /// The defaults for `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        ClientConfig {
            socket: socket.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            exchange_timeout: DEFAULT_EXCHANGE_TIMEOUT,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

/// A reply as tgtd sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// The `err` field.
    pub code: ErrorCode,
    /// The payload (`len − 8` bytes; for `show`, text ending in NUL).
    pub payload: Vec<u8>,
    /// How many reads returned data (header included). More than one means the reply arrived
    /// in pieces and was put back together.
    pub reads: usize,
}

impl RawReply {
    /// The payload as text (see [`tgt_proto::reply_text`]).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        reply_text(&self.payload)
    }
}

/// A tgtd management client. Cheap to clone; holds no connection between calls.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Client { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.config.socket, kind)
    }

    /// Sends one request on a new connection and returns tgtd's reply, whatever its code.
    ///
    /// # Errors
    /// Every failure to get a whole reply (see [`ErrorKind`]); not a non-zero code.
    pub async fn send(&self, request: &Request) -> Result<RawReply, Error> {
        // Wiped on drop: it may hold a password.
        let bytes = request
            .emit()
            .map_err(|e| self.err(ErrorKind::Refused(e)))?;
        let cfg = &self.config;
        let mut stream =
            tokio::time::timeout(cfg.connect_timeout, UnixStream::connect(&cfg.socket))
                .await
                .map_err(|_| {
                    self.err(ErrorKind::Timeout {
                        deadline: Deadline::Connect,
                        after: cfg.connect_timeout,
                    })
                })?
                .map_err(|e| self.err(connect_error(e)))?;
        tokio::time::timeout(cfg.exchange_timeout, self.exchange(&mut stream, &bytes))
            .await
            .map_err(|_| {
                self.err(ErrorKind::Timeout {
                    deadline: Deadline::Exchange,
                    after: cfg.exchange_timeout,
                })
            })?
    }

    async fn exchange(&self, stream: &mut UnixStream, request: &[u8]) -> Result<RawReply, Error> {
        if let Err(e) = stream.write_all(request).await {
            // tgtd closed already: it refused our credentials or the request.
            return Err(self.err(if closed(&e) {
                ErrorKind::ClosedWithoutReply
            } else {
                ErrorKind::Io(Arc::new(e))
            }));
        }
        let max = self.config.max_reply_bytes.max(REPLY_HEADER_LEN);
        let mut reply: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut header: Option<ReplyRepr> = None;
        let mut reads = 0;
        loop {
            let want = match header {
                None => READ_CHUNK,
                Some(h) => {
                    let left = h.len as usize - reply.len();
                    if left == 0 {
                        break;
                    }
                    left.min(READ_CHUNK)
                }
            };
            let n = match stream.read(&mut chunk[..want]).await {
                Ok(n) => n,
                Err(e) if closed(&e) => 0,
                Err(e) => return Err(self.err(ErrorKind::Io(Arc::new(e)))),
            };
            if n == 0 {
                return Err(self.err(match header {
                    None if reply.is_empty() => ErrorKind::ClosedWithoutReply,
                    None => ErrorKind::ReplyCutShort {
                        expected: REPLY_HEADER_LEN,
                        got: reply.len(),
                    },
                    Some(h) => ErrorKind::ReplyCutShort {
                        expected: h.len as usize,
                        got: reply.len(),
                    },
                }));
            }
            reads += 1;
            reply.extend_from_slice(&chunk[..n]);
            if header.is_none() && reply.len() >= REPLY_HEADER_LEN {
                let h =
                    ReplyRepr::parse(&reply).map_err(|e| self.err(ErrorKind::InvalidReply(e)))?;
                if h.len as usize > max {
                    return Err(self.err(ErrorKind::ReplyTooLarge {
                        announced: h.len as usize,
                        max,
                    }));
                }
                if reply.len() > h.len as usize {
                    return Err(self.err(ErrorKind::InvalidReply(
                        InvalidMessage::LengthMismatch {
                            announced: h.len as usize,
                            got: reply.len(),
                        },
                    )));
                }
                reply.reserve_exact(h.len as usize - reply.len());
                header = Some(h);
            }
        }
        let code = header.map_or(ErrorCode::Success, |h| h.code);
        reply.drain(..REPLY_HEADER_LEN);
        Ok(RawReply {
            code,
            payload: reply,
            reads,
        })
    }

    /// [`Client::send`], with a non-zero code turned into [`ErrorKind::Tgtd`].
    ///
    /// # Errors
    /// As [`Client::send`], and [`ErrorKind::Tgtd`].
    pub async fn execute(&self, request: &Request) -> Result<RawReply, Error> {
        let reply = self.send(request).await?;
        if reply.code.is_success() {
            Ok(reply)
        } else {
            Err(self.err(ErrorKind::Tgtd(reply.code)))
        }
    }

    async fn show<T>(
        &self,
        request: Request,
        parse: impl FnOnce(&str) -> Result<T, show::ShowError>,
    ) -> Result<T, Error> {
        let reply = self.execute(&request).await?;
        parse(&reply.text()).map_err(|e| self.err(ErrorKind::Malformed(e)))
    }

    async fn run(&self, request: Request) -> Result<(), Error> {
        self.execute(&request).await.map(drop)
    }

    /// All targets with their sessions, LUNs, accounts and ACLs.
    ///
    /// # Errors
    /// As [`Client::execute`], and [`ErrorKind::Malformed`].
    pub async fn show_targets(&self) -> Result<Vec<Target>, Error> {
        self.show(Request::ShowTargets, show::parse_targets).await
    }

    /// The listening portals, newest first.
    ///
    /// # Errors
    /// As [`Client::show_targets`].
    pub async fn show_portals(&self) -> Result<Vec<PortalEntry>, Error> {
        self.show(Request::ShowPortals, show::parse_portals).await
    }

    /// The account user names (tgtd never returns passwords).
    ///
    /// # Errors
    /// As [`Client::show_targets`].
    pub async fn show_accounts(&self) -> Result<Vec<String>, Error> {
        self.show(Request::ShowAccounts, show::parse_accounts).await
    }

    /// Daemon state, drivers, backing stores, device types, iSNS settings.
    ///
    /// # Errors
    /// As [`Client::show_targets`].
    pub async fn show_system(&self) -> Result<SystemInfo, Error> {
        self.show(Request::ShowSystem, show::parse_system).await
    }

    /// The drivers and their targets.
    ///
    /// # Errors
    /// As [`Client::show_targets`].
    pub async fn show_lld(&self) -> Result<Vec<Lld>, Error> {
        self.show(Request::ShowLld, show::parse_lld).await
    }

    /// Starts listening on `portal` (TPGT 1). A port in use gives `INVALID_REQUEST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn new_portal(&self, portal: SocketAddr) -> Result<(), Error> {
        self.run(Request::NewPortal { portal }).await
    }

    /// Stops listening on `portal`; an unknown portal gives `INVALID_REQUEST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn delete_portal(&self, portal: SocketAddr) -> Result<(), Error> {
        self.run(Request::DeletePortal { portal }).await
    }

    /// Creates target `tid` named `name`; an existing tid or name gives `TARGET_EXIST`.
    ///
    /// # Errors
    /// As [`Client::execute`]; [`ErrorKind::Refused`] for a name outside `[A-Za-z0-9:.-]`.
    pub async fn new_target(&self, tid: u32, name: &str) -> Result<(), Error> {
        self.run(Request::NewTarget {
            tid,
            name: name.to_owned(),
        })
        .await
    }

    /// Deletes target `tid`; without `force`, one with sessions gives `TARGET_ACTIVE`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn delete_target(&self, tid: u32, force: bool) -> Result<(), Error> {
        self.run(Request::DeleteTarget { tid, force }).await
    }

    /// Sets target `tid` ready or offline.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn set_target_state(&self, tid: u32, state: TargetState) -> Result<(), Error> {
        self.run(Request::SetTargetState { tid, state }).await
    }

    /// Adds an ACL entry to target `tid`; a duplicate gives `ACL_EXIST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn bind_acl(&self, tid: u32, acl: Acl) -> Result<(), Error> {
        self.run(Request::BindAcl { tid, acl }).await
    }

    /// Removes an ACL entry from target `tid`; a missing one gives `ACL_NOEXIST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn unbind_acl(&self, tid: u32, acl: Acl) -> Result<(), Error> {
        self.run(Request::UnbindAcl { tid, acl }).await
    }

    /// Creates a CHAP account; an existing user gives `USER_EXIST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn new_account(&self, user: &str, password: &Secret) -> Result<(), Error> {
        self.run(Request::NewAccount {
            user: user.to_owned(),
            password: password.clone(),
        })
        .await
    }

    /// Deletes a CHAP account and all its bindings; an unknown user gives `NO_USER`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn delete_account(&self, user: &str) -> Result<(), Error> {
        self.run(Request::DeleteAccount {
            user: user.to_owned(),
        })
        .await
    }

    /// Binds an account to a target or to discovery. An unknown user gives `NO_USER`, an
    /// incoming account bound twice `USER_EXIST`, a second outgoing one `OUTACCOUNT_EXIST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn bind_account(&self, user: &str, binding: AccountBinding) -> Result<(), Error> {
        self.run(Request::BindAccount {
            user: user.to_owned(),
            binding,
        })
        .await
    }

    /// Unbinds an account; one not bound there gives `NO_USER`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn unbind_account(&self, user: &str, binding: AccountBinding) -> Result<(), Error> {
        self.run(Request::UnbindAccount {
            user: user.to_owned(),
            binding,
        })
        .await
    }

    /// Changes daemon parameters, in order; an unknown key gives `INVALID_REQUEST`.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn update_system(&self, params: Vec<SystemParam>) -> Result<(), Error> {
        self.run(Request::UpdateSystem { params }).await
    }
}

fn connect_error(e: io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::SocketMissing,
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Connect(Arc::new(e)),
    }
}

/// The peer closed: EPIPE on write, ECONNRESET on read or write.
fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn socket_paths_follow_tgtadm() {
        assert_eq!(
            socket_path(None, 0),
            PathBuf::from("/var/run/tgtd/socket.0")
        );
        assert_eq!(
            socket_path(Some(OsStr::new("")), 3),
            PathBuf::from("/var/run/tgtd/socket.3")
        );
        assert_eq!(
            socket_path(Some(OsStr::new("/tmp/x/ipc")), 7),
            PathBuf::from("/tmp/x/ipc.7")
        );
    }

    #[test]
    fn error_display_names_the_socket() {
        let e = Error::new(Path::new("/tmp/x/ipc.7"), ErrorKind::SocketMissing);
        let s = e.to_string();
        assert!(
            s.starts_with("tgtd at \"/tmp/x/ipc.7\": no management socket"),
            "{s}"
        );
        let e = Error::new(Path::new("/s"), ErrorKind::Tgtd(ErrorCode::TargetExist));
        assert_eq!(e.tgtd_code(), Some(ErrorCode::TargetExist));
        assert!(e.to_string().contains("TARGET_EXIST"));
    }
}
