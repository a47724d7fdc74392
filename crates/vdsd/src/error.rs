//! Every failure the API answers: an [`ApiError`] carrying the one error of vds
//! ([`vds_model::Error`]: HRESULT, subject, cause) and the HTTP status, chosen in exactly one place
//! ([`status_of`], the table [`STATUS_TABLE`] documented in docs/DAEMON.md) except for the refusals
//! of the HTTP layer itself ([`Refusal`]: a body over the limit is 413, an unknown method 405, …),
//! which always carry `E_INVALIDARG` or `E_ACCESSDENIED`.
//!
//! The body is the `vds-api` error document `vdsadm --json` prints:
//! `{"error": {"hresult", "name", "message"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vds_api::ErrorDoc;
use vds_model::{Error, Hresult, Subject};

/// The HTTP status of each HRESULT (failures not listed: 500). Network failures (Winsock errors,
/// `HRESULT_FROM_WIN32(ERROR_TIMEOUT)`) are handled by [`status_of`] as a range.
pub const STATUS_TABLE: &[(Hresult, u16)] = &[
    (Hresult::E_INVALIDARG, 400),
    (Hresult::E_ACCESSDENIED, 403),
    (Hresult::VDS_E_ACCESS_DENIED, 403),
    (Hresult::VDS_E_OBJECT_NOT_FOUND, 404),
    (Hresult::VDS_E_BAD_COOKIE, 404),
    (Hresult::VDS_E_OBJECT_DELETED, 410),
    (Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS, 409),
    (Hresult::VDS_E_NAME_NOT_UNIQUE, 409),
    (Hresult::VDS_E_OBJECT_EXISTS, 409),
    (Hresult::VDS_E_ASSOCIATED_LUNS_EXIST, 409),
    (Hresult::VDS_E_ASSOCIATED_PORTALS_EXIST, 409),
    (Hresult::VDS_E_CANCEL_TOO_LATE, 409),
    (Hresult::VDS_E_NOT_SUPPORTED, 422),
    (Hresult::VDS_E_OBJECT_STATUS_FAILED, 502),
    (Hresult::VDS_E_ISCSI_LOGIN_FAILED, 502),
    (Hresult::VDS_E_ISCSI_CHAP_SECRET, 502),
    (Hresult::VDS_E_PROVIDER_CACHE_CORRUPT, 503),
    (Hresult::VDS_E_INITIALIZE_NOT_CALLED, 503),
    (Hresult::VDS_E_PROVIDER_EXITING, 503),
    (Hresult::E_OUTOFMEMORY, 503),
];

/// `HRESULT_FROM_WIN32(ERROR_DIR_NOT_EMPTY)`: removing a provider that still has subsystems.
const DIR_NOT_EMPTY: u32 = 145;
/// `HRESULT_FROM_WIN32(ERROR_TIMEOUT)`.
pub const ERROR_TIMEOUT: u32 = 1460;
/// `HRESULT_FROM_WIN32(ERROR_BUSY)`: too many connections or operations.
pub const ERROR_BUSY: u32 = 170;

/// The HTTP status for a failure code (see the module documentation).
pub fn status_of(hr: Hresult) -> StatusCode {
    if let Some((_, s)) = STATUS_TABLE.iter().find(|(h, _)| *h == hr) {
        return StatusCode::from_u16(*s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    match hr.win32_code() {
        Some(ERROR_TIMEOUT) => StatusCode::GATEWAY_TIMEOUT,
        Some(ERROR_BUSY) => StatusCode::SERVICE_UNAVAILABLE,
        Some(DIR_NOT_EMPTY) => StatusCode::CONFLICT,
        // Winsock: the array could not be reached.
        Some(10000..=11999) => StatusCode::BAD_GATEWAY,
        // The store's files: not found, access, …
        Some(2 | 3) => StatusCode::NOT_FOUND,
        Some(5) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The refusals of the HTTP layer, with their fixed status and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A malformed request: bad JSON, a bad path or query parameter (400, `E_INVALIDARG`).
    Malformed,
    /// A body over the limit (413, `E_INVALIDARG`).
    TooLarge,
    /// A request head over the limit, in bytes or header lines (431, `E_INVALIDARG`).
    HeadTooLarge,
    /// A request line whose URI is too long (414, `E_INVALIDARG`).
    UriTooLong,
    /// A method the resource does not have (405, `E_INVALIDARG`).
    MethodNotAllowed,
    /// A TLS request without a valid bearer token (401, `E_ACCESSDENIED`).
    Unauthenticated,
    /// A caller who may not do this (403, `E_ACCESSDENIED`).
    Forbidden,
    /// The request took longer than the limit (503, `HRESULT_FROM_WIN32(ERROR_TIMEOUT)`).
    TimedOut,
    /// Too many connections or operations at once (503, `HRESULT_FROM_WIN32(ERROR_BUSY)`).
    Busy,
}

/// The refusals' table: (refusal, status, code), documented in docs/DAEMON.md.
pub const REFUSALS: &[(Refusal, u16, Hresult)] = &[
    (Refusal::Malformed, 400, Hresult::E_INVALIDARG),
    (Refusal::TooLarge, 413, Hresult::E_INVALIDARG),
    (Refusal::HeadTooLarge, 431, Hresult::E_INVALIDARG),
    (Refusal::UriTooLong, 414, Hresult::E_INVALIDARG),
    (Refusal::MethodNotAllowed, 405, Hresult::E_INVALIDARG),
    (Refusal::Unauthenticated, 401, Hresult::E_ACCESSDENIED),
    (Refusal::Forbidden, 403, Hresult::E_ACCESSDENIED),
    (Refusal::TimedOut, 503, Hresult::from_win32(ERROR_TIMEOUT)),
    (Refusal::Busy, 503, Hresult::from_win32(ERROR_BUSY)),
];

/// A failed request: the error and the status it is answered with.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The error.
    pub error: Error,
    /// The HTTP status.
    pub status: StatusCode,
}

impl ApiError {
    /// A refusal of the HTTP layer about `subject`, because `cause`.
    pub fn refuse(refusal: Refusal, subject: impl Into<String>, cause: impl Into<String>) -> Self {
        let (_, status, code) = REFUSALS
            .iter()
            .find(|(r, _, _)| *r == refusal)
            .copied()
            .unwrap_or((refusal, 500, Hresult::E_UNEXPECTED));
        let subject = subject.into();
        let mut error = Error::new(code).because(cause);
        if !subject.is_empty() {
            error = error.about(Subject::Other(subject));
        }
        ApiError {
            error,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// A malformed request (400, `E_INVALIDARG`).
    pub fn malformed(subject: impl Into<String>, cause: impl Into<String>) -> Self {
        Self::refuse(Refusal::Malformed, subject, cause)
    }
}

impl ApiError {
    /// The whole HTTP/1.1 answer, for the connection layer that answers before there is a request
    /// (a head hyper refused): the status, the error document, and `connection: close`.
    pub fn to_http1_closing(&self) -> Vec<u8> {
        let body = serde_json::to_vec(&ErrorDoc {
            error: vds_api::ErrorBody::with_subject(&self.error),
        })
        .unwrap_or_default();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let status = status_of(error.code());
        ApiError { error, status }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let doc = ErrorDoc {
            error: vds_api::ErrorBody::with_subject(&self.error),
        };
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Kept for the layers that answer in another format (the Redfish view's errors).
        r.extensions_mut().insert(self);
        r
    }
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_status_and_the_issue_examples_hold() {
        let mut seen = std::collections::HashSet::new();
        for (h, _) in STATUS_TABLE {
            assert!(seen.insert(*h), "{h:?} twice");
        }
        assert_eq!(status_of(Hresult::E_ACCESSDENIED), StatusCode::FORBIDDEN);
        assert_eq!(Hresult::E_ACCESSDENIED.code(), 0x8007_0005);
        assert_eq!(
            status_of(Hresult::VDS_E_OBJECT_NOT_FOUND),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of(Hresult::from_win32(10061)),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status_of(Hresult::E_UNEXPECTED),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let e = ApiError::refuse(Refusal::TooLarge, "request body", "over 1 byte");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.error.code(), Hresult::E_INVALIDARG);
    }

    /// docs/DAEMON.md carries the same table: a row per code and per refusal.
    #[test]
    fn the_documented_table_is_this_one() {
        let doc = include_str!("../../../docs/DAEMON.md");
        for (h, s) in STATUS_TABLE {
            let row = format!(
                "| `{}` | {:#010X} | {s} |",
                h.name().unwrap_or("?"),
                h.code()
            );
            assert!(doc.contains(&row), "docs/DAEMON.md lacks the row {row}");
        }
        for (r, s, h) in REFUSALS {
            let name = Error::new(*h).code_name();
            let row = format!("| {r:?} | {s} | `{name}` |");
            assert!(doc.contains(&row), "docs/DAEMON.md lacks the row {row}");
        }
    }
}
