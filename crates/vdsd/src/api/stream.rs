//! `GET /v1/events`: the notifications as server-sent events (see [`crate::events`]).
//!
//! Each event is `event: notification`, `id: SEQUENCE`, `data:` one [`vds_api::EventDoc`]; a client
//! that fell behind first gets `event: notifications-lost` with a [`vds_api::LostDoc`]. The place to
//! resume from is the `Last-Event-ID` header (or `?last_event_id=`); filters are
//! `?provider=NAME,…`, `?subsystem=ID,…` and `?object_type=portal,target,…` (or the `VDS_NTT_*`
//! numbers). A comment is sent every 15 seconds so idle streams stay open; the stream ends when the
//! daemon shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use super::openapi::ApiErrors;
use super::{AppState, Query, printable};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::events::Filter;

/// The filters and the resume point.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only these providers (names, comma-separated).
    pub provider: Option<String>,
    /// Only these subsystems (ids, comma-separated).
    pub subsystem: Option<String>,
    /// Only these object types: `subsystem`, `portal`, `target`, `portal_group` or their
    /// `VDS_NTT_*` numbers, comma-separated.
    pub object_type: Option<String>,
    /// Resume after this event id (as the `Last-Event-ID` header does).
    #[param(minimum = 0)]
    pub last_event_id: Option<u64>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn object_type(s: &str) -> ApiResult<i32> {
    Ok(match s {
        "subsystem" => 30,
        "portal" => 36,
        "target" => 37,
        "portal_group" => 38,
        n => n.parse().map_err(|_| {
            ApiError::malformed(
                format!("object_type {}", printable(n)),
                "expected subsystem, portal, target, portal_group or a VDS_NTT_* number",
            )
        })?,
    })
}

/// One event of the stream as an SSE parser reads it (the document's schema of each event).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct SseEvent {
    /// `notification` (`data` is an `EventDoc`) or `notifications-lost` (`data` is a `LostDoc`).
    #[schema(pattern = "^(notification|notifications-lost)$")]
    event: String,
    /// The event id: the `sequence` of a notification; the id before `resumes_at` of a lost event.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// The document, as JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// How many events one wake-up sends at most before yielding.
const BATCH: usize = 256;

struct Client {
    app: Arc<App>,
    filter: Filter,
    last: u64,
    pending: std::collections::VecDeque<Event>,
    changes: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.app.metrics.event_clients.dec();
    }
}

fn events_of(app: &App, client: &mut Client) {
    let batch = app.events.read(client.last, &client.filter, BATCH);
    if let Some(lost) = batch.lost {
        app.metrics.events_lost.inc();
        client.pending.push_back(
            Event::default()
                .event("notifications-lost")
                .id((lost.resumes_at - 1).to_string())
                .data(serde_json::to_string(&lost).unwrap_or_default()),
        );
    }
    for s in batch.events {
        client.pending.push_back(
            Event::default()
                .event("notification")
                .id(s.id.to_string())
                .data(s.json.clone()),
        );
    }
    client.last = batch.last;
}

fn stream_of(client: Client) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(client, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                return Some((Ok(e), c));
            }
            if *c.shutdown.borrow() {
                return None;
            }
            let app = c.app.clone();
            events_of(&app, &mut c);
            if !c.pending.is_empty() {
                continue;
            }
            tokio::select! {
                r = c.changes.changed() => if r.is_err() { return None },
                _ = c.shutdown.changed() => return None,
            }
        }
    })
}

/// `GET /v1/events`.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "A stream of `notification` events (data: EventDoc) and \
        `notifications-lost` events (data: LostDoc); comment lines keep it open", content_type = "text/event-stream", body = SseEvent), ApiErrors))]
pub async fn events(
    axum::extract::State(app): AppState,
    headers: HeaderMap,
    Query(q): Query<EventParams>,
) -> ApiResult<Response> {
    let filter = Filter {
        providers: list(&q.provider),
        subsystems: list(&q.subsystem),
        object_types: list(&q.object_type)
            .iter()
            .map(|s| object_type(s))
            .collect::<ApiResult<_>>()?,
    };
    // An empty Last-Event-ID is no id (EventSource sends none until it has seen one).
    let header = headers
        .get("last-event-id")
        .filter(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::malformed("Last-Event-ID", "it is not an event id (a number)")
                })
        })
        .transpose()?;
    let (last, lost) = app.events.start(header.or(q.last_event_id));
    let mut pending = std::collections::VecDeque::new();
    if let Some(lost) = lost {
        app.metrics.events_lost.inc();
        pending.push_back(
            Event::default()
                .event("notifications-lost")
                .id((lost.resumes_at - 1).to_string())
                .data(serde_json::to_string(&lost).unwrap_or_default()),
        );
    }
    app.metrics.event_clients.inc();
    let client = Client {
        changes: app.events.subscribe(),
        shutdown: app.shutdown.clone(),
        app: app.clone(),
        filter,
        last,
        pending,
    };
    Ok(Sse::new(stream_of(client))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
