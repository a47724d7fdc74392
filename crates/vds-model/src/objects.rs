//! Object handles: subsystem (`IVdsSubSystem` + `IVdsSubSystemIscsi`), portal (`IVdsIscsiPortal`),
//! target (`IVdsIscsiTarget`) and portal group (`IVdsIscsiPortalGroup`).
//!
//! A handle is an id and a shared reference to its provider: cheap to clone, `Send + Sync`, released
//! by dropping it. It holds no data of its own; every call reads the provider's current cache, so a
//! handle whose object has departed answers `VDS_E_OBJECT_DELETED`. The order of checks and the
//! concurrency rules are in [`crate::provider`].

use std::sync::Arc;

use crate::backend::{Created, Mutation};
use crate::provider::Inner;
use crate::state::SubState;
use crate::{
    EnumVdsObject, Hresult, IscsiPortalGroupProp, IscsiPortalProp, IscsiPortalStatus,
    IscsiTargetProp, ObjectId, SubSystemFlags, SubSystemProp, SubSystemStatus, VdsIpAddress,
};

/// The longest friendly name (iSCSI alias) accepted, in bytes of UTF-8 (RFC 7143's text value limit).
pub const MAX_FRIENDLY_NAME_BYTES: usize = 255;

macro_rules! handle_common {
    ($t:ident) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self.id)
            }
        }
        impl PartialEq for $t {
            fn eq(&self, other: &$t) -> bool {
                self.id == other.id && Arc::ptr_eq(&self.inner, &other.inner)
            }
        }
        impl Eq for $t {}
        impl $t {
            /// The object's id (`VDS_OBJECT_ID`).
            pub fn id(&self) -> ObjectId {
                self.id
            }
        }
    };
}

/// What `add_portal`/`remove_portal` need to know.
struct Membership {
    sub: Arc<SubState>,
    iscsi_name: String,
    tag: u16,
    address: VdsIpAddress,
    in_this_group: bool,
    in_other_group_of_target: bool,
}

/// A subsystem: `IVdsSubSystem` with the iSCSI capability `IVdsSubSystemIscsi`.
#[derive(Clone)]
pub struct SubSystem {
    inner: Arc<Inner>,
    id: ObjectId,
}
handle_common!(SubSystem);

/// An iSCSI portal (`IVdsIscsiPortal`).
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
    subsystem: ObjectId,
    id: ObjectId,
}
handle_common!(Portal);

/// An iSCSI target (`IVdsIscsiTarget`).
#[derive(Clone)]
pub struct Target {
    inner: Arc<Inner>,
    subsystem: ObjectId,
    id: ObjectId,
}
handle_common!(Target);

/// An iSCSI portal group (`IVdsIscsiPortalGroup`).
#[derive(Clone)]
pub struct PortalGroup {
    inner: Arc<Inner>,
    subsystem: ObjectId,
    id: ObjectId,
}
handle_common!(PortalGroup);

impl SubSystem {
    pub(crate) fn new(inner: Arc<Inner>, id: ObjectId) -> SubSystem {
        SubSystem { inner, id }
    }

    fn state(&self) -> Result<Arc<SubState>, Hresult> {
        self.inner.subsystem(self.id)
    }

    /// Queries that enumerate the subsystem's objects: rules 1–3, then busy while reenumerating, then
    /// failed.
    fn state_for_query(&self) -> Result<Arc<SubState>, Hresult> {
        let sub = self.state()?;
        if self.inner.reenumerating() {
            return Err(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        }
        if sub.prop.status == SubSystemStatus::Failed {
            return Err(Hresult::VDS_E_OBJECT_STATUS_FAILED);
        }
        Ok(sub)
    }

    fn portal(&self, id: ObjectId) -> Portal {
        Portal {
            inner: self.inner.clone(),
            subsystem: self.id,
            id,
        }
    }

    fn target(&self, id: ObjectId) -> Target {
        Target {
            inner: self.inner.clone(),
            subsystem: self.id,
            id,
        }
    }

    /// The subsystem's natural key (for example its configured name).
    pub fn key(&self) -> Result<String, Hresult> {
        Ok(self.state()?.snapshot.key.clone())
    }

    /// `IVdsSubSystem::GetProperties`.
    pub fn get_properties(&self) -> Result<SubSystemProp, Hresult> {
        Ok(self.state()?.prop.clone())
    }

    /// `IVdsSubSystemIscsi::QueryPortals`: a snapshot enumerator of the subsystem's portals, in the
    /// provider's order; an empty enumerator (and success) when there are none.
    ///
    /// Errors: `VDS_E_INITIALIZE_NOT_CALLED`, `VDS_E_PROVIDER_CACHE_CORRUPT`, `VDS_E_OBJECT_DELETED`,
    /// `VDS_E_ANOTHER_CALL_IN_PROGRESS` (while the provider reenumerates), `VDS_E_OBJECT_STATUS_FAILED`
    /// (the subsystem's status is `Failed`). Never waits on the network.
    pub fn query_portals(&self) -> Result<EnumVdsObject<Portal>, Hresult> {
        let sub = self.state_for_query()?;
        let (inner, subsystem) = (self.inner.clone(), self.id);
        Ok(EnumVdsObject::lazy(sub.portal_order.clone(), move |id| {
            Portal {
                inner: inner.clone(),
                subsystem,
                id,
            }
        }))
    }

    /// `IVdsSubSystemIscsi::QueryTargets`: like [`query_portals`](Self::query_portals), for targets.
    pub fn query_targets(&self) -> Result<EnumVdsObject<Target>, Hresult> {
        let sub = self.state_for_query()?;
        let (inner, subsystem) = (self.inner.clone(), self.id);
        Ok(EnumVdsObject::lazy(sub.target_order.clone(), move |id| {
            Target {
                inner: inner.clone(),
                subsystem,
                id,
            }
        }))
    }

    /// The portal of this subsystem with the given address, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_by_address(&self, address: &VdsIpAddress) -> Result<Portal, Hresult> {
        let sub = self.state()?;
        let id = self.id.child("portal", &address.canonical_key());
        if sub.portals.contains_key(&id) {
            Ok(self.portal(id))
        } else {
            Err(Hresult::VDS_E_OBJECT_NOT_FOUND)
        }
    }

    /// The target of this subsystem with the given iSCSI name, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn target_by_name(&self, iscsi_name: &str) -> Result<Target, Hresult> {
        let sub = self.state()?;
        let id = self.id.child("target", iscsi_name);
        if sub.targets.contains_key(&id) {
            Ok(self.target(id))
        } else {
            Err(Hresult::VDS_E_OBJECT_NOT_FOUND)
        }
    }

    /// `IVdsSubSystemIscsi::CreateTarget`. `iscsi_name` `None` or empty lets the provider generate
    /// one. The asynchronous result of VDS is returned directly: the new target on success, and no
    /// object on failure.
    ///
    /// Errors beyond the common ones: `VDS_E_OBJECT_STATUS_FAILED` (failed subsystem),
    /// `VDS_E_NOT_SUPPORTED` (a `SUPPORTS_SIMPLE_TARGET_CONFIG` subsystem, or a provider that cannot
    /// create targets), `VDS_E_NAME_NOT_UNIQUE` (a target of that name exists in any subsystem of the
    /// provider), `E_INVALIDARG` (a friendly name over 255 bytes), `VDS_E_ANOTHER_CALL_IN_PROGRESS`.
    pub fn create_target(
        &self,
        iscsi_name: Option<&str>,
        friendly_name: &str,
    ) -> Result<Target, Hresult> {
        let sub = self.state()?;
        if sub.prop.status == SubSystemStatus::Failed {
            return Err(Hresult::VDS_E_OBJECT_STATUS_FAILED);
        }
        if sub
            .prop
            .flags
            .contains(SubSystemFlags::SUPPORTS_SIMPLE_TARGET_CONFIG)
        {
            return Err(Hresult::VDS_E_NOT_SUPPORTED);
        }
        check_friendly_name(friendly_name)?;
        let iscsi_name = iscsi_name.filter(|n| !n.is_empty());
        if let Some(name) = iscsi_name {
            let taken = self
                .inner
                .state
                .load()
                .subsystems
                .values()
                .any(|s| s.target_named(name).is_some());
            if taken {
                return Err(Hresult::VDS_E_NAME_NOT_UNIQUE);
            }
        }
        let mutation = Mutation::CreateTarget {
            iscsi_name: iscsi_name.map(str::to_string),
            friendly_name: friendly_name.to_string(),
        };
        let (applied, new_sub) = self.inner.mutate(&sub, mutation)?;
        let Some(Created::Target(name)) = applied.created else {
            return Err(Hresult::VDS_E_BAD_PROVIDER_DATA);
        };
        let id = self.id.child("target", &name);
        if !new_sub.targets.contains_key(&id) {
            return Err(Hresult::VDS_E_BAD_PROVIDER_DATA);
        }
        Ok(self.target(id))
    }

    /// `IVdsSubSystemIscsi::SetIpsecGroupPresharedKey`: reserved; always `VDS_E_NOT_SUPPORTED` (after
    /// the common checks).
    pub fn set_ipsec_group_preshared_key(&self, _key: &[u8]) -> Result<(), Hresult> {
        self.state()?;
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    }
}

fn check_friendly_name(name: &str) -> Result<(), Hresult> {
    if name.len() > MAX_FRIENDLY_NAME_BYTES || name.contains('\0') {
        Err(Hresult::E_INVALIDARG)
    } else {
        Ok(())
    }
}

impl Portal {
    fn lookup<R>(
        &self,
        f: impl FnOnce(&Arc<SubState>, &crate::state::PortalEntry) -> R,
    ) -> Result<R, Hresult> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let entry = sub
            .portals
            .get(&self.id)
            .ok_or(Hresult::VDS_E_OBJECT_DELETED)?;
        Ok(f(&sub, entry))
    }

    /// `IVdsIscsiPortal::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiPortalProp, Hresult> {
        self.lookup(|_, p| p.prop.clone())
    }

    /// `IVdsIscsiPortal::GetSubSystem`.
    pub fn get_sub_system(&self) -> Result<SubSystem, Hresult> {
        self.lookup(|_, _| SubSystem::new(self.inner.clone(), self.subsystem))
    }

    /// `IVdsIscsiPortal::QueryAssociatedPortalGroups`: the groups, across all targets, that hold this
    /// portal; empty when none.
    pub fn query_associated_portal_groups(&self) -> Result<EnumVdsObject<PortalGroup>, Hresult> {
        self.lookup(|_, p| {
            EnumVdsObject::new(
                p.groups
                    .iter()
                    .map(|g| PortalGroup {
                        inner: self.inner.clone(),
                        subsystem: self.subsystem,
                        id: *g,
                    })
                    .collect(),
            )
        })
    }

    /// `IVdsIscsiPortal::SetStatus`: only `Online` and `Offline` are accepted; any other value, or a
    /// provider that cannot change portal status, answers `VDS_E_NOT_SUPPORTED`. On success the next
    /// `get_properties` shows the new status and sinks receive `VDS_NF_PORTAL_MODIFY`.
    pub fn set_status(&self, status: IscsiPortalStatus) -> Result<(), Hresult> {
        let (sub, address) = self.lookup(|sub, p| (sub.clone(), p.prop.address.clone()))?;
        if !matches!(
            status,
            IscsiPortalStatus::Online | IscsiPortalStatus::Offline
        ) {
            return Err(Hresult::VDS_E_NOT_SUPPORTED);
        }
        self.inner.mutate(
            &sub,
            Mutation::SetPortalStatus {
                portal: address,
                status,
            },
        )?;
        Ok(())
    }

    /// `IVdsIscsiPortal::SetIpsecTunnelAddress`: reserved; always `VDS_E_NOT_SUPPORTED`.
    pub fn set_ipsec_tunnel_address(
        &self,
        _tunnel: &VdsIpAddress,
        _destination: &VdsIpAddress,
    ) -> Result<(), Hresult> {
        self.lookup(|_, _| ())?;
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    }

    /// `IVdsIscsiPortal::GetIpsecSecurity`: reserved; always `VDS_E_NOT_SUPPORTED`.
    pub fn get_ipsec_security(&self, _initiator_portal: &VdsIpAddress) -> Result<u64, Hresult> {
        self.lookup(|_, _| ())?;
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    }

    /// `IVdsIscsiPortal::SetIpsecSecurity`: reserved; always `VDS_E_NOT_SUPPORTED`.
    pub fn set_ipsec_security(
        &self,
        _initiator_portal: &VdsIpAddress,
        _flags: u64,
        _key: Option<&[u8]>,
    ) -> Result<(), Hresult> {
        self.lookup(|_, _| ())?;
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    }
}

impl Target {
    fn lookup<R>(
        &self,
        f: impl FnOnce(&Arc<SubState>, &crate::state::TargetEntry) -> R,
    ) -> Result<R, Hresult> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let entry = sub
            .targets
            .get(&self.id)
            .ok_or(Hresult::VDS_E_OBJECT_DELETED)?;
        Ok(f(&sub, entry))
    }

    fn group(&self, id: ObjectId) -> PortalGroup {
        PortalGroup {
            inner: self.inner.clone(),
            subsystem: self.subsystem,
            id,
        }
    }

    /// `IVdsIscsiTarget::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiTargetProp, Hresult> {
        self.lookup(|_, t| t.prop.clone())
    }

    /// `IVdsIscsiTarget::GetSubSystem`.
    pub fn get_sub_system(&self) -> Result<SubSystem, Hresult> {
        self.lookup(|_, _| SubSystem::new(self.inner.clone(), self.subsystem))
    }

    /// `IVdsIscsiTarget::QueryPortalGroups`: the target's groups; empty when none.
    pub fn query_portal_groups(&self) -> Result<EnumVdsObject<PortalGroup>, Hresult> {
        self.lookup(|_, t| EnumVdsObject::new(t.groups.iter().map(|g| self.group(*g)).collect()))
    }

    /// `IVdsIscsiTarget::CreatePortalGroup`: the new group and `S_OK`; or, when the target can have no
    /// more groups, an existing group and `VDS_S_ALREADY_EXISTS` (a success code).
    pub fn create_portal_group(&self) -> Result<(PortalGroup, Hresult), Hresult> {
        let (sub, name) = self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone()))?;
        let (applied, new_sub) = self
            .inner
            .mutate(&sub, Mutation::CreatePortalGroup { iscsi_name: name })?;
        let Some(Created::PortalGroup { tag, .. }) = applied.created else {
            return Err(Hresult::VDS_E_BAD_PROVIDER_DATA);
        };
        let id = self.id.child("portalgroup", &tag.to_string());
        if !new_sub.groups.contains_key(&id) {
            return Err(Hresult::VDS_E_BAD_PROVIDER_DATA);
        }
        Ok((self.group(id), applied.outcome))
    }

    /// `IVdsIscsiTarget::Delete`: deletes the target and all its portal groups;
    /// `VDS_E_ASSOCIATED_LUNS_EXIST` while LUNs are associated with it.
    pub fn delete(&self) -> Result<(), Hresult> {
        let (sub, name, luns) =
            self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone(), t.lun_count))?;
        if luns > 0 {
            return Err(Hresult::VDS_E_ASSOCIATED_LUNS_EXIST);
        }
        self.inner
            .mutate(&sub, Mutation::DeleteTarget { iscsi_name: name })?;
        Ok(())
    }

    /// `IVdsIscsiTarget::SetFriendlyName`: an empty name clears the alias; `E_INVALIDARG` for a name
    /// over 255 bytes or with a NUL.
    pub fn set_friendly_name(&self, friendly_name: &str) -> Result<(), Hresult> {
        let (sub, name) = self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone()))?;
        check_friendly_name(friendly_name)?;
        self.inner.mutate(
            &sub,
            Mutation::SetTargetFriendlyName {
                iscsi_name: name,
                friendly_name: friendly_name.to_string(),
            },
        )?;
        Ok(())
    }
}

impl PortalGroup {
    fn lookup<R>(
        &self,
        f: impl FnOnce(&Arc<SubState>, &crate::state::GroupEntry) -> R,
    ) -> Result<R, Hresult> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let entry = sub
            .groups
            .get(&self.id)
            .ok_or(Hresult::VDS_E_OBJECT_DELETED)?;
        Ok(f(&sub, entry))
    }

    /// `IVdsIscsiPortalGroup::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiPortalGroupProp, Hresult> {
        self.lookup(|_, g| g.prop)
    }

    /// `IVdsIscsiPortalGroup::GetTarget`.
    pub fn get_target(&self) -> Result<Target, Hresult> {
        self.lookup(|_, g| Target {
            inner: self.inner.clone(),
            subsystem: self.subsystem,
            id: g.target,
        })
    }

    /// `IVdsIscsiPortalGroup::QueryAssociatedPortals`: the group's portals; empty when none.
    pub fn query_associated_portals(&self) -> Result<EnumVdsObject<Portal>, Hresult> {
        self.lookup(|_, g| {
            EnumVdsObject::new(
                g.portals
                    .iter()
                    .map(|p| Portal {
                        inner: self.inner.clone(),
                        subsystem: self.subsystem,
                        id: *p,
                    })
                    .collect(),
            )
        })
    }

    /// What a membership change needs to know about `portal` and this group.
    fn membership(&self, portal: ObjectId) -> Result<Membership, Hresult> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let group = sub
            .groups
            .get(&self.id)
            .ok_or(Hresult::VDS_E_OBJECT_DELETED)?;
        let target = sub
            .targets
            .get(&group.target)
            .ok_or(Hresult::VDS_E_OBJECT_DELETED)?;
        let entry = sub
            .portals
            .get(&portal)
            .ok_or(Hresult::VDS_E_OBJECT_NOT_FOUND)?;
        let in_other_group_of_target = entry.groups.iter().any(|other| {
            *other != self.id
                && sub
                    .groups
                    .get(other)
                    .is_some_and(|g| g.target == group.target)
        });
        Ok(Membership {
            iscsi_name: target.prop.iscsi_name.clone(),
            tag: group.prop.tag,
            address: entry.prop.address.clone(),
            in_this_group: group.portals.contains(&portal),
            in_other_group_of_target,
            sub,
        })
    }

    /// `IVdsIscsiPortalGroup::AddPortal`. `VDS_E_OBJECT_NOT_FOUND` when no portal of this subsystem
    /// has that id; `VDS_E_OBJECT_EXISTS` when the portal is already in another group of the same
    /// target (a portal is in at most one group per target); adding a portal already in this group
    /// succeeds and changes nothing.
    pub fn add_portal(&self, portal: ObjectId) -> Result<(), Hresult> {
        let m = self.membership(portal)?;
        if m.in_this_group {
            return Ok(());
        }
        if m.in_other_group_of_target {
            return Err(Hresult::VDS_E_OBJECT_EXISTS);
        }
        let mutation = Mutation::AddPortal {
            iscsi_name: m.iscsi_name,
            tag: m.tag,
            portal: m.address,
        };
        self.inner.mutate(&m.sub, mutation)?;
        Ok(())
    }

    /// `IVdsIscsiPortalGroup::RemovePortal`. `VDS_E_OBJECT_NOT_FOUND` when no portal of this subsystem
    /// has that id, or it is not in this group.
    pub fn remove_portal(&self, portal: ObjectId) -> Result<(), Hresult> {
        let m = self.membership(portal)?;
        if !m.in_this_group {
            return Err(Hresult::VDS_E_OBJECT_NOT_FOUND);
        }
        let mutation = Mutation::RemovePortal {
            iscsi_name: m.iscsi_name,
            tag: m.tag,
            portal: m.address,
        };
        self.inner.mutate(&m.sub, mutation)?;
        Ok(())
    }

    /// `IVdsIscsiPortalGroup::Delete`: `VDS_E_ASSOCIATED_PORTALS_EXIST` while the group has portals.
    pub fn delete(&self) -> Result<(), Hresult> {
        let (sub, target, tag, members) = self.lookup(|s, g| {
            let target = s.targets.get(&g.target).map(|t| t.prop.iscsi_name.clone());
            (s.clone(), target, g.prop.tag, g.portals.len())
        })?;
        let target = target.ok_or(Hresult::VDS_E_OBJECT_DELETED)?;
        if members > 0 {
            return Err(Hresult::VDS_E_ASSOCIATED_PORTALS_EXIST);
        }
        self.inner.mutate(
            &sub,
            Mutation::DeletePortalGroup {
                iscsi_name: target,
                tag,
            },
        )?;
        Ok(())
    }
}
