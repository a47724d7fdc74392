//! The daemon's own work: every subsystem refreshed periodically, each on its own schedule.
//!
//! Each subsystem has a slot with the time it is next due. Its interval is its provider's (settings),
//! moved at random by up to the jitter so refreshes spread instead of arriving together; the first
//! refresh of each comes at a random point of its first interval. A refresh is one task refreshing
//! one subsystem (`Service::refresh(Scope::Subsystem)`), so a slow or silent array holds its own
//! task and nothing else; at most `concurrency` run at once. An array that keeps failing (an error,
//! or a subsystem left `FAILED`) is retried after 2, 4, 8 … intervals, up to `max_backoff`; a
//! subsystem busy with another call is simply tried at its next interval. The set of subsystems is
//! read again every few seconds and on SIGHUP. Every change a refresh commits reaches clients as
//! notifications through the service's sink.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use vds_model::Hresult;
use vds_service::{Scope, SubsystemSel};

use crate::app::App;
use crate::metrics::{FailureLabels, RefreshLabels};
use crate::settings::RefreshPolicy;

/// How often the set of subsystems is read again.
const RESYNC: Duration = Duration::from_secs(5);

type Key = (String, String);

struct Slot {
    due: Instant,
    failures: u32,
    running: bool,
}

/// What one refresh came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refreshed, and the subsystem is not failed.
    Done,
    /// Another call held the subsystem.
    Busy,
    /// The refresh failed, or left the subsystem failed: the HRESULT's name.
    Failed(String),
}

/// The wait before the next refresh after `failures` failures in a row.
pub fn next_wait(policy: &RefreshPolicy, interval: Duration, failures: u32) -> Duration {
    let base = if failures == 0 {
        interval
    } else {
        let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        interval
            .saturating_mul(factor)
            .min(policy.max_backoff.max(interval))
    };
    let spread = base.as_secs_f64() * policy.jitter;
    let moved = base.as_secs_f64() + rand::thread_rng().gen_range(-spread..=spread);
    Duration::from_secs_f64(moved.max(0.001))
}

/// Refreshes one subsystem and records it in the metrics (`trigger`: `periodic` or `api`).
pub async fn refresh_one(app: &App, sel: SubsystemSel, trigger: &str) -> Outcome {
    let provider = sel.provider.clone().unwrap_or_default();
    let started = std::time::Instant::now();
    let result = app.service.refresh(Scope::Subsystem(sel)).await;
    app.metrics
        .refresh_seconds
        .get_or_create(&RefreshLabels {
            provider: provider.clone(),
            trigger: trigger.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    let outcome = match result {
        Err(e) if e.code() == Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS => Outcome::Busy,
        Err(e) => Outcome::Failed(e.code_name()),
        Ok(r) if r.subsystems.iter().any(|s| s.status == "FAILED") => {
            Outcome::Failed("VDS_E_OBJECT_STATUS_FAILED".into())
        }
        Ok(_) => Outcome::Done,
    };
    if let Outcome::Failed(name) = &outcome {
        app.metrics
            .refresh_failures
            .get_or_create(&FailureLabels {
                provider,
                hresult: name.clone(),
            })
            .inc();
    }
    outcome
}

fn sync(app: &App, slots: &mut HashMap<Key, Slot>, policy: &RefreshPolicy) {
    let Ok(rows) = app.service.list_subsystems(None) else {
        return;
    };
    let now = Instant::now();
    // A set: a fleet of thousands is read every few seconds.
    let mut seen = HashSet::with_capacity(rows.len());
    for r in rows.into_iter().filter(|r| r.id.is_some()) {
        let key = (r.provider, r.name);
        let interval = policy.interval_of(&key.0);
        slots.entry(key.clone()).or_insert_with(|| {
            let first = interval.mul_f64(rand::thread_rng().gen_range(0.0..=1.0));
            Slot {
                due: now + first,
                failures: 0,
                running: false,
            }
        });
        seen.insert(key);
    }
    slots.retain(|k, s| s.running || seen.contains(k));
}

/// Runs until `app.shutdown`; then waits for the refreshes under way, at most `grace`.
pub async fn run(app: Arc<App>, grace: Duration) {
    let mut shutdown = app.shutdown.clone();
    let mut slots: HashMap<Key, Slot> = HashMap::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<(Key, Outcome)>();
    let mut tasks = JoinSet::new();
    let mut next_sync = Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let settings = app.settings();
        let policy = &settings.refresh;
        let now = Instant::now();
        if now >= next_sync {
            sync(&app, &mut slots, policy);
            next_sync = now + RESYNC;
        }
        let mut running = slots.values().filter(|s| s.running).count();
        for (key, slot) in slots.iter_mut() {
            if running >= policy.concurrency {
                break;
            }
            if slot.running || slot.due > now || policy.interval_of(&key.0).is_zero() {
                continue;
            }
            slot.running = true;
            running += 1;
            let (app, tx, key) = (app.clone(), tx.clone(), key.clone());
            tasks.spawn(async move {
                let sel = SubsystemSel {
                    provider: Some(key.0.clone()),
                    name: key.1.clone(),
                };
                let outcome = refresh_one(&app, sel, "periodic").await;
                let _ = tx.send((key, outcome));
            });
        }
        let wake = slots
            .iter()
            .filter(|(k, s)| !s.running && !policy.interval_of(&k.0).is_zero())
            .map(|(_, s)| s.due)
            .min()
            .unwrap_or(next_sync)
            .min(next_sync);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            Some((key, outcome)) = rx.recv() => {
                if let Some(slot) = slots.get_mut(&key) {
                    slot.running = false;
                    match &outcome {
                        Outcome::Done => slot.failures = 0,
                        Outcome::Busy => {}
                        Outcome::Failed(why) => {
                            slot.failures += 1;
                            tracing::warn!(provider = %key.0, subsystem = %key.1, hresult = %why,
                                failures = slot.failures, "periodic refresh failed");
                        }
                    }
                    let interval = policy.interval_of(&key.0);
                    slot.due = Instant::now() + next_wait(policy, interval, slot.failures);
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = app.reloaded.notified() => next_sync = Instant::now(),
            _ = shutdown.changed() => {}
        }
    }
    // Finish what is under way, within the grace period.
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_and_jitter_stays_in_bounds() {
        let p = RefreshPolicy {
            jitter: 0.1,
            max_backoff: Duration::from_secs(100),
            ..RefreshPolicy::default()
        };
        let i = Duration::from_secs(10);
        for _ in 0..100 {
            let w = next_wait(&p, i, 0).as_secs_f64();
            assert!((9.0..=11.0).contains(&w), "{w}");
            let w = next_wait(&p, i, 2).as_secs_f64();
            assert!((36.0..=44.0).contains(&w), "{w}");
            let w = next_wait(&p, i, 30).as_secs_f64();
            assert!((90.0..=110.0).contains(&w), "{w}");
        }
    }
}
