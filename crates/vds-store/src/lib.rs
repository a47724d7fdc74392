//! The persistent store of vds: the subsystem configuration, the CHAP secrets and the provider
//! cache, under one root directory, kept apart on purpose.
//!
//! | what | where | format | written |
//! |---|---|---|---|
//! | [configuration](config) | `<root>/vds.toml` | TOML, for people and version control | atomically, under `vds.toml.lock` |
//! | [secrets] | `<root>/secrets/<name>` | raw bytes, mode 0600, dir 0700 | atomically |
//! | [cache] | `<root>/cache.sqlite` | SQLite, WAL mode | one transaction per change |
//! | [locks](lock) | `<root>/locks/<name>.lock` | empty files held with `flock` | — |
//!
//! The configuration says *which* subsystems exist; the cache says *what the providers last learned*
//! about them, and can always be thrown away and rebuilt (`vdsadm reenumerate`); secrets never leave
//! their files except into a [`Secret`].
//!
//! # Example
//!
//! ```
//! use vds_model::{CacheHealth, HwProvider, sim::{self, SimBackend}};
//! use vds_store::{Store, SubsystemConfig};
//!
//! # fn main() -> Result<(), vds_store::StoreError> {
//! let dir = tempfile::tempdir().map_err(|e| vds_store::StoreError::Io { path: "tmp".into(), source: e })?;
//! let store = Store::open(dir.path())?;
//! store.add_subsystem(SubsystemConfig {
//!     portals: vec!["192.0.2.10:3260".into()],
//!     ..SubsystemConfig::new("sim-array-1", "sendtargets")
//! })?;
//! store.save_cache(&[sim::demo_array_1()], CacheHealth::Good)?;
//!
//! // Later, in another process: the provider answers from the cache without touching the array.
//! let cached = store.load_cache()?;
//! let (provider, problem) = HwProvider::from_cache(SimBackend::demo(), cached.subsystems, cached.health);
//! assert!(problem.is_none());
//! assert_eq!(provider.query_sub_systems().map(|e| e.len()), Ok(1));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
mod error;
mod fsutil;
pub mod lock;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use vds_model::{CacheHealth, SubSystemSnapshot};

use cache::Access;
pub use cache::{APPLICATION_ID, BUSY_TIMEOUT, CACHE_SCHEMA_VERSION, CachedState};
pub use config::{CONFIG_VERSION, Config, MAX_NAME_CHARS, SubsystemConfig, validate_name};
pub use error::{SecretProblem, StoreError};
pub use lock::SubsystemLock;
pub use secrets::{MAX_SECRET_LEN, Secret, validate_secret_name};

/// How long a configuration change waits for another process's change before answering `Busy`.
pub const CONFIG_LOCK_DEADLINE: Duration = Duration::from_secs(10);

/// The store under one root directory. Cheap to open: the cache is opened on first use, so
/// configuration and secret commands never touch SQLite, and a corrupt cache does not keep them
/// (or [`rebuild_cache`](Self::rebuild_cache)) from working.
///
/// A `Store` may be shared between threads; cache calls are serialized on one connection.
pub struct Store {
    root: PathBuf,
    cache_files: cache::Files,
    cache: Mutex<cache::Slot>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// Opens the store at `root`, creating the directory (mode 0700, parents too) if it does not
    /// exist; an existing directory keeps its mode. Reads no file.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fsutil::create_dir(root, 0o700)?;
        Ok(Store {
            root: root.to_path_buf(),
            cache_files: cache::Files::new(root),
            cache: Mutex::new(cache::Slot::default()),
        })
    }

    /// Where the store lives by default: `$VDS_HOME` when set and not empty; else `/var/lib/vds`
    /// for root (effective uid 0); else `$XDG_STATE_HOME/vds` when that is an absolute path; else
    /// `$HOME/.local/state/vds`; and `./.vds` when there is no `$HOME` either.
    pub fn default_root() -> PathBuf {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(home) = env("VDS_HOME") {
            return home;
        }
        if effective_uid() == Some(0) {
            return PathBuf::from("/var/lib/vds");
        }
        if let Some(state) = env("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
            return state.join("vds");
        }
        match env("HOME") {
            Some(home) => home.join(".local/state/vds"),
            None => PathBuf::from(".vds"),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/vds.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("vds.toml")
    }

    /// `<root>/cache.sqlite`.
    pub fn cache_path(&self) -> &Path {
        &self.cache_files.db
    }

    /// `<root>/secrets`.
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }

    // -----------------------------------------------------------------------------------------
    // Configuration

    /// The configuration; empty when `vds.toml` does not exist. `Config` with the file and line when
    /// it does not parse or breaks a rule (a bad name, a name twice, an unknown field, a newer
    /// version).
    pub fn config(&self) -> Result<Config, StoreError> {
        let path = self.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => config::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(StoreError::Config {
                path,
                line: 1,
                message: "the file is not UTF-8 text".into(),
            }),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Read-modify-write of the configuration under the cross-process lock: `edit` sees the current
    /// configuration; when it returns `Ok`, the result is checked (names, no name twice) and written
    /// atomically. `Busy { name: "vds.toml" }` if another process holds the lock for longer than
    /// [`CONFIG_LOCK_DEADLINE`].
    pub fn update_config<R>(
        &self,
        edit: impl FnOnce(&mut Config) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _lock = self.lock_config()?;
        let mut config = self.config()?;
        let out = edit(&mut config)?;
        for (i, s) in config.subsystems.iter().enumerate() {
            s.validate()?;
            if config.subsystems[..i].iter().any(|o| o.name == s.name) {
                return Err(StoreError::NameExists {
                    name: s.name.clone(),
                });
            }
        }
        let path = self.config_path();
        let mode = std::fs::metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        fsutil::atomic_write(&path, config::render(&config)?.as_bytes(), mode)?;
        Ok(out)
    }

    /// The cross-process lock of configuration changes (`vds.toml.lock`).
    fn lock_config(&self) -> Result<std::fs::File, StoreError> {
        let lock_path = self.root.join("vds.toml.lock");
        fsutil::lock_with_deadline(&lock_path, "vds.toml", CONFIG_LOCK_DEADLINE)
    }

    /// Registers a subsystem. `InvalidName` if a field breaks the rules
    /// ([`SubsystemConfig::validate`]); `NameExists` if the name is taken.
    pub fn add_subsystem(&self, cfg: SubsystemConfig) -> Result<(), StoreError> {
        cfg.validate()?;
        self.update_config(|config| {
            if config.subsystem(&cfg.name).is_some() {
                return Err(StoreError::NameExists { name: cfg.name });
            }
            config.subsystems.push(cfg);
            Ok(())
        })
    }

    /// Unregisters a subsystem and drops it from the cache, returning its configuration.
    /// `NotFound` if no subsystem has that name. The cache row goes first, in its own transaction,
    /// and the configuration is written only if that worked; a corrupt cache does not block the
    /// removal (it will be rebuilt without the subsystem). Callers that may race with a refresh of
    /// this subsystem should hold its [`lock_subsystems`](Self::lock_subsystems) lock.
    pub fn remove_subsystem(&self, name: &str) -> Result<SubsystemConfig, StoreError> {
        self.update_config(|config| {
            let Some(at) = config.subsystems.iter().position(|s| s.name == name) else {
                return Err(StoreError::NotFound { name: name.into() });
            };
            match self.with_cache(Access::Write, |conn, files| {
                cache::remove(conn, files, name)
            }) {
                Ok(_) | Err(StoreError::CacheCorrupt { .. }) => {}
                Err(e) => return Err(e),
            }
            Ok(config.subsystems.remove(at))
        })
    }

    // -----------------------------------------------------------------------------------------
    // Secrets

    /// Stores `secret` as `<root>/secrets/<name>` (mode 0600; the directory 0700), replacing any
    /// previous one atomically. `InvalidName` for a bad name ([`validate_secret_name`]); `Secret`
    /// with `BadLength` for an empty secret or one over [`MAX_SECRET_LEN`] bytes.
    pub fn put_secret(&self, name: &str, secret: &[u8]) -> Result<(), StoreError> {
        secrets::put(&self.secrets_dir(), name, secret)
    }

    /// Reads a secret. `Secret` with `Missing`, `TooOpen` (the file grants any permission to group
    /// or others: it is refused, and the message says to `chmod 600` it), `NotAFile` (a symbolic
    /// link, a directory) or `BadLength`.
    pub fn read_secret(&self, name: &str) -> Result<Secret, StoreError> {
        secrets::read(&self.secrets_dir(), name)
    }

    /// Deletes a secret. `Secret` with `Missing` if there is none. It does not check whether a
    /// subsystem still names it.
    pub fn remove_secret(&self, name: &str) -> Result<(), StoreError> {
        secrets::remove(&self.secrets_dir(), name)
    }

    /// The names of the stored secrets, sorted.
    pub fn secret_names(&self) -> Result<Vec<String>, StoreError> {
        secrets::names(&self.secrets_dir())
    }

    // -----------------------------------------------------------------------------------------
    // Cache

    fn slot(&self) -> MutexGuard<'_, cache::Slot> {
        // The slot holds a connection and a file; a panic elsewhere cannot leave them half-made.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_cache<R>(
        &self,
        access: Access,
        f: impl FnOnce(&mut rusqlite::Connection, &cache::Files) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.slot().with(&self.cache_files, access, f)
    }

    /// The whole cache: every subsystem in order, the recorded health, and when each subsystem was
    /// last saved. A missing cache file is created empty with health `Good`. `CacheCorrupt` when
    /// the file is damaged, truncated, foreign, of another schema version, or its rows break an
    /// invariant or a checksum; `Busy` while [`rebuild_cache`](Self::rebuild_cache) runs elsewhere.
    pub fn load_cache(&self) -> Result<CachedState, StoreError> {
        self.with_cache(Access::Read, cache::load_all)
    }

    /// One subsystem of the cache, by key (its configured name), without reading the others:
    /// `Ok(None)` when it is not cached. Errors as [`load_cache`](Self::load_cache), limited to the
    /// rows read. A query also needs the health:
    /// [`load_subsystem_and_health`](Self::load_subsystem_and_health) reads both at once.
    pub fn load_subsystem(&self, key: &str) -> Result<Option<SubSystemSnapshot>, StoreError> {
        Ok(self.load_subsystem_and_health(key)?.1.map(|(snap, _)| snap))
    }

    /// As [`load_subsystem`](Self::load_subsystem), with the time it was last saved.
    pub fn load_subsystem_with_time(
        &self,
        key: &str,
    ) -> Result<Option<(SubSystemSnapshot, SystemTime)>, StoreError> {
        Ok(self.load_subsystem_and_health(key)?.1)
    }

    /// The recorded health and one subsystem with the time it was last saved (`None` when it is
    /// not cached), read in one transaction, so both come from the same save: the hot path of a
    /// query about one subsystem (`vdsadm list tportals`). Errors as
    /// [`load_subsystem`](Self::load_subsystem).
    pub fn load_subsystem_and_health(
        &self,
        key: &str,
    ) -> Result<(CacheHealth, Option<(SubSystemSnapshot, SystemTime)>), StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::load_one(conn, files, key)
        })
    }

    /// The health recorded in the cache.
    pub fn cache_health(&self) -> Result<CacheHealth, StoreError> {
        self.with_cache(Access::Read, |conn, files| cache::load_health(conn, files))
    }

    /// Records `health` without changing any subsystem.
    pub fn set_cache_health(&self, health: CacheHealth) -> Result<(), StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::store_health(conn, files, health)
        })
    }

    /// Replaces the whole cache with `subsystems` (in that order) and `health`, in one transaction.
    /// `InvalidSnapshot` (nothing written) when the snapshots break an invariant of the model (the
    /// same checks as `HwProvider::from_cache`). Every subsystem's `refreshed_at` becomes now.
    pub fn save_cache(
        &self,
        subsystems: &[SubSystemSnapshot],
        health: CacheHealth,
    ) -> Result<(), StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::save_all(conn, files, subsystems, health)
        })
    }

    /// Replaces just `subsystems` (by key; a new key is appended at the end of the order, an
    /// existing one keeps its place) and records `health`, in one transaction; the other subsystems
    /// are untouched. Errors as [`save_cache`](Self::save_cache).
    pub fn save_subsystems(
        &self,
        subsystems: &[SubSystemSnapshot],
        health: CacheHealth,
    ) -> Result<(), StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::save_some(conn, files, subsystems, None, health)
        })
    }

    /// The save of a reenumeration: `subsystems` are saved as by
    /// [`save_subsystems`](Self::save_subsystems) and, in the same transaction, every cached
    /// subsystem whose key is neither among them nor the name of a subsystem in the configuration
    /// as it is *now* is dropped. The configuration lock is held from reading the configuration to
    /// the commit, so a subsystem registered meanwhile by another process (which writes the
    /// configuration before its cache rows) is never dropped, as it would be by
    /// [`save_cache`](Self::save_cache), which replaces everything. `Busy { name: "vds.toml" }` as
    /// [`update_config`](Self::update_config); other errors as [`save_cache`](Self::save_cache).
    pub fn save_enumeration(
        &self,
        subsystems: &[SubSystemSnapshot],
        health: CacheHealth,
    ) -> Result<(), StoreError> {
        let _lock = self.lock_config()?;
        let config = self.config()?;
        let keep: std::collections::HashSet<&str> =
            config.subsystems.iter().map(|s| s.name.as_str()).collect();
        self.with_cache(Access::Write, |conn, files| {
            cache::save_some(conn, files, subsystems, Some(&keep), health)
        })
    }

    /// For `vdsadm reenumerate` on a corrupt cache: moves the cache file (and its `-wal` and `-shm`)
    /// aside to `cache.sqlite.corrupt-<UTC timestamp>` (plus `-N` if that exists) for inspection,
    /// and creates a fresh empty cache with health `Rebuilt`. Returns where the old file went, or
    /// `None` when there was none. The configuration and the secrets are not touched. `Busy` when
    /// another store (in this or another process) has the cache open.
    pub fn rebuild_cache(&self) -> Result<Option<PathBuf>, StoreError> {
        let mut slot = self.slot();
        cache::rebuild(&self.cache_files, &mut slot)
    }

    /// Checks the whole cache file: SQLite's `PRAGMA quick_check` (or `integrity_check` when
    /// `thorough`), foreign keys, then a full load with every checksum. Reads every page, so it is
    /// not done on the hot path (see docs/PERFORMANCE.md); for `vdsadm` diagnostics.
    pub fn verify_cache(&self, thorough: bool) -> Result<(), StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::verify(conn, files, thorough)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Locks

    /// Takes the cross-process locks of `names` (`flock(LOCK_EX | LOCK_NB)` on
    /// `<root>/locks/<name>.lock`), all or none: if any is held elsewhere (another process, or
    /// another `SubsystemLock` of this one), `Busy { name }` at once — nothing waits. Released when
    /// the returned guard drops, and by the kernel when the process dies (even by SIGKILL).
    pub fn lock_subsystems(&self, names: &[&str]) -> Result<SubsystemLock, StoreError> {
        lock::lock(&self.root.join("locks"), names)
    }
}

/// The effective uid, read from `/proc/self` (owned by the process's effective uid), so no
/// `unsafe` call is needed; `None` if that cannot be read.
fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}
