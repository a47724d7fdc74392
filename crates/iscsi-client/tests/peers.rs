//! Discovery against real peers on loopback (tgtd and istgt, started per test by
//! `vds-testpeers` on their own ports and control numbers, stopped by PID), cross-checked against
//! libiscsi's `iscsi-ls` and the raw reference client of `vds-testpeers`.
//!
//! The peers must be installed (`scripts/install-deps.sh`); a missing one fails the test with that
//! message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use iscsi_client::{
    ChapCredentials, DiscoveryOptions, ErrorKind, Host, SendTargetsQuery, discover, probe,
};
use vds_testpeers::{Istgt, IstgtConfig, Tgtd, TgtdConfig, free_port, iscsi_ls, require, url};

fn need(bins: &[&str]) {
    if let Err(e) = require(bins) {
        panic!("{e} (install the test peers with scripts/install-deps.sh)");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn opts() -> DiscoveryOptions {
    DiscoveryOptions {
        connect_timeout: Duration::from_secs(2),
        pdu_timeout: Duration::from_secs(3),
        overall_timeout: Duration::from_secs(8),
        ..DiscoveryOptions::default()
    }
}

const V4: Host = Host::Ipv4(Ipv4Addr::LOCALHOST);
fn v6() -> Host {
    Host::Ipv6 {
        addr: Ipv6Addr::LOCALHOST,
        zone: None,
    }
}

/// `(target, "addr:port,tag")` pairs, as iscsi-ls prints them.
fn pairs(r: &iscsi_client::DiscoveryResult) -> Vec<(String, String)> {
    r.targets
        .iter()
        .flat_map(|t| {
            t.addresses_or(&r.portal)
                .into_iter()
                .map(move |a| (t.name.clone(), a.to_string()))
        })
        .collect()
}

#[test]
fn tgtd_120_targets_over_ipv4_and_ipv6_equal_iscsi_ls_also_with_mrdsl_512() {
    need(&["tgtd", "tgtadm", "iscsi-ls"]);
    let port = free_port();
    let (p4, p6) = (format!("127.0.0.1:{port}"), format!("[::1]:{port}"));
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![p4.clone(), p6.clone()],
    })
    .unwrap();
    let names = tgtd.add_targets(120, "iqn.2026-11.test.vds:big").unwrap();
    let rt = rt();
    for (host, portal) in [(V4, &p4), (v6(), &p6)] {
        let ours = rt.block_on(discover(&host, port, &opts())).unwrap();
        assert_eq!(
            ours.connected_to.ip(),
            match &host {
                Host::Ipv4(a) => IpAddr::V4(*a),
                _ => IpAddr::V6(Ipv6Addr::LOCALHOST),
            }
        );
        assert_eq!(
            ours.portal_group_tag,
            Some(1),
            "tgt always sends TargetPortalGroupTag=1"
        );
        assert!(ours.logout_clean);
        // Target order is tgt's tid order.
        let got: Vec<&str> = ours.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
        let mut mine = pairs(&ours);
        assert!(mine.iter().all(|(_, a)| a == &format!("{portal},1")));
        let mut theirs = iscsi_ls(&url(portal)).unwrap();
        mine.sort();
        theirs.sort();
        assert_eq!(mine, theirs, "via {portal}");

        // Our MaxRecvDataSegmentLength=512 forces tgt to split the ~8 KB answer into many PDUs.
        let small = DiscoveryOptions {
            max_recv_data_segment_length: 512,
            ..opts()
        };
        let split = rt.block_on(discover(&host, port, &small)).unwrap();
        assert_eq!(split.targets, ours.targets);
        assert!(split.pdus > 15, "only {} PDUs", split.pdus);
        assert!(ours.pdus <= 4, "{} PDUs", ours.pdus);
    }
    // An IPv6 zone becomes the scope id (by interface name or number); ::1 works with it.
    let zoned = Host::Ipv6 {
        addr: Ipv6Addr::LOCALHOST,
        zone: Some("lo".into()),
    };
    let r = rt.block_on(discover(&zoned, port, &opts())).unwrap();
    assert_eq!(r.targets.len(), 120);
    assert_eq!(r.portal.to_string(), format!("[::1%lo]:{port},1"));
    let std::net::SocketAddr::V6(a) = r.connected_to else {
        panic!("{}", r.connected_to)
    };
    assert_eq!(a.scope_id(), iscsi_client::scope_id("lo").unwrap());
    tgtd.stop().unwrap();
}

#[test]
fn tgtd_sendtargets_by_name_and_probe() {
    need(&["tgtd", "tgtadm"]);
    let tgtd = Tgtd::start(TgtdConfig::single()).unwrap();
    let port: u16 = tgtd.portals()[0]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let names = tgtd.add_targets(3, "iqn.2026-11.test.vds:t").unwrap();
    let rt = rt();
    let one = DiscoveryOptions {
        query: SendTargetsQuery::Name(names[1].clone()),
        ..opts()
    };
    let r = rt.block_on(discover(&V4, port, &one)).unwrap();
    assert_eq!(r.targets.len(), 1);
    assert_eq!(r.targets[0].name, names[1]);
    let none = DiscoveryOptions {
        query: SendTargetsQuery::Name("iqn.2026-11.test.vds:nope".into()),
        ..opts()
    };
    assert!(
        rt.block_on(discover(&V4, port, &none))
            .unwrap()
            .targets
            .is_empty()
    );

    let p = rt.block_on(probe(&V4, port, &opts())).unwrap();
    assert_eq!(p.portal_group_tag, Some(1));
    assert!(p.logout_clean);
    assert_eq!(p.connected_to.port(), port);
    // A DNS name works too.
    let r = rt.block_on(discover(&Host::Name("localhost".into()), port, &opts()));
    // localhost may resolve to ::1 first, where tgtd does not listen: every address is tried.
    assert_eq!(r.unwrap().targets.len(), 3);
    tgtd.stop().unwrap();
}

#[test]
fn tgtd_discovery_chap_one_way_and_mutual() {
    need(&["tgtd", "tgtadm"]);
    let tgtd = Tgtd::start(TgtdConfig::single()).unwrap();
    let port: u16 = tgtd.portals()[0]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    tgtd.add_targets(3, "iqn.2026-11.test.vds:c").unwrap();
    tgtd.set_discovery_chap("discuser", "discpass12345")
        .unwrap();
    let rt = rt();

    let no_creds = rt.block_on(discover(&V4, port, &opts())).unwrap_err();
    assert!(
        matches!(no_creds.kind(), ErrorKind::AuthenticationFailed),
        "{no_creds}"
    );

    let wrong = DiscoveryOptions {
        chap: Some(ChapCredentials::new("discuser", "wrongpass123")),
        ..opts()
    };
    let e = rt.block_on(discover(&V4, port, &wrong)).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::AuthenticationFailed), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");

    let right = DiscoveryOptions {
        chap: Some(ChapCredentials::new("discuser", "discpass12345")),
        ..opts()
    };
    assert_eq!(
        rt.block_on(discover(&V4, port, &right))
            .unwrap()
            .targets
            .len(),
        3
    );

    tgtd.set_discovery_mutual("tgtout", "tgtoutpass1234")
        .unwrap();
    let mutual = DiscoveryOptions {
        mutual: Some(ChapCredentials::new("tgtout", "tgtoutpass1234")),
        ..right.clone()
    };
    assert_eq!(
        rt.block_on(discover(&V4, port, &mutual))
            .unwrap()
            .targets
            .len(),
        3
    );
    // One-way CHAP still works while the outgoing account is bound.
    assert_eq!(
        rt.block_on(discover(&V4, port, &right))
            .unwrap()
            .targets
            .len(),
        3
    );

    let bad_target = DiscoveryOptions {
        mutual: Some(ChapCredentials::new("tgtout", "not-the-secret")),
        ..right
    };
    let e = rt.block_on(discover(&V4, port, &bad_target)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::MutualAuthenticationFailed(_)),
        "{e}"
    );
    tgtd.stop().unwrap();
}

#[test]
fn istgt_two_portal_groups_with_ipv6_give_the_right_tags() {
    need(&["istgt"]);
    let (p1, p2) = (free_port(), free_port());
    let cfg = IstgtConfig::two_groups(
        vec![format!("127.0.0.1:{p1}")],
        vec![format!("127.0.0.2:{p2}"), format!("[::1]:{p2}")],
    );
    let istgt = Istgt::start(cfg).unwrap();
    let rt = rt();
    let d3 = vec![
        format!("127.0.0.1:{p1},1"),
        format!("127.0.0.2:{p2},2"),
        format!("[::1]:{p2},2"),
    ];
    let addrs = |r: &iscsi_client::DiscoveryResult, name: &str| -> Vec<String> {
        r.targets
            .iter()
            .find(|t| t.name.ends_with(name))
            .map(|t| t.addresses.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    };

    // Via portal group 1: disk1 and d3.
    let logouts = istgt.discovery_logouts();
    let r = rt.block_on(discover(&V4, p1, &opts())).unwrap();
    assert_eq!(r.targets.len(), 2, "{:?}", r.targets);
    assert_eq!(addrs(&r, ":disk1"), [format!("127.0.0.1:{p1},1")]);
    assert_eq!(addrs(&r, ":istgt-d3"), d3);
    assert_eq!(
        r.portal_group_tag, None,
        "istgt sends no TargetPortalGroupTag on discovery"
    );
    // istgt takes a Logout whose CmdSN is its ExpCmdSN (peers.md §7: it answers an immediate Text
    // command with ExpCmdSN one past it); one that is not, it logs as "might have dropped". It
    // answers the Logout, except under load, where now and then its log has the Logout and the
    // connection closes without the answer: then its log is the witness.
    let logged_out = r.logout_clean || {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if istgt.discovery_logouts() > logouts {
                break true;
            }
            if std::time::Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(
        logged_out,
        "istgt did not log the logout: {}",
        istgt.log_tail()
    );
    assert!(
        !istgt.log_tail().contains("might have dropped"),
        "istgt found the Logout's CmdSN out of order: {}",
        istgt.log_tail()
    );
    let reference =
        vds_testpeers::sendtargets(&format!("127.0.0.1:{p1}"), Duration::from_secs(5)).unwrap();
    let mut mine = pairs(&r);
    mine.sort();
    let mut theirs = reference;
    theirs.sort();
    assert_eq!(mine, theirs);

    // Via the IPv6 portal of group 2: disk2 and d3.
    let r = rt.block_on(discover(&v6(), p2, &opts())).unwrap();
    assert_eq!(r.targets.len(), 2, "{:?}", r.targets);
    assert_eq!(
        addrs(&r, ":disk2"),
        [format!("127.0.0.2:{p2},2"), format!("[::1]:{p2},2")]
    );
    assert_eq!(addrs(&r, ":istgt-d3"), d3);
    istgt.stop().unwrap();
}

#[test]
fn connection_refused_is_0x8007274d() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = rt().block_on(discover(&V4, port, &opts())).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Connect(_)), "{e}");
    assert_eq!(e.phase(), iscsi_client::Phase::Connect);
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}
