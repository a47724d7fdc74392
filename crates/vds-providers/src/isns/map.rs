//! The pure half of the iSNS provider: from what the directory answered ([`isns_proto::Objects`])
//! and what each portal probe answered, the subsystems' [`SubSystemSnapshot`]s. No sockets, no
//! clock, no runtime; the driver in `mod.rs` queries, probes and calls these.
//!
//! The rules (the provider's documented behaviour, see the module doc of `isns`):
//! - one subsystem per network entity with at least one storage node of type Target, keyed and
//!   named by its entity id (EID), in EID order;
//! - its portals: the entity's TCP portals, sorted (IPv4, IPv6; then address, then port); a UDP
//!   portal is left out and said in the detail (an iSCSI portal is TCP, and the two would be one
//!   `VDS_IPADDRESS`);
//! - its targets: the entity's nodes whose type has the Target bit, sorted by name, the alias as
//!   friendly name;
//! - each target's portal groups: one per portal group tag (PGT) among the target's portal groups
//!   in the directory, holding the portals with that tag; a NULL PGT gives the portal no access and
//!   so no group; a PGT above 65535 (a VDS tag is 16 bits, and so is an iSCSI TPGT) or a group
//!   whose portal is not one of the entity's is left out and said in the detail.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use iscsi_proto::Host;
use isns_proto::{NodeType, Objects};
use vds_model::{
    Health, IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot, SubSystemSnapshot,
    SubSystemStatus, TargetSnapshot, VdsIpAddress,
};

use crate::sendtargets::{Failure, sort_key};

/// One portal of an entity: its VDS address and where to probe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ViewPortal {
    pub(crate) address: VdsIpAddress,
    pub(crate) host: Host,
    pub(crate) port: u16,
}

/// One target of an entity with its portal groups (tag → portal addresses, in portal order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ViewTarget {
    pub(crate) name: String,
    pub(crate) alias: String,
    pub(crate) groups: BTreeMap<u16, Vec<VdsIpAddress>>,
}

/// One entity as a subsystem will show it, before its portals are probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntityView {
    pub(crate) eid: String,
    pub(crate) portals: Vec<ViewPortal>,
    pub(crate) targets: Vec<ViewTarget>,
    /// What the directory said that the subsystem cannot show, for the detail.
    pub(crate) notes: Vec<String>,
}

/// What a portal's status is, and why when it is not `ONLINE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortalState {
    pub(crate) status: IscsiPortalStatus,
    pub(crate) cause: Option<String>,
}

impl PortalState {
    /// What a probe answered.
    pub(crate) fn probed(result: &Result<(), Failure>) -> PortalState {
        match result {
            Ok(()) => PortalState {
                status: IscsiPortalStatus::Online,
                cause: None,
            },
            Err(f) => PortalState {
                status: f.class.portal_status(),
                cause: Some(f.cause.clone()),
            },
        }
    }

    /// A status carried over from the previous picture (reenumerate does not probe known portals).
    pub(crate) fn kept(status: IscsiPortalStatus) -> PortalState {
        let cause = (status != IscsiPortalStatus::Online)
            .then(|| format!("{} at the last refresh", status.label()));
        PortalState { status, cause }
    }

    /// Not probed (past the per-subsystem cap).
    pub(crate) fn unknown() -> PortalState {
        PortalState {
            status: IscsiPortalStatus::Unknown,
            cause: Some("not probed (more portals than are probed per subsystem)".into()),
        }
    }
}

fn is_target(t: Option<NodeType>) -> bool {
    t.is_some_and(|t| t.contains(NodeType::TARGET))
}

fn vds_address(ip: IpAddr, port: u16) -> (VdsIpAddress, Host) {
    let p = u32::from(port);
    match ip {
        IpAddr::V4(addr) => (VdsIpAddress::Ipv4 { addr, port: p }, Host::Ipv4(addr)),
        IpAddr::V6(addr) => (
            VdsIpAddress::Ipv6 {
                addr,
                flow_info: 0,
                scope_id: 0,
                port: p,
            },
            Host::Ipv6 { addr, zone: None },
        ),
    }
}

/// The EIDs of the entities that have at least one target node, in EID order.
pub(crate) fn target_entities(objects: &Objects) -> Vec<String> {
    let mut eids: Vec<String> = objects
        .nodes
        .iter()
        .filter(|n| is_target(n.node_type))
        .filter_map(|n| n.entity.clone())
        .collect();
    eids.sort();
    eids.dedup();
    eids
}

/// The view of entity `eid` in `objects`, or `None` when it has no target node.
pub(crate) fn entity_view(objects: &Objects, eid: &str) -> Option<EntityView> {
    let mine = |e: &Option<String>| e.as_deref() == Some(eid);
    let mut targets: Vec<&isns_proto::Node> = objects
        .nodes
        .iter()
        .filter(|n| mine(&n.entity) && is_target(n.node_type))
        .collect();
    if targets.is_empty() {
        return None;
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut notes = Vec::new();
    let mut portals: Vec<ViewPortal> = Vec::new();
    for p in objects.portals.iter().filter(|p| mine(&p.entity)) {
        if p.port.udp {
            notes.push(format!(
                "portal {} port {} is UDP and is left out (iSCSI portals are TCP)",
                p.ip, p.port.number
            ));
            continue;
        }
        let (address, host) = vds_address(p.ip, p.port.number);
        if portals.iter().all(|q| q.address != address) {
            portals.push(ViewPortal {
                address,
                host,
                port: p.port.number,
            });
        }
    }
    portals.sort_by_cached_key(|p| sort_key(&p.address));
    let order: HashMap<&VdsIpAddress, usize> = portals
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.address, i))
        .collect();
    let mut views = Vec::with_capacity(targets.len());
    for node in targets {
        let mut groups: BTreeMap<u16, Vec<VdsIpAddress>> = BTreeMap::new();
        for g in objects.portal_groups_of(&node.name) {
            // A NULL PGT: the portal gives no access to the node, so it is in no group.
            let Some(tag) = g.tag else { continue };
            if g.port.udp {
                continue;
            }
            let (address, _) = vds_address(g.ip, g.port.number);
            let Ok(tag) = u16::try_from(tag) else {
                notes.push(format!(
                    "target {} has portal group tag {tag} on {address}, above 65535; left out",
                    node.name
                ));
                continue;
            };
            if !order.contains_key(&address) {
                notes.push(format!(
                    "target {} has a portal group on {address}, which is not a portal of its \
                     entity; left out",
                    node.name
                ));
                continue;
            }
            groups.entry(tag).or_default().push(address);
        }
        for portals in groups.values_mut() {
            portals.sort_by_key(|a| order.get(a).copied().unwrap_or(usize::MAX));
            portals.dedup();
        }
        views.push(ViewTarget {
            name: node.name.clone(),
            alias: node.alias.clone().unwrap_or_default(),
            groups,
        });
    }
    Some(EntityView {
        eid: eid.to_owned(),
        portals,
        targets: views,
        notes,
    })
}

/// The view a previous snapshot gives (when the directory cannot be asked): its portals and
/// targets as they were.
pub(crate) fn view_of_previous(previous: &SubSystemSnapshot) -> EntityView {
    let portals = previous
        .portals
        .iter()
        .filter_map(|p| match &p.address {
            VdsIpAddress::Ipv4 { addr, port } => Some(ViewPortal {
                address: p.address.clone(),
                host: Host::Ipv4(*addr),
                port: u16::try_from(*port).ok()?,
            }),
            VdsIpAddress::Ipv6 { addr, port, .. } => Some(ViewPortal {
                address: p.address.clone(),
                host: Host::Ipv6 {
                    addr: *addr,
                    zone: None,
                },
                port: u16::try_from(*port).ok()?,
            }),
            _ => None,
        })
        .collect();
    let targets = previous
        .targets
        .iter()
        .map(|t| ViewTarget {
            name: t.iscsi_name.clone(),
            alias: t.friendly_name.clone(),
            groups: t
                .portal_groups
                .iter()
                .map(|g| (g.tag, g.portals.clone()))
                .collect(),
        })
        .collect();
    EntityView {
        eid: previous.key.clone(),
        portals,
        targets,
        notes: Vec::new(),
    }
}

/// What a subsystem says of itself besides its objects.
fn base(eid: &str, server: &str, status: SubSystemStatus) -> SubSystemSnapshot {
    let mut s = SubSystemSnapshot::new(eid, status);
    s.identification = format!("iSNS entity {eid} at {server}");
    s
}

/// The subsystem of `view`, its portals with `states` (by [`VdsIpAddress::canonical_key`]; a
/// portal without one is `UNKNOWN`).
///
/// Status: `ONLINE` (health `HEALTHY`) when every portal answered, `PARTIALLY_MANAGED` (health
/// `DEGRADED`) when some did, `OFFLINE` when none did or the entity has no portal. The detail
/// names each portal that did not answer and why, then the notes.
pub(crate) fn snapshot(
    view: &EntityView,
    server: &str,
    states: &HashMap<String, PortalState>,
) -> SubSystemSnapshot {
    let mut portals = Vec::with_capacity(view.portals.len());
    let mut lines = Vec::new();
    for p in &view.portals {
        let state = states
            .get(&p.address.canonical_key())
            .cloned()
            .unwrap_or_else(PortalState::unknown);
        if let Some(cause) = &state.cause {
            lines.push(format!("{}: {cause}", p.address));
        }
        portals.push(PortalSnapshot {
            address: p.address.clone(),
            status: state.status,
        });
    }
    let online = portals
        .iter()
        .filter(|p| p.status == IscsiPortalStatus::Online)
        .count();
    let (status, health) = if portals.is_empty() {
        lines.push("the entity registered no portal".into());
        (SubSystemStatus::Offline, Health::Unknown)
    } else if online == portals.len() {
        (SubSystemStatus::Online, Health::Healthy)
    } else if online > 0 {
        (SubSystemStatus::PartiallyManaged, Health::Degraded)
    } else {
        (SubSystemStatus::Offline, Health::Unknown)
    };
    lines.extend(view.notes.iter().cloned());
    let mut snap = base(&view.eid, server, status);
    snap.health = health;
    snap.detail = (!lines.is_empty()).then(|| lines.join("; "));
    snap.portals = portals;
    snap.targets = view
        .targets
        .iter()
        .map(|t| TargetSnapshot {
            iscsi_name: t.name.clone(),
            friendly_name: t.alias.clone(),
            chap_enabled: false,
            lun_count: 0,
            // The directory does not say who is logged in.
            connected_initiators: Vec::new(),
            portal_groups: t
                .groups
                .iter()
                .map(|(tag, portals)| PortalGroupSnapshot {
                    tag: *tag,
                    portals: portals.clone(),
                })
                .collect(),
        })
        .collect();
    snap
}

/// The key of the subsystem that stands for "the directory shows nothing" (see
/// [`nothing_visible`]). It can share no picture with an entity: it exists only when no entity is
/// visible.
pub(crate) fn nothing_visible_key(server: &str) -> String {
    format!("iSNS {server}")
}

/// Whether `previous` is the subsystem of [`nothing_visible`] (an entity's always has a target).
pub(crate) fn is_nothing_visible(previous: &SubSystemSnapshot, server: &str) -> bool {
    previous.key == nothing_visible_key(server) && previous.targets.is_empty()
}

/// The subsystem reported when an unregistered source sees no storage node at all: an empty
/// answer that may be an empty fabric or one hidden from us, so it is said, not reported as a
/// healthy empty fabric. `OFFLINE`, no objects, the reason as detail.
pub(crate) fn nothing_visible(server: &str, source: &str) -> SubSystemSnapshot {
    let mut s = SubSystemSnapshot::new(nothing_visible_key(server), SubSystemStatus::Offline);
    s.identification = format!("iSNS server {server}");
    s.detail = Some(format!(
        "the iSNS server shows no storage node to {source}, an unregistered source: either \
         nothing is registered, or the server hides what is (with DefaultDiscoveryDomain = 0 an \
         unregistered source sees nothing, and nodes inside discovery domains are never shown to \
         it); add the provider with --control-node to see every node"
    ));
    s
}

/// An entity that the directory no longer has (or that has no target node any more), refreshed:
/// its previous objects kept with every portal `OFFLINE`, `OFFLINE`, and why. Reenumerate makes it
/// depart.
pub(crate) fn retired(previous: &SubSystemSnapshot, server: &str) -> SubSystemSnapshot {
    let mut s = previous.clone();
    for p in &mut s.portals {
        p.status = IscsiPortalStatus::Offline;
    }
    s.status = SubSystemStatus::Offline;
    s.health = Health::Unknown;
    s.identification = format!("iSNS entity {} at {server}", previous.key);
    s.detail = Some(format!(
        "the iSNS server no longer has entity {} with a storage node of type Target; the next \
         reenumerate removes it",
        previous.key
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendtargets::FailureClass;
    use isns_proto::{Entity, Node, Port, Portal, PortalGroup};

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn node(name: &str, eid: &str, t: u32, alias: Option<&str>) -> Node {
        Node {
            name: name.into(),
            node_type: Some(NodeType(t)),
            alias: alias.map(Into::into),
            scn_bitmap: None,
            entity: Some(eid.into()),
        }
    }

    fn portal(last: u8, port: u16, eid: &str) -> Portal {
        Portal {
            ip: v4(last),
            port: Port::tcp(port),
            esi_port: None,
            scn_port: None,
            index: None,
            entity: Some(eid.into()),
        }
    }

    fn pg(node: &str, last: u8, port: u16, tag: Option<u32>) -> PortalGroup {
        PortalGroup {
            node: node.into(),
            ip: v4(last),
            port: Port::tcp(port),
            tag,
            index: None,
        }
    }

    fn entity(eid: &str) -> Entity {
        Entity {
            eid: eid.into(),
            protocol: Some(2),
            registration_period: None,
        }
    }

    /// The fabric of the tests against isnsd, as a Control node sees it, plus what isnsd cannot
    /// hold: a NULL PGT, a tag over 16 bits, a UDP portal, a group on a foreign portal.
    fn fabric() -> Objects {
        Objects {
            entities: vec![entity("host1"), entity("host2"), entity("vds")],
            nodes: vec![
                node("iqn.t:disk2", "host1", 1, None),
                node("iqn.t:disk1", "host1", 1, Some("disk1")),
                node("iqn.t:init1", "host2", 2, None),
                node("iqn.t:ctl", "vds", 4, None),
            ],
            portals: vec![
                portal(2, 3260, "host1"),
                portal(1, 3260, "host1"),
                portal(3, 3260, "host1"),
                Portal {
                    port: Port {
                        number: 3260,
                        udp: true,
                    },
                    ..portal(1, 3260, "host1")
                },
                portal(9, 3260, "host2"),
            ],
            portal_groups: vec![
                pg("iqn.t:disk1", 1, 3260, Some(1)),
                pg("iqn.t:disk1", 2, 3260, Some(2)),
                pg("iqn.t:disk1", 3, 3260, Some(70000)),
                pg("iqn.t:disk2", 3, 3260, None),
                pg("iqn.t:disk2", 1, 3260, Some(1)),
                pg("iqn.t:disk2", 9, 3260, Some(5)),
            ],
        }
    }

    #[test]
    fn one_subsystem_per_entity_with_a_target() {
        let o = fabric();
        assert_eq!(target_entities(&o), vec!["host1".to_string()]);
        assert!(entity_view(&o, "host2").is_none(), "initiator only");
        assert!(entity_view(&o, "vds").is_none(), "control only");
        assert!(entity_view(&o, "nope").is_none());
    }

    #[test]
    fn portals_targets_and_groups_by_tag() {
        let v = entity_view(&fabric(), "host1").unwrap();
        let addrs: Vec<String> = v.portals.iter().map(|p| p.address.to_string()).collect();
        assert_eq!(
            addrs,
            ["127.0.0.1:3260", "127.0.0.2:3260", "127.0.0.3:3260"]
        );
        let names: Vec<&str> = v.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["iqn.t:disk1", "iqn.t:disk2"]);
        assert_eq!(v.targets[0].alias, "disk1");
        assert_eq!(v.targets[1].alias, "");
        let tags = |i: usize| -> Vec<(u16, Vec<String>)> {
            v.targets[i]
                .groups
                .iter()
                .map(|(t, p)| (*t, p.iter().map(ToString::to_string).collect()))
                .collect()
        };
        assert_eq!(
            tags(0),
            vec![
                (1, vec!["127.0.0.1:3260".to_string()]),
                (2, vec!["127.0.0.2:3260".to_string()])
            ]
        );
        // The NULL PGT on 127.0.0.3 gives no group; the foreign portal's group is left out.
        assert_eq!(tags(1), vec![(1, vec!["127.0.0.1:3260".to_string()])]);
        let notes = v.notes.join("\n");
        assert!(notes.contains("UDP"), "{notes}");
        assert!(notes.contains("70000"), "{notes}");
        assert!(notes.contains("127.0.0.9:3260"), "{notes}");
    }

    fn states(
        v: &EntityView,
        f: impl Fn(usize) -> Result<(), Failure>,
    ) -> HashMap<String, PortalState> {
        v.portals
            .iter()
            .enumerate()
            .map(|(i, p)| (p.address.canonical_key(), PortalState::probed(&f(i))))
            .collect()
    }

    fn refused() -> Failure {
        Failure {
            class: FailureClass::Unreachable,
            cause: "cannot connect: Connection refused".into(),
        }
    }

    #[test]
    fn status_follows_the_probes() {
        let v = entity_view(&fabric(), "host1").unwrap();
        let all = snapshot(&v, "127.0.0.1:3205", &states(&v, |_| Ok(())));
        assert_eq!(
            (all.status, all.health),
            (SubSystemStatus::Online, Health::Healthy)
        );
        assert_eq!(all.key, "host1");
        assert_eq!(all.friendly_name, "host1");
        assert!(all.identification.contains("127.0.0.1:3205"));
        // The notes are said even when every portal answers.
        assert!(all.detail.as_deref().is_some_and(|d| d.contains("UDP")));
        let some = snapshot(
            &v,
            "s",
            &states(&v, |i| if i == 0 { Ok(()) } else { Err(refused()) }),
        );
        assert_eq!(
            (some.status, some.health),
            (SubSystemStatus::PartiallyManaged, Health::Degraded)
        );
        assert!(
            some.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("127.0.0.2:3260: cannot connect"))
        );
        let none = snapshot(&v, "s", &states(&v, |_| Err(refused())));
        assert_eq!(none.status, SubSystemStatus::Offline);
        assert!(
            none.portals
                .iter()
                .all(|p| p.status == IscsiPortalStatus::Offline)
        );
        // Every object is still there: the entity is registered.
        assert_eq!(none.targets.len(), 2);
        let unprobed = snapshot(&v, "s", &HashMap::new());
        assert!(
            unprobed
                .portals
                .iter()
                .all(|p| p.status == IscsiPortalStatus::Unknown)
        );
        assert_eq!(unprobed.status, SubSystemStatus::Offline);
    }

    #[test]
    fn snapshots_keep_the_model_rules() {
        let v = entity_view(&fabric(), "host1").unwrap();
        let s = snapshot(&v, "s", &states(&v, |_| Ok(())));
        assert_eq!(vds_model::check_snapshots(std::slice::from_ref(&s)), Ok(()));
        let back = view_of_previous(&s);
        assert_eq!(back.portals, v.portals);
        assert_eq!(back.targets, v.targets);
    }

    #[test]
    fn nothing_visible_and_retired() {
        let n = nothing_visible("127.0.0.1:3205", "iqn.x:me");
        assert!(is_nothing_visible(&n, "127.0.0.1:3205"));
        assert_eq!(n.status, SubSystemStatus::Offline);
        assert!(
            n.detail
                .as_deref()
                .is_some_and(|d| d.contains("--control-node"))
        );
        let v = entity_view(&fabric(), "host1").unwrap();
        let s = snapshot(&v, "s", &states(&v, |_| Ok(())));
        assert!(!is_nothing_visible(&s, "s"));
        let r = retired(&s, "s");
        assert_eq!(r.status, SubSystemStatus::Offline);
        assert_eq!(r.targets, s.targets);
        assert!(
            r.portals
                .iter()
                .all(|p| p.status == IscsiPortalStatus::Offline)
        );
        assert!(
            r.detail
                .as_deref()
                .is_some_and(|d| d.contains("reenumerate"))
        );
    }
}
