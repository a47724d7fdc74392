//! The provider seam: what a real array (or the simulator) supplies to the model.
//!
//! A backend answers three questions, and never touches the model's cache itself:
//! - [`ProviderBackend::reenumerate`]: which subsystems exist now, with everything known about each;
//! - [`ProviderBackend::refresh`]: the current picture of one subsystem the model already knows
//!   (and, for a backend that can answer without the previous picture,
//!   [`ProviderBackend::refresh_without_previous`]);
//! - [`ProviderBackend::apply`]: change the array (portal status, targets, portal groups) and say what
//!   the subsystem looks like afterwards.
//!
//! Backends describe objects by their natural keys ([`SubSystemSnapshot`] and its children); the model
//! derives the stable [`ObjectId`](crate::ObjectId)s, checks the invariants, keeps the cache, gates
//! concurrent calls and emits notifications. A new provider (SendTargets, tgt, iSNS, LIO) is a new
//! implementation of this trait and needs no change to the model.

use vds_secret::Secret;

use crate::{
    Error, Health, Hresult, HwProviderType, IscsiPortalStatus, SubSystemFlags, SubSystemStatus,
    VdsIpAddress,
};

/// What a backend says about itself (`VDS_PROVIDER_PROP` less the id, which the model derives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The provider's name; its id is derived from it.
    pub name: String,
    /// Its version string.
    pub version: String,
    /// `IVdsHwProviderType::GetProviderType`.
    pub hw_type: HwProviderType,
}

/// Everything a backend knows about one subsystem, by natural keys.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubSystemSnapshot {
    /// The subsystem's natural key, unique within the provider (for example its configured name).
    pub key: String,
    /// `pwszFriendlyName`.
    pub friendly_name: String,
    /// `pwszIdentification`.
    pub identification: String,
    /// `ulFlags`.
    pub flags: SubSystemFlags,
    /// `ulStripeSizeFlags`.
    pub stripe_size_flags: u32,
    /// `status`.
    pub status: SubSystemStatus,
    /// `health`.
    pub health: Health,
    /// Why the status is what it is, for people (for example the last discovery error); not part of
    /// `VDS_SUB_SYSTEM_PROP`.
    #[serde(default)]
    pub detail: Option<String>,
    /// The portals, in enumeration order; no address twice.
    pub portals: Vec<PortalSnapshot>,
    /// The targets, in enumeration order; no iSCSI name twice.
    pub targets: Vec<TargetSnapshot>,
}

impl SubSystemSnapshot {
    /// An empty subsystem with the given key and status: no portals, no targets.
    pub fn new(key: impl Into<String>, status: SubSystemStatus) -> SubSystemSnapshot {
        let key = key.into();
        SubSystemSnapshot {
            friendly_name: key.clone(),
            key,
            identification: String::new(),
            flags: SubSystemFlags::default(),
            stripe_size_flags: 0,
            status,
            health: Health::Unknown,
            detail: None,
            portals: Vec::new(),
            targets: Vec::new(),
        }
    }
}

/// One portal: its address and status.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortalSnapshot {
    /// Address and port; the natural key of the portal.
    pub address: VdsIpAddress,
    /// Its status.
    pub status: IscsiPortalStatus,
}

/// One target and its portal groups.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetSnapshot {
    /// The iSCSI name; the natural key of the target.
    pub iscsi_name: String,
    /// The alias (empty when none).
    pub friendly_name: String,
    /// True when login needs CHAP.
    pub chap_enabled: bool,
    /// How many LUNs are associated (a target with LUNs cannot be deleted).
    pub lun_count: u32,
    /// Its portal groups; no tag twice.
    pub portal_groups: Vec<PortalGroupSnapshot>,
    /// The iSCSI names of the initiators logged in to it (`GetConnectedInitiators`), each once, in
    /// the provider's order. Not a property: a change raises no notification.
    #[serde(default)]
    pub connected_initiators: Vec<String>,
}

/// One portal group of a target.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortalGroupSnapshot {
    /// The target portal group tag; the natural key of the group within its target.
    pub tag: u16,
    /// The addresses of its portals; each must be a portal of the subsystem, and a portal is in at
    /// most one group of a target.
    pub portals: Vec<VdsIpAddress>,
}

/// A change a caller asks of the array. `Debug` never shows a secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Mutation {
    /// `IVdsIscsiPortal::SetStatus` (only `Online` or `Offline` reach the backend).
    SetPortalStatus {
        /// The portal.
        portal: VdsIpAddress,
        /// The new status.
        status: IscsiPortalStatus,
    },
    /// `IVdsSubSystemIscsi::CreateTarget`. `None` asks the backend to generate a name.
    CreateTarget {
        /// The iSCSI name, or `None` to have one generated.
        iscsi_name: Option<String>,
        /// The alias.
        friendly_name: String,
    },
    /// `IVdsIscsiTarget::Delete` (the target has no LUNs; its groups go with it).
    DeleteTarget {
        /// The target.
        iscsi_name: String,
    },
    /// `IVdsIscsiTarget::SetFriendlyName` (empty clears it).
    SetTargetFriendlyName {
        /// The target.
        iscsi_name: String,
        /// The new alias.
        friendly_name: String,
    },
    /// `IVdsIscsiTarget::CreatePortalGroup`.
    CreatePortalGroup {
        /// The target.
        iscsi_name: String,
    },
    /// `IVdsIscsiPortalGroup::Delete` (the group is empty).
    DeletePortalGroup {
        /// The target.
        iscsi_name: String,
        /// The group.
        tag: u16,
    },
    /// `IVdsIscsiPortalGroup::AddPortal`.
    AddPortal {
        /// The target.
        iscsi_name: String,
        /// The group.
        tag: u16,
        /// The portal.
        portal: VdsIpAddress,
    },
    /// `IVdsIscsiPortalGroup::RemovePortal`.
    RemovePortal {
        /// The target.
        iscsi_name: String,
        /// The group.
        tag: u16,
        /// The portal.
        portal: VdsIpAddress,
    },
    /// `IVdsIscsiTarget::SetSharedSecret`: the secret initiators prove they know when they log in
    /// (one-way CHAP, the target authenticating the initiator).
    SetTargetSharedSecret {
        /// The target.
        iscsi_name: String,
        /// The secret; `None` clears it (VDS: a NULL secret of size 0).
        secret: Option<Secret>,
        /// `None`: the target's default secret, for every initiator; else the secret of that
        /// initiator alone.
        initiator: Option<String>,
    },
    /// `IVdsIscsiTarget::RememberInitiatorSharedSecret`: the secret with which the target proves
    /// itself to an initiator that asks (mutual CHAP).
    RememberInitiatorSharedSecret {
        /// The target.
        iscsi_name: String,
        /// The initiator whose secret it is.
        initiator: String,
        /// The secret; `None` forgets it.
        secret: Option<Secret>,
    },
}

/// What the backend made, when a mutation creates an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// A target, by iSCSI name.
    Target(String),
    /// A portal group of a target, by tag.
    PortalGroup {
        /// The target.
        iscsi_name: String,
        /// The group's tag.
        tag: u16,
    },
}

/// The outcome of [`ProviderBackend::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The whole subsystem as it is after the change (or after the attempt, with `failure`).
    pub snapshot: SubSystemSnapshot,
    /// The object the mutation made (or, for `VDS_S_ALREADY_EXISTS`, the existing one returned).
    pub created: Option<Created>,
    /// `S_OK`, or a success-with-information code such as `VDS_S_ALREADY_EXISTS`.
    pub outcome: Hresult,
    /// The change failed, but the backend knows what the subsystem looks like now (a portal the
    /// array could not bring up is `FAILED`; a target that vanished meanwhile is gone): the model
    /// commits `snapshot` and answers this error. `None` for a change that was made.
    pub failure: Option<Error>,
}

impl Applied {
    /// A change that was made (`S_OK`), with the subsystem afterwards and what it created.
    pub fn done(snapshot: SubSystemSnapshot, created: Option<Created>) -> Applied {
        Applied {
            snapshot,
            created,
            outcome: Hresult::S_OK,
            failure: None,
        }
    }

    /// A change that failed with `error`, the subsystem being `snapshot` now (see
    /// [`Applied::failure`]).
    pub fn failed(snapshot: SubSystemSnapshot, error: Error) -> Applied {
        Applied {
            snapshot,
            created: None,
            outcome: error.code(),
            failure: Some(error),
        }
    }
}

/// What [`ProviderBackend::refresh_without_previous`] found: the subsystem's current picture, or
/// the array's answer still waiting for the previous picture to become one.
pub enum Fresh {
    /// The current picture; the previous one has no part in it.
    Picture(SubSystemSnapshot),
    /// The answer needs the previous picture (a subsystem whose array did not answer keeps its
    /// previous objects, say): the step that makes the picture from it, with no I/O.
    NeedsPrevious(Box<dyn FnOnce(&SubSystemSnapshot) -> SubSystemSnapshot + Send>),
}

impl Fresh {
    /// The picture, made from `previous` when it needs it (`previous` is only called then).
    pub fn finish(self, previous: impl FnOnce() -> SubSystemSnapshot) -> SubSystemSnapshot {
        match self {
            Fresh::Picture(p) => p,
            Fresh::NeedsPrevious(make) => make(&previous()),
        }
    }
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fresh::Picture(p) => f.debug_tuple("Picture").field(p).finish(),
            Fresh::NeedsPrevious(_) => f.write_str("NeedsPrevious"),
        }
    }
}

/// The refusal of `IVdsIscsiTarget::Delete` for a target `initiators` are logged in to:
/// `VDS_E_DEVICE_IN_USE`, naming them. Every backend answers it from what the array says at the
/// time of the delete; none deletes a target in use by force.
pub fn target_in_use<S: AsRef<str>>(initiators: &[S]) -> Error {
    let names: Vec<&str> = initiators.iter().map(AsRef::as_ref).collect();
    Error::new(Hresult::VDS_E_DEVICE_IN_USE).because(format!(
        "initiators are logged in to it ({}); they must log out first, as a target in use is \
         never deleted by force",
        names.join(", ")
    ))
}

/// The seam through which an array plugs into the model. See the module documentation.
///
/// Every method is asynchronous and runs on the caller's runtime (the service's): a backend owns no
/// runtime and never blocks a thread on the network. The model never holds a lock that queries
/// need while awaiting one, so queries keep answering from the cache.
#[async_trait::async_trait]
pub trait ProviderBackend: Send + Sync + 'static {
    /// Name, version and type of the provider.
    fn info(&self) -> ProviderInfo;

    /// `IVdsHwProvider::Reenumerate`: every subsystem that exists now, fully described. `previous` is
    /// what the model knew (empty when its cache is being rebuilt). Subsystems missing from the
    /// answer depart; new ones arrive. A subsystem the backend cannot reach or use is reported with
    /// an `Offline` or `Failed` status and a detail, not as an error of the whole call.
    ///
    /// Returning an error with `VDS_E_PROVIDER_CACHE_CORRUPT` tells the model its cache cannot be
    /// trusted.
    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error>;

    /// `IVdsHwProvider::Refresh`, for one subsystem: its current picture, with the same key. A
    /// backend that cannot reach the subsystem reports it with an `Offline` or `Failed` status and a
    /// detail rather than failing. The model refreshes subsystems independently (and concurrently),
    /// each under its own gate.
    ///
    /// Returning an error with `VDS_E_PROVIDER_CACHE_CORRUPT` tells the model its cache cannot be
    /// trusted; any other error leaves the subsystem's cached picture as it was.
    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error>;

    /// [`refresh`](Self::refresh) of subsystem `key` without its previous picture, for a backend
    /// whose answer does not need it (most of the time): a caller that keeps pictures elsewhere
    /// (a cache on disk) then reads the previous one only when the answer asks for it, or when
    /// the picture changed. The contract is `refresh`'s: `fresh.finish(|| previous)` is what
    /// `refresh(previous)` would have answered, errors included. `None` (the default): the
    /// backend cannot; the caller calls `refresh`.
    async fn refresh_without_previous(&self, key: &str) -> Option<Result<Fresh, Error>> {
        let _ = key;
        None
    }

    /// Changes the array. The default answers `VDS_E_NOT_SUPPORTED`, for discovery-only providers.
    /// An error leaves the cached picture as it was; an [`Applied`] with a `failure` commits its
    /// snapshot and then answers the failure.
    async fn apply(
        &self,
        subsystem: &SubSystemSnapshot,
        mutation: &Mutation,
    ) -> Result<Applied, Error> {
        let _ = (subsystem, mutation);
        Err(Error::new(Hresult::VDS_E_NOT_SUPPORTED))
    }
}
