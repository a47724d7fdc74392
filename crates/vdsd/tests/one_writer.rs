//! One writer: while vdsd serves a store, vdsadm sends its commands to the daemon, with the same
//! output and exit status as when it works on the store itself.
//!
//! vdsadm is the workspace's other binary: `cargo test --workspace` (what scripts/test.sh runs)
//! builds it beside vdsd.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use vds_testpeers::{Tgtd, TgtdConfig, free_port};

const ARRAY: &str = "sim-array-1";
const DB: &str = "iqn.2026-11.org.vds.sim:array1.db";

fn vdsadm_bin() -> PathBuf {
    let bin = Path::new(common::BIN).with_file_name("vdsadm");
    assert!(
        bin.is_file(),
        "{} is not built: run the tests with `cargo test --workspace` (or `cargo build -p vdsadm` first)",
        bin.display()
    );
    bin
}

/// What one vdsadm run printed and how it exited.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn vdsadm(store: &Path, args: &[&str]) -> Run {
    let out = Command::new(vdsadm_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("VDSADM_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run vdsadm");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A store with a simulator provider `lab` and the tgtd registered as `tgt`.
fn make_store(store: &Path, tgtd: &Tgtd) {
    let run = vdsadm(store, &["provider", "add", "lab", "--kind", "sim"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let mut args = vec!["subsystem", "add", "tgt"];
    for p in tgtd.portals() {
        args.extend(["--portal", p.as_str()]);
    }
    let run = vdsadm(store, &args);
    assert_eq!(run.code, Some(0), "{run:?}");
}

fn tgtd() -> Tgtd {
    let port = free_port();
    let t = Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")],
    })
    .expect("tgtd");
    t.add_target(1, "iqn.2026-12.test.vds:one-writer")
        .expect("target");
    t
}

/// Every query command, as tables and as JSON, and queries that fail.
fn queries(tgt_portal: &str) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<&str>> = vec![
        vec!["list", "providers"],
        vec!["list", "subsystems"],
        vec!["--provider", "lab", "list", "subsystems"],
        vec!["list", "tportals", "--subsystem", ARRAY],
        vec!["list", "tportals", "--subsystem", "tgt"],
        vec!["list", "targets", "--subsystem", ARRAY],
        vec!["list", "tpgroups", "--subsystem", ARRAY, "--target", DB],
        vec!["detail", "subsystem", ARRAY],
        vec!["detail", "subsystem", "tgt"],
        vec!["detail", "tportal", "--subsystem", "tgt", tgt_portal],
        vec!["detail", "tportal", "--subsystem", ARRAY, "192.0.2.10:3260"],
        vec!["detail", "target", "--subsystem", ARRAY, DB],
        // Failures: the same message and exit status.
        vec!["list", "tportals", "--subsystem", "nope"],
        vec![
            "detail",
            "target",
            "--subsystem",
            ARRAY,
            "iqn.2026-12.test:nope",
        ],
        vec!["--provider", "nobody", "list", "subsystems"],
    ];
    let json: Vec<Vec<&str>> = all
        .iter()
        .map(|a| std::iter::once("--json").chain(a.iter().copied()).collect())
        .collect();
    all.extend(json);
    all.into_iter()
        .map(|a| a.into_iter().map(String::from).collect())
        .collect()
}

#[test]
fn queries_answer_alike_with_and_without_the_daemon() {
    let t = tgtd();
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    make_store(&store, &t);
    let portal = t.portals()[1].clone();
    let direct: Vec<Run> = queries(&portal)
        .iter()
        .map(|a| vdsadm(&store, &a.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    assert!(
        direct.iter().any(|r| r.code == Some(3)),
        "the failures fail"
    );
    assert!(direct.iter().any(|r| r.stdout.contains("::1")));
    let d = Daemon::serving(&store);
    for (args, want) in queries(&portal).iter().zip(&direct) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = vdsadm(&store, &args);
        assert_eq!(&got, want, "vdsadm {args:?} differs through vdsd");
    }
    // They did go to the daemon.
    let run = vdsadm(&store, &["-v", "list", "subsystems"]);
    assert!(
        run.stderr.contains("vdsd serves the store"),
        "{}",
        run.stderr
    );
    assert_eq!(d.stop().code(), Some(0));
    // Without the daemon, directly again.
    let run = vdsadm(&store, &["-v", "list", "subsystems"]);
    assert!(
        !run.stderr.contains("vdsd serves the store"),
        "{}",
        run.stderr
    );
}

/// The JSON of a run with what differs between two stores blanked: their paths.
fn same_shape(run: &Run, stores: &[&Path]) -> (Option<i32>, String, String) {
    let blank = |s: &str| {
        stores.iter().fold(s.to_string(), |s, p| {
            s.replace(&p.display().to_string(), "STORE")
        })
    };
    (run.code, blank(&run.stdout), blank(&run.stderr))
}

#[test]
fn changes_go_through_the_daemon_and_answer_alike() {
    let t = tgtd();
    let dir = tempfile::tempdir().expect("dir");
    let (local, served) = (dir.path().join("local"), dir.path().join("served"));
    make_store(&local, &t);
    make_store(&served, &t);
    let d = Daemon::serving(&served);
    let mut events = common::Events::open(&d.socket, "/v1/events", None);
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a-target-secret-16\n").expect("secret");
    let secret = secret.to_str().expect("utf-8");
    // Each step as typed (words separated by spaces; none has a space of its own).
    let w = "iqn.2026-12.test:w";
    let in_group = format!("--subsystem {ARRAY} --target {w} --tpgroup 1 192.0.2.10:3260");
    let steps: Vec<String> = vec![
        format!("offline tportal --subsystem {ARRAY} 192.0.2.10:3260"),
        format!("online tportal --subsystem {ARRAY} 192.0.2.10:3260"),
        format!("create target --subsystem {ARRAY} --iscsi-name {w} --alias w"),
        format!("name target --subsystem {ARRAY} {w} renamed"),
        format!("create tpgroup --subsystem {ARRAY} --target {w}"),
        format!("add tportal {in_group}"),
        format!("remove tportal {in_group}"),
        format!("delete tpgroup --subsystem {ARRAY} --target {w} 1"),
        format!("chap target set --subsystem {ARRAY} {w} --secret-file {secret}"),
        format!(
            "chap target remember --subsystem {ARRAY} {w} --initiator iqn.2026-12.test:host \
             --secret-file {secret}"
        ),
        format!("delete target --subsystem {ARRAY} {w}"),
        // A failure: the same error and exit status.
        format!("delete target --subsystem {ARRAY} {w}"),
        "refresh".into(),
        "refresh --subsystem tgt".into(),
        "reenumerate".into(),
        format!("subsystem set tgt --portal {}", t.portals()[0]),
        "subsystem remove tgt".into(),
        "provider add lab2 --kind sim --subsystems 1".into(),
        "provider remove lab2".into(),
    ];
    for step in &steps {
        let args: Vec<&str> = std::iter::once("--json")
            .chain(step.split_whitespace())
            .collect();
        let want = vdsadm(&local, &args);
        let got = vdsadm(&served, &args);
        assert_eq!(
            same_shape(&got, &[&local, &served]),
            same_shape(&want, &[&local, &served]),
            "vdsadm {step:?} differs through vdsd"
        );
    }
    // The daemon made them: its stream saw the first change.
    let seen = events.until(Duration::from_secs(30), |e| {
        e.data["event_name"] == "PORTAL_MODIFY"
    });
    assert!(!seen.is_empty());
    // And its picture is what vdsadm changed (the target is gone).
    let targets = d.get_json(&format!("/v1/subsystems/{ARRAY}/targets"));
    assert!(
        !targets.to_string().contains("iqn.2026-12.test:w"),
        "{targets}"
    );
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn watch_follows_the_daemon() {
    let t = tgtd();
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    make_store(&store, &t);
    let d = Daemon::serving(&store);
    // The daemon refreshes on its own schedule: no second one here.
    let run = vdsadm(&store, &["watch", "--refresh-every", "1s"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("vdsd serves this store"),
        "{}",
        run.stderr
    );
    let mut child = Command::new(vdsadm_bin())
        .arg("--store")
        .arg(&store)
        .args(["--json", "watch", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch");
    // Once it follows the stream (it says so on stderr), make a change.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("following vdsd's notifications") => break,
            Ok(_) => {}
            Err(e) => panic!("watch did not start following: {e}"),
        }
    }
    let run = vdsadm(
        &store,
        &[
            "offline",
            "tportal",
            "--subsystem",
            ARRAY,
            "192.0.2.10:3260",
        ],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let status = common::wait_deadline(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("watch output");
    assert!(status.is_some_and(|s| s.success()), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(doc["event_name"], "PORTAL_MODIFY", "{line}");
    assert_eq!(d.stop().code(), Some(0));
}
