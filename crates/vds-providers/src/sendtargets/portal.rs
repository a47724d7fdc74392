//! Discovery portals as an administrator writes them (`HOST[:PORT]`), and the conversion of iSCSI
//! hosts into `VDS_IPADDRESS` values. No sockets; the one system call is the interface-name lookup
//! for IPv6 zones (done by `iscsi_client::scope_id`).

use std::fmt;
use std::str::FromStr;

use iscsi_proto::Host;
use vds_model::VdsIpAddress;

/// The iSCSI well-known port, used when a discovery portal names none.
pub const DEFAULT_PORT: u16 = 3260;

/// Where a subsystem is asked for its targets: a host and a TCP port.
///
/// Parses from `HOST[:PORT]`: `192.0.2.10`, `192.0.2.10:3261`, `array.example:3260`,
/// `[2001:db8::1]:3260`, `[fe80::1%eth0]` (the port defaults to 3260). An IPv6 address with a port
/// must be in brackets; a bare IPv6 address without a port is accepted. Displays in the same form,
/// always with the port.
///
/// ```
/// use vds_providers::sendtargets::DiscoveryPortal;
/// let p: DiscoveryPortal = "[fe80::1%eth0]".parse().unwrap();
/// assert_eq!(p.port, 3260);
/// assert_eq!(p.to_string(), "[fe80::1%eth0]:3260");
/// assert!("array.example:99999".parse::<DiscoveryPortal>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiscoveryPortal {
    /// The host: an IPv4 or IPv6 address, or a DNS name.
    pub host: Host,
    /// The TCP port.
    pub port: u16,
}

impl DiscoveryPortal {
    /// The portal's `VDS_IPADDRESS` (see [`vds_address`]).
    pub fn vds_address(&self) -> Option<VdsIpAddress> {
        vds_address(&self.host, self.port)
    }
}

impl fmt::Display for DiscoveryPortal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Host` writes IPv6 in brackets already.
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why a discovery portal does not parse. The message names the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid discovery portal {input:?}: {reason}")]
pub struct DiscoveryPortalError {
    /// The text that was given (truncated to 128 bytes).
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for DiscoveryPortal {
    type Err = DiscoveryPortalError;

    fn from_str(s: &str) -> Result<DiscoveryPortal, DiscoveryPortalError> {
        let err = |reason: String| DiscoveryPortalError {
            input: truncate(s, 128),
            reason,
        };
        let s_trim = s.trim();
        if s_trim.is_empty() {
            return Err(err("empty".into()));
        }
        let (host_part, port_part) = if let Some(rest) = s_trim.strip_prefix('[') {
            let close = rest
                .find(']')
                .ok_or_else(|| err("unclosed '[' around an IPv6 address".into()))?;
            let after = &rest[close + 1..];
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    err(format!(
                        "expected ':PORT' after ']', found {:?}",
                        truncate(after, 32)
                    ))
                })?),
            };
            (&s_trim[..close + 2], port)
        } else if s_trim.matches(':').count() > 1 {
            // More than one colon and no brackets: a bare IPv6 address, which cannot carry a port.
            if s_trim.parse::<std::net::Ipv6Addr>().is_err() && !s_trim.contains('%') {
                return Err(err(
                    "an IPv6 address with a port must be written in brackets: [ADDR]:PORT".into(),
                ));
            }
            (s_trim, None)
        } else {
            match s_trim.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s_trim, None),
            }
        };
        let port = match port_part {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) => return Err(err("port 0 is not a usable TCP port".into())),
                Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(err(format!(
                        "port {:?} is not a number from 1 to 65535",
                        truncate(p, 32)
                    )));
                }
            },
        };
        if host_part.is_empty() {
            return Err(err("no host before the port".into()));
        }
        let host = Host::parse(host_part).map_err(|e| err(e.reason.to_string()))?;
        Ok(DiscoveryPortal { host, port })
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The `VDS_IPADDRESS` of an iSCSI host and port: a name stays `Text`, addresses become `Ipv4` or
/// `Ipv6`. An IPv6 zone becomes the scope id: a number is taken as it is, an interface name is looked
/// up on this machine (0 when there is no such interface). `None` only for a name too long for a
/// `VDS_IPADDRESS` (more than 256 UTF-16 units), which the iSCSI parsers already refuse.
pub fn vds_address(host: &Host, port: u16) -> Option<VdsIpAddress> {
    let port = u32::from(port);
    match host {
        Host::Ipv4(addr) => Some(VdsIpAddress::Ipv4 { addr: *addr, port }),
        Host::Ipv6 { addr, zone } => Some(VdsIpAddress::Ipv6 {
            addr: *addr,
            flow_info: 0,
            scope_id: zone.as_deref().map_or(0, scope_id),
            port,
        }),
        Host::Name(name) => VdsIpAddress::text(name.clone(), port).ok(),
    }
}

/// The scope id of an IPv6 zone: a decimal number as it is, otherwise the index of the interface of
/// that name on this machine, 0 if there is none.
pub fn scope_id(zone: &str) -> u32 {
    iscsi_client::scope_id(zone).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn p(s: &str) -> Result<DiscoveryPortal, DiscoveryPortalError> {
        s.parse()
    }

    #[test]
    fn parses_every_documented_form() {
        let v4 = Host::Ipv4(Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(
            p("192.0.2.10"),
            Ok(DiscoveryPortal {
                host: v4.clone(),
                port: 3260
            })
        );
        assert_eq!(
            p("192.0.2.10:3261"),
            Ok(DiscoveryPortal {
                host: v4,
                port: 3261
            })
        );
        assert_eq!(
            p("array.example:3262"),
            Ok(DiscoveryPortal {
                host: Host::Name("array.example".into()),
                port: 3262
            })
        );
        assert_eq!(
            p("[::1]:3260"),
            Ok(DiscoveryPortal {
                host: Host::Ipv6 {
                    addr: Ipv6Addr::LOCALHOST,
                    zone: None
                },
                port: 3260
            })
        );
        assert_eq!(
            p("[fe80::1%eth0]"),
            Ok(DiscoveryPortal {
                host: Host::Ipv6 {
                    addr: "fe80::1".parse().unwrap(),
                    zone: Some("eth0".into())
                },
                port: 3260
            })
        );
        assert_eq!(
            p("2001:db8::1"),
            Ok(DiscoveryPortal {
                host: Host::Ipv6 {
                    addr: "2001:db8::1".parse().unwrap(),
                    zone: None
                },
                port: 3260
            })
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "192.0.2.10:3260",
            "[::1]:3261",
            "[fe80::1%eth0]:3260",
            "array.example:1",
        ] {
            assert_eq!(p(s).unwrap().to_string(), s);
        }
        assert_eq!(p("[::1]").unwrap().to_string(), "[::1]:3260");
    }

    #[test]
    fn errors_name_the_input_and_the_cause() {
        for (input, needle) in [
            ("", "empty"),
            ("[::1", "unclosed"),
            ("[::1]3260", "expected ':PORT'"),
            ("127.0.0.1:0", "port 0"),
            ("127.0.0.1:65536", "1 to 65535"),
            ("127.0.0.1:+5", "1 to 65535"),
            ("127.0.0.1:", "1 to 65535"),
            (":3260", "no host"),
            ("2001:db8::1:3260x", "brackets"),
            ("[zz::1]:3260", ""),
            ("bad_host!:3260", ""),
        ] {
            let e = p(input).expect_err(input);
            let msg = e.to_string();
            assert!(msg.contains(&format!("{input:?}")), "{msg}");
            assert!(msg.contains(needle), "{input}: {msg}");
        }
    }

    #[test]
    fn hosts_become_vds_addresses() {
        assert_eq!(
            vds_address(&Host::Ipv4(Ipv4Addr::LOCALHOST), 3260),
            Some(VdsIpAddress::Ipv4 {
                addr: Ipv4Addr::LOCALHOST,
                port: 3260
            })
        );
        assert_eq!(
            vds_address(&Host::Name("Array.Example".into()), 1),
            Some(VdsIpAddress::Text {
                text: "Array.Example".into(),
                port: 1
            })
        );
        let zoned = |zone: &str| Host::Ipv6 {
            addr: "fe80::1".parse().unwrap(),
            zone: Some(zone.into()),
        };
        let scope = |h: &Host| match vds_address(h, 3260) {
            Some(VdsIpAddress::Ipv6 { scope_id, .. }) => scope_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(scope(&zoned("7")), 7);
        // The loopback interface exists everywhere these tests run; its index is not 0.
        assert_ne!(scope(&zoned("lo")), 0);
        assert_eq!(scope(&zoned("no-such-if0")), 0);
        assert_eq!(scope(&zoned("bad\0name")), 0);
    }
}
