//! Validation: turns the raw [`Cli`] into an [`Invocation`] whose every value has been checked, in
//! this one place, with the same rules and limits the code that uses it applies (the store's name
//! rule, RFC 7143's limits from `iscsi_proto::limits`): portals are parsed (`HOST[:PORT]`, IPv6
//! only in brackets), names and iSCSI names checked, secret files read (regular files only, without
//! blocking, capped, the secret kept in a [`Secret`]), and credential combinations checked.

use std::fmt;
use std::path::{Path, PathBuf};

use iscsi_proto::limits;
use vds_model::{Hresult, IscsiPortalStatus, VdsIpAddress};
use vds_providers::sendtargets::DiscoveryPortal;
use vds_secret::{FilePolicy, FileProblem, Secret};
use vds_service::Change;

use crate::cli::{
    AddArgs, ChapArgs, ChapTargetArgs, Cli, CommandArgs, CreateArgs, CredentialArgs, DeleteArgs,
    DetailArgs, DiscoverArgs, Lazy, ListArgs, MemberVerb, NameArgs, PortalVerb, ProviderArgs,
    SubsystemArgs,
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

/// A CHAP user and its secret, as given.
pub type ChapCredential = vds_service::NewSubsystemCredential;

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

/// What a subsystem-addressing command names: the subsystem, with `--provider` when given.
pub type Sel = vds_service::SubsystemSel;

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
    /// `subsystem set`.
    SubsystemSet {
        /// The subsystem.
        sel: Sel,
        /// What changes.
        change: vds_service::SubsystemChange,
        /// `--no-refresh`.
        no_refresh: bool,
    },
    /// `subsystem remove`.
    SubsystemRemove(Sel),
    /// `provider add`.
    ProviderAdd {
        /// Name.
        name: String,
        /// Kind.
        kind: String,
        /// The kind's settings from the flags given.
        settings: toml::Table,
        /// `--no-refresh`.
        no_refresh: bool,
    },
    /// `provider remove`.
    ProviderRemove(String),
    /// `list providers`.
    ListProviders,
    /// `list subsystems`.
    ListSubsystems,
    /// `list tportals`.
    ListTportals(Sel),
    /// `list targets`.
    ListTargets(Sel),
    /// `list tpgroups`.
    ListTpgroups(Sel, String),
    /// `detail subsystem`.
    DetailSubsystem(Sel),
    /// `detail tportal`.
    DetailTportal(Sel, PortalArg),
    /// `detail target`.
    DetailTarget(Sel, String),
    /// `refresh` (with `--subsystem`: one).
    Refresh(Option<Sel>),
    /// `reenumerate`.
    Reenumerate,
    /// Every change verb: the subsystem and the change.
    Change(Sel, vds_service::Change),
    /// `watch`.
    Watch {
        /// `--refresh-every`.
        refresh_every: Option<std::time::Duration>,
        /// `--count`.
        count: Option<u64>,
    },
    /// `discover`.
    Discover {
        /// Portal.
        portal: PortalArg,
        /// Credentials.
        credentials: Credentials,
    },
    /// `completions`.
    Completions(clap_complete::Shell),
    /// `man` (into a directory, one page per command).
    Man(Option<PathBuf>),
}

/// Global options, checked.
#[derive(Debug)]
pub struct Globals {
    /// `--store` (clap refuses an empty one); `None` means the store's default root, which honours
    /// a non-empty `$VDS_HOME`.
    pub store: Option<PathBuf>,
    /// `--provider`.
    pub provider: Option<String>,
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
    /// What was accepted but deserves a word (a short CHAP secret): printed on stderr.
    pub warnings: Vec<String>,
}

fn usage(what: impl Into<String>, cause: impl Into<String>) -> CliError {
    CliError::usage(what, cause)
}

fn portal(s: &str, need_port: bool) -> CliResult<PortalArg> {
    PortalArg::parse(s, need_port).map_err(|cause| usage("portal", cause))
}

/// The one naming rule of subsystems and providers (the store's), checked where the name is typed.
fn name(what: &'static str, name: String) -> CliResult<String> {
    vds_store::validate_name(what, &name)
        .map_err(|e| usage(format!("{what} {name:?}"), e.to_string()))?;
    Ok(name)
}

/// A subsystem named to be found (not to be created): any key a provider may have given it, which
/// for an iSNS entity is its EID (up to 255 bytes, whatever it contains), so only emptiness and
/// that length are checked here; names that are configured follow [`name`]'s rule.
fn sel(globals_provider: &Option<String>, subsystem: String) -> CliResult<Sel> {
    if subsystem.is_empty() {
        return Err(usage("subsystem", "the name is empty"));
    }
    if subsystem.len() > vds_model::MAX_FRIENDLY_NAME_BYTES {
        return Err(usage(
            format!("subsystem {subsystem:?}"),
            format!(
                "a subsystem's name has at most {} bytes",
                vds_model::MAX_FRIENDLY_NAME_BYTES
            ),
        ));
    }
    Ok(Sel {
        provider: globals_provider.clone(),
        name: subsystem,
    })
}

/// Reads a secret file the user names: a regular file (links followed), read without blocking,
/// at most the protocol's limit; one trailing line end dropped.
fn secret_file(path: &Path, what: &str) -> CliResult<Secret> {
    let policy = FilePolicy::user_file(limits::MAX_CHAP_SECRET_LEN);
    vds_secret::read_file(path, policy).map_err(|e| {
        let subject = format!("{what} file {}", path.display());
        match e.problem {
            FileProblem::Io(cause) => CliError::with_cause(
                e.errno
                    .map(|n| Hresult::from_io_error(&std::io::Error::from_raw_os_error(n)))
                    .unwrap_or(Hresult::E_FAIL),
                subject,
                format!("cannot read it: {cause}"),
            ),
            FileProblem::Missing => CliError::with_cause(
                Hresult::from_win32(vds_model::Win32Error::FILE_NOT_FOUND.0),
                subject,
                "cannot read it: no such file",
            ),
            problem => usage(subject, problem.to_string()),
        }
    })
}

fn credentials(c: CredentialArgs, warnings: &mut Vec<String>) -> CliResult<Credentials> {
    if let Some(iqn) = &c.initiator_name {
        limits::check_iscsi_name(iqn)
            .map_err(|e| usage(format!("initiator name {iqn:?}"), e.to_string()))?;
    }
    if c.mutual_user.is_some() && c.chap_user.is_none() {
        return Err(usage(
            "--mutual-user",
            "mutual CHAP needs one-way CHAP as well (--chap-user and --chap-secret-file)",
        ));
    }
    let pair = |user: Option<String>, file: Option<PathBuf>, what: &str| match (user, file) {
        (Some(user), Some(file)) => {
            limits::check_chap_user(&user)
                .map_err(|e| usage(format!("{what} user"), e.to_string()))?;
            Ok(Some(ChapCredential {
                user,
                secret: secret_file(&file, what)?,
            }))
        }
        (None, None) => Ok(None),
        _ => Err(usage(what, "give both the user and the secret file")),
    };
    let chap = pair(c.chap_user, c.chap_secret_file, "CHAP secret")?;
    let mutual = pair(c.mutual_user, c.mutual_secret_file, "mutual CHAP secret")?;
    for (what, cred) in [("CHAP secret", &chap), ("mutual CHAP secret", &mutual)] {
        if let Some(cred) = cred {
            short_secret_warning(what, &cred.secret, warnings);
        }
    }
    if let (Some(a), Some(b)) = (&chap, &mutual) {
        if iscsi_proto::chap::constant_time_eq(a.secret.expose(), b.secret.expose()) {
            warnings.push(
                "warning: the same secret is used in both directions, which RFC 7143 forbids: \
                 whoever answers as the target can replay the initiator's own response"
                    .into(),
            );
        }
    }
    Ok(Credentials {
        initiator_name: c.initiator_name,
        chap,
        mutual,
    })
}

fn iqn(target: String) -> CliResult<String> {
    iqn_of("target", target)
}

/// An iSCSI name typed for `what`, checked against RFC 7143's limits.
fn iqn_of(what: &str, name: String) -> CliResult<String> {
    limits::check_iscsi_name(&name)
        .map_err(|e| usage(format!("{what} {name:?}"), e.to_string()))?;
    Ok(name)
}

/// A target CHAP secret from `file` (the rules of `--chap-secret-file`; a short secret is
/// accepted with a warning), or `None` (`--clear`).
fn target_secret(
    file: Option<&Path>,
    what: &str,
    warnings: &mut Vec<String>,
) -> CliResult<Option<Secret>> {
    let Some(file) = file else {
        return Ok(None);
    };
    let secret = secret_file(file, what)?;
    short_secret_warning(what, &secret, warnings);
    Ok(Some(secret))
}

/// The warning for a secret shorter than RFC 7143 recommends.
fn short_secret_warning(what: &str, secret: &Secret, warnings: &mut Vec<String>) {
    let n = secret.len();
    if n < limits::MIN_RECOMMENDED_CHAP_SECRET_LEN {
        warnings.push(format!(
            "warning: the {what} has {n} bytes; RFC 7143 asks for at least {} (96 bits), and a \
             short secret can be guessed from one captured login",
            limits::MIN_RECOMMENDED_CHAP_SECRET_LEN
        ));
    }
}

/// Validates `cli`. Usage-class errors (bad portal, bad name, a value over a protocol limit) carry
/// `E_INVALIDARG`; `main` gives them exit status 2. An unreadable secret file carries its I/O code.
pub fn validate(cli: Cli) -> CliResult<Invocation> {
    let mut warnings = Vec::new();
    let w = &mut warnings;
    let provider = match cli.common.provider {
        Some(p) => Some(name("provider", p)?),
        None => None,
    };
    let p = &provider;
    let command = match cli.command {
        CommandArgs::Subsystem(Lazy(SubsystemArgs::Add(AddArgs {
            name: n,
            portals,
            credentials: c,
            no_refresh,
        }))) => {
            let n = name("subsystem", n)?;
            Command::SubsystemAdd {
                name: n,
                portals: portals_once(&portals)?,
                credentials: credentials(c, w)?,
                no_refresh,
            }
        }
        CommandArgs::Subsystem(Lazy(SubsystemArgs::Set(a))) => {
            let c = credentials(a.credentials, w)?;
            let portals = if a.portals.is_empty() {
                None
            } else {
                Some(
                    portals_once(&a.portals)?
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                )
            };
            let initiator_name = match (a.default_initiator_name, c.initiator_name) {
                (true, _) => Some(None),
                (false, Some(n)) => Some(Some(n)),
                (false, None) => None,
            };
            let chap = match (a.no_chap, c.chap) {
                (true, _) => Some(None),
                (false, Some(cred)) => Some(Some(cred)),
                (false, None) => None,
            };
            let mutual = match (a.no_mutual, c.mutual) {
                (true, _) => Some(None),
                (false, Some(cred)) => Some(Some(cred)),
                (false, None) => None,
            };
            Command::SubsystemSet {
                sel: sel(p, a.name)?,
                change: vds_service::SubsystemChange {
                    portals,
                    initiator_name,
                    chap,
                    mutual,
                },
                no_refresh: a.no_refresh,
            }
        }
        CommandArgs::Subsystem(Lazy(SubsystemArgs::Remove { name: n })) => {
            Command::SubsystemRemove(sel(p, n)?)
        }
        CommandArgs::Provider(Lazy(ProviderArgs::Add(a))) => {
            let mut settings = toml::Table::new();
            let mut set = |key: &str, v: Option<u32>| {
                if let Some(v) = v {
                    settings.insert(key.into(), toml::Value::Integer(i64::from(v)));
                }
            };
            set("concurrency", a.concurrency);
            set("subsystems", a.subsystems);
            set("portals", a.portals);
            if let Some(path) = a.socket {
                let text = path.to_str().ok_or_else(|| {
                    usage("--socket", format!("{:?} is not UTF-8", path.display()))
                })?;
                settings.insert("socket".into(), toml::Value::String(text.to_string()));
            }
            for (key, v) in [
                ("server", a.server),
                ("source_name", a.source_name),
                ("scn_listen", a.scn_listen),
            ] {
                if let Some(v) = v {
                    settings.insert(key.into(), toml::Value::String(v));
                }
            }
            if a.control_node {
                settings.insert("control_node".into(), toml::Value::Boolean(true));
            }
            Command::ProviderAdd {
                name: name("provider", a.name)?,
                kind: a.kind,
                settings,
                no_refresh: a.no_refresh,
            }
        }
        CommandArgs::Provider(Lazy(ProviderArgs::Remove { name: n })) => {
            Command::ProviderRemove(name("provider", n)?)
        }
        CommandArgs::List(Lazy(ListArgs::Providers)) => Command::ListProviders,
        CommandArgs::List(Lazy(ListArgs::Subsystems)) => Command::ListSubsystems,
        CommandArgs::List(Lazy(ListArgs::Tportals { subsystem })) => {
            Command::ListTportals(sel(p, subsystem)?)
        }
        CommandArgs::List(Lazy(ListArgs::Targets { subsystem })) => {
            Command::ListTargets(sel(p, subsystem)?)
        }
        CommandArgs::List(Lazy(ListArgs::Tpgroups { subsystem, target })) => {
            Command::ListTpgroups(sel(p, subsystem)?, target)
        }
        CommandArgs::Detail(Lazy(DetailArgs::Subsystem { name: n })) => {
            Command::DetailSubsystem(sel(p, n)?)
        }
        CommandArgs::Detail(Lazy(DetailArgs::Tportal {
            subsystem,
            portal: pa,
        })) => Command::DetailTportal(sel(p, subsystem)?, portal(&pa, true)?),
        CommandArgs::Detail(Lazy(DetailArgs::Target { subsystem, target })) => {
            Command::DetailTarget(sel(p, subsystem)?, target)
        }
        CommandArgs::Refresh(Lazy(r)) => Command::Refresh(match r.subsystem {
            Some(s) => Some(sel(p, s)?),
            None => None,
        }),
        CommandArgs::Reenumerate(_) => Command::Reenumerate,
        CommandArgs::Online(Lazy(PortalVerb::Tportal {
            subsystem,
            portal: pa,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::SetPortalStatus {
                portal: portal(&pa, true)?.to_vds_address(),
                status: IscsiPortalStatus::Online,
            },
        ),
        CommandArgs::Offline(Lazy(PortalVerb::Tportal {
            subsystem,
            portal: pa,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::SetPortalStatus {
                portal: portal(&pa, true)?.to_vds_address(),
                status: IscsiPortalStatus::Offline,
            },
        ),
        CommandArgs::Create(Lazy(CreateArgs::Target {
            subsystem,
            iscsi_name,
            alias,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::CreateTarget {
                iscsi_name: match iscsi_name {
                    Some(n) => Some(iqn(n)?),
                    None => None,
                },
                alias: friendly(alias)?,
            },
        ),
        CommandArgs::Create(Lazy(CreateArgs::Tpgroup { subsystem, target })) => Command::Change(
            sel(p, subsystem)?,
            Change::CreatePortalGroup { iscsi_name: target },
        ),
        CommandArgs::Delete(Lazy(DeleteArgs::Target { subsystem, target })) => Command::Change(
            sel(p, subsystem)?,
            Change::DeleteTarget { iscsi_name: target },
        ),
        CommandArgs::Delete(Lazy(DeleteArgs::Tpgroup {
            subsystem,
            target,
            tag,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::DeletePortalGroup {
                iscsi_name: target,
                tag,
            },
        ),
        CommandArgs::Name(Lazy(NameArgs::Target {
            subsystem,
            target,
            alias,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::SetTargetAlias {
                iscsi_name: target,
                alias: friendly(alias.unwrap_or_default())?,
            },
        ),
        CommandArgs::Add(Lazy(MemberVerb::Tportal {
            subsystem,
            target,
            tpgroup,
            portal: pa,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::AddPortal {
                iscsi_name: target,
                tag: tpgroup,
                portal: portal(&pa, true)?.to_vds_address(),
            },
        ),
        CommandArgs::Remove(Lazy(MemberVerb::Tportal {
            subsystem,
            target,
            tpgroup,
            portal: pa,
        })) => Command::Change(
            sel(p, subsystem)?,
            Change::RemovePortal {
                iscsi_name: target,
                tag: tpgroup,
                portal: portal(&pa, true)?.to_vds_address(),
            },
        ),
        CommandArgs::Chap(Lazy(ChapArgs::Target(ChapTargetArgs::Set(a)))) => Command::Change(
            sel(p, a.subsystem)?,
            Change::SetTargetSharedSecret {
                iscsi_name: a.target,
                secret: target_secret(a.secret_file.as_deref(), "target CHAP secret", w)?,
                initiator: match a.initiator {
                    Some(i) => Some(iqn_of("initiator", i)?),
                    None => None,
                },
            },
        ),
        CommandArgs::Chap(Lazy(ChapArgs::Target(ChapTargetArgs::Remember(a)))) => Command::Change(
            sel(p, a.subsystem)?,
            Change::RememberInitiatorSharedSecret {
                iscsi_name: a.target,
                initiator: iqn_of("initiator", a.initiator)?,
                secret: target_secret(a.secret_file.as_deref(), "initiator CHAP secret", w)?,
            },
        ),
        CommandArgs::Discover(Lazy(DiscoverArgs {
            portal: pa,
            credentials: c,
        })) => Command::Discover {
            portal: portal(&pa, false)?,
            credentials: credentials(c, w)?,
        },
        CommandArgs::Watch(Lazy(w)) => Command::Watch {
            refresh_every: match w.refresh_every {
                Some(t) => Some(refresh_period(&t)?),
                None => None,
            },
            count: w.count,
        },
        CommandArgs::Completions(Lazy(a)) => Command::Completions(a.shell),
        CommandArgs::Man(Lazy(a)) => Command::Man(a.out_dir),
    };
    let globals = Globals {
        store: cli.common.store,
        provider,
        json: cli.common.json,
        sim: cli.common.sim,
        verbose: cli.common.verbose,
    };
    Ok(Invocation {
        globals,
        command,
        warnings,
    })
}

/// The discovery portals given, parsed, each once: host names compare without regard to case, as
/// DNS does (`LOCALHOST` and `localhost` are one portal).
fn portals_once(texts: &[String]) -> CliResult<Vec<PortalArg>> {
    let mut parsed: Vec<PortalArg> = Vec::with_capacity(texts.len());
    for text in texts {
        let pa = portal(text, false)?;
        let key = pa.to_vds_address().canonical_key();
        if parsed
            .iter()
            .any(|p| p.to_vds_address().canonical_key() == key)
        {
            return Err(usage("portal", format!("{pa} is given twice")));
        }
        parsed.push(pa);
    }
    Ok(parsed)
}

/// `--refresh-every`: a duration as humantime writes it (`30s`, `5m`, `1h 30m`), at least a second.
fn refresh_period(text: &str) -> CliResult<std::time::Duration> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| usage("--refresh-every", format!("{text:?}: {e}")))?;
    if d < std::time::Duration::from_secs(1) {
        return Err(usage(
            "--refresh-every",
            format!("{text:?} is shorter than a second"),
        ));
    }
    Ok(d)
}

/// An alias (friendly name): at most [`vds_model::MAX_FRIENDLY_NAME_BYTES`] bytes, no control
/// character.
fn friendly(alias: String) -> CliResult<String> {
    if alias.len() > vds_model::MAX_FRIENDLY_NAME_BYTES {
        return Err(usage(
            "alias",
            format!(
                "an alias has at most {} bytes; this one has {}",
                vds_model::MAX_FRIENDLY_NAME_BYTES,
                alias.len()
            ),
        ));
    }
    if alias.chars().any(char::is_control) {
        return Err(usage("alias", "an alias cannot contain control characters"));
    }
    Ok(alias)
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
    fn secret_files_do_not_print_and_lose_one_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "hunter2hunter2\n").unwrap();
        let s = secret_file(&f, "CHAP secret").unwrap();
        assert_eq!(s.expose(), b"hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        std::fs::write(&f, "\n").unwrap();
        assert!(secret_file(&f, "CHAP secret").is_err());
    }
}
