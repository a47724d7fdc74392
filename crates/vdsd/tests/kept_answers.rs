//! `GET …/portals` answers are kept as bytes per subsystem picture: each test asks, changes the
//! subsystem one way (a mutation through the API; a refresh or a reenumerate after the array
//! changed, on the simulator and on a real tgtd; providers added, removed and named alike; a
//! SIGHUP after the store changed under the daemon) and asks again, and the second answer must
//! show the change. A kept answer served after any of these would fail them.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{Value, json};
use vds_model::{IscsiPortalStatus, SubSystemSnapshot};
use vds_testpeers::{Tgtd, TgtdConfig, free_port};

const SUB: &str = "sim-array-1";

fn statuses(portals: &Value) -> Vec<String> {
    portals
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| p["status"].as_str().expect("a status").to_string())
        .collect()
}

fn ok(op: Value) -> Value {
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    op
}

/// The simulated array's state file of the store's one sim provider.
fn sim_state(store: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(store.join("state"))
        .expect("state directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "state"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

/// Changes the simulated array behind the daemon's back, as another process would: the next
/// refresh or reenumerate reads it.
fn edit_array(store: &Path, f: impl FnOnce(&mut Vec<SubSystemSnapshot>)) {
    let path = sim_state(store);
    let mut array: Vec<SubSystemSnapshot> =
        serde_json::from_slice(&std::fs::read(&path).expect("read state")).expect("parse state");
    f(&mut array);
    std::fs::write(&path, serde_json::to_vec(&array).expect("encode")).expect("write state");
}

fn set_first_portal(store: &Path, status: IscsiPortalStatus) {
    edit_array(store, |array| {
        let sub = array
            .iter_mut()
            .find(|s| s.key == SUB)
            .expect("the subsystem");
        sub.portals[0].status = status;
    });
}

#[test]
fn mutations_refreshes_and_reenumerates_are_seen_by_the_next_get() {
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), true, &[]);
    let d = Daemon::serving(store.path());
    let by_name = format!("/v1/subsystems/{SUB}/portals");
    let first = d.get_json(&by_name);
    assert_eq!(d.get_json(&by_name), first, "asked twice, the same answer");
    assert_eq!(statuses(&first)[0], "ONLINE", "{first}");
    let subsystems = d.get_json("/v1/subsystems");
    let sub = subsystems
        .as_array()
        .expect("rows")
        .iter()
        .find(|s| s["name"] == SUB)
        .and_then(|s| s["id"].as_str())
        .expect("the subsystem's id");
    let by_id = format!("/v1/subsystems/{sub}/portals");
    assert_eq!(d.get_json(&by_id), first);
    let portal = first[0]["id"].as_str().expect("portal id").to_string();

    // A mutation through the API.
    let status_of = format!("/v1/subsystems/{SUB}/portals/{portal}/status");
    ok(d.operation("PUT", &status_of, Some(json!({"status": "OFFLINE"}))));
    assert_eq!(statuses(&d.get_json(&by_name))[0], "OFFLINE");
    assert_eq!(statuses(&d.get_json(&by_id))[0], "OFFLINE");
    ok(d.operation("PUT", &status_of, Some(json!({"status": "ONLINE"}))));
    assert_eq!(d.get_json(&by_name), first);
    assert_eq!(d.get_json(&by_id), first);

    // The array changes: queries answer from the cache until a refresh of the subsystem reads it.
    set_first_portal(store.path(), IscsiPortalStatus::Offline);
    assert_eq!(d.get_json(&by_name), first);
    ok(d.operation("POST", &format!("/v1/subsystems/{SUB}/refresh"), None));
    assert_eq!(statuses(&d.get_json(&by_name))[0], "OFFLINE");
    // … or a refresh of everything.
    set_first_portal(store.path(), IscsiPortalStatus::Online);
    ok(d.operation("POST", "/v1/refresh", None));
    assert_eq!(d.get_json(&by_name), first);

    // A portal gone from the array.
    edit_array(store.path(), |array| {
        let sub = array
            .iter_mut()
            .find(|s| s.key == SUB)
            .expect("the subsystem");
        let gone = sub.portals.remove(0).address;
        for group in sub.targets.iter_mut().flat_map(|t| &mut t.portal_groups) {
            group.portals.retain(|p| *p != gone);
        }
    });
    ok(d.operation("POST", &format!("/v1/subsystems/{SUB}/refresh"), None));
    let after = d.get_json(&by_name);
    assert_ne!(after, first, "{after}");

    // The subsystem gone from the array: a reenumerate drops it, and the answer is an error.
    edit_array(store.path(), |array| array.retain(|s| s.key != SUB));
    ok(d.operation("POST", "/v1/reenumerate", None));
    for path in [&by_name, &by_id] {
        let a = d.get(path).expect("an answer");
        assert_eq!(
            a.status,
            404,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn providers_added_removed_and_named_alike_are_answered_afresh() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    let add = |name: &str, subsystems: u32, portals: u32| {
        ok(d.operation(
            "POST",
            "/v1/providers",
            Some(json!({"name": name, "kind": "sim",
                "settings": {"subsystems": subsystems, "portals": portals}})),
        ))
    };
    let count = |path: &str| d.get_json(path).as_array().expect("an array").len();
    let path = "/v1/subsystems/sim-scale-0/portals";
    add("lab2", 2, 3);
    assert_eq!(count(path), 3);
    assert_eq!(count(&format!("{path}?provider=lab2")), 3);

    // A second provider with a subsystem of the same name: the name alone no longer says which.
    add("lab3", 1, 2);
    let a = d.get(path).expect("an answer");
    assert_eq!(a.status, 409, "{}", String::from_utf8_lossy(&a.body));
    let doc: Value = a.json().expect("JSON");
    assert_eq!(doc["error"]["name"], "VDS_E_NAME_NOT_UNIQUE", "{doc}");
    assert_eq!(count(&format!("{path}?provider=lab3")), 2);
    assert_eq!(count(&format!("{path}?provider=lab2")), 3);

    // Removed, then added again with other portals: the new provider's answer.
    let a = d
        .request("DELETE", "/v1/providers/lab2", None)
        .expect("delete");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(count(path), 2, "lab3's, the only one left");
    let a = d.get(&format!("{path}?provider=lab2")).expect("an answer");
    assert_eq!(a.status, 404, "{}", String::from_utf8_lossy(&a.body));
    add("lab2", 2, 5);
    assert_eq!(count(&format!("{path}?provider=lab2")), 5);
    assert_eq!(count(&format!("{path}?provider=lab3")), 2);
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn a_reload_reads_what_changed_in_the_store() {
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), true, &[]);
    let d = Daemon::serving(store.path());
    let path = format!("/v1/subsystems/{SUB}/portals");
    let first = d.get_json(&path);
    assert_eq!(statuses(&first)[0], "ONLINE", "{first}");

    // Another process refreshes the store's cache while the daemon holds its picture (what an
    // administrator who edits by hand then sends SIGHUP for).
    set_first_portal(store.path(), IscsiPortalStatus::Offline);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let other = vds_service::Service::open(vds_service::ServiceOptions::new(store.path()))
            .expect("open the store");
        other
            .refresh(vds_service::Scope::Subsystem(
                vds_service::SubsystemSel::named(SUB),
            ))
            .await
            .expect("refresh");
    });
    assert_eq!(d.get_json(&path), first, "the daemon's picture, until told");
    common::signal(d.pid(), libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = d.get_json(&path);
        if statuses(&now)[0] == "OFFLINE" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload was not seen in 20 s: {now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn a_tgtd_portal_that_goes_away_is_seen_after_the_refresh() {
    let port = free_port();
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")],
    })
    .expect("tgtd");
    tgtd.add_target(1, "iqn.2026-12.test.vds:kept")
        .expect("target");
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), false, &[("tgt", tgtd.portals().to_vec())]);
    let d = Daemon::serving(store.path());
    let path = "/v1/subsystems/tgt/portals";
    let gone = tgtd.portals()[1].clone();
    let status_of = |answer: &Value| {
        answer
            .as_array()
            .expect("an array")
            .iter()
            .find(|p| format!("{}:{}", p["address"].as_str().unwrap_or(""), p["port"]) == gone)
            .map(|p| p["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("{gone} is not in {answer}"))
    };
    let first = d.get_json(path);
    assert_eq!(status_of(&first), "ONLINE", "{first}");
    assert_eq!(d.get_json(path), first);

    tgtd.delete_portal(&gone)
        .expect("tgtadm --op delete --mode portal");
    ok(d.operation("POST", "/v1/subsystems/tgt/refresh", None));
    assert_eq!(status_of(&d.get_json(path)), "OFFLINE");

    tgtd.add_portal(&gone)
        .expect("tgtadm --op new --mode portal");
    ok(d.operation("POST", "/v1/refresh", None));
    assert_eq!(d.get_json(path), first);
    assert_eq!(d.stop().code(), Some(0));
}
