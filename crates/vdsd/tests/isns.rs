//! vdsd runs the providers' watchers: an iSNS provider's state change notifications (SCNs) become
//! refreshes inside the daemon, and their notifications reach `/v1/events` without anyone
//! refreshing (periodic refresh off).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Daemon, Events};
use vds_service::{Service, ServiceOptions};
use vds_testpeers::{Isnsd, IsnsdConfig, free_port, require};

const SOURCE: &str = "iqn.2026-12.test.vds:vdsd-watch";

/// A store with one isns provider `fabric`, a Control node listening for SCNs on loopback,
/// reenumerated once (by this process, which then lets go of it).
fn store_with_fabric(store: &Path, isnsd: &Isnsd) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let service = Service::open(ServiceOptions {
            create: true,
            ..ServiceOptions::new(store)
        })
        .expect("store");
        let mut settings = toml::Table::new();
        settings.insert("server".into(), isnsd.address().into());
        settings.insert("source_name".into(), SOURCE.into());
        settings.insert("control_node".into(), true.into());
        settings.insert(
            "scn_listen".into(),
            format!("127.0.0.1:{}", free_port()).into(),
        );
        service
            .add_provider("fabric", "isns", settings, true)
            .await
            .expect("isns provider");
    });
}

#[test]
fn an_scn_reaches_the_event_stream_without_a_refresh() {
    require(&["isnsd", "isnsadm"]).expect("open-isns");
    let isnsd = Isnsd::start(IsnsdConfig::default()).expect("isnsd");
    let portal = format!("portal=127.0.0.1:{}", free_port());
    isnsd
        .register("host1", &["target=iqn.2024-01.test:a", &portal])
        .expect("register");
    let store = tempfile::tempdir().expect("store");
    store_with_fabric(store.path(), &isnsd);
    let d = Daemon::serving(store.path());
    // The watcher is up once its first reenumerate (which registers for SCNs) is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.log().contains("Reenumerate") || !d.log().contains("Done") {
        assert!(
            Instant::now() < deadline,
            "the watcher did not start: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut events = Events::open(&d.socket, "/v1/events", None);
    isnsd
        .register("host1", &["target=iqn.2024-01.test:b"])
        .expect("register a target");
    let got = events.until(Duration::from_secs(30), |e| {
        e.data["event_name"] == "TARGET_ARRIVE" && e.data["provider"] == "fabric"
    });
    assert!(!got.is_empty());
    // Nobody asked for it: no operation ran.
    let ops = d.get_json("/v1/operations");
    assert_eq!(ops.as_array().map(Vec::len), Some(0), "{ops}");
    // And it is in the picture the daemon serves.
    let subs = d.get_json("/v1/subsystems?provider=fabric");
    assert_eq!(subs[0]["targets"], 2, "{subs}");
    assert_eq!(d.stop().code(), Some(0));
}
