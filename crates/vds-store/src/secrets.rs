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

use std::fs;
use std::path::{Path, PathBuf};

use vds_secret::{FilePolicy, FileProblem, Secret};

use crate::error::SecretProblem;
use crate::{MAX_NAME_CHARS, StoreError, fsutil};

/// The longest secret accepted, in bytes. iSCSI CHAP secrets are at most 1024 bytes (the protocol
/// checks its own limit where a secret is entered); this limit only keeps a wrong file from being
/// read whole.
pub const MAX_SECRET_LEN: usize = 4096;

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
    vds_secret::read_file(&path, FilePolicy::private_file(MAX_SECRET_LEN)).map_err(|e| {
        let problem = match e.problem {
            FileProblem::Missing => SecretProblem::Missing,
            FileProblem::NotAFile { .. } => SecretProblem::NotAFile,
            FileProblem::TooOpen { mode } => SecretProblem::TooOpen { mode },
            FileProblem::BadLength { len, .. } => SecretProblem::BadLength { len },
            FileProblem::Io(_) | _ => {
                let source = std::io::Error::from_raw_os_error(e.errno.unwrap_or(libc::EIO));
                return StoreError::io(&path, source);
            }
        };
        self::problem(name, &path, problem)
    })
}

/// Stores `secret` under a new name made from `stem` and `suffix` (`<stem>.<suffix>`, else
/// `<stem>-2.<suffix>`, …), never replacing a file and never using a name `taken` says is in use;
/// returns the name. The file appears whole or not at all (written beside, then linked into place,
/// which fails rather than replace).
pub(crate) fn create(
    dir: &Path,
    stem: &str,
    suffix: &str,
    secret: &[u8],
    taken: &dyn Fn(&str) -> bool,
) -> Result<String, StoreError> {
    // A stem from any subsystem name: the characters a secret name allows, the rest as '_'.
    let mut clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while clean.starts_with('.') {
        clean.remove(0);
    }
    clean.truncate(MAX_NAME_CHARS - suffix.len() - 6);
    if clean.is_empty() {
        clean.push_str("subsystem");
    }
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(problem(
            stem,
            dir,
            SecretProblem::BadLength {
                len: secret.len() as u64,
            },
        ));
    }
    fsutil::create_dir(dir, 0o700)?;
    let tmp = dir.join(format!(".new-{}", fsutil::unique_suffix()));
    fsutil::write_private(&tmp, secret)?;
    let result = (|| {
        for n in 1..=999 {
            let name = if n == 1 {
                format!("{clean}.{suffix}")
            } else {
                format!("{clean}-{n}.{suffix}")
            };
            validate_secret_name(&name)?;
            if taken(&name) {
                continue;
            }
            match fs::hard_link(&tmp, dir.join(&name)) {
                Ok(()) => {
                    fsutil::sync_dir(dir)?;
                    return Ok(name);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(dir.join(&name), e)),
            }
        }
        Err(StoreError::NameExists {
            what: "secret",
            name: format!("{clean}.{suffix}"),
        })
    })();
    let _ = fs::remove_file(&tmp);
    result
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
    fn secret_names() {
        for ok in ["a", "array1-chap", "A.b_c-9", &"x".repeat(64)] {
            assert!(validate_secret_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", &"x".repeat(65)] {
            assert!(validate_secret_name(bad).is_err(), "{bad}");
        }
    }
}
