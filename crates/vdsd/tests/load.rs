//! Load and faults over the Unix socket: 64 clients making 2,000 mixed requests each against the
//! simulator; SIGKILL of vdsd while refreshes run under load, then a restart; 1,000 idle and
//! byte-at-a-time connections beside a client that must still be served; the connection limit and
//! the head timeout as docs/DAEMON.md ("Limits") says. Every wait has a deadline. The tests of this
//! file run one at a time (they measure the daemon's answers on two shared cores).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vds_client::Client;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What one request of the mix may answer without it being a failure.
fn check(method: &str, path: &str, a: &vds_client::Answer) -> Result<(), String> {
    let body = || String::from_utf8_lossy(&a.body).to_string();
    if a.status != 200 {
        return Err(format!("{method} {path}: {} {}", a.status, body()));
    }
    if path.contains("wait=") {
        // An operation, waited for: it succeeded, or it met another call on the same subsystem
        // (VDS_E_ANOTHER_CALL_IN_PROGRESS: VDS's answer, expected when clients collide).
        let op: Value = a.json().map_err(|e| format!("{method} {path}: {e}"))?;
        let ok = op["state"] == "SUCCEEDED"
            || (op["state"] == "FAILED" && op["name"] == "VDS_E_ANOTHER_CALL_IN_PROGRESS");
        if !ok {
            return Err(format!("{method} {path}: {op}"));
        }
    }
    Ok(())
}

#[test]
fn sixty_four_clients_of_two_thousand_mixed_requests_each() {
    const CLIENTS: usize = 64;
    const REQUESTS: usize = 2_000;
    let _serial = serial();
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    let portals = d.get_json("/v1/subsystems/sim-array-1/portals");
    let portals: Vec<String> = portals
        .as_array()
        .expect("portals")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect();
    let targets = d.get_json("/v1/subsystems/sim-array-1/targets");
    let target = targets[0]["id"].as_str().expect("id").to_string();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let rt = runtime();
    let failures: Vec<String> = rt.block_on(async {
        let client = Client::new(&d.socket);
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..CLIENTS {
            let (client, portals, target) = (client.clone(), portals.clone(), target.clone());
            tasks.spawn(async move {
                let mut failures = Vec::new();
                for i in 0..REQUESTS {
                    let portal = &portals[(c + i) % portals.len()];
                    // 1 in 40 a refresh, 1 in 40 a change, the rest queries.
                    let (method, path, body) = match (c * 7 + i) % 40 {
                        0 => (
                            "POST",
                            "/v1/subsystems/sim-array-1/refresh?wait=30".to_string(),
                            None,
                        ),
                        1 => (
                            "PUT",
                            format!("/v1/subsystems/sim-array-1/portals/{portal}/status?wait=30"),
                            Some(json!({"status": if i % 80 == 1 { "OFFLINE" } else { "ONLINE" }})),
                        ),
                        2..=9 => ("GET", "/v1/subsystems".to_string(), None),
                        10..=19 => (
                            "GET",
                            "/v1/subsystems/sim-array-1/portals".to_string(),
                            None,
                        ),
                        20..=27 => (
                            "GET",
                            format!("/v1/subsystems/sim-array-1/portals/{portal}"),
                            None,
                        ),
                        28..=33 => (
                            "GET",
                            format!("/v1/subsystems/sim-array-1/targets/{target}/portal-groups"),
                            None,
                        ),
                        34..=36 => ("GET", "/v1/providers".to_string(), None),
                        _ => ("GET", "/v1/service".to_string(), None),
                    };
                    match client.request(method, &path, body.as_ref()).await {
                        Ok(a) => {
                            if let Err(e) = check(method, &path, &a) {
                                failures.push(e);
                            }
                        }
                        Err(e) => failures.push(format!("{method} {path}: {e}")),
                    }
                }
                failures
            });
        }
        let all = async {
            let mut failures = Vec::new();
            while let Some(r) = tasks.join_next().await {
                failures.extend(r.expect("client task"));
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        };
        // A deadlock (or a daemon gone slow beyond reason) ends the test here.
        tokio::time::timeout(Duration::from_secs(600), all)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {CLIENTS} clients finished in 600 s: a deadlock?",
                    done.load(Ordering::Relaxed)
                )
            })
    });
    let took = started.elapsed();
    eprintln!("{} requests in {took:?} (debug build)", CLIENTS * REQUESTS);
    assert!(
        failures.is_empty(),
        "{} unexpected answers, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // Nothing is left running, and the daemon answers and stops as usual.
    let ops = d.get_json("/v1/operations");
    assert!(
        ops.as_array()
            .expect("operations")
            .iter()
            .all(|o| o["state"] != "RUNNING"),
        "{ops}"
    );
    assert_eq!(d.get_json("/v1/service")["caller_role"], "admin");
    assert_eq!(d.stop().code(), Some(0));
}

/// `answers` without the time of each subsystem's last refresh (`cache.refreshed_at` of its
/// detail), which every completed refresh moves; each must still be a time.
fn without_times(mut answers: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    for answer in answers.values_mut() {
        if let Some(cache) = answer.get_mut("cache").and_then(Value::as_object_mut) {
            let at = cache.remove("refreshed_at").expect("a refresh time");
            assert!(at.as_str().is_some_and(|t| t.ends_with('Z')), "{at}");
        }
    }
    answers
}

/// Every query answer of the store's subsystems: the subsystems, and each one's portals, targets and
/// targets' portal groups.
fn answers(d: &Daemon) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let subsystems = d.get_json("/v1/subsystems");
    for s in subsystems.as_array().expect("subsystems") {
        let id = s["id"].as_str().expect("a cached subsystem").to_string();
        for what in ["", "/portals", "/targets"] {
            let path = format!("/v1/subsystems/{id}{what}");
            out.insert(path.clone(), d.get_json(&path));
        }
        for t in out[&format!("/v1/subsystems/{id}/targets")]
            .clone()
            .as_array()
            .expect("targets")
        {
            let path = format!(
                "/v1/subsystems/{id}/targets/{}/portal-groups",
                t["id"].as_str().expect("id")
            );
            out.insert(path.clone(), d.get_json(&path));
        }
    }
    out.insert("/v1/subsystems".into(), subsystems);
    out
}

#[test]
fn sigkill_during_a_refresh_under_load_then_a_restart_gives_the_same_answers() {
    let _serial = serial();
    let store = tempfile::tempdir().expect("store");
    common::make_store(store.path(), true, &[]);
    let d = Daemon::serving(store.path());
    let before = answers(&d);
    assert!(before.len() > 5, "{before:?}");
    let socket = d.socket.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Requests answered so far: the kill waits for the load to be under way.
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Load: 16 clients, half refreshing everything, half querying, until the daemon is gone.
    let rt = runtime();
    let load = {
        let (stop, served) = (stop.clone(), served.clone());
        rt.spawn(async move {
            let client = Client::new(&socket);
            let mut tasks = tokio::task::JoinSet::new();
            for c in 0..16 {
                let (client, stop, served) = (client.clone(), stop.clone(), served.clone());
                tasks.spawn(async move {
                    let mut answered = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let r = if c % 2 == 0 {
                            client.request("POST", "/v1/refresh?wait=30", None).await
                        } else {
                            client.request("GET", "/v1/subsystems", None).await
                        };
                        match r {
                            Ok(_) => {
                                answered += 1;
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                            // The daemon is gone: wait for the test to say stop.
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                    answered
                });
            }
            let mut total = 0;
            while let Some(n) = tasks.join_next().await {
                total += n.expect("client");
            }
            total
        })
    };
    // Kill as soon as a refresh is seen running (the clients keep some running all the time)
    // once the load has had answers.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if served.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < end, "no request answered in 60 s");
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let ops = d.get_json("/v1/operations");
        let running = ops
            .as_array()
            .expect("operations")
            .iter()
            .any(|o| o["operation"] == "refresh" && o["state"] == "RUNNING");
        if running {
            break;
        }
        assert!(Instant::now() < end, "no refresh seen running in 60 s");
    }
    common::signal(d.pid(), libc::SIGKILL);
    let mut d = d;
    let status = common::wait_deadline(&mut d.child, Duration::from_secs(30)).expect("killed");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    stop.store(true, Ordering::Relaxed);
    let answered = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), load).await })
        .expect("the clients stop")
        .expect("load task");
    assert!(answered > 0, "the load made no request");
    drop(d);
    // A restart on the same store: the cache is whole, and every answer is the one before (but
    // for the time of the last refresh, which the refreshes completed before the kill moved).
    let again = Daemon::serving(store.path());
    let providers = again.get_json("/v1/providers");
    assert_eq!(providers[0]["cache_health"], "GOOD", "{providers}");
    let before = without_times(before);
    assert_eq!(without_times(answers(&again)), before);
    // And it works on: a refresh, and the same answers still.
    let op = again.operation("POST", "/v1/refresh", None);
    assert_eq!(op["state"], "SUCCEEDED", "{op}");
    assert_eq!(without_times(answers(&again)), before);
    assert_eq!(again.stop().code(), Some(0));
}

/// Raises this process's open-file limit (vdsd, its child, inherits it): 1,000 connections take
/// 1,000 descriptors on each side.
fn raise_nofile(to: u64) {
    let lim = libc::rlimit {
        rlim_cur: to,
        rlim_max: to,
    };
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimit structures for both calls.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut now), 0);
        if now.rlim_cur < to {
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim),
                0,
                "setrlimit (the test runs as root)"
            );
        }
    }
}

/// A configuration file with these `[limits]`.
fn config(dir: &Path, limits: &str) -> PathBuf {
    let path = dir.join("vdsd.toml");
    std::fs::write(&path, format!("[limits]\n{limits}\n")).expect("config");
    path
}

/// One GET over a new connection; its status and how long it took.
async fn timed_get(client: &Client, path: &str) -> (u16, Duration) {
    let t = Instant::now();
    let a = client.request("GET", path, None).await.expect("answer");
    (a.status, t.elapsed())
}

#[test]
fn a_thousand_idle_or_slow_connections_do_not_stop_other_clients() {
    let _serial = serial();
    raise_nofile(16_384);
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    let rt = runtime();
    rt.block_on(async {
        let client = Client::new(&d.socket);
        // 500 connections that send nothing.
        let mut idle = Vec::new();
        for _ in 0..500 {
            idle.push(UnixStream::connect(&d.socket).await.expect("connect"));
        }
        // 500 that send a whole request a byte every 100 ms (about 4 s each), then read the
        // answer: they are served too, within the head timeout (10 s).
        let request = b"GET /v1/service HTTP/1.1\r\nhost: slow\r\nconnection: close\r\n\r\n";
        let mut slow = tokio::task::JoinSet::new();
        for _ in 0..500 {
            let socket = d.socket.clone();
            slow.spawn(async move {
                let mut s = UnixStream::connect(&socket).await.expect("connect");
                for b in request {
                    s.write_all(&[*b]).await.expect("a byte");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let mut answer = Vec::new();
                tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer))
                    .await
                    .expect("the slow client's answer in 30 s")
                    .expect("read");
                answer
            });
        }
        // Meanwhile another client is served as usual, request after request.
        let mut slowest = Duration::ZERO;
        for _ in 0..50 {
            let (status, took) = timed_get(&client, "/v1/subsystems/sim-array-1/portals").await;
            assert_eq!(status, 200);
            slowest = slowest.max(took);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert!(
            slowest < Duration::from_secs(5),
            "a request took {slowest:?} beside 1,000 connections"
        );
        let mut served = 0;
        while let Some(answer) = slow.join_next().await {
            let answer = answer.expect("slow client");
            assert!(
                answer.starts_with(b"HTTP/1.1 200 "),
                "{}",
                String::from_utf8_lossy(&answer)
            );
            served += 1;
        }
        assert_eq!(served, 500);
        drop(idle);
    });
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn the_connection_limit_and_the_head_timeout_behave_as_documented() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), "max_connections = 100\nheader_timeout = \"2s\"");
    let d = Daemon::start(&[
        "--sim",
        "--refresh-interval",
        "0s",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    let rt = runtime();
    rt.block_on(async {
        // 100 connections that send nothing take every place.
        let opened = Instant::now();
        let mut idle = Vec::new();
        for _ in 0..100 {
            idle.push(UnixStream::connect(&d.socket).await.expect("connect"));
        }
        // Give the daemon the time to accept them all (it answers the 101st at once).
        let client = Client::new(&d.socket);
        let end = Instant::now() + Duration::from_secs(10);
        let refused = loop {
            let a = client.request("GET", "/v1/service", None).await;
            match a {
                Ok(a) if a.status == 503 => break a,
                _ => {
                    assert!(Instant::now() < end, "the 101st connection was not refused");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let doc: Value = refused.json().expect("JSON");
        assert_eq!(doc["error"]["name"], "HRESULT_FROM_WIN32(170)", "{doc}");
        assert_eq!(refused.header("connection"), Some("close"));
        // A client slower than header_timeout (2 s) to send a head is disconnected: the places
        // come free, and new clients are served.
        // (One of the 100 may have been the one refused, if a probe was accepted before it.)
        let mut closed = 0;
        for s in &mut idle {
            let mut got = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
                .await
                .expect("disconnected within 10 s")
                .expect("read");
            if got.is_empty() {
                closed += 1;
            } else {
                assert!(
                    got.starts_with(b"HTTP/1.1 503 "),
                    "{}",
                    String::from_utf8_lossy(&got)
                );
            }
        }
        assert!(closed >= 90, "{closed} of 100 closed by the head timeout");
        // Not before the timeout: the last was closed at least 2 s after the first was opened
        // (measured from before the first connect, so a slow machine cannot make it look early).
        assert!(
            opened.elapsed() >= Duration::from_secs(2),
            "closed {:?} after they were opened",
            opened.elapsed()
        );
        let (status, _) = timed_get(&client, "/v1/service").await;
        assert_eq!(status, 200);
    });
    assert_eq!(d.stop().code(), Some(0));
}
