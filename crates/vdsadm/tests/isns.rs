//! vdsadm with an isns provider against a real isnsd (its own config on a free loopback port):
//! `list subsystems`, `list tportals` and `list tpgroups` say what `isnsadm --list` says;
//! `DefaultDiscoveryDomain = 0` shows nothing without `--control-node` and says why, everything
//! with it; `vdsadm watch` prints TARGET_ARRIVE when a target registers, without any refresh,
//! and withdraws its registration on SIGTERM; text from the directory never reaches the terminal
//! raw.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Adm;
use isns_client::{Client, ClientConfig};
use isns_proto::{Attribute, Message, NodeType, Port, Tag};
use vds_testpeers::{Isnsd, IsnsdConfig, free_port, require};

const SOURCE: &str = "iqn.2026-12.test.vds:vdsadm";
const DISK1: &str = "iqn.2024-01.test:disk1";
const DISK2: &str = "iqn.2024-01.test:disk2";

fn start(default_discovery_domain: bool) -> Isnsd {
    require(&["isnsd", "isnsadm"]).unwrap_or_else(|e| panic!("{e}"));
    Isnsd::start(IsnsdConfig {
        default_discovery_domain,
        ..IsnsdConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Registers what isnsadm cannot: `attributes` as one DevAttrReg of entity `eid`, sent by `node`
/// (a source that is not a node of the entity would become one).
fn register(isnsd: &Isnsd, eid: &str, node: &str, attributes: Vec<Attribute>) {
    let mut operating = vec![Attribute::string(Tag::ENTITY_IDENTIFIER, eid)];
    operating.extend(attributes);
    let reg = Message::dev_attr_reg(
        node,
        vec![Attribute::string(Tag::ENTITY_IDENTIFIER, eid)],
        operating,
        false,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let mut c = Client::new(isnsd.address(), ClientConfig::new(node));
        c.request(reg).await.unwrap_or_else(|e| panic!("{e}"));
    });
}

/// The fabric of the issue: entity host1 with target disk1 on two portals in PGT 1 and PGT 2 and
/// target disk2 with a NULL-PGT portal; entity host2 with only an initiator. Returns the port.
fn feed_fabric(isnsd: &Isnsd) -> u16 {
    let port = free_port();
    isnsd
        .register(
            "host1",
            &[
                &format!("target={DISK1},alias=disk1"),
                &format!("portal=127.0.0.1:{port}"),
                "pg,pgt=1",
                &format!("portal=127.0.0.2:{port}"),
                "pg,pgt=2",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    isnsd
        .register("host2", &["initiator=iqn.2024-01.test:init1"])
        .unwrap_or_else(|e| panic!("{e}"));
    let ip3 = IpAddr::from([127, 0, 0, 3]);
    register(
        isnsd,
        "host1",
        DISK2,
        vec![
            Attribute::string(Tag::ISCSI_NAME, DISK2),
            Attribute::u32(Tag::ISCSI_NODE_TYPE, NodeType::TARGET.0),
            Attribute::ip(Tag::PORTAL_IP, ip3),
            Attribute::port(Tag::PORTAL_PORT, Port::tcp(port)),
            Attribute::string(Tag::PG_ISCSI_NAME, DISK2),
            Attribute::ip(Tag::PG_PORTAL_IP, ip3),
            Attribute::port(Tag::PG_PORTAL_PORT, Port::tcp(port)),
            Attribute::nil(Tag::PG_TAG),
        ],
    );
    port
}

fn add_provider(a: &Adm, name: &str, isnsd: &Isnsd, extra: &[&str]) -> common::Out {
    let server = isnsd.address();
    let mut args = vec![
        "provider",
        "add",
        name,
        "--kind",
        "isns",
        "--server",
        &server,
        "--source-name",
        SOURCE,
    ];
    args.extend_from_slice(extra);
    a.run(&args)
}

fn strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| match &r[key] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_lists_say_what_isnsadm_lists() {
    let isnsd = start(true);
    feed_fabric(&isnsd);
    let a = Adm::new();
    add_provider(&a, "fabric", &isnsd, &[]).ok();

    let subsystems = a.run(&["--json", "list", "subsystems"]).ok().json();
    assert_eq!(
        strings(&subsystems, "name"),
        vec!["host1"],
        "initiator-only host2 is no subsystem"
    );
    assert_eq!(subsystems[0]["provider"], "fabric");
    // Nobody listens on the registered portals: registered, but OFFLINE.
    assert_eq!(subsystems[0]["status"], "OFFLINE");

    let theirs = isnsd.lists().unwrap_or_else(|e| panic!("{e}"));
    let portals = a
        .run(&["--json", "list", "tportals", "--subsystem", "host1"])
        .ok()
        .json();
    let ours: BTreeSet<(String, String)> = portals
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["address"].as_str().unwrap_or("").to_string(),
                format!("{}/tcp", p["port"]),
            )
        })
        .collect();
    assert_eq!(ours, theirs.portals);
    assert!(strings(&portals, "status").iter().all(|s| s == "OFFLINE"));

    let targets = a
        .run(&["--json", "list", "targets", "--subsystem", "host1"])
        .ok()
        .json();
    let ours: BTreeSet<(String, String, String)> = targets
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["iscsi_name"].as_str().unwrap_or("").to_string(),
                "Target".to_string(),
                t["friendly_name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let their_targets: BTreeSet<_> = theirs
        .nodes
        .iter()
        .filter(|n| n.1 == "Target")
        .cloned()
        .collect();
    assert_eq!(ours, their_targets);

    let mut ours = BTreeSet::new();
    for t in [DISK1, DISK2] {
        let groups = a
            .run(&[
                "--json",
                "list",
                "tpgroups",
                "--subsystem",
                "host1",
                "--target",
                t,
            ])
            .ok()
            .json();
        for g in groups.as_array().into_iter().flatten() {
            for p in g["portals"].as_array().into_iter().flatten() {
                ours.insert((
                    t.to_string(),
                    p["address"].as_str().unwrap_or("").to_string(),
                    format!("{}/tcp", p["port"]),
                    g["tag"].to_string(),
                ));
            }
        }
    }
    assert_eq!(ours, theirs.portal_groups);
    // The NULL PGT: disk2 has no group holding 127.0.0.3.
    assert!(
        !ours.iter().any(|g| g.0 == DISK2 && g.1 == "127.0.0.3"),
        "{ours:?}"
    );
    let tags: Vec<String> = ours
        .iter()
        .filter(|g| g.0 == DISK1)
        .map(|g| g.3.clone())
        .collect();
    assert!(
        tags.contains(&"1".to_string()) && tags.contains(&"2".to_string()),
        "{tags:?}"
    );

    // The tables say the same.
    let table = a
        .run(&[
            "list",
            "tpgroups",
            "--subsystem",
            "host1",
            "--target",
            DISK1,
        ])
        .ok()
        .stdout;
    assert!(
        table.contains("TPGroup 0") && table.contains("TPGroup 1"),
        "{table}"
    );
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn without_the_default_domain_only_a_control_node_sees_and_the_rest_is_said() {
    let isnsd = start(false);
    feed_fabric(&isnsd);
    let a = Adm::new();
    add_provider(&a, "anonymous", &isnsd, &[]).ok();
    let key = format!("iSNS {}", isnsd.address());
    let rows = a.run(&["--json", "list", "subsystems"]).ok().json();
    assert_eq!(strings(&rows, "name"), vec![key.clone()]);
    assert_eq!(rows[0]["status"], "OFFLINE");
    let detail = a.run(&["detail", "subsystem", &key]).ok().stdout;
    assert!(
        detail.contains("DefaultDiscoveryDomain = 0") && detail.contains("--control-node"),
        "{detail}"
    );

    add_provider(&a, "control", &isnsd, &["--control-node"]).ok();
    let rows = a
        .run(&["--json", "--provider", "control", "list", "subsystems"])
        .ok()
        .json();
    assert_eq!(strings(&rows, "name"), vec!["host1"]);
    let targets = a
        .run(&[
            "--json",
            "--provider",
            "control",
            "list",
            "targets",
            "--subsystem",
            "host1",
        ])
        .ok()
        .json();
    assert_eq!(strings(&targets, "iscsi_name"), vec![DISK1, DISK2]);

    // Settings are checked where they enter.
    let out = add_provider(&a, "bad", &isnsd, &["--scn-listen", "127.0.0.1:1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("--control-node"), "{out:?}");

    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn removing_a_control_node_provider_withdraws_it_from_the_server() {
    let isnsd = start(true);
    feed_fabric(&isnsd);
    let a = Adm::new();
    add_provider(&a, "control", &isnsd, &["--control-node"]).ok();
    let registered = |isnsd: &Isnsd| {
        isnsd
            .lists()
            .unwrap_or_else(|e| panic!("{e}"))
            .nodes
            .iter()
            .any(|n| n.0 == SOURCE)
    };
    assert!(registered(&isnsd), "provider add registered it");
    let out = a.run(&["provider", "remove", "control"]).ok();
    assert!(!out.stderr.contains("warning"), "{out:?}");
    assert!(
        !registered(&isnsd),
        "still registered after provider remove"
    );
    // A server that is gone: the provider is removed all the same, and the report says what is
    // left behind.
    add_provider(&a, "control", &isnsd, &["--control-node"]).ok();
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
    let out = a.run(&["--json", "provider", "remove", "control"]).ok();
    let report = out.json();
    assert!(
        report["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could not be withdrawn")),
        "{report}"
    );
    let providers = a.run(&["--json", "list", "providers"]).ok().json();
    assert!(
        !providers.to_string().contains("\"control\""),
        "{providers}"
    );
}

/// Reads `child`'s stdout and stderr lines into channels, so tests can wait with deadlines.
fn lines(child: &mut Child) -> (mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let pipe = |r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = pipe(Box::new(child.stdout.take().expect("stdout")));
    let err = pipe(Box::new(child.stderr.take().expect("stderr")));
    (out, err)
}

/// The first line of `rx` containing `needle`, within 15 s.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, child: &mut Child) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("no line with {needle:?} within 15 s");
            }
        }
    }
}

#[test]
fn watch_prints_target_arrive_and_deregisters_on_sigterm() {
    let isnsd = start(true);
    feed_fabric(&isnsd);
    let a = Adm::new();
    let scn = format!("127.0.0.1:{}", free_port());
    add_provider(
        &a,
        "fabric",
        &isnsd,
        &["--control-node", "--scn-listen", &scn],
    )
    .ok();
    let mut child = a
        .command(&["-v", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vdsadm watch");
    let (out, err) = lines(&mut child);
    // Its first reenumerate follows its SCN registration.
    wait_line(&err, "reenumerate done", &mut child);
    isnsd
        .register("host1", &["target=iqn.2024-01.test:disk3"])
        .unwrap_or_else(|e| panic!("{e}"));
    let line = wait_line(&out, "TARGET_ARRIVE (126)", &mut child);
    assert!(line.contains("subsystem \"host1\""), "{line}");
    assert!(line.contains("provider \"fabric\""), "{line}");
    // The cache has it: nobody ran refresh.
    let targets = a
        .run(&["--json", "list", "targets", "--subsystem", "host1"])
        .ok()
        .json();
    assert!(strings(&targets, "iscsi_name").contains(&"iqn.2024-01.test:disk3".to_string()));

    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("vdsadm watch did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let nodes = isnsd.lists().unwrap_or_else(|e| panic!("{e}")).nodes;
    assert!(
        !nodes.iter().any(|n| n.0 == SOURCE),
        "still registered: {nodes:?}"
    );
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn watch_with_nothing_to_watch_says_so() {
    let a = Adm::new();
    a.run(&["provider", "add", "lab", "--kind", "sim"]).ok();
    let out = a.run(&["watch"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("no provider has anything to watch"),
        "{out:?}"
    );
}

#[test]
fn text_from_the_directory_is_escaped_for_the_terminal() {
    let isnsd = start(true);
    let eid = "evil\u{1b}]0;pwned\u{7}";
    register(
        &isnsd,
        eid,
        "iqn.2024-01.test:evil",
        vec![
            Attribute::string(Tag::ISCSI_NAME, "iqn.2024-01.test:evil"),
            Attribute::u32(Tag::ISCSI_NODE_TYPE, NodeType::TARGET.0),
            Attribute::string(Tag::ISCSI_ALIAS, "\u{1b}[31mred\u{202e}"),
        ],
    );
    let a = Adm::new();
    add_provider(&a, "fabric", &isnsd, &[]).ok();
    for args in [
        vec!["list", "subsystems"],
        vec!["detail", "subsystem", eid],
        vec!["list", "targets", "--subsystem", eid],
    ] {
        let out = a.run(&args).ok();
        assert!(!out.stdout.contains('\u{1b}'), "{args:?}: {:?}", out.stdout);
        assert!(
            !out.stdout.contains('\u{202e}'),
            "{args:?}: {:?}",
            out.stdout
        );
        assert!(out.stdout.contains("\\x1b"), "{args:?}: {}", out.stdout);
    }
    let targets = a.run(&["list", "targets", "--subsystem", eid]).ok().stdout;
    assert!(targets.contains("\\x1b[31mred\\u{202e}"), "{targets}");
    // JSON keeps the exact strings.
    let json = a
        .run(&["--json", "list", "targets", "--subsystem", eid])
        .ok()
        .json();
    assert_eq!(json[0]["friendly_name"], "\u{1b}[31mred\u{202e}");
    isnsd.stop().unwrap_or_else(|e| panic!("{e}"));
}
