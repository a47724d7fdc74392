//! The documents only the daemon's API has: what a client sends (request bodies), the operation
//! resource (`IVdsAsync`), the pushed notifications, and the paths of the API, written once for the
//! daemon and for its clients (vdsadm's one-writer mode).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{ErrorBody, NotificationDoc};

/// `Some(value)` for a field that is present (`null` included: `Some(None)`), `None` when absent:
/// "keep" and "reset" told apart.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A value of a provider kind's setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum SettingValue {
    /// A whole number (`concurrency`, `subsystems`, `portals`).
    Integer(i64),
    /// A flag.
    Bool(bool),
    /// Text.
    Text(String),
}

/// `POST /v1/providers` (`vdsadm provider add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderAddRequest {
    /// The provider's name (object ids derive from it).
    pub name: String,
    /// Its kind: `sendtargets`, `sim`, ….
    pub kind: String,
    /// The kind's settings.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
    /// Reenumerate and refresh it at once when its kind finds its own subsystems (default true).
    #[serde(default = "yes")]
    pub refresh: bool,
}

fn yes() -> bool {
    true
}

/// A CHAP user and secret, as a client sends them. The secret is never logged nor shown (`Debug`
/// hides it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CredentialDoc {
    /// The CHAP user name.
    pub user: String,
    /// The secret.
    pub secret: String,
}

impl fmt::Debug for CredentialDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialDoc")
            .field("user", &self.user)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// `POST /v1/subsystems` (`vdsadm subsystem add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubsystemAddRequest {
    /// The subsystem's name.
    pub name: String,
    /// The provider to register it with (its name); by default the only one that takes
    /// registrations.
    #[serde(default)]
    pub provider: Option<String>,
    /// Its SendTargets discovery portals, `HOST[:PORT]`.
    pub portals: Vec<String>,
    /// The initiator name to present, when not the default.
    #[serde(default)]
    pub initiator_name: Option<String>,
    /// One-way CHAP.
    #[serde(default)]
    pub chap: Option<CredentialDoc>,
    /// Mutual CHAP (needs one-way CHAP).
    #[serde(default)]
    pub mutual: Option<CredentialDoc>,
    /// Discover it at once (default true).
    #[serde(default = "yes")]
    pub refresh: bool,
}

/// `PATCH /v1/subsystems/{subsystem}` (`vdsadm subsystem set`): a field present replaces what is
/// registered; `null` resets it (`initiator_name`: the default; `chap`: no CHAP, mutual included;
/// `mutual`: no mutual CHAP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubsystemSetRequest {
    /// New discovery portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portals: Option<Vec<String>>,
    /// A new initiator name, or null for the default.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub initiator_name: Option<Option<String>>,
    /// New one-way CHAP, or null for none.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<CredentialDoc>))]
    pub chap: Option<Option<CredentialDoc>>,
    /// New mutual CHAP, or null for none.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<CredentialDoc>))]
    pub mutual: Option<Option<CredentialDoc>>,
    /// Discover it again at once (default true).
    #[serde(default = "yes")]
    pub refresh: bool,
}

/// The statuses a client may set on a portal (`IVdsIscsiPortal::SetStatus` takes only these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum SettableStatus {
    /// `VDS_IPS_ONLINE`.
    Online,
    /// `VDS_IPS_OFFLINE`.
    Offline,
}

/// `PUT …/portals/{portal}/status` (`vdsadm online|offline tportal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortalStatusRequest {
    /// The new status.
    pub status: SettableStatus,
}

/// `POST …/targets` (`vdsadm create target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetCreateRequest {
    /// The iSCSI name; absent, null or empty: the provider makes one.
    #[serde(default)]
    pub iscsi_name: Option<String>,
    /// The alias (empty for none).
    #[serde(default)]
    pub alias: String,
}

/// `PATCH …/targets/{target}` (`vdsadm name target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetAliasRequest {
    /// The new alias (empty clears it).
    pub alias: String,
}

/// `POST …/portal-groups/{group}/portals` (`vdsadm add tportal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupMemberRequest {
    /// The portal: its `VDS_OBJECT_ID`, or its address `HOST:PORT` (IPv6 in brackets).
    pub portal: String,
}

/// `PUT …/targets/{target}/chap-secret` (`vdsadm chap target set`): `IVdsIscsiTarget::
/// SetSharedSecret`, the secret initiators must prove. The secret is never logged nor shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetSecretRequest {
    /// The secret (1 to 1,024 bytes of text); null clears it (CHAP is no longer required).
    #[serde(default)]
    pub secret: Option<String>,
    /// The initiator whose secret it is; absent or null: the target's default secret.
    #[serde(default)]
    pub initiator: Option<String>,
}

impl fmt::Debug for TargetSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSecretRequest")
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("initiator", &self.initiator)
            .finish()
    }
}

/// `PUT …/targets/{target}/initiator-secrets/{initiator}` (`vdsadm chap target remember`):
/// `IVdsIscsiTarget::RememberInitiatorSharedSecret`, the secret the target proves itself with to
/// that initiator (mutual CHAP). Never logged nor shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InitiatorSecretRequest {
    /// The secret (1 to 1,024 bytes of text); null forgets it.
    #[serde(default)]
    pub secret: Option<String>,
}

impl fmt::Debug for InitiatorSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatorSecretRequest")
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// The state of an operation (`IVdsAsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationState {
    /// Still running (`VDS_E_OPERATION_PENDING`).
    Running,
    /// Done, with a success code.
    Succeeded,
    /// Done, with a failure code.
    Failed,
    /// Cancelled before it finished (`VDS_E_OPERATION_CANCELED`).
    Canceled,
}

/// What a finished operation produced (`VDS_ASYNC_OUTPUT`): the document the same command of
/// `vdsadm --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OperationOutput {
    /// A refresh or reenumerate.
    Operation(crate::OperationReport),
    /// A change of an array.
    Mutation(crate::MutationReport),
    /// A provider added.
    Provider(crate::ProviderReport),
    /// A subsystem registered or changed.
    Registration(crate::AddReport),
}

/// An asynchronous operation (`IVdsAsync`): `QueryStatus` is `GET /v1/operations/{id}`, `Wait` the
/// same with `?wait=SECONDS`, `Cancel` is `DELETE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationDoc {
    /// The operation's id.
    pub id: String,
    /// What it does: `refresh`, `reenumerate`, `IVdsIscsiPortal::SetStatus`, ….
    pub operation: String,
    /// Its state.
    pub state: OperationState,
    /// Percent done (0 to 100).
    pub percent: u32,
    /// The result code in hex (`0x80042409` `VDS_E_OPERATION_PENDING` while running).
    pub hresult: String,
    /// The result code's name.
    pub name: String,
    /// When it was started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished, or null.
    pub finished_at: Option<String>,
    /// True while `Cancel` can still stop it.
    pub cancelable: bool,
    /// On failure: the error (the body `vdsadm --json` prints inside `error`).
    pub error: Option<ErrorBody>,
    /// On success: what it produced.
    pub output: Option<OperationOutput>,
}

/// One notification as `GET /v1/events` pushes it (`VDS_NOTIFICATION`), with its place in the
/// stream and when the service raised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventDoc {
    /// The event id (also the SSE `id:`): increases monotonically, across restarts of the daemon.
    pub sequence: u64,
    /// When the service raised it (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The notification.
    #[serde(flatten)]
    pub notification: NotificationDoc,
}

/// The `notifications-lost` event: the client fell further behind than the daemon keeps (VDS's
/// `S_FALSE` from `OnNotify`); it must query again what it watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LostDoc {
    /// `0x00000001`.
    pub hresult: String,
    /// `S_FALSE`.
    pub name: String,
    /// What happened, in words.
    pub message: String,
    /// The last event id the client said it had (`Last-Event-ID`), or null.
    pub last_event_id: Option<u64>,
    /// The first event id the stream goes on with.
    pub resumes_at: u64,
}

/// `GET /v1/service`: the daemon, and who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceDoc {
    /// `vdsd`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The store it serves.
    pub store: String,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// What the caller may do: `admin` or `read-only`.
    pub caller_role: String,
    /// The last event id so far (0 before the first).
    pub last_event_id: u64,
}

/// `GET /v1/objects/{id}` (`IVdsService::GetObject`): what the id names, and where it is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectDoc {
    /// The id.
    pub id: String,
    /// `provider`, `subsystem`, `portal`, `target` or `portal_group`.
    pub object_type: String,
    /// `VDS_OBJECT_TYPE`: 1, 30, 36, 37, 38.
    pub vds_object_type: i32,
    /// The object's resource, by ids (`/v1/subsystems/{id}/portals/{id}`, …).
    pub path: String,
}

/// The paths of the API, for clients that build them (each segment percent-encoded by the caller).
pub mod paths {
    /// The API's root.
    pub const V1: &str = "/v1";
    /// The OpenAPI document.
    pub const OPENAPI: &str = "/v1/openapi.json";
    /// The service document.
    pub const SERVICE: &str = "/v1/service";
    /// Providers.
    pub const PROVIDERS: &str = "/v1/providers";
    /// Subsystems.
    pub const SUBSYSTEMS: &str = "/v1/subsystems";
    /// Refresh of everything (`?provider=` for one provider).
    pub const REFRESH: &str = "/v1/refresh";
    /// Reenumerate (`?provider=` for one provider).
    pub const REENUMERATE: &str = "/v1/reenumerate";
    /// Operations.
    pub const OPERATIONS: &str = "/v1/operations";
    /// The event stream.
    pub const EVENTS: &str = "/v1/events";
    /// Objects by id.
    pub const OBJECTS: &str = "/v1/objects";
    /// The metrics (on the metrics listener and the API's listeners).
    pub const METRICS: &str = "/metrics";
}
