//! The tgt provider against real tgtd: each test starts its own tgtd on a private management socket
//! and free loopback ports, and stops it by PID. Every behaviour is checked independently of vds:
//! by what `tgtadm --op show` prints (another client of tgtd), and where it shows on the wire, by
//! another initiator (libiscsi's `iscsi-ls`/`iscsi-inq`, a raw login that stays logged in, the
//! SendTargets provider). tgtd's PID is checked alive after every request vds makes.

mod common;

use std::error::Error as StdError;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tgt_client::ClientConfig;
use tgt_proto::AccountDirection;
use tgt_proto::show::{self, Target};
use vds_model::{
    Error, Hresult, HwProvider, IscsiPortalStatus, SubSystem, SubSystemSnapshot, SubSystemStatus,
    VdsIpAddress, Win32Error,
};
use vds_providers::sendtargets::{SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem};
use vds_providers::tgt::{TgtBackend, generated_name, incoming_user, outgoing_user};
use vds_secret::Secret;
use vds_testpeers::{HeldSession, Tgtd, TgtdConfig, free_port};

use common::MemoryState;

type TestResult = Result<(), Box<dyn StdError>>;

/// The provider's name, which is its one subsystem's key.
const NAME: &str = "lab";
const INITIATOR: &str = "iqn.2026-12.test.vds:host-a";
const DEADLINE: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A private tgtd, a tgt provider over it (state in memory), and a runtime to drive it.
struct Lab {
    tgtd: Tgtd,
    state: Arc<MemoryState>,
    provider: HwProvider,
    rt: tokio::runtime::Runtime,
}

impl Lab {
    fn start(portals: Vec<String>) -> Result<Lab, Box<dyn StdError>> {
        let tgtd = Tgtd::start(TgtdConfig { portals })?;
        let state = Arc::new(MemoryState::default());
        let provider = provider_over(&tgtd, state.clone());
        let lab = Lab {
            tgtd,
            state,
            provider,
            rt: runtime(),
        };
        lab.run(lab.provider.reenumerate())?;
        Ok(lab)
    }

    /// Runs one provider operation, then checks tgtd survived it.
    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let out = self.rt.block_on(f);
        assert_alive(&self.tgtd);
        out
    }

    fn sub(&self) -> SubSystem {
        self.provider
            .sub_system_by_key(NAME)
            .expect("the subsystem")
    }

    fn snapshot(&self) -> SubSystemSnapshot {
        self.provider
            .export_subsystem(self.sub().id())
            .expect("cached")
    }

    fn refresh(&self) -> SubSystemSnapshot {
        self.run(self.provider.refresh_subsystem(&self.sub()))
            .expect("refresh");
        self.snapshot()
    }

    fn portal(&self, p: &str) -> vds_model::Portal {
        self.sub()
            .portal_by_address(&addr(p))
            .unwrap_or_else(|e| panic!("portal {p}: {e}"))
    }

    fn status(&self, p: &str) -> IscsiPortalStatus {
        self.portal(p).get_properties().expect("props").status
    }

    fn target(&self, name: &str) -> vds_model::Target {
        self.sub()
            .target_by_name(name)
            .unwrap_or_else(|e| panic!("target {name}: {e}"))
    }

    fn tid(&self, name: &str) -> u32 {
        tgtadm_targets(&self.tgtd)
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.tid)
            .unwrap_or_else(|| panic!("tgtadm shows no {name}"))
    }
}

fn provider_over(tgtd: &Tgtd, state: Arc<MemoryState>) -> HwProvider {
    let backend = TgtBackend::new(NAME, ClientConfig::new(tgtd.ipc_socket()), state);
    let provider = HwProvider::new(backend);
    provider.initialize().expect("initialize");
    provider
}

fn addr(s: &str) -> VdsIpAddress {
    VdsIpAddress::from(s.parse::<SocketAddr>().expect("a socket address"))
}

fn v4(host: &str) -> String {
    format!("{host}:{}", free_port())
}

/// Panics unless tgtd still runs (checked after every request vds makes).
fn assert_alive(tgtd: &Tgtd) {
    if let Err(e) = tgtd.check_alive() {
        panic!("{e}");
    }
}

/// `tgtadm --op show --mode target`, read by another process.
fn tgtadm_targets(tgtd: &Tgtd) -> Vec<Target> {
    let out = tgtd
        .tgtadm(&["--lld", "iscsi", "--op", "show", "--mode", "target"])
        .expect("tgtadm show target");
    show::parse_targets(&out).expect("tgtadm's text parses")
}

/// `tgtadm --op show --mode portal`, as addresses.
fn tgtadm_portals(tgtd: &Tgtd) -> Vec<SocketAddr> {
    let mut p: Vec<SocketAddr> = tgtd
        .show_portals()
        .expect("tgtadm show portal")
        .iter()
        .map(|s| s.parse().expect("an address"))
        .collect();
    p.sort();
    p
}

/// `tgtadm --op show --mode account`.
fn tgtadm_accounts(tgtd: &Tgtd) -> Vec<String> {
    let out = tgtd
        .tgtadm(&["--lld", "iscsi", "--op", "show", "--mode", "account"])
        .expect("tgtadm show account");
    show::parse_accounts(&out).expect("tgtadm's account list parses")
}

/// Waits, up to [`DEADLINE`], until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "{what}: not within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the provider's picture must be, computed from tgtadm's own output.
fn assert_matches_tgtadm(lab: &Lab, snap: &SubSystemSnapshot) {
    let portals = tgtadm_portals(&lab.tgtd);
    let mut ours: Vec<SocketAddr> = snap
        .portals
        .iter()
        .map(|p| {
            assert_eq!(p.status, IscsiPortalStatus::Online, "{p:?}");
            p.address.to_socket_addr().expect("an IP portal")
        })
        .collect();
    ours.sort();
    assert_eq!(ours, portals, "portals");
    let targets = tgtadm_targets(&lab.tgtd);
    assert_eq!(snap.targets.len(), targets.len(), "targets");
    for (mine, theirs) in snap.targets.iter().zip(&targets) {
        assert_eq!(mine.iscsi_name, theirs.name);
        let luns = theirs.luns.iter().filter(|l| l.number != 0).count();
        assert_eq!(mine.lun_count as usize, luns, "{}: LUNs", theirs.name);
        let chap = theirs
            .accounts
            .iter()
            .any(|a| a.direction == AccountDirection::Incoming);
        assert_eq!(mine.chap_enabled, chap, "{}: CHAP", theirs.name);
        let mut who: Vec<String> = Vec::new();
        for n in &theirs.nexuses {
            if let Some(i) = &n.initiator {
                if !who.contains(i) {
                    who.push(i.clone());
                }
            }
        }
        assert_eq!(
            mine.connected_initiators, who,
            "{}: initiators",
            theirs.name
        );
        assert_eq!(mine.portal_groups.len(), 1, "{}: one group", theirs.name);
        assert_eq!(mine.portal_groups[0].tag, 1);
        assert_eq!(mine.portal_groups[0].portals.len(), portals.len());
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> Hresult {
    r.expect_err("an error").code()
}

#[test]
fn the_read_path_equals_tgtadm_at_0_1_and_400_targets() -> TestResult {
    let lab = Lab::start(vec![
        v4("127.0.0.1"),
        v4("127.0.0.2"),
        format!("[::1]:{}", free_port()),
    ])?;
    // 0 targets.
    let snap = lab.snapshot();
    assert_eq!(snap.status, SubSystemStatus::Online);
    assert_eq!(snap.key, NAME);
    assert!(snap.targets.is_empty());
    assert_matches_tgtadm(&lab, &snap);
    let sub = lab.sub();
    assert_eq!(sub.query_targets()?.len(), 0);

    // 1 target with a data LUN, target CHAP, an ACL and an initiator logged in.
    let t1 = "iqn.2026-12.test.vds:one";
    lab.tgtd.add_target(1, t1)?;
    lab.tgtd.set_target_chap(
        1,
        "t1user",
        "t1secret12345",
        Some(("t1out", "t1outsecret123")),
    )?;
    let held = HeldSession::open(&lab.tgtd.portals()[0], t1, INITIATOR, None, DEADLINE);
    // The login needs CHAP now; a session comes from the second target below instead.
    assert!(held.is_err(), "a login without CHAP was accepted");
    let t2 = "iqn.2026-12.test.vds:two";
    lab.tgtd.add_target(2, t2)?;
    let session = HeldSession::open(&lab.tgtd.portals()[1], t2, INITIATOR, None, DEADLINE)?;
    let snap = lab.refresh();
    assert_matches_tgtadm(&lab, &snap);
    assert_eq!(snap.targets[0].lun_count, 1);
    assert!(snap.targets[0].chap_enabled);
    assert_eq!(snap.targets[1].connected_initiators, [INITIATOR]);
    assert_eq!(
        lab.target(t2).get_connected_initiators()?,
        [INITIATOR],
        "GetConnectedInitiators lists the initiator kept logged in"
    );
    drop(session);
    lab.tgtd.delete_target(2)?;

    // 400 targets: tgtd writes the reply in several pieces.
    lab.tgtd.add_targets(399, "iqn.2026-12.test.vds:big")?;
    let raw = lab.run(
        tgt_client::Client::new(ClientConfig::new(lab.tgtd.ipc_socket()))
            .send(&tgt_proto::Request::ShowTargets),
    )?;
    assert!(raw.reads > 1, "{} read(s)", raw.reads);
    let snap = lab.refresh();
    assert_eq!(snap.targets.len(), 400);
    assert_matches_tgtadm(&lab, &snap);
    // And a reenumerate of a provider that knew nothing sees the same.
    let fresh = provider_over(&lab.tgtd, lab.state.clone());
    lab.run(fresh.reenumerate())?;
    assert_eq!(fresh.export(), vec![snap]);
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn offline_deletes_the_portal_and_online_brings_it_back() -> TestResult {
    let (a, b) = (v4("127.0.0.1"), v4("127.0.0.2"));
    let lab = Lab::start(vec![a.clone(), b.clone()])?;
    lab.tgtd.add_target(1, "iqn.2026-12.test.vds:t1")?;
    lab.refresh();
    let a_sock: SocketAddr = a.parse()?;

    lab.run(lab.portal(&a).set_status(IscsiPortalStatus::Offline))?;
    assert_eq!(lab.status(&a), IscsiPortalStatus::Offline);
    assert_eq!(tgtadm_portals(&lab.tgtd), vec![b.parse::<SocketAddr>()?]);
    let refused = TcpStream::connect_timeout(&a_sock, DEADLINE).expect_err("still listening");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(vds_testpeers::iscsi_ls(&vds_testpeers::url(&a)).is_err());
    let through_b = vds_testpeers::iscsi_ls(&vds_testpeers::url(&b))?;
    assert_eq!(
        through_b,
        [("iqn.2026-12.test.vds:t1".to_string(), format!("{b},1"))]
    );
    // vds remembers it: after a refresh, and in another process (a backend over the same state).
    lab.refresh();
    assert_eq!(lab.status(&a), IscsiPortalStatus::Offline);
    let other = provider_over(&lab.tgtd, lab.state.clone());
    lab.run(other.reenumerate())?;
    let seen = other.export();
    assert!(
        seen[0]
            .portals
            .iter()
            .any(|p| p.address == addr(&a) && p.status == IscsiPortalStatus::Offline),
        "{seen:?}"
    );
    // It stays in the target's one group.
    let groups = lab
        .target("iqn.2026-12.test.vds:t1")
        .query_portal_groups()?;
    assert_eq!(groups.len(), 1);
    // Offline again: nothing to do.
    lab.run(lab.portal(&a).set_status(IscsiPortalStatus::Offline))?;

    // A portal tgtd cannot bind is FAILED, with why.
    let squatter = std::net::TcpListener::bind(a_sock)?;
    let e = lab
        .run(lab.portal(&a).set_status(IscsiPortalStatus::Online))
        .expect_err("the address is taken");
    assert_eq!(e, Hresult::from_win32(Win32Error::WSAEADDRINUSE.0));
    assert!(e.to_string().contains(&a), "{e}");
    assert_eq!(lab.status(&a), IscsiPortalStatus::Failed);
    let detail = lab.sub().detail()?.unwrap_or_default();
    assert!(detail.contains("in use"), "{detail}");
    lab.refresh();
    assert_eq!(lab.status(&a), IscsiPortalStatus::Failed, "remembered");
    drop(squatter);

    lab.run(lab.portal(&a).set_status(IscsiPortalStatus::Online))?;
    assert_eq!(lab.status(&a), IscsiPortalStatus::Online);
    assert_eq!(lab.sub().detail()?, None);
    assert_eq!(tgtadm_portals(&lab.tgtd).len(), 2);
    TcpStream::connect_timeout(&a_sock, DEADLINE)?;
    assert_eq!(
        vds_testpeers::iscsi_ls(&vds_testpeers::url(&a))?,
        [("iqn.2026-12.test.vds:t1".to_string(), format!("{a},1"))]
    );
    // Only ONLINE and OFFLINE can be asked for.
    assert_eq!(
        code(lab.run(lab.portal(&a).set_status(IscsiPortalStatus::Failed))),
        Hresult::VDS_E_NOT_SUPPORTED
    );
    // A portal tgtadm deletes behind vds's back departs at the next refresh (vds did not take it
    // offline, so it does not hold it).
    lab.tgtd.delete_portal(&b)?;
    let snap = lab.refresh();
    assert_eq!(snap.portals.len(), 1);
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn create_target_with_and_without_a_name_and_grant_access() -> TestResult {
    let portal = v4("127.0.0.1");
    let lab = Lab::start(vec![portal.clone()])?;
    let sub = lab.sub();
    let named = "iqn.2026-12.test.vds:made";
    let t = lab.run(sub.create_target(Some(named), "web"))?;
    assert_eq!(t.get_properties()?.iscsi_name, named);
    assert_eq!(t.get_properties()?.friendly_name, "web");
    let shown = tgtadm_targets(&lab.tgtd);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].name, named);
    assert!(
        shown[0].acls.is_empty(),
        "a new target has no initiator ACL"
    );
    assert_eq!(t.lun_count()?, 0);
    // No ACL: invisible to SendTargets until access is granted.
    assert!(vds_testpeers::iscsi_ls(&vds_testpeers::url(&portal))?.is_empty());
    lab.tgtd.grant_all(shown[0].tid)?;
    assert_eq!(
        vds_testpeers::iscsi_ls(&vds_testpeers::url(&portal))?,
        [(named.to_string(), format!("{portal},1"))]
    );
    let st = SendTargetsBackend::new(
        "st",
        vec![SendTargetsSubsystem {
            name: "via-sendtargets".into(),
            portals: vec![portal.parse()?],
            initiator_name: None,
            chap: None,
            mutual: None,
        }],
        SendTargetsOptions::default(),
    )?;
    let st = HwProvider::new(st);
    st.initialize()?;
    lab.run(st.reenumerate())?;
    let seen: Vec<String> = st
        .sub_system_by_key("via-sendtargets")?
        .query_targets()?
        .into_iter()
        .map(|t| t.get_properties().map(|p| p.iscsi_name))
        .collect::<Result<_, _>>()?;
    assert_eq!(seen, [named]);

    // Without a name: the documented pattern, on the tid tgtd gave it.
    let g = lab.run(sub.create_target(None, ""))?;
    let gname = g.get_properties()?.iscsi_name;
    assert_eq!(gname, generated_name(NAME, 2));
    assert_eq!(gname, "iqn.2026-12.org.vds.tgt:lab.t2");
    assert_eq!(lab.tid(&gname), 2);

    // Names: taken (in the cache, or only in tgtd), and characters tgtd refuses.
    assert_eq!(
        code(lab.run(sub.create_target(Some(named), ""))),
        Hresult::VDS_E_NAME_NOT_UNIQUE
    );
    lab.tgtd.tgtadm(&[
        "--lld",
        "iscsi",
        "--op",
        "new",
        "--mode",
        "target",
        "--tid",
        "9",
        "--targetname",
        "iqn.2026-12.test.vds:by-hand",
    ])?;
    let e = lab
        .run(sub.create_target(Some("iqn.2026-12.test.vds:by-hand"), ""))
        .expect_err("taken in tgtd");
    assert_eq!(e, Hresult::VDS_E_NAME_NOT_UNIQUE);
    assert!(e.to_string().contains("tgtd has target 9"), "{e}");
    assert_eq!(
        code(lab.run(sub.create_target(Some("iqn.2026-12.test.vds:under_score"), ""))),
        Hresult::VDS_E_INVALID_ISCSI_TARGET_NAME
    );
    // The next generated name goes after the highest tid.
    let g2 = lab.run(sub.create_target(None, ""))?;
    assert_eq!(g2.get_properties()?.iscsi_name, generated_name(NAME, 10));
    assert_eq!(tgtadm_targets(&lab.tgtd).len(), 4);
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn set_friendly_name_is_kept_by_vds_as_tgtd_has_no_alias() -> TestResult {
    let lab = Lab::start(vec![v4("127.0.0.1")])?;
    let t = lab.run(lab.sub().create_target(Some("iqn.2026-12.test.vds:a"), ""))?;
    let before = tgtadm_targets(&lab.tgtd);
    lab.run(t.set_friendly_name("accounting"))?;
    assert_eq!(t.get_properties()?.friendly_name, "accounting");
    // tgtd is not changed (it has nowhere to keep an alias)...
    assert_eq!(tgtadm_targets(&lab.tgtd), before);
    // ...vds keeps it: across refreshes and processes.
    lab.refresh();
    assert_eq!(t.get_properties()?.friendly_name, "accounting");
    let other = provider_over(&lab.tgtd, lab.state.clone());
    lab.run(other.reenumerate())?;
    assert_eq!(other.export()[0].targets[0].friendly_name, "accounting");
    // Empty clears it.
    lab.run(t.set_friendly_name(""))?;
    assert_eq!(t.get_properties()?.friendly_name, "");
    // An alias is forgotten with its target, even when another client deleted it.
    lab.run(t.set_friendly_name("gone soon"))?;
    lab.tgtd.delete_target(1)?;
    lab.refresh();
    lab.tgtd.tgtadm(&[
        "--lld",
        "iscsi",
        "--op",
        "new",
        "--mode",
        "target",
        "--tid",
        "1",
        "--targetname",
        "iqn.2026-12.test.vds:a",
    ])?;
    lab.refresh();
    assert_eq!(
        lab.target("iqn.2026-12.test.vds:a")
            .get_properties()?
            .friendly_name,
        ""
    );
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn delete_refuses_luns_and_logged_in_initiators_and_never_forces() -> TestResult {
    let portal = v4("127.0.0.1");
    let lab = Lab::start(vec![portal.clone()])?;
    // A target with a LUN.
    lab.tgtd.add_target(1, "iqn.2026-12.test.vds:with-lun")?;
    lab.refresh();
    assert_eq!(
        code(lab.run(lab.target("iqn.2026-12.test.vds:with-lun").delete())),
        Hresult::VDS_E_ASSOCIATED_LUNS_EXIST
    );
    assert_eq!(tgtadm_targets(&lab.tgtd).len(), 1);

    // A target vds made, with an initiator logged in that the cache knows about.
    let name = "iqn.2026-12.test.vds:busy";
    let t = lab.run(lab.sub().create_target(Some(name), ""))?;
    lab.tgtd.grant_all(lab.tid(name))?;
    let session = HeldSession::open(&portal, name, INITIATOR, None, DEADLINE)?;
    lab.refresh();
    assert_eq!(t.get_connected_initiators()?, [INITIATOR]);
    let e = lab.run(t.delete()).expect_err("in use");
    assert_eq!(e, Hresult::VDS_E_DEVICE_IN_USE);
    assert!(e.to_string().contains(INITIATOR), "{e}");
    assert!(tgtadm_targets(&lab.tgtd).iter().any(|t| t.name == name));
    drop(session);
    wait_until("tgtd drops the nexus", || {
        tgtadm_targets(&lab.tgtd)
            .iter()
            .all(|t| t.nexuses.is_empty())
    });

    // An initiator that logs in after the last refresh: tgtd is asked again, and says so.
    lab.refresh();
    assert!(t.get_connected_initiators()?.is_empty());
    let late = HeldSession::open(&portal, name, "iqn.2026-12.test.vds:late", None, DEADLINE)?;
    let e = lab.run(t.delete()).expect_err("in use");
    assert_eq!(e, Hresult::VDS_E_DEVICE_IN_USE);
    assert!(e.to_string().contains("late"), "{e}");
    // The picture committed with the refusal shows who.
    assert_eq!(t.get_connected_initiators()?, ["iqn.2026-12.test.vds:late"]);
    assert!(tgtadm_targets(&lab.tgtd).iter().any(|t| t.name == name));
    drop(late);
    wait_until("tgtd drops the nexus", || {
        tgtadm_targets(&lab.tgtd)
            .iter()
            .all(|t| t.nexuses.is_empty())
    });
    lab.refresh();

    // Once nobody is logged in, it goes, and so do the accounts vds made for it.
    let secret = Secret::from("a-target-secret-1");
    lab.run(t.set_shared_secret(Some(&secret), None))?;
    lab.run(
        t.remember_initiator_shared_secret(INITIATOR, Some(&Secret::from("the-initiators-2"))),
    )?;
    assert_eq!(tgtadm_accounts(&lab.tgtd).len(), 2);
    lab.run(t.delete())?;
    assert!(!tgtadm_targets(&lab.tgtd).iter().any(|t| t.name == name));
    assert!(tgtadm_accounts(&lab.tgtd).is_empty());
    assert_eq!(code(t.get_properties()), Hresult::VDS_E_OBJECT_DELETED);

    // A target another client deleted meanwhile: OBJECT_DELETED, and it departs.
    let t = lab.run(
        lab.sub()
            .create_target(Some("iqn.2026-12.test.vds:racy"), ""),
    )?;
    lab.tgtd
        .delete_target(lab.tid("iqn.2026-12.test.vds:racy"))?;
    assert_eq!(code(lab.run(t.delete())), Hresult::VDS_E_OBJECT_DELETED);
    assert_eq!(code(t.get_properties()), Hresult::VDS_E_OBJECT_DELETED);
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn portal_groups_are_tgts_one_group() -> TestResult {
    let (a, b) = (v4("127.0.0.1"), v4("127.0.0.2"));
    let lab = Lab::start(vec![a.clone(), b.clone()])?;
    let t = lab.run(lab.sub().create_target(Some("iqn.2026-12.test.vds:g"), ""))?;
    let (group, hr) = lab.run(t.create_portal_group())?;
    assert_eq!(hr, Hresult::VDS_S_ALREADY_EXISTS);
    assert_eq!(group.get_properties()?.tag, 1);
    assert_eq!(t.query_portal_groups()?.len(), 1, "no group was added");
    assert_eq!(group.query_associated_portals()?.len(), 2);
    let pa = lab.portal(&a).id();
    // Already there: success, nothing to do.
    lab.run(group.add_portal(pa))?;
    assert_eq!(
        code(lab.run(group.remove_portal(pa))),
        Hresult::VDS_E_NOT_SUPPORTED
    );
    assert_eq!(
        code(lab.run(group.delete())),
        Hresult::VDS_E_ASSOCIATED_PORTALS_EXIST
    );
    assert_eq!(group.query_associated_portals()?.len(), 2);
    assert_eq!(tgtadm_portals(&lab.tgtd).len(), 2);
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn chap_target_set_and_remember_on_the_wire() -> TestResult {
    let portal = v4("127.0.0.1");
    let lab = Lab::start(vec![portal.clone()])?;
    let name = "iqn.2026-12.test.vds:chap";
    let t = lab.run(lab.sub().create_target(Some(name), ""))?;
    lab.tgtd.grant_all(lab.tid(name))?;
    let url = |creds: &str| format!("iscsi://{creds}{portal}");
    let login_ok = |creds: &str| vds_testpeers::iscsi_ls_luns(&url(creds)).is_ok();
    assert!(login_ok(""), "no CHAP yet");
    assert!(!t.get_properties()?.chap_enabled);

    let user = incoming_user(name);
    lab.run(t.set_shared_secret(Some(&Secret::from("first-secret-12")), None))?;
    assert!(t.get_properties()?.chap_enabled);
    let shown = tgtadm_targets(&lab.tgtd);
    assert_eq!(shown[0].accounts.len(), 1);
    assert_eq!(shown[0].accounts[0].user, user);
    assert_eq!(shown[0].accounts[0].direction, AccountDirection::Incoming);
    let e = vds_testpeers::iscsi_ls_luns(&url("")).expect_err("CHAP is required");
    // iscsi-ls says why on stdout or stderr; the error's Debug form carries both.
    assert!(format!("{e:?}").contains("Authentication failure"), "{e:?}");
    assert!(!login_ok(&format!("{user}%wrong-secret-1@")));
    assert!(login_ok(&format!("{user}%first-secret-12@")));

    // Replaced: the old secret no longer works, the new one does.
    lab.run(t.set_shared_secret(Some(&Secret::from("second-secret-1")), None))?;
    assert!(!login_ok(&format!("{user}%first-secret-12@")));
    assert!(login_ok(&format!("{user}%second-secret-1@")));
    assert_eq!(tgtadm_accounts(&lab.tgtd), std::slice::from_ref(&user));

    // Mutual CHAP: the target proves itself with the remembered secret.
    let out = outgoing_user(name);
    lab.run(
        t.remember_initiator_shared_secret(INITIATOR, Some(&Secret::from("initiator-secret"))),
    )?;
    let inq = |target_password: &str| {
        vds_testpeers::iscsi_inq(&format!(
            "iscsi://{user}%second-secret-1@{portal}/{name}/0?target_user={out}&target_password={target_password}"
        ))
    };
    inq("initiator-secret")?;
    let e = inq("not-the-secret").expect_err("the target proved another secret");
    assert!(format!("{e:?}").contains("CHAP_R"), "{e:?}");
    let shown = tgtadm_targets(&lab.tgtd);
    assert!(
        shown[0]
            .accounts
            .iter()
            .any(|a| a.user == out && a.direction == AccountDirection::Outgoing)
    );
    // Remembered again: replaced.
    lab.run(
        t.remember_initiator_shared_secret(INITIATOR, Some(&Secret::from("initiator-secret-2"))),
    )?;
    inq("initiator-secret-2")?;
    assert!(inq("initiator-secret").is_err());
    lab.run(t.remember_initiator_shared_secret(INITIATOR, None))?;
    assert!(inq("initiator-secret-2").is_err(), "forgotten");

    // One secret per target: a per-initiator one is refused, and nothing changes.
    assert_eq!(
        code(lab.run(t.set_shared_secret(Some(&Secret::from("per-initiator-1")), Some(INITIATOR)))),
        Hresult::VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED
    );
    // A secret tgtd cannot hold is refused before anything is sent.
    assert_eq!(
        code(lab.run(t.set_shared_secret(Some(&Secret::from("nul\0inside")), None))),
        Hresult::VDS_E_ISCSI_CHAP_SECRET
    );
    assert_eq!(
        code(lab.run(t.set_shared_secret(Some(&Secret::new(vec![b'x'; 1025])), None))),
        Hresult::VDS_E_ISCSI_CHAP_SECRET
    );
    assert!(login_ok(&format!("{user}%second-secret-1@")));

    // Cleared: logins need no CHAP again.
    lab.run(t.set_shared_secret(None, None))?;
    assert!(!t.get_properties()?.chap_enabled);
    assert!(login_ok(""));
    assert!(tgtadm_accounts(&lab.tgtd).is_empty());
    lab.tgtd.stop()?;
    Ok(())
}

#[test]
fn tgtd_stopped_between_two_operations() -> TestResult {
    let portal = v4("127.0.0.1");
    let lab = Lab::start(vec![portal])?;
    lab.run(
        lab.sub()
            .create_target(Some("iqn.2026-12.test.vds:before"), "b"),
    )?;
    let before = lab.snapshot();
    let socket = lab.tgtd.ipc_socket();
    let Lab {
        tgtd, provider, rt, ..
    } = lab;
    tgtd.stop()?;
    let sub = provider.sub_system_by_key(NAME)?;
    // A change: a clear error naming the socket, and the cache as it was.
    let e = rt
        .block_on(sub.create_target(Some("iqn.2026-12.test.vds:after"), ""))
        .expect_err("tgtd is gone");
    assert_eq!(e, Hresult::from_win32(Win32Error::WSAECONNREFUSED.0));
    let text = e.to_string();
    assert!(text.contains(&*socket.to_string_lossy()), "{text}");
    assert!(text.contains("no management socket"), "{text}");
    assert_eq!(provider.export(), vec![before.clone()]);
    // A refresh: OFFLINE, saying why; what was there is still shown.
    rt.block_on(provider.refresh_subsystem(&sub))?;
    let snap = provider.export_subsystem(sub.id()).ok_or("cached")?;
    assert_eq!(snap.status, SubSystemStatus::Offline);
    let detail = snap.detail.clone().unwrap_or_default();
    assert!(detail.contains("no management socket"), "{detail}");
    assert_eq!(snap.targets, before.targets);
    assert!(
        snap.portals
            .iter()
            .all(|p| p.status == IscsiPortalStatus::Offline)
    );
    assert_eq!(sub.query_targets()?.len(), 1, "queries still answer");
    Ok(())
}

#[test]
fn a_state_that_does_not_parse_is_a_corrupt_cache_until_reenumerate() -> TestResult {
    use vds_providers::KindState;
    let lab = Lab::start(vec![v4("127.0.0.1")])?;
    lab.state.write(b"{ not json")?;
    let e = lab
        .run(lab.provider.refresh())
        .expect_err("the state is unreadable");
    assert_eq!(e, Hresult::VDS_E_PROVIDER_CACHE_CORRUPT);
    assert!(e.to_string().contains("tgt provider's state"), "{e}");
    // The documented recovery: reenumerate (which starts the state afresh), then refresh.
    lab.run(lab.provider.reenumerate())?;
    lab.run(lab.provider.refresh())?;
    assert_eq!(lab.provider.cache_health(), vds_model::CacheHealth::Good);
    let kept = lab.state.read()?.unwrap_or_default();
    assert!(serde_json::from_slice::<serde_json::Value>(&kept).is_ok());
    lab.tgtd.stop()?;
    Ok(())
}
