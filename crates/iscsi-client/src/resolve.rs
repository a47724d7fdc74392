//! Turning a [`Host`] and port into socket addresses: IPv4 as is, IPv6 with its zone as the
//! scope id (a number, or an interface name through `if_nametoindex`), DNS names through
//! `tokio::net::lookup_host` (every address returned, in order, to be tried one after another).

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use iscsi_proto::Host;

/// The scope id for an IPv6 zone: a decimal number, or the index of the named interface.
pub fn scope_id(zone: &str) -> io::Result<u32> {
    if let Ok(n) = zone.parse::<u32>() {
        return Ok(n);
    }
    let name = std::ffi::CString::new(zone)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "IPv6 zone contains NUL"))?;
    // SAFETY: `name` is a valid NUL-terminated C string that outlives the call;
    // if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named {zone:?} for the IPv6 zone"),
        ));
    }
    Ok(index)
}

/// Resolves `host:port` to the addresses to try, in order. No deadline here: the caller wraps
/// it in one.
pub async fn resolve(host: &Host, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host {
        Host::Ipv4(a) => Ok(vec![SocketAddr::V4(SocketAddrV4::new(*a, port))]),
        Host::Ipv6 { addr, zone } => {
            let scope = match zone {
                Some(z) => scope_id(z)?,
                None => 0,
            };
            Ok(vec![SocketAddr::V6(SocketAddrV6::new(
                *addr, port, 0, scope,
            ))])
        }
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await?
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name} resolves to no address"),
                ));
            }
            Ok(addrs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(scope_id("7").unwrap(), 7);
        assert!(scope_id("lo").unwrap() > 0);
        assert_eq!(
            scope_id("no-such-if0").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn hosts() {
        let v6 = Host::Ipv6 {
            addr: "fe80::1".parse().unwrap(),
            zone: Some("lo".into()),
        };
        let a = resolve(&v6, 3260).await.unwrap();
        let SocketAddr::V6(a) = a[0] else { panic!() };
        assert_eq!(a.scope_id(), scope_id("lo").unwrap());
        let a = resolve(&Host::Name("localhost".into()), 3261)
            .await
            .unwrap();
        assert!(a.iter().all(|a| a.port() == 3261 && a.ip().is_loopback()));
    }
}
