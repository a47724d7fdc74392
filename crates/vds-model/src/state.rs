//! The model's cache: an immutable picture of every subsystem, built and checked from backend
//! snapshots, and the diff between two pictures as notifications.
//!
//! A [`State`] is never changed in place. Writers build a new one and publish it atomically, so a
//! reader always sees one consistent picture and never waits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::{
    IscsiPortalGroupProp, IscsiPortalProp, IscsiTargetProp, Notification, NotificationEvent as Ev,
    NotificationTargetType as Ntt, ObjectId, SubSystemProp, SubSystemSnapshot,
};

/// Why a snapshot was refused: the invariant it breaks, for logs and errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvariantError {
    /// Two subsystems have the same key.
    #[error("subsystem key {0:?} appears twice")]
    DuplicateSubSystem(String),
    /// A subsystem lists the same portal address twice.
    #[error("subsystem {subsystem:?}: portal {portal} appears twice")]
    DuplicatePortal {
        /// The subsystem.
        subsystem: String,
        /// The address.
        portal: String,
    },
    /// A subsystem lists the same target twice.
    #[error("subsystem {subsystem:?}: target {target:?} appears twice")]
    DuplicateTarget {
        /// The subsystem.
        subsystem: String,
        /// The iSCSI name.
        target: String,
    },
    /// A target lists the same group tag twice.
    #[error("subsystem {subsystem:?}: target {target:?} has portal group tag {tag} twice")]
    DuplicateGroup {
        /// The subsystem.
        subsystem: String,
        /// The target.
        target: String,
        /// The tag.
        tag: u16,
    },
    /// A portal group names a portal the subsystem does not have.
    #[error("subsystem {subsystem:?}: target {target:?} group {tag} names unknown portal {portal}")]
    UnknownGroupPortal {
        /// The subsystem.
        subsystem: String,
        /// The target.
        target: String,
        /// The tag.
        tag: u16,
        /// The address.
        portal: String,
    },
    /// A portal is in two groups of the same target.
    #[error(
        "subsystem {subsystem:?}: portal {portal} is in two portal groups of target {target:?}"
    )]
    PortalInTwoGroups {
        /// The subsystem.
        subsystem: String,
        /// The target.
        target: String,
        /// The address.
        portal: String,
    },
}

#[derive(Debug)]
pub(crate) struct PortalEntry {
    pub(crate) prop: IscsiPortalProp,
    /// Groups (across all targets) that hold this portal, in target then group order.
    pub(crate) groups: Vec<ObjectId>,
}

#[derive(Debug)]
pub(crate) struct TargetEntry {
    pub(crate) prop: IscsiTargetProp,
    pub(crate) groups: Vec<ObjectId>,
    pub(crate) lun_count: u32,
    pub(crate) connected_initiators: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct GroupEntry {
    pub(crate) prop: IscsiPortalGroupProp,
    pub(crate) target: ObjectId,
    pub(crate) portals: Vec<ObjectId>,
}

/// One subsystem in the cache: its snapshot, and the same data indexed by id.
#[derive(Debug)]
pub(crate) struct SubState {
    pub(crate) snapshot: SubSystemSnapshot,
    pub(crate) prop: SubSystemProp,
    pub(crate) portal_order: Arc<[ObjectId]>,
    pub(crate) portals: HashMap<ObjectId, PortalEntry>,
    pub(crate) target_order: Arc<[ObjectId]>,
    pub(crate) targets: HashMap<ObjectId, TargetEntry>,
    pub(crate) groups: HashMap<ObjectId, GroupEntry>,
}

impl SubState {
    /// Builds and checks the indexed form of `snapshot` under `provider`.
    pub(crate) fn build(
        provider: ObjectId,
        snapshot: SubSystemSnapshot,
    ) -> Result<SubState, InvariantError> {
        let id = provider.child("subsystem", &snapshot.key);
        let ss = &snapshot.key;
        let mut portal_order = Vec::with_capacity(snapshot.portals.len());
        let mut portals = HashMap::with_capacity(snapshot.portals.len());
        for p in &snapshot.portals {
            let pid = id.child("portal", &p.address.canonical_key());
            let prop = IscsiPortalProp {
                id: pid,
                address: p.address.clone(),
                status: p.status,
            };
            if portals
                .insert(
                    pid,
                    PortalEntry {
                        prop,
                        groups: Vec::new(),
                    },
                )
                .is_some()
            {
                return Err(InvariantError::DuplicatePortal {
                    subsystem: ss.clone(),
                    portal: p.address.to_string(),
                });
            }
            portal_order.push(pid);
        }
        let mut target_order = Vec::with_capacity(snapshot.targets.len());
        let mut targets = HashMap::with_capacity(snapshot.targets.len());
        let mut groups = HashMap::new();
        for t in &snapshot.targets {
            let tid = id.child("target", &t.iscsi_name);
            let mut group_ids = Vec::with_capacity(t.portal_groups.len());
            let mut seen_in_target = HashSet::new();
            for g in &t.portal_groups {
                let gid = tid.child("portalgroup", &g.tag.to_string());
                let mut members = Vec::with_capacity(g.portals.len());
                for addr in &g.portals {
                    let pid = id.child("portal", &addr.canonical_key());
                    let Some(entry) = portals.get_mut(&pid) else {
                        return Err(InvariantError::UnknownGroupPortal {
                            subsystem: ss.clone(),
                            target: t.iscsi_name.clone(),
                            tag: g.tag,
                            portal: addr.to_string(),
                        });
                    };
                    if !seen_in_target.insert(pid) {
                        return Err(InvariantError::PortalInTwoGroups {
                            subsystem: ss.clone(),
                            target: t.iscsi_name.clone(),
                            portal: addr.to_string(),
                        });
                    }
                    entry.groups.push(gid);
                    members.push(pid);
                }
                let entry = GroupEntry {
                    prop: IscsiPortalGroupProp {
                        id: gid,
                        tag: g.tag,
                    },
                    target: tid,
                    portals: members,
                };
                if groups.insert(gid, entry).is_some() {
                    return Err(InvariantError::DuplicateGroup {
                        subsystem: ss.clone(),
                        target: t.iscsi_name.clone(),
                        tag: g.tag,
                    });
                }
                group_ids.push(gid);
            }
            let prop = IscsiTargetProp {
                id: tid,
                iscsi_name: t.iscsi_name.clone(),
                friendly_name: t.friendly_name.clone(),
                chap_enabled: t.chap_enabled,
            };
            let entry = TargetEntry {
                prop,
                groups: group_ids,
                lun_count: t.lun_count,
                connected_initiators: t.connected_initiators.clone(),
            };
            if targets.insert(tid, entry).is_some() {
                return Err(InvariantError::DuplicateTarget {
                    subsystem: ss.clone(),
                    target: t.iscsi_name.clone(),
                });
            }
            target_order.push(tid);
        }
        let prop = SubSystemProp {
            id,
            friendly_name: snapshot.friendly_name.clone(),
            identification: snapshot.identification.clone(),
            flags: snapshot.flags,
            stripe_size_flags: snapshot.stripe_size_flags,
            status: snapshot.status,
            health: snapshot.health,
            number_of_internal_buses: 0,
            max_number_of_slots_each_bus: 0,
            max_number_of_controllers: 0,
            rebuild_priority: 0,
        };
        Ok(SubState {
            snapshot,
            prop,
            portal_order: portal_order.into(),
            portals,
            target_order: target_order.into(),
            targets,
            groups,
        })
    }

    pub(crate) fn id(&self) -> ObjectId {
        self.prop.id
    }

    /// The target (by iSCSI name, compared without regard to ASCII case as RFC 3722's
    /// normalization folds names to lower case) across this subsystem, if present.
    pub(crate) fn target_named(&self, name: &str) -> Option<&TargetEntry> {
        self.targets
            .values()
            .find(|t| t.prop.iscsi_name.eq_ignore_ascii_case(name))
    }
}

/// Checks `snapshots` against every invariant the model enforces on a picture (what
/// [`crate::HwProvider::from_cache`] would refuse to load), without loading them anywhere. Gives
/// the error [`SubState::build`] would give for the same picture, at a fraction of the cost: no id
/// is derived and nothing is copied.
pub fn check_snapshots(snapshots: &[SubSystemSnapshot]) -> Result<(), InvariantError> {
    let mut keys = HashSet::with_capacity(snapshots.len());
    for snap in snapshots {
        if !keys.insert(snap.key.as_str()) {
            return Err(InvariantError::DuplicateSubSystem(snap.key.clone()));
        }
        check_snapshot(snap)?;
    }
    Ok(())
}

/// Above this many portals, a group member is found by its canonical key rather than by a scan.
const SCAN_PORTALS: usize = 8;

/// One subsystem's invariants, checked in the order [`SubState::build`] checks them.
fn check_snapshot(snapshot: &SubSystemSnapshot) -> Result<(), InvariantError> {
    let ss = &snapshot.key;
    let canonical: Vec<String> = snapshot
        .portals
        .iter()
        .map(|p| p.address.canonical_key())
        .collect();
    let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(canonical.len());
    for (i, key) in canonical.iter().enumerate() {
        if by_key.insert(key.as_str(), i).is_some() {
            return Err(InvariantError::DuplicatePortal {
                subsystem: ss.clone(),
                portal: snapshot.portals[i].address.to_string(),
            });
        }
    }
    // The portal a group member names: an identical address is the same portal (and, portals
    // being distinct, the only one); otherwise the canonical key decides.
    let portal_of = |addr: &crate::VdsIpAddress| -> Option<usize> {
        if snapshot.portals.len() <= SCAN_PORTALS {
            if let Some(i) = snapshot.portals.iter().position(|p| p.address == *addr) {
                return Some(i);
            }
        }
        by_key.get(addr.canonical_key().as_str()).copied()
    };
    let mut names: HashSet<&str> = HashSet::with_capacity(snapshot.targets.len());
    let mut groups: HashSet<(&str, u16)> = HashSet::with_capacity(snapshot.targets.len());
    // `stamp[i] == n` when portal i is in a group of the n-th target (from 1).
    let mut stamp: Vec<usize> = vec![0; snapshot.portals.len()];
    for (n, t) in snapshot.targets.iter().enumerate() {
        let n = n + 1;
        for g in &t.portal_groups {
            for addr in &g.portals {
                let Some(i) = portal_of(addr) else {
                    return Err(InvariantError::UnknownGroupPortal {
                        subsystem: ss.clone(),
                        target: t.iscsi_name.clone(),
                        tag: g.tag,
                        portal: addr.to_string(),
                    });
                };
                if stamp[i] == n {
                    return Err(InvariantError::PortalInTwoGroups {
                        subsystem: ss.clone(),
                        target: t.iscsi_name.clone(),
                        portal: addr.to_string(),
                    });
                }
                stamp[i] = n;
            }
            if !groups.insert((t.iscsi_name.as_str(), g.tag)) {
                return Err(InvariantError::DuplicateGroup {
                    subsystem: ss.clone(),
                    target: t.iscsi_name.clone(),
                    tag: g.tag,
                });
            }
        }
        if !names.insert(t.iscsi_name.as_str()) {
            return Err(InvariantError::DuplicateTarget {
                subsystem: ss.clone(),
                target: t.iscsi_name.clone(),
            });
        }
    }
    Ok(())
}

/// The whole cache: every subsystem, in enumeration order.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) order: Vec<ObjectId>,
    pub(crate) subsystems: HashMap<ObjectId, Arc<SubState>>,
}

impl State {
    pub(crate) fn build(
        provider: ObjectId,
        snapshots: Vec<SubSystemSnapshot>,
    ) -> Result<State, InvariantError> {
        State::rebuild(provider, snapshots, &State::default())
    }

    /// Like [`State::build`], reusing every subsystem of `previous` whose snapshot did not change
    /// (no ids derived again, no indexes rebuilt, and the diff skips it by pointer).
    pub(crate) fn rebuild(
        provider: ObjectId,
        snapshots: Vec<SubSystemSnapshot>,
        previous: &State,
    ) -> Result<State, InvariantError> {
        let mut state = State::default();
        for snap in snapshots {
            let key = snap.key.clone();
            let id = provider.child("subsystem", &snap.key);
            let sub = match previous.subsystems.get(&id) {
                Some(old) if old.snapshot == snap => old.clone(),
                _ => Arc::new(SubState::build(provider, snap)?),
            };
            if state.subsystems.insert(id, sub).is_some() {
                return Err(InvariantError::DuplicateSubSystem(key));
            }
            state.order.push(id);
        }
        Ok(state)
    }

    /// The snapshots, in order: what a persistent cache stores.
    pub(crate) fn export(&self) -> Vec<SubSystemSnapshot> {
        self.order
            .iter()
            .filter_map(|id| self.subsystems.get(id))
            .map(|s| s.snapshot.clone())
            .collect()
    }

    /// A copy with one subsystem replaced (kept in place in the order).
    pub(crate) fn with_subsystem(&self, sub: Arc<SubState>) -> State {
        let mut subsystems = self.subsystems.clone();
        let id = sub.id();
        let mut order = self.order.clone();
        if subsystems.insert(id, sub).is_none() {
            order.push(id);
        }
        State { order, subsystems }
    }
}

fn note(out: &mut Vec<Notification>, object_type: Ntt, event: Ev, id: ObjectId, sub: ObjectId) {
    out.push(Notification {
        object_type,
        event,
        id,
        subsystem: sub,
    });
}

/// The notifications that turn `old` into `new`: subsystem arrivals and departures, and within a
/// subsystem present in both, portal, target and portal-group arrivals, departures and changes.
pub(crate) fn diff(old: &State, new: &State) -> Vec<Notification> {
    let mut out = Vec::new();
    for id in &old.order {
        if !new.subsystems.contains_key(id) {
            note(&mut out, Ntt::SUB_SYSTEM, Ev::SUB_SYSTEM_DEPART, *id, *id);
        }
    }
    for id in &new.order {
        let Some(n) = new.subsystems.get(id) else {
            continue;
        };
        match old.subsystems.get(id) {
            None => note(&mut out, Ntt::SUB_SYSTEM, Ev::SUB_SYSTEM_ARRIVE, *id, *id),
            Some(o) if Arc::ptr_eq(o, n) => {}
            Some(o) => diff_subsystem(o, n, &mut out),
        }
    }
    out
}

fn diff_subsystem(o: &SubState, n: &SubState, out: &mut Vec<Notification>) {
    let sub = n.id();
    let note = |out: &mut Vec<Notification>, t, e, id| note(out, t, e, id, sub);
    if o.prop != n.prop {
        note(out, Ntt::SUB_SYSTEM, Ev::SUB_SYSTEM_MODIFY, n.id());
    }
    for id in o.portal_order.iter() {
        if !n.portals.contains_key(id) {
            note(out, Ntt::PORTAL, Ev::PORTAL_DEPART, *id);
        }
    }
    for id in n.portal_order.iter() {
        match (o.portals.get(id), n.portals.get(id)) {
            (None, _) => note(out, Ntt::PORTAL, Ev::PORTAL_ARRIVE, *id),
            (Some(a), Some(b)) if a.prop != b.prop => {
                note(out, Ntt::PORTAL, Ev::PORTAL_MODIFY, *id)
            }
            _ => {}
        }
    }
    for id in o.target_order.iter() {
        if !n.targets.contains_key(id) {
            note(out, Ntt::TARGET, Ev::TARGET_DEPART, *id);
        }
    }
    for id in n.target_order.iter() {
        match (o.targets.get(id), n.targets.get(id)) {
            (None, _) => note(out, Ntt::TARGET, Ev::TARGET_ARRIVE, *id),
            (Some(a), Some(b)) if a.prop != b.prop || a.lun_count != b.lun_count => {
                note(out, Ntt::TARGET, Ev::TARGET_MODIFY, *id)
            }
            _ => {}
        }
    }
    let group_order = |s: &SubState| -> Vec<ObjectId> {
        s.target_order
            .iter()
            .filter_map(|t| s.targets.get(t))
            .flat_map(|t| t.groups.iter().copied())
            .collect()
    };
    for id in group_order(o) {
        if !n.groups.contains_key(&id) {
            note(out, Ntt::PORTAL_GROUP, Ev::PORTAL_GROUP_DEPART, id);
        }
    }
    for id in group_order(n) {
        match (o.groups.get(&id), n.groups.get(&id)) {
            (None, _) => note(out, Ntt::PORTAL_GROUP, Ev::PORTAL_GROUP_ARRIVE, id),
            (Some(a), Some(b)) if a.prop != b.prop || a.portals != b.portals => {
                note(out, Ntt::PORTAL_GROUP, Ev::PORTAL_GROUP_MODIFY, id)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use crate::{
        IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot, SubSystemStatus, TargetSnapshot,
        VdsIpAddress,
    };

    fn address(n: u8) -> VdsIpAddress {
        match n % 4 {
            // Two spellings of one portal: the same canonical key, not the same value.
            3 => VdsIpAddress::Text {
                text: "Array.Example".into(),
                port: 3260,
            },
            2 => VdsIpAddress::Text {
                text: "array.example".into(),
                port: 3260,
            },
            k => VdsIpAddress::Ipv4 {
                addr: Ipv4Addr::new(127, 0, 0, 1 + k),
                port: 3260,
            },
        }
    }

    prop_compose! {
        fn snapshot()(
            portals in proptest::collection::vec(0u8..4, 0..4),
            targets in proptest::collection::vec(
                (0u8..3, proptest::collection::vec(
                    (1u16..4, proptest::collection::vec(0u8..4, 0..3)), 0..3)),
                0..4),
        ) -> SubSystemSnapshot {
            let mut s = SubSystemSnapshot::new("array", SubSystemStatus::Online);
            s.portals = portals.into_iter().map(|n| PortalSnapshot {
                address: address(n),
                status: IscsiPortalStatus::Online,
            }).collect();
            s.targets = targets.into_iter().map(|(name, groups)| TargetSnapshot {
                iscsi_name: format!("iqn.2026-12.org.vds:t{name}"),
                friendly_name: String::new(),
                chap_enabled: false,
                lun_count: 0,
                portal_groups: groups.into_iter().map(|(tag, members)| PortalGroupSnapshot {
                    tag,
                    portals: members.into_iter().map(address).collect(),
                }).collect(),
                connected_initiators: Vec::new(),
            }).collect();
            s
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The cheap check refuses exactly what building the indexed picture refuses, with the
        /// same error.
        #[test]
        fn the_check_agrees_with_the_build(s in snapshot()) {
            let built = SubState::build(ObjectId::NIL, s.clone()).err();
            prop_assert_eq!(check_snapshot(&s).err(), built);
        }
    }

    #[test]
    fn many_portals_are_found_by_key() {
        let mut s = SubSystemSnapshot::new("array", SubSystemStatus::Online);
        s.portals = (0..40)
            .map(|i| PortalSnapshot {
                address: VdsIpAddress::Text {
                    text: format!("Host-{i}"),
                    port: 3260,
                },
                status: IscsiPortalStatus::Online,
            })
            .collect();
        s.targets = vec![TargetSnapshot {
            iscsi_name: "iqn.2026-12.org.vds:t".into(),
            friendly_name: String::new(),
            chap_enabled: false,
            lun_count: 0,
            portal_groups: vec![PortalGroupSnapshot {
                tag: 1,
                // Another spelling of portal 7.
                portals: vec![VdsIpAddress::Text {
                    text: "HOST-7".into(),
                    port: 3260,
                }],
            }],
            connected_initiators: Vec::new(),
        }];
        assert_eq!(check_snapshot(&s), Ok(()));
        assert!(SubState::build(ObjectId::NIL, s.clone()).is_ok());
        s.targets[0].portal_groups[0]
            .portals
            .push(VdsIpAddress::Text {
                text: "host-7".into(),
                port: 3260,
            });
        let built = SubState::build(ObjectId::NIL, s.clone()).err();
        assert!(matches!(
            built,
            Some(InvariantError::PortalInTwoGroups { .. })
        ));
        assert_eq!(check_snapshot(&s).err(), built);
    }
}
