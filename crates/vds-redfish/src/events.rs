//! Notifications as Redfish events: each `VDS_NOTIFICATION` becomes a `ResourceEvent` message
//! whose `OriginOfCondition` is the resource's URI, and a change of an Endpoint's or a Storage's
//! health adds a `ResourceStatusChanged*` message.
//!
//! | VDS event | message |
//! |---|---|
//! | `*_ARRIVE` (123 portal, 126 target, 129 portal group, subsystem) | `ResourceEvent.1.4.ResourceCreated` |
//! | `*_DEPART` (124, 127, 130, subsystem) | `ResourceEvent.1.4.ResourceRemoved` |
//! | `*_MODIFY` (125, 128, 131, subsystem) | `ResourceEvent.1.4.ResourceChanged` |
//! | health of an Endpoint or Storage now OK / Warning / Critical | `ResourceEvent.1.4.ResourceStatusChangedOK` / `…Warning` / `…Critical` |

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};
use vds_api::{NotificationDoc, SubsystemInventory};

use crate::documents::{
    Health, connection_uri, endpoint_group_uri, endpoint_uri, portal_status, storage_uri,
    subsystem_status, types,
};

/// How many events a reconnecting client can catch up on with `Last-Event-ID`.
pub const REPLAY: usize = 1024;

/// The message of a `ResourceEvent` registry entry: id, text, severity.
struct Message {
    id: &'static str,
    text: &'static str,
    severity: &'static str,
}

const CREATED: Message = Message {
    id: "ResourceEvent.1.4.ResourceCreated",
    text: "The resource was created successfully.",
    severity: "OK",
};
const REMOVED: Message = Message {
    id: "ResourceEvent.1.4.ResourceRemoved",
    text: "The resource was removed successfully.",
    severity: "OK",
};
const CHANGED: Message = Message {
    id: "ResourceEvent.1.4.ResourceChanged",
    text: "One or more resource properties have changed.",
    severity: "OK",
};

/// The URI of the object a notification is about, or `None` for events with no resource here
/// (ports, `SERVICE_OUT_OF_SYNC`).
pub fn origin(n: &NotificationDoc) -> Option<String> {
    let name = n.event_name.as_str();
    if name.starts_with("PORTAL_GROUP_") {
        Some(endpoint_group_uri(&n.subsystem, &n.id))
    } else if name.starts_with("PORTAL_") {
        Some(endpoint_uri(&n.id))
    } else if name.starts_with("TARGET_") {
        Some(connection_uri(&n.id))
    } else if name.starts_with("SUB_SYSTEM_") {
        Some(storage_uri(&n.id))
    } else {
        None
    }
}

fn message_of(n: &NotificationDoc) -> Option<&'static Message> {
    let name = n.event_name.as_str();
    if name.ends_with("_ARRIVE") {
        Some(&CREATED)
    } else if name.ends_with("_DEPART") {
        Some(&REMOVED)
    } else if name.ends_with("_MODIFY") {
        Some(&CHANGED)
    } else {
        None
    }
}

/// One record of an event (`Events[]` member).
fn record(
    event_id: u64,
    timestamp: &str,
    message: &Message,
    args: &[String],
    text: String,
    uri: &str,
    n: &NotificationDoc,
) -> Value {
    json!({
        "EventId": event_id.to_string(),
        "EventTimestamp": timestamp,
        "MessageId": message.id,
        "Message": text,
        "MessageArgs": args,
        "MessageSeverity": message.severity,
        "OriginOfCondition": { "@odata.id": uri },
        "Oem": { "Vds": {
            "@odata.type": "#VdsRedfish.v1_0_0.EventRecord",
            "Event": n.event,
            "EventName": n.event_name,
            "ObjectType": n.object_type,
            "Provider": n.provider,
            "ObjectId": n.id,
            "SubsystemId": n.subsystem,
        }},
    })
}

/// The health of each Endpoint and Storage, to tell when one changes.
#[derive(Debug, Default)]
pub struct HealthBook {
    known: HashMap<String, Option<Health>>,
}

impl HealthBook {
    /// Records the health of everything in `fleet`.
    pub fn learn(&mut self, fleet: &[SubsystemInventory]) {
        for s in fleet {
            if let Some(id) = &s.row.id {
                self.known.insert(
                    storage_uri(id),
                    subsystem_status(&s.row.status, &s.row.health).health,
                );
            }
            for p in &s.portals {
                self.known
                    .insert(endpoint_uri(&p.id), portal_status(&p.status).health);
            }
        }
    }

    /// The health now recorded for `uri` in `fleet`, and whether it differs from what was known
    /// (an object seen for the first time has not changed).
    fn changed(&mut self, uri: &str, now: Option<Health>) -> bool {
        match self.known.insert(uri.to_string(), now) {
            Some(before) => before != now,
            None => false,
        }
    }

    fn forget(&mut self, uri: &str) {
        self.known.remove(uri);
    }
}

/// The health `fleet` now gives the object of `uri` (an Endpoint or a Storage), if it has one.
fn health_now(fleet: &[SubsystemInventory], n: &NotificationDoc) -> Option<Option<Health>> {
    let name = n.event_name.as_str();
    if name == "PORTAL_MODIFY" {
        fleet
            .iter()
            .flat_map(|s| &s.portals)
            .find(|p| p.id == n.id)
            .map(|p| portal_status(&p.status).health)
    } else if name == "SUB_SYSTEM_MODIFY" {
        fleet
            .iter()
            .find(|s| s.row.id.as_deref() == Some(n.id.as_str()))
            .map(|s| subsystem_status(&s.row.status, &s.row.health).health)
    } else {
        None
    }
}

/// An event ready to stream: its id and its `Event` document.
#[derive(Debug, Clone)]
pub struct Streamed {
    /// The SSE id (and the event's `Id`): increasing.
    pub id: u64,
    /// The `Event` document.
    pub document: Value,
}

/// Turns notifications into numbered events, keeping the last [`REPLAY`] for clients that
/// reconnect.
#[derive(Debug, Default)]
pub struct Journal {
    next: u64,
    recent: VecDeque<Streamed>,
    /// The health of each Endpoint and Storage.
    pub health: HealthBook,
}

impl Journal {
    /// The events for a batch of notifications, `fleet` being the state after it; each is also
    /// kept for replay.
    pub fn record(
        &mut self,
        batch: &[NotificationDoc],
        fleet: &[SubsystemInventory],
        timestamp: &str,
    ) -> Vec<Streamed> {
        let mut out = Vec::new();
        for n in batch {
            let (Some(uri), Some(message)) = (origin(n), message_of(n)) else {
                continue;
            };
            self.next += 1;
            let id = self.next;
            let mut records = vec![record(
                id,
                timestamp,
                message,
                &[],
                message.text.to_string(),
                &uri,
                n,
            )];
            if message.id == REMOVED.id {
                self.health.forget(&uri);
            } else if let Some(now) = health_now(fleet, n) {
                if self.health.changed(&uri, now) {
                    let (severity, label) = match now {
                        Some(Health::Ok) => ("OK", "OK"),
                        Some(Health::Warning) => ("Warning", "Warning"),
                        Some(Health::Critical) => ("Critical", "Critical"),
                        None => ("OK", "Unknown"),
                    };
                    let status = Message {
                        id: match severity {
                            "Warning" => "ResourceEvent.1.4.ResourceStatusChangedWarning",
                            "Critical" => "ResourceEvent.1.4.ResourceStatusChangedCritical",
                            _ => "ResourceEvent.1.4.ResourceStatusChangedOK",
                        },
                        text: "",
                        severity,
                    };
                    let args = [uri.clone(), label.to_string()];
                    let text = format!("The health of resource '{uri}' has changed to {label}.");
                    records.push(record(id, timestamp, &status, &args, text, &uri, n));
                }
            }
            let document = json!({
                "@odata.type": types::EVENT,
                "Id": id.to_string(),
                "Name": format!("vds {}", n.event_name),
                "Context": "vds",
                "Events@odata.count": records.len(),
                "Events": records,
            });
            let streamed = Streamed { id, document };
            if self.recent.len() == REPLAY {
                self.recent.pop_front();
            }
            self.recent.push_back(streamed.clone());
            out.push(streamed);
        }
        out
    }

    /// The kept events after `last_seen`, oldest first; `None` when some of them are gone (the
    /// client must re-read the resources).
    pub fn since(&self, last_seen: u64) -> Option<Vec<Streamed>> {
        let oldest = self.recent.front().map_or(self.next + 1, |s| s.id);
        if last_seen + 1 < oldest && last_seen < self.next {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(|s| s.id > last_seen)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_api::{PortalRow, SubsystemRow};

    fn note(event: u32, name: &str, id: &str) -> NotificationDoc {
        NotificationDoc {
            provider: "st".into(),
            object_type: 36,
            event,
            event_name: name.into(),
            id: id.into(),
            subsystem: "s1".into(),
        }
    }

    fn fleet(status: &str) -> Vec<SubsystemInventory> {
        vec![SubsystemInventory {
            row: SubsystemRow {
                index: 0,
                name: "lab".into(),
                provider: "st".into(),
                id: Some("s1".into()),
                friendly_name: "lab".into(),
                identification: String::new(),
                status: "ONLINE".into(),
                health: "HEALTHY".into(),
                portals: 1,
                targets: 0,
                detail: None,
            },
            portals: vec![PortalRow {
                index: 0,
                id: "p1".into(),
                address: "127.0.0.1".into(),
                port: 3260,
                address_type: "IPV4".into(),
                status: status.into(),
            }],
            targets: Vec::new(),
        }]
    }

    #[test]
    fn a_portal_that_goes_offline_is_changed_and_its_health_too() {
        let mut j = Journal::default();
        j.health.learn(&fleet("ONLINE"));
        let out = j.record(&[note(125, "PORTAL_MODIFY", "p1")], &fleet("OFFLINE"), "t");
        assert_eq!(out.len(), 1);
        let events = &out[0].document["Events"];
        assert_eq!(events[0]["MessageId"], "ResourceEvent.1.4.ResourceChanged");
        assert_eq!(
            events[0]["OriginOfCondition"]["@odata.id"],
            "/redfish/v1/Fabrics/iSCSI/Endpoints/p1"
        );
        assert_eq!(
            events[1]["MessageId"],
            "ResourceEvent.1.4.ResourceStatusChangedWarning"
        );
        assert_eq!(
            events[1]["MessageArgs"],
            json!(["/redfish/v1/Fabrics/iSCSI/Endpoints/p1", "Warning"])
        );
        // The same health again: changed, but no status message.
        let out = j.record(&[note(125, "PORTAL_MODIFY", "p1")], &fleet("OFFLINE"), "t");
        assert_eq!(out[0].document["Events@odata.count"], 1);
        // Arrive and depart; a port event has no resource here.
        let out = j.record(
            &[
                note(124, "PORTAL_DEPART", "p1"),
                note(123, "PORTAL_ARRIVE", "p2"),
                note(999, "PORT_ARRIVE", "x"),
            ],
            &fleet("OFFLINE"),
            "t",
        );
        let ids: Vec<_> = out
            .iter()
            .map(|s| s.document["Events"][0]["MessageId"].clone())
            .collect();
        assert_eq!(
            ids,
            [
                json!("ResourceEvent.1.4.ResourceRemoved"),
                json!("ResourceEvent.1.4.ResourceCreated")
            ]
        );
        assert_eq!(out[1].id, 4, "ids increase by one per event");
    }

    #[test]
    fn replay_gives_what_was_missed_or_says_it_is_gone() {
        let mut j = Journal::default();
        for _ in 0..REPLAY + 10 {
            j.record(&[note(125, "PORTAL_MODIFY", "p1")], &[], "t");
        }
        let last = (REPLAY + 10) as u64;
        assert_eq!(j.since(last).map(|v| v.len()), Some(0));
        assert_eq!(
            j.since(last - 3)
                .map(|v| v.iter().map(|s| s.id).collect::<Vec<_>>()),
            Some(vec![last - 2, last - 1, last])
        );
        assert_eq!(
            j.since(10).map(|v| v.len()),
            Some(REPLAY),
            "the oldest kept is 11"
        );
        assert!(j.since(9).is_none(), "event 10 is gone");
    }
}
