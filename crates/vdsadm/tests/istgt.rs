//! Against istgt, the peer with real portal groups: `list tpgroups` shows tags 1 and 2.

mod common;

use std::collections::BTreeMap;

use common::Adm;
use vds_testpeers::{Istgt, IstgtConfig, IstgtTarget, free_port, require};

#[test]
fn tpgroups_show_tags_1_and_2() {
    if let Err(e) = require(&["istgt"]) {
        panic!("{e} (run scripts/install-deps.sh)");
    }
    let port = free_port();
    let pg1 = vec![format!("127.0.0.1:{port}")];
    let pg2 = vec![format!("127.0.0.2:{port}"), format!("[::1]:{port}")];
    let cfg = IstgtConfig {
        portal_groups: BTreeMap::from([(1, pg1.clone()), (2, pg2.clone())]),
        targets: vec![
            IstgtTarget {
                name: "disk1".into(),
                portal_groups: vec![1],
            },
            IstgtTarget {
                name: "iqn.2026-11.test.vds:istgt-d3".into(),
                portal_groups: vec![1, 2],
            },
        ],
        ..IstgtConfig::default()
    };
    let istgt = Istgt::start(cfg).expect("start istgt");
    let adm = Adm::new();
    adm.run(&["subsystem", "add", "multi", "--portal", &pg1[0]])
        .ok();

    let d3 = "iqn.2026-11.test.vds:istgt-d3";
    let j = adm
        .run(&[
            "--json",
            "list",
            "tpgroups",
            "--subsystem",
            "multi",
            "--target",
            d3,
        ])
        .ok()
        .json();
    let groups = j.as_array().expect("array");
    let tags: Vec<u64> = groups
        .iter()
        .map(|g| g["tag"].as_u64().expect("tag"))
        .collect();
    assert_eq!(tags, [1, 2]);
    let members = |g: &serde_json::Value| -> Vec<String> {
        g["portals"]
            .as_array()
            .expect("portals")
            .iter()
            .map(|p| format!("{}:{}", p["address"].as_str().expect("a"), p["port"]))
            .collect()
    };
    assert_eq!(members(&groups[0]), [format!("127.0.0.1:{port}")]);
    assert_eq!(
        members(&groups[1]),
        [format!("127.0.0.2:{port}"), format!("::1:{port}")]
    );

    let table = adm
        .run(&["list", "tpgroups", "--subsystem", "multi", "--target", d3])
        .ok();
    let rows: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table:?}");
    assert_eq!(rows[0][..3], ["TPGroup", "0", "1"]);
    assert_eq!(rows[1][..3], ["TPGroup", "1", "2"]);
    assert!(table.stdout.contains(&format!("[::1]:{port}")), "{table:?}");

    // disk1 is only in group 1.
    let disk1 = istgt.target_iqn("disk1");
    let j = adm
        .run(&[
            "--json",
            "list",
            "tpgroups",
            "--subsystem",
            "multi",
            "--target",
            &disk1,
        ])
        .ok()
        .json();
    assert_eq!(j.as_array().map(Vec::len), Some(1));
    assert_eq!(j[0]["tag"], 1);

    // discover shows the tags as the target sent them.
    let found = common::run_bare(
        &adm.dir.path().join("none"),
        &["--json", "discover", &pg1[0]],
    )
    .ok()
    .json();
    let d3_row = found
        .as_array()
        .expect("array")
        .iter()
        .find(|t| t["name"] == d3)
        .expect("d3 discovered");
    let tags: Vec<u64> = d3_row["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a["tag"].as_u64().expect("tag"))
        .collect();
    assert_eq!(tags, [1, 2, 2]);
    istgt.stop().expect("stop istgt");
}
