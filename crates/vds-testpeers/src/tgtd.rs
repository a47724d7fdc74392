//! A private `tgtd` (Linux SCSI target framework, userspace iSCSI target) on loopback portals.
//!
//! Isolation: each instance gets its own temp dir under `/tmp` holding its log, LUN backing files and
//! its management socket. `TGT_IPC_SOCKET=<dir>/ipc` makes tgtd create only `<dir>/ipc.N` and
//! `<dir>/ipc.N.lock` (checked with strace on tgt 1.0.85: nothing under `/var/run/tgtd` or `/run`), so
//! instances cannot see each other even with the same `-C N`. `N` is still unique per instance
//! (it is a port reserved with [`crate::free_port`], which is below tgtd's limit of 32767), so a
//! stray `tgtadm -C N` without the socket variable cannot reach one of ours either.
//!
//! tgtd ignores SIGTERM, so [`Tgtd::stop`] deletes all targets (`--force`), then the system, waits for
//! the exit and falls back to SIGKILL of the recorded child. [`Drop`] sends SIGKILL directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use crate::PeerError;
use crate::process::{self, kill_and_reap, log_tail};

/// How long start-up may take before [`Tgtd::start`] gives up.
pub const TGTD_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for one `tgtadm` call.
pub const TGTADM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Tgtd::stop`] waits for tgtd to exit after `--op delete --mode system`.
pub const TGTD_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of each LUN's sparse backing file (costs no disk space until written).
pub const LUN_SIZE: u64 = 16 << 20;

/// What to start tgtd with.
#[derive(Clone, Debug, Default)]
pub struct TgtdConfig {
    /// Listening portals, `"127.0.0.1:PORT"` or `"[::1]:PORT"` (IPv6 in brackets: tgt silently
    /// ignores an unbracketed one). Only loopback addresses are accepted. At least one is needed,
    /// because tgtd without portals would listen on 0.0.0.0:3260.
    pub portals: Vec<String>,
}

impl TgtdConfig {
    /// One portal on 127.0.0.1 with a port from [`crate::free_port`].
    pub fn single() -> Self {
        TgtdConfig {
            portals: vec![format!("127.0.0.1:{}", crate::free_port())],
        }
    }
}

/// A running tgtd that this value owns; it is killed when dropped.
#[derive(Debug)]
pub struct Tgtd {
    child: Option<Child>,
    pid: u32,
    control: u16,
    ipc_prefix: PathBuf,
    log: PathBuf,
    tgtadm: PathBuf,
    portals: Vec<String>,
    // Last field: dropped after `Drop::drop` has killed the daemon.
    dir: TempDir,
}

impl Tgtd {
    /// Starts tgtd in the foreground (`-f`) on `cfg.portals`, waits, up to [`TGTD_START_TIMEOUT`],
    /// until every portal accepts TCP, and checks that tgtd lists exactly those portals.
    ///
    /// # Errors
    /// [`PeerError::NotInstalled`] without tgt, [`PeerError::InvalidArgument`] for an empty or
    /// non-loopback portal list, [`PeerError::PeerExited`]/[`PeerError::NotReady`] (with the log tail,
    /// e.g. "Address already in use") if tgtd does not come up, [`PeerError::StartFailed`] if it
    /// came up on other portals (tgtd falls back to 0.0.0.0:3260 when a portal is taken).
    pub fn start(cfg: TgtdConfig) -> Result<Tgtd, PeerError> {
        let tgtd = process::find_binary("tgtd")?;
        let tgtadm = process::find_binary("tgtadm")?;
        if cfg.portals.is_empty() {
            return Err(PeerError::InvalidArgument(
                "TgtdConfig::portals is empty (tgtd would listen on 0.0.0.0:3260)".into(),
            ));
        }
        let addrs = cfg
            .portals
            .iter()
            .map(|p| parse_portal(p))
            .collect::<Result<Vec<_>, _>>()?;
        let portals: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let control = crate::try_free_port()?;
        let dir = crate::instance_dir("tgtd")?;
        let ipc_prefix = dir.path().join("ipc");
        let log = dir.path().join("tgtd.log");
        let portal_arg = portals
            .iter()
            .map(|p| format!("portal={p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = Command::new(&tgtd);
        cmd.arg("-f")
            .arg("-C")
            .arg(control.to_string())
            .arg("--iscsi")
            .arg(portal_arg)
            .env("TGT_IPC_SOCKET", &ipc_prefix)
            .current_dir(dir.path());
        let child = process::spawn_daemon(&mut cmd, &log)?;
        let mut me = Tgtd {
            pid: child.id(),
            child: Some(child),
            control,
            ipc_prefix,
            log,
            tgtadm,
            portals,
            dir,
        };
        if let Some(child) = me.child.as_mut() {
            process::wait_for_portals("tgtd", child, &addrs, &me.log, TGTD_START_TIMEOUT)?;
        }
        // TCP accepting is not enough: when a portal cannot be bound, tgtd logs "Address already in
        // use", keeps running and listens on its default 0.0.0.0:3260 and [::]:3260 instead (and
        // another program may be what accepted). tgtd answers management requests only after its
        // portal set-up, so this shows the final state.
        let mut shown = me.show_portals_when_ready()?;
        let mut wanted = me.portals.clone();
        shown.sort();
        wanted.sort();
        if shown != wanted {
            return Err(PeerError::StartFailed {
                peer: "tgtd".into(),
                reason: format!("listens on {shown:?} instead of {wanted:?}"),
                log_tail: me.log_tail(),
            });
        }
        Ok(me)
    }

    /// `show_portals`, retried until [`TGTD_START_TIMEOUT`] while tgtd is alive but does not answer
    /// yet (tgtadm: "Transport endpoint is not connected", seen when several tgtd start at once).
    fn show_portals_when_ready(&mut self) -> Result<Vec<String>, PeerError> {
        let deadline = std::time::Instant::now() + TGTD_START_TIMEOUT;
        loop {
            match self.show_portals() {
                Ok(shown) => return Ok(shown),
                Err(e) => {
                    if let Some(exited) = self.exited_error() {
                        return Err(exited);
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// [`PeerError::PeerExited`] if tgtd exits within 200 ms (a clearer error than tgtadm's
    /// "Transport endpoint is not connected", which it gives while tgtd is still dying).
    fn exited_error(&mut self) -> Option<PeerError> {
        let child = self.child.as_mut()?;
        let status = process::wait_deadline(child, Duration::from_millis(200)).ok()??;
        self.child = None;
        Some(PeerError::PeerExited {
            peer: "tgtd".into(),
            status: status.to_string(),
            log_tail: self.log_tail(),
        })
    }

    /// The PID of the tgtd process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The `-C` control number of this instance.
    pub fn control(&self) -> u16 {
        self.control
    }

    /// The portals tgtd was started with, normalised (`"127.0.0.1:20001"`, `"[::1]:20001"`).
    pub fn portals(&self) -> &[String] {
        &self.portals
    }

    /// The management socket tgtd listens on: `<dir>/ipc.<control>` (what `tgtadm -C N` reaches
    /// with `TGT_IPC_SOCKET=<dir>/ipc`).
    pub fn ipc_socket(&self) -> PathBuf {
        let mut path = self.ipc_prefix.clone().into_os_string();
        path.push(format!(".{}", self.control));
        PathBuf::from(path)
    }

    /// The instance's private directory (log, backing files, management socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last couple of KiB of tgtd's stdout/stderr.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Checks that tgtd still runs: its process exists and is not a zombie (a crash leaves the
    /// child unreaped, so the PID cannot have been reused).
    ///
    /// # Errors
    /// [`PeerError::PeerExited`] with the state seen and the tail of tgtd's log.
    pub fn check_alive(&self) -> Result<(), PeerError> {
        let state = match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?")
                .to_owned(),
            Err(e) => format!("gone ({e})"),
        };
        if matches!(state.as_str(), "Z" | "X") || state.starts_with("gone") {
            return Err(PeerError::PeerExited {
                peer: format!("tgtd {}", self.pid),
                status: format!("process state {state}"),
                log_tail: log_tail(&self.log),
            });
        }
        Ok(())
    }

    /// Grants every initiator access to target `tid` (`--initiator-address ALL`): tgtd hides a
    /// target without an ACL from SendTargets and refuses logins to it.
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`].
    pub fn grant_all(&self, tid: u32) -> Result<(), PeerError> {
        let tid_s = tid.to_string();
        self.iscsi(&[
            "--op",
            "bind",
            "--mode",
            "target",
            "--tid",
            &tid_s,
            "--initiator-address",
            "ALL",
        ])
        .map(drop)
    }

    /// Runs `tgtadm -C N <args>` against this instance (with its `TGT_IPC_SOCKET`) and returns stdout.
    ///
    /// # Errors
    /// [`PeerError::CommandFailed`] with tgtadm's stderr (`tgtadm: invalid request`) and the tail of
    /// tgtd's log, which usually says why; [`PeerError::Timeout`] after [`TGTADM_TIMEOUT`].
    pub fn tgtadm(&self, args: &[&str]) -> Result<String, PeerError> {
        let mut cmd = Command::new(&self.tgtadm);
        cmd.env("TGT_IPC_SOCKET", &self.ipc_prefix)
            .arg("-C")
            .arg(self.control.to_string())
            .args(args);
        process::run_ok(&mut cmd, TGTADM_TIMEOUT, Some(&self.log))
    }

    /// `tgtadm --lld iscsi <args>`.
    fn iscsi(&self, args: &[&str]) -> Result<String, PeerError> {
        let mut all = vec!["--lld", "iscsi"];
        all.extend_from_slice(args);
        self.tgtadm(&all)
    }

    /// Creates target `tid` named `iqn` with LUN 1 (a [`LUN_SIZE`] sparse file in the instance dir)
    /// and binds it to all initiator addresses. LUN 0 is tgt's own controller LUN.
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`]; a duplicate tid or name fails.
    pub fn add_target(&self, tid: u32, iqn: &str) -> Result<(), PeerError> {
        let tid_s = tid.to_string();
        let backing = self.dir.path().join(format!("lun-{tid}.img"));
        let file = std::fs::File::create(&backing)
            .map_err(|e| PeerError::io(format!("creating {}", backing.display()), e))?;
        file.set_len(LUN_SIZE)
            .map_err(|e| PeerError::io(format!("sizing {}", backing.display()), e))?;
        let backing_s = backing.to_string_lossy();
        self.iscsi(&[
            "--op",
            "new",
            "--mode",
            "target",
            "--tid",
            &tid_s,
            "--targetname",
            iqn,
        ])?;
        self.iscsi(&[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            &tid_s,
            "--lun",
            "1",
            "--backing-store",
            &backing_s,
        ])?;
        self.grant_all(tid)
    }

    /// Adds `count` targets as [`Tgtd::add_target`] does, named `{prefix}{k:03}` for k = 1..=count
    /// (`prefix` = `"iqn.2026-11.test.vds:big"` gives `...:big001`), on the tids after the highest
    /// existing one. Returns the names in order. About 7 ms per target (three tgtadm calls).
    ///
    /// # Errors
    /// As [`Tgtd::add_target`]; targets added before the failure stay.
    pub fn add_targets(&self, count: u32, prefix: &str) -> Result<Vec<String>, PeerError> {
        let first = self.targets()?.iter().map(|(t, _)| *t).max().unwrap_or(0) + 1;
        let mut names = Vec::with_capacity(count as usize);
        for k in 1..=count {
            let iqn = format!("{prefix}{k:03}");
            self.add_target(first + k - 1, &iqn)?;
            names.push(iqn);
        }
        Ok(names)
    }

    /// The configured targets, `(tid, name)`, from `--op show --mode target`.
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`].
    pub fn targets(&self) -> Result<Vec<(u32, String)>, PeerError> {
        let out = self.iscsi(&["--op", "show", "--mode", "target"])?;
        let mut targets = Vec::new();
        for line in out.lines() {
            // "Target 1: iqn.2026-11.test.vds:t1" (unindented; LUN and ACL lines are indented)
            let Some(rest) = line.strip_prefix("Target ") else {
                continue;
            };
            let parsed = rest
                .split_once(": ")
                .and_then(|(tid, name)| Some((tid.parse().ok()?, name.trim().to_owned())));
            match parsed {
                Some(t) => targets.push(t),
                None => {
                    return Err(PeerError::Parse {
                        command: "tgtadm --op show --mode target".into(),
                        detail: format!("unexpected line {line:?}"),
                    });
                }
            }
        }
        Ok(targets)
    }

    /// Deletes target `tid`, even with sessions (`--force`).
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`].
    pub fn delete_target(&self, tid: u32) -> Result<(), PeerError> {
        let tid_s = tid.to_string();
        self.iscsi(&[
            "--op", "delete", "--force", "--mode", "target", "--tid", &tid_s,
        ])
        .map(drop)
    }

    /// Adds a listening portal at runtime; it accepts connections when this returns.
    ///
    /// # Errors
    /// [`PeerError::InvalidArgument`] for an unbracketed IPv6 or non-loopback address;
    /// [`PeerError::CommandFailed`] if the portal exists or the port is taken (tgtadm says only
    /// `invalid request`; the log tail says `Address already in use`).
    pub fn add_portal(&self, portal: &str) -> Result<(), PeerError> {
        let addr = parse_portal(portal)?;
        let param = format!("portal={addr}");
        self.iscsi(&["--op", "new", "--mode", "portal", "--param", &param])
            .map(drop)
    }

    /// Removes a listening portal at runtime; connections to it are refused when this returns.
    ///
    /// # Errors
    /// As [`Tgtd::add_portal`]; a portal that does not exist fails (`invalid request`).
    pub fn delete_portal(&self, portal: &str) -> Result<(), PeerError> {
        let addr = parse_portal(portal)?;
        let param = format!("portal={addr}");
        self.iscsi(&["--op", "delete", "--mode", "portal", "--param", &param])
            .map(drop)
    }

    /// The listening portals as tgt reports them, without the always-`1` tag:
    /// `"Portal: 127.0.0.1:3260,1"` becomes `"127.0.0.1:3260"`, `"Portal: [::1]:3260,1"` `"[::1]:3260"`.
    /// tgt lists the newest first.
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`]; [`PeerError::Parse`] for an unexpected line.
    pub fn show_portals(&self) -> Result<Vec<String>, PeerError> {
        let out = self.iscsi(&["--mode", "portal", "--op", "show"])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                line.strip_prefix("Portal: ")
                    .and_then(|p| p.rsplit_once(','))
                    .map(|(addr, _tag)| addr.to_owned())
                    .ok_or_else(|| PeerError::Parse {
                        command: "tgtadm --mode portal --op show".into(),
                        detail: format!("unexpected line {line:?}"),
                    })
            })
            .collect()
    }

    /// Requires CHAP for discovery sessions: creates account `user`/`secret` and binds it without
    /// `--tid` (tgt's "global" tid, which is discovery; `--tid 0` is rejected). libiscsi then needs
    /// `iscsi://user%secret@host:port`.
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`]; an existing account name fails.
    pub fn set_discovery_chap(&self, user: &str, secret: &str) -> Result<(), PeerError> {
        self.new_account(user, secret)?;
        self.iscsi(&["--op", "bind", "--mode", "account", "--user", user])
            .map(drop)
    }

    /// Adds the target's own account for mutual CHAP on discovery sessions (`--outgoing`, bound
    /// without `--tid`). tgt 1.0.85 supports it: an initiator that asks for mutual CHAP gets a
    /// `CHAP_R` made with this secret (libiscsi: `?target_user=U&target_password=S`); one that does
    /// not ask still logs in with one-way CHAP. Use together with [`Tgtd::set_discovery_chap`].
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`].
    pub fn set_discovery_mutual(&self, user: &str, secret: &str) -> Result<(), PeerError> {
        self.new_account(user, secret)?;
        self.iscsi(&[
            "--op",
            "bind",
            "--mode",
            "account",
            "--user",
            user,
            "--outgoing",
        ])
        .map(drop)
    }

    /// Turns discovery CHAP for `user` off again (the account stays).
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`].
    pub fn unset_discovery_chap(&self, user: &str) -> Result<(), PeerError> {
        self.iscsi(&["--op", "unbind", "--mode", "account", "--user", user])
            .map(drop)
    }

    /// Requires CHAP for logins to target `tid` (one-way; add `outgoing` for mutual).
    ///
    /// # Errors
    /// As [`Tgtd::tgtadm`].
    pub fn set_target_chap(
        &self,
        tid: u32,
        user: &str,
        secret: &str,
        outgoing: Option<(&str, &str)>,
    ) -> Result<(), PeerError> {
        let tid_s = tid.to_string();
        self.new_account(user, secret)?;
        self.iscsi(&[
            "--op", "bind", "--mode", "account", "--tid", &tid_s, "--user", user,
        ])?;
        if let Some((out_user, out_secret)) = outgoing {
            self.new_account(out_user, out_secret)?;
            self.iscsi(&[
                "--op",
                "bind",
                "--mode",
                "account",
                "--tid",
                &tid_s,
                "--user",
                out_user,
                "--outgoing",
            ])?;
        }
        Ok(())
    }

    fn new_account(&self, user: &str, secret: &str) -> Result<(), PeerError> {
        self.iscsi(&[
            "--op",
            "new",
            "--mode",
            "account",
            "--user",
            user,
            "--password",
            secret,
        ])
        .map(drop)
    }

    /// Stops tgtd cleanly: deletes every target (`--force`), then the system, and waits up to
    /// [`TGTD_STOP_TIMEOUT`] for the exit. If any step fails, the process is killed (SIGKILL to the
    /// recorded child) before the error is returned; either way it is gone and reaped afterwards.
    ///
    /// # Errors
    /// The first clean-stop step that failed.
    pub fn stop(mut self) -> Result<(), PeerError> {
        let result = self.clean_stop();
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
        result
    }

    fn clean_stop(&mut self) -> Result<(), PeerError> {
        for (tid, _) in self.targets()? {
            self.delete_target(tid)?;
        }
        self.tgtadm(&["--op", "delete", "--mode", "system"])?;
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        match process::wait_deadline(child, TGTD_STOP_TIMEOUT) {
            Ok(Some(_)) => {
                self.child = None;
                Ok(())
            }
            Ok(None) => Err(PeerError::NotReady {
                peer: "tgtd".into(),
                what: "exit after `--op delete --mode system`".into(),
                after: TGTD_STOP_TIMEOUT,
                log_tail: log_tail(&self.log),
            }),
            Err(e) => Err(PeerError::io("waiting for tgtd to exit", e)),
        }
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

/// Parses `"127.0.0.1:3260"` / `"[::1]:3260"`, insisting on loopback and on brackets for IPv6.
pub(crate) fn parse_portal(portal: &str) -> Result<SocketAddr, PeerError> {
    let addr: SocketAddr = portal.parse().map_err(|_| {
        PeerError::InvalidArgument(format!(
            "portal {portal:?} is not ADDR:PORT (IPv6 needs brackets: \"[::1]:3260\")"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(PeerError::InvalidArgument(format!(
            "portal {portal:?} is not a loopback address"
        )));
    }
    if addr.port() == 0 {
        return Err(PeerError::InvalidArgument(format!(
            "portal {portal:?} has port 0"
        )));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portals_are_validated_and_normalised() {
        assert_eq!(
            parse_portal("127.0.0.2:3260").map(|a| a.to_string()).ok(),
            Some("127.0.0.2:3260".to_owned())
        );
        assert_eq!(
            parse_portal("[::1]:3263").map(|a| a.to_string()).ok(),
            Some("[::1]:3263".to_owned())
        );
        // tgt would silently ignore these; we refuse them.
        assert!(matches!(
            parse_portal("::1:3263"),
            Err(PeerError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_portal("192.0.2.1:3260"),
            Err(PeerError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_portal("127.0.0.1:0"),
            Err(PeerError::InvalidArgument(_))
        ));
    }
}
