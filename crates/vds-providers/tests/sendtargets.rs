//! The SendTargets provider against real peers on loopback (tgtd and istgt, started and stopped by
//! each test on its own ports), asserted through the model's API as a VDS client would see it. The
//! backend runs on the test's own tokio runtime, as it runs on the service's.

mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use iscsi_client::{ChapCredentials, DiscoveryOptions};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use vds_model::{
    CacheHealth, Hresult, HwProvider, IscsiPortalStatus, Notification, NotificationEvent,
    NotificationTargetType, ObjectId, ResultExt, SubSystem, SubSystemSnapshot, SubSystemStatus,
    Subject, VdsIpAddress,
};
use vds_providers::sendtargets::{
    DiscoveryPortal, PROVIDER_NAME, Progress, SendTargetsBackend, SendTargetsKind,
    SendTargetsOptions, SendTargetsSubsystem, discover_portal,
};
use vds_providers::{BuildContext, Credential, ProviderKind, Registration};
use vds_secret::Secret;
use vds_testpeers::{Istgt, IstgtConfig, Tgtd, TgtdConfig, free_port};

use common::MemoryState;

type TestResult = Result<(), Box<dyn Error>>;

fn discovery_options() -> DiscoveryOptions {
    DiscoveryOptions {
        connect_timeout: Duration::from_secs(2),
        pdu_timeout: Duration::from_secs(3),
        overall_timeout: Duration::from_secs(5),
        ..DiscoveryOptions::default()
    }
}

fn options() -> SendTargetsOptions {
    SendTargetsOptions {
        discovery: discovery_options(),
        ..SendTargetsOptions::default()
    }
}

fn subsystem(name: &str, portals: &[String]) -> Result<SendTargetsSubsystem, Box<dyn Error>> {
    Ok(SendTargetsSubsystem {
        name: name.into(),
        portals: portals
            .iter()
            .map(|p| p.parse())
            .collect::<Result<_, _>>()?,
        initiator_name: None,
        chap: None,
        mutual: None,
    })
}

fn provider_with(
    subsystems: Vec<SendTargetsSubsystem>,
    options: SendTargetsOptions,
) -> Result<HwProvider, Box<dyn Error>> {
    let provider = HwProvider::new(SendTargetsBackend::new(PROVIDER_NAME, subsystems, options)?);
    provider.initialize()?;
    Ok(provider)
}

fn provider(subsystems: Vec<SendTargetsSubsystem>) -> Result<HwProvider, Box<dyn Error>> {
    provider_with(subsystems, options())
}

/// `(address, status)` of every portal, in enumeration order, through `query_portals`.
fn portals(s: &SubSystem) -> Result<Vec<(String, IscsiPortalStatus)>, vds_model::Error> {
    s.query_portals()?
        .into_iter()
        .map(|p| {
            let prop = p.get_properties()?;
            Ok((prop.address.to_string(), prop.status))
        })
        .collect()
}

/// target name → [(tag, [portal addresses])].
type Groups = BTreeMap<String, Vec<(u16, Vec<String>)>>;

/// The targets' portal groups, through `query_targets` → `query_portal_groups` →
/// `query_associated_portals`.
fn groups(s: &SubSystem) -> Result<Groups, vds_model::Error> {
    let mut out = BTreeMap::new();
    for t in s.query_targets()? {
        let name = t.get_properties()?.iscsi_name;
        let mut gs = Vec::new();
        for g in t.query_portal_groups()? {
            let tag = g.get_properties()?.tag;
            let ps = g
                .query_associated_portals()?
                .into_iter()
                .map(|p| Ok(p.get_properties()?.address.to_string()))
                .collect::<Result<Vec<_>, vds_model::Error>>()?;
            gs.push((tag, ps));
        }
        out.insert(name, gs);
    }
    Ok(out)
}

fn events_for(batch: &[Notification], id: ObjectId) -> Vec<NotificationEvent> {
    batch
        .iter()
        .filter(|n| n.id == id)
        .map(|n| n.event)
        .collect()
}

fn portal_id(s: &SubSystem, addr: &str) -> Result<ObjectId, Box<dyn Error>> {
    let p: DiscoveryPortal = addr.parse()?;
    let a: VdsIpAddress = p.vds_address().ok_or("no VDS address")?;
    Ok(s.portal_by_address(&a)?.id())
}

/// The detail the backend recorded for subsystem `key`.
fn detail(provider: &HwProvider, key: &str) -> Result<String, Box<dyn Error>> {
    Ok(provider
        .sub_system_by_key(key)?
        .detail()?
        .unwrap_or_default())
}

/// A whole-provider refresh: every subsystem refreshed, and the notifications it raised.
async fn refresh_all(provider: &HwProvider) -> Result<Vec<Notification>, Box<dyn Error>> {
    let report = provider.refresh().await?;
    if let Some((_, key, e)) = report.failures.first() {
        return Err(format!("refresh of {key} failed: {e}").into());
    }
    assert_eq!(report.refreshed, provider.export().len());
    Ok(report.notifications)
}

#[tokio::test(flavor = "multi_thread")]
async fn tgtd_four_discovery_portals_and_105_targets() -> TestResult {
    let (p1, p2) = (free_port(), free_port());
    let configured = vec![
        format!("127.0.0.1:{p1}"),
        format!("127.0.0.2:{p1}"),
        format!("127.0.0.1:{p2}"),
        format!("[::1]:{p1}"),
    ];
    let tgtd = Tgtd::start(TgtdConfig {
        portals: configured.clone(),
    })?;
    let names = tgtd.add_targets(105, "iqn.2026-11.test.vds.prov:big")?;

    let provider = provider(vec![subsystem("tgt-4", &configured)?])?;
    let arrived = provider.reenumerate().await?;
    let s = provider.sub_system_by_key("tgt-4")?;
    assert!(
        arrived
            .iter()
            .any(|n| n.event == NotificationEvent::SUB_SYSTEM_ARRIVE
                && n.id == s.id()
                && n.subsystem == s.id())
    );
    // Every notification says which subsystem it is about.
    assert!(arrived.iter().all(|n| n.subsystem == s.id()));
    let props = s.get_properties()?;
    assert_eq!(props.status, SubSystemStatus::Online);
    assert_eq!(props.friendly_name, "tgt-4");
    assert_eq!(props.identification, configured.join(", "));

    // Exactly the four configured portals, in configured order, all ONLINE.
    let seen = portals(&s)?;
    let expected: Vec<(String, IscsiPortalStatus)> = configured
        .iter()
        .map(|p| (p.clone(), IscsiPortalStatus::Online))
        .collect();
    assert_eq!(seen, expected);
    // ... which is what tgt itself says it listens on.
    let mut shown = tgtd.show_portals()?;
    shown.sort();
    let mut ours: Vec<String> = seen.into_iter().map(|(a, _)| a).collect();
    ours.sort();
    assert_eq!(ours, shown);

    // Every target, sorted, each in one group (tag 1) holding all four portals.
    let g = groups(&s)?;
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(g.keys().cloned().collect::<Vec<_>>(), sorted);
    for (name, gs) in &g {
        assert_eq!(gs, &vec![(1, configured.clone())], "{name}");
    }

    // A refresh of an unchanged array changes nothing, whole or of the one subsystem.
    assert_eq!(refresh_all(&provider).await?, vec![]);
    assert_eq!(provider.refresh_subsystem(&s).await?, vec![]);
    tgtd.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_discovery_portal_goes_offline_and_comes_back() -> TestResult {
    let (p1, p2) = (free_port(), free_port());
    let a = format!("127.0.0.1:{p1}");
    let b = format!("127.0.0.1:{p2}");
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![a.clone(), b.clone()],
    })?;
    tgtd.add_targets(3, "iqn.2026-11.test.vds.prov:flap")?;
    let provider = provider(vec![subsystem("flap", &[a.clone(), b.clone()])?])?;
    provider.reenumerate().await?;
    let s = provider.sub_system_by_key("flap")?;
    let b_id = portal_id(&s, &b)?;
    assert_eq!(portals(&s)?[1], (b.clone(), IscsiPortalStatus::Online));

    tgtd.delete_portal(&b)?;
    let batch = refresh_all(&provider).await?;
    assert_eq!(
        events_for(&batch, b_id),
        vec![NotificationEvent::PORTAL_MODIFY]
    );
    assert!(
        batch
            .iter()
            .any(|n| n.object_type == NotificationTargetType::SUB_SYSTEM
                && n.event == NotificationEvent::SUB_SYSTEM_MODIFY)
    );
    assert_eq!(
        portals(&s)?,
        vec![
            (a.clone(), IscsiPortalStatus::Online),
            (b.clone(), IscsiPortalStatus::Offline)
        ]
    );
    let props = s.get_properties()?;
    assert_eq!(props.status, SubSystemStatus::PartiallyManaged);
    let d = detail(&provider, "flap")?;
    assert!(d.starts_with(&format!("{b}: ")), "{d}");
    // The targets are still reachable through the other portal; nothing departed.
    assert_eq!(s.query_targets()?.into_iter().count(), 3);
    assert!(
        !batch
            .iter()
            .any(|n| n.event == NotificationEvent::PORTAL_DEPART
                || n.event == NotificationEvent::TARGET_DEPART)
    );

    tgtd.add_portal(&b)?;
    // Back through a refresh of this subsystem alone.
    let batch = provider.refresh_subsystem(&s).await?;
    assert_eq!(
        events_for(&batch, b_id),
        vec![NotificationEvent::PORTAL_MODIFY]
    );
    assert_eq!(portals(&s)?[1], (b.clone(), IscsiPortalStatus::Online));
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Online);
    tgtd.stop()?;
    Ok(())
}

fn istgt_config(port: u16, pg2: Vec<String>) -> IstgtConfig {
    IstgtConfig::two_groups(vec![format!("127.0.0.1:{port}")], pg2)
}

#[tokio::test(flavor = "multi_thread")]
async fn istgt_portal_groups_and_tags() -> TestResult {
    let port = free_port();
    let pg1 = format!("127.0.0.1:{port}");
    let v4b = format!("127.0.0.2:{port}");
    let v6 = format!("[::1]:{port}");
    let istgt = Istgt::start(istgt_config(port, vec![v4b.clone(), v6.clone()]))?;
    let disk1 = istgt.target_iqn("disk1");
    let disk2 = istgt.target_iqn("disk2");
    let d3 = "iqn.2026-11.test.vds:istgt-d3".to_owned();

    let provider = provider(vec![
        // Discovery through group 1 only: the group-2 portals are learnt and probed.
        subsystem("istgt-pg1", std::slice::from_ref(&pg1))?,
        // Discovery through every portal.
        subsystem("istgt-all", &[pg1.clone(), v4b.clone(), v6.clone()])?,
    ])?;
    provider.reenumerate().await?;

    let s = provider.sub_system_by_key("istgt-pg1")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Online);
    assert_eq!(
        portals(&s)?,
        vec![
            (pg1.clone(), IscsiPortalStatus::Online),
            (v4b.clone(), IscsiPortalStatus::Online),
            (v6.clone(), IscsiPortalStatus::Online),
        ]
    );
    // disk2 is mapped to group 2 only, so discovery through group 1 does not show it.
    assert_eq!(
        groups(&s)?,
        BTreeMap::from([
            (disk1.clone(), vec![(1, vec![pg1.clone()])]),
            (
                d3.clone(),
                vec![(1, vec![pg1.clone()]), (2, vec![v4b.clone(), v6.clone()])]
            ),
        ])
    );

    let s = provider.sub_system_by_key("istgt-all")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Online);
    assert_eq!(
        groups(&s)?,
        BTreeMap::from([
            (disk1, vec![(1, vec![pg1.clone()])]),
            (disk2, vec![(2, vec![v4b.clone(), v6.clone()])]),
            (d3, vec![(1, vec![pg1.clone()]), (2, vec![v4b, v6])]),
        ])
    );
    // The IPv6 portal is a real VDS_IPT_IPV6 address.
    let v6_portal = s.query_portals()?.into_iter().nth(2).ok_or("no portal")?;
    assert!(matches!(
        v6_portal.get_properties()?.address,
        VdsIpAddress::Ipv6 { scope_id: 0, .. }
    ));
    istgt.stop()?;
    Ok(())
}

/// tgt answers SendTargets with only the portal a connection arrived on, so a portal that is not a
/// discovery portal can only come and go with istgt: restart it with group 2 moved from [::1] to
/// 127.0.0.3. Then stop it altogether: the subsystem goes OFFLINE and keeps what it had.
#[tokio::test(flavor = "multi_thread")]
async fn learnt_portals_depart_and_arrive_and_unreachable_keeps_them_offline() -> TestResult {
    let port = free_port();
    let pg1 = format!("127.0.0.1:{port}");
    let v4b = format!("127.0.0.2:{port}");
    let v6 = format!("[::1]:{port}");
    let v4c = format!("127.0.0.3:{port}");
    let istgt = Istgt::start(istgt_config(port, vec![v4b.clone(), v6.clone()]))?;
    let provider = provider(vec![subsystem("moving", std::slice::from_ref(&pg1))?])?;
    provider.reenumerate().await?;
    let s = provider.sub_system_by_key("moving")?;
    let v6_id = portal_id(&s, &v6)?;
    let v4b_id = portal_id(&s, &v4b)?;
    istgt.stop()?;

    let istgt = Istgt::start(istgt_config(port, vec![v4b.clone(), v4c.clone()]))?;
    let batch = refresh_all(&provider).await?;
    let v4c_id = portal_id(&s, &v4c)?;
    assert_eq!(
        events_for(&batch, v6_id),
        vec![NotificationEvent::PORTAL_DEPART]
    );
    assert_eq!(
        events_for(&batch, v4c_id),
        vec![NotificationEvent::PORTAL_ARRIVE]
    );
    assert_eq!(events_for(&batch, v4b_id), vec![]);
    assert!(
        batch
            .iter()
            .any(|n| n.event == NotificationEvent::PORTAL_GROUP_MODIFY)
    );
    // A departed portal's notification still names its subsystem.
    assert!(batch.iter().all(|n| n.subsystem == s.id()));
    let expected_online = vec![
        (pg1.clone(), IscsiPortalStatus::Online),
        (v4b.clone(), IscsiPortalStatus::Online),
        (v4c.clone(), IscsiPortalStatus::Online),
    ];
    assert_eq!(portals(&s)?, expected_online);
    let groups_before = groups(&s)?;
    istgt.stop()?;

    // Nobody listens any more: OFFLINE, everything kept, every portal OFFLINE.
    let batch = refresh_all(&provider).await?;
    assert!(
        !batch
            .iter()
            .any(|n| n.event == NotificationEvent::PORTAL_DEPART
                || n.event == NotificationEvent::TARGET_DEPART)
    );
    let props = s.get_properties()?;
    assert_eq!(props.status, SubSystemStatus::Offline);
    let offline: Vec<(String, IscsiPortalStatus)> = expected_online
        .into_iter()
        .map(|(a, _)| (a, IscsiPortalStatus::Offline))
        .collect();
    assert_eq!(portals(&s)?, offline);
    assert_eq!(groups(&s)?, groups_before);
    let d = detail(&provider, "moving")?;
    assert!(d.starts_with(&format!("{pg1}: cannot connect")), "{d}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_subsystem_is_offline() -> TestResult {
    let port = free_port(); // reserved, and nobody listens on it
    let portal = format!("127.0.0.1:{port}");
    let provider = provider(vec![subsystem("nobody", std::slice::from_ref(&portal))?])?;
    provider.reenumerate().await?;
    let s = provider.sub_system_by_key("nobody")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Offline);
    assert_eq!(portals(&s)?, vec![(portal, IscsiPortalStatus::Offline)]);
    assert_eq!(s.query_targets()?.into_iter().count(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_chap_right_and_wrong_secret() -> TestResult {
    let port = free_port();
    let portal = format!("127.0.0.1:{port}");
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![portal.clone()],
    })?;
    tgtd.add_targets(2, "iqn.2026-11.test.vds.prov:chap")?;
    tgtd.set_discovery_chap("discuser", "discsecret1234")?;

    let mut right = subsystem("right", std::slice::from_ref(&portal))?;
    right.chap = Some(ChapCredentials::new("discuser", "discsecret1234"));
    let mut wrong = subsystem("wrong", std::slice::from_ref(&portal))?;
    wrong.chap = Some(ChapCredentials::new("discuser", "not-the-secret-9"));
    let backend = SendTargetsBackend::new(PROVIDER_NAME, vec![right, wrong], options())?;
    let debug = format!("{backend:?}");
    assert!(
        debug.contains("right") && debug.contains("wrong"),
        "{debug}"
    );
    assert!(!debug.contains("discsecret1234") && !debug.contains("not-the-secret-9"));
    let provider = HwProvider::new(backend);
    provider.initialize()?;
    provider.reenumerate().await?;

    let s = provider.sub_system_by_key("right")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Online);
    assert_eq!(
        portals(&s)?,
        vec![(portal.clone(), IscsiPortalStatus::Online)]
    );
    assert_eq!(s.query_targets()?.into_iter().count(), 2);

    let s = provider.sub_system_by_key("wrong")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Failed);
    assert_eq!(
        s.query_portals().hresult().err(),
        Some(Hresult::VDS_E_OBJECT_STATUS_FAILED)
    );
    let e = s.query_targets().err().ok_or("query_targets answered")?;
    assert_eq!(e, Hresult::VDS_E_OBJECT_STATUS_FAILED);
    // The refusal is the error's cause, so the administrator reads why.
    assert!(e.to_string().contains("0x0201"), "{e}");
    let snap: SubSystemSnapshot = provider
        .export()
        .into_iter()
        .find(|s| s.key == "wrong")
        .ok_or("wrong not exported")?;
    assert_eq!(
        snap.detail.as_deref(),
        Some(format!("{portal}: authentication failure (login status 0x0201)").as_str())
    );
    assert_eq!(snap.portals[0].status, IscsiPortalStatus::Failed);
    tgtd.stop()?;
    Ok(())
}

/// What `vdsadm discover` runs: one discovery of one portal, its error a VDS code about the portal
/// (the table in the `sendtargets` module doc), against a real closed port and a real CHAP refusal.
#[tokio::test(flavor = "multi_thread")]
async fn discover_portal_errors_have_the_documented_code_and_name_the_portal() -> TestResult {
    // Nobody listens: refused, HRESULT_FROM_WIN32(WSAECONNREFUSED).
    let closed: DiscoveryPortal = format!("127.0.0.1:{}", free_port()).parse()?;
    let e = discover_portal(&closed, &discovery_options())
        .await
        .err()
        .ok_or("a closed port answered")?;
    assert_eq!(e.code(), Hresult::from_code(0x8007_274D), "{e}");
    assert_eq!(
        e.subject(),
        Some(&Subject::Other(format!("portal {closed}")))
    );
    assert!(e.to_string().contains(&closed.to_string()), "{e}");
    assert!(
        e.cause().unwrap_or_default().starts_with("connect: "),
        "{e}"
    );

    let port = free_port();
    let portal: DiscoveryPortal = format!("127.0.0.1:{port}").parse()?;
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![portal.to_string()],
    })?;
    let names = tgtd.add_targets(2, "iqn.2026-11.test.vds.prov:one")?;
    tgtd.set_discovery_chap("discuser", "discsecret1234")?;
    let with = |secret: &str| DiscoveryOptions {
        chap: Some(ChapCredentials::new("discuser", secret)),
        ..discovery_options()
    };

    let found = discover_portal(&portal, &with("discsecret1234")).await?;
    let mut listed: Vec<String> = found.targets.into_iter().map(|t| t.name).collect();
    listed.sort();
    let mut expected = names;
    expected.sort();
    assert_eq!(listed, expected);

    let e = discover_portal(&portal, &with("not-the-secret-9"))
        .await
        .err()
        .ok_or("a wrong secret was accepted")?;
    assert_eq!(e, Hresult::VDS_E_ISCSI_LOGIN_FAILED, "{e}");
    let message = e.to_string();
    assert!(message.contains(&format!("portal {portal}")), "{message}");
    assert!(
        message.contains("login: authentication failed"),
        "{message}"
    );
    assert!(!message.contains("not-the-secret-9"), "{message}");
    tgtd.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_longer_configured_goes_offline_on_refresh_and_departs_on_reenumerate() -> TestResult {
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    tgtd.add_targets(1, "iqn.2026-11.test.vds.prov:cfg")?;
    let portal = tgtd.portals()[0].clone();
    // What an earlier run with subsystem "old" left in the cache.
    let old = provider(vec![subsystem("old", std::slice::from_ref(&portal))?])?;
    old.reenumerate().await?;
    let cached = old.export();

    let backend = SendTargetsBackend::new(
        PROVIDER_NAME,
        vec![subsystem("new", std::slice::from_ref(&portal))?],
        options(),
    )?;
    let (provider, err) = HwProvider::from_cache(backend, cached, CacheHealth::Good);
    assert_eq!(err, None);
    // Refresh finds no new subsystem and reports "old" OFFLINE with its objects.
    refresh_all(&provider).await?;
    assert_eq!(
        provider.sub_system_by_key("new").hresult().err(),
        Some(Hresult::VDS_E_OBJECT_NOT_FOUND)
    );
    let s = provider.sub_system_by_key("old")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Offline);
    assert_eq!(portals(&s)?, vec![(portal, IscsiPortalStatus::Offline)]);
    assert_eq!(s.query_targets()?.into_iter().count(), 1);
    assert_eq!(detail(&provider, "old")?, "no longer configured");
    // Reenumerate: "old" departs, "new" arrives.
    let batch = provider.reenumerate().await?;
    assert!(
        batch
            .iter()
            .any(|n| n.id == s.id() && n.event == NotificationEvent::SUB_SYSTEM_DEPART)
    );
    assert_eq!(
        provider.sub_system_by_key("new")?.get_properties()?.status,
        SubSystemStatus::Online
    );
    tgtd.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn many_subsystems_bounded_concurrency_and_progress() -> TestResult {
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    tgtd.add_targets(2, "iqn.2026-11.test.vds.prov:many")?;
    let portal = tgtd.portals()[0].clone();
    let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = reports.clone();
    let opts = SendTargetsOptions {
        concurrency: 2,
        progress: Some(Arc::new(move |p| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(p)
        })),
        ..options()
    };
    let subsystems = (0..12)
        .map(|i| subsystem(&format!("s{i:02}"), std::slice::from_ref(&portal)))
        .collect::<Result<Vec<_>, _>>()?;
    let provider = provider_with(subsystems, opts)?;
    provider.reenumerate().await?;
    let all = provider
        .query_sub_systems()?
        .into_iter()
        .collect::<Vec<_>>();
    assert_eq!(all.len(), 12);
    for s in &all {
        assert_eq!(s.get_properties()?.status, SubSystemStatus::Online);
    }
    let mut seen = reports.lock().unwrap_or_else(|e| e.into_inner()).clone();
    seen.sort_by_key(|p| p.done);
    let expected: Vec<Progress> = (1..=12).map(|done| Progress { done, total: 12 }).collect();
    assert_eq!(seen, expected);
    // The model refreshes the twelve concurrently; the semaphore of 2 still lets every one through.
    assert_eq!(refresh_all(&provider).await?, vec![]);
    tgtd.stop()?;
    Ok(())
}

/// The backend owns no runtime: built, used and dropped on the most restrictive runtime a caller
/// can have (one thread, driven by `block_on`), its tasks run there and nothing panics.
#[test]
fn works_on_a_current_thread_runtime_the_caller_builds() -> TestResult {
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    tgtd.add_targets(1, "iqn.2026-11.test.vds.prov:rt")?;
    let portal = tgtd.portals()[0].clone();
    let outer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, refreshed) = outer.block_on(async {
        let provider = provider(vec![subsystem("inside", std::slice::from_ref(&portal))?])?;
        provider.reenumerate().await?;
        let status = provider
            .sub_system_by_key("inside")?
            .get_properties()?
            .status;
        let refreshed = provider.refresh().await?.refreshed;
        drop(provider);
        Ok::<_, Box<dyn Error>>((status, refreshed))
    })?;
    assert_eq!(status, SubSystemStatus::Online);
    assert_eq!(refreshed, 1);
    drop(outer);
    tgtd.stop()?;
    Ok(())
}

/// Only what concerns the backend as a whole fails `new`; a subsystem whose configuration cannot be
/// used becomes a FAILED subsystem whose detail names the problem, without touching the network.
#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_name_the_problem() -> TestResult {
    let p = vec!["127.0.0.1:3260".to_owned()];
    // The backend's own errors.
    let cases: Vec<(Vec<SendTargetsSubsystem>, usize, &str)> = vec![
        (
            vec![subsystem("a", &p)?, subsystem("a", &p)?],
            1,
            "configured twice",
        ),
        (vec![subsystem("a", &p)?], 0, "concurrency"),
    ];
    for (subsystems, concurrency, needle) in cases {
        let opts = SendTargetsOptions {
            concurrency,
            ..options()
        };
        let err = SendTargetsBackend::new(PROVIDER_NAME, subsystems, opts)
            .err()
            .ok_or(needle)?;
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert_eq!(err.code(), Hresult::E_INVALIDARG);
    }

    // One subsystem's: it is FAILED with the problem, and the provider works.
    let cases: Vec<(SendTargetsSubsystem, &str)> = vec![
        (subsystem("", &p)?, "empty name"),
        (subsystem("a", &[])?, "no discovery portal"),
        (
            subsystem("a", &[p[0].clone(), p[0].clone()])?,
            "listed twice",
        ),
        (subsystem(&"x".repeat(256), &p)?, "255 bytes"),
        (
            SendTargetsSubsystem {
                mutual: Some(ChapCredentials::new("t", "target-secret-1")),
                ..subsystem("a", &p)?
            },
            "mutual CHAP needs one-way CHAP",
        ),
        (
            SendTargetsSubsystem {
                initiator_name: Some(" ".into()),
                ..subsystem("a", &p)?
            },
            "initiator name is empty",
        ),
    ];
    for (config, needle) in cases {
        let key = config.name.clone();
        let identification = config
            .portals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let provider = provider(vec![config])?;
        provider.reenumerate().await?;
        let exported = provider.export();
        assert_eq!(exported.len(), 1, "{needle}");
        let snap = &exported[0];
        assert_eq!(snap.key, key);
        assert_eq!(snap.status, SubSystemStatus::Failed, "{needle}");
        assert_eq!(snap.identification, identification);
        let d = snap.detail.clone().unwrap_or_default();
        assert!(
            d.starts_with("its registration cannot be used: ") && d.contains(needle),
            "{needle}: {d}"
        );
        let s = provider.sub_system_by_key(&key)?;
        assert_eq!(
            s.query_portals().hresult().err(),
            Some(Hresult::VDS_E_OBJECT_STATUS_FAILED)
        );
        // A refresh reports it the same, and is no error of the call.
        assert_eq!(provider.refresh_subsystem(&s).await?, vec![]);
        assert_eq!(s.get_properties()?.status, SubSystemStatus::Failed);
    }
    Ok(())
}

/// The secret error the store gives for a secret file opened to others.
fn unreadable_secret() -> vds_model::Error {
    vds_model::Error::new(Hresult::E_ACCESSDENIED)
        .about(Subject::Other(
            "secret \"lab-chap\" (/var/lib/vds/secrets/lab-chap)".into(),
        ))
        .because("mode 0644: it must be readable by its owner only (chmod 600)")
}

/// Through the registry, as the service builds a provider: one registration that works against a
/// real tgtd and four that cannot be used. The four are FAILED, each saying why; the one works,
/// through reenumerate and through refresh.
#[tokio::test(flavor = "multi_thread")]
async fn one_broken_subsystem_does_not_stop_the_others() -> TestResult {
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    let names = tgtd.add_targets(2, "iqn.2026-11.test.vds.prov:kind")?;
    let portal = tgtd.portals()[0].clone();
    let registration = |name: &str, portals: &[&str]| Registration {
        name: name.into(),
        portals: portals.iter().map(|p| p.to_string()).collect(),
        ..Registration::default()
    };
    let registrations = vec![
        registration("good", &[&portal]),
        Registration {
            chap: Some(Credential {
                user: "discuser".into(),
                secret: Err(unreadable_secret()),
            }),
            ..registration("unreadable-secret", &[&portal])
        },
        registration("bad-portal", &["127.0.0.1:notaport"]),
        registration("no-portal", &[]),
        Registration {
            mutual: Some(Credential {
                user: "target".into(),
                secret: Ok(Secret::new(b"target-secret-12".to_vec())),
            }),
            ..registration("mutual-only", &[&portal])
        },
    ];
    let mut settings = toml::Table::new();
    settings.insert("concurrency".into(), toml::Value::Integer(4));
    let progress: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let sink = progress.clone();
    let kind = vds_providers::kind("sendtargets").ok_or("no sendtargets kind")?;
    assert_eq!(kind.info(), SendTargetsKind.info());
    let backend = kind.build(BuildContext {
        name: "lab",
        settings: &settings,
        registrations: Box::new(registrations.into_iter()),
        state: Arc::new(MemoryState::default()),
        progress: Some(Arc::new(move |done, total| {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((done, total))
        })),
    })?;
    assert_eq!(backend.info().name, "lab");
    let provider = HwProvider::from_box(backend);
    provider.initialize()?;
    assert_eq!(provider.id(), ObjectId::provider("lab"));

    let arrived = provider.reenumerate().await?;
    let keys: Vec<String> = provider.export().into_iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        [
            "good",
            "unreadable-secret",
            "bad-portal",
            "no-portal",
            "mutual-only"
        ]
    );
    assert_eq!(
        arrived
            .iter()
            .filter(|n| n.event == NotificationEvent::SUB_SYSTEM_ARRIVE)
            .count(),
        5
    );
    let mut reported = progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
    reported.sort();
    assert_eq!(reported, (1..=5).map(|d| (d, 5)).collect::<Vec<_>>());

    let good = provider.sub_system_by_key("good")?;
    assert_eq!(good.get_properties()?.status, SubSystemStatus::Online);
    assert_eq!(
        portals(&good)?,
        vec![(portal.clone(), IscsiPortalStatus::Online)]
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        groups(&good)?,
        sorted
            .into_iter()
            .map(|n| (n, vec![(1, vec![portal.clone()])]))
            .collect::<Groups>()
    );

    let broken: [(&str, &str, &[&str]); 4] = [
        (
            "unreadable-secret",
            &portal,
            &[
                "secret \"lab-chap\" (/var/lib/vds/secrets/lab-chap)",
                "mode 0644",
            ],
        ),
        (
            "bad-portal",
            "127.0.0.1:notaport",
            &["invalid discovery portal \"127.0.0.1:notaport\""],
        ),
        ("no-portal", "", &["it has no discovery portal"]),
        ("mutual-only", &portal, &["mutual CHAP needs one-way CHAP"]),
    ];
    for (key, identification, needles) in broken {
        let s = provider.sub_system_by_key(key)?;
        let props = s.get_properties()?;
        assert_eq!(props.status, SubSystemStatus::Failed, "{key}");
        assert_eq!(props.identification, identification, "{key}");
        let d = s.detail()?.unwrap_or_default();
        assert!(d.starts_with("its registration cannot be used: "), "{d}");
        for needle in needles {
            assert!(d.contains(needle), "{key}: {needle:?} not in {d:?}");
        }
        let e = s
            .query_targets()
            .err()
            .ok_or("a failed subsystem's targets")?;
        assert_eq!(e, Hresult::VDS_E_OBJECT_STATUS_FAILED, "{key}");
    }

    // A refresh of the good one alone works; so does a whole refresh, every subsystem refreshed.
    tgtd.add_targets(1, "iqn.2026-11.test.vds.prov:kind-late")?;
    let batch = provider.refresh_subsystem(&good).await?;
    assert!(
        batch
            .iter()
            .any(|n| n.event == NotificationEvent::TARGET_ARRIVE && n.subsystem == good.id())
    );
    assert_eq!(good.query_targets()?.len(), 3);
    let report = provider.refresh().await?;
    assert_eq!(report.refreshed, 5);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.notifications, vec![]);
    tgtd.stop()?;
    Ok(())
}

/// Accepts connections and never answers: an array that hangs. Each accepted connection is
/// reported on the channel and kept open until the task is aborted.
async fn silent_array(
    port: u16,
) -> Result<(tokio::task::JoinHandle<()>, mpsc::Receiver<()>), Box<dyn Error>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let (accepted, rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
            let _ = accepted.try_send(());
        }
    });
    Ok((task, rx))
}

/// Each subsystem refreshes under its own gate: while the silent array's refresh waits for an
/// answer that never comes, the healthy subsystem refreshes (whole or alone), and a second refresh
/// of the silent one is refused at once instead of queueing behind the first.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_array_holds_up_only_its_own_refresh() -> TestResult {
    // The silent refresh waits this long for the target's first PDU.
    const SILENCE: Duration = Duration::from_secs(5);
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    tgtd.add_targets(1, "iqn.2026-11.test.vds.prov:healthy")?;
    let healthy_portal = tgtd.portals()[0].clone();
    let silent_port = free_port();
    let silent_portal = format!("127.0.0.1:{silent_port}");
    let opts = SendTargetsOptions {
        discovery: DiscoveryOptions {
            connect_timeout: Duration::from_secs(2),
            pdu_timeout: SILENCE,
            overall_timeout: SILENCE + Duration::from_secs(2),
            ..DiscoveryOptions::default()
        },
        ..SendTargetsOptions::default()
    };
    let provider = provider_with(
        vec![
            subsystem("healthy", std::slice::from_ref(&healthy_portal))?,
            subsystem("silent", std::slice::from_ref(&silent_portal))?,
        ],
        opts,
    )?;
    // Nobody listens on the silent port yet, so this is quick: the silent one is OFFLINE.
    provider.reenumerate().await?;
    let healthy = provider.sub_system_by_key("healthy")?;
    let silent = provider.sub_system_by_key("silent")?;
    assert_eq!(healthy.get_properties()?.status, SubSystemStatus::Online);
    assert_eq!(silent.get_properties()?.status, SubSystemStatus::Offline);

    let (array, mut accepted) = silent_array(silent_port).await?;
    let waiting = {
        let (provider, silent) = (provider.clone(), silent.clone());
        tokio::spawn(async move { provider.refresh_subsystem(&silent).await })
    };
    // Once the array has accepted the connection, the refresh holds its gate and waits.
    tokio::time::timeout(Duration::from_secs(10), accepted.recv())
        .await?
        .ok_or("the silent array stopped")?;

    // A second refresh of the silent one answers on its first poll: it never waits for the first.
    let second = provider
        .refresh_subsystem(&silent)
        .now_or_never()
        .ok_or("the second refresh waited")?;
    let e = second.err().ok_or("the second refresh ran")?;
    assert_eq!(e, Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
    assert_eq!(
        e.subject(),
        Some(&Subject::Subsystem("silent".into())),
        "{e}"
    );

    // The healthy one refreshes meanwhile, alone and through the whole-provider refresh.
    let started = Instant::now();
    let batch = provider.refresh_subsystem(&healthy).await?;
    let took = started.elapsed();
    assert!(!waiting.is_finished(), "the silent refresh ended first");
    assert!(took < SILENCE, "the healthy refresh took {took:?}");
    assert_eq!(batch, vec![]);
    assert_eq!(healthy.get_properties()?.status, SubSystemStatus::Online);

    let report = provider.refresh().await?;
    assert!(!waiting.is_finished(), "the silent refresh ended first");
    assert_eq!(report.refreshed, 1);
    assert_eq!(report.failures.len(), 1);
    let (id, key, e) = &report.failures[0];
    assert_eq!((*id, key.as_str()), (silent.id(), "silent"));
    assert_eq!(*e, Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);

    // The silent refresh ends with the PDU timeout: still OFFLINE, and the detail says why.
    let first = tokio::time::timeout(SILENCE * 3, waiting).await??;
    first?;
    assert_eq!(silent.get_properties()?.status, SubSystemStatus::Offline);
    let d = detail(&provider, "silent")?;
    assert!(
        d.starts_with(&format!("{silent_portal}: ")) && d.contains("timeout"),
        "{d}"
    );

    // Its gate is free again: with the array gone, a refresh runs (and is refused by the port).
    array.abort();
    let _ = array.await;
    provider.refresh_subsystem(&silent).await?;
    let d = detail(&provider, "silent")?;
    assert!(d.contains("cannot connect"), "{d}");
    tgtd.stop()?;
    Ok(())
}
