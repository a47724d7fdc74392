//! The service layer through the built binary: providers as instances, the write half of the
//! interface on a simulator provider in a store (result codes, tables, JSON, notifications, VDS's
//! rules, persistence into the next process), `--provider` selection, per-subsystem gates against
//! an array that never answers, and the upgrade of a store written by vds 0.1.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Adm, Out, SilentArray};
use serde_json::Value;
use vds_testpeers::{Istgt, IstgtConfig, IstgtTarget, Tgtd, TgtdConfig, free_port, require};

const A1: &str = "sim-array-1";
const DB: &str = "iqn.2026-11.org.vds.sim:array1.db";
const WEB: &str = "iqn.2026-11.org.vds.sim:array1.web";
const SCRATCH: &str = "iqn.2026-11.org.vds.sim:array1.scratch";

fn with_sim(name: &str) -> Adm {
    let adm = Adm::new();
    let j = adm
        .run(&["--json", "provider", "add", name, "--kind", "sim"])
        .ok()
        .json();
    assert_eq!(j["action"], "added");
    assert_eq!(j["subsystems"].as_array().map(Vec::len), Some(2), "{j}");
    adm
}

fn portals(adm: &Adm, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json", "list", "tportals"];
    all.extend_from_slice(args);
    adm.run(&all).ok().json().as_array().expect("array").clone()
}

fn status_of(adm: &Adm, address: &str) -> String {
    portals(adm, &["--subsystem", A1])
        .iter()
        .find(|p| p["address"] == address)
        .map(|p| p["status"].as_str().expect("status").to_string())
        .expect("portal")
}

fn change(adm: &Adm, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    adm.run(&all).ok().json()
}

fn events(j: &Value) -> Vec<String> {
    j["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| n["event_name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn providers_are_listed_added_and_removed() {
    let adm = with_sim("lab");
    let rows = adm.run(&["--json", "list", "providers"]).ok().json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    let row = &rows[0];
    for k in [
        "index",
        "name",
        "id",
        "kind",
        "manages_arrays",
        "settings",
        "subsystems",
        "cache_health",
    ] {
        assert!(row.get(k).is_some(), "missing {k}: {row}");
    }
    assert_eq!(row["kind"], "sim");
    assert_eq!(row["subsystems"], 2);
    assert_eq!(row["manages_arrays"], true);
    let table = adm.run(&["list", "providers"]).ok();
    assert!(table.stdout.contains("Provider 0") && table.stdout.contains("lab"));
    // A second provider with the same name, an unknown kind, a setting the kind does not know.
    adm.run(&["provider", "add", "lab", "--kind", "sim"]).fails(
        1,
        "VDS_E_NAME_NOT_UNIQUE",
        "0x80042701",
    );
    let out =
        adm.run(&["provider", "add", "x", "--kind", "nope"])
            .fails(1, "E_INVALIDARG", "0x80070057");
    assert!(
        out.stderr.contains("sendtargets") && out.stderr.contains("sim"),
        "{out:?}"
    );
    adm.run(&[
        "provider",
        "add",
        "y",
        "--kind",
        "sim",
        "--concurrency",
        "3",
    ])
    .fails(1, "E_INVALIDARG", "0x80070057");
    // The simulator's array is kept in the store: a new process sees the same objects.
    assert_eq!(portals(&adm, &["--subsystem", A1]).len(), 5);
    let removed = change(&adm, &["provider", "remove", "lab"]);
    assert_eq!(removed["action"], "removed");
    assert_eq!(removed["subsystems"].as_array().map(Vec::len), Some(2));
    adm.run(&["list", "tportals", "--subsystem", A1]).fails(
        3,
        "VDS_E_OBJECT_NOT_FOUND",
        "0x80042405",
    );
    let rows = adm.run(&["--json", "list", "providers"]).ok().json();
    assert_eq!(rows.as_array().map(Vec::len), Some(0));
}

#[test]
fn portal_status_changes_are_made_reported_and_kept() {
    let adm = with_sim("lab");
    let addr = "192.0.2.10";
    assert_eq!(status_of(&adm, addr), "ONLINE");
    let j = change(
        &adm,
        &["offline", "tportal", "--subsystem", A1, "192.0.2.10:3260"],
    );
    assert_eq!(j["operation"], "IVdsIscsiPortal::SetStatus");
    assert_eq!(j["hresult"], "0x00000000");
    assert_eq!(j["name"], "S_OK");
    assert_eq!(j["provider"], "lab");
    assert_eq!(events(&j), ["PORTAL_MODIFY"]);
    assert_eq!(j["notifications"][0]["event"], 125);
    assert_eq!(j["notifications"][0]["object_type"], 36);
    let id = j["notifications"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    // The next process reads the change from the cache.
    assert_eq!(status_of(&adm, addr), "OFFLINE");
    assert!(
        portals(&adm, &["--subsystem", A1])
            .iter()
            .any(|p| p["id"] == id.as_str() && p["address"] == addr)
    );
    // And a refresh, which asks the simulated array, keeps it: the array changed.
    adm.run(&["refresh"]).ok();
    assert_eq!(status_of(&adm, addr), "OFFLINE");
    // The table form, with -v the notifications.
    let out = adm
        .run(&[
            "-v",
            "online",
            "tportal",
            "--subsystem",
            A1,
            "192.0.2.10:3260",
        ])
        .ok();
    assert!(
        out.stdout.contains("IVdsIscsiPortal::SetStatus") && out.stdout.contains("S_OK"),
        "{out:?}"
    );
    assert!(out.stdout.contains("PORTAL_MODIFY"), "{out:?}");
    assert_eq!(status_of(&adm, addr), "ONLINE");
    // An unknown portal.
    adm.run(&["online", "tportal", "--subsystem", A1, "192.0.2.99:3260"])
        .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
}

#[test]
fn targets_are_created_named_and_deleted_by_the_rules() {
    let adm = with_sim("lab");
    // A generated name.
    let j = change(
        &adm,
        &["create", "target", "--subsystem", A1, "--alias", "new"],
    );
    assert_eq!(j["operation"], "IVdsSubSystemIscsi::CreateTarget");
    assert_eq!(j["name"], "S_OK");
    assert_eq!(j["object"]["kind"], "target");
    let made = j["object"]["iscsi_name"]
        .as_str()
        .expect("name")
        .to_string();
    assert_eq!(events(&j), ["TARGET_ARRIVE"]);
    // A given name, and the same name again (in any subsystem of the provider).
    let j = change(
        &adm,
        &[
            "create",
            "target",
            "--subsystem",
            A1,
            "--iscsi-name",
            "iqn.2026-12.test.vds:made",
        ],
    );
    assert_eq!(j["object"]["iscsi_name"], "iqn.2026-12.test.vds:made");
    adm.run(&[
        "create",
        "target",
        "--subsystem",
        "sim-array-2",
        "--iscsi-name",
        "iqn.2026-12.test.vds:made",
    ])
    .fails(1, "VDS_E_NAME_NOT_UNIQUE", "0x80042701");
    // Alias set and cleared; the list shows it.
    let j = change(
        &adm,
        &["name", "target", "--subsystem", A1, &made, "renamed"],
    );
    assert_eq!(j["operation"], "IVdsIscsiTarget::SetFriendlyName");
    assert_eq!(events(&j), ["TARGET_MODIFY"]);
    let alias = |adm: &Adm| -> String {
        adm.run(&["--json", "list", "targets", "--subsystem", A1])
            .ok()
            .json()
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["iscsi_name"] == made.as_str())
            .map(|t| t["friendly_name"].as_str().expect("alias").to_string())
            .expect("made target")
    };
    assert_eq!(alias(&adm), "renamed");
    change(&adm, &["name", "target", "--subsystem", A1, &made]);
    assert_eq!(alias(&adm), "");
    // A target with LUNs cannot be deleted; one without can, and departs.
    let out = adm
        .run(&["delete", "target", "--subsystem", A1, WEB])
        .fails(1, "VDS_E_ASSOCIATED_LUNS_EXIST", "0x8004270B");
    assert!(out.stderr.contains("LUN"), "{out:?}");
    let j = change(&adm, &["delete", "target", "--subsystem", A1, &made]);
    assert_eq!(events(&j), ["TARGET_DEPART"]);
    adm.run(&["detail", "target", "--subsystem", A1, &made])
        .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
}

#[test]
fn portal_groups_follow_the_vds_rules() {
    let adm = with_sim("lab");
    // DB has groups 1 (192.0.2.10, [2001:db8::10]) and 2 (192.0.2.11): a portal joins at most one
    // group of a target.
    let out = adm
        .run(&[
            "add",
            "tportal",
            "--subsystem",
            A1,
            "--target",
            DB,
            "--tpgroup",
            "2",
            "192.0.2.10:3260",
        ])
        .fails(1, "VDS_E_OBJECT_EXISTS", "0x8004241D");
    assert!(out.stderr.contains("at most one group"), "{out:?}");
    // A non-empty group cannot be deleted.
    adm.run(&["delete", "tpgroup", "--subsystem", A1, "--target", DB, "2"])
        .fails(1, "VDS_E_ASSOCIATED_PORTALS_EXIST", "0x8004270C");
    // Remove its portal, then delete it.
    let j = change(
        &adm,
        &[
            "remove",
            "tportal",
            "--subsystem",
            A1,
            "--target",
            DB,
            "--tpgroup",
            "2",
            "192.0.2.11:3260",
        ],
    );
    assert_eq!(j["operation"], "IVdsIscsiPortalGroup::RemovePortal");
    assert_eq!(events(&j), ["PORTAL_GROUP_MODIFY"]);
    let j = change(
        &adm,
        &["delete", "tpgroup", "--subsystem", A1, "--target", DB, "2"],
    );
    assert_eq!(events(&j), ["PORTAL_GROUP_DEPART"]);
    // A new group gets the free tag; it takes a portal; a portal of no group of this target is
    // fine.
    let j = change(
        &adm,
        &["create", "tpgroup", "--subsystem", A1, "--target", DB],
    );
    assert_eq!(j["name"], "S_OK");
    assert_eq!(j["object"]["tag"], 2);
    let j = change(
        &adm,
        &[
            "add",
            "tportal",
            "--subsystem",
            A1,
            "--target",
            DB,
            "--tpgroup",
            "2",
            "192.0.2.11:3260",
        ],
    );
    assert_eq!(j["name"], "S_OK");
    // An unknown portal, an unknown group.
    adm.run(&[
        "add",
        "tportal",
        "--subsystem",
        A1,
        "--target",
        DB,
        "--tpgroup",
        "2",
        "192.0.2.99:3260",
    ])
    .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
    adm.run(&["delete", "tpgroup", "--subsystem", A1, "--target", DB, "9"])
        .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
    // At capacity (4 groups a simulated target), CreatePortalGroup answers the success code
    // VDS_S_ALREADY_EXISTS with an existing group: exit 0, the code in the output.
    for _ in 0..2 {
        change(
            &adm,
            &["create", "tpgroup", "--subsystem", A1, "--target", DB],
        );
    }
    let j = change(
        &adm,
        &["create", "tpgroup", "--subsystem", A1, "--target", DB],
    );
    assert_eq!(j["name"], "VDS_S_ALREADY_EXISTS");
    assert_eq!(j["hresult"], "0x00042714");
    assert_eq!(j["object"]["tag"], 1);
    assert!(events(&j).is_empty());
    let out = adm
        .run(&["create", "tpgroup", "--subsystem", A1, "--target", DB])
        .ok();
    assert!(out.stdout.contains("VDS_S_ALREADY_EXISTS"), "{out:?}");
    // Everything above is in the cache for the next process.
    let groups = adm
        .run(&[
            "--json",
            "list",
            "tpgroups",
            "--subsystem",
            A1,
            "--target",
            DB,
        ])
        .ok()
        .json();
    assert_eq!(groups.as_array().map(Vec::len), Some(4));
    assert_eq!(groups[1]["tag"], 2);
    assert_eq!(groups[1]["portals"][0]["address"], "192.0.2.11");
    // The empty scratch group can go.
    change(
        &adm,
        &[
            "delete",
            "tpgroup",
            "--subsystem",
            A1,
            "--target",
            SCRATCH,
            "1",
        ],
    );
}

#[test]
fn a_sendtargets_subsystem_cannot_be_changed_and_names_the_kinds_that_can() {
    let silent = SilentArray::start();
    let adm = Adm::new();
    adm.run(&[
        "subsystem",
        "add",
        "disc",
        "--portal",
        &silent.portal,
        "--no-refresh",
    ])
    .ok();
    let out = adm
        .run(&["offline", "tportal", "--subsystem", "disc", &silent.portal])
        .fails(1, "VDS_E_NOT_SUPPORTED", "0x80042400");
    assert!(
        out.stderr.contains("sendtargets") && out.stderr.contains("kinds that can: sim"),
        "{out:?}"
    );
    let j = adm
        .run(&["--json", "create", "target", "--subsystem", "disc"])
        .fails_json(1, "VDS_E_NOT_SUPPORTED", "0x80042400")
        .json();
    assert!(
        j["error"]["message"]
            .as_str()
            .expect("message")
            .contains("sim")
    );
}

#[test]
fn two_providers_with_one_subsystem_name_need_provider() {
    let adm = with_sim("one");
    adm.run(&["provider", "add", "two", "--kind", "sim"]).ok();
    let out = adm.run(&["list", "tportals", "--subsystem", A1]).fails(
        1,
        "VDS_E_NAME_NOT_UNIQUE",
        "0x80042701",
    );
    assert!(
        out.stderr.contains("\"one\"")
            && out.stderr.contains("\"two\"")
            && out.stderr.contains("--provider"),
        "{out:?}"
    );
    let one = portals(&adm, &["--provider", "one", "--subsystem", A1]);
    let two = portals(&adm, &["--provider", "two", "--subsystem", A1]);
    assert_eq!(one.len(), 5);
    assert_eq!(two.len(), 5);
    // Ids derive from the provider's name: the same array under two providers is two objects.
    assert_ne!(one[0]["id"], two[0]["id"]);
    // A change through one provider leaves the other.
    change(
        &adm,
        &[
            "--provider",
            "two",
            "offline",
            "tportal",
            "--subsystem",
            A1,
            "192.0.2.10:3260",
        ],
    );
    let s = |p: &[Value]| p[0]["status"].as_str().map(String::from);
    assert_eq!(
        s(&portals(&adm, &["--provider", "one", "--subsystem", A1])).as_deref(),
        Some("ONLINE")
    );
    assert_eq!(
        s(&portals(&adm, &["--provider", "two", "--subsystem", A1])).as_deref(),
        Some("OFFLINE")
    );
    let subs = adm.run(&["--json", "list", "subsystems"]).ok().json();
    assert_eq!(subs.as_array().map(Vec::len), Some(4));
    let only = adm
        .run(&["--json", "--provider", "two", "list", "subsystems"])
        .ok()
        .json();
    assert!(
        only.as_array()
            .expect("rows")
            .iter()
            .all(|r| r["provider"] == "two")
    );
}

/// Whether `f` finished within `limit` (generous: it proves nothing waited on the silent array,
/// whose refresh takes 5 s).
fn quick(limit: Duration, f: impl FnOnce() -> Out) -> Out {
    let start = Instant::now();
    let out = f();
    assert!(
        start.elapsed() < limit,
        "took {:?}: {out:?}",
        start.elapsed()
    );
    out
}

#[test]
fn a_silent_array_holds_up_nothing_but_itself() {
    if let Err(e) = require(&["tgtd", "tgtadm"]) {
        panic!("{e} (run scripts/install-deps.sh)");
    }
    let b_portal = format!("127.0.0.1:{}", free_port());
    let t = Tgtd::start(TgtdConfig {
        portals: vec![b_portal.clone()],
    })
    .expect("tgtd");
    t.add_target(1, "iqn.2026-12.test.vds:b").expect("target");
    let silent = SilentArray::start();
    let adm = with_sim("lab");
    adm.run(&["subsystem", "add", "b", "--portal", &b_portal])
        .ok();
    adm.run(&[
        "subsystem",
        "add",
        "a",
        "--portal",
        &silent.portal,
        "--no-refresh",
    ])
    .ok();
    adm.run(&["reenumerate"]);
    silent.forget_connections();

    let mut waiting = adm
        .command(&["refresh", "--subsystem", "a"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(
        silent.wait_connected(Duration::from_secs(10)),
        "the refresh of a never reached its array"
    );
    let limit = Duration::from_secs(3);
    // Another subsystem of the same provider refreshes at once.
    let j = quick(limit, || {
        adm.run(&["--json", "refresh", "--subsystem", "b"])
    })
    .ok()
    .json();
    assert_eq!(j["subsystems"][0]["status"], "ONLINE");
    // A change on a simulated subsystem goes through at once.
    quick(limit, || {
        adm.run(&["offline", "tportal", "--subsystem", A1, "192.0.2.10:3260"])
    })
    .ok();
    // Every query answers at once, a's included (from the cache).
    for args in [
        &["list", "subsystems"][..],
        &["list", "providers"],
        &["list", "tportals", "--subsystem", "a"],
        &["list", "tportals", "--subsystem", "b"],
        &["list", "targets", "--subsystem", A1],
        &["detail", "subsystem", "a"],
    ] {
        quick(limit, || adm.run(args)).ok();
    }
    // A second refresh of a fails fast.
    quick(limit, || adm.run(&["refresh", "--subsystem", "a"])).fails(
        7,
        "VDS_E_ANOTHER_CALL_IN_PROGRESS",
        "0x80042404",
    );
    let _ = waiting.wait().expect("wait");
    let rows = portals(&adm, &["--subsystem", "a"]);
    assert_eq!(rows[0]["status"], "OFFLINE", "{rows:?}");
    t.stop().expect("stop tgtd");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn answer(name: &str) -> Value {
    let text =
        std::fs::read_to_string(fixture(&format!("v1-answers/{name}.json"))).expect("answer");
    serde_json::from_str(&text).expect("json")
}

/// The ids (and only the ids, addresses and statuses) of a list answer.
fn ids(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_store_of_vds_0_1_opens_with_nothing_lost_and_refreshes_against_the_peers() {
    if let Err(e) = require(&["tgtd", "tgtadm", "istgt"]) {
        panic!("{e} (run scripts/install-deps.sh)");
    }
    let adm = Adm::new();
    let store = adm.store();
    copy_dir(&fixture("v1-store"), &store);
    for dir in [&store, &store.join("secrets"), &store.join("locks")] {
        chmod(dir, 0o700);
    }
    chmod(&store.join("secrets/lab.chap"), 0o600);
    let v1_config = std::fs::read(store.join("vds.toml")).expect("config");
    let v1_cache = std::fs::read(store.join("cache.sqlite")).expect("cache");

    // The same answers, the same ids, before anything is contacted.
    let lab = adm
        .run(&["--json", "list", "tportals", "--subsystem", "lab"])
        .ok()
        .json();
    assert_eq!(lab, answer("list-tportals-lab"));
    for (cmd, name) in [
        (
            &["--json", "list", "tportals", "--subsystem", "istgt-lab"][..],
            "list-tportals-istgt-lab",
        ),
        (
            &["--json", "list", "targets", "--subsystem", "lab"],
            "list-targets-lab",
        ),
        (
            &[
                "--json",
                "list",
                "tpgroups",
                "--subsystem",
                "istgt-lab",
                "--target",
                "iqn.2026-12.test.vds.v1:istgt-d",
            ],
            "list-tpgroups-istgt-lab",
        ),
        (
            &["--json", "list", "tportals", "--subsystem", "gone"],
            "list-tportals-gone",
        ),
    ] {
        assert_eq!(adm.run(cmd).ok().json(), answer(name), "{cmd:?}");
    }
    let subs = adm.run(&["--json", "list", "subsystems"]).ok().json();
    assert_eq!(ids(&subs), ids(&answer("list-subsystems")));
    assert!(
        subs.as_array()
            .expect("rows")
            .iter()
            .all(|r| r["provider"] == "vds-sendtargets")
    );
    let detail = adm
        .run(&["--json", "detail", "subsystem", "lab"])
        .ok()
        .json();
    let v1_detail = answer("detail-subsystem-lab");
    for k in ["id", "status", "flags", "config"] {
        assert_eq!(detail[k], v1_detail[k], "{k}");
    }
    assert_eq!(detail["config"]["chap"]["secret_set"], true);
    assert_eq!(
        detail["cache"]["refreshed_at"],
        v1_detail["cache"]["refreshed_at"]
    );
    let providers = adm.run(&["--json", "list", "providers"]).ok().json();
    assert_eq!(providers[0]["name"], "vds-sendtargets");
    assert_eq!(providers[0]["kind"], "sendtargets");
    // The old cache is kept aside, byte for byte; the configuration is kept aside when first
    // written.
    assert_eq!(
        std::fs::read(store.join("cache.sqlite.v1")).expect("kept cache"),
        v1_cache
    );

    // Against the same peers on the same ports, the migrated store refreshes.
    let t = Tgtd::start(TgtdConfig {
        portals: vec!["127.0.0.1:32101".into(), "[::1]:32101".into()],
    })
    .expect("tgtd on the fixture's ports");
    t.add_target(1, "iqn.2026-12.test.vds.v1:tgt-a")
        .expect("tgt-a");
    t.add_target(2, "iqn.2026-12.test.vds.v1:tgt-b")
        .expect("tgt-b");
    t.set_discovery_chap("v1-disc", "v1-disc-secret-0123")
        .expect("chap");
    let i = Istgt::start(IstgtConfig {
        portal_groups: [
            (1, vec!["127.0.0.1:32102".to_string()]),
            (
                2,
                vec!["127.0.0.2:32102".to_string(), "[::1]:32102".to_string()],
            ),
        ]
        .into_iter()
        .collect(),
        targets: vec![IstgtTarget {
            name: "iqn.2026-12.test.vds.v1:istgt-d".into(),
            portal_groups: vec![1, 2],
        }],
        unit_control_port: Some(32103),
        ..IstgtConfig::default()
    })
    .expect("istgt on the fixture's ports");
    let r = adm.run(&["--json", "refresh"]);
    // "gone" stays unreachable; the refresh records it and succeeds.
    assert_eq!(r.code, 0, "{r:?}");
    let r = r.json();
    let status = |name: &str| {
        r["subsystems"]
            .as_array()
            .expect("subsystems")
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].as_str().expect("status").to_string())
    };
    assert_eq!(status("lab").as_deref(), Some("ONLINE"), "{r}");
    assert_eq!(status("istgt-lab").as_deref(), Some("ONLINE"), "{r}");
    assert_eq!(status("gone").as_deref(), Some("OFFLINE"), "{r}");
    // The ids are still those of vds 0.1.
    assert_eq!(
        ids(&adm
            .run(&["--json", "list", "tportals", "--subsystem", "lab"])
            .ok()
            .json()),
        ids(&answer("list-tportals-lab"))
    );
    // The secret is intact: the CHAP login above used it, and the file is unchanged.
    assert_eq!(
        std::fs::read(store.join("secrets/lab.chap")).expect("secret"),
        b"v1-disc-secret-0123"
    );
    // The first change of the configuration writes version 2 and keeps version 1 aside, once.
    let silent = SilentArray::start();
    adm.run(&[
        "subsystem",
        "add",
        "new",
        "--portal",
        &silent.portal,
        "--no-refresh",
    ])
    .ok();
    assert_eq!(
        std::fs::read(store.join("vds.toml.v1")).expect("kept config"),
        v1_config
    );
    let now = std::fs::read_to_string(store.join("vds.toml")).expect("config");
    assert!(
        now.contains("version = 2") && now.contains("[[provider]]"),
        "{now}"
    );
    adm.run(&["subsystem", "remove", "new"]).ok();
    assert_eq!(
        std::fs::read(store.join("vds.toml.v1")).expect("kept config"),
        v1_config
    );
    i.stop().expect("stop istgt");
    t.stop().expect("stop tgtd");
}
