//! Decoding query replies into objects (reference recipe §3): a reply's operating attributes are
//! a flat list in which a *key tag* starts a new object — 1 an entity, 32 a storage node, 16 (+17)
//! a portal, 48 (+49, +50) a portal group — and the attributes after it, up to the next key tag,
//! belong to it when they are of the same object type (tags 1–15 entity, 16–31 portal, 32–47
//! node, 48–63 portal group). Attributes of another type, and NIL values, are skipped: a server
//! echoes the NIL attributes it could not fill.
//!
//! Nodes and portals are attached to the entity whose EID came last before them. Objects are
//! deduplicated by key (EID; name; IP + port; PG name + IP + port): the one-shot query repeats an
//! entity and its portals for each of its nodes, and merging the replies of per-node queries
//! repeats them again. A later occurrence fills fields the earlier one lacked.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::codes::{NodeType, ScnBitmap, Tag};
use crate::error::PeerMisbehaved;
use crate::wire::{Attribute, Port, Value};

/// A network entity (key: EID, tag 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entity {
    /// Entity identifier.
    pub eid: String,
    /// Entity protocol (tag 2; 2 = iSCSI).
    pub protocol: Option<u32>,
    /// Registration period in seconds (tag 6).
    pub registration_period: Option<u32>,
}

/// An iSCSI storage node (key: name, tag 32).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// iSCSI name.
    pub name: String,
    /// Node type (tag 33); `None` when absent or NIL.
    pub node_type: Option<NodeType>,
    /// Alias (tag 34).
    pub alias: Option<String>,
    /// SCN bitmap (tag 35).
    pub scn_bitmap: Option<ScnBitmap>,
    /// The EID of the entity it was listed under.
    pub entity: Option<String>,
}

/// A portal (key: IP + port, tags 16 and 17).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Portal {
    /// Portal IP address.
    pub ip: IpAddr,
    /// Portal port.
    pub port: Port,
    /// ESI port (tag 20).
    pub esi_port: Option<Port>,
    /// SCN port (tag 23).
    pub scn_port: Option<Port>,
    /// Portal index (tag 22).
    pub index: Option<u32>,
    /// The EID of the entity it was listed under.
    pub entity: Option<String>,
}

/// A portal group: which portal gives access to which node, with which tag (key: tags 48, 49,
/// 50).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortalGroup {
    /// The node's iSCSI name (tag 48).
    pub node: String,
    /// The portal's IP address (tag 49).
    pub ip: IpAddr,
    /// The portal's port (tag 50).
    pub port: Port,
    /// The portal group tag (tag 51); `None` for a NULL PGT (no access) or when absent.
    pub tag: Option<u32>,
    /// PG index (tag 52).
    pub index: Option<u32>,
}

/// Everything decoded from one or more replies, each list in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    /// Network entities.
    pub entities: Vec<Entity>,
    /// Storage nodes.
    pub nodes: Vec<Node>,
    /// Portals.
    pub portals: Vec<Portal>,
    /// Portal groups.
    pub portal_groups: Vec<PortalGroup>,
}

/// The four object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// Network entity.
    Entity,
    /// Storage node.
    Node,
    /// Portal.
    Portal,
    /// Portal group.
    PortalGroup,
}

impl ObjectKind {
    /// The kind a tag belongs to (tags 1–15, 16–31, 32–47, 48–63).
    pub const fn of(tag: Tag) -> Option<ObjectKind> {
        match tag.0 {
            1..=15 => Some(ObjectKind::Entity),
            16..=31 => Some(ObjectKind::Portal),
            32..=47 => Some(ObjectKind::Node),
            48..=63 => Some(ObjectKind::PortalGroup),
            _ => None,
        }
    }

    /// The key tags of the kind, in wire order.
    pub const fn key_tags(self) -> &'static [Tag] {
        match self {
            ObjectKind::Entity => &[Tag::ENTITY_IDENTIFIER],
            ObjectKind::Node => &[Tag::ISCSI_NAME],
            ObjectKind::Portal => &[Tag::PORTAL_IP, Tag::PORTAL_PORT],
            ObjectKind::PortalGroup => {
                &[Tag::PG_ISCSI_NAME, Tag::PG_PORTAL_IP, Tag::PG_PORTAL_PORT]
            }
        }
    }

    /// A name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            ObjectKind::Entity => "entity",
            ObjectKind::Node => "storage node",
            ObjectKind::Portal => "portal",
            ObjectKind::PortalGroup => "portal group",
        }
    }
}

/// The object being filled while walking the attributes.
enum Current {
    None,
    Entity(usize),
    Node(usize),
    Portal(PendingPortal),
    Group(PendingGroup),
}

#[derive(Default)]
struct PendingPortal {
    ip: Option<IpAddr>,
    port: Option<Port>,
    esi_port: Option<Port>,
    scn_port: Option<Port>,
    index: Option<u32>,
}

struct PendingGroup {
    node: String,
    ip: Option<IpAddr>,
    port: Option<Port>,
    tag: Option<u32>,
    index: Option<u32>,
}

fn fill<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(v);
    }
}

/// Objects with their key indexes, for deduplication while decoding and merging.
#[derive(Debug, Clone, Default)]
pub struct ObjectsBuilder {
    objects: Objects,
    entities: HashMap<String, usize>,
    nodes: HashMap<String, usize>,
    portals: HashMap<(IpAddr, Port), usize>,
    groups: HashMap<(String, IpAddr, Port), usize>,
    max_objects: usize,
}

impl ObjectsBuilder {
    /// An empty builder that refuses to hold more than `max_objects` objects in all.
    pub fn new(max_objects: usize) -> ObjectsBuilder {
        ObjectsBuilder {
            max_objects,
            ..ObjectsBuilder::default()
        }
    }

    /// Objects held so far.
    pub fn len(&self) -> usize {
        let o = &self.objects;
        o.entities.len() + o.nodes.len() + o.portals.len() + o.portal_groups.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn room(&self) -> Result<(), PeerMisbehaved> {
        if self.len() >= self.max_objects {
            Err(PeerMisbehaved::TooManyObjects {
                max: self.max_objects,
            })
        } else {
            Ok(())
        }
    }

    fn entity(&mut self, e: Entity) -> Result<usize, PeerMisbehaved> {
        if let Some(&i) = self.entities.get(&e.eid) {
            let old = &mut self.objects.entities[i];
            fill(&mut old.protocol, &e.protocol);
            fill(&mut old.registration_period, &e.registration_period);
            return Ok(i);
        }
        self.room()?;
        let i = self.objects.entities.len();
        self.entities.insert(e.eid.clone(), i);
        self.objects.entities.push(e);
        Ok(i)
    }

    fn node(&mut self, n: Node) -> Result<usize, PeerMisbehaved> {
        if let Some(&i) = self.nodes.get(&n.name) {
            let old = &mut self.objects.nodes[i];
            fill(&mut old.node_type, &n.node_type);
            fill(&mut old.alias, &n.alias);
            fill(&mut old.scn_bitmap, &n.scn_bitmap);
            fill(&mut old.entity, &n.entity);
            return Ok(i);
        }
        self.room()?;
        let i = self.objects.nodes.len();
        self.nodes.insert(n.name.clone(), i);
        self.objects.nodes.push(n);
        Ok(i)
    }

    fn portal(&mut self, p: Portal) -> Result<(), PeerMisbehaved> {
        if let Some(&i) = self.portals.get(&(p.ip, p.port)) {
            let old = &mut self.objects.portals[i];
            fill(&mut old.esi_port, &p.esi_port);
            fill(&mut old.scn_port, &p.scn_port);
            fill(&mut old.index, &p.index);
            fill(&mut old.entity, &p.entity);
            return Ok(());
        }
        self.room()?;
        self.portals
            .insert((p.ip, p.port), self.objects.portals.len());
        self.objects.portals.push(p);
        Ok(())
    }

    fn group(&mut self, g: PortalGroup) -> Result<(), PeerMisbehaved> {
        let key = (g.node.clone(), g.ip, g.port);
        if let Some(&i) = self.groups.get(&key) {
            let old = &mut self.objects.portal_groups[i];
            fill(&mut old.tag, &g.tag);
            fill(&mut old.index, &g.index);
            return Ok(());
        }
        self.room()?;
        self.groups.insert(key, self.objects.portal_groups.len());
        self.objects.portal_groups.push(g);
        Ok(())
    }

    fn close(&mut self, cur: Current, entity: &Option<String>) -> Result<(), PeerMisbehaved> {
        match cur {
            Current::Portal(p) => {
                let incomplete = |missing| PeerMisbehaved::IncompleteObject {
                    object: "portal",
                    missing,
                };
                let ip = p.ip.ok_or(incomplete("its IP address (tag 16)"))?;
                let port = p.port.ok_or(incomplete("its port (tag 17)"))?;
                self.portal(Portal {
                    ip,
                    port,
                    esi_port: p.esi_port,
                    scn_port: p.scn_port,
                    index: p.index,
                    entity: entity.clone(),
                })
            }
            Current::Group(g) => {
                let incomplete = |missing| PeerMisbehaved::IncompleteObject {
                    object: "portal group",
                    missing,
                };
                let ip = g.ip.ok_or(incomplete("its portal IP address (tag 49)"))?;
                let port = g.port.ok_or(incomplete("its portal port (tag 50)"))?;
                self.group(PortalGroup {
                    node: g.node,
                    ip,
                    port,
                    tag: g.tag,
                    index: g.index,
                })
            }
            Current::None | Current::Entity(_) | Current::Node(_) => Ok(()),
        }
    }

    /// Decodes the operating attributes of one reply and merges the objects in.
    ///
    /// # Errors
    /// [`PeerMisbehaved::IncompleteObject`] for a portal or portal group without its whole key,
    /// [`PeerMisbehaved::TooManyObjects`] past the cap.
    pub fn add_reply(&mut self, attributes: &[Attribute]) -> Result<(), PeerMisbehaved> {
        let mut cur = Current::None;
        let mut entity: Option<String> = None;
        for a in attributes {
            if a.value == Value::Nil && a.tag != Tag::PG_TAG {
                continue;
            }
            match (a.tag, &a.value) {
                (Tag::ENTITY_IDENTIFIER, Value::String(eid)) => {
                    self.close(std::mem::replace(&mut cur, Current::None), &entity)?;
                    let i = self.entity(Entity {
                        eid: eid.clone(),
                        protocol: None,
                        registration_period: None,
                    })?;
                    entity = Some(eid.clone());
                    cur = Current::Entity(i);
                }
                (Tag::ISCSI_NAME, Value::String(name)) => {
                    self.close(std::mem::replace(&mut cur, Current::None), &entity)?;
                    let i = self.node(Node {
                        name: name.clone(),
                        node_type: None,
                        alias: None,
                        scn_bitmap: None,
                        entity: entity.clone(),
                    })?;
                    cur = Current::Node(i);
                }
                (Tag::PORTAL_IP, Value::Ip(ip)) => {
                    self.close(std::mem::replace(&mut cur, Current::None), &entity)?;
                    cur = Current::Portal(PendingPortal {
                        ip: Some(*ip),
                        ..PendingPortal::default()
                    });
                }
                (Tag::PG_ISCSI_NAME, Value::String(node)) => {
                    self.close(std::mem::replace(&mut cur, Current::None), &entity)?;
                    cur = Current::Group(PendingGroup {
                        node: node.clone(),
                        ip: None,
                        port: None,
                        tag: None,
                        index: None,
                    });
                }
                _ => self.attach(&mut cur, a),
            }
        }
        self.close(cur, &entity)
    }

    fn attach(&mut self, cur: &mut Current, a: &Attribute) {
        let o = &mut self.objects;
        match (cur, a.tag, &a.value) {
            (Current::Entity(i), Tag::ENTITY_PROTOCOL, Value::U32(v)) => {
                o.entities[*i].protocol = Some(*v)
            }
            (Current::Entity(i), Tag::REGISTRATION_PERIOD, Value::U32(v)) => {
                o.entities[*i].registration_period = Some(*v)
            }
            (Current::Node(i), Tag::ISCSI_NODE_TYPE, Value::U32(v)) => {
                o.nodes[*i].node_type = Some(NodeType(*v))
            }
            (Current::Node(i), Tag::ISCSI_ALIAS, Value::String(s)) => {
                o.nodes[*i].alias = Some(s.clone())
            }
            (Current::Node(i), Tag::ISCSI_SCN_BITMAP, Value::U32(v)) => {
                o.nodes[*i].scn_bitmap = Some(ScnBitmap(*v))
            }
            (Current::Portal(p), Tag::PORTAL_PORT, Value::Port(v)) => p.port = Some(*v),
            (Current::Portal(p), Tag::ESI_PORT, Value::Port(v)) => p.esi_port = Some(*v),
            (Current::Portal(p), Tag::SCN_PORT, Value::Port(v)) => p.scn_port = Some(*v),
            (Current::Portal(p), Tag::PORTAL_INDEX, Value::U32(v)) => p.index = Some(*v),
            (Current::Group(g), Tag::PG_PORTAL_IP, Value::Ip(v)) => g.ip = Some(*v),
            (Current::Group(g), Tag::PG_PORTAL_PORT, Value::Port(v)) => g.port = Some(*v),
            (Current::Group(g), Tag::PG_TAG, Value::U32(v)) => g.tag = Some(*v),
            (Current::Group(g), Tag::PG_TAG, Value::Nil) => g.tag = None,
            (Current::Group(g), Tag::PG_INDEX, Value::U32(v)) => g.index = Some(*v),
            _ => {}
        }
    }

    /// Merges objects decoded elsewhere (deduplicated as in [`ObjectsBuilder::add_reply`]).
    ///
    /// # Errors
    /// [`PeerMisbehaved::TooManyObjects`] past the cap.
    pub fn merge(&mut self, other: Objects) -> Result<(), PeerMisbehaved> {
        for e in other.entities {
            self.entity(e)?;
        }
        for n in other.nodes {
            self.node(n)?;
        }
        for p in other.portals {
            self.portal(p)?;
        }
        for g in other.portal_groups {
            self.group(g)?;
        }
        Ok(())
    }

    /// The objects.
    pub fn finish(self) -> Objects {
        self.objects
    }
}

impl Objects {
    /// Decodes the operating attributes of one reply (see the module doc), with no object cap
    /// beyond the attribute cap of a message.
    ///
    /// # Errors
    /// As [`ObjectsBuilder::add_reply`].
    pub fn decode(attributes: &[Attribute]) -> Result<Objects, PeerMisbehaved> {
        let mut b = ObjectsBuilder::new(usize::MAX);
        b.add_reply(attributes)?;
        Ok(b.finish())
    }

    /// Drops portal groups whose node is not among [`Objects::nodes`]: a Control node sees stale
    /// PGs of deregistered nodes (reference §2).
    pub fn drop_stale_portal_groups(&mut self) {
        let live: HashSet<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        self.portal_groups
            .retain(|g| live.contains(g.node.as_str()));
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
            && self.nodes.is_empty()
            && self.portals.is_empty()
            && self.portal_groups.is_empty()
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The portal groups of node `name`.
    pub fn portal_groups_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a PortalGroup> {
        self.portal_groups.iter().filter(move |g| g.node == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(tag: Tag, v: &str) -> Attribute {
        Attribute::string(tag, v)
    }

    fn ip(tag: Tag, last: u8) -> Attribute {
        Attribute::ip(tag, IpAddr::from([127, 0, 0, last]))
    }

    fn port(tag: Tag, p: u16) -> Attribute {
        Attribute::port(tag, Port::tcp(p))
    }

    /// The shape of isnsd's one-shot reply (reference §3.1), entity repeated per node.
    fn one_shot() -> Vec<Attribute> {
        vec![
            s(Tag::ENTITY_IDENTIFIER, "host1"),
            s(Tag::ISCSI_NAME, "iqn.t:disk1"),
            Attribute::u32(Tag::ISCSI_NODE_TYPE, 1),
            s(Tag::ISCSI_ALIAS, "disk1"),
            ip(Tag::PORTAL_IP, 1),
            port(Tag::PORTAL_PORT, 3260),
            s(Tag::PG_ISCSI_NAME, "iqn.t:disk1"),
            ip(Tag::PG_PORTAL_IP, 1),
            port(Tag::PG_PORTAL_PORT, 3260),
            Attribute::u32(Tag::PG_TAG, 1),
            ip(Tag::PORTAL_IP, 2),
            port(Tag::PORTAL_PORT, 3260),
            s(Tag::PG_ISCSI_NAME, "iqn.t:disk1"),
            ip(Tag::PG_PORTAL_IP, 2),
            port(Tag::PG_PORTAL_PORT, 3260),
            Attribute::nil(Tag::PG_TAG),
            s(Tag::ENTITY_IDENTIFIER, "host1"),
            s(Tag::ISCSI_NAME, "iqn.t:disk2"),
            Attribute::u32(Tag::ISCSI_NODE_TYPE, 1),
            Attribute::nil(Tag::ISCSI_ALIAS),
            ip(Tag::PORTAL_IP, 1),
            port(Tag::PORTAL_PORT, 3260),
            s(Tag::ENTITY_IDENTIFIER, "host2"),
            s(Tag::ISCSI_NAME, "iqn.t:init1"),
            Attribute::u32(Tag::ISCSI_NODE_TYPE, 2),
        ]
    }

    #[test]
    fn objects_by_key_tags() {
        let o = Objects::decode(&one_shot()).unwrap();
        assert_eq!(o.entities.len(), 2);
        assert_eq!(o.nodes.len(), 3);
        assert_eq!(o.portals.len(), 2, "portals deduplicated");
        assert_eq!(o.portal_groups.len(), 2);
        let d1 = o.node("iqn.t:disk1").unwrap();
        assert_eq!(d1.alias.as_deref(), Some("disk1"));
        assert_eq!(d1.node_type, Some(NodeType::TARGET));
        assert_eq!(d1.entity.as_deref(), Some("host1"));
        assert_eq!(o.node("iqn.t:disk2").unwrap().alias, None);
        assert_eq!(
            o.node("iqn.t:init1").unwrap().entity.as_deref(),
            Some("host2")
        );
        let tags: Vec<_> = o.portal_groups_of("iqn.t:disk1").map(|g| g.tag).collect();
        assert_eq!(tags, vec![Some(1), None]);
        assert_eq!(o.portals[1].entity.as_deref(), Some("host1"));
    }

    #[test]
    fn incomplete_keys_are_errors() {
        let a = vec![ip(Tag::PORTAL_IP, 1), s(Tag::ISCSI_NAME, "x")];
        assert!(matches!(
            Objects::decode(&a),
            Err(PeerMisbehaved::IncompleteObject {
                object: "portal",
                ..
            })
        ));
        let a = vec![s(Tag::PG_ISCSI_NAME, "x"), ip(Tag::PG_PORTAL_IP, 1)];
        assert!(matches!(
            Objects::decode(&a),
            Err(PeerMisbehaved::IncompleteObject {
                object: "portal group",
                ..
            })
        ));
    }

    #[test]
    fn caps_and_stale_groups() {
        let mut b = ObjectsBuilder::new(3);
        assert_eq!(
            b.add_reply(&one_shot()),
            Err(PeerMisbehaved::TooManyObjects { max: 3 })
        );
        let mut o = Objects::decode(&[
            s(Tag::PG_ISCSI_NAME, "gone"),
            ip(Tag::PG_PORTAL_IP, 1),
            port(Tag::PG_PORTAL_PORT, 1),
            s(Tag::ISCSI_NAME, "live"),
            s(Tag::PG_ISCSI_NAME, "live"),
            ip(Tag::PG_PORTAL_IP, 1),
            port(Tag::PG_PORTAL_PORT, 1),
        ])
        .unwrap();
        o.drop_stale_portal_groups();
        assert_eq!(o.portal_groups.len(), 1);
        assert_eq!(o.portal_groups[0].node, "live");
    }
}
