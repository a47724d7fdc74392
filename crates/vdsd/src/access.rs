//! Who is calling, and what they may do.
//!
//! - On the Unix socket the kernel says who the peer is (`SO_PEERCRED`): root and the store's owner
//!   are administrators; members of the configured read-only group may query; anyone else is
//!   refused on every route (403, `E_ACCESSDENIED`).
//! - On the TLS listener each request carries a bearer token. Tokens are kept as SHA-256 digests in
//!   a file only its owner may read or write (mode 0600, refused otherwise, as ssh's StrictModes);
//!   a presented token is hashed and compared with every digest in constant time, so neither the
//!   comparison nor the position of a match leaks through timing.
//!
//! The role is decided here once per connection (Unix) or per request (TLS) and put in the request's
//! extensions; [`authorize`](crate::api::authorize) applies it.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vds_model::{Error, Hresult, Subject};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Nothing (an unknown local user, a wrong token).
    None,
    /// Queries (`GET`).
    ReadOnly,
    /// Everything.
    Admin,
}

impl Role {
    /// `admin`, `read-only`, `none`.
    pub fn label(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::ReadOnly => "read-only",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "read-only" => Some(Role::ReadOnly),
            _ => None,
        }
    }
}

/// The caller of a request, as the listener saw it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A local process on the Unix socket, with the role its credentials give.
    Local {
        /// The peer's uid.
        uid: u32,
        /// Its pid, when known.
        pid: Option<i32>,
        /// What it may do.
        role: Role,
    },
    /// A client of the TLS listener: its role comes from the request's bearer token.
    Remote {
        /// The peer's address.
        addr: std::net::SocketAddr,
    },
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Local { uid, pid, role } => {
                write!(f, "uid {uid}")?;
                if let Some(p) = pid {
                    write!(f, " pid {p}")?;
                }
                write!(f, " ({})", role.label())
            }
            Caller::Remote { addr } => write!(f, "{addr} (TLS)"),
        }
    }
}

/// Who may do what on the Unix socket.
#[derive(Clone, Debug)]
pub struct LocalPolicy {
    /// The store's owner (an administrator, like root).
    pub owner_uid: u32,
    /// The read-only group, when configured.
    pub read_only_gid: Option<u32>,
}

impl LocalPolicy {
    /// The policy for the store at `root`: its owner, and `group` (a name or a number).
    pub fn new(root: &Path, group: Option<&str>) -> Result<LocalPolicy, Error> {
        let owner_uid = std::fs::metadata(root)
            .map_err(|e| {
                Error::new(Hresult::from_io_error(&e))
                    .about(Subject::Other(format!("store {}", root.display())))
                    .because(e.to_string())
            })?
            .uid();
        let read_only_gid = group.map(group_id).transpose()?;
        Ok(LocalPolicy {
            owner_uid,
            read_only_gid,
        })
    }

    /// The role of the peer with these credentials. Supplementary groups are read from
    /// `/proc/PID/status`, so a member of the read-only group is recognised whatever its primary
    /// group.
    pub fn role(&self, uid: u32, gid: u32, pid: Option<i32>) -> Role {
        if uid == 0 || uid == self.owner_uid {
            return Role::Admin;
        }
        let Some(ro) = self.read_only_gid else {
            return Role::None;
        };
        if gid == ro || pid.is_some_and(|p| supplementary_groups(p).contains(&ro)) {
            Role::ReadOnly
        } else {
            Role::None
        }
    }
}

fn supplementary_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The gid of `group`: a number, or a name looked up in the group database.
pub fn group_id(group: &str) -> Result<u32, Error> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let bad = || {
        Error::new(Hresult::E_INVALIDARG)
            .about(Subject::Other(format!("read-only group {group:?}")))
    };
    let name = std::ffi::CString::new(group).map_err(|_| bad().because("it contains NUL"))?;
    let mut grp: libc::group = unsafe_zeroed_group();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `name` is a NUL-terminated string, `grp` and
    // `buf` live across it with `buf.len()` bytes, and `out` is written by getgrnam_r.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        )
    };
    if rc != 0 || out.is_null() {
        return Err(bad().because("there is no such group"));
    }
    Ok(grp.gr_gid)
}

fn unsafe_zeroed_group() -> libc::group {
    libc::group {
        gr_name: std::ptr::null_mut(),
        gr_passwd: std::ptr::null_mut(),
        gr_gid: 0,
        gr_mem: std::ptr::null_mut(),
    }
}

/// A token's SHA-256 digest.
#[derive(Clone, PartialEq, Eq)]
struct Digest32([u8; 32]);

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<digest>")
    }
}

fn digest(token: &str) -> Digest32 {
    Digest32(Sha256::digest(token.as_bytes()).into())
}

/// One line of the tokens file.
#[derive(Clone, Debug)]
struct TokenEntry {
    name: String,
    role: Role,
    digest: Digest32,
}

/// The bearer tokens of the TLS listener, as digests.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

/// The most bytes a tokens file may have (it is read whole at start and on SIGHUP).
const MAX_TOKENS_FILE: u64 = 1 << 20;

fn token_error(path: &Path) -> Error {
    Error::new(Hresult::E_INVALIDARG)
        .about(Subject::Other(format!("tokens file {}", path.display())))
}

impl Tokens {
    /// Reads the tokens file at `path`: lines `NAME ROLE SHA256-HEX` (`#` comments and blank lines
    /// ignored). Refused unless it is a regular file that only its owner may read or write.
    pub fn load(path: &Path) -> Result<Tokens, Error> {
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::new(Hresult::from_io_error(&e))
                .about(Subject::Other(format!("tokens file {}", path.display())))
                .because(e.to_string())
        })?;
        if !meta.is_file() {
            return Err(token_error(path).because("it is not a regular file"));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(token_error(path).because(format!(
                "its mode is {:04o}: group and others must have no access (chmod 600)",
                meta.permissions().mode() & 0o7777
            )));
        }
        if meta.len() > MAX_TOKENS_FILE {
            return Err(token_error(path).because("it is over 1 MiB"));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| token_error(path).because(e.to_string()))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| token_error(path).because(format!("line {}: {why}", n + 1));
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hex] = fields.as_slice() else {
                return Err(bad("expected NAME ROLE SHA256-HEX"));
            };
            let role = Role::parse(role).ok_or_else(|| bad("the role is admin or read-only"))?;
            let bytes = hex::decode(hex).map_err(|_| bad("the digest is not hex"))?;
            let digest: [u8; 32] = bytes
                .try_into()
                .map_err(|_| bad("the digest is not 32 bytes"))?;
            entries.push(TokenEntry {
                name: (*name).to_string(),
                role,
                digest: Digest32(digest),
            });
        }
        Ok(Tokens { entries })
    }

    /// The role of a presented token (`Role::None` when it matches none). Every digest is compared,
    /// in constant time, whatever matched.
    pub fn role(&self, token: &str) -> Role {
        let presented = digest(token);
        let mut role = Role::None;
        for e in &self.entries {
            let equal: bool = e.digest.0.ct_eq(&presented.0).into();
            if equal {
                role = role.max(e.role);
            }
        }
        role
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// `vdsd token add`: makes a random token, appends its digest to the tokens file at `path`
/// (created with mode 0600), and returns the token (shown once; only its digest is kept).
pub fn add_token(path: &Path, name: &str, role: Role) -> Result<String, Error> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::new(Hresult::E_INVALIDARG)
            .about(Subject::Other(format!("token name {name:?}")))
            .because("it must be non-empty, without spaces or control characters"));
    }
    if path.exists() {
        let existing = Tokens::load(path)?;
        if existing.entries.iter().any(|e| e.name == name) {
            return Err(Error::new(Hresult::VDS_E_NAME_NOT_UNIQUE)
                .about(Subject::Other(format!("token {name:?}")))
                .because(format!("{} has a token of that name", path.display())));
        }
    }
    let mut raw = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut raw);
    let token = hex::encode(raw);
    let line = format!(
        "{name} {} {}\n",
        role.label(),
        hex::encode(digest(&token).0)
    );
    let io = |e: std::io::Error| {
        Error::new(Hresult::from_io_error(&e))
            .about(Subject::Other(format!("tokens file {}", path.display())))
            .because(e.to_string())
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(token)
}

/// Where the tokens live by default: beside the configuration, `/etc/vds/tokens` for root.
pub fn default_tokens_path() -> PathBuf {
    PathBuf::from("/etc/vds/tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_hashed_and_checked_by_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let admin = add_token(&path, "ops", Role::Admin).unwrap();
        let reader = add_token(&path, "grafana", Role::ReadOnly).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&admin) && !text.contains(&reader), "{text}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let t = Tokens::load(&path).unwrap();
        assert_eq!(t.role(&admin), Role::Admin);
        assert_eq!(t.role(&reader), Role::ReadOnly);
        assert_eq!(t.role("nope"), Role::None);
        assert_eq!(t.role(""), Role::None);
        assert!(add_token(&path, "ops", Role::Admin).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Tokens::load(&path).unwrap_err();
        assert!(e.message().contains("chmod 600"), "{e}");
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# c\n\nx admin zz\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Tokens::load(&path).unwrap_err();
        assert!(e.message().contains("line 3"), "{e}");
    }

    #[test]
    fn root_and_the_owner_administer_the_group_reads_others_nothing() {
        let p = LocalPolicy {
            owner_uid: 1000,
            read_only_gid: Some(4242),
        };
        assert_eq!(p.role(0, 0, None), Role::Admin);
        assert_eq!(p.role(1000, 1000, None), Role::Admin);
        assert_eq!(p.role(1001, 4242, None), Role::ReadOnly);
        assert_eq!(p.role(65534, 65534, None), Role::None);
    }
}
