//! `/redfish/v1/$metadata`: the CSDL document naming every schema the service's resources use,
//! by DMTF's published file names, and vds's own OEM schema (served at
//! [`OEM_SCHEMA_URI`]).

/// Where the OEM schema is served.
pub const OEM_SCHEMA_URI: &str = "/redfish/v1/Schemas/VdsRedfish_v1.xml";

/// The OEM schema itself (`schemas/VdsRedfish_v1.xml`).
pub const OEM_SCHEMA: &str = include_str!("../schemas/VdsRedfish_v1.xml");

/// Each referenced schema file and the namespaces included from it.
const REFERENCES: &[(&str, &[&str])] = &[
    (
        "ServiceRoot_v1.xml",
        &["ServiceRoot", "ServiceRoot.v1_20_0"],
    ),
    ("Resource_v1.xml", &["Resource", "Resource.v1_23_0"]),
    ("StorageCollection_v1.xml", &["StorageCollection"]),
    ("Storage_v1.xml", &["Storage", "Storage.v1_21_0"]),
    ("FabricCollection_v1.xml", &["FabricCollection"]),
    ("Fabric_v1.xml", &["Fabric", "Fabric.v1_4_0"]),
    ("EndpointCollection_v1.xml", &["EndpointCollection"]),
    ("Endpoint_v1.xml", &["Endpoint", "Endpoint.v1_8_2"]),
    (
        "EndpointGroupCollection_v1.xml",
        &["EndpointGroupCollection"],
    ),
    (
        "EndpointGroup_v1.xml",
        &["EndpointGroup", "EndpointGroup.v1_3_4"],
    ),
    ("ConnectionCollection_v1.xml", &["ConnectionCollection"]),
    ("Connection_v1.xml", &["Connection", "Connection.v1_4_0"]),
    (
        "EventService_v1.xml",
        &["EventService", "EventService.v1_12_0"],
    ),
    ("Event_v1.xml", &["Event", "Event.v1_13_0"]),
    (
        "SessionService_v1.xml",
        &["SessionService", "SessionService.v1_2_0"],
    ),
    ("SessionCollection_v1.xml", &["SessionCollection"]),
    ("Message_v1.xml", &["Message", "Message.v1_3_0"]),
    ("IPAddresses_v1.xml", &["IPAddresses", "IPAddresses.v1_1_5"]),
    ("Protocol_v1.xml", &["Protocol"]),
];

/// The `$metadata` document.
pub fn document() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    );
    let mut reference = |uri: &str, namespaces: &[&str]| {
        x.push_str(&format!("  <edmx:Reference Uri=\"{uri}\">\n"));
        for ns in namespaces {
            x.push_str(&format!("    <edmx:Include Namespace=\"{ns}\"/>\n"));
        }
        x.push_str("  </edmx:Reference>\n");
    };
    for (file, namespaces) in REFERENCES {
        reference(
            &format!("http://redfish.dmtf.org/schemas/v1/{file}"),
            namespaces,
        );
    }
    reference(OEM_SCHEMA_URI, &["VdsRedfish", "VdsRedfish.v1_0_0"]);
    x.push_str(
        "  <edmx:DataServices>\n\
         \x20   <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n\
         \x20     <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.v1_20_0.ServiceContainer\"/>\n\
         \x20   </Schema>\n\
         \x20 </edmx:DataServices>\n\
         </edmx:Edmx>\n",
    );
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_the_documents_use_is_included() {
        let doc = document();
        for t in [
            crate::documents::types::SERVICE_ROOT,
            crate::documents::types::STORAGE,
            crate::documents::types::ENDPOINT,
            crate::documents::types::ENDPOINT_GROUP,
            crate::documents::types::CONNECTION,
            crate::documents::types::FABRIC,
            crate::documents::types::EVENT_SERVICE,
            crate::documents::types::SESSION_SERVICE,
            crate::documents::types::EVENT,
            crate::documents::types::MESSAGE,
        ] {
            // "#Storage.v1_21_0.Storage" needs the namespace "Storage.v1_21_0".
            let ns = t.trim_start_matches('#').rsplit_once('.').map(|(n, _)| n);
            let ns = ns.expect("namespace");
            assert!(
                doc.contains(&format!("Namespace=\"{ns}\"")),
                "{ns} is not included"
            );
        }
        assert!(doc.contains(OEM_SCHEMA_URI));
        assert!(OEM_SCHEMA.contains("Namespace=\"VdsRedfish.v1_0_0\""));
    }
}
