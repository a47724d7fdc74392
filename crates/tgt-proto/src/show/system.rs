//! `--mode system --op show`.
//!
//! # Grammar
//!
//! ```text
//! System:
//!     State: ready|offline
//!     debug: on|off
//! LLDs:
//!     <driver>: <state>
//! Backing stores:
//!     <name>[ (bsoflags <flags>)]
//! Device types:
//!     <name>
//! iSNS:
//!     iSNS=On|Off
//!     iSNSServerIP=<addr or empty>
//!     iSNSServerPort=<port>
//!     iSNSAccessControl=On|Off
//! ```
//!
//! Unknown sections and keys are skipped. Errors: a line before any section header, a `debug`
//! other than `on`/`off`, an iSNS switch other than `On`/`Off`, a port that is not a 16-bit
//! number, a driver line that is not `<name>: <state>`.

use crate::error::{Grammar, ShowError, ShowProblem};
use crate::show::lld::{Lld, parse_llds};
use crate::show::targets::State;
use crate::show::{err, key_value, lines};

/// What `show` of mode system reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SystemInfo {
    /// `State:` of the daemon.
    pub state: Option<State>,
    /// `debug:`.
    pub debug: Option<bool>,
    /// The drivers and their states (no targets here).
    pub llds: Vec<Lld>,
    /// Backing store names as printed (with their `bsoflags` note).
    pub backing_stores: Vec<String>,
    /// Device type names.
    pub device_types: Vec<String>,
    /// iSNS settings.
    pub isns: IsnsSettings,
}

/// tgtd's iSNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct IsnsSettings {
    /// `iSNS=On|Off`: registration enabled.
    pub enabled: Option<bool>,
    /// `iSNSServerIP=`; `None` when empty.
    pub server_ip: Option<String>,
    /// `iSNSServerPort=`.
    pub server_port: Option<u16>,
    /// `iSNSAccessControl=On|Off`.
    pub access_control: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    System,
    BackingStores,
    DeviceTypes,
    Isns,
    Other,
}

const G: Grammar = Grammar::System;

/// Parses the reply text of `show` for the system. See the module doc for the grammar.
///
/// # Errors
/// A [`ShowError`] naming the first malformed line.
pub fn parse_system(text: &str) -> Result<SystemInfo, ShowError> {
    let mut info = SystemInfo {
        llds: parse_llds(text, G, "LLDs:")?,
        ..SystemInfo::default()
    };
    let mut section = None;
    for line in lines(text) {
        if line.level == 0 {
            section = Some(match line.text.trim_end() {
                "System:" => Section::System,
                "Backing stores:" => Section::BackingStores,
                "Device types:" => Section::DeviceTypes,
                "iSNS:" => Section::Isns,
                _ => Section::Other,
            });
            continue;
        }
        let Some(section) = section else {
            return Err(err(G, &line, ShowProblem::Orphan("section header")));
        };
        if line.level != 1 {
            continue;
        }
        match section {
            Section::System => match key_value(line.text) {
                Some(("State", v)) => info.state = Some(State::parse(v.trim())),
                Some(("debug", v)) => {
                    info.debug = Some(match v.trim() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(err(G, &line, ShowProblem::BadValue("on or off"))),
                    })
                }
                _ => {}
            },
            Section::BackingStores => info.backing_stores.push(line.text.to_owned()),
            Section::DeviceTypes => info.device_types.push(line.text.to_owned()),
            Section::Isns => {
                let Some((k, v)) = line.text.split_once('=') else {
                    continue;
                };
                let switch = |v: &str| match v.trim() {
                    "On" => Ok(true),
                    "Off" => Ok(false),
                    _ => Err(err(G, &line, ShowProblem::BadValue("On or Off"))),
                };
                match k {
                    "iSNS" => info.isns.enabled = Some(switch(v)?),
                    "iSNSServerIP" => {
                        let v = v.trim();
                        info.isns.server_ip = (!v.is_empty()).then(|| v.to_owned());
                    }
                    "iSNSServerPort" => {
                        info.isns.server_port = Some(
                            v.trim()
                                .parse()
                                .map_err(|_| err(G, &line, ShowProblem::BadNumber("iSNS port")))?,
                        )
                    }
                    "iSNSAccessControl" => info.isns.access_control = Some(switch(v)?),
                    _ => {}
                }
            }
            Section::Other => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_system_show() {
        let text = "System:\n    State: ready\n    debug: off\nLLDs:\n    iscsi: ready\n    iser: error\nBacking stores:\n    null\n    rdwr (bsoflags sync:direct)\nDevice types:\n    disk\niSNS:\n    iSNS=Off\n    iSNSServerIP=\n    iSNSServerPort=3205\n    iSNSAccessControl=Off\n";
        let s = parse_system(text).unwrap_or_default();
        assert_eq!(s.state, Some(State::Ready));
        assert_eq!(s.debug, Some(false));
        assert_eq!(s.llds.len(), 2);
        assert_eq!(
            s.backing_stores,
            vec!["null", "rdwr (bsoflags sync:direct)"]
        );
        assert_eq!(s.device_types, vec!["disk"]);
        assert_eq!(
            s.isns,
            IsnsSettings {
                enabled: Some(false),
                server_ip: None,
                server_port: Some(3205),
                access_control: Some(false)
            }
        );
        assert!(parse_system("    State: ready\n").is_err_and(|e| e.line == 1));
        assert!(parse_system("iSNS:\n    iSNSServerPort=99999\n").is_err_and(|e| e.line == 2));
        assert!(parse_system("System:\n    debug: maybe\n").is_err_and(|e| e.line == 2));
    }
}
