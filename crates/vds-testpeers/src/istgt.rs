//! A private `istgt` on loopback: the peer with real portal groups (several `TargetAddress` lines
//! per target, each with its own tag, and per-group visibility in SendTargets).
//!
//! Each instance writes its own config, auth file, PID file, log and LUN files into its own temp
//! dir, and puts the mandatory `[UnitControl]` portal on a reserved port. istgt exits on SIGTERM
//! (after a second or two); [`Istgt::stop`] waits for that and then falls back to SIGKILL.
//! libiscsi cannot talk to istgt (it rejects istgt's ExpCmdSN after an immediate Text PDU), so check
//! it with [`crate::sendtargets`] or a plain TCP connect instead of [`crate::iscsi_ls`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{self, kill_and_reap, log_tail};
use crate::tgtd::parse_portal;
use crate::{LUN_SIZE, PeerError};

/// How long start-up may take.
pub const ISTGT_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Istgt::stop`] waits after SIGTERM before SIGKILL.
pub const ISTGT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One target (istgt "LogicalUnit") and the portal groups it is mapped to.
#[derive(Clone, Debug)]
pub struct IstgtTarget {
    /// `disk1` (istgt prefixes NodeBase: `<node_base>:disk1`) or a full `iqn.`/`eui.`/`naa.` name.
    pub name: String,
    /// Tags of the portal groups the target is reachable (and discoverable) through.
    pub portal_groups: Vec<u32>,
}

/// What to start istgt with.
#[derive(Clone, Debug)]
pub struct IstgtConfig {
    /// The prefix for short target names, e.g. `iqn.2026-11.test.vds.istgt`.
    pub node_base: String,
    /// Portal groups: tag → portals (`"127.0.0.1:PORT"`, `"[::1]:PORT"`; loopback only).
    pub portal_groups: BTreeMap<u32, Vec<String>>,
    /// Targets, in order (LogicalUnit1, 2, ...).
    pub targets: Vec<IstgtTarget>,
    /// Port of the `[UnitControl]` portal on 127.0.0.1; `None` reserves one with
    /// [`crate::free_port`]. istgt refuses to start without it.
    pub unit_control_port: Option<u16>,
}

impl Default for IstgtConfig {
    fn default() -> Self {
        IstgtConfig {
            node_base: "iqn.2026-11.test.vds.istgt".into(),
            portal_groups: BTreeMap::new(),
            targets: Vec::new(),
            unit_control_port: None,
        }
    }
}

impl IstgtConfig {
    /// The topology of `shared/reference/peers.md` §7: portal group 1 on `pg1`, group 2 on `pg2`,
    /// `disk1` mapped to group 1, `disk2` to group 2 and `iqn.2026-11.test.vds:istgt-d3` to both.
    pub fn two_groups(pg1: Vec<String>, pg2: Vec<String>) -> IstgtConfig {
        let target = |name: &str, portal_groups: Vec<u32>| IstgtTarget {
            name: name.into(),
            portal_groups,
        };
        IstgtConfig {
            portal_groups: BTreeMap::from([(1, pg1), (2, pg2)]),
            targets: vec![
                target("disk1", vec![1]),
                target("disk2", vec![2]),
                target("iqn.2026-11.test.vds:istgt-d3", vec![1, 2]),
            ],
            ..IstgtConfig::default()
        }
    }

    /// The full name istgt gives `name` (NodeBase prefix unless it already is an iqn/eui/naa name).
    pub fn target_iqn(&self, name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        if ["iqn.", "eui.", "naa."]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            name.to_owned()
        } else {
            format!("{}:{name}", self.node_base)
        }
    }
}

/// A running istgt that this value owns; it is killed when dropped.
#[derive(Debug)]
pub struct Istgt {
    child: Option<Child>,
    pid: u32,
    cfg: IstgtConfig,
    unit_control_port: u16,
    log: PathBuf,
    config_text: String,
    // Last field: dropped after `Drop::drop` has killed the daemon.
    dir: TempDir,
}

impl Istgt {
    /// Writes the config, starts `istgt -D -c <config>` and waits, up to [`ISTGT_START_TIMEOUT`], until
    /// every portal of every group accepts TCP.
    ///
    /// # Errors
    /// [`PeerError::NotInstalled`], [`PeerError::InvalidArgument`] (no portal group, a target mapped
    /// to an unknown tag, a non-loopback or unbracketed IPv6 portal), [`PeerError::PeerExited`] /
    /// [`PeerError::NotReady`] with the log tail.
    pub fn start(cfg: IstgtConfig) -> Result<Istgt, PeerError> {
        let istgt = process::find_binary("istgt")?;
        let addrs = validate(&cfg)?;
        let unit_control_port = match cfg.unit_control_port {
            Some(p) => p,
            None => crate::try_free_port()?,
        };
        let dir = crate::instance_dir("istgt")?;
        let log = dir.path().join("istgt.log");
        let config_text = render_config(&cfg, dir.path(), unit_control_port)?;
        let conf_path = dir.path().join("istgt.conf");
        write(&conf_path, &config_text)?;
        write(
            &dir.path().join("auth.conf"),
            "[AuthGroup1]\n  Auth \"vds-unused\" \"vds-unused-secret\"\n",
        )?;
        let mut cmd = Command::new(&istgt);
        cmd.arg("-D")
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path());
        let child = process::spawn_daemon(&mut cmd, &log)?;
        let mut me = Istgt {
            pid: child.id(),
            child: Some(child),
            cfg,
            unit_control_port,
            log,
            config_text,
            dir,
        };
        if let Some(child) = me.child.as_mut() {
            process::wait_for_portals("istgt", child, &addrs, &me.log, ISTGT_START_TIMEOUT)?;
        }
        Ok(me)
    }

    /// The PID of the istgt process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &IstgtConfig {
        &self.cfg
    }

    /// The portals of group `tag`, normalised (`"[::1]:20001"`); empty for an unknown tag.
    pub fn portals(&self, tag: u32) -> Vec<String> {
        self.cfg
            .portal_groups
            .get(&tag)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| parse_portal(p).ok())
                    .map(|a| a.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `[UnitControl]` port (on 127.0.0.1).
    pub fn unit_control_port(&self) -> u16 {
        self.unit_control_port
    }

    /// The full name of target `name` (see [`IstgtConfig::target_iqn`]).
    pub fn target_iqn(&self, name: &str) -> String {
        self.cfg.target_iqn(name)
    }

    /// The generated `istgt.conf`, for debugging.
    pub fn config_text(&self) -> &str {
        &self.config_text
    }

    /// The instance's private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last couple of KiB of istgt's output.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// How many discovery sessions istgt has logged out: the `Logout(discovery)` lines of its log
    /// (the first 16 MiB of it), written when it accepts a Logout Request.
    pub fn discovery_logouts(&self) -> usize {
        use std::io::Read;
        let mut text = Vec::new();
        if let Ok(f) = std::fs::File::open(&self.log) {
            let _ = f.take(16 << 20).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text)
            .matches("Logout(discovery)")
            .count()
    }

    /// SIGTERM, wait up to [`ISTGT_STOP_TIMEOUT`], then SIGKILL; the process is gone and reaped afterwards.
    ///
    /// # Errors
    /// [`PeerError::NotReady`] if istgt ignored SIGTERM (it was killed anyway).
    pub fn stop(mut self) -> Result<(), PeerError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let result = process::terminate(&child).and_then(|()| {
            match process::wait_deadline(&mut child, ISTGT_STOP_TIMEOUT) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(PeerError::NotReady {
                    peer: "istgt".into(),
                    what: "exit after SIGTERM".into(),
                    after: ISTGT_STOP_TIMEOUT,
                    log_tail: log_tail(&self.log),
                }),
                Err(e) => Err(PeerError::io("waiting for istgt to exit", e)),
            }
        });
        kill_and_reap(&mut child);
        result
    }
}

impl Drop for Istgt {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), PeerError> {
    std::fs::write(path, text).map_err(|e| PeerError::io(format!("writing {}", path.display()), e))
}

/// Checks the config and returns every portal address to wait for.
fn validate(cfg: &IstgtConfig) -> Result<Vec<SocketAddr>, PeerError> {
    if cfg.portal_groups.is_empty() || cfg.portal_groups.values().any(Vec::is_empty) {
        return Err(PeerError::InvalidArgument(
            "istgt needs at least one portal group, each with at least one portal".into(),
        ));
    }
    for t in &cfg.targets {
        if t.portal_groups.is_empty() {
            return Err(PeerError::InvalidArgument(format!(
                "istgt target {:?} is mapped to no portal group",
                t.name
            )));
        }
        if let Some(tag) = t
            .portal_groups
            .iter()
            .find(|tag| !cfg.portal_groups.contains_key(tag))
        {
            return Err(PeerError::InvalidArgument(format!(
                "istgt target {:?} is mapped to unknown portal group {tag}",
                t.name
            )));
        }
    }
    cfg.portal_groups
        .values()
        .flatten()
        .map(|p| parse_portal(p))
        .collect()
}

fn render_config(cfg: &IstgtConfig, dir: &Path, uc_port: u16) -> Result<String, PeerError> {
    let d = dir.display();
    let mut s = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        s,
        "[Global]\n  NodeBase \"{nb}\"\n  PidFile {d}/istgt.pid\n  AuthFile {d}/auth.conf\n  \
         MediaDirectory {d}\n  Timeout 30\n  NopInInterval 20\n  DiscoveryAuthMethod None\n  \
         MaxSessions 16\n  MaxConnections 4\n\n\
         [UnitControl]\n  AuthMethod None\n  Portal UC1 127.0.0.1:{uc_port}\n  Netmask 127.0.0.1\n\n",
        nb = cfg.node_base
    );
    let mut n = 0;
    for (tag, portals) in &cfg.portal_groups {
        let _ = writeln!(s, "[PortalGroup{tag}]");
        for p in portals {
            n += 1;
            let _ = writeln!(s, "  Portal DA{n} {}", parse_portal(p)?);
        }
        s.push('\n');
    }
    s.push_str(
        "[InitiatorGroup1]\n  InitiatorName \"ALL\"\n  Netmask 127.0.0.0/8\n  Netmask [::1]/128\n\n",
    );
    for (i, t) in cfg.targets.iter().enumerate() {
        let lu = i + 1;
        let backing = dir.join(format!("lu{lu}.img"));
        let file = std::fs::File::create(&backing)
            .map_err(|e| PeerError::io(format!("creating {}", backing.display()), e))?;
        file.set_len(LUN_SIZE)
            .map_err(|e| PeerError::io(format!("sizing {}", backing.display()), e))?;
        let _ = writeln!(s, "[LogicalUnit{lu}]\n  TargetName {}", t.name);
        for tag in &t.portal_groups {
            let _ = writeln!(s, "  Mapping PortalGroup{tag} InitiatorGroup1");
        }
        let _ = writeln!(
            s,
            "  AuthMethod None\n  UseDigest Auto\n  UnitType Disk\n  LUN0 Storage {} Auto\n",
            backing.display()
        );
    }
    Ok(s)
}
