//! The Redfish view over real arrays: DMTF's own validator, a real Redfish client, the event
//! stream when a tgtd portal goes away, and the protocol rules a client relies on. Each test
//! serves the view on its own loopback port (and Unix socket) and starts its own peers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use vds_redfish::Redfish;
use vds_service::{NewSubsystem, Scope, Service, ServiceOptions, SubsystemSel};
use vds_testpeers::{Istgt, IstgtConfig, Tgtd, TgtdConfig, free_port, python_tool};

/// The view of `service`, served on a loopback port and a Unix socket until the test ends.
struct Served {
    tcp: String,
    socket: PathBuf,
    _dir: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(service: &Service) -> Served {
    let router = Redfish::new(service.clone()).router();
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", free_port()))
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("dir");
    let socket = dir.path().join("redfish.sock");
    let unix = tokio::net::UnixListener::bind(&socket).expect("bind unix");
    let (r1, r2) = (router.clone(), router);
    let tasks = vec![
        tokio::spawn(async move {
            axum::serve(tcp, r1).await.expect("serve tcp");
        }),
        tokio::spawn(async move {
            axum::serve(unix, r2).await.expect("serve unix");
        }),
    ];
    Served {
        tcp: addr,
        socket,
        _dir: dir,
        tasks,
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`, within 10 s.
async fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8(raw).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the request took more than 10 s")
}

async fn get(addr: &str, path: &str) -> Value {
    let r = request(addr, "GET", path, &[]).await;
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r.json()
}

/// A store with a simulator provider, and the tgtd and istgt given registered with SendTargets.
async fn fleet(store: &Path, tgtd: &Tgtd, istgt: &Istgt) -> Service {
    let service = open(store);
    service
        .add_provider("lab", "sim", toml::Table::new(), true)
        .await
        .expect("sim provider");
    register(&service, "tgt", tgtd.portals().to_vec()).await;
    register(&service, "istgt", istgt.portals(1)).await;
    service
}

/// A new store at `store`.
fn open(store: &Path) -> Service {
    Service::open(ServiceOptions {
        create: true,
        ..ServiceOptions::new(store)
    })
    .expect("store")
}

/// Registers `name` with the SendTargets provider and discovers it.
async fn register(service: &Service, name: &str, portals: Vec<String>) {
    service
        .add_subsystem(
            None,
            NewSubsystem {
                name: name.into(),
                portals,
                initiator_name: None,
                chap: None,
                mutual: None,
            },
            true,
        )
        .await
        .expect("register");
}

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

/// DMTF's schema bundle (DSP8010): `$VDS_REDFISH_SCHEMAS`, else the copy beside this project.
fn schema_bundle() -> Option<PathBuf> {
    let dir = std::env::var_os("VDS_REDFISH_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/redfish/csdl")
        });
    dir.join("ServiceRoot_v1.xml").is_file().then_some(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmtf_s_validator_passes_over_tgtd_istgt_and_the_simulator() {
    let Some(bundle) = schema_bundle() else {
        eprintln!(
            "SKIPPED: DMTF's Redfish schema bundle is not here (set VDS_REDFISH_SCHEMAS to its csdl \
             directory; it is DSP8010, https://www.dmtf.org/dsp/DSP8010). Every other Redfish test \
             still runs."
        );
        return;
    };
    let validator = python_tool("rf_service_validator").expect("the validator");
    let (tgtd, istgt) = (tgtd_with_targets(), istgt());
    let store = tempfile::tempdir().expect("store");
    let service = fleet(store.path(), &tgtd, &istgt).await;
    let served = serve(&service).await;
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
    // Over the Unix socket, as vdsd serves it by default.
    let rhost = format!(
        "http+unix://{}",
        served.socket.display().to_string().replace('/', "%2F")
    );
    let out = tokio::process::Command::new(validator)
        .args([
            "--rhost",
            &rhost,
            "--authtype",
            "Basic",
            "-u",
            "vds",
            "-p",
            "-",
        ])
        .arg("--skipschema")
        .arg("--schema_directory")
        .arg(schemas.path())
        .arg("--logdir")
        .arg(logs.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .expect("the validator took more than 5 minutes")
        .expect("run the validator");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
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
    let (pass, warn, fail) = (counts[0], counts[1], counts[2]);
    assert_eq!((warn, fail), (0, 0), "warnings or failures:\n{text}");
    // Every Endpoint was checked: three tgtd portals, istgt's, and the simulator's.
    let endpoints = text
        .lines()
        .filter(|l| l.starts_with("Validating /redfish/v1/Fabrics/iSCSI/Endpoints/"))
        .count();
    let portals: usize = service
        .inventory(None)
        .expect("inventory")
        .iter()
        .map(|s| s.portals.len())
        .sum();
    assert_eq!(endpoints, portals, "{text}");
    assert!(pass > 100, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redfish_client_lists_the_endpoints_vdsadm_lists() {
    let python = python_tool("python").expect("the python-redfish-library");
    let (tgtd, istgt) = (tgtd_with_targets(), istgt());
    let store = tempfile::tempdir().expect("store");
    let service = fleet(store.path(), &tgtd, &istgt).await;
    let served = serve(&service).await;
    // DMTF's python-redfish-library walks the Fabric's Endpoints as any client would.
    let script = r#"
import json, sys, redfish
client = redfish.redfish_client(base_url="http://" + sys.argv[1], username="", password="", timeout=10)
fabrics = client.get("/redfish/v1/Fabrics").dict
out = []
for f in fabrics["Members"]:
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
                    e["Oem"]["Vds"]["VdsStatus"]])
print(json.dumps(out))
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", script, &served.tcp])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("the client took more than 2 minutes")
        .expect("run the client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen: Vec<(String, String, String, u64, String)> =
        serde_json::from_slice(&out.stdout).expect("client output");
    // What `vdsadm --json list tportals --subsystem S` prints, for each subsystem.
    let mut want = Vec::new();
    for row in service.list_subsystems(None).expect("subsystems") {
        let sel = SubsystemSel {
            provider: Some(row.provider.clone()),
            name: row.name.clone(),
        };
        for p in service.list_portals(&sel).expect("portals") {
            want.push((
                row.name.clone(),
                p.id,
                p.address,
                u64::from(p.port),
                p.status,
            ));
        }
    }
    seen.sort();
    want.sort();
    assert_eq!(seen, want);
    assert!(
        want.iter().any(|w| w.0 == "tgt" && w.2 == "::1"),
        "the IPv6 portal of tgtd is among them"
    );
}

/// Reads server-sent events from `path` until `pick` accepts one, within `deadline`.
async fn read_events(
    addr: &str,
    path: &str,
    last_event_id: Option<u64>,
    deadline: Duration,
    ready: tokio::sync::oneshot::Sender<()>,
    mut pick: impl FnMut(u64, &Value) -> bool,
) -> Vec<(u64, Value)> {
    let run = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut lines = BufReader::new(s).lines();
        // The head, then a chunked body whose data lines are SSE lines.
        let status = lines.next_line().await.expect("read").expect("status");
        assert!(status.contains(" 200 "), "{status}");
        while let Some(l) = lines.next_line().await.expect("read") {
            if l.is_empty() {
                break;
            }
        }
        let _ = ready.send(());
        let mut got = Vec::new();
        let mut id = None;
        while let Some(l) = lines.next_line().await.expect("read") {
            if let Some(v) = l.strip_prefix("id:") {
                id = v.trim().parse::<u64>().ok();
            } else if let Some(data) = l.strip_prefix("data:") {
                let doc: Value = serde_json::from_str(data.trim()).expect("event JSON");
                let n = id.take().expect("an id before the data");
                let done = pick(n, &doc);
                got.push((n, doc));
                if done {
                    return got;
                }
            }
        }
        panic!("the stream ended: {got:?}");
    };
    tokio::time::timeout(deadline, run)
        .await
        .expect("no such event within the deadline")
}

fn has_message(doc: &Value, message: &str, origin: &str) -> bool {
    doc["Events"].as_array().is_some_and(|events| {
        events
            .iter()
            .any(|e| e["MessageId"] == message && e["OriginOfCondition"]["@odata.id"] == origin)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_that_goes_away_is_pushed_as_resource_changed_and_replayed() {
    let tgtd = tgtd_with_targets();
    let store = tempfile::tempdir().expect("store");
    let service = open(store.path());
    register(&service, "tgt", tgtd.portals().to_vec()).await;
    let served = serve(&service).await;
    let sel = SubsystemSel::named("tgt");
    let gone = tgtd.portals()[1].clone(); // 127.0.0.2:PORT
    let portal = service
        .list_portals(&sel)
        .expect("portals")
        .into_iter()
        .find(|p| format!("{}:{}", p.address, p.port) == gone)
        .unwrap_or_else(|| panic!("{gone} in {:?}", service.list_portals(&sel)));
    assert_eq!(portal.status, "ONLINE");
    let endpoint = format!("/redfish/v1/Fabrics/iSCSI/Endpoints/{}", portal.id);
    let sse = get(&served.tcp, "/redfish/v1/EventService").await["ServerSentEventUri"]
        .as_str()
        .expect("ServerSentEventUri")
        .to_string();

    let (ready, connected) = tokio::sync::oneshot::channel();
    let addr = served.tcp.clone();
    let (path, origin) = (sse.clone(), endpoint.clone());
    let reader = tokio::spawn(async move {
        read_events(
            &addr,
            &path,
            None,
            Duration::from_secs(60),
            ready,
            |_, doc| has_message(doc, "ResourceEvent.1.4.ResourceChanged", &origin),
        )
        .await
    });
    connected.await.expect("connected");
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
    service
        .refresh(Scope::Subsystem(sel.clone()))
        .await
        .expect("refresh");
    let events = reader.await.expect("reader");
    let (id, doc) = events.last().cloned().expect("an event");
    assert!(
        has_message(
            &doc,
            "ResourceEvent.1.4.ResourceStatusChangedWarning",
            &endpoint
        ),
        "the health change is announced too: {doc}"
    );
    // The Endpoint now says so.
    let e = get(&served.tcp, &endpoint).await;
    assert_eq!(e["Status"]["State"], "StandbyOffline", "{e}");

    // A client that reconnects with the id before it gets the event again, and then new ones.
    let (ready, connected) = tokio::sync::oneshot::channel();
    let addr = served.tcp.clone();
    let replay = tokio::spawn(async move {
        read_events(
            &addr,
            &sse,
            Some(id - 1),
            Duration::from_secs(30),
            ready,
            |n, _| n == id,
        )
        .await
    });
    connected.await.expect("connected");
    let again = replay.await.expect("replay");
    assert_eq!(again.first().map(|(n, _)| *n), Some(id), "{again:?}");
    assert_eq!(again.last().map(|(_, d)| d.clone()), Some(doc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_client_relies_on() {
    let service = Service::simulator().await.expect("simulator");
    let served = serve(&service).await;
    let a = &served.tcp;
    let root = request(a, "GET", "/redfish/v1/", &[]).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.header("odata-version"), Some("4.0"));
    assert_eq!(root.header("cache-control"), Some("no-cache"));
    assert!(
        root.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let root = root.json();
    assert_eq!(root["@odata.id"], "/redfish/v1");
    assert_eq!(get(a, "/redfish").await["v1"], "/redfish/v1/");

    // Every link of the root resolves, and collections count their members.
    for key in ["Storage", "Fabrics", "EventService", "SessionService"] {
        let doc = get(a, root[key]["@odata.id"].as_str().expect("link")).await;
        if let Some(members) = doc["Members"].as_array() {
            assert_eq!(doc["Members@odata.count"], members.len(), "{key}");
            for m in members {
                get(a, m["@odata.id"].as_str().expect("member")).await;
            }
        }
    }
    let storage = get(a, "/redfish/v1/Storage").await;
    assert_eq!(
        storage["Members@odata.count"],
        service
            .list_subsystems(None)
            .expect("rows")
            .iter()
            .filter(|r| r.id.is_some())
            .count()
    );
    // $metadata is XML and names the OEM schema, which is served.
    let meta = request(a, "GET", "/redfish/v1/$metadata", &[]).await;
    assert!(
        meta.header("content-type")
            .is_some_and(|c| c.starts_with("application/xml"))
    );
    assert!(meta.body.contains("/redfish/v1/Schemas/VdsRedfish_v1.xml"));
    let oem = request(a, "GET", "/redfish/v1/Schemas/VdsRedfish_v1.xml", &[]).await;
    assert_eq!(oem.status, 200);

    // Read-only: 405 with Allow, in Redfish's error format with the HRESULT.
    for method in ["POST", "PATCH", "PUT", "DELETE"] {
        let r = request(a, method, "/redfish/v1/Storage", &[("Content-Length", "0")]).await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        let info = &r.json()["error"]["@Message.ExtendedInfo"][0];
        assert_eq!(info["MessageId"], "Base.1.22.OperationNotAllowed");
        assert_eq!(info["Oem"]["Vds"]["HResult"], "0x80042400");
        assert_eq!(info["Oem"]["Vds"]["HResultName"], "VDS_E_NOT_SUPPORTED");
    }
    // An object that does not exist: 404, ResourceMissingAtURI, VDS_E_OBJECT_NOT_FOUND.
    let missing = "/redfish/v1/Fabrics/iSCSI/Endpoints/00000000-0000-0000-0000-000000000000";
    let r = request(a, "GET", missing, &[]).await;
    assert_eq!(r.status, 404);
    let e = r.json();
    assert_eq!(e["error"]["code"], "Base.1.22.ResourceMissingAtURI");
    assert_eq!(
        e["error"]["@Message.ExtendedInfo"][0]["MessageArgs"][0],
        missing
    );
    assert_eq!(
        e["error"]["@Message.ExtendedInfo"][0]["Oem"]["Vds"]["HResultName"],
        "VDS_E_OBJECT_NOT_FOUND"
    );
    assert_eq!(request(a, "GET", "/redfish/v2", &[]).await.status, 404);
    // A request for another OData version is refused.
    let r = request(a, "GET", "/redfish/v1", &[("OData-Version", "5.0")]).await;
    assert_eq!(r.status, 412);
    // HEAD: the headers without the body.
    let r = request(a, "HEAD", "/redfish/v1/Storage", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.header("odata-version"), Some("4.0"));
    // The event stream only streams.
    let r = request(a, "HEAD", "/redfish/v1/EventService/SSE", &[]).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
}
