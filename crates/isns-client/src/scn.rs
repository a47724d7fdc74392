//! The SCN listener: a TCP listener on a configured address that the iSNS server connects out to
//! (reference §4). Each connection runs in its own task; each PDU must arrive whole within
//! `read_timeout`; an SCN is parsed, answered (function 0x8008, status 0, the destination) and
//! queued for the caller in a bounded channel. Anything else (a malformed PDU, another function,
//! a PDU not complete within the deadline) closes that connection only, as does silence for
//! `read_timeout` between PDUs. At most `max_connections` connections
//! are served at once; more are closed on accept. So a hostile or slow connection costs one task
//! and at most one PDU of `max_pdu_len` bytes, and cannot block the others.
//!
//! The answer is written only once the notification has a place in the queue: if the caller
//! does not take notifications for `read_timeout`, the SCN is left unanswered and the connection
//! closed, so the server retries it later rather than it being lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use isns_proto::wire::MAX_PDU_LEN;
use isns_proto::{Function, Message, Scn};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::pdu::read_pdu;

/// How an [`ScnListener`] listens.
#[derive(Debug, Clone)]
pub struct ScnListenerConfig {
    /// Where to listen (the Control node's portal IP and SCN port; port 0 picks one).
    pub bind: SocketAddr,
    /// Deadline for each PDU to arrive whole, and for queueing and answering it; default 5 s.
    pub read_timeout: Duration,
    /// Connections served at once; default 16.
    pub max_connections: usize,
    /// Notifications queued for the caller; default 64.
    pub queue: usize,
    /// Largest PDU accepted; default [`MAX_PDU_LEN`].
    pub max_pdu_len: usize,
}

impl ScnListenerConfig {
    /// Defaults, listening on `bind`.
    pub fn new(bind: SocketAddr) -> ScnListenerConfig {
        ScnListenerConfig {
            bind,
            read_timeout: Duration::from_secs(5),
            max_connections: 16,
            queue: 64,
            max_pdu_len: MAX_PDU_LEN,
        }
    }
}

/// One SCN received and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Who sent it.
    pub peer: SocketAddr,
    /// The notification.
    pub scn: Scn,
}

/// Counters of what the listener did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScnStats {
    /// Connections accepted and served.
    pub connections: u64,
    /// Connections closed on accept because `max_connections` were busy.
    pub refused_connections: u64,
    /// SCNs answered and queued.
    pub answered: u64,
    /// Connections closed for a malformed PDU, another function, a PDU over the cap, or a PDU
    /// begun but not finished within the read deadline (idle connections closed after
    /// `read_timeout` do not count).
    pub rejected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    refused_connections: AtomicU64,
    answered: AtomicU64,
    rejected: AtomicU64,
}

/// A running SCN listener; stopping it (drop) stops every connection task.
#[derive(Debug)]
pub struct ScnListener {
    local_addr: SocketAddr,
    rx: mpsc::Receiver<Notification>,
    counters: Arc<Counters>,
    accept: JoinHandle<()>,
}

impl ScnListener {
    /// Binds and starts accepting.
    ///
    /// # Errors
    /// The bind error; `InvalidInput` for a zero `queue` or `max_connections`.
    pub async fn bind(config: ScnListenerConfig) -> std::io::Result<ScnListener> {
        if config.queue == 0 || config.max_connections == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "queue and max_connections must be at least 1",
            ));
        }
        let listener = TcpListener::bind(config.bind).await?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(config.queue);
        let counters = Arc::new(Counters::default());
        let accept = tokio::spawn(accept_loop(listener, tx, config, counters.clone()));
        Ok(ScnListener {
            local_addr,
            rx,
            counters,
            accept,
        })
    }

    /// The address listened on (register its IP and port as the portal and SCN port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next notification; `None` once the listener has stopped.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    /// The next notification if one is queued.
    pub fn try_recv(&mut self) -> Option<Notification> {
        self.rx.try_recv().ok()
    }

    /// What the listener did so far.
    pub fn stats(&self) -> ScnStats {
        let c = &self.counters;
        ScnStats {
            connections: c.connections.load(Ordering::Relaxed),
            refused_connections: c.refused_connections.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ScnListener {
    fn drop(&mut self) {
        // The accept task owns the connection tasks' JoinSet: aborting it aborts them.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<Notification>,
    config: ScnListenerConfig,
    counters: Arc<Counters>,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // EMFILE and the like: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    counters.refused_connections.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                    continue;
                };
                counters.connections.fetch_add(1, Ordering::Relaxed);
                let (tx, config, counters) = (tx.clone(), config.clone(), counters.clone());
                tasks.spawn(async move {
                    if serve(stream, peer, &tx, &config, &counters).await.is_err() {
                        counters.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(permit);
                });
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Serves one connection until it closes cleanly (`Ok`) or misbehaves (`Err`).
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    tx: &mpsc::Sender<Notification>,
    config: &ScnListenerConfig,
    counters: &Counters,
) -> Result<(), ()> {
    let _ = stream.set_nodelay(true);
    let max = config.max_pdu_len.min(MAX_PDU_LEN);
    loop {
        let deadline = Instant::now() + config.read_timeout;
        let pdu = match read_pdu(&mut stream, deadline, max).await {
            Ok(p) => p,
            // A clean close, or nothing at all for `read_timeout` between PDUs: an idle
            // connection is closed without counting as misbehaviour.
            Err(
                crate::pdu::ReadError::Closed { received: 0 }
                | crate::pdu::ReadError::Timeout { received: 0 },
            ) => return Ok(()),
            Err(_) => return Err(()),
        };
        let message = Message::parse_bytes(&pdu).map_err(drop)?;
        if message.function != Function::SCN {
            return Err(());
        }
        let scn = Scn::from_message(&message).map_err(drop)?;
        let answer = Message::scn_response(scn.transaction_id, &scn.destination)
            .to_vec()
            .map_err(drop)?;
        let deadline = Instant::now() + config.read_timeout;
        let permit = match tokio::time::timeout_at(deadline, tx.reserve()).await {
            Ok(Ok(p)) => p,
            // The caller is gone or not keeping up: leave the SCN unanswered (it is retried).
            _ => return Err(()),
        };
        match tokio::time::timeout_at(deadline, stream.write_all(&answer)).await {
            Ok(Ok(())) => {}
            _ => return Err(()),
        }
        counters.answered.fetch_add(1, Ordering::Relaxed);
        permit.send(Notification { peer, scn });
    }
}
