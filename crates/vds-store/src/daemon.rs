//! The daemon's claim on a store ("one writer"): while `vdsd` serves a store it holds
//! `<root>/locks/vdsd.lock` exclusively and names its socket in `<root>/vdsd.socket`, so that
//! `vdsadm` sends its commands there instead of opening the store itself.
//!
//! The lock is a `flock`, which the kernel drops when the daemon exits however it exits: a stale
//! `vdsd.socket` left by a killed daemon is ignored because nobody holds the lock, and the next
//! daemon replaces it. A second daemon on the same store is refused (`Busy`).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{StoreError, fsutil};

const LOCK_FILE: &str = "vdsd.lock";
const SOCKET_FILE: &str = "vdsd.socket";

/// The claim of a running daemon: released when dropped (or when the process exits).
#[derive(Debug)]
pub struct DaemonClaim {
    _lock: File,
    socket_file: PathBuf,
}

impl DaemonClaim {
    /// Names a new socket (after a reload that moved it).
    pub fn set_socket(&self, socket: &Path) -> Result<(), StoreError> {
        let text = format!("{}\n", socket.display());
        fsutil::atomic_write(&self.socket_file, text.as_bytes(), 0o644)
    }
}

impl Drop for DaemonClaim {
    fn drop(&mut self) {
        // The lock goes with the file; the socket's name goes too so nobody tries it.
        let _ = std::fs::remove_file(&self.socket_file);
    }
}

/// Claims the store at `root` for a daemon listening on `socket`. `Busy` naming the daemon when
/// another one holds it.
pub fn claim(root: &Path, socket: &Path) -> Result<DaemonClaim, StoreError> {
    let dir = root.join("locks");
    fsutil::create_dir(&dir, 0o700)?;
    let path = dir.join(LOCK_FILE);
    let lock = fsutil::open_lock_file(&path)?;
    if !fsutil::try_lock(&lock, &path)? {
        return Err(StoreError::Busy {
            name: format!("the store (vdsd serves it on {})", served_socket_text(root)),
        });
    }
    let claim = DaemonClaim {
        _lock: lock,
        socket_file: root.join(SOCKET_FILE),
    };
    claim.set_socket(socket)?;
    Ok(claim)
}

fn served_socket_text(root: &Path) -> String {
    std::fs::read_to_string(root.join(SOCKET_FILE))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "an unknown socket".into())
}

/// The socket of the daemon serving the store at `root`, when one does (its lock is held);
/// `None` when no daemon serves it, or when this account cannot see (a store it may not read).
pub fn served_by(root: &Path) -> Option<PathBuf> {
    let path = root.join("locks").join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    if fsutil::try_lock_shared(&file, &path).ok()? {
        return None;
    }
    let text = std::fs::read_to_string(root.join(SOCKET_FILE)).ok()?;
    let socket = text.trim_end_matches('\n');
    (!socket.is_empty()).then(|| PathBuf::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_names_the_socket_excludes_a_second_and_dies_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(served_by(dir.path()), None);
        let sock = dir.path().join("d.sock");
        let c = claim(dir.path(), &sock).unwrap();
        assert_eq!(served_by(dir.path()), Some(sock.clone()));
        match claim(dir.path(), &sock) {
            Err(StoreError::Busy { name }) => assert!(name.contains("d.sock"), "{name}"),
            other => panic!("{other:?}"),
        }
        drop(c);
        assert_eq!(served_by(dir.path()), None);
        // A stale name without a holder is ignored.
        std::fs::write(dir.path().join(SOCKET_FILE), "/nowhere\n").unwrap();
        assert_eq!(served_by(dir.path()), None);
    }
}
