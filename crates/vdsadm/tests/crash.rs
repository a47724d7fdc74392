//! `vdsadm refresh` killed with SIGKILL at 50 random moments, with many subsystems so that a
//! refresh takes a while: after each kill the cache opens, passes SQLite's integrity check and the
//! store's checksums, `list` works on every subsystem, and the next refresh succeeds.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Adm;
use rand::Rng;
use vds_store::{ProviderConfig, Store, SubsystemConfig};
use vds_testpeers::{Tgtd, TgtdConfig, free_port, require};

const SUBSYSTEMS: usize = 120;
const KILLS: usize = 50;

#[test]
fn sigkill_during_refresh_never_corrupts_the_cache() {
    if let Err(e) = require(&["tgtd", "tgtadm"]) {
        panic!("{e} (run scripts/install-deps.sh)");
    }
    let p = free_port();
    let portals = vec![
        format!("127.0.0.1:{p}"),
        format!("127.0.0.2:{p}"),
        format!("[::1]:{p}"),
    ];
    let t = Tgtd::start(TgtdConfig {
        portals: portals.clone(),
    })
    .expect("start tgtd");
    t.add_targets(8, "iqn.2026-11.test.vds:crash")
        .expect("targets");

    let adm = Adm::new();
    {
        let store = Store::open(&adm.store()).expect("store");
        store
            .update_config(|cfg| {
                cfg.providers
                    .push(ProviderConfig::new("vds-sendtargets", "sendtargets"));
                for i in 0..SUBSYSTEMS {
                    let mut c = SubsystemConfig::new(format!("s{i:03}"), "vds-sendtargets");
                    c.portals = portals.clone();
                    cfg.subsystems.push(c);
                }
                Ok(())
            })
            .expect("config");
    }
    adm.run(&["reenumerate"]).ok();
    let start = Instant::now();
    adm.run(&["refresh"]).ok();
    let took = start.elapsed().max(Duration::from_millis(20));

    let mut rng = rand::thread_rng();
    let mut interrupted = 0;
    for round in 0..KILLS {
        let mut child = adm
            .command(&["refresh"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn refresh");
        let wait = rng.gen_range(0..took.as_micros() as u64 * 6 / 5);
        std::thread::sleep(Duration::from_micros(wait));
        if child.try_wait().expect("try_wait").is_none() {
            interrupted += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");

        let store = Store::open(&adm.store()).expect("store");
        if let Err(e) = store.verify_cache(true) {
            panic!("round {round} (after {wait} µs): cache damaged: {e}");
        }
        drop(store);
        let subs = adm.run(&["--json", "list", "subsystems"]);
        assert_eq!(subs.code, 0, "round {round}: {subs:?}");
        let rows = subs.json();
        let rows = rows.as_array().expect("array");
        assert_eq!(rows.len(), SUBSYSTEMS, "round {round}");
        assert!(
            rows.iter().all(|r| r["status"] == "ONLINE"),
            "round {round}: {rows:?}"
        );
        let one = adm.run(&["--json", "list", "tportals", "--subsystem", "s077"]);
        assert_eq!(one.code, 0, "round {round}: {one:?}");
        assert_eq!(one.json().as_array().map(Vec::len), Some(portals.len()));
        adm.run(&["refresh"]).ok();
    }
    // Most kills must have landed while a refresh was running, or the test proves nothing.
    assert!(
        interrupted >= KILLS / 2,
        "only {interrupted} of {KILLS} kills interrupted a refresh (refresh took {took:?})"
    );
    t.stop().expect("stop tgtd");
}
