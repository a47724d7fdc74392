//! The OpenAPI 3.1 document, generated from the handlers' annotations and the `vds-api` types
//! (utoipa), served at `/v1/openapi.json` and committed as `crates/vdsd/openapi.json` (a test fails
//! when the two differ: regenerate with `vdsd openapi > crates/vdsd/openapi.json`).

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use vds_api::ErrorDoc;

use super::{change, query, stream};

/// Every error status a route may answer, each with the error document (see docs/DAEMON.md for
/// which HRESULT gives which status).
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum ApiErrors {
    /// Malformed: bad JSON, a bad path or query parameter (`E_INVALIDARG`).
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorDoc),
    /// No valid bearer token (TLS listener).
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorDoc),
    /// The caller may not do this (`E_ACCESSDENIED`).
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorDoc),
    /// No such object (`VDS_E_OBJECT_NOT_FOUND`).
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorDoc),
    /// The resource has no such method.
    #[response(status = 405)]
    MethodNotAllowed(#[to_schema] ErrorDoc),
    /// A conflicting call or object (`VDS_E_ANOTHER_CALL_IN_PROGRESS`, `VDS_E_NAME_NOT_UNIQUE`, …).
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorDoc),
    /// The object no longer exists (`VDS_E_OBJECT_DELETED`).
    #[response(status = 410)]
    Gone(#[to_schema] ErrorDoc),
    /// The body is over the limit.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorDoc),
    /// The object does not support the operation (`VDS_E_NOT_SUPPORTED`).
    #[response(status = 422)]
    NotSupported(#[to_schema] ErrorDoc),
    /// An unexpected failure.
    #[response(status = 500)]
    Internal(#[to_schema] ErrorDoc),
    /// The array failed or could not be reached.
    #[response(status = 502)]
    BadGateway(#[to_schema] ErrorDoc),
    /// The provider cache is corrupt, or the daemon is too busy, or the request took too long.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorDoc),
    /// The array did not answer in time.
    #[response(status = 504)]
    GatewayTimeout(#[to_schema] ErrorDoc),
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "vdsd", description = "The VDS iSCSI hardware-provider service (IVdsService, \
        IVdsSubSystemIscsi and the rest) over HTTP/JSON. See docs/DAEMON.md."),
    paths(
        query::service, query::object, query::providers, query::provider, query::subsystems,
        query::subsystem, query::portals, query::portal, query::portal_groups_of_portal,
        query::targets, query::target, query::portal_groups, query::portal_group,
        query::portals_of_group, query::operations, query::operation,
        change::refresh, change::reenumerate, change::refresh_subsystem, change::add_provider,
        change::remove_provider, change::add_subsystem, change::set_subsystem,
        change::remove_subsystem, change::set_portal_status, change::create_target,
        change::set_target_alias, change::set_target_secret, change::remember_initiator_secret,
        change::delete_target, change::create_portal_group,
        change::delete_portal_group, change::add_portal, change::remove_portal,
        change::cancel_operation, stream::events, serve,
    ),
    components(schemas(vds_api::EventDoc, vds_api::LostDoc)),
    modifiers(&Security),
    security((), ("bearer" = [])),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text (pretty, with a final line end: the committed file).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object), ApiErrors))]
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = include_str!("../../openapi.json");
        let generated = super::document();
        assert!(
            committed == generated,
            "crates/vdsd/openapi.json differs from the code: run `vdsd openapi > crates/vdsd/openapi.json`"
        );
        let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
    }
}
