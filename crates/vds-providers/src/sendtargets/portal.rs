//! Discovery portals as an administrator writes them (`HOST[:PORT]`), and the conversion of iSCSI
//! hosts into `VDS_IPADDRESS` values. No sockets; the one system call is the interface-name lookup
//! for IPv6 zones (done by `iscsi_client::scope_id`).

use std::fmt;
use std::str::FromStr;

use iscsi_proto::address::AddressErrorReason;
use iscsi_proto::{Host, TargetAddress};
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

    /// The `TargetAddress` syntax (the one parser, `iscsi_proto::TargetAddress::parse`) without a
    /// portal group tag.
    fn from_str(s: &str) -> Result<DiscoveryPortal, DiscoveryPortalError> {
        let err = |reason: String| DiscoveryPortalError {
            input: truncate(s, 128),
            reason,
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(err("empty".into()));
        }
        match TargetAddress::parse(text) {
            Ok(TargetAddress { tag: Some(_), .. }) => Err(err(
                "a discovery portal is HOST[:PORT], without a portal group tag".into(),
            )),
            Ok(TargetAddress { host, port, .. }) => Ok(DiscoveryPortal { host, port }),
            Err(e) if e.reason == AddressErrorReason::BadIpv6 && !text.starts_with('[') => {
                Err(err(format!(
                    "{}; an IPv6 address with a port must be written in brackets: [ADDR]:PORT",
                    e.reason
                )))
            }
            Err(e) => Err(err(e.reason.to_string())),
        }
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
fn scope_id(zone: &str) -> u32 {
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
            ("   ", "empty"),
            ("[::1", "'[' without ']'"),
            ("[::1]3260", "after ']'"),
            ("127.0.0.1:0", "invalid port"),
            ("127.0.0.1:65536", "invalid port"),
            ("127.0.0.1:+5", "invalid port"),
            ("127.0.0.1:", "invalid port"),
            (":3260", "empty host"),
            ("2001:db8::1:3260x", "brackets"),
            ("[zz::1]:3260", "invalid IPv6 address"),
            ("bad_host!:3260", "invalid host name"),
            ("127.0.0.1:3260,1", "without a portal group tag"),
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
