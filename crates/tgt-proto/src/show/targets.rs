//! `--mode target --op show` (all targets, tid −1).
//!
//! # Grammar
//!
//! An empty list is an empty reply. Otherwise, per target (indent steps of 4 spaces):
//!
//! ```text
//! Target <tid>: <name>
//!     System information:
//!         Driver: <lld>
//!         State: ready|offline
//!     I_T nexus information:
//!         I_T nexus: <id>
//!             Initiator: <iqn> alias: <alias|none>
//!             Connection: <cid>
//!                 IP Address: <addr>
//!     LUN information:
//!         LUN: <n>
//!             Type: controller|disk|…
//!             SCSI ID: <text>
//!             SCSI SN: <text>
//!             Size: <N> MB, Block size: <n>
//!             Online: Yes|No
//!             Removable media: Yes|No
//!             Prevent removal: Yes|No
//!             Readonly: Yes|No
//!             SWP: Yes|No
//!             Thin-provisioning: Yes|No
//!             Backing store type: <name>
//!             Backing store path: <path>|None
//!             Backing store flags: <flags, may be empty>
//!     Account information:
//!         <user>
//!         <user> (outgoing)
//!     ACL information:
//!         <ALL, an address, a CIDR block or an initiator name>
//! ```
//!
//! Unknown sections and keys are skipped; so are the children of an unknown unindented line.
//! Errors: a tid, nexus id, connection id, LUN number or size that is not a number; an indented
//! line before any `Target` line; a nexus or LUN property before its `I_T nexus:`/`LUN:` line; an
//! `IP Address` before any `Connection`; a `Yes|No` key with another value; a `Size` line of
//! another form.
//!
//! The literal `none` alias reads as no alias, and the literal `None` backing store path as no
//! path: tgtd prints those words for absent values. ACL entries are kept as tgtd prints them:
//! it lists address entries before name entries, and nothing in the text tells them apart.

use core::fmt::Write as _;

use crate::error::{Grammar, ShowError, ShowProblem};
use crate::request::AccountDirection;
use crate::show::{Line, err, key_value, lines, yes_no};

/// A target's or the daemon's state. Open: an unknown word is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum State {
    /// `ready`.
    Ready,
    /// `offline`.
    Offline,
    /// Any other word.
    Other(String),
}

impl State {
    pub(crate) fn parse(s: &str) -> State {
        match s {
            "ready" => State::Ready,
            "offline" => State::Offline,
            other => State::Other(other.to_owned()),
        }
    }

    /// The word tgtd prints.
    pub fn as_str(&self) -> &str {
        match self {
            State::Ready => "ready",
            State::Offline => "offline",
            State::Other(s) => s,
        }
    }
}

/// One target of the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Target {
    /// Target id.
    pub tid: u32,
    /// iSCSI name.
    pub name: String,
    /// `Driver:` (always `iscsi` here).
    pub driver: Option<String>,
    /// `State:`.
    pub state: Option<State>,
    /// Logged-in initiators (I_T nexuses), in tgtd's order.
    pub nexuses: Vec<Nexus>,
    /// Logical units; every target has LUN 0, the controller.
    pub luns: Vec<Lun>,
    /// Bound accounts, incoming first, then the outgoing one.
    pub accounts: Vec<TargetAccount>,
    /// ACL entries as printed.
    pub acls: Vec<String>,
}

/// One I_T nexus (an initiator's session).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Nexus {
    /// `I_T nexus:` id.
    pub id: u64,
    /// The initiator's iSCSI name.
    pub initiator: Option<String>,
    /// Its alias; `None` when tgtd prints `none`.
    pub alias: Option<String>,
    /// Its connections.
    pub connections: Vec<Connection>,
}

/// One connection of a nexus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Connection {
    /// `Connection:` id.
    pub cid: u32,
    /// `IP Address:` of the initiator, as printed.
    pub ip_address: Option<String>,
}

/// One logical unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Lun {
    /// `LUN:` number.
    pub number: u64,
    /// `Type:` (`controller`, `disk`, …).
    pub lun_type: Option<String>,
    /// `SCSI ID:`.
    pub scsi_id: Option<String>,
    /// `SCSI SN:`.
    pub scsi_sn: Option<String>,
    /// `Size:` in MB (10^6 bytes, rounded), as tgtd prints it.
    pub size_mb: Option<u64>,
    /// `Block size:` in bytes.
    pub block_size: Option<u32>,
    /// `Online:`.
    pub online: Option<bool>,
    /// `Removable media:`.
    pub removable_media: Option<bool>,
    /// `Prevent removal:`.
    pub prevent_removal: Option<bool>,
    /// `Readonly:`.
    pub readonly: Option<bool>,
    /// `SWP:` (software write protect).
    pub swp: Option<bool>,
    /// `Thin-provisioning:`.
    pub thin_provisioning: Option<bool>,
    /// `Backing store type:` (`null`, `rdwr`, …).
    pub backing_store_type: Option<String>,
    /// `Backing store path:`; `None` when tgtd prints `None`.
    pub backing_store_path: Option<String>,
    /// `Backing store flags:` (often empty).
    pub backing_store_flags: Option<String>,
}

/// An account bound to a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetAccount {
    /// The user name.
    pub user: String,
    /// Incoming, or outgoing (printed with ` (outgoing)`).
    pub direction: AccountDirection,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    System,
    Nexus,
    Lun,
    Account,
    Acl,
    Unknown,
}

const G: Grammar = Grammar::Targets;
const OUTGOING: &str = " (outgoing)";

/// Parses the reply text of `show` for all targets. See the module doc for the grammar.
///
/// # Errors
/// A [`ShowError`] naming the first malformed line.
pub fn parse_targets(text: &str) -> Result<Vec<Target>, ShowError> {
    let mut targets: Vec<Target> = Vec::new();
    // False after an unknown unindented line: its children are skipped.
    let mut in_target = false;
    // An indented line before any unindented one has no parent at all.
    let mut seen_top = false;
    let mut section = Section::Unknown;
    for line in lines(text) {
        if line.level == 0 {
            seen_top = true;
            in_target = false;
            if let Some(rest) = line.text.strip_prefix("Target ") {
                targets.push(parse_target_line(&line, rest)?);
                in_target = true;
                section = Section::Unknown;
            }
            continue;
        }
        let Some(target) = targets.last_mut().filter(|_| in_target) else {
            if !seen_top {
                return Err(err(G, &line, ShowProblem::Orphan("`Target <tid>: <name>`")));
            }
            continue;
        };
        match line.level {
            1 => {
                section = match line.text.trim_end() {
                    "System information:" => Section::System,
                    "I_T nexus information:" => Section::Nexus,
                    "LUN information:" => Section::Lun,
                    "Account information:" => Section::Account,
                    "ACL information:" => Section::Acl,
                    _ => Section::Unknown,
                }
            }
            2 => level2(target, section, &line)?,
            3 => level3(target, section, &line)?,
            4 => level4(target, section, &line)?,
            _ => {}
        }
    }
    Ok(targets)
}

fn parse_target_line(line: &Line<'_>, rest: &str) -> Result<Target, ShowError> {
    let (tid, name) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))
        .ok_or_else(|| err(G, line, ShowProblem::BadValue("`Target <tid>: <name>`")))?;
    let tid = tid
        .parse::<u32>()
        .map_err(|_| err(G, line, ShowProblem::BadNumber("target id")))?;
    Ok(Target {
        tid,
        name: name.to_owned(),
        ..Target::default()
    })
}

fn level2(target: &mut Target, section: Section, line: &Line<'_>) -> Result<(), ShowError> {
    match section {
        Section::System => match key_value(line.text) {
            Some(("Driver", v)) => target.driver = Some(v.to_owned()),
            Some(("State", v)) => target.state = Some(State::parse(v)),
            _ => {}
        },
        Section::Nexus => {
            if let Some(("I_T nexus", v)) = key_value(line.text) {
                let id = v
                    .trim()
                    .parse()
                    .map_err(|_| err(G, line, ShowProblem::BadNumber("I_T nexus id")))?;
                target.nexuses.push(Nexus {
                    id,
                    ..Nexus::default()
                });
            }
        }
        Section::Lun => {
            if let Some(("LUN", v)) = key_value(line.text) {
                let number = v
                    .trim()
                    .parse()
                    .map_err(|_| err(G, line, ShowProblem::BadNumber("LUN")))?;
                target.luns.push(Lun {
                    number,
                    ..Lun::default()
                });
            }
        }
        Section::Account => {
            let (user, direction) = match line.text.strip_suffix(OUTGOING) {
                Some(u) => (u, AccountDirection::Outgoing),
                None => (line.text, AccountDirection::Incoming),
            };
            target.accounts.push(TargetAccount {
                user: user.to_owned(),
                direction,
            });
        }
        Section::Acl => target.acls.push(line.text.to_owned()),
        Section::Unknown => {}
    }
    Ok(())
}

fn level3(target: &mut Target, section: Section, line: &Line<'_>) -> Result<(), ShowError> {
    match section {
        Section::Nexus => {
            let Some(nexus) = target.nexuses.last_mut() else {
                return Err(err(G, line, ShowProblem::Orphan("`I_T nexus: <id>`")));
            };
            if let Some(rest) = line.text.strip_prefix("Initiator: ") {
                // iSCSI names have no spaces; an alias may, so split at the first " alias: ".
                // An empty alias whose trailing space was trimmed reads as an empty alias too
                // (found by the fuzzer: otherwise the name would swallow " alias:").
                let (name, alias) = match rest.split_once(" alias: ") {
                    Some((n, a)) => (n, Some(a)),
                    None => match rest.strip_suffix(" alias:") {
                        Some(n) => (n, Some("")),
                        None => (rest, None),
                    },
                };
                nexus.initiator = Some(name.to_owned());
                nexus.alias = alias.filter(|a| *a != "none").map(str::to_owned);
            } else if let Some(("Connection", v)) = key_value(line.text) {
                let cid = v
                    .trim()
                    .parse()
                    .map_err(|_| err(G, line, ShowProblem::BadNumber("connection id")))?;
                nexus.connections.push(Connection {
                    cid,
                    ip_address: None,
                });
            }
        }
        Section::Lun => {
            let Some(lun) = target.luns.last_mut() else {
                return Err(err(G, line, ShowProblem::Orphan("`LUN: <n>`")));
            };
            lun_property(lun, line)?;
        }
        _ => {}
    }
    Ok(())
}

fn level4(target: &mut Target, section: Section, line: &Line<'_>) -> Result<(), ShowError> {
    if section != Section::Nexus {
        return Ok(());
    }
    if let Some(("IP Address", v)) = key_value(line.text) {
        let conn = target
            .nexuses
            .last_mut()
            .and_then(|n| n.connections.last_mut())
            .ok_or_else(|| err(G, line, ShowProblem::Orphan("`Connection: <cid>`")))?;
        conn.ip_address = Some(v.to_owned());
    }
    Ok(())
}

fn lun_property(lun: &mut Lun, line: &Line<'_>) -> Result<(), ShowError> {
    let Some((key, v)) = key_value(line.text) else {
        return Ok(());
    };
    let flag = |v: &str| yes_no(v).ok_or_else(|| err(G, line, ShowProblem::BadValue("Yes or No")));
    match key {
        "Type" => lun.lun_type = Some(v.to_owned()),
        "SCSI ID" => lun.scsi_id = Some(v.to_owned()),
        "SCSI SN" => lun.scsi_sn = Some(v.to_owned()),
        "Size" => {
            let bad = || err(G, line, ShowProblem::BadValue("`<N> MB, Block size: <n>`"));
            let (size, block) = v.split_once(", Block size: ").ok_or_else(bad)?;
            let size = size.strip_suffix(" MB").ok_or_else(bad)?;
            lun.size_mb = Some(
                size.parse()
                    .map_err(|_| err(G, line, ShowProblem::BadNumber("size")))?,
            );
            lun.block_size = Some(
                block
                    .trim()
                    .parse()
                    .map_err(|_| err(G, line, ShowProblem::BadNumber("block size")))?,
            );
        }
        "Online" => lun.online = Some(flag(v)?),
        "Removable media" => lun.removable_media = Some(flag(v)?),
        "Prevent removal" => lun.prevent_removal = Some(flag(v)?),
        "Readonly" => lun.readonly = Some(flag(v)?),
        "SWP" => lun.swp = Some(flag(v)?),
        "Thin-provisioning" => lun.thin_provisioning = Some(flag(v)?),
        "Backing store type" => lun.backing_store_type = Some(v.to_owned()),
        "Backing store path" => {
            lun.backing_store_path = (v != "None").then(|| v.to_owned());
        }
        "Backing store flags" => lun.backing_store_flags = Some(v.to_owned()),
        _ => {}
    }
    Ok(())
}

fn yn(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

/// Writes `targets` the way tgtd prints them (the inverse of [`parse_targets`] for values it
/// can print: no newline in any string, no alias `none`, no backing store path `None`).
pub fn render_targets(targets: &[Target]) -> String {
    let mut s = String::new();
    for t in targets {
        // Writing to a String cannot fail.
        let _ = writeln!(s, "Target {}: {}", t.tid, t.name);
        s.push_str("    System information:\n");
        if let Some(d) = &t.driver {
            let _ = writeln!(s, "        Driver: {d}");
        }
        if let Some(st) = &t.state {
            let _ = writeln!(s, "        State: {}", st.as_str());
        }
        s.push_str("    I_T nexus information:\n");
        for n in &t.nexuses {
            let _ = writeln!(s, "        I_T nexus: {}", n.id);
            if let Some(i) = &n.initiator {
                let alias = n.alias.as_deref().unwrap_or("none");
                let _ = writeln!(s, "            Initiator: {i} alias: {alias}");
            }
            for c in &n.connections {
                let _ = writeln!(s, "            Connection: {}", c.cid);
                if let Some(ip) = &c.ip_address {
                    let _ = writeln!(s, "                IP Address: {ip}");
                }
            }
        }
        s.push_str("    LUN information:\n");
        for l in &t.luns {
            render_lun(&mut s, l);
        }
        s.push_str("    Account information:\n");
        for a in &t.accounts {
            let suffix = match a.direction {
                AccountDirection::Incoming => "",
                AccountDirection::Outgoing => OUTGOING,
            };
            let _ = writeln!(s, "        {}{suffix}", a.user);
        }
        s.push_str("    ACL information:\n");
        for a in &t.acls {
            let _ = writeln!(s, "        {a}");
        }
    }
    s
}

fn render_lun(s: &mut String, l: &Lun) {
    const P: &str = "            ";
    let _ = writeln!(s, "        LUN: {}", l.number);
    let text = [
        ("Type", &l.lun_type),
        ("SCSI ID", &l.scsi_id),
        ("SCSI SN", &l.scsi_sn),
    ];
    for (k, v) in text {
        if let Some(v) = v {
            let _ = writeln!(s, "{P}{k}: {v}");
        }
    }
    if let (Some(size), Some(block)) = (l.size_mb, l.block_size) {
        let _ = writeln!(s, "{P}Size: {size} MB, Block size: {block}");
    }
    let flags = [
        ("Online", l.online),
        ("Removable media", l.removable_media),
        ("Prevent removal", l.prevent_removal),
        ("Readonly", l.readonly),
        ("SWP", l.swp),
        ("Thin-provisioning", l.thin_provisioning),
    ];
    for (k, v) in flags {
        if let Some(v) = v {
            let _ = writeln!(s, "{P}{k}: {}", yn(v));
        }
    }
    if let Some(t) = &l.backing_store_type {
        let _ = writeln!(s, "{P}Backing store type: {t}");
    }
    let path = l.backing_store_path.as_deref().unwrap_or("None");
    let _ = writeln!(s, "{P}Backing store path: {path}");
    if let Some(f) = &l.backing_store_flags {
        let _ = writeln!(s, "{P}Backing store flags: {f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "Target 1: iqn.2026-12.test:t1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.1996-04.org.alpinelinux:01:c1 alias: test one
            Connection: 0
                IP Address: 192.168.64.41
            Connection: 1
                IP Address: fe80::1
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: 
    Account information:
        u1
        out1 (outgoing)
    ACL information:
        ALL
        iqn.2026-12.test:init
";

    #[test]
    fn parses_every_part_of_a_target() {
        let t = parse_targets(ONE);
        assert!(t.is_ok(), "{t:?}");
        let t = t.unwrap_or_default();
        assert_eq!(t.len(), 1);
        let t = &t[0];
        assert_eq!((t.tid, t.name.as_str()), (1, "iqn.2026-12.test:t1"));
        assert_eq!(t.driver.as_deref(), Some("iscsi"));
        assert_eq!(t.state, Some(State::Ready));
        assert_eq!(t.nexuses.len(), 1);
        let n = &t.nexuses[0];
        assert_eq!(n.id, 3);
        assert_eq!(
            n.initiator.as_deref(),
            Some("iqn.1996-04.org.alpinelinux:01:c1")
        );
        assert_eq!(n.alias.as_deref(), Some("test one"));
        assert_eq!(
            n.connections,
            vec![
                Connection {
                    cid: 0,
                    ip_address: Some("192.168.64.41".into())
                },
                Connection {
                    cid: 1,
                    ip_address: Some("fe80::1".into())
                }
            ]
        );
        let l = &t.luns[0];
        assert_eq!(l.lun_type.as_deref(), Some("controller"));
        assert_eq!(l.scsi_id.as_deref(), Some("IET     00010000"));
        assert_eq!((l.size_mb, l.block_size), (Some(0), Some(1)));
        assert_eq!(l.online, Some(true));
        assert_eq!(l.readonly, Some(false));
        assert_eq!(l.backing_store_path, None);
        assert_eq!(l.backing_store_flags.as_deref(), Some(""));
        assert_eq!(
            t.accounts,
            vec![
                TargetAccount {
                    user: "u1".into(),
                    direction: AccountDirection::Incoming
                },
                TargetAccount {
                    user: "out1".into(),
                    direction: AccountDirection::Outgoing
                }
            ]
        );
        assert_eq!(t.acls, vec!["ALL", "iqn.2026-12.test:init"]);
        // And it renders back to the same text.
        assert_eq!(render_targets(std::slice::from_ref(t)), ONE);
    }

    #[test]
    fn initiator_line_with_trimmed_empty_alias() {
        // From the fuzzer: the name must not end up holding " alias:", or rendering it back adds
        // a second " alias: " that splits differently.
        let text = "Target 3: t\n    I_T nexus information:\n        I_T nexus: 1\n            Initiator: iqn.x:init-a alias:\n";
        let t = parse_targets(text).unwrap_or_default();
        let n = &t[0].nexuses[0];
        assert_eq!(n.initiator.as_deref(), Some("iqn.x:init-a"));
        assert_eq!(n.alias.as_deref(), Some(""));
        assert_eq!(parse_targets(&render_targets(&t)), Ok(t));
    }

    #[test]
    fn empty_reply_is_no_target() {
        assert_eq!(parse_targets(""), Ok(vec![]));
    }

    #[test]
    fn unknown_lines_are_skipped() {
        let text = "Banner\n    child of banner\nTarget 2: x\n    Future section:\n        Foo: bar\n    System information:\n        Colour: blue\n        State: offline\n";
        let t = parse_targets(text).unwrap_or_default();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].state, Some(State::Offline));
    }

    #[test]
    fn malformed_structure_names_the_line() {
        let cases: [(&str, usize); 7] = [
            ("Target x: y\n", 1),
            ("Target 1 y\n", 1),
            ("    System information:\n", 1),
            (
                "Target 1: y\n    LUN information:\n            Type: disk\n",
                3,
            ),
            (
                "Target 1: y\n    LUN information:\n        LUN: 1\n            Online: maybe\n",
                4,
            ),
            (
                "Target 1: y\n    LUN information:\n        LUN: 1\n            Size: big\n",
                4,
            ),
            (
                "Target 1: y\n    I_T nexus information:\n        I_T nexus: 1\n                IP Address: 1.2.3.4\n",
                4,
            ),
        ];
        for (text, line) in cases {
            match parse_targets(text) {
                Err(e) => assert_eq!(e.line, line, "{text:?}: {e}"),
                Ok(t) => panic!("{text:?} parsed as {t:?}"),
            }
        }
    }
}
