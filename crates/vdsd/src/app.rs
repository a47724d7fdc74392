//! The daemon's shared state: the service, and what the daemon adds around it (operations, the
//! event bus, metrics, settings, who may call). Cheap to share (`Arc<App>`).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{Notify, watch};
use vds_service::Service;

use crate::access::{LocalPolicy, Tokens};
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
    settings: RwLock<Reloadable>,
    policy: RwLock<LocalPolicy>,
    tokens: RwLock<Tokens>,
    /// When the daemon started.
    pub started: Instant,
    /// True once the daemon is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Told when the settings or the configuration were reloaded.
    pub reloaded: Notify,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
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
            settings: RwLock::new(settings),
            policy: RwLock::new(policy),
            tokens: RwLock::new(tokens),
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
    pub fn settings(&self) -> Reloadable {
        read(&self.settings)
    }

    /// Who may do what on the Unix socket.
    pub fn policy(&self) -> LocalPolicy {
        read(&self.policy)
    }

    /// The bearer tokens.
    pub fn tokens(&self) -> Tokens {
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
