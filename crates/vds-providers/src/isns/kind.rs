//! The `isns` provider kind: its settings, checked where they enter, and the backend and watcher
//! it builds from them.
//!
//! Settings (`[[provider]]` keys; `vdsadm provider add NAME --kind isns` flags):
//!
//! | key | flag | value |
//! |---|---|---|
//! | `server` | `--server HOST[:PORT]` | the iSNS server; port 3205 by default; IPv6 in brackets. Required. |
//! | `source_name` | `--source-name IQN` | our iSCSI name: the Source of every request (and the Control node registered, and the initiator name of portal probes). Required. |
//! | `control_node` | `--control-node` | register as a Control node (type 4), which sees every node; default false. |
//! | `scn_listen` | `--scn-listen IP:PORT` | where to listen for state change notifications (an IP address the server can reach, not a wildcard; port 0 picks one at each start); needs `control_node`. |

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use iscsi_proto::{Host, limits};
use vds_model::{Error, Hresult, ProviderBackend};

use super::{IsnsBackend, IsnsOptions, watch};
use crate::sendtargets::DiscoveryPortal;
use crate::{BuildContext, KindInfo, ProviderKind, WatchContext, WatchFuture, unknown_setting};

/// The iSNS well-known port (RFC 4171).
pub const DEFAULT_ISNS_PORT: u16 = 3205;

const KNOWN: &[&str] = &["server", "source_name", "control_node", "scn_listen"];

fn invalid(why: impl Into<String>) -> Error {
    Error::new(Hresult::E_INVALIDARG).because(why)
}

/// An iSNS server as the administrator names it: a host and a TCP port.
///
/// Parses from `HOST[:PORT]` (`192.0.2.5`, `isns.example:3205`, `[2001:db8::5]:3205`); the port
/// defaults to [`DEFAULT_ISNS_PORT`]. Displays as `HOST:PORT`, IPv6 in brackets, which is also
/// what the client connects to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IsnsServer {
    /// The host: an address or a DNS name.
    pub host: Host,
    /// The TCP port.
    pub port: u16,
}

impl fmt::Display for IsnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for IsnsServer {
    type Err = Error;

    fn from_str(s: &str) -> Result<IsnsServer, Error> {
        let t = s.trim();
        let has_port = match t.strip_prefix('[') {
            Some(rest) => rest
                .split_once(']')
                .is_some_and(|(_, after)| !after.is_empty()),
            None if t.matches(':').count() > 1 => {
                return Err(invalid(format!(
                    "iSNS server {t:?}: write an IPv6 address in brackets, as in [::1]:3205"
                )));
            }
            None => t.contains(':'),
        };
        let text = if has_port {
            t.to_owned()
        } else {
            format!("{t}:{DEFAULT_ISNS_PORT}")
        };
        // The one HOST:PORT parser (the iSCSI TargetAddress syntax), so names, brackets and
        // ports follow the same rules as portals.
        let p: DiscoveryPortal =
            text.parse()
                .map_err(|e: crate::sendtargets::DiscoveryPortalError| {
                    invalid(format!("iSNS server: {}", e.reason)).because(format!("{t:?}"))
                })?;
        Ok(IsnsServer {
            host: p.host,
            port: p.port,
        })
    }
}

/// The settings of an `isns` provider, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsnsSettings {
    /// The server.
    pub server: IsnsServer,
    /// Our iSCSI name.
    pub source_name: String,
    /// Register as a Control node.
    pub control_node: bool,
    /// Where to listen for SCNs.
    pub scn_listen: Option<SocketAddr>,
}

fn string<'a>(settings: &'a toml::Table, key: &str) -> Result<Option<&'a str>, Error> {
    match settings.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(invalid(format!("setting {key:?} is {v}; it is a string"))),
    }
}

/// Parses `IP:PORT` for the SCN listener: an address the server can connect to (not a wildcard),
/// IPv6 in brackets.
fn scn_listen(text: &str) -> Result<SocketAddr, Error> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        invalid(format!(
            "setting \"scn_listen\" is {text:?}; it is IP:PORT (an IP address, IPv6 in brackets, \
             and a port)"
        ))
    })?;
    if addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(invalid(format!(
            "setting \"scn_listen\" is {text:?}: the iSNS server connects to this address, so it \
             must be one of this host's addresses, not {}",
            addr.ip()
        )));
    }
    if let IpAddr::V6(v6) = addr.ip() {
        if v6.to_ipv4_mapped().is_some() {
            return Err(invalid(format!(
                "setting \"scn_listen\" is {text:?}: give the IPv4 address as it is"
            )));
        }
    }
    Ok(addr)
}

impl IsnsSettings {
    /// Checks `settings` (the `[[provider]]` table less `name` and `kind`): unknown keys, types,
    /// the server, the iSCSI name (RFC 7143's rules and limits, which are iSNS's too), and that
    /// an SCN listener comes with a Control node.
    pub fn from_table(settings: &toml::Table) -> Result<IsnsSettings, Error> {
        for key in settings.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(unknown_setting("isns", key, KNOWN));
            }
        }
        let server = string(settings, "server")?
            .ok_or_else(|| invalid("an isns provider needs its server (--server HOST[:PORT])"))?
            .parse()?;
        let source_name = string(settings, "source_name")?
            .ok_or_else(|| invalid("an isns provider needs its iSCSI name (--source-name IQN)"))?
            .to_owned();
        limits::check_iscsi_name(&source_name)
            .map_err(|e| invalid(format!("setting \"source_name\": {e}")))?;
        let control_node = match settings.get("control_node") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                return Err(invalid(format!(
                    "setting \"control_node\" is {v}; it is true or false"
                )));
            }
        };
        let scn_listen = string(settings, "scn_listen")?
            .map(scn_listen)
            .transpose()?;
        if scn_listen.is_some() && !control_node {
            return Err(invalid(
                "state change notifications (--scn-listen) need a Control node registration \
                 (--control-node): the server sends them to a registered node's SCN port",
            ));
        }
        Ok(IsnsSettings {
            server,
            source_name,
            control_node,
            scn_listen,
        })
    }
}

/// The `isns` kind. See the module documentation.
#[derive(Debug)]
pub struct IsnsKind;

impl ProviderKind for IsnsKind {
    fn info(&self) -> KindInfo {
        KindInfo {
            name: "isns",
            description: "every array of an iSCSI fabric, from its iSNS server (one subsystem per \
                          network entity with a target); discovery only",
            manages_arrays: false,
            takes_registrations: false,
        }
    }

    fn check_settings(&self, settings: &toml::Table) -> Result<(), Error> {
        IsnsSettings::from_table(settings).map(drop)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn ProviderBackend>, Error> {
        let settings = IsnsSettings::from_table(ctx.settings)?;
        let mut options = IsnsOptions::for_source(&settings.source_name);
        options.progress = ctx.progress.clone();
        Ok(Box::new(IsnsBackend::new(ctx.name, settings, options)))
    }

    /// With `control_node`: keeps the registration alive (within the registration period the
    /// server grants), and with `scn_listen` turns each SCN into a refresh or a reenumerate.
    fn watch(&self, ctx: WatchContext) -> Result<Option<WatchFuture>, Error> {
        let settings = IsnsSettings::from_table(&ctx.settings)?;
        if !settings.control_node {
            return Ok(None);
        }
        let options = Arc::new(IsnsOptions::for_source(&settings.source_name));
        Ok(Some(Box::pin(watch::run(settings, options, ctx))))
    }

    /// A Control node leaves the server with its provider: SCNDereg and DevDereg of our entity,
    /// within a few seconds (else it would stay registered until it expires, forever with
    /// isnsd's `RegistrationPeriod = 0`).
    fn retire(&self, settings: &toml::Table) -> Option<WatchFuture> {
        let settings = IsnsSettings::from_table(settings).ok()?;
        if !settings.control_node {
            return None;
        }
        let options = IsnsOptions::for_source(&settings.source_name);
        Some(Box::pin(watch::withdraw(settings, options)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, toml::Value)]) -> toml::Table {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn s(v: &str) -> toml::Value {
        toml::Value::String(v.into())
    }

    const IQN: &str = "iqn.2026-12.test.vds:isns";

    #[test]
    fn servers_parse_with_the_default_port() {
        let p = |t: &str| t.parse::<IsnsServer>().map(|s| s.to_string());
        assert_eq!(p("127.0.0.1").ok().as_deref(), Some("127.0.0.1:3205"));
        assert_eq!(
            p("127.0.0.1:13205").ok().as_deref(),
            Some("127.0.0.1:13205")
        );
        assert_eq!(p("[::1]").ok().as_deref(), Some("[::1]:3205"));
        assert_eq!(p("[::1]:9").ok().as_deref(), Some("[::1]:9"));
        assert_eq!(p("isns.example").ok().as_deref(), Some("isns.example:3205"));
        for bad in ["", "::1", "::1:3205", "[::1", "h:0", "h:99999", "bad host"] {
            let e = p(bad).expect_err(bad);
            assert_eq!(e.code(), Hresult::E_INVALIDARG, "{bad}");
            assert!(e.to_string().contains("iSNS server"), "{e}");
        }
    }

    #[test]
    fn settings_are_checked_by_name() {
        let ok = table(&[("server", s("127.0.0.1")), ("source_name", s(IQN))]);
        let got = IsnsSettings::from_table(&ok).unwrap();
        assert!(!got.control_node);
        assert_eq!(got.scn_listen, None);
        for (pairs, needle) in [
            (vec![("source_name", s(IQN))], "--server"),
            (vec![("server", s("127.0.0.1"))], "--source-name"),
            (
                vec![("server", s("127.0.0.1")), ("source_name", s("not an iqn"))],
                "source_name",
            ),
            (
                vec![
                    ("server", s("127.0.0.1")),
                    ("source_name", s(IQN)),
                    ("scn_listen", s("127.0.0.1:3206")),
                ],
                "--control-node",
            ),
            (
                vec![
                    ("server", s("127.0.0.1")),
                    ("source_name", s(IQN)),
                    ("control_node", toml::Value::Boolean(true)),
                    ("scn_listen", s("0.0.0.0:3206")),
                ],
                "not 0.0.0.0",
            ),
            (
                vec![
                    ("server", s("127.0.0.1")),
                    ("source_name", s(IQN)),
                    ("control_node", s("yes")),
                ],
                "true or false",
            ),
            (
                vec![
                    ("server", s("127.0.0.1")),
                    ("source_name", s(IQN)),
                    ("portal", s("x")),
                ],
                "\"portal\"",
            ),
        ] {
            let e = IsnsSettings::from_table(&table(&pairs)).expect_err(needle);
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
        let full = table(&[
            ("server", s("[::1]:13205")),
            ("source_name", s(IQN)),
            ("control_node", toml::Value::Boolean(true)),
            ("scn_listen", s("[::1]:0")),
        ]);
        let got = IsnsSettings::from_table(&full).unwrap();
        assert_eq!(got.scn_listen, "[::1]:0".parse().ok());
        assert_eq!(got.server.to_string(), "[::1]:13205");
    }
}
