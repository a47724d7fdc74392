//! The async half of the SendTargets provider: runs the discoveries and probes of many subsystems
//! concurrently on the provider's runtime, bounded by one semaphore, and hands each subsystem's
//! answers to the pure [`super::merge`]. It also turns client errors into failure classes, in
//! [`classify`], the one place that decides what an error means for a status.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iscsi_client::{DiscoveryOptions, ErrorKind, Host, LoginFailureReason};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::debug;
use vds_model::{Hresult, SubSystemSnapshot};

use super::merge::{self, Failure, FailureClass, Outcome, Probes};
use super::{Configured, MAX_PROBES_PER_SUBSYSTEM, Progress, ProgressFn};

/// What a client error means for the status of the portal it happened on, and the message that
/// says so (without the portal, which the caller prefixes; never a secret).
pub(crate) fn classify(e: &iscsi_client::Error) -> Failure {
    let (class, cause) = match e.kind() {
        ErrorKind::Resolve(_)
        | ErrorKind::Connect(_)
        | ErrorKind::Timeout { .. }
        | ErrorKind::Io(_)
        | ErrorKind::Closed { .. } => (FailureClass::Unreachable, e.kind().to_string()),
        ErrorKind::AuthenticationFailed => (
            FailureClass::Refused,
            "authentication failure (login status 0x0201)".to_owned(),
        ),
        ErrorKind::MutualAuthenticationFailed(_) => (FailureClass::Refused, e.kind().to_string()),
        ErrorKind::Login(f) => {
            let class = match f.reason() {
                LoginFailureReason::AuthenticationFailure
                | LoginFailureReason::AuthorizationFailure => FailureClass::Refused,
                LoginFailureReason::ServiceUnavailable | LoginFailureReason::OutOfResources => {
                    FailureClass::Busy
                }
                _ => FailureClass::Broken,
            };
            (
                class,
                format!(
                    "{} (login status 0x{:02x}{:02x})",
                    f.reason(),
                    f.class,
                    f.detail
                ),
            )
        }
        _ => (FailureClass::Broken, e.kind().to_string()),
    };
    Failure { class, cause }
}

/// Discovers every job concurrently and returns the snapshots in job order.
///
/// # Errors
/// `E_UNEXPECTED` if a subsystem's task panicked (a bug; the model then keeps its cache).
pub(crate) async fn run_all(
    jobs: Vec<(Arc<Configured>, Option<SubSystemSnapshot>)>,
    concurrency: usize,
    progress: Option<Arc<ProgressFn>>,
) -> Result<Vec<SubSystemSnapshot>, Hresult> {
    let total = jobs.len();
    let permits = Arc::new(Semaphore::new(concurrency));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for (index, (configured, previous)) in jobs.into_iter().enumerate() {
        let permits = permits.clone();
        let done = done.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let snap = subsystem(&configured, previous.as_ref(), &permits).await;
            let done = done.fetch_add(1, Ordering::AcqRel) + 1;
            if let Some(report) = &progress {
                report(Progress { done, total });
            }
            (index, snap)
        });
    }
    let mut out: Vec<Option<SubSystemSnapshot>> = vec![None; total];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, snap)) => {
                if let Some(slot) = out.get_mut(index) {
                    *slot = Some(snap);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a SendTargets subsystem task failed");
                return Err(Hresult::E_UNEXPECTED);
            }
        }
    }
    out.into_iter()
        .map(|s| s.ok_or(Hresult::E_UNEXPECTED))
        .collect()
}

/// One subsystem: every discovery portal at once, then the probes, then the merge.
async fn subsystem(
    configured: &Arc<Configured>,
    previous: Option<&SubSystemSnapshot>,
    permits: &Arc<Semaphore>,
) -> SubSystemSnapshot {
    let config = &configured.config;
    let mut discoveries = JoinSet::new();
    for (i, dp) in config.portals.iter().enumerate() {
        let configured = configured.clone();
        let permits = permits.clone();
        let host = dp.host.clone();
        let port = dp.port;
        discoveries.spawn(async move {
            let outcome = discover_one(&configured, &host, port, &permits).await;
            (i, outcome)
        });
    }
    let mut outcomes: Vec<Outcome> = vec![
        Outcome::Failed(Failure {
            class: FailureClass::Broken,
            cause: "discovery task failed".into(),
        });
        config.portals.len()
    ];
    while let Some(joined) = discoveries.join_next().await {
        if let Ok((i, outcome)) = joined {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = outcome;
            }
        }
    }
    let mut probes_set = JoinSet::new();
    let to_probe = merge::portals_to_probe(config, &outcomes);
    if to_probe.len() > MAX_PROBES_PER_SUBSYSTEM {
        tracing::warn!(
            subsystem = %config.name,
            portals = to_probe.len(),
            probed = MAX_PROBES_PER_SUBSYSTEM,
            "the array lists more portals than are probed; the rest stay UNKNOWN"
        );
    }
    for target in to_probe.into_iter().take(MAX_PROBES_PER_SUBSYSTEM) {
        let configured = configured.clone();
        let permits = permits.clone();
        probes_set.spawn(async move {
            let result = probe_one(&configured, &target.host, target.port, &permits).await;
            (target.key, result)
        });
    }
    let mut probes = Probes::new();
    while let Some(joined) = probes_set.join_next().await {
        if let Ok((key, result)) = joined {
            probes.insert(key, result);
        }
    }
    merge::merge(config, &outcomes, &probes, previous)
}

async fn discover_one(
    configured: &Configured,
    host: &Host,
    port: u16,
    permits: &Semaphore,
) -> Outcome {
    let subsystem = configured.config.name.as_str();
    let _permit = permits.acquire().await;
    debug!(subsystem, portal = %format_args!("{host}:{port}"), "SendTargets discovery");
    match iscsi_client::discover(host, port, &configured.options).await {
        Ok(found) => {
            debug!(
                subsystem,
                portal = %format_args!("{host}:{port}"),
                connected_to = %found.connected_to,
                targets = found.targets.len(),
                portal_group_tag = ?found.portal_group_tag,
                elapsed = ?found.elapsed,
                "SendTargets answered"
            );
            Outcome::Answered {
                targets: found.targets,
                portal_group_tag: found.portal_group_tag,
            }
        }
        Err(e) => {
            debug!(subsystem, error = %e, "SendTargets discovery failed");
            Outcome::Failed(classify(&e))
        }
    }
}

async fn probe_one(
    configured: &Configured,
    host: &Host,
    port: u16,
    permits: &Semaphore,
) -> Result<(), Failure> {
    let subsystem = configured.config.name.as_str();
    let options: &DiscoveryOptions = &configured.options;
    let _permit = permits.acquire().await;
    debug!(subsystem, portal = %format_args!("{host}:{port}"), "probing portal");
    match iscsi_client::probe(host, port, options).await {
        Ok(p) => {
            debug!(subsystem, portal = %format_args!("{host}:{port}"), elapsed = ?p.elapsed, "portal answered");
            Ok(())
        }
        Err(e) => {
            debug!(subsystem, error = %e, "portal probe failed");
            Err(classify(&e))
        }
    }
}
