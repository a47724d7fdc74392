//! The client against a real isnsd (open-isns 0.101) fed with isnsadm: `query_all` returns
//! exactly what `isnsadm --list` reports, visibility follows DefaultDiscoveryDomain and the
//! Control node type, a database too large for isnsd's 8 KiB reply comes out complete through
//! the DevGetNext fallback, and SCNs arrive at the listener, answered.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use isns_client::{
    Client, ClientConfig, ControlNode, ControlPortal, ErrorKind, Message, NodeType, Objects, Port,
    ScnBitmap, ScnListener, ScnListenerConfig, Status,
};
use isns_proto::{Attribute, Tag};
use vds_testpeers::{IsnsadmLists, Isnsd, IsnsdConfig, PeerError, parse_isnsadm_list, require};

const CONTROL: &str = "iqn.2026-12.test.vds:control";
const DISK1: &str = "iqn.2024-01.test:disk1";
const DISK2: &str = "iqn.2024-01.test:disk2";
const INIT1: &str = "iqn.2024-01.test:init1";

fn start(default_discovery_domain: bool) -> Isnsd {
    start_with(IsnsdConfig {
        default_discovery_domain,
        ..IsnsdConfig::default()
    })
}

fn start_with(cfg: IsnsdConfig) -> Isnsd {
    if let Err(e) = require(&["isnsd", "isnsadm"]) {
        panic!("{e}");
    }
    match Isnsd::start(cfg) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

fn adm(isnsd: &Isnsd, args: &[&str]) -> String {
    match isnsd.isnsadm(args) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

fn client(isnsd: &Isnsd, source: &str) -> Client {
    let mut cfg = ClientConfig::new(source);
    cfg.exchange_timeout = Duration::from_secs(5);
    Client::new(isnsd.address(), cfg)
}

/// The fabric: entity host1 with target disk1 (portals in PGT 1 and PGT 2) and target disk2 (a
/// portal registered in a NULL-PGT group), entity host2 with only an initiator.
async fn feed_fabric(isnsd: &Isnsd) {
    let out = adm(
        isnsd,
        &[
            "--key",
            "eid=host1",
            "--register",
            "entity=host1",
            "target=iqn.2024-01.test:disk1,alias=disk1",
            "portal=127.0.0.1:3260",
            "pg,pgt=1",
            "portal=127.0.0.2:3260",
            "pg,pgt=2",
        ],
    );
    assert!(out.contains("Successfully registered"), "{out}");
    adm(
        isnsd,
        &[
            "--key",
            "eid=host2",
            "--register",
            "entity=host2",
            "initiator=iqn.2024-01.test:init1",
        ],
    );
    // isnsadm cannot send a NIL PGT ("Missing value for atribute pgt"): register it ourselves.
    let ip3 = IpAddr::from([127, 0, 0, 3]);
    let reg = Message::dev_attr_reg(
        DISK2,
        vec![Attribute::string(Tag::ENTITY_IDENTIFIER, "host1")],
        vec![
            Attribute::string(Tag::ENTITY_IDENTIFIER, "host1"),
            Attribute::string(Tag::ISCSI_NAME, DISK2),
            Attribute::u32(Tag::ISCSI_NODE_TYPE, NodeType::TARGET.0),
            Attribute::ip(Tag::PORTAL_IP, ip3),
            Attribute::port(Tag::PORTAL_PORT, Port::tcp(3260)),
            Attribute::string(Tag::PG_ISCSI_NAME, DISK2),
            Attribute::ip(Tag::PG_PORTAL_IP, ip3),
            Attribute::port(Tag::PG_PORTAL_PORT, Port::tcp(3260)),
            Attribute::nil(Tag::PG_TAG),
        ],
        false,
    );
    let reply = client(isnsd, DISK2).request(reg).await;
    match reply {
        Ok(r) => assert_eq!(r.status, Some(Status::SUCCESSFUL)),
        Err(e) => panic!("{e}"),
    }
}

/// Our reading in the form isnsadm prints it ([`IsnsadmLists`]).
type Picture = IsnsadmLists;

fn type_text(t: Option<NodeType>) -> String {
    match t {
        Some(NodeType::TARGET) => "Target".into(),
        Some(NodeType::INITIATOR) => "Initiator".into(),
        Some(NodeType::CONTROL) => "Control".into(),
        Some(other) => format!("{other:?}"),
        None => "<NIL>".into(),
    }
}

fn picture_of(o: &Objects) -> Picture {
    Picture {
        nodes: o
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    type_text(n.node_type),
                    n.alias.clone().unwrap_or_default(),
                )
            })
            .collect(),
        portals: o
            .portals
            .iter()
            .map(|p| (p.ip.to_string(), p.port.to_string()))
            .collect(),
        portal_groups: o
            .portal_groups
            .iter()
            .map(|g| {
                let tag = g
                    .tag
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "<NIL>".into());
                (g.node.clone(), g.ip.to_string(), g.port.to_string(), tag)
            })
            .collect(),
        entities: o.entities.iter().map(|e| e.eid.clone()).collect(),
    }
}

fn isnsadm_picture(isnsd: &Isnsd) -> Picture {
    isnsd.lists().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_all_equals_isnsadm_lists() {
    let isnsd = start(true);
    feed_fabric(&isnsd).await;
    let mut c = client(&isnsd, "iqn.2026-12.test.vds:unregistered");
    let found = match c.query_all().await {
        Ok(f) => f,
        Err(e) => panic!("{e}\n{}", isnsd.log_tail()),
    };
    assert!(!found.used_fallback);
    assert_eq!(found.requests, 1);
    let ours = picture_of(&found.objects);
    assert_eq!(ours, isnsadm_picture(&isnsd));

    // And what that is, explicitly.
    let names: Vec<&str> = ours.nodes.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(names, vec![DISK1, DISK2, INIT1]);
    let d1 = found
        .objects
        .node(DISK1)
        .map(|n| (n.alias.clone(), n.entity.clone()));
    assert_eq!(d1, Some((Some("disk1".into()), Some("host1".into()))));
    let tags: BTreeSet<Option<u32>> = found
        .objects
        .portal_groups_of(DISK1)
        .map(|g| g.tag)
        .collect();
    assert_eq!(tags, BTreeSet::from([Some(1), Some(2)]));
    assert_eq!(found.objects.entities.len(), 2);
    // isnsd stores a NULL PGT as "no portal group" (neither lists one for disk2 on 127.0.0.3),
    // and gives every other node/portal pair of the entity without an explicit PG the default
    // PGT 1: disk2 on the two portals of disk1, disk1 on disk2's portal.
    let groups_of = |name: &str| -> BTreeSet<(String, Option<u32>)> {
        found
            .objects
            .portal_groups_of(name)
            .map(|g| (g.ip.to_string(), g.tag))
            .collect()
    };
    assert_eq!(
        groups_of(DISK1),
        BTreeSet::from([
            ("127.0.0.1".into(), Some(1)),
            ("127.0.0.2".into(), Some(2)),
            ("127.0.0.3".into(), Some(1)),
        ])
    );
    assert_eq!(
        groups_of(DISK2),
        BTreeSet::from([("127.0.0.1".into(), Some(1)), ("127.0.0.2".into(), Some(1))])
    );
    assert_eq!(found.objects.portals.len(), 3);
    assert!(
        found
            .objects
            .portals
            .iter()
            .all(|p| p.entity.as_deref() == Some("host1"))
    );
    assert_eq!(
        found.objects.node(INIT1).and_then(|n| n.node_type),
        Some(NodeType::INITIATOR)
    );

    // One entity: the same objects as the whole query has for it.
    let host1 = c
        .query_entity("host1")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no entity host1"));
    let mut whole = found.objects.clone();
    whole.entities.retain(|e| e.eid == "host1");
    whole.nodes.retain(|n| n.entity.as_deref() == Some("host1"));
    whole
        .portal_groups
        .retain(|g| g.node == DISK1 || g.node == DISK2);
    assert_eq!(picture_of(&host1), picture_of(&whole));
    assert_eq!(
        c.query_entity("no-such-entity").await.ok(),
        Some(None),
        "an unknown entity is None"
    );
    // One node: it, its entity, the entity's portals.
    let d1 = c
        .query_node(DISK1)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no node {DISK1}"));
    assert_eq!(
        d1.node(DISK1).and_then(|n| n.entity.clone()).as_deref(),
        Some("host1")
    );
    assert_eq!(d1.portals.len(), 3);
    assert_eq!(
        c.query_node("iqn.2024-01.test:nobody").await.ok(),
        Some(None)
    );
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_too_large_for_one_reply_comes_out_whole() {
    let isnsd = start(true);
    // 70 targets on two portals of one entity: the reply to a query keyed on the entity does not
    // fit isnsd's 8 KiB buffer.
    let targets: Vec<String> = (0..70)
        .map(|i| format!("target=iqn.2024-01.test:big-{i:03}"))
        .collect();
    let mut args = vec!["--key", "eid=big", "--register", "entity=big"];
    args.extend(targets.iter().map(String::as_str));
    args.extend(["portal=127.0.0.1:3260", "portal=127.0.0.2:3260"]);
    adm(&isnsd, &args);
    let mut c = client(&isnsd, "iqn.2026-12.test.vds:unregistered");
    let one = c
        .exchange(isns_proto::query::entity_query(
            "iqn.2026-12.test.vds:unregistered",
            "big",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.status, Some(Status::INTERNAL_ERROR));
    let big = c
        .query_entity("big")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no entity big"));
    assert_eq!(big.nodes.len(), 70);
    assert_eq!(big.portals.len(), 2);
    assert_eq!(big.portal_groups.len(), 140);
    assert_eq!(picture_of(&big), isnsadm_picture(&isnsd));
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

fn control_node(listener: Option<SocketAddr>) -> ControlNode {
    let addr = listener.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3205)));
    ControlNode {
        name: CONTROL.into(),
        entity_id: "vds-control".into(),
        portal: Some(ControlPortal {
            ip: addr.ip(),
            port: addr.port(),
            scn_port: listener.map(|a| a.port()),
        }),
        registration_period: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_default_domain_only_a_control_node_sees() {
    let isnsd = start(false);
    feed_fabric(&isnsd).await;
    let mut c = client(&isnsd, CONTROL);
    // Unregistered: nothing (status 0 with no attributes, or 9: both are "empty").
    let found = c.query_all().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(found.objects.is_empty(), "{:?}", found.objects);
    // isnsadm (unregistered too) agrees.
    assert!(parse_isnsadm_list(&adm(&isnsd, &["--list", "nodes"])).is_empty());

    let ctl = control_node(None);
    let reply = c
        .register_control_node(&ctl, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.status, Some(Status::SUCCESSFUL));
    let found = c.query_all().await.unwrap_or_else(|e| panic!("{e}"));
    let p = picture_of(&found.objects);
    let names: BTreeSet<&str> = p.nodes.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(names, BTreeSet::from([CONTROL, DISK1, DISK2, INIT1]));
    assert_eq!(
        p.entities,
        BTreeSet::from(["host1".into(), "host2".into(), "vds-control".into()])
    );
    let d1: BTreeSet<_> = p
        .portal_groups
        .iter()
        .filter(|g| g.0 == DISK1)
        .cloned()
        .collect();
    assert_eq!(
        d1,
        BTreeSet::from([
            (
                DISK1.into(),
                "127.0.0.1".into(),
                "3260/tcp".into(),
                "1".into()
            ),
            (
                DISK1.into(),
                "127.0.0.2".into(),
                "3260/tcp".into(),
                "2".into()
            ),
            (
                DISK1.into(),
                "127.0.0.3".into(),
                "3260/tcp".into(),
                "1".into()
            ),
        ])
    );
    assert_eq!(
        found.objects.node(CONTROL).and_then(|n| n.node_type),
        Some(NodeType::CONTROL)
    );
    // But a query keyed on one entity shows a Control node nothing of it (only the echoed key):
    // the provider reads one entity from the whole query when it is a Control node.
    assert_eq!(c.query_entity("host1").await.ok(), Some(None));

    c.deregister(&ctl).await.unwrap_or_else(|e| panic!("{e}"));
    let found = c.query_all().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        found.objects.is_empty(),
        "deregistered: back to seeing nothing"
    );
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_database_comes_out_complete_through_the_fallback() {
    let isnsd = start(true);
    for i in 0..150u32 {
        let eid = format!("eid=bulk{i:03}");
        let entity = format!("entity=bulk{i:03}");
        let target = format!("target=iqn.2024-01.test:bulk-target-{i:03},alias=bulk{i:03}");
        let portal = format!("portal=127.0.0.1:{}", 4000 + i);
        adm(
            &isnsd,
            &[
                "--key",
                &eid,
                "--register",
                &entity,
                &target,
                &portal,
                "pg,pgt=1",
            ],
        );
    }
    let mut c = client(&isnsd, "iqn.2026-12.test.vds:unregistered");
    // The one-shot query alone fails with status 11 (isnsd's 8 KiB reply buffer).
    let one = c
        .exchange(isns_proto::query::one_shot_query(
            "iqn.2026-12.test.vds:unregistered",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.status, Some(Status::INTERNAL_ERROR));

    let found = c.query_all().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(found.used_fallback);
    // One-shot, 150 + 1 DevGetNext, 150 per-node queries.
    assert_eq!(found.requests, 1 + 151 + 150);
    assert_eq!(found.objects.nodes.len(), 150);
    assert_eq!(found.objects.entities.len(), 150);
    assert_eq!(found.objects.portals.len(), 150);
    assert_eq!(found.objects.portal_groups.len(), 150);
    assert!(
        found
            .objects
            .nodes
            .iter()
            .all(|n| n.entity.is_some() && n.alias.is_some())
    );
    assert_eq!(picture_of(&found.objects), isnsadm_picture(&isnsd));
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scn_of_a_new_target_arrives_answered() {
    let isnsd = start_with(IsnsdConfig {
        debug: true,
        ..IsnsdConfig::default()
    });
    let mut listener = ScnListener::bind(ScnListenerConfig::new(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ctl = control_node(Some(listener.local_addr()));
    let mut c = client(&isnsd, CONTROL);

    // SCNReg before registering: the node is unknown.
    let e = c.scn_register(&ctl, ScnBitmap::ALL_EVENTS).await.err();
    assert!(
        matches!(e.as_ref().map(|e| e.kind()), Some(ErrorKind::Status(s)) if *s == Status::SOURCE_UNKNOWN || *s == Status::SCN_REGISTRATION_REJECTED),
        "{e:?}"
    );
    c.register_control_node(&ctl, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.scn_register(&ctl, ScnBitmap::ALL_EVENTS)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // A registered Control node is shown nothing of an entity through a query keyed on it (only
    // the echoed key), under DefaultDiscoveryDomain = 1 as under 0, although an unregistered
    // source is shown it whole: the provider reads one entity from the whole query instead.
    adm(
        &isnsd,
        &[
            "--key",
            "eid=host6",
            "--register",
            "entity=host6",
            "target=iqn.2024-01.test:six",
            "portal=127.0.0.6:3260",
        ],
    );
    assert_eq!(c.query_entity("host6").await.ok(), Some(None));
    let mut anonymous = client(&isnsd, "iqn.2026-12.test.vds:unregistered");
    let host6 = anonymous
        .query_entity("host6")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no entity host6"));
    assert_eq!(
        host6
            .node("iqn.2024-01.test:six")
            .and_then(|n| n.entity.clone()),
        Some("host6".to_string())
    );
    assert_eq!((host6.portals.len(), host6.portal_groups.len()), (1, 1));
    // A query keyed on a node shows it to a Control node.
    let six = c
        .query_node("iqn.2024-01.test:six")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(six.is_some_and(|o| o.entities.iter().any(|e| e.eid == "host6")));

    const NEW: &str = "iqn.2024-01.test:scn-new";
    adm(
        &isnsd,
        &[
            "--key",
            "eid=host7",
            "--register",
            "entity=host7",
            &format!("target={NEW}"),
        ],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let event = loop {
        let n = tokio::time::timeout_at(deadline, listener.recv())
            .await
            .unwrap_or_else(|_| panic!("no SCN naming {NEW} within 10 s\n{}", isnsd.log_tail()));
        let Some(n) = n else {
            panic!("listener stopped")
        };
        assert_eq!(n.scn.destination, CONTROL);
        assert!(n.peer.ip().is_loopback());
        if let Some(ev) = n.scn.events.iter().find(|e| e.node == NEW) {
            break ev.clone();
        }
    };
    assert!(event.bitmap.contains(ScnBitmap::OBJECT_ADDED), "{event:?}");
    assert!(listener.stats().answered >= 1);
    assert_eq!(listener.stats().rejected, 0);

    // Answered, so isnsd marks it delivered (its debug log says so) and does not send it again.
    let acknowledged = format!("SCN: {CONTROL} acknowledged notification");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !isnsd.log_tail().contains(&acknowledged) {
        assert!(
            std::time::Instant::now() < deadline,
            "isnsd did not log {acknowledged:?}:\n{}",
            isnsd.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A node removed: SCN with the removed bit.
    adm(&isnsd, &["--deregister", &format!("iscsi-name={NEW}")]);
    let removed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(n) = listener.recv().await {
                if let Some(e) = n.scn.events.iter().find(|e| e.node == NEW) {
                    return e.clone();
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no SCN for the removal\n{}", isnsd.log_tail()));
    assert!(
        removed.bitmap.contains(ScnBitmap::OBJECT_REMOVED),
        "{removed:?}"
    );

    c.scn_deregister(&ctl)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.deregister(&ctl).await.unwrap_or_else(|e| panic!("{e}"));
    let nodes = parse_isnsadm_list(&adm(&isnsd, &["--list", "nodes"]));
    assert!(!nodes.iter().any(|n| n.contains(&(0x20, CONTROL.into()))));
    isnsd.stop().unwrap_or_else(|e: PeerError| panic!("{e}"));
}
