//! Queries: walks the VDS object model of a provider's picture (`QuerySubSystems`, `QueryPortals`,
//! `GetProperties`, …) and turns what it answers into the documents of `vds-api`.
//!
//! Every VDS rule (a corrupt cache, a failed subsystem, an empty enumeration that is a success)
//! comes from the model's answers, with the causes the model knows; this module resolves names,
//! orders rows and adds what the configuration says.

use std::time::SystemTime;

use vds_api::{
    AssociatedGroup, CacheView, ChapView, ConfigView, GroupRow, PortalDetail, PortalRef, PortalRow,
    ProviderRow, RefreshedSubsystem, SubsystemDetail, SubsystemInventory, SubsystemRow,
    TargetDetail, TargetRow,
};
use vds_model::{
    Error, Hresult, IscsiPortalProp, PictureStamp, PortalGroup, SubSystem, SubSystemSnapshot,
    SubSystemStatus, SubSystemSummary, Subject, Target, VdsIpAddress,
};
use vds_store::{Selection, StoreError};

use crate::{Service, SubsystemSel, providers::Entry};

/// How deep [`Service::inventory_with`] reads each subsystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The subsystem's row and its portals (`targets` left empty).
    Portals,
    /// Its targets too, each with its groups and connected initiators.
    Targets,
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

/// RFC 3339 UTC with seconds: `2026-11-02T10:04:05Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One subsystem's row (counts are 0 when the model refuses to enumerate a failed subsystem).
fn subsystem_row(provider: &str, index: usize, sub: &SubSystem) -> Result<SubsystemRow, Error> {
    let name = sub.key()?;
    let props = sub.get_properties()?;
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
        detail: sub.detail()?,
        name,
        provider: provider.to_string(),
    })
}

/// The summary of every subsystem of `model`, for operation reports, read one subsystem at a time.
pub(crate) fn refreshed_of(
    provider: &str,
    model: &vds_model::HwProvider,
) -> Vec<RefreshedSubsystem> {
    let mut out = Vec::new();
    model.summarize_each(|s| out.push(refreshed_row(provider, s)));
    out
}

/// The summary of every subsystem in a provider's export, for operation reports.
pub(crate) fn refreshed(
    provider: &str,
    snapshots: &[SubSystemSnapshot],
) -> Vec<RefreshedSubsystem> {
    snapshots
        .iter()
        .map(|s| refreshed_one(provider, s))
        .collect()
}

/// [`refreshed`] of one subsystem.
pub(crate) fn refreshed_one(provider: &str, s: &SubSystemSnapshot) -> RefreshedSubsystem {
    refreshed_row(provider, summary_of(s))
}

fn summary_of(s: &SubSystemSnapshot) -> SubSystemSummary<'_> {
    SubSystemSummary {
        key: &s.key,
        status: s.status,
        portals: s.portals.len(),
        targets: s.targets.len(),
        detail: s.detail.as_deref(),
    }
}

/// A row of an operation's report as a paged refresh keeps it, page after page, until the
/// report is made: the provider is the part's, the status its value, so a row of a fleet's
/// thousands takes about half the memory of a [`RefreshedSubsystem`].
pub(crate) struct Row {
    pub(crate) name: Box<str>,
    status: SubSystemStatus,
    portals: usize,
    targets: usize,
    detail: Option<Box<str>>,
}

impl Row {
    fn of(s: SubSystemSummary<'_>) -> Row {
        Row {
            name: s.key.into(),
            status: s.status,
            portals: s.portals,
            targets: s.targets,
            detail: s.detail.map(Box::from),
        }
    }

    /// The row of one subsystem's picture.
    pub(crate) fn of_snapshot(s: &SubSystemSnapshot) -> Row {
        Row::of(summary_of(s))
    }

    /// The report's row, of `provider`.
    pub(crate) fn refreshed(&self, provider: &str) -> RefreshedSubsystem {
        refreshed_row(
            provider,
            SubSystemSummary {
                key: &self.name,
                status: self.status,
                portals: self.portals,
                targets: self.targets,
                detail: self.detail.as_deref(),
            },
        )
    }
}

/// The rows of every subsystem of `model`, read one subsystem at a time.
pub(crate) fn rows_of(model: &vds_model::HwProvider) -> Vec<Row> {
    let mut out = Vec::new();
    model.summarize_each(|s| out.push(Row::of(s)));
    out
}

fn refreshed_row(provider: &str, s: SubSystemSummary<'_>) -> RefreshedSubsystem {
    RefreshedSubsystem {
        name: s.key.to_owned(),
        provider: provider.to_owned(),
        status: s.status.label().into_owned(),
        portals: s.portals,
        targets: s.targets,
        detail: s.detail.map(str::to_owned),
    }
}

fn target_row(index: usize, t: &Target) -> Result<TargetRow, Error> {
    let props = t.get_properties()?;
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

fn group_row(index: usize, g: &PortalGroup) -> Result<GroupRow, Error> {
    let props = g.get_properties()?;
    let mut portals = Vec::new();
    for p in g.query_associated_portals()? {
        portals.push(portal_ref(&p.get_properties()?));
    }
    Ok(GroupRow {
        index,
        id: props.id.to_string(),
        tag: props.tag,
        portals,
    })
}

fn groups_of(t: &Target) -> Result<Vec<GroupRow>, Error> {
    let mut rows = Vec::new();
    for (index, g) in t.query_portal_groups()?.into_iter().enumerate() {
        rows.push(group_row(index, &g)?);
    }
    Ok(rows)
}

/// The target `iqn` of `sub`, with its index in QueryTargets order.
fn find_target(sub: &SubSystem, iqn: &str) -> Result<(usize, Target), Error> {
    let targets = sub.query_targets()?;
    let wanted = sub.target_by_name(iqn)?;
    let index = targets
        .into_iter()
        .position(|t| t == wanted)
        .unwrap_or_default();
    Ok((index, wanted))
}

/// The worst of two cache healths, for a report over several providers.
pub(crate) fn worst(
    a: vds_model::CacheHealth,
    b: vds_model::CacheHealth,
) -> vds_model::CacheHealth {
    use vds_model::CacheHealth::*;
    match (a, b) {
        (Corrupt, _) | (_, Corrupt) => Corrupt,
        (Rebuilt, _) | (_, Rebuilt) => Rebuilt,
        _ => Good,
    }
}

impl Service {
    /// The provider that holds the subsystem `sel` names: the one given, or the only one whose
    /// cache (or registrations) has a subsystem of that name. Several → an error listing them.
    pub(crate) fn resolve(&self, sel: &SubsystemSel) -> Result<String, Error> {
        if let Some(p) = &sel.provider {
            return Ok(p.clone());
        }
        if let Some(p) = self.inner.resolve_held(&sel.name) {
            return Ok(p);
        }
        let store = &self.inner.store;
        let mut candidates = match store.providers_with(&sel.name) {
            Ok(c) => c,
            // The subsystem is then looked for in the configuration alone; the query that follows
            // reports the damage.
            Err(StoreError::CacheCorrupt { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if candidates.len() != 1 {
            let config = store.config()?;
            for s in config.subsystems.iter().filter(|s| s.name == sel.name) {
                if !candidates.contains(&s.provider) {
                    candidates.push(s.provider.clone());
                }
            }
            if candidates.is_empty() && config.providers.len() == 1 {
                // One provider: the question is about it (a corrupt or empty cache answers).
                candidates.push(config.providers[0].name.clone());
            }
        }
        match candidates.len() {
            1 => Ok(candidates.remove(0)),
            0 => Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                .about(Subject::Subsystem(sel.name.clone()))),
            _ => Err(Error::new(Hresult::VDS_E_NAME_NOT_UNIQUE)
                .about(Subject::Subsystem(sel.name.clone()))
                .because(format!(
                    "providers {} each have a subsystem of that name; choose one with --provider",
                    candidates
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
        }
    }

    /// The provider and the picture for a query about subsystem `sel`, and the subsystem itself.
    fn query_subsystem(
        &self,
        sel: &SubsystemSel,
    ) -> Result<(std::sync::Arc<Entry>, SubSystem), Error> {
        let provider = self.resolve(sel)?;
        let entry = self
            .inner
            .query_entry(&provider, Selection::One(&sel.name))?;
        match entry.model.sub_system_by_key(&sel.name) {
            Ok(sub) => Ok((entry, sub)),
            Err(e) if e == Hresult::VDS_E_OBJECT_NOT_FOUND => {
                // Not cached: say whether it is registered (only this error path reads the
                // configuration).
                let config = self.inner.store.config()?;
                if config.provider(&provider).is_none() {
                    return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                        .about(Subject::Provider(provider)));
                }
                if config.subsystem(&provider, &sel.name).is_some() {
                    return Err(
                        e.because("registered but not enumerated yet: run `vdsadm reenumerate`")
                    );
                }
                Err(e)
            }
            Err(e) => Err(e.about_if_unset(Subject::Subsystem(sel.name.clone()))),
        }
    }

    /// `list providers`: the configured providers, in configuration order.
    pub fn list_providers(&self) -> Result<Vec<ProviderRow>, Error> {
        let config = self.inner.store.config()?;
        let (cached, default_health) = match self.inner.store.load_everything() {
            Ok(x) => x,
            Err(StoreError::CacheCorrupt { .. }) => (Vec::new(), vds_model::CacheHealth::Corrupt),
            Err(e) => return Err(e.into()),
        };
        Ok(config
            .providers
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let mine = cached.iter().find(|(n, _)| *n == p.name).map(|(_, c)| c);
                ProviderRow {
                    index,
                    id: vds_model::ObjectId::provider(&p.name).to_string(),
                    name: p.name.clone(),
                    kind: p.kind.clone(),
                    manages_arrays: vds_providers::kind(&p.kind)
                        .is_some_and(|k| k.info().manages_arrays),
                    settings: p
                        .settings
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect(),
                    subsystems: mine.map_or(0, |c| c.subsystems.len()),
                    cache_health: mine
                        .map_or(default_health, |c| c.health)
                        .label()
                        .to_string(),
                }
            })
            .collect())
    }

    /// `list subsystems`: QuerySubSystems of each provider (or of `provider` alone), then the
    /// registered subsystems its cache does not hold yet (`NOT_ENUMERATED`).
    pub fn list_subsystems(&self, provider: Option<&str>) -> Result<Vec<SubsystemRow>, Error> {
        let config = self.inner.store.config()?;
        if let Some(p) = provider {
            if config.provider(p).is_none() {
                return Err(
                    Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::Provider(p.into()))
                );
            }
        }
        let mut rows = Vec::new();
        for p in config
            .providers
            .iter()
            .filter(|p| provider.is_none_or(|only| only == p.name))
        {
            let entry = self.inner.query_entry(&p.name, Selection::All)?;
            let first = rows.len();
            for sub in entry
                .model
                .query_sub_systems()
                .map_err(|e| e.about_if_unset(Subject::Provider(p.name.clone())))?
            {
                rows.push(subsystem_row(&p.name, rows.len(), &sub)?);
            }
            // The provider's enumerated subsystems, by name: a fleet's thousands of registrations
            // are each looked up once, not compared with every row.
            let enumerated: std::collections::HashSet<String> =
                rows[first..].iter().map(|r| r.name.clone()).collect();
            for s in config.subsystems_of(&p.name) {
                if enumerated.contains(&s.name) {
                    continue;
                }
                rows.push(SubsystemRow {
                    index: rows.len(),
                    name: s.name.clone(),
                    provider: p.name.clone(),
                    id: None,
                    friendly_name: s.name.clone(),
                    identification: String::new(),
                    status: "NOT_ENUMERATED".into(),
                    health: "UNKNOWN".into(),
                    portals: 0,
                    targets: 0,
                    detail: Some("registered; run `vdsadm reenumerate`".into()),
                });
            }
        }
        if provider.is_none() {
            for s in config.orphans() {
                let e = crate::operations::orphan_error(&s.name, &s.provider);
                rows.push(SubsystemRow {
                    index: rows.len(),
                    name: s.name.clone(),
                    provider: s.provider.clone(),
                    id: None,
                    friendly_name: s.name.clone(),
                    identification: s.portals.join(", "),
                    status: "FAILED".into(),
                    health: "UNKNOWN".into(),
                    portals: 0,
                    targets: 0,
                    detail: Some(e.message()),
                });
            }
        }
        Ok(rows)
    }

    /// Every enumerated subsystem of every provider (or of `provider`) with its portals and its
    /// targets and their groups, each provider's picture loaded once: what a whole-fleet reader
    /// (the Redfish view) needs, without one load per object. Subsystems that are registered but
    /// not enumerated have no objects yet and are left out. `VDS_E_OBJECT_NOT_FOUND` for a provider
    /// that is not configured; a corrupt cache is `VDS_E_PROVIDER_CACHE_CORRUPT`, as for any query.
    pub fn inventory(&self, provider: Option<&str>) -> Result<Vec<SubsystemInventory>, Error> {
        self.inventory_with(provider, None, Depth::Targets)
    }

    /// [`inventory`](Self::inventory) of the subsystem whose id is `only` (every subsystem when
    /// `None`; its row is still numbered among its provider's), read to `depth`: a reader that
    /// needs the subsystems and their portals alone (the health of a fleet) does not make a
    /// document for each of a fleet's hundreds of thousands of targets.
    pub fn inventory_with(
        &self,
        provider: Option<&str>,
        only: Option<&str>,
        depth: Depth,
    ) -> Result<Vec<SubsystemInventory>, Error> {
        let config = self.inner.store.config()?;
        if let Some(p) = provider.filter(|p| config.provider(p).is_none()) {
            return Err(
                Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::Provider(p.into()))
            );
        }
        let mut out = Vec::new();
        for p in config
            .providers
            .iter()
            .filter(|p| provider.is_none_or(|only| only == p.name))
        {
            let entry = self.inner.query_entry(&p.name, Selection::All)?;
            let subs = entry
                .model
                .query_sub_systems()
                .map_err(|e| e.about_if_unset(Subject::Provider(p.name.clone())))?;
            for (index, sub) in subs.into_iter().enumerate() {
                if only.is_some_and(|id| id != sub.id().to_string()) {
                    continue;
                }
                let row = subsystem_row(&p.name, index, &sub)?;
                let mut portals = Vec::new();
                let mut targets = Vec::new();
                // A failed subsystem answers VDS_E_OBJECT_STATUS_FAILED: nothing to list inside.
                if let Ok(found) = sub.query_portals() {
                    for (i, portal) in found.into_iter().enumerate() {
                        portals.push(portal_row(i, &portal.get_properties()?));
                    }
                }
                if depth == Depth::Targets {
                    if let Ok(found) = sub.query_targets() {
                        for (i, t) in found.into_iter().enumerate() {
                            targets.push(TargetDetail {
                                subsystem: row.name.clone(),
                                target: target_row(i, &t)?,
                                groups: groups_of(&t)?,
                                connected_initiators: t.get_connected_initiators()?,
                            });
                        }
                    }
                }
                out.push(SubsystemInventory {
                    row,
                    portals,
                    targets,
                });
            }
        }
        Ok(out)
    }

    /// `list tportals`: QueryPortals, then GetProperties of each, numbered in QueryPortals order.
    pub fn list_portals(&self, sel: &SubsystemSel) -> Result<Vec<PortalRow>, Error> {
        Ok(self.list_portals_stamped(sel)?.1)
    }

    /// [`list_portals`](Self::list_portals), read from one picture of the subsystem, with that
    /// picture's stamp: the rows are the same for as long as
    /// [`portals_stamp`](Self::portals_stamp) answers this stamp.
    pub fn list_portals_stamped(
        &self,
        sel: &SubsystemSel,
    ) -> Result<(PictureStamp, Vec<PortalRow>), Error> {
        let (_, sub) = self.query_subsystem(sel)?;
        let (stamp, props) = sub.portal_properties()?;
        let rows = props
            .iter()
            .enumerate()
            .map(|(index, p)| portal_row(index, p))
            .collect();
        Ok((stamp, rows))
    }

    /// The stamp of the picture [`list_portals`](Self::list_portals) would answer from now, or
    /// the error it would answer (the same one). Costs the resolution of `sel` and no more: a
    /// front end that kept an answer under this stamp may serve it again.
    pub fn portals_stamp(&self, sel: &SubsystemSel) -> Result<PictureStamp, Error> {
        let (_, sub) = self.query_subsystem(sel)?;
        sub.picture_stamp()
    }

    /// `list targets`: QueryTargets, then GetProperties of each.
    pub fn list_targets(&self, sel: &SubsystemSel) -> Result<Vec<TargetRow>, Error> {
        let (_, sub) = self.query_subsystem(sel)?;
        let mut rows = Vec::new();
        for (index, t) in sub.query_targets()?.into_iter().enumerate() {
            rows.push(target_row(index, &t)?);
        }
        Ok(rows)
    }

    /// `list tpgroups`: QueryPortalGroups of the target, then each group's properties and portals.
    pub fn list_portal_groups(
        &self,
        sel: &SubsystemSel,
        iqn: &str,
    ) -> Result<Vec<GroupRow>, Error> {
        let (_, sub) = self.query_subsystem(sel)?;
        let (_, t) = find_target(&sub, iqn)?;
        groups_of(&t)
    }

    /// `detail target`: the target, its groups and its connected initiators
    /// (`GetConnectedInitiators`).
    pub fn detail_target(&self, sel: &SubsystemSel, iqn: &str) -> Result<TargetDetail, Error> {
        let (_, sub) = self.query_subsystem(sel)?;
        let (index, t) = find_target(&sub, iqn)?;
        Ok(TargetDetail {
            subsystem: sel.name.clone(),
            target: target_row(index, &t)?,
            groups: groups_of(&t)?,
            connected_initiators: t.get_connected_initiators()?,
        })
    }

    /// `detail tportal`: the portal at `address`, with the groups that hold it.
    pub fn detail_portal(
        &self,
        sel: &SubsystemSel,
        address: &VdsIpAddress,
    ) -> Result<PortalDetail, Error> {
        let (_, sub) = self.query_subsystem(sel)?;
        let all = sub.query_portals()?;
        let wanted = sub.portal_by_address(address)?;
        let Some((index, p)) = all.into_iter().enumerate().find(|(_, p)| *p == wanted) else {
            return Err(
                Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::Portal {
                    subsystem: sel.name.clone(),
                    portal: address.to_string(),
                }),
            );
        };
        let mut groups = Vec::new();
        for g in p.query_associated_portal_groups()? {
            let gp = g.get_properties()?;
            let t = g.get_target()?.get_properties()?;
            groups.push(AssociatedGroup {
                id: gp.id.to_string(),
                tag: gp.tag,
                target: t.iscsi_name,
            });
        }
        Ok(PortalDetail {
            subsystem: sel.name.clone(),
            portal: portal_row(index, &p.get_properties()?),
            portal_groups: groups,
        })
    }

    /// `detail subsystem`: its row, flags, registration (secrets only as "set") and cache.
    pub fn detail_subsystem(&self, sel: &SubsystemSel) -> Result<SubsystemDetail, Error> {
        let provider = self.resolve(sel)?;
        let config = self.inner.store.config()?;
        let secrets = self.inner.store.secret_names()?;
        let chap = |user: &Option<String>, secret: &Option<String>| {
            user.as_ref().map(|u| ChapView {
                user: u.clone(),
                secret_set: secret.as_ref().is_some_and(|s| secrets.contains(s)),
            })
        };
        let registration = config.subsystem(&provider, &sel.name).map(|c| ConfigView {
            portals: c.portals.clone(),
            initiator_name: c.initiator_name.clone(),
            chap: chap(&c.chap_user, &c.chap_secret),
            mutual: chap(&c.mutual_user, &c.mutual_secret),
        });
        let refreshed_at = match self.inner.store.load(&provider, Selection::One(&sel.name)) {
            Ok(c) => c.subsystems.first().map(|(_, at)| rfc3339(*at)),
            Err(_) => None,
        };
        let (entry, sub) = self.query_subsystem(&SubsystemSel {
            provider: Some(provider),
            name: sel.name.clone(),
        })?;
        let props = sub.get_properties()?;
        let row = subsystem_row(entry.model.name(), 0, &sub)?;
        Ok(SubsystemDetail {
            row,
            flags: props.flags.names(),
            stripe_size_flags: props.stripe_size_flags,
            config: registration,
            cache: CacheView {
                health: entry.model.cache_health().label().to_string(),
                refreshed_at,
            },
        })
    }
}

impl Service {
    /// What a SendTargets discovery of `portal` would answer on the simulated arrays held in the
    /// cache (`vdsadm --sim discover`): the targets with a portal group that holds the portal, each
    /// with all its group addresses and tags. A portal no subsystem has answers connection refused,
    /// as a closed port would.
    pub fn simulated_discovery(
        &self,
        portal: &VdsIpAddress,
    ) -> Result<Vec<vds_api::DiscoveredTarget>, Error> {
        let (cached, _) = self.inner.store.load_everything()?;
        let wanted = portal.canonical_key();
        let sub = cached
            .iter()
            .flat_map(|(_, c)| c.subsystems.iter())
            .find(|(s, _)| {
                s.portals
                    .iter()
                    .any(|p| p.address.canonical_key() == wanted)
            });
        let Some((sub, _)) = sub else {
            return Err(Error::new(Hresult::from_win32(
                vds_model::Win32Error::WSAECONNREFUSED.0,
            ))
            .about(Subject::Other(format!("portal {portal}")))
            .because("cannot connect: connection refused (no simulated array has this portal)"));
        };
        Ok(sub
            .targets
            .iter()
            .filter(|t| {
                t.portal_groups
                    .iter()
                    .any(|g| g.portals.iter().any(|a| a.canonical_key() == wanted))
            })
            .map(|t| vds_api::DiscoveredTarget {
                name: t.iscsi_name.clone(),
                addresses: t
                    .portal_groups
                    .iter()
                    .flat_map(|g| {
                        g.portals.iter().map(|a| vds_api::DiscoveredAddress {
                            address: a.host(),
                            port: u16::try_from(a.port()).unwrap_or(0),
                            tag: Some(g.tag),
                        })
                    })
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_row_gives_back_the_row_it_was() {
        let demo = vds_model::sim::demo_array_1();
        let mut unknown = SubSystemSnapshot::new("array 2", SubSystemStatus::Other(7));
        unknown.detail = Some("127.0.0.1:3260: no answer".into());
        let failed = SubSystemSnapshot::new("array 3", SubSystemStatus::Failed);
        for s in [&demo, &unknown, &failed] {
            assert_eq!(
                Row::of_snapshot(s).refreshed("lab"),
                refreshed_one("lab", s)
            );
        }
        assert_eq!(
            Row::of_snapshot(&unknown).refreshed("lab").status,
            "UNKNOWN(7)"
        );
        // The status is kept as its value, not a copy of its label.
        assert_eq!(Row::of_snapshot(&failed).status, SubSystemStatus::Failed);
        assert!(!demo.targets.is_empty());
        let row = Row::of_snapshot(&demo).refreshed("lab");
        assert_eq!(
            (row.portals, row.targets),
            (demo.portals.len(), demo.targets.len())
        );
    }
}
