//! Secret bytes (CHAP secrets, account passwords) for every vds crate: the one [`Secret`] type and
//! the one way to read a secret from a file.
//!
//! A [`Secret`] is wiped when dropped, never shown by `Debug` (there is no `Display`), and has no
//! `PartialEq`: comparing secrets byte by byte leaks timing, so code compares what a protocol
//! computes from them instead. [`read_file`] reads a secret from a file the way both the store
//! (its own `secrets/` files) and the command line (`--chap-secret-file`) need: regular files only,
//! opened without blocking (a FIFO or a device never hangs the caller), with a size cap (`/dev/zero`
//! cannot grow memory), and every error names the file.
//!
//! This crate knows nothing of iSCSI or VDS; the limits a protocol puts on a secret are the
//! caller's to pass in.
#![deny(missing_docs)]

use std::fmt;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Secret bytes: wiped on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// The bytes, for the code that computes a protocol value from them. Never log or print them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Secret {
        Secret::new(bytes)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

/// How [`read_file`] treats the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilePolicy {
    /// The most bytes a secret may have (after trimming); a longer file is refused without being
    /// read whole.
    pub max_len: usize,
    /// Follow a symbolic link (a file the user names may be one, such as `/run/secrets/x`); when
    /// false a link is refused (`O_NOFOLLOW`), as for files a program keeps itself.
    pub follow_symlinks: bool,
    /// Refuse a file that grants any permission to its group or to others (`mode & 0o077`), as
    /// OpenSSH does with private keys: the secret may already have leaked.
    pub private_mode: bool,
    /// Drop one trailing line end (`\n` or `\r\n`): `echo secret > file` is the common way to write
    /// a secret by hand, and a CHAP secret that ends in a newline is always a mistake.
    pub trim_line_end: bool,
}

impl FilePolicy {
    /// A file the user names on a command line: links followed, any mode, one line end trimmed.
    pub fn user_file(max_len: usize) -> FilePolicy {
        FilePolicy {
            max_len,
            follow_symlinks: true,
            private_mode: false,
            trim_line_end: true,
        }
    }

    /// A file a program keeps for itself: no links, mode 0600 or stricter, bytes exact.
    pub fn private_file(max_len: usize) -> FilePolicy {
        FilePolicy {
            max_len,
            follow_symlinks: false,
            private_mode: true,
            trim_line_end: false,
        }
    }
}

/// What was wrong with a secret file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// There is no such file.
    #[error("no such file")]
    Missing,
    /// A symbolic link where the policy refuses them, a directory, a FIFO, a device, a socket.
    #[error("not a regular file ({kind})")]
    NotAFile {
        /// What it is instead (`symbolic link`, `directory`, `FIFO`, `device`, `socket`).
        kind: &'static str,
    },
    /// The file grants permissions to its group or others.
    #[error(
        "file mode is {mode:04o}: it must not be accessible to group or others; run `chmod 600` on it"
    )]
    TooOpen {
        /// The permission bits.
        mode: u32,
    },
    /// Empty (after trimming), or longer than the limit.
    #[error("the secret is {len} bytes long; it must have 1 to {max} bytes")]
    BadLength {
        /// Its length (a lower bound when the file was too long to read whole).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Opening or reading failed.
    #[error("{0}")]
    Io(String),
}

/// A secret file that could not be used: which file, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct FileError {
    /// The file as given.
    pub path: PathBuf,
    /// What was wrong.
    pub problem: FileProblem,
    /// The OS error number when the problem came from a system call.
    pub errno: Option<i32>,
}

impl FileError {
    fn new(path: &Path, problem: FileProblem) -> FileError {
        FileError {
            path: path.to_path_buf(),
            problem,
            errno: None,
        }
    }

    fn io(path: &Path, e: &std::io::Error) -> FileError {
        FileError {
            path: path.to_path_buf(),
            problem: FileProblem::Io(e.to_string()),
            errno: e.raw_os_error(),
        }
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else if ft.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Reads a secret from `path` under `policy`. See the crate documentation.
///
/// The file is opened with `O_NONBLOCK` (and `O_NOFOLLOW` unless links are followed), checked with
/// `fstat` on the open descriptor (so nothing can swap it between check and read), and at most
/// `max_len + 2` bytes are read.
pub fn read_file(path: &Path, policy: FilePolicy) -> Result<Secret, FileError> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if !policy.follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let mut file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::new(path, FileProblem::Missing));
        }
        // O_NOFOLLOW on a symbolic link fails with ELOOP.
        Err(e) if !policy.follow_symlinks && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(FileError::new(
                path,
                FileProblem::NotAFile {
                    kind: "symbolic link",
                },
            ));
        }
        Err(e) => return Err(FileError::io(path, &e)),
    };
    let meta = file.metadata().map_err(|e| FileError::io(path, &e))?;
    if !meta.is_file() {
        let kind = kind_of(meta.file_type());
        return Err(FileError::new(path, FileProblem::NotAFile { kind }));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if policy.private_mode && mode & 0o077 != 0 {
        return Err(FileError::new(path, FileProblem::TooOpen { mode }));
    }
    // Two more bytes than the limit: room for a trimmed "\r\n", and proof that a file is too long.
    let cap = policy.max_len as u64 + 2;
    let mut bytes = Zeroizing::new(Vec::with_capacity(policy.max_len.min(64 * 1024) + 2));
    file.by_ref()
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::io(path, &e))?;
    let mut len = bytes.len();
    if policy.trim_line_end {
        if bytes.ends_with(b"\r\n") {
            len -= 2;
        } else if bytes.ends_with(b"\n") {
            len -= 1;
        }
    }
    if len == 0 || len > policy.max_len {
        let len = if bytes.len() as u64 == cap {
            meta.len().max(cap)
        } else {
            len as u64
        };
        return Err(FileError::new(
            path,
            FileProblem::BadLength {
                len,
                max: policy.max_len,
            },
        ));
    }
    Ok(Secret::new(bytes[..len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), b"hunter2hunter2");
        assert_eq!(s.len(), 14);
    }

    fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn user_files_trim_one_line_end_and_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "s", b"hunter2hunter2\r\n", 0o644);
        let s = read_file(&p, FilePolicy::user_file(1024)).unwrap();
        assert_eq!(s.expose(), b"hunter2hunter2");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read_file(&link, FilePolicy::user_file(1024)).is_ok());
        let p = write(dir.path(), "nl2", b"x\n\n", 0o600);
        assert_eq!(
            read_file(&p, FilePolicy::user_file(1024)).unwrap().expose(),
            b"x\n"
        );
    }

    #[test]
    fn private_files_refuse_links_and_open_modes() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "s", b"abc\n", 0o640);
        let e = read_file(&p, FilePolicy::private_file(1024)).unwrap_err();
        assert_eq!(e.problem, FileProblem::TooOpen { mode: 0o640 });
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_file(&p, FilePolicy::private_file(1024))
                .unwrap()
                .expose(),
            b"abc\n"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = read_file(&link, FilePolicy::private_file(1024)).unwrap_err();
        assert_eq!(
            e.problem,
            FileProblem::NotAFile {
                kind: "symbolic link"
            }
        );
    }

    #[test]
    fn lengths_are_capped_and_empty_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "empty", b"\n", 0o600);
        let e = read_file(&p, FilePolicy::user_file(16)).unwrap_err();
        assert!(
            matches!(e.problem, FileProblem::BadLength { len: 0, .. }),
            "{e}"
        );
        let p = write(dir.path(), "long", &[b'a'; 17], 0o600);
        let e = read_file(&p, FilePolicy::user_file(16)).unwrap_err();
        assert!(
            matches!(e.problem, FileProblem::BadLength { len: 17, max: 16 }),
            "{e}"
        );
        let p = write(dir.path(), "max", &[b'a'; 16], 0o600);
        assert_eq!(read_file(&p, FilePolicy::user_file(16)).unwrap().len(), 16);
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once() {
        let e = read_file(Path::new("/dev/zero"), FilePolicy::user_file(1024)).unwrap_err();
        assert_eq!(e.problem, FileProblem::NotAFile { kind: "device" });
        assert!(e.to_string().starts_with("/dev/zero: "), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_file(dir.path(), FilePolicy::user_file(1024)).unwrap_err();
        assert_eq!(e.problem, FileProblem::NotAFile { kind: "directory" });
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_file(&fifo, FilePolicy::user_file(1024)).unwrap_err();
        assert_eq!(e.problem, FileProblem::NotAFile { kind: "FIFO" });
        let e = read_file(&dir.path().join("none"), FilePolicy::user_file(1024)).unwrap_err();
        assert_eq!(e.problem, FileProblem::Missing);
    }
}
