//! Live changes: the watchers of the providers whose kind offers one
//! ([`vds_providers::ProviderKind::watch`]: an iSNS provider with state change notifications),
//! and an optional periodic refresh, turned into the usual operations.
//!
//! [`Service::watch`] starts, on the caller's runtime, one watcher task per provider that has
//! one, and one worker task per watched provider. A worker takes what its watcher asks for, in
//! batches (whatever is queued at once is done once): a reenumerate of the provider when any
//! message of the batch asks for one, else a refresh of each subsystem named (a subsystem the
//! provider does not know yet has arrived: that becomes a reenumerate). With
//! [`WatchOptions::refresh_interval`], it also refreshes every subsystem of its provider that
//! often, which is how changes that raise no notification (an iSNS portal added or removed) are
//! seen. Each operation is exactly [`Service::refresh`] or [`Service::reenumerate`]: it holds the
//! same locks, saves what it committed, and its notifications reach the sinks registered with
//! [`Service::advise`]. One that is refused because something else holds the subsystem or the
//! provider (`VDS_E_ANOTHER_CALL_IN_PROGRESS`) is tried again a little later, up to
//! [`BUSY_RETRY_FOR`].
//!
//! What happens is told through [`Watch::next_event`]; [`Watch::stop`] asks every watcher to say
//! goodbye to its server and waits for them (within [`STOP_DEADLINE`]); dropping the [`Watch`]
//! aborts every task at once. Providers added after the watch started are not watched.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use vds_api::OperationReport;
use vds_model::{Error, Hresult, SubSystemSnapshot};
use vds_providers::{WatchContext, WatchMessage};

use crate::operations::Scope;
use crate::providers::kind_named;
use crate::{Inner, Service, SubsystemSel};

/// How long a refused (busy) operation is tried again.
pub const BUSY_RETRY_FOR: Duration = Duration::from_secs(10);

/// The pause between two tries of a busy operation.
const BUSY_PAUSE: Duration = Duration::from_millis(250);

/// How long [`Watch::stop`] waits for the watchers' goodbyes.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Messages a watcher may queue before it waits for its worker.
const QUEUE: usize = 256;

/// Events kept for [`Watch::next_event`]; past that, new ones are dropped (the notifications of
/// the operations still reach the sinks).
pub const EVENT_QUEUE: usize = 1024;

type Events = mpsc::Sender<WatchEvent>;

fn emit(events: &Events, event: WatchEvent) {
    if events.try_send(event).is_err() {
        tracing::warn!("a watch event was dropped: nobody reads them");
    }
}

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// One provider, or every configured one.
    pub provider: Option<String>,
    /// Refresh every subsystem of each watched provider this often (`None`: only on request of a
    /// watcher). A provider without a watcher is watched only when this is set.
    pub refresh_interval: Option<Duration>,
}

/// What a worker did or asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchAction {
    /// A refresh of one subsystem, by key.
    Refresh(String),
    /// A refresh of every subsystem of the provider (the periodic one).
    RefreshAll,
    /// A reenumerate of the provider.
    Reenumerate,
}

impl std::fmt::Display for WatchAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchAction::Refresh(k) => write!(f, "refresh of subsystem {k:?}"),
            WatchAction::RefreshAll => f.write_str("refresh of every subsystem"),
            WatchAction::Reenumerate => f.write_str("reenumerate"),
        }
    }
}

/// What happened while watching, by provider.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The provider is watched: by its kind's watcher (`watcher`), by the periodic refresh, or both.
    Started {
        /// The provider.
        provider: String,
        /// Whether its kind runs a watcher.
        watcher: bool,
    },
    /// An operation was done; its notifications went to the sinks, and are in the report.
    Done {
        /// The provider.
        provider: String,
        /// What was done.
        action: WatchAction,
        /// Its report (as `refresh`/`reenumerate` return it).
        report: OperationReport,
    },
    /// An operation failed.
    Failed {
        /// The provider.
        provider: String,
        /// What failed.
        action: WatchAction,
        /// Why.
        error: Error,
    },
    /// The watcher met a problem it recovers from by itself (its server went away, say).
    Problem {
        /// The provider.
        provider: String,
        /// What.
        error: Error,
    },
    /// The provider's watcher ended: stopped (`None`), or failed.
    Ended {
        /// The provider.
        provider: String,
        /// Why, when it failed.
        error: Option<Error>,
    },
}

/// A running watch (see the module documentation). Dropping it aborts every task.
pub struct Watch {
    providers: Vec<String>,
    events: mpsc::Receiver<WatchEvent>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// The providers watched (empty when no configured provider has anything to watch).
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// The next event; `None` once every task has ended (every watcher stopped or failed and no
    /// periodic refresh runs).
    pub async fn next_event(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }

    /// Asks every watcher to stop (they deregister from their servers) and waits for every task,
    /// at most [`STOP_DEADLINE`]; what is still running then is aborted.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let tasks = &mut self.tasks;
        let _ = tokio::time::timeout(STOP_DEADLINE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

fn busy(e: &Error) -> bool {
    e.code() == Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS
}

fn report_busy(r: &OperationReport) -> bool {
    let busy = format!("0x{:08X}", Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.code());
    r.failures.iter().any(|f| f.error.hresult == busy)
}

/// The provider's picture as this process holds it (empty when it cannot be built).
fn picture(inner: &Weak<Inner>, provider: &str) -> Vec<SubSystemSnapshot> {
    inner
        .upgrade()
        .and_then(|i| i.live_entry(provider).ok())
        .map(|e| e.model.export())
        .unwrap_or_default()
}

impl Service {
    /// Starts watching (see the module documentation): the watchers of every provider (or of
    /// `options.provider`) whose kind has one, and the periodic refresh. Must be called within a
    /// tokio runtime, on which the tasks run. A provider whose watcher cannot be made (its
    /// settings no longer check) is reported as `Ended` with the error, the others are watched.
    ///
    /// vdsd calls this once at start-up with its refresh period, registers its event sink with
    /// [`Service::advise`] (the notifications of what the watch does arrive there), logs the
    /// events, and calls [`Watch::stop`] on shutdown.
    pub fn watch(&self, options: WatchOptions) -> Result<Watch, Error> {
        let config = self.inner.store.config()?;
        if let Some(p) = &options.provider {
            if config.provider(p).is_none() {
                return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                    .about(vds_model::Subject::Provider(p.clone())));
            }
        }
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut providers = Vec::new();
        for p in config
            .providers
            .iter()
            .filter(|p| options.provider.as_ref().is_none_or(|only| *only == p.name))
        {
            let name = p.name.clone();
            let kind = match kind_named(&p.kind) {
                Ok(k) => k,
                Err(e) => {
                    emit(
                        &events,
                        WatchEvent::Ended {
                            provider: name,
                            error: Some(e),
                        },
                    );
                    continue;
                }
            };
            let (messages, inbox) = mpsc::channel(QUEUE);
            let weak = Arc::downgrade(&self.inner);
            let pname = name.clone();
            let made = kind.watch(WatchContext {
                name: name.clone(),
                settings: p.settings.clone(),
                messages,
                picture: Arc::new(move || picture(&weak, &pname)),
                shutdown: shutdown.subscribe(),
            });
            let watcher = match made {
                Ok(w) => w,
                Err(e) => {
                    let error = e.about_if_unset(vds_model::Subject::Provider(p.name.clone()));
                    emit(
                        &events,
                        WatchEvent::Ended {
                            provider: name,
                            error: Some(error),
                        },
                    );
                    continue;
                }
            };
            if watcher.is_none() && options.refresh_interval.is_none() {
                continue;
            }
            emit(
                &events,
                WatchEvent::Started {
                    provider: name.clone(),
                    watcher: watcher.is_some(),
                },
            );
            if let Some(w) = watcher {
                let events = events.clone();
                let provider = name.clone();
                tasks.spawn(async move {
                    let result = w.await;
                    emit(
                        &events,
                        WatchEvent::Ended {
                            provider,
                            error: result.err(),
                        },
                    );
                });
            }
            tasks.spawn(worker(
                self.clone(),
                name.clone(),
                inbox,
                options.refresh_interval,
                events.clone(),
                shutdown.subscribe(),
            ));
            providers.push(name);
        }
        Ok(Watch {
            providers,
            events: rx,
            shutdown,
            tasks,
        })
    }

    /// Does `action` on `provider`, trying again while it is refused as busy.
    async fn watch_action(
        &self,
        provider: &str,
        action: &WatchAction,
    ) -> Result<OperationReport, Error> {
        let deadline = tokio::time::Instant::now() + BUSY_RETRY_FOR;
        loop {
            let result = match action {
                WatchAction::Refresh(key) => {
                    self.refresh(Scope::Subsystem(SubsystemSel {
                        provider: Some(provider.to_string()),
                        name: key.clone(),
                    }))
                    .await
                }
                WatchAction::RefreshAll => {
                    self.refresh(Scope::Provider(provider.to_string())).await
                }
                WatchAction::Reenumerate => self.reenumerate(Some(provider)).await,
            };
            let again = match &result {
                Err(e) => busy(e),
                Ok(r) => report_busy(r),
            };
            if !again || tokio::time::Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(BUSY_PAUSE).await;
        }
    }
}

/// One provider's worker (see the module documentation).
async fn worker(
    service: Service,
    provider: String,
    mut inbox: mpsc::Receiver<WatchMessage>,
    interval: Option<Duration>,
    events: Events,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = interval.map(|d| tokio::time::interval_at(tokio::time::Instant::now() + d, d));
    let mut watching = true;
    loop {
        let batch: Vec<WatchMessage> = tokio::select! {
            _ = shutdown.changed() => return,
            m = inbox.recv(), if watching => match m {
                Some(first) => {
                    let mut batch = vec![first];
                    while let Ok(m) = inbox.try_recv() {
                        batch.push(m);
                    }
                    batch
                }
                None => {
                    watching = false;
                    if tick.is_none() {
                        return;
                    }
                    continue;
                }
            },
            _ = async {
                match tick.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                run(&service, &provider, WatchAction::RefreshAll, &events).await;
                continue;
            }
        };
        let mut reenumerate = false;
        let mut refresh: Vec<String> = Vec::new();
        for m in batch {
            match m {
                WatchMessage::Refresh(k) if !refresh.contains(&k) => refresh.push(k),
                WatchMessage::Refresh(_) => {}
                WatchMessage::Reenumerate => reenumerate = true,
                WatchMessage::Problem(error) => emit(
                    &events,
                    WatchEvent::Problem {
                        provider: provider.clone(),
                        error,
                    },
                ),
                _ => {}
            }
        }
        if reenumerate {
            run(&service, &provider, WatchAction::Reenumerate, &events).await;
            continue;
        }
        let mut arrived = false;
        for key in refresh {
            let action = WatchAction::Refresh(key);
            match service.watch_action(&provider, &action).await {
                // Not known yet: it arrived.
                Err(e) if e.code() == Hresult::VDS_E_OBJECT_NOT_FOUND => arrived = true,
                result => tell(&events, &provider, action, result),
            }
        }
        if arrived {
            run(&service, &provider, WatchAction::Reenumerate, &events).await;
        }
    }
}

async fn run(service: &Service, provider: &str, action: WatchAction, events: &Events) {
    let result = service.watch_action(provider, &action).await;
    tell(events, provider, action, result);
}

fn tell(
    events: &Events,
    provider: &str,
    action: WatchAction,
    result: Result<OperationReport, Error>,
) {
    let provider = provider.to_string();
    emit(
        events,
        match result {
            Ok(report) => WatchEvent::Done {
                provider,
                action,
                report,
            },
            Err(error) => WatchEvent::Failed {
                provider,
                action,
                error,
            },
        },
    );
}
