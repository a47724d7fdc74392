//! The cache against real files: round trips, upserts, reenumeration saves, providers kept apart,
//! every kind of damage, and rebuild.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use vds_model::sim::{self, SimBackend};
use vds_model::{
    CacheHealth, Hresult, HwProvider, IscsiPortalStatus, SubSystemSnapshot, SubSystemStatus,
    VdsIpAddress,
};
use vds_store::{ProviderCache, ProviderConfig, Selection, Store, StoreError, SubsystemConfig};

/// The provider most tests save under.
const P: &str = "lab";

fn scaled(subsystems: usize, portals: usize) -> Vec<SubSystemSnapshot> {
    SimBackend::scaled(subsystems, portals).control().truth()
}

fn demo() -> Vec<SubSystemSnapshot> {
    vec![sim::demo_array_1(), sim::demo_array_2()]
}

fn load_all(store: &Store, provider: &str) -> ProviderCache {
    store
        .load(provider, Selection::All)
        .unwrap_or_else(|e| panic!("load {provider}: {e}"))
}

fn snapshots(store: &Store, provider: &str) -> Vec<SubSystemSnapshot> {
    load_all(store, provider).snapshots()
}

/// The one subsystem `key` of `provider`, if cached.
fn load_one(store: &Store, provider: &str, key: &str) -> Option<SubSystemSnapshot> {
    let mut found = store
        .load(provider, Selection::One(key))
        .unwrap()
        .snapshots();
    assert!(found.len() <= 1, "{found:?}");
    found.pop()
}

fn health(store: &Store, provider: &str) -> CacheHealth {
    // Selecting a key that is not cached reads the health alone.
    store
        .load(provider, Selection::One("\u{0}none"))
        .unwrap()
        .health
}

/// Registers `provider` (kind `sim`) and its subsystems `names` in the configuration.
fn register(store: &Store, provider: &str, names: &[&str]) {
    store
        .update_config(|c| {
            if c.provider(provider).is_none() {
                c.providers.push(ProviderConfig::new(provider, "sim"));
            }
            for name in names {
                c.subsystems.push(SubsystemConfig::new(*name, provider));
            }
            Ok(())
        })
        .unwrap();
}

/// A cache with the demo arrays and 300 × 16 more, closed (so everything is in the main file).
fn filled_cache() -> (tempfile::TempDir, PathBuf, Vec<SubSystemSnapshot>) {
    let dir = tempfile::tempdir().unwrap();
    let mut content = demo();
    content.extend(scaled(300, 16));
    {
        let store = Store::open(dir.path()).unwrap();
        store.save(P, &content, CacheHealth::Good).unwrap();
        assert_eq!(snapshots(&store, P), content);
    }
    let path = dir.path().join("cache.sqlite");
    assert!(
        !Path::new(&format!("{}-wal", path.display())).exists(),
        "closing the store checkpoints the log"
    );
    (dir, path, content)
}

fn check_corrupt<T>(store: &Store, what: &str, result: Result<T, StoreError>) -> String {
    match result {
        Err(e @ StoreError::CacheCorrupt { .. }) => {
            assert_eq!(e.hresult(), Hresult::VDS_E_PROVIDER_CACHE_CORRUPT);
            let StoreError::CacheCorrupt { reason, path } = &e else {
                unreachable!()
            };
            assert_eq!(path, store.cache_path(), "{what}");
            assert!(!reason.is_empty(), "{what}");
            eprintln!("{what}: {e}");
            reason.clone()
        }
        Err(e) => panic!("{what}: expected CacheCorrupt, got {e:?}"),
        Ok(_) => panic!("{what}: expected CacheCorrupt, got a result"),
    }
}

fn expect_corrupt(store: &Store, what: &str) -> String {
    check_corrupt(store, what, store.load(P, Selection::All))
}

#[test]
fn a_store_can_be_shared_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(P, &demo(), CacheHealth::Good).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(snapshots(&store, P), demo());
                }
            });
        }
        s.spawn(|| {
            for _ in 0..20 {
                store
                    .save(P, &[sim::demo_array_2()], CacheHealth::Good)
                    .unwrap();
            }
        });
    });
}

#[test]
fn missing_cache_is_created_empty_and_good() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("new")).unwrap();
    let state = load_all(&store, P);
    assert_eq!(
        state,
        ProviderCache {
            health: CacheHealth::Good,
            subsystems: Vec::new()
        }
    );
    let (everything, default) = store.load_everything().unwrap();
    assert!(everything.is_empty());
    assert_eq!(default, CacheHealth::Good);
    assert!(store.cache_path().exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(store.cache_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the cache is private: {mode:o}");
    let root_mode = fs::metadata(store.root()).unwrap().permissions().mode();
    assert_eq!(root_mode & 0o777, 0o700);
}

#[test]
fn demo_snapshots_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let before = SystemTime::now();
    {
        let store = Store::open(dir.path()).unwrap();
        store.save(P, &demo(), CacheHealth::Rebuilt).unwrap();
    }
    // A new store (a new process, in effect) reads back exactly what was saved.
    let store = Store::open(dir.path()).unwrap();
    let state = load_all(&store, P);
    assert_eq!(state.snapshots(), demo());
    assert_eq!(state.health, CacheHealth::Rebuilt);
    for (s, t) in &state.subsystems {
        assert!(*t + Duration::from_secs(1) >= before, "{}: {t:?}", s.key);
        assert!(*t <= SystemTime::now(), "{}: {t:?}", s.key);
    }
    // The IPv6 scope id and the text host survive.
    let portals = &state.subsystems[0].0.portals;
    assert!(
        portals
            .iter()
            .any(|p| matches!(p.address, VdsIpAddress::Ipv6 { scope_id: 2, .. }))
    );
    assert!(portals.iter().any(|p| matches!(
        &p.address,
        VdsIpAddress::Text { text, .. } if text == "array1.example.net"
    )));
    // One subsystem comes with the provider's health and its own time.
    let one = store.load(P, Selection::One("sim-array-1")).unwrap();
    assert_eq!(one.health, CacheHealth::Rebuilt);
    assert_eq!(one.subsystems, state.subsystems[..1]);
    assert_eq!(
        store.load(P, Selection::One("nope")).unwrap(),
        ProviderCache {
            health: CacheHealth::Rebuilt,
            subsystems: Vec::new()
        }
    );
    // Everything at once gives the same.
    let (everything, default) = store.load_everything().unwrap();
    assert_eq!(everything, vec![(P.to_string(), state.clone())]);
    assert_eq!(default, CacheHealth::Good);
    store.verify_cache(true).unwrap();

    // The model accepts it as it is.
    let (provider, problem) =
        HwProvider::from_cache(SimBackend::demo(), state.snapshots(), state.health);
    assert!(problem.is_none());
    assert_eq!(provider.export(), demo());
}

#[test]
fn unusual_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut s = SubSystemSnapshot::new("odd ☃ key", SubSystemStatus::Other(77));
    s.detail = Some("discovery failed: connection refused".into());
    s.flags = vds_model::SubSystemFlags(0xffff_ffff);
    s.stripe_size_flags = u32::MAX;
    s.health = vds_model::Health::Other(-3);
    s.portals = vec![
        vds_model::PortalSnapshot {
            address: VdsIpAddress::Ipv6 {
                addr: "fe80::1".parse().unwrap(),
                flow_info: u32::MAX,
                scope_id: u32::MAX,
                port: u32::MAX,
            },
            status: IscsiPortalStatus::Other(3),
        },
        vds_model::PortalSnapshot {
            address: VdsIpAddress::Empty,
            status: IscsiPortalStatus::Unknown,
        },
        vds_model::PortalSnapshot {
            address: VdsIpAddress::Unknown {
                address_type: 42,
                port: 9,
            },
            status: IscsiPortalStatus::Failed,
        },
    ];
    // An odd provider name too: the provider is a column, never part of a file name or statement.
    let odd = "prov '\"; DROP TABLE subsystems; --";
    store.save(odd, &[s.clone()], CacheHealth::Good).unwrap();
    assert_eq!(snapshots(&store, odd), vec![s.clone()]);
    assert_eq!(load_one(&store, odd, "odd ☃ key"), Some(s));
    store.verify_cache(true).unwrap();
}

#[test]
fn save_upserts_in_place_and_appends_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut all = scaled(3, 2);
    all.push(sim::demo_array_1());
    store.save(P, &all, CacheHealth::Good).unwrap();
    let t0 = load_all(&store, P).subsystems;

    std::thread::sleep(Duration::from_millis(5));
    let mut changed = all[1].clone();
    changed.status = SubSystemStatus::Offline;
    changed.detail = Some("unreachable".into());
    changed.portals.pop();
    let new = SubSystemSnapshot::new("new-one", SubSystemStatus::Online);
    store
        .save(P, &[changed.clone(), new.clone()], CacheHealth::Rebuilt)
        .unwrap();

    let state = load_all(&store, P);
    let mut expected = all.clone();
    expected[1] = changed;
    expected.push(new);
    assert_eq!(state.snapshots(), expected, "order kept, new one appended");
    assert_eq!(state.health, CacheHealth::Rebuilt);
    assert_eq!(
        state.subsystems[0].1, t0[0].1,
        "an untouched one keeps its time"
    );
    assert!(
        state.subsystems[1].1 > t0[1].1,
        "a saved one gets a new time"
    );

    // set_health changes the health and nothing else.
    store.set_health(P, CacheHealth::Corrupt).unwrap();
    let after = load_all(&store, P);
    assert_eq!(after.health, CacheHealth::Corrupt);
    assert_eq!(after.subsystems, state.subsystems);

    // remove_cached drops one key, and says whether there was one.
    assert!(store.remove_cached(P, "sim-scale-0").unwrap());
    assert!(!store.remove_cached(P, "sim-scale-0").unwrap());
    assert!(!store.remove_cached("another", "sim-scale-1").unwrap());
    assert_eq!(snapshots(&store, P), expected[1..]);
    store.verify_cache(true).unwrap();
}

#[test]
fn save_enumeration_with_nothing_registered_replaces_everything() {
    // What a whole-cache save did before there were providers: the enumerated set, nothing else.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(P, &scaled(5, 2), CacheHealth::Good).unwrap();
    store
        .save_enumeration(P, &demo(), CacheHealth::Rebuilt)
        .unwrap();
    let state = load_all(&store, P);
    assert_eq!(state.snapshots(), demo());
    assert_eq!(state.health, CacheHealth::Rebuilt);
    // An empty enumeration empties the provider but records its health.
    store.save_enumeration(P, &[], CacheHealth::Good).unwrap();
    assert_eq!(
        load_all(&store, P),
        ProviderCache {
            health: CacheHealth::Good,
            subsystems: Vec::new()
        }
    );
}

#[test]
fn snapshots_breaking_invariants_are_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(P, &demo(), CacheHealth::Good).unwrap();

    let mut bad = sim::demo_array_1();
    bad.targets[0].portal_groups[0]
        .portals
        .push(VdsIpAddress::Ipv4 {
            addr: [203, 0, 113, 1].into(),
            port: 3260,
        });
    let mut dup_portal = sim::demo_array_1();
    dup_portal.portals.push(dup_portal.portals[0].clone());
    let cases = [
        vec![bad.clone()],
        vec![dup_portal],
        vec![sim::demo_array_2(), sim::demo_array_2()],
    ];
    for case in cases {
        let e = store.save(P, &case, CacheHealth::Rebuilt).unwrap_err();
        assert!(matches!(e, StoreError::InvalidSnapshot { .. }), "{e:?}");
        assert_eq!(e.hresult(), Hresult::E_INVALIDARG);
        let e = store
            .save_enumeration(P, &case, CacheHealth::Rebuilt)
            .unwrap_err();
        assert!(matches!(e, StoreError::InvalidSnapshot { .. }), "{e:?}");
        // Nothing either for a provider that had nothing.
        assert!(store.save("fresh", &case, CacheHealth::Rebuilt).is_err());
    }
    let state = load_all(&store, P);
    assert_eq!(
        state.health,
        CacheHealth::Good,
        "not even the health was recorded"
    );
    assert_eq!(state.snapshots(), demo());
    let (everything, _) = store.load_everything().unwrap();
    assert_eq!(
        everything.len(),
        1,
        "no row for the provider whose save was refused"
    );
    assert_eq!(store.providers_with("sim-array-1").unwrap(), [P]);
}

#[test]
fn providers_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a_of = |status, detail: &str| {
        let mut s = SubSystemSnapshot::new("a", status);
        s.detail = Some(detail.into());
        s
    };
    let (pa, qa) = (
        a_of(SubSystemStatus::Online, "of p"),
        a_of(SubSystemStatus::Offline, "of q"),
    );
    store
        .save("p", &[pa.clone(), sim::demo_array_1()], CacheHealth::Good)
        .unwrap();
    store
        .save("q", std::slice::from_ref(&qa), CacheHealth::Rebuilt)
        .unwrap();

    // Same key, two providers: each load sees its own.
    assert_eq!(
        snapshots(&store, "p"),
        vec![pa.clone(), sim::demo_array_1()]
    );
    assert_eq!(snapshots(&store, "q"), vec![qa.clone()]);
    assert_eq!(load_one(&store, "p", "a"), Some(pa.clone()));
    assert_eq!(load_one(&store, "q", "a"), Some(qa.clone()));
    assert_eq!(load_one(&store, "q", "sim-array-1"), None);
    assert_eq!(health(&store, "p"), CacheHealth::Good);
    assert_eq!(health(&store, "q"), CacheHealth::Rebuilt);
    assert_eq!(store.providers_with("a").unwrap(), ["p", "q"]);
    assert_eq!(store.providers_with("sim-array-1").unwrap(), ["p"]);
    assert!(store.providers_with("zzz").unwrap().is_empty());

    // Health is per provider.
    store.set_health("p", CacheHealth::Corrupt).unwrap();
    assert_eq!(health(&store, "p"), CacheHealth::Corrupt);
    assert_eq!(health(&store, "q"), CacheHealth::Rebuilt);
    // A save of q's "a" leaves p's "a" as it was.
    let mut qa2 = qa.clone();
    qa2.status = SubSystemStatus::Failed;
    store.save("q", &[qa2.clone()], CacheHealth::Good).unwrap();
    assert_eq!(load_one(&store, "p", "a"), Some(pa.clone()));
    assert_eq!(health(&store, "p"), CacheHealth::Corrupt);
    // Removing p's "a" leaves q's.
    assert!(store.remove_cached("p", "a").unwrap());
    assert_eq!(load_one(&store, "q", "a"), Some(qa2.clone()));
    assert_eq!(store.providers_with("a").unwrap(), ["q"]);
    store
        .save("p", std::slice::from_ref(&pa), CacheHealth::Corrupt)
        .unwrap();

    // load_everything: each provider in the order it first saved, with its own health.
    let (everything, default) = store.load_everything().unwrap();
    let names: Vec<&str> = everything.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["p", "q"]);
    assert_eq!(everything[0].1.health, CacheHealth::Corrupt);
    assert_eq!(
        everything[0].1.snapshots(),
        vec![sim::demo_array_1(), pa.clone()]
    );
    assert_eq!(everything[1].1.health, CacheHealth::Good);
    assert_eq!(everything[1].1.snapshots(), vec![qa2.clone()]);
    assert_eq!(default, CacheHealth::Good);

    // Dropping provider p drops all of it and nothing of q.
    store.remove_cached_provider("p").unwrap();
    assert_eq!(
        load_all(&store, "p"),
        ProviderCache {
            health: CacheHealth::Good,
            subsystems: Vec::new()
        },
        "a provider without rows has the default health"
    );
    assert_eq!(load_all(&store, "q").snapshots(), vec![qa2]);
    assert_eq!(health(&store, "q"), CacheHealth::Good);
    assert_eq!(store.providers_with("a").unwrap(), ["q"]);
    assert_eq!(store.load_everything().unwrap().0.len(), 1);
    store.remove_cached_provider("never-saved").unwrap();
    store.verify_cache(true).unwrap();
}

#[test]
fn after_rebuild_every_provider_is_corrupt_until_it_saves() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save("p", &demo(), CacheHealth::Good).unwrap();
    store.save("q", &demo(), CacheHealth::Good).unwrap();
    assert!(store.rebuild_cache().unwrap().is_some());

    // Nobody saved in the new file: everybody, known before or not, is corrupt and empty.
    for provider in ["p", "q", "never-seen"] {
        assert_eq!(
            load_all(&store, provider),
            ProviderCache {
                health: CacheHealth::Corrupt,
                subsystems: Vec::new()
            },
            "{provider}"
        );
    }
    let (everything, default) = store.load_everything().unwrap();
    assert!(everything.is_empty());
    assert_eq!(default, CacheHealth::Corrupt);

    // p reenumerates (Rebuilt) then refreshes (Good); q stays corrupt meanwhile.
    store
        .save_enumeration("p", &[sim::demo_array_2()], CacheHealth::Rebuilt)
        .unwrap();
    assert_eq!(health(&store, "p"), CacheHealth::Rebuilt);
    assert_eq!(health(&store, "q"), CacheHealth::Corrupt);
    store
        .save("p", &[sim::demo_array_2()], CacheHealth::Good)
        .unwrap();
    assert_eq!(health(&store, "p"), CacheHealth::Good);
    assert_eq!(health(&store, "q"), CacheHealth::Corrupt);
    // Recording a health is a save of its own: q is then what it says.
    store.set_health("q", CacheHealth::Rebuilt).unwrap();
    assert_eq!(health(&store, "q"), CacheHealth::Rebuilt);
    // Dropping a provider brings it back to the default of this file.
    store.remove_cached_provider("p").unwrap();
    assert_eq!(health(&store, "p"), CacheHealth::Corrupt);

    // The default survives reopening (it is in the file, not in the store value).
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(health(&store, "other"), CacheHealth::Corrupt);
    assert_eq!(health(&store, "q"), CacheHealth::Rebuilt);
    store.verify_cache(true).unwrap();
}

#[test]
fn bytes_overwritten_in_the_middle() {
    let (dir, path, _) = filled_cache();
    let len = fs::metadata(&path).unwrap().len();
    let page = 4096;
    let middle = (len / page / 2) * page;
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(middle)).unwrap();
    f.write_all(&vec![0x5a; page as usize]).unwrap();
    drop(f);
    let store = Store::open(dir.path()).unwrap();
    expect_corrupt(&store, "a page overwritten");
    check_corrupt(&store, "verify", store.verify_cache(false));
}

#[test]
fn a_few_bytes_changed_inside_a_record() {
    let (dir, path, _) = filled_cache();
    // Change a host text in place: same length, still valid UTF-8, still a valid record. Only the
    // checksum can tell.
    let mut bytes = fs::read(&path).unwrap();
    let needle = b"array1.example.net";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the text host is stored as text");
    bytes[at..at + 6].copy_from_slice(b"ARRAY9");
    fs::write(&path, &bytes).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reason = expect_corrupt(&store, "a changed record");
    assert!(reason.contains("checksum"), "{reason}");
    check_corrupt(
        &store,
        "that subsystem",
        store.load(P, Selection::One("sim-array-1")),
    );
    check_corrupt(&store, "everything", store.load_everything());
    // The untouched subsystems still answer one by one.
    assert!(load_one(&store, P, "sim-array-2").is_some());
}

#[test]
fn truncated_to_half() {
    let (dir, path, _) = filled_cache();
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reason = expect_corrupt(&store, "truncated");
    assert!(reason.contains("truncated"), "{reason}");
    // Every cache call says so: the one-subsystem path, another provider, writes.
    check_corrupt(
        &store,
        "one subsystem",
        store.load(P, Selection::One("sim-array-1")),
    );
    check_corrupt(&store, "another provider", store.load("q", Selection::All));
    check_corrupt(
        &store,
        "providers_with",
        store.providers_with("sim-array-1"),
    );
    check_corrupt(
        &store,
        "save",
        store.save(P, &[sim::demo_array_2()], CacheHealth::Good),
    );
    check_corrupt(&store, "set_health", store.set_health(P, CacheHealth::Good));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        len / 2,
        "left as it was"
    );
}

#[test]
fn replaced_by_garbage_or_emptied() {
    let (dir, path, _) = filled_cache();
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(&path, &garbage).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reason = expect_corrupt(&store, "garbage");
    assert!(reason.contains("not an SQLite database"), "{reason}");
    drop(store);

    fs::write(&path, b"").unwrap();
    let store = Store::open(dir.path()).unwrap();
    expect_corrupt(&store, "an empty file");
}

#[test]
fn another_applications_database() {
    let (dir, path, _) = filled_cache();
    fs::remove_file(&path).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch(
            "CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT);
             INSERT INTO songs (title) VALUES ('a'), ('b');",
        )
        .unwrap();
    drop(other);
    let store = Store::open(dir.path()).unwrap();
    let reason = expect_corrupt(&store, "foreign database");
    assert!(reason.contains("application_id"), "{reason}");
    // The foreign file is left alone: it is never silently replaced.
    let other = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = other
        .query_row("SELECT COUNT(*) FROM songs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn wrong_schema_version() {
    let (dir, path, _) = filled_cache();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    let reason = expect_corrupt(&store, "wrong user_version");
    assert!(reason.contains("schema version 99"), "{reason}");
}

#[test]
fn a_version_1_number_on_a_version_2_file_is_corrupt_not_upgraded() {
    // Only the exact version 1 table set is upgraded; a version 2 file claiming version 1 is not
    // "upgraded" on top of itself.
    let (dir, path, _) = filled_cache();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 1;").unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    let reason = expect_corrupt(&store, "user_version 1 on a version 2 schema");
    assert!(reason.contains("schema version 1"), "{reason}");
    assert!(!dir.path().join("cache.sqlite.v1").exists());
}

#[test]
fn invariant_breaking_rows_are_corrupt() {
    // Rows written behind the store's back (foreign keys off) that break the invariants.
    let cases: [(&str, &str); 4] = [
        (
            "UPDATE group_portals SET portal = 40 WHERE subsystem = 0 AND target = 0 AND grp = 0 \
             AND position = 0",
            "does not have",
        ),
        (
            "DELETE FROM portals WHERE subsystem = 0 AND position = 1",
            "position",
        ),
        (
            "UPDATE providers SET health = 'maybe' WHERE name = 'lab'",
            "health",
        ),
        (
            "UPDATE portals SET host = 'not an address' WHERE subsystem = 0 AND position = 0",
            "not an address",
        ),
    ];
    for (sql, expected) in cases {
        let (dir, path, _) = filled_cache();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql};"))
            .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        let reason = expect_corrupt(&store, sql);
        assert!(reason.contains(expected), "{sql}: {reason}");
    }
}

#[test]
fn a_bad_default_health_or_orphan_rows_are_found() {
    // The default health is read for a provider without a row of its own, and by the full check.
    let (dir, path, _) = filled_cache();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("UPDATE meta SET value = 'maybe' WHERE key = 'default_health';")
        .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    let reason = check_corrupt(
        &store,
        "default health",
        store.load("other", Selection::All),
    );
    assert!(reason.contains("default_health"), "{reason}");
    check_corrupt(&store, "everything", store.load_everything());
    check_corrupt(&store, "verify", store.verify_cache(false));
    // A provider with its own row still loads.
    assert_eq!(health(&store, P), CacheHealth::Good);
    drop(store);

    // Rows whose parent does not exist belong to no provider, so no load selects them (what a
    // load returns is whole and checksummed); the full check finds them.
    let orphans = [
        (
            "UPDATE subsystems SET provider = 77 WHERE id = 0",
            "subsystems",
        ),
        (
            "INSERT INTO portals VALUES (999, 0, 1, '192.0.2.1', 3260, 0, 0, 1)",
            "portals",
        ),
    ];
    for (sql, table) in orphans {
        let (dir, path, content) = filled_cache();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql};"))
            .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        let loaded = snapshots(&store, P);
        if table == "subsystems" {
            assert_eq!(loaded, content[1..], "{sql}");
        } else {
            assert_eq!(loaded, content, "{sql}");
        }
        let reason = check_corrupt(&store, sql, store.verify_cache(false));
        assert!(reason.contains("foreign_key_check"), "{sql}: {reason}");
        assert!(reason.contains(table), "{sql}: {reason}");
    }
}

#[test]
fn rebuild_keeps_the_damaged_file_aside_and_leaves_config_and_secrets() {
    let (dir, path, _) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    store
        .update_config(|c| {
            c.providers.push(ProviderConfig::new(P, "sendtargets"));
            c.subsystems.push(SubsystemConfig {
                chap_user: Some("u".into()),
                chap_secret: Some("s1".into()),
                ..SubsystemConfig::new("sim-array-1", P)
            });
            Ok(())
        })
        .unwrap();
    store.put_secret("s1", b"0123456789abcdef").unwrap();
    let config_before = fs::read(store.config_path()).unwrap();

    let garbage = vec![0xA5u8; 50_000];
    fs::write(&path, &garbage).unwrap();
    expect_corrupt(&store, "before rebuild");
    let aside = store
        .rebuild_cache()
        .unwrap()
        .expect("a file was kept aside");
    let name = aside.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("cache.sqlite.corrupt-"), "{name}");
    assert_eq!(aside.parent(), Some(dir.path()));
    assert_eq!(fs::read(&aside).unwrap(), garbage, "kept as it was");

    let state = load_all(&store, P);
    assert!(state.subsystems.is_empty());
    assert_eq!(state.health, CacheHealth::Corrupt);
    assert_eq!(fs::read(store.config_path()).unwrap(), config_before);
    assert_eq!(
        store.read_secret("s1").unwrap().expose(),
        b"0123456789abcdef"
    );

    // The model's rule: after reenumerate the cache is saved Rebuilt, after refresh Good.
    store
        .save_enumeration(P, &demo(), CacheHealth::Rebuilt)
        .unwrap();
    assert_eq!(health(&store, P), CacheHealth::Rebuilt);
    store.save(P, &demo(), CacheHealth::Good).unwrap();
    assert_eq!(load_all(&store, P).health, CacheHealth::Good);
    assert_eq!(snapshots(&store, P), demo());

    // A second rebuild in the same second does not overwrite the first file kept aside.
    let again = store.rebuild_cache().unwrap().unwrap();
    assert_ne!(again, aside);
    assert!(aside.exists() && again.exists());

    // With no cache file at all, a rebuild keeps nothing aside and still starts corrupt.
    drop(store);
    fs::remove_file(&path).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.rebuild_cache().unwrap(), None);
    assert_eq!(health(&store, P), CacheHealth::Corrupt);
}

#[test]
fn rebuild_is_busy_while_another_store_has_the_cache_open_and_moves_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Store::open(dir.path()).unwrap();
    holder.save(P, &demo(), CacheHealth::Good).unwrap();
    // `holder` has the cache open: a rebuild from elsewhere would pull the file from under it.
    let other = Store::open(dir.path()).unwrap();
    match other.rebuild_cache() {
        Err(e @ StoreError::Busy { .. }) => {
            assert_eq!(e.hresult(), Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS)
        }
        other => panic!("{other:?}"),
    }
    // The refused rebuild changed nothing.
    assert_eq!(snapshots(&holder, P), demo());
    drop(holder);

    // A writer that died without closing (as after SIGKILL) leaves its log behind.
    let path = dir.path().join("cache.sqlite");
    let dead = rusqlite::Connection::open(&path).unwrap();
    dead.execute_batch("INSERT INTO meta (key, value) VALUES ('left-in-the-log', 'yes');")
        .unwrap();
    std::mem::forget(dead);
    let wal = dir.path().join("cache.sqlite-wal");
    let wal_bytes = fs::read(&wal).unwrap();
    assert!(!wal_bytes.is_empty());

    let aside = other.rebuild_cache().unwrap().unwrap();
    assert_eq!(
        fs::read(format!("{}-wal", aside.display())).unwrap(),
        wal_bytes
    );
    assert_eq!(
        load_all(&other, P),
        ProviderCache {
            health: CacheHealth::Corrupt,
            subsystems: Vec::new()
        }
    );
    // The copy kept aside is still readable, its log included.
    let old = rusqlite::Connection::open(&aside).unwrap();
    let n: i64 = old
        .query_row(
            "SELECT (SELECT COUNT(*) FROM subsystems) + (SELECT COUNT(*) FROM meta WHERE key = 'left-in-the-log')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn remove_subsystem_drops_it_from_the_cache_of_its_provider_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    register(&store, P, &["sim-array-1"]);
    register(&store, "q", &["sim-array-1"]);
    store.save(P, &demo(), CacheHealth::Good).unwrap();
    store.save("q", &demo(), CacheHealth::Good).unwrap();
    let removed = store.remove_subsystem(P, "sim-array-1").unwrap();
    assert_eq!(removed, SubsystemConfig::new("sim-array-1", P));
    assert_eq!(snapshots(&store, P), vec![sim::demo_array_2()]);
    assert_eq!(snapshots(&store, "q"), demo());
    let config = store.config().unwrap();
    assert!(config.subsystem(P, "sim-array-1").is_none());
    assert!(config.subsystem("q", "sim-array-1").is_some());
    // The provider stays defined.
    assert!(config.provider(P).is_some());
    // Removing it again: not found, nothing changes.
    let e = store.remove_subsystem(P, "sim-array-1").unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound { what: "subsystem", name } if name == "sim-array-1"),
        "{e:?}"
    );
    assert_eq!(snapshots(&store, "q"), demo());
}

#[test]
fn remove_subsystem_works_with_a_corrupt_cache() {
    let (dir, path, _) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    register(&store, P, &["sim-array-1"]);
    fs::write(&path, b"definitely not a database, but long enough to have a header..............................................................").unwrap();
    assert_eq!(
        store.remove_subsystem(P, "sim-array-1").unwrap().name,
        "sim-array-1"
    );
    assert!(store.config().unwrap().subsystems.is_empty());
    // The damaged cache was not touched.
    expect_corrupt(&store, "still corrupt");
}

#[test]
fn save_enumeration_keeps_subsystems_registered_meanwhile_and_drops_unconfigured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    register(&store, P, &["sim-array-1", "sim-array-2"]);
    store.save(P, &demo(), CacheHealth::Good).unwrap();
    // Another provider with the same keys, one of them registered with it (not with P).
    register(&store, "q", &["sim-array-2"]);
    store.save("q", &demo(), CacheHealth::Rebuilt).unwrap();

    // A reenumeration starts: it has read the configuration (both arrays) and enumerated.
    let mut enumerated = sim::demo_array_1();
    enumerated.status = SubSystemStatus::Offline;
    // Meanwhile another process registers "late" (configuration first, then its cache rows),
    // and "sim-array-2" leaves P's configuration without its rows leaving the cache.
    let other = Store::open(dir.path()).unwrap();
    register(&other, P, &["late"]);
    let late = SubSystemSnapshot::new("late", SubSystemStatus::Online);
    other
        .save(P, std::slice::from_ref(&late), CacheHealth::Good)
        .unwrap();
    drop(other);
    store
        .update_config(|c| {
            c.subsystems
                .retain(|s| !(s.provider == P && s.name == "sim-array-2"));
            Ok(())
        })
        .unwrap();

    store
        .save_enumeration(P, &[enumerated.clone()], CacheHealth::Good)
        .unwrap();
    let state = load_all(&store, P);
    assert_eq!(
        state.snapshots(),
        vec![enumerated, late],
        "the enumerated one saved in place, the late one kept, the unconfigured one dropped \
         (although another provider registers that name)"
    );
    // The other provider is untouched: both its subsystems, registered or not, and its health.
    let q = load_all(&store, "q");
    assert_eq!(q.snapshots(), demo());
    assert_eq!(q.health, CacheHealth::Rebuilt);
    assert_eq!(store.providers_with("sim-array-2").unwrap(), ["q"]);
}

#[test]
fn queries_leave_the_log_files_for_the_next_process_and_writers_fold_them_in() {
    let (dir, path, content) = filled_cache();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    for _ in 0..2 {
        let store = Store::open(dir.path()).unwrap();
        let one = store.load(P, Selection::One("sim-array-1")).unwrap();
        assert_eq!(one.health, CacheHealth::Good);
        assert_eq!(one.snapshots(), vec![content[0].clone()]);
        assert_eq!(snapshots(&store, P), content);
        drop(store);
        // A reader neither checkpoints nor deletes: the next query process opens existing files.
        assert_eq!(fs::metadata(&wal).unwrap().len(), 0);
        assert!(shm.exists());
    }

    // A store that read first can still write (it reopens the cache read-write), and closing a
    // writer copies the log into the main file and removes it, as before.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(health(&store, P), CacheHealth::Good);
    store
        .save(P, &[sim::demo_array_2()], CacheHealth::Rebuilt)
        .unwrap();
    assert_eq!(health(&store, P), CacheHealth::Rebuilt);
    drop(store);
    assert!(!wal.exists(), "the writer's close checkpoints the log");

    // A log left by a writer that died is read (the reader then opens the cache read-write).
    let dead = rusqlite::Connection::open(&path).unwrap();
    dead.execute_batch("UPDATE providers SET health = 'corrupt' WHERE name = 'lab';")
        .unwrap();
    std::mem::forget(dead);
    assert!(fs::metadata(&wal).unwrap().len() > 0);
    let store = Store::open(dir.path()).unwrap();
    let one = store.load(P, Selection::One("sim-array-2")).unwrap();
    assert_eq!(one.health, CacheHealth::Corrupt);
    assert_eq!(one.snapshots(), vec![sim::demo_array_2()]);
    assert_eq!(
        store.load(P, Selection::One("nope")).unwrap(),
        ProviderCache {
            health: CacheHealth::Corrupt,
            subsystems: Vec::new()
        }
    );
}

#[test]
fn a_root_with_uri_characters_in_its_path_works() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("odd ?#% name=1&x");
    Store::open(&root)
        .unwrap()
        .save(P, &demo(), CacheHealth::Good)
        .unwrap();
    // The first query creates the -shm file, the next ones open it by a `file:` URI.
    for _ in 0..3 {
        let store = Store::open(&root).unwrap();
        assert_eq!(snapshots(&store, P), demo());
        assert!(root.join("cache.sqlite-shm").exists());
    }
    assert!(
        !dir.path().join("odd ").exists(),
        "no file outside the root"
    );
}

/// Saving skips the rows of a subsystem whose snapshot did not change (only its time and checksum
/// move): the skip must keep the cache exact, move the time, and never hide a real change.
#[test]
fn saving_an_unchanged_subsystem_moves_its_time_and_a_changed_one_is_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let snaps = demo();
    store.save(P, &snaps, CacheHealth::Good).expect("save");
    let before = load_all(&store, P);
    std::thread::sleep(Duration::from_millis(5));
    store
        .save(P, &snaps, CacheHealth::Good)
        .expect("save again");
    let after = load_all(&store, P);
    assert_eq!(after.snapshots(), before.snapshots());
    assert!(
        after.subsystems[0].1 > before.subsystems[0].1,
        "its refresh time moves"
    );
    store
        .verify_cache(true)
        .expect("checksums agree after the skip");
    // Every field change is seen, even one that keeps every count the same.
    let mut changed = snaps.clone();
    changed[0].portals[0].status = IscsiPortalStatus::Offline;
    changed[0].targets[0].friendly_name = "renamed".into();
    store
        .save(P, &changed[..1], CacheHealth::Good)
        .expect("save changed");
    assert_eq!(snapshots(&store, P), changed);
    store.verify_cache(true).expect("consistent");
}

#[test]
fn connected_initiators_round_trip_and_their_damage_is_seen() {
    let (dir, path, content) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    let db = &snapshots(&store, P)[0].targets[0];
    assert_eq!(
        db.connected_initiators,
        content[0].targets[0].connected_initiators
    );
    assert!(!db.connected_initiators.is_empty());
    drop(store);
    for (sql, expected) in [
        (
            "UPDATE target_initiators SET name = 'iqn.x:someone-else'",
            "checksum",
        ),
        ("UPDATE target_initiators SET position = 3", "position"),
        ("UPDATE target_initiators SET target = 77", "missing target"),
    ] {
        let copy = tempfile::tempdir().unwrap();
        fs::copy(&path, copy.path().join("cache.sqlite")).unwrap();
        let conn = rusqlite::Connection::open(copy.path().join("cache.sqlite")).unwrap();
        conn.execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql};"))
            .unwrap();
        drop(conn);
        let store = Store::open(copy.path()).unwrap();
        let reason = expect_corrupt(&store, sql);
        assert!(reason.contains(expected), "{sql}: {reason}");
    }
}

#[test]
fn a_version_2_cache_is_upgraded_in_place_with_nothing_lost() {
    // A version 2 cache: the same rows, without the table of connected initiators.
    let dir = tempfile::tempdir().unwrap();
    let mut content = demo();
    for s in &mut content {
        for t in &mut s.targets {
            t.connected_initiators.clear();
        }
    }
    content.extend(scaled(3, 2));
    {
        let store = Store::open(dir.path()).unwrap();
        store.save(P, &content, CacheHealth::Good).unwrap();
    }
    let path = dir.path().join("cache.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE target_initiators;
         UPDATE meta SET value = '2' WHERE key = 'schema_version';
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    // Checksums written by version 2 hold: the rows load as they were.
    assert_eq!(snapshots(&store, P), content);
    store.verify_cache(true).unwrap();
    // And version 3 rows can be saved on top.
    let mut with = content.clone();
    with[0].targets[2].connected_initiators = vec!["iqn.2026-11.test:host".into()];
    store.save(P, &with[..1], CacheHealth::Good).unwrap();
    assert_eq!(snapshots(&store, P)[0], with[0]);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, vds_store::CACHE_SCHEMA_VERSION);
    assert_eq!(version, 3);
    assert!(!dir.path().join("cache.sqlite.v2").exists());
}

#[test]
fn a_stamp_holds_the_picture_saved_and_no_other() {
    let (dir, _, saved) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    let mut keys: Vec<String> = saved.iter().map(|s| s.key.clone()).collect();
    keys.push("not-cached".into());
    let stamps = store.stamps(P, &keys).unwrap();
    assert_eq!(stamps.len(), saved.len(), "no stamp for a key not cached");
    for s in &saved {
        assert!(stamps[&s.key].holds(s), "{}", s.key);
        let mut changed = s.clone();
        changed.friendly_name.push('x');
        assert!(!stamps[&s.key].holds(&changed), "{}", s.key);
    }
    assert!(!stamps[&saved[0].key].holds(&saved[1]));
    // The save that follows records the time alone, and the stamp moves with it.
    std::thread::sleep(Duration::from_millis(2));
    store.save(P, &saved, CacheHealth::Good).unwrap();
    let after = store.stamps(P, &keys).unwrap();
    assert_ne!(after[&saved[0].key], stamps[&saved[0].key]);
    assert!(after[&saved[0].key].holds(&saved[0]));
    assert_eq!(store.stamps("no-such-provider", &keys).unwrap().len(), 0);
}

#[test]
fn a_renewal_moves_the_time_of_an_unchanged_picture_and_nothing_else() {
    let (dir, _, saved) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    let keys: Vec<String> = saved.iter().map(|s| s.key.clone()).collect();
    let stamps = store.stamps(P, &keys).unwrap();
    let times = |store: &Store| -> Vec<SystemTime> {
        let c = store.load(P, Selection::All).unwrap();
        c.subsystems.iter().map(|(_, t)| *t).collect()
    };
    let before = times(&store);
    // A changed picture is no renewal: it has to be saved whole.
    let mut changed = saved[1].clone();
    changed.friendly_name.push_str(" (renamed)");
    assert_eq!(stamps[&changed.key].renew(&changed), None);
    assert_eq!(stamps[&saved[1].key].renew(&saved[0]), None);

    std::thread::sleep(Duration::from_millis(2));
    let renewal = stamps[&saved[0].key]
        .renew(&saved[0])
        .expect("the picture saved");
    assert_eq!(renewal.key(), saved[0].key);
    store
        .save_batch(P, &[], std::slice::from_ref(&renewal), CacheHealth::Good)
        .unwrap();
    // The rows load (the new checksum is the picture's at the new time) and are what they were;
    // only the renewed subsystem's time moved.
    assert_eq!(snapshots(&store, P), saved);
    store.verify_cache(true).unwrap();
    let after = times(&store);
    assert!(after[0] > before[0], "{:?} -> {:?}", before[0], after[0]);
    assert_eq!(after[1..], before[1..]);
    let now = store.stamps(P, &keys[..1]).unwrap();
    assert_ne!(now[&saved[0].key], stamps[&saved[0].key]);
    assert!(now[&saved[0].key].holds(&saved[0]));

    // A renewal taken before another process saved the subsystem leaves that save alone.
    let old = store.stamps(P, &keys[2..3]).unwrap()[&saved[2].key];
    let stale = old.renew(&saved[2]).expect("the picture saved");
    let mut newer = saved[2].clone();
    newer.friendly_name.push_str(" (renamed)");
    std::thread::sleep(Duration::from_millis(2));
    store
        .save(P, std::slice::from_ref(&newer), CacheHealth::Good)
        .unwrap();
    store
        .save_batch(P, &[], &[stale], CacheHealth::Good)
        .unwrap();
    assert_eq!(snapshots(&store, P)[2], newer);
    assert!(store.stamps(P, &keys[2..3]).unwrap()[&saved[2].key].holds(&newer));
    store.verify_cache(true).unwrap();
}
