//! A service that holds no pictures (`ServiceOptions::paged`, what vdsadm opens) refreshes a
//! provider a page of subsystems at a time. What it does must be what a refresh over the whole
//! picture does: the same report, the same notifications (to the report and to the sinks), the same
//! cache afterwards, the same recovery of a rebuilt cache and the same answer on a damaged one.
//! Checked against a real tgtd, with more subsystems than one round of pages holds.
//!
//! A paged refresh reads from the cache only the pictures it needs: those of subsystems whose
//! picture changed, or whose answer needs the previous picture. The second test checks that this
//! answers as the whole picture does, and what it means for a damaged row.

use std::path::Path;
use std::sync::{Arc, Mutex};

use vds_api::{NotificationDoc, OperationReport, PortalRow, SubsystemRow, TargetRow};
use vds_model::Hresult;
use vds_service::{NewSubsystem, Scope, Service, ServiceOptions, SubsystemChange, SubsystemSel};
use vds_testpeers::{Tgtd, TgtdConfig};

/// More subsystems than the pages a paged refresh works on at once (8 × 16), and not a multiple
/// of a page, so the last page is short.
const SUBSYSTEMS: usize = 150;

fn open(root: &std::path::Path, paged: bool) -> Service {
    Service::open(ServiceOptions {
        create: true,
        paged,
        ..ServiceOptions::new(root)
    })
    .expect("open the store")
}

/// The events of a report, in an order that does not depend on which subsystem finished first.
fn sorted(events: &[NotificationDoc]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = events
        .iter()
        .map(|e| (e.subsystem.clone(), e.id.clone(), e.event_name.clone()))
        .collect();
    v.sort();
    v
}

/// Refreshes everything through `service`, with a sink counting what it is told.
async fn refresh(service: &Service) -> (OperationReport, usize) {
    let told = Arc::new(Mutex::new(0usize));
    let cookie = {
        let told = told.clone();
        service.advise(move |_, batch| *told.lock().unwrap() += batch.len())
    };
    let report = service.refresh(Scope::All).await.expect("refresh");
    service.unadvise(cookie).expect("unadvise");
    let told = *told.lock().unwrap();
    (report, told)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_refresh_does_what_a_refresh_over_the_whole_picture_does() {
    let tgtd = Tgtd::start(TgtdConfig::single()).expect("start tgtd");
    let portal = tgtd.portals()[0].clone();
    for (tid, iqn) in [
        (1, "iqn.2026-12.org.vds.paged:a"),
        (2, "iqn.2026-12.org.vds.paged:b"),
    ] {
        tgtd.add_target(tid, iqn).expect("target");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let whole = open(&root, false);
    for i in 0..SUBSYSTEMS {
        whole
            .add_subsystem(
                None,
                NewSubsystem {
                    name: format!("array-{i:03}"),
                    portals: vec![portal.clone()],
                    ..NewSubsystem::default()
                },
                false,
            )
            .await
            .expect("register");
    }
    let first = whole.reenumerate(None).await.expect("reenumerate");
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert_eq!(first.subsystems.len(), SUBSYSTEMS);
    drop(whole);

    // A target arrives: the paged service sees it.
    tgtd.add_target(3, "iqn.2026-12.org.vds.paged:c")
        .expect("target");
    let paged = open(&root, true);
    let (by_pages, told_pages) = refresh(&paged).await;
    assert!(by_pages.failures.is_empty(), "{:?}", by_pages.failures);
    assert_eq!(by_pages.subsystems.len(), SUBSYSTEMS);
    assert!(
        by_pages
            .subsystems
            .iter()
            .all(|s| s.status == "ONLINE" && s.targets == 3),
        "{:?}",
        by_pages.subsystems
    );
    // Each subsystem: the target and its portal group arrive.
    assert_eq!(by_pages.notifications, 2 * SUBSYSTEMS);
    assert_eq!(
        told_pages, by_pages.notifications,
        "every event reaches the sinks once"
    );
    // What was saved is what another process reads.
    let reader = open(&root, false);
    let last = SubsystemSel::named(format!("array-{:03}", SUBSYSTEMS - 1));
    assert_eq!(reader.list_targets(&last).expect("targets").len(), 3);
    drop(reader);

    // The same arrival seen by a service over the whole picture answers the same.
    tgtd.delete_target(3).expect("delete the target");
    let whole = open(&root, false);
    let (gone, _) = refresh(&whole).await;
    assert_eq!(gone.notifications, 2 * SUBSYSTEMS, "{:?}", gone.failures);
    tgtd.add_target(3, "iqn.2026-12.org.vds.paged:c")
        .expect("target");
    let (by_whole, told_whole) = refresh(&whole).await;
    assert_eq!(
        by_whole.subsystems, by_pages.subsystems,
        "same rows, same order"
    );
    assert_eq!(sorted(&by_whole.events), sorted(&by_pages.events));
    assert_eq!(told_whole, told_pages);
    assert_eq!(by_whole.cache_health, by_pages.cache_health);
    drop(whole);

    // A damaged cache: both answer VDS_E_PROVIDER_CACHE_CORRUPT; reenumerate rebuilds it, and
    // a paged refresh completes the recovery.
    drop(paged);
    let cache = root.join("cache.sqlite");
    for extra in ["cache.sqlite-wal", "cache.sqlite-shm"] {
        let _ = std::fs::remove_file(root.join(extra));
    }
    std::fs::write(&cache, vec![0x5a; 8192]).expect("damage the cache");
    let paged = open(&root, true);
    let refused = paged.refresh(Scope::All).await.expect("refresh");
    assert!(
        refused
            .failures
            .iter()
            .any(|f| f.error.name == "VDS_E_PROVIDER_CACHE_CORRUPT"),
        "{refused:?}"
    );
    let rebuilt = paged.reenumerate(None).await.expect("reenumerate");
    assert!(rebuilt.corrupt_cache_kept_at.is_some(), "{rebuilt:?}");
    assert_eq!(rebuilt.cache_health, "REBUILT");
    let (recovered, _) = refresh(&paged).await;
    assert!(recovered.failures.is_empty(), "{:?}", recovered.failures);
    assert_eq!(recovered.cache_health, "GOOD");
    assert_eq!(recovered.subsystems.len(), SUBSYSTEMS);
    let reader = open(&root, false);
    assert_eq!(reader.list_targets(&last).expect("targets").len(), 3);
    drop((reader, paged));
    tgtd.stop().expect("stop tgtd");
}

/// Subsystems of the second test: three pages, the last one short.
const FLEET: usize = 40;

fn name(i: usize) -> String {
    format!("array-{i:03}")
}

/// Copies the store at `from` to `to` (files and the locks directory).
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read the store") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_store(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Everything another process reads of the cache at `root`: each subsystem with its portals and
/// targets.
fn picture(root: &Path) -> Vec<(SubsystemRow, Vec<PortalRow>, Vec<TargetRow>)> {
    let reader = open(root, false);
    reader
        .list_subsystems(None)
        .expect("list")
        .into_iter()
        .map(|row| {
            let sel = SubsystemSel::named(row.name.clone());
            let portals = reader.list_portals(&sel).expect("portals");
            let targets = reader.list_targets(&sel).expect("targets");
            (row, portals, targets)
        })
        .collect()
}

/// Changes the discovery portals of subsystem `i` through `service`, without discovering it.
async fn move_to(service: &Service, i: usize, portal: &str) {
    service
        .set_subsystem(
            &SubsystemSel::named(name(i)),
            SubsystemChange {
                portals: Some(vec![portal.to_string()]),
                ..SubsystemChange::default()
            },
            false,
        )
        .await
        .expect("change the registration");
}

/// Changes one row of subsystem `i`'s first target behind the cache's back.
fn damage_target_row(root: &Path, i: usize) {
    let db = rusqlite::Connection::open(root.join("cache.sqlite")).expect("open the cache");
    let changed = db
        .execute(
            "UPDATE targets SET friendly_name = 'damaged'
             WHERE position = 0 AND subsystem = (SELECT id FROM subsystems WHERE key = ?1)",
            [name(i)],
        )
        .expect("damage");
    assert_eq!(changed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_refresh_reads_only_what_changed_and_answers_as_the_whole_picture_does() {
    let ports = vds_testpeers::free_ports(3);
    let tgtd = Tgtd::start(TgtdConfig {
        portals: ports[..2]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect(),
    })
    .expect("start tgtd");
    let (first, second) = (tgtd.portals()[0].clone(), tgtd.portals()[1].clone());
    // Nothing listens there: a subsystem moved to it does not answer, and keeps its objects.
    let silent = format!("127.0.0.1:{}", ports[2]);
    for (tid, iqn) in [
        (1, "iqn.2026-12.org.vds.fresh:a"),
        (2, "iqn.2026-12.org.vds.fresh:b"),
    ] {
        tgtd.add_target(tid, iqn).expect("target");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (paged_root, whole_root) = (dir.path().join("paged"), dir.path().join("whole"));
    {
        let service = open(&paged_root, false);
        for i in 0..FLEET {
            service
                .add_subsystem(
                    None,
                    NewSubsystem {
                        name: name(i),
                        portals: vec![first.clone()],
                        ..NewSubsystem::default()
                    },
                    false,
                )
                .await
                .expect("register");
        }
        let found = service.reenumerate(None).await.expect("reenumerate");
        assert!(found.failures.is_empty(), "{:?}", found.failures);
    }
    copy_store(&paged_root, &whole_root);

    // Nothing changed: nothing to notify, and both answer the same.
    let (steady, told) = refresh(&open(&paged_root, true)).await;
    let (steady_whole, _) = refresh(&open(&whole_root, false)).await;
    assert!(steady.failures.is_empty(), "{:?}", steady.failures);
    assert_eq!((steady.notifications, told), (0, 0));
    assert_eq!(
        steady.subsystems, steady_whole.subsystems,
        "same rows, same order"
    );
    assert_eq!(steady.subsystems.len(), FLEET);
    assert_eq!(picture(&paged_root), picture(&whole_root));

    // One subsystem's picture changes (another discovery portal), and one stops answering: its
    // picture is made from the previous one. The rest of the fleet is unchanged.
    let (changed, silenced) = (3, 17);
    for root in [&paged_root, &whole_root] {
        let service = open(root, false);
        move_to(&service, changed, &second).await;
        move_to(&service, silenced, &silent).await;
    }
    let (by_pages, told_pages) = refresh(&open(&paged_root, true)).await;
    let (by_whole, told_whole) = refresh(&open(&whole_root, false)).await;
    assert!(by_pages.failures.is_empty(), "{:?}", by_pages.failures);
    assert_eq!(by_pages.subsystems, by_whole.subsystems);
    assert_eq!(sorted(&by_pages.events), sorted(&by_whole.events));
    assert_eq!(
        (told_pages, by_pages.cache_health.as_str()),
        (told_whole, "GOOD")
    );
    assert_eq!(told_pages, by_pages.notifications);
    let noted: std::collections::BTreeSet<Option<String>> = by_pages
        .events
        .iter()
        .map(|e| Some(e.subsystem.clone()))
        .collect();
    let now = picture(&paged_root);
    assert_eq!(
        noted,
        [now[changed].0.id.clone(), now[silenced].0.id.clone()].into(),
        "only the two that changed raise events"
    );
    let silenced_row = &by_pages.subsystems[silenced];
    assert_eq!(silenced_row.name, name(silenced));
    assert_eq!(silenced_row.status, "OFFLINE");
    assert_eq!(silenced_row.targets, 2, "its previous targets are kept");
    assert_eq!(now, picture(&whole_root));

    // A damaged row of a subsystem whose picture did not change: the refresh does not read that
    // picture, so it neither finds the damage nor hides it. The next read of the subsystem
    // answers VDS_E_PROVIDER_CACHE_CORRUPT, as it did before the refresh.
    let (quiet, moved) = (9, 21);
    damage_target_row(&paged_root, quiet);
    let (past, _) = refresh(&open(&paged_root, true)).await;
    assert!(past.failures.is_empty(), "{:?}", past.failures);
    assert_eq!(past.notifications, 0);
    assert_eq!(past.subsystems.len(), FLEET);
    let e = open(&paged_root, false)
        .list_targets(&SubsystemSel::named(name(quiet)))
        .expect_err("the damage is still found");
    assert_eq!(e.code(), Hresult::VDS_E_PROVIDER_CACHE_CORRUPT, "{e}");
    assert!(e.to_string().contains("checksum"), "says why: {e}");

    // A damaged row of a subsystem whose picture changed is read, and the refresh says so.
    damage_target_row(&paged_root, moved);
    move_to(&open(&paged_root, false), moved, &second).await;
    let (found, _) = refresh(&open(&paged_root, true)).await;
    assert!(
        found
            .failures
            .iter()
            .any(|f| f.error.name == "VDS_E_PROVIDER_CACHE_CORRUPT"),
        "{found:?}"
    );
    assert!(
        found.subsystems.iter().all(|s| s.name != name(moved)),
        "a picture that could not be read is not reported refreshed"
    );
    drop(dir);
    tgtd.stop().expect("stop tgtd");
}
