//! The daemon's metrics, in the Prometheus text format (`prometheus-client`'s classic encoder, which
//! `promtool check metrics` accepts).
//!
//! Counters and histograms are kept as events happen (refreshes, notifications, API requests); the
//! state gauges (every portal's status, every subsystem's status and health, every provider's cache
//! health) are rebuilt from the service's cached pictures at each scrape, so they can never drift
//! from what the API answers.

use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vds_service::{Service, SubsystemSel};

/// Labels of a portal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortalLabels {
    provider: String,
    subsystem: String,
    address: String,
    port: String,
}

/// Labels of a portal's status (one series per portal, value 1, for its current status).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortalStatusLabels {
    provider: String,
    subsystem: String,
    address: String,
    port: String,
    status: String,
}

/// Labels of a subsystem's status or health.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubsystemLabels {
    provider: String,
    subsystem: String,
    status: String,
}

/// Labels of a provider's cache health.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    provider: String,
    health: String,
}

/// Labels of a refresh.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    /// The provider.
    pub provider: String,
    /// `periodic` or `api`.
    pub trigger: String,
}

/// Labels of a failed refresh.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The provider.
    pub provider: String,
    /// The HRESULT's name.
    pub hresult: String,
}

/// Labels of a notification.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `PORTAL_MODIFY`, ….
    pub event: String,
}

/// Labels of an API request. Each is the value the request already carries (the router's route
/// template, the method, the status), shared or copied as is: counting a request builds no text.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template (`/v1/subsystems/{subsystem}/portals`), never the raw path.
    pub route: RouteLabel,
    /// The method.
    pub method: MethodLabel,
    /// The status code.
    pub status: StatusLabel,
}

/// A route template as the router matched it (shared with the router), or `unmatched`.
#[derive(Clone, Debug)]
pub struct RouteLabel(pub Option<axum::extract::MatchedPath>);

impl RouteLabel {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", |m| m.as_str())
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl std::hash::Hash for RouteLabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// A request's method (`GET`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct MethodLabel(pub axum::http::Method);

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_str(), encoder)
    }
}

/// An answer's status code (`200`, …).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct StatusLabel(pub axum::http::StatusCode);

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_str(), encoder)
    }
}

/// Every metric.
pub struct Metrics {
    registry: Registry,
    portal_up: Family<PortalLabels, Gauge>,
    portal_status: Family<PortalStatusLabels, Gauge>,
    subsystem_status: Family<SubsystemLabels, Gauge>,
    subsystem_health: Family<SubsystemLabels, Gauge>,
    cache_health: Family<CacheLabels, Gauge>,
    /// Refresh durations.
    pub refresh_seconds: Family<RefreshLabels, Histogram>,
    /// Refresh failures by HRESULT.
    pub refresh_failures: Family<FailureLabels, Counter>,
    /// Notifications by event.
    pub notifications: Family<EventLabels, Counter>,
    /// API requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Event-stream clients connected.
    pub event_clients: Gauge,
    /// Lost-notification events sent.
    pub events_lost: Counter,
    /// Operations running.
    pub operations_running: Gauge,
    /// Connections open.
    pub connections: Gauge,
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vds");
        let m = Metrics {
            portal_up: Family::default(),
            portal_status: Family::default(),
            subsystem_status: Family::default(),
            subsystem_health: Family::default(),
            cache_health: Family::default(),
            refresh_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            refresh_failures: Family::default(),
            notifications: Family::default(),
            requests: Family::default(),
            event_clients: Gauge::default(),
            events_lost: Counter::default(),
            operations_running: Gauge::default(),
            connections: Gauge::default(),
            scrape: Mutex::new(()),
            registry: Registry::default(),
        };
        registry.register(
            "portal_up",
            "1 when the portal's status is ONLINE, else 0",
            m.portal_up.clone(),
        );
        registry.register(
            "portal_status",
            "The portal's VDS_ISCSI_PORTAL_STATUS, as the status label (value 1)",
            m.portal_status.clone(),
        );
        registry.register(
            "subsystem_status",
            "The subsystem's VDS_SUB_SYSTEM_STATUS, as the status label (value 1)",
            m.subsystem_status.clone(),
        );
        registry.register(
            "subsystem_health",
            "The subsystem's VDS_HEALTH, as the status label (value 1)",
            m.subsystem_health.clone(),
        );
        registry.register(
            "cache_health",
            "The provider cache's health (GOOD, REBUILT, CORRUPT) as the health label (value 1)",
            m.cache_health.clone(),
        );
        registry.register(
            "refresh_duration_seconds",
            "How long the refresh of one subsystem took",
            m.refresh_seconds.clone(),
        );
        registry.register(
            "refresh_failures",
            "Refreshes of a subsystem that failed, by HRESULT",
            m.refresh_failures.clone(),
        );
        registry.register(
            "notifications",
            "Notifications raised by the service, by event",
            m.notifications.clone(),
        );
        registry.register(
            "api_requests",
            "API requests answered, by route, method and status",
            m.requests.clone(),
        );
        registry.register(
            "event_stream_clients",
            "Clients connected to GET /v1/events",
            m.event_clients.clone(),
        );
        registry.register(
            "event_stream_lost",
            "notifications-lost events sent to clients that fell behind",
            m.events_lost.clone(),
        );
        registry.register(
            "operations_running",
            "Asynchronous operations running",
            m.operations_running.clone(),
        );
        registry.register(
            "connections",
            "Client connections open on every listener",
            m.connections.clone(),
        );
        Metrics { registry, ..m }
    }

    fn rebuild_state(&self, service: &Service) {
        self.portal_up.clear();
        self.portal_status.clear();
        self.subsystem_status.clear();
        self.subsystem_health.clear();
        self.cache_health.clear();
        if let Ok(providers) = service.list_providers() {
            for p in providers {
                self.cache_health
                    .get_or_create(&CacheLabels {
                        provider: p.name,
                        health: p.cache_health,
                    })
                    .set(1);
            }
        }
        let Ok(subsystems) = service.list_subsystems(None) else {
            return;
        };
        for s in subsystems {
            let labels = |status: &str| SubsystemLabels {
                provider: s.provider.clone(),
                subsystem: s.name.clone(),
                status: status.to_string(),
            };
            self.subsystem_status
                .get_or_create(&labels(&s.status))
                .set(1);
            self.subsystem_health
                .get_or_create(&labels(&s.health))
                .set(1);
            if s.id.is_none() {
                continue;
            }
            let sel = SubsystemSel {
                provider: Some(s.provider.clone()),
                name: s.name.clone(),
            };
            let Ok(portals) = service.list_portals(&sel) else {
                continue;
            };
            for p in portals {
                let port = p.port.to_string();
                self.portal_up
                    .get_or_create(&PortalLabels {
                        provider: s.provider.clone(),
                        subsystem: s.name.clone(),
                        address: p.address.clone(),
                        port: port.clone(),
                    })
                    .set(i64::from(p.status == "ONLINE"));
                self.portal_status
                    .get_or_create(&PortalStatusLabels {
                        provider: s.provider.clone(),
                        subsystem: s.name.clone(),
                        address: p.address,
                        port,
                        status: p.status,
                    })
                    .set(1);
            }
        }
    }

    /// The text a scrape gets.
    pub fn encode(&self, service: &Service) -> String {
        let _one_scrape_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.rebuild_state(service);
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Method, StatusCode};

    #[test]
    fn request_labels_print_as_the_text_they_carry() {
        let m = Metrics::new();
        let count = |route, method, status| {
            m.requests
                .get_or_create(&RequestLabels {
                    route: RouteLabel(route),
                    method: MethodLabel(method),
                    status: StatusLabel(status),
                })
                .inc();
        };
        count(None, Method::GET, StatusCode::NOT_FOUND);
        count(None, Method::GET, StatusCode::NOT_FOUND);
        count(
            None,
            Method::from_bytes(b"BREW").expect("method"),
            StatusCode::METHOD_NOT_ALLOWED,
        );
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &m.registry)
            .expect("encode");
        assert!(
            text.contains(
                "vds_api_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "vds_api_requests_total{route=\"unmatched\",method=\"BREW\",status=\"405\"} 1\n"
            ),
            "{text}"
        );
    }
}
