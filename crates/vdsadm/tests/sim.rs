//! `--sim`: every list and detail command works on a machine with no array and no store, prints
//! the simulator's objects, and its `--json` shapes carry the documented keys.

mod common;

use common::{Adm, run_bare};
use serde_json::Value;

const DB: &str = "iqn.2026-11.org.vds.sim:array1.db";
const WEB: &str = "iqn.2026-11.org.vds.sim:array1.web";

fn sim(adm: &Adm, args: &[&str]) -> common::Out {
    let mut all = vec!["--sim"];
    all.extend_from_slice(args);
    let out = run_bare(&adm.store(), &all);
    assert!(!adm.store().exists(), "--sim must not create the store");
    out
}

fn keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing {k:?} in {v}");
    }
}

#[test]
fn list_subsystems_table_and_json() {
    let adm = Adm::new();
    let t = sim(&adm, &["list", "subsystems"]).ok();
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert!(lines[0].trim_start().starts_with("Subsystem ###"), "{t:?}");
    assert!(lines[1].trim_start().starts_with("-------------"), "{t:?}");
    assert!(lines[2].contains("Subsystem 0") && lines[2].contains("sim-array-1"));
    assert!(lines[3].contains("Subsystem 1") && lines[3].contains("sim-array-2"));

    let j = sim(&adm, &["--json", "list", "subsystems"]).ok().json();
    let rows = j.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    for r in rows {
        keys(
            r,
            &[
                "index",
                "name",
                "id",
                "friendly_name",
                "identification",
                "status",
                "health",
                "portals",
                "targets",
                "detail",
            ],
        );
    }
    assert_eq!(rows[0]["name"], "sim-array-1");
    assert_eq!(rows[0]["portals"], 5);
    assert_eq!(rows[0]["targets"], 3);
    assert_eq!(rows[0]["status"], "ONLINE");
}

#[test]
fn list_tportals_numbers_rows_in_query_portals_order() {
    let adm = Adm::new();
    let t = sim(&adm, &["list", "tportals", "--subsystem", "sim-array-1"]).ok();
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TPortal", "###", "Address", "Port", "Status"]
    );
    let expected = [
        ("192.0.2.10", "ONLINE"),
        ("192.0.2.11", "ONLINE"),
        ("2001:db8::10", "ONLINE"),
        ("fe80::10%2", "NOT_READY"),
        ("array1.example.net", "OFFLINE"),
    ];
    for (i, (addr, status)) in expected.iter().enumerate() {
        let cells: Vec<&str> = lines[2 + i].split_whitespace().collect();
        assert_eq!(
            cells,
            ["TPortal", &i.to_string(), addr, "3260", status],
            "{t:?}"
        );
    }

    let j = sim(
        &adm,
        &["--json", "list", "tportals", "--subsystem", "sim-array-1"],
    )
    .ok()
    .json();
    let rows = j.as_array().expect("array");
    assert_eq!(rows.len(), 5);
    let types = ["IPV4", "IPV4", "IPV6", "IPV6", "TEXT"];
    for (i, r) in rows.iter().enumerate() {
        keys(
            r,
            &["index", "id", "address", "port", "address_type", "status"],
        );
        assert_eq!(r["index"], i);
        assert_eq!(r["address"], expected[i].0);
        assert_eq!(r["status"], expected[i].1);
        assert_eq!(r["address_type"], types[i]);
        assert_eq!(r["port"], 3260);
        let id = r["id"].as_str().expect("id string");
        assert_eq!(id.len(), 36, "GUID {id}");
        assert_eq!(id.matches('-').count(), 4, "GUID {id}");
    }
}

#[test]
fn empty_enumeration_is_success() {
    let adm = Adm::new();
    let t = sim(&adm, &["list", "tportals", "--subsystem", "sim-array-2"]).ok();
    assert!(t.stdout.contains("no target portals"), "{t:?}");
    let j = sim(
        &adm,
        &["--json", "list", "targets", "--subsystem", "sim-array-2"],
    )
    .ok()
    .json();
    assert_eq!(j, serde_json::json!([]));
}

#[test]
fn list_targets_and_tpgroups() {
    let adm = Adm::new();
    let t = sim(&adm, &["list", "targets", "--subsystem", "sim-array-1"]).ok();
    assert!(
        t.stdout.contains("Target 0") && t.stdout.contains(DB),
        "{t:?}"
    );
    let j = sim(
        &adm,
        &["--json", "list", "targets", "--subsystem", "sim-array-1"],
    )
    .ok()
    .json();
    let rows = j.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    for r in rows {
        keys(
            r,
            &[
                "index",
                "id",
                "iscsi_name",
                "friendly_name",
                "chap_enabled",
                "portal_groups",
            ],
        );
    }
    assert_eq!(rows[0]["iscsi_name"], DB);
    assert_eq!(rows[0]["chap_enabled"], true);

    let t = sim(
        &adm,
        &[
            "list",
            "tpgroups",
            "--subsystem",
            "sim-array-1",
            "--target",
            DB,
        ],
    )
    .ok();
    assert!(
        t.stdout.contains("TPGroup 0") && t.stdout.contains("TPGroup 1"),
        "{t:?}"
    );
    assert!(t.stdout.contains("[2001:db8::10]:3260"), "{t:?}");
    let j = sim(
        &adm,
        &[
            "--json",
            "list",
            "tpgroups",
            "--subsystem",
            "sim-array-1",
            "--target",
            DB,
        ],
    )
    .ok()
    .json();
    let rows = j.as_array().expect("array");
    let tags: Vec<u64> = rows
        .iter()
        .map(|r| r["tag"].as_u64().expect("tag"))
        .collect();
    assert_eq!(tags, [1, 2]);
    for r in rows {
        keys(r, &["index", "id", "tag", "portals"]);
        for p in r["portals"].as_array().expect("portals") {
            keys(p, &["id", "address", "port", "address_type"]);
        }
    }
    assert_eq!(rows[0]["portals"][1]["address"], "2001:db8::10");
}

#[test]
fn detail_commands() {
    let adm = Adm::new();
    let t = sim(&adm, &["detail", "subsystem", "sim-array-1"]).ok();
    assert!(
        t.stdout.contains("SIM-0001") && t.stdout.contains("SUPPORTS_AUTH_CHAP"),
        "{t:?}"
    );
    let j = sim(&adm, &["--json", "detail", "subsystem", "sim-array-1"])
        .ok()
        .json();
    keys(
        &j,
        &[
            "name",
            "id",
            "status",
            "health",
            "flags",
            "stripe_size_flags",
            "config",
            "cache",
            "portals",
            "targets",
        ],
    );
    assert_eq!(j["config"], Value::Null);
    assert_eq!(j["cache"]["health"], "GOOD");

    let j = sim(
        &adm,
        &[
            "--json",
            "detail",
            "tportal",
            "--subsystem",
            "sim-array-1",
            "[fe80::10%2]:3260",
        ],
    )
    .ok()
    .json();
    keys(
        &j,
        &[
            "subsystem",
            "index",
            "id",
            "address",
            "port",
            "address_type",
            "status",
            "portal_groups",
        ],
    );
    assert_eq!(j["index"], 3);
    assert_eq!(j["status"], "NOT_READY");
    assert_eq!(j["portal_groups"][0]["target"], WEB);
    let t = sim(
        &adm,
        &[
            "detail",
            "tportal",
            "--subsystem",
            "sim-array-1",
            "192.0.2.10:3260",
        ],
    )
    .ok();
    assert!(
        t.stdout.contains("TPortal 0") && t.stdout.contains(DB),
        "{t:?}"
    );

    let j = sim(
        &adm,
        &[
            "--json",
            "detail",
            "target",
            "--subsystem",
            "sim-array-1",
            WEB,
        ],
    )
    .ok()
    .json();
    keys(
        &j,
        &[
            "subsystem",
            "index",
            "id",
            "iscsi_name",
            "friendly_name",
            "chap_enabled",
            "groups",
        ],
    );
    assert_eq!(j["friendly_name"], "web");
    assert_eq!(j["groups"][0]["portals"].as_array().map(Vec::len), Some(3));
}

#[test]
fn refresh_reenumerate_add_remove_discover_work_in_a_throwaway_store() {
    let adm = Adm::new();
    for op in ["refresh", "reenumerate"] {
        let j = sim(&adm, &["--json", op]).ok().json();
        keys(
            &j,
            &[
                "operation",
                "cache_health",
                "notifications",
                "corrupt_cache_kept_at",
                "subsystems",
                "events",
                "failures",
            ],
        );
        assert_eq!(j["operation"], op);
        assert_eq!(j["cache_health"], "GOOD");
        assert_eq!(j["subsystems"].as_array().map(Vec::len), Some(2));
        assert_eq!(j["failures"].as_array().map(Vec::len), Some(0));
    }
    // `subsystem add` registers a SendTargets array in the throwaway store, beside the simulator,
    // and contacts it: nothing listens on the port, so it is registered OFFLINE, with a warning.
    let port = vds_testpeers::free_port();
    let out = sim(
        &adm,
        &[
            "--json",
            "subsystem",
            "add",
            "lab",
            "--portal",
            &format!("[::1]:{port}"),
        ],
    )
    .ok();
    let j = out.json();
    assert_eq!(j["refreshed"], true);
    assert_eq!(j["portals"][0], format!("[::1]:{port}"));
    assert_eq!(j["subsystem"]["provider"], "vds-sendtargets");
    assert_eq!(j["subsystem"]["status"], "OFFLINE");
    assert!(out.stderr.contains("warning"), "{out:?}");
    // The simulator's subsystems are enumerated, not registered: they cannot be removed.
    sim(&adm, &["subsystem", "remove", "sim-array-2"]).fails(
        3,
        "VDS_E_OBJECT_NOT_FOUND",
        "0x80042405",
    );
    sim(&adm, &["subsystem", "remove", "nope"]).fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");

    let j = sim(&adm, &["--json", "discover", "192.0.2.11"]).ok().json();
    let targets = j.as_array().expect("array");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["name"], DB);
    for a in targets[0]["addresses"].as_array().expect("addresses") {
        keys(a, &["address", "port", "tag"]);
    }
    sim(&adm, &["discover", "127.0.0.1:9"]).fails(4, "HRESULT_FROM_WIN32(10061)", "0x8007274D");
}

#[test]
fn unknown_objects_are_not_found() {
    let adm = Adm::new();
    sim(&adm, &["list", "tportals", "--subsystem", "nope"]).fails(
        3,
        "VDS_E_OBJECT_NOT_FOUND",
        "0x80042405",
    );
    sim(&adm, &["--json", "list", "targets", "--subsystem", "nope"]).fails_json(
        3,
        "VDS_E_OBJECT_NOT_FOUND",
        "0x80042405",
    );
    sim(
        &adm,
        &[
            "list",
            "tpgroups",
            "--subsystem",
            "sim-array-1",
            "--target",
            "iqn.x:none",
        ],
    )
    .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
    sim(
        &adm,
        &[
            "detail",
            "tportal",
            "--subsystem",
            "sim-array-1",
            "192.0.2.99:3260",
        ],
    )
    .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
}
