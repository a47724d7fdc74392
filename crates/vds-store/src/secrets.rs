//! The secrets: CHAP secrets, one file each in `<root>/secrets/<name>`, never in the configuration.
//!
//! The directory is created with mode 0700 and every file is written atomically with mode 0600. A
//! file holds the secret's bytes exactly (no trailing newline is added or removed: write one by hand
//! with `printf %s`, not `echo`).
//!
//! Reading is strict, like OpenSSH with private keys: a secret file that grants *any* permission to
//! its group or to others (`mode & 0o077 != 0`) is refused with an error telling the administrator to
//! `chmod 600` it, because the secret may already have leaked and using it silently would hide that.
//! Symbolic links and other non-regular files are refused (`O_NOFOLLOW`), and so are empty files and
//! files longer than [`MAX_SECRET_LEN`]. The owner is not checked. Secret bytes live in a [`Secret`],
//! which never prints them and wipes them when dropped.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::SecretProblem;
use crate::{MAX_NAME_CHARS, StoreError, fsutil};

/// The longest secret accepted, in bytes. iSCSI CHAP secrets are at most 255 bytes in practice;
/// the limit only keeps a wrong file from being read whole.
pub const MAX_SECRET_LEN: usize = 4096;

/// A secret's bytes. `Debug` prints `Secret(<redacted>)`; the bytes are wiped on drop. It has no
/// `PartialEq`: comparing secrets byte by byte would leak timing; compare what CHAP computes.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The secret's bytes, for the code that computes a CHAP response. Do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty (never, for a secret read from the store).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The naming rule for secrets, which are file names: 1 to 64 characters from `A-Z a-z 0-9 . _ -`,
/// not starting with a dot.
pub fn validate_secret_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_CHARS {
        "it is longer than 64 characters"
    } else if name.starts_with('.') {
        "it starts with a dot"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "only letters, digits, '.', '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName {
        what: "secret",
        name: name.into(),
        reason,
    })
}

pub(crate) fn secret_path(dir: &Path, name: &str) -> Result<PathBuf, StoreError> {
    validate_secret_name(name)?;
    Ok(dir.join(name))
}

fn problem(name: &str, path: &Path, problem: SecretProblem) -> StoreError {
    StoreError::Secret {
        name: name.into(),
        path: path.to_path_buf(),
        problem,
    }
}

pub(crate) fn put(dir: &Path, name: &str, secret: &[u8]) -> Result<(), StoreError> {
    let path = secret_path(dir, name)?;
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(problem(
            name,
            &path,
            SecretProblem::BadLength {
                len: secret.len() as u64,
            },
        ));
    }
    fsutil::create_dir(dir, 0o700)?;
    fsutil::atomic_write(&path, secret, 0o600)
}

pub(crate) fn read(dir: &Path, name: &str) -> Result<Secret, StoreError> {
    let path = secret_path(dir, name)?;
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(problem(name, &path, SecretProblem::Missing));
        }
        // O_NOFOLLOW on a symbolic link fails with ELOOP.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(problem(name, &path, SecretProblem::NotAFile));
        }
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let meta = file.metadata().map_err(|e| StoreError::io(&path, e))?;
    if !meta.is_file() {
        return Err(problem(name, &path, SecretProblem::NotAFile));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(problem(name, &path, SecretProblem::TooOpen { mode }));
    }
    let len = meta.len();
    if len == 0 || len > MAX_SECRET_LEN as u64 {
        return Err(problem(name, &path, SecretProblem::BadLength { len }));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_SECRET_LEN + 1));
    file.by_ref()
        .take(MAX_SECRET_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(&path, e))?;
    if bytes.is_empty() || bytes.len() > MAX_SECRET_LEN {
        let len = bytes.len() as u64;
        return Err(problem(name, &path, SecretProblem::BadLength { len }));
    }
    Ok(Secret(bytes))
}

pub(crate) fn remove(dir: &Path, name: &str) -> Result<(), StoreError> {
    let path = secret_path(dir, name)?;
    match fs::remove_file(&path) {
        Ok(()) => fsutil::sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(problem(name, &path, SecretProblem::Missing))
        }
        Err(e) => Err(StoreError::io(&path, e)),
    }
}

pub(crate) fn names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            // Temporary files of an interrupted write start with a dot and are not secrets.
            if validate_secret_name(name).is_ok() {
                out.push(name.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from(b"hunter2hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), b"hunter2hunter2");
    }

    #[test]
    fn secret_names() {
        for ok in ["a", "array1-chap", "A.b_c-9", &"x".repeat(64)] {
            assert!(validate_secret_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", &"x".repeat(65)] {
            assert!(validate_secret_name(bad).is_err(), "{bad}");
        }
    }
}
