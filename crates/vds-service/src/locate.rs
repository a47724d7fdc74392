//! Objects by `VDS_OBJECT_ID` (`IVdsService::GetObject`), for front ends that address objects by id
//! (the daemon's API): which provider, subsystem, target, group or portal an id names, as the names
//! the other calls of the service take.
//!
//! Ids are UUID v5 of natural keys and cannot be inverted: a lookup walks the cached pictures (a
//! hash lookup per subsystem, no store read once a picture is loaded). An object that is not in any
//! picture answers `VDS_E_OBJECT_NOT_FOUND`; when some provider could not be searched (a corrupt
//! cache, a reenumerate running), its error is answered instead, since the object may be there.

use vds_model::{Error, Hresult, ObjectId, SubSystem, Subject, VdsIpAddress};
use vds_store::Selection;

use crate::{Service, SubsystemSel};

/// What an object id names, in the terms the other calls take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Located {
    /// A provider, by name.
    Provider(String),
    /// A subsystem (its provider always given).
    Subsystem(SubsystemSel),
    /// A portal of a subsystem.
    Portal(SubsystemSel, VdsIpAddress),
    /// A target of a subsystem, by iSCSI name.
    Target(SubsystemSel, String),
    /// A portal group: its target's iSCSI name and its tag.
    PortalGroup(SubsystemSel, String, u16),
}

fn not_found(what: &str, id: ObjectId) -> Error {
    Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::Other(format!("{what} {id}")))
}

impl Service {
    /// The provider whose id is `id`.
    pub fn provider_by_id(&self, id: ObjectId) -> Result<String, Error> {
        let config = self.inner.store.config()?;
        config
            .providers
            .iter()
            .find(|p| ObjectId::provider(&p.name) == id)
            .map(|p| p.name.clone())
            .ok_or_else(|| not_found("provider", id))
    }

    /// Calls `found` on each configured provider's cached subsystems until it answers `Some`.
    fn search<T>(
        &self,
        what: &str,
        id: ObjectId,
        mut found: impl FnMut(&str, &SubSystem) -> Option<T>,
    ) -> Result<T, Error> {
        let config = self.inner.store.config()?;
        let mut unsearched = None;
        for p in &config.providers {
            let entry = match self.inner.query_entry(&p.name, Selection::All) {
                Ok(e) => e,
                Err(e) => {
                    unsearched.get_or_insert(e);
                    continue;
                }
            };
            let subs = match entry.model.query_sub_systems() {
                Ok(s) => s,
                Err(e) => {
                    unsearched.get_or_insert(e.about_if_unset(Subject::Provider(p.name.clone())));
                    continue;
                }
            };
            for sub in subs {
                if let Some(t) = found(&p.name, &sub) {
                    return Ok(t);
                }
            }
        }
        Err(unsearched.unwrap_or_else(|| not_found(what, id)))
    }

    /// The subsystem whose id is `id`, with its provider.
    pub fn subsystem_by_id(&self, id: ObjectId) -> Result<SubsystemSel, Error> {
        self.search("subsystem", id, |provider, sub| {
            (sub.id() == id)
                .then(|| sub.key().ok())
                .flatten()
                .map(|name| SubsystemSel {
                    provider: Some(provider.to_string()),
                    name,
                })
        })
    }

    /// The subsystem `sel` names, as the model holds it for queries.
    fn cached_subsystem(&self, sel: &SubsystemSel) -> Result<SubSystem, Error> {
        let provider = self.resolve(sel)?;
        let entry = self
            .inner
            .query_entry(&provider, Selection::One(&sel.name))?;
        entry
            .model
            .sub_system_by_key(&sel.name)
            .map_err(|e| e.about_if_unset(Subject::Subsystem(sel.name.clone())))
    }

    /// The address of the portal `id` of subsystem `sel`.
    pub fn portal_address_by_id(
        &self,
        sel: &SubsystemSel,
        id: ObjectId,
    ) -> Result<VdsIpAddress, Error> {
        let sub = self.cached_subsystem(sel)?;
        Ok(sub.portal_by_id(id)?.get_properties()?.address)
    }

    /// The iSCSI name of the target `id` of subsystem `sel`.
    pub fn target_name_by_id(&self, sel: &SubsystemSel, id: ObjectId) -> Result<String, Error> {
        let sub = self.cached_subsystem(sel)?;
        Ok(sub.target_by_id(id)?.get_properties()?.iscsi_name)
    }

    /// The tag of the portal group `id` of target `iqn` of subsystem `sel`.
    pub fn group_tag_by_id(
        &self,
        sel: &SubsystemSel,
        iqn: &str,
        id: ObjectId,
    ) -> Result<u16, Error> {
        let sub = self.cached_subsystem(sel)?;
        let target = sub.target_by_name(iqn)?;
        let group = sub.portal_group_by_id(id)?;
        if group.get_target()? != target {
            return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                .about(Subject::Target {
                    subsystem: sel.name.clone(),
                    target: iqn.to_string(),
                })
                .because(format!("it has no portal group {id}")));
        }
        Ok(group.get_properties()?.tag)
    }

    /// `IVdsService::GetObject`: what `id` names, whatever its type.
    pub fn locate(&self, id: ObjectId) -> Result<Located, Error> {
        if let Ok(p) = self.provider_by_id(id) {
            return Ok(Located::Provider(p));
        }
        self.search("object", id, |provider, sub| {
            let sel = || {
                sub.key().ok().map(|name| SubsystemSel {
                    provider: Some(provider.to_string()),
                    name,
                })
            };
            if sub.id() == id {
                return sel().map(Located::Subsystem);
            }
            if let Ok(p) = sub.portal_by_id(id) {
                let address = p.get_properties().ok()?.address;
                return sel().map(|s| Located::Portal(s, address));
            }
            if let Ok(t) = sub.target_by_id(id) {
                let name = t.get_properties().ok()?.iscsi_name;
                return sel().map(|s| Located::Target(s, name));
            }
            if let Ok(g) = sub.portal_group_by_id(id) {
                let tag = g.get_properties().ok()?.tag;
                let name = g.get_target().ok()?.get_properties().ok()?.iscsi_name;
                return sel().map(|s| Located::PortalGroup(s, name, tag));
            }
            None
        })
    }

    /// `detail tpgroup`: the portal group `tag` of target `iqn`, with its portals
    /// (QueryAssociatedPortals).
    pub fn detail_portal_group(
        &self,
        sel: &SubsystemSel,
        iqn: &str,
        tag: u16,
    ) -> Result<vds_api::GroupRow, Error> {
        self.list_portal_groups(sel, iqn)?
            .into_iter()
            .find(|g| g.tag == tag)
            .ok_or_else(|| {
                Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND).about(Subject::PortalGroup {
                    subsystem: sel.name.clone(),
                    target: iqn.to_string(),
                    tag,
                })
            })
    }
}

/// Parses a portal's address as the API and the command line write it, `HOST:PORT` (IPv6 in
/// brackets), into the `VDS_IPADDRESS` the model keys portals by; `E_INVALIDARG` naming what is
/// wrong.
pub fn portal_address(text: &str) -> Result<VdsIpAddress, Error> {
    use vds_providers::sendtargets::DiscoveryPortal;
    let bad = |why: String| {
        Error::new(Hresult::E_INVALIDARG)
            .about(Subject::Other(format!("portal {text:?}")))
            .because(why)
    };
    let t = text.trim();
    let has_port = match t.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, after)| !after.is_empty()),
        None => {
            if t.matches(':').count() > 1 {
                return Err(bad(
                    "write an IPv6 address in brackets, as in [::1]:3260".into()
                ));
            }
            t.contains(':')
        }
    };
    if !has_port {
        return Err(bad("give the port, as in HOST:PORT".into()));
    }
    let p: DiscoveryPortal = t.parse().map_err(|e| bad(format!("{e}")))?;
    Ok(p.vds_address().unwrap_or_else(|| VdsIpAddress::Text {
        text: p.host.to_string(),
        port: u32::from(p.port),
    }))
}
