//! The tgt provider run by a user tgtd does not serve (tgtd checks its clients' uid and gid with
//! SO_PEERCRED): the subsystem is `FAILED` with `E_ACCESSDENIED` in its detail, a change fails with
//! `E_ACCESSDENIED`, the cached picture stays consistent, and tgtd stays alive.
//!
//! A plain program (`harness = false`): the provider must run in a process whose uid is not
//! tgtd's. The test starts a private tgtd as root, makes a picture of it as root, copies this
//! binary where `nobody` can run it, and runs it again as `nobody` (`--as-nobody <socket>
//! <picture.json>`); that run loads the picture, refreshes, tries a change and prints what it got.
//! Both of tgtd's refusals are covered: the socket as tgtd made it (mode 0755: `connect` fails with
//! EACCES) and made 0777 (tgtd accepts, sees the wrong uid and closes without a reply).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tgt_client::ClientConfig;
use vds_model::{CacheHealth, Hresult, HwProvider, SubSystemSnapshot, SubSystemStatus};
use vds_providers::tgt::TgtBackend;
use vds_testpeers::{Tgtd, TgtdConfig};

use common::MemoryState;

const NOBODY: u32 = 65534;
const TARGET: &str = "iqn.2026-12.test.vds:t1";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--as-nobody") {
        let (Some(socket), Some(picture)) = (args.get(2), args.get(3)) else {
            eprintln!("usage: --as-nobody SOCKET PICTURE");
            std::process::exit(2);
        };
        as_nobody(Path::new(socket), Path::new(picture));
        return;
    }
    let (passed, failed) = run();
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The child: the provider over the picture root made, refreshed, then a change; one line each.
fn as_nobody(socket: &Path, picture: &Path) {
    let text = std::fs::read_to_string(picture).expect("the picture");
    let cached: Vec<SubSystemSnapshot> = serde_json::from_str(&text).expect("the picture parses");
    let backend = TgtBackend::new(
        "lab",
        ClientConfig::new(socket),
        Arc::new(MemoryState::default()),
    );
    let (provider, problem) = HwProvider::from_cache(backend, cached.clone(), CacheHealth::Good);
    assert!(problem.is_none(), "{problem:?}");
    let rt = runtime();
    let sub = provider.sub_system_by_key("lab").expect("the subsystem");
    rt.block_on(provider.refresh_subsystem(&sub))
        .expect("a refresh records the refusal");
    let after = provider.export();
    println!("STATUS {}", after[0].status);
    println!("DETAIL {}", after[0].detail.clone().unwrap_or_default());
    println!("TARGETS {}", after[0].targets.len());
    let query = sub.query_targets().map(|_| ()).map_err(|e| e.code_name());
    println!("QUERY {query:?}");
    // The model refuses a change on a failed subsystem where VDS says so (CreateTarget); the
    // others reach tgtd, which refuses us.
    let t = sub
        .target_by_name(TARGET)
        .expect("the target is still known");
    match rt.block_on(t.set_friendly_name("x")) {
        Ok(()) => println!("CHANGE ok"),
        Err(e) => {
            println!("CHANGE {}", e.code_name());
            println!("CHANGE-MESSAGE {e}");
        }
    }
    println!(
        "CONSISTENT {}",
        if provider.export() == after {
            "yes"
        } else {
            "no"
        }
    );
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or("")
}

fn check(name: &str, ok: bool, detail: &str, passed: &mut u32, failed: &mut u32) {
    if ok {
        println!("test {name} ... ok");
        *passed += 1;
    } else {
        println!("test {name} ... FAILED: {detail}");
        *failed += 1;
    }
}

/// Panics unless tgtd still runs (checked after every request vds makes).
fn assert_alive(tgtd: &Tgtd) {
    if let Err(e) = tgtd.check_alive() {
        panic!("{e}");
    }
}

fn run() -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("proc")),
        0,
        "this test starts tgtd and switches to uid {NOBODY}: run it as root"
    );
    let tgtd = Tgtd::start(TgtdConfig::single()).expect("start tgtd");
    tgtd.add_target(1, TARGET).expect("a target");
    let socket = tgtd.ipc_socket();
    // `nobody` may reach the socket: the instance dir is 0700. The socket's own mode decides.
    std::fs::set_permissions(tgtd.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");

    // The picture root sees.
    let rt = runtime();
    let provider = HwProvider::new(TgtBackend::new(
        "lab",
        ClientConfig::new(&socket),
        Arc::new(MemoryState::default()),
    ));
    provider.initialize().expect("init");
    rt.block_on(provider.reenumerate())
        .expect("reenumerate as root");
    assert_alive(&tgtd);
    let work = tempfile::tempdir_in("/tmp").expect("temp dir");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let picture = work.path().join("picture.json");
    std::fs::write(
        &picture,
        serde_json::to_vec(&provider.export()).expect("encode"),
    )
    .expect("write the picture");
    std::fs::set_permissions(&picture, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let exe = work.path().join("tgt-provider-as-nobody");
    std::fs::copy(std::env::current_exe().expect("exe"), &exe).expect("copy");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    for (case, mode) in [("socket_0755", 0o755), ("socket_0777", 0o777)] {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let out = Command::new(&exe)
            .arg("--as-nobody")
            .arg(&socket)
            .arg(&picture)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run as nobody");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        check(
            &format!("{case}_child_ran"),
            out.status.success(),
            &all,
            &mut passed,
            &mut failed,
        );
        check(
            &format!("{case}_subsystem_failed_with_e_accessdenied"),
            line(&stdout, "STATUS") == SubSystemStatus::Failed.to_string()
                && line(&stdout, "DETAIL").starts_with("E_ACCESSDENIED (0x80070005)")
                && line(&stdout, "DETAIL").contains(&*socket.to_string_lossy()),
            &all,
            &mut passed,
            &mut failed,
        );
        check(
            &format!("{case}_targets_kept_and_queries_say_failed"),
            line(&stdout, "TARGETS") == "1"
                && line(&stdout, "QUERY") == "Err(\"VDS_E_OBJECT_STATUS_FAILED\")",
            &all,
            &mut passed,
            &mut failed,
        );
        check(
            &format!("{case}_a_change_is_access_denied_and_changes_nothing"),
            line(&stdout, "CHANGE") == Hresult::E_ACCESSDENIED.name().unwrap_or_default()
                && line(&stdout, "CHANGE-MESSAGE").contains(&*socket.to_string_lossy())
                && line(&stdout, "CONSISTENT") == "yes",
            &all,
            &mut passed,
            &mut failed,
        );
        assert_alive(&tgtd);
    }
    // tgtd still serves its own user.
    rt.block_on(provider.refresh()).expect("refresh as root");
    check(
        "tgtd_still_serves_root",
        provider.export()[0].status == SubSystemStatus::Online,
        &format!("{:?}", provider.export()),
        &mut passed,
        &mut failed,
    );
    tgtd.stop().expect("stop tgtd");
    (passed, failed)
}
