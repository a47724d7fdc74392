//! `GET /v1/events` over the Unix socket with a real array: a tgtd portal deleted at runtime
//! (`tgtadm --op delete --mode portal`) reaches a connected client as PORTAL_MODIFY once the next
//! refresh runs, and a client that reconnects with `Last-Event-ID` gets the events it missed.

mod common;

use std::time::Duration;

use common::{Daemon, Events, SseEvent};
use serde_json::Value;
use vds_testpeers::{Tgtd, TgtdConfig, free_port};

/// VDS_NTT_PORTAL and VDS_NF_PORTAL_MODIFY.
const PORTAL: i64 = 36;
const PORTAL_MODIFY: i64 = 125;

fn is_modify_of(e: &SseEvent, portal: &str) -> bool {
    e.event == "notification" && e.data["id"] == portal && e.data["event"] == PORTAL_MODIFY
}

#[test]
fn a_tgtd_portal_that_goes_away_is_pushed_and_missed_events_are_replayed() {
    let port = free_port();
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")],
    })
    .expect("tgtd");
    tgtd.add_target(1, "iqn.2026-12.test.vds:events")
        .expect("target");
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), false, &[("tgt", tgtd.portals().to_vec())]);
    let d = Daemon::serving(store.path());
    let gone = tgtd.portals()[1].clone();
    let subsystem = d.get_json("/v1/subsystems/tgt")["id"]
        .as_str()
        .expect("subsystem id")
        .to_string();
    let portal_path = format!("/v1/subsystems/tgt/portals/{}", vds_client::segment(&gone));
    let portal = d.get_json(&portal_path);
    assert_eq!(portal["status"], "ONLINE", "{portal}");
    let portal_id = portal["id"].as_str().expect("portal id").to_string();

    // A client listens; the portal goes away on the array; the next refresh finds it gone.
    let mut events = Events::open(&d.socket, "/v1/events", None);
    tgtd.delete_portal(&gone)
        .expect("tgtadm --op delete --mode portal");
    let op = d.operation("POST", "/v1/subsystems/tgt/refresh", None);
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    let got = events.until(Duration::from_secs(60), |e| is_modify_of(e, &portal_id));
    let modify = got.last().cloned().expect("the event");
    assert_eq!(modify.data["object_type"], PORTAL, "{modify:?}");
    assert_eq!(modify.data["event_name"], "PORTAL_MODIFY", "{modify:?}");
    assert_eq!(modify.data["subsystem"], subsystem.as_str(), "{modify:?}");
    assert_eq!(modify.data["sequence"], modify.id, "{modify:?}");
    // As in VDS the notification carries ids only: the portal, read again, says what changed.
    let now = d.get_json(&portal_path);
    assert_eq!(now["status"], "OFFLINE", "{now}");
    drop(events);

    // While nobody listens the portal comes back and another refresh says so.
    tgtd.add_portal(&gone)
        .expect("tgtadm --op new --mode portal");
    let op = d.operation("POST", "/v1/subsystems/tgt/refresh", None);
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    assert_eq!(d.get_json(&portal_path)["status"], "ONLINE");

    // A client that reconnects with the last id it saw gets what it missed, in order, from the
    // next id on; the portal's return among them.
    let mut again = Events::open(&d.socket, "/v1/events", Some(modify.id));
    let replayed = again.until(Duration::from_secs(30), |e| is_modify_of(e, &portal_id));
    assert_eq!(replayed[0].id, modify.id + 1, "{replayed:?}");
    assert!(
        replayed.windows(2).all(|w| w[1].id > w[0].id),
        "{replayed:?}"
    );
    assert!(
        replayed.iter().all(|e| e.event == "notification"),
        "nothing was lost: {replayed:?}"
    );
    let back: &Value = &replayed.last().expect("the return").data;
    assert_eq!(back["subsystem"], subsystem.as_str(), "{back}");
    assert_eq!(
        d.stop().code(),
        Some(0),
        "the open stream does not hold vdsd up"
    );
}
