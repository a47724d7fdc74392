//! The cache against real files: round trips, partial saves, every kind of damage, and rebuild.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use vds_model::sim::{self, SimBackend};
use vds_model::{
    CacheHealth, Hresult, HwProvider, IscsiPortalStatus, SubSystemSnapshot, SubSystemStatus,
    VdsIpAddress,
};
use vds_store::{Store, StoreError, SubsystemConfig};

fn scaled(subsystems: usize, portals: usize) -> Vec<SubSystemSnapshot> {
    let provider = HwProvider::new(SimBackend::scaled(subsystems, portals));
    provider.initialize().unwrap();
    provider.reenumerate().unwrap();
    provider.export()
}

fn demo() -> Vec<SubSystemSnapshot> {
    vec![sim::demo_array_1(), sim::demo_array_2()]
}

/// A cache with the demo arrays and 300 × 16 more, closed (so everything is in the main file).
fn filled_cache() -> (tempfile::TempDir, PathBuf, Vec<SubSystemSnapshot>) {
    let dir = tempfile::tempdir().unwrap();
    let mut content = demo();
    content.extend(scaled(300, 16));
    {
        let store = Store::open(dir.path()).unwrap();
        store.save_cache(&content, CacheHealth::Good).unwrap();
        assert_eq!(store.load_cache().unwrap().subsystems, content);
    }
    let path = dir.path().join("cache.sqlite");
    assert!(
        !Path::new(&format!("{}-wal", path.display())).exists(),
        "closing the store checkpoints the log"
    );
    (dir, path, content)
}

fn expect_corrupt(store: &Store, what: &str) -> String {
    match store.load_cache() {
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
        other => panic!("{what}: expected CacheCorrupt, got {other:?}"),
    }
}

#[test]
fn a_store_can_be_shared_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save_cache(&demo(), CacheHealth::Good).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(store.load_cache().unwrap().subsystems, demo());
                }
            });
        }
        s.spawn(|| {
            for _ in 0..20 {
                store
                    .save_subsystems(&[sim::demo_array_2()], CacheHealth::Good)
                    .unwrap();
            }
        });
    });
}

#[test]
fn missing_cache_is_created_empty_and_good() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("new")).unwrap();
    let state = store.load_cache().unwrap();
    assert!(state.subsystems.is_empty());
    assert_eq!(state.health, CacheHealth::Good);
    assert!(state.refreshed_at.is_empty());
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
    let before = std::time::SystemTime::now();
    {
        let store = Store::open(dir.path()).unwrap();
        store.save_cache(&demo(), CacheHealth::Rebuilt).unwrap();
    }
    // A new store (a new process, in effect) reads back exactly what was saved.
    let store = Store::open(dir.path()).unwrap();
    let state = store.load_cache().unwrap();
    assert_eq!(state.subsystems, demo());
    assert_eq!(state.health, CacheHealth::Rebuilt);
    let t = state.refreshed_at["sim-array-1"];
    assert!(t + std::time::Duration::from_secs(1) >= before, "{t:?}");
    // The IPv6 scope id and the text host survive.
    let portals = &state.subsystems[0].portals;
    assert!(
        portals
            .iter()
            .any(|p| matches!(p.address, VdsIpAddress::Ipv6 { scope_id: 2, .. }))
    );
    assert!(portals.iter().any(|p| matches!(
        &p.address,
        VdsIpAddress::Text { text, .. } if text == "array1.example.net"
    )));
    assert_eq!(store.cache_health().unwrap(), CacheHealth::Rebuilt);
    assert_eq!(
        store.load_subsystem("sim-array-1").unwrap(),
        Some(sim::demo_array_1())
    );
    assert_eq!(store.load_subsystem("nope").unwrap(), None);
    store.verify_cache(true).unwrap();

    // The model accepts it as it is.
    let (provider, problem) =
        HwProvider::from_cache(SimBackend::demo(), state.subsystems, state.health);
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
    store.save_cache(&[s.clone()], CacheHealth::Good).unwrap();
    assert_eq!(store.load_cache().unwrap().subsystems, vec![s.clone()]);
    assert_eq!(store.load_subsystem("odd ☃ key").unwrap(), Some(s));
}

#[test]
fn save_subsystems_replaces_only_those_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut all = scaled(3, 2);
    all.push(sim::demo_array_1());
    store.save_cache(&all, CacheHealth::Good).unwrap();
    let t0 = store.load_cache().unwrap().refreshed_at;

    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut changed = all[1].clone();
    changed.status = SubSystemStatus::Offline;
    changed.detail = Some("unreachable".into());
    changed.portals.pop();
    let new = SubSystemSnapshot::new("new-one", SubSystemStatus::Online);
    store
        .save_subsystems(&[changed.clone(), new.clone()], CacheHealth::Rebuilt)
        .unwrap();

    let state = store.load_cache().unwrap();
    let mut expected = all.clone();
    expected[1] = changed;
    expected.push(new);
    assert_eq!(state.subsystems, expected, "order kept, new one appended");
    assert_eq!(state.health, CacheHealth::Rebuilt);
    assert_eq!(state.refreshed_at["sim-scale-0"], t0["sim-scale-0"]);
    assert!(state.refreshed_at["sim-scale-1"] > t0["sim-scale-1"]);

    // save_cache replaces everything.
    store.save_cache(&demo(), CacheHealth::Good).unwrap();
    assert_eq!(store.load_cache().unwrap().subsystems, demo());
    store.set_cache_health(CacheHealth::Corrupt).unwrap();
    assert_eq!(store.cache_health().unwrap(), CacheHealth::Corrupt);
}

#[test]
fn snapshots_breaking_invariants_are_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save_cache(&demo(), CacheHealth::Good).unwrap();

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
        let e = store.save_cache(&case, CacheHealth::Good).unwrap_err();
        assert!(matches!(e, StoreError::InvalidSnapshot { .. }), "{e:?}");
        assert_eq!(e.hresult(), Hresult::E_INVALIDARG);
        let e = store.save_subsystems(&case, CacheHealth::Good).unwrap_err();
        assert!(matches!(e, StoreError::InvalidSnapshot { .. }), "{e:?}");
    }
    assert_eq!(store.load_cache().unwrap().subsystems, demo());
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
    assert!(matches!(
        store.load_subsystem("sim-array-1"),
        Err(StoreError::CacheCorrupt { .. })
    ));
    // The untouched subsystems still answer one by one.
    assert!(store.load_subsystem("sim-array-2").unwrap().is_some());
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
    // Every cache call says so, the one-subsystem path too.
    assert!(matches!(
        store.load_subsystem("sim-array-1"),
        Err(StoreError::CacheCorrupt { .. })
    ));
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
fn invariant_breaking_rows_are_corrupt() {
    // Rows written behind the store's back (foreign keys off) that break the invariants.
    let cases: [(&str, &str); 4] = [
        (
            "INSERT INTO portals VALUES (999, 0, 1, '192.0.2.1', 3260, 0, 0, 1)",
            "does not exist",
        ),
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
            "UPDATE meta SET value = 'maybe' WHERE key = 'health'",
            "health",
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
fn rebuild_keeps_the_damaged_file_aside_and_leaves_config_and_secrets() {
    let (dir, path, _) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    store
        .add_subsystem(SubsystemConfig {
            chap_secret: Some("s1".into()),
            ..SubsystemConfig::new("sim-array-1", "sendtargets")
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

    let state = store.load_cache().unwrap();
    assert!(state.subsystems.is_empty());
    assert_eq!(state.health, CacheHealth::Rebuilt);
    assert_eq!(fs::read(store.config_path()).unwrap(), config_before);
    assert_eq!(
        store.read_secret("s1").unwrap().expose(),
        b"0123456789abcdef"
    );

    // The model's rule: after reenumerate the cache is saved Rebuilt, after refresh Good.
    store.save_cache(&demo(), CacheHealth::Rebuilt).unwrap();
    store.save_cache(&demo(), CacheHealth::Good).unwrap();
    assert_eq!(store.load_cache().unwrap().health, CacheHealth::Good);

    // A second rebuild in the same second does not overwrite the first file kept aside.
    let again = store.rebuild_cache().unwrap().unwrap();
    assert_ne!(again, aside);
    assert!(aside.exists() && again.exists());
}

#[test]
fn rebuild_is_busy_while_another_store_has_the_cache_open_and_moves_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Store::open(dir.path()).unwrap();
    holder.save_cache(&demo(), CacheHealth::Good).unwrap();
    // `holder` has the cache open: a rebuild from elsewhere would pull the file from under it.
    let other = Store::open(dir.path()).unwrap();
    match other.rebuild_cache() {
        Err(e @ StoreError::Busy { .. }) => {
            assert_eq!(e.hresult(), Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS)
        }
        other => panic!("{other:?}"),
    }
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
    assert_eq!(other.load_cache().unwrap().health, CacheHealth::Rebuilt);
    assert!(other.load_cache().unwrap().subsystems.is_empty());
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
fn remove_subsystem_drops_it_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .add_subsystem(SubsystemConfig::new("sim-array-1", "sendtargets"))
        .unwrap();
    store.save_cache(&demo(), CacheHealth::Good).unwrap();
    let removed = store.remove_subsystem("sim-array-1").unwrap();
    assert_eq!(removed.name, "sim-array-1");
    assert_eq!(
        store.load_cache().unwrap().subsystems,
        vec![sim::demo_array_2()]
    );
    assert!(store.config().unwrap().subsystems.is_empty());
}

#[test]
fn remove_subsystem_works_with_a_corrupt_cache() {
    let (dir, path, _) = filled_cache();
    let store = Store::open(dir.path()).unwrap();
    store
        .add_subsystem(SubsystemConfig::new("sim-array-1", "sendtargets"))
        .unwrap();
    fs::write(&path, b"definitely not a database, but long enough to have a header..............................................................").unwrap();
    assert_eq!(
        store.remove_subsystem("sim-array-1").unwrap().name,
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
    for name in ["sim-array-1", "sim-array-2"] {
        store
            .add_subsystem(SubsystemConfig::new(name, "sendtargets"))
            .unwrap();
    }
    store.save_cache(&demo(), CacheHealth::Good).unwrap();

    // A reenumeration starts: it has read the configuration (both arrays) and enumerated.
    let mut enumerated = sim::demo_array_1();
    enumerated.status = SubSystemStatus::Offline;
    // Meanwhile another process registers "late" (configuration first, then its cache rows),
    // and "sim-array-2" leaves the configuration without its rows leaving the cache.
    let other = Store::open(dir.path()).unwrap();
    other
        .add_subsystem(SubsystemConfig::new("late", "sendtargets"))
        .unwrap();
    let late = SubSystemSnapshot::new("late", SubSystemStatus::Online);
    other
        .save_subsystems(std::slice::from_ref(&late), CacheHealth::Good)
        .unwrap();
    drop(other);
    store
        .update_config(|c| {
            c.subsystems.retain(|s| s.name != "sim-array-2");
            Ok(())
        })
        .unwrap();

    store
        .save_enumeration(&[enumerated.clone()], CacheHealth::Good)
        .unwrap();
    let state = store.load_cache().unwrap();
    assert_eq!(
        state.subsystems,
        vec![enumerated, late],
        "the enumerated one saved in place, the late one kept, the unconfigured one dropped"
    );
}

#[test]
fn queries_leave_the_log_files_for_the_next_process_and_writers_fold_them_in() {
    let (dir, path, content) = filled_cache();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    for _ in 0..2 {
        let store = Store::open(dir.path()).unwrap();
        let (health, found) = store.load_subsystem_and_health("sim-array-1").unwrap();
        assert_eq!(health, CacheHealth::Good);
        assert_eq!(found.map(|(s, _)| s), Some(content[0].clone()));
        assert_eq!(store.load_cache().unwrap().subsystems, content);
        drop(store);
        // A reader neither checkpoints nor deletes: the next query process opens existing files.
        assert_eq!(fs::metadata(&wal).unwrap().len(), 0);
        assert!(shm.exists());
    }

    // A store that read first can still write (it reopens the cache read-write), and closing a
    // writer copies the log into the main file and removes it, as before.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.cache_health().unwrap(), CacheHealth::Good);
    store
        .save_subsystems(&[sim::demo_array_2()], CacheHealth::Rebuilt)
        .unwrap();
    assert_eq!(store.cache_health().unwrap(), CacheHealth::Rebuilt);
    drop(store);
    assert!(!wal.exists(), "the writer's close checkpoints the log");

    // A log left by a writer that died is read (the reader then opens the cache read-write).
    let dead = rusqlite::Connection::open(&path).unwrap();
    dead.execute_batch("UPDATE meta SET value = 'corrupt' WHERE key = 'health';")
        .unwrap();
    std::mem::forget(dead);
    assert!(fs::metadata(&wal).unwrap().len() > 0);
    let store = Store::open(dir.path()).unwrap();
    let (health, found) = store.load_subsystem_and_health("sim-array-2").unwrap();
    assert_eq!(health, CacheHealth::Corrupt);
    assert_eq!(found.map(|(s, _)| s), Some(sim::demo_array_2()));
    assert_eq!(
        store.load_subsystem_and_health("nope").unwrap(),
        (CacheHealth::Corrupt, None)
    );
}

#[test]
fn a_root_with_uri_characters_in_its_path_works() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("odd ?#% name=1&x");
    Store::open(&root)
        .unwrap()
        .save_cache(&demo(), CacheHealth::Good)
        .unwrap();
    // The first query creates the -shm file, the next ones open it by a `file:` URI.
    for _ in 0..3 {
        let store = Store::open(&root).unwrap();
        assert_eq!(store.load_cache().unwrap().subsystems, demo());
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
    store.save_cache(&snaps, CacheHealth::Good).expect("save");
    let before = store.load_cache().expect("load");
    std::thread::sleep(std::time::Duration::from_millis(5));
    store
        .save_subsystems(&snaps, CacheHealth::Good)
        .expect("save again");
    let after = store.load_cache().expect("load");
    assert_eq!(after.subsystems, before.subsystems);
    let key = &snaps[0].key;
    assert!(
        after.refreshed_at[key] > before.refreshed_at[key],
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
        .save_subsystems(&changed[..1], CacheHealth::Good)
        .expect("save changed");
    assert_eq!(store.load_cache().expect("load").subsystems, changed);
    store.verify_cache(true).expect("consistent");
}
