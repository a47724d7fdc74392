//! The client's error: what went wrong ([`ErrorKind`]), with which server and during which
//! request. It knows nothing of VDS: mapping to HRESULTs is the provider's job.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use isns_proto::{Function, Status};

/// The step of an exchange that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Resolving the server name.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// Writing the request.
    Send,
    /// Reading the reply.
    Receive,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Send => "send",
            Phase::Receive => "receive",
        })
    }
}

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server address is not `host:port` or does not resolve.
    #[error("cannot resolve: {0}")]
    Resolve(Arc<io::Error>),
    /// The TCP connection failed (refused, unreachable, ...): [`Error::is_refused`] tells refusal.
    #[error("cannot connect: {0}")]
    Connect(Arc<io::Error>),
    /// A deadline expired (`connect_timeout` or `exchange_timeout`).
    #[error("no progress within {after:?} during {phase}")]
    Timeout {
        /// The step that was waiting.
        phase: Phase,
        /// The deadline.
        after: Duration,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error during {phase}: {source}")]
    Io {
        /// The step.
        phase: Phase,
        /// What the OS said.
        source: Arc<io::Error>,
    },
    /// The server closed the connection before the reply was complete.
    #[error(
        "connection closed by the server during {phase} ({received} bytes of the reply received)"
    )]
    Closed {
        /// The step.
        phase: Phase,
        /// Bytes of the reply that had arrived.
        received: usize,
    },
    /// The reply announced more bytes than `max_reply_len`.
    #[error("reply of {len} bytes exceeds the cap of {max}")]
    ReplyTooLarge {
        /// Announced PDU length (header included).
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The reply does not decode or breaks the protocol (wrong function or transaction id,
    /// truncated TLVs, lengths past the PDU, too many attributes, a looping walk ...).
    #[error("malformed reply: {0}")]
    Malformed(isns_proto::Error),
    /// The server answered with a non-zero status.
    #[error("server answered status {0}")]
    Status(Status),
    /// The request cannot be encoded (a string too long, too many attributes ...).
    #[error("invalid request: {0}")]
    InvalidRequest(isns_proto::ApiMisuse),
}

/// A failed request: what went wrong, with which server and request.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    server: String,
    function: Option<Function>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, server: &str, function: Option<Function>) -> Self {
        Error {
            kind,
            server: server.to_owned(),
            function,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The server as given (`host:port`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The request that failed, when one was being sent.
    pub fn function(&self) -> Option<Function> {
        self.function
    }

    /// The server's status, for [`ErrorKind::Status`].
    pub fn status(&self) -> Option<Status> {
        match self.kind {
            ErrorKind::Status(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the connection was refused (nothing listens on the server's port).
    pub fn is_refused(&self) -> bool {
        matches!(&self.kind, ErrorKind::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused)
    }

    /// Whether a deadline expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iSNS server {}", self.server)?;
        if let Some(func) = self.function {
            write!(f, ", {}", func.name().unwrap_or("request"))?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Resolve(e) | ErrorKind::Connect(e) => Some(&**e),
            ErrorKind::Io { source, .. } => Some(&**source),
            ErrorKind::Malformed(e) => Some(e),
            ErrorKind::InvalidRequest(e) => Some(e),
            _ => None,
        }
    }
}
