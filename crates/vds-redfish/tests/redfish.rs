//! The Redfish view's protocol rules, served in-process over the simulator: what any Redfish
//! client relies on (headers, links, collections, `$metadata`, read-only methods, error bodies
//! with their HRESULT). The view over real arrays, DMTF's validator, a real client and the event
//! stream are tested through vdsd (`crates/vdsd/tests/redfish.rs`).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vds_redfish::Redfish;
use vds_service::Service;

/// The view of `service`, served on a loopback port until the test ends.
struct Served {
    tcp: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(service: &Service) -> Served {
    let router: axum::Router = Redfish::new(service.clone()).router();
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        axum::serve(tcp, router).await.expect("serve");
    });
    Served { tcp: addr, task }
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
