//! File-system primitives shared by the configuration, the secrets and the locks: atomic
//! replacement of a small file, directory creation with a mode, and `flock` with a deadline.
//!
//! Nothing here knows what the files hold.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use fs2::FileExt;

use crate::StoreError;

/// Creates `dir` (and missing parents) with `mode` when it does not exist; an existing directory
/// keeps its mode. A directory made is given to the owner of its parent (see [`adopt`]).
pub(crate) fn create_dir(dir: &Path, mode: u32) -> Result<(), StoreError> {
    let existed = dir.is_dir();
    match DirBuilder::new().recursive(true).mode(mode).create(dir) {
        Ok(()) => {
            if !existed {
                adopt(dir)?;
            }
            Ok(())
        }
        Err(e) => Err(StoreError::io(dir, e)),
    }
}

/// The effective uid, read once from `/proc/self` (owned by the process's effective uid), so no
/// `unsafe` call is needed; `None` if that cannot be read.
pub(crate) fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    static EUID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| fs::metadata("/proc/self").ok().map(|m| m.uid()))
}

/// Gives `path`, just made by this process, to the owner of the directory it is in, when this
/// process is root and that directory is someone else's: root working in a user's store (to fix
/// it, or through the daemon) must not leave files the store's owner cannot use afterwards.
pub(crate) fn adopt(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    if effective_uid() != Some(0) {
        return Ok(());
    }
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let owner = fs::metadata(parent).map_err(|e| StoreError::io(parent, e))?;
    let mine = fs::symlink_metadata(path).map_err(|e| StoreError::io(path, e))?;
    if (mine.uid(), mine.gid()) == (owner.uid(), owner.gid()) || owner.uid() == 0 {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(owner.uid()), Some(owner.gid()))
        .map_err(|e| StoreError::io(path, e))
}

/// `fsync` of a directory, so that a rename or create inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// A suffix for temporary file names that no other process or thread uses at the same time.
pub(crate) fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it (created with `mode`, which
/// the umask may only narrow, then set exactly), written and `fsync`ed, renamed over `path`, and the
/// directory `fsync`ed. A crash at any moment leaves the old file or the new one, never a mix.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        adopt(&tmp).map_err(std::io::Error::other)?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(path, e));
    }
    sync_dir(dir)
}

/// Writes `bytes` to a new file `path` (mode 0600, `O_EXCL`) and `fsync`s it; on failure the file is
/// removed.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        adopt(path).map_err(std::io::Error::other)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(path);
        return Err(StoreError::io(path, e));
    }
    Ok(())
}

/// Opens (creating with mode 0600) a lock file. The file usually exists: it is opened first
/// as it is (one system call, where checking for it and creating it took three), and made only
/// when it is missing.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(path, e)),
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match f {
        Ok(f) => {
            adopt(path)?;
            Ok(f)
        }
        // Made by another process in between: theirs to own.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| StoreError::io(path, e)),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Opens a lock file for a reader: read-only when it cannot be written (a read-only store, an
/// account that may only read); `None` when it does not exist and cannot be made (`flock` needs no
/// write access, and a store nobody can write cannot be rebuilt under the reader either).
pub(crate) fn open_lock_file_to_read(path: &Path) -> Result<Option<File>, StoreError> {
    match open_lock_file(path) {
        Ok(f) => Ok(Some(f)),
        Err(StoreError::Io { source, .. }) if is_read_only(&source) => match File::open(path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        },
        Err(e) => Err(e),
    }
}

/// True for the errors of writing where one may only read (EROFS, EACCES, EPERM).
pub(crate) fn is_read_only(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem
        || e.raw_os_error() == Some(libc::EROFS)
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(true)` when taken, `Ok(false)` when another open file holds it.
pub(crate) fn try_lock(file: &File, path: &Path) -> Result<bool, StoreError> {
    match FileExt::try_lock_exclusive(file) {
        Ok(()) => Ok(true),
        Err(e) if is_contended(&e) => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// `flock(LOCK_SH | LOCK_NB)`, as [`try_lock`].
pub(crate) fn try_lock_shared(file: &File, path: &Path) -> Result<bool, StoreError> {
    match FileExt::try_lock_shared(file) {
        Ok(()) => Ok(true),
        Err(e) if is_contended(&e) => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn is_contended(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// Takes an exclusive `flock` on `path`, retrying for at most `deadline`; `Busy { name }` when it
/// stays held. Every wait in vds has a deadline; this one only covers short read-modify-write
/// sections of other processes.
pub(crate) fn lock_with_deadline(
    path: &Path,
    name: &str,
    deadline: Duration,
) -> Result<File, StoreError> {
    let file = open_lock_file(path)?;
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if try_lock(&file, path)? {
            return Ok(file);
        }
        if start.elapsed() >= deadline {
            return Err(StoreError::Busy { name: name.into() });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The UTC time `t` as `YYYYMMDDTHHMMSSZ`, for names of files kept aside (RFC 3339's basic form).
pub(crate) fn utc_stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        // 2000-02-29 12:34:56 UTC
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696);
        assert_eq!(utc_stamp(t), "20000229T123456Z");
        // 2026-12-31 23:59:59 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(utc_stamp(t), "20261231T235959Z");
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        atomic_write(&p, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // No temporary left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
