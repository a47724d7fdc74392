//! The pure half of the tgt provider: what tgtd said (its portals and targets) and what vds holds
//! (offline portals, aliases) become one subsystem snapshot; and the names vds makes up (generated
//! target names, CHAP account names). No I/O.

use std::cmp::Ordering;
use std::net::SocketAddr;

use tgt_proto::AccountDirection;
use tgt_proto::show::Target;
use vds_model::{
    Health, IscsiPortalStatus, PortalGroupSnapshot, PortalSnapshot, SubSystemFlags,
    SubSystemSnapshot, SubSystemStatus, TargetSnapshot, VdsIpAddress,
};

use super::state::{Held, TgtState};

/// The tag of the one portal group of every target: tgt gives every portal TPGT 1.
pub const PORTAL_GROUP_TAG: u16 = 1;

/// The naming authority of generated target names (see [`generated_name`]).
pub const GENERATED_NAME_PREFIX: &str = "iqn.2026-12.org.vds.tgt:";

/// What tgtd said, in one go.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    /// Its listening portals (tgtd lists the newest first).
    pub(crate) portals: Vec<SocketAddr>,
    /// Its targets, in tid order.
    pub(crate) targets: Vec<Target>,
}

impl Observed {
    /// The target named `name` (compared without regard to case, as iSCSI names are).
    pub(crate) fn target(&self, name: &str) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The tid a new target gets: one more than the highest (tgtadm's habit), or 1.
    pub(crate) fn next_tid(&self) -> u32 {
        self.targets
            .iter()
            .map(|t| t.tid)
            .max()
            .map_or(1, |m| m.saturating_add(1))
    }
}

/// IPv4 before IPv6, then by address, then by port: the enumeration order of portals, the same
/// whatever order tgtd lists them in and whether vds holds them.
fn portal_order(a: &SocketAddr, b: &SocketAddr) -> Ordering {
    (a.is_ipv6(), a.ip(), a.port()).cmp(&(b.is_ipv6(), b.ip(), b.port()))
}

/// The name of the provider as a part of a target name: lower-case ASCII letters, digits, `.` and
/// `-` kept, anything else becomes `-` (tgtd takes only `[A-Za-z0-9:.-]`).
fn label(provider: &str) -> String {
    let l: String = provider
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    if l.is_empty() { "tgt".into() } else { l }
}

/// The name `CreateTarget` gives a target when none is asked for:
/// `iqn.2026-12.org.vds.tgt:<provider>.t<tid>`, the provider's name lower-cased with every
/// character tgtd does not take made `-`, and the tid tgtd knows the target by. Two tgtd hosts
/// managed under different provider names never make the same name.
pub fn generated_name(provider: &str, tid: u32) -> String {
    format!("{GENERATED_NAME_PREFIX}{}.t{tid}", label(provider))
}

/// The tgtd account vds makes for a target's own secret (`SetSharedSecret`, incoming): the
/// target's iSCSI name. Initiators log in with this CHAP name.
pub fn incoming_user(target: &str) -> String {
    target.to_string()
}

/// The tgtd account vds makes for the secret a target proves itself with (mutual CHAP,
/// `RememberInitiatorSharedSecret`, outgoing): `<target>.mutual`. It is the name the target gives
/// (`CHAP_N`) when an initiator challenges it.
pub fn outgoing_user(target: &str) -> String {
    format!("{target}.mutual")
}

/// The temporary account that keeps CHAP required while a target's secret is replaced.
pub(crate) fn swap_user(target: &str) -> String {
    format!("{target}.vds-swap")
}

/// Each initiator once, in tgtd's order.
fn connected_initiators(t: &Target) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in &t.nexuses {
        if let Some(i) = &n.initiator {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
    }
    out
}

/// Who and where the subsystem is: its key is the provider's name.
#[derive(Clone, Debug)]
pub(crate) struct Identity<'a> {
    /// The provider's name, which is the subsystem's key.
    pub(crate) key: &'a str,
    /// The management socket, as identification.
    pub(crate) socket: &'a str,
}

fn empty(id: &Identity<'_>, status: SubSystemStatus) -> SubSystemSnapshot {
    let mut s = SubSystemSnapshot::new(id.key, status);
    s.friendly_name = format!("tgtd at {}", id.socket);
    s.identification = id.socket.to_string();
    s.flags = SubSystemFlags::SUPPORTS_AUTH_CHAP | SubSystemFlags::SUPPORTS_AUTH_MUTUAL_CHAP;
    s
}

/// The subsystem as tgtd and the held state describe it: every portal tgtd listens on (`ONLINE`)
/// and every portal vds holds (`OFFLINE`, or `FAILED` with the reason in `detail`), in
/// [`portal_order`]; every target in tid order with its alias, CHAP (an incoming account is
/// bound), LUN count (LUN 0, the controller, does not count), its one portal group (tag 1,
/// every portal) and its connected initiators. `ONLINE`; health `HEALTHY`, or `DEGRADED` while a
/// portal is `FAILED`.
pub(crate) fn picture(id: &Identity<'_>, seen: &Observed, state: &TgtState) -> SubSystemSnapshot {
    let mut snap = empty(id, SubSystemStatus::Online);
    let mut portals: Vec<(SocketAddr, IscsiPortalStatus)> = Vec::new();
    for a in &seen.portals {
        if !portals.iter().any(|(p, _)| p == a) {
            portals.push((*a, IscsiPortalStatus::Online));
        }
    }
    let mut failures = Vec::new();
    for h in &state.portals {
        if portals.iter().any(|(p, _)| *p == h.address) {
            continue;
        }
        let status = match h.status {
            Held::Offline => IscsiPortalStatus::Offline,
            Held::Failed => {
                failures.push(format!(
                    "portal {} could not be brought online: {}",
                    h.address,
                    h.reason
                        .as_deref()
                        .unwrap_or("tgtd refused to listen there")
                ));
                IscsiPortalStatus::Failed
            }
        };
        portals.push((h.address, status));
    }
    portals.sort_by(|a, b| portal_order(&a.0, &b.0));
    snap.portals = portals
        .iter()
        .map(|(a, status)| PortalSnapshot {
            address: VdsIpAddress::from(*a),
            status: *status,
        })
        .collect();
    let every_portal: Vec<VdsIpAddress> = snap.portals.iter().map(|p| p.address.clone()).collect();
    for t in &seen.targets {
        if snap.targets.iter().any(|s| s.iscsi_name == t.name) {
            // tgtd never lists a name twice; a repeat would break the model's rules.
            continue;
        }
        snap.targets.push(TargetSnapshot {
            iscsi_name: t.name.clone(),
            friendly_name: state.aliases.get(&t.name).cloned().unwrap_or_default(),
            chap_enabled: t
                .accounts
                .iter()
                .any(|a| a.direction == AccountDirection::Incoming),
            lun_count: u32::try_from(t.luns.iter().filter(|l| l.number != 0).count())
                .unwrap_or(u32::MAX),
            portal_groups: vec![PortalGroupSnapshot {
                tag: PORTAL_GROUP_TAG,
                portals: every_portal.clone(),
            }],
            connected_initiators: connected_initiators(t),
        });
    }
    snap.health = if failures.is_empty() {
        Health::Healthy
    } else {
        snap.detail = Some(failures.join("; "));
        Health::Degraded
    };
    snap
}

/// The subsystem when tgtd cannot be asked: `status` (`OFFLINE` or `FAILED`) with `detail`, the
/// previous portals (`OFFLINE` when tgtd is not running, as its listening sockets went with it;
/// `UNKNOWN` when it runs but refuses us) and the previous targets, so the administrator still
/// sees what was there.
pub(crate) fn unreachable(
    id: &Identity<'_>,
    previous: Option<&SubSystemSnapshot>,
    status: SubSystemStatus,
    detail: String,
) -> SubSystemSnapshot {
    let mut snap = empty(id, status);
    let portal_status = if status == SubSystemStatus::Offline {
        IscsiPortalStatus::Offline
    } else {
        IscsiPortalStatus::Unknown
    };
    if let Some(prev) = previous {
        snap.portals = prev
            .portals
            .iter()
            .map(|p| PortalSnapshot {
                address: p.address.clone(),
                status: portal_status,
            })
            .collect();
        snap.targets = prev.targets.clone();
        for t in &mut snap.targets {
            // Nobody can be logged in to a tgtd that is not running; unknown otherwise.
            t.connected_initiators.clear();
        }
    }
    snap.health = if status == SubSystemStatus::Failed {
        Health::Failed
    } else {
        Health::Unknown
    };
    snap.detail = Some(detail);
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgt_proto::show::{Lun, Nexus, TargetAccount};

    const ID: Identity<'static> = Identity {
        key: "lab",
        socket: "/run/tgtd/socket.0",
    };

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn target(tid: u32, name: &str) -> Target {
        Target {
            tid,
            name: name.into(),
            luns: vec![Lun {
                number: 0,
                ..Lun::default()
            }],
            ..Target::default()
        }
    }

    #[test]
    fn portals_merge_sort_and_show_failures() {
        let seen = Observed {
            portals: vec![a("[::1]:3260"), a("127.0.0.2:3260"), a("127.0.0.1:3261")],
            targets: vec![target(1, "iqn.x:t1")],
        };
        let mut state = TgtState::new();
        state.hold(a("127.0.0.1:3260"), Held::Offline, None);
        state.hold(
            a("127.0.0.3:1"),
            Held::Failed,
            Some("Address already in use".into()),
        );
        // Held but listed again: tgtd wins.
        state.hold(a("127.0.0.2:3260"), Held::Offline, None);
        let s = picture(&ID, &seen, &state);
        let got: Vec<(String, IscsiPortalStatus)> = s
            .portals
            .iter()
            .map(|p| (p.address.to_string(), p.status))
            .collect();
        use IscsiPortalStatus as S;
        assert_eq!(
            got,
            [
                ("127.0.0.1:3260".to_string(), S::Offline),
                ("127.0.0.1:3261".to_string(), S::Online),
                ("127.0.0.2:3260".to_string(), S::Online),
                ("127.0.0.3:1".to_string(), S::Failed),
                ("[::1]:3260".to_string(), S::Online),
            ]
        );
        assert_eq!(s.status, SubSystemStatus::Online);
        assert_eq!(s.health, Health::Degraded);
        assert_eq!(
            s.detail.as_deref(),
            Some("portal 127.0.0.3:1 could not be brought online: Address already in use")
        );
        // One group, tag 1, every portal.
        assert_eq!(s.targets[0].portal_groups.len(), 1);
        assert_eq!(s.targets[0].portal_groups[0].tag, 1);
        assert_eq!(s.targets[0].portal_groups[0].portals.len(), 5);
        vds_model::check_snapshots(&[s]).unwrap();
    }

    #[test]
    fn targets_carry_luns_chap_alias_and_initiators() {
        let mut t = target(3, "iqn.x:t3");
        t.luns.push(Lun {
            number: 1,
            ..Lun::default()
        });
        t.luns.push(Lun {
            number: 2,
            ..Lun::default()
        });
        t.accounts.push(TargetAccount {
            user: "iqn.x:t3.mutual".into(),
            direction: AccountDirection::Outgoing,
        });
        let nexus = |id, who: &str| Nexus {
            id,
            initiator: Some(who.into()),
            ..Nexus::default()
        };
        t.nexuses = vec![
            nexus(1, "iqn.i:a"),
            nexus(2, "iqn.i:b"),
            nexus(3, "iqn.i:a"),
        ];
        let mut state = TgtState::new();
        state.aliases.insert("iqn.x:t3".into(), "db".into());
        let seen = Observed {
            portals: vec![],
            targets: vec![t.clone()],
        };
        let s = picture(&ID, &seen, &state);
        let st = &s.targets[0];
        assert_eq!(st.lun_count, 2, "LUN 0 does not count");
        assert!(
            !st.chap_enabled,
            "an outgoing account alone requires nothing"
        );
        assert_eq!(st.friendly_name, "db");
        assert_eq!(st.connected_initiators, ["iqn.i:a", "iqn.i:b"]);
        t.accounts.push(TargetAccount {
            user: "iqn.x:t3".into(),
            direction: AccountDirection::Incoming,
        });
        let s = picture(
            &ID,
            &Observed {
                portals: vec![],
                targets: vec![t],
            },
            &TgtState::new(),
        );
        assert!(s.targets[0].chap_enabled);
        assert_eq!(s.targets[0].friendly_name, "");
        assert_eq!(s.health, Health::Healthy);
        assert_eq!(s.key, "lab");
        assert_eq!(s.identification, "/run/tgtd/socket.0");
    }

    #[test]
    fn unreachable_keeps_what_was_there() {
        let seen = Observed {
            portals: vec![a("127.0.0.1:3260")],
            targets: vec![{
                let mut t = target(1, "iqn.x:t1");
                t.nexuses.push(Nexus {
                    id: 1,
                    initiator: Some("iqn.i:a".into()),
                    ..Nexus::default()
                });
                t
            }],
        };
        let before = picture(&ID, &seen, &TgtState::new());
        let off = unreachable(&ID, Some(&before), SubSystemStatus::Offline, "gone".into());
        assert_eq!(off.status, SubSystemStatus::Offline);
        assert_eq!(off.portals[0].status, IscsiPortalStatus::Offline);
        assert_eq!(off.targets[0].iscsi_name, "iqn.x:t1");
        assert!(off.targets[0].connected_initiators.is_empty());
        assert_eq!(off.detail.as_deref(), Some("gone"));
        let denied = unreachable(&ID, Some(&before), SubSystemStatus::Failed, "no".into());
        assert_eq!(denied.portals[0].status, IscsiPortalStatus::Unknown);
        assert_eq!(denied.health, Health::Failed);
        let first = unreachable(&ID, None, SubSystemStatus::Offline, "gone".into());
        assert!(first.portals.is_empty() && first.targets.is_empty());
    }

    #[test]
    fn names() {
        assert_eq!(generated_name("lab", 7), "iqn.2026-12.org.vds.tgt:lab.t7");
        assert_eq!(
            generated_name("Lab Array_2/é", 1),
            "iqn.2026-12.org.vds.tgt:lab-array-2--.t1"
        );
        for n in [generated_name("x y", 9), generated_name("", 1)] {
            tgt_proto::Request::NewTarget {
                tid: 1,
                name: n.clone(),
            }
            .validate()
            .unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        assert_eq!(incoming_user("iqn.x:t"), "iqn.x:t");
        assert_eq!(outgoing_user("iqn.x:t"), "iqn.x:t.mutual");
        let seen = Observed {
            portals: vec![],
            targets: vec![target(4, "iqn.x:A"), target(2, "iqn.x:b")],
        };
        assert_eq!(seen.next_tid(), 5);
        assert_eq!(Observed::default().next_tid(), 1);
        assert_eq!(seen.target("IQN.X:a").map(|t| t.tid), Some(4));
    }
}
