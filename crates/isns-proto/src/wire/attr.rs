//! iSNS attributes: tag (4 bytes), length (4 bytes), value padded to a multiple of 4
//! (RFC 4171 §5.1.2, §6.1). [`Tlv`] is the zero-copy view of one, [`Attributes`] walks a payload
//! with a cap on the count, and [`Attribute`] is the typed repr with a [`Value`] per
//! [`ValueKind`] ([`Tag::value_kind`] is the one table saying which tag has which type).
//!
//! Value rules:
//! - Length 0 is a NIL attribute for every tag ([`Value::Nil`]); the delimiter (tag 0) must be NIL.
//! - Strings are UTF-8, NUL-terminated, zero-padded to 4; the length counts the padding. Bytes
//!   after the first NUL must be zero. Caps: iSCSI names (tags 32, 48) 223 bytes, EID, alias and
//!   portal symbolic name 255 bytes (RFC 4171 §6.1; RFC 3720 §3.2.6.1), without the NUL.
//! - IP addresses are 16 bytes. Both IPv4-mapped `::ffff:a.b.c.d` (what tgt sends) and
//!   IPv4-compatible `::a.b.c.d` (what open-isns stores) decode to IPv4; `::` and `::1` and any
//!   other address whose would-be IPv4 part starts with octet 0 stay IPv6. IPv4 is emitted
//!   IPv4-mapped.
//! - Ports are a u32: the low 16 bits the port, bit 16 (0x10000) set for UDP; the other bits are
//!   reserved and ignored.
//! - Tags without a type here keep their value as raw bytes ([`Value::Raw`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::codes::Tag;
use crate::error::{ApiMisuse, InvalidMessage};

/// Longest iSCSI name (tags 32 and 48), in bytes without the NUL (RFC 3720 §3.2.6.1).
pub const MAX_ISCSI_NAME_LEN: usize = 223;
/// Longest EID, alias or portal symbolic name, in bytes without the NUL (RFC 4171 §6.1).
pub const MAX_LONG_STRING_LEN: usize = 255;

/// Length of a TLV's tag and length fields.
pub const TLV_HEADER_LEN: usize = 8;

/// How a tag's value is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Tag 0: always NIL.
    Delimiter,
    /// A NUL-terminated UTF-8 string of at most `max` bytes.
    String {
        /// Cap without the NUL.
        max: usize,
    },
    /// A 4-byte unsigned integer.
    U32,
    /// An 8-byte unsigned integer.
    U64,
    /// A 16-byte IP address.
    Ip,
    /// A 4-byte port with the UDP bit.
    Port,
    /// Anything else: raw bytes.
    Raw,
}

impl Tag {
    /// The type of this tag's value: the one table of attribute types in this crate.
    pub const fn value_kind(self) -> ValueKind {
        match self {
            Tag::DELIMITER => ValueKind::Delimiter,
            Tag::ISCSI_NAME | Tag::PG_ISCSI_NAME => ValueKind::String {
                max: MAX_ISCSI_NAME_LEN,
            },
            Tag::ENTITY_IDENTIFIER | Tag::ISCSI_ALIAS | Tag::PORTAL_SYMBOLIC_NAME => {
                ValueKind::String {
                    max: MAX_LONG_STRING_LEN,
                }
            }
            Tag::ENTITY_PROTOCOL
            | Tag::REGISTRATION_PERIOD
            | Tag::ENTITY_INDEX
            | Tag::ESI_INTERVAL
            | Tag::PORTAL_INDEX
            | Tag::ISCSI_NODE_TYPE
            | Tag::ISCSI_SCN_BITMAP
            | Tag::ISCSI_NODE_INDEX
            | Tag::PG_TAG
            | Tag::PG_INDEX => ValueKind::U32,
            Tag::TIMESTAMP => ValueKind::U64,
            Tag::PORTAL_IP | Tag::PG_PORTAL_IP | Tag::MANAGEMENT_IP => ValueKind::Ip,
            Tag::PORTAL_PORT | Tag::ESI_PORT | Tag::SCN_PORT | Tag::PG_PORTAL_PORT => {
                ValueKind::Port
            }
            _ => ValueKind::Raw,
        }
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Rounds up to a multiple of 4.
pub const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// A zero-copy view of one TLV.
#[derive(Debug, Clone)]
pub struct Tlv<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tlv<T> {
    /// Wraps a buffer without checking it; see the module doc of [`crate::wire`].
    pub const fn new_unchecked(buffer: T) -> Tlv<T> {
        Tlv { buffer }
    }

    /// Wraps a buffer and checks that it holds the 8-byte tag/length and the whole value.
    pub fn new_checked(buffer: T) -> Result<Tlv<T>, InvalidMessage> {
        let b = buffer.as_ref();
        if b.len() < TLV_HEADER_LEN {
            return Err(InvalidMessage::AttributeHeaderTruncated {
                offset: 0,
                remaining: b.len(),
            });
        }
        let t = Tlv::new_unchecked(buffer);
        let remaining = t.buffer.as_ref().len() - TLV_HEADER_LEN;
        if t.length() as usize > remaining {
            return Err(InvalidMessage::AttributePastPdu {
                tag: t.tag(),
                offset: 0,
                len: t.length(),
                remaining,
            });
        }
        Ok(t)
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        Tag(read_u32(&self.buffer.as_ref()[0..4]))
    }

    /// The length field (value bytes, padding included).
    pub fn length(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[4..8])
    }

    /// Header plus value.
    pub fn total_len(&self) -> usize {
        TLV_HEADER_LEN + self.length() as usize
    }

    /// The value bytes (empty if the buffer is short, which `new_checked` rules out).
    pub fn value(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(TLV_HEADER_LEN..self.total_len())
            .unwrap_or(&[])
    }
}

/// Walks the TLVs of a payload, checking each before yielding it. After the first error it
/// yields nothing more. At most [`crate::MAX_ATTRIBUTES`] are yielded; one more is an error.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
    offset: usize,
    count: usize,
    failed: bool,
}

impl<'a> Attributes<'a> {
    /// Walks `payload`; `base` is the offset of `payload` in its PDU, for error messages.
    pub fn new(payload: &'a [u8], base: usize) -> Attributes<'a> {
        Attributes {
            rest: payload,
            offset: base,
            count: 0,
            failed: false,
        }
    }

    fn fail(&mut self, e: InvalidMessage) -> Option<Result<Tlv<&'a [u8]>, InvalidMessage>> {
        self.failed = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Tlv<&'a [u8]>, InvalidMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        if self.count >= crate::MAX_ATTRIBUTES {
            return self.fail(InvalidMessage::TooManyAttributes {
                max: crate::MAX_ATTRIBUTES,
            });
        }
        let rest = self.rest;
        if rest.len() < TLV_HEADER_LEN {
            return self.fail(InvalidMessage::AttributeHeaderTruncated {
                offset: self.offset,
                remaining: rest.len(),
            });
        }
        let tlv = Tlv::new_unchecked(rest);
        let (tag, len) = (tlv.tag(), tlv.length());
        let remaining = rest.len() - TLV_HEADER_LEN;
        if len as usize > remaining {
            return self.fail(InvalidMessage::AttributePastPdu {
                tag,
                offset: self.offset,
                len,
                remaining,
            });
        }
        if len % 4 != 0 {
            return self.fail(InvalidMessage::UnalignedAttribute { tag, len });
        }
        let total = TLV_HEADER_LEN + len as usize;
        let (this, next) = rest.split_at(total);
        self.rest = next;
        self.offset += total;
        self.count += 1;
        Some(Ok(Tlv::new_unchecked(this)))
    }
}

/// A port attribute value: the port and the UDP bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    /// The port number.
    pub number: u16,
    /// Bit 16: UDP rather than TCP.
    pub udp: bool,
}

impl Port {
    /// A TCP port.
    pub const fn tcp(number: u16) -> Port {
        Port { number, udp: false }
    }

    /// The u32 on the wire.
    pub const fn to_wire(self) -> u32 {
        self.number as u32 | if self.udp { 0x1_0000 } else { 0 }
    }

    /// From the u32 on the wire (reserved bits ignored).
    pub const fn from_wire(v: u32) -> Port {
        Port {
            number: (v & 0xffff) as u16,
            udp: v & 0x1_0000 != 0,
        }
    }
}

impl core::fmt::Display for Port {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.number,
            if self.udp { "udp" } else { "tcp" }
        )
    }
}

/// Decodes a 16-byte iSNS address: IPv4-mapped and IPv4-compatible become IPv4 (module doc).
pub fn decode_ip(b: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(b);
    let v4 = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    if b[..10].iter().all(|&x| x == 0) && b[10] == 0xff && b[11] == 0xff {
        return IpAddr::V4(v4);
    }
    if b[..12].iter().all(|&x| x == 0) && b[12] != 0 {
        return IpAddr::V4(v4);
    }
    IpAddr::V6(v6)
}

/// Encodes an address in 16 bytes: IPv4 as IPv4-mapped.
pub fn encode_ip(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The canonical form of an address as this crate decodes it (IPv4 in IPv6 clothes becomes IPv4).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    decode_ip(encode_ip(ip))
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// Length 0.
    Nil,
    /// A string (without its NUL and padding).
    String(String),
    /// A 4-byte integer.
    U32(u32),
    /// An 8-byte integer.
    U64(u64),
    /// An IP address, canonical (see the module doc).
    Ip(IpAddr),
    /// A port.
    Port(Port),
    /// The bytes of a tag without a type here (length a multiple of 4).
    Raw(Vec<u8>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "NIL",
            Value::String(_) => "a string",
            Value::U32(_) => "a u32",
            Value::U64(_) => "a u64",
            Value::Ip(_) => "an IP address",
            Value::Port(_) => "a port",
            Value::Raw(_) => "raw bytes",
        }
    }
}

/// One typed attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The tag.
    pub tag: Tag,
    /// The value.
    pub value: Value,
}

impl Attribute {
    /// The delimiter (tag 0, NIL).
    pub const DELIMITER: Attribute = Attribute {
        tag: Tag::DELIMITER,
        value: Value::Nil,
    };

    /// A NIL attribute of `tag` (a query key or a requested operating attribute).
    pub const fn nil(tag: Tag) -> Attribute {
        Attribute {
            tag,
            value: Value::Nil,
        }
    }

    /// A string attribute (checked on emit).
    pub fn string(tag: Tag, s: impl Into<String>) -> Attribute {
        Attribute {
            tag,
            value: Value::String(s.into()),
        }
    }

    /// A u32 attribute.
    pub const fn u32(tag: Tag, v: u32) -> Attribute {
        Attribute {
            tag,
            value: Value::U32(v),
        }
    }

    /// An IP address attribute (stored canonical).
    pub fn ip(tag: Tag, ip: IpAddr) -> Attribute {
        Attribute {
            tag,
            value: Value::Ip(canonical_ip(ip)),
        }
    }

    /// A port attribute.
    pub const fn port(tag: Tag, port: Port) -> Attribute {
        Attribute {
            tag,
            value: Value::Port(port),
        }
    }

    /// Whether the value is NIL.
    pub fn is_nil(&self) -> bool {
        self.value == Value::Nil
    }

    /// The string value, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The u32 value, if it is one.
    pub fn as_u32(&self) -> Option<u32> {
        match self.value {
            Value::U32(v) => Some(v),
            _ => None,
        }
    }

    /// The u64 value, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self.value {
            Value::U64(v) => Some(v),
            _ => None,
        }
    }

    /// The address, if it is one.
    pub fn as_ip(&self) -> Option<IpAddr> {
        match self.value {
            Value::Ip(v) => Some(v),
            _ => None,
        }
    }

    /// The port, if it is one.
    pub fn as_port(&self) -> Option<Port> {
        match self.value {
            Value::Port(v) => Some(v),
            _ => None,
        }
    }

    /// Decodes one checked TLV by its tag's [`ValueKind`].
    pub fn parse<T: AsRef<[u8]>>(tlv: &Tlv<T>) -> Result<Attribute, InvalidMessage> {
        let tag = tlv.tag();
        let v = tlv.value();
        let len = tlv.length();
        let bad = |expected| InvalidMessage::BadValueLength { tag, len, expected };
        if v.is_empty() {
            return Ok(Attribute::nil(tag));
        }
        let value = match tag.value_kind() {
            ValueKind::Delimiter => return Err(bad("0")),
            ValueKind::String { max } => {
                let nul = v
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(InvalidMessage::StringNotTerminated { tag })?;
                if v[nul..].iter().any(|&b| b != 0) {
                    return Err(InvalidMessage::StringPadding { tag });
                }
                if nul > max {
                    return Err(InvalidMessage::StringTooLong { tag, len: nul, max });
                }
                let s = core::str::from_utf8(&v[..nul])
                    .map_err(|_| InvalidMessage::StringNotUtf8 { tag })?;
                Value::String(s.to_owned())
            }
            ValueKind::U32 => match <[u8; 4]>::try_from(v) {
                Ok(b) => Value::U32(u32::from_be_bytes(b)),
                Err(_) => return Err(bad("0 or 4")),
            },
            ValueKind::Port => match <[u8; 4]>::try_from(v) {
                Ok(b) => Value::Port(Port::from_wire(u32::from_be_bytes(b))),
                Err(_) => return Err(bad("0 or 4")),
            },
            ValueKind::U64 => match <[u8; 8]>::try_from(v) {
                Ok(b) => Value::U64(u64::from_be_bytes(b)),
                Err(_) => return Err(bad("0 or 8")),
            },
            ValueKind::Ip => match <[u8; 16]>::try_from(v) {
                Ok(b) => Value::Ip(decode_ip(b)),
                Err(_) => return Err(bad("0 or 16")),
            },
            ValueKind::Raw => Value::Raw(v.to_vec()),
        };
        Ok(Attribute { tag, value })
    }

    /// Checks that the value fits the tag and can be encoded; returns the value's wire length.
    fn value_len(&self) -> Result<usize, ApiMisuse> {
        let tag = self.tag;
        let wrong = || ApiMisuse::WrongValueType {
            tag,
            given: self.value.type_name(),
        };
        Ok(match (&self.value, tag.value_kind()) {
            (Value::Nil, _) => 0,
            (Value::String(s), ValueKind::String { max }) => {
                if s.as_bytes().contains(&0) {
                    return Err(ApiMisuse::StringHasNul { tag });
                }
                if s.len() > max {
                    return Err(ApiMisuse::StringTooLong {
                        tag,
                        len: s.len(),
                        max,
                    });
                }
                padded(s.len() + 1)
            }
            (Value::U32(_), ValueKind::U32) | (Value::Port(_), ValueKind::Port) => 4,
            (Value::U64(_), ValueKind::U64) => 8,
            (Value::Ip(_), ValueKind::Ip) => 16,
            (Value::Raw(r), ValueKind::Raw) if r.len() % 4 == 0 && r.len() <= u32::MAX as usize => {
                r.len()
            }
            _ => return Err(wrong()),
        })
    }

    /// Bytes [`Attribute::emit`] writes, or why it cannot.
    pub fn buffer_len(&self) -> Result<usize, ApiMisuse> {
        Ok(TLV_HEADER_LEN + self.value_len()?)
    }

    /// Writes the TLV at the start of `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ApiMisuse> {
        let vlen = self.value_len()?;
        let total = TLV_HEADER_LEN + vlen;
        let Some(out) = buf.get_mut(..total) else {
            return Err(ApiMisuse::BufferTooSmall {
                needed: total,
                got: buf.len(),
            });
        };
        out[0..4].copy_from_slice(&self.tag.0.to_be_bytes());
        out[4..8].copy_from_slice(&(vlen as u32).to_be_bytes());
        let v = &mut out[8..];
        match &self.value {
            Value::Nil => {}
            Value::String(s) => {
                v[..s.len()].copy_from_slice(s.as_bytes());
                v[s.len()..].fill(0);
            }
            Value::U32(x) => v.copy_from_slice(&x.to_be_bytes()),
            Value::Port(p) => v.copy_from_slice(&p.to_wire().to_be_bytes()),
            Value::U64(x) => v.copy_from_slice(&x.to_be_bytes()),
            Value::Ip(ip) => v.copy_from_slice(&encode_ip(*ip)),
            Value::Raw(r) => v.copy_from_slice(r),
        }
        Ok(total)
    }
}

impl core::fmt::Display for Attribute {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}=", self.tag.0)?;
        match &self.value {
            Value::Nil => f.write_str("NIL"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Port(p) => write!(f, "{p}"),
            Value::Raw(r) => write!(f, "{} raw bytes", r.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(b: &[u8]) -> Result<Attribute, InvalidMessage> {
        let tlv = Attributes::new(b, 0).next().unwrap()?;
        Attribute::parse(&tlv)
    }

    #[test]
    fn strings_are_nul_terminated_and_padded() {
        let a = Attribute::string(Tag::ISCSI_NAME, "iqn.2026-11.test.vds:isns1");
        let mut buf = [0xaau8; 64];
        let n = a.emit(&mut buf).unwrap();
        assert_eq!(n, 8 + 28);
        assert_eq!(&buf[..8], &[0, 0, 0, 0x20, 0, 0, 0, 28]);
        assert_eq!(&buf[8 + 26..8 + 28], &[0, 0]);
        assert_eq!(parse_one(&buf[..n]).unwrap(), a);
        // 4-byte string needs a whole extra word for its NUL.
        let a = Attribute::string(Tag::ENTITY_IDENTIFIER, "abcd");
        assert_eq!(a.buffer_len(), Ok(16));
        let e = Attribute::string(Tag::ISCSI_NAME, "a\0b");
        assert_eq!(
            e.buffer_len(),
            Err(ApiMisuse::StringHasNul {
                tag: Tag::ISCSI_NAME
            })
        );
        let long = Attribute::string(Tag::ISCSI_NAME, "x".repeat(224));
        assert!(matches!(
            long.buffer_len(),
            Err(ApiMisuse::StringTooLong { max: 223, .. })
        ));
    }

    #[test]
    fn bad_strings_are_typed_errors() {
        let tag = Tag::ISCSI_NAME;
        assert_eq!(
            parse_one(&[0, 0, 0, 32, 0, 0, 0, 4, b'a', b'b', b'c', b'd']),
            Err(InvalidMessage::StringNotTerminated { tag })
        );
        assert_eq!(
            parse_one(&[0, 0, 0, 32, 0, 0, 0, 4, b'a', 0, b'c', 0]),
            Err(InvalidMessage::StringPadding { tag })
        );
        assert_eq!(
            parse_one(&[0, 0, 0, 32, 0, 0, 0, 4, 0xff, 0xfe, 0, 0]),
            Err(InvalidMessage::StringNotUtf8 { tag })
        );
        let mut long = vec![0, 0, 0, 32, 0, 0, 0, 228];
        long.extend(std::iter::repeat_n(b'x', 224));
        long.extend([0, 0, 0, 0]);
        assert_eq!(
            parse_one(&long),
            Err(InvalidMessage::StringTooLong {
                tag,
                len: 224,
                max: 223
            })
        );
    }

    #[test]
    fn addresses_decode_mapped_and_compatible() {
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
        let compat = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 2];
        assert_eq!(decode_ip(mapped), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(decode_ip(compat), IpAddr::from([127, 0, 0, 2]));
        assert_eq!(decode_ip([0; 16]), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(
            decode_ip(Ipv6Addr::LOCALHOST.octets()),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(encode_ip(IpAddr::from([127, 0, 0, 1])), mapped);
    }

    #[test]
    fn ports_carry_the_udp_bit() {
        assert_eq!(
            Port::from_wire(0x0001_0cbc),
            Port {
                number: 3260,
                udp: true
            }
        );
        assert_eq!(
            Port::from_wire(0xfffe_0cbc),
            Port {
                number: 3260,
                udp: false
            }
        );
        assert_eq!(Port::tcp(3205).to_wire(), 3205);
        assert_eq!(
            Port {
                number: 1,
                udp: true
            }
            .to_string(),
            "1/udp"
        );
    }

    #[test]
    fn lengths_are_checked() {
        // NIL for any tag, including typed ones.
        assert_eq!(
            parse_one(&[0, 0, 0, 51, 0, 0, 0, 0]).unwrap(),
            Attribute::nil(Tag::PG_TAG)
        );
        assert!(matches!(
            parse_one(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0]),
            Err(InvalidMessage::BadValueLength { .. })
        ));
        assert!(matches!(
            parse_one(&[0, 0, 0, 33, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(InvalidMessage::BadValueLength { len: 8, .. })
        ));
        assert_eq!(
            parse_one(&[0, 0, 0, 33, 0, 0, 0, 3, 0, 0, 0]),
            Err(InvalidMessage::UnalignedAttribute {
                tag: Tag(33),
                len: 3
            })
        );
        assert!(matches!(
            parse_one(&[0, 0, 0, 33, 0, 0, 0, 8, 0, 0, 0, 1]),
            Err(InvalidMessage::AttributePastPdu {
                len: 8,
                remaining: 4,
                ..
            })
        ));
        assert!(matches!(
            parse_one(&[0, 0, 0, 33, 0, 0]),
            Err(InvalidMessage::AttributeHeaderTruncated { remaining: 6, .. })
        ));
        let raw = parse_one(&[0, 0, 0x10, 0, 0, 0, 0, 4, 1, 2, 3, 4]).unwrap();
        assert_eq!(raw.value, Value::Raw(vec![1, 2, 3, 4]));
    }

    #[test]
    fn the_iterator_stops_at_the_cap_and_after_an_error() {
        let many = vec![0u8; 8 * (crate::MAX_ATTRIBUTES + 1)];
        let results: Vec<_> = Attributes::new(&many, 0).collect();
        assert_eq!(results.len(), crate::MAX_ATTRIBUTES + 1);
        assert_eq!(
            results.last().cloned().map(|r| r.map(|t| t.tag())),
            Some(Err(InvalidMessage::TooManyAttributes {
                max: crate::MAX_ATTRIBUTES
            }))
        );
        let bad = [0u8, 0, 0, 1, 0, 0, 0, 9, 0];
        let mut it = Attributes::new(&bad, 12);
        assert!(matches!(
            it.next(),
            Some(Err(InvalidMessage::AttributePastPdu { offset: 12, .. }))
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn values_must_match_the_tag() {
        let a = Attribute::u32(Tag::ISCSI_NAME, 5);
        assert!(matches!(
            a.buffer_len(),
            Err(ApiMisuse::WrongValueType { .. })
        ));
        let r = Attribute {
            tag: Tag(0x1000),
            value: Value::Raw(vec![1, 2, 3]),
        };
        assert!(r.buffer_len().is_err());
    }
}
