//! isnsd through this crate: it starts on its own port, isnsadm registers and lists through it,
//! and stop ends exactly the process that was started.

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use vds_testpeers::{Isnsd, IsnsdConfig, PeerError, parse_isnsadm_list, require};

#[test]
fn start_register_list_stop() -> Result<(), PeerError> {
    if let Err(e) = require(&["isnsd", "isnsadm"]) {
        panic!("{e}");
    }
    let isnsd = Isnsd::start(IsnsdConfig::default())?;
    assert!(TcpStream::connect_timeout(&isnsd.addr(), Duration::from_secs(2)).is_ok());
    let conf =
        std::fs::read_to_string(isnsd.dir().join("isnsd.conf")).map_err(|e| PeerError::Io {
            context: "reading isnsd.conf".into(),
            source: e,
        })?;
    assert!(conf.contains(&format!("BindAddress = 127.0.0.1:{}", isnsd.port())));
    assert!(conf.contains("Security = 0"));
    assert!(conf.contains("DefaultDiscoveryDomain = 1"));

    // Nothing registered yet.
    assert!(parse_isnsadm_list(&isnsd.isnsadm(&["--list", "nodes"])?).is_empty());

    let out = isnsd.isnsadm(&[
        "--key",
        "eid=host1",
        "--register",
        "entity=host1",
        "target=iqn.2024-01.test:disk1,alias=disk1",
        "portal=127.0.0.1:3260",
        "pg,pgt=1",
        "portal=127.0.0.2:3260",
        "pg,pgt=2",
    ])?;
    assert!(out.contains("Successfully registered"), "{out}");

    let nodes = parse_isnsadm_list(&isnsd.isnsadm(&["--list", "nodes"])?);
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].contains(&(0x20, "iqn.2024-01.test:disk1".into())));
    assert!(nodes[0].contains(&(0x21, "Target".into())));
    assert!(nodes[0].contains(&(0x22, "disk1".into())));
    let groups = parse_isnsadm_list(&isnsd.isnsadm(&["--list", "portal-groups"])?);
    let tags: Vec<&str> = groups
        .iter()
        .flat_map(|g| {
            g.iter()
                .filter(|(t, _)| *t == 0x33)
                .map(|(_, v)| v.as_str())
        })
        .collect();
    assert_eq!(tags, vec!["1", "2"]);
    let entities = parse_isnsadm_list(&isnsd.isnsadm(&["--list", "entities"])?);
    assert_eq!(entities.len(), 1);
    assert!(entities[0].contains(&(0x01, "host1".into())));

    // A bad request fails with isnsadm's own message.
    match isnsd.isnsadm(&["--register", "no-such-attr=1"]) {
        Err(PeerError::CommandFailed { stderr, .. }) => assert!(!stderr.is_empty()),
        other => panic!("expected a failure, got {other:?}"),
    }

    let (pid, dir) = (isnsd.pid(), isnsd.dir().to_owned());
    isnsd.stop()?;
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn two_instances_are_apart_and_drop_kills() -> Result<(), PeerError> {
    let a = Isnsd::start(IsnsdConfig::default())?;
    let b = Isnsd::start(IsnsdConfig::default())?;
    assert_ne!(a.port(), b.port());
    a.isnsadm(&[
        "--key",
        "eid=only-a",
        "--register",
        "entity=only-a",
        "target=iqn.2024-01.test:a",
    ])?;
    assert_eq!(
        parse_isnsadm_list(&a.isnsadm(&["--list", "entities"])?).len(),
        1
    );
    // b has its own database.
    assert!(parse_isnsadm_list(&b.isnsadm(&["--list", "entities"])?).is_empty());
    let pid = b.pid();
    drop(b);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    a.stop()
}

#[test]
fn registration_period_and_security_reach_the_config() -> Result<(), PeerError> {
    let read = |i: &Isnsd| {
        std::fs::read_to_string(i.dir().join("isnsd.conf")).map_err(|e| PeerError::Io {
            context: "reading isnsd.conf".into(),
            source: e,
        })
    };
    let expiring = Isnsd::start(IsnsdConfig {
        registration_period: 4,
        ..IsnsdConfig::default()
    })?;
    assert!(read(&expiring)?.contains("RegistrationPeriod = 4"));
    expiring.isnsadm(&[
        "--key",
        "eid=brief",
        "--register",
        "entity=brief",
        "target=iqn.2024-01.test:brief",
    ])?;
    assert_eq!(
        parse_isnsadm_list(&expiring.isnsadm(&["--list", "nodes"])?).len(),
        1
    );
    // Nobody registers it again: isnsd drops it once the period has passed.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !parse_isnsadm_list(&expiring.isnsadm(&["--list", "nodes"])?).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the entity did not expire\n{}",
            expiring.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    expiring.stop()?;

    let secure = Isnsd::start(IsnsdConfig {
        security: true,
        ..IsnsdConfig::default()
    })?;
    let conf = read(&secure)?;
    assert!(conf.contains("Security = 1"), "{conf}");
    assert!(secure.dir().join("auth_key").is_file());
    assert!(conf.contains(&secure.dir().join("auth_key").display().to_string()));
    secure.stop()
}
