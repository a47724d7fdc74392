//! The crate's one error type, [`Error`], and the sub-enums that say *who* was wrong: the peer sent
//! bytes that do not decode ([`InvalidMessage`]), the peer sent well-formed messages against the
//! protocol ([`PeerMisbehaved`]), or our caller asked for something that cannot be encoded
//! ([`ApiMisuse`]). A server's non-zero status is not an error here: it is part of a parsed
//! response, and the driver decides what it means.

use crate::codes::{Function, Status, Tag};

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that are not a valid iSNS message.
    #[error("invalid iSNS message from the peer: {0}")]
    InvalidMessage(#[from] InvalidMessage),
    /// The peer sent a well-formed message that breaks the protocol.
    #[error("iSNS peer broke the protocol: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// Our caller asked for something that cannot be encoded.
    #[error("API misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
}

/// The peer sent bytes that do not decode. Offsets count from the start of the PDU (header
/// included), so they point into a capture directly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// Fewer bytes than the 12-byte header, or than the header's PDU length announces.
    #[error("PDU truncated: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The iSNSP version is not 1.
    #[error("iSNSP version {0}, only version 1 exists")]
    UnsupportedVersion(u16),
    /// The PDU length is not a multiple of 4 (RFC 4171 §5.1.3).
    #[error("PDU length {0} is not a multiple of 4")]
    UnalignedPduLength(u16),
    /// The PDU is one fragment of a multi-PDU message (FIRST_PDU and LAST_PDU not both set, or a
    /// sequence id other than 0). open-isns never fragments; this crate does not reassemble.
    #[error("fragmented message (flags {flags:#06x}, sequence id {sequence_id}) is not supported")]
    Fragmented {
        /// The header flags.
        flags: u16,
        /// The sequence id.
        sequence_id: u16,
    },
    /// A response payload is shorter than its 4-byte status.
    #[error("response without its 4-byte status")]
    MissingStatus,
    /// Fewer than 8 bytes remain for an attribute's tag and length.
    #[error("attribute header truncated at offset {offset}: {remaining} bytes left in the PDU")]
    AttributeHeaderTruncated {
        /// Where the attribute starts.
        offset: usize,
        /// Bytes left in the PDU.
        remaining: usize,
    },
    /// An attribute's length runs past the end of the PDU.
    #[error(
        "attribute {tag} at offset {offset} claims {len} bytes, only {remaining} left in the PDU"
    )]
    AttributePastPdu {
        /// Its tag.
        tag: Tag,
        /// Where the attribute starts.
        offset: usize,
        /// The length it claims.
        len: u32,
        /// Bytes left after its header.
        remaining: usize,
    },
    /// An attribute length that is not a multiple of 4 (RFC 4171 §5.1.2).
    #[error("attribute {tag} has length {len}, not a multiple of 4")]
    UnalignedAttribute {
        /// Its tag.
        tag: Tag,
        /// Its length.
        len: u32,
    },
    /// More attributes than [`crate::MAX_ATTRIBUTES`] in one message.
    #[error("more than {max} attributes in one message")]
    TooManyAttributes {
        /// The cap.
        max: usize,
    },
    /// A known tag with a value of the wrong size (a u32 that is not 4 bytes, an address that is
    /// not 16, a delimiter with a value ...).
    #[error("attribute {tag} has length {len}, expected {expected}")]
    BadValueLength {
        /// Its tag.
        tag: Tag,
        /// Its length.
        len: u32,
        /// What its type needs.
        expected: &'static str,
    },
    /// A string attribute without its terminating NUL.
    #[error("string attribute {tag} is not NUL-terminated")]
    StringNotTerminated {
        /// Its tag.
        tag: Tag,
    },
    /// A string attribute with non-zero bytes after its terminating NUL.
    #[error("string attribute {tag} has non-zero bytes after its NUL")]
    StringPadding {
        /// Its tag.
        tag: Tag,
    },
    /// A string attribute that is not UTF-8.
    #[error("string attribute {tag} is not UTF-8")]
    StringNotUtf8 {
        /// Its tag.
        tag: Tag,
    },
    /// A string longer than its tag allows (iSCSI names 223 bytes, EID and alias 255).
    #[error("string attribute {tag} is {len} bytes long, at most {max} allowed")]
    StringTooLong {
        /// Its tag.
        tag: Tag,
        /// Its length without the NUL.
        len: usize,
        /// The cap.
        max: usize,
    },
}

/// The peer sent well-formed messages that break the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A reply whose function is not the response to our request.
    #[error("expected {expected}, got {got}")]
    UnexpectedFunction {
        /// What we wait for.
        expected: Function,
        /// What came.
        got: Function,
    },
    /// A reply whose transaction id is not our request's.
    #[error("reply transaction id {got} does not match our request's {expected}")]
    TransactionIdMismatch {
        /// Ours.
        expected: u16,
        /// Theirs.
        got: u16,
    },
    /// A message lacks an attribute it must carry.
    #[error("{message} without {what}")]
    MissingAttribute {
        /// Which message.
        message: Function,
        /// What is missing.
        what: &'static str,
    },
    /// An object in a reply lacks one of its key attributes (a portal IP without its port, a
    /// portal group name without its portal IP or port).
    #[error("{object} without {missing}")]
    IncompleteObject {
        /// The object type.
        object: &'static str,
        /// The missing key attribute.
        missing: &'static str,
    },
    /// A successful DevGetNext reply whose key is not the key attributes of the walked object type.
    #[error("DevGetNext reply key is not {expected}")]
    BadGetNextKey {
        /// The key the walk needs.
        expected: &'static str,
    },
    /// A DevGetNext walk was answered with a key it had already returned (the walk would loop).
    #[error("DevGetNext returned {key:?} twice")]
    GetNextLoop {
        /// The repeated key.
        key: String,
    },
    /// A walk or a decode found more objects than the configured cap.
    #[error("more than {max} objects")]
    TooManyObjects {
        /// The cap.
        max: usize,
    },
    /// A query was answered with a status that the recipe cannot continue from.
    #[error("{function} failed with status {status}")]
    Status {
        /// The request.
        function: Function,
        /// The server's status.
        status: Status,
    },
}

/// Our caller asked for something that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// A string that contains a NUL byte cannot be sent NUL-terminated.
    #[error("string for attribute {tag} contains a NUL byte")]
    StringHasNul {
        /// Its tag.
        tag: Tag,
    },
    /// A string longer than its tag allows.
    #[error("string for attribute {tag} is {len} bytes long, at most {max} allowed")]
    StringTooLong {
        /// Its tag.
        tag: Tag,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A value of a type the tag does not have (e.g. a string for the PGT).
    #[error("attribute {tag} cannot carry {given}")]
    WrongValueType {
        /// Its tag.
        tag: Tag,
        /// What was given.
        given: &'static str,
    },
    /// The message does not fit the 16-bit PDU length field.
    #[error("message payload of {len} bytes exceeds the PDU maximum of {max}")]
    MessageTooLarge {
        /// Its payload length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// More attributes than [`crate::MAX_ATTRIBUTES`].
    #[error("more than {max} attributes in one message")]
    TooManyAttributes {
        /// The cap.
        max: usize,
    },
    /// A response needs a status and a request must not have one.
    #[error("{function} {}", if *.is_response { "needs a status" } else { "must not carry a status" })]
    StatusMismatch {
        /// The function.
        function: Function,
        /// Whether it is a response.
        is_response: bool,
    },
    /// The output buffer is too small.
    #[error("buffer of {got} bytes too small, need {needed}")]
    BufferTooSmall {
        /// Needed.
        needed: usize,
        /// Given.
        got: usize,
    },
}
