//! The API over the Unix socket, against the simulator: every resource and mutation, error bodies
//! and statuses, operations, events with replay, and a caller of another uid refused on every route.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{Value, json};
use vds_client::segment;

const SUB: &str = "sim-array-1";
const DB: &str = "iqn.2026-11.org.vds.sim:array1.db";

fn ids(d: &Daemon) -> (String, String, String) {
    let subs = d.get_json("/v1/subsystems");
    let sub = subs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == SUB)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let portals = d.get_json(&format!("/v1/subsystems/{sub}/portals"));
    let portal = portals[0]["id"].as_str().unwrap().to_string();
    let targets = d.get_json(&format!("/v1/subsystems/{sub}/targets"));
    let target = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["iscsi_name"] == DB)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (sub, portal, target)
}

#[test]
fn every_query_answers_by_id_and_by_name_alike() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    let (sub, portal, target) = ids(&d);
    let svc = d.get_json("/v1/service");
    assert_eq!(svc["caller_role"], "admin");
    let providers = d.get_json("/v1/providers");
    let pid = providers[0]["id"].as_str().unwrap();
    assert_eq!(d.get_json(&format!("/v1/providers/{pid}")), providers[0]);
    assert_eq!(d.get_json("/v1/providers/vds-sim"), providers[0]);
    assert_eq!(
        d.get_json(&format!("/v1/subsystems/{sub}")),
        d.get_json(&format!("/v1/subsystems/{SUB}"))
    );
    assert_eq!(
        d.get_json(&format!("/v1/subsystems/{sub}/portals")),
        d.get_json(&format!("/v1/subsystems/{SUB}/portals"))
    );
    let by_id = d.get_json(&format!("/v1/subsystems/{sub}/portals/{portal}"));
    let addr = format!("{}:{}", by_id["address"].as_str().unwrap(), by_id["port"]);
    assert_eq!(
        by_id,
        d.get_json(&format!("/v1/subsystems/{SUB}/portals/{}", segment(&addr)))
    );
    assert_eq!(
        d.get_json(&format!(
            "/v1/subsystems/{sub}/portals/{portal}/portal-groups"
        )),
        by_id["portal_groups"]
    );
    let t = d.get_json(&format!("/v1/subsystems/{sub}/targets/{target}"));
    assert_eq!(
        t,
        d.get_json(&format!("/v1/subsystems/{SUB}/targets/{}", segment(DB)))
    );
    let groups = d.get_json(&format!(
        "/v1/subsystems/{sub}/targets/{target}/portal-groups"
    ));
    let g = &groups[0];
    let gid = g["id"].as_str().unwrap();
    assert_eq!(
        &d.get_json(&format!(
            "/v1/subsystems/{sub}/targets/{target}/portal-groups/{gid}"
        )),
        g
    );
    assert_eq!(
        &d.get_json(&format!(
            "/v1/subsystems/{sub}/targets/{target}/portal-groups/{}",
            g["tag"]
        )),
        g
    );
    assert_eq!(
        d.get_json(&format!(
            "/v1/subsystems/{sub}/targets/{target}/portal-groups/{gid}/portals"
        )),
        g["portals"]
    );
    // GetObject of each kind.
    for (id, kind) in [
        (pid, "provider"),
        (sub.as_str(), "subsystem"),
        (portal.as_str(), "portal"),
        (target.as_str(), "target"),
        (gid, "portal_group"),
    ] {
        let o = d.get_json(&format!("/v1/objects/{id}"));
        assert_eq!(o["object_type"], kind, "{o}");
        d.get_json(o["path"].as_str().unwrap());
    }
    let spec = d.get_json("/v1/openapi.json");
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn every_mutation_runs_as_an_operation() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    let (sub, portal, target) = ids(&d);
    let ok = |op: Value| {
        assert_eq!(op["state"], "SUCCEEDED", "{op}");
        op
    };
    let op = ok(d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/portals/{portal}/status"),
        Some(json!({"status": "OFFLINE"})),
    ));
    assert_eq!(
        op["output"]["notifications"][0]["event_name"],
        "PORTAL_MODIFY"
    );
    assert_eq!(
        d.get_json(&format!("/v1/subsystems/{sub}/portals/{portal}"))["status"],
        "OFFLINE"
    );
    ok(d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/portals/{portal}/status"),
        Some(json!({"status": "ONLINE"})),
    ));
    let op = ok(d.operation(
        "POST",
        &format!("/v1/subsystems/{sub}/targets"),
        Some(json!({"iscsi_name": "iqn.2026-12.test:new", "alias": "n"})),
    ));
    let new = op["output"]["object"]["id"].as_str().unwrap().to_string();
    ok(d.operation(
        "PATCH",
        &format!("/v1/subsystems/{sub}/targets/{new}"),
        Some(json!({"alias": "renamed"})),
    ));
    assert_eq!(
        d.get_json(&format!("/v1/subsystems/{sub}/targets/{new}"))["friendly_name"],
        "renamed"
    );
    let op = ok(d.operation(
        "POST",
        &format!("/v1/subsystems/{sub}/targets/{new}/portal-groups"),
        None,
    ));
    let tag = op["output"]["object"]["tag"].as_u64().unwrap();
    ok(d.operation(
        "POST",
        &format!("/v1/subsystems/{sub}/targets/{new}/portal-groups/{tag}/portals"),
        Some(json!({"portal": portal})),
    ));
    let g = d.get_json(&format!(
        "/v1/subsystems/{sub}/targets/{new}/portal-groups/{tag}/portals"
    ));
    assert_eq!(g[0]["id"], portal.as_str());
    ok(d.operation(
        "DELETE",
        &format!("/v1/subsystems/{sub}/targets/{new}/portal-groups/{tag}/portals/{portal}"),
        None,
    ));
    ok(d.operation(
        "DELETE",
        &format!("/v1/subsystems/{sub}/targets/{new}/portal-groups/{tag}"),
        None,
    ));
    // Target CHAP: the secret initiators prove, then the one the target proves (mutual).
    ok(d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/targets/{new}/chap-secret"),
        Some(json!({"secret": "a-secret-of-16-b"})),
    ));
    assert_eq!(
        d.get_json(&format!("/v1/subsystems/{sub}/targets/{new}"))["chap_enabled"],
        true
    );
    ok(d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/targets/{new}/initiator-secrets/iqn.2026-12.test:host1"),
        Some(json!({"secret": "another-secret-16"})),
    ));
    // Out of RFC 7143's limits: refused before the array is asked, the secret never echoed.
    let op = d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/targets/{new}/chap-secret"),
        Some(json!({"secret": "x".repeat(1025)})),
    );
    assert_eq!(
        (op["state"].as_str(), op["name"].as_str()),
        (Some("FAILED"), Some("E_INVALIDARG")),
        "{op}"
    );
    assert!(!op.to_string().contains("xxxxxxxx"), "{op}");
    ok(d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/targets/{new}/chap-secret"),
        Some(json!({"secret": null})),
    ));
    assert_eq!(
        d.get_json(&format!("/v1/subsystems/{sub}/targets/{new}"))["chap_enabled"],
        false
    );
    ok(d.operation(
        "DELETE",
        &format!("/v1/subsystems/{sub}/targets/{new}"),
        None,
    ));
    // A failure inside an operation: the result code, as VDS's Wait gives it.
    let op = d.operation(
        "POST",
        &format!("/v1/subsystems/{sub}/targets"),
        Some(json!({"iscsi_name": DB})),
    );
    assert_eq!(op["state"], "FAILED");
    assert_eq!(op["name"], "VDS_E_NAME_NOT_UNIQUE");
    assert_eq!(op["error"]["hresult"], "0x80042701");
    let _ = target;
    ok(d.operation("POST", "/v1/refresh", None));
    ok(d.operation("POST", "/v1/refresh?provider=vds-sim", None));
    ok(d.operation("POST", &format!("/v1/subsystems/{sub}/refresh"), None));
    ok(d.operation("POST", "/v1/reenumerate", None));
    // Providers: add one, then remove it.
    let op = ok(d.operation(
        "POST",
        "/v1/providers",
        Some(json!({"name": "lab2", "kind": "sim", "settings": {"subsystems": 2, "portals": 3}})),
    ));
    assert_eq!(op["output"]["subsystems"].as_array().unwrap().len(), 2);
    let a = d.request("DELETE", "/v1/providers/lab2", None).unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    // 202 without a wait, then QueryStatus; Cancel of a finished one is too late.
    let a = d.request("POST", "/v1/refresh", None).unwrap();
    assert!(a.status == 202 || a.status == 200);
    let op: Value = a.json().unwrap();
    let loc = a.header("location").unwrap().to_string();
    assert_eq!(
        loc,
        format!("/v1/operations/{}", op["id"].as_str().unwrap())
    );
    let done: Value = d.get(&format!("{loc}?wait=30")).unwrap().json().unwrap();
    assert_eq!(done["state"], "SUCCEEDED");
    let a = d.request("DELETE", &loc, None).unwrap();
    assert_eq!(a.status, 409);
    assert_eq!(
        a.json::<Value>().unwrap()["error"]["name"],
        "VDS_E_CANCEL_TOO_LATE"
    );
    assert!(d.get_json("/v1/operations").as_array().unwrap().len() > 10);
    assert_eq!(d.stop().code(), Some(0));
}

fn expect(d: &Daemon, method: &str, path: &str, body: Option<&[u8]>, status: u16, name: &str) {
    let sock = tokio::net::UnixStream::connect(&d.socket);
    let a =
        d.rt.block_on(async {
            vds_client::request_over(
                sock.await.unwrap(),
                method,
                path,
                &[],
                body.map(<[u8]>::to_vec),
                Duration::from_secs(30),
            )
            .await
        })
        .unwrap();
    assert_eq!(
        a.status,
        status,
        "{method} {path}: {}",
        String::from_utf8_lossy(&a.body)
    );
    let v: Value = a.json().unwrap();
    assert_eq!(v["error"]["name"], name, "{v}");
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(a.header("content-type"), Some("application/json"));
}

#[test]
fn errors_have_a_body_and_the_documented_status() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    expect(
        &d,
        "GET",
        "/v1/subsystems/nope/portals",
        None,
        404,
        "VDS_E_OBJECT_NOT_FOUND",
    );
    expect(
        &d,
        "GET",
        "/v1/subsystems/00000000-0000-0000-0000-000000000000",
        None,
        404,
        "VDS_E_OBJECT_NOT_FOUND",
    );
    expect(
        &d,
        "GET",
        "/v1/objects/not-a-guid",
        None,
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "GET",
        "/v1/nowhere",
        None,
        404,
        "VDS_E_OBJECT_NOT_FOUND",
    );
    expect(&d, "PATCH", "/v1/providers", None, 405, "E_INVALIDARG");
    expect(
        &d,
        "PUT",
        &format!("/v1/subsystems/{SUB}/portals/192.0.2.10:3260/status"),
        Some(b"{not json"),
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "PUT",
        &format!("/v1/subsystems/{SUB}/portals/192.0.2.10:3260/status"),
        Some(br#"{"status":"FAILED"}"#),
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "PUT",
        &format!("/v1/subsystems/{SUB}/portals/192.0.2.10:3260/status"),
        Some(br#"{"status":"ONLINE","x":1}"#),
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "GET",
        &format!("/v1/subsystems/{SUB}/portals/no-port"),
        None,
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "GET",
        &format!(
            "/v1/subsystems/{SUB}/targets/{}/portal-groups/99999",
            segment(DB)
        ),
        None,
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "GET",
        "/v1/operations/00000000-0000-0000-0000-000000000000?wait=31",
        None,
        404,
        "VDS_E_OBJECT_NOT_FOUND",
    );
    expect(&d, "POST", "/v1/refresh?wait=31", None, 400, "E_INVALIDARG");
    expect(
        &d,
        "GET",
        "/v1/events?object_type=lun",
        None,
        400,
        "E_INVALIDARG",
    );
    expect(
        &d,
        "GET",
        "/v1/subsystems?bogus=1",
        None,
        400,
        "E_INVALIDARG",
    );
    // A body over the limit (1 MiB): refused from its Content-Length, before it is read.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "POST /v1/providers HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\nconnection: close\r\n\r\n").unwrap();
    let _ = s.write_all(&vec![b' '; 65536]);
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""name":"E_INVALIDARG""#), "{answer}");
    assert_eq!(d.stop().code(), Some(0));
}

/// Reads SSE lines from a raw connection until `want` notifications arrived (deadline 30 s).
fn sse(
    socket: &std::path::Path,
    extra: &str,
    want: usize,
) -> (Vec<(String, String, Value)>, std::os::unix::net::UnixStream) {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /v1/events HTTP/1.1\r\nhost: x\r\n{extra}\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut events = Vec::new();
    let (mut event, mut id) = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while events.len() < want {
        assert!(Instant::now() < deadline, "events: {events:?}");
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(i) = line.strip_prefix("id: ") {
            id = i.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                events.push((event.clone(), id.clone(), v));
            }
        }
    }
    (events, s)
}

#[test]
fn events_are_pushed_and_replayed_after_a_reconnect() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s", "--config", "/dev/null"]);
    let (sub, portal, _) = ids(&d);
    let socket = d.socket.clone();
    let waiter = std::thread::spawn(move || sse(&socket, "", 1).0);
    std::thread::sleep(Duration::from_millis(300));
    d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/portals/{portal}/status"),
        Some(json!({"status": "OFFLINE"})),
    );
    let got = waiter.join().unwrap();
    assert_eq!(got[0].0, "notification");
    assert_eq!(got[0].2["event"], 125);
    assert_eq!(got[0].2["object_type"], 36);
    assert_eq!(got[0].2["id"], portal.as_str());
    let first: u64 = got[0].1.parse().unwrap();
    // Two more while nobody listens; a reconnect with Last-Event-ID replays them, in order.
    d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/portals/{portal}/status"),
        Some(json!({"status": "ONLINE"})),
    );
    d.operation(
        "PUT",
        &format!("/v1/subsystems/{sub}/portals/{portal}/status"),
        Some(json!({"status": "OFFLINE"})),
    );
    let (replayed, _) = sse(&d.socket, &format!("last-event-id: {first}\r\n"), 2);
    let ids: Vec<u64> = replayed.iter().map(|e| e.1.parse().unwrap()).collect();
    assert_eq!(ids, vec![first + 1, first + 2]);
    // An id from before the daemon started: the lost event (S_FALSE) first.
    let (lost, _) = sse(&d.socket, "last-event-id: 5\r\n", 1);
    assert_eq!(lost[0].0, "notifications-lost");
    assert_eq!(lost[0].2["name"], "S_FALSE");
    // A filter that excludes portals sees nothing of them; one on the subsystem sees them.
    let (only, _) = sse(&d.socket, &format!("last-event-id: {first}\r\n"), 0);
    assert!(only.is_empty());
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(
        s,
        "GET /v1/events?object_type=target&last_event_id={first} HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    let _ = BufReader::new(s).read_line(&mut buf);
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
    assert_eq!(
        d.stop().code(),
        Some(0),
        "SIGTERM ends the event streams and exits 0"
    );
}

/// Every route of the OpenAPI document, with its placeholders filled.
fn routes(d: &Daemon) -> Vec<(String, String)> {
    let (sub, portal, target) = ids(d);
    let spec = d.get_json("/v1/openapi.json");
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let p = path
                .replace("{subsystem}", &sub)
                .replace("{portal}", &portal)
                .replace("{target}", &target)
                .replace("{group}", "1")
                .replace("{provider}", "vds-sim")
                .replace("{operation}", "00000000-0000-0000-0000-000000000000")
                .replace("{id}", &sub);
            out.push((method.to_uppercase(), p));
        }
    }
    out
}

#[test]
fn a_caller_of_another_uid_is_refused_on_every_route() {
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("setpriv (util-linux) is needed");
    }
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    // Let uid 65534 reach the socket, so that it is the daemon that refuses it.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut routes = routes(&d);
    assert!(routes.len() >= 35, "{routes:?}");
    // The Redfish view too, refused in Redfish's error format (checked below).
    for path in [
        "/redfish/v1",
        "/redfish/v1/Fabrics/iSCSI/Endpoints",
        "/redfish/v1/EventService/SSE",
    ] {
        routes.push(("GET".to_string(), path.to_string()));
    }
    for (method, path) in &routes {
        for _ in 0..2 {
            let out = std::process::Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "curl",
                    "-s",
                    "-o",
                    "-",
                    "-w",
                    "\n%{http_code}",
                    "-X",
                    method,
                    "--unix-socket",
                ])
                .arg(&d.socket)
                .arg(format!("http://vdsd{path}"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let (body, code) = text.rsplit_once('\n').unwrap();
            assert_eq!(code, "403", "{method} {path}: {text}");
            let v: Value = serde_json::from_str(body).unwrap();
            if path.starts_with("/redfish") {
                let info = &v["error"]["@Message.ExtendedInfo"][0];
                assert_eq!(
                    v["error"]["code"], "Base.1.22.InsufficientPrivilege",
                    "{path}"
                );
                assert_eq!(info["Oem"]["Vds"]["HResult"], "0x80070005", "{path}");
                continue;
            }
            assert_eq!(v["error"]["hresult"], "0x80070005", "{method} {path}");
            assert_eq!(v["error"]["name"], "E_ACCESSDENIED");
        }
    }
    // Root still may.
    d.get_json("/v1/subsystems");
    assert_eq!(d.stop().code(), Some(0));
}
