//! The crate's one error type, [`Error`], and the sub-enums that say *who* was wrong: the peer
//! sent garbage ([`InvalidPdu`]), the peer sent well-formed PDUs against the protocol
//! ([`PeerMisbehaved`]), the target refused the login ([`LoginFailure`]) or rejected a PDU, a
//! resource cap was hit ([`Limit`]), or our caller used the API wrongly ([`ApiMisuse`]).
//!
//! Mapping these to external codes (HRESULTs) is the driver's job and happens in exactly one
//! function there (`iscsi_client::Error::hresult`).

use crate::address::AddressError;
use crate::chap::ChapValueError;
use crate::text::TextError;
use crate::wire::{Opcode, RejectReason};

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that are not a valid PDU or valid text.
    #[error("invalid PDU from the target: {0}")]
    InvalidPdu(#[from] InvalidPdu),
    /// The peer sent well-formed PDUs that break the protocol.
    #[error("target broke the protocol: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// The target answered the login with a non-success, non-redirect status.
    #[error("login failed: {0}")]
    Login(#[from] LoginFailure),
    /// The target sent a Reject PDU.
    #[error("target rejected our PDU: {reason}")]
    Rejected {
        /// The reason code.
        reason: RejectReason,
    },
    /// A resource cap configured in [`crate::session::SessionConfig`] was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(#[from] Limit),
    /// Our caller used the API wrongly.
    #[error("API misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
}

/// The peer sent bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPdu {
    /// The buffer is shorter than the BHS or than what the BHS announces.
    #[error("PDU truncated: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The connection ended in the middle of a PDU.
    #[error("connection closed in the middle of a PDU ({buffered} bytes buffered)")]
    CutShort {
        /// Bytes of the partial PDU received.
        buffered: usize,
    },
    /// The DataSegmentLength exceeds the MaxRecvDataSegmentLength we declared.
    #[error(
        "DataSegmentLength {len} exceeds our MaxRecvDataSegmentLength {max} (opcode {opcode:?})"
    )]
    DataSegmentTooLong {
        /// Announced length.
        len: u32,
        /// Our declared limit.
        max: u32,
        /// Opcode of the offending PDU.
        opcode: Opcode,
    },
    /// The key=value text does not decode.
    #[error("{0}")]
    Text(#[from] TextError),
    /// A TargetAddress value does not parse.
    #[error("{0}")]
    TargetAddress(#[from] AddressError),
    /// A CHAP value does not decode.
    #[error("{0}")]
    Chap(#[from] ChapValueError),
    /// A numeric key has a non-numeric or out-of-range value.
    #[error("key {key} has invalid numeric value {value:?}")]
    BadNumber {
        /// The key.
        key: String,
        /// The value (truncated to 64 bytes).
        value: String,
    },
}

/// Who-was-wrong: the target, with well-formed PDUs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A PDU that is not allowed in the current phase.
    #[error("unexpected {opcode:?} PDU while {phase}")]
    UnexpectedPdu {
        /// Its opcode.
        opcode: Opcode,
        /// What we were waiting for.
        phase: &'static str,
    },
    /// A response carries an ITT we did not send.
    #[error("response ITT {got:#010x} does not match our request ITT {expected:#010x}")]
    UnexpectedItt {
        /// Ours.
        expected: u32,
        /// Theirs.
        got: u32,
    },
    /// The Login Response has the wrong stage or transit bits.
    #[error("login response moved to an unexpected stage (CSG {csg}, NSG {nsg}, T={transit})")]
    BadStageTransition {
        /// CSG as a number.
        csg: u8,
        /// NSG as a number.
        nsg: u8,
        /// T bit.
        transit: bool,
    },
    /// The target answered a version we cannot speak.
    #[error("target speaks iSCSI version {0}, we speak version 0")]
    UnsupportedVersion(u8),
    /// A key we need is missing from the target's answer.
    #[error("target did not send the required key {0}")]
    MissingKey(&'static str),
    /// A key we offered was answered with Reject/NotUnderstood/an unusable value.
    #[error("target answered {key}={value}")]
    KeyRefused {
        /// The key.
        key: String,
        /// The answer.
        value: String,
    },
    /// The target selected an authentication method we did not offer.
    #[error("target selected AuthMethod={0}, which we did not offer")]
    AuthMethodNotOffered(String),
    /// We required the target to authenticate (mutual CHAP) but it chose AuthMethod=None.
    #[error("mutual CHAP is configured but the target chose AuthMethod=None")]
    AuthenticationSkipped,
    /// The target selected a CHAP algorithm we did not offer.
    #[error("target selected CHAP_A={0}, which we did not offer")]
    ChapAlgorithmNotOffered(String),
    /// The target sent our own challenge back (reflection attack).
    #[error("target reflected our CHAP challenge")]
    ChapChallengeReflected,
    /// Mutual CHAP: the target's CHAP_N/CHAP_R do not prove it knows the secret.
    #[error("mutual CHAP failed: {0}")]
    TargetAuthenticationFailed(&'static str),
    /// F=0 with TTT=0xffffffff: the target has more but gave us no tag to continue.
    #[error("text response is not final but carries no target transfer tag")]
    ContinuationWithoutTag,
    /// The SendTargets answer has a TargetAddress before any TargetName.
    #[error("TargetAddress={0} before any TargetName")]
    AddressWithoutTarget(String),
    /// A redirect (status class 1) without a usable TargetAddress.
    #[error("login redirect without TargetAddress")]
    RedirectWithoutAddress,
    /// The target announced it will drop the connection (Async Message event 2 or 3).
    #[error("target announced it drops the connection (async event {event})")]
    ConnectionDropAnnounced {
        /// The AsyncEvent code.
        event: u8,
    },
    /// The Logout Response carries a non-zero response code.
    #[error("logout failed with response code {0}")]
    LogoutFailed(u8),
    /// The login needed more PDUs than any sane target uses.
    #[error("login did not complete within {0} PDUs")]
    LoginTooLong(usize),
}

/// A login refused by the target (Status-Class 2 or 3, or an unknown class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{} (status 0x{class:02x}{detail:02x})", self.reason())]
pub struct LoginFailure {
    /// Status-Class.
    pub class: u8,
    /// Status-Detail.
    pub detail: u8,
}

/// The named meaning of a Login Response status (RFC 7143 §11.13.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginFailureReason {
    /// 0x0101 target moved temporarily (a redirect).
    TargetMovedTemporarily,
    /// 0x0102 target moved permanently (a redirect).
    TargetMovedPermanently,
    /// 0x0200 initiator error (generic).
    InitiatorError,
    /// 0x0201 authentication failure.
    AuthenticationFailure,
    /// 0x0202 authorization failure.
    AuthorizationFailure,
    /// 0x0203 target not found.
    NotFound,
    /// 0x0204 target removed.
    TargetRemoved,
    /// 0x0205 unsupported version.
    UnsupportedVersion,
    /// 0x0206 too many connections.
    TooManyConnections,
    /// 0x0207 missing parameter.
    MissingParameter,
    /// 0x0208 cannot include in session.
    CannotIncludeInSession,
    /// 0x0209 session type not supported.
    SessionTypeNotSupported,
    /// 0x020a session does not exist.
    SessionDoesNotExist,
    /// 0x020b invalid request during login.
    InvalidDuringLogin,
    /// 0x0300 target error.
    TargetError,
    /// 0x0301 service unavailable.
    ServiceUnavailable,
    /// 0x0302 out of resources.
    OutOfResources,
    /// Any other class/detail.
    Other,
}

impl LoginFailure {
    /// The named meaning of this status.
    pub fn reason(&self) -> LoginFailureReason {
        use LoginFailureReason::*;
        match (self.class, self.detail) {
            (1, 1) => TargetMovedTemporarily,
            (1, 2) => TargetMovedPermanently,
            (2, 0) => InitiatorError,
            (2, 1) => AuthenticationFailure,
            (2, 2) => AuthorizationFailure,
            (2, 3) => NotFound,
            (2, 4) => TargetRemoved,
            (2, 5) => UnsupportedVersion,
            (2, 6) => TooManyConnections,
            (2, 7) => MissingParameter,
            (2, 8) => CannotIncludeInSession,
            (2, 9) => SessionTypeNotSupported,
            (2, 0x0a) => SessionDoesNotExist,
            (2, 0x0b) => InvalidDuringLogin,
            (3, 0) => TargetError,
            (3, 1) => ServiceUnavailable,
            (3, 2) => OutOfResources,
            _ => Other,
        }
    }
}

impl core::fmt::Display for LoginFailureReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use LoginFailureReason::*;
        f.write_str(match self {
            TargetMovedTemporarily => "target moved temporarily",
            TargetMovedPermanently => "target moved permanently",
            InitiatorError => "initiator error",
            AuthenticationFailure => "authentication failure",
            AuthorizationFailure => "authorization failure",
            NotFound => "target not found",
            TargetRemoved => "target removed",
            UnsupportedVersion => "unsupported version",
            TooManyConnections => "too many connections",
            MissingParameter => "missing parameter",
            CannotIncludeInSession => "cannot include in session",
            SessionTypeNotSupported => "session type not supported",
            SessionDoesNotExist => "session does not exist",
            InvalidDuringLogin => "invalid request during login",
            TargetError => "target error",
            ServiceUnavailable => "service unavailable",
            OutOfResources => "out of resources",
            Other => "unknown login status",
        })
    }
}

/// A resource cap that was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Limit {
    /// More PDUs than `max_pdus` were received.
    #[error("more than {max} PDUs received")]
    Pdus {
        /// The cap.
        max: usize,
    },
    /// The SendTargets answer grew beyond `max_answer_bytes`.
    #[error("SendTargets answer exceeds {max} bytes")]
    AnswerBytes {
        /// The cap.
        max: usize,
    },
}

/// Our caller used the API wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The session already failed or finished; create a new one.
    #[error("the session has already {0}")]
    SessionOver(&'static str),
    /// A key or value cannot be encoded as text.
    #[error("cannot encode key {key:?}: {why}")]
    BadText {
        /// The key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// A data segment longer than the 24-bit length field.
    #[error("data segment of {len} bytes does not fit the 24-bit length field")]
    DataSegmentTooLong {
        /// Its length.
        len: usize,
    },
    /// The output buffer is too small.
    #[error("buffer of {got} bytes too small, need {needed}")]
    BufferTooSmall {
        /// Needed.
        needed: usize,
        /// Given.
        got: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    BadConfig(&'static str),
}
