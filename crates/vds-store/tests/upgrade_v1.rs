//! A store written by vds 0.1 (format 1) opens with nothing lost.
//!
//! The store is the fixture `crates/vdsadm/tests/fixtures/v1-store/`, made by the v1 release
//! against real tgtd and istgt (see the README next to it, which lists every id, status and the
//! secret that the answers of that release show). It is copied to a temporary directory first:
//! opening it upgrades it in place.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use vds_model::sim::SimBackend;
use vds_model::{
    CacheHealth, Health, HwProvider, IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot,
    SubSystemFlags, SubSystemSnapshot, SubSystemStatus, TargetSnapshot, VdsIpAddress,
};
use vds_store::{
    CACHE_SCHEMA_VERSION, ProviderConfig, Selection, Store, SubsystemConfig, V1_PROVIDER_KIND,
    V1_PROVIDER_NAME,
};

const V1: &str = V1_PROVIDER_NAME;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vdsadm/tests/fixtures/v1-store")
}

/// Copies `from` into `to` as the release left it: directories 0700, `vds.toml` 0644 and every
/// other file 0600 (git keeps none of these modes; see the fixture's README).
fn copy_store(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_store(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            let mode = if entry.file_name() == "vds.toml" {
                0o644
            } else {
                0o600
            };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

fn v4(a: [u8; 4], port: u32) -> VdsIpAddress {
    VdsIpAddress::Ipv4 {
        addr: a.into(),
        port,
    }
}

fn v6_loopback(port: u32) -> VdsIpAddress {
    VdsIpAddress::Ipv6 {
        addr: std::net::Ipv6Addr::LOCALHOST,
        flow_info: 0,
        scope_id: 0,
        port,
    }
}

fn portal(address: &VdsIpAddress, status: IscsiPortalStatus) -> PortalSnapshot {
    PortalSnapshot {
        address: address.clone(),
        status,
    }
}

fn target(name: &str, groups: Vec<PortalGroupSnapshot>) -> TargetSnapshot {
    TargetSnapshot {
        iscsi_name: name.into(),
        friendly_name: String::new(),
        chap_enabled: false,
        lun_count: 0,
        portal_groups: groups,
        connected_initiators: Vec::new(),
    }
}

/// The three subsystems as the v1 answers describe them (`v1-answers/*.json`).
fn expected_snapshots() -> Vec<SubSystemSnapshot> {
    let flags = SubSystemFlags::SUPPORTS_AUTH_CHAP | SubSystemFlags::SUPPORTS_AUTH_MUTUAL_CHAP;
    let base = |key: &str, identification: &str, status, health| SubSystemSnapshot {
        identification: identification.into(),
        flags,
        health,
        ..SubSystemSnapshot::new(key, status)
    };

    let (lab4, lab6) = (v4([127, 0, 0, 1], 32101), v6_loopback(32101));
    let lab = SubSystemSnapshot {
        portals: vec![
            portal(&lab4, IscsiPortalStatus::Online),
            portal(&lab6, IscsiPortalStatus::Online),
        ],
        targets: ["tgt-a", "tgt-b"]
            .into_iter()
            .map(|t| {
                target(
                    &format!("iqn.2026-12.test.vds.v1:{t}"),
                    vec![PortalGroupSnapshot {
                        tag: 1,
                        portals: vec![lab4.clone(), lab6.clone()],
                    }],
                )
            })
            .collect(),
        ..base(
            "lab",
            "127.0.0.1:32101, [::1]:32101",
            SubSystemStatus::Online,
            Health::Healthy,
        )
    };

    let (i1, i2, i6) = (
        v4([127, 0, 0, 1], 32102),
        v4([127, 0, 0, 2], 32102),
        v6_loopback(32102),
    );
    let istgt = SubSystemSnapshot {
        portals: [&i1, &i2, &i6]
            .into_iter()
            .map(|a| portal(a, IscsiPortalStatus::Online))
            .collect(),
        targets: vec![target(
            "iqn.2026-12.test.vds.v1:istgt-d",
            vec![
                PortalGroupSnapshot {
                    tag: 1,
                    portals: vec![i1.clone()],
                },
                PortalGroupSnapshot {
                    tag: 2,
                    portals: vec![i2.clone(), i6.clone()],
                },
            ],
        )],
        ..base(
            "istgt-lab",
            "127.0.0.1:32102",
            SubSystemStatus::Online,
            Health::Healthy,
        )
    };

    let gone = SubSystemSnapshot {
        detail: Some("127.0.0.1:32199: cannot connect: Connection refused (os error 111)".into()),
        portals: vec![portal(
            &v4([127, 0, 0, 1], 32199),
            IscsiPortalStatus::Offline,
        )],
        ..base(
            "gone",
            "127.0.0.1:32199",
            SubSystemStatus::Offline,
            Health::Unknown,
        )
    };
    vec![lab, istgt, gone]
}

fn expected_subsystem_configs() -> Vec<SubsystemConfig> {
    vec![
        SubsystemConfig {
            portals: vec!["127.0.0.1:32101".into(), "[::1]:32101".into()],
            chap_user: Some("v1-disc".into()),
            chap_secret: Some("lab.chap".into()),
            ..SubsystemConfig::new("lab", V1)
        },
        SubsystemConfig {
            portals: vec!["127.0.0.1:32102".into()],
            ..SubsystemConfig::new("istgt-lab", V1)
        },
        SubsystemConfig {
            portals: vec!["127.0.0.1:32199".into()],
            ..SubsystemConfig::new("gone", V1)
        },
    ]
}

/// The ids the v1 release answered (fixture README), as the model derives them from the cache now.
fn check_ids(snapshots: Vec<SubSystemSnapshot>) {
    let (provider, problem) = HwProvider::from_cache(
        SimBackend::demo().with_name(V1),
        snapshots,
        CacheHealth::Good,
    );
    assert!(problem.is_none(), "{problem:?}");
    let id = |s: &str| s.to_string();
    let lab = provider.sub_system_by_key("lab").unwrap();
    assert_eq!(
        lab.id().to_string(),
        id("aa1c77c9-fc75-5997-8878-38a5f49bf0f6")
    );
    let portal_id = |s: &vds_model::SubSystem, a: &VdsIpAddress| {
        s.portal_by_address(a).unwrap().id().to_string()
    };
    assert_eq!(
        portal_id(&lab, &v4([127, 0, 0, 1], 32101)),
        "a94603e4-c464-5ed3-a30c-b43dcca52c8f"
    );
    assert_eq!(
        portal_id(&lab, &v6_loopback(32101)),
        "1b4a6939-f830-5183-925b-31307c821501"
    );
    let tgt_a = lab.target_by_name("iqn.2026-12.test.vds.v1:tgt-a").unwrap();
    assert_eq!(
        tgt_a.id().to_string(),
        "8501c262-02a6-5f21-bb59-eb94bcc2e6c8"
    );
    assert_eq!(
        tgt_a.portal_group_by_tag(1).unwrap().id().to_string(),
        "43ba6b42-e006-5c03-8dee-f32c3ed7d643"
    );
    assert_eq!(
        lab.target_by_name("iqn.2026-12.test.vds.v1:tgt-b")
            .unwrap()
            .id()
            .to_string(),
        "728bbb7e-2036-5709-bb49-f84ac92fcaad"
    );

    let istgt = provider.sub_system_by_key("istgt-lab").unwrap();
    assert_eq!(
        istgt.id().to_string(),
        "e80ee925-27bd-555f-b21d-2ce228c69274"
    );
    for (address, expected) in [
        (
            v4([127, 0, 0, 1], 32102),
            "02345fd5-8218-5444-ba27-640fd80bfb7f",
        ),
        (
            v4([127, 0, 0, 2], 32102),
            "02814c19-64f1-51e1-b092-f2a902e6d4eb",
        ),
        (v6_loopback(32102), "5677e508-0579-5bac-95ac-7adbafcae2fa"),
    ] {
        assert_eq!(portal_id(&istgt, &address), expected, "{address}");
    }
    let istgt_d = istgt
        .target_by_name("iqn.2026-12.test.vds.v1:istgt-d")
        .unwrap();
    assert_eq!(
        istgt_d.id().to_string(),
        "e4fe86ca-61b1-55c9-a420-8c37d8bab42d"
    );
    assert_eq!(
        istgt_d.portal_group_by_tag(1).unwrap().id().to_string(),
        "07f6e1f5-5537-5ba8-9ed8-de6d8d337726"
    );
    assert_eq!(
        istgt_d.portal_group_by_tag(2).unwrap().id().to_string(),
        "4314246a-cea7-575a-9ba6-eea5ad433a8a"
    );

    let gone = provider.sub_system_by_key("gone").unwrap();
    assert_eq!(
        gone.id().to_string(),
        "49da4b98-db8a-5ac1-ac8f-1765765ca80d"
    );
    assert_eq!(
        portal_id(&gone, &v4([127, 0, 0, 1], 32199)),
        "912348d4-ed9f-5f9c-bc6a-933ea2e2886b"
    );
}

/// `(user_version, application_id, sorted table names, every row of every table)` of an SQLite
/// file, read from a scratch copy so that the file itself is not touched.
fn describe(db: &Path) -> (i32, i32, Vec<String>, Vec<String>) {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("copy.sqlite");
    fs::copy(db, &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let app = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in &tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let n = stmt.column_count();
        let mut q = stmt.query([]).unwrap();
        while let Some(row) = q.next().unwrap() {
            let values: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows.sort();
    (version, app, tables, rows)
}

/// Inode and modification time: a file replaced or rewritten changes at least one of them.
fn identity(path: &Path) -> (u64, i64, i64) {
    let m = fs::metadata(path).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

#[test]
fn a_v1_store_opens_with_nothing_lost_and_is_upgraded_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    copy_store(&fixture(), &root);
    let original_toml = fs::read(root.join("vds.toml")).unwrap();
    let original_cache = fs::read(root.join("cache.sqlite")).unwrap();
    let (v1_version, v1_app, v1_tables, v1_rows) = describe(&root.join("cache.sqlite"));
    assert_eq!(v1_version, 1, "the fixture is a version 1 cache");
    assert!(!v1_tables.contains(&"providers".to_string()));

    let store = Store::open(&root).unwrap();

    // The configuration reads as provider vds-sendtargets holding the three subsystems, without
    // writing anything.
    let config = store.config().unwrap();
    assert_eq!(config.read_version, 1);
    assert_eq!(
        config.providers,
        [ProviderConfig::new(V1, V1_PROVIDER_KIND)]
    );
    assert_eq!(config.subsystems, expected_subsystem_configs());
    assert_eq!(
        config
            .subsystems_of(V1)
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["lab", "istgt-lab", "gone"]
    );
    assert_eq!(fs::read(root.join("vds.toml")).unwrap(), original_toml);
    assert!(!root.join("vds.toml.v1").exists());

    // The secret, byte for byte (no trailing newline).
    assert_eq!(
        store.read_secret("lab.chap").unwrap().expose(),
        b"v1-disc-secret-0123"
    );
    assert_eq!(store.secret_names().unwrap(), ["lab.chap"]);

    // The cache: the three subsystems of vds-sendtargets, exactly, with their v1 times.
    let cached = store.load(V1, Selection::All).unwrap();
    assert_eq!(cached.health, CacheHealth::Good);
    assert_eq!(cached.snapshots(), expected_snapshots());
    let saved_at = UNIX_EPOCH + Duration::from_millis(1_796_192_957_752);
    for (s, t) in &cached.subsystems {
        assert_eq!(*t, saved_at, "{}: the v1 refresh time survives", s.key);
    }
    let one = store.load(V1, Selection::One("istgt-lab")).unwrap();
    assert_eq!(one.snapshots(), [expected_snapshots()[1].clone()]);
    assert_eq!(store.providers_with("gone").unwrap(), [V1]);
    let (everything, default) = store.load_everything().unwrap();
    assert_eq!(everything, vec![(V1.to_string(), cached.clone())]);
    assert_eq!(default, CacheHealth::Good);
    // Another provider was not in version 1: it has nothing.
    assert!(
        store
            .load("other", Selection::All)
            .unwrap()
            .subsystems
            .is_empty()
    );
    store.verify_cache(true).unwrap();
    check_ids(cached.snapshots());

    // The upgrade kept the version 1 file aside as it was, and the cache is now version 2.
    let cache_v1 = root.join("cache.sqlite.v1");
    assert_eq!(
        fs::read(&cache_v1).unwrap(),
        original_cache,
        "cache.sqlite.v1 is a byte copy of the version 1 cache"
    );
    assert_eq!(
        describe(&cache_v1),
        (v1_version, v1_app, v1_tables.clone(), v1_rows.clone())
    );
    drop(store);
    let (version, app, tables, _) = describe(&root.join("cache.sqlite"));
    assert_eq!(version, CACHE_SCHEMA_VERSION);
    assert_eq!(app, v1_app);
    assert!(tables.contains(&"providers".to_string()), "{tables:?}");

    // The first configuration change writes version 2 and keeps the original aside.
    let store = Store::open(&root).unwrap();
    store
        .update_config(|c| {
            c.providers.push(ProviderConfig::new("sim1", "sim"));
            Ok(())
        })
        .unwrap();
    let toml_v1 = root.join("vds.toml.v1");
    assert_eq!(fs::read(&toml_v1).unwrap(), original_toml);
    assert_eq!(
        fs::metadata(&toml_v1).unwrap().permissions().mode() & 0o777,
        0o644,
        "the copy has the original's mode"
    );
    let text = fs::read_to_string(root.join("vds.toml")).unwrap();
    assert!(text.contains("version = 2"), "{text}");
    assert!(text.contains("[[provider]]"), "{text}");
    let config = store.config().unwrap();
    assert_eq!(config.read_version, 2);
    assert_eq!(
        config.providers,
        [
            ProviderConfig::new(V1, V1_PROVIDER_KIND),
            ProviderConfig::new("sim1", "sim")
        ]
    );
    assert_eq!(config.subsystems, expected_subsystem_configs());
    assert_eq!(
        fs::metadata(root.join("vds.toml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644,
        "vds.toml keeps its mode"
    );
    drop(store);

    // Opening again upgrades nothing twice: the copies kept aside are not rewritten, and the
    // content is the same.
    let kept = [
        (
            cache_v1.clone(),
            identity(&cache_v1),
            fs::read(&cache_v1).unwrap(),
        ),
        (
            toml_v1.clone(),
            identity(&toml_v1),
            fs::read(&toml_v1).unwrap(),
        ),
    ];
    let store = Store::open(&root).unwrap();
    let again = store.load(V1, Selection::All).unwrap();
    assert_eq!(again, cached);
    store
        .update_config(|c| {
            c.providers.retain(|p| p.name != "sim1");
            Ok(())
        })
        .unwrap();
    store
        .save(V1, &[expected_snapshots()[2].clone()], CacheHealth::Good)
        .unwrap();
    drop(store);
    for (path, before, bytes) in kept {
        assert_eq!(identity(&path), before, "{} was rewritten", path.display());
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
    assert_eq!(fs::read(&toml_v1).unwrap(), original_toml);
    assert_eq!(fs::read(&cache_v1).unwrap(), original_cache);
    let store = Store::open(&root).unwrap();
    assert_eq!(store.config().unwrap().providers.len(), 1);
    assert_eq!(
        store.load(V1, Selection::All).unwrap().snapshots(),
        expected_snapshots()
    );
    store.verify_cache(true).unwrap();
}

#[test]
fn a_v1_cache_is_upgraded_by_a_write_too_and_the_kept_copy_is_never_replaced() {
    // The first call may be a write (a refresh saving); and a cache.sqlite.v1 already there (from
    // an earlier, interrupted upgrade) is kept as it is.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    copy_store(&fixture(), &root);
    fs::write(root.join("cache.sqlite.v1"), b"kept from before").unwrap();
    let store = Store::open(&root).unwrap();
    let mut gone = expected_snapshots()[2].clone();
    gone.status = SubSystemStatus::Online;
    gone.detail = None;
    store.save(V1, &[gone.clone()], CacheHealth::Good).unwrap();
    let mut expected = expected_snapshots();
    expected[2] = gone;
    assert_eq!(
        store.load(V1, Selection::All).unwrap().snapshots(),
        expected
    );
    assert_eq!(
        fs::read(root.join("cache.sqlite.v1")).unwrap(),
        b"kept from before"
    );
    store.verify_cache(false).unwrap();
}
