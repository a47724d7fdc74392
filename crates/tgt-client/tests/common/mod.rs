//! Helpers shared by the integration tests: a private tgtd, a client for it, a liveness check,
//! tgtadm's own view for comparison, and a raw iSCSI login that leaves an I_T nexus open.

#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use tgt_client::{Client, ClientConfig, Target};
use vds_testpeers::{HeldSession, Tgtd, TgtdConfig};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A private tgtd on one loopback portal, and a client for its socket.
pub fn start() -> (Tgtd, Client) {
    let tgtd = Tgtd::start(TgtdConfig::single()).expect("start tgtd");
    let client = Client::new(ClientConfig::new(tgtd.ipc_socket()));
    (tgtd, client)
}

/// Panics unless tgtd's process still runs (a zombie counts as dead: it crashed or exited).
pub fn assert_alive(tgtd: &Tgtd) {
    if let Err(e) = tgtd.check_alive() {
        panic!("{e}");
    }
}

/// What `tgtadm --op show --mode target` prints, parsed with our parser.
pub fn tgtadm_targets(tgtd: &Tgtd) -> Vec<Target> {
    let out = tgtd
        .tgtadm(&["--lld", "iscsi", "--op", "show", "--mode", "target"])
        .expect("tgtadm show target");
    tgt_proto::show::parse_targets(&out).expect("tgtadm's text parses")
}

/// `tgtadm --lld iscsi --op show --mode <mode>` as text.
pub fn tgtadm_show(tgtd: &Tgtd, mode: &str) -> String {
    tgtd.tgtadm(&["--lld", "iscsi", "--op", "show", "--mode", mode])
        .expect("tgtadm show")
}

/// Logs in to `target` at `portal` as a normal session (operational stage straight to full
/// feature, no CHAP) and returns the open session: tgtd shows it as an I_T nexus until it is
/// dropped.
pub fn login(portal: &str, target: &str, initiator: &str, alias: &str) -> HeldSession {
    HeldSession::open(
        portal,
        target,
        initiator,
        Some(alias),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("login to {target} refused: {e}"))
}
