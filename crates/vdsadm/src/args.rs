//! Validation: turns the raw [`Cli`] into an [`Invocation`] whose every value has been checked, in
//! this one place. Portals are parsed (`HOST[:PORT]`, IPv6 only in brackets), secret files are read
//! (and the secrets kept in zeroizing memory), and credential combinations are checked.
//!
//! The secret itself never leaves [`Secret`]: it has no `Display`, its `Debug` prints `<secret>`,
//! and it is wiped when dropped.

use std::fmt;
use std::path::{Path, PathBuf};

use vds_model::{Hresult, VdsIpAddress};
use vds_providers::sendtargets::DiscoveryPortal;
use zeroize::Zeroizing;

use crate::cli::{
    AddArgs, Cli, CommandArgs, CredentialArgs, DetailArgs, DiscoverArgs, ListArgs, SubsystemArgs,
};
use crate::error::{CliError, CliResult};

/// A portal given on the command line: a [`DiscoveryPortal`] (host and TCP port), parsed by the
/// provider's own rules so that what is registered is exactly what the provider will contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalArg {
    /// The portal.
    pub portal: DiscoveryPortal,
}

impl PortalArg {
    /// Parses `HOST[:PORT]`; a port is required when `need_port`. IPv6 literals must be bracketed
    /// (`[::1]:3260`), because `::1:3260` is itself a valid IPv6 address.
    pub fn parse(s: &str, need_port: bool) -> Result<PortalArg, String> {
        let t = s.trim();
        let has_port = if let Some(rest) = t.strip_prefix('[') {
            rest.split_once(']')
                .is_some_and(|(_, after)| !after.is_empty())
        } else {
            if t.matches(':').count() > 1 {
                return Err(format!(
                    "{t:?}: write an IPv6 address in brackets, as in [::1]:3260"
                ));
            }
            t.contains(':')
        };
        if need_port && !has_port {
            return Err(format!("{t:?}: give the port, as in HOST:PORT"));
        }
        t.parse::<DiscoveryPortal>()
            .map(|portal| PortalArg { portal })
            .map_err(|e| e.to_string())
    }

    /// The `VDS_IPADDRESS` this names: IPv4, IPv6 (with its scope id) or TEXT.
    pub fn to_vds_address(&self) -> VdsIpAddress {
        self.portal
            .vds_address()
            .unwrap_or_else(|| VdsIpAddress::Text {
                text: self.portal.host.to_string(),
                port: u32::from(self.portal.port),
            })
    }
}

/// `[::1]:3260`, `127.0.0.1:3260`, `array.example:3260`.
impl fmt::Display for PortalArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.portal, f)
    }
}

/// A CHAP secret read from a file: wiped on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The secret's bytes, for handing to the store or the initiator. Never log or print them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Reads a secret file: its bytes less one trailing line end (`echo secret > file` is the
    /// common way to write one, and a CHAP secret ending in a newline is always a mistake). An
    /// empty secret is refused.
    fn read(path: &Path, what: &str) -> CliResult<Secret> {
        let text = Zeroizing::new(std::fs::read(path).map_err(|e| {
            CliError::with_cause(
                Hresult::from_io_error(&e),
                format!("{what} file {}", path.display()),
                format!("cannot read it: {e}"),
            )
        })?);
        let trimmed = text
            .strip_suffix(b"\r\n")
            .or_else(|| text.strip_suffix(b"\n"))
            .unwrap_or(&text);
        if trimmed.is_empty() {
            return Err(CliError::usage(
                format!("{what} file {}", path.display()),
                "the file is empty",
            ));
        }
        Ok(Secret(Zeroizing::new(trimmed.to_vec())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A CHAP user and its secret.
#[derive(Clone, Debug)]
pub struct ChapCredential {
    /// The user name.
    pub user: String,
    /// The secret.
    pub secret: Secret,
}

/// Checked credentials.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The initiator name, when given.
    pub initiator_name: Option<String>,
    /// One-way CHAP.
    pub chap: Option<ChapCredential>,
    /// Mutual CHAP (only with `chap`).
    pub mutual: Option<ChapCredential>,
}

/// A validated command.
#[derive(Debug)]
pub enum Command {
    /// `subsystem add`.
    SubsystemAdd {
        /// Name.
        name: String,
        /// Discovery portals, in the order given.
        portals: Vec<PortalArg>,
        /// Credentials.
        credentials: Credentials,
        /// `--no-refresh`.
        no_refresh: bool,
    },
    /// `subsystem remove`.
    SubsystemRemove {
        /// Name.
        name: String,
    },
    /// `list subsystems`.
    ListSubsystems,
    /// `list tportals`.
    ListTportals {
        /// Subsystem.
        subsystem: String,
    },
    /// `list targets`.
    ListTargets {
        /// Subsystem.
        subsystem: String,
    },
    /// `list tpgroups`.
    ListTpgroups {
        /// Subsystem.
        subsystem: String,
        /// Target IQN.
        target: String,
    },
    /// `detail subsystem`.
    DetailSubsystem {
        /// Subsystem.
        name: String,
    },
    /// `detail tportal`.
    DetailTportal {
        /// Subsystem.
        subsystem: String,
        /// Portal.
        portal: PortalArg,
    },
    /// `detail target`.
    DetailTarget {
        /// Subsystem.
        subsystem: String,
        /// Target IQN.
        target: String,
    },
    /// `refresh`.
    Refresh,
    /// `reenumerate`.
    Reenumerate,
    /// `discover`.
    Discover {
        /// Portal.
        portal: PortalArg,
        /// Credentials.
        credentials: Credentials,
    },
    /// `completions`.
    Completions(clap_complete::Shell),
    /// `man`.
    Man,
}

/// Global options, checked.
#[derive(Debug)]
pub struct Globals {
    /// `--store` or `$VDS_HOME`; `None` means the store's default root.
    pub store: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--sim`.
    pub sim: bool,
    /// `-v` count.
    pub verbose: u8,
}

/// A whole validated command line.
#[derive(Debug)]
pub struct Invocation {
    /// Global options.
    pub globals: Globals,
    /// The command.
    pub command: Command,
}

fn usage(what: impl Into<String>, cause: impl Into<String>) -> CliError {
    CliError::usage(what, cause)
}

fn portal(s: &str, need_port: bool) -> CliResult<PortalArg> {
    PortalArg::parse(s, need_port).map_err(|cause| usage("portal", cause))
}

fn subsystem_name(name: String) -> CliResult<String> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(usage(
            format!("subsystem {name:?}"),
            "a name must be non-empty and have no control characters",
        ));
    }
    Ok(name)
}

fn credentials(c: CredentialArgs) -> CliResult<Credentials> {
    if let Some(iqn) = &c.initiator_name {
        if iqn.trim().is_empty() || iqn.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(usage(
                format!("initiator name {iqn:?}"),
                "not an iSCSI name",
            ));
        }
    }
    if c.mutual_user.is_some() && c.chap_user.is_none() {
        return Err(usage(
            "--mutual-user",
            "mutual CHAP needs one-way CHAP as well (--chap-user and --chap-secret-file)",
        ));
    }
    let pair = |user: Option<String>, file: Option<PathBuf>, what: &str| match (user, file) {
        (Some(user), Some(file)) => {
            if user.is_empty() || user.chars().any(char::is_control) {
                return Err(usage(
                    format!("{what} user"),
                    "empty or unprintable user name",
                ));
            }
            Ok(Some(ChapCredential {
                user,
                secret: Secret::read(&file, what)?,
            }))
        }
        (None, None) => Ok(None),
        _ => Err(usage(what, "give both the user and the secret file")),
    };
    let chap = pair(c.chap_user, c.chap_secret_file, "CHAP secret")?;
    let mutual = pair(c.mutual_user, c.mutual_secret_file, "mutual CHAP secret")?;
    Ok(Credentials {
        initiator_name: c.initiator_name,
        chap,
        mutual,
    })
}

/// Validates `cli`. Usage-class errors (bad portal, bad name) carry `E_INVALIDARG`; `main` gives
/// them exit status 2. An unreadable secret file carries its I/O code.
pub fn validate(cli: Cli) -> CliResult<Invocation> {
    let globals = Globals {
        store: cli.store,
        json: cli.json,
        sim: cli.sim,
        verbose: cli.verbose,
    };
    let command = match cli.command {
        CommandArgs::Subsystem(SubsystemArgs::Add(AddArgs {
            name,
            portals,
            credentials: c,
            no_refresh,
        })) => {
            let name = subsystem_name(name)?;
            let mut parsed: Vec<PortalArg> = Vec::with_capacity(portals.len());
            for p in &portals {
                let p = portal(p, false)?;
                if parsed.contains(&p) {
                    return Err(usage("portal", format!("{p} is given twice")));
                }
                parsed.push(p);
            }
            Command::SubsystemAdd {
                name,
                portals: parsed,
                credentials: credentials(c)?,
                no_refresh,
            }
        }
        CommandArgs::Subsystem(SubsystemArgs::Remove { name }) => Command::SubsystemRemove {
            name: subsystem_name(name)?,
        },
        CommandArgs::List(ListArgs::Subsystems) => Command::ListSubsystems,
        CommandArgs::List(ListArgs::Tportals { subsystem }) => Command::ListTportals {
            subsystem: subsystem_name(subsystem)?,
        },
        CommandArgs::List(ListArgs::Targets { subsystem }) => Command::ListTargets {
            subsystem: subsystem_name(subsystem)?,
        },
        CommandArgs::List(ListArgs::Tpgroups { subsystem, target }) => Command::ListTpgroups {
            subsystem: subsystem_name(subsystem)?,
            target,
        },
        CommandArgs::Detail(DetailArgs::Subsystem { name }) => Command::DetailSubsystem {
            name: subsystem_name(name)?,
        },
        CommandArgs::Detail(DetailArgs::Tportal {
            subsystem,
            portal: p,
        }) => Command::DetailTportal {
            subsystem: subsystem_name(subsystem)?,
            portal: portal(&p, true)?,
        },
        CommandArgs::Detail(DetailArgs::Target { subsystem, target }) => Command::DetailTarget {
            subsystem: subsystem_name(subsystem)?,
            target,
        },
        CommandArgs::Refresh => Command::Refresh,
        CommandArgs::Reenumerate => Command::Reenumerate,
        CommandArgs::Discover(DiscoverArgs {
            portal: p,
            credentials: c,
        }) => Command::Discover {
            portal: portal(&p, false)?,
            credentials: credentials(c)?,
        },
        CommandArgs::Completions { shell } => Command::Completions(shell),
        CommandArgs::Man => Command::Man,
    };
    Ok(Invocation { globals, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portals_parse() {
        let p = PortalArg::parse("127.0.0.1", false).unwrap();
        assert_eq!(p.portal.port, 3260);
        assert_eq!(p.to_string(), "127.0.0.1:3260");
        let p = PortalArg::parse("[::1]:13260", true).unwrap();
        assert_eq!(p.to_string(), "[::1]:13260");
        assert_eq!(
            p.to_vds_address(),
            VdsIpAddress::Ipv6 {
                addr: std::net::Ipv6Addr::LOCALHOST,
                flow_info: 0,
                scope_id: 0,
                port: 13260
            }
        );
        let p = PortalArg::parse("[fe80::10%2]", false).unwrap();
        assert_eq!(p.to_vds_address().to_string(), "[fe80::10%2]:3260");
        let p = PortalArg::parse("array1.example.net:3260", true).unwrap();
        assert!(matches!(p.to_vds_address(), VdsIpAddress::Text { .. }));
        for bad in [
            "",
            "::1",
            "::1:3260",
            "[::1",
            "[::1]3260",
            "[nope]:1",
            "h:0",
            "h:70000",
            "h:x",
            "[::1]:",
        ] {
            assert!(PortalArg::parse(bad, false).is_err(), "{bad:?}");
        }
        assert!(PortalArg::parse("127.0.0.1", true).is_err());
        assert!(PortalArg::parse("[::1]", true).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "hunter2hunter2\n").unwrap();
        let s = Secret::read(&f, "CHAP secret").unwrap();
        assert_eq!(s.expose(), b"hunter2hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        std::fs::write(&f, "\n").unwrap();
        assert!(Secret::read(&f, "CHAP secret").is_err());
    }
}
