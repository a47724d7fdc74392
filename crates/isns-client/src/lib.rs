//! The tokio driver for iSNS (RFC 4171): it owns the TCP connection to the server, transaction
//! ids, deadlines and size caps, and runs the sans-IO recipes of [`isns_proto`]. It knows nothing
//! of VDS.
//!
//! - [`Client`]: one server (`host:port`), one request at a time. [`Client::exchange`] sends any
//!   [`Message`] and returns the matching reply; [`Client::request`] also turns a non-zero status
//!   into [`ErrorKind::Status`].
//! - [`Client::query_all`]: every visible storage node with its entity, portals and portal groups
//!   (the one-shot DevAttrQry, falling back to a DevGetNext walk and one DevAttrQry per node
//!   when the server answers status 11; see [`isns_proto::query`]).
//! - [`Client::query_entity`], [`Client::query_node`]: one entity (with the same fallback) or one
//!   storage node, `None` when the server has no such object.
//! - [`Client::register_control_node`], [`Client::deregister`], [`Client::scn_register`],
//!   [`Client::scn_deregister`]: being a Control node (which sees every object) and asking for
//!   state change notifications.
//! - [`ScnListener`]: the TCP listener the server connects out to with SCNs; each one is parsed,
//!   answered and handed to the caller through a bounded queue.
//!
//! # Transactions, deadlines and caps
//!
//! Each request gets the next transaction id (1, 2, ..., wrapping and skipping 0). Requests are
//! never pipelined, and any failed exchange drops the connection (the next request reconnects),
//! so a reply to an abandoned request can never arrive on a live connection. A reply with
//! another transaction id, or whose function is not the response to ours, is therefore an error
//! ([`ErrorKind::Malformed`] with [`isns_proto::PeerMisbehaved::TransactionIdMismatch`] or
//! `UnexpectedFunction`), not something to skip.
//!
//! Every wait has a deadline: `connect_timeout` for resolving and connecting, `exchange_timeout`
//! for writing one request and reading its whole reply. A reply whose header announces more
//! than `max_reply_len` bytes is refused before its payload is read, so memory per exchange is
//! bounded by that cap; the protocol layer caps attributes, strings and objects
//! ([`isns_proto`] crate doc).
//!
//! # Example
//!
//! ```no_run
//! use isns_client::{Client, ClientConfig};
//!
//! # async fn run() -> Result<(), isns_client::Error> {
//! let mut client = Client::new("127.0.0.1:3205", ClientConfig::new("iqn.2026-11.org.vds:control"));
//! let found = client.query_all().await?;
//! for node in &found.objects.nodes {
//!     println!("{} ({:?})", node.name, node.node_type);
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod pdu;
mod scn;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use error::{Error, ErrorKind, Phase};
pub use isns_proto::query::QueryLimits;
pub use isns_proto::{
    ControlNode, ControlPortal, Entity, Function, Message, Node, NodeType, Objects, Port, Portal,
    PortalGroup, Scn, ScnBitmap, ScnEvent, Status,
};
pub use scn::{Notification, ScnListener, ScnListenerConfig, ScnStats};

use isns_proto::query::QueryAll;
use isns_proto::wire::MAX_PDU_LEN;
use pdu::{ReadError, read_pdu};

/// How a [`Client`] talks to its server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our iSCSI name: the Source of queries. Must be the registered Control node's name for
    /// Control visibility.
    pub source_name: String,
    /// Deadline for resolving and connecting; default 3 s.
    pub connect_timeout: Duration,
    /// Deadline for writing one request and reading its whole reply; default 5 s.
    pub exchange_timeout: Duration,
    /// Largest reply PDU accepted (header included); default and maximum 65,544
    /// ([`isns_proto::wire::MAX_PDU_LEN`]).
    pub max_reply_len: usize,
    /// Caps of [`Client::query_all`].
    pub query_limits: QueryLimits,
}

impl ClientConfig {
    /// Defaults with our iSCSI name.
    pub fn new(source_name: impl Into<String>) -> ClientConfig {
        ClientConfig {
            source_name: source_name.into(),
            connect_timeout: Duration::from_secs(3),
            exchange_timeout: Duration::from_secs(5),
            max_reply_len: MAX_PDU_LEN,
            query_limits: QueryLimits::default(),
        }
    }
}

/// What [`Client::query_all`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// Entities, nodes, portals and portal groups (stale portal groups dropped).
    pub objects: Objects,
    /// Whether the one-shot query failed with status 11 and the DevGetNext walk was used.
    pub used_fallback: bool,
    /// Requests sent.
    pub requests: usize,
}

/// A connection to one iSNS server (see the crate doc). Connects lazily, reconnects after a
/// failed exchange.
#[derive(Debug)]
pub struct Client {
    server: String,
    config: ClientConfig,
    stream: Option<TcpStream>,
    peer: Option<SocketAddr>,
    next_xid: u16,
}

impl Client {
    /// A client for `server` (`host:port`, e.g. `127.0.0.1:3205` or `[::1]:3205`); nothing is
    /// sent until the first request.
    pub fn new(server: impl Into<String>, config: ClientConfig) -> Client {
        Client {
            server: server.into(),
            config,
            stream: None,
            peer: None,
            next_xid: 1,
        }
    }

    /// [`Client::new`] and connect at once.
    ///
    /// # Errors
    /// [`ErrorKind::Resolve`], [`ErrorKind::Connect`] or [`ErrorKind::Timeout`].
    pub async fn connect(server: impl Into<String>, config: ClientConfig) -> Result<Client, Error> {
        let mut c = Client::new(server, config);
        c.ensure_connected(None).await?;
        Ok(c)
    }

    /// The server as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The socket address of the current connection, if connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Drops the connection (the next request reconnects).
    pub fn close(&mut self) {
        self.stream = None;
        self.peer = None;
    }

    fn err(&self, kind: ErrorKind, function: Option<Function>) -> Error {
        Error::new(kind, &self.server, function)
    }

    async fn ensure_connected(&mut self, function: Option<Function>) -> Result<(), Error> {
        if self.stream.is_some() {
            return Ok(());
        }
        let after = self.config.connect_timeout;
        let deadline = Instant::now() + after;
        let timeout = |phase| ErrorKind::Timeout { phase, after };
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout_at(deadline, tokio::net::lookup_host(&self.server)).await {
                Err(_) => return Err(self.err(timeout(Phase::Resolve), function)),
                Ok(Err(e)) => return Err(self.err(ErrorKind::Resolve(Arc::new(e)), function)),
                Ok(Ok(a)) => a.collect(),
            };
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    // Small request/reply pairs: Nagle would hold them behind delayed ACKs.
                    let _ = s.set_nodelay(true);
                    self.stream = Some(s);
                    self.peer = Some(addr);
                    return Ok(());
                }
                Ok(Err(e)) => last = Some(ErrorKind::Connect(Arc::new(e))),
                Err(_) => {
                    last = Some(timeout(Phase::Connect));
                    break;
                }
            }
        }
        let kind = last.unwrap_or_else(|| {
            ErrorKind::Resolve(Arc::new(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            )))
        });
        Err(self.err(kind, function))
    }

    fn take_xid(&mut self) -> u16 {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.checked_add(1).unwrap_or(1);
        xid
    }

    /// Sends `request` with the next transaction id and returns the server's reply, whatever its
    /// status. The reply is checked to be the response to this request (function and
    /// transaction id).
    ///
    /// # Errors
    /// Connection errors and deadlines ([`ErrorKind`]), [`ErrorKind::ReplyTooLarge`],
    /// [`ErrorKind::Malformed`], [`ErrorKind::InvalidRequest`]. The connection is dropped after
    /// any error.
    pub async fn exchange(&mut self, request: Message) -> Result<Message, Error> {
        let function = request.function;
        let result = self.exchange_inner(request).await;
        if result.is_err() {
            self.close();
        }
        result.map_err(|kind| self.err(kind, Some(function)))
    }

    async fn exchange_inner(&mut self, request: Message) -> Result<Message, ErrorKind> {
        let function = request.function;
        let xid = self.take_xid();
        let bytes = request
            .with_transaction_id(xid)
            .to_vec()
            .map_err(ErrorKind::InvalidRequest)?;
        self.ensure_connected(Some(function))
            .await
            .map_err(|e| e.kind().clone())?;
        let after = self.config.exchange_timeout;
        let max = self.config.max_reply_len.min(MAX_PDU_LEN);
        let Some(stream) = self.stream.as_mut() else {
            return Err(ErrorKind::Closed {
                phase: Phase::Send,
                received: 0,
            });
        };
        let deadline = Instant::now() + after;
        match tokio::time::timeout_at(deadline, stream.write_all(&bytes)).await {
            Err(_) => {
                return Err(ErrorKind::Timeout {
                    phase: Phase::Send,
                    after,
                });
            }
            Ok(Err(e)) => {
                return Err(ErrorKind::Io {
                    phase: Phase::Send,
                    source: Arc::new(e),
                });
            }
            Ok(Ok(())) => {}
        }
        let pdu = read_pdu(stream, deadline, max).await.map_err(|e| match e {
            ReadError::Timeout { .. } => ErrorKind::Timeout {
                phase: Phase::Receive,
                after,
            },
            ReadError::Closed { received } => ErrorKind::Closed {
                phase: Phase::Receive,
                received,
            },
            ReadError::TooLarge { len } => ErrorKind::ReplyTooLarge { len, max },
            ReadError::Io(e) => ErrorKind::Io {
                phase: Phase::Receive,
                source: Arc::new(e),
            },
        })?;
        let reply = Message::parse_bytes(&pdu)
            .map_err(|e| ErrorKind::Malformed(isns_proto::Error::InvalidMessage(e)))?;
        let misbehaved = |p| ErrorKind::Malformed(isns_proto::Error::PeerMisbehaved(p));
        if reply.function != function.response() {
            return Err(misbehaved(isns_proto::PeerMisbehaved::UnexpectedFunction {
                expected: function.response(),
                got: reply.function,
            }));
        }
        if reply.transaction_id != xid {
            return Err(misbehaved(
                isns_proto::PeerMisbehaved::TransactionIdMismatch {
                    expected: xid,
                    got: reply.transaction_id,
                },
            ));
        }
        Ok(reply)
    }

    /// [`Client::exchange`], and a non-zero status becomes [`ErrorKind::Status`].
    ///
    /// # Errors
    /// As [`Client::exchange`], plus [`ErrorKind::Status`].
    pub async fn request(&mut self, request: Message) -> Result<Message, Error> {
        let function = request.function;
        let reply = self.exchange(request).await?;
        match reply.status {
            Some(s) if !s.is_success() => Err(self.err(ErrorKind::Status(s), Some(function))),
            _ => Ok(reply),
        }
    }

    /// Every storage node visible to our source name, with entities, portals and portal groups
    /// (see the crate doc). Status 9 and empty replies mean "nothing"; status 11 switches to the
    /// DevGetNext walk transparently.
    ///
    /// # Errors
    /// As [`Client::exchange`]; [`ErrorKind::Status`] for a status the recipe cannot continue
    /// from (e.g. 8 source unauthorized); [`ErrorKind::Malformed`] for replies that break the
    /// recipe (a looping walk, an object without its key, caps exceeded).
    pub async fn query_all(&mut self) -> Result<QueryResult, Error> {
        let mut q = QueryAll::new(self.config.source_name.clone(), self.config.query_limits);
        while let Some(request) = q.poll_request() {
            let function = request.function;
            let reply = self.exchange(request).await?;
            if let Err(e) = q.handle_response(&reply) {
                let kind = match e {
                    isns_proto::Error::PeerMisbehaved(isns_proto::PeerMisbehaved::Status {
                        status,
                        ..
                    }) => ErrorKind::Status(status),
                    other => ErrorKind::Malformed(other),
                };
                return Err(self.err(kind, Some(function)));
            }
        }
        let used_fallback = q.used_fallback();
        let requests = q.requests();
        Ok(QueryResult {
            objects: q.finish(),
            used_fallback,
            requests,
        })
    }

    /// One storage node, with its entity, the entity's portals and the node's portal groups, or
    /// `None` when the server has no such node (or shows it not to our source).
    ///
    /// # Errors
    /// As [`Client::exchange`]; [`ErrorKind::Status`] for a status other than 0 and 9;
    /// [`ErrorKind::Malformed`] for a reply whose objects break the recipe.
    pub async fn query_node(&mut self, name: &str) -> Result<Option<Objects>, Error> {
        let request = isns_proto::query::node_query(&self.config.source_name, name);
        let function = request.function;
        let reply = self.exchange(request).await?;
        match reply.status_or_success() {
            Status::SUCCESSFUL => {}
            Status::NO_SUCH_ENTRY => return Ok(None),
            s => return Err(self.err(ErrorKind::Status(s), Some(function))),
        }
        let found = self.decode(reply.operating(), function)?;
        Ok(found.node(name).is_some().then_some(found))
    }

    fn decode(
        &self,
        operating: &[isns_proto::wire::Attribute],
        function: Function,
    ) -> Result<Objects, Error> {
        let mut builder =
            isns_proto::objects::ObjectsBuilder::new(self.config.query_limits.max_objects);
        builder.add_reply(operating).map_err(|p| {
            self.err(
                ErrorKind::Malformed(isns_proto::Error::PeerMisbehaved(p)),
                Some(function),
            )
        })?;
        let mut found = builder.finish();
        found.drop_stale_portal_groups();
        Ok(found)
    }

    /// The objects of one entity (its storage nodes, portals and the nodes' portal groups, stale
    /// portal groups dropped), or `None` when the server knows no such entity (or shows it not to
    /// our source). A reply too large for the server's buffer (status 11) falls back to
    /// [`Client::query_all`], keeping that entity's objects, transparently.
    ///
    /// # Errors
    /// As [`Client::query_all`].
    pub async fn query_entity(&mut self, eid: &str) -> Result<Option<Objects>, Error> {
        let request = isns_proto::query::entity_query(&self.config.source_name, eid);
        let function = request.function;
        let reply = self.exchange(request).await?;
        let status = reply.status_or_success();
        if status == Status::INTERNAL_ERROR {
            let all = self.query_all().await?.objects;
            let mine = |e: &Option<String>| e.as_deref() == Some(eid);
            let mut found = Objects {
                entities: all.entities.into_iter().filter(|e| e.eid == eid).collect(),
                nodes: all.nodes.into_iter().filter(|n| mine(&n.entity)).collect(),
                portals: all
                    .portals
                    .into_iter()
                    .filter(|p| mine(&p.entity))
                    .collect(),
                portal_groups: all.portal_groups,
            };
            if found.entities.is_empty() {
                return Ok(None);
            }
            found.drop_stale_portal_groups();
            return Ok(Some(found));
        }
        match status {
            Status::SUCCESSFUL => {}
            Status::NO_SUCH_ENTRY => return Ok(None),
            s => return Err(self.err(ErrorKind::Status(s), Some(function))),
        }
        if reply.operating().is_empty() {
            return Ok(None);
        }
        // The reply does not repeat the EID (see `entity_query`): put it first, so that the
        // nodes and portals are attached to their entity as in every other reply.
        let mut attributes = Vec::with_capacity(reply.operating().len() + 1);
        attributes.push(isns_proto::wire::Attribute::string(
            isns_proto::Tag::ENTITY_IDENTIFIER,
            eid,
        ));
        attributes.extend_from_slice(reply.operating());
        let found = self.decode(&attributes, function)?;
        if found.entities.iter().all(|e| e.eid != eid) {
            return Ok(None);
        }
        Ok(Some(found))
    }

    /// Registers `node` as a Control node (DevAttrReg, see [`ControlNode::registration`]);
    /// returns the server's reply. `replace` drops a previous registration of the entity first.
    ///
    /// # Errors
    /// As [`Client::request`] (e.g. status 3, invalid registration).
    pub async fn register_control_node(
        &mut self,
        node: &ControlNode,
        replace: bool,
    ) -> Result<Message, Error> {
        self.request(node.registration(replace)).await
    }

    /// Deregisters `node`'s entity (DevDereg by EID).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn deregister(&mut self, node: &ControlNode) -> Result<(), Error> {
        self.request(node.deregistration()).await.map(drop)
    }

    /// Asks for SCNs of `bitmap` to `node` (SCNReg). The node must be registered with an SCN port
    /// first, or the server answers status 17 (6 for an unknown node).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn scn_register(
        &mut self,
        node: &ControlNode,
        bitmap: ScnBitmap,
    ) -> Result<(), Error> {
        self.request(node.scn_registration(bitmap)).await.map(drop)
    }

    /// Stops SCNs to `node` (SCNDereg).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn scn_deregister(&mut self, node: &ControlNode) -> Result<(), Error> {
        self.request(node.scn_deregistration()).await.map(drop)
    }
}
