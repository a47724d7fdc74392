//! The Redfish documents, built from the service's rows: pure functions of what the cache says,
//! so the mapping is tested without a server.
//!
//! | VDS | Redfish | URI |
//! |---|---|---|
//! | the service | `ServiceRoot` | `/redfish/v1` |
//! | subsystem | `Storage` | `/redfish/v1/Storage/{subsystem id}` |
//! | portal | `Endpoint` of the `iSCSI` Fabric | `/redfish/v1/Fabrics/iSCSI/Endpoints/{portal id}` |
//! | portal group | `EndpointGroup` of its Storage | `/redfish/v1/Storage/{subsystem id}/EndpointGroups/{group id}` |
//! | target | `Connection` of the Fabric | `/redfish/v1/Fabrics/iSCSI/Connections/{target id}` |
//!
//! Ids are the VDS object ids, so `/v1` and `/redfish/v1` name an object alike. What Redfish has no
//! property for (the portal group tag, the iSCSI name, CHAP, a host-name address, an IPv6 scope)
//! is under `Oem.Vds`, typed by the `VdsRedfish` schema (`schemas/VdsRedfish_v1.xml`).

use serde_json::{Map, Value, json};
use vds_api::{PortalRow, SubsystemInventory, TargetDetail};

/// The one Fabric: every portal is an endpoint of it.
pub const FABRIC_ID: &str = "iSCSI";

/// The service root.
pub const ROOT: &str = "/redfish/v1";

/// The schema versions the documents follow (DMTF release 2025.4).
pub mod types {
    /// `ServiceRoot`.
    pub const SERVICE_ROOT: &str = "#ServiceRoot.v1_20_0.ServiceRoot";
    /// `Storage`.
    pub const STORAGE: &str = "#Storage.v1_21_0.Storage";
    /// `Endpoint`.
    pub const ENDPOINT: &str = "#Endpoint.v1_8_2.Endpoint";
    /// `EndpointGroup`.
    pub const ENDPOINT_GROUP: &str = "#EndpointGroup.v1_3_4.EndpointGroup";
    /// `Connection`.
    pub const CONNECTION: &str = "#Connection.v1_4_0.Connection";
    /// `Fabric`.
    pub const FABRIC: &str = "#Fabric.v1_4_0.Fabric";
    /// `EventService`.
    pub const EVENT_SERVICE: &str = "#EventService.v1_12_0.EventService";
    /// `SessionService`.
    pub const SESSION_SERVICE: &str = "#SessionService.v1_2_0.SessionService";
    /// `Event` (the payload of the server-sent event stream).
    pub const EVENT: &str = "#Event.v1_13_0.Event";
    /// `Message` (in error bodies).
    pub const MESSAGE: &str = "#Message.v1_3_0.Message";
}

/// The version of the Redfish specification the service follows (DSP0266 of release 2025.4).
pub const REDFISH_VERSION: &str = "1.22.0";

/// `/redfish/v1/Storage/{id}`.
pub fn storage_uri(subsystem_id: &str) -> String {
    format!("{ROOT}/Storage/{subsystem_id}")
}

/// `/redfish/v1/Fabrics/iSCSI/Endpoints/{id}`.
pub fn endpoint_uri(portal_id: &str) -> String {
    format!("{ROOT}/Fabrics/{FABRIC_ID}/Endpoints/{portal_id}")
}

/// `/redfish/v1/Storage/{id}/EndpointGroups/{group id}`.
pub fn endpoint_group_uri(subsystem_id: &str, group_id: &str) -> String {
    format!("{ROOT}/Storage/{subsystem_id}/EndpointGroups/{group_id}")
}

/// `/redfish/v1/Fabrics/iSCSI/Connections/{id}`.
pub fn connection_uri(target_id: &str) -> String {
    format!("{ROOT}/Fabrics/{FABRIC_ID}/Connections/{target_id}")
}

fn link(uri: impl Into<String>) -> Value {
    json!({ "@odata.id": uri.into() })
}

/// `@odata.id`, `@odata.type` and `@odata.context` of a resource: the context names the schema's
/// unversioned entity (`Storage.Storage`), as the Redfish specification writes it.
fn resource(uri: &str, odata_type: &str) -> Map<String, Value> {
    let unversioned = odata_type
        .trim_start_matches('#')
        .split('.')
        .next()
        .unwrap_or_default();
    let entity = odata_type.rsplit('.').next().unwrap_or_default();
    let mut m = Map::new();
    m.insert("@odata.id".into(), uri.into());
    m.insert("@odata.type".into(), odata_type.into());
    m.insert(
        "@odata.context".into(),
        format!("{ROOT}/$metadata#{unversioned}.{entity}").into(),
    );
    m
}

/// A resource collection of `members` (URIs), typed `#{Name}Collection.{Name}Collection`.
pub fn collection(uri: &str, type_name: &str, name: &str, members: &[String]) -> Value {
    let odata_type = format!("#{type_name}.{type_name}");
    let mut m = resource(uri, &odata_type);
    m.insert("Name".into(), name.into());
    m.insert(
        "Members".into(),
        members.iter().map(|u| link(u.as_str())).collect(),
    );
    m.insert("Members@odata.count".into(), members.len().into());
    Value::Object(m)
}

/// The `Health` values of Redfish, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// `OK`.
    Ok,
    /// `Warning`.
    Warning,
    /// `Critical`.
    Critical,
}

impl Health {
    fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "OK",
            Health::Warning => "Warning",
            Health::Critical => "Critical",
        }
    }
}

/// A Redfish `Status`: `State` and `Health`, either absent when VDS does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// `Status.State`.
    pub state: Option<&'static str>,
    /// `Status.Health`.
    pub health: Option<Health>,
}

impl Status {
    /// The JSON object, with `HealthRollup` when given.
    pub fn to_json(self, rollup: Option<Health>) -> Value {
        let mut m = Map::new();
        if let Some(s) = self.state {
            m.insert("State".into(), s.into());
        }
        if let Some(h) = self.health {
            m.insert("Health".into(), h.as_str().into());
        }
        if let Some(r) = rollup {
            m.insert("HealthRollup".into(), r.as_str().into());
        }
        Value::Object(m)
    }
}

/// The status of a portal (`VDS_ISCSI_PORTAL_STATUS` label), by the one table of docs/REDFISH.md:
///
/// | VDS | State | Health |
/// |---|---|---|
/// | `ONLINE` | `Enabled` | `OK` |
/// | `NOT_READY` | `Starting` | `Warning` |
/// | `OFFLINE` | `StandbyOffline` | `Warning` |
/// | `FAILED` | `UnavailableOffline` | `Critical` |
/// | `UNKNOWN` (or anything else) | absent | absent |
pub fn portal_status(label: &str) -> Status {
    let (state, health) = match label {
        "ONLINE" => ("Enabled", Health::Ok),
        "NOT_READY" => ("Starting", Health::Warning),
        "OFFLINE" => ("StandbyOffline", Health::Warning),
        "FAILED" => ("UnavailableOffline", Health::Critical),
        _ => {
            return Status {
                state: None,
                health: None,
            };
        }
    };
    Status {
        state: Some(state),
        health: Some(health),
    }
}

/// The status of a subsystem: `State` from `VDS_SUB_SYSTEM_STATUS` (as for portals, and
/// `PARTIALLY_MANAGED` → `Degraded`); `Health` the worse of what the status implies and what
/// `VDS_HEALTH` says (`HEALTHY` → OK; `FAILED`, `FAILED_REDUNDANCY`,
/// `FAILED_REDUNDANCY_FAILING` → Critical; the other known values → Warning; `UNKNOWN` → nothing).
pub fn subsystem_status(status: &str, health: &str) -> Status {
    let from_status = match status {
        "PARTIALLY_MANAGED" => Status {
            state: Some("Degraded"),
            health: Some(Health::Warning),
        },
        other => portal_status(other),
    };
    let from_health = match health {
        "HEALTHY" => Some(Health::Ok),
        "FAILED" | "FAILED_REDUNDANCY" | "FAILED_REDUNDANCY_FAILING" => Some(Health::Critical),
        "REBUILDING" | "STALE" | "FAILING" | "FAILING_REDUNDANCY" | "REPLACED"
        | "PENDING_FAILURE" | "DEGRADED" => Some(Health::Warning),
        _ => None,
    };
    Status {
        state: from_status.state,
        health: from_status.health.max(from_health),
    }
}

/// `Oem.Vds` of type `odata_type`, without the fields that are null or empty (services omit what
/// they do not have, rather than send an empty string).
fn oem(odata_type: &str, fields: Value) -> Value {
    let mut m = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.retain(|_, v| !(v.is_null() || v.as_str() == Some("")));
    m.insert(
        "@odata.type".into(),
        format!("#VdsRedfish.v1_0_0.{odata_type}").into(),
    );
    json!({ "Vds": Value::Object(m) })
}

/// `host:port` as people write it, with brackets around an IPv6 address.
pub fn portal_label(p: &PortalRow) -> String {
    if p.address_type == "IPV6" {
        format!("[{}]:{}", p.address, p.port)
    } else {
        format!("{}:{}", p.address, p.port)
    }
}

/// The service root. `uuid` is the service's stable UUID.
pub fn service_root(uuid: &str) -> Value {
    let mut m = resource(ROOT, types::SERVICE_ROOT);
    m.insert("Id".into(), "RootService".into());
    m.insert("Name".into(), "vds Redfish service".into());
    m.insert("RedfishVersion".into(), REDFISH_VERSION.into());
    m.insert("UUID".into(), uuid.into());
    m.insert("Product".into(), "vds".into());
    m.insert("Vendor".into(), "vds".into());
    m.insert("Storage".into(), link(format!("{ROOT}/Storage")));
    m.insert("Fabrics".into(), link(format!("{ROOT}/Fabrics")));
    m.insert("EventService".into(), link(format!("{ROOT}/EventService")));
    m.insert(
        "SessionService".into(),
        link(format!("{ROOT}/SessionService")),
    );
    m.insert(
        "Links".into(),
        json!({ "Sessions": link(format!("{ROOT}/SessionService/Sessions")) }),
    );
    Value::Object(m)
}

/// The OData service document (`/redfish/v1/odata`): the service root's top-level resources.
pub fn odata_service_document() -> Value {
    let entry = |name: &str, url: &str| json!({ "name": name, "kind": "Singleton", "url": url });
    json!({
        "@odata.context": format!("{ROOT}/$metadata"),
        "value": [
            entry("Service", &format!("{ROOT}/")),
            entry("Storage", &format!("{ROOT}/Storage")),
            entry("Fabrics", &format!("{ROOT}/Fabrics")),
            entry("EventService", &format!("{ROOT}/EventService")),
            entry("SessionService", &format!("{ROOT}/SessionService")),
        ],
    })
}

/// The worst health among `healths` (none when there is none).
fn worst(healths: impl IntoIterator<Item = Option<Health>>) -> Option<Health> {
    healths.into_iter().flatten().max()
}

/// A subsystem as a `Storage` resource.
pub fn storage(s: &SubsystemInventory) -> Value {
    let id = s.row.id.clone().unwrap_or_default();
    let uri = storage_uri(&id);
    let status = subsystem_status(&s.row.status, &s.row.health);
    let rollup = worst(
        std::iter::once(status.health)
            .chain(s.portals.iter().map(|p| portal_status(&p.status).health)),
    );
    let mut m = resource(&uri, types::STORAGE);
    m.insert("Id".into(), id.clone().into());
    m.insert("Name".into(), s.row.friendly_name.clone().into());
    m.insert(
        "Description".into(),
        format!(
            "iSCSI subsystem {:?} of provider {:?}",
            s.row.name, s.row.provider
        )
        .into(),
    );
    m.insert("Status".into(), status.to_json(rollup));
    m.insert(
        "EndpointGroups".into(),
        link(format!("{uri}/EndpointGroups")),
    );
    m.insert(
        "Oem".into(),
        oem(
            "Storage",
            json!({
                "Provider": s.row.provider,
                "SubsystemName": s.row.name,
                "Identification": s.row.identification,
                "VdsStatus": s.row.status,
                "VdsHealth": s.row.health,
                "Detail": s.row.detail,
            }),
        ),
    );
    Value::Object(m)
}

/// The targets of `s` whose portal groups hold the portal `portal_id`.
fn targets_holding<'a>(
    s: &'a SubsystemInventory,
    portal_id: &'a str,
) -> impl Iterator<Item = &'a TargetDetail> + 'a {
    s.targets.iter().filter(move |t| {
        t.groups
            .iter()
            .any(|g| g.portals.iter().any(|p| p.id == portal_id))
    })
}

/// A portal of subsystem `s` as an `Endpoint` of the iSCSI Fabric.
pub fn endpoint(s: &SubsystemInventory, p: &PortalRow) -> Value {
    let storage = storage_uri(s.row.id.as_deref().unwrap_or_default());
    let mut m = resource(&endpoint_uri(&p.id), types::ENDPOINT);
    m.insert("Id".into(), p.id.clone().into());
    m.insert(
        "Name".into(),
        format!("iSCSI portal {}", portal_label(p)).into(),
    );
    m.insert(
        "Description".into(),
        format!("A portal of iSCSI subsystem {:?}", s.row.name).into(),
    );
    m.insert("EndpointProtocol".into(), "iSCSI".into());
    m.insert("Status".into(), portal_status(&p.status).to_json(None));
    let mut transport = Map::new();
    transport.insert("TransportProtocol".into(), "iSCSI".into());
    let (mut host_name, mut scope) = (None, None);
    match p.address_type.as_str() {
        "IPV4" => {
            transport.insert("IPv4Address".into(), json!({ "Address": p.address }));
        }
        "IPV6" => {
            let (addr, zone) = match p.address.split_once('%') {
                Some((a, z)) => (a, Some(z)),
                None => (p.address.as_str(), None),
            };
            scope = zone.map(str::to_string);
            transport.insert("IPv6Address".into(), json!({ "Address": addr }));
        }
        _ => host_name = Some(p.address.clone()).filter(|a| !a.is_empty()),
    }
    transport.insert("Port".into(), p.port.into());
    m.insert(
        "IPTransportDetails".into(),
        Value::Array(vec![Value::Object(transport)]),
    );
    m.insert(
        "ConnectedEntities".into(),
        json!([{
            "EntityType": "StorageSubsystem",
            "EntityRole": "Target",
            "EntityLink": link(storage),
        }]),
    );
    let connections: Vec<Value> = targets_holding(s, &p.id)
        .map(|t| link(connection_uri(&t.target.id)))
        .collect();
    m.insert(
        "Links".into(),
        json!({ "Connections@odata.count": connections.len(), "Connections": connections }),
    );
    m.insert(
        "Oem".into(),
        oem(
            "Endpoint",
            json!({
                "Address": p.address,
                "AddressType": p.address_type,
                "HostName": host_name,
                "IPv6ScopeId": scope,
                "VdsStatus": p.status,
                "Provider": s.row.provider,
                "SubsystemName": s.row.name,
            }),
        ),
    );
    Value::Object(m)
}

/// A portal group of target `t` of subsystem `s` as an `EndpointGroup` of its Storage.
pub fn endpoint_group(s: &SubsystemInventory, t: &TargetDetail, group: usize) -> Value {
    let g = &t.groups[group];
    let sid = s.row.id.as_deref().unwrap_or_default();
    let mut m = resource(&endpoint_group_uri(sid, &g.id), types::ENDPOINT_GROUP);
    m.insert("Id".into(), g.id.clone().into());
    m.insert(
        "Name".into(),
        format!("Portal group {} of {}", g.tag, t.target.iscsi_name).into(),
    );
    m.insert("GroupType".into(), "Target".into());
    let endpoints: Vec<Value> = g
        .portals
        .iter()
        .map(|p| link(endpoint_uri(&p.id)))
        .collect();
    m.insert(
        "Links".into(),
        json!({
            "Endpoints@odata.count": endpoints.len(),
            "Endpoints": endpoints,
            "Connections@odata.count": 1,
            "Connections": [link(connection_uri(&t.target.id))],
        }),
    );
    m.insert(
        "Oem".into(),
        oem(
            "EndpointGroup",
            json!({ "PortalGroupTag": g.tag, "TargetName": t.target.iscsi_name }),
        ),
    );
    Value::Object(m)
}

/// A target of subsystem `s` as a `Connection` of the iSCSI Fabric.
pub fn connection(s: &SubsystemInventory, t: &TargetDetail) -> Value {
    let sid = s.row.id.as_deref().unwrap_or_default();
    let mut m = resource(&connection_uri(&t.target.id), types::CONNECTION);
    m.insert("Id".into(), t.target.id.clone().into());
    let name = if t.target.friendly_name.is_empty() {
        t.target.iscsi_name.clone()
    } else {
        t.target.friendly_name.clone()
    };
    m.insert("Name".into(), name.into());
    m.insert(
        "Description".into(),
        format!("iSCSI target {}", t.target.iscsi_name).into(),
    );
    m.insert("ConnectionType".into(), "Storage".into());
    let groups: Vec<Value> = t
        .groups
        .iter()
        .map(|g| link(endpoint_group_uri(sid, &g.id)))
        .collect();
    m.insert(
        "Links".into(),
        json!({ "TargetEndpointGroups@odata.count": groups.len(), "TargetEndpointGroups": groups }),
    );
    m.insert(
        "Oem".into(),
        oem(
            "Connection",
            json!({
                "IscsiName": t.target.iscsi_name,
                "Alias": t.target.friendly_name,
                "ChapEnabled": t.target.chap_enabled,
                "ConnectedInitiators": t.connected_initiators,
                "Storage": link(storage_uri(sid)),
            }),
        ),
    );
    Value::Object(m)
}

/// The iSCSI Fabric, with the worst health of its endpoints.
pub fn fabric(fleet: &[SubsystemInventory]) -> Value {
    let uri = format!("{ROOT}/Fabrics/{FABRIC_ID}");
    let rollup = worst(
        fleet
            .iter()
            .flat_map(|s| s.portals.iter().map(|p| portal_status(&p.status).health)),
    );
    let mut m = resource(&uri, types::FABRIC);
    m.insert("Id".into(), FABRIC_ID.into());
    m.insert("Name".into(), "iSCSI fabric".into());
    m.insert(
        "Description".into(),
        "Every iSCSI portal of every subsystem vds knows".into(),
    );
    m.insert("FabricType".into(), "iSCSI".into());
    m.insert(
        "Status".into(),
        Status {
            state: Some("Enabled"),
            health: Some(Health::Ok),
        }
        .to_json(rollup.or(Some(Health::Ok))),
    );
    m.insert("Endpoints".into(), link(format!("{uri}/Endpoints")));
    m.insert("Connections".into(), link(format!("{uri}/Connections")));
    Value::Object(m)
}

/// The event service: one server-sent event stream, no subscriptions.
pub fn event_service() -> Value {
    let mut m = resource(&format!("{ROOT}/EventService"), types::EVENT_SERVICE);
    m.insert("Id".into(), "EventService".into());
    m.insert("Name".into(), "Event service".into());
    m.insert("ServiceEnabled".into(), true.into());
    m.insert(
        "Status".into(),
        Status {
            state: Some("Enabled"),
            health: Some(Health::Ok),
        }
        .to_json(None),
    );
    m.insert(
        "ServerSentEventUri".into(),
        format!("{ROOT}/EventService/SSE").into(),
    );
    m.insert("EventFormatTypes".into(), json!(["Event"]));
    m.insert("RegistryPrefixes".into(), json!(["ResourceEvent"]));
    m.insert(
        "ResourceTypes".into(),
        json!(["Storage", "Endpoint", "EndpointGroup", "Connection"]),
    );
    Value::Object(m)
}

/// The session service: sessions are not used (callers are identified by their socket's
/// credentials or a bearer token), so it is disabled and its collection is empty.
pub fn session_service() -> Value {
    let mut m = resource(&format!("{ROOT}/SessionService"), types::SESSION_SERVICE);
    m.insert("Id".into(), "SessionService".into());
    m.insert("Name".into(), "Session service".into());
    m.insert("ServiceEnabled".into(), false.into());
    m.insert(
        "Sessions".into(),
        link(format!("{ROOT}/SessionService/Sessions")),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_api::{GroupRow, PortalRef, SubsystemRow, TargetRow};

    fn portal(id: &str, address: &str, address_type: &str, status: &str) -> PortalRow {
        PortalRow {
            index: 0,
            id: id.into(),
            address: address.into(),
            port: 3260,
            address_type: address_type.into(),
            status: status.into(),
        }
    }

    fn fleet() -> SubsystemInventory {
        let portals = vec![
            portal("p4", "192.0.2.10", "IPV4", "ONLINE"),
            portal("p6", "fe80::10%2", "IPV6", "OFFLINE"),
            portal("pt", "array.example", "TEXT", "FAILED"),
        ];
        let reference = |p: &PortalRow| PortalRef {
            id: p.id.clone(),
            address: p.address.clone(),
            port: p.port,
            address_type: p.address_type.clone(),
        };
        SubsystemInventory {
            row: SubsystemRow {
                index: 0,
                name: "lab".into(),
                provider: "st".into(),
                id: Some("s1".into()),
                friendly_name: "Lab array".into(),
                identification: "tgt".into(),
                status: "ONLINE".into(),
                health: "HEALTHY".into(),
                portals: 3,
                targets: 1,
                detail: None,
            },
            targets: vec![TargetDetail {
                subsystem: "lab".into(),
                target: TargetRow {
                    index: 0,
                    id: "t1".into(),
                    iscsi_name: "iqn.2026-12.test:t1".into(),
                    friendly_name: String::new(),
                    chap_enabled: true,
                    portal_groups: 1,
                },
                groups: vec![GroupRow {
                    index: 0,
                    id: "g1".into(),
                    tag: 7,
                    portals: vec![reference(&portals[0]), reference(&portals[1])],
                }],
                connected_initiators: vec!["iqn.2026-12.test:host1".into()],
            }],
            portals,
        }
    }

    #[test]
    fn the_status_table() {
        let s = |l| {
            let st = portal_status(l);
            (st.state, st.health)
        };
        assert_eq!(s("ONLINE"), (Some("Enabled"), Some(Health::Ok)));
        assert_eq!(s("NOT_READY"), (Some("Starting"), Some(Health::Warning)));
        assert_eq!(
            s("OFFLINE"),
            (Some("StandbyOffline"), Some(Health::Warning))
        );
        assert_eq!(
            s("FAILED"),
            (Some("UnavailableOffline"), Some(Health::Critical))
        );
        assert_eq!(s("UNKNOWN"), (None, None));
        assert_eq!(s("UNKNOWN(3)"), (None, None));
        // A subsystem: the worse of its status and its health.
        let sub = subsystem_status("ONLINE", "FAILED_REDUNDANCY");
        assert_eq!(
            (sub.state, sub.health),
            (Some("Enabled"), Some(Health::Critical))
        );
        let sub = subsystem_status("FAILED", "UNKNOWN");
        assert_eq!(
            (sub.state, sub.health),
            (Some("UnavailableOffline"), Some(Health::Critical))
        );
        let sub = subsystem_status("PARTIALLY_MANAGED", "HEALTHY");
        assert_eq!(
            (sub.state, sub.health),
            (Some("Degraded"), Some(Health::Warning))
        );
        assert_eq!(
            subsystem_status("UNKNOWN", "UNKNOWN").to_json(None),
            json!({})
        );
    }

    #[test]
    fn endpoints_carry_each_address_form_where_redfish_has_a_field_for_it() {
        let f = fleet();
        let v4 = endpoint(&f, &f.portals[0]);
        assert_eq!(v4["@odata.id"], "/redfish/v1/Fabrics/iSCSI/Endpoints/p4");
        assert_eq!(v4["@odata.type"], types::ENDPOINT);
        assert_eq!(
            v4["@odata.context"],
            "/redfish/v1/$metadata#Endpoint.Endpoint"
        );
        assert_eq!(
            v4["IPTransportDetails"],
            json!([{"TransportProtocol": "iSCSI", "IPv4Address": {"Address": "192.0.2.10"}, "Port": 3260}])
        );
        assert_eq!(v4["Status"], json!({"State": "Enabled", "Health": "OK"}));
        assert_eq!(
            v4["ConnectedEntities"][0]["EntityLink"]["@odata.id"],
            "/redfish/v1/Storage/s1"
        );
        assert_eq!(
            v4["Links"]["Connections"],
            json!([{"@odata.id": "/redfish/v1/Fabrics/iSCSI/Connections/t1"}])
        );
        // IPv6: the scope id is not an address character; it goes to Oem.
        let v6 = endpoint(&f, &f.portals[1]);
        assert_eq!(
            v6["IPTransportDetails"][0]["IPv6Address"]["Address"],
            "fe80::10"
        );
        assert_eq!(v6["Oem"]["Vds"]["IPv6ScopeId"], "2");
        assert_eq!(v6["Name"], "iSCSI portal [fe80::10%2]:3260");
        // A host name has no Redfish field: port only, the name in Oem; in no group.
        let text = endpoint(&f, &f.portals[2]);
        let t = &text["IPTransportDetails"][0];
        assert!(t.get("IPv4Address").is_none() && t.get("IPv6Address").is_none());
        assert_eq!(text["Oem"]["Vds"]["HostName"], "array.example");
        assert_eq!(text["Links"]["Connections@odata.count"], 0);
        assert_eq!(
            text["Status"],
            json!({"State": "UnavailableOffline", "Health": "Critical"})
        );
    }

    #[test]
    fn groups_keep_the_tag_out_of_the_alua_identifier() {
        let f = fleet();
        let g = endpoint_group(&f, &f.targets[0], 0);
        assert_eq!(g["@odata.id"], "/redfish/v1/Storage/s1/EndpointGroups/g1");
        assert_eq!(g["GroupType"], "Target");
        assert!(g.get("TargetEndpointGroupIdentifier").is_none());
        assert_eq!(g["Oem"]["Vds"]["PortalGroupTag"], 7);
        assert_eq!(g["Links"]["Endpoints@odata.count"], 2);
        let c = connection(&f, &f.targets[0]);
        assert_eq!(c["Name"], "iqn.2026-12.test:t1", "no alias: the name");
        assert_eq!(c["Oem"]["Vds"]["ChapEnabled"], true);
        assert_eq!(
            c["Oem"]["Vds"]["ConnectedInitiators"],
            json!(["iqn.2026-12.test:host1"])
        );
        assert_eq!(
            c["Links"]["TargetEndpointGroups"],
            json!([{"@odata.id": "/redfish/v1/Storage/s1/EndpointGroups/g1"}])
        );
        let s = storage(&f);
        assert_eq!(
            s["Status"],
            json!({"State": "Enabled", "Health": "OK", "HealthRollup": "Critical"})
        );
        let c = collection(
            "/redfish/v1/Storage",
            "StorageCollection",
            "Storage",
            &["/a".into()],
        );
        assert_eq!(c["Members@odata.count"], 1);
        assert_eq!(c["@odata.type"], "#StorageCollection.StorageCollection");
    }
}
