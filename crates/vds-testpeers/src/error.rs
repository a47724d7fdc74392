//! The one error type of this crate. Every variant names the command or peer involved and carries
//! what is needed to understand a failure without re-running it: exit status, stderr and the tail of
//! the peer's log (the instance's temp dir is removed, so the log tail is the only copy that survives).

use std::time::Duration;

/// Everything that can go wrong while starting, driving or stopping a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// A required program is not installed (or not on `PATH`, `/usr/sbin`, `/sbin`).
    #[error("{binary} not found: run scripts/install-deps.sh")]
    NotInstalled {
        /// The program's name, e.g. `tgtd`.
        binary: String,
    },
    /// A program could not be started at all.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A program ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}{}", tail_suffix(.log_tail))]
    CommandFailed {
        /// The command line.
        command: String,
        /// The exit status as printed by the OS (`exit status: 22`).
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
        /// Its standard output, trimmed.
        stdout: String,
        /// The tail of the peer's log at the time of the failure (empty if none applies).
        log_tail: String,
    },
    /// A program did not finish before its deadline and was killed.
    #[error("`{command}` did not finish within {after:?} and was killed{}", tail_suffix(.log_tail))]
    Timeout {
        /// The command line.
        command: String,
        /// The deadline that passed.
        after: Duration,
        /// The tail of the peer's log (empty if none applies).
        log_tail: String,
    },
    /// A peer exited while it was being started or used.
    #[error("{peer} exited unexpectedly ({status}){}", tail_suffix(.log_tail))]
    PeerExited {
        /// Which peer (`tgtd`, `istgt`).
        peer: String,
        /// The exit status.
        status: String,
        /// The tail of the peer's log.
        log_tail: String,
    },
    /// A peer is running but did not become ready (e.g. a portal never accepted TCP) in time.
    #[error("{peer} not ready after {after:?}: {what}{}", tail_suffix(.log_tail))]
    NotReady {
        /// Which peer.
        peer: String,
        /// What was being waited for.
        what: String,
        /// The deadline that passed.
        after: Duration,
        /// The tail of the peer's log.
        log_tail: String,
    },
    /// A peer came up, but not as configured (e.g. tgtd could not bind a portal and fell back to its
    /// default `0.0.0.0:3260`); it has been killed.
    #[error("{peer} did not start as configured: {reason}{}", tail_suffix(.log_tail))]
    StartFailed {
        /// Which peer.
        peer: String,
        /// What differs.
        reason: String,
        /// The tail of the peer's log.
        log_tail: String,
    },
    /// A program printed something this crate cannot parse.
    #[error("cannot parse output of `{command}`: {detail}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The caller passed something unusable (a portal without brackets, a non-loopback address...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file-system or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl PeerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PeerError::Io {
            context: context.into(),
            source,
        }
    }
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- log tail ---\n{}", tail.trim_end())
    }
}
