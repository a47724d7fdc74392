//! The `tgt` provider kind end to end: `vdsadm` processes against a private tgtd, each command a
//! new process (so what vds remembers goes through the store), checked by `tgtadm` and by
//! libiscsi's tools.

mod common;

use std::time::Duration;

use common::{Adm, split_portal};
use serde_json::Value;
use vds_testpeers::{HeldSession, Tgtd, TgtdConfig, free_port, iscsi_ls, iscsi_ls_luns, url};

const INITIATOR: &str = "iqn.2026-12.test.vds:host-a";

fn start(portals: Vec<String>) -> Tgtd {
    Tgtd::start(TgtdConfig { portals }).expect("start tgtd")
}

fn socket(t: &Tgtd) -> String {
    t.ipc_socket().to_string_lossy().into_owned()
}

fn tid_of(t: &Tgtd, name: &str) -> u32 {
    t.targets()
        .expect("targets")
        .iter()
        .find(|(_, n)| n == name)
        .map(|(tid, _)| *tid)
        .unwrap_or_else(|| panic!("tgtadm shows no {name}"))
}

/// `vdsadm [--json] chap target VERB --subsystem lab TARGET EXTRA…`.
fn chap(adm: &Adm, json: bool, verb: &str, target: &str, extra: &[&str]) -> common::Out {
    let mut args = if json { vec!["--json"] } else { vec![] };
    args.extend(["chap", "target", verb, "--subsystem", "lab", target]);
    args.extend_from_slice(extra);
    adm.run(&args)
}

fn rows(adm: &Adm, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    adm.run(&all).ok().json().as_array().expect("array").clone()
}

#[test]
fn provider_add_resolves_the_socket_once_and_reports_the_subsystem() {
    let portal = format!("127.0.0.1:{}", free_port());
    let t = start(vec![portal.clone()]);
    t.add_target(1, "iqn.2026-12.test.vds:t1").expect("t1");
    let adm = Adm::new();
    let added = adm
        .run(&[
            "--json",
            "provider",
            "add",
            "lab",
            "--kind",
            "tgt",
            "--socket",
            &socket(&t),
        ])
        .ok()
        .json();
    assert_eq!(added["kind"], "tgt");
    let subs = added["subsystems"].as_array().expect("subsystems");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["name"], "lab");
    assert_eq!(subs[0]["status"], "ONLINE");
    assert_eq!(subs[0]["portals"], 1);
    assert_eq!(subs[0]["targets"], 1);
    let providers = rows(&adm, &["list", "providers"]);
    assert_eq!(providers[0]["manages_arrays"], true);
    assert_eq!(
        providers[0]["settings"],
        serde_json::json!([format!("socket = {:?}", socket(&t))])
    );
    let (address, port) = split_portal(&portal);
    let portals = rows(&adm, &["list", "tportals", "--subsystem", "lab"]);
    assert_eq!(portals[0]["address"], address.as_str());
    assert_eq!(portals[0]["port"], port);
    let detail = adm
        .run(&["--json", "detail", "subsystem", "lab"])
        .ok()
        .json();
    assert_eq!(detail["identification"], socket(&t).as_str());
    assert_eq!(detail["config"], Value::Null);

    // Without --socket: tgtadm's default, from this process's environment, written down once.
    let prefix = adm.dir.path().join("elsewhere");
    let prefix = prefix.to_string_lossy().into_owned();
    let other = adm
        .run_env(
            &["--json", "provider", "add", "other", "--kind", "tgt"],
            &[("TGT_IPC_SOCKET", &prefix)],
        )
        .ok()
        .json();
    let sub = &other["subsystems"][0];
    assert_eq!(sub["status"], "OFFLINE", "{other}");
    let why = sub["detail"].as_str().unwrap_or_default();
    assert!(why.contains(&format!("{prefix}.0")), "{why}");
    assert!(why.contains("no management socket"), "{why}");
    let providers = rows(&adm, &["list", "providers"]);
    assert_eq!(
        providers[1]["settings"],
        serde_json::json!([format!("socket = {:?}", format!("{prefix}.0"))])
    );
    // A bad setting is refused before anything is written (as every kind's settings are).
    adm.run(&[
        "provider",
        "add",
        "bad",
        "--kind",
        "tgt",
        "--socket",
        &format!("/{}", "x".repeat(120)),
    ])
    .fails(1, "E_INVALIDARG", "0x80070057");
    assert_eq!(rows(&adm, &["list", "providers"]).len(), 2);
    t.stop().expect("stop");
}

#[test]
fn change_verbs_on_tgtd_across_processes() {
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.2:{}", free_port()),
    );
    let t = start(vec![a.clone(), b.clone()]);
    let adm = Adm::new();
    adm.run(&[
        "provider",
        "add",
        "lab",
        "--kind",
        "tgt",
        "--socket",
        &socket(&t),
    ])
    .ok();

    // offline/online tportal: tgtd forgets the portal, vds remembers it (in the store).
    let r = adm
        .run(&["--json", "offline", "tportal", "--subsystem", "lab", &a])
        .ok()
        .json();
    assert_eq!(r["name"], "S_OK");
    assert_eq!(t.show_portals().expect("portals"), std::slice::from_ref(&b));
    let status = |adm: &Adm| -> Vec<String> {
        rows(adm, &["list", "tportals", "--subsystem", "lab"])
            .iter()
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(status(&adm), ["OFFLINE", "ONLINE"]);
    adm.run(&["refresh"]).ok();
    assert_eq!(
        status(&adm),
        ["OFFLINE", "ONLINE"],
        "remembered after a refresh"
    );
    adm.run(&["online", "tportal", "--subsystem", "lab", &a])
        .ok();
    assert_eq!(status(&adm), ["ONLINE", "ONLINE"]);
    assert_eq!(t.show_portals().expect("portals").len(), 2);

    // create target: the generated name, no ACL; granted by hand, it is listed.
    let made = adm
        .run(&[
            "--json",
            "create",
            "target",
            "--subsystem",
            "lab",
            "--alias",
            "web",
        ])
        .ok()
        .json();
    let name = made["object"]["iscsi_name"]
        .as_str()
        .expect("name")
        .to_string();
    assert_eq!(name, "iqn.2026-12.org.vds.tgt:lab.t1");
    assert!(iscsi_ls(&url(&a)).expect("iscsi-ls").is_empty());
    t.grant_all(tid_of(&t, &name)).expect("grant");
    assert_eq!(
        iscsi_ls(&url(&a)).expect("iscsi-ls"),
        [(name.clone(), format!("{a},1"))]
    );
    let targets = rows(&adm, &["list", "targets", "--subsystem", "lab"]);
    assert_eq!(targets[0]["friendly_name"], "web", "the alias, kept by vds");
    adm.run(&["name", "target", "--subsystem", "lab", &name, "shop"])
        .ok();
    let targets = rows(&adm, &["list", "targets", "--subsystem", "lab"]);
    assert_eq!(targets[0]["friendly_name"], "shop");

    // create tpgroup: the one group there is, VDS_S_ALREADY_EXISTS, a success.
    let g = adm
        .run(&[
            "--json",
            "create",
            "tpgroup",
            "--subsystem",
            "lab",
            "--target",
            &name,
        ])
        .ok()
        .json();
    assert_eq!(g["name"], "VDS_S_ALREADY_EXISTS");
    assert_eq!(g["object"]["tag"], 1);
    adm.run(&[
        "remove",
        "tportal",
        "--subsystem",
        "lab",
        "--target",
        &name,
        "--tpgroup",
        "1",
        &a,
    ])
    .fails(1, "VDS_E_NOT_SUPPORTED", "0x80042400");

    // chap target set: from a file, never the command line; checked by logins.
    let secret = adm.file("target.secret", "target-secret-1\n");
    let secret = secret.to_string_lossy();
    // There is no way to give the secret itself.
    let out = chap(&adm, false, "set", &name, &["--secret", "x"]);
    assert_eq!(out.code, 2, "{out:?}");
    chap(&adm, false, "set", &name, &["--secret-file", &secret]).ok();
    assert!(
        iscsi_ls_luns(&url(&a)).is_err(),
        "a login without the secret"
    );
    let with = format!("iscsi://{name}%target-secret-1@{a}");
    iscsi_ls_luns(&with).expect("a login with the secret");
    let targets = rows(&adm, &["list", "targets", "--subsystem", "lab"]);
    assert_eq!(targets[0]["chap_enabled"], true);
    // A short secret is taken, with a warning; a missing file is not.
    let short = adm.file("short.secret", "short\n");
    let remember = ["--initiator", INITIATOR, "--secret-file"];
    let out = chap(
        &adm,
        false,
        "remember",
        &name,
        &[&remember[..], &[&*short.to_string_lossy()]].concat(),
    )
    .ok();
    assert!(
        out.stderr
            .contains("warning: the initiator CHAP secret has 5 bytes"),
        "{out:?}"
    );
    let missing = adm.dir.path().join("nope");
    chap(
        &adm,
        false,
        "set",
        &name,
        &["--secret-file", &missing.to_string_lossy()],
    )
    .fails(1, "HRESULT_FROM_WIN32(2)", "0x80070002");
    let per_initiator = ["--secret-file", &secret, "--initiator", INITIATOR];
    chap(&adm, true, "set", &name, &per_initiator).fails_json(
        1,
        "VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED",
        "0x80042707",
    );
    chap(&adm, false, "set", &name, &["--clear"]).ok();
    iscsi_ls_luns(&url(&a)).expect("no CHAP any more");
    chap(
        &adm,
        false,
        "remember",
        &name,
        &["--initiator", INITIATOR, "--clear"],
    )
    .ok();

    // detail target: the initiators logged in, as the last refresh found them.
    let session =
        HeldSession::open(&a, &name, INITIATOR, None, Duration::from_secs(5)).expect("login");
    adm.run(&["refresh", "--subsystem", "lab"]).ok();
    let d = adm
        .run(&["--json", "detail", "target", "--subsystem", "lab", &name])
        .ok()
        .json();
    assert_eq!(d["connected_initiators"], serde_json::json!([INITIATOR]));
    let text = adm
        .run(&["detail", "target", "--subsystem", "lab", &name])
        .ok();
    assert!(
        text.stdout.contains(&format!("Initiator 0    {INITIATOR}")),
        "{text:?}"
    );
    // Never deleted while in use.
    adm.run(&["delete", "target", "--subsystem", "lab", &name])
        .fails(1, "VDS_E_DEVICE_IN_USE", "0x80042413");
    assert!(
        t.targets()
            .expect("targets")
            .iter()
            .any(|(_, n)| *n == name)
    );
    drop(session);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while adm
        .run(&["delete", "target", "--subsystem", "lab", &name])
        .code
        != 0
    {
        assert!(std::time::Instant::now() < end, "the session never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(t.targets().expect("targets").is_empty());

    // tgtd gone: a refresh records it, a change says so (exit 4: the array cannot be reached).
    t.stop().expect("stop");
    adm.run(&["refresh"]).ok();
    let subs = rows(&adm, &["list", "subsystems"]);
    assert_eq!(subs[0]["status"], "OFFLINE");
    adm.run(&["create", "target", "--subsystem", "lab"]).fails(
        4,
        "HRESULT_FROM_WIN32(10061)",
        "0x8007274D",
    );
}
