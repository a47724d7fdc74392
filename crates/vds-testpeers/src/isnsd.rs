//! A private `isnsd` (open-isns server) on 127.0.0.1, and `isnsadm` against it.
//!
//! Each instance writes the test config of `shared/reference/isns.md` §5 into its own temp dir:
//! `BindAddress = 127.0.0.1:<port>` (a port from [`crate::free_port`]), a fresh `Database`
//! directory, its own control socket and PID file, `SLPRegister = 0`, `ESIRetries = 0`,
//! `RegistrationPeriod` (0 unless [`IsnsdConfig::registration_period`] says otherwise) and always
//! an explicit `Security` (without it isnsd counts security as on): 0, or 1 with a DSA key of the
//! instance's own ([`IsnsdConfig::security`]). isnsd runs in the foreground (`-f`) with its output
//! in the instance's log; [`Isnsd::start`] waits until it accepts TCP. [`Isnsd::stop`] sends
//! SIGTERM to the PID it spawned, waits, then SIGKILL; drop sends SIGKILL.
//!
//! [`Isnsd::isnsadm`] runs the real client with an `isnsadm.conf` in the instance dir
//! (`SourceName`, `ServerAddress`, `Security = 0`) and a deadline.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use crate::PeerError;
use crate::process::{self, kill_and_reap, log_tail};

/// How long start-up may take.
pub const ISNSD_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Isnsd::stop`] waits after SIGTERM before SIGKILL.
pub const ISNSD_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline for one `isnsadm` run.
pub const ISNSADM_TIMEOUT: Duration = Duration::from_secs(10);

/// What to start isnsd with.
#[derive(Clone, Debug)]
pub struct IsnsdConfig {
    /// `DefaultDiscoveryDomain`: with `true` (Debian's conffile) unregistered sources see every
    /// node in no discovery domain; with `false` (upstream's default) they see nothing and only
    /// Control nodes see everything (reference §2).
    pub default_discovery_domain: bool,
    /// The server's `SourceName`.
    pub source_name: String,
    /// The `SourceName` [`Isnsd::isnsadm`] uses.
    pub isnsadm_source_name: String,
    /// The port on 127.0.0.1; `None` reserves one with [`crate::free_port`].
    pub port: Option<u16>,
    /// Run with `-d all` (a protocol trace in the log).
    pub debug: bool,
    /// `RegistrationPeriod` in seconds: 0 (the default here) keeps registrations for ever; with
    /// more, isnsd drops an entity that does not register again within that time.
    pub registration_period: u32,
    /// `Security = 1`: isnsd gets its own DSA key (made with `isnsd --init` in the instance dir,
    /// `AuthKeyFile`), and ignores every unauthenticated request without answering.
    pub security: bool,
}

impl Default for IsnsdConfig {
    fn default() -> Self {
        IsnsdConfig {
            default_discovery_domain: true,
            source_name: "iqn.2026-12.test.vds:isnsd".into(),
            isnsadm_source_name: "iqn.2026-12.test.vds:isnsadm".into(),
            port: None,
            debug: false,
            registration_period: 0,
            security: false,
        }
    }
}

/// A running isnsd that this value owns; it is killed when dropped.
#[derive(Debug)]
pub struct Isnsd {
    child: Option<Child>,
    pid: u32,
    port: u16,
    cfg: IsnsdConfig,
    isnsadm: PathBuf,
    adm_conf: PathBuf,
    log: PathBuf,
    // Last field: dropped after `Drop::drop` has killed the daemon.
    dir: TempDir,
}

impl Isnsd {
    /// Writes the config, starts `isnsd -c <config> -f` and waits, up to
    /// [`ISNSD_START_TIMEOUT`], until it accepts TCP on 127.0.0.1:`port`.
    ///
    /// # Errors
    /// [`PeerError::NotInstalled`] without open-isns-server/open-isns-utils,
    /// [`PeerError::PeerExited`] / [`PeerError::NotReady`] with the log tail.
    pub fn start(cfg: IsnsdConfig) -> Result<Isnsd, PeerError> {
        let isnsd = process::find_binary("isnsd")?;
        let isnsadm = process::find_binary("isnsadm")?;
        let port = match cfg.port {
            Some(p) => p,
            None => crate::try_free_port()?,
        };
        let dir = crate::instance_dir("isnsd")?;
        let d = dir.path();
        let db = d.join("db");
        std::fs::create_dir(&db)
            .map_err(|e| PeerError::io(format!("creating {}", db.display()), e))?;
        let conf = d.join("isnsd.conf");
        let mut text = format!(
            "SourceName = {}\nBindAddress = 127.0.0.1:{port}\nControlSocket = {}\n\
             PIDFile = {}\nDatabase = {}\nDefaultDiscoveryDomain = {}\nSLPRegister = 0\n\
             Security = {}\nRegistrationPeriod = {}\nESIRetries = 0\n",
            cfg.source_name,
            d.join("isnsctl").display(),
            d.join("isnsd.pid").display(),
            db.display(),
            u8::from(cfg.default_discovery_domain),
            u8::from(cfg.security),
            cfg.registration_period,
        );
        if cfg.security {
            // Its own key, never the machine's /etc/isns/auth_key.
            text.push_str(&format!(
                "AuthKeyFile = {}\nServerKeyFile = {}\n",
                d.join("auth_key").display(),
                d.join("server_key.pub").display()
            ));
        }
        write(&conf, &text)?;
        if cfg.security {
            let mut init = Command::new(&isnsd);
            init.arg("-c").arg(&conf).arg("--init").current_dir(d);
            process::run_ok(&mut init, ISNSD_START_TIMEOUT, None)?;
        }
        let adm_conf = d.join("isnsadm.conf");
        write(
            &adm_conf,
            &format!(
                "SourceName = {}\nServerAddress = 127.0.0.1:{port}\nSecurity = 0\n",
                cfg.isnsadm_source_name
            ),
        )?;
        let log = d.join("isnsd.log");
        let mut cmd = Command::new(&isnsd);
        cmd.arg("-c").arg(&conf).arg("-f").current_dir(d);
        if cfg.debug {
            cmd.arg("-d").arg("all");
        }
        let child = process::spawn_daemon(&mut cmd, &log)?;
        let mut me = Isnsd {
            pid: child.id(),
            child: Some(child),
            port,
            cfg,
            isnsadm,
            adm_conf,
            log,
            dir,
        };
        let addr = me.addr();
        if let Some(child) = me.child.as_mut() {
            process::wait_for_portals("isnsd", child, &[addr], &me.log, ISNSD_START_TIMEOUT)?;
        }
        Ok(me)
    }

    /// The PID of the isnsd process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `"127.0.0.1:<port>"`.
    pub fn address(&self) -> String {
        self.addr().to_string()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &IsnsdConfig {
        &self.cfg
    }

    /// The instance's private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last couple of KiB of isnsd's output.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Runs `isnsadm -c <instance isnsadm.conf> <args>` (TCP to this isnsd, source
    /// [`IsnsdConfig::isnsadm_source_name`]) and returns its stdout.
    ///
    /// # Errors
    /// [`PeerError::CommandFailed`] with isnsadm's stderr and isnsd's log tail;
    /// [`PeerError::Timeout`] after [`ISNSADM_TIMEOUT`].
    pub fn isnsadm(&self, args: &[&str]) -> Result<String, PeerError> {
        let mut cmd = Command::new(&self.isnsadm);
        cmd.arg("-c").arg(&self.adm_conf).args(args);
        process::run_ok(&mut cmd, ISNSADM_TIMEOUT, Some(&self.log))
    }

    /// `isnsadm --key eid=EID --register entity=EID OBJECTS…`: registers entity `eid` (or adds
    /// to it: an entity registered again keeps what it had) with `objects` in isnsadm's syntax
    /// (`target=IQN[,alias=A]`, `initiator=IQN`, `portal=IP:PORT`, `pg,pgt=N` joining the portal
    /// and node before it), and returns isnsadm's stdout.
    ///
    /// # Errors
    /// As [`Isnsd::isnsadm`].
    pub fn register(&self, eid: &str, objects: &[&str]) -> Result<String, PeerError> {
        let key = format!("eid={eid}");
        let entity = format!("entity={eid}");
        let mut args = vec!["--key", key.as_str(), "--register", entity.as_str()];
        args.extend_from_slice(objects);
        self.isnsadm(&args)
    }

    /// What `isnsadm --list entities|nodes|portals|portal-groups` reports, as sets of the values
    /// it prints (see [`IsnsadmLists`]): the yardstick tests compare their own reading with.
    ///
    /// # Errors
    /// As [`Isnsd::isnsadm`].
    pub fn lists(&self) -> Result<IsnsadmLists, PeerError> {
        let list = |what: &str| -> Result<Vec<Vec<(u32, String)>>, PeerError> {
            Ok(parse_isnsadm_list(&self.isnsadm(&["--list", what])?))
        };
        let get = |obj: &[(u32, String)], tag: u32, missing: &str| {
            obj.iter()
                .find(|(t, _)| *t == tag)
                .map_or_else(|| missing.to_owned(), |(_, v)| v.clone())
        };
        Ok(IsnsadmLists {
            entities: list("entities")?.iter().map(|o| get(o, 0x01, "")).collect(),
            nodes: list("nodes")?
                .iter()
                .map(|o| (get(o, 0x20, ""), get(o, 0x21, "<NIL>"), get(o, 0x22, "")))
                .collect(),
            portals: list("portals")?
                .iter()
                .map(|o| (get(o, 0x10, ""), get(o, 0x11, "")))
                .collect(),
            portal_groups: list("portal-groups")?
                .iter()
                .map(|o| {
                    (
                        get(o, 0x30, ""),
                        get(o, 0x31, ""),
                        get(o, 0x32, ""),
                        get(o, 0x33, "<NIL>"),
                    )
                })
                .collect(),
        })
    }

    /// SIGTERM to the PID it spawned, wait up to [`ISNSD_STOP_TIMEOUT`], then SIGKILL; the
    /// process is gone and reaped afterwards.
    ///
    /// # Errors
    /// [`PeerError::NotReady`] if isnsd ignored SIGTERM (it was killed anyway).
    pub fn stop(mut self) -> Result<(), PeerError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let result = process::terminate(&child).and_then(|()| {
            match process::wait_deadline(&mut child, ISNSD_STOP_TIMEOUT) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(PeerError::NotReady {
                    peer: "isnsd".into(),
                    what: "exit after SIGTERM".into(),
                    after: ISNSD_STOP_TIMEOUT,
                    log_tail: log_tail(&self.log),
                }),
                Err(e) => Err(PeerError::io("waiting for isnsd to exit", e)),
            }
        });
        kill_and_reap(&mut child);
        result
    }
}

impl Drop for Isnsd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), PeerError> {
    std::fs::write(path, text).map_err(|e| PeerError::io(format!("writing {}", path.display()), e))
}

/// What `isnsadm --list` reports ([`Isnsd::lists`]), each value as isnsadm prints it: node types
/// `Target`, `Initiator`, `Control` (`<NIL>` when the node has none), ports `3260/tcp`, portal
/// group tags as numbers (`<NIL>` for a NULL tag), a missing alias as the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsnsadmLists {
    /// Entity identifiers.
    pub entities: BTreeSet<String>,
    /// Storage nodes: (iSCSI name, node type, alias).
    pub nodes: BTreeSet<(String, String, String)>,
    /// Portals: (IP address, port).
    pub portals: BTreeSet<(String, String)>,
    /// Portal groups: (node name, portal IP address, portal port, tag).
    pub portal_groups: BTreeSet<(String, String, String, String)>,
}

/// One object of `isnsadm --list ...` output: its attributes as `(tag, value)`, value as printed
/// after `=` (strings without their quotes). Index attributes are kept; callers filter.
pub fn parse_isnsadm_list(out: &str) -> Vec<Vec<(u32, String)>> {
    let mut objects: Vec<Vec<(u32, String)>> = Vec::new();
    for line in out.lines() {
        if line.starts_with("Object ") || line.starts_with("object[") {
            objects.push(Vec::new());
            continue;
        }
        // "  0020  string      : iSCSI name = \"iqn...\""
        let t = line.trim_start();
        let Some((tag, rest)) = t.split_once(char::is_whitespace) else {
            continue;
        };
        let Ok(tag) = u32::from_str_radix(tag, 16) else {
            continue;
        };
        let Some((_, value)) = rest.split_once(" = ") else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if let Some(obj) = objects.last_mut() {
            obj.push((tag, value.to_owned()));
        }
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isnsadm_list_output_parses() {
        let out = "Object 0:\n  0020  string      : iSCSI name = \"iqn.2024-01.test:disk1\"\n  \
                   0021  uint32      : iSCSI node type = Target\nObject 1:\n  \
                   0011  uint32      : Portal TCP/UDP port = 3260/tcp\n";
        assert_eq!(
            parse_isnsadm_list(out),
            vec![
                vec![
                    (0x20, "iqn.2024-01.test:disk1".to_owned()),
                    (0x21, "Target".to_owned())
                ],
                vec![(0x11, "3260/tcp".to_owned())],
            ]
        );
        assert!(parse_isnsadm_list("").is_empty());
    }
}
