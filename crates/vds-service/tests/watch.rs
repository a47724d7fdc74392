//! The service's watch against a real isnsd: state change notifications become targeted
//! refreshes (or reenumerates) whose notifications reach the advise sinks without anyone calling
//! refresh; the Control node registration is kept alive within the registration period and
//! withdrawn on stop; and the periodic refresh sees what raises no notification (a portal).

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vds_model::{Notification, NotificationEvent};
use vds_service::{Service, ServiceOptions, Watch, WatchAction, WatchEvent, WatchOptions};
use vds_testpeers::{Isnsd, IsnsdConfig, free_port, require};

type TestResult = Result<(), Box<dyn Error>>;

const SOURCE: &str = "iqn.2026-12.test.vds:watch";

fn start(cfg: IsnsdConfig) -> Result<Isnsd, Box<dyn Error>> {
    require(&["isnsd", "isnsadm"])?;
    Ok(Isnsd::start(cfg)?)
}

/// A service over a new store with one isns provider `fabric` (reenumerated and refreshed).
async fn service(isnsd: &Isnsd, scn: bool) -> Result<(tempfile::TempDir, Service), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let mut options = ServiceOptions::new(dir.path().join("store"));
    options.create = true;
    let service = Service::open(options)?;
    let mut settings = toml::Table::new();
    settings.insert("server".into(), isnsd.address().into());
    settings.insert("source_name".into(), SOURCE.into());
    settings.insert("control_node".into(), true.into());
    if scn {
        settings.insert(
            "scn_listen".into(),
            format!("127.0.0.1:{}", free_port()).into(),
        );
    }
    service
        .add_provider("fabric", "isns", settings, true)
        .await?;
    Ok((dir, service))
}

type Seen = Arc<Mutex<Vec<Notification>>>;

/// Every notification the service's sinks receive.
fn sink(service: &Service) -> Seen {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    service.advise(move |_provider: &str, batch: &[Notification]| {
        s.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(batch);
    });
    seen
}

/// Serves the watch's events (at most 15 s) until `done` says so; a failed operation or a
/// problem of the watcher ends the wait with its error.
async fn serve_until(
    watch: &mut Watch,
    what: &str,
    mut done: impl FnMut(Option<&WatchEvent>) -> bool,
) -> TestResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    if done(None) {
        return Ok(());
    }
    loop {
        let event = match tokio::time::timeout_at(deadline, watch.next_event()).await {
            Err(_) => return Err(format!("no {what} within 15 s").into()),
            Ok(None) => return Err("the watch ended".into()),
            Ok(Some(e)) => e,
        };
        if let WatchEvent::Failed { error, .. } | WatchEvent::Problem { error, .. } = &event {
            return Err(format!("waiting for {what}: {error}").into());
        }
        if done(Some(&event)) {
            return Ok(());
        }
    }
}

/// Waits for `event` among what the sink saw.
async fn wait_for(watch: &mut Watch, seen: &Seen, event: NotificationEvent) -> TestResult {
    serve_until(watch, &event.name(), |_| {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|n| n.event == event)
    })
    .await
}

/// Waits for the watcher's first reenumerate: its SCN registration is then in place.
async fn wait_registered(watch: &mut Watch) -> TestResult {
    serve_until(watch, "first reenumerate", |e| {
        matches!(
            e,
            Some(WatchEvent::Done {
                action: WatchAction::Reenumerate,
                ..
            })
        )
    })
    .await
}

fn control_listed(isnsd: &Isnsd) -> Result<bool, Box<dyn Error>> {
    Ok(isnsd.lists()?.nodes.iter().any(|n| n.0 == SOURCE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scns_become_notifications_without_anyone_refreshing() -> TestResult {
    let isnsd = start(IsnsdConfig::default())?;
    let portal = format!("portal=127.0.0.1:{}", free_port());
    isnsd.register("host1", &["target=iqn.2024-01.test:a", &portal])?;
    let (_dir, service) = service(&isnsd, true).await?;
    let seen = sink(&service);
    let mut watch = service.watch(WatchOptions::default())?;
    assert_eq!(watch.providers(), ["fabric".to_string()]);
    wait_registered(&mut watch).await?;

    // A new target in a known entity: a refresh of that entity, TARGET_ARRIVE.
    isnsd.register("host1", &["target=iqn.2024-01.test:b"])?;
    wait_for(&mut watch, &seen, NotificationEvent::TARGET_ARRIVE).await?;
    // A new entity: a reenumerate, SUB_SYSTEM_ARRIVE.
    isnsd.register("host9", &["target=iqn.2024-01.test:nine"])?;
    wait_for(&mut watch, &seen, NotificationEvent::SUB_SYSTEM_ARRIVE).await?;
    // Its last target gone: it departs.
    isnsd.isnsadm(&["--deregister", "iscsi-name=iqn.2024-01.test:nine"])?;
    wait_for(&mut watch, &seen, NotificationEvent::SUB_SYSTEM_DEPART).await?;
    let names: Vec<String> = service
        .list_subsystems(None)?
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["host1".to_string()]);
    assert_eq!(
        service
            .list_targets(&vds_service::SubsystemSel::named("host1"))?
            .len(),
        2
    );

    // Stopping withdraws the registration.
    assert!(control_listed(&isnsd)?);
    watch.stop().await;
    assert!(
        !control_listed(&isnsd)?,
        "the Control node was not deregistered"
    );
    isnsd.stop()?;
    Ok(())
}

/// isnsd drops an entity that does not register again within its registration period (4 s
/// here): the watcher renews ours, so it is still there well after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_node_registration_is_kept_alive() -> TestResult {
    let isnsd = start(IsnsdConfig {
        registration_period: 4,
        ..IsnsdConfig::default()
    })?;
    let (_dir, service) = service(&isnsd, false).await?;
    assert!(control_listed(&isnsd)?, "provider add registers it");
    let watch = service.watch(WatchOptions::default())?;
    let until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < until {
        assert!(
            control_listed(&isnsd)?,
            "the registration expired\n{}",
            isnsd.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    watch.stop().await;
    assert!(!control_listed(&isnsd)?);
    isnsd.stop()?;
    Ok(())
}

/// A portal added raises no SCN in open-isns: the periodic refresh is what sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_refresh_sees_a_new_portal() -> TestResult {
    let isnsd = start(IsnsdConfig::default())?;
    let port = free_port();
    isnsd.register(
        "host1",
        &[
            "target=iqn.2024-01.test:a",
            &format!("portal=127.0.0.1:{port}"),
        ],
    )?;
    let (_dir, service) = service(&isnsd, true).await?;
    let seen = sink(&service);
    let mut watch = service.watch(WatchOptions {
        provider: Some("fabric".into()),
        refresh_interval: Some(Duration::from_secs(1)),
    })?;
    wait_registered(&mut watch).await?;
    isnsd.register("host1", &[&format!("portal=127.0.0.5:{port}")])?;
    wait_for(&mut watch, &seen, NotificationEvent::PORTAL_ARRIVE).await?;
    watch.stop().await;
    isnsd.stop()?;
    Ok(())
}
