//! Per-subsystem locks between processes: `flock(LOCK_EX | LOCK_NB)` on `<root>/locks/<name>.lock`.
//!
//! A lock is never waited for: a busy one fails the whole request at once with
//! [`StoreError::Busy`], which maps to `VDS_E_ANOTHER_CALL_IN_PROGRESS`, as VDS gates concurrent
//! calls. `flock` locks belong to the open file, so the kernel drops them when the holder exits
//! however it exits (SIGKILL included): there is no stale lock to clean up. Lock files are left in
//! place after use (removing them would race with a process that just opened one).
//!
//! Subsystem names may contain any printable character, so the file name is the subsystem name when
//! it is made only of `A-Z a-z 0-9 . _ -` (and does not start with a dot), and otherwise `%` followed
//! by a hexadecimal FNV-1a-128 digest of the name, which keeps it short and free of `/`.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{StoreError, fsutil};

/// Exclusive locks on some subsystems, held until dropped (or until the process exits).
#[derive(Debug)]
pub struct SubsystemLock {
    names: Vec<String>,
    // Dropping the files closes them, which releases the locks.
    _files: Vec<File>,
}

impl SubsystemLock {
    /// The names locked, without duplicates, in the order first asked for.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The lock file name for subsystem `name`.
pub(crate) fn lock_file_name(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        format!("{name}.lock")
    } else {
        format!("%{:032x}.lock", fnv1a128(name.as_bytes()))
    }
}

fn fnv1a128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

pub(crate) fn lock(dir: &Path, names: &[&str]) -> Result<SubsystemLock, StoreError> {
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        crate::validate_name("subsystem", name)?;
        // A second flock on another open file of the same path would fail against our own first one.
        if !unique.iter().any(|n| n == name) {
            unique.push((*name).to_string());
        }
    }
    fsutil::create_dir(dir, 0o700)?;
    let mut files = Vec::with_capacity(unique.len());
    for name in &unique {
        let path: PathBuf = dir.join(lock_file_name(name));
        let file = fsutil::open_lock_file(&path)?;
        if !fsutil::try_lock(&file, &path)? {
            // The locks taken so far are released as `files` drops.
            return Err(StoreError::Busy { name: name.clone() });
        }
        files.push(file);
    }
    Ok(SubsystemLock {
        names: unique,
        _files: files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(lock_file_name("array1"), "array1.lock");
        assert_eq!(lock_file_name("a.b_c-d"), "a.b_c-d.lock");
        let odd = lock_file_name("a/b");
        assert!(odd.starts_with('%') && !odd.contains('/'), "{odd}");
        assert_ne!(lock_file_name("a/b"), lock_file_name("a/c"));
        assert!(lock_file_name(".hidden").starts_with('%'));
        assert!(lock_file_name(&"β".repeat(64)).len() < 64);
    }

    #[test]
    fn same_process_second_lock_is_busy_and_release_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), &["a", "b", "a"]).unwrap();
        assert_eq!(first.names(), ["a", "b"]);
        match lock(dir.path(), &["c", "b"]) {
            Err(StoreError::Busy { name }) => assert_eq!(name, "b"),
            other => panic!("{other:?}"),
        }
        // "c" was released when the failed request gave up.
        drop(lock(dir.path(), &["c"]).unwrap());
        drop(first);
        assert!(lock(dir.path(), &["a", "b"]).is_ok());
    }
}
