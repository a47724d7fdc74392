//! A service that holds no pictures (`ServiceOptions::paged`, what vdsadm opens) refreshes a
//! provider a page of subsystems at a time. What it does must be what a refresh over the whole
//! picture does: the same report, the same notifications (to the report and to the sinks), the same
//! cache afterwards, the same recovery of a rebuilt cache and the same answer on a damaged one.
//! Checked against a real tgtd, with more subsystems than one round of pages holds.

use std::sync::{Arc, Mutex};

use vds_api::{NotificationDoc, OperationReport};
use vds_service::{NewSubsystem, Scope, Service, ServiceOptions, SubsystemSel};
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
