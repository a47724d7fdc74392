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
        serde_json::from_slice(&self.body).map_err(|e| not_json(&e))
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

/// The error of an answer whose body is not the JSON expected.
pub fn not_json(e: &serde_json::Error) -> Error {
    Error::new(Hresult::E_UNEXPECTED)
        .about(Subject::Other("vdsd's answer".into()))
        .because(format!("it is not the expected JSON: {e}"))
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

/// Sends one request over `stream` (a fresh connection): the response, whose body is still to be
/// read, and the task driving the connection (abort it when done).
async fn send<S>(
    stream: S,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<
    (
        hyper::Response<hyper::body::Incoming>,
        tokio::task::JoinHandle<()>,
    ),
    Error,
>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
    match sender.send_request(req).await {
        Ok(resp) => Ok((resp, driver)),
        Err(e) => {
            driver.abort();
            Err(transport("request", e))
        }
    }
}

/// The whole answer: status, headers and body (at most [`MAX_ANSWER`] bytes).
async fn read_answer(resp: hyper::Response<hyper::body::Incoming>) -> Result<Answer, Error> {
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
    Ok(Answer {
        status,
        headers,
        body,
    })
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
        let (resp, driver) = send(stream, method, path_and_query, headers, body).await?;
        let answer = read_answer(resp).await;
        driver.abort();
        answer
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

    async fn connect(&self) -> Result<tokio::net::UnixStream, Error> {
        tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| {
                Error::new(Hresult::from_io_error(&e))
                    .about(Subject::Other(format!(
                        "vdsd socket {}",
                        self.socket.display()
                    )))
                    .because(e.to_string())
            })
    }

    /// Sends one request.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Error> {
        let stream = self.connect().await?;
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        request_over(stream, method, path_and_query, &[], body, self.deadline).await
    }
}

/// Percent-encodes one path segment or query value: everything but RFC 3986's unreserved
/// characters.
pub fn segment(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

/// The most bytes one server-sent event may hold.
pub const MAX_EVENT: usize = 1 << 20;

/// How long an event stream may stay silent: the daemon sends a keep-alive comment every 15 s.
pub const STREAM_IDLE: Duration = Duration::from_secs(60);

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `id:`, when the event has one.
    pub id: Option<String>,
    /// `event:`, when given (`notifications-lost`, …); absent means `message`.
    pub event: Option<String>,
    /// `data:`, lines joined with `\n`.
    pub data: String,
}

/// The `text/event-stream` format, fed bytes as they come: complete events out, comments
/// (keep-alives) skipped, at most [`MAX_EVENT`] bytes held.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    pending: SseEvent,
}

impl SseParser {
    /// Adds bytes of the stream; an error when an event grows past [`MAX_EVENT`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() + self.pending.data.len() > MAX_EVENT {
            return Err(transport(
                "event stream",
                format!("an event of more than {MAX_EVENT} bytes"),
            ));
        }
        Ok(())
    }

    /// The next complete event in what was pushed, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                let ev = std::mem::take(&mut self.pending);
                if !ev.data.is_empty() || ev.event.is_some() {
                    return Some(ev);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => self.pending.id = Some(value),
                "event" => self.pending.event = Some(value),
                "data" => {
                    if !self.pending.data.is_empty() {
                        self.pending.data.push('\n');
                    }
                    self.pending.data.push_str(&value);
                }
                _ => {}
            }
        }
        None
    }
}

/// An open server-sent event stream (`GET /v1/events`).
pub struct EventStream {
    body: hyper::body::Incoming,
    parser: SseParser,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl EventStream {
    /// The next event; `None` when the daemon ended the stream. Each wait is bounded by
    /// [`STREAM_IDLE`], each event by [`MAX_EVENT`].
    pub async fn next(&mut self) -> Result<Option<SseEvent>, Error> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                return Ok(Some(ev));
            }
            let frame = tokio::time::timeout(STREAM_IDLE, self.body.frame())
                .await
                .map_err(|_| {
                    transport(
                        "event stream",
                        format!("silent for {} s", STREAM_IDLE.as_secs()),
                    )
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(transport("event stream", e)),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.parser.push(&data)?;
                    }
                }
            }
        }
    }
}

impl Client {
    /// Opens the event stream at `path_and_query` (`/v1/events?…`), after `last_event_id` when
    /// given. Errors (a refusal, a bad filter) come back as the daemon's error.
    pub async fn events(
        &self,
        path_and_query: &str,
        last_event_id: Option<u64>,
    ) -> Result<EventStream, Error> {
        let stream = self.connect().await?;
        let last = last_event_id.map(|id| id.to_string());
        let work = async {
            let mut headers = vec![("accept", "text/event-stream")];
            if let Some(id) = &last {
                headers.push(("last-event-id", id.as_str()));
            }
            let (resp, driver) = send(stream, "GET", path_and_query, &headers, None).await?;
            if !resp.status().is_success() {
                let answer = read_answer(resp).await;
                driver.abort();
                return Err(answer?.error());
            }
            Ok(EventStream {
                body: resp.into_body(),
                parser: SseParser::default(),
                driver,
            })
        };
        tokio::time::timeout(self.deadline, work)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(Hresult::from_win32(1460))
                    .about(Subject::Other("vdsd".into()))
                    .because(format!("no answer within {} s", self.deadline.as_secs())))
            })
    }
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
    fn server_sent_events_are_parsed_across_reads() {
        let mut p = SseParser::default();
        let stream = b": keep-alive\n\nid: 7\nevent: notifications-lost\ndata: {\"a\":\ndata: 1}\r\n\r\nid:8\ndata:x\n\n";
        let mut got = Vec::new();
        // One byte at a time: events come out whole, whatever the reads.
        for b in stream.iter() {
            p.push(&[*b]).expect("push");
            while let Some(ev) = p.next_event() {
                got.push(ev);
            }
        }
        assert_eq!(
            got,
            [
                SseEvent {
                    id: Some("7".into()),
                    event: Some("notifications-lost".into()),
                    data: "{\"a\":\n1}".into(),
                },
                SseEvent {
                    id: Some("8".into()),
                    event: None,
                    data: "x".into(),
                },
            ]
        );
        let mut p = SseParser::default();
        let e = p.push(&vec![b'x'; MAX_EVENT + 1]).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("[::1]:3260"), "%5B%3A%3A1%5D%3A3260");
        assert_eq!(segment("iqn.2026-11.x:y"), "iqn.2026-11.x%3Ay");
    }
}
