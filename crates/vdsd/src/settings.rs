//! The daemon's own settings: the command line, and the optional configuration file (`--config`,
//! TOML) that SIGHUP reads again. The store's `vds.toml` stays the service's (providers and
//! registrations); this file says how the daemon serves it: who may read, how often each provider is
//! refreshed, and the limits.
//!
//! ```toml
//! read_only_group = "vdsread"
//!
//! [refresh]
//! interval = "5m"        # every subsystem, unless its provider says otherwise; "0s": never
//! jitter = 0.1           # each interval is moved by up to ±10 %, so refreshes spread
//! max_backoff = "1h"     # a failing array is retried after 2, 4, 8 … intervals, at most this
//! concurrency = 16       # periodic refreshes running at once
//!
//! [provider.lab]
//! refresh_interval = "30s"
//!
//! [limits]
//! max_connections = 4096
//! max_header_bytes = 16384
//! max_body_bytes = 1048576
//! request_timeout = "60s"
//! header_timeout = "10s"
//! idle_timeout = "120s"
//!
//! [events]
//! buffer = 4096          # notifications kept for replay
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vds_model::{Error, Hresult, Subject};

/// The limits of the listeners.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Connections open at once, over every listener; more are answered 503 and closed.
    pub max_connections: usize,
    /// The most bytes of a request's head (hyper's read buffer; at least 8192).
    pub max_header_bytes: usize,
    /// The most bytes of a request's body (413 beyond).
    pub max_body_bytes: usize,
    /// The most time a request may take to be answered (503 beyond; the event stream's body is not
    /// a request's time).
    pub request_timeout: Duration,
    /// The most time a client may take to send a request's head.
    pub header_timeout: Duration,
    /// A connection that moves no byte for this long is closed.
    pub idle_timeout: Duration,
    /// The most time a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// How the daemon refreshes on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshPolicy {
    /// The interval of a provider without its own (zero: never).
    pub interval: Duration,
    /// Each provider's own interval.
    pub per_provider: BTreeMap<String, Duration>,
    /// The fraction by which an interval is moved at random (0 to 0.5).
    pub jitter: f64,
    /// The longest wait before retrying an array that keeps failing.
    pub max_backoff: Duration,
    /// Periodic refreshes running at once.
    pub concurrency: usize,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            interval: Duration::from_secs(300),
            per_provider: BTreeMap::new(),
            jitter: 0.1,
            max_backoff: Duration::from_secs(3600),
            concurrency: 16,
        }
    }
}

impl RefreshPolicy {
    /// The interval of `provider`'s subsystems.
    pub fn interval_of(&self, provider: &str) -> Duration {
        self.per_provider
            .get(provider)
            .copied()
            .unwrap_or(self.interval)
    }
}

/// What SIGHUP can change.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Reloadable {
    /// The read-only group.
    pub read_only_group: Option<String>,
    /// The refresh policy.
    pub refresh: RefreshPolicy,
    /// The limits (the listeners' own take effect for new connections).
    pub limits: Limits,
    /// Notifications kept for replay (read at start only).
    pub event_buffer: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileRefresh {
    interval: Option<String>,
    jitter: Option<f64>,
    max_backoff: Option<String>,
    concurrency: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    refresh_interval: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_connections: Option<usize>,
    max_header_bytes: Option<usize>,
    max_body_bytes: Option<usize>,
    request_timeout: Option<String>,
    header_timeout: Option<String>,
    idle_timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileEvents {
    buffer: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    read_only_group: Option<String>,
    #[serde(default)]
    refresh: FileRefresh,
    #[serde(default)]
    provider: BTreeMap<String, FileProvider>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    events: FileEvents,
}

fn invalid(path: &Path, why: impl Into<String>) -> Error {
    Error::new(Hresult::E_INVALIDARG)
        .about(Subject::Other(format!("configuration {}", path.display())))
        .because(why)
}

fn duration(path: &Path, what: &str, text: &str) -> Result<Duration, Error> {
    humantime::parse_duration(text).map_err(|e| invalid(path, format!("{what} {text:?}: {e}")))
}

/// The settings from `path` (none: the defaults).
pub fn load(path: Option<&Path>) -> Result<Reloadable, Error> {
    let mut r = Reloadable {
        event_buffer: 4096,
        ..Reloadable::default()
    };
    let Some(path) = path else {
        return Ok(r);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(Hresult::from_io_error(&e))
            .about(Subject::Other(format!("configuration {}", path.display())))
            .because(e.to_string())
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| invalid(path, e.to_string()))?;
    r.read_only_group = file.read_only_group;
    if let Some(i) = &file.refresh.interval {
        r.refresh.interval = duration(path, "refresh.interval", i)?;
    }
    if let Some(j) = file.refresh.jitter {
        if !(0.0..=0.5).contains(&j) {
            return Err(invalid(
                path,
                format!("refresh.jitter {j}: between 0 and 0.5"),
            ));
        }
        r.refresh.jitter = j;
    }
    if let Some(b) = &file.refresh.max_backoff {
        r.refresh.max_backoff = duration(path, "refresh.max_backoff", b)?;
    }
    if let Some(c) = file.refresh.concurrency {
        r.refresh.concurrency = c.clamp(1, 1024);
    }
    for (name, p) in &file.provider {
        let d = duration(
            path,
            &format!("provider.{name}.refresh_interval"),
            &p.refresh_interval,
        )?;
        r.refresh.per_provider.insert(name.clone(), d);
    }
    let l = &file.limits;
    if let Some(n) = l.max_connections {
        r.limits.max_connections = n.max(1);
    }
    if let Some(n) = l.max_header_bytes {
        r.limits.max_header_bytes = n.max(8192);
    }
    if let Some(n) = l.max_body_bytes {
        r.limits.max_body_bytes = n.max(1);
    }
    if let Some(t) = &l.request_timeout {
        r.limits.request_timeout = duration(path, "limits.request_timeout", t)?;
    }
    if let Some(t) = &l.header_timeout {
        r.limits.header_timeout = duration(path, "limits.header_timeout", t)?;
    }
    if let Some(t) = &l.idle_timeout {
        r.limits.idle_timeout = duration(path, "limits.idle_timeout", t)?;
    }
    if let Some(b) = file.events.buffer {
        r.event_buffer = b.clamp(1, 1 << 20);
    }
    Ok(r)
}

/// The default socket: `/run/vds/vdsd.sock` for root, else `$XDG_RUNTIME_DIR/vds/vdsd.sock`.
pub fn default_socket() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("vds").join("vdsd.sock");
        }
    }
    PathBuf::from("/run/vds/vdsd.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vdsd.toml");
        let doc = include_str!("settings.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        std::fs::write(&p, example).unwrap();
        let r = load(Some(&p)).unwrap();
        assert_eq!(r.read_only_group.as_deref(), Some("vdsread"));
        assert_eq!(r.refresh.interval_of("lab"), Duration::from_secs(30));
        assert_eq!(r.refresh.interval_of("other"), Duration::from_secs(300));
        std::fs::write(&p, "nonsense = 1\n").unwrap();
        assert!(load(Some(&p)).unwrap_err().message().contains("nonsense"));
    }
}
