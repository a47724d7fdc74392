//! Shared helpers of the end-to-end tests: run the built `vdsadm` with its own temp store and
//! capture what it prints and how it exits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vdsadm");

/// What one run printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// stdout as JSON; panics with the whole output when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// Asserts a failure with exit status `code` whose stderr names `name` and `hex`.
    pub fn fails(self, code: i32, name: &str, hex: &str) -> Out {
        assert_eq!(self.code, code, "{self:?}");
        assert!(
            self.stderr.contains(&format!("{name} ({hex})")),
            "stderr should name {name} ({hex}): {self:?}"
        );
        assert!(self.stderr.starts_with("vdsadm: "), "{self:?}");
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one line: {self:?}"
        );
        self
    }

    /// Asserts a failure with exit status `code` whose last stderr line is the error (logs may come
    /// before it).
    pub fn fails_logged(self, code: i32) -> Out {
        assert_eq!(self.code, code, "{self:?}");
        assert!(
            self.stderr
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("vdsadm: ")),
            "{self:?}"
        );
        self
    }

    /// Asserts a `--json` failure with exit status `code` and the given HRESULT.
    pub fn fails_json(self, code: i32, name: &str, hex: &str) -> Out {
        assert_eq!(self.code, code, "{self:?}");
        let j = self.json();
        assert_eq!(j["error"]["hresult"], hex, "{self:?}");
        assert_eq!(j["error"]["name"], name, "{self:?}");
        assert!(
            j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        self
    }
}

/// A temp store and a way to run vdsadm against it.
pub struct Adm {
    pub dir: tempfile::TempDir,
}

impl Adm {
    pub fn new() -> Adm {
        Adm {
            dir: tempfile::Builder::new()
                .prefix("vdsadm-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// The store directory.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A file in the temp dir (outside the store), e.g. for secret files.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env_remove("VDS_HOME")
            .env_remove("VDSADM_LOG")
            .arg("--store")
            .arg(self.store())
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Out::from(self.command(args).output().expect("run vdsadm"))
    }

    /// Runs vdsadm as another user (`setpriv`), with `groups` as its supplementary groups.
    pub fn run_as(&self, uid: u32, gid: u32, groups: &[u32], args: &[&str]) -> Out {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"));
        if groups.is_empty() {
            c.arg("--clear-groups");
        } else {
            let list: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            c.arg(format!("--groups={}", list.join(",")));
        }
        c.arg(BIN)
            .env_remove("VDS_HOME")
            .env_remove("VDSADM_LOG")
            .env("HOME", self.dir.path())
            .arg("--store")
            .arg(self.store())
            .args(args);
        Out::from(c.output().expect("run setpriv"))
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Out::from(c.output().expect("run vdsadm"))
    }
}

/// Runs vdsadm without a store argument (for `--sim`, `discover`, `man`, ...); `VDS_HOME` points
/// at `home` so a stray store access would be visible there.
pub fn run_bare(home: &Path, args: &[&str]) -> Out {
    let out = Command::new(BIN)
        .env("VDS_HOME", home)
        .env_remove("VDSADM_LOG")
        .args(args)
        .output()
        .expect("run vdsadm");
    Out::from(out)
}

/// `127.0.0.1:3260` / `[::1]:3260` → the (address, port) pair vdsadm prints in JSON.
pub fn split_portal(p: &str) -> (String, u64) {
    let (host, port) = p.rsplit_once(':').expect("host:port");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host.to_string(), port.parse().expect("port"))
}

/// An array that never answers: a loopback listener that accepts every connection and then says
/// nothing, holding the sockets open until it is dropped. A discovery against it waits for its PDU
/// deadline (5 s by default), holding its subsystem's lock all the while.
pub struct SilentArray {
    pub portal: String,
    accepted: std::sync::mpsc::Receiver<()>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    port: u16,
}

impl SilentArray {
    pub fn start() -> SilentArray {
        // Port 0: the kernel picks a port that is free as it binds, so nothing can take it
        // between a check and the bind (a port reserved by `free_port` and bound here once
        // lost that race in CI: "Address already in use").
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let (tx, accepted) = std::sync::mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    held.push(c);
                    let _ = tx.send(());
                }
            }
        });
        SilentArray {
            portal: format!("127.0.0.1:{port}"),
            accepted,
            stop,
            port,
        }
    }

    /// Forgets the connections made so far (so the next wait is for a new one).
    pub fn forget_connections(&self) {
        while self.accepted.try_recv().is_ok() {}
    }

    /// Waits (up to `timeout`) until something connected; true if it did.
    pub fn wait_connected(&self, timeout: std::time::Duration) -> bool {
        self.accepted.recv_timeout(timeout).is_ok()
    }
}

impl Drop for SilentArray {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so its thread ends (and closes every held socket).
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A SendTargets target written here, on a loopback port of its own: it logs every discovery in
/// (with the login keys `login_keys`, which may be hostile), answers `SendTargets=All` with
/// `answer` (text keys, NUL-separated, as sent), and logs out. It runs on its own thread with its
/// own runtime until dropped.
pub struct ScriptedTarget {
    pub portal: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl ScriptedTarget {
    /// How many connections it accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A target that answers every login with a redirect (status 0x0101) to `to` (`HOST:PORT`).
    pub fn redirecting(to: &str) -> ScriptedTarget {
        ScriptedTarget::scripted(
            (1, 1),
            format!("TargetAddress={to},1\0").into_bytes(),
            Vec::new(),
        )
    }

    pub fn start(login_keys: Vec<u8>, answer: Vec<u8>) -> ScriptedTarget {
        ScriptedTarget::scripted((0, 0), login_keys, answer)
    }

    fn scripted(status: (u8, u8), login_keys: Vec<u8>, answer: Vec<u8>) -> ScriptedTarget {
        use iscsi_proto::wire::{
            LoginResponse, LogoutResponse, Packet, Repr, Stage, TextResponse, pdu_len,
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        async fn read_pdu(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
            let mut pdu = vec![0u8; 48];
            s.read_exact(&mut pdu).await.ok()?;
            let total = pdu_len(&pdu)?;
            pdu.resize(total, 0);
            s.read_exact(&mut pdu[48..]).await.ok()?;
            Some(pdu)
        }
        let itt = |pdu: &[u8]| Packet::new_checked(pdu).map(|p| p.itt()).unwrap_or(0);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        runtime.spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (login_keys, answer) = (login_keys.clone(), answer.clone());
                tokio::spawn(async move {
                    let Some(l) = read_pdu(&mut s).await else {
                        return;
                    };
                    let login = Repr::LoginResponse(LoginResponse {
                        transit: true,
                        cont: false,
                        csg: Stage::Operational,
                        nsg: Stage::FullFeature,
                        version_max: 0,
                        version_active: 0,
                        isid: [0x80, 0, 0, 0, 0, 0],
                        tsih: 1,
                        itt: itt(&l),
                        stat_sn: 1,
                        exp_cmd_sn: 1,
                        max_cmd_sn: 2,
                        status_class: status.0,
                        status_detail: status.1,
                        data: &login_keys,
                    })
                    .to_vec()
                    .expect("login response");
                    if s.write_all(&login).await.is_err() {
                        return;
                    }
                    let Some(t) = read_pdu(&mut s).await else {
                        return;
                    };
                    let text = Repr::TextResponse(TextResponse {
                        final_: true,
                        cont: false,
                        lun: 0,
                        itt: itt(&t),
                        ttt: 0xffff_ffff,
                        stat_sn: 2,
                        exp_cmd_sn: 2,
                        max_cmd_sn: 3,
                        data: &answer,
                    })
                    .to_vec()
                    .expect("text response");
                    if s.write_all(&text).await.is_err() {
                        return;
                    }
                    let Some(o) = read_pdu(&mut s).await else {
                        return;
                    };
                    let logout = Repr::LogoutResponse(LogoutResponse {
                        response: 0,
                        itt: itt(&o),
                        stat_sn: 3,
                        exp_cmd_sn: 3,
                        max_cmd_sn: 4,
                        time2wait: 0,
                        time2retain: 0,
                    })
                    .to_vec()
                    .expect("logout response");
                    let _ = s.write_all(&logout).await;
                });
            }
        });
        ScriptedTarget {
            portal: format!("127.0.0.1:{port}"),
            connections,
            _runtime: runtime,
        }
    }
}

/// The first byte sequence in `out` that a terminal would act on (a C0 control other than line
/// feed, DEL, a C1 control, or a bidirectional or zero-width format character), if any.
pub fn terminal_hazard(out: &str) -> Option<(usize, char)> {
    out.char_indices().find(|(_, c)| {
        let u = *c as u32;
        (u < 0x20 && *c != '\n')
            || (0x7f..=0x9f).contains(&u)
            || matches!(u, 0x200b..=0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
    })
}
