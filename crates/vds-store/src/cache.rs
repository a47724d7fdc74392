//! The cache: what the providers last learned, in SQLite (WAL mode) at `<root>/cache.sqlite`.
//!
//! This module owns the schema, the mapping between [`SubSystemSnapshot`]s and rows, and every
//! check that keeps a damaged cache from being believed. It does not decide *when* to save or
//! rebuild; `vdsadm` does, following the model's rule (corrupt until `reenumerate` and then
//! `refresh`).
//!
//! # Schema (version [`CACHE_SCHEMA_VERSION`])
//!
//! `meta(key, value)` holds `schema_version` and `default_health` (the health of a provider the
//! cache has no row for: `good` in a new cache, `corrupt` in one rebuilt after damage, whose
//! providers lost what they had); `PRAGMA application_id` is [`APPLICATION_ID`] and `PRAGMA
//! user_version` the schema version. `providers(id, name, health)` has one row per provider that
//! saved anything, with its cache health. `subsystems` has one row per subsystem (its `id` is also
//! its enumeration order within its provider; a key is unique per provider) with every property,
//! `refreshed_at` (Unix milliseconds) and a `checksum`. Children hang off it by `(subsystem, position)`: `portals`
//! (address type, host text, port, flow, scope, status), `targets`, `portal_groups` and
//! `group_portals`, whose members reference `portals` (so a group can only hold a portal of its own
//! subsystem), and `target_initiators` (the initiators logged in to a target, by name). Foreign keys
//! are on, with `ON DELETE CASCADE`.
//!
//! # Version 1
//!
//! Version 1 (vds 0.1) had one provider, no `providers` table, and the health in `meta`. The
//! first process that opens such a cache and may write keeps a copy aside as `cache.sqlite.v1`
//! and upgrades the file in place, in one transaction, under the exclusive cache lock: its
//! subsystems become the subsystems of provider `vds-sendtargets` (the provider of version 1),
//! rows and checksums unchanged. A process that cannot write says the store needs it.
//!
//! # Version 2
//!
//! Version 2 had no `target_initiators`. A process that may write upgrades it in place the same
//! way (under the exclusive lock, one transaction): it adds the empty table and sets the version.
//! Every row and checksum stays valid (a checksum covers connected initiators only when a target
//! has some), so nothing is kept aside.
//!
//! # Corruption
//!
//! Before SQLite opens the file, its 100-byte header is read: the magic string and, when no
//! write-ahead log is pending, the page count against the file length (a truncated file). After
//! opening: `application_id`, `user_version`, the set of tables and `meta.schema_version`. While
//! loading: SQLite's own `SQLITE_CORRUPT`/`SQLITE_NOTADB`, values of the wrong type or range, gaps in
//! positions, and a per-subsystem checksum (64-bit, FNV-style, over the
//! snapshot), which catches bytes changed inside a record that SQLite has no way to notice. All of
//! these are [`StoreError::CacheCorrupt`] with a reason. A load reads only the rows of the
//! subsystems asked for, so child rows of subsystems that do not exist, and every page, are checked
//! only on demand ([`crate::Store::verify_cache`]: `PRAGMA quick_check` and the foreign keys); see
//! docs/PERFORMANCE.md for its cost.
//!
//! # Atomicity and concurrency
//!
//! Every change is one `BEGIN IMMEDIATE` transaction with `synchronous = FULL`: a process killed at
//! any moment leaves the previous content or the new one. Writers from several processes queue on
//! SQLite's lock for at most [`BUSY_TIMEOUT`], then fail with `Busy`. A store that uses the cache holds
//! a shared `flock` on `<root>/cache.lock`; [`crate::Store::rebuild_cache`] needs it exclusively, so it
//! never moves the file from under another process (that process gets `Busy` instead).
//!
//! # Readers and writers
//!
//! Loads open the cache read-only and never checkpoint: closing such a connection leaves the
//! `-wal` (empty) and `-shm` files in place, so the next query process opens them instead of
//! creating them and deleting them again (see docs/PERFORMANCE.md). A call that changes the cache
//! (re)opens it read-write, and closing a read-write connection keeps SQLite's default: the last
//! one copies the log into the main file and removes it. A load that finds a non-empty log (left
//! by a writer that died, or by one that closed while a reader still had the file open) opens the
//! cache read-write too, so that its close folds the log in. Either way the header checks, which
//! can only judge the main file when no log is pending, apply again after the next close.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use vds_model::{
    CacheHealth, Health, IpAddressType, IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot,
    SubSystemFlags, SubSystemSnapshot, SubSystemStatus, TargetSnapshot, VdsIpAddress,
};

use crate::{StoreError, fsutil};

/// `PRAGMA application_id` of a vds cache: `"VDSC"`.
pub const APPLICATION_ID: i32 = 0x5644_5343;

/// The schema version (`PRAGMA user_version` and `meta.schema_version`) this crate reads and writes.
pub const CACHE_SCHEMA_VERSION: i32 = 3;

/// How long a writer waits for another process's cache transaction before answering `Busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE providers (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    health TEXT NOT NULL
);
CREATE TABLE subsystems (
    id                INTEGER PRIMARY KEY,
    provider          INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    key               TEXT NOT NULL,
    friendly_name     TEXT NOT NULL,
    identification    TEXT NOT NULL,
    flags             INTEGER NOT NULL,
    stripe_size_flags INTEGER NOT NULL,
    status            INTEGER NOT NULL,
    health            INTEGER NOT NULL,
    detail            TEXT,
    refreshed_at      INTEGER NOT NULL,
    checksum          INTEGER NOT NULL,
    UNIQUE (provider, key)
);
CREATE TABLE portals (
    subsystem    INTEGER NOT NULL REFERENCES subsystems(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    address_type INTEGER NOT NULL,
    host         TEXT NOT NULL,
    port         INTEGER NOT NULL,
    flow         INTEGER NOT NULL,
    scope        INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    PRIMARY KEY (subsystem, position)
) WITHOUT ROWID;
CREATE TABLE targets (
    subsystem     INTEGER NOT NULL REFERENCES subsystems(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    iscsi_name    TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    chap_enabled  INTEGER NOT NULL,
    lun_count     INTEGER NOT NULL,
    PRIMARY KEY (subsystem, position),
    UNIQUE (subsystem, iscsi_name)
) WITHOUT ROWID;
CREATE TABLE portal_groups (
    subsystem INTEGER NOT NULL,
    target    INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    tag       INTEGER NOT NULL,
    PRIMARY KEY (subsystem, target, position),
    UNIQUE (subsystem, target, tag),
    FOREIGN KEY (subsystem, target) REFERENCES targets(subsystem, position) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE group_portals (
    subsystem INTEGER NOT NULL,
    target    INTEGER NOT NULL,
    grp       INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    portal    INTEGER NOT NULL,
    PRIMARY KEY (subsystem, target, grp, position),
    FOREIGN KEY (subsystem, target, grp)
        REFERENCES portal_groups(subsystem, target, position) ON DELETE CASCADE,
    FOREIGN KEY (subsystem, portal) REFERENCES portals(subsystem, position) ON DELETE CASCADE
) WITHOUT ROWID;
-- Deleting a portal looks up the group members that name it.
CREATE INDEX group_portals_by_portal ON group_portals (subsystem, portal);
CREATE TABLE target_initiators (
    subsystem INTEGER NOT NULL,
    target    INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    PRIMARY KEY (subsystem, target, position),
    FOREIGN KEY (subsystem, target) REFERENCES targets(subsystem, position) ON DELETE CASCADE
) WITHOUT ROWID;
";

const TABLES: [&str; 8] = [
    "group_portals",
    "meta",
    "portal_groups",
    "portals",
    "providers",
    "subsystems",
    "target_initiators",
    "targets",
];

/// Which of a provider's subsystems to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection<'a> {
    /// All of them, in enumeration order.
    All,
    /// The one with this key (none when it is not cached).
    One(&'a str),
    /// Those with these keys that are cached: a page of a provider's subsystems (see
    /// [`crate::Store::subsystem_keys`]), for work that goes through a large provider a part at a
    /// time. In enumeration order when the keys are given in it (each run of
    /// [`MAX_KEYS_PER_LOAD`] keys is read in that order).
    Keys(&'a [String]),
}

/// How many keys of a [`Selection::Keys`] one statement reads (SQLite bounds its parameters).
pub const MAX_KEYS_PER_LOAD: usize = 1024;

/// What the cache recorded with a subsystem's last save: when, and the checksum of its picture
/// then. Enough to tell whether a picture is the one saved without reading it
/// ([`Stamp::holds`]); says nothing about whether the rows still hold it (only a load checks that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    refreshed_ms: i64,
    checksum: i64,
}

impl Stamp {
    /// True when `snapshot` is the picture this stamp was recorded for (the checksum of
    /// `snapshot` at the recorded time is the recorded one): what [`crate::Store::save`] then
    /// records is the time alone.
    pub fn holds(&self, snapshot: &SubSystemSnapshot) -> bool {
        checksum(snapshot, self.refreshed_ms) == self.checksum
    }

    /// When this stamp [`holds`](Self::holds) `snapshot`, what saving it now records: its time and
    /// checksum move, its rows stay ([`crate::Store::save_batch`]). Both checksums are taken in
    /// one pass over the picture, which is then no longer needed.
    pub fn renew(&self, snapshot: &SubSystemSnapshot) -> Option<Renewal> {
        let now = now_ms();
        let (then, renewed) = checksums(snapshot, self.refreshed_ms, now);
        (then == self.checksum).then(|| Renewal {
            key: snapshot.key.clone(),
            was: *self,
            now: Stamp {
                refreshed_ms: now,
                checksum: renewed,
            },
        })
    }
}

/// A subsystem whose fresh picture is the one its cache holds ([`Stamp::renew`]): saving it
/// records the new time (and the checksum at that time), and nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewal {
    key: String,
    was: Stamp,
    now: Stamp,
}

impl Renewal {
    /// The subsystem's key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// One provider's cache as loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderCache {
    /// The health recorded with the provider's last save (feed it to `HwProvider::from_cache`).
    pub health: CacheHealth,
    /// The subsystems selected, in enumeration order, each with when it was last saved.
    pub subsystems: Vec<(SubSystemSnapshot, SystemTime)>,
}

impl ProviderCache {
    /// The snapshots alone.
    pub fn snapshots(&self) -> Vec<SubSystemSnapshot> {
        self.subsystems.iter().map(|(s, _)| s.clone()).collect()
    }
}

/// The cache connection of a store and the shared lock that goes with it; opened on first use.
#[derive(Default)]
pub(crate) struct Slot {
    conn: Option<Connection>,
    /// Whether `conn` was opened read-write.
    writable: bool,
    shared: Option<File>,
}

/// The cache's paths.
pub(crate) struct Files {
    pub(crate) db: PathBuf,
    pub(crate) lock: PathBuf,
}

impl Files {
    pub(crate) fn new(root: &Path) -> Files {
        Files {
            db: root.join("cache.sqlite"),
            lock: root.join("cache.lock"),
        }
    }

    fn shm(&self) -> PathBuf {
        PathBuf::from(format!("{}-shm", self.db.display()))
    }

    fn wal(&self) -> PathBuf {
        PathBuf::from(format!("{}-wal", self.db.display()))
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::CacheCorrupt {
            path: self.db.clone(),
            reason: reason.into(),
        }
    }

    /// Maps an SQLite error: corruption, type and range errors → `CacheCorrupt`; contention → `Busy`.
    fn db_err(&self, e: rusqlite::Error) -> StoreError {
        use rusqlite::Error as E;
        match &e {
            E::SqliteFailure(f, _) => match f.code {
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    self.corrupt(format!("SQLite: {e}"))
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy {
                    name: "cache".into(),
                },
                _ => StoreError::Sqlite {
                    path: self.db.clone(),
                    source: e,
                },
            },
            E::InvalidColumnType(..)
            | E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..)
            | E::InvalidColumnIndex(..)
            | E::InvalidColumnName(..) => self.corrupt(format!("unexpected value: {e}")),
            _ => StoreError::Sqlite {
                path: self.db.clone(),
                source: e,
            },
        }
    }
}

/// The health as stored (lower case, as version 1 stored it).
fn health_label(h: CacheHealth) -> String {
    h.label().to_ascii_lowercase()
}

fn health_from_label(s: &str) -> Option<CacheHealth> {
    CacheHealth::from_label(s).filter(|_| s.bytes().all(|b| !b.is_ascii_uppercase()))
}

// ---------------------------------------------------------------------------------------------
// Opening, creating, keeping aside

/// The checks made on the raw header before SQLite sees the file. Returns whether a non-empty
/// write-ahead log is next to it (changes not yet copied into the main file).
fn check_header(files: &Files) -> Result<bool, StoreError> {
    let mut f = match File::open(&files.db) {
        Ok(f) => f,
        Err(e) => return Err(StoreError::io(&files.db, e)),
    };
    let len = f
        .metadata()
        .map_err(|e| StoreError::io(&files.db, e))?
        .len();
    let mut header = [0u8; 100];
    let mut got = 0;
    while got < header.len() {
        match f.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io(&files.db, e)),
        }
    }
    if got < header.len() {
        return Err(files.corrupt(format!(
            "the file is {len} bytes long, shorter than an SQLite header"
        )));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(files.corrupt("not an SQLite database (bad magic string)"));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    // The in-header page count is valid only when the change counter matches "version-valid-for".
    let count_valid = be32(24) == be32(92) && pages != 0;
    // With a pending write-ahead log, the main file may legitimately lag behind; SQLite checks.
    let wal = PathBuf::from(format!("{}-wal", files.db.display()));
    let wal_pending = fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false);
    if count_valid && !wal_pending && pages * page_size > len {
        return Err(files.corrupt(format!(
            "truncated: the header says {pages} pages of {page_size} bytes, the file has {len} bytes"
        )));
    }
    Ok(wal_pending)
}

/// What a call does with the cache: reads only, or changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Loads and health reads.
    Read,
    /// Saves, removals, health writes, checks.
    Write,
}

fn configure(conn: &Connection, access: Access) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Foreign keys on without preparing a statement (the bundled SQLite defaults to on as well).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, true)?;
    match access {
        // A reader leaves the -wal and -shm files in place when it closes (it cannot checkpoint
        // anyway: it is read-only), so the next query process does not create and delete them.
        Access::Read => conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map(|_| ()),
        // A writer keeps SQLite's default: the last connection to close copies the log into the
        // main file and removes it, so the header checks see the whole file again.
        Access::Write => conn.execute_batch("PRAGMA synchronous = FULL;"),
    }
}

/// The opening checks in one statement (one parse): application id, schema version, the set of
/// tables (space-separated, sorted) and `meta.schema_version`.
const IDENTITY: &str = "SELECT a.application_id, v.user_version,
        (SELECT group_concat(name, ' ' ORDER BY name) FROM sqlite_schema
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%'),
        (SELECT value FROM meta WHERE key = 'schema_version')
    FROM pragma_application_id() AS a, pragma_user_version() AS v";

/// [`IDENTITY`] without `meta`, for a database where that statement does not compile (no `meta`
/// table), so that the reason names what is wrong.
const IDENTITY_NO_META: &str = "SELECT a.application_id, v.user_version,
        (SELECT group_concat(name, ' ' ORDER BY name) FROM sqlite_schema
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%'),
        NULL
    FROM pragma_application_id() AS a, pragma_user_version() AS v";

/// Checks that the open database is a vds cache of this schema version.
fn check_identity(files: &Files, conn: &Connection) -> Result<(), StoreError> {
    type Identity = (i32, i32, Option<String>, Option<String>);
    let read = |sql: &str| -> rusqlite::Result<Identity> {
        conn.query_row(sql, [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
    };
    let (app, version, tables, meta_version) = match read(IDENTITY) {
        Ok(x) => x,
        // "no such table: meta" (a plain SQLITE_ERROR while compiling): say what is there instead.
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::Unknown => {
            read(IDENTITY_NO_META).map_err(|e| files.db_err(e))?
        }
        Err(e) => return Err(files.db_err(e)),
    };
    if app != APPLICATION_ID {
        return Err(files.corrupt(format!(
            "not a vds cache: application_id is {app:#010x}, expected {APPLICATION_ID:#010x} \
             (another application's database?)"
        )));
    }
    if (version == 1 && tables.as_deref() == Some(V1_TABLES))
        || (version == 2 && tables.as_deref() == Some(V2_TABLES))
    {
        return Err(StoreError::CacheOutdated {
            path: files.db.clone(),
            version,
        });
    }
    if version != CACHE_SCHEMA_VERSION {
        return Err(files.corrupt(format!(
            "schema version {version}; this vds reads version {CACHE_SCHEMA_VERSION}"
        )));
    }
    let tables: Vec<&str> = tables.as_deref().unwrap_or("").split_whitespace().collect();
    if tables != TABLES {
        return Err(files.corrupt(format!("unexpected tables {tables:?}")));
    }
    if meta_version.as_deref() != Some(&CACHE_SCHEMA_VERSION.to_string()) {
        return Err(files.corrupt(format!(
            "meta.schema_version is {meta_version:?}, expected \"{CACHE_SCHEMA_VERSION}\""
        )));
    }
    Ok(())
}

/// The tables of a version 1 cache, as the identity query lists them.
const V1_TABLES: &str = "group_portals meta portal_groups portals subsystems targets";

/// The tables of a version 2 cache (no `target_initiators`), as the identity query lists them.
const V2_TABLES: &str = "group_portals meta portal_groups portals providers subsystems targets";

/// Creates an empty cache whose providers have `default_health` at `files.db`, unless a file is
/// already there (then nothing happens). The new file is built under a temporary name and linked into place, so a
/// process never sees a half-initialized cache and two creators cannot overwrite each other.
fn create(files: &Files, default_health: CacheHealth) -> Result<(), StoreError> {
    let dir = files.db.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".cache.sqlite.new-{}", fsutil::unique_suffix()));
    let result = (|| {
        // Create it 0600 first: SQLite gives its -wal and -shm files the same mode.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?;
        let conn = Connection::open_with_flags(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| files.db_err(e))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {CACHE_SCHEMA_VERSION};
             BEGIN;
             {SCHEMA}
             INSERT INTO meta (key, value) VALUES ('schema_version', '{CACHE_SCHEMA_VERSION}');
             INSERT INTO meta (key, value) VALUES ('default_health', '{}');
             COMMIT;",
            health_label(default_health)
        ))
        .map_err(|e| files.db_err(e))?;
        // Closing the only connection checkpoints the log into the file and removes it.
        conn.close().map_err(|(_, e)| files.db_err(e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(&tmp, e))?;
        fsutil::adopt(&tmp)?;
        match fs::hard_link(&tmp, &files.db) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::io(&files.db, e)),
        }
    })();
    let _ = fs::remove_file(&tmp);
    let _ = fs::remove_file(format!("{}-wal", tmp.display()));
    let _ = fs::remove_file(format!("{}-shm", tmp.display()));
    result?;
    fsutil::sync_dir(dir)
}

/// `file:` URI of `db` with the query `query`, or `None` when the path cannot be written as one
/// (not UTF-8, or starting with `//`, which would read as an authority).
fn uri_with(db: &Path, query: &str) -> Option<String> {
    let path = db.to_str().filter(|p| !p.starts_with("//"))?;
    let mut uri = String::with_capacity(path.len() + 24);
    uri.push_str("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3F"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push('?');
    uri.push_str(query);
    Some(uri)
}

/// `db` opened with `readonly_shm=1` (see [`open_checked`]).
fn readonly_shm_uri(db: &Path) -> Option<String> {
    uri_with(db, "readonly_shm=1")
}

/// `db` opened with `immutable=1`: no locks, no log (a store nobody may write).
fn immutable_uri(db: &Path) -> Option<String> {
    uri_with(db, "immutable=1")
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else {
        "device"
    }
}

/// Before a writer opens the cache: SQLite gives a new `-wal`/`-shm` the mode of the database file
/// as it is then, so a query run while the file was read-only (0400) leaves a read-only `-shm`
/// behind, and every later write fails with SQLite's "attempt to write a readonly database". A
/// writer that owns them gives them the database's mode again.
fn align_log_modes(files: &Files) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(db) = fs::metadata(&files.db) else {
        return Ok(());
    };
    let want = db.mode() & 0o7777;
    for side in [files.wal(), files.shm()] {
        let Ok(m) = fs::metadata(&side) else { continue };
        let mode = m.mode() & 0o7777;
        if mode != want && Some(m.uid()) == fsutil::effective_uid() {
            fs::set_permissions(&side, fs::Permissions::from_mode(want))
                .map_err(|e| StoreError::io(&side, e))?;
        }
    }
    Ok(())
}

/// Opens the cache for `access` and makes the opening checks. With `uri` (reads only), the
/// connection also maps the `-shm` file read-only: when no writer has the cache open, SQLite
/// then reads the (empty) log and the main file without resetting the shared-memory index, so
/// a query writes nothing at all.
fn open_checked(
    files: &Files,
    access: Access,
    uri: Option<&str>,
) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX
        | match access {
            Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE,
        };
    let conn = match uri {
        Some(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI),
        None => Connection::open_with_flags(&files.db, flags),
    }
    .map_err(|e| files.db_err(e))?;
    configure(&conn, access).map_err(|e| files.db_err(e))?;
    check_identity(files, &conn)?;
    Ok(conn)
}

impl Slot {
    /// The open connection, opening (and creating) the cache first if needed. Reads get a read-only
    /// connection, unless a log is pending (then the connection is read-write, so that closing it
    /// copies the log into the main file); a write on a read-only connection reopens it read-write.
    fn conn(&mut self, files: &Files, access: Access) -> Result<&mut Connection, StoreError> {
        if self.shared.is_none() {
            // A reader that may not write the store (a read-only mount, an account that may only
            // read) opens the lock read-only, or goes without when there is none.
            let f = match access {
                Access::Read => fsutil::open_lock_file_to_read(&files.lock)?,
                Access::Write => Some(fsutil::open_lock_file(&files.lock)?),
            };
            if let Some(f) = f {
                if !fsutil::try_lock_shared(&f, &files.lock)? {
                    return Err(StoreError::Busy {
                        name: "cache".into(),
                    });
                }
                self.shared = Some(f);
            }
        }
        if access == Access::Write && !self.writable {
            self.conn = None;
        }
        if self.conn.is_none() {
            match fs::symlink_metadata(&files.db) {
                Ok(m) if m.is_file() => {}
                // A directory, a link, a FIFO where the cache should be is damage like any other:
                // reenumerate keeps it aside and starts a new cache.
                Ok(m) => {
                    return Err(files.corrupt(format!(
                        "not a regular file (a {})",
                        file_kind(&m.file_type())
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    create(files, CacheHealth::Good)?
                }
                Err(e) => return Err(StoreError::io(&files.db, e)),
            }
            if access == Access::Write {
                align_log_modes(files)?;
            }
            let access = if check_header(files)? {
                Access::Write
            } else {
                access
            };
            let uri = match access {
                Access::Read if fs::symlink_metadata(files.shm()).is_ok() => {
                    readonly_shm_uri(&files.db)
                }
                _ => None,
            };
            let opened = match uri.map(|u| open_checked(files, Access::Read, Some(&u))) {
                // The -shm file went away between the look and the open (a writer closed):
                // open the plain way, which creates it again.
                Some(Err(StoreError::Sqlite { source, .. }))
                    if source.sqlite_error_code() == Some(ErrorCode::CannotOpen) =>
                {
                    open_checked(files, access, None)
                }
                Some(result) => result,
                None => match open_checked(files, access, None) {
                    // No -shm, and no right to make one: a store that may only be read. Its log
                    // is empty (no -wal either, or a writer would have made the -shm), so the
                    // main file is the whole cache; read it without locking or a log.
                    Err(StoreError::Sqlite { source, .. })
                        if access == Access::Read
                            && source.sqlite_error_code() == Some(ErrorCode::CannotOpen) =>
                    {
                        match immutable_uri(&files.db) {
                            Some(u) => open_checked(files, Access::Read, Some(&u)),
                            None => Err(StoreError::Sqlite {
                                path: files.db.clone(),
                                source,
                            }),
                        }
                    }
                    other => other,
                },
            };
            let conn = match opened {
                // Upgrade under the exclusive lock, then open as usual (a version 1 cache becomes
                // version 2 here, and version 3 on the way round again).
                Err(StoreError::CacheOutdated { version: 1, .. }) => {
                    self.shared = None;
                    migrate_v1(files)?;
                    return self.conn(files, access);
                }
                Err(StoreError::CacheOutdated { version: 2, .. }) => {
                    self.shared = None;
                    migrate_v2(files)?;
                    return self.conn(files, access);
                }
                other => other?,
            };
            if access == Access::Write {
                // Root writing in a user's store leaves the files SQLite made to that user.
                for f in [files.db.clone(), files.wal(), files.shm()] {
                    if f.exists() {
                        fsutil::adopt(&f)?;
                    }
                }
            }
            self.conn = Some(conn);
            self.writable = access == Access::Write;
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(files.corrupt("internal: no connection")),
        }
    }

    /// Closes the connection and drops the shared lock.
    pub(crate) fn close(&mut self) {
        self.conn = None;
        self.writable = false;
        self.shared = None;
    }

    /// Runs `f` on the connection. On corruption the connection is closed, so that the next call
    /// checks the file afresh.
    pub(crate) fn with<R>(
        &mut self,
        files: &Files,
        access: Access,
        f: impl FnOnce(&mut Connection, &Files) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let result = self.conn(files, access).and_then(|c| f(c, files));
        if matches!(result, Err(StoreError::CacheCorrupt { .. })) {
            self.conn = None;
        }
        result
    }
}

/// Moves the cache (and its -wal and -shm) aside and creates an empty one with health `Rebuilt`.
pub(crate) fn rebuild(files: &Files, slot: &mut Slot) -> Result<Option<PathBuf>, StoreError> {
    slot.close();
    let lock = fsutil::open_lock_file(&files.lock)?;
    if !fsutil::try_lock(&lock, &files.lock)? {
        return Err(StoreError::Busy {
            name: "cache".into(),
        });
    }
    let dir = files.db.parent().unwrap_or(Path::new("."));
    let aside = match fs::symlink_metadata(&files.db) {
        Ok(_) => {
            let stamp = fsutil::utc_stamp(SystemTime::now());
            let base = format!("{}.corrupt-{stamp}", files.db.display());
            let mut aside = PathBuf::from(&base);
            let mut n = 1;
            while fs::symlink_metadata(&aside).is_ok() {
                aside = PathBuf::from(format!("{base}-{n}"));
                n += 1;
            }
            fs::rename(&files.db, &aside).map_err(|e| StoreError::io(&files.db, e))?;
            for suffix in ["-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", files.db.display()));
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                match fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(&from, e)),
                }
            }
            fsutil::sync_dir(dir)?;
            Some(aside)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io(&files.db, e)),
    };
    // Every provider lost what it had: until it reenumerates, it is corrupt.
    create(files, CacheHealth::Corrupt)?;
    drop(lock);
    Ok(aside)
}

/// For an upgrade from version `from`: the exclusive cache lock and a read-write connection, or
/// `None` when the cache is no longer at that version (another process upgraded it meanwhile).
fn open_for_upgrade(files: &Files, from: i32) -> Result<Option<(File, Connection)>, StoreError> {
    let lock = fsutil::open_lock_file(&files.lock)?;
    if !fsutil::try_lock(&lock, &files.lock)? {
        return Err(StoreError::Busy {
            name: "cache".into(),
        });
    }
    let conn = Connection::open_with_flags(
        &files.db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| files.db_err(e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| files.db_err(e))?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| files.db_err(e))?;
    Ok((version == from).then_some((lock, conn)))
}

/// Upgrades a version 1 cache in place (see the module documentation), keeping a copy aside as
/// `cache.sqlite.v1` unless one is already there.
fn migrate_v1(files: &Files) -> Result<(), StoreError> {
    let Some((lock, conn)) = open_for_upgrade(files, 1)? else {
        return Ok(());
    };
    // Every change of version 1 into the main file, so the copy kept aside is the whole cache.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| files.db_err(e))?;
    let aside = PathBuf::from(format!("{}.v1", files.db.display()));
    if fs::symlink_metadata(&aside).is_err() {
        let tmp = PathBuf::from(format!(
            "{}.v1.tmp-{}",
            files.db.display(),
            fsutil::unique_suffix()
        ));
        let copied = fs::copy(&files.db, &tmp)
            .and_then(|_| File::open(&tmp).and_then(|f| f.sync_all()))
            .and_then(|()| fsutil::adopt(&tmp).map_err(std::io::Error::other))
            .and_then(|()| fs::rename(&tmp, &aside));
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io(&aside, e));
        }
    }
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false)
        .map_err(|e| files.db_err(e))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL;
         BEGIN IMMEDIATE;
         CREATE TABLE providers (
             id     INTEGER PRIMARY KEY,
             name   TEXT NOT NULL UNIQUE,
             health TEXT NOT NULL
         );
         INSERT INTO providers (id, name, health) VALUES (0, '{V1_PROVIDER}',
             COALESCE((SELECT value FROM meta WHERE key = 'health'), 'corrupt'));
         CREATE TABLE subsystems_v2 (
             id                INTEGER PRIMARY KEY,
             provider          INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
             key               TEXT NOT NULL,
             friendly_name     TEXT NOT NULL,
             identification    TEXT NOT NULL,
             flags             INTEGER NOT NULL,
             stripe_size_flags INTEGER NOT NULL,
             status            INTEGER NOT NULL,
             health            INTEGER NOT NULL,
             detail            TEXT,
             refreshed_at      INTEGER NOT NULL,
             checksum          INTEGER NOT NULL,
             UNIQUE (provider, key)
         );
         INSERT INTO subsystems_v2 (id, provider, key, friendly_name, identification, flags,
                 stripe_size_flags, status, health, detail, refreshed_at, checksum)
             SELECT id, 0, key, friendly_name, identification, flags, stripe_size_flags, status,
                 health, detail, refreshed_at, checksum
             FROM subsystems;
         DROP TABLE subsystems;
         ALTER TABLE subsystems_v2 RENAME TO subsystems;
         DELETE FROM meta WHERE key = 'health';
         INSERT INTO meta (key, value) VALUES ('default_health', 'good');
         UPDATE meta SET value = '2' WHERE key = 'schema_version';
         PRAGMA user_version = 2;
         COMMIT;",
        V1_PROVIDER = crate::config::V1_PROVIDER_NAME,
    ))
    .map_err(|e| files.db_err(e))?;
    let orphan: Option<String> = conn
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| files.db_err(e))?;
    if let Some(table) = orphan {
        return Err(files.corrupt(format!(
            "after the upgrade from version 1, a row of {table} has no parent"
        )));
    }
    conn.close().map_err(|(_, e)| files.db_err(e))?;
    drop(lock);
    Ok(())
}

/// Upgrades a version 2 cache in place: adds the `target_initiators` table (empty, so every row
/// and checksum stays valid) and sets the version, in one transaction under the exclusive cache
/// lock. Nothing is kept aside: nothing of version 2 changes.
fn migrate_v2(files: &Files) -> Result<(), StoreError> {
    let Some((lock, conn)) = open_for_upgrade(files, 2)? else {
        return Ok(());
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL;
         BEGIN IMMEDIATE;
         CREATE TABLE target_initiators (
             subsystem INTEGER NOT NULL,
             target    INTEGER NOT NULL,
             position  INTEGER NOT NULL,
             name      TEXT NOT NULL,
             PRIMARY KEY (subsystem, target, position),
             FOREIGN KEY (subsystem, target) REFERENCES targets(subsystem, position)
                 ON DELETE CASCADE
         ) WITHOUT ROWID;
         UPDATE meta SET value = '{CACHE_SCHEMA_VERSION}' WHERE key = 'schema_version';
         PRAGMA user_version = {CACHE_SCHEMA_VERSION};
         COMMIT;"
    ))
    .map_err(|e| files.db_err(e))?;
    conn.close().map_err(|(_, e)| files.db_err(e))?;
    drop(lock);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Checksums

/// A 64-bit FNV-style hash taken a word at a time (`h = (h ^ word) * prime`) over a
/// length-prefixed encoding of a subsystem: cheap, stable across Rust versions, and since each
/// step is a bijection in the word, changing any single word always changes the result.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn step(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// What a subsystem's encoding is fed to: one checksum, or two that differ only in the time
/// ([`checksums`]).
trait Sink {
    fn u64(&mut self, v: u64);
    /// The time the checksum is taken at, where the encoding has it.
    fn time(&mut self);
    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.u64(u64::from_le_bytes(w));
        }
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
}

/// One checksum, at time `.1`.
struct One(Fnv, i64);

impl Sink for One {
    fn u64(&mut self, v: u64) {
        self.0.step(v);
    }
    fn time(&mut self) {
        self.0.step(self.1 as u64);
    }
}

/// Two checksums of one subsystem at two times, in one pass: the two chains of multiplications
/// are independent, so they cost about what one does.
struct Two(Fnv, i64, Fnv, i64);

impl Sink for Two {
    fn u64(&mut self, v: u64) {
        self.0.step(v);
        self.2.step(v);
    }
    fn time(&mut self) {
        self.0.step(self.1 as u64);
        self.2.step(self.3 as u64);
    }
}

/// Opens the connected-initiators part of a checksum.
const INITIATORS_MARK: u64 = 0x5644_5349_4e49_5431;

fn checksum(s: &SubSystemSnapshot, refreshed_ms: i64) -> i64 {
    let mut h = One(Fnv::new(), refreshed_ms);
    encode(s, &mut h);
    h.0.0 as i64
}

/// [`checksum`] at `a_ms` and at `b_ms`.
fn checksums(s: &SubSystemSnapshot, a_ms: i64, b_ms: i64) -> (i64, i64) {
    let mut h = Two(Fnv::new(), a_ms, Fnv::new(), b_ms);
    encode(s, &mut h);
    (h.0.0 as i64, h.2.0 as i64)
}

fn encode(s: &SubSystemSnapshot, h: &mut impl Sink) {
    h.str(&s.key);
    h.str(&s.friendly_name);
    h.str(&s.identification);
    h.u64(u64::from(s.flags.0));
    h.u64(u64::from(s.stripe_size_flags));
    h.u64(s.status.to_raw() as u64);
    h.u64(s.health.to_raw() as u64);
    match &s.detail {
        Some(d) => {
            h.u64(1);
            h.str(d);
        }
        None => h.u64(0),
    }
    h.time();
    h.u64(s.portals.len() as u64);
    for p in &s.portals {
        address(h, &p.address);
        h.u64(p.status.to_raw() as u64);
    }
    h.u64(s.targets.len() as u64);
    for t in &s.targets {
        h.str(&t.iscsi_name);
        h.str(&t.friendly_name);
        h.u64(u64::from(t.chap_enabled));
        h.u64(u64::from(t.lun_count));
        h.u64(t.portal_groups.len() as u64);
        for g in &t.portal_groups {
            h.u64(u64::from(g.tag));
            h.u64(g.portals.len() as u64);
            for a in &g.portals {
                address(h, a);
            }
        }
    }
    // Connected initiators (version 3) only when there are any, so the checksums of version 2
    // rows, which have none, stay what they were.
    if s.targets.iter().any(|t| !t.connected_initiators.is_empty()) {
        h.u64(INITIATORS_MARK);
        for t in &s.targets {
            h.u64(t.connected_initiators.len() as u64);
            for name in &t.connected_initiators {
                h.str(name);
            }
        }
    }
}

fn address(h: &mut impl Sink, a: &VdsIpAddress) {
    // The raw fields, not the text form: formatting every address would cost more than the rest.
    h.u64(a.address_type().0 as u64);
    h.u64(u64::from(a.port()));
    match a {
        VdsIpAddress::Text { text, .. } => h.str(text),
        VdsIpAddress::Ipv4 { addr, .. } => h.bytes(&addr.octets()),
        VdsIpAddress::Ipv6 {
            addr,
            flow_info,
            scope_id,
            ..
        } => {
            h.bytes(&addr.octets());
            h.u64(u64::from(*flow_info) << 32 | u64::from(*scope_id));
        }
        VdsIpAddress::Empty | VdsIpAddress::Unknown { .. } => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Rows

/// `(address_type, host, port, flow, scope)` of an address.
fn address_columns(a: &VdsIpAddress) -> (i32, String, u32, u32, u32) {
    let ty = a.address_type().0;
    match a {
        VdsIpAddress::Text { text, port } => (ty, text.clone(), *port, 0, 0),
        VdsIpAddress::Ipv4 { addr, port } => (ty, addr.to_string(), *port, 0, 0),
        VdsIpAddress::Ipv6 {
            addr,
            flow_info,
            scope_id,
            port,
        } => (ty, addr.to_string(), *port, *flow_info, *scope_id),
        VdsIpAddress::Empty => (ty, String::new(), 0, 0, 0),
        VdsIpAddress::Unknown { port, .. } => (ty, String::new(), *port, 0, 0),
    }
}

fn address_from_columns(
    ty: i32,
    host: &str,
    port: u32,
    flow: u32,
    scope: u32,
) -> Option<VdsIpAddress> {
    Some(match IpAddressType(ty) {
        IpAddressType::TEXT => VdsIpAddress::Text {
            text: host.to_string(),
            port,
        },
        IpAddressType::IPV4 => VdsIpAddress::Ipv4 {
            addr: host.parse::<Ipv4Addr>().ok()?,
            port,
        },
        IpAddressType::IPV6 => VdsIpAddress::Ipv6 {
            addr: host.parse::<Ipv6Addr>().ok()?,
            flow_info: flow,
            scope_id: scope,
            port,
        },
        IpAddressType::EMPTY => VdsIpAddress::Empty,
        IpAddressType(n) => VdsIpAddress::Unknown {
            address_type: n,
            port,
        },
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn time_from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The model's own invariants (one source of truth): what it would refuse to load is not saved.
fn check_invariants(subsystems: &[SubSystemSnapshot]) -> Result<(), StoreError> {
    vds_model::check_snapshots(subsystems).map_err(|e| StoreError::InvalidSnapshot {
        reason: e.to_string(),
    })
}

fn insert_subsystem(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    provider: i64,
    s: &SubSystemSnapshot,
    refreshed_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO subsystems (id, provider, key, friendly_name, identification, flags,
             stripe_size_flags, status, health, detail, refreshed_at, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        id,
        provider,
        s.key,
        s.friendly_name,
        s.identification,
        s.flags.0,
        s.stripe_size_flags,
        s.status.to_raw(),
        s.health.to_raw(),
        s.detail,
        refreshed_ms,
        checksum(s, refreshed_ms),
    ])?;
    let mut position_of: HashMap<&VdsIpAddress, usize> = HashMap::with_capacity(s.portals.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO portals (subsystem, position, address_type, host, port, flow, scope, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (i, p) in s.portals.iter().enumerate() {
            let (ty, host, port, flow, scope) = address_columns(&p.address);
            stmt.execute(params![
                id,
                i,
                ty,
                host,
                port,
                flow,
                scope,
                p.status.to_raw()
            ])?;
            position_of.insert(&p.address, i);
        }
    }
    let mut target_stmt = tx.prepare_cached(
        "INSERT INTO targets (subsystem, position, iscsi_name, friendly_name, chap_enabled, lun_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut group_stmt = tx.prepare_cached(
        "INSERT INTO portal_groups (subsystem, target, position, tag) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut member_stmt = tx.prepare_cached(
        "INSERT INTO group_portals (subsystem, target, grp, position, portal)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut initiator_stmt = tx.prepare_cached(
        "INSERT INTO target_initiators (subsystem, target, position, name) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (ti, t) in s.targets.iter().enumerate() {
        target_stmt.execute(params![
            id,
            ti,
            t.iscsi_name,
            t.friendly_name,
            t.chap_enabled,
            t.lun_count
        ])?;
        for (ii, name) in t.connected_initiators.iter().enumerate() {
            initiator_stmt.execute(params![id, ti, ii, name])?;
        }
        for (gi, g) in t.portal_groups.iter().enumerate() {
            group_stmt.execute(params![id, ti, gi, g.tag])?;
            for (mi, a) in g.portals.iter().enumerate() {
                // check_invariants ran first, so every member is a portal of the subsystem, by the
                // model's identity (the canonical key); usually also spelled exactly the same.
                let found = position_of.get(a).copied().or_else(|| {
                    let key = a.canonical_key();
                    s.portals
                        .iter()
                        .position(|p| p.address.canonical_key() == key)
                });
                let Some(portal) = found else {
                    return Err(rusqlite::Error::InvalidParameterName(a.to_string()));
                };
                member_stmt.execute(params![id, ti, gi, mi, portal])?;
            }
        }
    }
    Ok(())
}

/// The id of provider `name`, creating its row (with health `health`) when it has none.
fn provider_row(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    health: CacheHealth,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO providers (id, name, health)
             VALUES ((SELECT COALESCE(MAX(id), -1) + 1 FROM providers), ?1, ?2)
         ON CONFLICT (name) DO UPDATE SET health = excluded.health",
    )?
    .execute(params![name, health_label(health)])?;
    tx.prepare_cached("SELECT id FROM providers WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

/// Upserts `provider`'s `subsystems` (an existing key keeps its place, a new one is appended) and
/// records `health`, in one transaction. With `keep`, the provider's cached subsystems whose key is
/// neither in `keep` nor among `subsystems` are deleted first, in the same transaction.
pub(crate) fn save_some(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
    subsystems: &[SubSystemSnapshot],
    renewals: &[Renewal],
    keep: Option<&HashSet<&str>>,
    health: CacheHealth,
) -> Result<(), StoreError> {
    check_invariants(subsystems)?;
    let refreshed = now_ms();
    let run = |conn: &mut Connection| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let pid = provider_row(&tx, provider, health)?;
        // A renewal moves the time of rows that still hold what its stamp was taken from; rows
        // another process saved since hold something at least as new, and stay.
        for r in renewals {
            tx.prepare_cached(
                "UPDATE subsystems SET refreshed_at = ?1, checksum = ?2
                 WHERE provider = ?3 AND key = ?4 AND refreshed_at = ?5 AND checksum = ?6",
            )?
            .execute(params![
                r.now.refreshed_ms,
                r.now.checksum,
                pid,
                r.key,
                r.was.refreshed_ms,
                r.was.checksum
            ])?;
        }
        if let Some(keep) = keep {
            let cached: Vec<(i64, String)> = tx
                .prepare_cached("SELECT id, key FROM subsystems WHERE provider = ?1")?
                .query_map([pid], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, key) in cached {
                if !keep.contains(key.as_str()) && !subsystems.iter().any(|s| s.key == key) {
                    tx.prepare_cached("DELETE FROM subsystems WHERE id = ?1")?
                        .execute([id])?;
                }
            }
        }
        for s in subsystems {
            let existing: Option<(i64, i64, i64)> = tx
                .prepare_cached(
                    "SELECT id, refreshed_at, checksum FROM subsystems
                     WHERE provider = ?1 AND key = ?2",
                )?
                .query_row(params![pid, s.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            // An unchanged subsystem (its stored checksum is that of the new snapshot at the stored
            // time) keeps its rows: only its time and checksum move. A refresh of arrays that did
            // not change then writes one row per subsystem instead of rewriting every child row.
            if let Some((id, old_ms, stored)) = existing {
                let (then, now) = checksums(s, old_ms, refreshed);
                if then == stored {
                    tx.prepare_cached(
                        "UPDATE subsystems SET refreshed_at = ?1, checksum = ?2 WHERE id = ?3",
                    )?
                    .execute(params![refreshed, now, id])?;
                    continue;
                }
            }
            let id = match existing.map(|e| e.0) {
                Some(id) => {
                    tx.prepare_cached("DELETE FROM subsystems WHERE id = ?1")?
                        .execute([id])?;
                    id
                }
                None => tx
                    .prepare_cached("SELECT COALESCE(MAX(id), -1) + 1 FROM subsystems")?
                    .query_row([], |r| r.get(0))?,
            };
            insert_subsystem(&tx, id, pid, s, refreshed)?;
        }
        tx.commit()
    };
    run(conn).map_err(|e| files.db_err(e))
}

/// Deletes provider `provider`'s subsystem `key`; whether there was one.
pub(crate) fn remove(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
    key: &str,
) -> Result<bool, StoreError> {
    let run = |conn: &mut Connection| -> rusqlite::Result<bool> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM subsystems WHERE key = ?2
                 AND provider = (SELECT id FROM providers WHERE name = ?1)",
            params![provider, key],
        )?;
        tx.commit()?;
        Ok(n > 0)
    };
    run(conn).map_err(|e| files.db_err(e))
}

/// Deletes everything cached for provider `provider`.
pub(crate) fn remove_provider(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
) -> Result<(), StoreError> {
    let run = |conn: &mut Connection| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM providers WHERE name = ?1", [provider])?;
        tx.commit()
    };
    run(conn).map_err(|e| files.db_err(e))
}

/// Records `health` for `provider` without changing any subsystem.
pub(crate) fn store_health(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
    health: CacheHealth,
) -> Result<(), StoreError> {
    let run = |conn: &mut Connection| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        provider_row(&tx, provider, health)?;
        tx.commit()
    };
    run(conn).map_err(|e| files.db_err(e))
}

fn parse_health(
    files: &Files,
    what: &str,
    label: Option<String>,
) -> Result<CacheHealth, StoreError> {
    match label.as_deref().and_then(health_from_label) {
        Some(h) => Ok(h),
        None => Err(files.corrupt(match label {
            Some(l) => format!("{what} is {l:?}, not good, corrupt or rebuilt"),
            None => format!("{what} is missing"),
        })),
    }
}

/// The health of a provider the cache has no row for.
fn default_health(conn: &Connection, files: &Files) -> Result<CacheHealth, StoreError> {
    let label: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'default_health'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(|e| files.db_err(e))?;
    parse_health(files, "meta.default_health", label)
}

/// Provider `provider`'s id and health, or `None` and the default health when it has no row.
fn provider_health(
    conn: &Connection,
    files: &Files,
    provider: &str,
) -> Result<(Option<i64>, CacheHealth), StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, health FROM providers WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([provider], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| files.db_err(e))?;
    match row {
        Some((id, label)) => Ok((
            Some(id),
            parse_health(
                files,
                &format!("the health of provider {provider:?}"),
                Some(label),
            )?,
        )),
        None => Ok((None, default_health(conn, files)?)),
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// A subsystem row being assembled, with its stored checksum and time.
struct Partial {
    snap: SubSystemSnapshot,
    refreshed_ms: i64,
    checksum: i64,
}

fn u32_col(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u32> {
    row.get::<_, u32>(i)
}

/// The columns [`read_subsystem_row`] reads, in its order.
const SUBSYSTEM_COLUMNS: &str = "id, key, friendly_name, identification, flags, stripe_size_flags,
     status, health, detail, refreshed_at, checksum";

fn read_subsystem_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Partial)> {
    let id: i64 = row.get(0)?;
    let mut snap = SubSystemSnapshot::new(row.get::<_, String>(1)?, SubSystemStatus::Unknown);
    snap.friendly_name = row.get(2)?;
    snap.identification = row.get(3)?;
    snap.flags = SubSystemFlags(u32_col(row, 4)?);
    snap.stripe_size_flags = u32_col(row, 5)?;
    snap.status = SubSystemStatus::from_raw(row.get(6)?);
    snap.health = Health::from_raw(row.get(7)?);
    snap.detail = row.get(8)?;
    Ok((
        id,
        Partial {
            snap,
            refreshed_ms: row.get(9)?,
            checksum: row.get(10)?,
        },
    ))
}
/// Where a child row goes: the index of its subsystem in `parts`.
type Index = HashMap<i64, usize>;

fn position(files: &Files, what: &str, got: i64, expected: usize) -> Result<(), StoreError> {
    if usize::try_from(got).ok() == Some(expected) {
        Ok(())
    } else {
        Err(files.corrupt(format!(
            "{what} at position {got}, expected position {expected} (rows missing or misplaced)"
        )))
    }
}

/// Reads the rows `sql` selects (`subsystem, target, position, …`, bound to `args`) and hands each
/// to `add` with the target it names and its position (which `add` checks against what the
/// target holds).
#[allow(clippy::too_many_arguments)]
fn load_target_children(
    conn: &Connection,
    files: &Files,
    parts: &mut [Partial],
    lookup: &dyn Fn(i64, &str) -> Result<usize, StoreError>,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
    what: &str,
    mut add: impl FnMut(&mut TargetSnapshot, i64, &rusqlite::Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let e = |e| files.db_err(e);
    let mut stmt = conn.prepare_cached(sql).map_err(e)?;
    let mut rows = stmt.query(args).map_err(e)?;
    while let Some(row) = rows.next().map_err(e)? {
        let i = lookup(row.get(0).map_err(e)?, what)?;
        let t: i64 = row.get(1).map_err(e)?;
        let target = usize::try_from(t)
            .ok()
            .and_then(|t| parts[i].snap.targets.get_mut(t))
            .ok_or_else(|| files.corrupt(format!("a {what} names missing target {t}")))?;
        add(target, row.get(2).map_err(e)?, row)?;
    }
    Ok(())
}

/// Fills in the children of `parts` from the rows the `WHERE` clause `filter` selects (bound to
/// `args`), then checks each subsystem's checksum.
fn load_children(
    conn: &Connection,
    files: &Files,
    parts: &mut [Partial],
    index: &Index,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<(), StoreError> {
    let e = |e| files.db_err(e);
    let lookup = |id: i64, what: &str| -> Result<usize, StoreError> {
        index.get(&id).copied().ok_or_else(|| {
            files.corrupt(format!(
                "a {what} row names subsystem id {id}, which does not exist"
            ))
        })
    };

    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT subsystem, position, address_type, host, port, flow, scope, status
             FROM portals {filter} ORDER BY subsystem, position"
        ))
        .map_err(e)?;
    let mut rows = stmt.query(args).map_err(e)?;
    while let Some(row) = rows.next().map_err(e)? {
        let i = lookup(row.get(0).map_err(e)?, "portal")?;
        let portals = &mut parts[i].snap.portals;
        position(files, "portal", row.get(1).map_err(e)?, portals.len())?;
        let ty: i32 = row.get(2).map_err(e)?;
        let host = row
            .get_ref(3)
            .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
            .map_err(e)?;
        let (port, flow, scope) = (
            u32_col(row, 4).map_err(e)?,
            u32_col(row, 5).map_err(e)?,
            u32_col(row, 6).map_err(e)?,
        );
        let Some(address) = address_from_columns(ty, host, port, flow, scope) else {
            return Err(files.corrupt(format!(
                "portal host {host:?} is not an address of type {ty}"
            )));
        };
        portals.push(PortalSnapshot {
            address,
            status: IscsiPortalStatus::from_raw(row.get(7).map_err(e)?),
        });
    }
    drop(rows);

    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT subsystem, position, iscsi_name, friendly_name, chap_enabled, lun_count
             FROM targets {filter} ORDER BY subsystem, position"
        ))
        .map_err(e)?;
    let mut rows = stmt.query(args).map_err(e)?;
    while let Some(row) = rows.next().map_err(e)? {
        let i = lookup(row.get(0).map_err(e)?, "target")?;
        let targets = &mut parts[i].snap.targets;
        position(files, "target", row.get(1).map_err(e)?, targets.len())?;
        targets.push(TargetSnapshot {
            iscsi_name: row.get(2).map_err(e)?,
            friendly_name: row.get(3).map_err(e)?,
            chap_enabled: row.get(4).map_err(e)?,
            lun_count: u32_col(row, 5).map_err(e)?,
            portal_groups: Vec::new(),
            connected_initiators: Vec::new(),
        });
    }
    drop(rows);

    let initiators = format!(
        "SELECT subsystem, target, position, name FROM target_initiators {filter}
         ORDER BY subsystem, target, position"
    );
    load_target_children(
        conn,
        files,
        parts,
        &lookup,
        &initiators,
        args,
        "connected initiator",
        |target, at, row| {
            position(
                files,
                "connected initiator",
                at,
                target.connected_initiators.len(),
            )?;
            target.connected_initiators.push(row.get(3).map_err(e)?);
            Ok(())
        },
    )?;
    let groups = format!(
        "SELECT subsystem, target, position, tag FROM portal_groups {filter}
         ORDER BY subsystem, target, position"
    );
    load_target_children(
        conn,
        files,
        parts,
        &lookup,
        &groups,
        args,
        "portal group",
        |target, at, row| {
            position(files, "portal group", at, target.portal_groups.len())?;
            target.portal_groups.push(PortalGroupSnapshot {
                tag: row.get(3).map_err(e)?,
                portals: Vec::new(),
            });
            Ok(())
        },
    )?;

    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT subsystem, target, grp, position, portal FROM group_portals {filter}
             ORDER BY subsystem, target, grp, position"
        ))
        .map_err(e)?;
    let mut rows = stmt.query(args).map_err(e)?;
    while let Some(row) = rows.next().map_err(e)? {
        let i = lookup(row.get(0).map_err(e)?, "group member")?;
        let (t, g, p): (i64, i64, i64) = (
            row.get(1).map_err(e)?,
            row.get(2).map_err(e)?,
            row.get(4).map_err(e)?,
        );
        let snap = &mut parts[i].snap;
        let address = usize::try_from(p)
            .ok()
            .and_then(|p| snap.portals.get(p))
            .map(|p| p.address.clone())
            .ok_or_else(|| {
                files.corrupt(format!(
                    "subsystem {:?}: a portal group member names portal {p}, which it does not have",
                    snap.key
                ))
            })?;
        let group = usize::try_from(t)
            .ok()
            .and_then(|t| snap.targets.get_mut(t))
            .and_then(|t| {
                usize::try_from(g)
                    .ok()
                    .and_then(|g| t.portal_groups.get_mut(g))
            })
            .ok_or_else(|| files.corrupt(format!("a group member names missing group {t}/{g}")))?;
        position(
            files,
            "group member",
            row.get(3).map_err(e)?,
            group.portals.len(),
        )?;
        group.portals.push(address);
    }
    drop(rows);

    for part in parts.iter() {
        if checksum(&part.snap, part.refreshed_ms) != part.checksum {
            return Err(files.corrupt(format!(
                "subsystem {:?}: checksum mismatch (its rows were changed or damaged)",
                part.snap.key
            )));
        }
    }
    Ok(())
}

/// Reads the subsystem rows `sql` selects (bound to `args`, ordered by id) and their children
/// (the children query filtered by `filter`, bound to the same `args`).
fn load_rows(
    conn: &Connection,
    files: &Files,
    sql: &str,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<(SubSystemSnapshot, SystemTime)>, StoreError> {
    let e = |e| files.db_err(e);
    let mut parts = Vec::new();
    let mut index = Index::new();
    {
        let mut stmt = conn.prepare_cached(sql).map_err(e)?;
        let mut rows = stmt.query(args).map_err(e)?;
        while let Some(row) = rows.next().map_err(e)? {
            let (id, part) = read_subsystem_row(row).map_err(e)?;
            index.insert(id, parts.len());
            parts.push(part);
        }
    }
    if !parts.is_empty() {
        load_children(conn, files, &mut parts, &index, filter, args)?;
    }
    Ok(parts
        .into_iter()
        .map(|p| (p.snap, time_from_ms(p.refreshed_ms)))
        .collect())
}

/// Provider `provider`'s health and the subsystems `selection` names, in one read transaction (so
/// both come from the same save): the hot path of a query.
pub(crate) fn load(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
    selection: Selection<'_>,
) -> Result<ProviderCache, StoreError> {
    let e = |e| files.db_err(e);
    let tx = conn.transaction().map_err(e)?;
    let (pid, health) = provider_health(&tx, files, provider)?;
    let subsystems = match (pid, selection) {
        (None, _) => Vec::new(),
        (Some(pid), Selection::All) => load_rows(
            &tx,
            files,
            &format!("SELECT {SUBSYSTEM_COLUMNS} FROM subsystems WHERE provider = ?1 ORDER BY id"),
            "WHERE subsystem IN (SELECT id FROM subsystems WHERE provider = ?1)",
            &[&pid],
        )?,
        (Some(pid), Selection::One(key)) => {
            let id: Option<i64> = tx
                .prepare_cached("SELECT id FROM subsystems WHERE provider = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![pid, key], |r| r.get(0)).optional())
                .map_err(e)?;
            match id {
                None => Vec::new(),
                Some(id) => load_rows(
                    &tx,
                    files,
                    &format!("SELECT {SUBSYSTEM_COLUMNS} FROM subsystems WHERE id = ?1"),
                    "WHERE subsystem = ?1",
                    &[&id],
                )?,
            }
        }
        (Some(_), Selection::Keys([])) => Vec::new(),
        (Some(pid), Selection::Keys(keys)) => {
            let mut out = Vec::with_capacity(keys.len());
            for page in keys.chunks(MAX_KEYS_PER_LOAD) {
                let marks = (2..page.len() + 2)
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(page.len() + 1);
                args.push(&pid);
                args.extend(page.iter().map(|k| k as &dyn rusqlite::ToSql));
                out.extend(load_rows(
                    &tx,
                    files,
                    &format!(
                        "SELECT {SUBSYSTEM_COLUMNS} FROM subsystems \
                         WHERE provider = ?1 AND key IN ({marks}) ORDER BY id"
                    ),
                    &format!(
                        "WHERE subsystem IN (SELECT id FROM subsystems \
                         WHERE provider = ?1 AND key IN ({marks}))"
                    ),
                    &args,
                )?);
            }
            out
        }
    };
    tx.finish().map_err(e)?;
    Ok(ProviderCache { health, subsystems })
}

/// Every provider the cache has a row for, with its health and all its subsystems, in one read
/// transaction.
pub(crate) fn load_everything(
    conn: &mut Connection,
    files: &Files,
) -> Result<Vec<(String, ProviderCache)>, StoreError> {
    let e = |e| files.db_err(e);
    let tx = conn.transaction().map_err(e)?;
    let providers: Vec<(i64, String, String)> = tx
        .prepare_cached("SELECT id, name, health FROM providers ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(e)?;
    let mut out = Vec::with_capacity(providers.len());
    for (pid, name, label) in providers {
        let health = parse_health(
            files,
            &format!("the health of provider {name:?}"),
            Some(label),
        )?;
        let subsystems = load_rows(
            &tx,
            files,
            &format!("SELECT {SUBSYSTEM_COLUMNS} FROM subsystems WHERE provider = ?1 ORDER BY id"),
            "WHERE subsystem IN (SELECT id FROM subsystems WHERE provider = ?1)",
            &[&pid],
        )?;
        out.push((name, ProviderCache { health, subsystems }));
    }
    // Rows of a provider that has no providers row cannot exist (a foreign key), but a damaged
    // file could still have them: the full check reads them.
    tx.finish().map_err(e)?;
    Ok(out)
}

/// The health of a provider without a row of its own (what every provider has until it saves).
pub(crate) fn load_default_health(
    conn: &mut Connection,
    files: &Files,
) -> Result<CacheHealth, StoreError> {
    default_health(conn, files)
}

/// The providers whose cache holds a subsystem with key `key`.
pub(crate) fn providers_with(
    conn: &mut Connection,
    files: &Files,
    key: &str,
) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached(
        "SELECT p.name FROM subsystems AS s JOIN providers AS p ON p.id = s.provider
         WHERE s.key = ?1 ORDER BY p.id",
    )
    .and_then(|mut s| {
        s.query_map([key], |r| r.get(0))
            .and_then(|rows| rows.collect())
    })
    .map_err(|e| files.db_err(e))
}

/// Provider `provider`'s health and the keys of its cached subsystems, in enumeration order (none
/// for a provider that never saved), read in one transaction.
pub(crate) fn subsystem_keys(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
) -> Result<(CacheHealth, Vec<String>), StoreError> {
    let e = |e| files.db_err(e);
    let tx = conn.transaction().map_err(e)?;
    let (pid, health) = provider_health(&tx, files, provider)?;
    let keys = match pid {
        None => Vec::new(),
        Some(pid) => tx
            .prepare_cached("SELECT key FROM subsystems WHERE provider = ?1 ORDER BY id")
            .and_then(|mut s| s.query_map([pid], |r| r.get(0))?.collect())
            .map_err(e)?,
    };
    tx.finish().map_err(e)?;
    Ok((health, keys))
}

/// The stamps of provider `provider`'s cached subsystems among `keys`, by key (a key not cached
/// has none), read in one transaction without their pictures.
pub(crate) fn stamps(
    conn: &mut Connection,
    files: &Files,
    provider: &str,
    keys: &[String],
) -> Result<HashMap<String, Stamp>, StoreError> {
    let e = |e| files.db_err(e);
    let tx = conn.transaction().map_err(e)?;
    let mut out = HashMap::with_capacity(keys.len());
    if let (Some(pid), _) = provider_health(&tx, files, provider)? {
        let mut stmt = tx
            .prepare_cached(
                "SELECT refreshed_at, checksum FROM subsystems WHERE provider = ?1 AND key = ?2",
            )
            .map_err(e)?;
        for key in keys {
            let stamp = stmt
                .query_row(params![pid, key], |r| {
                    Ok(Stamp {
                        refreshed_ms: r.get(0)?,
                        checksum: r.get(1)?,
                    })
                })
                .optional()
                .map_err(e)?;
            if let Some(stamp) = stamp {
                out.insert(key.clone(), stamp);
            }
        }
    }
    tx.finish().map_err(e)?;
    Ok(out)
}

/// `PRAGMA integrity_check` (or `quick_check`), then a full load: every page and every row.
pub(crate) fn verify(
    conn: &mut Connection,
    files: &Files,
    thorough: bool,
) -> Result<(), StoreError> {
    let pragma = if thorough {
        "integrity_check"
    } else {
        "quick_check"
    };
    let mut stmt = conn
        .prepare(&format!("PRAGMA {pragma}(20)"))
        .map_err(|e| files.db_err(e))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| files.db_err(e))?;
    drop(stmt);
    if lines != ["ok"] {
        return Err(files.corrupt(format!("{pragma}: {}", lines.join("; "))));
    }
    let fk: Option<String> = conn
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| files.db_err(e))?;
    if let Some(table) = fk {
        return Err(files.corrupt(format!("foreign_key_check: a row of {table} has no parent")));
    }
    default_health(conn, files)?;
    load_everything(conn, files).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_columns() {
        let cases = [
            VdsIpAddress::Text {
                text: "Array.Example".into(),
                port: 3260,
            },
            VdsIpAddress::Ipv4 {
                addr: Ipv4Addr::new(192, 0, 2, 1),
                port: 860,
            },
            VdsIpAddress::Ipv6 {
                addr: "fe80::1".parse().unwrap(),
                flow_info: 7,
                scope_id: 3,
                port: 3260,
            },
            VdsIpAddress::Empty,
            VdsIpAddress::Unknown {
                address_type: 9,
                port: 1,
            },
        ];
        for a in cases {
            let (ty, host, port, flow, scope) = address_columns(&a);
            assert_eq!(address_from_columns(ty, &host, port, flow, scope), Some(a));
        }
        assert_eq!(address_from_columns(1, "nope", 1, 0, 0), None);
    }

    #[test]
    fn checksum_sees_every_field() {
        let base = vds_model::sim::demo_array_1();
        let c = checksum(&base, 5);
        assert_eq!(c, checksum(&base.clone(), 5));
        assert_ne!(c, checksum(&base, 6));
        let mut m = base.clone();
        m.portals[3].status = IscsiPortalStatus::Online;
        assert_ne!(c, checksum(&m, 5));
        let mut m = base.clone();
        m.targets[0].portal_groups[0].portals.swap(0, 1);
        assert_ne!(c, checksum(&m, 5));
        let mut m = base.clone();
        m.detail = Some(String::new());
        assert_ne!(c, checksum(&m, 5));
        let mut m = base.clone();
        m.targets[0].connected_initiators[0].push('x');
        assert_ne!(c, checksum(&m, 5));
        let mut m = base;
        let who = m.targets[0].connected_initiators.remove(0);
        m.targets[1].connected_initiators.push(who);
        assert_ne!(c, checksum(&m, 5));
    }

    #[test]
    fn without_initiators_the_checksum_is_the_version_2_one() {
        // Version 2 rows keep their checksums after the upgrade: a picture without connected
        // initiators hashes exactly as version 2 hashed it (this value was computed by version 2).
        let mut base = vds_model::sim::demo_array_1();
        for t in &mut base.targets {
            t.connected_initiators.clear();
        }
        assert_eq!(checksum(&base, 5), VERSION_2_CHECKSUM_OF_DEMO_ARRAY_1_AT_5);
    }

    const VERSION_2_CHECKSUM_OF_DEMO_ARRAY_1_AT_5: i64 = -4_903_675_538_912_004_605;

    #[test]
    fn two_checksums_in_one_pass_are_the_two_taken_apart() {
        let mut pictures = vec![
            vds_model::sim::demo_array_1(),
            vds_model::sim::demo_array_2(),
        ];
        let mut bare = pictures[0].clone();
        for t in &mut bare.targets {
            t.connected_initiators.clear();
        }
        pictures.push(bare);
        for s in &pictures {
            for (a, b) in [(5, 6), (0, i64::MAX), (-1, 1_796_224_323_493), (7, 7)] {
                assert_eq!(
                    checksums(s, a, b),
                    (checksum(s, a), checksum(s, b)),
                    "{a} {b}"
                );
            }
        }
    }
}
