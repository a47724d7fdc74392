//! Captures real tgtd replies as golden fixtures for `tgt-proto`'s tests and the fuzz corpus.
//!
//! ```text
//! cargo run -p tgt-client --example capture_replies -- crates/tgt-proto/tests/vectors/replies
//! ```
//!
//! Starts a private tgtd (vds-testpeers: loopback portals on 127.0.0.1 and [::1], its own socket),
//! gives it two targets (one with a data LUN, an ACL, accounts and a logged-in session), and writes
//! each reply exactly as received (8-byte header, then the payload) to `<dir>/<name>.bin`. Needs
//! root, like every tgtd test here.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

use tgt_client::{
    AccountBinding, AccountDirection, AccountScope, Acl, Request, Secret, SystemParam,
};
use tgt_proto::ReplyRepr;
use vds_testpeers::{Tgtd, TgtdConfig};

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: capture_replies <dir>"),
    );
    std::fs::create_dir_all(&out).expect("create the output dir");
    let port = vds_testpeers::free_port();
    let tgtd = Tgtd::start(TgtdConfig {
        portals: vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")],
    })
    .expect("start tgtd");
    let client = tgt_client::Client::new(tgt_client::ClientConfig::new(tgtd.ipc_socket()));
    let rt = common::runtime();
    let save = |name: &str, request: &Request| {
        let reply = rt.block_on(client.send(request)).expect("reply");
        let mut bytes = ReplyRepr {
            code: reply.code,
            len: (8 + reply.payload.len()) as u32,
        }
        .emit()
        .to_vec();
        bytes.extend_from_slice(&reply.payload);
        let path = out.join(format!("{name}.bin"));
        std::fs::write(&path, &bytes).expect("write fixture");
        println!(
            "{}: {} bytes in {} read(s)",
            path.display(),
            bytes.len(),
            reply.reads
        );
        common::assert_alive(&tgtd);
    };

    save("targets_empty", &Request::ShowTargets);
    save("accounts_empty", &Request::ShowAccounts);

    let t1 = "iqn.2026-12.test.vds:fixture1";
    tgtd.add_target(1, t1).expect("target 1"); // LUN 1 and initiator-address=ALL
    let run = |r: Request| {
        rt.block_on(client.execute(&r)).expect("request");
        common::assert_alive(&tgtd);
    };
    run(Request::NewTarget {
        tid: 2,
        name: "iqn.2026-12.test.vds:fixture2".into(),
    });
    run(Request::BindAcl {
        tid: 2,
        acl: Acl::InitiatorAddress("192.0.2.0/24".into()),
    });
    run(Request::BindAcl {
        tid: 2,
        acl: Acl::InitiatorName("iqn.2026-12.test.vds:init-b".into()),
    });
    run(Request::SetTargetState {
        tid: 2,
        state: tgt_client::TargetState::Offline,
    });
    run(Request::NewAccount {
        user: "in1".into(),
        password: Secret::from("fixture-secret-1"),
    });
    run(Request::NewAccount {
        user: "out1".into(),
        password: Secret::from("fixture-secret-2"),
    });
    let at = |direction| AccountBinding {
        scope: AccountScope::Target(1),
        direction,
    };
    run(Request::BindAccount {
        user: "in1".into(),
        binding: at(AccountDirection::Incoming),
    });
    run(Request::BindAccount {
        user: "out1".into(),
        binding: at(AccountDirection::Outgoing),
    });
    run(Request::UpdateSystem {
        params: vec![
            SystemParam::isns_server_ip([127, 0, 0, 1].into()),
            SystemParam::isns_server_port(13205),
        ],
    });
    // The account on target 1 would demand CHAP from the session: log in to a third target.
    let t3 = "iqn.2026-12.test.vds:fixture3";
    tgtd.add_target(3, t3).expect("target 3");
    let session = common::login(
        &format!("127.0.0.1:{port}"),
        t3,
        "iqn.2026-12.test.vds:init-a",
        "fixture host",
    );

    save("targets", &Request::ShowTargets);
    save("portals", &Request::ShowPortals);
    save("accounts", &Request::ShowAccounts);
    save("system", &Request::ShowSystem);
    save("lld", &Request::ShowLld);
    save(
        "error_target_exist",
        &Request::NewTarget {
            tid: 1,
            name: t1.into(),
        },
    );
    save(
        "error_no_user",
        &Request::DeleteAccount {
            user: "ghost".into(),
        },
    );
    drop(session);

    for tid in [1, 2, 3] {
        rt.block_on(client.delete_target(tid, true))
            .expect("delete target");
    }
    tgtd.stop().expect("stop tgtd");
}
