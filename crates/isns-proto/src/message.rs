//! iSNS messages: [`Message`], the typed repr of one single-PDU message (header fields, the
//! status of a response, and the attributes in wire order, delimiter included), its builders for
//! the requests a client sends, and [`Scn`], the typed view of a State Change Notification.
//!
//! Body layout (RFC 4171 §5.6.5): a request is Source, message key, delimiter, operating
//! attributes; SCNDereg has no delimiter; a response is the status, then key, delimiter,
//! operating attributes; an SCN (sent by the server, so without Source) is the destination
//! name, the timestamp and then pairs of SCN bitmap and changed node name. Keeping the delimiter
//! as an attribute makes parse → emit lossless; [`Message::source`], [`Message::key`] and
//! [`Message::operating`] split the body.

use crate::codes::{Function, ScnBitmap, Status, Tag};
use crate::error::{ApiMisuse, InvalidMessage, PeerMisbehaved};
use crate::wire::{Attribute, Attributes, Flags, HEADER_LEN, Header, MAX_PAYLOAD_LEN, Packet};

impl Function {
    /// Whether messages of this function start with a Source attribute: client requests do; the
    /// server-initiated SCN, ESI and Heartbeat and all responses do not.
    pub const fn has_source(self) -> bool {
        !self.is_response() && !matches!(self, Function::SCN | Function::ESI | Function::HEARTBEAT)
    }
}

/// One iSNS message in one PDU (sequence id 0, FIRST_PDU and LAST_PDU set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The function id.
    pub function: Function,
    /// Header flags (FIRST_PDU and LAST_PDU are always emitted, whatever this says).
    pub flags: Flags,
    /// The transaction id; a reply echoes its request's.
    pub transaction_id: u16,
    /// The status word: `Some` exactly for responses ([`Function::is_response`]).
    pub status: Option<Status>,
    /// The body's attributes in wire order, delimiters included.
    pub attributes: Vec<Attribute>,
}

impl Message {
    /// A client request laid out as Source, `key`, delimiter, `operating`, with flags
    /// CLIENT | FIRST_PDU | LAST_PDU and transaction id 0 (the driver assigns one).
    pub fn request(
        function: Function,
        source: &str,
        key: Vec<Attribute>,
        operating: Vec<Attribute>,
    ) -> Message {
        let mut attributes = Vec::with_capacity(2 + key.len() + operating.len());
        attributes.push(Attribute::string(Tag::ISCSI_NAME, source));
        attributes.extend(key);
        attributes.push(Attribute::DELIMITER);
        attributes.extend(operating);
        Message {
            function,
            flags: Flags::CLIENT_SINGLE,
            transaction_id: 0,
            status: None,
            attributes,
        }
    }

    /// DevAttrReg: register or update the objects in `operating`, identified by `key` (empty for
    /// a new entity). `replace` sets the REPLACE flag: the entity's previous registration is
    /// dropped first.
    pub fn dev_attr_reg(
        source: &str,
        key: Vec<Attribute>,
        operating: Vec<Attribute>,
        replace: bool,
    ) -> Message {
        let mut m = Message::request(Function::DEV_ATTR_REG, source, key, operating);
        m.flags = m.flags.with(Flags::REPLACE, replace);
        m
    }

    /// DevAttrQry: the objects matching `key`, with the attributes named (as NIL) in `operating`.
    pub fn dev_attr_qry(source: &str, key: Vec<Attribute>, operating: Vec<Attribute>) -> Message {
        Message::request(Function::DEV_ATTR_QRY, source, key, operating)
    }

    /// DevGetNext: the object after `key` (NIL key attributes for the first one).
    pub fn dev_get_next(source: &str, key: Vec<Attribute>, operating: Vec<Attribute>) -> Message {
        Message::request(Function::DEV_GET_NEXT, source, key, operating)
    }

    /// DevDereg: removes the objects named in `operating` (an EID removes the whole entity). The
    /// message key is empty, as tgt and open-isns send it.
    pub fn dev_dereg(source: &str, operating: Vec<Attribute>) -> Message {
        Message::request(Function::DEV_DEREG, source, Vec::new(), operating)
    }

    /// SCNReg: asks for notifications of `bitmap` to node `node` (key tag 32, operating tag 35).
    pub fn scn_reg(source: &str, node: &str, bitmap: ScnBitmap) -> Message {
        Message::request(
            Function::SCN_REG,
            source,
            vec![Attribute::string(Tag::ISCSI_NAME, node)],
            vec![Attribute::u32(Tag::ISCSI_SCN_BITMAP, bitmap.0)],
        )
    }

    /// SCNDereg: Source and key (tag 32), without a delimiter.
    pub fn scn_dereg(source: &str, node: &str) -> Message {
        Message {
            function: Function::SCN_DEREG,
            flags: Flags::CLIENT_SINGLE,
            transaction_id: 0,
            status: None,
            attributes: vec![
                Attribute::string(Tag::ISCSI_NAME, source),
                Attribute::string(Tag::ISCSI_NAME, node),
            ],
        }
    }

    /// The answer a client owes the server for an SCN: function 0x8008, the SCN's transaction id,
    /// status 0 and the destination attribute (tag 32).
    pub fn scn_response(transaction_id: u16, destination: &str) -> Message {
        Message {
            function: Function::SCN_RSP,
            flags: Flags::CLIENT_SINGLE,
            transaction_id,
            status: Some(Status::SUCCESSFUL),
            attributes: vec![Attribute::string(Tag::ISCSI_NAME, destination)],
        }
    }

    /// A server's response to `request` (for tests and scripted servers): the request's
    /// function | 0x8000 and transaction id, flags SERVER | FIRST_PDU | LAST_PDU.
    pub fn response_to(request: &Message, status: Status, attributes: Vec<Attribute>) -> Message {
        Message {
            function: request.function.response(),
            flags: Flags::SERVER_SINGLE,
            transaction_id: request.transaction_id,
            status: Some(status),
            attributes,
        }
    }

    /// This message with transaction id `xid`.
    #[must_use]
    pub fn with_transaction_id(mut self, xid: u16) -> Message {
        self.transaction_id = xid;
        self
    }

    /// Parses one whole PDU from the start of `bytes` (extra bytes after it are ignored).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Message, InvalidMessage> {
        Message::parse(&Packet::new_checked(bytes)?)
    }

    /// Parses a checked packet: header rules of [`Header::parse`], the status of a response,
    /// then every attribute (at most [`crate::MAX_ATTRIBUTES`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Message, InvalidMessage> {
        let header = Header::parse(packet)?;
        let mut payload = packet.payload();
        let mut base = HEADER_LEN;
        let status = if header.function.is_response() {
            let (s, rest) = payload
                .split_first_chunk::<4>()
                .ok_or(InvalidMessage::MissingStatus)?;
            payload = rest;
            base += 4;
            Some(Status(u32::from_be_bytes(*s)))
        } else {
            None
        };
        let mut attributes = Vec::new();
        for tlv in Attributes::new(payload, base) {
            attributes.push(Attribute::parse(&tlv?)?);
        }
        Ok(Message {
            function: header.function,
            flags: header.flags,
            transaction_id: header.transaction_id,
            status,
            attributes,
        })
    }

    fn payload_len(&self) -> Result<usize, ApiMisuse> {
        if self.status.is_some() != self.function.is_response() {
            return Err(ApiMisuse::StatusMismatch {
                function: self.function,
                is_response: self.function.is_response(),
            });
        }
        if self.attributes.len() > crate::MAX_ATTRIBUTES {
            return Err(ApiMisuse::TooManyAttributes {
                max: crate::MAX_ATTRIBUTES,
            });
        }
        let mut len = if self.status.is_some() { 4 } else { 0 };
        for a in &self.attributes {
            len += a.buffer_len()?;
            if len > MAX_PAYLOAD_LEN {
                return Err(ApiMisuse::MessageTooLarge {
                    len,
                    max: MAX_PAYLOAD_LEN,
                });
            }
        }
        Ok(len)
    }

    /// Bytes [`Message::emit`] writes, or why it cannot be encoded.
    pub fn buffer_len(&self) -> Result<usize, ApiMisuse> {
        Ok(HEADER_LEN + self.payload_len()?)
    }

    /// Writes the PDU at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ApiMisuse> {
        let payload_len = self.payload_len()?;
        let total = HEADER_LEN + payload_len;
        let Some(out) = buf.get_mut(..total) else {
            return Err(ApiMisuse::BufferTooSmall {
                needed: total,
                got: buf.len(),
            });
        };
        let header = Header {
            function: self.function,
            // payload_len() capped it at MAX_PAYLOAD_LEN, which fits.
            pdu_length: payload_len as u16,
            flags: self
                .flags
                .with(Flags(Flags::FIRST_PDU.0 | Flags::LAST_PDU.0), true),
            transaction_id: self.transaction_id,
            sequence_id: 0,
        };
        header.emit(out)?;
        let mut at = HEADER_LEN;
        if let Some(s) = self.status {
            out[at..at + 4].copy_from_slice(&s.0.to_be_bytes());
            at += 4;
        }
        for a in &self.attributes {
            at += a.emit(&mut out[at..])?;
        }
        Ok(total)
    }

    /// The PDU as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, ApiMisuse> {
        let mut v = vec![0u8; self.buffer_len()?];
        self.emit(&mut v)?;
        Ok(v)
    }

    /// The Source attribute, for functions that have one ([`Function::has_source`]).
    pub fn source(&self) -> Option<&Attribute> {
        if self.function.has_source() {
            self.attributes.first()
        } else {
            None
        }
    }

    fn body(&self) -> &[Attribute] {
        let skip = usize::from(self.source().is_some());
        self.attributes.get(skip..).unwrap_or(&[])
    }

    /// The message key: the body (after the Source, if any) up to the first delimiter, or the
    /// whole body when there is none.
    pub fn key(&self) -> &[Attribute] {
        let body = self.body();
        match body.iter().position(|a| a.tag == Tag::DELIMITER) {
            Some(i) => &body[..i],
            None => body,
        }
    }

    /// The operating attributes: everything after the first delimiter (empty without one).
    pub fn operating(&self) -> &[Attribute] {
        let body = self.body();
        match body.iter().position(|a| a.tag == Tag::DELIMITER) {
            Some(i) => &body[i + 1..],
            None => &[],
        }
    }

    /// The status, or [`Status::SUCCESSFUL`] for a request.
    pub fn status_or_success(&self) -> Status {
        self.status.unwrap_or(Status::SUCCESSFUL)
    }
}

/// One change reported by an SCN: the bitmap and the storage node it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScnEvent {
    /// What happened (e.g. 0x0c = object added | object updated for a new node).
    pub bitmap: ScnBitmap,
    /// The iSCSI name of the node.
    pub node: String,
}

/// The typed view of an SCN message (function 8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scn {
    /// The SCN's transaction id (echoed in the response).
    pub transaction_id: u16,
    /// The node the SCN is addressed to (tag 32, first attribute).
    pub destination: String,
    /// The server's timestamp (tag 4), if sent.
    pub timestamp: Option<u64>,
    /// The changes, in order.
    pub events: Vec<ScnEvent>,
    /// Attributes that are neither (kept for the caller, e.g. DD ids or portals).
    pub other: Vec<Attribute>,
}

impl Scn {
    /// Reads an SCN from a parsed message.
    ///
    /// # Errors
    /// [`PeerMisbehaved::UnexpectedFunction`] for another function,
    /// [`PeerMisbehaved::MissingAttribute`] without a destination name first, or for a changed
    /// node that comes before any SCN bitmap.
    pub fn from_message(m: &Message) -> Result<Scn, PeerMisbehaved> {
        if m.function != Function::SCN {
            return Err(PeerMisbehaved::UnexpectedFunction {
                expected: Function::SCN,
                got: m.function,
            });
        }
        let missing = |what| PeerMisbehaved::MissingAttribute {
            message: Function::SCN,
            what,
        };
        let mut it = m.attributes.iter();
        let destination = it
            .next()
            .filter(|a| a.tag == Tag::ISCSI_NAME)
            .and_then(Attribute::as_str)
            .ok_or(missing("the destination iSCSI name (tag 32) first"))?
            .to_owned();
        let mut scn = Scn {
            transaction_id: m.transaction_id,
            destination,
            timestamp: None,
            events: Vec::new(),
            other: Vec::new(),
        };
        let mut bitmap = None;
        for a in it {
            match (a.tag, a.as_str(), a.as_u32(), a.as_u64()) {
                (Tag::TIMESTAMP, _, _, Some(t)) => scn.timestamp = Some(t),
                (Tag::ISCSI_SCN_BITMAP, _, Some(b), _) => bitmap = Some(ScnBitmap(b)),
                (Tag::ISCSI_NAME, Some(name), _, _) => scn.events.push(ScnEvent {
                    bitmap: bitmap.ok_or(missing("an SCN bitmap before the changed node"))?,
                    node: name.to_owned(),
                }),
                _ => scn.other.push(a.clone()),
            }
        }
        Ok(scn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Port;

    #[test]
    fn request_layouts() {
        let m = Message::dev_attr_reg(
            "iqn.x:a",
            vec![Attribute::string(Tag::ENTITY_IDENTIFIER, "e")],
            vec![Attribute::port(Tag::PORTAL_PORT, Port::tcp(1))],
            true,
        );
        assert_eq!(m.flags, Flags(0x9c00));
        assert_eq!(m.source().and_then(Attribute::as_str), Some("iqn.x:a"));
        assert_eq!(m.key().len(), 1);
        assert_eq!(m.operating().len(), 1);
        let d = Message::scn_dereg("iqn.x:a", "iqn.x:a");
        assert_eq!(d.key().len(), 1);
        assert!(d.operating().is_empty());
        let bytes = d.to_vec().unwrap();
        assert_eq!(Message::parse_bytes(&bytes).unwrap(), d);
    }

    #[test]
    fn status_must_match_the_function() {
        let mut m = Message::scn_response(3, "iqn.x:a");
        m.status = None;
        assert!(matches!(
            m.to_vec(),
            Err(ApiMisuse::StatusMismatch {
                is_response: true,
                ..
            })
        ));
        let mut q = Message::dev_attr_qry("iqn.x:a", vec![], vec![]);
        q.status = Some(Status::SUCCESSFUL);
        assert!(q.to_vec().is_err());
    }

    #[test]
    fn responses_need_their_status() {
        let b = [0u8, 1, 0x80, 2, 0, 0, 0x4c, 0, 0, 1, 0, 0];
        assert_eq!(Message::parse_bytes(&b), Err(InvalidMessage::MissingStatus));
    }

    #[test]
    fn too_large_messages_are_refused() {
        let attrs = vec![Attribute::string(Tag::ISCSI_ALIAS, "x".repeat(255)); 300];
        let m = Message::dev_attr_reg("iqn.x:a", vec![], attrs, false);
        assert!(matches!(
            m.buffer_len(),
            Err(ApiMisuse::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn scn_needs_destination_and_bitmaps() {
        let mut m = Message {
            function: Function::SCN,
            flags: Flags::SERVER_SINGLE,
            transaction_id: 1,
            status: None,
            attributes: vec![Attribute::u32(Tag::ISCSI_SCN_BITMAP, 8)],
        };
        assert!(Scn::from_message(&m).is_err());
        m.attributes = vec![
            Attribute::string(Tag::ISCSI_NAME, "iqn.x:ctl"),
            Attribute::string(Tag::ISCSI_NAME, "iqn.x:t"),
        ];
        assert!(Scn::from_message(&m).is_err());
        m.attributes
            .insert(1, Attribute::u32(Tag::ISCSI_SCN_BITMAP, 0x10));
        let scn = Scn::from_message(&m).unwrap();
        assert_eq!(
            scn.events,
            vec![ScnEvent {
                bitmap: ScnBitmap::OBJECT_REMOVED,
                node: "iqn.x:t".into()
            }]
        );
    }
}
