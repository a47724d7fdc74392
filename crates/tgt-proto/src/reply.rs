//! Replies: the 8-byte header ([`ReplyRepr`]: error code and total length) and the payload text.
//!
//! tgtd answers every request with `err` and `len` (8 + payload bytes), then the payload, then
//! closes. An error has `err` ≠ 0 and normally no payload; a successful `show` has text ending in
//! NUL. A driver reads the header, checks it with [`ReplyRepr::parse`] (which refuses a `len`
//! below 8), reads [`ReplyRepr::payload_len`] more bytes, and hands them to [`reply_text`] and a
//! parser of [`crate::show`].

use std::borrow::Cow;

use crate::error::InvalidMessage;
use crate::wire::{ErrorCode, REPLY_HEADER_LEN, ReplyHeader};

/// The reply header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyRepr {
    /// The `err` field.
    pub code: ErrorCode,
    /// The `len` field: 8 plus the payload bytes.
    pub len: u32,
}

impl ReplyRepr {
    /// A reply with no payload.
    pub fn new(code: ErrorCode) -> Self {
        ReplyRepr {
            code,
            len: REPLY_HEADER_LEN as u32,
        }
    }

    /// Parses the first 8 bytes of `bytes` (more may follow: the payload). Never panics.
    ///
    /// # Errors
    /// [`InvalidMessage::Truncated`] below 8 bytes, [`InvalidMessage::LengthTooSmall`] when `len`
    /// is below 8.
    pub fn parse(bytes: &[u8]) -> Result<ReplyRepr, InvalidMessage> {
        let h = ReplyHeader::new_checked(bytes)?;
        let len = h.len();
        if (len as usize) < REPLY_HEADER_LEN {
            return Err(InvalidMessage::LengthTooSmall {
                len,
                min: REPLY_HEADER_LEN,
            });
        }
        Ok(ReplyRepr {
            code: h.error_code(),
            len,
        })
    }

    /// The payload bytes announced after the header (`len − 8`; 0 if `len` is below 8).
    pub fn payload_len(&self) -> usize {
        (self.len as usize).saturating_sub(REPLY_HEADER_LEN)
    }

    /// Writes the 8 header bytes.
    pub fn emit(&self) -> [u8; REPLY_HEADER_LEN] {
        let mut buf = [0u8; REPLY_HEADER_LEN];
        let mut h = ReplyHeader::new_unchecked(&mut buf[..]);
        h.set_error_code(self.code);
        h.set_len(self.len);
        buf
    }
}

/// A whole reply held in one buffer: the header and exactly the payload it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The header.
    pub header: ReplyRepr,
    /// The payload (`len − 8` bytes).
    pub payload: &'a [u8],
}

impl<'a> Reply<'a> {
    /// Parses a complete reply. Never panics.
    ///
    /// # Errors
    /// As [`ReplyRepr::parse`], and [`InvalidMessage::LengthMismatch`] when the buffer does not hold
    /// exactly `len` bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Reply<'a>, InvalidMessage> {
        let header = ReplyRepr::parse(bytes)?;
        if header.len as usize != bytes.len() {
            return Err(InvalidMessage::LengthMismatch {
                announced: header.len as usize,
                got: bytes.len(),
            });
        }
        Ok(Reply {
            header,
            payload: &bytes[REPLY_HEADER_LEN..],
        })
    }
}

/// The text of a reply payload: up to its first NUL (tgtd ends text with one), with any byte
/// sequence that is not UTF-8 replaced by U+FFFD (names and paths come from outside).
pub fn reply_text(payload: &[u8]) -> Cow<'_, str> {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_and_checks_len() {
        let ok = ReplyRepr::parse(&[0, 0, 0, 0, 35, 0, 0, 0]);
        assert_eq!(
            ok,
            Ok(ReplyRepr {
                code: ErrorCode::Success,
                len: 35
            })
        );
        assert_eq!(ok.map(|r| r.payload_len()), Ok(27));
        assert_eq!(
            ReplyRepr::parse(&[15, 0, 0, 0, 8, 0, 0, 0]).map(|r| r.code),
            Ok(ErrorCode::NoUser)
        );
        assert_eq!(
            ReplyRepr::parse(&[0, 0, 0, 0, 7, 0, 0, 0]),
            Err(InvalidMessage::LengthTooSmall { len: 7, min: 8 })
        );
        assert_eq!(
            ReplyRepr::parse(&[0, 0, 0]),
            Err(InvalidMessage::Truncated { needed: 8, got: 3 })
        );
        // An unknown code round-trips.
        let odd = ReplyRepr {
            code: ErrorCode::from(4242),
            len: 8,
        };
        assert_eq!(ReplyRepr::parse(&odd.emit()), Ok(odd));
    }

    #[test]
    fn whole_reply_must_match_its_len() {
        let mut bytes = ReplyRepr {
            code: ErrorCode::Success,
            len: 11,
        }
        .emit()
        .to_vec();
        bytes.extend_from_slice(b"ab\0");
        let r = Reply::parse(&bytes);
        assert_eq!(
            r.map(|r| reply_text(r.payload).into_owned()),
            Ok("ab".into())
        );
        bytes.push(b'x');
        assert!(matches!(
            Reply::parse(&bytes),
            Err(InvalidMessage::LengthMismatch {
                announced: 11,
                got: 12
            })
        ));
    }

    #[test]
    fn text_stops_at_nul_and_replaces_bad_utf8() {
        assert_eq!(reply_text(b"a\xffb\0junk"), "a\u{fffd}b");
        assert_eq!(reply_text(b""), "");
    }
}
