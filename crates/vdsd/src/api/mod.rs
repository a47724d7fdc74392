//! The `/v1` API: the router, what every request goes through (access, time limit, metrics), the
//! extractors that turn bad input into `E_INVALIDARG` bodies, and how path segments name objects.
//!
//! A route is one service call: [`query`] has the reads, [`change`] the calls that change things
//! (each an [operation](crate::operations) when it contacts arrays), [`stream`] the event stream. A
//! new service call (the tgt provider's CHAP mutations, say) is one more handler and one more line
//! in [`router`] and in [`openapi::ApiDoc`].
//!
//! # Naming objects
//!
//! Every object is addressed by its `VDS_OBJECT_ID`. For scripts, and for vdsadm, each segment may
//! also be the object's natural name: a subsystem's name (with `?provider=` when two providers
//! have one of that name), a portal's `HOST:PORT`, a target's iSCSI name, a group's tag. A segment
//! that parses as a UUID is an id.

pub mod change;
pub mod openapi;
pub mod query;
pub mod stream;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;
use uuid::Uuid;
use vds_model::{ObjectId, VdsIpAddress};
use vds_service::SubsystemSel;

use crate::access::{Caller, Role};
use crate::app::App;
use crate::error::{ApiError, ApiResult, Refusal};
use crate::metrics::{MethodLabel, RequestLabels, RouteLabel, StatusLabel};
use crate::settings::Limits;

/// The shared state of handlers.
pub type AppState = State<Arc<App>>;

/// The API's router (every route under `/v1`).
pub fn router(app: Arc<App>) -> Router {
    let s = "/v1/subsystems/{subsystem}";
    let t = "/v1/subsystems/{subsystem}/targets/{target}";
    let g = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups/{group}";
    let max_body_bytes = app.settings().limits.max_body_bytes;
    Router::new()
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/service", get(query::service))
        .route("/v1/objects/{id}", get(query::object))
        .route(
            "/v1/providers",
            get(query::providers).post(change::add_provider),
        )
        .route(
            "/v1/providers/{provider}",
            get(query::provider).delete(change::remove_provider),
        )
        .route("/v1/refresh", post(change::refresh))
        .route("/v1/reenumerate", post(change::reenumerate))
        .route(
            "/v1/subsystems",
            get(query::subsystems).post(change::add_subsystem),
        )
        .route(
            s,
            get(query::subsystem)
                .patch(change::set_subsystem)
                .delete(change::remove_subsystem),
        )
        .route(&format!("{s}/refresh"), post(change::refresh_subsystem))
        .route(&format!("{s}/portals"), get(query::portals))
        .route(&format!("{s}/portals/{{portal}}"), get(query::portal))
        .route(
            &format!("{s}/portals/{{portal}}/portal-groups"),
            get(query::portal_groups_of_portal),
        )
        .route(
            &format!("{s}/portals/{{portal}}/status"),
            put(change::set_portal_status),
        )
        .route(
            &format!("{s}/targets"),
            get(query::targets).post(change::create_target),
        )
        .route(
            t,
            get(query::target)
                .patch(change::set_target_alias)
                .delete(change::delete_target),
        )
        .route(&format!("{t}/chap-secret"), put(change::set_target_secret))
        .route(
            &format!("{t}/initiator-secrets/{{initiator}}"),
            put(change::remember_initiator_secret),
        )
        .route(
            &format!("{t}/portal-groups"),
            get(query::portal_groups).post(change::create_portal_group),
        )
        .route(
            g,
            get(query::portal_group).delete(change::delete_portal_group),
        )
        .route(
            &format!("{g}/portals"),
            get(query::portals_of_group).post(change::add_portal),
        )
        .route(
            &format!("{g}/portals/{{portal}}"),
            delete(change::remove_portal),
        )
        .route("/v1/operations", get(query::operations))
        .route(
            "/v1/operations/{operation}",
            get(query::operation).delete(change::cancel_operation),
        )
        .route("/v1/events", get(stream::events))
        // The Redfish view: read-only, under the same access rules and limits as /v1.
        .merge(
            vds_redfish::Redfish::with_shutdown(app.service.clone(), app.shutdown.clone()).router(),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyLimit(max_body_bytes)))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(app.clone(), front_door))
        .with_state(app)
}

async fn no_route(req: Request) -> ApiError {
    ApiError::from(
        vds_model::Error::new(vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND)
            .about(vds_model::Subject::Other(format!(
                "resource {}",
                printable(req.uri().path())
            )))
            .because("the API has no such resource (see /v1/openapi.json)"),
    )
}

async fn no_method(req: Request) -> ApiError {
    ApiError::refuse(
        Refusal::MethodNotAllowed,
        format!("resource {}", printable(req.uri().path())),
        format!("it has no method {}", req.method()),
    )
}

/// Text from a request, cut and with control characters escaped, for a message.
pub fn printable(s: &str) -> String {
    let cut: String = s.chars().take(200).collect();
    cut.escape_debug().to_string()
}

/// What every request goes through, in one layer (outermost first): the count of requests by
/// route, method and status; the request time limit; the caller's role (queries need read-only
/// access, everything else admin; on TLS the role comes from the bearer token); a body declared
/// over the limit refused before a byte of it is read; and, for a request under `/redfish`, the
/// daemon's own refusals answered in Redfish's error format.
async fn front_door(State(app): AppState, req: Request, next: Next) -> Response {
    let redfish = req.uri().path() == "/redfish" || req.uri().path().starts_with("/redfish/");
    let route = RouteLabel(req.extensions().get::<MatchedPath>().cloned());
    let method = MethodLabel(req.method().clone());
    let limits = app.settings().limits;
    let response =
        match tokio::time::timeout(limits.request_timeout, admit(&app, limits, req, next)).await {
            Ok(r) => r,
            Err(_) => ApiError::refuse(
                Refusal::TimedOut,
                "request",
                format!(
                    "it was not answered within {}",
                    humantime::format_duration(limits.request_timeout)
                ),
            )
            .into_response(),
        };
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: StatusLabel(response.status()),
        })
        .inc();
    if redfish {
        redfish_refusal(response)
    } else {
        response
    }
}

/// The request, answered, unless the caller may not make it or its declared body is over the
/// limit.
async fn admit(app: &App, limits: Limits, mut req: Request, next: Next) -> Response {
    let role = match authorize(app, &req) {
        Ok(role) => role,
        Err(refused) => return refused.into_response(),
    };
    req.extensions_mut().insert(role);
    // A body declared over the limit (`Content-Length`) is refused on every route before a byte
    // of it is read; a body without a declared length (chunked) is cut at the limit by [`Json`],
    // which reads no further and answers 413 too.
    let limit = limits.max_body_bytes as u64;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::refuse(
            Refusal::TooLarge,
            "request body",
            format!("it is over the body limit ({limit} bytes)"),
        )
        .into_response();
    }
    next.run(req).await
}

/// The caller's role, when it is enough for the request; else the refusal.
fn authorize(app: &App, req: &Request) -> Result<Role, ApiError> {
    let caller = req.extensions().get::<Caller>();
    let role = match caller {
        Some(Caller::Local { role, .. }) => *role,
        Some(Caller::Remote { .. }) => {
            // `Authorization: Bearer TOKEN`, or Redfish's session header `X-Auth-Token: TOKEN`,
            // which Redfish clients (redfishtool -t, python-redfish-library) send.
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            let token = header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .or_else(|| header("x-auth-token"))
                .map(str::trim);
            let Some(token) = token else {
                return Err(ApiError::refuse(
                    Refusal::Unauthenticated,
                    "request",
                    "a bearer token is required (Authorization: Bearer TOKEN)",
                ));
            };
            let role = app.tokens().role(token);
            if role == Role::None {
                return Err(ApiError::refuse(
                    Refusal::Unauthenticated,
                    "request",
                    "the token is not valid",
                ));
            }
            role
        }
        None => Role::None,
    };
    let needed = if matches!(*req.method(), Method::GET | Method::HEAD) {
        Role::ReadOnly
    } else {
        Role::Admin
    };
    if role < needed {
        let why = if role == Role::None {
            "this caller may not use vdsd (root, the store's owner and the read-only group may)"
                .to_string()
        } else {
            format!(
                "{} requires admin access; this caller may only query",
                req.method()
            )
        };
        if let Some(c) = caller {
            tracing::info!(caller = %c, method = %req.method(), path = %printable(req.uri().path()), "refused");
        }
        return Err(ApiError::refuse(Refusal::Forbidden, "request", why));
    }
    Ok(role)
}

/// The daemon's own refusal of a request under `/redfish` (no token, not allowed, too slow,
/// busy) in Redfish's error format, as the view answers its own errors; any other answer as is.
fn redfish_refusal(response: Response) -> Response {
    match response.extensions().get::<ApiError>() {
        Some(e) => {
            let mut r = vds_redfish::refusal(e.status, e.error.code(), e.error.message());
            if let Some(v) = response.headers().get(axum::http::header::WWW_AUTHENTICATE) {
                r.headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, v.clone());
            }
            r
        }
        None => response,
    }
}

/// The body limit, as the request's extension.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A JSON body, read within the body limit: 413 beyond it, 400 naming the problem when it does not
/// parse, is not a JSON object, or is missing (every route that takes a body requires one, as the
/// OpenAPI document says).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::refuse(
                        Refusal::TooLarge,
                        "request body",
                        format!("it is over the body limit ({limit} bytes)"),
                    )
                } else {
                    ApiError::malformed("request body", e.body_text())
                }
            })?;
        // Every body is a JSON object (serde would also take a struct's fields as an array).
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => {
                return Err(ApiError::malformed(
                    "request body",
                    "it is missing: this request takes a JSON object",
                ));
            }
            Some(b'{') => {}
            Some(_) => {
                return Err(ApiError::malformed(
                    "request body",
                    "it is not a JSON object",
                ));
            }
        }
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            ApiError::malformed("request body", format!("it is not the expected JSON: {e}"))
        })
    }
}

/// A query string, 400 naming the problem when it does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::malformed("query string", e.body_text()))
    }
}

/// Path parameters, 400 naming the problem when they do not parse.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::malformed("path", e.body_text()))
    }
}

/// `?provider=` of routes that name a subsystem.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProviderParam {
    /// The provider (its name or id), when two providers have a subsystem of the name given.
    pub provider: Option<String>,
}

fn as_id(segment: &str) -> Option<ObjectId> {
    Uuid::parse_str(segment).ok().map(ObjectId)
}

/// The provider a segment or parameter names (id or name).
pub fn provider_named(app: &App, segment: &str) -> ApiResult<String> {
    match as_id(segment) {
        Some(id) => Ok(app.service.provider_by_id(id)?),
        None => Ok(segment.to_string()),
    }
}

/// The subsystem a segment names (id, or name with `?provider=`).
pub fn subsystem_named(
    app: &App,
    segment: &str,
    provider: &ProviderParam,
) -> ApiResult<SubsystemSel> {
    if let Some(id) = as_id(segment) {
        return Ok(app.service.subsystem_by_id(id)?);
    }
    let provider = provider
        .provider
        .as_deref()
        .map(|p| provider_named(app, p))
        .transpose()?;
    Ok(SubsystemSel {
        provider,
        name: segment.to_string(),
    })
}

/// The portal a segment names (id or `HOST:PORT`).
pub fn portal_named(app: &App, sel: &SubsystemSel, segment: &str) -> ApiResult<VdsIpAddress> {
    match as_id(segment) {
        Some(id) => Ok(app.service.portal_address_by_id(sel, id)?),
        None => Ok(vds_service::portal_address(segment)?),
    }
}

/// The target a segment names (id or iSCSI name).
pub fn target_named(app: &App, sel: &SubsystemSel, segment: &str) -> ApiResult<String> {
    match as_id(segment) {
        Some(id) => Ok(app.service.target_name_by_id(sel, id)?),
        None => Ok(segment.to_string()),
    }
}

/// The portal group a segment names (id or tag).
pub fn group_named(app: &App, sel: &SubsystemSel, iqn: &str, segment: &str) -> ApiResult<u16> {
    if let Some(id) = as_id(segment) {
        return Ok(app.service.group_tag_by_id(sel, iqn, id)?);
    }
    segment.parse::<u16>().map_err(|_| {
        ApiError::malformed(
            format!("portal group {}", printable(segment)),
            "a portal group is named by its id or its tag (0 to 65535)",
        )
    })
}
