//! Running programs with deadlines: finding binaries, one-shot commands whose output is captured,
//! daemons whose output goes to a log file, waiting for TCP portals, and stopping a daemon by the
//! PID of the `Child` this crate spawned. Nothing here ever signals a process it did not start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::PeerError;

/// Extra directories searched after `PATH`: the daemons live in sbin, which a non-root `PATH` may lack.
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin"];

/// How many bytes of a log file an error carries.
const LOG_TAIL_BYTES: u64 = 2048;

/// Finds `name` on `PATH` or in the sbin directories.
pub(crate) fn find_binary(name: &str) -> Result<PathBuf, PeerError> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path_var).chain(EXTRA_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(PeerError::NotInstalled {
        binary: name.to_owned(),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A printable command line, for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// What a finished one-shot command produced.
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion with captured output, killing it (by its own PID) at `deadline`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, PeerError> {
    let command = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PeerError::Spawn {
            command: command.clone(),
            source,
        })?;
    // Readers on their own threads so a chatty child never blocks on a full pipe.
    let out_reader = child.stdout.take().map(spawn_reader);
    let err_reader = child.stderr.take().map(spawn_reader);
    let status = match wait_deadline(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill_and_reap(&mut child);
            return Err(PeerError::Timeout {
                command,
                after: timeout,
                log_tail: String::new(),
            });
        }
        Err(source) => {
            kill_and_reap(&mut child);
            return Err(PeerError::io(format!("waiting for `{command}`"), source));
        }
    };
    let join = |h: Option<thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: join(out_reader),
        stderr: join(err_reader),
    })
}

/// Like [`run`], but a non-zero exit becomes [`PeerError::CommandFailed`] (with `log` tail if given).
pub(crate) fn run_ok(
    cmd: &mut Command,
    timeout: Duration,
    log: Option<&Path>,
) -> Result<String, PeerError> {
    let command = describe(cmd);
    let out = run(cmd, timeout).map_err(|e| match e {
        PeerError::Timeout { command, after, .. } => PeerError::Timeout {
            command,
            after,
            log_tail: log.map(log_tail).unwrap_or_default(),
        },
        other => other,
    })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(PeerError::CommandFailed {
            command,
            status: out.status.to_string(),
            stderr: out.stderr.trim().to_owned(),
            stdout: out.stdout.trim().to_owned(),
            log_tail: log.map(log_tail).unwrap_or_default(),
        })
    }
}

fn spawn_reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` to exit, polling with a short back-off; `Ok(None)` when the deadline passed.
/// Polling (rather than a waiter thread) keeps the child unreaped until we decide, so a kill after
/// the deadline can never hit a recycled PID.
pub(crate) fn wait_deadline(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// SIGKILL to our own child, then reap it. Errors mean it is already gone.
pub(crate) fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM to our own, not yet reaped child.
pub(crate) fn terminate(child: &Child) -> Result<(), PeerError> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| PeerError::InvalidArgument(format!("pid {} out of range", child.id())))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The PID belongs to a child
    // we spawned and have not reaped (reaping happens only through `child`), so it cannot have been
    // recycled for another process.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc == 0 {
        Ok(())
    } else {
        Err(PeerError::io(
            format!("SIGTERM to pid {pid}"),
            std::io::Error::last_os_error(),
        ))
    }
}

/// Spawns a daemon with stdin closed and stdout+stderr appended to `log`.
pub(crate) fn spawn_daemon(cmd: &mut Command, log: &Path) -> Result<Child, PeerError> {
    let command = describe(cmd);
    let file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| PeerError::io(format!("creating {}", log.display()), e))?;
    let file2 = file
        .try_clone()
        .map_err(|e| PeerError::io(format!("duplicating {}", log.display()), e))?;
    cmd.stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .spawn()
        .map_err(|source| PeerError::Spawn { command, source })
}

/// The last couple of KiB of `log`, lossily decoded; empty if it cannot be read.
pub(crate) fn log_tail(log: &Path) -> String {
    let Ok(mut f) = File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Waits until every address accepts a TCP connection, or the daemon exits, or `timeout` passes.
pub(crate) fn wait_for_portals(
    peer: &str,
    child: &mut Child,
    addrs: &[SocketAddr],
    log: &Path,
    timeout: Duration,
) -> Result<(), PeerError> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<SocketAddr> = addrs.to_vec();
    let mut pause = Duration::from_millis(1);
    loop {
        pending.retain(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_err());
        if pending.is_empty() {
            return Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(PeerError::PeerExited {
                    peer: peer.to_owned(),
                    status: status.to_string(),
                    log_tail: log_tail(log),
                });
            }
            Ok(None) => {}
            Err(e) => return Err(PeerError::io(format!("waiting for {peer}"), e)),
        }
        let now = Instant::now();
        if now >= deadline {
            let list: Vec<String> = pending.iter().map(|a| a.to_string()).collect();
            return Err(PeerError::NotReady {
                peer: peer.to_owned(),
                what: format!("portals not accepting TCP: {}", list.join(", ")),
                after: timeout,
                log_tail: log_tail(log),
            });
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
