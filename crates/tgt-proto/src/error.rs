//! The crate's one error type, [`Error`], and the sub-enums that say *who* was wrong: our caller
//! asked for a request tgtd would choke on ([`Refused`]), bytes do not decode as a tgtadm message
//! ([`InvalidMessage`]), or a `show` reply's text breaks its grammar ([`ShowError`]).
//!
//! Every value from outside that an error carries is cut to [`EXCERPT_LEN`] characters and shown
//! with Rust's `{:?}` escaping, so control characters never reach a terminal raw. Passwords are
//! never carried at all.

use crate::wire::{Mode, Operation};

/// The most characters of an outside value an error keeps.
pub const EXCERPT_LEN: usize = 80;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// We refuse to build (or accept) this request: tgtd would choke on it or misread it.
    #[error("request refused: {0}")]
    Refused(#[from] Refused),
    /// Bytes that are not a valid tgtadm request or reply.
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] InvalidMessage),
    /// A `show` reply whose text breaks its grammar.
    #[error("malformed show output: {0}")]
    Show(#[from] ShowError),
}

/// Which value of a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The target id.
    Tid,
    /// The target name (`targetname=`).
    TargetName,
    /// An ACL value (`initiator-address=` / `initiator-name=`).
    Acl,
    /// An account user name (`user=`).
    User,
    /// An account password (`password=`); its value is never shown.
    Password,
    /// A portal address (`portal=`).
    Portal,
    /// A system parameter's key.
    SystemKey,
    /// A system parameter's value.
    SystemValue,
}

impl core::fmt::Display for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Field::Tid => "target id",
            Field::TargetName => "target name",
            Field::Acl => "ACL value",
            Field::User => "account user",
            Field::Password => "account password",
            Field::Portal => "portal",
            Field::SystemKey => "system parameter key",
            Field::SystemValue => "system parameter value",
        })
    }
}

/// A request we will not send (or, when parsing, would not have sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The payload (text and trailing NUL) exceeds tgtd's [`crate::wire::MAX_REQUEST_PAYLOAD`];
    /// tgtd would close the connection without a reply.
    #[error("payload of {len} bytes (with its NUL) exceeds tgtd's limit of {max}")]
    PayloadTooLong {
        /// Its length, trailing NUL included (for a system update, counted up to the parameter
        /// that crossed the limit: the rest is not even joined).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value breaks the rules for its field (see the crate doc's table).
    #[error("{field}{}: {reason}", shown(.value))]
    BadValue {
        /// Which field.
        field: Field,
        /// The value, cut and escaped; `None` for passwords.
        value: Option<String>,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A payload text holding a NUL byte: tgtd would read only what comes before it.
    #[error("payload text holds a NUL byte")]
    PayloadHasNul,
    /// The output buffer given to `emit` is shorter than the request.
    #[error("buffer of {got} bytes too small, need {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A system update with no parameter.
    #[error("system update without any parameter")]
    NoSystemParams,
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => format!(" {v:?}"),
        None => String::new(),
    }
}

/// Bytes that are not a tgtadm request or reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// Fewer bytes than a header.
    #[error("truncated: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The `len` field is smaller than the header it is part of.
    #[error("length field {len} is smaller than the {min}-byte header")]
    LengthTooSmall {
        /// The `len` field.
        len: u32,
        /// The header length.
        min: usize,
    },
    /// The buffer holds a different number of bytes than `len` announces.
    #[error("length field announces {announced} bytes, buffer has {got}")]
    LengthMismatch {
        /// What `len` says.
        announced: usize,
        /// What the buffer holds.
        got: usize,
    },
    /// A request payload longer than tgtd accepts.
    #[error("request payload of {len} bytes exceeds tgtd's limit of {max}")]
    PayloadTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A request payload that does not end in NUL.
    #[error("request payload does not end in NUL")]
    PayloadNotTerminated,
    /// A request payload with a NUL before its end (tgtd would ignore what follows).
    #[error("request payload has a NUL at offset {offset}, before its end")]
    PayloadHasNul {
        /// Offset of the first NUL.
        offset: usize,
    },
    /// A request payload that is not UTF-8.
    #[error("request payload is not UTF-8")]
    PayloadNotUtf8,
    /// A driver other than `iscsi`.
    #[error("driver {0:?} is not \"iscsi\"")]
    WrongLld(String),
    /// A mode/operation this crate does not model.
    #[error("unsupported request: mode {mode:?}, operation {op:?}")]
    Unsupported {
        /// The mode.
        mode: Mode,
        /// The operation.
        op: Operation,
    },
    /// A header field with a value the operation cannot have.
    #[error("header field {field} has value {value} not valid for this operation")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// A payload that is not what the operation takes.
    #[error("payload {got:?} is not {expected}")]
    BadPayload {
        /// What was expected.
        expected: &'static str,
        /// What came, cut and escaped (never shown for account creation).
        got: String,
    },
}

/// Which `show` grammar a [`ShowError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grammar {
    /// `--mode target --op show`.
    Targets,
    /// `--mode portal --op show`.
    Portals,
    /// `--mode account --op show`.
    Accounts,
    /// `--mode system --op show`.
    System,
    /// `--mode lld --op show`.
    Lld,
}

impl core::fmt::Display for Grammar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Grammar::Targets => "target list",
            Grammar::Portals => "portal list",
            Grammar::Accounts => "account list",
            Grammar::System => "system information",
            Grammar::Lld => "driver list",
        })
    }
}

/// What is wrong with a line of `show` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShowProblem {
    /// A number that does not parse or does not fit; names what it should be.
    BadNumber(&'static str),
    /// A line that belongs under a header that did not come first; names the header.
    Orphan(&'static str),
    /// A value of the wrong form; names the form.
    BadValue(&'static str),
}

impl core::fmt::Display for ShowProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ShowProblem::BadNumber(what) => write!(f, "bad number for {what}"),
            ShowProblem::Orphan(header) => write!(f, "line outside of any {header}"),
            ShowProblem::BadValue(form) => write!(f, "value is not {form}"),
        }
    }
}

/// A malformed line of `show` output: which grammar, which line (1-based), what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{grammar}, line {line} {text:?}: {problem}")]
pub struct ShowError {
    /// The grammar being parsed.
    pub grammar: Grammar,
    /// The 1-based line number.
    pub line: usize,
    /// The line, cut to [`EXCERPT_LEN`] characters.
    pub text: String,
    /// What was wrong.
    pub problem: ShowProblem,
}

impl ShowError {
    pub(crate) fn new(grammar: Grammar, line: usize, text: &str, problem: ShowProblem) -> Self {
        ShowError {
            grammar,
            line,
            text: excerpt(text),
            problem,
        }
    }
}

/// The first [`EXCERPT_LEN`] characters of `s`.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(EXCERPT_LEN).collect()
}
