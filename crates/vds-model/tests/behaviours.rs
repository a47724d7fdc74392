//! The VDS behaviours this crate owns (reference §14, items 1–14), each pinned on the simulator, and
//! each row of QueryPortals' return-value table.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vds_model::sim::{SimBackend, SimControl, SimOp};
use vds_model::{
    CacheHealth, Hresult, HwProvider, IscsiPortalStatus, Notification, NotificationEvent,
    NotificationTargetType, ObjectId, PortalSnapshot, SubSystem, SubSystemFlags, SubSystemStatus,
    VdsIpAddress,
};

const ARRAY1: &str = "sim-array-1";
const ARRAY2: &str = "sim-array-2";

/// Runs an operation of the model to completion on a runtime of its own (the model's operations
/// are asynchronous; these tests drive them from plain threads).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn demo() -> (HwProvider, SimControl) {
    let backend = SimBackend::demo();
    let control = backend.control();
    let provider = HwProvider::new(backend);
    provider.initialize().expect("initialize");
    block(provider.reenumerate()).expect("reenumerate");
    (provider, control)
}

fn array(provider: &HwProvider, key: &str) -> SubSystem {
    provider.sub_system_by_key(key).expect("subsystem")
}

fn addr(s: &str) -> VdsIpAddress {
    VdsIpAddress::from(s.parse::<std::net::SocketAddr>().expect("socket address"))
}

// ---- QueryPortals: each row of the return-value table -------------------------------------------

#[test]
fn query_portals_s_ok_with_every_portal_in_provider_order() {
    let (provider, _) = demo();
    let portals: Vec<_> = array(&provider, ARRAY1)
        .query_portals()
        .expect("S_OK")
        .into_iter()
        .collect();
    let addresses: Vec<String> = portals
        .iter()
        .map(|p| p.get_properties().expect("props").address.to_string())
        .collect();
    assert_eq!(
        addresses,
        [
            "192.0.2.10:3260",
            "192.0.2.11:3260",
            "[2001:db8::10]:3260",
            "[fe80::10%2]:3260",
            "array1.example.net:3260"
        ]
    );
}

#[test]
fn query_portals_s_ok_and_empty_when_the_subsystem_has_no_portals() {
    let (provider, _) = demo();
    let mut e = array(&provider, ARRAY2)
        .query_portals()
        .expect("empty is success");
    assert!(e.is_empty());
    assert_eq!(e.next(1), (vec![], Hresult::S_FALSE));
}

#[test]
fn query_portals_cache_corrupt_until_reenumerate_then_refresh() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let portal = ss.query_portals().expect("portals").next(1).0.remove(0);
    control.corrupt_cache();
    assert_eq!(
        block(provider.refresh()).map(|_| ()),
        Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT.into())
    );
    assert_eq!(provider.cache_health(), CacheHealth::Corrupt);
    // Every cached-path method answers the same code.
    let corrupt = Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT.into());
    assert_eq!(ss.query_portals().map(|_| ()), corrupt);
    assert_eq!(ss.query_targets().map(|_| ()), corrupt);
    assert_eq!(ss.get_properties().map(|_| ()), corrupt);
    assert_eq!(portal.get_properties().map(|_| ()), corrupt);
    assert_eq!(portal.query_associated_portal_groups().map(|_| ()), corrupt);
    assert_eq!(provider.query_sub_systems().map(|_| ()), corrupt);
    // Refresh alone does not clear it (and does not call the backend).
    let refreshes = control.calls(SimOp::Refresh);
    assert_eq!(
        block(provider.refresh()).map(|_| ()),
        Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT.into())
    );
    assert_eq!(control.calls(SimOp::Refresh), refreshes);
    // Reenumerate alone does not either.
    block(provider.reenumerate()).expect("reenumerate");
    assert_eq!(provider.cache_health(), CacheHealth::Rebuilt);
    assert_eq!(ss.query_portals().map(|_| ()), corrupt);
    // Reenumerate then refresh does.
    block(provider.refresh()).expect("refresh");
    assert_eq!(provider.cache_health(), CacheHealth::Good);
    assert_eq!(ss.query_portals().expect("recovered").len(), 5);
    // Ids survive the rebuild: the same real objects.
    assert!(portal.get_properties().is_ok());
}

#[test]
fn a_picture_stamp_holds_while_the_subsystem_is_unchanged_and_never_returns() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let other = array(&provider, ARRAY2);
    let first = ss.picture_stamp().expect("stamp");
    assert_eq!(first.subsystem(), ss.id());
    assert_ne!(other.picture_stamp().expect("stamp"), first);
    // The portals and their properties come from one picture, as QueryPortals and GetProperties
    // answer them.
    let (stamp, props) = ss.portal_properties().expect("portals");
    assert_eq!(stamp, first);
    let one_by_one: Vec<_> = ss
        .query_portals()
        .expect("portals")
        .into_iter()
        .map(|p| p.get_properties().expect("props"))
        .collect();
    assert_eq!(props, one_by_one);
    // A refresh that finds nothing new keeps the picture, and its stamp.
    block(provider.refresh()).expect("refresh");
    assert_eq!(ss.picture_stamp().expect("stamp"), first);
    // Every change is a new stamp, and none comes back, even when the subsystem does.
    let mut seen = vec![first];
    let portal = ss.query_portals().expect("portals").next(1).0.remove(0);
    for status in [IscsiPortalStatus::Offline, IscsiPortalStatus::Online] {
        block(portal.set_status(status)).expect("set status");
        let now = ss.picture_stamp().expect("stamp");
        assert!(!seen.contains(&now), "{now:?} in {seen:?}");
        seen.push(now);
    }
    assert_eq!(ss.portal_properties().expect("portals").1, props);
    let address = props[1].address.clone();
    control.remove_portal(ARRAY1, &address);
    block(provider.refresh()).expect("refresh");
    let now = ss.picture_stamp().expect("stamp");
    assert!(!seen.contains(&now));
    seen.push(now);
    // A stamp is asked with the errors of QueryPortals.
    control.set_subsystem_status(ARRAY1, SubSystemStatus::Failed);
    block(provider.refresh()).expect("refresh");
    assert_eq!(
        ss.picture_stamp().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_STATUS_FAILED.into())
    );
    assert_eq!(
        ss.portal_properties().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_STATUS_FAILED.into())
    );
    control.remove_subsystem(ARRAY1);
    block(provider.reenumerate()).expect("reenumerate");
    assert_eq!(
        ss.picture_stamp().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
}

#[test]
fn query_portals_object_deleted_when_the_subsystem_departed() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    control.remove_subsystem(ARRAY1);
    // Refresh finds no departures...
    block(provider.refresh()).expect("refresh");
    assert!(ss.query_portals().is_ok());
    // ...reenumerate does.
    let batch = block(provider.reenumerate()).expect("reenumerate");
    assert!(batch.contains(&Notification {
        object_type: NotificationTargetType::SUB_SYSTEM,
        event: NotificationEvent::SUB_SYSTEM_DEPART,
        id: ss.id(),
        subsystem: ss.id(),
    }));
    assert_eq!(
        ss.query_portals().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        ss.query_targets().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        ss.get_properties().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
}

#[test]
fn query_portals_object_status_failed_when_the_subsystem_failed() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    control.set_subsystem_status(ARRAY1, SubSystemStatus::Failed);
    let batch = block(provider.refresh()).expect("refresh").notifications;
    assert!(
        batch
            .iter()
            .any(|n| n.event == NotificationEvent::SUB_SYSTEM_MODIFY && n.id == ss.id())
    );
    assert_eq!(
        ss.query_portals().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_STATUS_FAILED.into())
    );
    assert_eq!(
        ss.query_targets().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_STATUS_FAILED.into())
    );
    assert_eq!(
        block(ss.create_target(Some("iqn.x:y"), "")).map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_STATUS_FAILED.into())
    );
    // The subsystem's own properties still answer, and say why.
    assert_eq!(
        ss.get_properties().expect("props").status,
        SubSystemStatus::Failed
    );
    control.set_subsystem_status(ARRAY1, SubSystemStatus::Online);
    block(provider.refresh()).expect("refresh");
    assert!(ss.query_portals().is_ok());
}

#[test]
fn query_portals_another_call_in_progress_while_reenumerating() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let hold = control.hold();
    let p2 = provider.clone();
    let worker = std::thread::spawn(move || block(p2.reenumerate()));
    assert!(
        hold.wait_entered(Duration::from_secs(10)),
        "reenumerate reached the backend"
    );
    assert_eq!(
        ss.query_portals().map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    assert_eq!(
        ss.query_targets().map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    assert_eq!(
        provider.query_sub_systems().map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    // Property reads still answer from the cache.
    assert!(ss.get_properties().is_ok());
    drop(hold);
    worker.join().expect("join").expect("reenumerate");
    assert_eq!(ss.query_portals().expect("after").len(), 5);
}

// ---- §14.1 empty is success -------------------------------------------------------------------

#[test]
fn every_query_returns_an_empty_enumerator_not_an_error() {
    let empty = HwProvider::new(SimBackend::with_subsystems(vec![]));
    empty.initialize().expect("init");
    block(empty.reenumerate()).expect("reenumerate");
    let mut subs = empty.query_sub_systems().expect("S_OK");
    assert_eq!(subs.next(1), (vec![], Hresult::S_FALSE));

    let (provider, control) = demo();
    assert!(
        array(&provider, ARRAY2)
            .query_targets()
            .expect("S_OK")
            .is_empty()
    );
    // A portal in no group.
    control.edit(|subs| {
        subs[0].portals.push(PortalSnapshot {
            address: addr("192.0.2.99:3260"),
            status: IscsiPortalStatus::Online,
        })
    });
    block(provider.refresh()).expect("refresh");
    let ss = array(&provider, ARRAY1);
    let lone = ss
        .portal_by_address(&addr("192.0.2.99:3260"))
        .expect("portal");
    assert!(
        lone.query_associated_portal_groups()
            .expect("S_OK")
            .is_empty()
    );
    // A group with no portals.
    let scratch = ss
        .target_by_name("iqn.2026-11.org.vds.sim:array1.scratch")
        .expect("target");
    let group = scratch
        .query_portal_groups()
        .expect("groups")
        .next(1)
        .0
        .remove(0);
    assert!(group.query_associated_portals().expect("S_OK").is_empty());
    // A target with no groups.
    let t = block(ss.create_target(Some("iqn.2026-11.test:bare"), "bare")).expect("create");
    assert!(t.query_portal_groups().expect("S_OK").is_empty());
}

// ---- §14.4 snapshots and departed objects -----------------------------------------------------

#[test]
fn enumerators_are_snapshots_and_departed_objects_answer_object_deleted() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let before = ss.query_portals().expect("portals");
    let gone = addr("192.0.2.11:3260");
    control.remove_portal(ARRAY1, &gone);
    let batch = block(provider.refresh()).expect("refresh").notifications;
    let gone_id = before.get(1).expect("second").id();
    assert!(batch.contains(&Notification {
        object_type: NotificationTargetType::PORTAL,
        event: NotificationEvent::PORTAL_DEPART,
        id: gone_id,
        subsystem: ss.id(),
    }));
    // The old enumerator still yields all five; the departed one answers OBJECT_DELETED.
    let old: Vec<_> = before.clone().into_iter().collect();
    assert_eq!(old.len(), 5);
    assert_eq!(
        old[1].get_properties().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        old[1].get_sub_system().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        old[1].query_associated_portal_groups().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        block(old[1].set_status(IscsiPortalStatus::Offline)),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        old[1].get_ipsec_security(&gone).map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert!(old[0].get_properties().is_ok());
    // A new query shows the change.
    assert_eq!(ss.query_portals().expect("portals").len(), 4);
    // A departed target and its groups.
    let t = ss
        .target_by_name("iqn.2026-11.org.vds.sim:array1.web")
        .expect("target");
    let g = t.query_portal_groups().expect("groups").next(1).0.remove(0);
    control.remove_target(ARRAY1, "iqn.2026-11.org.vds.sim:array1.web");
    block(provider.refresh()).expect("refresh");
    for r in [
        t.get_properties().map(|_| ()),
        t.query_portal_groups().map(|_| ()),
        block(t.delete()),
        block(t.set_friendly_name("x")),
    ] {
        assert_eq!(r, Err(Hresult::VDS_E_OBJECT_DELETED.into()));
    }
    for r in [
        g.get_properties().map(|_| ()),
        g.get_target().map(|_| ()),
        g.query_associated_portals().map(|_| ()),
        block(g.delete()),
    ] {
        assert_eq!(r, Err(Hresult::VDS_E_OBJECT_DELETED.into()));
    }
}

#[test]
fn ids_are_stable_across_refreshes_and_new_providers() {
    let (p1, _) = demo();
    let (p2, _) = demo();
    let ids = |p: &HwProvider| -> Vec<ObjectId> {
        array(p, ARRAY1)
            .query_portals()
            .expect("portals")
            .into_iter()
            .map(|x| x.id())
            .collect()
    };
    let first = ids(&p1);
    block(p1.refresh()).expect("refresh");
    assert_eq!(ids(&p1), first);
    assert_eq!(
        ids(&p2),
        first,
        "a second provider (a restarted process) derives the same ids"
    );
    // A cache saved and loaded elsewhere gives the same ids too.
    let (p3, err) = HwProvider::from_cache(SimBackend::demo(), p1.export(), CacheHealth::Good);
    assert!(err.is_none());
    assert_eq!(ids(&p3), first);
}

// ---- §14.6 concurrency gates ------------------------------------------------------------------

#[test]
fn a_second_mutation_or_refresh_fails_fast_with_another_call_in_progress() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let portal = ss
        .portal_by_address(&addr("192.0.2.10:3260"))
        .expect("portal");
    // Only ARRAY1's array stops answering.
    let hold = control.hold_subsystem(ARRAY1);
    let p = portal.clone();
    let first = std::thread::spawn(move || block(p.set_status(IscsiPortalStatus::Offline)));
    assert!(hold.wait_entered(Duration::from_secs(10)));
    let started = std::time::Instant::now();
    // Same subsystem: refused at once.
    assert_eq!(
        block(portal.set_status(IscsiPortalStatus::Online)),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    assert_eq!(
        block(ss.create_target(None, "x")).map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    assert_eq!(
        block(provider.refresh_subsystem(&ss)).map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    // A refresh of every subsystem refreshes the others and reports the busy one.
    let report = block(provider.refresh()).expect("refresh of the others");
    assert_eq!(report.refreshed, 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].1, ARRAY1);
    assert_eq!(
        report.failures[0].2,
        Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS
    );
    // Reenumerate is provider-wide: it cannot start.
    assert_eq!(
        block(provider.reenumerate()).map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    // The other subsystem's gate is free: a mutation there proceeds.
    let other = block(array(&provider, ARRAY2).create_target(None, "other")).expect("create");
    assert_eq!(
        other.get_properties().expect("props").friendly_name,
        "other"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusals do not wait"
    );
    // Queries still answer.
    assert_eq!(ss.query_portals().expect("query").len(), 5);
    drop(hold);
    first.join().expect("join").expect("first set_status");
    assert_eq!(
        portal.get_properties().expect("props").status,
        IscsiPortalStatus::Offline
    );

    // A refresh of ARRAY1 waiting on its array: a second one is refused, ARRAY2 refreshes.
    let hold = control.hold_subsystem(ARRAY1);
    let p = provider.clone();
    let s1 = ss.clone();
    let first = std::thread::spawn(move || block(p.refresh_subsystem(&s1)));
    assert!(hold.wait_entered(Duration::from_secs(10)));
    assert_eq!(
        block(provider.refresh_subsystem(&ss)).map(|_| ()),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    assert!(block(provider.refresh_subsystem(&array(&provider, ARRAY2))).is_ok());
    assert_eq!(
        block(portal.set_status(IscsiPortalStatus::Online)),
        Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())
    );
    // Reads during a refresh answer from the last committed state.
    assert_eq!(ss.query_portals().expect("query").len(), 5);
    drop(hold);
    first.join().expect("join").expect("refresh");
}

// ---- §14.7 initialization ----------------------------------------------------------------------

#[test]
fn before_initialize_every_method_answers_initialize_not_called() {
    let provider = HwProvider::new(SimBackend::demo());
    let e = Err(Hresult::VDS_E_INITIALIZE_NOT_CALLED.into());
    assert_eq!(provider.query_sub_systems().map(|_| ()), e);
    assert_eq!(block(provider.refresh()).map(|_| ()), e);
    assert_eq!(block(provider.reenumerate()).map(|_| ()), e);
    assert_eq!(provider.get_properties().map(|_| ()), e);
    provider.initialize().expect("init");
    let props = provider.get_properties().expect("props");
    assert_eq!(props.name, "vds-sim");
    assert_eq!(props.provider_type, vds_model::ProviderType::Hardware);
    assert_eq!(
        provider.get_provider_type(),
        Ok(vds_model::HwProviderType::Iscsi)
    );
}

#[test]
fn refresh_finds_no_new_subsystems_reenumerate_does() {
    let backend = SimBackend::with_subsystems(vec![vds_model::sim::demo_array_1()]);
    let control = backend.control();
    let provider = HwProvider::new(backend);
    provider.initialize().expect("init");
    block(provider.reenumerate()).expect("reenumerate");
    control.edit(|subs| subs.push(vds_model::sim::demo_array_2()));
    block(provider.refresh()).expect("refresh");
    assert_eq!(provider.query_sub_systems().expect("subs").len(), 1);
    let batch = block(provider.reenumerate()).expect("reenumerate");
    assert_eq!(provider.query_sub_systems().expect("subs").len(), 2);
    assert!(
        batch
            .iter()
            .any(|n| n.event == NotificationEvent::SUB_SYSTEM_ARRIVE)
    );
}

#[test]
fn a_cache_that_breaks_an_invariant_loads_as_corrupt() {
    let mut bad = vds_model::sim::demo_array_1();
    bad.targets[0].portal_groups[0]
        .portals
        .push(addr("203.0.113.1:3260"));
    let (provider, err) = HwProvider::from_cache(SimBackend::demo(), vec![bad], CacheHealth::Good);
    assert!(err.is_some_and(|e| e.to_string().contains("unknown portal")));
    assert_eq!(provider.cache_health(), CacheHealth::Corrupt);
    assert_eq!(
        provider.query_sub_systems().map(|_| ()),
        Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT.into())
    );
    block(provider.reenumerate()).expect("reenumerate");
    block(provider.refresh()).expect("refresh");
    assert_eq!(provider.query_sub_systems().expect("subs").len(), 2);
}

#[test]
fn backend_errors_pass_through_and_leave_the_cache_alone() {
    let (provider, control) = demo();
    let refused = Hresult::from_win32(10061);
    control.fail_next(SimOp::Refresh, refused);
    control.set_subsystem_status(ARRAY1, SubSystemStatus::Failed);
    let ss = array(&provider, ARRAY1);
    assert_eq!(
        block(provider.refresh_subsystem(&ss)).map(|_| ()),
        Err(refused.into())
    );
    // The error says which subsystem, and why.
    let e = block(provider.refresh_subsystem(&ss));
    assert!(e.is_ok(), "the failure was injected once: {e:?}");
    control.set_subsystem_status(ARRAY1, SubSystemStatus::Online);
    block(provider.refresh()).expect("refresh");
    control.fail_next(SimOp::Refresh, refused);
    control.set_subsystem_status(ARRAY1, SubSystemStatus::Failed);
    control.set_subsystem_status(ARRAY2, SubSystemStatus::Failed);
    // In a refresh of every subsystem, the one that failed is reported and keeps its picture; the
    // other is committed.
    let report = block(provider.refresh()).expect("refresh");
    assert_eq!(report.refreshed, 1);
    assert_eq!(report.failures.len(), 1);
    let (_, key, error) = &report.failures[0];
    assert_eq!(*error, refused);
    assert!(
        error.to_string().contains(&format!("subsystem {key:?}")),
        "{error}"
    );
    let failed_now = [ARRAY1, ARRAY2]
        .iter()
        .filter(|k| {
            array(&provider, k).get_properties().expect("props").status == SubSystemStatus::Failed
        })
        .count();
    assert_eq!(failed_now, 1, "only the refreshed subsystem changed");
    // Nothing was committed for the one that failed.
    assert_eq!(
        array(&provider, ARRAY1)
            .get_properties()
            .expect("props")
            .status,
        SubSystemStatus::Online
    );
    assert_eq!(provider.cache_health(), CacheHealth::Good);
}

// ---- §14.8 SetStatus --------------------------------------------------------------------------

#[test]
fn set_status_accepts_only_online_and_offline_and_notifies_modify() {
    let (provider, _) = demo();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let cookie = provider
        .advise(move |batch: &[Notification]| sink.lock().expect("lock").extend_from_slice(batch));
    let portal = array(&provider, ARRAY1)
        .portal_by_address(&addr("192.0.2.10:3260"))
        .expect("portal");
    for bad in [
        IscsiPortalStatus::Unknown,
        IscsiPortalStatus::NotReady,
        IscsiPortalStatus::Failed,
        IscsiPortalStatus::from_raw(3),
        IscsiPortalStatus::from_raw(-1),
    ] {
        assert_eq!(
            block(portal.set_status(bad)),
            Err(Hresult::VDS_E_NOT_SUPPORTED.into()),
            "{bad}"
        );
    }
    assert!(seen.lock().expect("lock").is_empty());
    block(portal.set_status(IscsiPortalStatus::Offline)).expect("offline");
    assert_eq!(
        portal.get_properties().expect("props").status,
        IscsiPortalStatus::Offline
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![Notification {
            object_type: NotificationTargetType::PORTAL,
            event: NotificationEvent::PORTAL_MODIFY,
            id: portal.id(),
            subsystem: array(&provider, ARRAY1).id(),
        }]
    );
    block(portal.set_status(IscsiPortalStatus::Online)).expect("online");
    assert_eq!(
        portal.get_properties().expect("props").status,
        IscsiPortalStatus::Online
    );
    provider.unadvise(cookie).expect("unadvise");
}

// ---- §14.9 IPsec ------------------------------------------------------------------------------

#[test]
fn ipsec_methods_are_never_supported() {
    let (provider, _) = demo();
    let ss = array(&provider, ARRAY1);
    let portal = ss.query_portals().expect("portals").next(1).0.remove(0);
    let a = addr("192.0.2.1:0");
    for key in [&b""[..], &b"secret"[..], &[0u8; 1024][..]] {
        assert_eq!(
            ss.set_ipsec_group_preshared_key(key),
            Err(Hresult::VDS_E_NOT_SUPPORTED.into())
        );
        assert_eq!(
            portal.set_ipsec_security(&a, u64::MAX, Some(key)),
            Err(Hresult::VDS_E_NOT_SUPPORTED.into())
        );
    }
    assert_eq!(
        portal.set_ipsec_tunnel_address(&a, &VdsIpAddress::Empty),
        Err(Hresult::VDS_E_NOT_SUPPORTED.into())
    );
    assert_eq!(
        portal.get_ipsec_security(&a),
        Err(Hresult::VDS_E_NOT_SUPPORTED.into())
    );
}

// ---- §14.11 portal groups -----------------------------------------------------------------------

#[test]
fn portal_group_rules() {
    let (provider, _) = demo();
    let ss = array(&provider, ARRAY1);
    let db = ss
        .target_by_name("iqn.2026-11.org.vds.sim:array1.db")
        .expect("db");
    let web = ss
        .target_by_name("iqn.2026-11.org.vds.sim:array1.web")
        .expect("web");
    let groups: Vec<_> = db
        .query_portal_groups()
        .expect("groups")
        .into_iter()
        .collect();
    let (g1, g2) = (&groups[0], &groups[1]);
    assert_eq!(g1.get_properties().expect("p").tag, 1);
    assert_eq!(g2.get_properties().expect("p").tag, 2);
    assert_eq!(g1.get_target().expect("target"), db);
    let a = ss.portal_by_address(&addr("192.0.2.10:3260")).expect("a");
    let b = ss.portal_by_address(&addr("192.0.2.11:3260")).expect("b");

    // Unknown id.
    assert_eq!(
        block(g1.add_portal(ObjectId::provider("nope"))),
        Err(Hresult::VDS_E_OBJECT_NOT_FOUND.into())
    );
    assert_eq!(
        block(g1.remove_portal(ObjectId::provider("nope"))),
        Err(Hresult::VDS_E_OBJECT_NOT_FOUND.into())
    );
    // A portal of another subsystem is unknown here too.
    assert_eq!(
        block(g1.remove_portal(b.id())),
        Err(Hresult::VDS_E_OBJECT_NOT_FOUND.into()),
        "b is not in g1"
    );
    // One group per target: b is in g2 of db, so it cannot join g1 of db...
    assert_eq!(
        block(g1.add_portal(b.id())),
        Err(Hresult::VDS_E_OBJECT_EXISTS.into())
    );
    // ...but a portal can be in groups of different targets (a is in db/1 and web/1).
    let a_groups: Vec<_> = a
        .query_associated_portal_groups()
        .expect("groups")
        .into_iter()
        .collect();
    assert_eq!(a_groups.len(), 2);
    let web_g = web
        .query_portal_groups()
        .expect("groups")
        .next(1)
        .0
        .remove(0);
    assert!(a_groups.contains(&web_g) && a_groups.contains(g1));
    // Adding a portal already in the group changes nothing.
    block(g1.add_portal(a.id())).expect("idempotent");
    // Deleting a non-empty group.
    assert_eq!(
        block(g2.delete()),
        Err(Hresult::VDS_E_ASSOCIATED_PORTALS_EXIST.into())
    );
    block(g2.remove_portal(b.id())).expect("remove");
    assert!(g2.query_associated_portals().expect("portals").is_empty());
    block(g1.add_portal(b.id())).expect("now b can join g1");
    block(g2.delete()).expect("delete empty group");
    assert_eq!(
        g2.get_properties().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    // Capacity: the simulator allows 4 groups per target; past that an existing one comes back.
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let (g, hr) = block(db.create_portal_group()).expect("create");
        outcomes.push((g.get_properties().expect("p").tag, hr));
    }
    assert_eq!(
        outcomes[..3].iter().map(|o| o.1).collect::<Vec<_>>(),
        [Hresult::S_OK; 3]
    );
    assert_eq!(outcomes[3], (1, Hresult::VDS_S_ALREADY_EXISTS));
    assert!(
        outcomes[3].1.is_ok(),
        "VDS_S_ALREADY_EXISTS is a success code"
    );
    // A target with LUNs cannot be deleted; one without goes with its groups.
    assert_eq!(
        block(db.delete()),
        Err(Hresult::VDS_E_ASSOCIATED_LUNS_EXIST.into())
    );
    let scratch = ss
        .target_by_name("iqn.2026-11.org.vds.sim:array1.scratch")
        .expect("scratch");
    let sg = scratch
        .query_portal_groups()
        .expect("groups")
        .next(1)
        .0
        .remove(0);
    block(scratch.delete()).expect("delete");
    assert_eq!(
        sg.get_properties().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        scratch.get_properties().map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
}

// ---- §14.12 CreateTarget ----------------------------------------------------------------------

#[test]
fn create_target_rules() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let other = array(&provider, ARRAY2);
    // A name in any subsystem of the provider is taken.
    assert_eq!(
        block(other.create_target(Some("iqn.2026-11.org.vds.sim:array1.db"), "dup")).map(|_| ()),
        Err(Hresult::VDS_E_NAME_NOT_UNIQUE.into())
    );
    // None and empty have the provider generate one.
    let t1 = block(ss.create_target(None, "gen")).expect("generated");
    let t2 = block(ss.create_target(Some(""), "gen2")).expect("generated");
    let (n1, n2) = (
        t1.get_properties().expect("p").iscsi_name,
        t2.get_properties().expect("p").iscsi_name,
    );
    assert!(n1.starts_with("iqn.") && n2.starts_with("iqn.") && n1 != n2);
    assert_eq!(t1.get_properties().expect("p").friendly_name, "gen");
    block(t1.set_friendly_name("")).expect("clear");
    assert_eq!(t1.get_properties().expect("p").friendly_name, "");
    assert_eq!(
        block(t1.set_friendly_name(&"x".repeat(256))),
        Err(Hresult::E_INVALIDARG.into())
    );
    // Failure returns no object: the backend's error passes through.
    control.fail_next(SimOp::Apply, Hresult::VDS_E_PROVIDER_FAILURE);
    assert_eq!(
        block(ss.create_target(Some("iqn.2026-11.test:fails"), "")).map(|_| ()),
        Err(Hresult::VDS_E_PROVIDER_FAILURE.into())
    );
    assert_eq!(
        ss.target_by_name("iqn.2026-11.test:fails").map(|_| ()),
        Err(Hresult::VDS_E_OBJECT_NOT_FOUND.into())
    );
    // SIMPLE_TARGET_CONFIG subsystems cannot create targets.
    control.edit(|subs| subs[1].flags = SubSystemFlags::SUPPORTS_SIMPLE_TARGET_CONFIG);
    block(provider.refresh()).expect("refresh");
    assert_eq!(
        block(other.create_target(Some("iqn.2026-11.test:simple"), "")).map(|_| ()),
        Err(Hresult::VDS_E_NOT_SUPPORTED.into())
    );
}

// ---- §14.13 notifications -----------------------------------------------------------------------

#[test]
fn notification_values_cookies_and_no_refresh_loop_from_a_sink() {
    assert_eq!(
        [
            NotificationEvent::PORTAL_ARRIVE,
            NotificationEvent::PORTAL_DEPART,
            NotificationEvent::PORTAL_MODIFY
        ]
        .map(|e| e.0),
        [123, 124, 125]
    );
    assert_eq!(
        [
            NotificationEvent::TARGET_ARRIVE,
            NotificationEvent::TARGET_DEPART,
            NotificationEvent::TARGET_MODIFY
        ]
        .map(|e| e.0),
        [126, 127, 128]
    );
    assert_eq!(
        [
            NotificationEvent::PORTAL_GROUP_ARRIVE,
            NotificationEvent::PORTAL_GROUP_DEPART,
            NotificationEvent::PORTAL_GROUP_MODIFY
        ]
        .map(|e| e.0),
        [129, 130, 131]
    );
    assert_eq!(
        [
            NotificationEvent::SUB_SYSTEM_ARRIVE,
            NotificationEvent::SUB_SYSTEM_DEPART,
            NotificationEvent::SUB_SYSTEM_MODIFY
        ]
        .map(|e| e.0),
        [101, 102, 151]
    );
    assert_eq!(NotificationTargetType::PORTAL.0, 36);

    let (provider, control) = demo();
    assert_eq!(
        provider.unadvise(9999),
        Err(Hresult::VDS_E_BAD_COOKIE.into())
    );
    // A sink that refreshes the subsystem it was told about from inside OnNotify is refused, so
    // there is no loop. (The refresh runs on a thread of its own, as a sink that wants to wait for
    // an asynchronous call must: the sink itself runs inside the operation that notified.)
    let inner = provider.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let (c, a) = (calls.clone(), answers.clone());
    let cookie = provider.advise(move |batch: &[Notification]| {
        c.fetch_add(1, Ordering::SeqCst);
        let sub = inner
            .sub_system_by_id(batch[0].subsystem)
            .expect("subsystem");
        let inner = inner.clone();
        let answer = std::thread::spawn(move || block(inner.refresh_subsystem(&sub)).map(|_| ()))
            .join()
            .expect("join");
        a.lock().expect("lock").push(answer);
    });
    let c1 = provider.advise(|_: &[Notification]| {});
    assert_ne!(cookie, c1);
    control.remove_portal(ARRAY1, &addr("192.0.2.11:3260"));
    block(provider.refresh()).expect("refresh");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one batch per refresh");
    assert_eq!(
        *answers.lock().expect("lock"),
        vec![Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.into())]
    );
    provider.unadvise(cookie).expect("unadvise");
    assert_eq!(
        provider.unadvise(cookie),
        Err(Hresult::VDS_E_BAD_COOKIE.into())
    );
    provider.unadvise(c1).expect("unadvise");
}

// ---- §14.14 ownership -------------------------------------------------------------------------

struct DropProbe(SimBackend, Arc<AtomicUsize>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl vds_model::ProviderBackend for DropProbe {
    fn info(&self) -> vds_model::ProviderInfo {
        self.0.info()
    }
    async fn reenumerate(
        &self,
        p: &[vds_model::SubSystemSnapshot],
    ) -> Result<Vec<vds_model::SubSystemSnapshot>, vds_model::Error> {
        self.0.reenumerate(p).await
    }
    async fn refresh(
        &self,
        p: &vds_model::SubSystemSnapshot,
    ) -> Result<vds_model::SubSystemSnapshot, vds_model::Error> {
        self.0.refresh(p).await
    }
}

#[test]
fn handles_and_enumerators_release_everything_when_dropped() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let provider = HwProvider::new(DropProbe(SimBackend::demo(), dropped.clone()));
    provider.initialize().expect("init");
    block(provider.reenumerate()).expect("reenumerate");
    let subs = provider.query_sub_systems().expect("subs");
    let portals = array(&provider, ARRAY1).query_portals().expect("portals");
    let cloned = portals.clone();
    let one = portals.get(0).expect("first");
    drop(provider);
    // Handles keep the provider alive (as COM references do)...
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    assert!(one.get_properties().is_ok());
    drop((subs, portals, cloned));
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    // ...and the last release frees it, exactly once.
    drop(one);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HwProvider>();
    assert_send_sync::<SubSystem>();
    assert_send_sync::<vds_model::Portal>();
    assert_send_sync::<vds_model::Target>();
    assert_send_sync::<vds_model::PortalGroup>();
    assert_send_sync::<vds_model::EnumVdsObject<vds_model::Portal>>();
}

// ---- IVdsIscsiTarget: GetConnectedInitiators, SetSharedSecret, RememberInitiatorSharedSecret ----

const DB: &str = "iqn.2026-11.org.vds.sim:array1.db";
const SCRATCH: &str = "iqn.2026-11.org.vds.sim:array1.scratch";

#[test]
fn connected_initiators_come_from_the_picture_and_block_a_delete() {
    let (provider, control) = demo();
    let ss = array(&provider, ARRAY1);
    let db = ss.target_by_name(DB).expect("db");
    assert_eq!(
        db.get_connected_initiators().expect("S_OK"),
        ["iqn.1991-05.com.microsoft:db-host"]
    );
    let scratch = ss.target_by_name(SCRATCH).expect("scratch");
    assert_eq!(
        scratch
            .get_connected_initiators()
            .expect("empty is success"),
        Vec::<String>::new()
    );
    // An initiator logs in to the target with no LUNs: it is never deleted from under it, even
    // when the picture does not show it yet.
    let who = "iqn.2026-11.test:host-a";
    control.edit(|subs| subs[0].targets[2].connected_initiators = vec![who.into()]);
    let e = block(scratch.delete()).expect_err("in use");
    assert_eq!(e, Hresult::VDS_E_DEVICE_IN_USE);
    block(provider.refresh()).expect("refresh");
    assert_eq!(scratch.get_connected_initiators().expect("S_OK"), [who]);
    let e = block(scratch.delete()).expect_err("in use");
    assert_eq!(e, Hresult::VDS_E_DEVICE_IN_USE);
    assert!(e.to_string().contains(who), "{e}");
    assert!(ss.target_by_name(SCRATCH).is_ok(), "still there");
    // LUNs are checked first (the db target has both).
    assert_eq!(
        block(db.delete()),
        Err(Hresult::VDS_E_ASSOCIATED_LUNS_EXIST.into())
    );
    // The array says whether it is in use, not the picture: once the initiator has logged out
    // the delete goes through, even before a refresh shows it.
    control.edit(|subs| subs[0].targets[2].connected_initiators.clear());
    assert_eq!(scratch.get_connected_initiators().expect("S_OK"), [who]);
    block(scratch.delete()).expect("deleted");
    assert_eq!(
        scratch.get_connected_initiators(),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
}

#[test]
fn a_session_change_is_no_property_change() {
    let (provider, control) = demo();
    let seen: Arc<Mutex<Vec<Notification>>> = Arc::default();
    let sink = seen.clone();
    provider.advise(move |b| sink.lock().unwrap().extend_from_slice(b));
    control.edit(|subs| subs[0].targets[2].connected_initiators = vec!["iqn.x:y".into()]);
    block(provider.refresh()).expect("refresh");
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    let t = array(&provider, ARRAY1).target_by_name(SCRATCH).expect("t");
    assert_eq!(t.get_connected_initiators().expect("S_OK"), ["iqn.x:y"]);
}

#[test]
fn shared_secret_rules() {
    let (provider, _control) = demo();
    let ss = array(&provider, ARRAY1);
    let t = ss.target_by_name(SCRATCH).expect("scratch");
    let secret = vds_secret::Secret::from("a-target-secret");
    assert!(!t.get_properties().expect("p").chap_enabled);
    block(t.set_shared_secret(Some(&secret), None)).expect("set");
    assert!(t.get_properties().expect("p").chap_enabled);
    // An empty secret clears it, as a missing one does.
    block(t.set_shared_secret(Some(&vds_secret::Secret::from("")), None)).expect("clear");
    assert!(!t.get_properties().expect("p").chap_enabled);
    block(t.set_shared_secret(Some(&secret), Some(""))).expect("empty initiator = default");
    assert!(t.get_properties().expect("p").chap_enabled);
    block(t.set_shared_secret(None, None)).expect("clear");
    assert!(!t.get_properties().expect("p").chap_enabled);
    // A backend that keeps one secret per target refuses initiator-specific ones, changing nothing.
    assert_eq!(
        block(t.set_shared_secret(Some(&secret), Some("iqn.2026-11.test:host-a"))),
        Err(Hresult::VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED.into())
    );
    assert!(!t.get_properties().expect("p").chap_enabled);
    // Mutual CHAP names the initiator.
    assert_eq!(
        block(t.remember_initiator_shared_secret("", Some(&secret))),
        Err(Hresult::E_INVALIDARG.into())
    );
    assert_eq!(
        block(t.set_shared_secret(Some(&secret), Some("iqn.x\u{1b}[31m"))),
        Err(Hresult::E_INVALIDARG.into())
    );
    block(t.remember_initiator_shared_secret("iqn.2026-11.test:host-a", Some(&secret)))
        .expect("remembered");
    block(t.remember_initiator_shared_secret("iqn.2026-11.test:host-a", None)).expect("forgotten");
    // A departed target answers OBJECT_DELETED.
    block(t.delete()).expect("deleted");
    assert_eq!(
        block(t.set_shared_secret(Some(&secret), None)),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
    assert_eq!(
        block(t.remember_initiator_shared_secret("iqn.x:y", Some(&secret))),
        Err(Hresult::VDS_E_OBJECT_DELETED.into())
    );
}

/// A backend whose changes fail after the array changed: the portal it was asked to bring online
/// could not be, and is now `FAILED`.
struct FailsAfterChange(SimBackend);

#[async_trait::async_trait]
impl vds_model::ProviderBackend for FailsAfterChange {
    fn info(&self) -> vds_model::ProviderInfo {
        self.0.info()
    }
    async fn reenumerate(
        &self,
        previous: &[vds_model::SubSystemSnapshot],
    ) -> Result<Vec<vds_model::SubSystemSnapshot>, vds_model::Error> {
        self.0.reenumerate(previous).await
    }
    async fn refresh(
        &self,
        previous: &vds_model::SubSystemSnapshot,
    ) -> Result<vds_model::SubSystemSnapshot, vds_model::Error> {
        self.0.refresh(previous).await
    }
    async fn apply(
        &self,
        subsystem: &vds_model::SubSystemSnapshot,
        _mutation: &vds_model::Mutation,
    ) -> Result<vds_model::Applied, vds_model::Error> {
        let mut after = subsystem.clone();
        after.portals[0].status = IscsiPortalStatus::Failed;
        Ok(vds_model::Applied::failed(
            after,
            vds_model::Error::new(Hresult::from_win32(10048)).because("address in use"),
        ))
    }
}

#[test]
fn a_failed_change_commits_what_the_array_looks_like_and_answers_the_failure() {
    let provider = HwProvider::new(FailsAfterChange(SimBackend::demo()));
    provider.initialize().expect("init");
    block(provider.reenumerate()).expect("reenumerate");
    let seen: Arc<Mutex<Vec<Notification>>> = Arc::default();
    let sink = seen.clone();
    provider.advise(move |b| sink.lock().unwrap().extend_from_slice(b));
    let ss = array(&provider, ARRAY1);
    let portal = ss
        .portal_by_address(&addr("192.0.2.10:3260"))
        .expect("portal");
    let e = block(portal.set_status(IscsiPortalStatus::Online)).expect_err("failed");
    assert_eq!(e, Hresult::from_win32(10048));
    assert!(e.to_string().contains("address in use"), "{e}");
    assert_eq!(
        portal.get_properties().expect("props").status,
        IscsiPortalStatus::Failed
    );
    let events: Vec<_> = seen.lock().unwrap().iter().map(|n| n.event).collect();
    assert_eq!(events, [NotificationEvent::PORTAL_MODIFY]);
}

// ---- Reports ----------------------------------------------------------------------------------

/// What `summarize_each` says of each subsystem is what its exported snapshot says, in the same
/// order.
#[test]
fn summaries_agree_with_the_exported_snapshots() {
    let (provider, _) = demo();
    let mut summaries = Vec::new();
    provider.summarize_each(|s| {
        summaries.push((
            s.key.to_owned(),
            s.status,
            s.portals,
            s.targets,
            s.detail.map(str::to_owned),
        ))
    });
    let exported: Vec<_> = provider
        .export()
        .into_iter()
        .map(|s| (s.key, s.status, s.portals.len(), s.targets.len(), s.detail))
        .collect();
    assert_eq!(summaries.len(), 2);
    assert!(summaries.iter().any(|s| s.2 > 0 && s.3 > 0));
    assert_eq!(summaries, exported);
}
