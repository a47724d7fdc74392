//! The output layer: the documents of `vds-api` as aligned DiskRAID-style tables and lines for
//! people (`--json` prints the documents themselves).
//!
//! This module formats only: it asks the service nothing and contacts nothing.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::terminal::escape;
pub use vds_api::{
    ChapView, DiscoveredTarget, GroupRow, MutationReport, OperationReport, PortalDetail, PortalRef,
    PortalRow, ProviderReport, ProviderRow, RefreshedSubsystem, SubsystemDetail, SubsystemRow,
    TargetDetail, TargetRow,
};

/// An aligned table in DiskRAID's style: two-space indent, a dashed underline under each header.
/// Every cell is escaped for the terminal ([`crate::terminal::escape`]) before it is measured.
pub fn table<R: AsRef<[C]>, C: AsRef<str>>(headers: &[&str], rows: &[R]) -> String {
    // Columns are as wide as their widest cell, in characters (a byte count for ASCII cells).
    // Cells are escaped to be measured, and again to be written only when one of them needed it:
    // escaping printable ASCII borrows (no copy), cheaper than keeping every escaped cell.
    let chars = |s: &str| {
        if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        }
    };
    let mut widths: Vec<usize> = headers.iter().map(|h| chars(h)).collect();
    // When no cell needs an escape (nearly always), the write pass need not look again.
    let mut all_plain = true;
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            let cell = escape(cell.as_ref());
            all_plain &= matches!(cell, Cow::Borrowed(_));
            *w = (*w).max(chars(&cell));
        }
    }
    let line_len = widths.iter().map(|w| w + 2).sum::<usize>() + 2;
    let mut out = String::with_capacity(line_len * (rows.len() + 2));
    // One line, written in place: the cells padded to their column, trailing blanks trimmed.
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let start = out.len();
        out.push(' ');
        for (cell, w) in cells.zip(&widths) {
            let cell = if all_plain {
                Cow::Borrowed(cell)
            } else {
                escape(cell)
            };
            out.push(' ');
            out.push_str(&cell);
            pad(&mut out, w - chars(&cell) + 1);
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut dashes.iter().map(String::as_str));
    for row in rows {
        line(&mut row.as_ref().iter().map(|c| c.as_ref()));
    }
    out
}

/// Appends `n` blanks.
fn pad(out: &mut String, mut n: usize) {
    const BLANKS: &str = "                                ";
    while n > 0 {
        let k = n.min(BLANKS.len());
        out.push_str(&BLANKS[..k]);
        n -= k;
    }
}

/// `Key : value` lines, aligned, for `detail` commands; title and values escaped for the terminal.
pub fn fields(title: &str, pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{}\n", escape(title));
    for (k, v) in pairs {
        out.push_str(&format!("  {k:<width$} : {}\n", escape(v)));
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
                r.provider.clone(),
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
            "Provider",
            "Status",
            "Health",
            "Portals",
            "Targets",
            "Detail",
        ],
        &cells,
    )
}

/// Human form of `list providers`.
pub fn providers_table(rows: &[ProviderRow]) -> String {
    if rows.is_empty() {
        return "There are no providers. Add one with `vdsadm provider add NAME --kind KIND`, or \
                register an array with `vdsadm subsystem add`.\n"
            .into();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("Provider {}", r.index),
                r.name.clone(),
                r.kind.clone(),
                r.subsystems.to_string(),
                r.cache_health.clone(),
                r.settings.join(", "),
            ]
        })
        .collect();
    table(
        &[
            "Provider ###",
            "Name",
            "Kind",
            "Subsystems",
            "Cache",
            "Settings",
        ],
        &cells,
    )
}

/// Human form of `provider add` / `provider remove`.
pub fn provider_report_text(r: &ProviderReport) -> String {
    let mut out = format!("Provider {:?} ({}) {}.\n", r.name, r.kind, r.action);
    out.push_str(&refreshed_table(&r.subsystems));
    out
}

/// Human form of a change verb: the VDS method, its code, the object it made, and (with `-v`) the
/// notifications it raised.
pub fn mutation_text(r: &MutationReport, verbose: bool) -> String {
    let mut out = format!(
        "{} on subsystem {:?}: {} ({})\n",
        r.operation, r.subsystem, r.name, r.hresult
    );
    if let Some(o) = &r.object {
        match o.tag {
            Some(tag) => out.push_str(&format!(
                "Portal group tag {tag} of target {:?} (id {}).\n",
                o.iscsi_name, o.id
            )),
            None => out.push_str(&format!("Target {:?} (id {}).\n", o.iscsi_name, o.id)),
        }
    }
    if verbose {
        if r.notifications.is_empty() {
            out.push_str("No notifications.\n");
        }
        for n in &r.notifications {
            out.push_str(&format!(
                "Notification {} ({}) object {} of subsystem {}\n",
                n.event_name, n.event, n.id, n.subsystem
            ));
        }
    }
    out
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
        ("Provider", r.provider.clone()),
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
        None => pairs.push(("Registration", "(none: the provider enumerates it)".into())),
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
    out.push('\n');
    if d.connected_initiators.is_empty() {
        out.push_str("No initiator is logged in.\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .connected_initiators
            .iter()
            .enumerate()
            .map(|(i, name)| vec![format!("Initiator {i}"), name.clone()])
            .collect();
        out.push_str(&table(&["Initiator ###", "Connected initiator"], &rows));
    }
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
                r.provider.clone(),
                r.status.clone(),
                r.portals.to_string(),
                r.targets.to_string(),
                r.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["Name", "Provider", "Status", "Portals", "Targets", "Detail"],
        &cells,
    )
}

/// Human form of `discover`.
pub fn discovered_text(portal: &str, targets: &[DiscoveredTarget]) -> String {
    if targets.is_empty() {
        return format!("{portal} reported no targets.\n");
    }
    // Every address and tag is written into one buffer, and the cells are slices of it: a few
    // allocations for the whole table rather than two for each row.
    let mut text = String::with_capacity(targets.len() * 28);
    let mut spans: Vec<(&str, std::ops::Range<usize>, std::ops::Range<usize>)> =
        Vec::with_capacity(targets.len());
    for t in targets {
        for (i, a) in t.addresses.iter().enumerate() {
            let start = text.len();
            if a.address.contains(':') {
                let _ = write!(text, "[{}]:{}", a.address, a.port);
            } else {
                let _ = write!(text, "{}:{}", a.address, a.port);
            }
            let addr = start..text.len();
            let tag = match a.tag {
                Some(tag) => {
                    let start = text.len();
                    let _ = write!(text, "{tag}");
                    start..text.len()
                }
                None => 0..0,
            };
            spans.push((if i == 0 { t.name.as_str() } else { "" }, addr, tag));
        }
        if t.addresses.is_empty() {
            spans.push((t.name.as_str(), 0..0, 0..0));
        }
    }
    let cells: Vec<[&str; 3]> = spans
        .into_iter()
        .map(|(name, addr, tag)| {
            let addr = if addr.is_empty() {
                "(none)"
            } else {
                &text[addr]
            };
            let tag = if tag.is_empty() { "-" } else { &text[tag] };
            [name, addr, tag]
        })
        .collect();
    table(&["Target", "Address", "Tag"], &cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovered_targets_list_every_address_once_and_escape_names() {
        let addr = |address: &str, port: u16, tag: Option<u16>| vds_api::DiscoveredAddress {
            address: address.to_string(),
            port,
            tag,
        };
        let targets = vec![
            DiscoveredTarget {
                name: "iqn.2026-12.t:a".into(),
                addresses: vec![
                    addr("10.0.0.1", 3260, Some(1)),
                    addr("fe80::1%eth0", 13260, None),
                ],
            },
            DiscoveredTarget {
                name: "iqn.2026-12.t:\u{1b}[2Jb".into(),
                addresses: vec![],
            },
        ];
        assert_eq!(
            discovered_text("p", &targets),
            "  Target                  Address               Tag\n\
             \x20 ----------------------  --------------------  ---\n\
             \x20 iqn.2026-12.t:a         10.0.0.1:3260         1\n\
             \x20                         [fe80::1%eth0]:13260  -\n\
             \x20 iqn.2026-12.t:\\x1b[2Jb  (none)                -\n"
        );
        assert_eq!(discovered_text("h:1", &[]), "h:1 reported no targets.\n");
    }

    #[test]
    fn tables_align_and_underline() {
        let t = table(
            &["TPortal ###", "Address", "Port", "Status"],
            &[
                ["TPortal 0", "127.0.0.1", "3260", "ONLINE"],
                ["TPortal 1", "::1", "13260", "OFFLINE"],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "  TPortal ###  Address    Port   Status");
        assert_eq!(lines[1], "  -----------  ---------  -----  -------");
        assert_eq!(lines[2], "  TPortal 0    127.0.0.1  3260   ONLINE");
        assert_eq!(lines[3], "  TPortal 1    ::1        13260  OFFLINE");
    }

    #[test]
    fn cells_are_measured_as_escaped() {
        let t = table(
            &["Name", "Status"],
            &[["a\u{1b}[2Jb", "ONLINE"], ["ok", "OFFLINE"]],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "  Name       Status");
        assert_eq!(lines[2], "  a\\x1b[2Jb  ONLINE");
        assert_eq!(lines[3], "  ok         OFFLINE");
    }
}
