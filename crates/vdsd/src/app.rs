//! The daemon's shared state: the service, and what the daemon adds around it (operations, the
//! event bus, metrics, settings, who may call, answers kept). Cheap to share (`Arc<App>`).
//!
//! What SIGHUP replaces (settings, the local policy, the tokens) is held as one shared value each:
//! a request reads it without copying it.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{Notify, watch};
use vds_service::Service;

use crate::access::{LocalPolicy, Tokens};
use crate::answers::KeptAnswers;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::operations::Operations;
use crate::settings::Reloadable;

/// Everything a request or a background task needs.
pub struct App {
    /// The service.
    pub service: Service,
    /// Asynchronous operations.
    pub ops: Operations,
    /// Notifications for `GET /v1/events`.
    pub events: EventBus,
    /// Metrics.
    pub metrics: Metrics,
    /// The serialized answers of `GET …/portals`, by subsystem picture.
    pub answers: KeptAnswers,
    settings: RwLock<Arc<Reloadable>>,
    policy: RwLock<Arc<LocalPolicy>>,
    tokens: RwLock<Arc<Tokens>>,
    /// When the daemon started.
    pub started: Instant,
    /// True once the daemon is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Told when the settings or the configuration were reloaded.
    pub reloaded: Notify,
}

fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<Arc<T>>, value: T) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
}

impl App {
    /// The state over `service`, wired so that every notification it raises reaches the event bus
    /// and the metrics.
    pub fn new(
        service: Service,
        settings: Reloadable,
        policy: LocalPolicy,
        tokens: Tokens,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<App> {
        let app = Arc::new(App {
            events: EventBus::new(settings.event_buffer),
            service,
            ops: Operations::default(),
            metrics: Metrics::new(),
            answers: KeptAnswers::default(),
            settings: RwLock::new(Arc::new(settings)),
            policy: RwLock::new(Arc::new(policy)),
            tokens: RwLock::new(Arc::new(tokens)),
            started: Instant::now(),
            shutdown,
            reloaded: Notify::new(),
        });
        // The service holds the sink and the app holds the service: a weak link back.
        let weak = Arc::downgrade(&app);
        app.service.advise(move |provider, batch| {
            let Some(app) = weak.upgrade() else { return };
            for stored in app.events.publish(provider, batch) {
                app.metrics
                    .notifications
                    .get_or_create(&crate::metrics::EventLabels {
                        event: stored.doc.notification.event_name.clone(),
                    })
                    .inc();
            }
        });
        app
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Reloadable> {
        read(&self.settings)
    }

    /// Who may do what on the Unix socket.
    pub fn policy(&self) -> Arc<LocalPolicy> {
        read(&self.policy)
    }

    /// The bearer tokens.
    pub fn tokens(&self) -> Arc<Tokens> {
        read(&self.tokens)
    }

    /// Replaces what SIGHUP reloads, and has the service build its providers again from the store.
    pub fn reload(&self, settings: Reloadable, policy: LocalPolicy, tokens: Tokens) {
        write(&self.settings, settings);
        write(&self.policy, policy);
        write(&self.tokens, tokens);
        self.service.reload();
        self.reloaded.notify_waiters();
    }
}
