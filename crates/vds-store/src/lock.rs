//! Locks between processes on one store: `flock` on files under `<root>/locks/`, never waited for.
//!
//! VDS's rule is that a conflicting call fails at once with `VDS_E_ANOTHER_CALL_IN_PROGRESS`; these
//! locks carry that rule across processes, with the same gates as the model within one:
//!
//! | operation | provider lock | subsystem lock |
//! |---|---|---|
//! | refresh of one subsystem, a mutation on it, its registration or removal | shared | exclusive, that subsystem's |
//! | reenumerate of the provider, its removal | exclusive | — |
//!
//! so a refresh of subsystem A never holds up one of subsystem B, and a reenumerate (which replaces
//! the provider's set of subsystems) runs alone. Every `flock` is `LOCK_NB`: a lock held elsewhere
//! fails the whole request at once with [`StoreError::Busy`] naming what is busy. `flock` locks
//! belong to the open file, so the kernel drops them when the holder exits however it exits
//! (SIGKILL included): there is no stale lock to clean up. Lock files are left in place after use
//! (removing them would race with a process that just opened one).
//!
//! Provider and subsystem names may contain any printable character, so lock file names are
//! digests: `p-<hex>.lock` for a provider and `s-<hex>.lock` for a subsystem (a 128-bit FNV-1a of
//! the provider's name, or of the provider's name, a NUL and the subsystem's key).

use std::fs::File;
use std::path::Path;

use crate::{StoreError, fsutil};

/// Locks held until dropped (or until the process exits).
#[derive(Debug)]
pub struct StoreLock {
    // Dropping the files closes them, which releases the locks.
    _files: Vec<File>,
}

fn fnv1a128(bytes: impl IntoIterator<Item = u8>) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .into_iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

fn provider_file(provider: &str) -> String {
    format!("p-{:032x}.lock", fnv1a128(provider.bytes()))
}

fn subsystem_file(provider: &str, key: &str) -> String {
    let bytes = provider.bytes().chain([0]).chain(key.bytes());
    format!("s-{:032x}.lock", fnv1a128(bytes))
}

fn take(dir: &Path, file: &str, shared: bool, busy: &str) -> Result<File, StoreError> {
    let path = dir.join(file);
    // The directory is made when the file cannot be opened for want of it (once per store), not
    // checked before every lock: a refresh takes two locks per subsystem.
    let f = match fsutil::open_lock_file(&path) {
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            fsutil::create_dir(dir, 0o700)?;
            fsutil::open_lock_file(&path)?
        }
        opened => opened?,
    };
    let taken = if shared {
        fsutil::try_lock_shared(&f, &path)?
    } else {
        fsutil::try_lock(&f, &path)?
    };
    if taken {
        Ok(f)
    } else {
        Err(StoreError::Busy {
            name: busy.to_string(),
        })
    }
}

/// The locks of an operation on subsystem `key` of `provider`: the provider's shared, the
/// subsystem's exclusive. `Busy` names the subsystem, or the provider while it reenumerates.
pub(crate) fn lock_subsystem(
    dir: &Path,
    provider: &str,
    key: &str,
) -> Result<StoreLock, StoreError> {
    let p = take(
        dir,
        &provider_file(provider),
        true,
        &format!("provider {provider:?}"),
    )?;
    let s = take(
        dir,
        &subsystem_file(provider, key),
        false,
        &format!("subsystem {key:?}"),
    )?;
    Ok(StoreLock { _files: vec![p, s] })
}

/// The lock of a provider-wide operation: the provider's, exclusive. `Busy` names the provider.
pub(crate) fn lock_provider(dir: &Path, provider: &str) -> Result<StoreLock, StoreError> {
    let p = take(
        dir,
        &provider_file(provider),
        false,
        &format!("provider {provider:?}"),
    )?;
    Ok(StoreLock { _files: vec![p] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_digests_and_distinct() {
        assert_ne!(subsystem_file("p", "a"), subsystem_file("p", "b"));
        assert_ne!(subsystem_file("p", "a"), subsystem_file("q", "a"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(subsystem_file("ab", "c"), subsystem_file("a", "bc"));
        assert!(!subsystem_file("a/b", "../x").contains('/'));
        assert_ne!(provider_file("p"), provider_file("q"));
    }

    #[test]
    fn the_lock_directory_and_files_are_made_when_missing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("locks");
        let held = lock_subsystem(&locks, "p", "a").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&locks), 0o700);
        let file = locks.join(subsystem_file("p", "a"));
        assert_eq!(mode(&file), 0o600);
        assert!(matches!(
            lock_subsystem(&locks, "p", "a"),
            Err(StoreError::Busy { .. })
        ));
        drop(held);
        // The files stay, and are opened as they are.
        assert!(lock_subsystem(&locks, "p", "a").is_ok());
        // A lock file that cannot be opened is an error naming it, not a lock.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        match lock_subsystem(&locks, "p", "a") {
            Err(StoreError::Io { path, .. }) => assert_eq!(path, file),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subsystems_lock_apart_and_a_provider_lock_excludes_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = lock_subsystem(dir.path(), "p", "a").unwrap();
        // Another subsystem of the same provider: free.
        let b = lock_subsystem(dir.path(), "p", "b").unwrap();
        // The same subsystem: busy, naming it.
        match lock_subsystem(dir.path(), "p", "a") {
            Err(StoreError::Busy { name }) => assert_eq!(name, "subsystem \"a\""),
            other => panic!("{other:?}"),
        }
        // The provider-wide lock waits for nobody: busy while subsystems are locked.
        match lock_provider(dir.path(), "p") {
            Err(StoreError::Busy { name }) => assert_eq!(name, "provider \"p\""),
            other => panic!("{other:?}"),
        }
        // Another provider is not concerned.
        drop(lock_provider(dir.path(), "q").unwrap());
        drop((a, b));
        let whole = lock_provider(dir.path(), "p").unwrap();
        assert!(matches!(
            lock_subsystem(dir.path(), "p", "a"),
            Err(StoreError::Busy { .. })
        ));
        drop(whole);
        assert!(lock_subsystem(dir.path(), "p", "a").is_ok());
    }
}
