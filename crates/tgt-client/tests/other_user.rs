//! tgtd's SO_PEERCRED rule seen from a client running as another user.
//!
//! A plain program (`harness = false`), because the client must run in a process whose uid is not
//! tgtd's: the test starts a private tgtd as root, copies this binary where `nobody` can run it,
//! and runs it again as `nobody` with `--as-client <socket>`; that run makes one request and
//! prints the error kind it got. Needs root (as every tgtd test here).
//!
//! - socket as tgtd made it (mode 0755): `connect` fails with EACCES → `PermissionDenied`;
//! - socket made 0777: tgtd accepts, sees the wrong uid, closes → `ClosedWithoutReply`;
//! - tgtd stays alive, and root still gets answers.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tgt_client::{Client, ClientConfig, ErrorKind, Request};

const NOBODY: u32 = 65534;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--as-client") {
        let socket = args.get(2).expect("socket path");
        as_client(Path::new(socket));
        return;
    }
    let (passed, failed) = run();
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The child: one request, then a line naming what happened.
fn as_client(socket: &Path) {
    let client = Client::new(ClientConfig {
        exchange_timeout: Duration::from_secs(3),
        ..ClientConfig::new(socket)
    });
    let r = common::runtime().block_on(client.send(&Request::ShowPortals));
    let what = match &r {
        Ok(_) => "Ok".to_owned(),
        Err(e) => match e.kind() {
            ErrorKind::PermissionDenied => "PermissionDenied".to_owned(),
            ErrorKind::ClosedWithoutReply => "ClosedWithoutReply".to_owned(),
            other => format!("Other {other:?}"),
        },
    };
    println!("RESULT {what}");
    if let Err(e) = r {
        println!("MESSAGE {e}");
    }
}

fn run_as_nobody(exe: &Path, socket: &Path) -> (String, String) {
    let out = Command::new(exe)
        .arg("--as-client")
        .arg(socket)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("run the client as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or("")
        .to_owned();
    let message = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MESSAGE "))
        .unwrap_or("")
        .to_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (result, message)
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

fn run() -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    // /proc/self belongs to the process's uid.
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()),
        0,
        "this test starts tgtd and switches to uid {NOBODY}: run it as root"
    );
    let (tgtd, client) = common::start();
    let socket = tgtd.ipc_socket();
    // Let `nobody` reach the socket: the instance dir is 0700. The socket's own mode decides.
    std::fs::set_permissions(tgtd.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let bin_dir = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin_dir.path().join("tgt-client-as-nobody");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    let (result, message) = run_as_nobody(&exe, &socket);
    check(
        "other_uid_gets_permission_denied_at_connect",
        result == "PermissionDenied" && message.contains(&*socket.to_string_lossy()),
        &format!("socket mode {mode:o}: {result} / {message}"),
        &mut passed,
        &mut failed,
    );
    common::assert_alive(&tgtd);

    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (result, message) = run_as_nobody(&exe, &socket);
    check(
        "other_uid_on_open_socket_is_closed_without_reply",
        result == "ClosedWithoutReply",
        &format!("{result} / {message}"),
        &mut passed,
        &mut failed,
    );
    common::assert_alive(&tgtd);

    let root = common::runtime().block_on(client.show_portals());
    check(
        "tgtd_still_serves_its_own_uid",
        root.as_ref().is_ok_and(|p| p.len() == 1),
        &format!("{root:?}"),
        &mut passed,
        &mut failed,
    );
    tgtd.stop().unwrap();
    (passed, failed)
}
