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
        let port = vds_testpeers::free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
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
