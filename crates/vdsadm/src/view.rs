//! Queries: walks the VDS object model of a loaded provider (`QuerySubSystems`, `QueryPortals`,
//! `GetProperties`, …) and turns what it answers into the rows of [`crate::output`].
//!
//! Every VDS rule (a corrupt cache, a failed subsystem, an empty enumeration that is a success)
//! comes from the model's answers; this module only names the object in the error and adds the
//! cause it knows (the subsystem's last discovery error, why the cache is corrupt).

use std::collections::HashMap;

use vds_model::{
    Hresult, HwProvider, IscsiPortalProp, Portal, PortalGroup, SubSystem, SubSystemSnapshot,
    Target, VdsIpAddress,
};

use crate::args::PortalArg;
use crate::error::{CliError, CliResult};
use crate::output::{
    AssociatedGroup, CacheView, ConfigView, GroupRow, PortalDetail, PortalRef, PortalRow,
    RefreshedSubsystem, SubsystemDetail, SubsystemRow, TargetDetail, TargetRow,
};

/// A provider with its cache loaded, and what the loader knows beyond the VDS properties.
pub struct Loaded {
    /// The provider.
    pub provider: HwProvider,
    /// Each subsystem's status detail (the last discovery error), by key.
    pub details: HashMap<String, String>,
    /// Why the cache is corrupt, when the loader found it so.
    pub corrupt: Option<String>,
}

impl Loaded {
    /// A loaded provider over `snapshots` (their details are taken from them).
    pub fn new(
        provider: HwProvider,
        snapshots: &[SubSystemSnapshot],
        corrupt: Option<String>,
    ) -> Loaded {
        Loaded {
            provider,
            details: details_of(snapshots),
            corrupt,
        }
    }

    /// The error for `hr` about subsystem `name`, with the cause this loader knows.
    pub fn error(&self, hr: Hresult, name: &str) -> CliError {
        match hr {
            Hresult::VDS_E_PROVIDER_CACHE_CORRUPT => {
                CliError::new(hr, "provider cache", self.corrupt.as_deref())
            }
            Hresult::VDS_E_OBJECT_STATUS_FAILED => CliError::new(
                hr,
                subject(name),
                self.details.get(name).map(String::as_str),
            ),
            _ => CliError::new(hr, subject(name), None),
        }
    }

    /// The subsystem named `name`.
    pub fn subsystem(&self, name: &str) -> CliResult<SubSystem> {
        self.provider
            .sub_system_by_key(name)
            .map_err(|hr| self.error(hr, name))
    }
}

/// The status details of `snapshots`, by key.
pub fn details_of(snapshots: &[SubSystemSnapshot]) -> HashMap<String, String> {
    snapshots
        .iter()
        .filter_map(|s| s.detail.clone().map(|d| (s.key.clone(), d)))
        .collect()
}

/// `subsystem "lab"`.
pub fn subject(name: &str) -> String {
    format!("subsystem {name:?}")
}

fn address_parts(a: &VdsIpAddress) -> (String, u32, String) {
    (a.host(), a.port(), a.address_type().name())
}

fn portal_row(index: usize, p: &IscsiPortalProp) -> PortalRow {
    let (address, port, address_type) = address_parts(&p.address);
    PortalRow {
        index,
        id: p.id.to_string(),
        address,
        port,
        address_type,
        status: p.status.label().into_owned(),
    }
}

fn portal_ref(p: &IscsiPortalProp) -> PortalRef {
    let (address, port, address_type) = address_parts(&p.address);
    PortalRef {
        id: p.id.to_string(),
        address,
        port,
        address_type,
    }
}

/// One subsystem's row (counts are 0 when the model refuses to enumerate a failed subsystem).
pub fn subsystem_row(loaded: &Loaded, index: usize, sub: &SubSystem) -> CliResult<SubsystemRow> {
    let name = sub.key().map_err(|hr| loaded.error(hr, "?"))?;
    let props = sub.get_properties().map_err(|hr| loaded.error(hr, &name))?;
    let portals = sub.query_portals().map(|e| e.len()).unwrap_or(0);
    let targets = sub.query_targets().map(|e| e.len()).unwrap_or(0);
    Ok(SubsystemRow {
        index,
        id: Some(props.id.to_string()),
        friendly_name: props.friendly_name,
        identification: props.identification,
        status: props.status.label().into_owned(),
        health: props.health.label().into_owned(),
        portals,
        targets,
        detail: loaded.details.get(&name).cloned(),
        name,
    })
}

/// `list subsystems`: QuerySubSystems, then the configured subsystems the cache does not hold yet.
pub fn list_subsystems(loaded: &Loaded, configured: &[String]) -> CliResult<Vec<SubsystemRow>> {
    let subs = loaded
        .provider
        .query_sub_systems()
        .map_err(|hr| loaded.error(hr, "*"))?;
    let mut rows = Vec::new();
    for (index, sub) in subs.into_iter().enumerate() {
        rows.push(subsystem_row(loaded, index, &sub)?);
    }
    for name in configured {
        if rows.iter().any(|r| &r.name == name) {
            continue;
        }
        rows.push(SubsystemRow {
            index: rows.len(),
            name: name.clone(),
            id: None,
            friendly_name: name.clone(),
            identification: String::new(),
            status: "NOT_ENUMERATED".into(),
            health: "UNKNOWN".into(),
            portals: 0,
            targets: 0,
            detail: Some("registered; run `vdsadm reenumerate`".into()),
        });
    }
    Ok(rows)
}

fn portals_of(loaded: &Loaded, name: &str, sub: &SubSystem) -> CliResult<Vec<(Portal, PortalRow)>> {
    let portals = sub.query_portals().map_err(|hr| loaded.error(hr, name))?;
    let mut out = Vec::new();
    for (index, portal) in portals.into_iter().enumerate() {
        let props = portal
            .get_properties()
            .map_err(|hr| loaded.error(hr, name))?;
        out.push((portal, portal_row(index, &props)));
    }
    Ok(out)
}

/// `list tportals`: QueryPortals, then GetProperties of each, numbered in QueryPortals order.
pub fn list_portals(loaded: &Loaded, name: &str) -> CliResult<Vec<PortalRow>> {
    let sub = loaded.subsystem(name)?;
    Ok(portals_of(loaded, name, &sub)?
        .into_iter()
        .map(|(_, row)| row)
        .collect())
}

fn target_row(loaded: &Loaded, name: &str, index: usize, t: &Target) -> CliResult<TargetRow> {
    let props = t.get_properties().map_err(|hr| loaded.error(hr, name))?;
    let groups = t.query_portal_groups().map(|e| e.len()).unwrap_or(0);
    Ok(TargetRow {
        index,
        id: props.id.to_string(),
        iscsi_name: props.iscsi_name,
        friendly_name: props.friendly_name,
        chap_enabled: props.chap_enabled,
        portal_groups: groups,
    })
}

/// `list targets`: QueryTargets, then GetProperties of each.
pub fn list_targets(loaded: &Loaded, name: &str) -> CliResult<Vec<TargetRow>> {
    let sub = loaded.subsystem(name)?;
    let targets = sub.query_targets().map_err(|hr| loaded.error(hr, name))?;
    let mut rows = Vec::new();
    for (index, t) in targets.into_iter().enumerate() {
        rows.push(target_row(loaded, name, index, &t)?);
    }
    Ok(rows)
}

/// The target `iqn` of subsystem `name`, with its index in QueryTargets order.
fn find_target(loaded: &Loaded, name: &str, iqn: &str) -> CliResult<(usize, Target)> {
    let sub = loaded.subsystem(name)?;
    let targets = sub.query_targets().map_err(|hr| loaded.error(hr, name))?;
    let wanted = sub.target_by_name(iqn).map_err(|hr| match hr {
        Hresult::VDS_E_OBJECT_NOT_FOUND => {
            CliError::new(hr, format!("target {iqn:?} of subsystem {name:?}"), None)
        }
        _ => loaded.error(hr, name),
    })?;
    let index = targets
        .into_iter()
        .position(|t| t == wanted)
        .unwrap_or_default();
    Ok((index, wanted))
}

fn group_row(loaded: &Loaded, name: &str, index: usize, g: &PortalGroup) -> CliResult<GroupRow> {
    let props = g.get_properties().map_err(|hr| loaded.error(hr, name))?;
    let members = g
        .query_associated_portals()
        .map_err(|hr| loaded.error(hr, name))?;
    let mut portals = Vec::new();
    for p in members {
        let pp = p.get_properties().map_err(|hr| loaded.error(hr, name))?;
        portals.push(portal_ref(&pp));
    }
    Ok(GroupRow {
        index,
        id: props.id.to_string(),
        tag: props.tag,
        portals,
    })
}

fn groups_of(loaded: &Loaded, name: &str, t: &Target) -> CliResult<Vec<GroupRow>> {
    let groups = t
        .query_portal_groups()
        .map_err(|hr| loaded.error(hr, name))?;
    let mut rows = Vec::new();
    for (index, g) in groups.into_iter().enumerate() {
        rows.push(group_row(loaded, name, index, &g)?);
    }
    Ok(rows)
}

/// `list tpgroups`: QueryPortalGroups of the target, then each group's properties and portals.
pub fn list_groups(loaded: &Loaded, name: &str, iqn: &str) -> CliResult<Vec<GroupRow>> {
    let (_, t) = find_target(loaded, name, iqn)?;
    groups_of(loaded, name, &t)
}

/// `detail target`.
pub fn target_detail(loaded: &Loaded, name: &str, iqn: &str) -> CliResult<TargetDetail> {
    let (index, t) = find_target(loaded, name, iqn)?;
    Ok(TargetDetail {
        subsystem: name.to_string(),
        target: target_row(loaded, name, index, &t)?,
        groups: groups_of(loaded, name, &t)?,
    })
}

/// `detail tportal`: the portal whose address is `portal`, with the groups that hold it.
pub fn portal_detail(loaded: &Loaded, name: &str, portal: &PortalArg) -> CliResult<PortalDetail> {
    let sub = loaded.subsystem(name)?;
    let address = portal.to_vds_address();
    let all = portals_of(loaded, name, &sub)?;
    let wanted = sub.portal_by_address(&address).map_err(|hr| match hr {
        Hresult::VDS_E_OBJECT_NOT_FOUND => {
            CliError::new(hr, format!("portal {portal} of subsystem {name:?}"), None)
        }
        _ => loaded.error(hr, name),
    })?;
    let Some((p, row)) = all.into_iter().find(|(p, _)| *p == wanted) else {
        return Err(CliError::new(
            Hresult::VDS_E_OBJECT_NOT_FOUND,
            format!("portal {portal} of subsystem {name:?}"),
            None,
        ));
    };
    let mut groups = Vec::new();
    let assoc = p
        .query_associated_portal_groups()
        .map_err(|hr| loaded.error(hr, name))?;
    for g in assoc {
        let gp = g.get_properties().map_err(|hr| loaded.error(hr, name))?;
        let t = g
            .get_target()
            .and_then(|t| t.get_properties())
            .map_err(|hr| loaded.error(hr, name))?;
        groups.push(AssociatedGroup {
            id: gp.id.to_string(),
            tag: gp.tag,
            target: t.iscsi_name,
        });
    }
    Ok(PortalDetail {
        subsystem: name.to_string(),
        portal: row,
        portal_groups: groups,
    })
}

/// `detail subsystem`.
pub fn subsystem_detail(
    loaded: &Loaded,
    name: &str,
    config: Option<ConfigView>,
    cache: CacheView,
) -> CliResult<SubsystemDetail> {
    let sub = loaded.subsystem(name)?;
    let props = sub.get_properties().map_err(|hr| loaded.error(hr, name))?;
    let row = subsystem_row(loaded, 0, &sub)?;
    Ok(SubsystemDetail {
        row,
        flags: props.flags.names(),
        stripe_size_flags: props.stripe_size_flags,
        config,
        cache,
    })
}

/// The summary of every subsystem in a provider's export, for operation reports.
pub fn refreshed(snapshots: &[SubSystemSnapshot]) -> Vec<RefreshedSubsystem> {
    snapshots
        .iter()
        .map(|s| RefreshedSubsystem {
            name: s.key.clone(),
            status: s.status.label().into_owned(),
            portals: s.portals.len(),
            targets: s.targets.len(),
            detail: s.detail.clone(),
        })
        .collect()
}

/// `GOOD`, `CORRUPT`, `REBUILT`.
pub fn health_label(h: vds_model::CacheHealth) -> String {
    match h {
        vds_model::CacheHealth::Good => "GOOD",
        vds_model::CacheHealth::Corrupt => "CORRUPT",
        vds_model::CacheHealth::Rebuilt => "REBUILT",
    }
    .to_string()
}
