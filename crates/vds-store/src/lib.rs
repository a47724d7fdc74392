//! The persistent store of vds: the configuration (providers and registered subsystems), the CHAP
//! secrets, the provider cache and the providers' own state, under one root directory, kept apart on
//! purpose.
//!
//! | what | where | format | written |
//! |---|---|---|---|
//! | [configuration](config) | `<root>/vds.toml` | TOML, for people and version control | atomically, under `vds.toml.lock` |
//! | [secrets] | `<root>/secrets/<name>` | raw bytes, mode 0600, dir 0700 | atomically |
//! | [cache] | `<root>/cache.sqlite` | SQLite, WAL mode, one part per provider | one transaction per change |
//! | [locks](lock) | `<root>/locks/*.lock` | empty files held with `flock` | — |
//! | [provider state](StateFile) | `<root>/state/*.state` | what the provider kind writes (the simulator's array) | atomically |
//!
//! The configuration says *which* providers and subsystems exist; the cache says *what the
//! providers last learned* about them, and can always be thrown away and rebuilt (reenumerate);
//! secrets never leave their files except into a [`Secret`]. A store written by vds 0.1 (format 1)
//! opens with nothing lost: see [`config`] and [`cache`] for how each part is upgraded, and where
//! the originals are kept.
//!
//! The store knows nothing of which command runs: the service (`vds-service`) decides what to load,
//! when to save and which locks an operation takes.
//!
//! # Example
//!
//! ```
//! use vds_model::{CacheHealth, HwProvider, sim::{self, SimBackend}};
//! use vds_store::{ProviderConfig, Selection, Store, SubsystemConfig};
//!
//! # fn main() -> Result<(), vds_store::StoreError> {
//! let dir = tempfile::tempdir().map_err(|e| vds_store::StoreError::Io { path: "tmp".into(), source: e })?;
//! let store = Store::open(dir.path())?;
//! store.update_config(|c| {
//!     c.providers.push(ProviderConfig::new("lab", "sim"));
//!     Ok(())
//! })?;
//! store.save("lab", &[sim::demo_array_1()], CacheHealth::Good)?;
//!
//! // Later, in another process: the provider answers from the cache without touching the array.
//! let cached = store.load("lab", Selection::All)?;
//! let (provider, problem) =
//!     HwProvider::from_cache(SimBackend::demo(), cached.snapshots(), cached.health);
//! assert!(problem.is_none());
//! assert_eq!(provider.query_sub_systems().map(|e| e.len()).ok(), Some(1));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod daemon;
mod error;
mod fsutil;
pub mod lock;
pub mod secrets;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vds_model::{CacheHealth, SubSystemSnapshot};

use cache::Access;
pub use cache::{
    APPLICATION_ID, BUSY_TIMEOUT, CACHE_SCHEMA_VERSION, MAX_KEYS_PER_LOAD, ProviderCache, Renewal,
    Selection, Stamp,
};
pub use config::{
    CONFIG_VERSION, Config, MAX_NAME_CHARS, ProviderConfig, SubsystemConfig, V1_PROVIDER_KIND,
    V1_PROVIDER_NAME, validate_name,
};
pub use daemon::DaemonClaim;
pub use error::{SecretProblem, StoreError};
pub use lock::StoreLock;
pub use secrets::{MAX_SECRET_LEN, validate_secret_name};
pub use vds_secret::Secret;

/// How long a configuration change waits for another process's change before answering `Busy`.
pub const CONFIG_LOCK_DEADLINE: Duration = Duration::from_secs(10);

/// The most bytes of a provider state file that are read.
pub const MAX_STATE_LEN: u64 = 64 << 20;

/// The store under one root directory. Cheap to open: the cache is opened on first use, so
/// configuration and secret commands never touch SQLite, and a corrupt cache does not keep them
/// (or [`rebuild_cache`](Self::rebuild_cache)) from working.
///
/// A `Store` may be shared between threads; cache calls are serialized on one connection.
pub struct Store {
    root: PathBuf,
    cache_files: cache::Files,
    cache: Mutex<cache::Slot>,
    /// The last configuration parsed, with the SHA-256 of the text it was parsed from: a text read
    /// again that is the same is not parsed again (an operation reads the configuration several
    /// times, and parsing a configuration of thousands of subsystems costs milliseconds each
    /// time). The digest, not the text: a fleet's `vds.toml` is megabytes.
    parsed: Mutex<Option<([u8; 32], Arc<Config>)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// Opens the store at `root`, creating the directory (mode 0700, parents too) if it does not
    /// exist; an existing directory keeps its mode. Reads no file, but refuses a store others could
    /// change (see [`check_modes`]).
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fsutil::create_dir(root, 0o700)?;
        check_modes(root)?;
        Ok(Store::at(root))
    }

    /// The store at `root`, which must exist already (a query never creates a store): `NoStore`
    /// naming the directory when it does not. Reads no file.
    pub fn open_existing(root: &Path) -> Result<Store, StoreError> {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {
                check_modes(root)?;
                Ok(Store::at(root))
            }
            Ok(_) => Err(StoreError::io(
                root,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoStore {
                path: root.to_path_buf(),
            }),
            Err(e) => Err(StoreError::io(root, e)),
        }
    }

    fn at(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            cache_files: cache::Files::new(root),
            cache: Mutex::new(cache::Slot::default()),
            parsed: Mutex::new(None),
        }
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
        if fsutil::effective_uid() == Some(0) {
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
    /// it does not parse or breaks a rule (a bad name, a name twice, an unknown field, a subsystem
    /// of a provider that is not defined, a secret named twice, a newer version). A version 1 file
    /// is read as version 2 (see [`config`]).
    pub fn config(&self) -> Result<Arc<Config>, StoreError> {
        let path = self.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                use sha2::Digest;
                let digest: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
                let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((seen, config)) = parsed.as_ref() {
                    if *seen == digest {
                        return Ok(config.clone());
                    }
                }
                let config = Arc::new(config::parse(&path, &text)?);
                *parsed = Some((digest, config.clone()));
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Arc::new(Config::default())),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(StoreError::Config {
                path,
                line: 1,
                message: "the file is not UTF-8 text".into(),
            }),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Drops the configuration [`config`](Self::config) keeps parsed; the next call reads and
    /// parses the file again. For a one-shot caller that has taken what it needs and goes on to
    /// hold much else: a fleet's configuration is megabytes (vdsadm's refresh, once its backend is
    /// built).
    pub fn forget_config(&self) {
        *self.parsed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Read-modify-write of the configuration under the cross-process lock: `edit` sees the current
    /// configuration; when it returns `Ok`, the result is checked ([`Config::validate`], and no
    /// subsystem may be left without its provider unless it already was) and written
    /// atomically. A version 1 file is first copied aside to `vds.toml.v1` (once). `Busy { name:
    /// "vds.toml" }` if another process holds the lock for longer than [`CONFIG_LOCK_DEADLINE`].
    pub fn update_config<R>(
        &self,
        edit: impl FnOnce(&mut Config) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _lock = self.lock_config()?;
        let mut config = Arc::unwrap_or_clone(self.config()?);
        let orphans_before: Vec<(String, String)> = config
            .orphans()
            .map(|s| (s.provider.clone(), s.name.clone()))
            .collect();
        let out = edit(&mut config)?;
        config.validate()?;
        // A hand edit may have left a subsystem without its provider (it is reported where used);
        // a change may not make a new one.
        if let Some(s) = config.orphans().find(|s| {
            !orphans_before
                .iter()
                .any(|(p, n)| *p == s.provider && *n == s.name)
        }) {
            return Err(StoreError::NotFound {
                what: "provider",
                name: s.provider.clone(),
            });
        }
        let path = self.config_path();
        if config.read_version == 1 {
            let aside = self.root.join("vds.toml.v1");
            if std::fs::symlink_metadata(&aside).is_err() {
                let original = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
                fsutil::atomic_write(&aside, &original, file_mode(&path).unwrap_or(0o644))?;
            }
        }
        let mode = file_mode(&path).unwrap_or(0o644);
        fsutil::atomic_write(&path, config::render(&config)?.as_bytes(), mode)?;
        // Still under the lock, so no other process is writing a secret it has not named yet.
        self.sweep(&config)?;
        Ok(out)
    }

    /// Removes what an interrupted change left behind (a process killed mid-way): temporary files
    /// in `secrets/` (which hold secret bytes), temporary copies of `vds.toml`, and the secret files
    /// vds named (`*.chap`, `*.mutual`) that `config` no longer names. Other files an administrator
    /// put in `secrets/` are left alone. Runs under the configuration lock, after every change.
    fn sweep(&self, config: &Config) -> Result<(), StoreError> {
        let named = |n: &str| {
            config.subsystems.iter().any(|s| {
                s.chap_secret.as_deref() == Some(n) || s.mutual_secret.as_deref() == Some(n)
            })
        };
        let remove = |path: PathBuf| match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        };
        for (dir, leftover) in [
            (self.secrets_dir(), ".new-"),
            (self.root.clone(), ".vds.toml.tmp-"),
        ] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let ours = name.ends_with(".chap") || name.ends_with(".mutual");
                if name.starts_with(leftover) || (dir == self.secrets_dir() && ours && !named(name))
                {
                    remove(entry.path())?;
                }
            }
        }
        Ok(())
    }

    /// The cross-process lock of configuration changes (`vds.toml.lock`).
    fn lock_config(&self) -> Result<File, StoreError> {
        let lock_path = self.root.join("vds.toml.lock");
        fsutil::lock_with_deadline(&lock_path, "vds.toml", CONFIG_LOCK_DEADLINE)
    }

    /// Unregisters subsystem `name` of `provider` and drops it from the cache, returning its
    /// configuration. `NotFound` if there is none. The cache rows go first, in their own
    /// transaction, and the configuration is written only if that worked; a corrupt cache does not
    /// block the removal (it will be rebuilt without the subsystem). Callers hold the subsystem's
    /// lock ([`lock_subsystem`](Self::lock_subsystem)).
    pub fn remove_subsystem(
        &self,
        provider: &str,
        name: &str,
    ) -> Result<SubsystemConfig, StoreError> {
        self.update_config(|config| {
            let at = config.position(provider, name)?;
            match self.remove_cached(provider, name) {
                Ok(_) | Err(StoreError::CacheCorrupt { .. }) => {}
                Err(e) => return Err(e),
            }
            Ok(config.subsystems.remove(at))
        })
    }

    /// Takes back a registration whose rows were never saved (an add whose first save failed):
    /// the configuration alone changes, so a cache that cannot be written does not stop it. Its
    /// secrets, no longer named, go with the configuration's sweep.
    pub fn remove_registration(&self, provider: &str, name: &str) -> Result<(), StoreError> {
        self.update_config(|config| {
            config
                .subsystems
                .retain(|s| !(s.provider == provider && s.name == name));
            Ok(())
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

    /// Stores `secret` under a new name (`<stem>.<suffix>`, or `<stem>-2.<suffix>`, … when that is
    /// taken by a file or by a name `config` uses), without ever replacing a file, and returns the
    /// name. `stem` may be any text (a subsystem name): characters a secret name does not allow
    /// become `_`. Call it inside [`update_config`](Self::update_config) with the configuration it
    /// gives, and name the secret in that configuration: a secret vds made that the configuration
    /// does not name is removed by the next change.
    pub fn create_secret(
        &self,
        config: &Config,
        stem: &str,
        suffix: &str,
        secret: &[u8],
    ) -> Result<String, StoreError> {
        let used = |name: &str| {
            config.subsystems.iter().any(|s| {
                s.chap_secret.as_deref() == Some(name) || s.mutual_secret.as_deref() == Some(name)
            })
        };
        secrets::create(&self.secrets_dir(), stem, suffix, secret, &used)
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

    /// Provider `provider`'s recorded health and the subsystems `selection` names, each with when it
    /// was last saved, read in one transaction (so both come from the same save). A provider that
    /// never saved has no subsystems and the cache's default health (`Good`, or `Corrupt` after the
    /// cache was rebuilt). A missing cache file is created empty. `CacheCorrupt` when the file is
    /// damaged, truncated, foreign, of an unknown schema version, or the rows read break an
    /// invariant or a checksum; `Busy` while [`rebuild_cache`](Self::rebuild_cache) runs elsewhere.
    pub fn load(
        &self,
        provider: &str,
        selection: Selection<'_>,
    ) -> Result<ProviderCache, StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::load(conn, files, provider, selection)
        })
    }

    /// Every provider that saved anything, with its health and all its subsystems, in one read
    /// transaction; and the health of every other provider.
    pub fn load_everything(
        &self,
    ) -> Result<(Vec<(String, ProviderCache)>, CacheHealth), StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            let all = cache::load_everything(conn, files)?;
            let default = cache::load_default_health(conn, files)?;
            Ok((all, default))
        })
    }

    /// Provider `provider`'s recorded health (as [`load`](Self::load) gives it) and the keys of its
    /// cached subsystems, in enumeration order, read in one transaction: what a caller pages
    /// through with [`Selection::Keys`].
    pub fn subsystem_keys(&self, provider: &str) -> Result<(CacheHealth, Vec<String>), StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::subsystem_keys(conn, files, provider)
        })
    }

    /// The [`Stamp`]s of provider `provider`'s subsystems among `keys` (by key; a key not cached
    /// has none), read in one transaction and without the pictures: what tells a refresh which
    /// pictures it must read to compare (see [`Stamp::holds`]).
    pub fn stamps(
        &self,
        provider: &str,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, Stamp>, StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::stamps(conn, files, provider, keys)
        })
    }

    /// [`stamps`](Self::stamps) of one subsystem, read only if the store's connection is free
    /// now: `None` when another thread of this process is using it (a save of a batch, say),
    /// rather than waiting for it. For a caller on an asynchronous runtime's thread that can do
    /// without the stamp (it then saves the whole picture), and must not hold up the other tasks
    /// of that thread meanwhile.
    pub fn stamp_now(
        &self,
        provider: &str,
        key: &str,
    ) -> Option<Result<Option<Stamp>, StoreError>> {
        let mut slot = match self.cache.try_lock() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let keys = [key.to_string()];
        Some(
            slot.with(&self.cache_files, Access::Read, |conn, files| {
                cache::stamps(conn, files, provider, &keys)
            })
            .map(|mut stamps| stamps.remove(key)),
        )
    }

    /// The providers whose cache holds a subsystem with key `key`, in the order they first saved.
    pub fn providers_with(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::providers_with(conn, files, key)
        })
    }

    /// Saves `subsystems` of `provider` (by key; a new key is appended at the end of the order, an
    /// existing one keeps its place) and records `health`, in one transaction; its other subsystems
    /// are untouched. `InvalidSnapshot` (nothing written) when the snapshots break an invariant of
    /// the model (the same checks as `HwProvider::from_cache`). Each saved subsystem's time becomes
    /// now; an unchanged one rewrites only its time.
    pub fn save(
        &self,
        provider: &str,
        subsystems: &[SubSystemSnapshot],
        health: CacheHealth,
    ) -> Result<(), StoreError> {
        self.save_batch(provider, subsystems, &[], health)
    }

    /// [`save`](Self::save) of `subsystems`, and of `renewals` (subsystems whose fresh picture is
    /// the one cached, [`Stamp::renew`]: their time moves, unless another process saved them
    /// since), in one transaction.
    pub fn save_batch(
        &self,
        provider: &str,
        subsystems: &[SubSystemSnapshot],
        renewals: &[Renewal],
        health: CacheHealth,
    ) -> Result<(), StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::save_some(conn, files, provider, subsystems, renewals, None, health)
        })
    }

    /// The save of a reenumeration of `provider`: `subsystems` are saved as by
    /// [`save`](Self::save) and, in the same transaction, every cached subsystem of the provider
    /// whose key is neither among them nor registered with the provider in the configuration as it
    /// is *now* is dropped. The configuration lock is held from reading the configuration to the
    /// commit, so a subsystem registered meanwhile by another process (which writes the
    /// configuration before its cache rows) is never dropped. `Busy { name: "vds.toml" }` as
    /// [`update_config`](Self::update_config); other errors as [`save`](Self::save).
    pub fn save_enumeration(
        &self,
        provider: &str,
        subsystems: &[SubSystemSnapshot],
        health: CacheHealth,
    ) -> Result<(), StoreError> {
        let _lock = self.lock_config()?;
        let config = self.config()?;
        let keep: std::collections::HashSet<&str> = config
            .subsystems_of(provider)
            .map(|s| s.name.as_str())
            .collect();
        self.with_cache(Access::Write, |conn, files| {
            cache::save_some(conn, files, provider, subsystems, &[], Some(&keep), health)
        })
    }

    /// Records `health` for `provider` without changing any subsystem.
    pub fn set_health(&self, provider: &str, health: CacheHealth) -> Result<(), StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::store_health(conn, files, provider, health)
        })
    }

    /// Drops `provider`'s cached subsystem `key`; whether there was one.
    pub fn remove_cached(&self, provider: &str, key: &str) -> Result<bool, StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::remove(conn, files, provider, key)
        })
    }

    /// Drops everything cached for `provider`.
    pub fn remove_cached_provider(&self, provider: &str) -> Result<(), StoreError> {
        self.with_cache(Access::Write, |conn, files| {
            cache::remove_provider(conn, files, provider)
        })
    }

    /// For reenumerate on a corrupt cache: moves the cache file (and its `-wal` and `-shm`) aside
    /// to `cache.sqlite.corrupt-<UTC timestamp>` (plus `-N` if that exists) for inspection, and
    /// creates a fresh empty cache in which every provider is `Corrupt` until it saves again.
    /// Returns where the old file went, or `None` when there was none. The configuration and the
    /// secrets are not touched. `Busy` when another store (in this or another process) has the
    /// cache open.
    pub fn rebuild_cache(&self) -> Result<Option<PathBuf>, StoreError> {
        let mut slot = self.slot();
        cache::rebuild(&self.cache_files, &mut slot)
    }

    /// Checks the whole cache file: SQLite's `PRAGMA quick_check` (or `integrity_check` when
    /// `thorough`), foreign keys, then a full load with every checksum. Reads every page, so it is
    /// not done on the hot path (see docs/PERFORMANCE.md); for diagnostics.
    pub fn verify_cache(&self, thorough: bool) -> Result<(), StoreError> {
        self.with_cache(Access::Read, |conn, files| {
            cache::verify(conn, files, thorough)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Locks

    /// The cross-process locks of an operation on subsystem `key` of `provider` (see [`lock`]):
    /// taken at once or `Busy` at once, never waited for; released when the guard drops, and by
    /// the kernel when the process dies (even by SIGKILL).
    pub fn lock_subsystem(&self, provider: &str, key: &str) -> Result<StoreLock, StoreError> {
        lock::lock_subsystem(&self.root.join("locks"), provider, key)
    }

    /// The cross-process lock of a provider-wide operation (reenumerate, removal of the provider),
    /// as [`lock_subsystem`](Self::lock_subsystem).
    pub fn lock_provider(&self, provider: &str) -> Result<StoreLock, StoreError> {
        lock::lock_provider(&self.root.join("locks"), provider)
    }

    // -----------------------------------------------------------------------------------------
    // Provider state

    /// The state file of provider `provider`: what its kind keeps between processes (the
    /// simulator keeps its array there). The store does not interpret it.
    pub fn state_file(&self, provider: &str) -> StateFile {
        let dir = self.root.join("state");
        let name = format!("{:016x}", fnv1a64(provider.as_bytes()));
        StateFile {
            path: dir.join(format!("{name}.state")),
            lock: dir.join(format!("{name}.lock")),
            dir,
        }
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A provider's state file (see [`Store::state_file`]): read whole, written atomically, and changed
/// under a lock that a read-modify-write holds.
#[derive(Clone, Debug)]
pub struct StateFile {
    dir: PathBuf,
    path: PathBuf,
    lock: PathBuf,
}

impl StateFile {
    /// Its bytes, or `None` when there is no file yet. At most [`MAX_STATE_LEN`] bytes are read; a
    /// longer file is an error naming it.
    pub fn read(&self) -> Result<Option<Vec<u8>>, StoreError> {
        use std::io::Read;
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&self.path, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(&self.path, e))?;
        if bytes.len() as u64 > MAX_STATE_LEN {
            return Err(StoreError::io(
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("longer than {MAX_STATE_LEN} bytes"),
                ),
            ));
        }
        Ok(Some(bytes))
    }

    /// Replaces it with `bytes`, atomically (mode 0600).
    pub fn write(&self, bytes: &[u8]) -> Result<(), StoreError> {
        fsutil::create_dir(&self.dir, 0o700)?;
        fsutil::atomic_write(&self.path, bytes, 0o600)
    }

    /// The lock of a read-modify-write, waited for at most [`CONFIG_LOCK_DEADLINE`] (the sections
    /// it guards are short); released when the file drops.
    pub fn lock(&self) -> Result<File, StoreError> {
        fsutil::create_dir(&self.dir, 0o700)?;
        fsutil::lock_with_deadline(&self.lock, "provider state", CONFIG_LOCK_DEADLINE)
    }

    /// Removes it (a provider that is removed); nothing when there is none.
    pub fn remove(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&self.path, e)),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn file_mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
}

/// Refuses a store someone else could change, as OpenSSH's `StrictModes` refuses a home directory:
/// the store directory and its `secrets/` must belong to the user running vds or to root (root may
/// work in any store) and must not be writable by their group or by others. Anyone who can write
/// the store can point a subsystem at a listener of theirs and capture the CHAP response, or read
/// the secrets; the error says the `chmod`/`chown` that fixes it.
pub fn check_modes(root: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let me = fsutil::effective_uid();
    for dir in [root.to_path_buf(), root.join("secrets")] {
        let m = match std::fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let shown = dir.display();
        if m.mode() & 0o022 != 0 {
            return Err(StoreError::UnsafeStore {
                path: dir.clone(),
                problem: format!(
                    "mode {:04o}: its group or others can write it, and so change which arrays are \
                     contacted or read the secrets",
                    m.mode() & 0o7777
                ),
                fix: format!("chmod go-w {shown}"),
            });
        }
        let owner = m.uid();
        if me.is_some_and(|me| me != 0 && owner != me && owner != 0) {
            return Err(StoreError::UnsafeStore {
                path: dir.clone(),
                problem: format!(
                    "it belongs to user {owner}, not to you (user {}) or root",
                    me.unwrap_or(0)
                ),
                fix: format!(
                    "use a store of your own (--store), or have its owner or root run `chown -R {} {shown}`",
                    me.unwrap_or(0)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_parsed_once_until_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        std::fs::write(
            dir.path().join("vds.toml"),
            "version = 2\n[[provider]]\nname = \"p\"\nkind = \"sendtargets\"\n\
             [[subsystem]]\nname = \"a\"\nprovider = \"p\"\nportals = [\"127.0.0.1\"]\n",
        )
        .expect("write");
        let first = store.config().expect("config");
        assert!(Arc::ptr_eq(&first, &store.config().expect("config")));
        store.forget_config();
        let again = store.config().expect("config");
        assert!(!Arc::ptr_eq(&first, &again), "parsed again");
        assert_eq!(first, again);
    }

    #[test]
    fn a_stamp_now_is_read_only_while_the_connection_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let saved = vds_model::sim::demo_array_1();
        store
            .save("lab", std::slice::from_ref(&saved), CacheHealth::Good)
            .expect("save");
        let stamp = match store.stamp_now("lab", &saved.key) {
            Some(Ok(Some(stamp))) => stamp,
            other => panic!("{other:?}"),
        };
        assert!(stamp.holds(&saved));
        assert!(matches!(
            store.stamp_now("lab", "not-cached"),
            Some(Ok(None))
        ));
        // Another thread using the connection (here: this one, holding it): no wait, no stamp.
        let held = store.slot();
        assert!(store.stamp_now("lab", &saved.key).is_none());
        drop(held);
        assert!(matches!(
            store.stamp_now("lab", &saved.key),
            Some(Ok(Some(_)))
        ));
    }
}
