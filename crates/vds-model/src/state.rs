//! The model's cache: an immutable picture of every subsystem, built and checked from backend
//! snapshots, and the diff between two pictures as notifications.
//!
//! A [`State`] is never changed in place. Writers build a new one and publish it atomically, so a
//! reader always sees one consistent picture and never waits.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{
    IscsiPortalGroupProp, IscsiPortalProp, IscsiTargetProp, Notification, NotificationEvent as Ev,
    NotificationTargetType as Ntt, ObjectId, PortalGroupSnapshot, PortalSnapshot, SubSystemProp,
    SubSystemSnapshot, TargetSnapshot, VdsIpAddress,
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

/// One target of a subsystem, less its id (in [`SubState::target_order`]) and its groups (a run of
/// [`SubState`]'s flat group arrays).
#[derive(Debug)]
struct TargetRec {
    iscsi_name: Box<str>,
    friendly_name: Box<str>,
    connected_initiators: Box<[Box<str>]>,
    lun_count: u32,
    /// One past its last group; its first is the previous target's end (0 for the first target).
    groups_end: u32,
    chap_enabled: bool,
}

impl TargetRec {
    /// The same `IscsiTargetProp` (ids aside) and LUN count: what `TARGET_MODIFY` reports.
    fn same_props(&self, other: &TargetRec) -> bool {
        self.iscsi_name == other.iscsi_name
            && self.friendly_name == other.friendly_name
            && self.chap_enabled == other.chap_enabled
            && self.lun_count == other.lun_count
    }
}

/// One portal group, less its id (in `SubState::group_ids`) and its members (a run of
/// `SubState::members`).
#[derive(Debug)]
struct GroupRec {
    /// One past its last member; its first is the previous group's end.
    members_end: u32,
    tag: u16,
}

/// One subsystem in the cache: its snapshot, held once, in a form indexed by id.
///
/// A cache holds hundreds of thousands of targets, so nothing is stored twice and nothing is
/// stored that a query can derive cheaply: properties are built when asked for (the name is cloned
/// then), a target's groups and a group's members are runs of flat arrays, a member is the index
/// of its portal, and the id indexes are positions sorted by id (`u32`, binary-searched) beside
/// the ids kept in enumeration order. A handle remembers where its object was, so a lookup is
/// usually one comparison; the search is for handles older than the picture. The snapshot a
/// backend gave is rebuilt by [`SubState::snapshot`] and compared by [`SubState::holds`], equal in
/// every field.
#[derive(Debug)]
pub(crate) struct SubState {
    key: String,
    detail: Option<String>,
    prop: SubSystemProp,
    portals: Box<[PortalSnapshot]>,
    /// The portals' ids, in enumeration order (shared with enumerators).
    pub(crate) portal_order: Arc<[ObjectId]>,
    /// Positions in `portal_order`, sorted by id.
    portal_by_id: Box<[u32]>,
    targets: Box<[TargetRec]>,
    /// The targets' ids, in enumeration order (shared with enumerators).
    pub(crate) target_order: Arc<[ObjectId]>,
    /// Positions in `target_order`, sorted by id.
    target_by_id: Box<[u32]>,
    /// Every target's groups, in target then group order.
    groups: Box<[GroupRec]>,
    group_ids: Box<[ObjectId]>,
    /// Positions in `group_ids`, sorted by id.
    group_by_id: Box<[u32]>,
    /// Every group's members, as portal indexes, in group then member order.
    members: Box<[u32]>,
    /// The members whose address is spelled otherwise than their portal's (the same canonical key,
    /// say another case of a host name), by position in `members`, sorted; usually empty. Kept so
    /// that the snapshot comes back as it was given.
    respelled: Box<[(u32, VdsIpAddress)]>,
    /// This picture's number: unique in the process (see [`PictureStamp`]).
    generation: u64,
}

/// The number of the next picture of a subsystem to be built.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// Names one picture of one subsystem, as committed: every picture built (by a load from a
/// cache, a refresh or a mutation that changed the subsystem, a reenumerate) gets a stamp no
/// other picture in the process had or will have, and a picture never changes once built. Two
/// equal stamps therefore mean the same answers to every query about the subsystem's objects,
/// which is what lets a front end keep an answer's bytes and serve them again while the stamp
/// holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PictureStamp {
    subsystem: ObjectId,
    generation: u64,
}

impl PictureStamp {
    /// The subsystem the picture is of.
    pub fn subsystem(self) -> ObjectId {
        self.subsystem
    }
}

/// `n` as an index of the compact arrays. A subsystem of 2^32 objects would not fit in memory
/// anyway, long before this fails.
fn index(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 objects in one subsystem")
}

/// Positions `0..ids.len()`, ordered by the id at each.
fn sorted_by_id(ids: &[ObjectId]) -> Box<[u32]> {
    let mut by_id: Vec<u32> = (0..index(ids.len())).collect();
    by_id.sort_unstable_by_key(|&i| ids[i as usize]);
    by_id.into_boxed_slice()
}

/// The position of `id` in `ids` (`by_id` being its positions sorted by id): `hint` when the id is
/// there, as it is when the picture did not change since the hint was taken, else by search.
fn find(ids: &[ObjectId], by_id: &[u32], id: ObjectId, hint: usize) -> Option<usize> {
    if ids.get(hint) == Some(&id) {
        return Some(hint);
    }
    by_id
        .binary_search_by(|&i| ids[i as usize].cmp(&id))
        .ok()
        .map(|k| by_id[k] as usize)
}

fn exact(mut s: String) -> String {
    s.shrink_to_fit();
    s
}

impl SubState {
    /// Builds and checks the indexed form of `snapshot` under `provider`.
    pub(crate) fn build(
        provider: ObjectId,
        snapshot: SubSystemSnapshot,
    ) -> Result<SubState, InvariantError> {
        let id = provider.child("subsystem", &snapshot.key);
        let SubSystemSnapshot {
            key,
            friendly_name,
            identification,
            flags,
            stripe_size_flags,
            status,
            health,
            detail,
            portals,
            targets,
        } = snapshot;
        let ss = &key;
        let mut portal_order = Vec::with_capacity(portals.len());
        // Only while building: the portal a group member names, by canonical id.
        let mut portal_at: HashMap<ObjectId, u32> = HashMap::with_capacity(portals.len());
        for (i, p) in portals.iter().enumerate() {
            let pid = id.child("portal", &p.address.canonical_key());
            if portal_at.insert(pid, index(i)).is_some() {
                return Err(InvariantError::DuplicatePortal {
                    subsystem: ss.clone(),
                    portal: p.address.to_string(),
                });
            }
            portal_order.push(pid);
        }
        let mut target_order = Vec::with_capacity(targets.len());
        let mut recs = Vec::with_capacity(targets.len());
        let mut groups = Vec::with_capacity(targets.len());
        let mut group_ids = Vec::with_capacity(targets.len());
        let mut members = Vec::with_capacity(targets.len());
        let mut respelled = Vec::new();
        let mut seen_targets = HashSet::with_capacity(targets.len());
        let mut seen_groups = HashSet::with_capacity(targets.len());
        let mut seen_in_target = HashSet::new();
        for t in targets {
            let tid = id.child("target", &t.iscsi_name);
            seen_in_target.clear();
            for g in &t.portal_groups {
                let gid = tid.child("portalgroup", &g.tag.to_string());
                for addr in &g.portals {
                    let pid = id.child("portal", &addr.canonical_key());
                    let Some(&p) = portal_at.get(&pid) else {
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
                    if *addr != portals[p as usize].address {
                        respelled.push((index(members.len()), addr.clone()));
                    }
                    members.push(p);
                }
                if !seen_groups.insert(gid) {
                    return Err(InvariantError::DuplicateGroup {
                        subsystem: ss.clone(),
                        target: t.iscsi_name.clone(),
                        tag: g.tag,
                    });
                }
                groups.push(GroupRec {
                    members_end: index(members.len()),
                    tag: g.tag,
                });
                group_ids.push(gid);
            }
            if !seen_targets.insert(tid) {
                return Err(InvariantError::DuplicateTarget {
                    subsystem: ss.clone(),
                    target: t.iscsi_name.clone(),
                });
            }
            target_order.push(tid);
            recs.push(TargetRec {
                iscsi_name: t.iscsi_name.into_boxed_str(),
                friendly_name: t.friendly_name.into_boxed_str(),
                connected_initiators: t
                    .connected_initiators
                    .into_iter()
                    .map(String::into_boxed_str)
                    .collect(),
                lun_count: t.lun_count,
                groups_end: index(groups.len()),
                chap_enabled: t.chap_enabled,
            });
        }
        let prop = SubSystemProp {
            id,
            friendly_name: exact(friendly_name),
            identification: exact(identification),
            flags,
            stripe_size_flags,
            status,
            health,
            number_of_internal_buses: 0,
            max_number_of_slots_each_bus: 0,
            max_number_of_controllers: 0,
            rebuild_priority: 0,
        };
        Ok(SubState {
            key: exact(key),
            detail: detail.map(exact),
            prop,
            portals: portals.into_boxed_slice(),
            portal_by_id: sorted_by_id(&portal_order),
            portal_order: portal_order.into(),
            targets: recs.into_boxed_slice(),
            target_by_id: sorted_by_id(&target_order),
            target_order: target_order.into(),
            groups: groups.into_boxed_slice(),
            group_by_id: sorted_by_id(&group_ids),
            group_ids: group_ids.into_boxed_slice(),
            members: members.into_boxed_slice(),
            respelled: respelled.into_boxed_slice(),
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The stamp of this picture.
    pub(crate) fn stamp(&self) -> PictureStamp {
        PictureStamp {
            subsystem: self.id(),
            generation: self.generation,
        }
    }

    pub(crate) fn id(&self) -> ObjectId {
        self.prop.id
    }

    /// The subsystem's natural key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Why its status is what it is, as the backend recorded it.
    pub(crate) fn detail(&self) -> Option<&String> {
        self.detail.as_ref()
    }

    pub(crate) fn prop(&self) -> &SubSystemProp {
        &self.prop
    }

    /// How many portals and targets it has.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.portals.len(), self.targets.len())
    }

    /// The snapshot this was built from (equal to it in every field).
    pub(crate) fn snapshot(&self) -> SubSystemSnapshot {
        let targets = self
            .targets
            .iter()
            .enumerate()
            .map(|(t, rec)| TargetSnapshot {
                iscsi_name: rec.iscsi_name.to_string(),
                friendly_name: rec.friendly_name.to_string(),
                chap_enabled: rec.chap_enabled,
                lun_count: rec.lun_count,
                portal_groups: self
                    .target_groups(t)
                    .map(|g| PortalGroupSnapshot {
                        tag: self.groups[g].tag,
                        portals: self
                            .member_range(g)
                            .map(|m| self.member_address(m).clone())
                            .collect(),
                    })
                    .collect(),
                connected_initiators: rec
                    .connected_initiators
                    .iter()
                    .map(|i| i.to_string())
                    .collect(),
            })
            .collect();
        SubSystemSnapshot {
            key: self.key.clone(),
            friendly_name: self.prop.friendly_name.clone(),
            identification: self.prop.identification.clone(),
            flags: self.prop.flags,
            stripe_size_flags: self.prop.stripe_size_flags,
            status: self.prop.status,
            health: self.prop.health,
            detail: self.detail.clone(),
            portals: self.portals.to_vec(),
            targets,
        }
    }

    /// `self.snapshot() == *s`, without building the snapshot.
    pub(crate) fn holds(&self, s: &SubSystemSnapshot) -> bool {
        let p = &self.prop;
        self.key == s.key
            && p.friendly_name == s.friendly_name
            && p.identification == s.identification
            && p.flags == s.flags
            && p.stripe_size_flags == s.stripe_size_flags
            && p.status == s.status
            && p.health == s.health
            && self.detail == s.detail
            && *self.portals == *s.portals
            && self.targets.len() == s.targets.len()
            && self
                .targets
                .iter()
                .zip(&s.targets)
                .enumerate()
                .all(|(t, (rec, ts))| {
                    *rec.iscsi_name == *ts.iscsi_name
                        && *rec.friendly_name == *ts.friendly_name
                        && rec.chap_enabled == ts.chap_enabled
                        && rec.lun_count == ts.lun_count
                        && rec.connected_initiators.len() == ts.connected_initiators.len()
                        && rec
                            .connected_initiators
                            .iter()
                            .zip(&ts.connected_initiators)
                            .all(|(a, b)| **a == **b)
                        && self.target_groups(t).len() == ts.portal_groups.len()
                        && self.target_groups(t).zip(&ts.portal_groups).all(|(g, gs)| {
                            self.groups[g].tag == gs.tag
                                && self.member_range(g).len() == gs.portals.len()
                                && self
                                    .member_range(g)
                                    .zip(&gs.portals)
                                    .all(|(m, a)| self.member_address(m) == a)
                        })
                })
    }

    /// The portal `id` (last seen at `hint`), by position.
    pub(crate) fn portal_index(&self, id: ObjectId, hint: usize) -> Option<usize> {
        find(&self.portal_order, &self.portal_by_id, id, hint)
    }

    pub(crate) fn portal_address(&self, p: usize) -> &VdsIpAddress {
        &self.portals[p].address
    }

    pub(crate) fn portal_prop(&self, p: usize) -> IscsiPortalProp {
        IscsiPortalProp {
            id: self.portal_order[p],
            address: self.portals[p].address.clone(),
            status: self.portals[p].status,
        }
    }

    /// The groups (across all targets) that hold portal `p`, in target then group order.
    pub(crate) fn portal_groups(&self, p: usize) -> Vec<usize> {
        let p = index(p);
        (0..self.groups.len())
            .filter(|&g| self.group_members(g).contains(&p))
            .collect()
    }

    /// The target `id` (last seen at `hint`), by position.
    pub(crate) fn target_index(&self, id: ObjectId, hint: usize) -> Option<usize> {
        find(&self.target_order, &self.target_by_id, id, hint)
    }

    /// The target (by iSCSI name, compared without regard to ASCII case as RFC 3722's
    /// normalization folds names to lower case) across this subsystem, if present.
    pub(crate) fn target_named(&self, name: &str) -> Option<usize> {
        self.targets
            .iter()
            .position(|t| t.iscsi_name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn target_name(&self, t: usize) -> &str {
        &self.targets[t].iscsi_name
    }

    pub(crate) fn target_prop(&self, t: usize) -> IscsiTargetProp {
        let rec = &self.targets[t];
        IscsiTargetProp {
            id: self.target_order[t],
            iscsi_name: rec.iscsi_name.to_string(),
            friendly_name: rec.friendly_name.to_string(),
            chap_enabled: rec.chap_enabled,
        }
    }

    pub(crate) fn lun_count(&self, t: usize) -> u32 {
        self.targets[t].lun_count
    }

    pub(crate) fn connected_initiators(&self, t: usize) -> Vec<String> {
        self.targets[t]
            .connected_initiators
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    /// Target `t`'s groups, as positions in the flat group arrays.
    pub(crate) fn target_groups(&self, t: usize) -> Range<usize> {
        let start = match t {
            0 => 0,
            _ => self.targets[t - 1].groups_end as usize,
        };
        start..self.targets[t].groups_end as usize
    }

    /// The portal group `id` (last seen at `hint`), by position.
    pub(crate) fn group_index(&self, id: ObjectId, hint: usize) -> Option<usize> {
        find(&self.group_ids, &self.group_by_id, id, hint)
    }

    pub(crate) fn group_id(&self, g: usize) -> ObjectId {
        self.group_ids[g]
    }

    pub(crate) fn group_tag(&self, g: usize) -> u16 {
        self.groups[g].tag
    }

    pub(crate) fn group_prop(&self, g: usize) -> IscsiPortalGroupProp {
        IscsiPortalGroupProp {
            id: self.group_ids[g],
            tag: self.groups[g].tag,
        }
    }

    /// The target group `g` belongs to.
    pub(crate) fn group_target(&self, g: usize) -> usize {
        self.targets.partition_point(|t| t.groups_end as usize <= g)
    }

    /// Group `g`'s members, as portal positions, in the group's order.
    pub(crate) fn group_members(&self, g: usize) -> &[u32] {
        &self.members[self.member_range(g)]
    }

    fn member_range(&self, g: usize) -> Range<usize> {
        let start = match g {
            0 => 0,
            _ => self.groups[g - 1].members_end as usize,
        };
        start..self.groups[g].members_end as usize
    }

    /// The address of member `m` as the snapshot spelled it.
    fn member_address(&self, m: usize) -> &VdsIpAddress {
        if !self.respelled.is_empty() {
            if let Ok(k) = self
                .respelled
                .binary_search_by_key(&index(m), |(at, _)| *at)
            {
                return &self.respelled[k].1;
            }
        }
        self.portal_address(self.members[m] as usize)
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

/// Up to this many groups, a target's tags are compared by a scan rather than a set.
const SCAN_GROUPS: usize = 8;

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
    // Targets in strictly increasing name order (what every provider's merge gives) cannot repeat
    // a name, and then a target's `(name, tag)` can only repeat within the target: a target of a
    // few groups is scanned and no name is hashed. Any other order takes the sets, which find the
    // same first error.
    let sorted = snapshot
        .targets
        .windows(2)
        .all(|w| w[0].iscsi_name < w[1].iscsi_name);
    let (mut names, mut groups) = if sorted {
        (HashSet::new(), HashSet::new())
    } else {
        (
            HashSet::with_capacity(snapshot.targets.len()),
            HashSet::with_capacity(snapshot.targets.len()),
        )
    };
    // `stamp[i] == n` when portal i is in a group of the n-th target (from 1).
    let mut stamp: Vec<usize> = vec![0; snapshot.portals.len()];
    for (n, t) in snapshot.targets.iter().enumerate() {
        let n = n + 1;
        let scan_groups = sorted && t.portal_groups.len() <= SCAN_GROUPS;
        for (gi, g) in t.portal_groups.iter().enumerate() {
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
            let repeated = if scan_groups {
                t.portal_groups[..gi]
                    .iter()
                    .any(|earlier| earlier.tag == g.tag)
            } else {
                !groups.insert((t.iscsi_name.as_str(), g.tag))
            };
            if repeated {
                return Err(InvariantError::DuplicateGroup {
                    subsystem: ss.clone(),
                    target: t.iscsi_name.clone(),
                    tag: g.tag,
                });
            }
        }
        if !sorted && !names.insert(t.iscsi_name.as_str()) {
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
        snapshots: impl IntoIterator<Item = SubSystemSnapshot>,
    ) -> Result<State, InvariantError> {
        State::rebuild(provider, snapshots, &State::default())
    }

    /// Like [`State::build`], reusing every subsystem of `previous` whose snapshot did not change
    /// (no ids derived again, no indexes rebuilt, and the diff skips it by pointer).
    pub(crate) fn rebuild(
        provider: ObjectId,
        snapshots: impl IntoIterator<Item = SubSystemSnapshot>,
        previous: &State,
    ) -> Result<State, InvariantError> {
        let mut state = State::default();
        for snap in snapshots {
            let key = snap.key.clone();
            let id = provider.child("subsystem", &snap.key);
            let sub = match previous.subsystems.get(&id) {
                Some(old) if old.holds(&snap) => old.clone(),
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
            .map(|s| s.snapshot())
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
    // Each object is looked for at its own position first: most pictures differ in a few objects.
    for (i, id) in o.portal_order.iter().enumerate() {
        if n.portal_index(*id, i).is_none() {
            note(out, Ntt::PORTAL, Ev::PORTAL_DEPART, *id);
        }
    }
    for (i, id) in n.portal_order.iter().enumerate() {
        match o.portal_index(*id, i) {
            None => note(out, Ntt::PORTAL, Ev::PORTAL_ARRIVE, *id),
            // The same id: the property differs when the address (its spelling) or status does.
            Some(j) if o.portals[j] != n.portals[i] => {
                note(out, Ntt::PORTAL, Ev::PORTAL_MODIFY, *id)
            }
            _ => {}
        }
    }
    for (i, id) in o.target_order.iter().enumerate() {
        if n.target_index(*id, i).is_none() {
            note(out, Ntt::TARGET, Ev::TARGET_DEPART, *id);
        }
    }
    for (i, id) in n.target_order.iter().enumerate() {
        match o.target_index(*id, i) {
            None => note(out, Ntt::TARGET, Ev::TARGET_ARRIVE, *id),
            // The property (the id aside) or the LUN count; not the sessions.
            Some(j) if !o.targets[j].same_props(&n.targets[i]) => {
                note(out, Ntt::TARGET, Ev::TARGET_MODIFY, *id)
            }
            _ => {}
        }
    }
    // The flat group arrays are in target then group order, the order groups are enumerated in.
    for (g, id) in o.group_ids.iter().enumerate() {
        if n.group_index(*id, g).is_none() {
            note(out, Ntt::PORTAL_GROUP, Ev::PORTAL_GROUP_DEPART, *id);
        }
    }
    // Members compare by portal id, in order (positions may differ between the pictures).
    fn member_ids(s: &SubState, g: usize) -> impl Iterator<Item = ObjectId> + '_ {
        s.group_members(g)
            .iter()
            .map(move |&p| s.portal_order[p as usize])
    }
    let same_members = |h: usize, g: usize| member_ids(o, h).eq(member_ids(n, g));
    for (g, id) in n.group_ids.iter().enumerate() {
        match o.group_index(*id, g) {
            None => note(out, Ntt::PORTAL_GROUP, Ev::PORTAL_GROUP_ARRIVE, *id),
            Some(h) if o.group_prop(h) != n.group_prop(g) || !same_members(h, g) => {
                note(out, Ntt::PORTAL_GROUP, Ev::PORTAL_GROUP_MODIFY, *id)
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

    prop_compose! {
        /// Targets in name order (the check's fast path), some with more groups than it scans.
        fn sorted_snapshot()(
            s in snapshot(),
            groups in proptest::collection::vec(
                proptest::collection::vec((1u16..12, proptest::collection::vec(0u8..4, 0..2)), 0..12),
                0..4),
        ) -> SubSystemSnapshot {
            let mut s = s;
            s.targets.sort_by(|a, b| a.iscsi_name.cmp(&b.iscsi_name));
            for (t, groups) in s.targets.iter_mut().zip(groups) {
                if groups.len() > SCAN_GROUPS / 2 {
                    t.portal_groups = groups.into_iter().map(|(tag, members)| PortalGroupSnapshot {
                        tag,
                        portals: members.into_iter().map(address).collect(),
                    }).collect();
                }
            }
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

        /// The same on targets in name order (repeated names included), where the check scans
        /// a target's tags instead of hashing names.
        #[test]
        fn the_check_agrees_with_the_build_in_name_order(s in sorted_snapshot()) {
            let built = SubState::build(ObjectId::NIL, s.clone()).err();
            prop_assert_eq!(check_snapshot(&s).err(), built);
        }
    }

    /// The notifications between two pictures of one subsystem, worked out from the snapshots
    /// alone: every object by its derived id, groups in target then group order, a group's
    /// members as portal ids.
    fn reference_diff(o: &SubSystemSnapshot, n: &SubSystemSnapshot) -> Vec<Notification> {
        let sub = ObjectId::NIL.child("subsystem", &n.key);
        let portals = |s: &SubSystemSnapshot| -> Vec<(ObjectId, PortalSnapshot)> {
            s.portals
                .iter()
                .map(|p| (sub.child("portal", &p.address.canonical_key()), p.clone()))
                .collect()
        };
        let targets = |s: &SubSystemSnapshot| -> Vec<(ObjectId, (String, String, bool, u32))> {
            s.targets
                .iter()
                .map(|t| {
                    let props = (
                        t.iscsi_name.clone(),
                        t.friendly_name.clone(),
                        t.chap_enabled,
                        t.lun_count,
                    );
                    (sub.child("target", &t.iscsi_name), props)
                })
                .collect()
        };
        let groups = |s: &SubSystemSnapshot| -> Vec<(ObjectId, (u16, Vec<ObjectId>))> {
            s.targets
                .iter()
                .flat_map(|t| {
                    let tid = sub.child("target", &t.iscsi_name);
                    t.portal_groups.iter().map(move |g| {
                        let members = g
                            .portals
                            .iter()
                            .map(|a| sub.child("portal", &a.canonical_key()))
                            .collect();
                        (
                            tid.child("portalgroup", &g.tag.to_string()),
                            (g.tag, members),
                        )
                    })
                })
                .collect()
        };
        fn kind<T: PartialEq>(
            out: &mut Vec<Notification>,
            sub: ObjectId,
            t: Ntt,
            [depart, arrive, modify]: [Ev; 3],
            old: &[(ObjectId, T)],
            new: &[(ObjectId, T)],
        ) {
            fn find<T>(v: &[(ObjectId, T)], id: ObjectId) -> Option<&T> {
                v.iter().find(|(i, _)| *i == id).map(|(_, x)| x)
            }
            for (id, _) in old {
                if find(new, *id).is_none() {
                    note(out, t, depart, *id, sub);
                }
            }
            for (id, x) in new {
                match find(old, *id) {
                    None => note(out, t, arrive, *id, sub),
                    Some(y) if y != x => note(out, t, modify, *id, sub),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        let prop = |s: &SubSystemSnapshot| {
            (
                s.friendly_name.clone(),
                s.identification.clone(),
                s.flags,
                s.stripe_size_flags,
                s.status,
                s.health,
            )
        };
        if prop(o) != prop(n) {
            note(&mut out, Ntt::SUB_SYSTEM, Ev::SUB_SYSTEM_MODIFY, sub, sub);
        }
        let p = [Ev::PORTAL_DEPART, Ev::PORTAL_ARRIVE, Ev::PORTAL_MODIFY];
        kind(&mut out, sub, Ntt::PORTAL, p, &portals(o), &portals(n));
        let t = [Ev::TARGET_DEPART, Ev::TARGET_ARRIVE, Ev::TARGET_MODIFY];
        kind(&mut out, sub, Ntt::TARGET, t, &targets(o), &targets(n));
        let g = [
            Ev::PORTAL_GROUP_DEPART,
            Ev::PORTAL_GROUP_ARRIVE,
            Ev::PORTAL_GROUP_MODIFY,
        ];
        kind(&mut out, sub, Ntt::PORTAL_GROUP, g, &groups(o), &groups(n));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The compact picture gives back the snapshot it was built from, and compares with any
        /// other snapshot as that snapshot does.
        #[test]
        fn the_picture_holds_its_snapshot_exactly(s in snapshot(), other in snapshot()) {
            if let Ok(built) = SubState::build(ObjectId::NIL, s.clone()) {
                prop_assert_eq!(built.snapshot(), s.clone());
                prop_assert!(built.holds(&s));
                prop_assert_eq!(built.holds(&other), s == other);
            }
        }

        /// The notifications between two pictures are those worked out from the snapshots: for a
        /// picture and a few edits of it (most of them keeping it valid), or another picture.
        #[test]
        fn the_diff_agrees_with_the_snapshots(
            o in snapshot(),
            other in snapshot(),
            edits in proptest::collection::vec((0u8..8, 0usize..4), 0..4),
        ) {
            let mut n = o.clone();
            for (edit, k) in edits {
                let groups: Vec<(usize, usize)> = (0..n.targets.len())
                    .flat_map(|t| (0..n.targets[t].portal_groups.len()).map(move |g| (t, g)))
                    .collect();
                let group = groups.get(k % groups.len().max(1)).copied();
                let nt = n.targets.len().max(1);
                let np = n.portals.len().max(1);
                match edit {
                    0 => if let Some((t, g)) = group {
                        n.targets[t].portal_groups[g].portals.pop();
                    },
                    1 => if let Some((t, g)) = group {
                        n.targets[t].portal_groups[g].portals.reverse();
                    },
                    2 => if let Some(p) = n.portals.get_mut(k % np) {
                        p.status = IscsiPortalStatus::Offline;
                    },
                    3 => if let Some(t) = n.targets.get_mut(k % nt) {
                        t.friendly_name = "renamed".into();
                        t.lun_count += 1;
                    },
                    4 => if k % nt < n.targets.len() {
                        n.targets.remove(k % nt);
                    },
                    5 => if k % np < n.portals.len() {
                        n.portals.remove(k % np);
                    },
                    6 => {
                        n.status = SubSystemStatus::Offline;
                        n.targets.reverse();
                    }
                    _ => n = other.clone(),
                }
            }
            let (Ok(a), Ok(b)) = (
                SubState::build(ObjectId::NIL, o.clone()),
                SubState::build(ObjectId::NIL, n.clone()),
            ) else {
                return Ok(());
            };
            let mut out = Vec::new();
            diff_subsystem(&a, &b, &mut out);
            prop_assert_eq!(out, reference_diff(&o, &n));
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
