//! Sans-IO iSNS (RFC 4171) for an iSNS client, as open-isns 0.101 speaks it: everything except
//! the socket and the clock.
//!
//! - [`wire`]: the zero-copy [`wire::Packet`] view of a PDU, its [`wire::Header`], the TLV view
//!   [`wire::Tlv`], the bounded [`wire::Attributes`] iterator and the typed [`Attribute`].
//! - [`codes`]: the open wire enums [`Function`], [`Status`], [`Tag`], [`NodeType`], [`ScnBitmap`]:
//!   unknown values parse and round-trip.
//! - [`message`]: [`Message`] (parse, emit, and builders for DevAttrReg, DevAttrQry, DevGetNext,
//!   DevDereg, SCNReg, SCNDereg and the SCN response) and the typed SCN view [`Scn`].
//! - [`objects`]: decoding replies into entities, nodes, portals and portal groups by key tags.
//! - [`control`]: the registration of a Control node ([`ControlNode`]) and its SCN registration.
//! - [`query`]: the query recipes and [`query::QueryAll`], the one-shot query with its DevGetNext
//!   fallback, driven by polling for requests and feeding replies.
//!
//! No sockets, no clock, no async runtime, no `unsafe`. The `isns-client` crate is the tokio
//! driver around it. Nothing here knows about VDS.
//!
//! # Limits on untrusted bytes
//!
//! | what | limit | where checked |
//! |---|---|---|
//! | PDU | 12-byte header + at most 65,532 payload bytes ([`wire::MAX_PDU_LEN`]); the payload length a multiple of 4 | [`wire::Packet::new_checked`], [`wire::Header::parse`] |
//! | messages | one PDU: FIRST_PDU and LAST_PDU set, sequence id 0 (open-isns never fragments; fragments are refused, not reassembled) | [`wire::Header::parse`] |
//! | attributes per message | [`MAX_ATTRIBUTES`] = 4,096 | [`wire::Attributes`] |
//! | attribute length | a multiple of 4, inside the PDU; typed values exactly 4 (u32, port), 8 (timestamp) or 16 (address) bytes, or 0 (NIL) | [`wire::Attributes`], [`Attribute::parse`] |
//! | strings | UTF-8, NUL-terminated, zero padding; iSCSI names ≤ 223 bytes, EID/alias/portal name ≤ 255 | [`Attribute::parse`] (and [`Attribute::emit`] for ours) |
//! | objects kept by one query | [`query::QueryLimits`]: 1,000,000 objects, 100,000 nodes walked, no key returned twice | [`query::QueryAll`] |
//!
//! Every violation is a typed error ([`InvalidMessage`] for bytes, [`PeerMisbehaved`] for
//! protocol) that names the offending field, tag, length or offset.
//!
//! ```
//! use isns_proto::{Message, Status, Tag, Attribute};
//!
//! let request = isns_proto::query::one_shot_query("iqn.2026-11.org.vds:control")
//!     .with_transaction_id(1);
//! let bytes = request.to_vec().unwrap(); // write these to the server
//! assert_eq!(&bytes[..4], &[0, 1, 0, 2]); // version 1, DevAttrQry
//!
//! // ... and parse what comes back:
//! let reply = Message::response_to(&request, Status::SUCCESSFUL, vec![
//!     Attribute::nil(Tag::ISCSI_NODE_TYPE), Attribute::DELIMITER,
//!     Attribute::string(Tag::ISCSI_NAME, "iqn.2026-11.test:disk1"),
//! ]).to_vec().unwrap();
//! let reply = Message::parse_bytes(&reply).unwrap();
//! let objects = isns_proto::Objects::decode(reply.operating()).unwrap();
//! assert_eq!(objects.nodes[0].name, "iqn.2026-11.test:disk1");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codes;
pub mod control;
pub mod error;
pub mod message;
pub mod objects;
pub mod query;
pub mod wire;

pub use codes::{Function, NodeType, ScnBitmap, Status, Tag};
pub use control::{ControlNode, ControlPortal};
pub use error::{ApiMisuse, Error, InvalidMessage, PeerMisbehaved};
pub use message::{Message, Scn, ScnEvent};
pub use objects::{Entity, Node, ObjectKind, Objects, Portal, PortalGroup};
pub use wire::{Attribute, Flags, Port, Value};

/// Most attributes accepted in (or emitted into) one message. A real reply of open-isns (at most
/// 8 KiB) holds at most 1,024.
pub const MAX_ATTRIBUTES: usize = 4096;
