//! `TargetAddress` values (RFC 7143 §13.8: `domainname[:port][,portal-group-tag]`) and the
//! SendTargets answer: [`TargetAddress::parse`] accepts IPv4, bracketed IPv6 with or without a
//! zone (`[fe80::1%eth0]`), DNS names, an optional port (default 3260) and an optional 16-bit tag
//! (absent = `None`, never -1); [`parse_send_targets`] groups `TargetName` and its
//! `TargetAddress` lines into [`DiscoveredTarget`]s.
//!
//! A target listed without any `TargetAddress` is reachable at the address of the discovery
//! connection; it is returned with empty `addresses` and [`DiscoveredTarget::addresses_or`]
//! applies the rule.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::PeerMisbehaved;
use crate::text::{KeyValue, TextError};

/// The iSCSI well-known port.
pub const DEFAULT_PORT: u16 = 3260;

/// Longest DNS name accepted.
const MAX_NAME_LEN: usize = 253;
/// Longest IPv6 zone accepted (IFNAMSIZ-ish, generous).
const MAX_ZONE_LEN: usize = 64;

/// The host part of a `TargetAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// Dotted IPv4.
    Ipv4(Ipv4Addr),
    /// Bracketed IPv6, with the zone (`%eth0`, `%2`) if one was given.
    Ipv6 {
        /// The address.
        addr: Ipv6Addr,
        /// The zone (interface name or number), without the `%`.
        zone: Option<String>,
    },
    /// A DNS name.
    Name(String),
}

impl fmt::Display for Host {
    /// IPv6 is written in brackets (with `%zone`), as in a `TargetAddress`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6 { addr, zone: None } => write!(f, "[{addr}]"),
            Host::Ipv6 {
                addr,
                zone: Some(z),
            } => write!(f, "[{addr}%{z}]"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl From<std::net::IpAddr> for Host {
    fn from(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(a) => Host::Ipv4(a),
            std::net::IpAddr::V6(a) => Host::Ipv6 {
                addr: a,
                zone: None,
            },
        }
    }
}

impl Host {
    /// Parses a host alone: IPv4, IPv6 (bracketed or not, with optional zone) or a DNS name.
    pub fn parse(s: &str) -> Result<Host, AddressError> {
        let err = |reason| AddressError {
            input: truncate(s),
            reason,
        };
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| err(AddressErrorReason::UnclosedBracket))?;
            return parse_v6(inner).map_err(err);
        }
        if s.contains(':') {
            return parse_v6(s).map_err(err);
        }
        parse_v4_or_name(s).map_err(err)
    }
}

/// One `TargetAddress` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetAddress {
    /// The host.
    pub host: Host,
    /// The TCP port (3260 when the value had none).
    pub port: u16,
    /// The portal group tag; `None` when the value had none (login redirects never have one).
    pub tag: Option<u16>,
}

impl fmt::Display for TargetAddress {
    /// Formats as `host:port[,tag]`; the port is always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        if let Some(t) = self.tag {
            write!(f, ",{t}")?;
        }
        Ok(())
    }
}

/// Why a `TargetAddress` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TargetAddress {input:?}: {reason}")]
pub struct AddressError {
    /// The value (truncated to 128 bytes).
    pub input: String,
    /// What is wrong.
    pub reason: AddressErrorReason,
}

/// What is wrong with a `TargetAddress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressErrorReason {
    /// Nothing before the port/tag.
    #[error("empty host")]
    EmptyHost,
    /// `[` without `]`.
    #[error("'[' without ']'")]
    UnclosedBracket,
    /// Text after `]` that is not `:port`.
    #[error("unexpected text after ']'")]
    TrailingAfterBracket,
    /// The bracketed part is not an IPv6 address.
    #[error("invalid IPv6 address")]
    BadIpv6,
    /// The zone is empty, too long or has odd characters.
    #[error("invalid IPv6 zone")]
    BadZone,
    /// The host is neither IPv4 nor a valid DNS name.
    #[error("invalid host name")]
    BadHostName,
    /// The port is not a number in 1..=65535.
    #[error("invalid port")]
    BadPort,
    /// The tag is not a number in 0..=65535.
    #[error("invalid portal group tag")]
    BadTag,
}

fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}

fn parse_v6(inner: &str) -> Result<Host, AddressErrorReason> {
    let (addr, zone) = match byte_pos(inner, b'%').map(|i| (&inner[..i], &inner[i + 1..])) {
        Some((a, z)) => {
            if z.is_empty()
                || z.len() > MAX_ZONE_LEN
                || !z
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return Err(AddressErrorReason::BadZone);
            }
            (a, Some(z.to_owned()))
        }
        None => (inner, None),
    };
    let addr = match fast_v6(addr.as_bytes()) {
        Some(a) => a,
        None => addr.parse().map_err(|_| AddressErrorReason::BadIpv6)?,
    };
    Ok(Host::Ipv6 { addr, zone })
}

/// The common IPv6 forms (hex groups and at most one `::`, no embedded IPv4) without going
/// through std's general parser. Accepts a subset of what `Ipv6Addr::from_str` accepts, with
/// the same result; `None` means "use std" (which may still accept or reject).
fn fast_v6(s: &[u8]) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let mut tail = [0u16; 8];
    let (mut nhead, mut ntail) = (0usize, 0usize);
    let mut gap = false;
    let mut i = 0;
    if s.starts_with(b"::") {
        if s.len() == 2 {
            return Some(Ipv6Addr::UNSPECIFIED);
        }
        gap = true;
        i = 2;
    }
    loop {
        let start = i;
        let mut v: u16 = 0;
        while let Some(&c) = s.get(i) {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            if i - start == 4 {
                return None;
            }
            v = (v << 4) | u16::from(d);
            i += 1;
        }
        if i == start || nhead + ntail == 8 {
            return None;
        }
        if gap {
            tail[ntail] = v;
            ntail += 1;
        } else {
            head[nhead] = v;
            nhead += 1;
        }
        match s.get(i) {
            None => break,
            Some(b':') => i += 1,
            Some(_) => return None,
        }
        if s.get(i) == Some(&b':') {
            if gap {
                return None;
            }
            gap = true;
            i += 1;
            if i == s.len() {
                break;
            }
        }
    }
    if gap {
        if nhead + ntail > 7 {
            return None;
        }
        head[8 - ntail..].copy_from_slice(&tail[..ntail]);
    } else if nhead != 8 {
        return None;
    }
    Some(Ipv6Addr::from(head))
}

/// Strict dotted-quad IPv4 (four decimal octets of 1..=3 digits, no leading zero, each at most
/// 255): exactly the form `Ipv4Addr::from_str` accepts; `None` means "not that form".
fn fast_v4(s: &[u8]) -> Option<Ipv4Addr> {
    match dotted_quad_prefix(s)? {
        (addr, len) if len == s.len() => Some(addr),
        _ => None,
    }
}

/// The dotted quad [`fast_v4`] takes at the start of `s`, and how many bytes it spans. What
/// follows is the caller's to check: after an octet of three digits, a fourth is left there.
#[inline(always)]
fn dotted_quad_prefix(s: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, slot) in octets.iter_mut().enumerate() {
        if n > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let (v, len) = leading_digits(&s[i..], 3);
        if len == 0 || (len > 1 && s[i] == b'0') {
            return None;
        }
        *slot = u8::try_from(v).ok()?;
        i += len;
    }
    Some((Ipv4Addr::from(octets), i))
}

/// The forms SendTargets answers are made of, in one pass over the bytes: a dotted-quad IPv4
/// address or a bracketed IPv6 address without zone (the forms [`fast_v4`] and [`fast_v6`]
/// take), then an optional `:port` and an optional `,tag`, each of 1..=5 digits. `None` means
/// "not this form" (it may still be valid, or wrong in a way the general parser names); when it
/// returns an address, [`TargetAddress::parse_general`] returns the same one.
#[inline]
fn fast_target_address(s: &[u8]) -> Option<TargetAddress> {
    let (host, rest) = if let Some(bracketed) = s.strip_prefix(b"[") {
        let close = bracketed.iter().position(|&b| b == b']')?;
        let addr = fast_v6(&bracketed[..close])?;
        (Host::Ipv6 { addr, zone: None }, &bracketed[close + 1..])
    } else {
        // What follows the fourth octet must be ':port', ',tag' or the end: checked below.
        let (addr, i) = dotted_quad_prefix(s)?;
        (Host::Ipv4(addr), &s[i..])
    };
    let (port, rest) = match rest.strip_prefix(b":") {
        Some(p) => match leading_digits(p, 5) {
            (v @ 1..=0xffff, len) => (v as u16, &p[len..]),
            _ => return None,
        },
        None => (DEFAULT_PORT, rest),
    };
    let tag = match rest.strip_prefix(b",") {
        // A sixth digit, or anything else after the tag, leaves `rest` non-empty.
        Some(t) => match leading_digits(t, 5) {
            (v @ 0..=0xffff, len) if len > 0 && len == t.len() => Some(v as u16),
            _ => return None,
        },
        None if rest.is_empty() => None,
        None => return None,
    };
    Some(TargetAddress { host, port, tag })
}

/// The value and number of the (at most `max`) ASCII digits that start `s`.
#[inline(always)]
fn leading_digits(s: &[u8], max: usize) -> (u32, usize) {
    let mut v = 0u32;
    let mut n = 0;
    while n < max {
        match s.get(n) {
            Some(&c) if c.is_ascii_digit() => v = v * 10 + u32::from(c - b'0'),
            _ => break,
        }
        n += 1;
    }
    (v, n)
}

/// Index of the first `b` in `s`: a plain byte loop, cheaper than `str::find` on values this
/// short.
#[inline]
fn byte_pos(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// Value of 1..=5 ASCII digits (the caller checked the form), if it fits in a u16.
fn digits_u16(s: &str) -> Option<u16> {
    let v = s
        .bytes()
        .fold(0u32, |v, b| v * 10 + u32::from(b.wrapping_sub(b'0')));
    u16::try_from(v).ok()
}

fn parse_v4_or_name(s: &str) -> Result<Host, AddressErrorReason> {
    if s.is_empty() {
        return Err(AddressErrorReason::EmptyHost);
    }
    if let Some(a) = fast_v4(s.as_bytes()) {
        return Ok(Host::Ipv4(a));
    }
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(Host::Ipv4(a));
    }
    // A DNS name: labels of [A-Za-z0-9_-], 1..=63 bytes, not starting or ending with '-'. An
    // all-numeric dotted string that failed IPv4 parsing (e.g. "1.2.3.400") is rejected.
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let name = s.strip_suffix('.').unwrap_or(s);
    let all_numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if name.len() > MAX_NAME_LEN || all_numeric || !name.split('.').all(valid_label) {
        return Err(AddressErrorReason::BadHostName);
    }
    Ok(Host::Name(s.to_owned()))
}

fn parse_port(s: &str) -> Result<u16, AddressErrorReason> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressErrorReason::BadPort);
    }
    match digits_u16(s) {
        Some(0) | None => Err(AddressErrorReason::BadPort),
        Some(p) => Ok(p),
    }
}

impl TargetAddress {
    /// Parses `domainname[:port][,portal-group-tag]`.
    pub fn parse(s: &str) -> Result<TargetAddress, AddressError> {
        match fast_target_address(s.as_bytes()) {
            Some(a) => Ok(a),
            None => TargetAddress::parse_general(s),
        }
    }

    /// Every form, and every error: several passes over the value (find the tag, the bracket or
    /// colon, then the host). [`TargetAddress::parse`] goes here for whatever its one-pass fast
    /// path does not take, and the tests compare the two. Kept out of line so that the fast
    /// path's caller stays small.
    #[inline(never)]
    fn parse_general(s: &str) -> Result<TargetAddress, AddressError> {
        let err = |reason| AddressError {
            input: truncate(s),
            reason,
        };
        // The tag follows the last ','; a ',' cannot occur in any host form.
        let comma = s.bytes().rposition(|b| b == b',');
        let (hostport, tag) = match comma.map(|i| (&s[..i], &s[i + 1..])) {
            Some((hp, t)) => {
                if t.is_empty() || t.len() > 5 || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(AddressErrorReason::BadTag));
                }
                let tag = digits_u16(t).ok_or_else(|| err(AddressErrorReason::BadTag))?;
                (hp, Some(tag))
            }
            None => (s, None),
        };
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let close =
                byte_pos(rest, b']').ok_or_else(|| err(AddressErrorReason::UnclosedBracket))?;
            let host = parse_v6(&rest[..close]).map_err(err)?;
            let after = &rest[close + 1..];
            let port = if after.is_empty() {
                DEFAULT_PORT
            } else if let Some(p) = after.strip_prefix(':') {
                parse_port(p).map_err(err)?
            } else {
                return Err(err(AddressErrorReason::TrailingAfterBracket));
            };
            (host, port)
        } else if let Some(colon) = byte_pos(hostport, b':') {
            let (h, p) = (&hostport[..colon], &hostport[colon + 1..]);
            if byte_pos(p, b':').is_some() {
                // Unbracketed IPv6 (not allowed by the RFC but seen in the wild): no port.
                (parse_v6(hostport).map_err(err)?, DEFAULT_PORT)
            } else {
                (
                    parse_v4_or_name(h).map_err(err)?,
                    parse_port(p).map_err(err)?,
                )
            }
        } else {
            (parse_v4_or_name(hostport).map_err(err)?, DEFAULT_PORT)
        };
        Ok(TargetAddress { host, port, tag })
    }
}

impl core::str::FromStr for TargetAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetAddress::parse(s)
    }
}

/// One target of a SendTargets answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiscoveredTarget {
    /// The iSCSI name (`TargetName`).
    pub name: String,
    /// Its `TargetAddress` values in the order sent. Empty means "reachable at the discovery
    /// address"; see [`DiscoveredTarget::addresses_or`].
    pub addresses: Vec<TargetAddress>,
}

impl DiscoveredTarget {
    /// The addresses, or — when the target sent none — the discovery address (without a tag,
    /// since none was given).
    pub fn addresses_or(&self, discovery: &TargetAddress) -> Vec<TargetAddress> {
        if self.addresses.is_empty() {
            vec![discovery.clone()]
        } else {
            self.addresses.clone()
        }
    }
}

/// Error from [`parse_send_targets`] and [`parse_send_targets_text`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendTargetsError {
    /// The text does not decode.
    #[error(transparent)]
    Text(#[from] TextError),
    /// A TargetAddress does not parse.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The answer's structure is wrong.
    #[error(transparent)]
    Structure(#[from] PeerMisbehaved),
}

impl From<SendTargetsError> for crate::Error {
    fn from(e: SendTargetsError) -> Self {
        match e {
            SendTargetsError::Text(t) => crate::Error::InvalidPdu(t.into()),
            SendTargetsError::Address(a) => crate::Error::InvalidPdu(a.into()),
            SendTargetsError::Structure(p) => crate::Error::PeerMisbehaved(p),
        }
    }
}

/// Groups a decoded SendTargets answer into targets, in order.
///
/// `TargetName` starts a target, `TargetAddress` lines attach to the latest one. An echoed
/// `SendTargets=Reject|NotUnderstood|Irrelevant` is an error; other keys are ignored.
pub fn parse_send_targets(pairs: &[KeyValue]) -> Result<Vec<DiscoveredTarget>, SendTargetsError> {
    group(
        pairs
            .iter()
            .map(|kv| Ok((kv.key.as_str(), kv.value.as_str()))),
        TargetAddress::parse,
    )
}

/// Decodes and groups a complete SendTargets answer in one pass, without building the
/// intermediate key/value list (the session uses this).
pub fn parse_send_targets_text(data: &[u8]) -> Result<Vec<DiscoveredTarget>, SendTargetsError> {
    group(crate::text::pairs(data), TargetAddress::parse)
}

/// The grouping, each `TargetAddress` value read by `address` (the tests' oracle passes the
/// general parser).
fn group<'a>(
    pairs: impl Iterator<Item = Result<(&'a str, &'a str), TextError>>,
    address: fn(&str) -> Result<TargetAddress, AddressError>,
) -> Result<Vec<DiscoveredTarget>, SendTargetsError> {
    let mut out: Vec<DiscoveredTarget> = Vec::new();
    for pair in pairs {
        let (key, value) = pair?;
        match key {
            "TargetName" => out.push(DiscoveredTarget {
                name: value.to_owned(),
                addresses: Vec::new(),
            }),
            "TargetAddress" => {
                let addr = address(value)?;
                match out.last_mut() {
                    // Most targets have one address: an exact allocation, not a growth to four.
                    Some(t) if t.addresses.is_empty() => t.addresses = vec![addr],
                    Some(t) => t.addresses.push(addr),
                    None => {
                        return Err(PeerMisbehaved::AddressWithoutTarget(truncate(value)).into());
                    }
                }
            }
            "SendTargets" => {
                return Err(PeerMisbehaved::KeyRefused {
                    key: "SendTargets".into(),
                    value: truncate(value),
                }
                .into());
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ta(s: &str) -> TargetAddress {
        TargetAddress::parse(s).unwrap()
    }

    #[test]
    fn every_form() {
        let v4 = Host::Ipv4(Ipv4Addr::new(10, 1, 0, 45));
        assert_eq!(
            ta("10.1.0.45"),
            TargetAddress {
                host: v4.clone(),
                port: 3260,
                tag: None
            }
        );
        assert_eq!(
            ta("10.1.0.45:3000"),
            TargetAddress {
                host: v4.clone(),
                port: 3000,
                tag: None
            }
        );
        assert_eq!(
            ta("10.1.0.45,1"),
            TargetAddress {
                host: v4.clone(),
                port: 3260,
                tag: Some(1)
            }
        );
        assert_eq!(
            ta("10.1.0.45:3000,0"),
            TargetAddress {
                host: v4,
                port: 3000,
                tag: Some(0)
            }
        );

        let a: Ipv6Addr = "1080::8:800:200c:417a".parse().unwrap();
        let v6 = Host::Ipv6 {
            addr: a,
            zone: None,
        };
        assert_eq!(
            ta("[1080::8:800:200C:417A]:5003,1"),
            TargetAddress {
                host: v6.clone(),
                port: 5003,
                tag: Some(1)
            }
        );
        assert_eq!(
            ta("[1080:0:0:0:8:800:200C:417A],65"),
            TargetAddress {
                host: v6.clone(),
                port: 3260,
                tag: Some(65)
            }
        );
        assert_eq!(
            ta("[1080::8:800:200c:417a]"),
            TargetAddress {
                host: v6.clone(),
                port: 3260,
                tag: None
            }
        );
        assert_eq!(
            ta("[1080::8:800:200c:417a]:3261"),
            TargetAddress {
                host: v6,
                port: 3261,
                tag: None
            }
        );
        let ll = ta("[fe80::1%eth0]:3260,2");
        assert_eq!(
            ll.host,
            Host::Ipv6 {
                addr: "fe80::1".parse().unwrap(),
                zone: Some("eth0".into())
            }
        );
        assert_eq!(ll.tag, Some(2));
        assert_eq!(ll.to_string(), "[fe80::1%eth0]:3260,2");
        assert_eq!(
            ta("[fe80::1%2]").host,
            Host::Ipv6 {
                addr: "fe80::1".parse().unwrap(),
                zone: Some("2".into())
            }
        );

        let n = Host::Name("computingcenter.example.com".into());
        assert_eq!(
            ta("computingcenter.example.com,23"),
            TargetAddress {
                host: n.clone(),
                port: 3260,
                tag: Some(23)
            }
        );
        assert_eq!(
            ta("computingcenter.example.com:860"),
            TargetAddress {
                host: n.clone(),
                port: 860,
                tag: None
            }
        );
        assert_eq!(ta("computingcenter.example.com:860,65535").tag, Some(65535));
        assert_eq!(
            ta("computingcenter.example.com"),
            TargetAddress {
                host: n,
                port: 3260,
                tag: None
            }
        );
        // unbracketed IPv6 is tolerated
        assert_eq!(
            ta("::1,1").host,
            Host::Ipv6 {
                addr: Ipv6Addr::LOCALHOST,
                zone: None
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        use AddressErrorReason::*;
        let r = |s: &str| TargetAddress::parse(s).unwrap_err().reason;
        assert_eq!(r(""), EmptyHost);
        assert_eq!(r(",1"), EmptyHost);
        assert_eq!(r("1.2.3.4,"), BadTag);
        assert_eq!(r("1.2.3.4,65536"), BadTag);
        assert_eq!(r("1.2.3.4,-1"), BadTag);
        assert_eq!(r("1.2.3.4:0"), BadPort);
        assert_eq!(r("1.2.3.4:65536"), BadPort);
        assert_eq!(r("1.2.3.4:"), BadPort);
        assert_eq!(r("[::1"), UnclosedBracket);
        assert_eq!(r("[::1]x"), TrailingAfterBracket);
        assert_eq!(r("[1.2.3.4]"), BadIpv6);
        assert_eq!(r("[fe80::1%]"), BadZone);
        assert_eq!(r("1.2.3.400"), BadHostName);
        assert_eq!(r("bad host"), BadHostName);
        assert_eq!(r("-bad.example"), BadHostName);
    }

    #[test]
    fn groups_targets_and_applies_discovery_address() {
        let kv = crate::text::decode(
            b"TargetName=a\0TargetAddress=10.1.0.45:3000,1\0TargetAddress=10.1.1.45:3000,2\0TargetName=b\0",
        )
        .unwrap();
        let t = parse_send_targets(&kv).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].addresses.len(), 2);
        assert_eq!(t[0].addresses[1].tag, Some(2));
        assert!(t[1].addresses.is_empty());
        let disc = ta("127.0.0.1:3260");
        assert_eq!(t[1].addresses_or(&disc), vec![disc.clone()]);
        assert_eq!(t[0].addresses_or(&disc), t[0].addresses);
    }

    #[test]
    fn fast_paths_agree_with_std_on_common_forms() {
        for s in [
            "::",
            "::1",
            "1::",
            "fd00::1a",
            "FD00::1A",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "0001:0db8::0:1",
            "fe80::1",
        ] {
            assert_eq!(fast_v6(s.as_bytes()), Some(s.parse().unwrap()), "{s}");
        }
        for s in [
            "",
            ":",
            ":::",
            "1:::2",
            "1::2::3",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8",
            "1:2:3:4:5:6:7:8::",
            "12345::",
            "::ffff:1.2.3.4",
            "1:",
            ":1",
            "g::",
        ] {
            assert_eq!(fast_v6(s.as_bytes()), None, "{s}");
        }
        for s in ["0.0.0.0", "10.0.39.15", "255.255.255.255", "1.2.3.4"] {
            assert_eq!(fast_v4(s.as_bytes()), Some(s.parse().unwrap()), "{s}");
        }
        for s in [
            "",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.256",
            "01.2.3.4",
            "1.2.3.0004",
            "1..3.4",
            "a.b.c.d",
        ] {
            assert_eq!(fast_v4(s.as_bytes()), None, "{s}");
            assert!(s.parse::<Ipv4Addr>().is_err(), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_v6_is_a_subset_of_std(s in "[0-9a-fA-F:.]{0,41}") {
            if let Some(a) = fast_v6(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(a), s.parse::<Ipv6Addr>().ok());
            }
        }

        #[test]
        fn fast_v6_takes_every_std_form(
            groups in proptest::array::uniform8(0u16..=0xffff),
            zero_run in 0usize..8,
            run_len in 0usize..8,
        ) {
            let addr = Ipv6Addr::from(groups);
            let shown = addr.to_string();
            proptest::prop_assert_eq!(fast_v6(shown.as_bytes()), Some(addr));
            // A longer zero run compressed by hand, with leading zeros in the groups.
            let mut g = groups;
            let end = (zero_run + run_len).min(8);
            g[zero_run..end].fill(0);
            let full: Vec<String> = g.iter().map(|x| format!("{x:04x}")).collect();
            let text = if end > zero_run {
                format!("{}::{}", full[..zero_run].join(":"), full[end..].join(":"))
            } else {
                full.join(":")
            };
            proptest::prop_assert_eq!(fast_v6(text.as_bytes()), text.parse::<Ipv6Addr>().ok());
        }

        #[test]
        fn fast_v4_matches_std(s in "[0-9.]{0,17}") {
            proptest::prop_assert_eq!(fast_v4(s.as_bytes()), s.parse::<Ipv4Addr>().ok());
        }
    }

    #[test]
    fn answer_structure_errors() {
        let kv = crate::text::decode(b"TargetAddress=1.2.3.4\0").unwrap();
        assert!(matches!(
            parse_send_targets(&kv),
            Err(SendTargetsError::Structure(
                PeerMisbehaved::AddressWithoutTarget(_)
            ))
        ));
        let kv = crate::text::decode(b"SendTargets=Reject\0").unwrap();
        assert!(parse_send_targets(&kv).is_err());
    }

    /// The grouping with the general address parser, as before the one-pass fast path: the
    /// oracle for [`parse_send_targets_text`].
    fn group_oracle<'a>(
        pairs: impl Iterator<Item = Result<(&'a str, &'a str), TextError>>,
    ) -> Result<Vec<DiscoveredTarget>, SendTargetsError> {
        group(pairs, TargetAddress::parse_general)
    }

    /// Address-like text: digits, dots, colons, commas, brackets, hex, zones and a few strays.
    fn address_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let octet = prop_oneof![
            (0u16..=300).prop_map(|o| o.to_string()),
            (0u16..=300).prop_map(|o| format!("0{o}")),
            "[0-9]{0,4}",
        ];
        let v4 = proptest::collection::vec(octet, 1..=5).prop_map(|o| o.join("."));
        let v6 = prop_oneof![
            proptest::array::uniform8(0u16..=0xffff).prop_map(|g| Ipv6Addr::from(g).to_string()),
            "[0-9a-fA-F:]{0,20}",
            "fe80::[0-9]{1,2}%[a-z0-9]{0,3}",
        ]
        .prop_map(|a| format!("[{a}]"));
        let host = prop_oneof![v4, v6, "[a-z0-9.-]{0,12}", "[0-9a-f:]{0,12}"];
        let number = prop_oneof![
            "[0-9]{0,7}",
            (0u32..=70_000).prop_map(|n| n.to_string()),
            "[0-9]{1,3}[ x:,\\]]",
        ];
        let port = proptest::option::of(number.clone()).prop_map(|p| match p {
            Some(p) => format!(":{p}"),
            None => String::new(),
        });
        let tag = proptest::option::of(number).prop_map(|t| match t {
            Some(t) => format!(",{t}"),
            None => String::new(),
        });
        (host, port, tag).prop_map(|(h, p, t)| format!("{h}{p}{t}"))
    }

    proptest::proptest! {
        #[test]
        fn one_pass_parse_matches_the_general_parser_on_any_text(s in "\\PC{0,40}") {
            proptest::prop_assert_eq!(TargetAddress::parse(&s), TargetAddress::parse_general(&s));
        }

        #[test]
        fn one_pass_parse_matches_the_general_parser_on_address_like_text(
            s in "[0-9a-fA-F.:,\\[\\]%]{0,30}",
        ) {
            proptest::prop_assert_eq!(TargetAddress::parse(&s), TargetAddress::parse_general(&s));
        }

        #[test]
        fn one_pass_parse_matches_the_general_parser_on_structured_addresses(
            s in address_like(),
        ) {
            proptest::prop_assert_eq!(TargetAddress::parse(&s), TargetAddress::parse_general(&s));
        }

        #[test]
        fn grouping_matches_the_oracle_on_any_bytes(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            proptest::prop_assert_eq!(
                parse_send_targets_text(&data),
                group_oracle(crate::text::pairs(&data)),
            );
        }

        #[test]
        fn grouping_matches_the_oracle_on_structured_answers(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "TargetName", "TargetAddress", "TargetAddress", "TargetAlias",
                        "SendTargets",
                    ]),
                    address_like(),
                ),
                0..12,
            ),
        ) {
            let mut data = Vec::new();
            for (k, v) in &pairs {
                data.extend_from_slice(format!("{k}={v}\0").as_bytes());
            }
            let new = parse_send_targets_text(&data);
            proptest::prop_assert_eq!(&new, &group_oracle(crate::text::pairs(&data)));
            if let Ok(kv) = crate::text::decode(&data) {
                proptest::prop_assert_eq!(&parse_send_targets(&kv), &new);
            }
        }
    }

    #[test]
    fn one_pass_parse_edges_match_the_general_parser() {
        for s in [
            "1.2.3.4",
            "1.2.3.4:3260",
            "1.2.3.4:03260,00001",
            "1.2.3.4:65535,65535",
            "1.2.3.4:65536",
            "1.2.3.4:0",
            "1.2.3.4:00000",
            "1.2.3.4:123456",
            "1.2.3.4,123456",
            "1.2.3.4,65536",
            "1.2.3.4,",
            "1.2.3.4:",
            "1.2.3.4:,1",
            "1.2.3.4:1,2,3",
            "1.2.3.4:1:2",
            "1.2.3.4x",
            "1.2.3.4567",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "[::1]",
            "[::1]:3260,1",
            "[::1]:0",
            "[::1]x",
            "[::1],5]",
            "[fe80::1%eth0]:3260,2",
            "[1.2.3.4]",
            "::1,1",
            "host.example:3260,1",
            "",
            ",1",
        ] {
            assert_eq!(
                TargetAddress::parse(s),
                TargetAddress::parse_general(s),
                "{s}"
            );
        }
        assert_eq!(
            fast_target_address(b"1.2.3.4:3260,1"),
            Some(ta("1.2.3.4:3260,1"))
        );
        assert_eq!(fast_target_address(b"[fe80::1%eth0]"), None);
    }

    #[test]
    fn addresses_attach_to_their_target_in_order() {
        let t = parse_send_targets_text(
            b"TargetName=a\0TargetAddress=10.0.0.1,1\0TargetAlias=x\0TargetAddress=[::1]:3261,2\0\
              TargetName=b\0TargetName=c\0TargetAddress=h.example\0",
        )
        .unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(t[0].addresses, vec![ta("10.0.0.1,1"), ta("[::1]:3261,2")]);
        assert!(t[1].addresses.is_empty());
        assert_eq!(t[2].addresses, vec![ta("h.example")]);
    }
}
