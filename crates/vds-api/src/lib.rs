//! The JSON documents of vds: every command's output and error, as `vdsadm --json` prints them and
//! as `vdsd` serves them, defined once so the two cannot drift apart.
//!
//! The shapes are a documented contract (`docs/CLI.md`): a field is added, never renamed or
//! removed. Labels are the upper-case ones of the model (`ONLINE`, `IPV4`, …); ids are
//! `VDS_OBJECT_ID`s in lower-case hyphenated form; addresses never have brackets (the port is its own
//! number). This crate formats nothing for terminals and asks the model nothing; the service
//! (`vds-service`) builds these documents, the front ends print or serve them.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use vds_model::{Error, Notification};

mod daemon;

pub use daemon::*;

/// One row of `list subsystems`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubsystemRow {
    /// Position in QuerySubSystems order (configured-but-not-enumerated ones follow).
    pub index: usize,
    /// The subsystem's name (its key).
    pub name: String,
    /// The provider it belongs to.
    pub provider: String,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssociatedGroup {
    /// The group's id.
    pub id: String,
    /// Its tag.
    pub tag: u16,
    /// The iSCSI name of the group's target.
    pub target: String,
}

/// `detail tportal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetDetail {
    /// The subsystem's name.
    pub subsystem: String,
    /// The target's properties.
    #[serde(flatten)]
    pub target: TargetRow,
    /// QueryPortalGroups, each with its portals.
    pub groups: Vec<GroupRow>,
    /// GetConnectedInitiators: the iSCSI names of the initiators logged in, as the last refresh
    /// found them.
    #[serde(default)]
    pub connected_initiators: Vec<String>,
}

/// A CHAP user in `detail subsystem`: the secret only as "set".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChapView {
    /// The user name.
    pub user: String,
    /// True when a secret is stored. The secret itself is never shown.
    pub secret_set: bool,
}

/// The configuration part of `detail subsystem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheView {
    /// `GOOD`, `CORRUPT` or `REBUILT`.
    pub health: String,
    /// When the cache was last saved by a refresh or reenumerate (RFC 3339, UTC), or null.
    pub refreshed_at: Option<String>,
}

/// `detail subsystem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshedSubsystem {
    /// Name.
    pub name: String,
    /// The provider it belongs to.
    pub provider: String,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The notifications the operation raised (their number is `notifications`).
    #[serde(default)]
    pub events: Vec<NotificationDoc>,
    /// The subsystems the operation could not refresh (busy, a provider error), with why; empty
    /// when everything was done.
    #[serde(default)]
    pub failures: Vec<SubsystemFailure>,
}

/// A subsystem an operation could not do, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubsystemFailure {
    /// The provider.
    pub provider: String,
    /// The subsystem.
    pub subsystem: String,
    /// Why, as an error document's body.
    pub error: ErrorBody,
}

/// `subsystem add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoveReport {
    /// Name.
    pub name: String,
    /// Always true (a failure is an error instead).
    pub removed: bool,
}

/// One address of a discovered target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveredAddress {
    /// Address without brackets (or a host name, as the target sent it).
    pub address: String,
    /// Port.
    pub port: u16,
    /// The target portal group tag, or null when the target sent none.
    pub tag: Option<u16>,
}

/// One target found by `discover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveredTarget {
    /// The iSCSI name.
    pub name: String,
    /// Its addresses in the order the target sent them.
    pub addresses: Vec<DiscoveredAddress>,
}

/// One row of `list providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderRow {
    /// Position in QueryProviders order (the configuration's order).
    pub index: usize,
    /// The provider's name.
    pub name: String,
    /// `VDS_OBJECT_ID` of the provider (derived from its name).
    pub id: String,
    /// Its kind (`sendtargets`, `sim`, …).
    pub kind: String,
    /// True when the kind changes arrays (portal status, targets, portal groups).
    pub manages_arrays: bool,
    /// The kind's settings as configured, each as `key = value` text (no secret is ever a setting).
    pub settings: Vec<String>,
    /// How many subsystems its cache holds.
    pub subsystems: usize,
    /// The cache health of the provider: `GOOD`, `CORRUPT` or `REBUILT`.
    pub cache_health: String,
}

/// `provider add`, `provider remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderReport {
    /// The provider's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// `added` or `removed`.
    pub action: String,
    /// The subsystems the provider has now (after the reenumerate that follows an add), or the
    /// subsystems dropped with it.
    pub subsystems: Vec<RefreshedSubsystem>,
    /// What could not be undone outside the store when it was removed (an iSNS Control node left
    /// registered in its server, and why); absent when there is nothing to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything about one enumerated subsystem, read in one pass: its row, its portals (QueryPortals
/// order) and its targets with their portal groups (QueryTargets order). The whole-fleet readers
/// (the Redfish view) use it. A failed subsystem has its row and no portals or targets, since
/// VDS does not enumerate inside one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsystemInventory {
    /// The subsystem's row (its `id` is always set).
    pub row: SubsystemRow,
    /// Its portals.
    pub portals: Vec<PortalRow>,
    /// Its targets, each with its groups.
    pub targets: Vec<TargetDetail>,
}

/// One notification (`VDS_NOTIFICATION`), with the provider that raised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationDoc {
    /// The provider's name.
    pub provider: String,
    /// `objectType` (`VDS_NTT_*`): 30 subsystem, 36 portal, 37 target, 38 portal group.
    pub object_type: i32,
    /// The event (`VDS_NF_*`): 123 `PORTAL_ARRIVE`, 124 `PORTAL_DEPART`, 125 `PORTAL_MODIFY`, ….
    pub event: u32,
    /// The event's name: `PORTAL_MODIFY`, `TARGET_ARRIVE`, ….
    pub event_name: String,
    /// The id of the object.
    pub id: String,
    /// The id of its subsystem.
    pub subsystem: String,
}

impl NotificationDoc {
    /// The document for `n`, raised by `provider`.
    pub fn new(provider: &str, n: &Notification) -> NotificationDoc {
        NotificationDoc {
            provider: provider.to_string(),
            object_type: n.object_type.0,
            event: n.event.0,
            event_name: n.event.name(),
            id: n.id.to_string(),
            subsystem: n.subsystem.to_string(),
        }
    }
}

/// An object a mutation made or returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectRef {
    /// `target` or `portal_group`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Its iSCSI name (targets), or the iSCSI name of its target (portal groups).
    pub iscsi_name: String,
    /// Its tag (portal groups), else null.
    pub tag: Option<u16>,
}

/// Every change verb (`online tportal`, `create target`, …): what VDS answered, and what it
/// caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MutationReport {
    /// The VDS method (`IVdsIscsiPortal::SetStatus`, `IVdsSubSystemIscsi::CreateTarget`, …).
    pub operation: String,
    /// The provider.
    pub provider: String,
    /// The subsystem.
    pub subsystem: String,
    /// The result code in hex (`0x00000000`; success-with-information codes such as
    /// `VDS_S_ALREADY_EXISTS` 0x00042714 are successes).
    pub hresult: String,
    /// The code's name (`S_OK`, `VDS_S_ALREADY_EXISTS`).
    pub name: String,
    /// The object made or returned (a created target, a created or existing portal group), else null.
    pub object: Option<ObjectRef>,
    /// The notifications the change raised.
    pub notifications: Vec<NotificationDoc>,
}

/// The body of every failure: `{"error": {"hresult", "name", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDoc {
    /// The error.
    pub error: ErrorBody,
}

/// The error inside an [`ErrorDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The code in hex: `0x80042431`.
    pub hresult: String,
    /// Its name: `VDS_E_OBJECT_STATUS_FAILED`, or `HRESULT_FROM_WIN32(n)`.
    pub name: String,
    /// What failed and why: `subsystem "lab": the subsystem is in a failed state: …`.
    pub message: String,
    /// What the error is about (`subsystem "lab"`), as the message begins, when it names something.
    /// Only the daemon's answers carry it (so that a client can print the error as vdsadm does);
    /// `vdsadm --json` never prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl ErrorBody {
    /// The body of `e`, with its subject (the daemon's answers).
    pub fn with_subject(e: &Error) -> ErrorBody {
        ErrorBody {
            subject: e.subject().map(ToString::to_string),
            ..ErrorDoc::from(e).error
        }
    }
}

impl From<&Error> for ErrorDoc {
    fn from(e: &Error) -> ErrorDoc {
        ErrorDoc {
            error: ErrorBody {
                hresult: e.code_hex(),
                name: e.code_name(),
                message: e.message(),
                subject: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_model::{Hresult, Subject};

    #[test]
    fn errors_serialize_as_documented() {
        let e = Error::new(Hresult::VDS_E_OBJECT_STATUS_FAILED)
            .about(Subject::Subsystem("lab".into()))
            .because("127.0.0.1:3260: authentication failure");
        let j = serde_json::to_value(ErrorDoc::from(&e)).unwrap();
        assert_eq!(j["error"]["hresult"], "0x80042431");
        assert_eq!(j["error"]["name"], "VDS_E_OBJECT_STATUS_FAILED");
        assert_eq!(
            j["error"]["message"],
            "subsystem \"lab\": the subsystem is in a failed state: 127.0.0.1:3260: \
             authentication failure"
        );
    }

    #[test]
    fn the_portal_row_keeps_its_documented_fields() {
        let row = PortalRow {
            index: 0,
            id: "x".into(),
            address: "::1".into(),
            port: 3260,
            address_type: "IPV6".into(),
            status: "ONLINE".into(),
        };
        // The text keeps the declared order, which scripts that read it as a table rely on.
        let text = serde_json::to_string(&row).unwrap();
        assert_eq!(
            text,
            r#"{"index":0,"id":"x","address":"::1","port":3260,"address_type":"IPV6","status":"ONLINE"}"#
        );
    }
}
