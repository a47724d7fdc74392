//! Requests: the typed [`Request`] for every operation a provider needs, its wire form
//! [`RequestRepr`] (header fields and payload text), and the rules that keep a request from
//! reaching tgtd in a form it chokes on or misreads.
//!
//! `Request::emit` produces exactly the bytes `tgtadm` 1.0.85 sends for the same operation
//! (checked against captures in `tests/vectors/requests/`): the 120-byte header with `lld`
//! `"iscsi"`, `tid` −1 where no target is concerned, `lun` all ones, every other field 0 unless
//! the operation sets it, then the payload text and its NUL. Portals are sent in tgtadm's form
//! `portalOps portal=ADDR:PORT,`; [`Request::parse`] also takes the plain `portal=ADDR:PORT`.
//!
//! [`Request::parse`] is the inverse, for tests, fuzzing and fake servers; it applies the same
//! rules, so what it returns can be emitted again. Bytes holding a password are kept in
//! [`Zeroizing`] buffers and never printed (`Debug` of a [`RequestRepr`] creating an account hides
//! its text).

use std::net::{IpAddr, SocketAddr};

use vds_secret::Secret;
use zeroize::Zeroizing;

use crate::error::{Error, Field, InvalidMessage, Refused, excerpt};
use crate::wire::{
    LLD_ISCSI, MAX_REQUEST_PAYLOAD, Mode, NO_LUN, NO_TID, Operation, REQUEST_HEADER_LEN,
    RequestHeader,
};

/// The port tgtd uses when a portal has none.
pub const DEFAULT_ISCSI_PORT: u16 = 3260;

/// The longest target name accepted: the iSCSI name limit (RFC 7143 §4.2.7.1, 223 bytes).
/// tgtd itself does not check it, but no initiator could log in to a longer one.
pub const MAX_TARGET_NAME_LEN: usize = 223;

/// The state a target can be set to (`--name state --value ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// `ready`: accepts logins.
    Ready,
    /// `offline`: refuses new logins.
    Offline,
}

impl TargetState {
    /// The word tgtd uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Ready => "ready",
            TargetState::Offline => "offline",
        }
    }
}

/// One initiator ACL entry of a target. tgtd keeps both kinds in one list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Acl {
    /// `initiator-address=`: `ALL`, an IP address or a CIDR block.
    InitiatorAddress(String),
    /// `initiator-name=`: an initiator's iSCSI name.
    InitiatorName(String),
}

impl Acl {
    fn key(&self) -> &'static str {
        match self {
            Acl::InitiatorAddress(_) => "initiator-address",
            Acl::InitiatorName(_) => "initiator-name",
        }
    }

    fn value(&self) -> &str {
        match self {
            Acl::InitiatorAddress(v) | Acl::InitiatorName(v) => v,
        }
    }
}

/// Where an account is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountScope {
    /// Logins to this target (tid > 0).
    Target(u32),
    /// Discovery sessions (tgtd's `GLOBAL_TID`, sent as tid −1; `--tid 0` is refused by tgtd).
    Discovery,
}

/// Which way an account authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountDirection {
    /// The initiator proves itself to the target (`ac_dir` 0).
    Incoming,
    /// The target proves itself to the initiator, mutual CHAP (`ac_dir` 1, `--outgoing`).
    Outgoing,
}

/// An account binding: where and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountBinding {
    /// Target or discovery.
    pub scope: AccountScope,
    /// Incoming or outgoing.
    pub direction: AccountDirection,
}

/// One `key=value` of a system update (tgtd applies them left to right).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SystemParam {
    /// The key, e.g. `iSNSServerIP`.
    pub key: String,
    /// The value.
    pub value: String,
}

impl SystemParam {
    /// Any parameter.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        SystemParam {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `State=ready|offline`: the daemon's state.
    pub fn state(state: TargetState) -> Self {
        SystemParam::new("State", state.as_str())
    }

    /// `iSNS=On|Off`: register with an iSNS server.
    pub fn isns(on: bool) -> Self {
        SystemParam::new("iSNS", if on { "On" } else { "Off" })
    }

    /// `iSNSServerIP=`: the iSNS server's address.
    pub fn isns_server_ip(ip: IpAddr) -> Self {
        SystemParam::new("iSNSServerIP", ip.to_string())
    }

    /// `iSNSServerPort=`: the iSNS server's port.
    pub fn isns_server_port(port: u16) -> Self {
        SystemParam::new("iSNSServerPort", port.to_string())
    }

    /// `iSNSAccessControl=On|Off`.
    pub fn isns_access_control(on: bool) -> Self {
        SystemParam::new("iSNSAccessControl", if on { "On" } else { "Off" })
    }
}

/// Every operation this crate can send to tgtd. See the crate doc for the payload of each and the
/// rules values must follow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Request {
    /// All targets with their LUNs, sessions, accounts and ACLs (1/2, tid −1).
    ShowTargets,
    /// The listening portals (3/2).
    ShowPortals,
    /// The account names (7/2).
    ShowAccounts,
    /// Daemon state, drivers, backing stores, iSNS settings (0/2).
    ShowSystem,
    /// The drivers with their targets (4/2).
    ShowLld,
    /// Start listening on a portal (3/0). tgtd gives it TPGT 1, as every portal.
    NewPortal {
        /// The address and port.
        portal: SocketAddr,
    },
    /// Stop listening on a portal (3/1). Sessions on it stay.
    DeletePortal {
        /// The address and port, as `show` lists it.
        portal: SocketAddr,
    },
    /// Create a target (1/0).
    NewTarget {
        /// Its id, 1 to 2^31−1.
        tid: u32,
        /// Its iSCSI name: `[A-Za-z0-9:.-]`, 1 to 223 bytes.
        name: String,
    },
    /// Delete a target (1/1).
    DeleteTarget {
        /// Its id.
        tid: u32,
        /// Delete even with sessions (without it tgtd answers TARGET_ACTIVE).
        force: bool,
    },
    /// Set a target's state (1/5, `state=`).
    SetTargetState {
        /// Its id.
        tid: u32,
        /// The new state.
        state: TargetState,
    },
    /// Add an initiator ACL entry to a target (1/3).
    BindAcl {
        /// The target.
        tid: u32,
        /// The entry.
        acl: Acl,
    },
    /// Remove an initiator ACL entry from a target (1/4).
    UnbindAcl {
        /// The target.
        tid: u32,
        /// The entry.
        acl: Acl,
    },
    /// Create a CHAP account (7/0).
    NewAccount {
        /// The user name.
        user: String,
        /// The CHAP secret.
        password: Secret,
    },
    /// Delete a CHAP account, unbinding it everywhere (7/1).
    DeleteAccount {
        /// The user name.
        user: String,
    },
    /// Bind an account to a target or to discovery (7/3).
    BindAccount {
        /// The user name.
        user: String,
        /// Where and which way.
        binding: AccountBinding,
    },
    /// Unbind an account (7/4).
    UnbindAccount {
        /// The user name.
        user: String,
        /// Where and which way.
        binding: AccountBinding,
    },
    /// Change daemon parameters (0/5), e.g. iSNS settings or `State`.
    UpdateSystem {
        /// The parameters, applied in order.
        params: Vec<SystemParam>,
    },
}

/// The wire form of a request: header fields and payload text (without its NUL).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestRepr {
    /// `mode`.
    pub mode: Mode,
    /// `op`.
    pub op: Operation,
    /// `tid`.
    pub tid: i32,
    /// `sid`.
    pub sid: u64,
    /// `lun`.
    pub lun: u64,
    /// `cid`.
    pub cid: u32,
    /// `host_no`.
    pub host_no: u32,
    /// `device_type`.
    pub device_type: u32,
    /// `ac_dir`.
    pub ac_dir: u32,
    /// `pack`.
    pub pack: u32,
    /// `force`.
    pub force: u32,
    /// The payload text without its trailing NUL; `None` for no payload at all (len 120).
    /// Wiped on drop: it may hold a password.
    pub text: Option<Zeroizing<Vec<u8>>>,
}

impl core::fmt::Debug for RequestRepr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let secret = self.mode == Mode::Account && self.op == Operation::New;
        let text = match (&self.text, secret) {
            (None, _) => "None".to_owned(),
            (Some(_), true) => "<redacted: holds a password>".to_owned(),
            (Some(t), false) => format!("{:?}", String::from_utf8_lossy(t)),
        };
        f.debug_struct("RequestRepr")
            .field("mode", &self.mode)
            .field("op", &self.op)
            .field("tid", &self.tid)
            .field("sid", &self.sid)
            .field("lun", &self.lun)
            .field("cid", &self.cid)
            .field("host_no", &self.host_no)
            .field("device_type", &self.device_type)
            .field("ac_dir", &self.ac_dir)
            .field("pack", &self.pack)
            .field("force", &self.force)
            .field("text", &text)
            .finish()
    }
}

impl RequestRepr {
    /// A request with tgtadm's defaults: tid −1, lun all ones, everything else 0, no payload.
    pub fn new(mode: Mode, op: Operation) -> Self {
        RequestRepr {
            mode,
            op,
            tid: NO_TID,
            sid: 0,
            lun: NO_LUN,
            cid: 0,
            host_no: 0,
            device_type: 0,
            ac_dir: 0,
            pack: 0,
            force: 0,
            text: None,
        }
    }

    /// Bytes on the wire: the header, plus text and NUL when there is a payload.
    pub fn buffer_len(&self) -> usize {
        REQUEST_HEADER_LEN + self.text.as_ref().map_or(0, |t| t.len() + 1)
    }

    /// Parses a whole request: header, then exactly `len − 120` payload bytes ending in their
    /// only NUL. The driver must be `iscsi`. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<RequestRepr, InvalidMessage> {
        let header = RequestHeader::new_checked(bytes)?;
        let len = header.len();
        if (len as usize) < REQUEST_HEADER_LEN {
            return Err(InvalidMessage::LengthTooSmall {
                len,
                min: REQUEST_HEADER_LEN,
            });
        }
        if len as usize != bytes.len() {
            return Err(InvalidMessage::LengthMismatch {
                announced: len as usize,
                got: bytes.len(),
            });
        }
        if header.lld() != LLD_ISCSI.as_bytes() {
            return Err(InvalidMessage::WrongLld(excerpt(&String::from_utf8_lossy(
                header.lld(),
            ))));
        }
        let payload = &bytes[REQUEST_HEADER_LEN..];
        let text = if payload.is_empty() {
            None
        } else {
            if payload.len() > MAX_REQUEST_PAYLOAD {
                return Err(InvalidMessage::PayloadTooLong {
                    len: payload.len(),
                    max: MAX_REQUEST_PAYLOAD,
                });
            }
            let (last, body) = payload
                .split_last()
                .ok_or(InvalidMessage::PayloadNotTerminated)?;
            if *last != 0 {
                return Err(InvalidMessage::PayloadNotTerminated);
            }
            if let Some(offset) = body.iter().position(|&b| b == 0) {
                return Err(InvalidMessage::PayloadHasNul { offset });
            }
            Some(Zeroizing::new(body.to_vec()))
        };
        Ok(RequestRepr {
            mode: header.mode(),
            op: header.operation(),
            tid: header.tid(),
            sid: header.sid(),
            lun: header.lun(),
            cid: header.cid(),
            host_no: header.host_no(),
            device_type: header.device_type(),
            ac_dir: header.ac_dir(),
            pack: header.pack(),
            force: header.force(),
            text,
        })
    }

    /// Writes the request into `buf`, which must hold [`RequestRepr::buffer_len`] bytes.
    ///
    /// # Errors
    /// [`Refused::PayloadTooLong`] when the text and its NUL exceed
    /// [`MAX_REQUEST_PAYLOAD`] [`Refused::PayloadHasNul`], [`Refused::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Refused> {
        if let Some(text) = &self.text {
            if text.len() + 1 > MAX_REQUEST_PAYLOAD {
                return Err(Refused::PayloadTooLong {
                    len: text.len() + 1,
                    max: MAX_REQUEST_PAYLOAD,
                });
            }
            if text.contains(&0) {
                return Err(Refused::PayloadHasNul);
            }
        }
        let total = self.buffer_len();
        let Some(buf) = buf.get_mut(..total) else {
            return Err(Refused::BufferTooSmall {
                needed: total,
                got: buf.len(),
            });
        };
        buf.fill(0);
        let (head, payload) = buf.split_at_mut(REQUEST_HEADER_LEN);
        let mut h = RequestHeader::new_unchecked(head);
        h.set_mode(self.mode);
        h.set_operation(self.op);
        h.set_lld(LLD_ISCSI.as_bytes());
        // `total` is at most 120 + 8192: the check above.
        h.set_len(total as u32);
        h.set_tid(self.tid);
        h.set_sid(self.sid);
        h.set_lun(self.lun);
        h.set_cid(self.cid);
        h.set_host_no(self.host_no);
        h.set_device_type(self.device_type);
        h.set_ac_dir(self.ac_dir);
        h.set_pack(self.pack);
        h.set_force(self.force);
        if let Some(text) = &self.text {
            payload[..text.len()].copy_from_slice(text);
            // payload[text.len()] is the NUL left by `fill(0)`.
        }
        Ok(())
    }

    /// [`RequestRepr::emit`] into a new, wiped-on-drop buffer.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, Refused> {
        let mut buf = Zeroizing::new(vec![0u8; self.buffer_len()]);
        self.emit(&mut buf)?;
        Ok(buf)
    }
}

/// The rules a request's values must follow; one place for building and for parsing.
mod rules {
    use super::*;

    fn bad(field: Field, value: &str, reason: &'static str) -> Refused {
        Refused::BadValue {
            field,
            value: Some(excerpt(value)),
            reason,
        }
    }

    pub(super) fn tid(tid: u32) -> Result<i32, Refused> {
        match i32::try_from(tid) {
            Ok(t) if t > 0 => Ok(t),
            _ => Err(bad(Field::Tid, &tid.to_string(), "must be 1 to 2147483647")),
        }
    }

    pub(super) fn target_name(name: &str) -> Result<(), Refused> {
        if name.is_empty() {
            return Err(bad(Field::TargetName, name, "must not be empty"));
        }
        if name.len() > MAX_TARGET_NAME_LEN {
            return Err(bad(
                Field::TargetName,
                name,
                "longer than the 223 bytes of an iSCSI name",
            ));
        }
        // tgtd's own check (target.c): anything else is INVALID_REQUEST.
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'-'))
        {
            return Err(bad(
                Field::TargetName,
                name,
                "only A-Z a-z 0-9 : . - are allowed",
            ));
        }
        Ok(())
    }

    pub(super) fn acl(value: &str) -> Result<(), Refused> {
        if value.is_empty() {
            return Err(bad(Field::Acl, value, "must not be empty"));
        }
        // tgtd searches the whole payload for `initiator-address=` and `initiator-name=`: a value
        // with `=` could smuggle in a second key, and a comma or space never belongs in an
        // address, a CIDR block or an iSCSI name.
        if !value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'=')
        {
            return Err(bad(
                Field::Acl,
                value,
                "only printable ASCII without space, ',' and '=' is allowed",
            ));
        }
        Ok(())
    }

    pub(super) fn user(user: &str) -> Result<(), Refused> {
        if user.is_empty() {
            return Err(bad(Field::User, user, "must not be empty"));
        }
        // tgtd ends the user at the first comma when creating an account; `show` prints one user
        // per line and marks outgoing ones with " (outgoing)", so no space or control character.
        if !user.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(bad(
                Field::User,
                user,
                "only printable ASCII without space and ',' is allowed",
            ));
        }
        Ok(())
    }

    pub(super) fn password(password: &[u8]) -> Result<(), Refused> {
        // tgtd takes everything after `password=` up to the NUL as the secret, commas included
        // (mgmt.c), so only NUL is impossible. An empty secret is accepted by tgtd but would make
        // CHAP meaningless: we refuse it.
        if password.is_empty() {
            return Err(Refused::BadValue {
                field: Field::Password,
                value: None,
                reason: "must not be empty",
            });
        }
        if password.contains(&0) {
            return Err(Refused::BadValue {
                field: Field::Password,
                value: None,
                reason: "must not hold a NUL byte",
            });
        }
        Ok(())
    }

    pub(super) fn portal(portal: &SocketAddr) -> Result<(), Refused> {
        let shown = portal.to_string();
        if portal.port() == 0 {
            return Err(bad(Field::Portal, &shown, "port 0 is not a portal"));
        }
        if let SocketAddr::V6(v6) = portal {
            // tgtd lists and matches portals by inet_ntop form and port alone.
            if v6.scope_id() != 0 || v6.flowinfo() != 0 {
                return Err(bad(
                    Field::Portal,
                    &shown,
                    "IPv6 scope id and flow info are not supported by tgtd",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn system_param(p: &SystemParam) -> Result<(), Refused> {
        if p.key.is_empty()
            || !p
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(bad(
                Field::SystemKey,
                &p.key,
                "must be 1 or more of A-Z a-z 0-9 _ - .",
            ));
        }
        // tgtd splits the payload on commas.
        if !p
            .value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b',')
        {
            return Err(bad(
                Field::SystemValue,
                &p.value,
                "only printable ASCII without ',' is allowed",
            ));
        }
        Ok(())
    }
}

fn text_of(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

fn binding_fields(binding: &AccountBinding) -> Result<(i32, u32), Refused> {
    let tid = match binding.scope {
        AccountScope::Target(t) => rules::tid(t)?,
        AccountScope::Discovery => NO_TID,
    };
    let dir = match binding.direction {
        AccountDirection::Incoming => 0,
        AccountDirection::Outgoing => 1,
    };
    Ok((tid, dir))
}

impl Request {
    /// Checks every value against the rules (crate doc) without building anything.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), Refused> {
        self.to_repr().map(drop)
    }

    /// The wire form, after checking every value.
    ///
    /// # Errors
    /// [`Refused`] naming the value and the rule it breaks, or the payload size.
    pub fn to_repr(&self) -> Result<RequestRepr, Refused> {
        use Mode as M;
        use Operation as O;
        let r = match self {
            Request::ShowTargets => RequestRepr::new(M::Target, O::Show),
            Request::ShowPortals => RequestRepr::new(M::Portal, O::Show),
            Request::ShowAccounts => RequestRepr::new(M::Account, O::Show),
            Request::ShowSystem => RequestRepr::new(M::System, O::Show),
            Request::ShowLld => RequestRepr::new(M::Lld, O::Show),
            Request::NewPortal { portal } | Request::DeletePortal { portal } => {
                rules::portal(portal)?;
                let op = if matches!(self, Request::NewPortal { .. }) {
                    O::New
                } else {
                    O::Delete
                };
                let mut r = RequestRepr::new(M::Portal, op);
                let shown = portal.to_string();
                r.text = Some(text_of(&[b"portalOps portal=", shown.as_bytes(), b","]));
                r
            }
            Request::NewTarget { tid, name } => {
                let tid = rules::tid(*tid)?;
                rules::target_name(name)?;
                let mut r = RequestRepr::new(M::Target, O::New);
                r.tid = tid;
                r.text = Some(text_of(&[b"targetname=", name.as_bytes()]));
                r
            }
            Request::DeleteTarget { tid, force } => {
                let mut r = RequestRepr::new(M::Target, O::Delete);
                r.tid = rules::tid(*tid)?;
                r.force = u32::from(*force);
                r
            }
            Request::SetTargetState { tid, state } => {
                let mut r = RequestRepr::new(M::Target, O::Update);
                r.tid = rules::tid(*tid)?;
                r.text = Some(text_of(&[b"state=", state.as_str().as_bytes()]));
                r
            }
            Request::BindAcl { tid, acl } | Request::UnbindAcl { tid, acl } => {
                let op = if matches!(self, Request::BindAcl { .. }) {
                    O::Bind
                } else {
                    O::Unbind
                };
                let mut r = RequestRepr::new(M::Target, op);
                r.tid = rules::tid(*tid)?;
                rules::acl(acl.value())?;
                r.text = Some(text_of(&[
                    acl.key().as_bytes(),
                    b"=",
                    acl.value().as_bytes(),
                ]));
                r
            }
            Request::NewAccount { user, password } => {
                rules::user(user)?;
                rules::password(password.expose())?;
                let mut r = RequestRepr::new(M::Account, O::New);
                // Exactly this order: tgtd skips 9 characters ("password=") after the first comma.
                r.text = Some(text_of(&[
                    b"user=",
                    user.as_bytes(),
                    b",password=",
                    password.expose(),
                ]));
                r
            }
            Request::DeleteAccount { user } => {
                rules::user(user)?;
                let mut r = RequestRepr::new(M::Account, O::Delete);
                r.text = Some(text_of(&[b"user=", user.as_bytes()]));
                r
            }
            Request::BindAccount { user, binding } | Request::UnbindAccount { user, binding } => {
                rules::user(user)?;
                let op = if matches!(self, Request::BindAccount { .. }) {
                    O::Bind
                } else {
                    O::Unbind
                };
                let mut r = RequestRepr::new(M::Account, op);
                (r.tid, r.ac_dir) = binding_fields(binding)?;
                r.text = Some(text_of(&[b"user=", user.as_bytes()]));
                r
            }
            Request::UpdateSystem { params } => {
                if params.is_empty() {
                    return Err(Refused::NoSystemParams);
                }
                let mut text = Zeroizing::new(Vec::new());
                for (i, p) in params.iter().enumerate() {
                    rules::system_param(p)?;
                    if i > 0 {
                        text.push(b',');
                    }
                    text.extend_from_slice(p.key.as_bytes());
                    text.push(b'=');
                    text.extend_from_slice(p.value.as_bytes());
                    // Stop growing as soon as the limit is passed: `params` may be huge.
                    if text.len() + 1 > MAX_REQUEST_PAYLOAD {
                        break;
                    }
                }
                let mut r = RequestRepr::new(M::System, O::Update);
                r.text = Some(text);
                r
            }
        };
        if let Some(text) = &r.text {
            if text.len() + 1 > MAX_REQUEST_PAYLOAD {
                return Err(Refused::PayloadTooLong {
                    len: text.len() + 1,
                    max: MAX_REQUEST_PAYLOAD,
                });
            }
        }
        Ok(r)
    }

    /// The exact bytes to send, in a buffer wiped on drop.
    ///
    /// # Errors
    /// As [`Request::to_repr`].
    pub fn emit(&self) -> Result<Zeroizing<Vec<u8>>, Refused> {
        self.to_repr()?.to_bytes()
    }

    /// Parses a whole request (header and payload) back into a [`Request`], applying the same
    /// rules as building one. Never panics.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] for bytes that do not decode or an operation this crate does not
    /// model; [`Error::Refused`] for values the rules refuse.
    pub fn parse(bytes: &[u8]) -> Result<Request, Error> {
        let repr = RequestRepr::parse(bytes)?;
        Request::from_repr(&repr)
    }

    /// Classifies a [`RequestRepr`]; see [`Request::parse`].
    ///
    /// # Errors
    /// As [`Request::parse`].
    pub fn from_repr(r: &RequestRepr) -> Result<Request, Error> {
        use Mode as M;
        use Operation as O;
        let req = match (r.mode, r.op) {
            (M::Target, O::Show) => {
                no_payload(r)?;
                if r.tid != NO_TID {
                    // "show one target" prints its parameters, a grammar this crate does not model.
                    return Err(bad_field("tid", r.tid.into()));
                }
                Request::ShowTargets
            }
            (M::Portal, O::Show) => no_payload(r).map(|_| Request::ShowPortals)?,
            (M::Account, O::Show) => no_payload(r).map(|_| Request::ShowAccounts)?,
            (M::System, O::Show) => no_payload(r).map(|_| Request::ShowSystem)?,
            (M::Lld, O::Show) => no_payload(r).map(|_| Request::ShowLld)?,
            (M::Portal, O::New) | (M::Portal, O::Delete) => {
                let portal = parse_portal(utf8_text(r)?)?;
                if r.op == O::New {
                    Request::NewPortal { portal }
                } else {
                    Request::DeletePortal { portal }
                }
            }
            (M::Target, O::New) => {
                let text = utf8_text(r)?;
                let name = text
                    .strip_prefix("targetname=")
                    .ok_or_else(|| bad_payload("targetname=NAME", text))?;
                Request::NewTarget {
                    tid: target_tid(r)?,
                    name: name.to_owned(),
                }
            }
            (M::Target, O::Delete) => {
                no_payload(r)?;
                let force = match r.force {
                    0 => false,
                    1 => true,
                    other => return Err(bad_field("force", other.into())),
                };
                Request::DeleteTarget {
                    tid: target_tid(r)?,
                    force,
                }
            }
            (M::Target, O::Update) => {
                let text = utf8_text(r)?;
                let state = match text {
                    "state=ready" => TargetState::Ready,
                    "state=offline" => TargetState::Offline,
                    _ => return Err(bad_payload("state=ready|offline", text)),
                };
                Request::SetTargetState {
                    tid: target_tid(r)?,
                    state,
                }
            }
            (M::Target, O::Bind) | (M::Target, O::Unbind) => {
                let text = utf8_text(r)?;
                let acl = if let Some(v) = text.strip_prefix("initiator-address=") {
                    Acl::InitiatorAddress(v.to_owned())
                } else if let Some(v) = text.strip_prefix("initiator-name=") {
                    Acl::InitiatorName(v.to_owned())
                } else {
                    return Err(bad_payload("initiator-address=… or initiator-name=…", text));
                };
                let tid = target_tid(r)?;
                if r.op == O::Bind {
                    Request::BindAcl { tid, acl }
                } else {
                    Request::UnbindAcl { tid, acl }
                }
            }
            (M::Account, O::New) => {
                let text = r.text.as_deref().ok_or_else(missing_payload)?;
                let redacted = || InvalidMessage::BadPayload {
                    expected: "user=USER,password=SECRET",
                    got: "<redacted: holds a password>".to_owned(),
                };
                let rest = text.strip_prefix(b"user=").ok_or_else(redacted)?;
                let comma = rest.iter().position(|&b| b == b',').ok_or_else(redacted)?;
                let (user, rest) = rest.split_at(comma);
                let password = rest.strip_prefix(b",password=").ok_or_else(redacted)?;
                let user = std::str::from_utf8(user).map_err(|_| InvalidMessage::PayloadNotUtf8)?;
                Request::NewAccount {
                    user: user.to_owned(),
                    password: Secret::new(password.to_vec()),
                }
            }
            (M::Account, O::Delete) | (M::Account, O::Bind) | (M::Account, O::Unbind) => {
                let text = utf8_text(r)?;
                let user = text
                    .strip_prefix("user=")
                    .ok_or_else(|| bad_payload("user=USER", text))?
                    .to_owned();
                if r.op == O::Delete {
                    Request::DeleteAccount { user }
                } else {
                    let scope = if r.tid == NO_TID {
                        AccountScope::Discovery
                    } else {
                        AccountScope::Target(target_tid(r)?)
                    };
                    let direction = match r.ac_dir {
                        0 => AccountDirection::Incoming,
                        1 => AccountDirection::Outgoing,
                        other => return Err(bad_field("ac_dir", other.into())),
                    };
                    let binding = AccountBinding { scope, direction };
                    if r.op == O::Bind {
                        Request::BindAccount { user, binding }
                    } else {
                        Request::UnbindAccount { user, binding }
                    }
                }
            }
            (M::System, O::Update) => {
                let text = utf8_text(r)?;
                let params = text
                    .split(',')
                    .map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| SystemParam::new(k, v))
                            .ok_or_else(|| bad_payload("KEY=VALUE[,KEY=VALUE…]", text))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Request::UpdateSystem { params }
            }
            (mode, op) => return Err(InvalidMessage::Unsupported { mode, op }.into()),
        };
        req.validate()?;
        Ok(req)
    }
}

fn bad_field(field: &'static str, value: i64) -> Error {
    InvalidMessage::BadField { field, value }.into()
}

fn bad_payload(expected: &'static str, got: &str) -> Error {
    InvalidMessage::BadPayload {
        expected,
        got: excerpt(got),
    }
    .into()
}

fn missing_payload() -> InvalidMessage {
    InvalidMessage::BadPayload {
        expected: "a payload",
        got: String::new(),
    }
}

fn no_payload(r: &RequestRepr) -> Result<(), Error> {
    match &r.text {
        None => Ok(()),
        Some(t) => Err(bad_payload("empty", &String::from_utf8_lossy(t))),
    }
}

fn utf8_text(r: &RequestRepr) -> Result<&str, Error> {
    let text = r.text.as_deref().ok_or_else(missing_payload)?;
    std::str::from_utf8(text).map_err(|_| InvalidMessage::PayloadNotUtf8.into())
}

fn target_tid(r: &RequestRepr) -> Result<u32, Error> {
    u32::try_from(r.tid)
        .ok()
        .filter(|&t| t > 0)
        .ok_or_else(|| bad_field("tid", r.tid.into()))
}

/// `portal=ADDR[:PORT]` or tgtadm's `portalOps portal=ADDR[:PORT],`; IPv6 in brackets.
fn parse_portal(text: &str) -> Result<SocketAddr, Error> {
    const FORM: &str = "portal=ADDR:PORT or portalOps portal=ADDR:PORT,";
    let body = text.strip_prefix("portalOps ").unwrap_or(text);
    let body = body.strip_suffix(',').unwrap_or(body);
    let addr = body
        .strip_prefix("portal=")
        .ok_or_else(|| bad_payload(FORM, text))?;
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(sa);
    }
    // No port: tgtd uses 3260.
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    match bare.parse::<IpAddr>() {
        // An unbracketed IPv6 address is refused: tgtd reads "::1:3263" as something else and
        // silently does nothing.
        Ok(IpAddr::V6(_)) if bare == addr => Err(bad_payload(FORM, text)),
        Ok(ip) => Ok(SocketAddr::new(ip, DEFAULT_ISCSI_PORT)),
        Err(_) => Err(bad_payload(FORM, text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(req: &Request) -> String {
        let repr = req.to_repr().map_err(|e| e.to_string());
        match repr {
            Ok(r) => String::from_utf8_lossy(r.text.as_ref().map_or(&[][..], |t| t.as_slice()))
                .into_owned(),
            Err(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn payloads_are_what_tgtadm_sends() {
        let portal = "127.0.0.5:13265".parse().unwrap();
        assert_eq!(
            text(&Request::NewPortal { portal }),
            "portalOps portal=127.0.0.5:13265,"
        );
        let v6 = "[::1]:13265".parse().unwrap();
        assert_eq!(
            text(&Request::DeletePortal { portal: v6 }),
            "portalOps portal=[::1]:13265,"
        );
        assert_eq!(
            text(&Request::NewAccount {
                user: "u".into(),
                password: Secret::from("a,b=c")
            }),
            "user=u,password=a,b=c"
        );
    }

    #[test]
    fn target_names_follow_tgtd_charset() {
        let ok = |n: &str| {
            Request::NewTarget {
                tid: 1,
                name: n.into(),
            }
            .validate()
            .is_ok()
        };
        assert!(ok("iqn.2026-12.test.vds:t1"));
        assert!(ok("A:b.C-9"));
        assert!(!ok(""));
        assert!(!ok("iqn.x:t_1"));
        assert!(!ok("iqn.x:t 1"));
        assert!(!ok("iqn.x:t\u{e9}"));
        assert!(!ok(&"a".repeat(224)));
        assert!(ok(&"a".repeat(223)));
    }

    #[test]
    fn tids_must_be_positive_int32() {
        for tid in [0u32, 1 << 31, u32::MAX] {
            assert!(matches!(
                Request::DeleteTarget { tid, force: true }.validate(),
                Err(Refused::BadValue {
                    field: Field::Tid,
                    ..
                })
            ));
        }
        assert!(
            Request::DeleteTarget {
                tid: i32::MAX as u32,
                force: false
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn acl_values_cannot_carry_a_second_key() {
        let bind = |v: &str| Request::BindAcl {
            tid: 1,
            acl: Acl::InitiatorAddress(v.into()),
        };
        assert!(bind("ALL").validate().is_ok());
        assert!(bind("10.0.0.0/8").validate().is_ok());
        assert!(bind("fe80::1").validate().is_ok());
        assert!(bind("ALL,initiator-name=iqn.x").validate().is_err());
        assert!(bind("x=y").validate().is_err());
        assert!(bind("").validate().is_err());
        assert!(bind("a b").validate().is_err());
        assert!(bind("a\0b").validate().is_err());
    }

    #[test]
    fn two_acl_keys_in_one_payload_are_refused_on_parse() {
        // tgtd would store the ACL "A,initiator-name=B" and bind a name ACL too.
        let mut repr = RequestRepr::new(Mode::Target, Operation::Bind);
        repr.tid = 1;
        repr.text = Some(
            b"initiator-address=ALL,initiator-name=iqn.x:y"
                .to_vec()
                .into(),
        );
        let bytes = repr.to_bytes().unwrap_or_default();
        assert!(matches!(
            Request::parse(&bytes),
            Err(Error::Refused(Refused::BadValue {
                field: Field::Acl,
                ..
            }))
        ));
    }

    #[test]
    fn account_rules() {
        let new = |u: &str, p: &[u8]| Request::NewAccount {
            user: u.into(),
            password: Secret::new(p.to_vec()),
        };
        assert!(new("user1", b"pass,with,commas").validate().is_ok());
        assert!(new("us,er", b"p").validate().is_err());
        assert!(new("us er", b"p").validate().is_err());
        assert!(new("", b"p").validate().is_err());
        assert!(new("u", b"").validate().is_err());
        assert!(new("u", b"a\0b").validate().is_err());
        // The refusal never shows the password.
        let msg = new("u", b"se\0cret")
            .validate()
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default();
        assert!(msg.contains("password") && !msg.contains("se"), "{msg}");
    }

    #[test]
    fn payload_limit_is_tgtds_including_the_nul() {
        let with_value_len = |n: usize| Request::UpdateSystem {
            params: vec![SystemParam::new("k", "v".repeat(n))],
        };
        // "k=" + value + NUL
        assert!(with_value_len(8192 - 3).validate().is_ok());
        assert_eq!(
            with_value_len(8192 - 2).validate(),
            Err(Refused::PayloadTooLong {
                len: 8193,
                max: 8192
            })
        );
    }

    #[test]
    fn several_params_are_comma_joined_and_values_cannot_hold_commas() {
        let r = Request::UpdateSystem {
            params: vec![
                SystemParam::isns_server_ip([127, 0, 0, 1].into()),
                SystemParam::isns_server_port(13205),
                SystemParam::isns_access_control(false),
                SystemParam::isns(true),
            ],
        };
        assert_eq!(
            text(&r),
            "iSNSServerIP=127.0.0.1,iSNSServerPort=13205,iSNSAccessControl=Off,iSNS=On"
        );
        let bad = Request::UpdateSystem {
            params: vec![SystemParam::new("iSNSServerIP", "1,2")],
        };
        assert!(bad.validate().is_err());
        assert_eq!(
            Request::UpdateSystem { params: vec![] }.validate(),
            Err(Refused::NoSystemParams)
        );
    }

    #[test]
    fn new_target_without_payload_is_refused_on_parse() {
        // tgtd dereferences NULL on this request (target.c:2142); it must never round-trip.
        let mut repr = RequestRepr::new(Mode::Target, Operation::New);
        repr.tid = 1;
        let bytes = repr.to_bytes().unwrap_or_default();
        assert_eq!(bytes.len(), 120);
        assert!(matches!(
            Request::parse(&bytes),
            Err(Error::InvalidMessage(InvalidMessage::BadPayload { .. }))
        ));
    }

    #[test]
    fn portal_forms() {
        let p = |t: &str| parse_portal(t).map(|a| a.to_string()).ok();
        assert_eq!(
            p("portalOps portal=127.0.0.5:13265,").as_deref(),
            Some("127.0.0.5:13265")
        );
        assert_eq!(p("portal=127.0.0.5:1").as_deref(), Some("127.0.0.5:1"));
        assert_eq!(p("portal=127.0.0.5").as_deref(), Some("127.0.0.5:3260"));
        assert_eq!(p("portal=[::1]").as_deref(), Some("[::1]:3260"));
        assert_eq!(p("portal=[::1]:7").as_deref(), Some("[::1]:7"));
        assert_eq!(p("portal=::1:3263"), None);
        assert_eq!(p("portal=host.example:3260"), None);
        assert_eq!(p("portl=1.2.3.4"), None);
    }

    #[test]
    fn debug_of_account_creation_hides_the_password() {
        let r = Request::NewAccount {
            user: "u".into(),
            password: Secret::from("hunter2"),
        };
        let repr = r.to_repr().map(|r| format!("{r:?}")).unwrap_or_default();
        assert!(
            !repr.contains("hunter2") && repr.contains("redacted"),
            "{repr}"
        );
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
