//! The query recipes of the reference (§3) as message builders, and [`QueryAll`], the sans-IO
//! procedure that reads the whole visible database: it is polled for the next request and fed
//! each reply, and knows nothing of sockets, transaction ids or time.
//!
//! [`QueryAll`] first sends the one-shot DevAttrQry ([`one_shot_query`]). If the server answers
//! status 11 (open-isns builds every reply in an 8 KiB buffer and fails larger ones), it walks the
//! storage nodes with DevGetNext ([`get_next`]) and then sends one DevAttrQry per node
//! ([`node_query`]), merging the replies. Status 9 and an empty status-0 reply both mean "nothing"
//! (§3.4). At the end, portal groups of nodes that were not found are dropped (a Control node
//! sees stale ones, §2).

use std::collections::HashSet;

use crate::codes::{Function, Status, Tag};
use crate::error::{Error, PeerMisbehaved};
use crate::message::Message;
use crate::objects::{ObjectKind, Objects, ObjectsBuilder};
use crate::wire::{Attribute, Value};

/// The operating attributes the one-shot and per-node queries ask for, in order: EID, iSCSI
/// name, node type, alias, portal IP and port, PG name, PG portal IP and port, PGT.
pub const QUERY_OPERATING_TAGS: [Tag; 10] = [
    Tag::ENTITY_IDENTIFIER,
    Tag::ISCSI_NAME,
    Tag::ISCSI_NODE_TYPE,
    Tag::ISCSI_ALIAS,
    Tag::PORTAL_IP,
    Tag::PORTAL_PORT,
    Tag::PG_ISCSI_NAME,
    Tag::PG_PORTAL_IP,
    Tag::PG_PORTAL_PORT,
    Tag::PG_TAG,
];

fn operating_nils() -> Vec<Attribute> {
    QUERY_OPERATING_TAGS
        .iter()
        .map(|&t| Attribute::nil(t))
        .collect()
}

/// Recipe 1: DevAttrQry keyed on NIL tag 33 (every storage node), asking for
/// [`QUERY_OPERATING_TAGS`].
pub fn one_shot_query(source: &str) -> Message {
    Message::dev_attr_qry(
        source,
        vec![Attribute::nil(Tag::ISCSI_NODE_TYPE)],
        operating_nils(),
    )
}

/// Recipe 2: DevAttrQry keyed on one node's name (tag 32), asking for [`QUERY_OPERATING_TAGS`]:
/// the node, its entity, the entity's portals and the node's portal groups.
pub fn node_query(source: &str, node: &str) -> Message {
    Message::dev_attr_qry(
        source,
        vec![Attribute::string(Tag::ISCSI_NAME, node)],
        operating_nils(),
    )
}

/// DevAttrQry keyed on one entity (tag 1), asking for [`QUERY_OPERATING_TAGS`] less the EID: open-isns
/// answers the entity's storage nodes, its portals and its nodes' portal groups (after the echoed
/// key; the EID is not repeated), or only the echoed key when there is no such entity (or it is not
/// visible to `source`). The EID must not be asked for: isnsd takes the type of the first operating
/// attribute as the type of the objects wanted, and would answer the entity object alone. To a
/// registered Control node, open-isns 0.101 answers only the echoed key whatever is asked: read
/// one entity from the whole query ([`QueryAll`]) there. Like every reply it must fit in isnsd's 8 KiB buffer: a larger entity
/// gets status 11, and [`QueryAll`] is the way round.
pub fn entity_query(source: &str, eid: &str) -> Message {
    Message::dev_attr_qry(
        source,
        vec![Attribute::string(Tag::ENTITY_IDENTIFIER, eid)],
        QUERY_OPERATING_TAGS
            .iter()
            .filter(|&&t| t != Tag::ENTITY_IDENTIFIER)
            .map(|&t| Attribute::nil(t))
            .collect(),
    )
}

/// Recipe 3: DevGetNext for `kind`. `after = None` asks for the first object (NIL key attributes
/// of the kind); otherwise pass the key of the previous reply ([`Message::key`]).
pub fn get_next(source: &str, kind: ObjectKind, after: Option<&[Attribute]>) -> Message {
    let key = match after {
        Some(k) => k.to_vec(),
        None => kind.key_tags().iter().map(|&t| Attribute::nil(t)).collect(),
    };
    Message::dev_get_next(source, key, Vec::new())
}

/// Whether a DevGetNext reply's key is a whole, non-NIL key of `kind`.
fn is_key_of(kind: ObjectKind, key: &[Attribute]) -> bool {
    let tags = kind.key_tags();
    key.len() == tags.len()
        && key
            .iter()
            .zip(tags)
            .all(|(a, t)| a.tag == *t && !a.is_nil())
}

/// A printable form of a key, for loop errors.
fn key_text(key: &[Attribute]) -> String {
    key.iter()
        .map(|a| match &a.value {
            Value::String(s) => s.clone(),
            _ => a.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Caps for [`QueryAll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most objects (entities + nodes + portals + portal groups) kept; default 1,000,000.
    pub max_objects: usize,
    /// Most nodes walked with DevGetNext in the fallback; default 100,000.
    pub max_walk: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_objects: 1_000_000,
            max_walk: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    OneShot,
    Walk { last: Option<Vec<Attribute>> },
    PerNode { next: usize },
    Done,
}

/// Reads every visible storage node with its entity, portals and portal groups (module doc).
///
/// ```
/// use isns_proto::{Message, Status, query::QueryAll};
///
/// let mut q = QueryAll::new("iqn.2026-11.org.vds:control", Default::default());
/// let request = q.poll_request().unwrap(); // send it (with a transaction id) ...
/// let reply = Message::response_to(&request, Status::INTERNAL_ERROR, vec![]);
/// q.handle_response(&reply).unwrap(); // ... feed the reply: status 11 → DevGetNext walk
/// assert!(q.used_fallback());
/// assert_eq!(q.poll_request().unwrap().function, isns_proto::Function::DEV_GET_NEXT);
/// ```
#[derive(Debug, Clone)]
pub struct QueryAll {
    source: String,
    limits: QueryLimits,
    state: State,
    objects: ObjectsBuilder,
    names: Vec<String>,
    seen: HashSet<String>,
    fallback: bool,
    requests: usize,
}

impl QueryAll {
    /// A query sent as `source` (our iSCSI name).
    pub fn new(source: impl Into<String>, limits: QueryLimits) -> QueryAll {
        QueryAll {
            source: source.into(),
            limits,
            state: State::OneShot,
            objects: ObjectsBuilder::new(limits.max_objects),
            names: Vec::new(),
            seen: HashSet::new(),
            fallback: false,
            requests: 0,
        }
    }

    /// The next request to send (transaction id 0: the driver assigns one), or `None` when the
    /// query is complete. Until its reply is fed in, it returns the same request again.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Message> {
        let m = match &self.state {
            State::OneShot => one_shot_query(&self.source),
            State::Walk { last } => get_next(&self.source, ObjectKind::Node, last.as_deref()),
            State::PerNode { next } => node_query(&self.source, self.names.get(*next)?),
            State::Done => return None,
        };
        Some(m)
    }

    /// Whether the one-shot query failed with status 11 and the walk was used.
    pub fn used_fallback(&self) -> bool {
        self.fallback
    }

    /// Replies handled so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Whether there is nothing more to send.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn reply_status(&self, reply: &Message, request: Function) -> Result<Status, PeerMisbehaved> {
        if reply.function != request.response() {
            return Err(PeerMisbehaved::UnexpectedFunction {
                expected: request.response(),
                got: reply.function,
            });
        }
        Ok(reply.status_or_success())
    }

    /// Feeds the reply to the request last returned by [`QueryAll::poll_request`]. The driver has
    /// checked its transaction id.
    ///
    /// # Errors
    /// [`PeerMisbehaved`]: a reply of the wrong function, a status the recipe cannot continue from
    /// ([`PeerMisbehaved::Status`]), a malformed DevGetNext key, a walk that loops, caps exceeded,
    /// or objects without their whole key. The query is then over.
    pub fn handle_response(&mut self, reply: &Message) -> Result<(), Error> {
        let result = self.step(reply);
        if result.is_err() {
            self.state = State::Done;
        }
        result.map_err(Error::from)
    }

    fn step(&mut self, reply: &Message) -> Result<(), PeerMisbehaved> {
        self.requests += 1;
        match std::mem::replace(&mut self.state, State::Done) {
            State::OneShot => match self.reply_status(reply, Function::DEV_ATTR_QRY)? {
                Status::SUCCESSFUL => self.objects.add_reply(reply.operating())?,
                Status::NO_SUCH_ENTRY => {}
                Status::INTERNAL_ERROR => {
                    self.fallback = true;
                    self.state = State::Walk { last: None };
                }
                status => {
                    return Err(PeerMisbehaved::Status {
                        function: Function::DEV_ATTR_QRY,
                        status,
                    });
                }
            },
            State::Walk { .. } => match self.reply_status(reply, Function::DEV_GET_NEXT)? {
                Status::NO_SUCH_ENTRY => self.after_walk(),
                Status::SUCCESSFUL if reply.attributes.is_empty() => self.after_walk(),
                Status::SUCCESSFUL => {
                    let key = reply.key();
                    if !is_key_of(ObjectKind::Node, key) {
                        return Err(PeerMisbehaved::BadGetNextKey {
                            expected: "a storage node name (tag 32)",
                        });
                    }
                    let name = key_text(key);
                    if !self.seen.insert(name.clone()) {
                        return Err(PeerMisbehaved::GetNextLoop { key: name });
                    }
                    if self.names.len() >= self.limits.max_walk {
                        return Err(PeerMisbehaved::TooManyObjects {
                            max: self.limits.max_walk,
                        });
                    }
                    self.names.push(name);
                    self.state = State::Walk {
                        last: Some(key.to_vec()),
                    };
                }
                status => {
                    return Err(PeerMisbehaved::Status {
                        function: Function::DEV_GET_NEXT,
                        status,
                    });
                }
            },
            State::PerNode { next } => {
                match self.reply_status(reply, Function::DEV_ATTR_QRY)? {
                    Status::SUCCESSFUL => self.objects.add_reply(reply.operating())?,
                    // Deregistered between the walk and this query.
                    Status::NO_SUCH_ENTRY => {}
                    status => {
                        return Err(PeerMisbehaved::Status {
                            function: Function::DEV_ATTR_QRY,
                            status,
                        });
                    }
                }
                if next + 1 < self.names.len() {
                    self.state = State::PerNode { next: next + 1 };
                }
            }
            State::Done => {
                return Err(PeerMisbehaved::UnexpectedFunction {
                    expected: Function(0),
                    got: reply.function,
                });
            }
        }
        Ok(())
    }

    fn after_walk(&mut self) {
        if !self.names.is_empty() {
            self.state = State::PerNode { next: 0 };
        }
    }

    /// The objects found, with stale portal groups dropped. Call after [`QueryAll::poll_request`]
    /// returned `None`; earlier, it returns what was found so far.
    pub fn finish(self) -> Objects {
        let mut o = self.objects.finish();
        o.drop_stale_portal_groups();
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    use crate::wire::Port;

    const SRC: &str = "iqn.2026-11.org.vds:control";

    fn node_reply(req: &Message, name: &str, last: u8) -> Message {
        Message::response_to(
            req,
            Status::SUCCESSFUL,
            vec![
                Attribute::string(Tag::ISCSI_NAME, name),
                Attribute::DELIMITER,
                Attribute::string(Tag::ENTITY_IDENTIFIER, format!("e{last}")),
                Attribute::string(Tag::ISCSI_NAME, name),
                Attribute::u32(Tag::ISCSI_NODE_TYPE, 1),
                Attribute::ip(Tag::PORTAL_IP, IpAddr::from([127, 0, 0, last])),
                Attribute::port(Tag::PORTAL_PORT, Port::tcp(3260)),
            ],
        )
    }

    #[test]
    fn one_shot_success_is_one_request() {
        let mut q = QueryAll::new(SRC, QueryLimits::default());
        let r = q.poll_request().unwrap();
        assert_eq!(r.key(), &[Attribute::nil(Tag::ISCSI_NODE_TYPE)]);
        assert_eq!(r.operating().len(), 10);
        q.handle_response(&node_reply(&r, "iqn.t:a", 1)).unwrap();
        assert!(q.poll_request().is_none());
        assert!(!q.used_fallback());
        assert_eq!(q.finish().nodes.len(), 1);
    }

    #[test]
    fn status_11_walks_then_queries_each_node() {
        let mut q = QueryAll::new(SRC, QueryLimits::default());
        let r = q.poll_request().unwrap();
        q.handle_response(&Message::response_to(&r, Status::INTERNAL_ERROR, vec![]))
            .unwrap();
        for (i, name) in ["iqn.t:a", "iqn.t:b"].iter().enumerate() {
            let r = q.poll_request().unwrap();
            assert_eq!(r.function, Function::DEV_GET_NEXT);
            if i == 0 {
                assert_eq!(r.key(), &[Attribute::nil(Tag::ISCSI_NAME)]);
            } else {
                assert_eq!(r.key(), &[Attribute::string(Tag::ISCSI_NAME, "iqn.t:a")]);
            }
            let reply = Message::response_to(
                &r,
                Status::SUCCESSFUL,
                vec![
                    Attribute::string(Tag::ISCSI_NAME, *name),
                    Attribute::DELIMITER,
                    Attribute::string(Tag::ISCSI_NAME, *name),
                ],
            );
            q.handle_response(&reply).unwrap();
        }
        let r = q.poll_request().unwrap();
        q.handle_response(&Message::response_to(&r, Status::NO_SUCH_ENTRY, vec![]))
            .unwrap();
        for (i, name) in ["iqn.t:a", "iqn.t:b"].iter().enumerate() {
            let r = q.poll_request().unwrap();
            assert_eq!(r.key(), &[Attribute::string(Tag::ISCSI_NAME, *name)]);
            q.handle_response(&node_reply(&r, name, i as u8 + 1))
                .unwrap();
        }
        assert!(q.poll_request().is_none());
        assert!(q.used_fallback());
        assert_eq!(q.requests(), 6);
        let o = q.finish();
        assert_eq!(o.nodes.len(), 2);
        assert_eq!(o.entities.len(), 2);
        assert_eq!(o.portals.len(), 2);
    }

    #[test]
    fn a_looping_walk_is_an_error() {
        let mut q = QueryAll::new(SRC, QueryLimits::default());
        let r = q.poll_request().unwrap();
        q.handle_response(&Message::response_to(&r, Status::INTERNAL_ERROR, vec![]))
            .unwrap();
        let same = |r: &Message| {
            Message::response_to(
                r,
                Status::SUCCESSFUL,
                vec![
                    Attribute::string(Tag::ISCSI_NAME, "iqn.t:a"),
                    Attribute::DELIMITER,
                ],
            )
        };
        let r = q.poll_request().unwrap();
        q.handle_response(&same(&r)).unwrap();
        let r = q.poll_request().unwrap();
        assert_eq!(
            q.handle_response(&same(&r)),
            Err(Error::PeerMisbehaved(PeerMisbehaved::GetNextLoop {
                key: "iqn.t:a".into()
            }))
        );
        assert!(q.poll_request().is_none());
    }

    #[test]
    fn empty_answers_and_errors() {
        let mut q = QueryAll::new(SRC, QueryLimits::default());
        let r = q.poll_request().unwrap();
        q.handle_response(&Message::response_to(&r, Status::NO_SUCH_ENTRY, vec![]))
            .unwrap();
        assert!(q.poll_request().is_none());
        assert!(q.finish().is_empty());

        let mut q = QueryAll::new(SRC, QueryLimits::default());
        let r = q.poll_request().unwrap();
        assert!(matches!(
            q.handle_response(&Message::response_to(
                &r,
                Status::SOURCE_UNAUTHORIZED,
                vec![]
            )),
            Err(Error::PeerMisbehaved(PeerMisbehaved::Status { .. }))
        ));

        let mut q = QueryAll::new(SRC, QueryLimits::default());
        let r = q.poll_request().unwrap();
        let mut wrong = Message::response_to(&r, Status::SUCCESSFUL, vec![]);
        wrong.function = Function::DEV_GET_NEXT_RSP;
        assert!(matches!(
            q.handle_response(&wrong),
            Err(Error::PeerMisbehaved(
                PeerMisbehaved::UnexpectedFunction { .. }
            ))
        ));
    }
}
