//! Starts the built `vdsd` on its own socket (and ports), waits with a deadline until it answers,
//! and stops it by its PID (SIGTERM, then SIGKILL after a deadline) on drop. Also what several
//! tests share: a store with arrays registered ([`make_store`]), and a reader of server-sent events
//! on the socket ([`Events`]).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vds_client::{Answer, Client};
use vds_service::{NewSubsystem, Service, ServiceOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_vdsd");

pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
}

impl Daemon {
    /// `vdsd` with `args` (`--sim` or `--store …`) on a socket in a new temp dir.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_under(&[], args)
    }

    /// `vdsd` in a network namespace of its own, where only its loopback exists: whatever a
    /// request makes it contact stays on that loopback. Its socket is reached as usual (a path);
    /// its TCP listeners through `nsenter --net=/proc/PID/ns/net`.
    pub fn start_isolated(args: &[&str]) -> Daemon {
        Daemon::start_under(
            &[
                "unshare",
                "--net",
                "--",
                "sh",
                "-c",
                r#"ip link set lo up && exec "$0" "$@""#,
            ],
            args,
        )
    }

    /// `vdsd` run by `wrapper` (a command that ends by exec'ing it, so that its PID is vdsd's).
    fn start_under(wrapper: &[&str], args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("vdsd-test-")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("vdsd.sock");
        let log = std::fs::File::create(dir.path().join("vdsd.log")).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut d = Daemon {
            child,
            client: Client::new(&socket),
            socket,
            dir,
            rt,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(a) = d.get("/v1/service") {
                if a.status == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("vdsd exited at start ({status}): {}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "vdsd did not answer in 30 s: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// vdsd serving `store`, with no periodic refresh (the tests refresh when they mean to).
    pub fn serving(store: &Path) -> Daemon {
        Daemon::start(&[
            "--store",
            store.to_str().expect("utf-8"),
            "--refresh-interval",
            "0s",
        ])
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vdsd.log")).unwrap_or_default()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, vds_model::Error> {
        self.rt
            .block_on(self.client.request(method, path, body.as_ref()))
    }

    pub fn get(&self, path: &str) -> Result<Answer, vds_model::Error> {
        self.request("GET", path, None)
    }

    /// GET that must succeed; its JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let a = self.get(path).unwrap();
        assert_eq!(
            a.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        a.json().unwrap()
    }

    /// A request that starts an operation, waited for; the finished operation.
    pub fn operation(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let sep = if path.contains('?') { '&' } else { '?' };
        let a = self
            .request(method, &format!("{path}{sep}wait=30"), body)
            .unwrap();
        assert!(
            a.status == 200 || a.status == 202,
            "{path}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        let mut op: serde_json::Value = a.json().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while op["state"] == "RUNNING" {
            assert!(Instant::now() < deadline, "operation did not finish: {op}");
            let id = op["id"].as_str().unwrap().to_string();
            op = self
                .get(&format!("/v1/operations/{id}?wait=30"))
                .unwrap()
                .json()
                .unwrap();
        }
        op
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait (deadline 30 s); the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        wait_deadline(&mut self.child, Duration::from_secs(30))
            .expect("vdsd did not stop on SIGTERM")
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the PID of a child this test spawned.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

pub fn wait_deadline(child: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A store at `store` with the subsystems `arrays` (name, discovery portals) registered with
/// SendTargets and discovered, and, with `sim`, a simulator provider named `lab`.
pub fn make_store(store: &Path, sim: bool, arrays: &[(&str, Vec<String>)]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let service = Service::open(ServiceOptions {
            create: true,
            ..ServiceOptions::new(store)
        })
        .expect("store");
        if sim {
            service
                .add_provider("lab", "sim", toml::Table::new(), true)
                .await
                .expect("sim provider");
        }
        for (name, portals) in arrays {
            service
                .add_subsystem(
                    None,
                    NewSubsystem {
                        name: (*name).into(),
                        portals: portals.clone(),
                        initiator_name: None,
                        chap: None,
                        mutual: None,
                    },
                    true,
                )
                .await
                .expect("register");
        }
    });
}

/// One server-sent event.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    /// Its `id:`.
    pub id: u64,
    /// Its `event:` (`message` when it has none).
    pub event: String,
    /// Its `data:`, as JSON.
    pub data: Value,
}

/// An SSE reader on the daemon's socket: connects, sends the request, skips the head.
pub struct Events {
    lines: std::io::Lines<BufReader<UnixStream>>,
}

impl Events {
    /// `GET path` on `socket`, resuming after `last_event_id` when given (`Last-Event-ID`).
    pub fn open(socket: &Path, path: &str, last_event_id: Option<u64>) -> Events {
        let mut s = UnixStream::connect(socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: vdsd\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("write");
        let mut lines = BufReader::new(s).lines();
        let status = lines.next().expect("status").expect("read");
        assert!(status.contains(" 200 "), "{status}");
        for l in lines.by_ref() {
            if l.expect("read").is_empty() {
                break;
            }
        }
        Events { lines }
    }

    /// Events until `pick` accepts one, within `deadline`.
    pub fn until(
        &mut self,
        deadline: Duration,
        mut pick: impl FnMut(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let end = Instant::now() + deadline;
        let mut got = Vec::new();
        let (mut id, mut event) = (None, None);
        while Instant::now() < end {
            let Some(line) = self.lines.next() else {
                panic!("the stream ended: {got:?}");
            };
            let line = line.expect("read (each line within 60 s)");
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse::<u64>().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_string());
            } else if let Some(data) = line.strip_prefix("data:") {
                let e = SseEvent {
                    id: id.take().expect("an id before the data"),
                    event: event.take().unwrap_or_else(|| "message".into()),
                    data: serde_json::from_str(data.trim()).expect("event JSON"),
                };
                let done = pick(&e);
                got.push(e);
                if done {
                    return got;
                }
            }
        }
        panic!("no such event within {deadline:?}: {got:?}");
    }
}

/// A self-signed certificate for `localhost` and its key, and an empty tokens file, in `dir`:
/// what `--listen` needs.
pub struct TlsFiles {
    pub cert_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub tokens: PathBuf,
}

impl TlsFiles {
    pub fn new(dir: &Path) -> TlsFiles {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let files = TlsFiles {
            cert_pem: made.cert.pem(),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            tokens: dir.join("tokens"),
        };
        std::fs::write(&files.cert, &files.cert_pem).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        files
    }

    /// A new token of `role` (`admin`, `read-only`), by `vdsd token add`.
    pub fn token(&self, name: &str, role: &str) -> String {
        let out = Command::new(BIN)
            .args(["token", "add", name, "--role", role, "--tokens"])
            .arg(&self.tokens)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `--listen ADDR --tls-cert … --tls-key … --tokens …`.
    pub fn args(&self, listen: &str) -> Vec<String> {
        let path = |p: &Path| p.to_str().expect("utf-8").to_string();
        vec![
            "--listen".into(),
            listen.into(),
            "--tls-cert".into(),
            path(&self.cert),
            "--tls-key".into(),
            path(&self.key),
            "--tokens".into(),
            path(&self.tokens),
        ]
    }
}
