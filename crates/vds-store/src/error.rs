//! The one error type of the store, [`StoreError`], and its mapping to `HRESULT`s.
//!
//! Every operation of the store fails with a [`StoreError`]; each variant says *what* went wrong and
//! *where* (the file, the name), so a message printed by `vdsadm` is enough to act on. The mapping to
//! the code a VDS caller sees lives in exactly one function, [`StoreError::hresult`].

use std::path::PathBuf;

use vds_model::{Hresult, Win32Error};

/// What is wrong with a secret file (see [`StoreError::Secret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretProblem {
    /// There is no such secret file.
    Missing,
    /// The file grants permissions to its group or to others (`mode` is the permission bits); it is
    /// not read. Fix with `chmod 600`.
    TooOpen {
        /// The file's permission bits.
        mode: u32,
    },
    /// The path is a symbolic link, a directory or another non-regular file.
    NotAFile,
    /// The secret is empty, or larger than [`MAX_SECRET_LEN`](crate::MAX_SECRET_LEN) bytes.
    BadLength {
        /// Its length in bytes.
        len: u64,
    },
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretProblem::Missing => f.write_str("no such secret"),
            SecretProblem::TooOpen { mode } => write!(
                f,
                "file mode is {mode:04o}: it must not be accessible to group or others; \
                 run `chmod 600` on it"
            ),
            SecretProblem::NotAFile => {
                f.write_str("not a regular file (symbolic links are refused)")
            }
            SecretProblem::BadLength { len } => write!(
                f,
                "length {len} bytes: a secret has 1 to {} bytes",
                crate::MAX_SECRET_LEN
            ),
        }
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The cache file is damaged, truncated, not an SQLite database, another application's database,
    /// of an unknown schema version, or its content breaks an invariant. It is never repaired
    /// silently: `vdsadm reenumerate` calls [`Store::rebuild_cache`](crate::Store::rebuild_cache).
    #[error("provider cache {} is corrupt: {reason}", path.display())]
    CacheCorrupt {
        /// The cache file.
        path: PathBuf,
        /// What was found wrong.
        reason: String,
    },
    /// The cache was written by an older vds (schema `version`) and must be upgraded, which needs
    /// write access to the store; nothing was changed.
    #[error(
        "provider cache {} was written by an older vds (cache format {version}); it is upgraded the \
         first time a command that may write to the store opens it",
        path.display()
    )]
    CacheOutdated {
        /// The cache file.
        path: PathBuf,
        /// Its schema version.
        version: i32,
    },
    /// The store (or its `secrets/`) could be changed by someone else; it is not used.
    #[error("{}: {problem}; fix it with `{fix}`", path.display())]
    UnsafeStore {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// A subsystem's registration has half of a credential (a CHAP user without its secret, or the
    /// reverse): vds would log in without CHAP, which is not what it says.
    #[error("subsystem {subsystem:?}: {present} is set but {missing} is not; set both or neither")]
    HalfCredential {
        /// The subsystem.
        subsystem: String,
        /// The field that is set.
        present: &'static str,
        /// The field that is missing.
        missing: &'static str,
    },
    /// There is no store at that path (a query never creates one).
    #[error("there is no store at {}", path.display())]
    NoStore {
        /// The directory asked for.
        path: PathBuf,
    },
    /// Another call (in this or another process) holds what this one needs; nothing waited.
    #[error("{name} is busy: another operation is in progress")]
    Busy {
        /// The subsystem (or store file) that is busy.
        name: String,
    },
    /// No subsystem (or provider) of that name is registered.
    #[error("no {what} named {name:?}")]
    NotFound {
        /// `"subsystem"` or `"provider"`.
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A subsystem (or provider) of that name is already registered.
    #[error("a {what} named {name:?} already exists")]
    NameExists {
        /// `"subsystem"` or `"provider"`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Two subsystems (or one subsystem twice) name the same secret file.
    #[error(
        "subsystems {first:?} and {second:?} name the same secret file {secret:?}; each secret \
         belongs to one subsystem and one use"
    )]
    SecretShared {
        /// The secret's name.
        secret: String,
        /// The subsystem that named it first.
        first: String,
        /// The other.
        second: String,
    },
    /// A subsystem, provider or secret name breaks the naming rules.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// What kind of name: `"subsystem"`, `"provider"` or `"secret"`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The configuration file cannot be used as it is: bad TOML, an unknown field, a bad value, a
    /// newer format version. The file is never replaced silently.
    #[error("{}:{line}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A secret cannot be stored or used.
    #[error("secret {name:?} ({}): {problem}", path.display())]
    Secret {
        /// The secret's name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// What is wrong.
        problem: SecretProblem,
    },
    /// A snapshot handed to `save_*` breaks an invariant of the model (a portal twice, a group
    /// naming a portal the subsystem lacks, a key twice, …); nothing was written.
    #[error("refusing to save the cache: {reason}")]
    InvalidSnapshot {
        /// The invariant broken.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed for a reason other than corruption or contention (disk full, read-only, …).
    #[error("provider cache {}: {source}", path.display())]
    Sqlite {
        /// The cache file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// The `HRESULT` a VDS caller sees for this error. The one place where store errors map to codes.
    ///
    /// | error | code |
    /// |---|---|
    /// | `CacheCorrupt` | `VDS_E_PROVIDER_CACHE_CORRUPT` |
    /// | `Busy` | `VDS_E_ANOTHER_CALL_IN_PROGRESS` |
    /// | `NotFound` | `VDS_E_OBJECT_NOT_FOUND` |
    /// | `NameExists` | `VDS_E_NAME_NOT_UNIQUE` |
    /// | `InvalidName`, `Config`, `InvalidSnapshot` | `E_INVALIDARG` |
    /// | `Secret`: missing | `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)` |
    /// | `Secret`: too open | `E_ACCESSDENIED` |
    /// | `Secret`: not a file, bad length | `HRESULT_FROM_WIN32(ERROR_INVALID_DATA)` |
    /// | `Io` | [`Hresult::from_io_error`] |
    /// | `Sqlite`: disk full | `HRESULT_FROM_WIN32(ERROR_DISK_FULL)` |
    /// | `Sqlite`: read-only, permission | `E_ACCESSDENIED` |
    /// | `Sqlite`: anything else | `E_FAIL` |
    pub fn hresult(&self) -> Hresult {
        match self {
            StoreError::CacheCorrupt { .. } => Hresult::VDS_E_PROVIDER_CACHE_CORRUPT,
            StoreError::CacheOutdated { .. } | StoreError::UnsafeStore { .. } => {
                Hresult::E_ACCESSDENIED
            }
            StoreError::HalfCredential { .. } => Hresult::E_INVALIDARG,
            StoreError::Busy { .. } => Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS,
            StoreError::NotFound { .. } => Hresult::VDS_E_OBJECT_NOT_FOUND,
            StoreError::NoStore { .. } => Hresult::from_win32(Win32Error::PATH_NOT_FOUND.0),
            StoreError::NameExists { .. } => Hresult::VDS_E_NAME_NOT_UNIQUE,
            StoreError::InvalidName { .. }
            | StoreError::Config { .. }
            | StoreError::SecretShared { .. }
            | StoreError::InvalidSnapshot { .. } => Hresult::E_INVALIDARG,
            StoreError::Secret { problem, .. } => match problem {
                SecretProblem::Missing => Hresult::from_win32(Win32Error::FILE_NOT_FOUND.0),
                SecretProblem::TooOpen { .. } => Hresult::E_ACCESSDENIED,
                SecretProblem::NotAFile | SecretProblem::BadLength { .. } => {
                    Hresult::from_win32(Win32Error::INVALID_DATA.0)
                }
            },
            StoreError::Io { source, .. } => Hresult::from_io_error(source),
            StoreError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => Hresult::from_win32(Win32Error::DISK_FULL.0),
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::PermissionDenied) => {
                    Hresult::E_ACCESSDENIED
                }
                _ => Hresult::E_FAIL,
            },
        }
    }

    /// An `Io` error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The store's error as the one error of vds: its code ([`StoreError::hresult`]), what it concerns
/// and why.
impl From<StoreError> for vds_model::Error {
    fn from(e: StoreError) -> vds_model::Error {
        use vds_model::Subject;
        let code = e.hresult();
        let (subject, cause) = match &e {
            StoreError::CacheCorrupt { .. } | StoreError::Sqlite { .. } => {
                (Subject::ProviderCache, e.to_string())
            }
            StoreError::InvalidSnapshot { reason } => (Subject::ProviderCache, reason.clone()),
            StoreError::CacheOutdated { .. } => (Subject::ProviderCache, e.to_string()),
            StoreError::UnsafeStore { path, problem, fix } => (
                Subject::Other(format!("store {}", path.display())),
                format!("{problem}; fix it with `{fix}`"),
            ),
            StoreError::HalfCredential { subsystem, .. } => {
                (Subject::Subsystem(subsystem.clone()), e.to_string())
            }
            StoreError::NoStore { path } => (
                Subject::Other(format!("store {}", path.display())),
                "there is no store at this path (give the right --store, or create one with a \
                 command that changes it, such as `provider add`)"
                    .to_string(),
            ),
            StoreError::Busy { name } => {
                let subject = match name.as_str() {
                    "vds.toml" => Subject::Configuration,
                    "cache" => Subject::ProviderCache,
                    other => Subject::Other(other.to_string()),
                };
                (subject, String::new())
            }
            StoreError::NotFound { what, name } | StoreError::NameExists { what, name } => {
                let subject = if *what == "provider" {
                    Subject::Provider(name.clone())
                } else {
                    Subject::Subsystem(name.clone())
                };
                let cause = match &e {
                    StoreError::NameExists { .. } => {
                        format!("a {what} of that name is already registered")
                    }
                    _ => String::new(),
                };
                (subject, cause)
            }
            StoreError::InvalidName { what, name, reason } => (
                Subject::Other(format!("{what} name {name:?}")),
                (*reason).to_string(),
            ),
            StoreError::Config { .. } | StoreError::SecretShared { .. } => {
                (Subject::Configuration, e.to_string())
            }
            StoreError::Secret {
                name,
                path,
                problem,
            } => (
                Subject::Other(format!("secret {name:?} ({})", path.display())),
                problem.to_string(),
            ),
            StoreError::Io { path, source } => (
                Subject::Other(path.display().to_string()),
                source.to_string(),
            ),
        };
        vds_model::Error::new(code).about(subject).because(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let p = PathBuf::from("/x");
        let cases: Vec<(StoreError, Hresult)> = vec![
            (
                StoreError::CacheCorrupt {
                    path: p.clone(),
                    reason: "r".into(),
                },
                Hresult::VDS_E_PROVIDER_CACHE_CORRUPT,
            ),
            (
                StoreError::Busy { name: "a".into() },
                Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS,
            ),
            (
                StoreError::NotFound {
                    what: "subsystem",
                    name: "a".into(),
                },
                Hresult::VDS_E_OBJECT_NOT_FOUND,
            ),
            (
                StoreError::NameExists {
                    what: "subsystem",
                    name: "a".into(),
                },
                Hresult::VDS_E_NAME_NOT_UNIQUE,
            ),
            (
                StoreError::InvalidName {
                    what: "subsystem",
                    name: String::new(),
                    reason: "empty",
                },
                Hresult::E_INVALIDARG,
            ),
            (
                StoreError::Config {
                    path: p.clone(),
                    line: 3,
                    message: "m".into(),
                },
                Hresult::E_INVALIDARG,
            ),
            (
                StoreError::Secret {
                    name: "s".into(),
                    path: p.clone(),
                    problem: SecretProblem::TooOpen { mode: 0o644 },
                },
                Hresult::E_ACCESSDENIED,
            ),
            (
                StoreError::Secret {
                    name: "s".into(),
                    path: p.clone(),
                    problem: SecretProblem::Missing,
                },
                Hresult::from_code(0x8007_0002),
            ),
            (
                StoreError::io(
                    p.clone(),
                    std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                ),
                Hresult::E_ACCESSDENIED,
            ),
        ];
        for (e, hr) in cases {
            assert_eq!(e.hresult(), hr, "{e}");
        }
    }

    #[test]
    fn config_error_names_file_and_line() {
        let e = StoreError::Config {
            path: PathBuf::from("/etc/vds/vds.toml"),
            line: 7,
            message: "expected `=`".into(),
        };
        assert_eq!(e.to_string(), "/etc/vds/vds.toml:7: expected `=`");
    }
}
