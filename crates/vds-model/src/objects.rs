//! Object handles: subsystem (`IVdsSubSystem` + `IVdsSubSystemIscsi`), portal (`IVdsIscsiPortal`),
//! target (`IVdsIscsiTarget`) and portal group (`IVdsIscsiPortalGroup`).
//!
//! A handle is an id and a shared reference to its provider: cheap to clone, `Send + Sync`, released
//! by dropping it. It holds no data of its own; every call reads the provider's current cache, so a
//! handle whose object has departed answers `VDS_E_OBJECT_DELETED`. The order of checks and the
//! concurrency rules are in [`crate::provider`].

use std::sync::Arc;

use vds_secret::Secret;

use crate::backend::{Created, Mutation};
use crate::provider::Inner;
use crate::state::SubState;
use crate::{
    EnumVdsObject, Error, Hresult, IscsiPortalGroupProp, IscsiPortalProp, IscsiPortalStatus,
    IscsiTargetProp, ObjectId, SubSystemFlags, SubSystemProp, SubSystemStatus, Subject,
    VdsIpAddress,
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
    subject: Subject,
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

fn sub_subject(sub: &SubState) -> Subject {
    Subject::Subsystem(sub.snapshot.key.clone())
}

fn err(code: Hresult, subject: Subject) -> Error {
    Error::new(code).about(subject)
}

impl SubSystem {
    pub(crate) fn new(inner: Arc<Inner>, id: ObjectId) -> SubSystem {
        SubSystem { inner, id }
    }

    fn state(&self) -> Result<Arc<SubState>, Error> {
        self.inner.subsystem(self.id)
    }

    /// Queries that enumerate the subsystem's objects: rules 1–3, then busy while reenumerating, then
    /// failed (with the detail the backend recorded as the cause).
    fn state_for_query(&self) -> Result<Arc<SubState>, Error> {
        let sub = self.state()?;
        if self.inner.reenumerating() {
            return Err(self.inner.busy_error());
        }
        check_not_failed(&sub)?;
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
    pub fn key(&self) -> Result<String, Error> {
        Ok(self.state()?.snapshot.key.clone())
    }

    /// Why the subsystem's status is what it is, as the backend recorded it (not part of
    /// `VDS_SUB_SYSTEM_PROP`).
    pub fn detail(&self) -> Result<Option<String>, Error> {
        Ok(self.state()?.snapshot.detail.clone())
    }

    /// `IVdsSubSystem::GetProperties`.
    pub fn get_properties(&self) -> Result<SubSystemProp, Error> {
        Ok(self.state()?.prop.clone())
    }

    /// `IVdsSubSystemIscsi::QueryPortals`: a snapshot enumerator of the subsystem's portals, in the
    /// provider's order; an empty enumerator (and success) when there are none.
    ///
    /// Errors: `VDS_E_INITIALIZE_NOT_CALLED`, `VDS_E_PROVIDER_CACHE_CORRUPT`, `VDS_E_OBJECT_DELETED`,
    /// `VDS_E_ANOTHER_CALL_IN_PROGRESS` (while the provider reenumerates), `VDS_E_OBJECT_STATUS_FAILED`
    /// (the subsystem's status is `Failed`). Never waits on the network.
    pub fn query_portals(&self) -> Result<EnumVdsObject<Portal>, Error> {
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
    pub fn query_targets(&self) -> Result<EnumVdsObject<Target>, Error> {
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
    pub fn portal_by_address(&self, address: &VdsIpAddress) -> Result<Portal, Error> {
        let sub = self.state()?;
        let id = self.id.child("portal", &address.canonical_key());
        if sub.portals.contains_key(&id) {
            Ok(self.portal(id))
        } else {
            Err(err(
                Hresult::VDS_E_OBJECT_NOT_FOUND,
                Subject::Portal {
                    subsystem: sub.snapshot.key.clone(),
                    portal: address.to_string(),
                },
            ))
        }
    }

    /// The portal of this subsystem with the given id, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_by_id(&self, id: ObjectId) -> Result<Portal, Error> {
        let sub = self.state()?;
        if sub.portals.contains_key(&id) {
            Ok(self.portal(id))
        } else {
            Err(err(Hresult::VDS_E_OBJECT_NOT_FOUND, sub_subject(&sub))
                .because(format!("it has no portal {id}")))
        }
    }

    /// The target of this subsystem with the given iSCSI name, if any (`VDS_E_OBJECT_NOT_FOUND`).
    /// iSCSI names compare without regard to case (RFC 3722 folds them to lower case).
    pub fn target_by_name(&self, iscsi_name: &str) -> Result<Target, Error> {
        let sub = self.state()?;
        let id = self.id.child("target", iscsi_name);
        if sub.targets.contains_key(&id) {
            return Ok(self.target(id));
        }
        match sub.target_named(iscsi_name) {
            Some(t) => Ok(self.target(t.prop.id)),
            None => Err(err(
                Hresult::VDS_E_OBJECT_NOT_FOUND,
                Subject::Target {
                    subsystem: sub.snapshot.key.clone(),
                    target: iscsi_name.to_string(),
                },
            )),
        }
    }

    /// The target of this subsystem with the given id, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn target_by_id(&self, id: ObjectId) -> Result<Target, Error> {
        let sub = self.state()?;
        if sub.targets.contains_key(&id) {
            Ok(self.target(id))
        } else {
            Err(err(Hresult::VDS_E_OBJECT_NOT_FOUND, sub_subject(&sub))
                .because(format!("it has no target {id}")))
        }
    }

    /// The portal group of this subsystem with the given id, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_group_by_id(&self, id: ObjectId) -> Result<PortalGroup, Error> {
        let sub = self.state()?;
        if sub.groups.contains_key(&id) {
            Ok(PortalGroup {
                inner: self.inner.clone(),
                subsystem: self.id,
                id,
            })
        } else {
            Err(err(Hresult::VDS_E_OBJECT_NOT_FOUND, sub_subject(&sub))
                .because(format!("it has no portal group {id}")))
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
    pub async fn create_target(
        &self,
        iscsi_name: Option<&str>,
        friendly_name: &str,
    ) -> Result<Target, Error> {
        let sub = self.state()?;
        check_not_failed(&sub)?;
        if sub
            .prop
            .flags
            .contains(SubSystemFlags::SUPPORTS_SIMPLE_TARGET_CONFIG)
        {
            return Err(
                err(Hresult::VDS_E_NOT_SUPPORTED, sub_subject(&sub)).because(
                    "the subsystem supports only simple target configurations (targets are made \
                 with its LUNs)",
                ),
            );
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
                .find(|s| s.target_named(name).is_some())
                .map(|s| s.snapshot.key.clone());
            if let Some(owner) = taken {
                return Err(err(
                    Hresult::VDS_E_NAME_NOT_UNIQUE,
                    Subject::Target {
                        subsystem: sub.snapshot.key.clone(),
                        target: name.to_string(),
                    },
                )
                .because(format!("subsystem {owner:?} has a target of that name")));
            }
        }
        let mutation = Mutation::CreateTarget {
            iscsi_name: iscsi_name.map(str::to_string),
            friendly_name: friendly_name.to_string(),
        };
        let (applied, new_sub) = self.inner.mutate(&sub, mutation).await?;
        let bad = || {
            err(Hresult::VDS_E_BAD_PROVIDER_DATA, sub_subject(&sub))
                .because("the provider did not report the target it created")
        };
        let Some(Created::Target(name)) = applied.created else {
            return Err(bad());
        };
        let id = self.id.child("target", &name);
        if !new_sub.targets.contains_key(&id) {
            return Err(bad());
        }
        Ok(self.target(id))
    }

    /// `IVdsSubSystemIscsi::SetIpsecGroupPresharedKey`: reserved; always `VDS_E_NOT_SUPPORTED` (after
    /// the common checks).
    pub fn set_ipsec_group_preshared_key(&self, _key: &[u8]) -> Result<(), Error> {
        let sub = self.state()?;
        Err(err(Hresult::VDS_E_NOT_SUPPORTED, sub_subject(&sub)))
    }
}

fn check_not_failed(sub: &SubState) -> Result<(), Error> {
    if sub.prop.status == SubSystemStatus::Failed {
        let mut e = err(Hresult::VDS_E_OBJECT_STATUS_FAILED, sub_subject(sub));
        if let Some(detail) = &sub.snapshot.detail {
            e = e.because(detail.clone());
        }
        return Err(e);
    }
    Ok(())
}

/// An initiator name a secret is about: not empty, no NUL or other control character.
fn check_initiator_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        Err(Error::new(Hresult::E_INVALIDARG).because("the initiator name is empty"))
    } else if name.chars().any(char::is_control) {
        Err(Error::new(Hresult::E_INVALIDARG)
            .because("an initiator name cannot contain control characters"))
    } else {
        Ok(())
    }
}

fn check_friendly_name(name: &str) -> Result<(), Error> {
    if name.len() > MAX_FRIENDLY_NAME_BYTES {
        Err(Error::new(Hresult::E_INVALIDARG).because(format!(
            "a friendly name has at most {MAX_FRIENDLY_NAME_BYTES} bytes; this one has {}",
            name.len()
        )))
    } else if name.contains('\0') {
        Err(Error::new(Hresult::E_INVALIDARG).because("a friendly name cannot contain NUL"))
    } else {
        Ok(())
    }
}

impl Portal {
    fn lookup<R>(
        &self,
        f: impl FnOnce(&Arc<SubState>, &crate::state::PortalEntry) -> R,
    ) -> Result<R, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let entry = sub
            .portals
            .get(&self.id)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        Ok(f(&sub, entry))
    }

    fn subject(sub: &SubState, p: &crate::state::PortalEntry) -> Subject {
        Subject::Portal {
            subsystem: sub.snapshot.key.clone(),
            portal: p.prop.address.to_string(),
        }
    }

    /// `IVdsIscsiPortal::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiPortalProp, Error> {
        self.lookup(|_, p| p.prop.clone())
    }

    /// `IVdsIscsiPortal::GetSubSystem`.
    pub fn get_sub_system(&self) -> Result<SubSystem, Error> {
        self.lookup(|_, _| SubSystem::new(self.inner.clone(), self.subsystem))
    }

    /// `IVdsIscsiPortal::QueryAssociatedPortalGroups`: the groups, across all targets, that hold this
    /// portal; empty when none.
    pub fn query_associated_portal_groups(&self) -> Result<EnumVdsObject<PortalGroup>, Error> {
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
    pub async fn set_status(&self, status: IscsiPortalStatus) -> Result<(), Error> {
        let (sub, address, subject) =
            self.lookup(|sub, p| (sub.clone(), p.prop.address.clone(), Portal::subject(sub, p)))?;
        if !matches!(
            status,
            IscsiPortalStatus::Online | IscsiPortalStatus::Offline
        ) {
            return Err(err(Hresult::VDS_E_NOT_SUPPORTED, subject).because(format!(
                "a portal can be set ONLINE or OFFLINE, not {status}"
            )));
        }
        self.inner
            .mutate(
                &sub,
                Mutation::SetPortalStatus {
                    portal: address,
                    status,
                },
            )
            .await
            .map_err(|e| e.about_if_unset(subject))?;
        Ok(())
    }

    /// `IVdsIscsiPortal::SetIpsecTunnelAddress`: reserved; always `VDS_E_NOT_SUPPORTED`.
    pub fn set_ipsec_tunnel_address(
        &self,
        _tunnel: &VdsIpAddress,
        _destination: &VdsIpAddress,
    ) -> Result<(), Error> {
        Err(self.not_supported()?)
    }

    /// `IVdsIscsiPortal::GetIpsecSecurity`: reserved; always `VDS_E_NOT_SUPPORTED`.
    pub fn get_ipsec_security(&self, _initiator_portal: &VdsIpAddress) -> Result<u64, Error> {
        Err(self.not_supported()?)
    }

    /// `IVdsIscsiPortal::SetIpsecSecurity`: reserved; always `VDS_E_NOT_SUPPORTED`.
    pub fn set_ipsec_security(
        &self,
        _initiator_portal: &VdsIpAddress,
        _flags: u64,
        _key: Option<&[u8]>,
    ) -> Result<(), Error> {
        Err(self.not_supported()?)
    }

    /// The common checks, then `VDS_E_NOT_SUPPORTED` about this portal.
    fn not_supported(&self) -> Result<Error, Error> {
        self.lookup(|sub, p| err(Hresult::VDS_E_NOT_SUPPORTED, Portal::subject(sub, p)))
    }
}

impl Target {
    fn lookup<R>(
        &self,
        f: impl FnOnce(&Arc<SubState>, &crate::state::TargetEntry) -> R,
    ) -> Result<R, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let entry = sub
            .targets
            .get(&self.id)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        Ok(f(&sub, entry))
    }

    fn subject(sub: &SubState, t: &crate::state::TargetEntry) -> Subject {
        Subject::Target {
            subsystem: sub.snapshot.key.clone(),
            target: t.prop.iscsi_name.clone(),
        }
    }

    fn group(&self, id: ObjectId) -> PortalGroup {
        PortalGroup {
            inner: self.inner.clone(),
            subsystem: self.subsystem,
            id,
        }
    }

    /// `IVdsIscsiTarget::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiTargetProp, Error> {
        self.lookup(|_, t| t.prop.clone())
    }

    /// How many LUNs are associated with the target (not part of `VDS_ISCSI_TARGET_PROP`).
    pub fn lun_count(&self) -> Result<u32, Error> {
        self.lookup(|_, t| t.lun_count)
    }

    /// `IVdsIscsiTarget::GetSubSystem`.
    pub fn get_sub_system(&self) -> Result<SubSystem, Error> {
        self.lookup(|_, _| SubSystem::new(self.inner.clone(), self.subsystem))
    }

    /// `IVdsIscsiTarget::QueryPortalGroups`: the target's groups; empty when none.
    pub fn query_portal_groups(&self) -> Result<EnumVdsObject<PortalGroup>, Error> {
        self.lookup(|_, t| EnumVdsObject::new(t.groups.iter().map(|g| self.group(*g)).collect()))
    }

    /// The target's group with the given tag, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_group_by_tag(&self, tag: u16) -> Result<PortalGroup, Error> {
        let id = self.id.child("portalgroup", &tag.to_string());
        self.lookup(|sub, t| {
            if t.groups.contains(&id) {
                Ok(self.group(id))
            } else {
                Err(err(
                    Hresult::VDS_E_OBJECT_NOT_FOUND,
                    Subject::PortalGroup {
                        subsystem: sub.snapshot.key.clone(),
                        target: t.prop.iscsi_name.clone(),
                        tag,
                    },
                ))
            }
        })?
    }

    /// `IVdsIscsiTarget::CreatePortalGroup`: the new group and `S_OK`; or, when the target can have no
    /// more groups, an existing group and `VDS_S_ALREADY_EXISTS` (a success code).
    pub async fn create_portal_group(&self) -> Result<(PortalGroup, Hresult), Error> {
        let (sub, name, subject) =
            self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone(), Target::subject(s, t)))?;
        let (applied, new_sub) = self
            .inner
            .mutate(&sub, Mutation::CreatePortalGroup { iscsi_name: name })
            .await
            .map_err(|e| e.about_if_unset(subject.clone()))?;
        let bad = || {
            err(Hresult::VDS_E_BAD_PROVIDER_DATA, subject.clone())
                .because("the provider did not report the portal group it created")
        };
        let Some(Created::PortalGroup { tag, .. }) = applied.created else {
            return Err(bad());
        };
        let id = self.id.child("portalgroup", &tag.to_string());
        if !new_sub.groups.contains_key(&id) {
            return Err(bad());
        }
        Ok((self.group(id), applied.outcome))
    }

    /// `IVdsIscsiTarget::GetConnectedInitiators`: the iSCSI names of the initiators logged in to
    /// the target, as the last refresh found them; empty when none.
    pub fn get_connected_initiators(&self) -> Result<Vec<String>, Error> {
        self.lookup(|_, t| t.connected_initiators.clone())
    }

    /// `IVdsIscsiTarget::Delete`: deletes the target and all its portal groups;
    /// `VDS_E_ASSOCIATED_LUNS_EXIST` while LUNs are associated with it. While initiators are logged
    /// in to it the backend answers `VDS_E_DEVICE_IN_USE` ([`target_in_use`](crate::target_in_use)):
    /// a target in use is never deleted by force, and whether it is in use is the array's to say
    /// (sessions come and go between refreshes).
    pub async fn delete(&self) -> Result<(), Error> {
        let (sub, name, luns, subject) = self.lookup(|s, t| {
            (
                s.clone(),
                t.prop.iscsi_name.clone(),
                t.lun_count,
                Target::subject(s, t),
            )
        })?;
        if luns > 0 {
            return Err(err(Hresult::VDS_E_ASSOCIATED_LUNS_EXIST, subject)
                .because(format!("it has {luns} LUN(s)")));
        }
        self.inner
            .mutate(&sub, Mutation::DeleteTarget { iscsi_name: name })
            .await
            .map_err(|e| e.about_if_unset(subject))?;
        Ok(())
    }

    /// `IVdsIscsiTarget::SetSharedSecret`: the secret initiators must prove they know to log in
    /// (one-way CHAP). `secret` `None` or empty clears it; `initiator` `None` or empty sets the
    /// target's default secret, else that initiator's own (`VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED`
    /// from a provider that keeps one secret per target). A provider that cannot set secrets answers
    /// `VDS_E_NOT_SUPPORTED`. The secret is handed to the array and kept nowhere else.
    pub async fn set_shared_secret(
        &self,
        secret: Option<&Secret>,
        initiator: Option<&str>,
    ) -> Result<(), Error> {
        let (sub, name, subject) =
            self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone(), Target::subject(s, t)))?;
        let initiator = initiator.filter(|i| !i.is_empty());
        if let Some(i) = initiator {
            check_initiator_name(i).map_err(|e| e.about(subject.clone()))?;
        }
        self.inner
            .mutate(
                &sub,
                Mutation::SetTargetSharedSecret {
                    iscsi_name: name,
                    secret: secret.filter(|s| !s.is_empty()).cloned(),
                    initiator: initiator.map(str::to_string),
                },
            )
            .await
            .map_err(|e| e.about_if_unset(subject))?;
        Ok(())
    }

    /// `IVdsIscsiTarget::RememberInitiatorSharedSecret`: the secret of `initiator` with which the
    /// target proves itself to that initiator when it asks (mutual CHAP). `secret` `None` or empty
    /// forgets it. `E_INVALIDARG` for an empty initiator name.
    pub async fn remember_initiator_shared_secret(
        &self,
        initiator: &str,
        secret: Option<&Secret>,
    ) -> Result<(), Error> {
        let (sub, name, subject) =
            self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone(), Target::subject(s, t)))?;
        check_initiator_name(initiator).map_err(|e| e.about(subject.clone()))?;
        self.inner
            .mutate(
                &sub,
                Mutation::RememberInitiatorSharedSecret {
                    iscsi_name: name,
                    initiator: initiator.to_string(),
                    secret: secret.filter(|s| !s.is_empty()).cloned(),
                },
            )
            .await
            .map_err(|e| e.about_if_unset(subject))?;
        Ok(())
    }

    /// `IVdsIscsiTarget::SetFriendlyName`: an empty name clears the alias; `E_INVALIDARG` for a name
    /// over 255 bytes or with a NUL.
    pub async fn set_friendly_name(&self, friendly_name: &str) -> Result<(), Error> {
        let (sub, name, subject) =
            self.lookup(|s, t| (s.clone(), t.prop.iscsi_name.clone(), Target::subject(s, t)))?;
        check_friendly_name(friendly_name).map_err(|e| e.about(subject.clone()))?;
        self.inner
            .mutate(
                &sub,
                Mutation::SetTargetFriendlyName {
                    iscsi_name: name,
                    friendly_name: friendly_name.to_string(),
                },
            )
            .await
            .map_err(|e| e.about_if_unset(subject))?;
        Ok(())
    }
}

impl PortalGroup {
    fn lookup<R>(
        &self,
        f: impl FnOnce(&Arc<SubState>, &crate::state::GroupEntry) -> R,
    ) -> Result<R, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let entry = sub
            .groups
            .get(&self.id)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        Ok(f(&sub, entry))
    }

    fn subject(sub: &SubState, g: &crate::state::GroupEntry) -> Subject {
        Subject::PortalGroup {
            subsystem: sub.snapshot.key.clone(),
            target: sub
                .targets
                .get(&g.target)
                .map(|t| t.prop.iscsi_name.clone())
                .unwrap_or_default(),
            tag: g.prop.tag,
        }
    }

    /// `IVdsIscsiPortalGroup::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiPortalGroupProp, Error> {
        self.lookup(|_, g| g.prop)
    }

    /// `IVdsIscsiPortalGroup::GetTarget`.
    pub fn get_target(&self) -> Result<Target, Error> {
        self.lookup(|_, g| Target {
            inner: self.inner.clone(),
            subsystem: self.subsystem,
            id: g.target,
        })
    }

    /// `IVdsIscsiPortalGroup::QueryAssociatedPortals`: the group's portals; empty when none.
    pub fn query_associated_portals(&self) -> Result<EnumVdsObject<Portal>, Error> {
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
    fn membership(&self, portal: ObjectId) -> Result<Membership, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let group = sub
            .groups
            .get(&self.id)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        let subject = PortalGroup::subject(&sub, group);
        let target = sub
            .targets
            .get(&group.target)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        let entry = sub.portals.get(&portal).ok_or_else(|| {
            err(Hresult::VDS_E_OBJECT_NOT_FOUND, subject.clone())
                .because(format!("the subsystem has no portal {portal}"))
        })?;
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
            subject,
            sub,
        })
    }

    /// `IVdsIscsiPortalGroup::AddPortal`. `VDS_E_OBJECT_NOT_FOUND` when no portal of this subsystem
    /// has that id; `VDS_E_OBJECT_EXISTS` when the portal is already in another group of the same
    /// target (a portal is in at most one group per target); adding a portal already in this group
    /// succeeds and changes nothing.
    pub async fn add_portal(&self, portal: ObjectId) -> Result<(), Error> {
        let m = self.membership(portal)?;
        if m.in_this_group {
            return Ok(());
        }
        if m.in_other_group_of_target {
            return Err(
                err(Hresult::VDS_E_OBJECT_EXISTS, m.subject).because(format!(
                    "portal {} is already in another portal group of the target (a portal is in at \
                 most one group per target)",
                    m.address
                )),
            );
        }
        let mutation = Mutation::AddPortal {
            iscsi_name: m.iscsi_name,
            tag: m.tag,
            portal: m.address,
        };
        self.inner
            .mutate(&m.sub, mutation)
            .await
            .map_err(|e| e.about_if_unset(m.subject))?;
        Ok(())
    }

    /// `IVdsIscsiPortalGroup::RemovePortal`. `VDS_E_OBJECT_NOT_FOUND` when no portal of this subsystem
    /// has that id, or it is not in this group.
    pub async fn remove_portal(&self, portal: ObjectId) -> Result<(), Error> {
        let m = self.membership(portal)?;
        if !m.in_this_group {
            return Err(err(Hresult::VDS_E_OBJECT_NOT_FOUND, m.subject)
                .because(format!("portal {} is not in this group", m.address)));
        }
        let mutation = Mutation::RemovePortal {
            iscsi_name: m.iscsi_name,
            tag: m.tag,
            portal: m.address,
        };
        self.inner
            .mutate(&m.sub, mutation)
            .await
            .map_err(|e| e.about_if_unset(m.subject))?;
        Ok(())
    }

    /// `IVdsIscsiPortalGroup::Delete`: `VDS_E_ASSOCIATED_PORTALS_EXIST` while the group has portals.
    pub async fn delete(&self) -> Result<(), Error> {
        let (sub, target, tag, members, subject) = self.lookup(|s, g| {
            let target = s.targets.get(&g.target).map(|t| t.prop.iscsi_name.clone());
            (
                s.clone(),
                target,
                g.prop.tag,
                g.portals.len(),
                PortalGroup::subject(s, g),
            )
        })?;
        let target = target.ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        if members > 0 {
            return Err(err(Hresult::VDS_E_ASSOCIATED_PORTALS_EXIST, subject)
                .because(format!("it has {members} portal(s); remove them first")));
        }
        self.inner
            .mutate(
                &sub,
                Mutation::DeletePortalGroup {
                    iscsi_name: target,
                    tag,
                },
            )
            .await
            .map_err(|e| e.about_if_unset(subject))?;
        Ok(())
    }
}
