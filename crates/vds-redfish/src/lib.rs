//! A read-only Redfish/Swordfish view of the vds fleet, so that the tools administrators already
//! have (redfishtool, python-redfish-library, sushy, Ansible's Redfish modules, DMTF's validators)
//! can read vds's inventory and follow its events.
//!
//! [`Redfish::router`] serves `/redfish` and `/redfish/v1/...` from a [`vds_service::Service`]:
//! each subsystem as a `Storage`, each portal as an `Endpoint` of the `iSCSI` Fabric, each portal
//! group as an `EndpointGroup` of its Storage, each target as a `Connection` of the Fabric (see
//! [`documents`] for the mapping and the status table), and an `EventService` whose
//! `ServerSentEventUri` streams the service's notifications as `ResourceEvent` messages (see
//! [`events`]). Ids in URIs are the VDS object ids, as in vdsd's `/v1`.
//!
//! What the Redfish specification asks of a read-only service is done here: `@odata.id`,
//! `@odata.type` and `@odata.context` on every resource; collections with
//! `Members@odata.count`; the `OData-Version: 4.0` header (a request asking for another version
//! is refused with 412); `Cache-Control: no-cache`; 405 with `Allow` for other methods; errors in
//! Redfish's format, each carrying its HRESULT in `@Message.ExtendedInfo[].Oem.Vds`. Who may read
//! is the embedding server's business (vdsd applies the same rules as to `/v1`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod documents;
pub mod events;
pub mod metadata;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::BroadcastStream;
use vds_api::{NotificationDoc, SubsystemInventory};
use vds_model::{Error, Hresult};
use vds_service::{Depth, Service};

use documents::{ROOT, collection, endpoint_uri, storage_uri};
use events::{Journal, Streamed};

/// How long a query may take before the request fails with 503.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(30);

/// The service's view: cheap to clone; the last clone stops its event feed and leaves the
/// service's sinks.
#[derive(Clone)]
pub struct Redfish {
    inner: Arc<Inner>,
}

struct Inner {
    service: Service,
    shutdown: Option<watch::Receiver<bool>>,
    uuid: String,
    cookie: u32,
    journal: Arc<Mutex<Journal>>,
    stream: broadcast::Sender<Streamed>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.service.unadvise(self.cookie);
    }
}

impl Redfish {
    /// The view of `service`. Registers a sink with the service (`Advise`) and starts the task
    /// that turns notifications into events, so it must be called inside a tokio runtime.
    pub fn new(service: Service) -> Redfish {
        Redfish::build(service, None)
    }

    /// As [`new`](Self::new), for a server that shuts down gracefully: event streams end when
    /// `shutdown` becomes true, so they do not hold the server up.
    pub fn with_shutdown(service: Service, shutdown: watch::Receiver<bool>) -> Redfish {
        Redfish::build(service, Some(shutdown))
    }

    fn build(service: Service, shutdown: Option<watch::Receiver<bool>>) -> Redfish {
        // The sink runs inside the service's operations: it only queues.
        let (tx, rx) = mpsc::unbounded_channel::<Vec<NotificationDoc>>();
        let cookie = service.advise(move |provider, batch| {
            let docs = batch
                .iter()
                .map(|n| NotificationDoc::new(provider, n))
                .collect();
            let _ = tx.send(docs);
        });
        let (stream, _) = broadcast::channel(events::REPLAY);
        let journal = Arc::new(Mutex::new(Journal::default()));
        tokio::spawn(feed(service.clone(), journal.clone(), stream.clone(), rx));
        let uuid = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("vds-redfish:{}", service.root().display()).as_bytes(),
        )
        .to_string();
        Redfish {
            inner: Arc::new(Inner {
                service,
                shutdown,
                uuid,
                cookie,
                journal,
                stream,
            }),
        }
    }

    /// The routes: `/redfish`, `/redfish/` and everything under `/redfish/`, for a server whose
    /// router has state `S` (they carry their own).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/redfish", axum::routing::any(handle))
            .route("/redfish/", axum::routing::any(handle))
            .route("/redfish/{*rest}", axum::routing::any(handle))
            .with_state(self.clone())
    }
}

/// Turns each batch of notifications into events, with the fleet as it is after the batch (for
/// the status-change messages).
async fn feed(
    service: Service,
    journal: Arc<Mutex<Journal>>,
    stream: broadcast::Sender<Streamed>,
    mut rx: mpsc::UnboundedReceiver<Vec<NotificationDoc>>,
) {
    // What the fleet's health is before any change.
    if let Ok(Ok(fleet)) = read_fleet(&service).await {
        lock(&journal).health.learn(&fleet);
    }
    while let Some(mut batch) = rx.recv().await {
        // Take whatever else is queued: one read of the fleet for all of it.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
        }
        let fleet = read_fleet(&service)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let out = lock(&journal).record(&batch, &fleet, &stamp);
        for s in out {
            // No receiver is not an error: nobody is listening.
            let _ = stream.send(s);
        }
    }
}

fn lock(j: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    j.lock().unwrap_or_else(|e| e.into_inner())
}

async fn read_fleet(
    service: &Service,
) -> Result<Result<Vec<SubsystemInventory>, Error>, tokio::task::JoinError> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || service.inventory_with(None, None, Depth::Portals)).await
}

/// A failed request: the HTTP status and the Redfish error body.
struct Failure {
    status: StatusCode,
    message_id: &'static str,
    message: String,
    args: Vec<String>,
    resolution: &'static str,
    hresult: Hresult,
    detail: String,
    allow: Option<&'static str>,
}

impl Failure {
    fn not_found(path: &str) -> Failure {
        Failure {
            status: StatusCode::NOT_FOUND,
            message_id: "Base.1.22.ResourceMissingAtURI",
            message: format!("The resource at the URI '{path}' was not found."),
            args: vec![path.to_string()],
            resolution: "Place a valid resource at the URI or correct the URI and resubmit the \
                         request.",
            hresult: Hresult::VDS_E_OBJECT_NOT_FOUND,
            detail: format!("no object at {path}"),
            allow: None,
        }
    }

    fn method(method: &Method, allow: &'static str) -> Failure {
        Failure {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message_id: "Base.1.22.OperationNotAllowed",
            message: "The HTTP method is not allowed on this resource.".into(),
            args: Vec::new(),
            resolution: "None.",
            hresult: Hresult::VDS_E_NOT_SUPPORTED,
            detail: format!(
                "{method} is not supported: the Redfish view is read-only (changes go through /v1)"
            ),
            allow: Some(allow),
        }
    }

    fn from_error(e: &Error) -> Failure {
        let (status, message_id, message, resolution) = if e.code()
            == Hresult::VDS_E_OBJECT_NOT_FOUND
            || e.code() == Hresult::VDS_E_OBJECT_DELETED
        {
            (
                StatusCode::NOT_FOUND,
                "Base.1.22.GeneralError",
                "A general error has occurred.  See Resolution for information on how to \
                 resolve the error, or @Message.ExtendedInfo if Resolution is not provided.",
                "Re-read the collection: the object is gone.",
            )
        } else if e.code() == Hresult::VDS_E_PROVIDER_CACHE_CORRUPT {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Base.1.22.GeneralError",
                "A general error has occurred.  See Resolution for information on how to \
                 resolve the error, or @Message.ExtendedInfo if Resolution is not provided.",
                "Run `vdsadm reenumerate` then `vdsadm refresh` to rebuild the provider cache.",
            )
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Base.1.22.InternalError",
                "The request failed due to an internal service error.  The service is still \
                 operational.",
                "Resubmit the request.  If the problem persists, see the HRESULT and the \
                 message in Oem.",
            )
        };
        Failure {
            status,
            message_id,
            message: message.to_string(),
            args: Vec::new(),
            resolution,
            hresult: e.code(),
            detail: e.message(),
            allow: None,
        }
    }

    fn into_response(self) -> Response {
        let hr = Error::new(self.hresult);
        let body = json!({ "error": {
            "code": self.message_id,
            "message": self.message,
            "@Message.ExtendedInfo": [{
                "@odata.type": documents::types::MESSAGE,
                "MessageId": self.message_id,
                "Message": self.message,
                "MessageArgs": self.args,
                "MessageSeverity": "Critical",
                "Resolution": self.resolution,
                "Oem": { "Vds": {
                    "@odata.type": "#VdsRedfish.v1_0_0.Message",
                    "HResult": hr.code_hex(),
                    "HResultName": hr.code_name(),
                    "Detail": self.detail,
                }},
            }],
        }});
        let mut r = json_response(self.status, &body);
        if let Some(allow) = self.allow {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        r
    }
}

/// A refusal by the server that embeds the view (no credentials, not allowed, too large, shutting
/// down, …), in Redfish's error format with its HRESULT, for requests under `/redfish`: the
/// `MessageId` follows the status (401 `NoValidSession`, 403 `InsufficientPrivilege`, 413
/// `PayloadTooLarge`, 503 `ServiceTemporarilyUnavailable`, else `GeneralError`).
pub fn refusal(status: StatusCode, hresult: Hresult, detail: impl Into<String>) -> Response {
    let (message_id, message, resolution): (&'static str, &str, &'static str) = match status {
        StatusCode::UNAUTHORIZED => (
            "Base.1.22.NoValidSession",
            "There is no valid session established with the implementation.",
            "Send a valid bearer token (Authorization: Bearer TOKEN).",
        ),
        StatusCode::FORBIDDEN => (
            "Base.1.22.InsufficientPrivilege",
            "There are insufficient privileges for the account or credentials associated with \
             the current session to perform the requested operation.",
            "Use an account or token with the access this request needs.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "Base.1.22.PayloadTooLarge",
            "The supplied payload exceeds the maximum size supported by the service.",
            "Send a smaller request.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Base.1.22.ServiceTemporarilyUnavailable",
            "The service is temporarily unavailable.  Retry in 1 seconds.",
            "Retry later.",
        ),
        _ => (
            "Base.1.22.GeneralError",
            "A general error has occurred.  See Resolution for information on how to resolve \
             the error, or @Message.ExtendedInfo if Resolution is not provided.",
            "See the HRESULT and the detail in Oem.",
        ),
    };
    Failure {
        status,
        message_id,
        message: message.to_string(),
        args: if status == StatusCode::SERVICE_UNAVAILABLE {
            vec!["1".into()]
        } else {
            Vec::new()
        },
        resolution,
        hresult,
        detail: detail.into(),
        allow: None,
    }
    .into_response()
}

fn with_common_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("OData-Version", HeaderValue::from_static("4.0"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    with_common_headers(r)
}

fn xml_response(body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml;charset=utf-8"),
    );
    with_common_headers(r)
}

/// What a path names.
enum Answer {
    Json(Value),
    Xml(String),
}

async fn handle(State(rf): State<Redfish>, request: Request) -> Response {
    let (method, path, headers) = (
        request.method().clone(),
        request.uri().path().to_string(),
        request.headers().clone(),
    );
    if let Some(v) = headers.get("OData-Version") {
        if v.as_bytes() != b"4.0" {
            return Failure {
                status: StatusCode::PRECONDITION_FAILED,
                message_id: "Base.1.22.HeaderInvalid",
                message: "Header 'OData-Version' is invalid.".into(),
                args: vec!["OData-Version".into()],
                resolution: "Send OData-Version: 4.0, or no OData-Version header.",
                hresult: Hresult::E_INVALIDARG,
                detail: "this service speaks OData 4.0 only".into(),
                allow: None,
            }
            .into_response();
        }
    }
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<String> = trimmed
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let is_sse = trimmed == format!("{ROOT}/EventService/SSE");
    let allow = if is_sse { "GET" } else { "GET, HEAD" };
    let readable = method == Method::GET || (method == Method::HEAD && !is_sse);
    if !readable {
        // A path that names nothing is 404 whatever the method.
        if !is_sse && !names_something(&segments) {
            return Failure::not_found(&path).into_response();
        }
        return Failure::method(&method, allow).into_response();
    }
    if is_sse {
        return event_stream(&rf, &headers);
    }
    let service = rf.inner.service.clone();
    let uuid = rf.inner.uuid.clone();
    let shown = path.clone();
    let answered = tokio::time::timeout(
        QUERY_DEADLINE,
        tokio::task::spawn_blocking(move || resolve(&service, &uuid, &segments, &shown)),
    )
    .await;
    let response = match answered {
        Ok(Ok(Ok(Answer::Json(v)))) => json_response(StatusCode::OK, &v),
        Ok(Ok(Ok(Answer::Xml(x)))) => xml_response(x),
        Ok(Ok(Err(f))) => f.into_response(),
        Ok(Err(e)) => Failure::from_error(
            &Error::new(Hresult::E_UNEXPECTED).because(format!("the query task failed: {e}")),
        )
        .into_response(),
        Err(_) => Failure::from_error(&Error::new(Hresult::VDS_E_TIMEOUT).because(format!(
            "the query did not finish within {} s",
            QUERY_DEADLINE.as_secs()
        )))
        .into_response(),
    };
    if method == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    response
}

/// Whether the fixed part of a path names a resource (ids are checked by [`resolve`]).
fn names_something(segments: &[String]) -> bool {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    matches!(
        s.as_slice(),
        ["redfish"]
            | ["redfish", "v1"]
            | [
                "redfish",
                "v1",
                "odata" | "$metadata" | "Storage" | "Fabrics" | "EventService" | "SessionService"
            ]
            | ["redfish", "v1", "Schemas", "VdsRedfish_v1.xml"]
            | ["redfish", "v1", "Storage", _]
            | ["redfish", "v1", "Storage", _, "EndpointGroups"]
            | ["redfish", "v1", "Storage", _, "EndpointGroups", _]
            | ["redfish", "v1", "Fabrics", _]
            | ["redfish", "v1", "Fabrics", _, "Endpoints" | "Connections"]
            | [
                "redfish",
                "v1",
                "Fabrics",
                _,
                "Endpoints" | "Connections",
                _
            ]
            | ["redfish", "v1", "SessionService", "Sessions"]
    )
}

/// The document at `segments` (the path split on `/`), read from the cache.
fn resolve(
    service: &Service,
    uuid: &str,
    segments: &[String],
    path: &str,
) -> Result<Answer, Box<Failure>> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Each document reads only what it shows: the subsystems and their portals, or one
    // subsystem's targets, or (the Connections collection and the Connections) every target.
    let read = |only: Option<&str>, depth: Depth| {
        service
            .inventory_with(None, only, depth)
            .map_err(|e| Box::new(Failure::from_error(&e)))
    };
    let fleet = || read(None, Depth::Portals);
    let missing = || Box::new(Failure::not_found(path));
    let fabric = documents::FABRIC_ID;
    let json = match s.as_slice() {
        ["redfish"] => json!({ "v1": format!("{ROOT}/") }),
        ["redfish", "v1"] => documents::service_root(uuid),
        ["redfish", "v1", "odata"] => documents::odata_service_document(),
        ["redfish", "v1", "$metadata"] => return Ok(Answer::Xml(metadata::document())),
        ["redfish", "v1", "Schemas", "VdsRedfish_v1.xml"] => {
            return Ok(Answer::Xml(metadata::OEM_SCHEMA.to_string()));
        }
        ["redfish", "v1", "Storage"] => {
            let members: Vec<String> = fleet()?
                .iter()
                .filter_map(|s| s.row.id.as_deref().map(storage_uri))
                .collect();
            collection(
                &format!("{ROOT}/Storage"),
                "StorageCollection",
                "Storage",
                &members,
            )
        }
        ["redfish", "v1", "Storage", id, rest @ ..] => {
            let fleet = read(Some(id), Depth::Targets)?;
            let sub = fleet
                .iter()
                .find(|s| s.row.id.as_deref() == Some(id))
                .ok_or_else(missing)?;
            match rest {
                [] => documents::storage(sub),
                ["EndpointGroups"] => {
                    let members: Vec<String> = sub
                        .targets
                        .iter()
                        .flat_map(|t| &t.groups)
                        .map(|g| documents::endpoint_group_uri(id, &g.id))
                        .collect();
                    collection(
                        &format!("{}/EndpointGroups", storage_uri(id)),
                        "EndpointGroupCollection",
                        "Portal groups",
                        &members,
                    )
                }
                ["EndpointGroups", gid] => {
                    let (t, g) = sub
                        .targets
                        .iter()
                        .find_map(|t| t.groups.iter().position(|g| g.id == *gid).map(|g| (t, g)))
                        .ok_or_else(missing)?;
                    documents::endpoint_group(sub, t, g)
                }
                _ => return Err(missing()),
            }
        }
        ["redfish", "v1", "Fabrics"] => collection(
            &format!("{ROOT}/Fabrics"),
            "FabricCollection",
            "Fabrics",
            &[format!("{ROOT}/Fabrics/{fabric}")],
        ),
        ["redfish", "v1", "Fabrics", f, rest @ ..] if *f == fabric => {
            let fleet = match rest {
                ["Connections", ..] => read(None, Depth::Targets)?,
                _ => fleet()?,
            };
            let base = format!("{ROOT}/Fabrics/{fabric}");
            match rest {
                [] => documents::fabric(&fleet),
                ["Endpoints"] => {
                    let members: Vec<String> = fleet
                        .iter()
                        .flat_map(|s| &s.portals)
                        .map(|p| endpoint_uri(&p.id))
                        .collect();
                    collection(
                        &format!("{base}/Endpoints"),
                        "EndpointCollection",
                        "iSCSI portals",
                        &members,
                    )
                }
                ["Endpoints", pid] => {
                    // An Endpoint links the targets whose groups hold it: its subsystem is read
                    // again with its targets.
                    let holder = fleet
                        .iter()
                        .find(|s| s.portals.iter().any(|p| p.id == *pid))
                        .and_then(|s| s.row.id.clone())
                        .ok_or_else(missing)?;
                    let subs = read(Some(&holder), Depth::Targets)?;
                    let (sub, p) = subs
                        .iter()
                        .find_map(|s| s.portals.iter().find(|p| p.id == *pid).map(|p| (s, p)))
                        .ok_or_else(missing)?;
                    documents::endpoint(sub, p)
                }
                ["Connections"] => {
                    let members: Vec<String> = fleet
                        .iter()
                        .flat_map(|s| &s.targets)
                        .map(|t| documents::connection_uri(&t.target.id))
                        .collect();
                    collection(
                        &format!("{base}/Connections"),
                        "ConnectionCollection",
                        "iSCSI targets",
                        &members,
                    )
                }
                ["Connections", tid] => {
                    let (sub, t) = fleet
                        .iter()
                        .find_map(|s| {
                            s.targets
                                .iter()
                                .find(|t| t.target.id == *tid)
                                .map(|t| (s, t))
                        })
                        .ok_or_else(missing)?;
                    documents::connection(sub, t)
                }
                _ => return Err(missing()),
            }
        }
        ["redfish", "v1", "EventService"] => documents::event_service(),
        ["redfish", "v1", "SessionService"] => documents::session_service(),
        ["redfish", "v1", "SessionService", "Sessions"] => collection(
            &format!("{ROOT}/SessionService/Sessions"),
            "SessionCollection",
            "Sessions",
            &[],
        ),
        _ => return Err(missing()),
    };
    Ok(Answer::Json(json))
}

/// The server-sent event stream: the events after `Last-Event-ID` (when the client gives one and
/// they are still kept), then each new one. A client that fell further behind than the kept
/// events gets a stream that starts now, and should re-read the resources.
fn event_stream(rf: &Redfish, headers: &HeaderMap) -> Response {
    // Subscribe before reading the journal, so nothing falls between the two.
    let live = BroadcastStream::new(rf.inner.stream.subscribe());
    let last_seen = headers
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let backlog = match last_seen {
        Some(n) => lock(&rf.inner.journal).since(n).unwrap_or_default(),
        None => Vec::new(),
    };
    let newest_replayed = backlog.last().map_or(last_seen.unwrap_or(0), |s| s.id);
    let to_event = |s: Streamed| -> Result<Event, Infallible> {
        Ok(Event::default()
            .id(s.id.to_string())
            .data(s.document.to_string()))
    };
    let backlog = futures_util::stream::iter(backlog.into_iter().map(to_event));
    // A receiver that lagged has lost events; the stream ends, and the client reconnects with
    // its Last-Event-ID (and re-reads if those are gone too).
    let live = live
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(move |r| {
            std::future::ready(r.ok().filter(|s| s.id > newest_replayed).map(to_event))
        });
    let stopped = {
        let shutdown = rf.inner.shutdown.clone();
        async move {
            match shutdown {
                Some(mut rx) => {
                    let _ = rx.wait_for(|stop| *stop).await;
                }
                None => std::future::pending().await,
            }
        }
    };
    let events = backlog.chain(live).take_until(Box::pin(stopped));
    let sse = Sse::new(events).keep_alive(KeepAlive::default());
    with_common_headers(sse.into_response())
}
