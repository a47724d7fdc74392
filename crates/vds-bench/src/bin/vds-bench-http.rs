//! The HTTP half of `bench/compare`'s daemon comparison (docs/PERFORMANCE.md, "The daemon: GET
//! portals against the floor"): a load generator, and the floor it is compared with.
//!
//! - `floor`: the minimal hyper server: the same response bytes (a file) to every request, on a
//!   Unix socket or over TLS on loopback TCP, the transports vdsd serves. What a request costs
//!   when the server does nothing but HTTP.
//! - `load`: keep-alive connections sending `GET PATH` one request after another each, for a
//!   duration after a warm-up; prints one JSON line with the requests per second, the p50 and p99
//!   latency, and the errors (a status other than 200, or a body of another length).
//! - `cert`: a self-signed certificate for `localhost` and its key, for both servers.
//!
//! It depends on none of the crates it measures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Parser)]
#[command(
    name = "vds-bench-http",
    about = "Load generator and floor server of bench/compare"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the same bytes to every request until killed.
    Floor {
        /// The response body.
        #[arg(long)]
        body: PathBuf,
        /// Its Content-Type.
        #[arg(long, default_value = "application/json")]
        content_type: String,
        #[command(flatten)]
        transport: Transport,
        /// The certificate (PEM), with --tls.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// The key (PEM), with --tls.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Send requests and print what they took.
    Load {
        #[command(flatten)]
        transport: Transport,
        /// The certificate to trust (PEM), with --tls.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// A bearer token to send.
        #[arg(long)]
        token: Option<String>,
        /// The request's path and query.
        #[arg(long)]
        path: String,
        /// Connections, each sending one request after another.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Seconds measured.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seconds sent before measuring.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// The body length every answer must have.
        #[arg(long)]
        expect_bytes: Option<usize>,
        /// The load generator's threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Write DIR/cert.pem and DIR/key.pem (self-signed, for localhost).
    Cert {
        /// Where.
        dir: PathBuf,
    },
}

#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
struct Transport {
    /// A Unix socket.
    #[arg(long)]
    unix: Option<PathBuf>,
    /// TLS on this TCP address.
    #[arg(long)]
    tls: Option<std::net::SocketAddr>,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("vds-bench-http: {msg}");
    std::process::exit(1)
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Cert { dir } => {
            let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                .unwrap_or_else(|e| fail(e));
            let write = |name: &str, text: String| {
                std::fs::write(dir.join(name), text).unwrap_or_else(|e| fail(e));
            };
            write("cert.pem", made.cert.pem());
            write("key.pem", made.signing_key.serialize_pem());
        }
        Command::Floor {
            body,
            content_type,
            transport,
            cert,
            key,
        } => {
            let body = Bytes::from(std::fs::read(&body).unwrap_or_else(|e| fail(e)));
            let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| fail(e));
            rt.block_on(floor(body, content_type, transport, cert, key));
        }
        Command::Load {
            transport,
            ca,
            token,
            path,
            connections,
            duration,
            warmup,
            expect_bytes,
            threads,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()
                .unwrap_or_else(|e| fail(e));
            let plan = Plan {
                transport,
                tls: ca.map(|ca| tls_connector(&ca)),
                token,
                path,
                expect_bytes,
                warmup: Duration::from_secs_f64(warmup),
                duration: Duration::from_secs_f64(duration),
            };
            let report = rt.block_on(load(Arc::new(plan), connections.max(1)));
            println!("{report}");
        }
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap_or_else(|e| fail(e))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| fail(e));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(e));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| fail(e))
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap_or_else(|e| fail(e));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn tls_connector(ca: &Path) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| fail(e)) {
        roots
            .add(cert.unwrap_or_else(|e| fail(e)))
            .unwrap_or_else(|e| fail(e));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| fail(e))
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Serves one connection: `body` to every request.
async fn serve<S>(stream: S, body: Bytes, content_type: Arc<str>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
        let (body, content_type) = (body.clone(), content_type.clone());
        async move {
            hyper::Response::builder()
                .header("content-type", &*content_type)
                .body(Full::new(body))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn floor(
    body: Bytes,
    content_type: String,
    transport: Transport,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) {
    let content_type: Arc<str> = content_type.into();
    if let Some(path) = transport.unix {
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap_or_else(|e| fail(e));
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(s, body.clone(), content_type.clone()));
        }
    }
    let addr = transport.tls.unwrap_or_else(|| fail("--unix or --tls"));
    let (Some(cert), Some(key)) = (cert, key) else {
        fail("--tls needs --cert and --key")
    };
    let acceptor = tls_acceptor(&cert, &key);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(e));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, body, content_type) = (acceptor.clone(), body.clone(), content_type.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                serve(tls, body, content_type).await;
            }
        });
    }
}

/// What every connection of a run does.
struct Plan {
    transport: Transport,
    tls: Option<tokio_rustls::TlsConnector>,
    token: Option<String>,
    path: String,
    expect_bytes: Option<usize>,
    warmup: Duration,
    duration: Duration,
}

/// What one connection saw while measured: latencies in microseconds, and errors.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(plan: &Plan) -> Result<Sender, String> {
    async fn handshake<S>(stream: S) -> Result<Sender, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
    if let Some(path) = &plan.transport.unix {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return handshake(s).await;
    }
    let addr = plan.transport.tls.ok_or("no transport")?;
    let connector = plan.tls.clone().ok_or("--tls needs --ca")?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    handshake(tls).await
}

async fn one_connection(plan: Arc<Plan>, start: Instant) -> Seen {
    let mut seen = Seen::default();
    let mut sender = match connect(&plan).await {
        Ok(s) => s,
        Err(e) => {
            seen.errors += 1;
            seen.first_error = Some(e);
            return seen;
        }
    };
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    loop {
        let t = Instant::now();
        if t >= end {
            return seen;
        }
        let mut req = hyper::Request::get(plan.path.as_str()).header("host", "localhost");
        if let Some(token) = &plan.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let Ok(req) = req.body(Empty::new()) else {
            seen.errors += 1;
            return seen;
        };
        let outcome = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status != 200 {
                return Err(format!("status {status}"));
            }
            if plan.expect_bytes.is_some_and(|n| n != body.len()) {
                return Err(format!("a body of {} bytes", body.len()));
            }
            Ok(())
        }
        .await;
        let took = t.elapsed();
        if t >= measure_from {
            match outcome {
                Ok(()) => seen.latencies_us.push(took.as_micros() as u64),
                Err(e) => {
                    seen.errors += 1;
                    seen.first_error.get_or_insert(e);
                }
            }
        }
        if sender.is_closed() {
            match connect(&plan).await {
                Ok(s) => sender = s,
                Err(e) => {
                    seen.errors += 1;
                    seen.first_error.get_or_insert(e);
                    return seen;
                }
            }
        }
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn load(plan: Arc<Plan>, connections: usize) -> String {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        tasks.spawn(one_connection(plan.clone(), start));
    }
    let mut all = Seen::default();
    while let Some(seen) = tasks.join_next().await {
        let seen = seen.unwrap_or_default();
        all.latencies_us.extend(seen.latencies_us);
        all.errors += seen.errors;
        if all.first_error.is_none() {
            all.first_error = seen.first_error;
        }
    }
    all.latencies_us.sort_unstable();
    let seconds = plan.duration.as_secs_f64();
    let n = all.latencies_us.len();
    serde_json::json!({
        "requests": n,
        "seconds": seconds,
        "rps": n as f64 / seconds,
        "p50_ms": percentile(&all.latencies_us, 0.50),
        "p99_ms": percentile(&all.latencies_us, 0.99),
        "errors": all.errors,
        "first_error": all.first_error,
        "connections": connections,
    })
    .to_string()
}
