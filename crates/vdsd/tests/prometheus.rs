//! The metrics as Prometheus takes them: a real Prometheus server (Debian's `prometheus` package,
//! `scripts/install-deps.sh`) with its own temp dir and configuration, on a free loopback port,
//! scrapes vdsd's `--metrics` listener; after a tgtd portal is deleted and a refresh runs, a PromQL
//! query through Prometheus's HTTP API shows that portal down. And `promtool check metrics` accepts
//! the scrape. Prometheus is stopped by its PID.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;
use vds_client::{Answer, request_over, segment};
use vds_testpeers::{Tgtd, TgtdConfig, free_port};

/// One plain HTTP GET on loopback (deadline 10 s).
fn http_get(port: u16, path: &str) -> Result<Answer, vds_model::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| vds_model::Error::new(vds_model::Hresult::from_io_error(&e)))?;
        request_over(tcp, "GET", path, &[], None, Duration::from_secs(10)).await
    })
}

/// A Prometheus server of this test's own, scraping `target` every second.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vdsd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (scripts/install-deps.sh installs it)");
        let mut p = Prometheus { child, port, dir };
        let end = Instant::now() + Duration::from_secs(60);
        while !http_get(port, "/-/ready").is_ok_and(|a| a.status == 200) {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited ({status}): {}", p.log());
            }
            assert!(
                Instant::now() < end,
                "prometheus not ready in 60 s: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query.
    fn query(&self, promql: &str) -> Vec<Value> {
        let a = http_get(
            self.port,
            &format!("/api/v1/query?query={}", segment(promql)),
        )
        .expect("query");
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let v: Value = a.json().expect("JSON");
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The result of `promql` once it is not empty (polled, within `deadline`).
    fn until(&self, promql: &str, deadline: Duration) -> Vec<Value> {
        let end = Instant::now() + deadline;
        loop {
            let r = self.query(promql);
            if !r.is_empty() {
                return r;
            }
            assert!(
                Instant::now() < end,
                "{promql}: still empty after {deadline:?}; up: {:?}; log: {}",
                self.query("up"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        common::signal(self.child.id(), libc::SIGTERM);
        if common::wait_deadline(&mut self.child, Duration::from_secs(30)).is_none() {
            common::signal(self.child.id(), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

#[test]
fn prometheus_shows_the_tgtd_portal_that_went_down() {
    let port = free_port();
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")],
    })
    .expect("tgtd");
    tgtd.add_target(1, "iqn.2026-12.test.vds:prometheus")
        .expect("target");
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), false, &[("tgt", tgtd.portals().to_vec())]);
    let metrics = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&[
        "--store",
        store.path().to_str().expect("utf-8"),
        "--refresh-interval",
        "0s",
        "--metrics",
        &metrics,
    ]);
    let prometheus = Prometheus::start(&metrics);
    let gone = format!(r#"vds_portal_up{{subsystem="tgt",address="127.0.0.2",port="{port}"}}"#);
    // Scraped, and up.
    let up = prometheus.until(&format!("{gone} == 1"), Duration::from_secs(60));
    assert_eq!(up[0]["metric"]["job"], "vdsd", "{up:?}");
    assert_eq!(up[0]["metric"]["provider"], "vds-sendtargets", "{up:?}");
    tgtd.delete_portal(&format!("127.0.0.2:{port}"))
        .expect("tgtadm --op delete --mode portal");
    let op = d.operation("POST", "/v1/subsystems/tgt/refresh", None);
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    // The portal that went down, and only it.
    let down = prometheus.until("vds_portal_up == 0", Duration::from_secs(60));
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0]["metric"]["address"], "127.0.0.2", "{down:?}");
    assert_eq!(down[0]["metric"]["port"], port.to_string(), "{down:?}");
    assert_eq!(down[0]["metric"]["subsystem"], "tgt", "{down:?}");
    let still = prometheus.query(&format!(
        r#"vds_portal_up{{subsystem="tgt",address="127.0.0.1",port="{port}"}} == 1"#
    ));
    assert_eq!(still.len(), 1, "the other portal stays up: {still:?}");
    // The refresh and its notification were counted too.
    prometheus.until(
        r#"vds_notifications_total{event="PORTAL_MODIFY"} >= 1"#,
        Duration::from_secs(30),
    );
    drop(prometheus);
    assert_eq!(d.stop().code(), Some(0));
}

/// `promtool check metrics` on what a scrape gets.
fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let status = common::wait_deadline(&mut child, Duration::from_secs(60));
    if status.is_none() {
        common::signal(child.id(), libc::SIGKILL);
    }
    let out = child.wait_with_output().expect("promtool output");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (status.is_some_and(|s| s.success()), said)
}

#[test]
fn promtool_accepts_the_scrape() {
    let mport = free_port();
    let metrics = format!("127.0.0.1:{mport}");
    // Periodic refreshes every second, for the refresh histogram.
    let d = Daemon::start(&["--sim", "--refresh-interval", "1s", "--metrics", &metrics]);
    // Something in every family: refreshes, a notification, answers of several statuses, an
    // event-stream client.
    let portals = d.get_json("/v1/subsystems/sim-array-1/portals");
    let id = portals[0]["id"].as_str().expect("portal id");
    let op = d.operation(
        "PUT",
        &format!("/v1/subsystems/sim-array-1/portals/{id}/status"),
        Some(serde_json::json!({"status": "OFFLINE"})),
    );
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    assert_eq!(d.get("/v1/subsystems/nope").expect("answer").status, 404);
    let _stream = common::Events::open(&d.socket, "/v1/events", Some(1));
    let end = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let scrape = http_get(mport, "/metrics").expect("scrape");
        assert_eq!(scrape.status, 200);
        let text = String::from_utf8(scrape.body).expect("utf-8");
        if text.contains("vds_refresh_duration_seconds_bucket") {
            break text;
        }
        assert!(Instant::now() < end, "no periodic refresh in 60 s:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for family in [
        "vds_portal_up",
        "vds_portal_status",
        "vds_subsystem_status",
        "vds_subsystem_health",
        "vds_cache_health",
        "vds_refresh_duration_seconds_bucket",
        "vds_notifications_total",
        "vds_api_requests_total",
        "vds_event_stream_clients 1",
        "vds_event_stream_lost_total 1",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool warned: {said}");
    // A document promtool refuses is refused: the check is not vacuous.
    let (ok, _) = promtool_check("# TYPE x_total counter\nx_total{a=\"1\" 1\n");
    assert!(!ok, "promtool accepted a broken document");
    assert!(Path::new(&d.socket).exists());
    assert_eq!(d.stop().code(), Some(0));
}
