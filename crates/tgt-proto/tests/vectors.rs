//! Golden request vectors: the exact bytes `tgtadm` 1.0.85 sends, recorded by
//! `vectors/record.py` (each `.bin` has the command line that made it in its `.cmd`). Our encoder
//! must produce the same bytes for the same operation, and our parser must read them back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tgt_proto::{
    AccountBinding, AccountDirection, AccountScope, Acl, Request, RequestRepr, Secret, SystemParam,
    TargetState,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/requests")
}

fn read(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn binding(scope: AccountScope, direction: AccountDirection) -> AccountBinding {
    AccountBinding { scope, direction }
}

/// Every captured vector and the typed request for the same operation.
fn cases() -> Vec<(&'static str, Request)> {
    let v4 = "127.0.0.5:13265".parse().unwrap();
    let v6 = "[::1]:13265".parse().unwrap();
    let t1 = AccountScope::Target(1);
    use AccountDirection::{Incoming, Outgoing};
    vec![
        ("show_targets", Request::ShowTargets),
        ("show_portals", Request::ShowPortals),
        ("show_accounts", Request::ShowAccounts),
        ("show_system", Request::ShowSystem),
        ("show_lld", Request::ShowLld),
        ("new_portal", Request::NewPortal { portal: v4 }),
        ("new_portal_v6", Request::NewPortal { portal: v6 }),
        ("delete_portal", Request::DeletePortal { portal: v4 }),
        (
            "new_target",
            Request::NewTarget {
                tid: 1,
                name: "iqn.2026-12.test.vds:t1".into(),
            },
        ),
        (
            "delete_target",
            Request::DeleteTarget {
                tid: 1,
                force: false,
            },
        ),
        (
            "delete_target_force",
            Request::DeleteTarget {
                tid: 1,
                force: true,
            },
        ),
        (
            "target_state_offline",
            Request::SetTargetState {
                tid: 1,
                state: TargetState::Offline,
            },
        ),
        (
            "target_state_ready",
            Request::SetTargetState {
                tid: 1,
                state: TargetState::Ready,
            },
        ),
        (
            "bind_acl_all",
            Request::BindAcl {
                tid: 1,
                acl: Acl::InitiatorAddress("ALL".into()),
            },
        ),
        (
            "bind_acl_cidr",
            Request::BindAcl {
                tid: 1,
                acl: Acl::InitiatorAddress("10.0.0.0/8".into()),
            },
        ),
        (
            "bind_acl_name",
            Request::BindAcl {
                tid: 1,
                acl: Acl::InitiatorName("iqn.2026-12.test.vds:init".into()),
            },
        ),
        (
            "unbind_acl_all",
            Request::UnbindAcl {
                tid: 1,
                acl: Acl::InitiatorAddress("ALL".into()),
            },
        ),
        (
            "unbind_acl_name",
            Request::UnbindAcl {
                tid: 1,
                acl: Acl::InitiatorName("iqn.2026-12.test.vds:init".into()),
            },
        ),
        (
            "new_account",
            Request::NewAccount {
                user: "user1".into(),
                password: Secret::from("pass1"),
            },
        ),
        (
            "delete_account",
            Request::DeleteAccount {
                user: "user1".into(),
            },
        ),
        (
            "bind_account_in",
            Request::BindAccount {
                user: "user1".into(),
                binding: binding(t1, Incoming),
            },
        ),
        (
            "bind_account_out",
            Request::BindAccount {
                user: "user1".into(),
                binding: binding(t1, Outgoing),
            },
        ),
        (
            "bind_account_discovery",
            Request::BindAccount {
                user: "user1".into(),
                binding: binding(AccountScope::Discovery, Incoming),
            },
        ),
        (
            "unbind_account_in",
            Request::UnbindAccount {
                user: "user1".into(),
                binding: binding(t1, Incoming),
            },
        ),
        (
            "unbind_account_out",
            Request::UnbindAccount {
                user: "user1".into(),
                binding: binding(t1, Outgoing),
            },
        ),
        (
            "unbind_account_discovery",
            Request::UnbindAccount {
                user: "user1".into(),
                binding: binding(AccountScope::Discovery, Incoming),
            },
        ),
        (
            "update_system_isns",
            Request::UpdateSystem {
                params: vec![SystemParam::isns_server_ip([127, 0, 0, 1].into())],
            },
        ),
        (
            "update_system_state",
            Request::UpdateSystem {
                params: vec![SystemParam::state(TargetState::Offline)],
            },
        ),
    ]
}

#[test]
fn encoder_matches_tgtadm_byte_for_byte() {
    for (name, req) in cases() {
        let want = read(name);
        let got = req.emit().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.as_slice(), want.as_slice(), "{name}");
    }
}

#[test]
fn tgtadm_requests_parse_to_the_same_operation() {
    for (name, req) in cases() {
        let parsed = Request::parse(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Request has no PartialEq (it may hold a Secret): compare the redacted Debug form and
        // the bytes, which include the password.
        assert_eq!(format!("{parsed:?}"), format!("{req:?}"), "{name}");
        let again = parsed.emit().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again.as_slice(), read(name).as_slice(), "{name}");
    }
}

#[test]
fn every_captured_vector_is_covered() {
    let names: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "bin" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    let covered: BTreeSet<String> = cases().iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(names, covered);
}

#[test]
fn plain_portal_form_parses_like_tgtadms() {
    // The reference's plain form, `portal=ADDR:PORT`, means the same to tgtd and to us.
    let tgtadm = read("new_portal");
    let mut repr = RequestRepr::parse(&tgtadm).unwrap();
    repr.text = Some(b"portal=127.0.0.5:13265".to_vec().into());
    let plain = repr.to_bytes().unwrap();
    let a = Request::parse(&plain).unwrap();
    let b = Request::parse(&tgtadm).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    // What we send is tgtadm's form.
    assert_eq!(a.emit().unwrap().as_slice(), tgtadm.as_slice());
}

#[test]
fn recorded_defaults_are_tgtadms() {
    // Every captured request: lld "iscsi", lun all ones, sid/cid/host/device/pack 0.
    for (name, _) in cases() {
        let r = RequestRepr::parse(&read(name)).unwrap();
        assert_eq!(r.lun, u64::MAX, "{name}");
        assert_eq!(
            (r.sid, r.cid, r.host_no, r.device_type, r.pack),
            (0, 0, 0, 0, 0),
            "{name}"
        );
    }
}
