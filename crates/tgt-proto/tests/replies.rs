//! Golden replies: real tgtd 1.0.85 answers captured by
//! `cargo run -p tgt-client --example capture_replies -- crates/tgt-proto/tests/vectors/replies`
//! (header and payload exactly as received). Each parses whole, with the values the capture set up.

use std::path::Path;

use tgt_proto::show::{
    State, TargetAccount, parse_accounts, parse_lld, parse_portals, parse_system, parse_targets,
    render_targets,
};
use tgt_proto::{AccountDirection, ErrorCode, Reply, reply_text};

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/replies")
        .join(format!("{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(name: &str) -> String {
    let bytes = read(name);
    let reply = Reply::parse(&bytes).unwrap();
    assert_eq!(reply.header.code, ErrorCode::Success, "{name}");
    if !reply.payload.is_empty() {
        assert_eq!(reply.payload.last(), Some(&0), "{name}: text ends in NUL");
    }
    reply_text(reply.payload).into_owned()
}

#[test]
fn empty_lists_are_empty_replies() {
    assert_eq!(read("targets_empty"), [0, 0, 0, 0, 8, 0, 0, 0]);
    // With no account tgtd prints nothing at all, not even the header.
    assert_eq!(read("accounts_empty"), [0, 0, 0, 0, 8, 0, 0, 0]);
    assert_eq!(parse_targets(&text("targets_empty")), Ok(vec![]));
    assert_eq!(parse_accounts(&text("accounts_empty")), Ok(vec![]));
}

#[test]
fn targets_fixture() {
    let text = text("targets");
    let t = parse_targets(&text).unwrap();
    assert_eq!(t.len(), 3);
    let names: Vec<(u32, &str)> = t.iter().map(|t| (t.tid, t.name.as_str())).collect();
    assert_eq!(
        names,
        vec![
            (1, "iqn.2026-12.test.vds:fixture1"),
            (2, "iqn.2026-12.test.vds:fixture2"),
            (3, "iqn.2026-12.test.vds:fixture3")
        ]
    );
    assert_eq!(t[0].state, Some(State::Ready));
    assert_eq!(t[1].state, Some(State::Offline));
    assert_eq!(t[0].luns.len(), 2);
    let data = &t[0].luns[1];
    assert_eq!(data.lun_type.as_deref(), Some("disk"));
    assert_eq!(data.backing_store_type.as_deref(), Some("rdwr"));
    assert!(
        data.backing_store_path
            .as_deref()
            .is_some_and(|p| p.ends_with("/lun-1.img"))
    );
    assert_eq!((data.size_mb, data.block_size), (Some(17), Some(512)));
    assert_eq!(t[0].luns[0].backing_store_path, None);
    assert_eq!(
        t[0].accounts,
        vec![
            TargetAccount {
                user: "in1".into(),
                direction: AccountDirection::Incoming
            },
            TargetAccount {
                user: "out1".into(),
                direction: AccountDirection::Outgoing
            },
        ]
    );
    assert_eq!(t[0].acls, vec!["ALL"]);
    assert_eq!(
        t[1].acls,
        vec!["192.0.2.0/24", "iqn.2026-12.test.vds:init-b"]
    );
    let n = &t[2].nexuses;
    assert_eq!(n.len(), 1);
    assert_eq!(
        n[0].initiator.as_deref(),
        Some("iqn.2026-12.test.vds:init-a")
    );
    assert_eq!(n[0].alias.as_deref(), Some("fixture host"));
    assert_eq!(n[0].connections[0].cid, 0);
    assert_eq!(n[0].connections[0].ip_address.as_deref(), Some("127.0.0.1"));
    // Our renderer writes tgtd's text byte for byte.
    assert_eq!(render_targets(&t), text);
}

#[test]
fn portals_fixture() {
    let p = parse_portals(&text("portals")).unwrap();
    assert_eq!(p.len(), 2);
    assert!(
        p[0].addr.is_ipv6() && p[1].addr.is_ipv4(),
        "newest first: {p:?}"
    );
    assert_eq!(p[0].addr.port(), p[1].addr.port());
    assert!(p.iter().all(|p| p.tpgt == 1));
}

#[test]
fn accounts_fixture() {
    assert_eq!(
        parse_accounts(&text("accounts")),
        Ok(vec!["out1".into(), "in1".into()])
    );
}

#[test]
fn system_fixture() {
    let s = parse_system(&text("system")).unwrap();
    assert_eq!(s.state, Some(State::Ready));
    assert_eq!(s.debug, Some(false));
    assert!(
        s.llds
            .iter()
            .any(|l| l.name == "iscsi" && l.state == "ready")
    );
    assert!(s.backing_stores.iter().any(|b| b.starts_with("rdwr")));
    assert!(s.device_types.iter().any(|d| d == "disk"));
    assert_eq!(s.isns.enabled, Some(false));
    assert_eq!(s.isns.server_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(s.isns.server_port, Some(13205));
    assert_eq!(s.isns.access_control, Some(false));
}

#[test]
fn lld_fixture() {
    let l = parse_lld(&text("lld")).unwrap();
    let iscsi = l.iter().find(|l| l.name == "iscsi").unwrap();
    assert_eq!(iscsi.state, "ready");
    let tids: Vec<u32> = iscsi.targets.iter().map(|t| t.tid).collect();
    assert_eq!(tids, vec![1, 2, 3]);
}

#[test]
fn error_fixtures() {
    for (name, code) in [
        ("error_target_exist", ErrorCode::TargetExist),
        ("error_no_user", ErrorCode::NoUser),
    ] {
        let bytes = read(name);
        let r = Reply::parse(&bytes).unwrap();
        assert_eq!((r.header.code, r.payload.len()), (code, 0), "{name}");
    }
}
