//! `vdsd`: the VDS service as a daemon. A thin front end over `vds-service` (as `vdsadm` is): it
//! serves the service's documents over HTTP/1.1 + JSON on a Unix socket (and, optionally, TLS on
//! TCP), runs the operations that contact arrays as `IVdsAsync`-style operations, pushes the
//! service's notifications as server-sent events, refreshes every subsystem on its own schedule and
//! exports metrics for Prometheus. It holds no VDS logic of its own.
//!
//! ```text
//!   clients ─► server (listeners, limits, access) ─► api/v1 (one service call per route)
//!                                                        │
//!   refresher (periodic refresh) ───────────────────────►├─► vds-service ─► model, store, providers
//!   events (ring, SSE) ◄── service sink (notifications) ◄┘
//!   metrics (scrape) ◄── service queries
//! ```

mod access;
mod answers;
mod api;
mod app;
mod error;
mod events;
mod metrics;
mod operations;
mod refresher;
mod server;
mod settings;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::sync::{Semaphore, watch};
use vds_model::Error;
use vds_service::{Service, ServiceOptions};

use crate::access::{LocalPolicy, Role, Tokens};
use crate::app::App;
use crate::server::Shared;

/// The VDS service as a daemon: the iSCSI hardware providers' API over HTTP/JSON, with
/// notifications pushed as server-sent events and metrics for Prometheus. See docs/DAEMON.md.
#[derive(Debug, Parser)]
#[command(name = "vdsd", version)]
struct Cli {
    /// The store to serve. Default: $VDS_HOME when set, else /var/lib/vds for root and
    /// $XDG_STATE_HOME/vds for others (as vdsadm).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Serve a throwaway store holding the simulator (provider "vds-sim"), for a demonstration.
    #[arg(long, conflicts_with = "store")]
    sim: bool,
    /// The Unix socket. Default: /run/vds/vdsd.sock for root, else $XDG_RUNTIME_DIR/vds/vdsd.sock.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also listen on this TCP address with TLS (needs --tls-cert, --tls-key and --tokens).
    #[arg(long, value_name = "ADDR:PORT", requires_all = ["tls_cert", "tls_key"])]
    listen: Option<std::net::SocketAddr>,
    /// The TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The bearer tokens of the TLS listener (lines `NAME ROLE SHA256`, mode 0600; see `vdsd token
    /// add`).
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Serve /metrics (only) in plain HTTP on this TCP address, for Prometheus.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// The daemon's configuration file (TOML; read again on SIGHUP).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The group whose members may query (overrides the configuration).
    #[arg(long, value_name = "GROUP")]
    read_only_group: Option<String>,
    /// The refresh interval of every subsystem whose provider has none of its own ("0s": never).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    refresh_interval: Option<Duration>,
    /// How long in-flight work may take to finish on SIGTERM.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
    /// More logging (-v debug, -vv trace); RUST_LOG-style filters in $VDSD_LOG.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the OpenAPI document on stdout.
    Openapi,
    /// Manage the bearer tokens of the TLS listener.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Make a token, keep its digest in the tokens file, print the token (once).
    Add {
        /// The token's name (for the logs).
        name: String,
        /// `admin` or `read-only`.
        #[arg(long, value_parser = ["admin", "read-only"])]
        role: String,
        /// The tokens file (default /etc/vds/tokens).
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
    },
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VDSD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Under systemd (JOURNAL_STREAM set) the journal stamps each line itself: no time, no colour.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = if journald {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("vdsd: {e}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    vds_alloc::tune();
    let cli = Cli::parse();
    match &cli.command {
        Some(Cmd::Openapi) => {
            print!("{}", api::openapi::document());
            return ExitCode::SUCCESS;
        }
        Some(Cmd::Token(TokenCmd::Add { name, role, tokens })) => {
            let path = tokens.clone().unwrap_or_else(access::default_tokens_path);
            let role = if role == "admin" {
                Role::Admin
            } else {
                Role::ReadOnly
            };
            return match access::add_token(&path, name, role) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        None => {}
    }
    init_tracing(cli.verbose);
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Idle and slow clients hold descriptors: take every one the hard limit allows.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Everything SIGHUP reads again.
fn load_reloadable(
    cli: &Cli,
    root: &Path,
) -> Result<(settings::Reloadable, LocalPolicy, Tokens), Error> {
    let mut s = settings::load(cli.config.as_deref())?;
    if let Some(g) = &cli.read_only_group {
        s.read_only_group = Some(g.clone());
    }
    if let Some(i) = cli.refresh_interval {
        s.refresh.interval = i;
    }
    let policy = LocalPolicy::new(root, s.read_only_group.as_deref())?;
    let tokens = match &cli.tokens {
        Some(p) => Tokens::load(p)?,
        None => Tokens::default(),
    };
    Ok((s, policy, tokens))
}

/// Binds the Unix socket: its directory made when missing, a stale socket replaced (one a live
/// daemon answers on is refused), mode 0660, group the read-only group.
fn bind_socket(path: &Path, gid: Option<u32>) -> Result<tokio::net::UnixListener, String> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("socket directory {}: {e}", dir.display()))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("socket {shown}: another daemon answers on it"));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("socket {shown}: cannot replace it: {e}"))?;
    }
    let listener =
        tokio::net::UnixListener::bind(path).map_err(|e| format!("socket {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("socket {shown}: {e}"))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| format!("socket {shown}: chown: {e}"))?;
    }
    Ok(listener)
}

async fn run(cli: Cli) -> Result<(), String> {
    let service = if cli.sim {
        Service::simulator().await.map_err(|e| e.to_string())?
    } else {
        let root = cli
            .store
            .clone()
            .unwrap_or_else(vds_store::Store::default_root);
        let mut options = ServiceOptions::new(root);
        options.create = true;
        Service::open(options).map_err(|e| e.to_string())?
    };
    // The daemon holds its pictures: each provider's is loaded once, live, by whichever of the
    // refresher, the event feed and the first client asks first.
    service.hold_pictures();
    let root = service.root().to_path_buf();
    let (reloadable, policy, tokens) = load_reloadable(&cli, &root).map_err(|e| e.to_string())?;
    let socket = cli.socket.clone().unwrap_or_else(settings::default_socket);
    let claim = vds_store::daemon::claim(&root, &socket).map_err(|e| Error::from(e).to_string())?;
    let listener = bind_socket(&socket, policy.read_only_gid)?;
    let tls = match (&cli.listen, &cli.tls_cert, &cli.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let acceptor = server::tls_acceptor(cert, key)?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("listen {addr}: {e}"))?;
            if tokens.len() == 0 {
                tracing::warn!(
                    "the TLS listener has no tokens (--tokens): every request will be refused"
                );
            }
            Some((l, acceptor))
        }
        _ => None,
    };
    let metrics = match &cli.metrics {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("metrics {addr}: {e}"))?,
        ),
        None => None,
    };
    let (stop, shutdown) = watch::channel(false);
    let max_connections = reloadable.limits.max_connections;
    let app = App::new(service, reloadable, policy, tokens, shutdown.clone());
    let shared = Shared {
        app: app.clone(),
        connections: Arc::new(Semaphore::new(max_connections)),
        shutdown: shutdown.clone(),
        grace: cli.shutdown_timeout,
    };
    let router = api::router(app.clone());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(server::serve_unix(shared.clone(), listener, router.clone()));
    if let Some((l, acceptor)) = tls {
        tasks.spawn(server::serve_tls(
            shared.clone(),
            l,
            router.clone(),
            acceptor,
        ));
    }
    if let Some(l) = metrics {
        tasks.spawn(server::serve_plain(
            shared.clone(),
            l,
            server::metrics_router(app.clone()),
        ));
    }
    // The daemon's own work. Service watchers (a provider kind's live change feed, such as iSNS
    // SCNs) are spawned here beside the refresher, with the same shutdown signal.
    let refresher = tokio::spawn(refresher::run(app.clone(), cli.shutdown_timeout));
    let watchers = tokio::spawn(watch_providers(app.clone()));
    tracing::info!(store = %root.display(), socket = %socket.display(),
        tls = ?cli.listen, metrics = ?cli.metrics, "vdsd ready");
    let _ = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&format!(
                "serving {} on {}",
                root.display(),
                socket.display()
            )),
        ],
    );
    signals(&cli, &app, &root).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: finishing in-flight work");
    stop.send_replace(true);
    if !app.ops.drain(cli.shutdown_timeout).await {
        tracing::warn!("operations still running after the shutdown timeout are abandoned");
    }
    let _ = tokio::time::timeout(cli.shutdown_timeout, refresher).await;
    let _ = tokio::time::timeout(cli.shutdown_timeout, watchers).await;
    let _ = tokio::time::timeout(cli.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let _ = std::fs::remove_file(&socket);
    drop(claim);
    tracing::info!("stopped");
    Ok(())
}

/// Runs the watchers of the providers whose kind has one (an iSNS provider's SCN listener, see
/// `vds_service::watch`): what they report becomes a refresh of the subsystem concerned, whose
/// notifications reach `/v1/events` like any other. The periodic refresh stays the refresher's.
/// Started again after a reload (a provider added or removed), stopped on shutdown (watchers
/// deregister from their servers).
async fn watch_providers(app: Arc<App>) {
    let mut shutdown = app.shutdown.clone();
    loop {
        let options = vds_service::WatchOptions {
            provider: None,
            refresh_interval: None,
        };
        let mut watch = match app.service.watch(options) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "the providers' watchers could not start");
                None
            }
        };
        let reloaded = app.reloaded.notified();
        tokio::pin!(reloaded);
        let again = loop {
            tokio::select! {
                event = async {
                    match watch.as_mut() {
                        Some(w) => w.next_event().await,
                        None => std::future::pending().await,
                    }
                } => match event {
                    Some(event) => tracing::info!(?event, "watch"),
                    None => watch = None,
                },
                _ = &mut reloaded => break true,
                _ = shutdown.wait_for(|stop| *stop) => break false,
            }
        };
        if let Some(w) = watch {
            w.stop().await;
        }
        if !again {
            return;
        }
    }
}

/// Waits for SIGTERM or SIGINT; SIGHUP reloads meanwhile.
async fn signals(cli: &Cli, app: &Arc<App>, root: &Path) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                match load_reloadable(cli, root) {
                    Ok((s, p, t)) => {
                        app.reload(s, p, t);
                        tracing::info!("configuration reloaded");
                    }
                    Err(e) => tracing::error!(error = %e, "reload failed; the previous configuration stays"),
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }
}
