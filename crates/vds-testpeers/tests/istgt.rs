//! istgt through this crate: portal groups, checked by TCP and by the raw SendTargets client
//! (libiscsi's iscsi-ls hangs against istgt).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use vds_testpeers::{Istgt, IstgtConfig, IstgtTarget, PeerError, free_port, require, sendtargets};

#[test]
fn two_portal_groups_accept_and_discover() -> Result<(), PeerError> {
    if let Err(e) = require(&["istgt"]) {
        panic!("{e}");
    }
    let port = free_port();
    let pg1 = vec![format!("127.0.0.1:{port}")];
    let pg2 = vec![format!("127.0.0.2:{port}"), format!("[::1]:{port}")];
    let cfg = IstgtConfig::two_groups(pg1.clone(), pg2.clone());
    let istgt = Istgt::start(cfg)?;
    assert_eq!(istgt.portals(2), pg2);

    for portal in pg1.iter().chain(&pg2) {
        let addr: SocketAddr = portal
            .parse()
            .map_err(|_| PeerError::InvalidArgument(portal.clone()))?;
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| PeerError::Io {
            context: format!("connect {portal}"),
            source: e,
        })?;
    }
    let uc: SocketAddr = ([127, 0, 0, 1], istgt.unit_control_port()).into();
    assert!(TcpStream::connect_timeout(&uc, Duration::from_secs(2)).is_ok());

    let disk1 = istgt.target_iqn("disk1");
    let disk2 = istgt.target_iqn("disk2");
    assert_eq!(disk1, "iqn.2026-11.test.vds.istgt:disk1");
    let d3 = "iqn.2026-11.test.vds:istgt-d3".to_owned();
    let a1 = format!("{},1", pg1[0]);
    let a2 = format!("{},2", pg2[0]);
    let a3 = format!("{},2", pg2[1]);

    // Via group 1: the targets mapped to it, each with all its portals and their tags.
    assert_eq!(
        sendtargets(&pg1[0], Duration::from_secs(5))?,
        vec![
            (disk1.clone(), a1.clone()),
            (d3.clone(), a1.clone()),
            (d3.clone(), a2.clone()),
            (d3.clone(), a3.clone()),
        ]
    );
    // Via group 2 (IPv4 and IPv6): disk1 is hidden.
    for portal in &pg2 {
        assert_eq!(
            sendtargets(portal, Duration::from_secs(5))?,
            vec![
                (disk2.clone(), a2.clone()),
                (disk2.clone(), a3.clone()),
                (d3.clone(), a1.clone()),
                (d3.clone(), a2.clone()),
                (d3.clone(), a3.clone()),
            ],
            "via {portal}"
        );
    }

    let (pid, dir) = (istgt.pid(), istgt.dir().to_owned());
    istgt.stop()?;
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn bad_config_is_refused_before_start() {
    let cfg = IstgtConfig {
        portal_groups: BTreeMap::from([(1, vec![format!("127.0.0.1:{}", free_port())])]),
        targets: vec![IstgtTarget {
            name: "x".into(),
            portal_groups: vec![7],
        }],
        ..IstgtConfig::default()
    };
    assert!(matches!(
        Istgt::start(cfg),
        Err(PeerError::InvalidArgument(_))
    ));
}
