//! Real iSCSI peers on loopback for integration tests and benchmarks.
//!
//! This crate starts and stops private instances of `tgtd` ([`Tgtd`]) and `istgt` ([`Istgt`]),
//! reserves ports for them ([`free_port`]), and runs reference initiators against them
//! ([`iscsi_ls`], [`sendtargets`]). It owns nothing of the project's protocol code and must stay
//! independent of it: it is the yardstick, not the thing measured.
//!
//! Every instance is isolated: its own temp dir under `/tmp` (log, config, LUN files, management
//! socket), its own ports, its own tgtd control number. It stops only the process it started, by the
//! PID of its own child, on [`Tgtd::stop`]/[`Istgt::stop`] and in `Drop`. Every wait has a deadline.
//! Errors name the command, its exit status and stderr, and carry the tail of the peer's log (the
//! temp dir itself is always removed).
//!
//! The programs come from Debian packages (`tgt`, `istgt`, `libiscsi-bin`); `scripts/install-deps.sh`
//! installs them, and [`require`] says so when one is missing.
//!
//! # Example
//!
//! A test in another crate's `tests/` directory (add `vds-testpeers = { workspace = true }` to its
//! `[dev-dependencies]`):
//!
//! ```
//! use vds_testpeers::{Tgtd, TgtdConfig, free_port, iscsi_ls, url};
//!
//! # fn main() -> Result<(), vds_testpeers::PeerError> {
//! let port = free_port();
//! let v4 = format!("127.0.0.1:{port}");
//! let v6 = format!("[::1]:{port}");
//! let tgtd = Tgtd::start(TgtdConfig { portals: vec![v4.clone(), v6.clone()] })?;
//! tgtd.add_target(1, "iqn.2026-11.test.vds:t1")?;
//!
//! let found = iscsi_ls(&url(&v6))?;
//! assert_eq!(found, vec![("iqn.2026-11.test.vds:t1".to_owned(), format!("{v6},1"))]);
//!
//! tgtd.stop()?; // or just drop it: SIGKILL to its PID
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod client;
mod error;
mod isnsd;
mod istgt;
mod ports;
mod process;
mod tgtd;

pub use client::{
    DEFAULT_TEST_VENV, HeldSession, ISCSI_LS_TIMEOUT, RAW_INITIATOR_NAME, iscsi_inq, iscsi_ls,
    iscsi_ls_luns, python_tool, require, sendtargets, url,
};
pub use error::PeerError;
pub use isnsd::{
    ISNSADM_TIMEOUT, ISNSD_START_TIMEOUT, ISNSD_STOP_TIMEOUT, IsnsadmLists, Isnsd, IsnsdConfig,
    parse_isnsadm_list,
};
pub use istgt::{ISTGT_START_TIMEOUT, ISTGT_STOP_TIMEOUT, Istgt, IstgtConfig, IstgtTarget};
pub use ports::{LOCK_DIR, PORT_RANGE, free_port, free_ports, try_free_port};
pub use tgtd::{LUN_SIZE, TGTADM_TIMEOUT, TGTD_START_TIMEOUT, TGTD_STOP_TIMEOUT, Tgtd, TgtdConfig};

/// Creates an instance's private temp dir. Always under `/tmp`, whatever `TMPDIR` says, because
/// tgtd's management socket path must fit in a `sockaddr_un` (108 bytes).
fn instance_dir(peer: &str) -> Result<tempfile::TempDir, PeerError> {
    tempfile::Builder::new()
        .prefix(&format!("vds-{peer}-"))
        .tempdir_in("/tmp")
        .map_err(|e| PeerError::io(format!("creating a temp dir for {peer}"), e))
}
