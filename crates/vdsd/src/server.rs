//! The listeners: the Unix socket, the optional TLS listener and the optional plain metrics
//! listener; the connection limits; graceful shutdown.
//!
//! Each accepted connection is its own task served by hyper's HTTP/1.1 connection with the limits:
//! a head must arrive within `header_timeout` and fit in `max_header_bytes`, a connection that moves
//! no byte for `idle_timeout` is closed, and at most `max_connections` are open over every listener
//! (one more is answered 503 `HRESULT_FROM_WIN32(ERROR_BUSY)` and closed, without waiting on it).
//! Accepting never waits on a client: TLS handshakes run in the connection's task, with their own
//! deadline. On shutdown, listeners stop accepting and connections finish the request they are
//! answering (event streams end), within the grace period.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::access::Caller;
use crate::app::App;
use crate::error::{ApiError, Refusal};

/// A connection's stream as hyper sees it: it records when it last moved a byte (for the idle
/// limit), and it gives hyper's own refusals the daemon's error body.
///
/// hyper answers a request head it cannot take (not HTTP, a bad header line, over the head limit
/// or the header count) by itself, before there is a request for the router to see: a status line
/// and `content-length: 0`, then it closes the connection. No route of the daemon answers an error
/// without a body, so such an answer, when hyper writes it, is replaced here by the daemon's own:
/// the same status, an `E_INVALIDARG` error document, `connection: close`.
struct Watched<S> {
    inner: S,
    last: Arc<AtomicU64>,
    epoch: Instant,
    /// The head limit, for the message.
    max_header_bytes: usize,
    /// The daemon's answer still to be written in place of hyper's.
    pending: Vec<u8>,
}

impl<S> Watched<S> {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                    self.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The daemon's answer in place of hyper's bodiless refusal of a head (`buf`, as hyper writes
/// it), or `None` when `buf` is not one.
fn head_refusal(buf: &[u8], max_header_bytes: usize) -> Option<Vec<u8>> {
    // Every write goes through here: the answers that cannot be one are passed at a glance.
    if !buf.starts_with(b"HTTP/1.1 4") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    if buf.len() != head_end + 4 {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    if !lines.any(|l| l.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let error = match status {
        400 => ApiError::refuse(
            Refusal::Malformed,
            "request head",
            "it is not an HTTP/1.1 request head (a bad request line or header line)",
        ),
        414 => ApiError::refuse(Refusal::UriTooLong, "request line", "its URI is too long"),
        431 => ApiError::refuse(
            Refusal::HeadTooLarge,
            "request head",
            format!(
                "it is over the head limit ({max_header_bytes} bytes, {MAX_HEADERS} header lines)"
            ),
        ),
        _ => return None,
    };
    Some(error.to_http1_closing())
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.poll_pending(cx)) {
            return Poll::Ready(Err(e));
        }
        if let Some(answer) = head_refusal(buf, this.max_header_bytes) {
            // hyper's bytes count as written; the daemon's go out in their place (now, or on
            // the flush hyper does next).
            this.pending = answer;
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The most header lines a request head may have (hyper's default; more: 431).
const MAX_HEADERS: usize = 100;

/// What every listener shares.
#[derive(Clone)]
pub struct Shared {
    /// The state.
    pub app: Arc<App>,
    /// One permit per open connection.
    pub connections: Arc<Semaphore>,
    /// True once the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// How long connections may take to finish on shutdown.
    pub grace: Duration,
}

/// Answers a connection over the limit 503 (`HRESULT_FROM_WIN32(ERROR_BUSY)`) and closes it,
/// without reading from it.
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S) {
    let answer = ApiError::refuse(
        Refusal::Busy,
        "connection",
        "too many connections are open; try again later",
    )
    .to_http1_closing();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves one connection with `router`, every request tagged with `caller`.
async fn serve_connection<S>(shared: Shared, stream: S, router: Router, caller: Caller)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = shared.app.settings().limits;
    let last = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let io = TokioIo::new(Watched {
        inner: stream,
        last: last.clone(),
        epoch,
        max_header_bytes: limits.max_header_bytes,
        pending: Vec::new(),
    });
    let svc = router.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(caller.clone());
        req
    });
    let svc = hyper_util::service::TowerToHyperService::new(svc);
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(limits.idle_timeout));
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(shared.grace, conn.as_mut()).await;
                return;
            }
            _ = tick.tick() => {
                let idle = epoch.elapsed().as_millis() as u64 - last.load(Ordering::Relaxed);
                if Duration::from_millis(idle) >= limits.idle_timeout {
                    tracing::debug!("closing a connection idle for {idle} ms");
                    return;
                }
            }
        }
    }
}

/// Serves the API on a Unix socket already bound.
pub async fn serve_unix(shared: Shared, listener: UnixListener, router: Router) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: pause instead of spinning.
                tracing::warn!(error = %e, "accept failed on the Unix socket");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let caller = match stream.peer_cred() {
            Ok(c) => Caller::Local {
                uid: c.uid(),
                pid: c.pid(),
                role: shared.app.policy().role(c.uid(), c.gid(), c.pid()),
            },
            Err(_) => Caller::Local {
                uid: u32::MAX,
                pid: None,
                role: crate::access::Role::None,
            },
        };
        let (shared, router) = (shared.clone(), router.clone());
        tokio::spawn(async move {
            shared.app.metrics.connections.inc();
            serve_connection(shared.clone(), stream, router, caller).await;
            shared.app.metrics.connections.dec();
            drop(permit);
        });
    }
}

/// Serves the API over TLS on a TCP listener.
pub async fn serve_tls(
    shared: Shared,
    listener: TcpListener,
    router: Router,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed on the TLS listener");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            // A plain-text answer on a TLS port would not be read: just close.
            drop(tcp);
            continue;
        };
        let (shared, router, acceptor) = (shared.clone(), router.clone(), acceptor.clone());
        tokio::spawn(async move {
            let deadline = shared.app.settings().limits.tls_handshake_timeout;
            let tls = match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "TLS handshake timed out");
                    return;
                }
            };
            shared.app.metrics.connections.inc();
            serve_connection(shared.clone(), tls, router, Caller::Remote { addr }).await;
            shared.app.metrics.connections.dec();
            drop(permit);
        });
    }
}

/// Serves `router` (the metrics alone) in plain HTTP on a TCP listener.
pub async fn serve_plain(shared: Shared, listener: TcpListener, router: Router) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, addr)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        let (shared, router) = (shared.clone(), router.clone());
        tokio::spawn(async move {
            serve_connection(shared, tcp, router, Caller::Remote { addr }).await;
            drop(permit);
        });
    }
}

/// The TLS configuration from a certificate chain and a private key in PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "certificate {}: no certificate in it",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The metrics listener's router: `/metrics` and nothing else.
pub fn metrics_router(app: Arc<App>) -> Router {
    use axum::routing::get;
    Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(app): axum::extract::State<Arc<App>>| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            crate::metrics::CONTENT_TYPE,
                        )],
                        app.metrics.encode(&app.service),
                    )
                },
            ),
        )
        .fallback(|| async {
            crate::error::ApiError::from(
                vds_model::Error::new(vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND)
                    .because("this listener serves /metrics only"),
            )
        })
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::head_refusal;

    #[test]
    fn only_hyper_s_bodiless_refusals_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 07:31:18 GMT\r\n\r\n";
        let ours = head_refusal(hyper, 16384).expect("replaced");
        let text = String::from_utf8(ours).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with("}}"), "{text}");
        assert!(text.contains(r#""name":"E_INVALIDARG""#), "{text}");
        // A route's own answer has a body: left alone, as are other statuses.
        let route = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert!(head_refusal(route, 16384).is_none());
        let empty_ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(head_refusal(empty_ok, 16384).is_none());
    }
}
