//! The client against a real, private tgtd (started by vds-testpeers on a loopback port, with its
//! own socket): what it parses equals what `tgtadm` shows, every mutation is visible to
//! `tgtadm`, every error code we can provoke comes back typed, and tgtd survives every request.

mod common;

use std::net::SocketAddr;

use common::{assert_alive, login, runtime, start, tgtadm_show, tgtadm_targets};
use tgt_client::{
    AccountBinding, AccountDirection, AccountScope, Acl, ErrorCode, ErrorKind, Secret, SystemParam,
    TargetState,
};
use tgt_proto::show::{
    State, TargetAccount, parse_accounts, parse_lld, parse_portals, parse_system,
};
use tgt_proto::{Request, reply_text};

/// Runs a client call, then checks tgtd still lives.
macro_rules! alive {
    ($tgtd:expr, $call:expr) => {{
        let r = $call;
        assert_alive(&$tgtd);
        r
    }};
}

fn code<T: std::fmt::Debug>(r: Result<T, tgt_client::Error>) -> ErrorCode {
    match r {
        Err(e) => e
            .tgtd_code()
            .unwrap_or_else(|| panic!("expected a tgtd error code, got {e}")),
        Ok(v) => panic!("expected a tgtd error, got {v:?}"),
    }
}

const IN: AccountDirection = AccountDirection::Incoming;
const OUT: AccountDirection = AccountDirection::Outgoing;

fn at(tid: u32, direction: AccountDirection) -> AccountBinding {
    AccountBinding {
        scope: AccountScope::Target(tid),
        direction,
    }
}

#[test]
fn show_matches_tgtadm_at_0_1_and_400_targets() {
    let (tgtd, client) = start();
    let rt = runtime();

    // 0 targets: an empty reply (len 8, no text).
    let raw = alive!(tgtd, rt.block_on(client.send(&Request::ShowTargets))).unwrap();
    assert_eq!((raw.code, raw.payload.len()), (ErrorCode::Success, 0));
    let none = alive!(tgtd, rt.block_on(client.show_targets())).unwrap();
    assert!(none.is_empty());
    assert_eq!(none, tgtadm_targets(&tgtd));

    // 1 target with a data LUN and an ACL.
    tgtd.add_target(1, "iqn.2026-12.test.vds:t1").unwrap();
    let one = alive!(tgtd, rt.block_on(client.show_targets())).unwrap();
    assert_eq!(one, tgtadm_targets(&tgtd));
    assert_eq!(one.len(), 1);
    let t = &one[0];
    assert_eq!((t.tid, t.name.as_str()), (1, "iqn.2026-12.test.vds:t1"));
    assert_eq!(t.state, Some(State::Ready));
    assert_eq!(t.driver.as_deref(), Some("iscsi"));
    assert_eq!(t.acls, vec!["ALL"]);
    let luns: Vec<(u64, Option<&str>)> = t
        .luns
        .iter()
        .map(|l| (l.number, l.lun_type.as_deref()))
        .collect();
    assert_eq!(luns, vec![(0, Some("controller")), (1, Some("disk"))]);
    assert_eq!(t.luns[1].size_mb, Some(17)); // 16 MiB = 16.8 MB, rounded as tgtd does
    assert_eq!(t.luns[1].block_size, Some(512));

    // 400 targets: the reply arrives in several reads and is put back together.
    for tid in 2..=400 {
        let name = format!("iqn.2026-12.test.vds:big{tid:03}");
        alive!(tgtd, rt.block_on(client.new_target(tid, &name))).unwrap();
    }
    assert_alive(&tgtd);
    let raw = alive!(tgtd, rt.block_on(client.send(&Request::ShowTargets))).unwrap();
    assert!(raw.payload.len() > 200_000, "{} bytes", raw.payload.len());
    assert!(
        raw.reads > 1,
        "a {}-byte reply in {} read(s)",
        raw.payload.len(),
        raw.reads
    );
    let many = tgt_proto::show::parse_targets(&reply_text(&raw.payload)).unwrap();
    assert_eq!(many.len(), 400);
    assert_eq!(many, tgtadm_targets(&tgtd));
    assert_eq!(
        alive!(tgtd, rt.block_on(client.show_targets())).unwrap(),
        many
    );
    let tids: Vec<u32> = many.iter().map(|t| t.tid).collect();
    assert_eq!(tids, (1..=400).collect::<Vec<_>>());

    // The other show grammars equal tgtadm's view too.
    let lld = alive!(tgtd, rt.block_on(client.show_lld())).unwrap();
    assert_eq!(lld, parse_lld(&tgtadm_show(&tgtd, "lld")).unwrap());
    let iscsi = lld.iter().find(|l| l.name == "iscsi").unwrap();
    assert_eq!((iscsi.state.as_str(), iscsi.targets.len()), ("ready", 400));
    let portals = alive!(tgtd, rt.block_on(client.show_portals())).unwrap();
    assert_eq!(
        portals,
        parse_portals(&tgtadm_show(&tgtd, "portal")).unwrap()
    );
    let system = alive!(tgtd, rt.block_on(client.show_system())).unwrap();
    assert_eq!(system, parse_system(&tgtadm_show(&tgtd, "system")).unwrap());
    assert_eq!(system.state, Some(State::Ready));
    let accounts = alive!(tgtd, rt.block_on(client.show_accounts())).unwrap();
    assert_eq!(
        accounts,
        parse_accounts(&tgtadm_show(&tgtd, "account")).unwrap()
    );

    tgtd.stop().unwrap();
}

#[test]
fn every_mutation_is_visible_to_tgtadm() {
    let (tgtd, client) = start();
    let rt = runtime();

    // Portals: new (IPv4 and IPv6), then delete.
    let port = vds_testpeers::free_port();
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    alive!(tgtd, rt.block_on(client.new_portal(v4))).unwrap();
    alive!(tgtd, rt.block_on(client.new_portal(v6))).unwrap();
    let shown = parse_portals(&tgtadm_show(&tgtd, "portal")).unwrap();
    assert!(
        shown.iter().any(|p| p.addr == v4 && p.tpgt == 1),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|p| p.addr == v6 && p.tpgt == 1),
        "{shown:?}"
    );
    assert_eq!(
        shown,
        alive!(tgtd, rt.block_on(client.show_portals())).unwrap()
    );
    std::net::TcpStream::connect(v4).unwrap(); // it listens
    alive!(tgtd, rt.block_on(client.delete_portal(v4))).unwrap();
    alive!(tgtd, rt.block_on(client.delete_portal(v6))).unwrap();
    let shown = parse_portals(&tgtadm_show(&tgtd, "portal")).unwrap();
    assert!(!shown.iter().any(|p| p.addr.port() == port), "{shown:?}");

    // Targets: new, state, ACLs.
    alive!(
        tgtd,
        rt.block_on(client.new_target(5, "iqn.2026-12.test.vds:m5"))
    )
    .unwrap();
    let t = tgtadm_targets(&tgtd);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].tid, t[0].name.as_str()),
        (5, "iqn.2026-12.test.vds:m5")
    );
    assert_eq!(t[0].luns.len(), 1); // LUN 0, the controller

    alive!(
        tgtd,
        rt.block_on(client.set_target_state(5, TargetState::Offline))
    )
    .unwrap();
    assert_eq!(tgtadm_targets(&tgtd)[0].state, Some(State::Offline));
    alive!(
        tgtd,
        rt.block_on(client.set_target_state(5, TargetState::Ready))
    )
    .unwrap();
    assert_eq!(tgtadm_targets(&tgtd)[0].state, Some(State::Ready));

    let all = Acl::InitiatorAddress("ALL".into());
    let cidr = Acl::InitiatorAddress("10.0.0.0/8".into());
    let name = Acl::InitiatorName("iqn.2026-12.test.vds:init".into());
    for acl in [&all, &cidr, &name] {
        alive!(tgtd, rt.block_on(client.bind_acl(5, acl.clone()))).unwrap();
    }
    assert_eq!(
        tgtadm_targets(&tgtd)[0].acls,
        vec!["ALL", "10.0.0.0/8", "iqn.2026-12.test.vds:init"]
    );
    alive!(tgtd, rt.block_on(client.unbind_acl(5, cidr))).unwrap();
    alive!(tgtd, rt.block_on(client.unbind_acl(5, name))).unwrap();
    assert_eq!(tgtadm_targets(&tgtd)[0].acls, vec!["ALL"]);

    // Accounts: new, bind in/out/discovery, unbind, delete.
    let secret = Secret::from("secret-in-12");
    alive!(tgtd, rt.block_on(client.new_account("in1", &secret))).unwrap();
    alive!(
        tgtd,
        rt.block_on(client.new_account("out1", &Secret::from("secret-out-12")))
    )
    .unwrap();
    let mut users = parse_accounts(&tgtadm_show(&tgtd, "account")).unwrap();
    users.sort();
    assert_eq!(users, vec!["in1", "out1"]);
    alive!(tgtd, rt.block_on(client.bind_account("in1", at(5, IN)))).unwrap();
    alive!(tgtd, rt.block_on(client.bind_account("out1", at(5, OUT)))).unwrap();
    let discovery = AccountBinding {
        scope: AccountScope::Discovery,
        direction: IN,
    };
    alive!(tgtd, rt.block_on(client.bind_account("in1", discovery))).unwrap();
    assert_eq!(
        tgtadm_targets(&tgtd)[0].accounts,
        vec![
            TargetAccount {
                user: "in1".into(),
                direction: IN
            },
            TargetAccount {
                user: "out1".into(),
                direction: OUT
            }
        ]
    );
    alive!(tgtd, rt.block_on(client.unbind_account("out1", at(5, OUT)))).unwrap();
    alive!(tgtd, rt.block_on(client.unbind_account("in1", discovery))).unwrap();
    assert_eq!(tgtadm_targets(&tgtd)[0].accounts.len(), 1);
    alive!(tgtd, rt.block_on(client.delete_account("in1"))).unwrap();
    assert!(tgtadm_targets(&tgtd)[0].accounts.is_empty()); // deleting unbinds everywhere
    assert_eq!(
        parse_accounts(&tgtadm_show(&tgtd, "account")).unwrap(),
        vec!["out1"]
    );

    // System: iSNS settings (registration stays off: no iSNS server here).
    alive!(
        tgtd,
        rt.block_on(client.update_system(vec![
            SystemParam::isns_server_ip([127, 0, 0, 1].into()),
            SystemParam::isns_server_port(13205),
        ]))
    )
    .unwrap();
    let sys = parse_system(&tgtadm_show(&tgtd, "system")).unwrap();
    assert_eq!(sys.isns.server_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(sys.isns.server_port, Some(13205));
    assert_eq!(sys.isns.enabled, Some(false));
    assert_eq!(
        sys,
        alive!(tgtd, rt.block_on(client.show_system())).unwrap()
    );

    // Delete the target.
    alive!(tgtd, rt.block_on(client.delete_target(5, false))).unwrap();
    assert!(tgtadm_targets(&tgtd).is_empty());

    tgtd.stop().unwrap();
}

#[test]
fn tgtd_error_codes_come_back_typed() {
    let (tgtd, client) = start();
    let rt = runtime();
    alive!(
        tgtd,
        rt.block_on(client.new_target(1, "iqn.2026-12.test.vds:e1"))
    )
    .unwrap();

    let e = |r| {
        let c = code(r);
        assert_alive(&tgtd);
        c
    };
    use ErrorCode::*;
    // Targets.
    assert_eq!(
        e(rt.block_on(client.new_target(1, "iqn.2026-12.test.vds:other"))),
        TargetExist
    );
    assert_eq!(
        e(rt.block_on(client.new_target(2, "iqn.2026-12.test.vds:e1"))),
        TargetExist
    );
    assert_eq!(e(rt.block_on(client.delete_target(9, true))), NoTarget);
    assert_eq!(
        e(rt.block_on(client.set_target_state(9, TargetState::Offline))),
        NoTarget
    );
    // ACLs.
    let all = Acl::InitiatorAddress("ALL".into());
    alive!(tgtd, rt.block_on(client.bind_acl(1, all.clone()))).unwrap();
    assert_eq!(e(rt.block_on(client.bind_acl(1, all))), AclExist);
    let missing = Acl::InitiatorName("iqn.2026-12.test.vds:nobody".into());
    assert_eq!(e(rt.block_on(client.unbind_acl(1, missing))), AclNoexist);
    // Accounts.
    assert_eq!(
        e(rt.block_on(client.bind_account("ghost", at(1, IN)))),
        NoUser
    );
    assert_eq!(e(rt.block_on(client.delete_account("ghost"))), NoUser);
    let pw = Secret::from("secret-12345");
    alive!(tgtd, rt.block_on(client.new_account("u1", &pw))).unwrap();
    assert_eq!(e(rt.block_on(client.new_account("u1", &pw))), UserExist);
    assert_eq!(
        e(rt.block_on(client.unbind_account("u1", at(1, IN)))),
        NoUser
    );
    alive!(tgtd, rt.block_on(client.bind_account("u1", at(1, IN)))).unwrap();
    assert_eq!(
        e(rt.block_on(client.bind_account("u1", at(1, IN)))),
        UserExist
    );
    alive!(tgtd, rt.block_on(client.new_account("o1", &pw))).unwrap();
    alive!(tgtd, rt.block_on(client.new_account("o2", &pw))).unwrap();
    alive!(tgtd, rt.block_on(client.bind_account("o1", at(1, OUT)))).unwrap();
    assert_eq!(
        e(rt.block_on(client.bind_account("o2", at(1, OUT)))),
        OutaccountExist
    );
    // Portals and system.
    let busy: SocketAddr = tgtd.portals()[0].parse().unwrap();
    assert_eq!(e(rt.block_on(client.new_portal(busy))), InvalidRequest);
    let unknown: SocketAddr = "127.0.0.9:3260".parse().unwrap();
    assert_eq!(
        e(rt.block_on(client.delete_portal(unknown))),
        InvalidRequest
    );
    assert_eq!(
        e(rt.block_on(client.update_system(vec![SystemParam::new("NoSuchKey", "1")]))),
        InvalidRequest
    );

    // What we refuse is never sent: tgtd would answer 17 to the name, and crash on no name.
    for bad in ["iqn.2026-12.test.vds:under_score", ""] {
        match rt.block_on(client.new_target(3, bad)) {
            Err(err) => assert!(matches!(err.kind(), ErrorKind::Refused(_)), "{err}"),
            Ok(()) => panic!("{bad:?} accepted"),
        }
        assert_alive(&tgtd);
    }
    assert_eq!(tgtadm_targets(&tgtd).len(), 1);

    tgtd.stop().unwrap();
}

#[test]
fn sessions_show_as_nexus_and_block_unforced_delete() {
    let (tgtd, client) = start();
    let rt = runtime();
    let target = "iqn.2026-12.test.vds:busy";
    tgtd.add_target(1, target).unwrap();
    let initiator = "iqn.2026-12.test.vds:initiator-a";
    let conn = login(&tgtd.portals()[0], target, initiator, "vds test");

    let shown = alive!(tgtd, rt.block_on(client.show_targets())).unwrap();
    assert_eq!(shown, tgtadm_targets(&tgtd));
    let nexus = &shown[0].nexuses;
    assert_eq!(nexus.len(), 1, "{shown:?}");
    assert_eq!(nexus[0].initiator.as_deref(), Some(initiator));
    assert_eq!(nexus[0].alias.as_deref(), Some("vds test"));
    assert_eq!(nexus[0].connections.len(), 1);
    assert_eq!(
        nexus[0].connections[0].ip_address.as_deref(),
        Some("127.0.0.1")
    );

    // A target with a session: TARGET_ACTIVE without force, deleted with it.
    assert_eq!(
        code(alive!(tgtd, rt.block_on(client.delete_target(1, false)))),
        ErrorCode::TargetActive
    );
    alive!(tgtd, rt.block_on(client.delete_target(1, true))).unwrap();
    assert!(tgtadm_targets(&tgtd).is_empty());
    drop(conn);
    assert_alive(&tgtd);
    tgtd.stop().unwrap();
}

#[test]
fn chap_password_with_commas_is_stored_whole() {
    // tgtd takes everything after `password=` (mgmt.c), so commas in a secret survive: a
    // discovery login with the whole secret works, one with the part before the comma fails.
    let (tgtd, client) = start();
    let rt = runtime();
    tgtd.add_target(1, "iqn.2026-12.test.vds:chap").unwrap();
    let secret = "first,second,third";
    alive!(
        tgtd,
        rt.block_on(client.new_account("disc", &Secret::from(secret)))
    )
    .unwrap();
    let discovery = AccountBinding {
        scope: AccountScope::Discovery,
        direction: IN,
    };
    alive!(tgtd, rt.block_on(client.bind_account("disc", discovery))).unwrap();

    let portal: SocketAddr = tgtd.portals()[0].parse().unwrap();
    let host = iscsi_client::Host::Ipv4([127, 0, 0, 1].into());
    let discover = |s: &str| {
        let opts = iscsi_client::DiscoveryOptions {
            chap: Some(iscsi_client::ChapCredentials::new("disc", s)),
            ..Default::default()
        };
        rt.block_on(iscsi_client::discover(&host, portal.port(), &opts))
            .map_err(Box::new)
    };
    let found = discover(secret).unwrap();
    assert_eq!(found.targets.len(), 1);
    let refused = discover("first").unwrap_err();
    assert!(
        matches!(
            refused.kind(),
            iscsi_client::ErrorKind::AuthenticationFailed
        ),
        "{refused}"
    );
    assert_alive(&tgtd);
    tgtd.stop().unwrap();
}

#[test]
fn payload_limit_is_tgtds() {
    // 8192 payload bytes (text and NUL) get an answer (17: unknown key), 8193 are refused here;
    // sent raw, 8193 make tgtd close without a reply. tgtd survives all of it.
    let (tgtd, client) = start();
    let rt = runtime();
    let at_limit = vec![SystemParam::new("k", "v".repeat(8192 - 3))];
    assert_eq!(
        code(alive!(tgtd, rt.block_on(client.update_system(at_limit)))),
        ErrorCode::InvalidRequest
    );
    let over = vec![SystemParam::new("k", "v".repeat(8192 - 2))];
    match alive!(tgtd, rt.block_on(client.update_system(over))) {
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::Refused(tgt_proto::Refused::PayloadTooLong {
                    len: 8193,
                    max: 8192
                })
            ),
            "{e}"
        ),
        Ok(()) => panic!("an 8193-byte payload was sent"),
    }

    // The same request built by hand, as a client without our checks would send it.
    use std::io::{Read, Write};
    let mut raw = Request::UpdateSystem {
        params: vec![SystemParam::new("k", "v")],
    }
    .emit()
    .unwrap()[..120]
        .to_vec();
    raw[72..76].copy_from_slice(&(120u32 + 8193).to_le_bytes());
    raw.extend_from_slice(b"k=");
    raw.extend(std::iter::repeat_n(b'v', 8193 - 3));
    raw.push(0);
    let mut s = std::os::unix::net::UnixStream::connect(tgtd.ipc_socket()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = s.write_all(&raw); // tgtd may close before it has read everything
    let mut reply = Vec::new();
    let n = s.read_to_end(&mut reply).or_else(|e| {
        // A reset is tgtd closing with our bytes unread.
        if e.kind() == std::io::ErrorKind::ConnectionReset {
            Ok(0)
        } else {
            Err(e)
        }
    });
    assert_eq!(n.unwrap(), 0, "tgtd answered an 8193-byte payload");
    assert_alive(&tgtd);
    assert!(alive!(tgtd, rt.block_on(client.show_portals())).is_ok());
    tgtd.stop().unwrap();
}
