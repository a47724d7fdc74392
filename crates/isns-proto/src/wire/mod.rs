//! iSNSP on the wire (RFC 4171 §5): a zero-copy [`Packet`] view over one PDU (the 12-byte header
//! and its payload), the header's typed [`Header`], [`Flags`], and the TLV layer in [`attr`]
//! ([`Tlv`] views, the bounded [`Attributes`] iterator, the typed [`Attribute`]).
//!
//! This module owns byte layout only: it knows nothing of transactions, sources or objects.
//!
//! # Safety of accessors
//!
//! Untrusted bytes go through [`Packet::new_checked`], which checks that the buffer holds the
//! whole header and the whole payload the header announces. After that **no accessor of
//! [`Packet`] can panic**. [`Tlv::new_checked`] does the same for one attribute, and the
//! [`Attributes`] iterator checks every TLV before yielding it, so iterating the payload of any
//! byte string ends with attributes or a typed [`InvalidMessage`], never a panic.
//! `new_unchecked` exists for buffers the caller built itself; there accessors may panic if the
//! buffer is too short.

pub mod attr;

pub use attr::{Attribute, Attributes, Port, Tlv, Value, ValueKind};

use crate::codes::Function;
use crate::error::{ApiMisuse, InvalidMessage};

/// Length of the iSNSP header.
pub const HEADER_LEN: usize = 12;

/// The only iSNSP version (RFC 4171 §5.1.1).
pub const VERSION: u16 = 1;

/// The largest payload the 16-bit PDU length field can announce that is a multiple of 4.
pub const MAX_PAYLOAD_LEN: usize = 0xfffc;

/// The largest PDU: header plus [`MAX_PAYLOAD_LEN`].
pub const MAX_PDU_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

/// Byte offsets of the header fields.
mod field {
    use core::ops::Range;

    pub const VERSION: Range<usize> = 0..2;
    pub const FUNCTION: Range<usize> = 2..4;
    pub const PDU_LENGTH: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const TRANSACTION_ID: Range<usize> = 8..10;
    pub const SEQUENCE_ID: Range<usize> = 10..12;
    pub const PAYLOAD: usize = super::HEADER_LEN;
}

/// The header's flags word (RFC 4171 §5.1.4). Unknown bits are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Flags(pub u16);

impl Flags {
    /// Sender is the iSNS client.
    pub const CLIENT: Flags = Flags(0x8000);
    /// Sender is the iSNS server.
    pub const SERVER: Flags = Flags(0x4000);
    /// An authentication block is present.
    pub const AUTH: Flags = Flags(0x2000);
    /// DevAttrReg: replace the existing registration.
    pub const REPLACE: Flags = Flags(0x1000);
    /// Last PDU of the message.
    pub const LAST_PDU: Flags = Flags(0x0800);
    /// First PDU of the message.
    pub const FIRST_PDU: Flags = Flags(0x0400);
    /// What a client sends on a one-PDU message: CLIENT | FIRST_PDU | LAST_PDU (0x8c00).
    pub const CLIENT_SINGLE: Flags = Flags(0x8c00);
    /// What a server sends on a one-PDU message: SERVER | FIRST_PDU | LAST_PDU (0x4c00).
    pub const SERVER_SINGLE: Flags = Flags(0x4c00);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` set or cleared.
    #[must_use]
    pub const fn with(self, other: Flags, on: bool) -> Flags {
        if on {
            Flags(self.0 | other.0)
        } else {
            Flags(self.0 & !other.0)
        }
    }
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// The total PDU length (header + payload) a header prefix announces; `None` while fewer than
/// [`HEADER_LEN`] bytes are available. Never panics; at most [`HEADER_LEN`]` + 65535`.
pub fn pdu_len(prefix: &[u8]) -> Option<usize> {
    let h = prefix.get(..HEADER_LEN)?;
    Some(HEADER_LEN + usize::from(read_u16(&h[field::PDU_LENGTH])))
}

/// A read/write view of one iSNSP PDU.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; see the module doc.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that it holds the header and the whole announced payload.
    /// Extra bytes after the PDU are allowed and ignored by every accessor.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, InvalidMessage> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer length against the header (see [`Packet::new_checked`]).
    pub fn check_len(&self) -> Result<(), InvalidMessage> {
        let buf = self.buffer.as_ref();
        let needed = pdu_len(buf).ok_or(InvalidMessage::Truncated {
            needed: HEADER_LEN,
            got: buf.len(),
        })?;
        if buf.len() < needed {
            return Err(InvalidMessage::Truncated {
                needed,
                got: buf.len(),
            });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// iSNSP version (1).
    pub fn version(&self) -> u16 {
        read_u16(&self.b()[field::VERSION])
    }

    /// Function id.
    pub fn function(&self) -> Function {
        Function(read_u16(&self.b()[field::FUNCTION]))
    }

    /// PDU length: payload bytes after the header.
    pub fn pdu_length(&self) -> u16 {
        read_u16(&self.b()[field::PDU_LENGTH])
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(read_u16(&self.b()[field::FLAGS]))
    }

    /// Transaction id.
    pub fn transaction_id(&self) -> u16 {
        read_u16(&self.b()[field::TRANSACTION_ID])
    }

    /// Sequence id (position of this PDU in its message, from 0).
    pub fn sequence_id(&self) -> u16 {
        read_u16(&self.b()[field::SEQUENCE_ID])
    }

    /// Total length of this PDU (header + payload).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.pdu_length())
    }

    /// The payload (empty if the buffer is shorter than announced, which `new_checked` rules out).
    pub fn payload(&self) -> &[u8] {
        self.b()
            .get(field::PAYLOAD..self.total_len())
            .unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the version.
    pub fn set_version(&mut self, v: u16) {
        self.bm()[field::VERSION].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the function id.
    pub fn set_function(&mut self, f: Function) {
        self.bm()[field::FUNCTION].copy_from_slice(&f.0.to_be_bytes());
    }

    /// Sets the PDU length.
    pub fn set_pdu_length(&mut self, v: u16) {
        self.bm()[field::PDU_LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, f: Flags) {
        self.bm()[field::FLAGS].copy_from_slice(&f.0.to_be_bytes());
    }

    /// Sets the transaction id.
    pub fn set_transaction_id(&mut self, v: u16) {
        self.bm()[field::TRANSACTION_ID].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the sequence id.
    pub fn set_sequence_id(&mut self, v: u16) {
        self.bm()[field::SEQUENCE_ID].copy_from_slice(&v.to_be_bytes());
    }

    /// The payload, mutable (as long as the buffer holds it).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        self.bm().get_mut(field::PAYLOAD..end).unwrap_or(&mut [])
    }
}

/// The typed header of one PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Function id.
    pub function: Function,
    /// Payload length.
    pub pdu_length: u16,
    /// Flags.
    pub flags: Flags,
    /// Transaction id.
    pub transaction_id: u16,
    /// Sequence id.
    pub sequence_id: u16,
}

impl Header {
    /// Parses and validates a checked packet's header: version 1, payload length a multiple of 4,
    /// and a single-PDU message (FIRST_PDU and LAST_PDU set, sequence id 0).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Header, InvalidMessage> {
        if packet.version() != VERSION {
            return Err(InvalidMessage::UnsupportedVersion(packet.version()));
        }
        if packet.pdu_length() % 4 != 0 {
            return Err(InvalidMessage::UnalignedPduLength(packet.pdu_length()));
        }
        let flags = packet.flags();
        let single = flags.contains(Flags(Flags::FIRST_PDU.0 | Flags::LAST_PDU.0));
        if !single || packet.sequence_id() != 0 {
            return Err(InvalidMessage::Fragmented {
                flags: flags.0,
                sequence_id: packet.sequence_id(),
            });
        }
        Ok(Header {
            function: packet.function(),
            pdu_length: packet.pdu_length(),
            flags,
            transaction_id: packet.transaction_id(),
            sequence_id: packet.sequence_id(),
        })
    }

    /// Bytes [`Header::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (version 1) into the first [`HEADER_LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), ApiMisuse> {
        let Some(h) = buf.get_mut(..HEADER_LEN) else {
            return Err(ApiMisuse::BufferTooSmall {
                needed: HEADER_LEN,
                got: buf.len(),
            });
        };
        let mut p = Packet::new_unchecked(h);
        p.set_version(VERSION);
        p.set_function(self.function);
        p.set_pdu_length(self.pdu_length);
        p.set_flags(self.flags);
        p.set_transaction_id(self.transaction_id);
        p.set_sequence_id(self.sequence_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_errors() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(vec![0u8; n]).unwrap_err(),
                InvalidMessage::Truncated { needed: 12, got: n }
            );
        }
        let mut b = vec![0, 1, 0, 2, 0, 8, 0x8c, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            InvalidMessage::Truncated {
                needed: 20,
                got: 16
            }
        );
        b.extend_from_slice(&[5, 6, 7, 8, 9]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(p.total_len(), 20);
    }

    #[test]
    fn header_rules() {
        let mut b = [0u8, 1, 0, 2, 0, 0, 0x8c, 0, 0, 7, 0, 0];
        let h = Header::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(h.function, Function::DEV_ATTR_QRY);
        assert_eq!(h.transaction_id, 7);
        b[1] = 2;
        assert_eq!(
            Header::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(InvalidMessage::UnsupportedVersion(2))
        );
        b[1] = 1;
        b[6] = 0x88; // LAST only
        assert!(matches!(
            Header::parse(&Packet::new_checked(&b[..]).unwrap()),
            Err(InvalidMessage::Fragmented { .. })
        ));
        let mut out = [0u8; 12];
        h.emit(&mut out).unwrap();
        b[6] = 0x8c;
        assert_eq!(out, b);
        assert!(h.emit(&mut out[..11]).is_err());
        assert_eq!(pdu_len(&[0, 1, 0, 2, 0xff, 0xff, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            pdu_len(&[0, 1, 0, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0]),
            Some(12 + 65535)
        );
    }
}
