//! The TLS listener on loopback: bearer tokens (none, wrong, read-only, admin), the same API; and
//! the plain metrics listener serving /metrics only.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Daemon;
use vds_client::{Answer, request_over};

fn tls_request(port: u16, ca: &[u8], method: &str, path: &str, token: Option<&str>) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    tls_request_with(port, ca, method, path, &headers)
}

fn tls_request_with(
    port: u16,
    ca: &[u8],
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        request_over(tls, method, path, headers, None, Duration::from_secs(30))
            .await
            .unwrap()
    })
}

fn name_of(a: &Answer) -> String {
    a.json::<serde_json::Value>().unwrap()["error"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn tokens_decide_what_a_tls_client_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::TlsFiles::new(dir.path());
    let admin = tls.token("ops", "admin");
    let reader = tls.token("grafana", "read-only");
    let port = vds_testpeers::free_port();
    let mport = vds_testpeers::free_port();
    let metrics = format!("127.0.0.1:{mport}");
    let mut args = vec!["--sim", "--refresh-interval", "0s", "--metrics", &metrics];
    let listen = tls.args(&format!("127.0.0.1:{port}"));
    args.extend(listen.iter().map(String::as_str));
    let d = Daemon::start(&args);
    let cert_pem = tls.cert_pem.clone();
    let ca = cert_pem.as_bytes();
    let a = tls_request(port, ca, "GET", "/v1/subsystems", None);
    assert_eq!((a.status, name_of(&a)), (401, "E_ACCESSDENIED".into()));
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    let a = tls_request(port, ca, "GET", "/v1/subsystems", Some("wrong"));
    assert_eq!((a.status, name_of(&a)), (401, "E_ACCESSDENIED".into()));
    let a = tls_request(port, ca, "GET", "/v1/subsystems", Some(&reader));
    assert_eq!(a.status, 200);
    let a = tls_request(port, ca, "GET", "/v1/service", Some(&reader));
    assert_eq!(
        a.json::<serde_json::Value>().unwrap()["caller_role"],
        "read-only"
    );
    for (m, p) in [
        ("POST", "/v1/refresh"),
        ("POST", "/v1/reenumerate"),
        ("DELETE", "/v1/providers/vds-sim"),
    ] {
        let a = tls_request(port, ca, m, p, Some(&reader));
        assert_eq!(
            (a.status, name_of(&a)),
            (403, "E_ACCESSDENIED".into()),
            "{m} {p}"
        );
        let a = tls_request(port, ca, m, p, Some("wrong"));
        assert_eq!(a.status, 401, "{m} {p}");
    }
    // The Redfish view on the same listener, under the same tokens, refusing in Redfish's format.
    let a = tls_request(port, ca, "GET", "/redfish/v1/Storage", None);
    let v: serde_json::Value = a.json().unwrap();
    assert_eq!(
        (a.status, v["error"]["code"].as_str()),
        (401, Some("Base.1.22.NoValidSession"))
    );
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    let a = tls_request(port, ca, "GET", "/redfish/v1/Storage", Some(&reader));
    assert_eq!(a.status, 200);
    assert_eq!(a.header("odata-version"), Some("4.0"));
    assert_eq!(
        a.json::<serde_json::Value>().unwrap()["Members@odata.count"],
        2
    );
    // Redfish clients send the token as a session token (X-Auth-Token), which vdsd takes too.
    let a = tls_request_with(
        port,
        ca,
        "GET",
        "/redfish/v1/Storage",
        &[("x-auth-token", reader.as_str())],
    );
    assert_eq!(a.status, 200);
    let a = tls_request_with(
        port,
        ca,
        "GET",
        "/v1/subsystems",
        &[("x-auth-token", "wrong")],
    );
    assert_eq!(a.status, 401);
    let a = tls_request(port, ca, "POST", "/redfish/v1/Storage", Some(&reader));
    assert_eq!(a.status, 403, "a read-only token may not even try");
    let a = tls_request(port, ca, "POST", "/redfish/v1/Storage", Some(&admin));
    assert_eq!(
        (a.status, a.header("allow")),
        (405, Some("GET, HEAD")),
        "read-only for everyone"
    );
    let a = tls_request(port, ca, "POST", "/v1/refresh?wait=30", Some(&admin));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json::<serde_json::Value>().unwrap()["state"], "SUCCEEDED");
    // The metrics listener: /metrics in plain HTTP, nothing else.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let m = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", mport))
            .await
            .unwrap();
        request_over(tcp, "GET", "/metrics", &[], None, Duration::from_secs(30))
            .await
            .unwrap()
    });
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body).unwrap();
    assert!(text.contains("vds_portal_up{provider=\"vds-sim\",subsystem=\"sim-array-1\",address=\"192.0.2.10\",port=\"3260\"} 1"), "{text}");
    assert!(
        text.contains(
            "vds_api_requests_total{route=\"/v1/refresh\",method=\"POST\",status=\"200\"} 1"
        ),
        "{text}"
    );
    let other = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", mport))
            .await
            .unwrap();
        request_over(
            tcp,
            "GET",
            "/v1/subsystems",
            &[],
            None,
            Duration::from_secs(30),
        )
        .await
        .unwrap()
    });
    assert_eq!(other.status, 404);
    assert_eq!(d.stop().code(), Some(0));
}
