//! The Redfish view as vdsd serves it, over a fleet of real arrays (tgtd, istgt) and the simulator:
//! DMTF's Redfish Service Validator, DMTF's python-redfish-library, and the event stream when a
//! tgtd portal goes away. Each test starts its own peers and its own vdsd, on its own socket.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, Events};
use serde_json::Value;
use vds_testpeers::{Istgt, IstgtConfig, Tgtd, TgtdConfig, free_port, python_tool};

fn tgtd_with_targets() -> Tgtd {
    let port = free_port();
    let t = Tgtd::start(TgtdConfig {
        portals: vec![
            format!("127.0.0.1:{port}"),
            format!("127.0.0.2:{port}"),
            format!("[::1]:{port}"),
        ],
    })
    .expect("tgtd");
    t.add_target(1, "iqn.2026-12.test.vds:redfish-a")
        .expect("target");
    t.add_target(2, "iqn.2026-12.test.vds:redfish-b")
        .expect("target");
    t
}

fn istgt() -> Istgt {
    let port = free_port();
    Istgt::start(IstgtConfig::two_groups(
        vec![format!("127.0.0.1:{port}")],
        vec![format!("[::1]:{port}")],
    ))
    .expect("istgt")
}

/// A store with the simulator, `tgtd` and `istgt`.
fn fleet(tgtd: &Tgtd, istgt: &Istgt) -> tempfile::TempDir {
    let store = tempfile::tempdir().expect("store");
    common::make_store(
        store.path(),
        true,
        &[
            ("tgt", tgtd.portals().to_vec()),
            ("istgt", istgt.portals(1)),
        ],
    );
    store
}

/// DMTF's schema bundle (DSP8010): `$VDS_REDFISH_SCHEMAS`, else the copy beside this project.
fn schema_bundle() -> Option<PathBuf> {
    let dir = std::env::var_os("VDS_REDFISH_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/redfish/csdl")
        });
    dir.join("ServiceRoot_v1.xml").is_file().then_some(dir)
}

/// `http+unix://` for the socket, as the Python tools take it.
fn unix_url(socket: &Path) -> String {
    format!(
        "http+unix://{}",
        socket.display().to_string().replace('/', "%2F")
    )
}

#[test]
fn dmtf_s_validator_passes_over_tgtd_istgt_and_the_simulator() {
    let Some(bundle) = schema_bundle() else {
        eprintln!(
            "SKIPPED: DMTF's Redfish schema bundle is not here (set VDS_REDFISH_SCHEMAS to its csdl \
             directory; it is DMTF's DSP8010, https://www.dmtf.org/dsp/DSP8010). Every other \
             Redfish test still runs."
        );
        return;
    };
    let validator = python_tool("rf_service_validator").expect("the validator");
    let (tgtd, istgt) = (tgtd_with_targets(), istgt());
    let store = fleet(&tgtd, &istgt);
    let d = Daemon::serving(store.path());
    // The validator reads schemas from one directory: DMTF's, and vds's OEM schema.
    let schemas = tempfile::tempdir().expect("schemas");
    for entry in std::fs::read_dir(&bundle).expect("bundle") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "xml") {
            std::fs::copy(&path, schemas.path().join(path.file_name().expect("name")))
                .expect("copy");
        }
    }
    std::fs::write(
        schemas.path().join("VdsRedfish_v1.xml"),
        vds_redfish::metadata::OEM_SCHEMA,
    )
    .expect("oem schema");
    let logs = tempfile::tempdir().expect("logs");
    // Basic credentials are required by the validator's command line; the socket's peer
    // credentials are what vdsd checks.
    let mut child = std::process::Command::new(validator)
        .args(["--rhost", &unix_url(&d.socket)])
        .args(["--authtype", "Basic", "-u", "vds", "-p", "unused"])
        .arg("--skipschema")
        .arg("--schema_directory")
        .arg(schemas.path())
        .arg("--logdir")
        .arg(logs.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the validator");
    let status = common::wait_deadline(&mut child, Duration::from_secs(300));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some(),
        "the validator took more than 5 minutes:\n{text}"
    );
    assert!(out.status.success(), "the validator failed:\n{text}");
    // The summary table: PASS | WARN | FAIL | NOT TESTED.
    let summary = text
        .lines()
        .skip_while(|l| !l.contains("PASS") || !l.contains("FAIL"))
        .find(|l| l.trim_start().starts_with('|') && l.chars().any(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"));
    let counts: Vec<u64> = summary
        .split('|')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    assert!(counts.len() >= 3, "{summary}");
    assert_eq!(
        (counts[1], counts[2]),
        (0, 0),
        "warnings or failures:\n{text}"
    );
    assert!(counts[0] > 100, "{text}");
    // Every Endpoint was checked: tgtd's three portals, istgt's and the simulator's.
    let validated = text
        .lines()
        .filter(|l| l.starts_with("Validating /redfish/v1/Fabrics/iSCSI/Endpoints/"))
        .count();
    let endpoints = d.get_json("/redfish/v1/Fabrics/iSCSI/Endpoints")["Members@odata.count"]
        .as_u64()
        .expect("count");
    assert_eq!(validated as u64, endpoints, "{text}");
    assert!(endpoints >= 6, "{endpoints}");
}

#[test]
fn a_redfish_client_lists_the_endpoints_vdsadm_lists() {
    let python = python_tool("python").expect("the python-redfish-library");
    let (tgtd, istgt) = (tgtd_with_targets(), istgt());
    let store = fleet(&tgtd, &istgt);
    let d = Daemon::serving(store.path());
    // DMTF's python-redfish-library walks the Fabric's Endpoints as any client would.
    let script = r#"
import json, sys, redfish
client = redfish.redfish_client(base_url=sys.argv[1], username="", password="", timeout=10)
out = []
for f in client.get("/redfish/v1/Fabrics").dict["Members"]:
    fabric = client.get(f["@odata.id"]).dict
    if fabric.get("FabricType") != "iSCSI":
        continue
    for m in client.get(fabric["Endpoints"]["@odata.id"]).dict["Members"]:
        e = client.get(m["@odata.id"]).dict
        t = e["IPTransportDetails"][0]
        address = (t.get("IPv4Address") or t.get("IPv6Address") or {}).get("Address") \
            or e["Oem"]["Vds"].get("HostName")
        scope = e["Oem"]["Vds"].get("IPv6ScopeId")
        if scope:
            address += "%" + scope
        storage = client.get(e["ConnectedEntities"][0]["EntityLink"]["@odata.id"]).dict
        out.append([storage["Oem"]["Vds"]["SubsystemName"], e["Id"], address, t["Port"],
                    e["Oem"]["Vds"]["VdsStatus"], len(e["Links"]["Connections"])])
print(json.dumps(out))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, &unix_url(&d.socket)])
        .output()
        .expect("run the client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Vec<(String, String, String, u64, String, usize)> =
        serde_json::from_slice(&out.stdout).expect("client output");
    // An Endpoint links the targets whose portal groups hold it (tgtd's targets are reached
    // through its portals).
    assert!(
        seen.iter().any(|e| e.0 == "tgt" && e.5 > 0),
        "no Endpoint of tgtd links a Connection: {seen:?}"
    );
    let mut seen: Vec<(String, String, String, u64, String)> = seen
        .into_iter()
        .map(|(s, id, a, port, status, _)| (s, id, a, port, status))
        .collect();
    // What `vdsadm --json list tportals --subsystem S` prints, from the daemon's /v1.
    let mut want = Vec::new();
    for row in d.get_json("/v1/subsystems").as_array().expect("rows") {
        let name = row["name"].as_str().expect("name");
        let provider = row["provider"].as_str().expect("provider");
        let portals = d.get_json(&format!(
            "/v1/subsystems/{name}/portals?provider={provider}"
        ));
        for p in portals.as_array().expect("portals") {
            want.push((
                name.to_string(),
                p["id"].as_str().expect("id").to_string(),
                p["address"].as_str().expect("address").to_string(),
                p["port"].as_u64().expect("port"),
                p["status"].as_str().expect("status").to_string(),
            ));
        }
    }
    seen.sort();
    want.sort();
    assert_eq!(seen, want);
    assert!(
        want.iter().any(|w| w.0 == "tgt" && w.2 == "::1"),
        "tgtd's IPv6 portal is among them: {want:?}"
    );
}

fn has_message(doc: &Value, message: &str, origin: &str) -> bool {
    doc["Events"].as_array().is_some_and(|events| {
        events
            .iter()
            .any(|e| e["MessageId"] == message && e["OriginOfCondition"]["@odata.id"] == origin)
    })
}

#[test]
fn a_portal_that_goes_away_is_pushed_as_resource_changed_and_replayed() {
    let tgtd = tgtd_with_targets();
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), false, &[("tgt", tgtd.portals().to_vec())]);
    let d = Daemon::serving(store.path());
    let gone = tgtd.portals()[1].clone(); // 127.0.0.2:PORT
    let portal = d
        .get_json("/v1/subsystems/tgt/portals")
        .as_array()
        .expect("portals")
        .iter()
        .find(|p| format!("{}:{}", p["address"].as_str().unwrap_or(""), p["port"]) == gone)
        .cloned()
        .expect("the portal");
    assert_eq!(portal["status"], "ONLINE");
    let endpoint = format!(
        "/redfish/v1/Fabrics/iSCSI/Endpoints/{}",
        portal["id"].as_str().expect("id")
    );
    let sse = d.get_json("/redfish/v1/EventService")["ServerSentEventUri"]
        .as_str()
        .expect("ServerSentEventUri")
        .to_string();
    let mut events = Events::open(&d.socket, &sse, None);
    tgtd.tgtadm(&[
        "--lld",
        "iscsi",
        "--op",
        "delete",
        "--mode",
        "portal",
        "--param",
        &format!("portal={gone}"),
    ])
    .expect("delete the portal");
    let op = d.operation("POST", "/v1/subsystems/tgt/refresh", None);
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    let got = events.until(Duration::from_secs(60), |e| {
        has_message(&e.data, "ResourceEvent.1.4.ResourceChanged", &endpoint)
    });
    let last = got.last().cloned().expect("an event");
    let (id, doc) = (last.id, last.data);
    assert!(
        has_message(
            &doc,
            "ResourceEvent.1.4.ResourceStatusChangedWarning",
            &endpoint
        ),
        "the health change is announced too: {doc}"
    );
    // The Endpoint says so when read again.
    let e = d.get_json(&endpoint);
    assert_eq!(e["Status"]["State"], "StandbyOffline", "{e}");
    // A client that reconnects with the id before gets the event again.
    let mut again = Events::open(&d.socket, &sse, Some(id - 1));
    let replayed = again.until(Duration::from_secs(30), |e| e.id == id);
    assert_eq!(replayed.first().map(|e| e.id), Some(id), "{replayed:?}");
    assert_eq!(replayed.last().map(|e| e.data.clone()), Some(doc));
    assert_eq!(
        d.stop().code(),
        Some(0),
        "the open streams do not hold vdsd up"
    );
}
