//! tgtd through this crate, checked with libiscsi's `iscsi-ls` and the raw SendTargets client.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use vds_testpeers::{
    PeerError, Tgtd, TgtdConfig, free_port, free_ports, iscsi_ls, require, sendtargets, url,
};

const IQNS: [&str; 3] = [
    "iqn.2026-11.test.vds:t1",
    "iqn.2026-11.test.vds:t2",
    "iqn.2026-11.test.vds:t3",
];

fn peers() {
    if let Err(e) = require(&["tgtd", "tgtadm", "iscsi-ls"]) {
        panic!("{e}");
    }
}

fn start_with_targets(portals: Vec<String>) -> Tgtd {
    let tgtd = match Tgtd::start(TgtdConfig { portals }) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    for (i, iqn) in IQNS.iter().enumerate() {
        if let Err(e) = tgtd.add_target(i as u32 + 1, iqn) {
            panic!("{e}");
        }
    }
    tgtd
}

fn ls(portal: &str) -> Result<BTreeSet<(String, String)>, PeerError> {
    iscsi_ls(&url(portal)).map(|v| v.into_iter().collect())
}

fn expected(portal: &str) -> BTreeSet<(String, String)> {
    IQNS.iter()
        .map(|t| (t.to_string(), format!("{portal},1")))
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn four_portals_each_list_three_targets() -> Result<(), PeerError> {
    peers();
    let [p1, p2] = free_ports(2)[..] else {
        unreachable!()
    };
    let portals = vec![
        format!("127.0.0.1:{p1}"),
        format!("127.0.0.2:{p1}"),
        format!("127.0.0.1:{p2}"),
        format!("[::1]:{p1}"),
    ];
    let tgtd = start_with_targets(portals.clone());
    for portal in &portals {
        assert_eq!(ls(portal)?, expected(portal), "via {portal}");
        // The raw client sees the same thing.
        let raw: BTreeSet<_> = sendtargets(portal, Duration::from_secs(5))?
            .into_iter()
            .collect();
        assert_eq!(raw, expected(portal), "raw via {portal}");
    }
    let shown: BTreeSet<String> = tgtd.show_portals()?.into_iter().collect();
    assert_eq!(shown, portals.iter().cloned().collect());
    assert_eq!(
        tgtd.targets()?,
        IQNS.iter()
            .enumerate()
            .map(|(i, n)| (i as u32 + 1, n.to_string()))
            .collect::<Vec<_>>()
    );
    tgtd.stop()
}

#[test]
fn portals_come_and_go_at_runtime() -> Result<(), PeerError> {
    peers();
    let port = free_port();
    let a = format!("127.0.0.1:{port}");
    let b = format!("127.0.0.2:{port}");
    let v6 = format!("[::1]:{port}");
    let tgtd = start_with_targets(vec![a.clone(), b.clone()]);

    tgtd.delete_portal(&b)?;
    let err = ls(&b).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(tgtd.show_portals()?, vec![a.clone()]);
    assert_eq!(ls(&a)?, expected(&a), "the other portal is untouched");

    tgtd.add_portal(&b)?;
    assert_eq!(ls(&b)?, expected(&b));

    tgtd.add_portal(&v6)?;
    assert_eq!(ls(&v6)?, expected(&v6));
    tgtd.delete_portal(&v6)?;
    assert!(ls(&v6).is_err());

    // tgt would accept these and silently do nothing; the API refuses them.
    assert!(matches!(
        tgtd.delete_portal(&format!("::1:{port}")),
        Err(PeerError::InvalidArgument(_))
    ));
    // Duplicates and unknown portals fail with tgtadm's message and tgtd's log.
    match tgtd.add_portal(&a) {
        Err(PeerError::CommandFailed {
            stderr, log_tail, ..
        }) => {
            assert!(stderr.contains("invalid request"), "{stderr}");
            assert!(log_tail.contains("Address already in use"), "{log_tail}");
        }
        other => panic!("duplicate portal: {other:?}"),
    }
    assert!(tgtd.delete_portal(&v6).is_err());

    let shown: BTreeSet<String> = tgtd.show_portals()?.into_iter().collect();
    assert_eq!(shown, [a, b].into_iter().collect());
    tgtd.stop()
}

#[test]
fn two_instances_do_not_interfere() -> Result<(), PeerError> {
    peers();
    let pa = format!("127.0.0.1:{}", free_port());
    let pb = format!("127.0.0.1:{}", free_port());
    let a = Tgtd::start(TgtdConfig {
        portals: vec![pa.clone()],
    })?;
    let b = Tgtd::start(TgtdConfig {
        portals: vec![pb.clone()],
    })?;
    assert_ne!(a.control(), b.control());
    a.add_target(1, "iqn.2026-11.test.vds:only-a")?;
    b.add_target(1, "iqn.2026-11.test.vds:only-b")?;
    assert_eq!(
        iscsi_ls(&url(&pa))?,
        vec![("iqn.2026-11.test.vds:only-a".into(), format!("{pa},1"))]
    );
    assert_eq!(
        iscsi_ls(&url(&pb))?,
        vec![("iqn.2026-11.test.vds:only-b".into(), format!("{pb},1"))]
    );
    assert_eq!(a.show_portals()?, vec![pa.clone()]);
    assert_eq!(b.show_portals()?, vec![pb.clone()]);

    let a_pid = a.pid();
    a.stop()?;
    assert!(!pid_alive(a_pid));
    assert!(pid_alive(b.pid()));
    assert_eq!(iscsi_ls(&url(&pb))?.len(), 1, "b survives a's stop");
    assert!(iscsi_ls(&url(&pa)).is_err());
    b.stop()
}

#[test]
fn stop_and_drop_leave_no_process_and_no_files() -> Result<(), PeerError> {
    peers();
    let tgtd = start_with_targets(vec![format!("127.0.0.1:{}", free_port())]);
    let (pid, dir) = (tgtd.pid(), tgtd.dir().to_owned());
    assert!(pid_alive(pid));
    tgtd.stop()?;
    assert!(!pid_alive(pid), "tgtd {pid} still there after stop");
    assert!(!dir.exists());

    let tgtd = start_with_targets(vec![format!("127.0.0.1:{}", free_port())]);
    let (pid, dir) = (tgtd.pid(), tgtd.dir().to_owned());
    drop(tgtd);
    assert!(!pid_alive(pid), "tgtd {pid} still there after drop");
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn start_failure_reports_the_log() {
    peers();
    // A port held for the whole test: bound at port 0 and read back, so no other process can
    // take it between choosing it and holding it (a free_port() then bind, whose failure went
    // unnoticed, once let tgtd start on a port that had come free again).
    let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a port to hold");
    let port = busy.local_addr().expect("the held port").port();
    match Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{port}")],
    }) {
        // Usually StartFailed (tgtd fell back to 0.0.0.0:3260); PeerExited if that was taken too.
        Err(e) => {
            let text = e.to_string();
            eprintln!("expected error: {text}");
            assert!(text.contains("Address already in use"), "{text}");
        }
        other => panic!("tgtd on a busy port: {other:?}"),
    }
    drop(busy);
    assert!(matches!(
        Tgtd::start(TgtdConfig { portals: vec![] }),
        Err(PeerError::InvalidArgument(_))
    ));
}

#[test]
fn discovery_chap_one_way_and_mutual() -> Result<(), PeerError> {
    peers();
    let portal = format!("127.0.0.1:{}", free_port());
    let tgtd = start_with_targets(vec![portal.clone()]);
    tgtd.set_discovery_chap("discuser", "discpass12345")?;

    let err = iscsi_ls(&url(&portal)).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("Authentication failure")),
        "{err:?}"
    );
    assert!(iscsi_ls(&format!("iscsi://discuser%wrongpass1234@{portal}")).is_err());
    let ok: BTreeSet<_> = iscsi_ls(&format!("iscsi://discuser%discpass12345@{portal}"))?
        .into_iter()
        .collect();
    assert_eq!(ok, expected(&portal));

    tgtd.set_discovery_mutual("tgtout", "tgtoutpass1234")?;
    let mutual = format!(
        "iscsi://discuser%discpass12345@{portal}?target_user=tgtout&target_password=tgtoutpass1234"
    );
    assert_eq!(iscsi_ls(&mutual)?.len(), 3);
    let wrong = format!(
        "iscsi://discuser%discpass12345@{portal}?target_user=tgtout&target_password=notthesecret1"
    );
    let err = iscsi_ls(&wrong).err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("CHAP_R")),
        "{err:?}"
    );
    // One-way still works while the outgoing account is bound.
    assert_eq!(
        iscsi_ls(&format!("iscsi://discuser%discpass12345@{portal}"))?.len(),
        3
    );

    tgtd.unset_discovery_chap("discuser")?;
    assert_eq!(ls(&portal)?, expected(&portal));
    tgtd.stop()
}

#[test]
fn many_targets() -> Result<(), PeerError> {
    peers();
    let portal = format!("127.0.0.1:{}", free_port());
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![portal.clone()],
    })?;
    tgtd.add_target(1, "iqn.2026-11.test.vds:first")?;
    let names = tgtd.add_targets(40, "iqn.2026-11.test.vds:big")?;
    assert_eq!(names.len(), 40);
    assert_eq!(names[0], "iqn.2026-11.test.vds:big001");
    assert_eq!(tgtd.targets()?.last(), Some(&(41, names[39].clone())));
    let found: BTreeSet<String> = iscsi_ls(&url(&portal))?
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(found.len(), 41);
    assert!(names.iter().all(|n| found.contains(n)));
    tgtd.stop()
}
