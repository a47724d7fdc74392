//! The SendTargets provider against real peers on loopback (tgtd and istgt, started and stopped by
//! each test on its own ports), asserted through the model's API as a VDS client would see it.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iscsi_client::{ChapCredentials, DiscoveryOptions};
use vds_model::{
    CacheHealth, Hresult, HwProvider, IscsiPortalStatus, Notification, NotificationEvent,
    NotificationTargetType, SubSystem, SubSystemSnapshot, SubSystemStatus, VdsIpAddress,
};
use vds_providers::sendtargets::{
    Progress, SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem,
};
use vds_testpeers::{Istgt, IstgtConfig, Tgtd, TgtdConfig, free_port};

type TestResult = Result<(), Box<dyn Error>>;

fn options() -> SendTargetsOptions {
    SendTargetsOptions {
        discovery: DiscoveryOptions {
            connect_timeout: Duration::from_secs(2),
            pdu_timeout: Duration::from_secs(3),
            overall_timeout: Duration::from_secs(5),
            ..DiscoveryOptions::default()
        },
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

fn provider(subsystems: Vec<SendTargetsSubsystem>) -> Result<HwProvider, Box<dyn Error>> {
    let provider = HwProvider::new(SendTargetsBackend::new(subsystems, options())?);
    provider.initialize()?;
    Ok(provider)
}

/// `(address, status)` of every portal, in enumeration order, through `query_portals`.
fn portals(s: &SubSystem) -> Result<Vec<(String, IscsiPortalStatus)>, Hresult> {
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
fn groups(s: &SubSystem) -> Result<Groups, Hresult> {
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
                .collect::<Result<Vec<_>, Hresult>>()?;
            gs.push((tag, ps));
        }
        out.insert(name, gs);
    }
    Ok(out)
}

fn events_for(batch: &[Notification], id: vds_model::ObjectId) -> Vec<NotificationEvent> {
    batch
        .iter()
        .filter(|n| n.id == id)
        .map(|n| n.event)
        .collect()
}

fn portal_id(s: &SubSystem, addr: &str) -> Result<vds_model::ObjectId, Box<dyn Error>> {
    let p: vds_providers::sendtargets::DiscoveryPortal = addr.parse()?;
    let a: VdsIpAddress = p.vds_address().ok_or("no VDS address")?;
    Ok(s.portal_by_address(&a)?.id())
}

#[test]
fn tgtd_four_discovery_portals_and_105_targets() -> TestResult {
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
    let arrived = provider.reenumerate()?;
    assert!(
        arrived
            .iter()
            .any(|n| n.event == NotificationEvent::SUB_SYSTEM_ARRIVE)
    );
    let s = provider.sub_system_by_key("tgt-4")?;
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

    // A refresh of an unchanged array changes nothing.
    assert_eq!(provider.refresh()?, vec![]);
    tgtd.stop()?;
    Ok(())
}

#[test]
fn deleted_discovery_portal_goes_offline_and_comes_back() -> TestResult {
    let (p1, p2) = (free_port(), free_port());
    let a = format!("127.0.0.1:{p1}");
    let b = format!("127.0.0.1:{p2}");
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![a.clone(), b.clone()],
    })?;
    tgtd.add_targets(3, "iqn.2026-11.test.vds.prov:flap")?;
    let provider = provider(vec![subsystem("flap", &[a.clone(), b.clone()])?])?;
    provider.reenumerate()?;
    let s = provider.sub_system_by_key("flap")?;
    let b_id = portal_id(&s, &b)?;
    assert_eq!(portals(&s)?[1], (b.clone(), IscsiPortalStatus::Online));

    tgtd.delete_portal(&b)?;
    let batch = provider.refresh()?;
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
    let detail = provider.export()[0].detail.clone().unwrap_or_default();
    assert!(detail.starts_with(&format!("{b}: ")), "{detail}");
    // The targets are still reachable through the other portal; nothing departed.
    assert_eq!(s.query_targets()?.into_iter().count(), 3);
    assert!(
        !batch
            .iter()
            .any(|n| n.event == NotificationEvent::PORTAL_DEPART
                || n.event == NotificationEvent::TARGET_DEPART)
    );

    tgtd.add_portal(&b)?;
    let batch = provider.refresh()?;
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

#[test]
fn istgt_portal_groups_and_tags() -> TestResult {
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
    provider.reenumerate()?;

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
#[test]
fn learnt_portals_depart_and_arrive_and_unreachable_keeps_them_offline() -> TestResult {
    let port = free_port();
    let pg1 = format!("127.0.0.1:{port}");
    let v4b = format!("127.0.0.2:{port}");
    let v6 = format!("[::1]:{port}");
    let v4c = format!("127.0.0.3:{port}");
    let istgt = Istgt::start(istgt_config(port, vec![v4b.clone(), v6.clone()]))?;
    let provider = provider(vec![subsystem("moving", std::slice::from_ref(&pg1))?])?;
    provider.reenumerate()?;
    let s = provider.sub_system_by_key("moving")?;
    let v6_id = portal_id(&s, &v6)?;
    let v4b_id = portal_id(&s, &v4b)?;
    istgt.stop()?;

    let istgt = Istgt::start(istgt_config(port, vec![v4b.clone(), v4c.clone()]))?;
    let batch = provider.refresh()?;
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
    let expected_online = vec![
        (pg1.clone(), IscsiPortalStatus::Online),
        (v4b.clone(), IscsiPortalStatus::Online),
        (v4c.clone(), IscsiPortalStatus::Online),
    ];
    assert_eq!(portals(&s)?, expected_online);
    let groups_before = groups(&s)?;
    istgt.stop()?;

    // Nobody listens any more: OFFLINE, everything kept, every portal OFFLINE.
    let batch = provider.refresh()?;
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
    let detail = provider.export()[0].detail.clone().unwrap_or_default();
    assert!(
        detail.starts_with(&format!("{pg1}: cannot connect")),
        "{detail}"
    );
    Ok(())
}

#[test]
fn unreachable_subsystem_is_offline() -> TestResult {
    let port = free_port(); // reserved, and nobody listens on it
    let portal = format!("127.0.0.1:{port}");
    let provider = provider(vec![subsystem("nobody", std::slice::from_ref(&portal))?])?;
    provider.reenumerate()?;
    let s = provider.sub_system_by_key("nobody")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Offline);
    assert_eq!(portals(&s)?, vec![(portal, IscsiPortalStatus::Offline)]);
    assert_eq!(s.query_targets()?.into_iter().count(), 0);
    Ok(())
}

#[test]
fn discovery_chap_right_and_wrong_secret() -> TestResult {
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
    let backend = SendTargetsBackend::new(vec![right, wrong], options())?;
    let debug = format!("{backend:?}");
    assert!(debug.contains("discuser"));
    assert!(!debug.contains("discsecret1234") && !debug.contains("not-the-secret-9"));
    let provider = HwProvider::new(backend);
    provider.initialize()?;
    provider.reenumerate()?;

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
        s.query_portals().err(),
        Some(Hresult::VDS_E_OBJECT_STATUS_FAILED)
    );
    assert_eq!(
        s.query_targets().err(),
        Some(Hresult::VDS_E_OBJECT_STATUS_FAILED)
    );
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

#[test]
fn no_longer_configured_goes_offline_on_refresh_and_departs_on_reenumerate() -> TestResult {
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    tgtd.add_targets(1, "iqn.2026-11.test.vds.prov:cfg")?;
    let portal = tgtd.portals()[0].clone();
    // What an earlier run with subsystem "old" left in the cache.
    let old_backend = SendTargetsBackend::new(
        vec![subsystem("old", std::slice::from_ref(&portal))?],
        options(),
    )?;
    let old = HwProvider::new(old_backend);
    old.initialize()?;
    old.reenumerate()?;
    let cached = old.export();

    let backend = SendTargetsBackend::new(
        vec![subsystem("new", std::slice::from_ref(&portal))?],
        options(),
    )?;
    let (provider, err) = HwProvider::from_cache(backend, cached, CacheHealth::Good);
    assert_eq!(err, None);
    // Refresh finds no new subsystem and reports "old" OFFLINE with its objects.
    provider.refresh()?;
    assert!(provider.sub_system_by_key("new").is_err());
    let s = provider.sub_system_by_key("old")?;
    assert_eq!(s.get_properties()?.status, SubSystemStatus::Offline);
    assert_eq!(portals(&s)?, vec![(portal, IscsiPortalStatus::Offline)]);
    assert_eq!(s.query_targets()?.into_iter().count(), 1);
    assert_eq!(
        provider.export()[0].detail.as_deref(),
        Some("no longer configured")
    );
    // Reenumerate: "old" departs, "new" arrives.
    let batch = provider.reenumerate()?;
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

#[test]
fn many_subsystems_bounded_concurrency_and_progress() -> TestResult {
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
    let provider = HwProvider::new(SendTargetsBackend::new(subsystems, opts)?);
    provider.initialize()?;
    provider.reenumerate()?;
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
    tgtd.stop()?;
    Ok(())
}

#[test]
fn works_when_called_inside_a_tokio_runtime() -> TestResult {
    let tgtd = Tgtd::start(TgtdConfig::single())?;
    tgtd.add_targets(1, "iqn.2026-11.test.vds.prov:rt")?;
    let portal = tgtd.portals()[0].clone();
    let outer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = outer.block_on(async {
        // Built, used and dropped inside the outer runtime: none of it may panic.
        let provider = provider(vec![subsystem("inside", std::slice::from_ref(&portal))?])?;
        provider.reenumerate()?;
        let status = provider
            .sub_system_by_key("inside")?
            .get_properties()?
            .status;
        drop(provider);
        Ok::<_, Box<dyn Error>>(status)
    })?;
    assert_eq!(status, SubSystemStatus::Online);
    tgtd.stop()?;
    Ok(())
}

#[test]
fn configuration_errors_name_the_problem() -> TestResult {
    let p = vec!["127.0.0.1:3260".to_owned()];
    let cases: Vec<(Vec<SendTargetsSubsystem>, usize, &str)> = vec![
        (
            vec![subsystem("a", &p)?, subsystem("a", &p)?],
            1,
            "configured twice",
        ),
        (vec![subsystem("", &p)?], 1, "empty name"),
        (vec![subsystem("a", &[])?], 1, "no discovery portal"),
        (
            vec![subsystem("a", &[p[0].clone(), p[0].clone()])?],
            1,
            "listed twice",
        ),
        (vec![subsystem(&"x".repeat(256), &p)?], 1, "255 bytes"),
        (vec![subsystem("a", &p)?], 0, "concurrency"),
        (
            vec![SendTargetsSubsystem {
                mutual: Some(ChapCredentials::new("t", "target-secret-1")),
                ..subsystem("a", &p)?
            }],
            1,
            "mutual CHAP needs CHAP",
        ),
    ];
    for (subsystems, concurrency, needle) in cases {
        let opts = SendTargetsOptions {
            concurrency,
            ..options()
        };
        let err = SendTargetsBackend::new(subsystems, opts)
            .err()
            .ok_or(needle)?;
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert_eq!(err.hresult(), Hresult::E_INVALIDARG);
    }
    Ok(())
}
