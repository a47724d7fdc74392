//! End to end against a real tgtd on loopback (started and stopped by vds-testpeers): portals as
//! tgtd reports them, IPv6, a portal deleted at runtime, CHAP failures, cache corruption and its
//! recovery, unknown names, unreachable portals, concurrent refreshes and secrets.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Adm, Out, SilentArray, split_portal};
use serde_json::Value;
use vds_testpeers::{Tgtd, TgtdConfig, free_port, require};

fn need_tgt() {
    if let Err(e) = require(&["tgtd", "tgtadm"]) {
        panic!("{e} (run scripts/install-deps.sh)");
    }
}

/// A tgtd with `portals` and two targets.
fn tgtd(portals: Vec<String>) -> Tgtd {
    need_tgt();
    let t = Tgtd::start(TgtdConfig { portals }).expect("start tgtd");
    t.add_target(1, "iqn.2026-11.test.vds:t1").expect("t1");
    t.add_target(2, "iqn.2026-11.test.vds:t2").expect("t2");
    t
}

fn four_portals() -> Vec<String> {
    let (p, q) = (free_port(), free_port());
    vec![
        format!("127.0.0.1:{p}"),
        format!("127.0.0.2:{p}"),
        format!("127.0.0.1:{q}"),
        format!("[::1]:{p}"),
    ]
}

fn add_args<'a>(name: &'a str, portals: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["subsystem", "add", name];
    for p in portals {
        args.push("--portal");
        args.push(p);
    }
    args
}

fn portal_rows(adm: &Adm, name: &str) -> Vec<Value> {
    adm.run(&["--json", "list", "tportals", "--subsystem", name])
        .ok()
        .json()
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn tportals_equal_what_tgtd_reports_in_table_and_json_with_ipv6() {
    let portals = four_portals();
    let t = tgtd(portals.clone());
    let adm = Adm::new();
    adm.run(&add_args("lab", &portals)).ok();

    let rows = portal_rows(&adm, "lab");
    let ours: BTreeSet<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["address"].as_str().expect("address").to_string(),
                r["port"].as_u64().expect("port"),
            )
        })
        .collect();
    let theirs: BTreeSet<(String, u64)> = t
        .show_portals()
        .expect("show portals")
        .iter()
        .map(|p| split_portal(p))
        .collect();
    assert_eq!(ours, theirs);
    // QueryPortals order: the discovery portals in the order registered; all ONLINE.
    for (i, (r, p)) in rows.iter().zip(&portals).enumerate() {
        let (addr, port) = split_portal(p);
        assert_eq!(r["index"], i);
        assert_eq!(r["address"], addr.as_str());
        assert_eq!(r["port"], port);
        assert_eq!(r["status"], "ONLINE");
        let ty = if addr.contains(':') { "IPV6" } else { "IPV4" };
        assert_eq!(r["address_type"], ty);
    }
    assert_eq!(rows[3]["address"], "::1", "no brackets in JSON");

    let table = adm.run(&["list", "tportals", "--subsystem", "lab"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2 + portals.len(), "{table:?}");
    for (i, p) in portals.iter().enumerate() {
        let (addr, port) = split_portal(p);
        let cells: Vec<&str> = lines[2 + i].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "TPortal",
                &i.to_string(),
                &addr,
                &port.to_string(),
                "ONLINE"
            ]
        );
    }

    // Targets and groups: tgt has one group, tag 1, holding every portal.
    let targets = adm
        .run(&["--json", "list", "targets", "--subsystem", "lab"])
        .ok()
        .json();
    let names: Vec<&str> = targets
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["iscsi_name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["iqn.2026-11.test.vds:t1", "iqn.2026-11.test.vds:t2"]
    );
    let groups = adm
        .run(&[
            "--json",
            "list",
            "tpgroups",
            "--subsystem",
            "lab",
            "--target",
            names[0],
        ])
        .ok()
        .json();
    assert_eq!(groups[0]["tag"], 1);
    assert_eq!(groups[0]["portals"].as_array().map(Vec::len), Some(4));

    // detail tportal of the IPv6 portal, by its bracketed form.
    let d = adm
        .run(&[
            "--json",
            "detail",
            "tportal",
            "--subsystem",
            "lab",
            &portals[3],
        ])
        .ok()
        .json();
    assert_eq!(d["address_type"], "IPV6");
    assert_eq!(d["index"], 3);
    assert_eq!(d["portal_groups"].as_array().map(Vec::len), Some(2));

    // One-shot discovery through IPv6, touching no store.
    let other = Adm::new();
    let found = common::run_bare(&other.store(), &["--json", "discover", &portals[3]])
        .ok()
        .json();
    assert!(!other.store().exists());
    let (addr, port) = split_portal(&portals[3]);
    assert_eq!(found.as_array().map(Vec::len), Some(2));
    for target in found.as_array().expect("array") {
        assert_eq!(
            target["addresses"],
            serde_json::json!([{"address": addr, "port": port, "tag": 1}])
        );
    }
    t.stop().expect("stop tgtd");
}

#[test]
fn deleted_portal_is_offline_after_refresh() {
    let portals = four_portals();
    let t = tgtd(portals.clone());
    let adm = Adm::new();
    adm.run(&add_args("lab", &portals)).ok();
    t.delete_portal(&portals[1]).expect("delete portal");
    // The cache is not the network: nothing changes until a refresh.
    assert!(
        portal_rows(&adm, "lab")
            .iter()
            .all(|r| r["status"] == "ONLINE")
    );
    let report = adm.run(&["--json", "refresh"]).ok().json();
    assert_eq!(report["cache_health"], "GOOD");
    assert_eq!(report["subsystems"][0]["status"], "PARTIALLY_MANAGED");
    let rows = portal_rows(&adm, "lab");
    let statuses: Vec<&str> = rows
        .iter()
        .map(|r| r["status"].as_str().expect("s"))
        .collect();
    assert_eq!(statuses, ["ONLINE", "OFFLINE", "ONLINE", "ONLINE"]);
    assert_eq!(rows[1]["address"], "127.0.0.2");
    t.stop().expect("stop tgtd");
}

#[test]
fn wrong_chap_secret_is_recorded_failed_and_queries_answer_status_failed() {
    let portal = format!("127.0.0.1:{}", free_port());
    let t = tgtd(vec![portal.clone()]);
    t.set_discovery_chap("disc-user", "right-secret-123")
        .expect("chap");
    let adm = Adm::new();
    let wrong = adm.file("wrong", "wrong-secret-456\n");
    let wrong = wrong.to_str().expect("utf-8");
    adm.run(&[
        "subsystem",
        "add",
        "lab",
        "--portal",
        &portal,
        "--chap-user",
        "disc-user",
        "--chap-secret-file",
        wrong,
        "--no-refresh",
    ])
    .ok();
    adm.run(&["reenumerate"]).ok();
    let report = adm.run(&["--json", "refresh"]).ok().json();
    assert_eq!(report["subsystems"][0]["status"], "FAILED");
    let detail = report["subsystems"][0]["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&portal) && detail.contains("authentication"),
        "{detail}"
    );

    let out = adm.run(&["list", "tportals", "--subsystem", "lab"]).fails(
        5,
        "VDS_E_OBJECT_STATUS_FAILED",
        "0x80042431",
    );
    assert!(
        out.stderr.starts_with(
            "vdsadm: subsystem \"lab\": VDS_E_OBJECT_STATUS_FAILED (0x80042431): the subsystem is \
             in a failed state: "
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("authentication"), "{out:?}");
    adm.run(&["--json", "list", "targets", "--subsystem", "lab"])
        .fails_json(5, "VDS_E_OBJECT_STATUS_FAILED", "0x80042431");
    // The right secret fixes it: a second subsystem with it is ONLINE.
    let right = adm.file("right", "right-secret-123\n");
    let right = right.to_str().expect("utf-8");
    let j = adm
        .run(&[
            "--json",
            "subsystem",
            "add",
            "good",
            "--portal",
            &portal,
            "--chap-user",
            "disc-user",
            "--chap-secret-file",
            right,
        ])
        .ok()
        .json();
    assert_eq!(j["subsystem"]["status"], "ONLINE");
    t.stop().expect("stop tgtd");
}

#[test]
fn secrets_never_appear_in_output_config_or_logs() {
    const SECRET: &str = "Zq7-very-secret-8Xw";
    const MUTUAL: &str = "Mt4-target-secret-2Rb";
    let portal = format!("127.0.0.1:{}", free_port());
    let t = tgtd(vec![portal.clone()]);
    t.set_discovery_chap("disc-user", SECRET).expect("chap");
    t.set_discovery_mutual("tgt-user", MUTUAL).expect("mutual");
    let adm = Adm::new();
    let s = adm.file("chap", &format!("{SECRET}\n"));
    let m = adm.file("mutual", MUTUAL);
    let (s, m) = (s.to_str().expect("utf-8"), m.to_str().expect("utf-8"));
    let mut outputs: Vec<Out> = Vec::new();
    let add = adm.run(&[
        "-vvv",
        "subsystem",
        "add",
        "lab",
        "--portal",
        &portal,
        "--chap-user",
        "disc-user",
        "--chap-secret-file",
        s,
        "--mutual-user",
        "tgt-user",
        "--mutual-secret-file",
        m,
    ]);
    assert!(add.stdout.contains("ONLINE"), "{add:?}");
    outputs.push(add.ok());
    for args in [
        &["-vvv", "refresh"][..],
        &["-vvv", "--json", "reenumerate"],
        &["--json", "detail", "subsystem", "lab"],
        &["detail", "subsystem", "lab"],
        &["list", "subsystems"],
        &["--json", "list", "tportals", "--subsystem", "lab"],
    ] {
        outputs.push(adm.run(args).ok());
    }
    outputs.push(common::run_bare(
        &adm.store(),
        &[
            "-vvv",
            "--json",
            "discover",
            &portal,
            "--chap-user",
            "disc-user",
            "--chap-secret-file",
            s,
        ],
    ));
    for o in &outputs {
        for secret in [SECRET, MUTUAL] {
            assert!(
                !o.stdout.contains(secret) && !o.stderr.contains(secret),
                "leak: {o:?}"
            );
        }
    }
    let detail = adm
        .run(&["--json", "detail", "subsystem", "lab"])
        .ok()
        .json();
    assert_eq!(
        detail["config"]["chap"],
        serde_json::json!({"user": "disc-user", "secret_set": true})
    );
    assert_eq!(detail["config"]["mutual"]["secret_set"], true);
    assert!(outputs[4].stdout.contains("secret set"), "{:?}", outputs[4]);
    let toml = std::fs::read_to_string(adm.store().join("vds.toml")).expect("vds.toml");
    assert!(!toml.contains(SECRET) && !toml.contains(MUTUAL), "{toml}");
    // The secrets were copied into the store (the trailing newline of the file dropped).
    let store = vds_store::Store::open(&adm.store()).expect("store");
    assert_eq!(
        store.read_secret("lab.chap").expect("chap").expose(),
        SECRET.as_bytes()
    );
    assert_eq!(
        store.read_secret("lab.mutual").expect("mutual").expose(),
        MUTUAL.as_bytes()
    );
    // Removing the subsystem removes its secrets.
    adm.run(&["subsystem", "remove", "lab"]).ok();
    assert_eq!(store.secret_names().expect("names"), Vec::<String>::new());
    t.stop().expect("stop tgtd");
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Overwrite,
    Truncate,
    Garbage,
}

fn damage(path: &std::path::Path, how: Damage) {
    let mut bytes = std::fs::read(path).expect("read cache");
    match how {
        // Overwrite the schema page and the first data pages in place.
        Damage::Overwrite => {
            let end = bytes.len().min(3 * 4096);
            for (i, b) in bytes[100..end].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31) ^ 0xA5;
            }
        }
        Damage::Truncate => bytes.truncate(bytes.len() / 3),
        Damage::Garbage => bytes = b"this is not a provider cache\n".repeat(100),
    }
    std::fs::write(path, bytes).expect("write cache");
}

#[test]
fn corrupt_cache_answers_cache_corrupt_then_reenumerate_and_refresh_recover() {
    let portal = format!("127.0.0.1:{}", free_port());
    let t = tgtd(vec![portal.clone()]);
    for how in [Damage::Overwrite, Damage::Truncate, Damage::Garbage] {
        let adm = Adm::new();
        let secret = adm.file("s", "a-secret-of-mine\n");
        adm.run(&["subsystem", "add", "lab", "--portal", &portal])
            .ok();
        adm.run(&[
            "subsystem",
            "add",
            "lab2",
            "--portal",
            &portal,
            "--chap-user",
            "u",
            "--chap-secret-file",
            secret.to_str().expect("utf-8"),
            "--no-refresh",
        ])
        .ok();
        adm.run(&["reenumerate"]).ok();
        adm.run(&["refresh"]).ok();
        let config_before = std::fs::read(adm.store().join("vds.toml")).expect("config");
        let secrets_before = std::fs::read(adm.store().join("secrets/lab2.chap")).expect("secret");
        damage(&adm.store().join("cache.sqlite"), how);

        for args in [
            &["list", "tportals", "--subsystem", "lab"][..],
            &["list", "subsystems"],
            &["detail", "subsystem", "lab"],
            &["list", "targets", "--subsystem", "lab2"],
            &["refresh"],
        ] {
            let out = adm
                .run(args)
                .fails(6, "VDS_E_PROVIDER_CACHE_CORRUPT", "0x8004241F");
            assert!(
                out.stderr
                    .contains("`vdsadm reenumerate` then `vdsadm refresh`"),
                "{how:?} {args:?}: {out:?}"
            );
        }
        adm.run(&["--json", "list", "tportals", "--subsystem", "lab"])
            .fails_json(6, "VDS_E_PROVIDER_CACHE_CORRUPT", "0x8004241F");

        let re = adm.run(&["--json", "reenumerate"]).ok().json();
        assert_eq!(re["cache_health"], "REBUILT", "{how:?}");
        let kept = re["corrupt_cache_kept_at"].as_str().expect("kept at");
        assert!(std::path::Path::new(kept).exists(), "{how:?}: {kept}");
        // Until the refresh, the model still answers CACHE_CORRUPT.
        adm.run(&["list", "tportals", "--subsystem", "lab"]).fails(
            6,
            "VDS_E_PROVIDER_CACHE_CORRUPT",
            "0x8004241F",
        );
        let rf = adm.run(&["--json", "refresh"]).ok().json();
        assert_eq!(rf["cache_health"], "GOOD");
        let rows = portal_rows(&adm, "lab");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["status"], "ONLINE");
        let subs = adm.run(&["--json", "list", "subsystems"]).ok().json();
        let names: Vec<&str> = subs
            .as_array()
            .expect("array")
            .iter()
            .map(|s| s["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["lab", "lab2"], "{how:?}");
        assert_eq!(
            std::fs::read(adm.store().join("vds.toml")).expect("config"),
            config_before
        );
        assert_eq!(
            std::fs::read(adm.store().join("secrets/lab2.chap")).expect("secret"),
            secrets_before
        );
    }
    t.stop().expect("stop tgtd");
}

#[test]
fn unknown_names_are_not_found() {
    let portal = format!("127.0.0.1:{}", free_port());
    let t = tgtd(vec![portal.clone()]);
    let adm = Adm::new();
    adm.run(&["subsystem", "add", "lab", "--portal", &portal])
        .ok();
    for args in [
        &["list", "tportals", "--subsystem", "nope"][..],
        &["list", "targets", "--subsystem", "nope"],
        &["detail", "subsystem", "nope"],
        &[
            "detail",
            "target",
            "--subsystem",
            "lab",
            "iqn.2026-11.test.vds:nope",
        ],
        &["detail", "tportal", "--subsystem", "lab", "127.0.0.9:3260"],
        &[
            "list",
            "tpgroups",
            "--subsystem",
            "lab",
            "--target",
            "iqn.2026-11.test.vds:nope",
        ],
        &["subsystem", "remove", "nope"],
    ] {
        adm.run(args)
            .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
    }
    adm.run(&["--json", "list", "tportals", "--subsystem", "nope"])
        .fails_json(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
    // Registered but not enumerated says how to fix it.
    adm.run(&[
        "subsystem",
        "add",
        "later",
        "--portal",
        &portal,
        "--no-refresh",
    ])
    .ok();
    let out = adm
        .run(&["list", "tportals", "--subsystem", "later"])
        .fails(3, "VDS_E_OBJECT_NOT_FOUND", "0x80042405");
    assert!(out.stderr.contains("vdsadm reenumerate"), "{out:?}");
    let subs = adm.run(&["--json", "list", "subsystems"]).ok().json();
    assert_eq!(subs[1]["status"], "NOT_ENUMERATED");
    // Adding a name twice is refused.
    adm.run(&["subsystem", "add", "lab", "--portal", &portal])
        .fails(1, "VDS_E_NAME_NOT_UNIQUE", "0x80042701");
    t.stop().expect("stop tgtd");
}

#[test]
fn discover_of_a_closed_port_is_a_network_failure() {
    let adm = Adm::new();
    let closed = format!("127.0.0.1:{}", free_port());
    let out = common::run_bare(&adm.store(), &["discover", &closed]).fails(
        4,
        "HRESULT_FROM_WIN32(10061)",
        "0x8007274D",
    );
    assert!(out.stderr.contains(&closed), "{out:?}");
    common::run_bare(&adm.store(), &["--json", "discover", &closed]).fails_json(
        4,
        "HRESULT_FROM_WIN32(10061)",
        "0x8007274D",
    );
    let closed6 = format!("[::1]:{}", free_port());
    common::run_bare(&adm.store(), &["discover", &closed6]).fails(
        4,
        "HRESULT_FROM_WIN32(10061)",
        "0x8007274D",
    );
    assert!(!adm.store().exists());
}

#[test]
fn a_second_refresh_is_refused_while_one_holds_the_locks() {
    let portal = format!("127.0.0.1:{}", free_port());
    let t = tgtd(vec![portal.clone()]);
    let adm = Adm::new();
    adm.run(&["subsystem", "add", "lab", "--portal", &portal])
        .ok();

    // 1. The test holds the store's lock of "lab" itself: a refresh of everything reports "lab"
    // busy (exit 7, one line naming it), and a reenumerate of its provider cannot start.
    let store = vds_store::Store::open(&adm.store()).expect("store");
    let held = store
        .lock_subsystem("vds-sendtargets", "lab")
        .expect("lock");
    let out = adm
        .run(&["refresh"])
        .fails(7, "VDS_E_ANOTHER_CALL_IN_PROGRESS", "0x80042404");
    assert!(out.stderr.contains("subsystem \"lab\""), "{out:?}");
    let out = adm.run(&["--json", "reenumerate"]);
    assert_eq!(out.code, 7, "{out:?}");
    let j = out.json();
    assert_eq!(j["failures"][0]["error"]["hresult"], "0x80042404", "{j}");
    assert_eq!(j["failures"][0]["provider"], "vds-sendtargets", "{j}");
    drop(held);
    adm.run(&["refresh"]).ok();

    // 2. Two vdsadm processes: the first waits on an array that never answers, holding the lock
    // of that subsystem alone.
    let silent = SilentArray::start();
    adm.run(&[
        "subsystem",
        "add",
        "quiet",
        "--portal",
        &silent.portal,
        "--no-refresh",
    ])
    .ok();
    adm.run(&["reenumerate"]);
    silent.forget_connections();
    let mut first = adm
        .command(&["refresh", "--subsystem", "quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(
        silent.wait_connected(Duration::from_secs(10)),
        "the first refresh never reached the silent array"
    );
    adm.run(&["refresh", "--subsystem", "quiet"]).fails(
        7,
        "VDS_E_ANOTHER_CALL_IN_PROGRESS",
        "0x80042404",
    );
    adm.run(&["refresh", "--subsystem", "lab"]).ok();
    let _ = first.wait().expect("wait");
    adm.run(&["list", "tportals", "--subsystem", "lab"]).ok();
    t.stop().expect("stop tgtd");
}

#[test]
fn a_subsystem_add_during_a_reenumerate_is_refused_at_once_and_the_cache_stays_whole() {
    let portal = format!("127.0.0.1:{}", free_port());
    let t = tgtd(vec![portal.clone()]);
    let silent = SilentArray::start();
    let adm = Adm::new();
    adm.run(&["subsystem", "add", "first", "--portal", &portal])
        .ok();
    adm.run(&[
        "subsystem",
        "add",
        "quiet",
        "--portal",
        &silent.portal,
        "--no-refresh",
    ])
    .ok();

    // The reenumerate holds its provider while it waits on the silent array.
    let mut reenumerate = adm
        .command(&["reenumerate"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(
        silent.wait_connected(Duration::from_secs(10)),
        "reenumerate never reached the silent array"
    );
    // A registration changes the provider's set of subsystems: refused at once, nothing written.
    let started = Instant::now();
    adm.run(&["subsystem", "add", "second", "--portal", &portal])
        .fails(7, "VDS_E_ANOTHER_CALL_IN_PROGRESS", "0x80042404");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the refusal waited"
    );
    assert!(reenumerate.wait().expect("wait").success());

    assert_eq!(portal_rows(&adm, "first").len(), 1);
    let names: BTreeSet<String> = adm
        .run(&["--json", "list", "subsystems"])
        .ok()
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect();
    assert_eq!(names, BTreeSet::from(["first".into(), "quiet".into()]));
    // Once it ended, the registration goes through.
    adm.run(&["subsystem", "add", "second", "--portal", &portal])
        .ok();
    assert_eq!(portal_rows(&adm, "second").len(), 1);
    t.stop().expect("stop tgtd");
}
