//! TCP port reservation for peers started by tests in parallel threads and parallel processes.
//!
//! The scheme, in order, for each candidate port:
//! 1. Candidates come from [`PORT_RANGE`] (20000..32000), below Linux's default ephemeral range
//!    (32768..60999), so the kernel never hands one of them to an outgoing connection. The walk starts
//!    at a random offset, so parallel processes rarely even look at the same ports.
//! 2. In-process: a port handed out once by this process is never handed out again.
//! 3. Across processes: an exclusive `flock` on `/tmp/vds-testpeers-ports/<port>.lock`, held open until
//!    this process exits (the kernel drops the lock then, so a crashed test leaks nothing). The files
//!    themselves stay; an unlocked file means a free port.
//! 4. The port must be bindable right now on 127.0.0.1, 127.0.0.2 and \[::1\] (an address the host does
//!    not have, e.g. ::1 with IPv6 off, is skipped rather than failing every port).
//!
//! A program that does not use this scheme can still take a port between the check and the peer's
//! `bind`; the peer's start then fails loudly with "Address already in use" in the log tail.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use fs2::FileExt;

use crate::PeerError;

/// The ports [`free_port`] picks from.
pub const PORT_RANGE: Range<u16> = 20000..32000;

/// Where the cross-process lock files live.
pub const LOCK_DIR: &str = "/tmp/vds-testpeers-ports";

/// Ports handed out by this process, with the lock files that keep other processes off them.
static RESERVED: Mutex<Option<Reserved>> = Mutex::new(None);

#[derive(Default)]
struct Reserved {
    ports: HashSet<u16>,
    locks: Vec<File>,
}

const CHECK_ADDRS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// Reserves a TCP port that is free on 127.0.0.1, 127.0.0.2 and \[::1\] at once (see the module
/// doc for the scheme). The port stays reserved for the life of this process.
///
/// # Panics
/// If no port of [`PORT_RANGE`] can be reserved; use [`try_free_port`] to get an error instead.
pub fn free_port() -> u16 {
    match try_free_port() {
        Ok(port) => port,
        Err(e) => panic!("vds-testpeers: {e}"),
    }
}

/// Reserves `n` distinct ports, as [`free_port`] does.
///
/// # Panics
/// As [`free_port`].
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

/// Like [`free_port`], but reports exhaustion as an error.
pub fn try_free_port() -> Result<u16, PeerError> {
    let len = PORT_RANGE.end - PORT_RANGE.start;
    let start = (RandomState::new().build_hasher().finish() % u64::from(len)) as u16;
    // A poisoned lock only means another test panicked while holding it; the set is still valid.
    let mut guard = RESERVED.lock().unwrap_or_else(|p| p.into_inner());
    let reserved = guard.get_or_insert_with(Reserved::default);
    let lock_dir_ok = std::fs::create_dir_all(LOCK_DIR).is_ok();
    for i in 0..len {
        let port = PORT_RANGE.start + (start + i) % len;
        if reserved.ports.contains(&port) {
            continue;
        }
        let lock = if lock_dir_ok {
            match try_lock(port) {
                Some(file) => Some(file),
                None => continue,
            }
        } else {
            None
        };
        if !bindable_everywhere(port) {
            continue; // dropping `lock` releases the flock
        }
        reserved.ports.insert(port);
        reserved.locks.extend(lock);
        return Ok(port);
    }
    Err(PeerError::InvalidArgument(format!(
        "no free port left in {PORT_RANGE:?} (this process holds {})",
        reserved.ports.len()
    )))
}

fn try_lock(port: u16) -> Option<File> {
    let path = Path::new(LOCK_DIR).join(format!("{port}.lock"));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    file.try_lock_exclusive().ok()?;
    Some(file)
}

fn bindable_everywhere(port: u16) -> bool {
    CHECK_ADDRS.iter().all(|ip| {
        match TcpListener::bind(SocketAddr::new(*ip, port)) {
            Ok(_) => true,
            // The host lacks this address (e.g. IPv6 disabled): not a reason to reject the port.
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable => true,
            Err(_) => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_in_range_and_bindable() {
        let ports = free_ports(40);
        let set: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(set.len(), ports.len());
        for p in ports {
            assert!(PORT_RANGE.contains(&p));
            assert!(TcpListener::bind(("127.0.0.1", p)).is_ok());
        }
    }

    #[test]
    fn reserved_port_is_locked_against_other_processes() {
        let port = free_port();
        // flock conflicts between distinct open file descriptions, as another process would have.
        assert!(try_lock(port).is_none());
    }
}
