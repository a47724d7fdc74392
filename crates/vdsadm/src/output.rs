//! The output layer: the row and detail shapes every command prints, as aligned DiskRAID-style
//! tables for people and as one JSON document with `--json`.
//!
//! The shapes here are the documented contract of `docs/CLI.md`; a field is added, never renamed
//! or removed. This module formats only: it asks the model nothing and contacts nothing.

use serde::Serialize;

/// One row of `list subsystems`.
#[derive(Debug, Clone, Serialize)]
pub struct SubsystemRow {
    /// Position in QuerySubSystems order (configured-but-not-enumerated ones follow).
    pub index: usize,
    /// The subsystem's name (its key).
    pub name: String,
    /// `VDS_OBJECT_ID`; null when the subsystem is configured but not yet enumerated.
    pub id: Option<String>,
    /// `pwszFriendlyName`.
    pub friendly_name: String,
    /// `pwszIdentification`.
    pub identification: String,
    /// `VDS_SUB_SYSTEM_STATUS` label; `NOT_ENUMERATED` when not in the cache yet.
    pub status: String,
    /// `VDS_HEALTH` label.
    pub health: String,
    /// Number of portals.
    pub portals: usize,
    /// Number of targets.
    pub targets: usize,
    /// Why the status is what it is (for example the last discovery error), or null.
    pub detail: Option<String>,
}

/// One row of `list tportals`.
#[derive(Debug, Clone, Serialize)]
pub struct PortalRow {
    /// Position in QueryPortals order (DiskRAID's `TPortal ###`).
    pub index: usize,
    /// `VDS_OBJECT_ID`.
    pub id: String,
    /// The address without brackets (`127.0.0.1`, `::1`, `fe80::1%2`, `array.example`).
    pub address: String,
    /// The TCP port.
    pub port: u32,
    /// `IPV4`, `IPV6`, `TEXT`, `EMPTY` (or `UNKNOWN(n)`).
    pub address_type: String,
    /// `UNKNOWN`, `ONLINE`, `NOT_READY`, `OFFLINE`, `FAILED` (or `UNKNOWN(n)`).
    pub status: String,
}

/// A portal named inside another object (a group's members).
#[derive(Debug, Clone, Serialize)]
pub struct PortalRef {
    /// `VDS_OBJECT_ID`.
    pub id: String,
    /// Address without brackets.
    pub address: String,
    /// Port.
    pub port: u32,
    /// Address type label.
    pub address_type: String,
}

/// One row of `list targets`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    /// Position in QueryTargets order.
    pub index: usize,
    /// `VDS_OBJECT_ID`.
    pub id: String,
    /// The iSCSI name.
    pub iscsi_name: String,
    /// The alias (empty when none).
    pub friendly_name: String,
    /// True when login needs CHAP.
    pub chap_enabled: bool,
    /// Number of portal groups.
    pub portal_groups: usize,
}

/// One row of `list tpgroups` (also inside `detail target`).
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    /// Position in QueryPortalGroups order.
    pub index: usize,
    /// `VDS_OBJECT_ID`.
    pub id: String,
    /// The target portal group tag.
    pub tag: u16,
    /// Its portals, in QueryAssociatedPortals order.
    pub portals: Vec<PortalRef>,
}

/// A group that holds a portal (inside `detail tportal`).
#[derive(Debug, Clone, Serialize)]
pub struct AssociatedGroup {
    /// The group's id.
    pub id: String,
    /// Its tag.
    pub tag: u16,
    /// The iSCSI name of the group's target.
    pub target: String,
}

/// `detail tportal`.
#[derive(Debug, Clone, Serialize)]
pub struct PortalDetail {
    /// The subsystem's name.
    pub subsystem: String,
    /// The portal's properties.
    #[serde(flatten)]
    pub portal: PortalRow,
    /// QueryAssociatedPortalGroups.
    pub portal_groups: Vec<AssociatedGroup>,
}

/// `detail target`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetDetail {
    /// The subsystem's name.
    pub subsystem: String,
    /// The target's properties.
    #[serde(flatten)]
    pub target: TargetRow,
    /// QueryPortalGroups, each with its portals.
    pub groups: Vec<GroupRow>,
}

/// A CHAP user in `detail subsystem`: the secret only as "set".
#[derive(Debug, Clone, Serialize)]
pub struct ChapView {
    /// The user name.
    pub user: String,
    /// True when a secret is stored. The secret itself is never shown.
    pub secret_set: bool,
}

/// The configuration part of `detail subsystem`.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    /// The discovery portals, `HOST:PORT` (IPv6 in brackets).
    pub portals: Vec<String>,
    /// The initiator name, or null for the default.
    pub initiator_name: Option<String>,
    /// One-way CHAP, or null.
    pub chap: Option<ChapView>,
    /// Mutual CHAP, or null.
    pub mutual: Option<ChapView>,
}

/// The cache part of `detail subsystem`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheView {
    /// `GOOD`, `CORRUPT` or `REBUILT`.
    pub health: String,
    /// When the cache was last saved by a refresh or reenumerate (RFC 3339, UTC), or null.
    pub refreshed_at: Option<String>,
}

/// `detail subsystem`.
#[derive(Debug, Clone, Serialize)]
pub struct SubsystemDetail {
    /// The subsystem's row.
    #[serde(flatten)]
    pub row: SubsystemRow,
    /// `ulFlags`, by name.
    pub flags: Vec<String>,
    /// `ulStripeSizeFlags`.
    pub stripe_size_flags: u32,
    /// The registration, or null (the simulator has none).
    pub config: Option<ConfigView>,
    /// The cache.
    pub cache: CacheView,
}

/// What one subsystem looks like after `refresh`, `reenumerate` or `subsystem add`.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshedSubsystem {
    /// Name.
    pub name: String,
    /// Status label.
    pub status: String,
    /// Number of portals.
    pub portals: usize,
    /// Number of targets.
    pub targets: usize,
    /// Why the status is what it is, or null.
    pub detail: Option<String>,
}

/// `refresh` and `reenumerate`.
#[derive(Debug, Clone, Serialize)]
pub struct OperationReport {
    /// `refresh` or `reenumerate`.
    pub operation: String,
    /// The cache health afterwards: `GOOD` or `REBUILT`.
    pub cache_health: String,
    /// How many notifications (arrivals, departures, modifications) the operation raised.
    pub notifications: usize,
    /// When reenumerate rebuilt a corrupt cache: where the damaged file was kept; else null.
    pub corrupt_cache_kept_at: Option<String>,
    /// Every subsystem in the cache afterwards.
    pub subsystems: Vec<RefreshedSubsystem>,
}

/// `subsystem add`.
#[derive(Debug, Clone, Serialize)]
pub struct AddReport {
    /// Name.
    pub name: String,
    /// The discovery portals registered.
    pub portals: Vec<String>,
    /// False with `--no-refresh`.
    pub refreshed: bool,
    /// The subsystem after its reenumerate and refresh, or null with `--no-refresh`.
    pub subsystem: Option<RefreshedSubsystem>,
}

/// `subsystem remove`.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveReport {
    /// Name.
    pub name: String,
    /// Always true (a failure is an error instead).
    pub removed: bool,
}

/// One address of a discovered target.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveredAddress {
    /// Address without brackets (or a host name, as the target sent it).
    pub address: String,
    /// Port.
    pub port: u16,
    /// The target portal group tag, or null when the target sent none.
    pub tag: Option<u16>,
}

/// One target found by `discover`.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveredTarget {
    /// The iSCSI name.
    pub name: String,
    /// Its addresses in the order the target sent them.
    pub addresses: Vec<DiscoveredAddress>,
}

/// An aligned table in DiskRAID's style: two-space indent, a dashed underline under each header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
        let mut s = String::from(" ");
        for (cell, w) in cells.zip(&widths) {
            s.push(' ');
            s.push_str(&cell);
            s.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            s.push(' ');
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut headers.iter().map(|h| h.to_string()));
    line(&mut out, &mut widths.iter().map(|w| "-".repeat(*w)));
    for row in rows {
        line(&mut out, &mut row.iter().cloned());
    }
    out
}

/// `Key : value` lines, aligned, for `detail` commands.
pub fn fields(title: &str, pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{title}\n");
    for (k, v) in pairs {
        out.push_str(&format!("  {k:<width$} : {v}\n"));
    }
    out
}

/// Human form of a list of subsystems.
pub fn subsystems_table(rows: &[SubsystemRow]) -> String {
    if rows.is_empty() {
        return "There are no subsystems. Register one with `vdsadm subsystem add`.\n".into();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("Subsystem {}", r.index),
                r.name.clone(),
                r.status.clone(),
                r.health.clone(),
                r.portals.to_string(),
                r.targets.to_string(),
                r.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "Subsystem ###",
            "Name",
            "Status",
            "Health",
            "Portals",
            "Targets",
            "Detail",
        ],
        &cells,
    )
}

/// Human form of `list tportals`.
pub fn portals_table(subsystem: &str, rows: &[PortalRow]) -> String {
    if rows.is_empty() {
        return format!("There are no target portals in subsystem {subsystem:?}.\n");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("TPortal {}", r.index),
                r.address.clone(),
                r.port.to_string(),
                r.status.clone(),
            ]
        })
        .collect();
    table(&["TPortal ###", "Address", "Port", "Status"], &cells)
}

/// Human form of `list targets`.
pub fn targets_table(subsystem: &str, rows: &[TargetRow]) -> String {
    if rows.is_empty() {
        return format!("There are no targets in subsystem {subsystem:?}.\n");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("Target {}", r.index),
                r.iscsi_name.clone(),
                r.friendly_name.clone(),
                if r.chap_enabled { "Yes" } else { "No" }.into(),
                r.portal_groups.to_string(),
            ]
        })
        .collect();
    table(
        &["Target ###", "iSCSI Name", "Alias", "CHAP", "TPGroups"],
        &cells,
    )
}

fn portal_list(portals: &[PortalRef]) -> String {
    if portals.is_empty() {
        return "(none)".into();
    }
    portals
        .iter()
        .map(|p| {
            if p.address_type == "IPV6" {
                format!("[{}]:{}", p.address, p.port)
            } else {
                format!("{}:{}", p.address, p.port)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Human form of `list tpgroups`.
pub fn groups_table(target: &str, rows: &[GroupRow]) -> String {
    if rows.is_empty() {
        return format!("There are no portal groups in target {target:?}.\n");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("TPGroup {}", r.index),
                r.tag.to_string(),
                portal_list(&r.portals),
            ]
        })
        .collect();
    table(&["TPGroup ###", "Tag", "Portals"], &cells)
}

/// Human form of `detail subsystem`.
pub fn subsystem_detail_text(d: &SubsystemDetail) -> String {
    let r = &d.row;
    let none = || "(none)".to_string();
    let mut pairs = vec![
        ("Name", r.name.clone()),
        ("Id", r.id.clone().unwrap_or_else(none)),
        ("Friendly name", r.friendly_name.clone()),
        ("Identification", r.identification.clone()),
        ("Status", r.status.clone()),
        ("Health", r.health.clone()),
        ("Detail", r.detail.clone().unwrap_or_else(none)),
        ("Portals", r.portals.to_string()),
        ("Targets", r.targets.to_string()),
        (
            "Flags",
            if d.flags.is_empty() {
                none()
            } else {
                d.flags.join(", ")
            },
        ),
        ("Cache", d.cache.health.clone()),
        (
            "Refreshed at",
            d.cache.refreshed_at.clone().unwrap_or_else(none),
        ),
    ];
    let chap = |c: &Option<ChapView>| match c {
        Some(c) => format!(
            "user {:?}, secret {}",
            c.user,
            if c.secret_set { "set" } else { "NOT set" }
        ),
        None => "(none)".to_string(),
    };
    match &d.config {
        Some(c) => {
            pairs.push(("Discovery portals", c.portals.join(", ")));
            pairs.push((
                "Initiator name",
                c.initiator_name
                    .clone()
                    .unwrap_or_else(|| "(default)".into()),
            ));
            pairs.push(("CHAP", chap(&c.chap)));
            pairs.push(("Mutual CHAP", chap(&c.mutual)));
        }
        None => pairs.push(("Configuration", "(simulator: none)".into())),
    }
    fields(&format!("Subsystem {:?}", r.name), &pairs)
}

/// Human form of `detail tportal`.
pub fn portal_detail_text(d: &PortalDetail) -> String {
    let p = &d.portal;
    let groups = if d.portal_groups.is_empty() {
        "(none)".to_string()
    } else {
        d.portal_groups
            .iter()
            .map(|g| format!("{} tag {}", g.target, g.tag))
            .collect::<Vec<_>>()
            .join("; ")
    };
    fields(
        &format!("TPortal {} of subsystem {:?}", p.index, d.subsystem),
        &[
            ("Id", p.id.clone()),
            ("Address", p.address.clone()),
            ("Port", p.port.to_string()),
            ("Address type", p.address_type.clone()),
            ("Status", p.status.clone()),
            ("Portal groups", groups),
        ],
    )
}

/// Human form of `detail target`.
pub fn target_detail_text(d: &TargetDetail) -> String {
    let t = &d.target;
    let mut out = fields(
        &format!("Target {} of subsystem {:?}", t.index, d.subsystem),
        &[
            ("Id", t.id.clone()),
            ("iSCSI name", t.iscsi_name.clone()),
            ("Alias", t.friendly_name.clone()),
            ("CHAP", if t.chap_enabled { "Yes" } else { "No" }.into()),
        ],
    );
    out.push('\n');
    out.push_str(&groups_table(&t.iscsi_name, &d.groups));
    out
}

/// Human form of `refresh` / `reenumerate`.
pub fn operation_text(r: &OperationReport) -> String {
    let mut out = String::new();
    if let Some(path) = &r.corrupt_cache_kept_at {
        out.push_str(&format!(
            "The corrupt cache was rebuilt; the damaged file was kept at {path}.\n"
        ));
    }
    out.push_str(&refreshed_table(&r.subsystems));
    out.push_str(&format!(
        "{}: {} subsystem(s), {} change(s), cache {}.\n",
        r.operation,
        r.subsystems.len(),
        r.notifications,
        r.cache_health
    ));
    if r.cache_health == "REBUILT" {
        out.push_str("Run `vdsadm refresh` to finish the recovery.\n");
    }
    out
}

/// A table of subsystems as an operation left them.
pub fn refreshed_table(rows: &[RefreshedSubsystem]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.status.clone(),
                r.portals.to_string(),
                r.targets.to_string(),
                r.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["Name", "Status", "Portals", "Targets", "Detail"], &cells)
}

/// Human form of `discover`.
pub fn discovered_text(portal: &str, targets: &[DiscoveredTarget]) -> String {
    if targets.is_empty() {
        return format!("{portal} reported no targets.\n");
    }
    let mut cells = Vec::new();
    for t in targets {
        for (i, a) in t.addresses.iter().enumerate() {
            let addr = if a.address.contains(':') {
                format!("[{}]:{}", a.address, a.port)
            } else {
                format!("{}:{}", a.address, a.port)
            };
            cells.push(vec![
                if i == 0 {
                    t.name.clone()
                } else {
                    String::new()
                },
                addr,
                a.tag.map_or_else(|| "-".into(), |t| t.to_string()),
            ]);
        }
        if t.addresses.is_empty() {
            cells.push(vec![t.name.clone(), "(none)".into(), "-".into()]);
        }
    }
    table(&["Target", "Address", "Tag"], &cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_underline() {
        let t = table(
            &["TPortal ###", "Address", "Port", "Status"],
            &[
                vec![
                    "TPortal 0".into(),
                    "127.0.0.1".into(),
                    "3260".into(),
                    "ONLINE".into(),
                ],
                vec![
                    "TPortal 1".into(),
                    "::1".into(),
                    "13260".into(),
                    "OFFLINE".into(),
                ],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "  TPortal ###  Address    Port   Status");
        assert_eq!(lines[1], "  -----------  ---------  -----  -------");
        assert_eq!(lines[2], "  TPortal 0    127.0.0.1  3260   ONLINE");
        assert_eq!(lines[3], "  TPortal 1    ::1        13260  OFFLINE");
    }
}
