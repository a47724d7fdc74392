//! The client's error: what went wrong ([`ErrorKind`]), where (the portal as given and the socket
//! address, when one was reached) and in which [`Phase`]. What an error means to a caller (a
//! portal status, a VDS code) is the caller's business: this crate knows nothing of VDS.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use iscsi_proto::{LoginFailure, TargetAddress};

/// The step of a discovery that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Resolving a DNS name or an IPv6 zone.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// The iSCSI login (security and operational stages).
    Login,
    /// Waiting for the SendTargets answer.
    SendTargets,
    /// Waiting for the Logout Response.
    Logout,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Login => "login",
            Phase::SendTargets => "SendTargets",
            Phase::Logout => "logout",
        })
    }
}

impl From<iscsi_proto::Phase> for Phase {
    fn from(p: iscsi_proto::Phase) -> Self {
        match p {
            iscsi_proto::Phase::Login => Phase::Login,
            iscsi_proto::Phase::SendTargets => Phase::SendTargets,
            iscsi_proto::Phase::Logout | iscsi_proto::Phase::Done => Phase::Logout,
        }
    }
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// `connect_timeout`.
    Connect,
    /// `pdu_timeout`: the target sent nothing for that long.
    Pdu,
    /// `overall_timeout`.
    Overall,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deadline::Connect => "connect timeout",
            Deadline::Pdu => "PDU timeout",
            Deadline::Overall => "overall timeout",
        })
    }
}

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host name did not resolve (or an IPv6 zone names no interface).
    #[error("cannot resolve: {0}")]
    Resolve(Arc<io::Error>),
    /// The TCP connection failed (refused, unreachable, ...).
    #[error("cannot connect: {0}")]
    Connect(Arc<io::Error>),
    /// A deadline expired.
    #[error("{deadline} expired during {phase}")]
    Timeout {
        /// The step that was waiting.
        phase: Phase,
        /// Which deadline.
        deadline: Deadline,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// The target closed the connection before the step finished.
    #[error("connection closed by the target during {phase}")]
    Closed {
        /// The step.
        phase: Phase,
    },
    /// The target refused the login (other than for authentication).
    #[error("login refused: {0}")]
    Login(LoginFailure),
    /// The target refused our CHAP credentials (or needed some and we had none): status 0x0201.
    #[error("authentication failed: the target refused our credentials (status 0x0201)")]
    AuthenticationFailed,
    /// Mutual CHAP: the target did not prove it knows the target secret.
    #[error("mutual authentication failed: {0}")]
    MutualAuthenticationFailed(iscsi_proto::Error),
    /// A login redirect led back to an address already visited.
    #[error("redirect loop: sent back to {0}")]
    RedirectLoop(TargetAddress),
    /// More login redirects than `max_redirects`.
    #[error("more than {max} login redirects")]
    TooManyRedirects {
        /// The cap.
        max: u8,
    },
    /// The SendTargets answer exceeded `max_answer_bytes`.
    #[error("SendTargets answer larger than {max} bytes")]
    AnswerTooLarge {
        /// The cap.
        max: usize,
    },
    /// The target sent more than `max_pdus` PDUs.
    #[error("target sent more than {max} PDUs")]
    TooManyPdus {
        /// The cap.
        max: usize,
    },
    /// The target sent garbage or broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(iscsi_proto::Error),
    /// The options are invalid (empty initiator name, MRDSL out of range, ...).
    #[error("invalid options: {0}")]
    InvalidOptions(iscsi_proto::Error),
}

impl ErrorKind {
    /// Sorts an `iscsi_proto` error into the client's kinds.
    pub fn from_proto(e: iscsi_proto::Error) -> ErrorKind {
        use iscsi_proto::error::{Limit, PeerMisbehaved};
        match e {
            iscsi_proto::Error::Login(f)
                if f.reason() == iscsi_proto::LoginFailureReason::AuthenticationFailure =>
            {
                ErrorKind::AuthenticationFailed
            }
            iscsi_proto::Error::Login(f) => ErrorKind::Login(f),
            iscsi_proto::Error::PeerMisbehaved(
                PeerMisbehaved::TargetAuthenticationFailed(_)
                | PeerMisbehaved::ChapChallengeReflected
                | PeerMisbehaved::AuthenticationSkipped,
            ) => ErrorKind::MutualAuthenticationFailed(e),
            iscsi_proto::Error::LimitExceeded(Limit::Pdus { max }) => {
                ErrorKind::TooManyPdus { max }
            }
            iscsi_proto::Error::LimitExceeded(Limit::AnswerBytes { max }) => {
                ErrorKind::AnswerTooLarge { max }
            }
            iscsi_proto::Error::ApiMisuse(_) => ErrorKind::InvalidOptions(e),
            other => ErrorKind::Protocol(other),
        }
    }
}

/// A failed discovery or probe: what, where and when.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    portal: String,
    address: Option<SocketAddr>,
    phase: Phase,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        portal: String,
        address: Option<SocketAddr>,
        phase: Phase,
    ) -> Self {
        Error {
            kind,
            portal,
            address,
            phase,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The portal being talked to, as `host:port` (after redirects, the redirect target).
    pub fn portal(&self) -> &str {
        &self.portal
    }

    /// The socket address, once one was chosen.
    pub fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// The step that failed.
    pub fn phase(&self) -> Phase {
        self.phase
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iSCSI discovery at {}", self.portal)?;
        if let Some(a) = self.address {
            if a.to_string() != self.portal {
                write!(f, " ({a})")?;
            }
        }
        write!(f, ", {}: {}", self.phase, self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Resolve(e) | ErrorKind::Connect(e) | ErrorKind::Io(e) => Some(&**e),
            ErrorKind::MutualAuthenticationFailed(e)
            | ErrorKind::Protocol(e)
            | ErrorKind::InvalidOptions(e) => Some(e),
            _ => None,
        }
    }
}
