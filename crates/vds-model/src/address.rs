//! `VDS_IPADDRESS`: a portal's address and port, and its conversions to and from `std::net`.
//!
//! The Rust form is an enum with one variant per `VDS_IPADDRESS_TYPE`; an address type this crate
//! does not know is kept as [`VdsIpAddress::Unknown`] with its raw value, so it round-trips. The C
//! layout (552 bytes, IPv4 as a host-order number with the first octet in the high byte) lives in
//! [`crate::ffi`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::Hresult;

/// The longest text address, in UTF-16 code units (`WCHAR[257]` less the terminating NUL).
pub const MAX_TEXT_ADDRESS_UNITS: usize = 256;

/// The iSCSI well-known port (RFC 7143).
pub const ISCSI_DEFAULT_PORT: u32 = 3260;

/// `VDS_IPADDRESS_TYPE`: which field of a `VDS_IPADDRESS` is valid. Open: unknown values are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct IpAddressType(pub i32);

impl IpAddressType {
    /// `VDS_IPT_TEXT`: a DNS name, or an address written as text.
    pub const TEXT: IpAddressType = IpAddressType(0);
    /// `VDS_IPT_IPV4`
    pub const IPV4: IpAddressType = IpAddressType(1);
    /// `VDS_IPT_IPV6`
    pub const IPV6: IpAddressType = IpAddressType(2);
    /// `VDS_IPT_EMPTY`
    pub const EMPTY: IpAddressType = IpAddressType(3);

    /// `TEXT`, `IPV4`, `IPV6`, `EMPTY`, or `UNKNOWN(n)`.
    pub fn name(self) -> String {
        match self {
            IpAddressType::TEXT => "TEXT".into(),
            IpAddressType::IPV4 => "IPV4".into(),
            IpAddressType::IPV6 => "IPV6".into(),
            IpAddressType::EMPTY => "EMPTY".into(),
            IpAddressType(n) => format!("UNKNOWN({n})"),
        }
    }
}

/// `VDS_IPADDRESS`: an address of one of the VDS types, with a TCP port.
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub enum VdsIpAddress {
    /// `VDS_IPT_TEXT`: a DNS name (or an address in text form), at most 256 UTF-16 units, no NUL.
    Text {
        /// The text.
        text: String,
        /// The TCP port.
        port: u32,
    },
    /// `VDS_IPT_IPV4`.
    Ipv4 {
        /// The address.
        addr: Ipv4Addr,
        /// The TCP port.
        port: u32,
    },
    /// `VDS_IPT_IPV6`, with the flow information and scope (zone) id of `sockaddr_in6`.
    Ipv6 {
        /// The address.
        addr: Ipv6Addr,
        /// `ulIpv6FlowInfo`.
        flow_info: u32,
        /// `ulIpv6ScopeId`: the zone of a link-local address (an interface index).
        scope_id: u32,
        /// The TCP port.
        port: u32,
    },
    /// `VDS_IPT_EMPTY`: no address.
    Empty,
    /// An address type this crate does not know, kept so that it round-trips.
    Unknown {
        /// The raw `VDS_IPADDRESS_TYPE`.
        address_type: i32,
        /// The TCP port.
        port: u32,
    },
}

impl VdsIpAddress {
    /// A text address; `E_INVALIDARG` if it is longer than 256 UTF-16 units or contains a NUL.
    pub fn text(text: impl Into<String>, port: u32) -> Result<VdsIpAddress, Hresult> {
        let text = text.into();
        if text.contains('\0') || text.encode_utf16().count() > MAX_TEXT_ADDRESS_UNITS {
            return Err(Hresult::E_INVALIDARG);
        }
        Ok(VdsIpAddress::Text { text, port })
    }

    /// Which `VDS_IPADDRESS_TYPE` this is.
    pub fn address_type(&self) -> IpAddressType {
        match self {
            VdsIpAddress::Text { .. } => IpAddressType::TEXT,
            VdsIpAddress::Ipv4 { .. } => IpAddressType::IPV4,
            VdsIpAddress::Ipv6 { .. } => IpAddressType::IPV6,
            VdsIpAddress::Empty => IpAddressType::EMPTY,
            VdsIpAddress::Unknown { address_type, .. } => IpAddressType(*address_type),
        }
    }

    /// The port (0 for `Empty`).
    pub fn port(&self) -> u32 {
        match self {
            VdsIpAddress::Text { port, .. }
            | VdsIpAddress::Ipv4 { port, .. }
            | VdsIpAddress::Ipv6 { port, .. }
            | VdsIpAddress::Unknown { port, .. } => *port,
            VdsIpAddress::Empty => 0,
        }
    }

    /// The host part without brackets or port: `127.0.0.1`, `fe80::1%2`, `array.example`.
    pub fn host(&self) -> String {
        match self {
            VdsIpAddress::Text { text, .. } => text.clone(),
            VdsIpAddress::Ipv4 { addr, .. } => dotted_quad(*addr),
            VdsIpAddress::Ipv6 { addr, scope_id, .. } if *scope_id != 0 => {
                format!("{addr}%{scope_id}")
            }
            VdsIpAddress::Ipv6 { addr, .. } => addr.to_string(),
            VdsIpAddress::Empty => String::new(),
            VdsIpAddress::Unknown { address_type, .. } => format!("<type {address_type}>"),
        }
    }

    /// The natural key of the address: the same endpoint always gives the same string (DNS names
    /// are case-insensitive, so they are lower-cased). Used to derive portal ids.
    pub fn canonical_key(&self) -> String {
        match self {
            VdsIpAddress::Text { text, port } => format!("text:{}:{port}", text.to_lowercase()),
            VdsIpAddress::Ipv4 { addr, port } => format!("ipv4:{addr}:{port}"),
            VdsIpAddress::Ipv6 {
                addr,
                scope_id,
                port,
                ..
            } => {
                format!("ipv6:{addr}%{scope_id}:{port}")
            }
            VdsIpAddress::Empty => "empty".into(),
            VdsIpAddress::Unknown { address_type, port } => format!("unknown{address_type}:{port}"),
        }
    }

    /// The socket address, for `Ipv4` and `Ipv6`; `None` for the other types or a port over 65535.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self {
            VdsIpAddress::Ipv4 { addr, port } => {
                let port = u16::try_from(*port).ok()?;
                Some(SocketAddr::V4(SocketAddrV4::new(*addr, port)))
            }
            VdsIpAddress::Ipv6 {
                addr,
                flow_info,
                scope_id,
                port,
            } => {
                let port = u16::try_from(*port).ok()?;
                Some(SocketAddr::V6(SocketAddrV6::new(
                    *addr, port, *flow_info, *scope_id,
                )))
            }
            _ => None,
        }
    }
}

impl From<SocketAddr> for VdsIpAddress {
    fn from(sa: SocketAddr) -> VdsIpAddress {
        match sa {
            SocketAddr::V4(v4) => VdsIpAddress::Ipv4 {
                addr: *v4.ip(),
                port: u32::from(v4.port()),
            },
            SocketAddr::V6(v6) => VdsIpAddress::Ipv6 {
                addr: *v6.ip(),
                flow_info: v6.flowinfo(),
                scope_id: v6.scope_id(),
                port: u32::from(v6.port()),
            },
        }
    }
}

impl From<(IpAddr, u16)> for VdsIpAddress {
    fn from((ip, port): (IpAddr, u16)) -> VdsIpAddress {
        VdsIpAddress::from(SocketAddr::new(ip, port))
    }
}

impl TryFrom<&VdsIpAddress> for SocketAddr {
    type Error = Hresult;
    /// `E_INVALIDARG` for a text, empty or unknown address, or a port over 65535.
    fn try_from(a: &VdsIpAddress) -> Result<SocketAddr, Hresult> {
        a.to_socket_addr().ok_or(Hresult::E_INVALIDARG)
    }
}

/// `127.0.0.1:3260`, `[fe80::1%2]:3260`, `array.example:3260`: the form iSCSI tools use.
impl fmt::Display for VdsIpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VdsIpAddress::Ipv6 { port, .. } => write!(f, "[{}]:{port}", self.host()),
            VdsIpAddress::Empty => f.write_str("(empty)"),
            other => write!(f, "{}:{}", other.host(), other.port()),
        }
    }
}

/// `a` in dotted-decimal form, as `Ipv4Addr`'s `Display` writes it, without the formatting
/// machinery: a fifth of the instructions, which shows in every listing of portals.
pub fn dotted_quad(a: std::net::Ipv4Addr) -> String {
    let mut s = String::with_capacity(15);
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quad_writes_what_display_writes() {
        for a in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [10, 99, 100, 255],
            [1, 9, 10, 199],
            [200, 20, 2, 0],
        ] {
            let a = std::net::Ipv4Addr::from(a);
            assert_eq!(dotted_quad(a), a.to_string());
        }
        // Every octet value in every position.
        for v in 0..=255u8 {
            let a = std::net::Ipv4Addr::new(v, 255 - v, v / 2, v.wrapping_mul(7));
            assert_eq!(dotted_quad(a), a.to_string());
        }
    }

    #[test]
    fn ipv6_zone_survives_conversion() {
        let sa = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 3260, 7, 3));
        let a = VdsIpAddress::from(sa);
        assert_eq!(
            a,
            VdsIpAddress::Ipv6 {
                addr: "fe80::1".parse().unwrap(),
                flow_info: 7,
                scope_id: 3,
                port: 3260
            }
        );
        assert_eq!(a.to_socket_addr(), Some(sa));
        assert_eq!(a.to_string(), "[fe80::1%3]:3260");
    }

    #[test]
    fn text_limits() {
        assert!(VdsIpAddress::text("a".repeat(256), 3260).is_ok());
        assert_eq!(
            VdsIpAddress::text("a".repeat(257), 3260),
            Err(Hresult::E_INVALIDARG)
        );
        // 256 UTF-16 units, not bytes: a non-BMP character is two units.
        assert!(VdsIpAddress::text("\u{1F600}".repeat(128), 1).is_ok());
        assert_eq!(
            VdsIpAddress::text("\u{1F600}".repeat(129), 1),
            Err(Hresult::E_INVALIDARG)
        );
        assert_eq!(VdsIpAddress::text("a\0b", 1), Err(Hresult::E_INVALIDARG));
    }

    #[test]
    fn non_ip_types_do_not_convert_to_socket_addrs() {
        let t = VdsIpAddress::text("array.example", 3260).unwrap();
        assert_eq!(SocketAddr::try_from(&t), Err(Hresult::E_INVALIDARG));
        assert_eq!(
            SocketAddr::try_from(&VdsIpAddress::Empty),
            Err(Hresult::E_INVALIDARG)
        );
        let big = VdsIpAddress::Ipv4 {
            addr: Ipv4Addr::LOCALHOST,
            port: 70_000,
        };
        assert_eq!(big.to_socket_addr(), None);
        assert_eq!(
            VdsIpAddress::Unknown {
                address_type: 9,
                port: 1
            }
            .address_type(),
            IpAddressType(9)
        );
        assert_eq!(IpAddressType(9).name(), "UNKNOWN(9)");
    }
}
