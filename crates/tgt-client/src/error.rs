//! The client's error: what went wrong ([`ErrorKind`]) and at which socket. Every message names
//! the socket path, so an operator can tell a stopped tgtd from a wrong `TGT_IPC_SOCKET`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tgt_proto::{ErrorCode, InvalidMessage, Refused, ShowError};

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// Connecting to the socket (`connect_timeout`).
    Connect,
    /// Writing the request and reading the whole reply (`exchange_timeout`).
    Exchange,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deadline::Connect => "connecting",
            Deadline::Exchange => "waiting for the reply",
        })
    }
}

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// We refused to build the request (tgtd would choke on it); nothing was sent.
    #[error("request not sent: {0}")]
    Refused(Refused),
    /// No socket at that path (ENOENT): tgtd is not running, or runs with another
    /// `TGT_IPC_SOCKET` or control port.
    #[error(
        "no management socket there: is tgtd running with this TGT_IPC_SOCKET and control port?"
    )]
    SocketMissing,
    /// A socket file exists but nothing listens on it (ECONNREFUSED): tgtd died or is stopping.
    #[error("connection refused: the socket exists but no tgtd listens on it")]
    ConnectionRefused,
    /// Connecting was not permitted (EACCES/EPERM): tgtd's socket is writable only by its owner,
    /// and tgtd serves only clients with its own uid and gid.
    #[error("permission denied: tgtd serves only clients running with its own uid and gid")]
    PermissionDenied,
    /// Connecting failed otherwise. A Unix-socket connect does not wait: it succeeds or fails at
    /// once, e.g. with EAGAIN ("Resource temporarily unavailable") when tgtd does not accept and
    /// its backlog of 32 is full; a path over 107 bytes is refused before any connect.
    #[error("cannot connect: {0}")]
    Connect(Arc<io::Error>),
    /// A deadline expired.
    #[error("no answer after {after:?} while {deadline}")]
    Timeout {
        /// Which step.
        deadline: Deadline,
        /// The deadline that passed.
        after: Duration,
    },
    /// tgtd closed the connection before sending any reply byte. This is what a client whose
    /// uid/gid differ from tgtd's sees when the socket is world-writable, and what a request
    /// tgtd will not read (payload over 8192 bytes) gets.
    #[error(
        "tgtd closed the connection without a reply (peer credentials refused, or a request it would not read)"
    )]
    ClosedWithoutReply,
    /// The connection ended before the bytes the reply announced had arrived.
    #[error("reply cut short: {got} of {expected} bytes arrived before the connection closed")]
    ReplyCutShort {
        /// Bytes expected (8 while the header was incomplete).
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The reply announces more bytes than `max_reply_bytes`; nothing beyond the header was read.
    #[error("reply of {announced} bytes exceeds the limit of {max}")]
    ReplyTooLarge {
        /// Total bytes announced (header included).
        announced: usize,
        /// The limit.
        max: usize,
    },
    /// The reply does not decode (a length field below 8, more bytes than announced).
    #[error("invalid reply: {0}")]
    InvalidReply(InvalidMessage),
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// tgtd answered with an error code.
    #[error("tgtd refused the request: {0}")]
    Tgtd(ErrorCode),
    /// The `show` text does not follow its grammar.
    #[error("malformed reply text: {0}")]
    Malformed(ShowError),
}

/// A failed exchange with tgtd: what went wrong, and at which socket.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    socket: PathBuf,
}

impl Error {
    pub(crate) fn new(socket: &Path, kind: ErrorKind) -> Self {
        Error {
            kind,
            socket: socket.to_path_buf(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The socket path the client used.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// tgtd's error code, when tgtd answered with one.
    pub fn tgtd_code(&self) -> Option<ErrorCode> {
        match self.kind {
            ErrorKind::Tgtd(code) => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` escapes the path: it may come from an environment variable.
        write!(f, "tgtd at {:?}: {}", self.socket, self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Connect(e) | ErrorKind::Io(e) => Some(&**e),
            ErrorKind::Refused(e) => Some(e),
            ErrorKind::InvalidReply(e) => Some(e),
            ErrorKind::Malformed(e) => Some(e),
            _ => None,
        }
    }
}
