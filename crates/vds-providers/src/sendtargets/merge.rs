//! The pure half of the SendTargets provider: from what each discovery connection and each portal
//! probe answered, one subsystem's [`SubSystemSnapshot`]. No sockets, no clock, no runtime; the
//! driver in `discover.rs` gathers the answers, [`collect`]s them once, and asks the result for
//! the portals to probe ([`Collected::to_probe`]) and then for the picture ([`Collected::merge`]).
//!
//! The rules (the provider's documented behaviour; see the module doc of `sendtargets`):
//! - portals: every configured discovery portal (in configured order, answered or not), then every
//!   other address seen in a `TargetAddress`, sorted; no address twice;
//! - targets: every `TargetName` of every answer, sorted by name; a target without `TargetAddress`
//!   is reached at the discovery portal that listed it;
//! - portal groups: `(target, tag)`; an untagged address takes the `TargetPortalGroupTag` of the
//!   discovery login that reported it, else tag 1; a portal stays in the first group of a target
//!   that claimed it;
//! - when no discovery portal answered, the previous portals and targets are kept, and every portal
//!   that was not contacted is marked `OFFLINE`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use iscsi_proto::{DiscoveredTarget, Host};
use vds_model::{
    Health, IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot, SubSystemFlags,
    SubSystemSnapshot, SubSystemStatus, TargetSnapshot, VdsIpAddress,
};

use super::portal::{DiscoveryPortal, vds_address};
use super::{Configured, SendTargetsSubsystem};

/// What the merge reads of a subsystem's configuration: its name and its discovery portals.
pub(crate) trait Registered: Sync {
    fn name(&self) -> &str;
    fn portals(&self) -> &[DiscoveryPortal];
}

impl Registered for SendTargetsSubsystem {
    fn name(&self) -> &str {
        &self.name
    }
    fn portals(&self) -> &[DiscoveryPortal] {
        &self.portals
    }
}

impl Registered for Configured {
    fn name(&self) -> &str {
        &self.name
    }
    fn portals(&self) -> &[DiscoveryPortal] {
        &self.portals
    }
}

/// The tag given to an untagged `TargetAddress` when the discovery login did not say its own
/// `TargetPortalGroupTag` (RFC 7143 requires the tag in SendTargets answers; targets that omit it
/// have a single portal group in practice, and tgt numbers its only group 1).
pub const DEFAULT_PORTAL_GROUP_TAG: u16 = 1;

/// What a failed connection means for the status of the portal (and, for discovery portals, of the
/// subsystem).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// No TCP connection, or no answer in time: `OFFLINE`.
    Unreachable,
    /// Login status 0x0301 (service unavailable) or 0x0302 (out of resources): `NOT_READY`.
    Busy,
    /// The array refused our credentials (0x0201, 0x0202) or failed to prove its own (mutual CHAP):
    /// `FAILED`.
    Refused,
    /// Target error (0x0300), any other login refusal, or a protocol violation: `FAILED`.
    Broken,
}

impl FailureClass {
    /// The portal status this failure gives.
    pub(crate) fn portal_status(self) -> IscsiPortalStatus {
        match self {
            FailureClass::Unreachable => IscsiPortalStatus::Offline,
            FailureClass::Busy => IscsiPortalStatus::NotReady,
            FailureClass::Refused | FailureClass::Broken => IscsiPortalStatus::Failed,
        }
    }
}

/// A failed connection: its class and a message for people (never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) class: FailureClass,
    pub(crate) cause: String,
}

/// What one discovery connection produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The SendTargets answer, and the `TargetPortalGroupTag` of the discovery login, if sent.
    Answered {
        targets: Vec<DiscoveredTarget>,
        portal_group_tag: Option<u16>,
    },
    /// The connection, login or SendTargets failed.
    Failed(Failure),
}

/// The answers of the probes, by the portal's [`VdsIpAddress::canonical_key`].
pub(crate) type Probes = HashMap<String, Result<(), Failure>>;

/// A portal to probe: its canonical key, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeTarget {
    pub(crate) key: String,
    pub(crate) host: Host,
    pub(crate) port: u16,
}

/// A portal of the picture.
struct CollectedPortal<'a> {
    /// Its [`VdsIpAddress::canonical_key`]: what makes two addresses one portal, and what the
    /// probe answers are found by.
    key: String,
    address: VdsIpAddress,
    /// The host and port it was first seen as (what a probe connects to).
    host: &'a Host,
    port: u16,
    /// Index of the discovery portal in the configuration, for discovery portals.
    discovery: Option<usize>,
}

/// Above this many portals, a target's claims are looked up through a map: an array's answer may
/// list thousands of addresses for one target, and a scan per address would be quadratic.
const CLAIMS_SCANNED: usize = 16;

/// One address an answer gave a target, in the order the answers gave them.
struct Claim<'a> {
    target: &'a str,
    /// Index in the portals as first seen; `None` for a target none of whose addresses can be a
    /// VDS address (listed without portals).
    portal: Option<usize>,
    tag: u16,
    /// The address as this answer wrote it (for the warning about a second group).
    host: &'a Host,
    port: u16,
}

/// Everything the discovery answers of one subsystem say, gathered once: the portals to probe and
/// the picture are both made from it ([`Collected::to_probe`], [`Collected::merge`]).
pub(crate) struct Collected<'a> {
    config: &'a dyn Registered,
    outcomes: &'a [Outcome],
    /// How many discovery portals answered.
    answered: usize,
    /// Discovery portals first (configured order), then the others sorted. Empty when no
    /// discovery portal answered.
    portals: Vec<CollectedPortal<'a>>,
    /// Every target by name (sorted), with the range of `claims` that holds its portals.
    targets: Vec<(&'a str, std::ops::Range<usize>)>,
    /// Every target's portals as `(tag, index in portals)`, a target's sorted: its portal groups
    /// in tag order, each group's portals in subsystem order.
    claims: Vec<(u16, usize)>,
}

/// Sorts addresses by type (IPv4, IPv6, names, others), then address, then port.
pub(crate) fn sort_key(a: &VdsIpAddress) -> (u8, Vec<u8>, u32) {
    match a {
        VdsIpAddress::Ipv4 { addr, port } => (0, addr.octets().to_vec(), *port),
        VdsIpAddress::Ipv6 {
            addr,
            scope_id,
            port,
            ..
        } => {
            let mut k = addr.octets().to_vec();
            k.extend_from_slice(&scope_id.to_be_bytes());
            (1, k, *port)
        }
        VdsIpAddress::Text { text, port } => (2, text.to_lowercase().into_bytes(), *port),
        other => (3, other.canonical_key().into_bytes(), other.port()),
    }
}

/// Gathers the answers of a subsystem's discovery portals (`outcomes`, one per configured portal,
/// in order). Logs what it ignores: an address that cannot be a VDS address, a portal a target puts
/// in a second group.
pub(crate) fn collect<'a>(config: &'a dyn Registered, outcomes: &'a [Outcome]) -> Collected<'a> {
    let answered = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Answered { .. }))
        .count();
    let mut collected = Collected {
        config,
        outcomes,
        answered,
        portals: Vec::new(),
        targets: Vec::new(),
        claims: Vec::new(),
    };
    if answered == 0 {
        // The picture is then made from the previous one (`unanswered`), and nothing is probed.
        return collected;
    }
    let portals = &mut collected.portals;
    // Canonical key → index in `portals` (the index it was given when first seen; the others are
    // sorted at the end).
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (i, dp) in config.portals().iter().enumerate() {
        let Some(address) = dp.vds_address() else {
            continue;
        };
        let key = address.canonical_key();
        if let Entry::Vacant(e) = by_key.entry(key) {
            let key = e.key().clone();
            e.insert(portals.len());
            portals.push(CollectedPortal {
                key,
                address,
                host: &dp.host,
                port: dp.port,
                discovery: Some(i),
            });
        }
    }
    let discovery = portals.len();
    // Every address of every target in the order the answers gave them; grouped by target below
    // (answers list targets in the same order, so a sort finds them already in runs).
    let listed = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Answered { targets, .. } => {
                targets.iter().map(|t| t.addresses.len().max(1)).sum()
            }
            Outcome::Failed(_) => 0,
        })
        .sum();
    let mut seen: Vec<Claim<'a>> = Vec::with_capacity(listed);
    // The host and port of the address before, and its portal: answers mostly give every target
    // the same address, so the key (an allocation) is made once per run of it, not per target.
    let mut last: Option<(&'a Host, u16, usize)> = None;
    for (dp, outcome) in config.portals().iter().zip(outcomes) {
        let Outcome::Answered {
            targets: answer,
            portal_group_tag,
        } = outcome
        else {
            continue;
        };
        let default_tag = portal_group_tag.unwrap_or(DEFAULT_PORTAL_GROUP_TAG);
        for target in answer {
            let before = seen.len();
            // A target without TargetAddress is reached at the discovery portal that listed it.
            let reached_at = target
                .addresses
                .is_empty()
                .then_some((&dp.host, dp.port, None));
            let addresses = target
                .addresses
                .iter()
                .map(|a| (&a.host, a.port, a.tag))
                .chain(reached_at);
            for (host, port, tag) in addresses {
                let tag = tag.unwrap_or(default_tag);
                let portal = match last {
                    Some((h, p, portal)) if p == port && h == host => portal,
                    _ => {
                        let Some(address) = vds_address(host, port) else {
                            tracing::warn!(
                                subsystem = %config.name(), target = %target.name, %host, port,
                                "TargetAddress cannot be a VDS address; ignored"
                            );
                            continue;
                        };
                        let portal = match by_key.entry(address.canonical_key()) {
                            Entry::Occupied(e) => *e.get(),
                            Entry::Vacant(e) => {
                                let key = e.key().clone();
                                e.insert(portals.len());
                                portals.push(CollectedPortal {
                                    key,
                                    address,
                                    host,
                                    port,
                                    discovery: None,
                                });
                                portals.len() - 1
                            }
                        };
                        last = Some((host, port, portal));
                        portal
                    }
                };
                seen.push(Claim {
                    target: target.name.as_str(),
                    portal: Some(portal),
                    tag,
                    host,
                    port,
                });
            }
            if seen.len() == before {
                seen.push(Claim {
                    target: target.name.as_str(),
                    portal: None,
                    tag: default_tag,
                    host: &dp.host,
                    port: dp.port,
                });
            }
        }
    }
    // The other portals in address order; `rank` takes a portal's first-seen index to its place.
    let mut rank: Vec<usize> = (0..portals.len()).collect();
    if portals.len() > discovery {
        let mut others: Vec<(usize, CollectedPortal<'a>)> = portals
            .drain(discovery..)
            .enumerate()
            .map(|(i, p)| (discovery + i, p))
            .collect();
        // Stable, so addresses that sort alike (names differing in case) stay in the order seen.
        others.sort_by_cached_key(|(_, p)| sort_key(&p.address));
        for (place, (first_seen, _)) in others.iter().enumerate() {
            rank[*first_seen] = discovery + place;
        }
        portals.extend(others.into_iter().map(|(_, p)| p));
    }
    // Stable: a target's addresses stay in the order the answers gave them, and the first claim
    // of a portal is the one kept.
    seen.sort_by(|a, b| a.target.cmp(b.target));
    let claims = &mut collected.claims;
    claims.reserve_exact(seen.len());
    for run in seen.chunk_by(|a, b| a.target == b.target) {
        let start = claims.len();
        // The target's claims by portal, once there are more than a scan should cover.
        let mut by_portal: Option<HashMap<usize, u16>> = None;
        for claim in run {
            let Some(portal) = claim.portal.map(|p| rank[p]) else {
                continue;
            };
            let first = match &by_portal {
                Some(map) => map.get(&portal).copied(),
                None => claims[start..]
                    .iter()
                    .find(|(_, p)| *p == portal)
                    .map(|(t, _)| *t),
            };
            match first {
                None => {
                    claims.push((claim.tag, portal));
                    match &mut by_portal {
                        Some(map) => {
                            map.insert(portal, claim.tag);
                        }
                        None if claims.len() - start > CLAIMS_SCANNED => {
                            by_portal =
                                Some(claims[start..].iter().map(|&(t, p)| (p, t)).collect());
                        }
                        None => {}
                    }
                }
                Some(first) if first != claim.tag => {
                    // Rare: the address is made again, to name it as this answer wrote it.
                    let (host, port) = (claim.host, claim.port);
                    let shown = vds_address(host, port)
                        .map_or_else(|| format!("{host}:{port}"), |a| a.to_string());
                    tracing::warn!(
                        subsystem = %config.name(), target = %claim.target, portal = %shown,
                        kept_tag = first, ignored_tag = claim.tag,
                        "the array puts a portal in two portal groups of one target; \
                         keeping the first"
                    );
                }
                Some(_) => {}
            }
        }
        // A portal is claimed once per target, so no two entries are equal.
        claims[start..].sort_unstable();
        collected.targets.push((run[0].target, start..claims.len()));
    }
    collected
}

impl Collected<'_> {
    /// The portals to probe after the discoveries: every address some answer listed that is not a
    /// discovery portal, in portal order. Empty when no discovery portal answered.
    pub(crate) fn to_probe(&self) -> Vec<ProbeTarget> {
        self.portals
            .iter()
            .filter(|p| p.discovery.is_none())
            .map(|p| ProbeTarget {
                key: p.key.clone(),
                host: p.host.clone(),
                port: p.port,
            })
            .collect()
    }

    /// True when some discovery portal answered: the picture is then made without the previous
    /// one (and [`merge`](Self::merge) ignores it).
    pub(crate) fn answered(&self) -> bool {
        self.answered > 0
    }

    /// The subsystem's picture from the discovery outcomes, the probe answers, and the previous
    /// picture (used when no discovery portal answered).
    pub(crate) fn merge(
        &self,
        probes: &Probes,
        previous: Option<&SubSystemSnapshot>,
    ) -> SubSystemSnapshot {
        let (config, outcomes) = (self.config, self.outcomes);
        if self.answered == 0 {
            return unanswered(config, outcomes, previous);
        }
        let status = if self.answered == config.portals().len() {
            SubSystemStatus::Online
        } else {
            SubSystemStatus::PartiallyManaged
        };
        let mut snap = base(config, status);
        snap.detail = failure_detail(config, outcomes);
        snap.portals = self
            .portals
            .iter()
            .map(|p| {
                let status = match p.discovery {
                    Some(i) => match outcomes.get(i) {
                        Some(Outcome::Answered { .. }) => IscsiPortalStatus::Online,
                        Some(Outcome::Failed(f)) => f.class.portal_status(),
                        None => IscsiPortalStatus::Unknown,
                    },
                    None => match probes.get(&p.key) {
                        Some(Ok(())) => IscsiPortalStatus::Online,
                        Some(Err(f)) => f.class.portal_status(),
                        None => IscsiPortalStatus::Unknown,
                    },
                };
                PortalSnapshot {
                    address: p.address.clone(),
                    status,
                }
            })
            .collect();
        snap.targets = self
            .targets
            .iter()
            .map(|(name, range)| {
                let claims = &self.claims[range.clone()];
                // `claims` is sorted by tag: a run of one tag is a group, each allocated once.
                let portal_groups: Vec<PortalGroupSnapshot> = claims
                    .chunk_by(|a, b| a.0 == b.0)
                    .map(|run| PortalGroupSnapshot {
                        tag: run[0].0,
                        portals: run
                            .iter()
                            .map(|&(_, portal)| self.portals[portal].address.clone())
                            .collect(),
                    })
                    .collect();
                TargetSnapshot {
                    iscsi_name: (*name).to_owned(),
                    friendly_name: String::new(),
                    chap_enabled: false,
                    lun_count: 0,
                    portal_groups,
                    connected_initiators: Vec::new(),
                }
            })
            .collect();
        snap.health = if status == SubSystemStatus::Online
            && snap
                .portals
                .iter()
                .all(|p| p.status == IscsiPortalStatus::Online)
        {
            Health::Healthy
        } else {
            Health::Degraded
        };
        snap
    }
}

/// The snapshot's fields that do not depend on the answers.
fn base(config: &dyn Registered, status: SubSystemStatus) -> SubSystemSnapshot {
    let mut s = SubSystemSnapshot::new(config.name().to_owned(), status);
    s.friendly_name = config.name().to_owned();
    s.identification = config
        .portals()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    s.flags = SubSystemFlags::SUPPORTS_AUTH_CHAP | SubSystemFlags::SUPPORTS_AUTH_MUTUAL_CHAP;
    s
}

/// One line per failed discovery portal: `127.0.0.1:3260: authentication failure (login status
/// 0x0201)`.
fn failure_detail(config: &dyn Registered, outcomes: &[Outcome]) -> Option<String> {
    let lines: Vec<String> = config
        .portals()
        .iter()
        .zip(outcomes)
        .filter_map(|(dp, o)| match o {
            Outcome::Failed(f) => Some(format!("{dp}: {}", f.cause)),
            Outcome::Answered { .. } => None,
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// No discovery portal answered: keep what was known, mark what was not contacted `OFFLINE`.
fn unanswered(
    config: &dyn Registered,
    outcomes: &[Outcome],
    previous: Option<&SubSystemSnapshot>,
) -> SubSystemSnapshot {
    let classes: Vec<FailureClass> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(f) => Some(f.class),
            Outcome::Answered { .. } => None,
        })
        .collect();
    let (status, health) = if classes
        .iter()
        .any(|c| matches!(c, FailureClass::Refused | FailureClass::Broken))
    {
        (SubSystemStatus::Failed, Health::Failed)
    } else if classes.contains(&FailureClass::Busy) {
        (SubSystemStatus::NotReady, Health::Unknown)
    } else {
        (SubSystemStatus::Offline, Health::Unknown)
    };
    let mut snap = base(config, status);
    snap.health = health;
    snap.detail = failure_detail(config, outcomes);
    let mut seen: HashSet<String> = HashSet::new();
    for (dp, outcome) in config.portals().iter().zip(outcomes) {
        let Some(address) = dp.vds_address() else {
            continue;
        };
        if !seen.insert(address.canonical_key()) {
            continue;
        }
        let status = match outcome {
            Outcome::Failed(f) => f.class.portal_status(),
            Outcome::Answered { .. } => IscsiPortalStatus::Online,
        };
        snap.portals.push(PortalSnapshot { address, status });
    }
    if let Some(prev) = previous {
        let mut rest: Vec<PortalSnapshot> = prev
            .portals
            .iter()
            .filter(|p| seen.insert(p.address.canonical_key()))
            .map(|p| PortalSnapshot {
                address: p.address.clone(),
                status: IscsiPortalStatus::Offline,
            })
            .collect();
        rest.sort_by_cached_key(|p| sort_key(&p.address));
        snap.portals.extend(rest);
        snap.targets = prev.targets.clone();
    }
    snap
}

/// A subsystem whose registration cannot be used: `FAILED`, its previous objects kept (every portal
/// `UNKNOWN`, since nothing was contacted), the problem as its detail.
pub(crate) fn broken(
    b: &super::BrokenSubsystem,
    previous: Option<&SubSystemSnapshot>,
) -> SubSystemSnapshot {
    let mut snap = match previous {
        Some(p) => p.clone(),
        None => SubSystemSnapshot::new(b.name.clone(), SubSystemStatus::Failed),
    };
    snap.friendly_name = b.name.clone();
    snap.identification = b.identification.clone();
    snap.flags = SubSystemFlags::SUPPORTS_AUTH_CHAP | SubSystemFlags::SUPPORTS_AUTH_MUTUAL_CHAP;
    snap.status = SubSystemStatus::Failed;
    snap.health = Health::Failed;
    // The subject says which part of the registration (a secret file, say); the cause says why.
    let why = match (b.problem.subject(), b.problem.cause()) {
        (Some(subject), Some(cause)) => format!("{subject}: {cause}"),
        (None, Some(cause)) => cause.to_string(),
        (_, None) => b.problem.message(),
    };
    snap.detail = Some(format!("its registration cannot be used: {why}"));
    for p in &mut snap.portals {
        p.status = IscsiPortalStatus::Unknown;
    }
    snap
}

/// A subsystem the model knows that is no longer configured: its previous picture, `OFFLINE`, with
/// every portal `OFFLINE` and the detail "no longer configured".
pub(crate) fn retired(previous: &SubSystemSnapshot) -> SubSystemSnapshot {
    let mut snap = previous.clone();
    snap.status = SubSystemStatus::Offline;
    snap.health = Health::Unknown;
    snap.detail = Some("no longer configured".into());
    for p in &mut snap.portals {
        p.status = IscsiPortalStatus::Offline;
    }
    snap
}

/// The CPU half of one subsystem's refresh, for `benches/merge.rs`: what the driver computes from
/// the discovery answers (the portals to probe, then the picture), every probe answered `ONLINE`.
/// Not an API: the types it wraps stay private to the provider.
#[doc(hidden)]
pub mod bench {
    use super::{Outcome, Probes, SendTargetsSubsystem};
    use iscsi_proto::DiscoveredTarget;
    use vds_model::SubSystemSnapshot;

    /// The discovery answers of a subsystem, one per configured discovery portal.
    pub struct Answers(Vec<Outcome>);

    impl Answers {
        /// Each discovery portal answered with these targets and this login tag.
        pub fn new(answers: Vec<(Vec<DiscoveredTarget>, Option<u16>)>) -> Answers {
            Answers(
                answers
                    .into_iter()
                    .map(|(targets, portal_group_tag)| Outcome::Answered {
                        targets,
                        portal_group_tag,
                    })
                    .collect(),
            )
        }
    }

    /// The portals to probe and the merged picture, as `discover::subsystem` makes them.
    pub fn refresh_cpu(config: &SendTargetsSubsystem, answers: &Answers) -> SubSystemSnapshot {
        let collected = super::collect(config, &answers.0);
        let probes: Probes = collected
            .to_probe()
            .into_iter()
            .map(|p| (p.key, Ok(())))
            .collect();
        collected.merge(&probes, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendtargets::DiscoveryPortal;
    use iscsi_proto::TargetAddress;
    use proptest::prelude::*;

    /// What the driver does, in one call.
    fn merge(
        config: &SendTargetsSubsystem,
        outcomes: &[Outcome],
        probes: &Probes,
        previous: Option<&SubSystemSnapshot>,
    ) -> SubSystemSnapshot {
        collect(config, outcomes).merge(probes, previous)
    }

    fn portals_to_probe(config: &SendTargetsSubsystem, outcomes: &[Outcome]) -> Vec<ProbeTarget> {
        collect(config, outcomes).to_probe()
    }

    fn config(portals: &[&str]) -> SendTargetsSubsystem {
        SendTargetsSubsystem {
            name: "array".into(),
            portals: portals.iter().map(|p| p.parse().unwrap()).collect(),
            initiator_name: None,
            chap: None,
            mutual: None,
        }
    }

    fn ta(s: &str) -> TargetAddress {
        TargetAddress::parse(s).unwrap()
    }

    fn target(name: &str, addrs: &[&str]) -> DiscoveredTarget {
        DiscoveredTarget {
            name: name.into(),
            addresses: addrs.iter().map(|a| ta(a)).collect(),
        }
    }

    fn answered(targets: Vec<DiscoveredTarget>, tag: Option<u16>) -> Outcome {
        Outcome::Answered {
            targets,
            portal_group_tag: tag,
        }
    }

    fn failed(class: FailureClass, cause: &str) -> Outcome {
        Outcome::Failed(Failure {
            class,
            cause: cause.into(),
        })
    }

    fn addr(s: &str) -> VdsIpAddress {
        let p: DiscoveryPortal = s.parse().unwrap();
        p.vds_address().unwrap()
    }

    fn portals(s: &SubSystemSnapshot) -> Vec<(String, IscsiPortalStatus)> {
        s.portals
            .iter()
            .map(|p| (p.address.to_string(), p.status))
            .collect()
    }

    /// tgt: every discovery portal answers with only itself, tag 1.
    #[test]
    fn tgt_style_answers_union_into_one_group() {
        let cfg = config(&["127.0.0.1:3260", "127.0.0.2:3260", "[::1]:3260"]);
        let outcomes: Vec<Outcome> = ["127.0.0.1:3260,1", "127.0.0.2:3260,1", "[::1]:3260,1"]
            .iter()
            .map(|a| {
                answered(
                    vec![target("iqn.t2", &[a]), target("iqn.t1", &[a])],
                    Some(1),
                )
            })
            .collect();
        assert!(portals_to_probe(&cfg, &outcomes).is_empty());
        let s = merge(&cfg, &outcomes, &Probes::new(), None);
        assert_eq!(s.status, SubSystemStatus::Online);
        assert_eq!(s.health, Health::Healthy);
        assert_eq!(s.detail, None);
        assert_eq!(s.key, "array");
        assert_eq!(s.friendly_name, "array");
        assert_eq!(
            s.identification,
            "127.0.0.1:3260, 127.0.0.2:3260, [::1]:3260"
        );
        assert_eq!(
            s.flags,
            SubSystemFlags::SUPPORTS_AUTH_CHAP | SubSystemFlags::SUPPORTS_AUTH_MUTUAL_CHAP
        );
        assert_eq!(
            portals(&s),
            vec![
                ("127.0.0.1:3260".into(), IscsiPortalStatus::Online),
                ("127.0.0.2:3260".into(), IscsiPortalStatus::Online),
                ("[::1]:3260".into(), IscsiPortalStatus::Online),
            ]
        );
        let names: Vec<&str> = s.targets.iter().map(|t| t.iscsi_name.as_str()).collect();
        assert_eq!(names, ["iqn.t1", "iqn.t2"]);
        for t in &s.targets {
            assert_eq!(
                t.portal_groups,
                vec![PortalGroupSnapshot {
                    tag: 1,
                    portals: vec![
                        addr("127.0.0.1:3260"),
                        addr("127.0.0.2:3260"),
                        addr("[::1]:3260")
                    ],
                }]
            );
        }
    }

    /// istgt through PG1 only: the PG2 portals are learnt from TargetAddress, probed, sorted.
    #[test]
    fn istgt_style_groups_and_probes() {
        let cfg = config(&["127.0.0.1:3262"]);
        let outcomes = vec![answered(
            vec![
                target("iqn.x:disk1", &["127.0.0.1:3262,1"]),
                target(
                    "iqn.x:d3",
                    &["127.0.0.1:3262,1", "[::1]:3262,2", "127.0.0.2:3262,2"],
                ),
            ],
            None,
        )];
        let probe = portals_to_probe(&cfg, &outcomes);
        let keys: Vec<String> = probe.iter().map(|p| p.key.clone()).collect();
        assert_eq!(
            keys,
            vec![
                addr("127.0.0.2:3262").canonical_key(),
                addr("[::1]:3262").canonical_key()
            ]
        );
        let mut probes = Probes::new();
        probes.insert(keys[0].clone(), Ok(()));
        probes.insert(
            keys[1].clone(),
            Err(Failure {
                class: FailureClass::Busy,
                cause: "service unavailable (login status 0x0301)".into(),
            }),
        );
        let s = merge(&cfg, &outcomes, &probes, None);
        assert_eq!(s.status, SubSystemStatus::Online);
        assert_eq!(s.health, Health::Degraded);
        assert_eq!(
            portals(&s),
            vec![
                ("127.0.0.1:3262".into(), IscsiPortalStatus::Online),
                ("127.0.0.2:3262".into(), IscsiPortalStatus::Online),
                ("[::1]:3262".into(), IscsiPortalStatus::NotReady),
            ]
        );
        let d3 = &s.targets[0];
        assert_eq!(d3.iscsi_name, "iqn.x:d3");
        assert_eq!(
            d3.portal_groups,
            vec![
                PortalGroupSnapshot {
                    tag: 1,
                    portals: vec![addr("127.0.0.1:3262")]
                },
                PortalGroupSnapshot {
                    tag: 2,
                    // subsystem order, not answer order
                    portals: vec![addr("127.0.0.2:3262"), addr("[::1]:3262")]
                },
            ]
        );
    }

    #[test]
    fn untagged_addresses_take_the_login_tag_or_1() {
        let cfg = config(&["127.0.0.1:3260", "127.0.0.2:3260"]);
        let outcomes = vec![
            answered(vec![target("iqn.a", &["array.example:3260"])], Some(7)),
            // No TargetAddress at all: reached at the discovery portal; no login tag: 1.
            answered(vec![target("iqn.a", &[])], None),
        ];
        let s = merge(&cfg, &outcomes, &Probes::new(), None);
        assert_eq!(
            s.targets[0].portal_groups,
            vec![
                PortalGroupSnapshot {
                    tag: 1,
                    portals: vec![addr("127.0.0.2:3260")]
                },
                PortalGroupSnapshot {
                    tag: 7,
                    portals: vec![VdsIpAddress::text("array.example", 3260).unwrap()]
                },
            ]
        );
        // The name was not probed (no probe answer given): UNKNOWN, and it sorts after addresses.
        assert_eq!(
            portals(&s)[2],
            ("array.example:3260".into(), IscsiPortalStatus::Unknown)
        );
    }

    #[test]
    fn a_portal_claimed_by_two_groups_stays_in_the_first() {
        let cfg = config(&["127.0.0.1:3260"]);
        let outcomes = vec![answered(
            vec![target(
                "iqn.a",
                &["127.0.0.1:3260,1", "127.0.0.1:3260,2", "127.0.0.1:3260,1"],
            )],
            None,
        )];
        let s = merge(&cfg, &outcomes, &Probes::new(), None);
        assert_eq!(
            s.targets[0].portal_groups,
            vec![PortalGroupSnapshot {
                tag: 1,
                portals: vec![addr("127.0.0.1:3260")]
            }]
        );
    }

    /// A target whose every address is ignored (no VDS address can hold it) is still a target,
    /// without portal groups, in name order among the others.
    #[test]
    fn a_target_with_only_unusable_addresses_stays_a_target() {
        let cfg = config(&["127.0.0.1:3260"]);
        let unusable = TargetAddress {
            host: Host::Name("n".repeat(vds_model::MAX_TEXT_ADDRESS_UNITS + 1)),
            port: 3260,
            tag: None,
        };
        let outcomes = vec![answered(
            vec![
                target("iqn.c", &["127.0.0.1:3260,1"]),
                DiscoveredTarget {
                    name: "iqn.b".into(),
                    addresses: vec![unusable],
                },
                target("iqn.a", &["127.0.0.1:3260,1"]),
            ],
            None,
        )];
        let s = merge(&cfg, &outcomes, &Probes::new(), None);
        let names: Vec<&str> = s.targets.iter().map(|t| t.iscsi_name.as_str()).collect();
        assert_eq!(names, ["iqn.a", "iqn.b", "iqn.c"]);
        assert!(s.targets[1].portal_groups.is_empty());
        assert_eq!(s.targets[0].portal_groups, s.targets[2].portal_groups);
        assert_eq!(s.targets[0].portal_groups.len(), 1);
    }

    #[test]
    fn partial_answers_keep_the_silent_discovery_portal_offline() {
        let cfg = config(&["127.0.0.1:3260", "127.0.0.1:3261"]);
        let outcomes = vec![
            answered(vec![target("iqn.a", &["127.0.0.1:3260,1"])], Some(1)),
            failed(FailureClass::Unreachable, "connection refused"),
        ];
        let s = merge(&cfg, &outcomes, &Probes::new(), None);
        assert_eq!(s.status, SubSystemStatus::PartiallyManaged);
        assert_eq!(s.health, Health::Degraded);
        assert_eq!(
            s.detail.as_deref(),
            Some("127.0.0.1:3261: connection refused")
        );
        assert_eq!(
            portals(&s),
            vec![
                ("127.0.0.1:3260".into(), IscsiPortalStatus::Online),
                ("127.0.0.1:3261".into(), IscsiPortalStatus::Offline),
            ]
        );
    }

    fn previous() -> SubSystemSnapshot {
        let cfg = config(&["127.0.0.1:3262"]);
        let outcomes = vec![answered(
            vec![target(
                "iqn.x:d3",
                &["127.0.0.1:3262,1", "127.0.0.2:3262,2"],
            )],
            None,
        )];
        let mut probes = Probes::new();
        probes.insert(addr("127.0.0.2:3262").canonical_key(), Ok(()));
        merge(&cfg, &outcomes, &probes, None)
    }

    #[test]
    fn unreachable_keeps_the_previous_picture_offline() {
        let cfg = config(&["127.0.0.1:3262"]);
        let prev = previous();
        let outcomes = vec![failed(FailureClass::Unreachable, "connection refused")];
        assert!(portals_to_probe(&cfg, &outcomes).is_empty());
        let s = merge(&cfg, &outcomes, &Probes::new(), Some(&prev));
        assert_eq!(s.status, SubSystemStatus::Offline);
        assert_eq!(
            s.detail.as_deref(),
            Some("127.0.0.1:3262: connection refused")
        );
        assert_eq!(
            portals(&s),
            vec![
                ("127.0.0.1:3262".into(), IscsiPortalStatus::Offline),
                ("127.0.0.2:3262".into(), IscsiPortalStatus::Offline),
            ]
        );
        assert_eq!(s.targets, prev.targets);
        // Without a previous picture: just the discovery portal.
        let s = merge(&cfg, &outcomes, &Probes::new(), None);
        assert_eq!(portals(&s).len(), 1);
        assert!(s.targets.is_empty());
    }

    #[test]
    fn refusal_fails_the_subsystem_and_busy_is_not_ready() {
        let cfg = config(&["127.0.0.1:3260", "127.0.0.1:3261"]);
        let s = merge(
            &cfg,
            &[
                failed(
                    FailureClass::Refused,
                    "authentication failure (login status 0x0201)",
                ),
                failed(FailureClass::Unreachable, "timed out"),
            ],
            &Probes::new(),
            None,
        );
        assert_eq!(s.status, SubSystemStatus::Failed);
        assert_eq!(s.health, Health::Failed);
        assert_eq!(
            s.detail.as_deref(),
            Some(
                "127.0.0.1:3260: authentication failure (login status 0x0201); \
                 127.0.0.1:3261: timed out"
            )
        );
        assert_eq!(s.portals[0].status, IscsiPortalStatus::Failed);
        assert_eq!(s.portals[1].status, IscsiPortalStatus::Offline);

        let s = merge(
            &cfg,
            &[
                failed(FailureClass::Busy, "service unavailable"),
                failed(FailureClass::Unreachable, "timed out"),
            ],
            &Probes::new(),
            None,
        );
        assert_eq!(s.status, SubSystemStatus::NotReady);
        assert_eq!(s.portals[0].status, IscsiPortalStatus::NotReady);
    }

    #[test]
    fn retired_subsystems_go_offline_with_their_picture() {
        let prev = previous();
        let s = retired(&prev);
        assert_eq!(s.status, SubSystemStatus::Offline);
        assert_eq!(s.detail.as_deref(), Some("no longer configured"));
        assert!(
            s.portals
                .iter()
                .all(|p| p.status == IscsiPortalStatus::Offline)
        );
        assert_eq!(s.targets, prev.targets);
    }

    fn broken_subsystem(problem: vds_model::Error) -> super::super::BrokenSubsystem {
        super::super::BrokenSubsystem {
            name: "array".into(),
            identification: "127.0.0.1:3262".into(),
            problem,
        }
    }

    #[test]
    fn broken_registrations_fail_with_the_problem_and_keep_the_picture() {
        use vds_model::{Error, Hresult, Subject};

        let no_portal = broken_subsystem(
            Error::new(Hresult::E_INVALIDARG).because("it has no discovery portal"),
        );
        let s = broken(&no_portal, None);
        assert_eq!(s.key, "array");
        assert_eq!(s.status, SubSystemStatus::Failed);
        assert_eq!(s.health, Health::Failed);
        assert_eq!(s.identification, "127.0.0.1:3262");
        assert_eq!(
            s.detail.as_deref(),
            Some("its registration cannot be used: it has no discovery portal")
        );
        assert!(s.portals.is_empty() && s.targets.is_empty());

        // A secret the store could not read: its error names the secret in its subject, and the
        // detail must say which secret as well as why.
        let unreadable = broken_subsystem(
            Error::new(Hresult::E_ACCESSDENIED)
                .about(Subject::Other(
                    "secret \"array-chap\" (/var/lib/vds/secrets/array-chap)".into(),
                ))
                .because("mode 0644; it must be 0600"),
        );
        let prev = previous();
        let s = broken(&unreadable, Some(&prev));
        assert_eq!(
            s.detail.as_deref(),
            Some(
                "its registration cannot be used: secret \"array-chap\" \
                 (/var/lib/vds/secrets/array-chap): mode 0644; it must be 0600"
            )
        );
        assert_eq!(s.status, SubSystemStatus::Failed);
        // Nothing was contacted: the previous objects stay, every portal UNKNOWN.
        assert_eq!(s.targets, prev.targets);
        assert_eq!(
            portals(&s),
            vec![
                ("127.0.0.1:3262".into(), IscsiPortalStatus::Unknown),
                ("127.0.0.2:3262".into(), IscsiPortalStatus::Unknown),
            ]
        );

        // An error without a cause still says something.
        let bare = broken_subsystem(Error::new(Hresult::E_INVALIDARG));
        let detail = broken(&bare, None).detail.unwrap_or_default();
        assert!(
            detail.len() > "its registration cannot be used: ".len(),
            "{detail}"
        );
    }

    #[test]
    fn merged_snapshots_satisfy_the_model_invariants() {
        // The model refuses a snapshot whose groups name unknown portals or repeat a portal.
        let prev = previous();
        let cfg = config(&["127.0.0.1:3262"]);
        let offline = merge(
            &cfg,
            &[failed(FailureClass::Unreachable, "refused")],
            &Probes::new(),
            Some(&prev),
        );
        let failed = broken(
            &broken_subsystem(vds_model::Error::new(vds_model::Hresult::E_INVALIDARG)),
            Some(&prev),
        );
        for s in [retired(&prev), failed, prev, offline] {
            let (_, err) = vds_model::HwProvider::from_cache(
                vds_model::sim::SimBackend::with_subsystems(vec![]),
                vec![s],
                vds_model::CacheHealth::Good,
            );
            assert_eq!(err, None);
        }
    }

    /// Addresses the generated answers use: one portal written two ways (names differing in
    /// case, a zone by number and by name), the same host on two ports, every address type, a
    /// name too long for a VDS address, and enough IPv4 addresses for a target with many portals.
    fn address_pool() -> Vec<(Host, u16)> {
        let mut pool: Vec<(Host, u16)> = [
            "127.0.0.1:3260",
            "127.0.0.2:3260",
            "127.0.0.1:3261",
            "[::1]:3260",
            "[::1]:3261",
            "[fe80::1%1]:3260",
            "[fe80::1%lo]:3260",
            "[2001:db8::1]:3260",
            "array.example:3260",
            "ARRAY.example:3260",
            "b.example:3261",
        ]
        .iter()
        .map(|a| {
            let a = ta(a);
            (a.host, a.port)
        })
        .collect();
        pool.push((Host::Name("n".repeat(300)), 3260));
        pool.extend((0..24u8).map(|i| (Host::Ipv4(std::net::Ipv4Addr::new(10, 0, 0, i)), 3260)));
        pool
    }

    const DISCOVERY_POOL: [&str; 5] = [
        "127.0.0.1:3260",
        "127.0.0.2:3260",
        "[::1]:3260",
        "array.example:3260",
        "Array.Example:3260",
    ];

    const CLASSES: [FailureClass; 4] = [
        FailureClass::Unreachable,
        FailureClass::Busy,
        FailureClass::Refused,
        FailureClass::Broken,
    ];

    fn outcome_strategy() -> impl Strategy<Value = Outcome> {
        let pool = address_pool();
        let n = pool.len();
        let tag = prop::option::of(prop::sample::select(vec![1u16, 2, 7]));
        let address = (0..n, tag.clone()).prop_map(move |(i, tag)| TargetAddress {
            host: pool[i].0.clone(),
            port: pool[i].1,
            tag,
        });
        let addresses = prop_oneof![
            4 => prop::collection::vec(address.clone(), 0..=3),
            1 => prop::collection::vec(address, 0..40),
        ];
        let name = prop::sample::select(vec!["iqn.d", "iqn.a", "iqn.c", "iqn.b"]);
        let target = (name, addresses).prop_map(|(name, addresses)| DiscoveredTarget {
            name: name.into(),
            addresses,
        });
        prop_oneof![
            3 => (prop::collection::vec(target, 0..6), tag)
                .prop_map(|(targets, tag)| answered(targets, tag)),
            1 => prop::sample::select(CLASSES.to_vec()).prop_map(|c| failed(c, "failed")),
        ]
    }

    /// A subsystem of one to three discovery portals (maybe one twice), and what each answered.
    fn subsystem_strategy() -> impl Strategy<Value = (SendTargetsSubsystem, Vec<Outcome>)> {
        prop::collection::vec(
            (
                prop::sample::select(DISCOVERY_POOL.to_vec()),
                outcome_strategy(),
            ),
            1..=3,
        )
        .prop_map(|portals| {
            let names: Vec<&str> = portals.iter().map(|(p, _)| *p).collect();
            (
                config(&names),
                portals.into_iter().map(|(_, o)| o).collect(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The portals to probe and the picture are the reference merge's, for any answers, probe
        /// answers and previous picture.
        #[test]
        fn the_merge_is_the_reference_merge(
            (cfg, outcomes) in subsystem_strategy(),
            (prev_cfg, prev_outcomes) in subsystem_strategy(),
            with_previous in any::<bool>(),
            probe_answers in prop::collection::vec(0..6usize, 1..8),
        ) {
            let to_probe = portals_to_probe(&cfg, &outcomes);
            prop_assert_eq!(&to_probe, &oracle::portals_to_probe(&cfg, &outcomes));
            // Each portal answered, failed in one of the four ways, or was not probed.
            let probes: Probes = to_probe
                .iter()
                .zip(probe_answers.iter().cycle())
                .filter_map(|(p, answer)| {
                    let result = match answer {
                        0 => Ok(()),
                        1..=4 => Err(Failure { class: CLASSES[answer - 1], cause: "x".into() }),
                        _ => return None,
                    };
                    Some((p.key.clone(), result))
                })
                .collect();
            let previous = with_previous
                .then(|| oracle::merge(&prev_cfg, &prev_outcomes, &Probes::new(), None));
            prop_assert_eq!(
                merge(&cfg, &outcomes, &probes, previous.as_ref()),
                oracle::merge(&cfg, &outcomes, &probes, previous.as_ref())
            );
        }
    }

    /// The merge as it was before it collected once and named portals by index (commit 7870335),
    /// kept as the oracle of `the_merge_is_the_reference_merge`. Its warnings are not checked.
    mod oracle {
        use std::collections::{BTreeMap, HashMap, HashSet};

        use iscsi_proto::Host;
        use vds_model::{
            Health, IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot, SubSystemSnapshot,
            SubSystemStatus, TargetSnapshot, VdsIpAddress,
        };

        use super::super::{
            DEFAULT_PORTAL_GROUP_TAG, Outcome, ProbeTarget, Probes, base, failure_detail, sort_key,
            unanswered,
        };
        use crate::sendtargets::SendTargetsSubsystem;
        use crate::sendtargets::portal::vds_address;

        struct CollectedPortal {
            key: String,
            address: VdsIpAddress,
            host: Host,
            port: u16,
            /// Index of the discovery portal in the configuration, for discovery portals.
            discovery: Option<usize>,
        }

        struct Collected {
            /// Discovery portals first (configured order), then the others sorted.
            portals: Vec<CollectedPortal>,
            /// Target name → tag → portal keys (in discovery order; sorted later).
            targets: BTreeMap<String, BTreeMap<u16, Vec<String>>>,
        }

        fn collect(config: &SendTargetsSubsystem, outcomes: &[Outcome]) -> Collected {
            let mut portals: Vec<CollectedPortal> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            for (i, dp) in config.portals.iter().enumerate() {
                let Some(address) = dp.vds_address() else {
                    continue;
                };
                let key = address.canonical_key();
                if seen.insert(key.clone()) {
                    portals.push(CollectedPortal {
                        key,
                        address,
                        host: dp.host.clone(),
                        port: dp.port,
                        discovery: Some(i),
                    });
                }
            }
            let mut others: Vec<CollectedPortal> = Vec::new();
            let mut targets: BTreeMap<String, BTreeMap<u16, Vec<String>>> = BTreeMap::new();
            // Target name → portal key → the tag that claimed it first.
            let mut claimed: HashMap<String, HashMap<String, u16>> = HashMap::new();
            for (dp, outcome) in config.portals.iter().zip(outcomes) {
                let Outcome::Answered {
                    targets: answer,
                    portal_group_tag,
                } = outcome
                else {
                    continue;
                };
                let default_tag = portal_group_tag.unwrap_or(DEFAULT_PORTAL_GROUP_TAG);
                for target in answer {
                    let groups = targets.entry(target.name.clone()).or_default();
                    let claims = claimed.entry(target.name.clone()).or_default();
                    let addresses: Vec<(Host, u16, u16)> = if target.addresses.is_empty() {
                        vec![(dp.host.clone(), dp.port, default_tag)]
                    } else {
                        target
                            .addresses
                            .iter()
                            .map(|a| (a.host.clone(), a.port, a.tag.unwrap_or(default_tag)))
                            .collect()
                    };
                    for (host, port, tag) in addresses {
                        let Some(address) = vds_address(&host, port) else {
                            tracing::warn!(
                                subsystem = %config.name, target = %target.name, %host, port,
                                "TargetAddress cannot be a VDS address; ignored"
                            );
                            continue;
                        };
                        let key = address.canonical_key();
                        if seen.insert(key.clone()) {
                            others.push(CollectedPortal {
                                key: key.clone(),
                                address: address.clone(),
                                host,
                                port,
                                discovery: None,
                            });
                        }
                        match claims.get(&key) {
                            Some(first) if *first == tag => {}
                            Some(first) => {
                                tracing::warn!(
                                    subsystem = %config.name, target = %target.name, portal = %address,
                                    kept_tag = *first, ignored_tag = tag,
                                    "the array puts a portal in two portal groups of one target; \
                                     keeping the first"
                                );
                            }
                            None => {
                                claims.insert(key.clone(), tag);
                                groups.entry(tag).or_default().push(key);
                            }
                        }
                    }
                }
            }
            others.sort_by_cached_key(|p| sort_key(&p.address));
            portals.extend(others);
            Collected { portals, targets }
        }

        /// The portals to probe after the discoveries: every address some answer listed that is not a
        /// discovery portal, in portal order. Empty when no discovery portal answered.
        pub(super) fn portals_to_probe(
            config: &SendTargetsSubsystem,
            outcomes: &[Outcome],
        ) -> Vec<ProbeTarget> {
            if !outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Answered { .. }))
            {
                return Vec::new();
            }
            collect(config, outcomes)
                .portals
                .into_iter()
                .filter(|p| p.discovery.is_none())
                .map(|p| ProbeTarget {
                    key: p.key,
                    host: p.host,
                    port: p.port,
                })
                .collect()
        }

        /// The subsystem's picture from the discovery outcomes (one per configured discovery portal, in
        /// order), the probe answers, and the previous picture (used when no discovery portal answered).
        pub(super) fn merge(
            config: &SendTargetsSubsystem,
            outcomes: &[Outcome],
            probes: &Probes,
            previous: Option<&SubSystemSnapshot>,
        ) -> SubSystemSnapshot {
            let answered = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Answered { .. }))
                .count();
            if answered == 0 {
                return unanswered(config, outcomes, previous);
            }
            let status = if answered == config.portals.len() {
                SubSystemStatus::Online
            } else {
                SubSystemStatus::PartiallyManaged
            };
            let mut snap = base(config, status);
            snap.detail = failure_detail(config, outcomes);
            let collected = collect(config, outcomes);
            let mut order: HashMap<&str, usize> = HashMap::new();
            for (i, p) in collected.portals.iter().enumerate() {
                order.insert(p.key.as_str(), i);
                let status = match p.discovery {
                    Some(i) => match outcomes.get(i) {
                        Some(Outcome::Answered { .. }) => IscsiPortalStatus::Online,
                        Some(Outcome::Failed(f)) => f.class.portal_status(),
                        None => IscsiPortalStatus::Unknown,
                    },
                    None => match probes.get(&p.key) {
                        Some(Ok(())) => IscsiPortalStatus::Online,
                        Some(Err(f)) => f.class.portal_status(),
                        None => IscsiPortalStatus::Unknown,
                    },
                };
                snap.portals.push(PortalSnapshot {
                    address: p.address.clone(),
                    status,
                });
            }
            let address_of = |key: &str| -> Option<VdsIpAddress> {
                order
                    .get(key)
                    .and_then(|i| collected.portals.get(*i))
                    .map(|p| p.address.clone())
            };
            for (name, groups) in &collected.targets {
                let portal_groups = groups
                    .iter()
                    .map(|(tag, keys)| {
                        let mut keys: Vec<&String> = keys.iter().collect();
                        keys.sort_by_key(|k| order.get(k.as_str()).copied().unwrap_or(usize::MAX));
                        PortalGroupSnapshot {
                            tag: *tag,
                            portals: keys.into_iter().filter_map(|k| address_of(k)).collect(),
                        }
                    })
                    .collect();
                snap.targets.push(TargetSnapshot {
                    iscsi_name: name.clone(),
                    friendly_name: String::new(),
                    chap_enabled: false,
                    lun_count: 0,
                    portal_groups,
                    connected_initiators: Vec::new(),
                });
            }
            snap.health = if status == SubSystemStatus::Online
                && snap
                    .portals
                    .iter()
                    .all(|p| p.status == IscsiPortalStatus::Online)
            {
                Health::Healthy
            } else {
                Health::Degraded
            };
            snap
        }
    }
}
