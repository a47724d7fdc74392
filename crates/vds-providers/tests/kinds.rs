//! The registry of provider kinds, used as the service uses it: a kind looked up by its name in the
//! configuration builds a backend from a `BuildContext`. No network: the simulator kind only.

mod common;

use std::error::Error;
use std::sync::Arc;

use vds_model::sim::{demo_array_1, demo_array_2};
use vds_model::{Hresult, HwProvider, NotificationEvent, ObjectId, ResultExt};
use vds_providers::{BuildContext, KindState, Registration, kind, kinds};

use common::MemoryState;

type TestResult = Result<(), Box<dyn Error>>;

#[test]
fn the_registry_lists_every_kind_and_finds_them_by_name() {
    let names: Vec<&str> = kinds().iter().map(|k| k.info().name).collect();
    assert_eq!(names, ["sendtargets", "sim", "tgt", "isns"]);
    for name in names {
        assert_eq!(kind(name).map(|k| k.info().name), Some(name));
    }
    assert!(kind("nope").is_none());
    assert!(kind("").is_none());
    // Names are matched exactly, as the configuration spells them.
    assert!(kind("SIM").is_none());

    let sendtargets = kind("sendtargets").map(|k| k.info());
    assert!(sendtargets.is_some_and(|i| i.takes_registrations && !i.manages_arrays));
    let sim = kind("sim").map(|k| k.info());
    assert!(sim.is_some_and(|i| !i.takes_registrations && i.manages_arrays));
    let tgt = kind("tgt").map(|k| k.info());
    assert!(tgt.is_some_and(|i| !i.takes_registrations && i.manages_arrays));
    let isns = kind("isns").map(|k| k.info());
    assert!(isns.is_some_and(|i| !i.takes_registrations && !i.manages_arrays));
}

/// The isns kind through the registry: its settings are checked by name, a backend is built
/// without touching the network, registrations are refused, and only a Control node has a
/// watcher (a provider that registers nothing has nothing to keep alive or listen for).
#[tokio::test(flavor = "multi_thread")]
async fn the_isns_kind_checks_its_settings_and_watches_only_as_a_control_node() -> TestResult {
    let isns = kind("isns").ok_or("no isns kind")?;
    let mut settings = toml::Table::new();
    let e = isns
        .check_settings(&settings)
        .err()
        .ok_or("no server accepted")?;
    assert_eq!(e, Hresult::E_INVALIDARG);
    assert!(e.to_string().contains("--server"), "{e}");
    settings.insert("server".into(), "127.0.0.1:1".into());
    settings.insert("source_name".into(), "iqn.2026-12.test.vds:kinds".into());
    isns.check_settings(&settings)?;
    let backend = isns.build(BuildContext {
        name: "fabric",
        settings: &settings,
        registrations: Box::new(std::iter::empty()),
        state: Arc::new(MemoryState::default()),
        progress: None,
    })?;
    assert_eq!(backend.info().name, "fabric");
    let registration = Registration {
        name: "array".into(),
        ..Registration::default()
    };
    assert_eq!(
        isns.check_registration(&registration).map_err(|e| e.code()),
        Err(Hresult::VDS_E_NOT_SUPPORTED)
    );

    let (messages, _inbox) = tokio::sync::mpsc::channel(1);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let context = |settings: &toml::Table| vds_providers::WatchContext {
        name: "fabric".into(),
        settings: settings.clone(),
        messages: messages.clone(),
        picture: Arc::new(Vec::new),
        shutdown: shutdown.clone(),
    };
    assert!(isns.watch(context(&settings))?.is_none());
    settings.insert("control_node".into(), true.into());
    assert!(isns.watch(context(&settings))?.is_some());
    // The other kinds have nothing to watch.
    let sim = kind("sim").ok_or("no sim kind")?;
    assert!(sim.watch(context(&toml::Table::new()))?.is_none());
    Ok(())
}

#[test]
fn the_sim_kind_refuses_registrations() -> TestResult {
    let sim = kind("sim").ok_or("no sim kind")?;
    let registration = Registration {
        name: "array".into(),
        portals: vec!["127.0.0.1".into()],
        ..Registration::default()
    };
    let e = sim
        .check_registration(&registration)
        .err()
        .ok_or("a registration was accepted")?;
    assert_eq!(e, Hresult::VDS_E_NOT_SUPPORTED);
    assert!(e.to_string().contains("sim provider"), "{e}");
    Ok(())
}

/// A sim provider built through the registry is named as given (its id and every object id under
/// it derive from that name) and starts as the demonstration array, whether its state is still
/// empty or holds what `initial_state` made for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_sim_kind_builds_the_demonstration_array_under_the_name_given() -> TestResult {
    let sim = kind("sim").ok_or("no sim kind")?;
    let settings = toml::Table::new();
    sim.check_settings(&settings)?;

    let fresh = MemoryState::default();
    let initialised = MemoryState::default();
    initialised.write(&sim.initial_state(&settings)?.ok_or("no initial state")?)?;
    for state in [fresh, initialised] {
        let backend = sim.build(BuildContext {
            name: "lab-sim",
            settings: &settings,
            registrations: Box::new(std::iter::empty()),
            state: Arc::new(state),
            progress: None,
        })?;
        assert_eq!(backend.info().name, "lab-sim");
        let provider = HwProvider::from_box(backend);
        provider.initialize()?;
        assert_eq!(provider.name(), "lab-sim");
        assert_eq!(provider.id(), ObjectId::provider("lab-sim"));

        let arrived = provider.reenumerate().await?;
        assert_eq!(provider.export(), vec![demo_array_1(), demo_array_2()]);
        for key in ["sim-array-1", "sim-array-2"] {
            let s = provider.sub_system_by_key(key)?;
            assert_eq!(
                s.id(),
                ObjectId::provider("lab-sim").child("subsystem", key)
            );
            assert!(
                arrived
                    .iter()
                    .any(|n| n.id == s.id() && n.event == NotificationEvent::SUB_SYSTEM_ARRIVE)
            );
        }
        // A refresh of the unchanged array changes nothing.
        let report = provider.refresh().await?;
        assert_eq!((report.refreshed, report.failures.len()), (2, 0));
        assert_eq!(report.notifications, vec![]);
    }
    Ok(())
}

#[test]
fn the_sim_kind_refuses_state_it_cannot_read() -> TestResult {
    let sim = kind("sim").ok_or("no sim kind")?;
    let settings = toml::Table::new();
    let state = MemoryState::default();
    state.write(b"not json")?;
    let built = sim.build(BuildContext {
        name: "lab-sim",
        settings: &settings,
        registrations: Box::new(std::iter::empty()),
        state: Arc::new(state),
        progress: None,
    });
    assert_eq!(
        built.map(|_| ()).hresult(),
        Err(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT)
    );
    Ok(())
}
