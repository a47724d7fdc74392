//! The client of `vdsd`: one HTTP/1.1 request at a time over the daemon's Unix socket (or any
//! stream, such as a TLS one), with a deadline on every wait and a cap on the answer's size.
//!
//! vdsadm uses it in its one-writer mode (a daemon serves the store: the command goes to it), and
//! the daemon's tests use it. It knows the API's documents (`vds-api`) and how the daemon answers
//! errors, and turns an error body back into the one error of vds ([`error_from_body`]) so that a
//! front end prints it exactly as it would have printed the service's own error.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use vds_api::{ErrorBody, ErrorDoc};
use vds_model::{Error, Hresult, Subject};

/// The most bytes of an answer read.
pub const MAX_ANSWER: usize = 64 << 20;

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(Hresult::E_UNEXPECTED)
                .about(Subject::Other("vdsd's answer".into()))
                .because(format!("it is not the expected JSON: {e}"))
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error the body carries (for a failure status).
    pub fn error(&self) -> Error {
        match self.json::<ErrorDoc>() {
            Ok(doc) => error_from_body(&doc.error),
            Err(e) => e.because(format!("status {}", self.status)),
        }
    }
}

/// The error an error body describes, such that its `message()` and `Display` are those of the
/// error the daemon answered.
pub fn error_from_body(body: &ErrorBody) -> Error {
    let code = u32::from_str_radix(body.hresult.trim_start_matches("0x"), 16)
        .map(Hresult::from_code)
        .unwrap_or(Hresult::E_FAIL);
    let mut e = Error::new(code);
    let mut explanation = body.message.as_str();
    if let Some(subject) = &body.subject {
        if let Some(rest) = explanation.strip_prefix(&format!("{subject}: ")) {
            explanation = rest;
        }
        e = e.about(Subject::Other(subject.clone()));
    }
    let standard = Error::new(code).explanation();
    let cause = match explanation.strip_prefix(&standard) {
        Some(rest) => rest.strip_prefix(": ").unwrap_or(rest),
        None => explanation,
    };
    e.because(cause)
}

fn transport(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(Hresult::from_win32(10054))
        .about(Subject::Other("vdsd".into()))
        .because(format!("{what}: {e}"))
}

/// Sends one request over `stream` (a fresh connection) and reads the answer, all within `deadline`.
pub async fn request_over<S>(
    stream: S,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
    deadline: Duration,
) -> Result<Answer, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let work = async {
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport("handshake", e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", "vdsd");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| transport("request", e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| transport("request", e))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| transport("answer", e))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Answer {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(Hresult::from_win32(1460))
                .about(Subject::Other("vdsd".into()))
                .because(format!("no answer within {} s", deadline.as_secs())))
        })
}

/// A client of the daemon on a Unix socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    /// The deadline of each request.
    pub deadline: Duration,
}

impl Client {
    /// A client of the daemon listening on `socket`.
    pub fn new(socket: impl AsRef<Path>) -> Client {
        Client {
            socket: socket.as_ref().to_path_buf(),
            deadline: Duration::from_secs(60),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Error> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| {
                Error::new(Hresult::from_io_error(&e))
                    .about(Subject::Other(format!(
                        "vdsd socket {}",
                        self.socket.display()
                    )))
                    .because(e.to_string())
            })?;
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        request_over(stream, method, path_and_query, &[], body, self.deadline).await
    }
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_becomes_the_same_error() {
        let original = Error::new(Hresult::VDS_E_OBJECT_STATUS_FAILED)
            .about(Subject::Subsystem("lab".into()))
            .because("127.0.0.1:3260: authentication failure");
        let body = ErrorBody::with_subject(&original);
        let back = error_from_body(&body);
        assert_eq!(back.to_string(), original.to_string());
        assert_eq!(back.message(), original.message());
        let plain = Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND);
        assert_eq!(
            error_from_body(&ErrorBody::with_subject(&plain)).to_string(),
            plain.to_string()
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("[::1]:3260"), "%5B%3A%3A1%5D%3A3260");
        assert_eq!(segment("iqn.2026-11.x:y"), "iqn.2026-11.x%3Ay");
    }
}
