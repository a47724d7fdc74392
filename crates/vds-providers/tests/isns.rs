//! The iSNS provider against a real isnsd (open-isns 0.101, its own config on a free loopback port)
//! fed with isnsadm, a real tgtd registering itself, and hostile servers written here: the
//! directory becomes subsystems exactly as isnsadm lists it (beyond isnsd's 8 KiB replies too),
//! portal status comes from probes, visibility is said and not mistaken for an empty fabric,
//! departures and arrivals follow the directory, and every misbehaving server gives a clear error
//! within its deadline.

use std::collections::BTreeSet;
use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isns_proto::wire::pdu_len;
use isns_proto::{Attribute, Message, Status, Tag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vds_model::{
    Health, Hresult, HwProvider, IscsiPortalStatus, NotificationEvent, ObjectId, SubSystemSnapshot,
    SubSystemStatus, VdsIpAddress,
};
use vds_providers::isns::{IsnsBackend, IsnsOptions, IsnsSettings};
use vds_testpeers::{Isnsd, IsnsdConfig, Tgtd, TgtdConfig, free_port, require};

type TestResult = Result<(), Box<dyn Error>>;

const SOURCE: &str = "iqn.2026-12.test.vds:provider";
const PROVIDER: &str = "fabric";

fn start(cfg: IsnsdConfig) -> Result<Isnsd, Box<dyn Error>> {
    require(&["isnsd", "isnsadm"])?;
    Ok(Isnsd::start(cfg)?)
}

fn options() -> IsnsOptions {
    let mut o = IsnsOptions::for_source(SOURCE);
    o.connect_timeout = Duration::from_secs(2);
    o.exchange_timeout = Duration::from_secs(3);
    o.discovery.connect_timeout = Duration::from_secs(2);
    o
}

fn provider_with(
    server: &str,
    control_node: bool,
    options: IsnsOptions,
) -> Result<HwProvider, Box<dyn Error>> {
    let settings = IsnsSettings {
        server: server.parse()?,
        source_name: SOURCE.into(),
        control_node,
        scn_listen: None,
    };
    let p = HwProvider::new(IsnsBackend::new(PROVIDER, settings, options));
    p.initialize()?;
    Ok(p)
}

fn provider(isnsd: &Isnsd, control_node: bool) -> Result<HwProvider, Box<dyn Error>> {
    provider_with(&isnsd.address(), control_node, options())
}

fn keys(p: &HwProvider) -> Vec<String> {
    p.export().into_iter().map(|s| s.key).collect()
}

fn subsystem(p: &HwProvider, key: &str) -> Result<SubSystemSnapshot, Box<dyn Error>> {
    Ok(p.export()
        .into_iter()
        .find(|s| s.key == key)
        .ok_or_else(|| format!("no subsystem {key:?} in {:?}", keys(p)))?)
}

fn events(batch: &[vds_model::Notification], event: NotificationEvent) -> usize {
    batch.iter().filter(|n| n.event == event).count()
}

/// Waits (at most 15 s) until isnsadm lists node `name`, or no longer does. An isnsadm run that
/// fails meanwhile (isnsd, single threaded, may be busy delivering SCNs to a tgtd that just
/// stopped, and isnsadm gives up after a few seconds) is tried again.
fn wait_node(isnsd: &Isnsd, name: &str, present: bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_error = None;
    loop {
        match isnsd.lists() {
            Ok(l) if l.nodes.iter().any(|n| n.0 == name) == present => return Ok(()),
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            return Err(format!(
                "node {name} {} within 15 s (last isnsadm error: {last_error:?})\nisnsd: {}",
                if present {
                    "not registered"
                } else {
                    "still registered"
                },
                isnsd.log_tail()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Our reading in isnsadm's terms: portals (ip, "port/tcp"), target nodes (name, "Target",
/// alias), portal groups (node, ip, "port/tcp", tag).
type Reading = (
    BTreeSet<(String, String)>,
    BTreeSet<(String, String, String)>,
    BTreeSet<(String, String, String, String)>,
);

fn reading(subsystems: &[SubSystemSnapshot]) -> Reading {
    let ap = |a: &VdsIpAddress| (a.host(), format!("{}/tcp", a.port()));
    let mut r: Reading = Default::default();
    for s in subsystems {
        r.0.extend(s.portals.iter().map(|p| ap(&p.address)));
        for t in &s.targets {
            r.1.insert((
                t.iscsi_name.clone(),
                "Target".into(),
                t.friendly_name.clone(),
            ));
            for g in &t.portal_groups {
                for a in &g.portals {
                    let (ip, port) = ap(a);
                    r.2.insert((t.iscsi_name.clone(), ip, port, g.tag.to_string()));
                }
            }
        }
    }
    r
}

fn isnsadm_reading(isnsd: &Isnsd) -> Result<Reading, Box<dyn Error>> {
    let l = isnsd.lists()?;
    let targets = l.nodes.into_iter().filter(|n| n.1 == "Target").collect();
    Ok((l.portals, targets, l.portal_groups))
}

/// 150 entities: far beyond what one reply of isnsd holds (8 KiB), so the directory is read with
/// the DevGetNext walk, transparently; the subsystems are every entity, with what isnsadm lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_and_fifty_entities_come_out_complete_and_identical() -> TestResult {
    let isnsd = start(IsnsdConfig::default())?;
    let base = u32::from(free_port());
    for i in 0..150u32 {
        isnsd.register(
            &format!("bulk{i:03}"),
            &[
                &format!("target=iqn.2024-01.test:bulk-{i:03},alias=bulk{i:03}"),
                &format!("portal=127.0.0.1:{}", base + i),
                "pg,pgt=1",
            ],
        )?;
    }
    let p = provider(&isnsd, false)?;
    let arrived = p.reenumerate().await?;
    assert_eq!(events(&arrived, NotificationEvent::SUB_SYSTEM_ARRIVE), 150);
    let subs = p.export();
    assert_eq!(subs.len(), 150);
    let want: Vec<String> = (0..150).map(|i| format!("bulk{i:03}")).collect();
    assert_eq!(keys(&p), want, "one subsystem per entity, in EID order");
    assert_eq!(reading(&subs), isnsadm_reading(&isnsd)?);
    for s in &subs {
        assert_eq!((s.portals.len(), s.targets.len()), (1, 1), "{s:?}");
        assert_eq!(
            s.targets[0].friendly_name, s.key,
            "the alias is the friendly name"
        );
    }
    // Nothing changed: a second reenumerate and a refresh of everything raise nothing.
    assert!(p.reenumerate().await?.is_empty());
    let report = p.refresh().await?;
    assert_eq!((report.refreshed, report.failures.len()), (150, 0));
    assert!(
        report.notifications.is_empty(),
        "{:?}",
        report.notifications
    );
    isnsd.stop()?;
    Ok(())
}

/// tgtd registers itself (one portal): a subsystem keyed by its EID whose portal probes ONLINE;
/// entities whose portals do not answer are OFFLINE, and one with both kinds PARTIALLY_MANAGED.
/// After tgtd deregisters (its target deleted), a refresh says the entity is gone and the next
/// reenumerate reports the departure; registered again, it arrives again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tgtd_registers_itself_probes_online_and_departs() -> TestResult {
    require(&["tgtd", "tgtadm"])?;
    let isnsd = start(IsnsdConfig::default())?;
    let port = free_port();
    let live = format!("127.0.0.1:{port}");
    let dead = format!("127.0.0.1:{}", free_port());
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![live.clone()],
    })?;
    const T1: &str = "iqn.2026-12.test.vds:isns-tgtd";
    tgtd.add_target(1, T1)?;
    let isns_on = || -> TestResult {
        for (name, value) in [
            ("iSNSServerIP", "127.0.0.1".to_string()),
            ("iSNSServerPort", isnsd.port().to_string()),
            ("iSNS", "On".to_string()),
        ] {
            tgtd.tgtadm(&[
                "--op", "update", "--mode", "sys", "--name", name, "--value", &value,
            ])?;
        }
        Ok(())
    };
    isns_on()?;
    wait_node(&isnsd, T1, true)?;
    isnsd.register(
        "deaf",
        &["target=iqn.2024-01.test:deaf", &format!("portal={dead}")],
    )?;
    // A portal belongs to one entity: "mixed" gets one of another tgtd (not registered) and
    // one nobody listens on.
    let other = format!("127.0.0.2:{}", free_port());
    let other_tgtd = Tgtd::start(TgtdConfig {
        portals: vec![other.clone()],
    })?;
    // (tgtd closes discovery logins while it has no target.)
    other_tgtd.add_target(1, "iqn.2026-12.test.vds:other")?;
    isnsd.register(
        "mixed",
        &[
            "target=iqn.2024-01.test:mixed",
            &format!("portal={other}"),
            &format!("portal=127.0.0.3:{}", free_port()),
        ],
    )?;
    let p = provider(&isnsd, false)?;
    p.reenumerate().await?;
    // tgt's EID is the local address of its iSNS connection.
    let t = subsystem(&p, "127.0.0.1")?;
    assert_eq!(
        (t.status, t.health),
        (SubSystemStatus::Online, Health::Healthy),
        "{t:?}"
    );
    assert_eq!(t.portals.len(), 1);
    assert_eq!(t.portals[0].address.to_string(), live);
    assert_eq!(t.portals[0].status, IscsiPortalStatus::Online);
    assert_eq!(t.targets.len(), 1);
    assert_eq!(t.targets[0].iscsi_name, T1);
    // isnsd gives the portal and node tgt registered without a group the default PGT 1.
    assert_eq!(t.targets[0].portal_groups.len(), 1);
    assert_eq!(t.targets[0].portal_groups[0].tag, 1);

    let deaf = subsystem(&p, "deaf")?;
    assert_eq!(deaf.status, SubSystemStatus::Offline, "{deaf:?}");
    assert_eq!(deaf.portals[0].status, IscsiPortalStatus::Offline);
    let why = deaf.detail.unwrap_or_default();
    assert!(why.contains(&dead) && why.contains("refused"), "{why}");
    let mixed = subsystem(&p, "mixed")?;
    assert_eq!(
        (mixed.status, mixed.health),
        (SubSystemStatus::PartiallyManaged, Health::Degraded),
        "{mixed:?}"
    );

    // tgtd deregisters (its only target deleted: tgt removes the node and, being the last, the
    // entity): a refresh says so (the subsystem stays until reenumerate), then it departs. (Not
    // `iSNS Off`: tgt closes its connection right after writing that DevDereg, and now and then
    // isnsd loses it to the reset.)
    tgtd.delete_target(1)?;
    wait_node(&isnsd, T1, false)?;
    let report = p.refresh().await?;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let gone = subsystem(&p, "127.0.0.1")?;
    assert_eq!(gone.status, SubSystemStatus::Offline);
    assert!(
        gone.detail
            .as_deref()
            .is_some_and(|d| d.contains("no longer has entity")),
        "{gone:?}"
    );
    let id = ObjectId::provider(PROVIDER).child("subsystem", "127.0.0.1");
    let batch = p.reenumerate().await?;
    assert!(
        batch
            .iter()
            .any(|n| n.id == id && n.event == NotificationEvent::SUB_SYSTEM_DEPART),
        "{batch:?}"
    );
    assert_eq!(keys(&p), vec!["deaf".to_string(), "mixed".to_string()]);

    // Its target back, it arrives again, its portal probed ONLINE.
    tgtd.add_target(1, T1)?;
    wait_node(&isnsd, T1, true)?;
    let batch = p.reenumerate().await?;
    assert_eq!(
        events(&batch, NotificationEvent::SUB_SYSTEM_ARRIVE),
        1,
        "{batch:?}"
    );
    assert_eq!(
        subsystem(&p, "127.0.0.1")?.portals[0].status,
        IscsiPortalStatus::Online
    );
    // isnsd first: a tgtd registered with it that exits while isnsd runs has been seen to leave
    // open-isns 0.101's event loop accepting no connection any more.
    isnsd.stop()?;
    other_tgtd.stop()?;
    tgtd.stop()?;
    Ok(())
}

/// DefaultDiscoveryDomain = 0: an unregistered source sees nothing, and the provider says why in
/// the one subsystem it reports instead of an empty, healthy fabric; as a Control node it sees
/// every entity (but not its own, which has no target), and reads one entity for a refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_is_said_and_a_control_node_sees_everything() -> TestResult {
    let isnsd = start(IsnsdConfig {
        default_discovery_domain: false,
        ..IsnsdConfig::default()
    })?;
    let port = free_port().to_string();
    isnsd.register(
        "host1",
        &[
            "target=iqn.2024-01.test:disk1,alias=disk1",
            &format!("portal=127.0.0.1:{port}"),
            "pg,pgt=1",
            &format!("portal=127.0.0.2:{port}"),
            "pg,pgt=2",
        ],
    )?;
    isnsd.register("host2", &["initiator=iqn.2024-01.test:init1"])?;

    let anonymous = provider(&isnsd, false)?;
    anonymous.reenumerate().await?;
    let key = format!("iSNS {}", isnsd.address());
    assert_eq!(keys(&anonymous), vec![key.clone()]);
    let hidden = subsystem(&anonymous, &key)?;
    assert_eq!(hidden.status, SubSystemStatus::Offline);
    assert!((hidden.portals.is_empty() && hidden.targets.is_empty()));
    let why = hidden.detail.unwrap_or_default();
    assert!(
        why.contains("DefaultDiscoveryDomain = 0") && why.contains("--control-node"),
        "{why}"
    );
    // A refresh says it again (the directory still shows nothing).
    anonymous.refresh().await?;
    assert!(
        subsystem(&anonymous, &key)?
            .detail
            .is_some_and(|d| d.contains("--control-node"))
    );

    let control = provider(&isnsd, true)?;
    control.reenumerate().await?;
    assert_eq!(keys(&control), vec!["host1".to_string()]);
    let host1 = subsystem(&control, "host1")?;
    let tags: Vec<u16> = host1.targets[0]
        .portal_groups
        .iter()
        .map(|g| g.tag)
        .collect();
    assert_eq!(tags, vec![1, 2]);

    // A refresh of one entity, as a Control node (to which isnsd shows nothing through a query
    // keyed on the entity), sees a new target and a new portal.
    isnsd.register(
        "host1",
        &[
            "target=iqn.2024-01.test:disk2",
            &format!("portal=127.0.0.3:{port}"),
        ],
    )?;
    let report = control.refresh().await?;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        events(&report.notifications, NotificationEvent::TARGET_ARRIVE),
        1
    );
    assert_eq!(
        events(&report.notifications, NotificationEvent::PORTAL_ARRIVE),
        1
    );
    isnsd.stop()?;
    Ok(())
}

/// Without a Control node, a refresh reads one entity with a query keyed on it: a target added
/// arrives, a target removed departs, and an entity gone is OFFLINE until reenumerate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_follows_one_entity() -> TestResult {
    let isnsd = start(IsnsdConfig::default())?;
    let portal = format!("portal=127.0.0.1:{}", free_port());
    isnsd.register("e1", &["target=iqn.2024-01.test:a", &portal])?;
    let p = provider(&isnsd, false)?;
    p.reenumerate().await?;
    isnsd.register("e1", &["target=iqn.2024-01.test:b,alias=bee"])?;
    let report = p.refresh().await?;
    assert_eq!(
        events(&report.notifications, NotificationEvent::TARGET_ARRIVE),
        1
    );
    assert_eq!(subsystem(&p, "e1")?.targets[1].friendly_name, "bee");
    isnsd.isnsadm(&["--deregister", "iscsi-name=iqn.2024-01.test:a"])?;
    let report = p.refresh().await?;
    assert_eq!(
        events(&report.notifications, NotificationEvent::TARGET_DEPART),
        1
    );
    isnsd.isnsadm(&["--deregister", "eid=e1"])?;
    p.refresh().await?;
    let e1 = subsystem(&p, "e1")?;
    assert_eq!(e1.status, SubSystemStatus::Offline);
    assert!(
        e1.portals
            .iter()
            .all(|q| q.status == IscsiPortalStatus::Offline)
    );
    let batch = p.reenumerate().await?;
    assert_eq!(events(&batch, NotificationEvent::SUB_SYSTEM_DEPART), 1);
    // Nothing is visible any more, which to an unregistered source may also be hiding: said so.
    assert_eq!(keys(&p), vec![format!("iSNS {}", isnsd.address())]);
    isnsd.stop()?;
    Ok(())
}

/// `Security = 1`: isnsd ignores unauthenticated requests without answering. The provider's error
/// says that iSNS authentication is not supported, within the exchange deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_server_is_authentication_not_supported() -> TestResult {
    let isnsd = start(IsnsdConfig {
        security: true,
        ..IsnsdConfig::default()
    })?;
    let mut o = options();
    o.exchange_timeout = Duration::from_secs(1);
    for control in [false, true] {
        let p = provider_with(&isnsd.address(), control, o.clone())?;
        let started = Instant::now();
        let e = p
            .reenumerate()
            .await
            .err()
            .ok_or("a secure server answered")?;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(e.code(), Hresult::from_win32(10060), "{e}");
        let text = e.to_string();
        assert!(text.contains("authentication is not supported"), "{text}");
        assert!(text.contains(&isnsd.address()), "{text}");
    }
    isnsd.stop()?;
    Ok(())
}

/// How a scripted server answers each request.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// A status-0 reply whose attribute header stops after 4 of its 8 bytes.
    TruncatedTlv,
    /// An attribute claiming 100 bytes where 4 are left.
    LengthPastPdu,
    /// A header announcing the largest payload, then a million NIL attributes.
    MillionAttributes,
    /// A good reply with another transaction id.
    WrongTransactionId,
    /// Nothing at all.
    Silence,
    /// Status 8, source unauthorized.
    Unauthorized,
}

/// A server on 127.0.0.1 that reads each request and answers it by `script`.
async fn scripted(script: Script) -> Result<SocketAddr, Box<dyn Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 12];
                while s.read_exact(&mut head).await.is_ok() {
                    let Some(total) = pdu_len(&head) else { return };
                    let mut pdu = head.to_vec();
                    pdu.resize(total, 0);
                    if s.read_exact(&mut pdu[12..]).await.is_err() {
                        return;
                    }
                    let Ok(request) = Message::parse_bytes(&pdu) else {
                        return;
                    };
                    let reply = |status, attrs| Message::response_to(&request, status, attrs);
                    let bytes = match script {
                        Script::Silence => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        Script::Unauthorized => reply(Status::SOURCE_UNAUTHORIZED, vec![]).to_vec(),
                        Script::WrongTransactionId => {
                            let mut r = reply(Status::SUCCESSFUL, vec![]);
                            r.transaction_id = r.transaction_id.wrapping_add(1);
                            r.to_vec()
                        }
                        Script::TruncatedTlv | Script::LengthPastPdu => {
                            // A valid reply with one name, then cut or lied about.
                            let r = reply(
                                Status::SUCCESSFUL,
                                vec![Attribute::string(Tag::ISCSI_NAME, "iqn")],
                            );
                            r.to_vec().map(|mut b| {
                                if matches!(script, Script::TruncatedTlv) {
                                    b.truncate(20);
                                    b[4..6].copy_from_slice(&8u16.to_be_bytes());
                                } else {
                                    b[23] = 100;
                                }
                                b
                            })
                        }
                        Script::MillionAttributes => {
                            let mut b = reply(Status::SUCCESSFUL, vec![])
                                .to_vec()
                                .unwrap_or_default();
                            b[4..6].copy_from_slice(&0xfffcu16.to_be_bytes());
                            let _ = s.write_all(&b).await;
                            let nil33 = [0u8, 0, 0, 0x21, 0, 0, 0, 0].repeat(8192);
                            for _ in 0..(1_000_000 / 8192 + 1) {
                                if s.write_all(&nil33).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                    };
                    let Ok(bytes) = bytes else { return };
                    if s.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Hostile servers: each reenumerate fails with a clear error naming the server, of the
/// documented code, within the exchange deadline; a refresh of a subsystem the provider knew
/// still probes its portals and says why the directory could not be read. Nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_give_clear_errors_within_their_deadlines() -> TestResult {
    let exchange = Duration::from_millis(800);
    let bad_data = Hresult::VDS_E_BAD_PROVIDER_DATA;
    for (script, code, needle) in [
        (Script::TruncatedTlv, bad_data, "malformed reply"),
        (Script::LengthPastPdu, bad_data, "claims 100 bytes"),
        (Script::MillionAttributes, bad_data, "4096"),
        (Script::WrongTransactionId, bad_data, "transaction id"),
        (
            Script::Silence,
            Hresult::from_win32(10060),
            "authentication is not supported",
        ),
        (
            Script::Unauthorized,
            Hresult::VDS_E_NOT_SUPPORTED,
            "authentication is not supported",
        ),
    ] {
        let addr = scripted(script).await?;
        let mut o = options();
        o.exchange_timeout = exchange;
        let p = provider_with(&addr.to_string(), false, o)?;
        let started = Instant::now();
        let e = p
            .reenumerate()
            .await
            .err()
            .ok_or(format!("{script:?}: no error"))?;
        let took = started.elapsed();
        assert!(took < exchange * 2, "{script:?}: {took:?}");
        assert_eq!(e.code(), code, "{script:?}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("iSNS server {addr}")),
            "{script:?}: {text}"
        );
        assert!(text.contains(needle), "{script:?}: {text}");

        // A subsystem known from before: its portal is probed, the detail says why the directory
        // was not read, the refresh itself succeeds.
        let mut known = SubSystemSnapshot::new("host1", SubSystemStatus::Online);
        known.portals.push(vds_model::PortalSnapshot {
            address: VdsIpAddress::Ipv4 {
                addr: [127, 0, 0, 1].into(),
                port: u32::from(free_port()),
            },
            status: IscsiPortalStatus::Online,
        });
        let (p, _) = HwProvider::from_cache(
            IsnsBackend::new(PROVIDER, p_settings(&addr)?, {
                let mut o = options();
                o.exchange_timeout = exchange;
                o
            }),
            vec![known],
            vds_model::CacheHealth::Good,
        );
        p.initialize()?;
        let report = p.refresh().await?;
        assert!(
            report.failures.is_empty(),
            "{script:?}: {:?}",
            report.failures
        );
        let s = subsystem(&p, "host1")?;
        assert_eq!(s.status, SubSystemStatus::Offline, "{script:?}");
        let detail = s.detail.unwrap_or_default();
        assert!(
            detail.contains(needle) && detail.contains("last the directory gave"),
            "{detail}"
        );
    }
    Ok(())
}

fn p_settings(addr: &SocketAddr) -> Result<IsnsSettings, Box<dyn Error>> {
    Ok(IsnsSettings {
        server: addr.to_string().parse()?,
        source_name: SOURCE.into(),
        control_node: false,
        scn_listen: None,
    })
}
