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
use crate::state::{PictureStamp, SubState};
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
    /// Where the object was in its subsystem's picture when the handle was made: where a lookup
    /// looks first (see `SubState`).
    at: usize,
}
handle_common!(Portal);

/// An iSCSI target (`IVdsIscsiTarget`).
#[derive(Clone)]
pub struct Target {
    inner: Arc<Inner>,
    subsystem: ObjectId,
    id: ObjectId,
    /// Where the object was in its subsystem's picture when the handle was made: where a lookup
    /// looks first (see `SubState`).
    at: usize,
}
handle_common!(Target);

/// An iSCSI portal group (`IVdsIscsiPortalGroup`).
#[derive(Clone)]
pub struct PortalGroup {
    inner: Arc<Inner>,
    subsystem: ObjectId,
    id: ObjectId,
    /// Where the object was in its subsystem's picture when the handle was made: where a lookup
    /// looks first (see `SubState`).
    at: usize,
}
handle_common!(PortalGroup);

fn sub_subject(sub: &SubState) -> Subject {
    Subject::Subsystem(sub.key().to_string())
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

    fn portal(&self, id: ObjectId, at: usize) -> Portal {
        Portal {
            inner: self.inner.clone(),
            subsystem: self.id,
            id,
            at,
        }
    }

    fn target(&self, id: ObjectId, at: usize) -> Target {
        Target {
            inner: self.inner.clone(),
            subsystem: self.id,
            id,
            at,
        }
    }

    /// The subsystem's natural key (for example its configured name).
    pub fn key(&self) -> Result<String, Error> {
        Ok(self.state()?.key().to_string())
    }

    /// Why the subsystem's status is what it is, as the backend recorded it (not part of
    /// `VDS_SUB_SYSTEM_PROP`).
    pub fn detail(&self) -> Result<Option<String>, Error> {
        Ok(self.state()?.detail().cloned())
    }

    /// `IVdsSubSystem::GetProperties`.
    pub fn get_properties(&self) -> Result<SubSystemProp, Error> {
        Ok(self.state()?.prop().clone())
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
        Ok(EnumVdsObject::lazy(
            sub.portal_order.clone(),
            move |at, id| Portal {
                inner: inner.clone(),
                subsystem,
                id,
                at,
            },
        ))
    }

    /// The stamp of the picture [`query_portals`](Self::query_portals) and
    /// [`query_targets`](Self::query_targets) read now, with their errors: while it stays the
    /// same, so do their answers and every property of the objects they enumerate.
    pub fn picture_stamp(&self) -> Result<PictureStamp, Error> {
        Ok(self.state_for_query()?.stamp())
    }

    /// `QueryPortals`, then `GetProperties` of each portal, all read from one picture (whose stamp
    /// comes with them): the same errors as [`query_portals`](Self::query_portals), and never a
    /// portal of a later picture beside one of an earlier.
    pub fn portal_properties(&self) -> Result<(PictureStamp, Vec<IscsiPortalProp>), Error> {
        let sub = self.state_for_query()?;
        let props = (0..sub.portal_order.len())
            .map(|p| sub.portal_prop(p))
            .collect();
        Ok((sub.stamp(), props))
    }

    /// `IVdsSubSystemIscsi::QueryTargets`: like [`query_portals`](Self::query_portals), for targets.
    pub fn query_targets(&self) -> Result<EnumVdsObject<Target>, Error> {
        let sub = self.state_for_query()?;
        let (inner, subsystem) = (self.inner.clone(), self.id);
        Ok(EnumVdsObject::lazy(
            sub.target_order.clone(),
            move |at, id| Target {
                inner: inner.clone(),
                subsystem,
                id,
                at,
            },
        ))
    }

    /// The portal of this subsystem with the given address, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_by_address(&self, address: &VdsIpAddress) -> Result<Portal, Error> {
        let sub = self.state()?;
        let id = self.id.child("portal", &address.canonical_key());
        if let Some(at) = sub.portal_index(id, 0) {
            Ok(self.portal(id, at))
        } else {
            Err(err(
                Hresult::VDS_E_OBJECT_NOT_FOUND,
                Subject::Portal {
                    subsystem: sub.key().to_string(),
                    portal: address.to_string(),
                },
            ))
        }
    }

    /// The portal of this subsystem with the given id, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_by_id(&self, id: ObjectId) -> Result<Portal, Error> {
        let sub = self.state()?;
        if let Some(at) = sub.portal_index(id, 0) {
            Ok(self.portal(id, at))
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
        if let Some(at) = sub.target_index(id, 0) {
            return Ok(self.target(id, at));
        }
        match sub.target_named(iscsi_name) {
            Some(at) => Ok(self.target(sub.target_order[at], at)),
            None => Err(err(
                Hresult::VDS_E_OBJECT_NOT_FOUND,
                Subject::Target {
                    subsystem: sub.key().to_string(),
                    target: iscsi_name.to_string(),
                },
            )),
        }
    }

    /// The target of this subsystem with the given id, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn target_by_id(&self, id: ObjectId) -> Result<Target, Error> {
        let sub = self.state()?;
        if let Some(at) = sub.target_index(id, 0) {
            Ok(self.target(id, at))
        } else {
            Err(err(Hresult::VDS_E_OBJECT_NOT_FOUND, sub_subject(&sub))
                .because(format!("it has no target {id}")))
        }
    }

    /// The portal group of this subsystem with the given id, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_group_by_id(&self, id: ObjectId) -> Result<PortalGroup, Error> {
        let sub = self.state()?;
        if let Some(at) = sub.group_index(id, 0) {
            Ok(PortalGroup {
                inner: self.inner.clone(),
                subsystem: self.id,
                id,
                at,
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
            .prop()
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
                .map(|s| s.key().to_string());
            if let Some(owner) = taken {
                return Err(err(
                    Hresult::VDS_E_NAME_NOT_UNIQUE,
                    Subject::Target {
                        subsystem: sub.key().to_string(),
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
        let Some(at) = new_sub.target_index(id, 0) else {
            return Err(bad());
        };
        Ok(self.target(id, at))
    }

    /// `IVdsSubSystemIscsi::SetIpsecGroupPresharedKey`: reserved; always `VDS_E_NOT_SUPPORTED` (after
    /// the common checks).
    pub fn set_ipsec_group_preshared_key(&self, _key: &[u8]) -> Result<(), Error> {
        let sub = self.state()?;
        Err(err(Hresult::VDS_E_NOT_SUPPORTED, sub_subject(&sub)))
    }
}

fn check_not_failed(sub: &SubState) -> Result<(), Error> {
    if sub.prop().status == SubSystemStatus::Failed {
        let mut e = err(Hresult::VDS_E_OBJECT_STATUS_FAILED, sub_subject(sub));
        if let Some(detail) = sub.detail() {
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
    /// Runs `f` on the portal's subsystem and its position there.
    fn lookup<R>(&self, f: impl FnOnce(&Arc<SubState>, usize) -> R) -> Result<R, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let p = sub
            .portal_index(self.id, self.at)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        Ok(f(&sub, p))
    }

    fn subject(sub: &SubState, p: usize) -> Subject {
        Subject::Portal {
            subsystem: sub.key().to_string(),
            portal: sub.portal_address(p).to_string(),
        }
    }

    /// `IVdsIscsiPortal::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiPortalProp, Error> {
        self.lookup(|sub, p| sub.portal_prop(p))
    }

    /// `IVdsIscsiPortal::GetSubSystem`.
    pub fn get_sub_system(&self) -> Result<SubSystem, Error> {
        self.lookup(|_, _| SubSystem::new(self.inner.clone(), self.subsystem))
    }

    /// `IVdsIscsiPortal::QueryAssociatedPortalGroups`: the groups, across all targets, that hold this
    /// portal; empty when none.
    pub fn query_associated_portal_groups(&self) -> Result<EnumVdsObject<PortalGroup>, Error> {
        self.lookup(|sub, p| {
            EnumVdsObject::new(
                sub.portal_groups(p)
                    .into_iter()
                    .map(|g| PortalGroup {
                        inner: self.inner.clone(),
                        subsystem: self.subsystem,
                        id: sub.group_id(g),
                        at: g,
                    })
                    .collect(),
            )
        })
    }

    /// `IVdsIscsiPortal::SetStatus`: only `Online` and `Offline` are accepted; any other value, or a
    /// provider that cannot change portal status, answers `VDS_E_NOT_SUPPORTED`. On success the next
    /// `get_properties` shows the new status and sinks receive `VDS_NF_PORTAL_MODIFY`.
    pub async fn set_status(&self, status: IscsiPortalStatus) -> Result<(), Error> {
        let (sub, address, subject) = self.lookup(|sub, p| {
            let address = sub.portal_address(p).clone();
            (sub.clone(), address, Portal::subject(sub, p))
        })?;
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
    /// Runs `f` on the target's subsystem and its position there.
    fn lookup<R>(&self, f: impl FnOnce(&Arc<SubState>, usize) -> R) -> Result<R, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let t = sub
            .target_index(self.id, self.at)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        Ok(f(&sub, t))
    }

    fn subject(sub: &SubState, t: usize) -> Subject {
        Subject::Target {
            subsystem: sub.key().to_string(),
            target: sub.target_name(t).to_string(),
        }
    }

    fn group(&self, sub: &SubState, g: usize) -> PortalGroup {
        PortalGroup {
            inner: self.inner.clone(),
            subsystem: self.subsystem,
            id: sub.group_id(g),
            at: g,
        }
    }

    /// `IVdsIscsiTarget::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiTargetProp, Error> {
        self.lookup(|sub, t| sub.target_prop(t))
    }

    /// How many LUNs are associated with the target (not part of `VDS_ISCSI_TARGET_PROP`).
    pub fn lun_count(&self) -> Result<u32, Error> {
        self.lookup(|sub, t| sub.lun_count(t))
    }

    /// `IVdsIscsiTarget::GetSubSystem`.
    pub fn get_sub_system(&self) -> Result<SubSystem, Error> {
        self.lookup(|_, _| SubSystem::new(self.inner.clone(), self.subsystem))
    }

    /// `IVdsIscsiTarget::QueryPortalGroups`: the target's groups; empty when none.
    pub fn query_portal_groups(&self) -> Result<EnumVdsObject<PortalGroup>, Error> {
        self.lookup(|sub, t| {
            EnumVdsObject::new(sub.target_groups(t).map(|g| self.group(sub, g)).collect())
        })
    }

    /// The target's group with the given tag, if any (`VDS_E_OBJECT_NOT_FOUND`).
    pub fn portal_group_by_tag(&self, tag: u16) -> Result<PortalGroup, Error> {
        // A group's id derives from its target's and its tag, so the tag alone finds it.
        self.lookup(
            |sub, t| match sub.target_groups(t).find(|&g| sub.group_tag(g) == tag) {
                Some(g) => Ok(self.group(sub, g)),
                None => Err(err(
                    Hresult::VDS_E_OBJECT_NOT_FOUND,
                    Subject::PortalGroup {
                        subsystem: sub.key().to_string(),
                        target: sub.target_name(t).to_string(),
                        tag,
                    },
                )),
            },
        )?
    }

    /// `IVdsIscsiTarget::CreatePortalGroup`: the new group and `S_OK`; or, when the target can have no
    /// more groups, an existing group and `VDS_S_ALREADY_EXISTS` (a success code).
    pub async fn create_portal_group(&self) -> Result<(PortalGroup, Hresult), Error> {
        let (sub, name, subject) = self.lookup(|s, t| {
            (
                s.clone(),
                s.target_name(t).to_string(),
                Target::subject(s, t),
            )
        })?;
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
        let Some(g) = new_sub.group_index(id, 0) else {
            return Err(bad());
        };
        Ok((self.group(&new_sub, g), applied.outcome))
    }

    /// `IVdsIscsiTarget::GetConnectedInitiators`: the iSCSI names of the initiators logged in to
    /// the target, as the last refresh found them; empty when none.
    pub fn get_connected_initiators(&self) -> Result<Vec<String>, Error> {
        self.lookup(|sub, t| sub.connected_initiators(t))
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
                s.target_name(t).to_string(),
                s.lun_count(t),
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
        let (sub, name, subject) = self.lookup(|s, t| {
            (
                s.clone(),
                s.target_name(t).to_string(),
                Target::subject(s, t),
            )
        })?;
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
        let (sub, name, subject) = self.lookup(|s, t| {
            (
                s.clone(),
                s.target_name(t).to_string(),
                Target::subject(s, t),
            )
        })?;
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
        let (sub, name, subject) = self.lookup(|s, t| {
            (
                s.clone(),
                s.target_name(t).to_string(),
                Target::subject(s, t),
            )
        })?;
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
    /// Runs `f` on the group's subsystem and its position there.
    fn lookup<R>(&self, f: impl FnOnce(&Arc<SubState>, usize) -> R) -> Result<R, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let g = sub
            .group_index(self.id, self.at)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        Ok(f(&sub, g))
    }

    fn subject(sub: &SubState, g: usize) -> Subject {
        Subject::PortalGroup {
            subsystem: sub.key().to_string(),
            target: sub.target_name(sub.group_target(g)).to_string(),
            tag: sub.group_tag(g),
        }
    }

    /// `IVdsIscsiPortalGroup::GetProperties`.
    pub fn get_properties(&self) -> Result<IscsiPortalGroupProp, Error> {
        self.lookup(|sub, g| sub.group_prop(g))
    }

    /// `IVdsIscsiPortalGroup::GetTarget`.
    pub fn get_target(&self) -> Result<Target, Error> {
        self.lookup(|sub, g| {
            let t = sub.group_target(g);
            Target {
                inner: self.inner.clone(),
                subsystem: self.subsystem,
                id: sub.target_order[t],
                at: t,
            }
        })
    }

    /// `IVdsIscsiPortalGroup::QueryAssociatedPortals`: the group's portals; empty when none.
    pub fn query_associated_portals(&self) -> Result<EnumVdsObject<Portal>, Error> {
        self.lookup(|sub, g| {
            EnumVdsObject::new(
                sub.group_members(g)
                    .iter()
                    .map(|&p| Portal {
                        inner: self.inner.clone(),
                        subsystem: self.subsystem,
                        id: sub.portal_order[p as usize],
                        at: p as usize,
                    })
                    .collect(),
            )
        })
    }

    /// What a membership change needs to know about `portal` and this group.
    fn membership(&self, portal: ObjectId) -> Result<Membership, Error> {
        let sub = self.inner.subsystem(self.subsystem)?;
        let g = sub
            .group_index(self.id, self.at)
            .ok_or_else(|| Error::new(Hresult::VDS_E_OBJECT_DELETED))?;
        let subject = PortalGroup::subject(&sub, g);
        let t = sub.group_target(g);
        let p = sub.portal_index(portal, 0).ok_or_else(|| {
            err(Hresult::VDS_E_OBJECT_NOT_FOUND, subject.clone())
                .because(format!("the subsystem has no portal {portal}"))
        })?;
        let p32 = p as u32;
        let in_other_group_of_target = sub
            .target_groups(t)
            .any(|other| other != g && sub.group_members(other).contains(&p32));
        Ok(Membership {
            iscsi_name: sub.target_name(t).to_string(),
            tag: sub.group_tag(g),
            address: sub.portal_address(p).clone(),
            in_this_group: sub.group_members(g).contains(&p32),
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
            (
                s.clone(),
                s.target_name(s.group_target(g)).to_string(),
                s.group_tag(g),
                s.group_members(g).len(),
                PortalGroup::subject(s, g),
            )
        })?;
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
