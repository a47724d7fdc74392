//! The discovery session as a sans-IO state machine: login (security stage with one-way or
//! mutual CHAP when configured, then the operational stage), `SendTargets` with continuation, and
//! logout. It is fed received bytes with [`DiscoverySession::handle_bytes`] (or whole PDUs with
//! [`DiscoverySession::handle_pdu`]) and drained with [`DiscoverySession::poll_transmit`] and
//! [`DiscoverySession::poll_event`]. It has no sockets and no clock: deadlines are the driver's.
//!
//! The handshake is an enum of `Expect*` states; each state's `handle` consumes it and returns the
//! next, so a stale state cannot be reused. After an error the session is over and every call
//! returns [`ApiMisuse::SessionOver`].
//!
//! Tolerated peer behaviour: istgt's ExpCmdSN advancing on an immediate PDU (Logout is sent with
//! CmdSN = max(ours, the target's ExpCmdSN)); `NotUnderstood`/`Irrelevant` answers to keys we do
//! not strictly need; NOP-In pings (answered when TTT ≠ 0xffffffff); Async Messages; tgt's text
//! split at raw byte offsets with C=0 (all Text Response data of one exchange is one stream,
//! decoded at the end). Login redirects end the session with [`Event::Redirected`]; following
//! them (and bounding how often) is the driver's job.

use std::collections::VecDeque;

use rand::RngCore;

use crate::address::{DiscoveredTarget, TargetAddress, parse_send_targets_text};
use crate::chap::{self, ChapAlgorithm, ChapCredentials};
use crate::error::{ApiMisuse, Error, InvalidPdu, Limit, LoginFailure, PeerMisbehaved};
use crate::text::{KeyValue, TextAccumulator, TextWriter};
use crate::wire::{
    AsyncEvent, BHS_LEN, LoginRequest, LoginResponse, LogoutReason, LogoutRequest, NopOut, Opcode,
    Packet, RESERVED_TAG, Repr, Stage, TextRequest, pdu_len,
};

/// The MaxRecvDataSegmentLength both sides assume until one declares another (RFC 7143 §13.12).
pub const DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH: u32 = 8192;
/// Smallest legal MaxRecvDataSegmentLength.
pub const MIN_MAX_RECV_DATA_SEGMENT_LENGTH: u32 = 512;
/// Largest legal MaxRecvDataSegmentLength.
pub const MAX_MAX_RECV_DATA_SEGMENT_LENGTH: u32 = 0x00ff_ffff;
pub use crate::limits::MAX_ISCSI_NAME_LEN;
/// Most Login Responses one login may take before we give up.
pub const MAX_LOGIN_PDUS: usize = 16;
/// Length of the challenge we send for mutual CHAP.
pub const CHALLENGE_LEN: usize = 32;

/// The CHAP algorithms offered by default, in this order. MD5 comes first because the target
/// picks the first one it knows and tgt 1.0.85 accepts `CHAP_A=7` (SHA-256) but then fails to
/// decode the 32-byte `CHAP_R` (it has a 20-byte buffer) and refuses the login with status 0x0200;
/// FIPS deployments set [`SessionConfig::chap_algorithms`] to SHA-256/SHA3-256 only.
pub const DEFAULT_CHAP_ALGORITHMS: [ChapAlgorithm; 4] = [
    ChapAlgorithm::Md5,
    ChapAlgorithm::Sha1,
    ChapAlgorithm::Sha256,
    ChapAlgorithm::Sha3_256,
];

/// What to ask in `SendTargets=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum SendTargetsQuery {
    /// `SendTargets=All`: every target this initiator may see.
    #[default]
    All,
    /// `SendTargets=<iqn>`: just that target (empty answer if unknown).
    Name(String),
}

/// What the session does once logged in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Ask SendTargets, then log out.
    SendTargets(SendTargetsQuery),
    /// Log out at once (tells whether a portal is up and accepts a discovery login).
    Probe,
}

/// Configuration of one discovery session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our iSCSI name (`InitiatorName`), 1..=223 bytes.
    pub initiator_name: String,
    /// One-way CHAP: our user name and secret. `None` logs in without authentication.
    pub chap: Option<ChapCredentials>,
    /// Mutual CHAP: the name and secret the *target* must prove. Needs `chap`.
    pub mutual: Option<ChapCredentials>,
    /// CHAP algorithms offered in `CHAP_A`, most preferred first.
    pub chap_algorithms: Vec<ChapAlgorithm>,
    /// SendTargets or a bare probe.
    pub purpose: Purpose,
    /// The MaxRecvDataSegmentLength we declare (512..=16777215).
    pub max_recv_data_segment_length: u32,
    /// Most PDUs we accept from the target in this session.
    pub max_pdus: usize,
    /// Most bytes of SendTargets answer text we accept.
    pub max_answer_bytes: usize,
}

impl SessionConfig {
    /// A configuration with the given initiator name and the defaults: no CHAP, algorithms
    /// MD5, SHA-1, SHA-256, SHA3-256 (in that order, see [`DEFAULT_CHAP_ALGORITHMS`]),
    /// `SendTargets=All`, MaxRecvDataSegmentLength 262144, 4096 PDUs, 16 MiB of answer.
    pub fn new(initiator_name: impl Into<String>) -> Self {
        SessionConfig {
            initiator_name: initiator_name.into(),
            chap: None,
            mutual: None,
            chap_algorithms: DEFAULT_CHAP_ALGORITHMS.to_vec(),
            purpose: Purpose::SendTargets(SendTargetsQuery::All),
            max_recv_data_segment_length: 262_144,
            max_pdus: 4096,
            max_answer_bytes: 16 << 20,
        }
    }

    fn validate(&self) -> Result<(), ApiMisuse> {
        let name_ok = |n: &str| !n.is_empty() && n.len() <= MAX_ISCSI_NAME_LEN && !n.contains('\0');
        if !name_ok(&self.initiator_name) {
            return Err(ApiMisuse::BadConfig(
                "initiator name must be 1..=223 bytes without NUL",
            ));
        }
        if let Purpose::SendTargets(SendTargetsQuery::Name(n)) = &self.purpose {
            if !name_ok(n) {
                return Err(ApiMisuse::BadConfig(
                    "SendTargets name must be 1..=223 bytes without NUL",
                ));
            }
        }
        if !(MIN_MAX_RECV_DATA_SEGMENT_LENGTH..=MAX_MAX_RECV_DATA_SEGMENT_LENGTH)
            .contains(&self.max_recv_data_segment_length)
        {
            return Err(ApiMisuse::BadConfig(
                "MaxRecvDataSegmentLength must be in 512..=16777215",
            ));
        }
        if self.max_pdus == 0 {
            return Err(ApiMisuse::BadConfig("max_pdus must be at least 1"));
        }
        if self.mutual.is_some() && self.chap.is_none() {
            return Err(ApiMisuse::BadConfig(
                "mutual CHAP needs one-way CHAP credentials too",
            ));
        }
        if self.chap.is_some() && self.chap_algorithms.is_empty() {
            return Err(ApiMisuse::BadConfig("CHAP needs at least one algorithm"));
        }
        for c in self.chap.iter().chain(self.mutual.iter()) {
            if c.user.is_empty()
                || c.user.len() > crate::limits::MAX_CHAP_USER_LEN
                || c.user.contains('\0')
            {
                return Err(ApiMisuse::BadConfig(
                    "CHAP user must be 1..=255 bytes without NUL",
                ));
            }
            if c.secret.is_empty() || c.secret.len() > crate::limits::MAX_CHAP_SECRET_LEN {
                return Err(ApiMisuse::BadConfig("CHAP secret must be 1..=1024 bytes"));
            }
        }
        Ok(())
    }
}

/// The random values a session needs, supplied by the caller so tests are deterministic.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSeed {
    /// ISID (use the "random" format: first byte 0x80).
    pub isid: [u8; 6],
    /// First Initiator Task Tag (never 0xffffffff; later tags count up from it).
    pub itt: u32,
    /// Initial CmdSN.
    pub cmd_sn: u32,
    /// Our `CHAP_I` for mutual CHAP.
    pub chap_identifier: u8,
    /// Our `CHAP_C` for mutual CHAP.
    pub chap_challenge: [u8; CHALLENGE_LEN],
}

impl core::fmt::Debug for SessionSeed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionSeed")
            .field("isid", &self.isid)
            .field("itt", &self.itt)
            .field("cmd_sn", &self.cmd_sn)
            .finish_non_exhaustive()
    }
}

impl SessionSeed {
    /// Draws every value from `rng`, in one draw.
    pub fn from_rng<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut raw = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut raw);
        Self::from_bytes(&raw)
    }

    /// Draws every value from the operating system's CSPRNG (`getrandom`), in one call.
    ///
    /// Not the thread-local generator: seeding that (ChaCha) asks the CPU for its features
    /// first, and under a hypervisor each `CPUID` is a VM exit (about 8 µs on the machines
    /// docs/PERFORMANCE.md was measured on; nine of them were 0.07 ms of every `vdsadm discover`).
    /// A session needs 44 bytes once.
    pub fn random() -> Self {
        Self::from_rng(&mut rand::rngs::OsRng)
    }

    /// The seed these bytes make: the ISID's three random bytes, the CHAP challenge, then the
    /// first ITT, the initial CmdSN and the CHAP identifier (little-endian).
    fn from_bytes(raw: &[u8; SEED_BYTES]) -> Self {
        let (isid, rest) = raw.split_at(3);
        let (chap, rest) = rest.split_at(CHALLENGE_LEN);
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let mut chap_challenge = [0u8; CHALLENGE_LEN];
        chap_challenge.copy_from_slice(chap);
        let mut itt = word(0);
        if itt >= RESERVED_TAG - 64 {
            itt = 1;
        }
        SessionSeed {
            isid: [0x80, isid[0], isid[1], isid[2], 0, 0],
            itt,
            cmd_sn: word(4),
            chap_identifier: rest[8],
            chap_challenge,
        }
    }
}

/// What [`SessionSeed::from_rng`] draws: 3 ISID bytes, the challenge, ITT, CmdSN, identifier.
const SEED_BYTES: usize = 3 + CHALLENGE_LEN + 4 + 4 + 1;

/// Something the driver should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The login completed (full-feature phase).
    LoggedIn {
        /// `TargetPortalGroupTag` from the login responses, if the target sent one.
        portal_group_tag: Option<u16>,
        /// The TSIH the target assigned.
        tsih: u16,
        /// The target's MaxRecvDataSegmentLength (what we may send).
        target_max_recv_data_segment_length: u32,
    },
    /// The SendTargets answer.
    Targets(Vec<DiscoveredTarget>),
    /// The target redirected the login (Status-Class 1). The session is over; connect there.
    Redirected {
        /// Where to go (tag is normally absent).
        address: TargetAddress,
        /// Detail 0x02 (moved permanently) rather than 0x01 (temporarily).
        permanent: bool,
    },
    /// An Async Message the session tolerated (logout request, negotiation request, ...).
    Async {
        /// The event.
        event: AsyncEvent,
    },
    /// The Logout Response arrived: the session is over, close the connection.
    LoggedOut,
}

/// Where the session is; used by drivers to say what timed out or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Login (security or operational stage).
    Login,
    /// Waiting for the SendTargets answer.
    SendTargets,
    /// Waiting for the Logout Response.
    Logout,
    /// Logged out or redirected.
    Done,
}

impl core::fmt::Display for Phase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Phase::Login => "login",
            Phase::SendTargets => "SendTargets",
            Phase::Logout => "logout",
            Phase::Done => "done",
        })
    }
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// PDUs received.
    pub pdus_received: usize,
    /// Bytes received (whole PDUs).
    pub bytes_received: usize,
    /// PDUs sent.
    pub pdus_sent: usize,
    /// Bytes of SendTargets answer text.
    pub answer_bytes: usize,
}

/// Serial-number "greater than" (RFC 1982, 32 bits).
fn sn_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

struct Context {
    config: SessionConfig,
    seed: SessionSeed,
    outgoing: Vec<u8>,
    events: VecDeque<Event>,
    cmd_sn: u32,
    exp_stat_sn: u32,
    target_exp_cmd_sn: Option<u32>,
    target_mrdsl: u32,
    next_itt: u32,
    login_itt: u32,
    login_pdus: usize,
    login_text: TextAccumulator,
    tsih: u16,
    portal_group_tag: Option<u16>,
    stats: Stats,
    first_login_sent: bool,
}

impl Context {
    fn alloc_itt(&mut self) -> u32 {
        let itt = self.next_itt;
        self.next_itt = self.next_itt.wrapping_add(1);
        if self.next_itt == RESERVED_TAG {
            self.next_itt = 0;
        }
        itt
    }

    fn emit(&mut self, repr: &Repr<'_>) -> Result<(), Error> {
        let limit = self.target_mrdsl as usize;
        if repr.data().len() > limit {
            return Err(ApiMisuse::BadConfig(
                "request does not fit the target's MaxRecvDataSegmentLength",
            )
            .into());
        }
        let start = self.outgoing.len();
        self.outgoing.resize(start + repr.buffer_len(), 0);
        repr.emit(&mut Packet::new_unchecked(&mut self.outgoing[start..]))?;
        self.stats.pdus_sent += 1;
        Ok(())
    }

    fn send_login(
        &mut self,
        transit: bool,
        csg: Stage,
        nsg: Stage,
        data: &[u8],
    ) -> Result<(), Error> {
        let repr = Repr::LoginRequest(LoginRequest {
            transit,
            cont: false,
            csg,
            nsg,
            version_max: 0,
            version_min: 0,
            isid: self.seed.isid,
            tsih: self.tsih,
            itt: self.login_itt,
            cid: 0,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: if self.first_login_sent {
                self.exp_stat_sn
            } else {
                0
            },
            data,
        });
        self.first_login_sent = true;
        self.emit(&repr)
    }

    /// Keys that only the first Login Request carries.
    fn first_keys(&self, w: &mut TextWriter) -> Result<(), Error> {
        if !self.first_login_sent {
            w.push("InitiatorName", &self.config.initiator_name)?;
            w.push("SessionType", "Discovery")?;
        }
        Ok(())
    }

    fn send_operational(&mut self) -> Result<(), Error> {
        let mut w = TextWriter::new();
        self.first_keys(&mut w)?;
        w.push("HeaderDigest", "None")?;
        w.push("DataDigest", "None")?;
        w.push(
            "MaxRecvDataSegmentLength",
            &self.config.max_recv_data_segment_length.to_string(),
        )?;
        self.send_login(true, Stage::Operational, Stage::FullFeature, w.as_bytes())
    }

    fn send_text(&mut self, itt: u32, ttt: u32, data: &[u8]) -> Result<(), Error> {
        let repr = Repr::TextRequest(TextRequest {
            immediate: true,
            final_: true,
            cont: false,
            lun: 0,
            itt,
            ttt,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data,
        });
        self.emit(&repr)
    }

    fn send_logout(&mut self) -> Result<u32, Error> {
        let itt = self.alloc_itt();
        // istgt advances ExpCmdSN on immediate PDUs; a CmdSN below the target's ExpCmdSN would
        // be dropped, so use the larger of the two.
        let cmd_sn = match self.target_exp_cmd_sn {
            Some(e) if sn_gt(e, self.cmd_sn) => e,
            _ => self.cmd_sn,
        };
        let repr = Repr::LogoutRequest(LogoutRequest {
            immediate: true,
            reason: LogoutReason::CloseSession,
            itt,
            cid: 0,
            cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
        });
        self.emit(&repr)?;
        Ok(itt)
    }

    fn note_status(&mut self, stat_sn: u32, exp_cmd_sn: u32) {
        self.exp_stat_sn = stat_sn.wrapping_add(1);
        self.target_exp_cmd_sn = Some(exp_cmd_sn);
    }

    /// Common checks of a Login Response. Returns the decoded keys once the response text is
    /// complete, or `None` when the target set C=1 and we asked for the rest.
    fn login_response(&mut self, r: &LoginResponse<'_>) -> Result<LoginStep, Error> {
        self.login_pdus += 1;
        if self.login_pdus > MAX_LOGIN_PDUS {
            return Err(PeerMisbehaved::LoginTooLong(MAX_LOGIN_PDUS).into());
        }
        if r.itt != self.login_itt {
            return Err(PeerMisbehaved::UnexpectedItt {
                expected: self.login_itt,
                got: r.itt,
            }
            .into());
        }
        self.note_status(r.stat_sn, r.exp_cmd_sn);
        match r.status_class {
            0 => {}
            1 => {
                let kv = crate::text::decode(r.data).map_err(InvalidPdu::from)?;
                let addr = crate::text::find(&kv, "TargetAddress")
                    .ok_or(PeerMisbehaved::RedirectWithoutAddress)?;
                let address = TargetAddress::parse(addr).map_err(InvalidPdu::from)?;
                return Ok(LoginStep::Redirect(Event::Redirected {
                    address,
                    permanent: r.status_detail == 2,
                }));
            }
            class => {
                return Err(LoginFailure {
                    class,
                    detail: r.status_detail,
                }
                .into());
            }
        }
        if r.version_active != 0 {
            return Err(PeerMisbehaved::UnsupportedVersion(r.version_active).into());
        }
        if r.tsih != 0 {
            self.tsih = r.tsih;
        }
        if !self.login_text.push(r.data, crate::text::MAX_VALUE_LEN * 4) {
            return Err(PeerMisbehaved::LoginTooLong(MAX_LOGIN_PDUS).into());
        }
        if r.cont {
            // The target has more text for this stage: ask for it with an empty request.
            self.send_login(false, r.csg, r.nsg, &[])?;
            return Ok(LoginStep::More);
        }
        let kv = self.login_text.decode().map_err(InvalidPdu::from)?;
        self.login_text = TextAccumulator::new();
        if let Some(tag) = crate::text::find(&kv, "TargetPortalGroupTag") {
            match tag.parse::<u16>() {
                Ok(t) => self.portal_group_tag = Some(t),
                Err(_) if is_non_answer(tag) => {}
                Err(_) => return Err(bad_number("TargetPortalGroupTag", tag)),
            }
        }
        Ok(LoginStep::Keys(kv))
    }

    fn logged_in(&mut self) -> Result<State, Error> {
        self.events.push_back(Event::LoggedIn {
            portal_group_tag: self.portal_group_tag,
            tsih: self.tsih,
            target_max_recv_data_segment_length: self.target_mrdsl,
        });
        match self.config.purpose.clone() {
            Purpose::SendTargets(q) => {
                let itt = self.alloc_itt();
                let value = match &q {
                    SendTargetsQuery::All => "All",
                    SendTargetsQuery::Name(n) => n.as_str(),
                };
                let mut w = TextWriter::new();
                w.push("SendTargets", value)?;
                self.send_text(itt, RESERVED_TAG, w.as_bytes())?;
                Ok(State::ExpectTextResponse(ExpectTextResponse {
                    itt,
                    answer: TextAccumulator::new(),
                }))
            }
            Purpose::Probe => {
                let itt = self.send_logout()?;
                Ok(State::ExpectLogoutResponse(ExpectLogoutResponse { itt }))
            }
        }
    }

    /// Handles the PDUs allowed at any time in the full-feature phase. Returns the PDU back if
    /// it is for the current state.
    fn full_feature_common<'a>(&mut self, repr: Repr<'a>) -> Result<Option<Repr<'a>>, Error> {
        match repr {
            Repr::NopIn(n) => {
                self.target_exp_cmd_sn = Some(n.exp_cmd_sn);
                if n.ttt != RESERVED_TAG {
                    let len = n.data.len().min(self.target_mrdsl as usize);
                    let out = Repr::NopOut(NopOut {
                        immediate: true,
                        lun: n.lun,
                        itt: RESERVED_TAG,
                        ttt: n.ttt,
                        cmd_sn: self.cmd_sn,
                        exp_stat_sn: self.exp_stat_sn,
                        data: &n.data[..len],
                    });
                    self.emit(&out)?;
                }
                Ok(None)
            }
            Repr::AsyncMessage(a) => {
                self.note_status(a.stat_sn, a.exp_cmd_sn);
                match a.event {
                    AsyncEvent::DropConnection | AsyncEvent::DropAllConnections => {
                        Err(PeerMisbehaved::ConnectionDropAnnounced {
                            event: u8::from(a.event),
                        }
                        .into())
                    }
                    event => {
                        self.events.push_back(Event::Async { event });
                        Ok(None)
                    }
                }
            }
            Repr::Reject(r) => Err(Error::Rejected { reason: r.reason }),
            other => Ok(Some(other)),
        }
    }
}

enum LoginStep {
    Keys(Vec<KeyValue>),
    More,
    Redirect(Event),
}

fn is_non_answer(v: &str) -> bool {
    matches!(v, "NotUnderstood" | "Irrelevant")
}

fn bad_number(key: &str, value: &str) -> Error {
    InvalidPdu::BadNumber {
        key: key.to_owned(),
        value: value.chars().take(64).collect(),
    }
    .into()
}

fn missing(key: &'static str) -> Error {
    PeerMisbehaved::MissingKey(key).into()
}

fn unexpected(opcode: Opcode, phase: &'static str) -> Error {
    PeerMisbehaved::UnexpectedPdu { opcode, phase }.into()
}

/// Checks the operational keys of the target's answer.
fn check_operational(cx: &mut Context, kv: &[KeyValue]) -> Result<(), Error> {
    for p in kv {
        match p.key.as_str() {
            "HeaderDigest" | "DataDigest" if p.value != "None" && !is_non_answer(&p.value) => {
                return Err(PeerMisbehaved::KeyRefused {
                    key: p.key.clone(),
                    value: p.value.chars().take(64).collect(),
                }
                .into());
            }
            "MaxRecvDataSegmentLength" => {
                if is_non_answer(&p.value) {
                    continue;
                }
                let v: u32 = p
                    .value
                    .parse()
                    .map_err(|_| bad_number("MaxRecvDataSegmentLength", &p.value))?;
                if !(MIN_MAX_RECV_DATA_SEGMENT_LENGTH..=MAX_MAX_RECV_DATA_SEGMENT_LENGTH)
                    .contains(&v)
                {
                    return Err(bad_number("MaxRecvDataSegmentLength", &p.value));
                }
                cx.target_mrdsl = v;
            }
            _ => {}
        }
    }
    Ok(())
}

struct ExpectAuthMethod;
struct ExpectChapChallenge;
struct ExpectChapResult {
    algorithm: ChapAlgorithm,
}
struct ExpectSecurityTransit;
struct ExpectOperational;
struct ExpectTextResponse {
    itt: u32,
    answer: TextAccumulator,
}
struct ExpectLogoutResponse {
    itt: u32,
}

enum State {
    ExpectAuthMethod(ExpectAuthMethod),
    ExpectChapChallenge(ExpectChapChallenge),
    ExpectChapResult(ExpectChapResult),
    ExpectSecurityTransit(ExpectSecurityTransit),
    ExpectOperational(ExpectOperational),
    ExpectTextResponse(ExpectTextResponse),
    ExpectLogoutResponse(ExpectLogoutResponse),
    Redirected,
    LoggedOut,
}

impl State {
    fn phase(&self) -> Phase {
        match self {
            State::ExpectAuthMethod(_)
            | State::ExpectChapChallenge(_)
            | State::ExpectChapResult(_)
            | State::ExpectSecurityTransit(_)
            | State::ExpectOperational(_) => Phase::Login,
            State::ExpectTextResponse(_) => Phase::SendTargets,
            State::ExpectLogoutResponse(_) => Phase::Logout,
            State::Redirected | State::LoggedOut => Phase::Done,
        }
    }

    fn handle(self, cx: &mut Context, repr: Repr<'_>) -> Result<State, Error> {
        match self {
            State::ExpectAuthMethod(s) => s.handle(cx, login_only(repr)?),
            State::ExpectChapChallenge(s) => s.handle(cx, login_only(repr)?),
            State::ExpectChapResult(s) => s.handle(cx, login_only(repr)?),
            State::ExpectSecurityTransit(s) => s.handle(cx, login_only(repr)?),
            State::ExpectOperational(s) => s.handle(cx, login_only(repr)?),
            State::ExpectTextResponse(s) => match cx.full_feature_common(repr)? {
                None => Ok(State::ExpectTextResponse(s)),
                Some(r) => s.handle(cx, r),
            },
            State::ExpectLogoutResponse(s) => match cx.full_feature_common(repr)? {
                None => Ok(State::ExpectLogoutResponse(s)),
                Some(r) => s.handle(cx, r),
            },
            State::Redirected => Err(ApiMisuse::SessionOver("been redirected").into()),
            State::LoggedOut => Err(ApiMisuse::SessionOver("logged out").into()),
        }
    }
}

fn login_only<'a>(repr: Repr<'a>) -> Result<LoginResponse<'a>, Error> {
    match repr {
        Repr::LoginResponse(r) => Ok(r),
        Repr::Reject(r) => Err(Error::Rejected { reason: r.reason }),
        other => Err(unexpected(other.opcode(), "waiting for a Login Response")),
    }
}

/// Runs the common Login Response checks and turns redirects/continuations into states.
macro_rules! login_keys {
    ($cx:expr, $r:expr, $same:expr) => {
        match $cx.login_response(&$r)? {
            LoginStep::Keys(kv) => kv,
            LoginStep::More => return Ok($same),
            LoginStep::Redirect(ev) => {
                $cx.events.push_back(ev);
                return Ok(State::Redirected);
            }
        }
    };
}

fn bad_stage(r: &LoginResponse<'_>) -> Error {
    PeerMisbehaved::BadStageTransition {
        csg: r.csg.into(),
        nsg: r.nsg.into(),
        transit: r.transit,
    }
    .into()
}

/// After the security stage: go on to the operational stage if the target agreed to transit,
/// otherwise ask again with T=1.
fn after_security(cx: &mut Context, r: &LoginResponse<'_>) -> Result<State, Error> {
    if r.transit {
        if r.nsg != Stage::Operational {
            return Err(bad_stage(r));
        }
        cx.send_operational()?;
        return Ok(State::ExpectOperational(ExpectOperational));
    }
    cx.send_login(true, Stage::Security, Stage::Operational, &[])?;
    Ok(State::ExpectSecurityTransit(ExpectSecurityTransit))
}

impl ExpectAuthMethod {
    fn handle(self, cx: &mut Context, r: LoginResponse<'_>) -> Result<State, Error> {
        let kv = login_keys!(cx, r, State::ExpectAuthMethod(self));
        if r.csg != Stage::Security {
            return Err(bad_stage(&r));
        }
        match crate::text::find(&kv, "AuthMethod") {
            Some("CHAP") => {
                let offered: Vec<String> = cx
                    .config
                    .chap_algorithms
                    .iter()
                    .map(|a| a.code().to_string())
                    .collect();
                let mut w = TextWriter::new();
                w.push("CHAP_A", &offered.join(","))?;
                cx.send_login(false, Stage::Security, Stage::Operational, w.as_bytes())?;
                Ok(State::ExpectChapChallenge(ExpectChapChallenge))
            }
            Some("None") | None => {
                if cx.config.mutual.is_some() {
                    return Err(PeerMisbehaved::AuthenticationSkipped.into());
                }
                if !r.transit && crate::text::find(&kv, "AuthMethod").is_none() {
                    return Err(missing("AuthMethod"));
                }
                after_security(cx, &r)
            }
            Some(other) => {
                Err(PeerMisbehaved::AuthMethodNotOffered(other.chars().take(64).collect()).into())
            }
        }
    }
}

impl ExpectChapChallenge {
    fn handle(self, cx: &mut Context, r: LoginResponse<'_>) -> Result<State, Error> {
        let kv = login_keys!(cx, r, State::ExpectChapChallenge(self));
        let a = crate::text::find(&kv, "CHAP_A").ok_or_else(|| missing("CHAP_A"))?;
        let algorithm = a
            .parse::<u8>()
            .ok()
            .and_then(ChapAlgorithm::from_code)
            .filter(|alg| cx.config.chap_algorithms.contains(alg))
            .ok_or_else(|| PeerMisbehaved::ChapAlgorithmNotOffered(a.chars().take(64).collect()))?;
        let id = chap::parse_identifier(
            crate::text::find(&kv, "CHAP_I").ok_or_else(|| missing("CHAP_I"))?,
        )
        .map_err(InvalidPdu::from)?;
        let challenge = chap::decode_binary(
            "CHAP_C",
            crate::text::find(&kv, "CHAP_C").ok_or_else(|| missing("CHAP_C"))?,
        )
        .map_err(InvalidPdu::from)?;
        let Some(creds) = cx.config.chap.as_ref() else {
            return Err(PeerMisbehaved::AuthMethodNotOffered("CHAP".into()).into());
        };
        let response = algorithm.response(id, creds.secret.expose(), &challenge);
        let mut w = TextWriter::new();
        w.push("CHAP_N", &creds.user)?;
        w.push("CHAP_R", &chap::encode_hex(&response))?;
        if cx.config.mutual.is_some() {
            if chap::constant_time_eq(&challenge, &cx.seed.chap_challenge) {
                return Err(PeerMisbehaved::ChapChallengeReflected.into());
            }
            w.push("CHAP_I", &cx.seed.chap_identifier.to_string())?;
            w.push("CHAP_C", &chap::encode_hex(&cx.seed.chap_challenge))?;
        }
        cx.send_login(true, Stage::Security, Stage::Operational, w.as_bytes())?;
        Ok(State::ExpectChapResult(ExpectChapResult { algorithm }))
    }
}

impl ExpectChapResult {
    fn handle(self, cx: &mut Context, r: LoginResponse<'_>) -> Result<State, Error> {
        let kv = login_keys!(cx, r, State::ExpectChapResult(self));
        if let Some(mutual) = cx.config.mutual.as_ref() {
            let fail = |why| Error::from(PeerMisbehaved::TargetAuthenticationFailed(why));
            let n =
                crate::text::find(&kv, "CHAP_N").ok_or_else(|| fail("target sent no CHAP_N"))?;
            if n != mutual.user {
                return Err(fail("target's CHAP_N is not the configured target user"));
            }
            let rv =
                crate::text::find(&kv, "CHAP_R").ok_or_else(|| fail("target sent no CHAP_R"))?;
            let got = chap::decode_binary("CHAP_R", rv).map_err(InvalidPdu::from)?;
            let want = self.algorithm.response(
                cx.seed.chap_identifier,
                mutual.secret.expose(),
                &cx.seed.chap_challenge,
            );
            if !chap::constant_time_eq(&got, &want) {
                return Err(fail("invalid CHAP_R from the target"));
            }
        }
        after_security(cx, &r)
    }
}

impl ExpectSecurityTransit {
    fn handle(self, cx: &mut Context, r: LoginResponse<'_>) -> Result<State, Error> {
        let _kv = login_keys!(cx, r, State::ExpectSecurityTransit(self));
        after_security(cx, &r)
    }
}

impl ExpectOperational {
    fn handle(self, cx: &mut Context, r: LoginResponse<'_>) -> Result<State, Error> {
        let kv = login_keys!(cx, r, State::ExpectOperational(self));
        if r.csg != Stage::Operational {
            return Err(bad_stage(&r));
        }
        check_operational(cx, &kv)?;
        if r.transit {
            if r.nsg != Stage::FullFeature {
                return Err(bad_stage(&r));
            }
            return cx.logged_in();
        }
        cx.send_login(true, Stage::Operational, Stage::FullFeature, &[])?;
        Ok(State::ExpectOperational(self))
    }
}

impl ExpectTextResponse {
    fn handle(mut self, cx: &mut Context, repr: Repr<'_>) -> Result<State, Error> {
        let Repr::TextResponse(t) = repr else {
            return Err(unexpected(
                repr.opcode(),
                "waiting for the SendTargets answer",
            ));
        };
        if t.itt != self.itt {
            return Err(PeerMisbehaved::UnexpectedItt {
                expected: self.itt,
                got: t.itt,
            }
            .into());
        }
        cx.note_status(t.stat_sn, t.exp_cmd_sn);
        let cap = cx.config.max_answer_bytes;
        if !self.answer.push(t.data, cap) {
            return Err(Limit::AnswerBytes { max: cap }.into());
        }
        cx.stats.answer_bytes = self.answer.len();
        if t.final_ {
            let targets = parse_send_targets_text(self.answer.as_bytes())?;
            cx.events.push_back(Event::Targets(targets));
            let itt = cx.send_logout()?;
            return Ok(State::ExpectLogoutResponse(ExpectLogoutResponse { itt }));
        }
        if t.ttt == RESERVED_TAG {
            return Err(PeerMisbehaved::ContinuationWithoutTag.into());
        }
        cx.send_text(self.itt, t.ttt, &[])?;
        Ok(State::ExpectTextResponse(self))
    }
}

impl ExpectLogoutResponse {
    fn handle(self, cx: &mut Context, repr: Repr<'_>) -> Result<State, Error> {
        let Repr::LogoutResponse(l) = repr else {
            return Err(unexpected(repr.opcode(), "waiting for the Logout Response"));
        };
        if l.itt != self.itt {
            return Err(PeerMisbehaved::UnexpectedItt {
                expected: self.itt,
                got: l.itt,
            }
            .into());
        }
        cx.note_status(l.stat_sn, l.exp_cmd_sn);
        if l.response != 0 {
            return Err(PeerMisbehaved::LogoutFailed(l.response).into());
        }
        cx.events.push_back(Event::LoggedOut);
        Ok(State::LoggedOut)
    }
}

/// One discovery session on one connection. See the module doc.
pub struct DiscoverySession {
    state: Option<State>,
    cx: Context,
    rx: Vec<u8>,
    failed: bool,
}

impl core::fmt::Debug for DiscoverySession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DiscoverySession")
            .field("phase", &self.phase())
            .field("stats", &self.cx.stats)
            .finish_non_exhaustive()
    }
}

impl DiscoverySession {
    /// Starts a session: validates `config` and queues the first Login Request.
    pub fn new(config: SessionConfig, seed: SessionSeed) -> Result<Self, Error> {
        config.validate()?;
        let mut cx = Context {
            cmd_sn: seed.cmd_sn,
            next_itt: seed.itt,
            login_itt: 0,
            seed,
            config,
            outgoing: Vec::new(),
            events: VecDeque::new(),
            exp_stat_sn: 0,
            target_exp_cmd_sn: None,
            target_mrdsl: DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH,
            login_pdus: 0,
            login_text: TextAccumulator::new(),
            tsih: 0,
            portal_group_tag: None,
            stats: Stats::default(),
            first_login_sent: false,
        };
        cx.login_itt = cx.alloc_itt();
        let state = if let Some(_creds) = cx.config.chap.as_ref() {
            let mut w = TextWriter::new();
            cx.first_keys(&mut w)?;
            let methods = if cx.config.mutual.is_some() {
                "CHAP"
            } else {
                "CHAP,None"
            };
            w.push("AuthMethod", methods)?;
            cx.send_login(true, Stage::Security, Stage::Operational, w.as_bytes())?;
            State::ExpectAuthMethod(ExpectAuthMethod)
        } else {
            cx.send_operational()?;
            State::ExpectOperational(ExpectOperational)
        };
        Ok(DiscoverySession {
            state: Some(state),
            cx,
            rx: Vec::new(),
            failed: false,
        })
    }

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        self.state.as_ref().map_or(Phase::Done, State::phase)
    }

    /// Whether the session reached its end (logged out or redirected).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, Some(State::LoggedOut | State::Redirected))
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.cx.stats
    }

    /// The largest DataSegmentLength we accept right now: our declared value, but at least
    /// the 8192-byte default during login (our declaration takes effect once it was sent and
    /// answered).
    pub fn max_incoming_data_segment_length(&self) -> u32 {
        match self.phase() {
            Phase::Login => self
                .cx
                .config
                .max_recv_data_segment_length
                .max(DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH),
            _ => self.cx.config.max_recv_data_segment_length,
        }
    }

    /// Bytes received but not yet forming a whole PDU.
    pub fn buffered(&self) -> usize {
        self.rx.len()
    }

    /// Takes the bytes to send (all pending PDUs, concatenated), if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.cx.outgoing.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.cx.outgoing))
        }
    }

    /// Takes the next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.cx.events.pop_front()
    }

    fn over(&self) -> Result<(), Error> {
        if self.failed {
            return Err(ApiMisuse::SessionOver("failed").into());
        }
        Ok(())
    }

    /// Feeds received bytes (any split). Complete PDUs are handled at once; an announced
    /// DataSegmentLength above [`Self::max_incoming_data_segment_length`] fails as soon as its
    /// header arrives.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<(), Error> {
        self.over()?;
        let mut rx = std::mem::take(&mut self.rx);
        rx.extend_from_slice(data);
        let mut consumed = 0;
        let result = loop {
            let rest = &rx[consumed..];
            if rest.len() < BHS_LEN {
                break Ok(());
            }
            let packet = Packet::new_unchecked(rest);
            let dsl = packet.data_segment_len();
            let max = self.max_incoming_data_segment_length();
            if dsl > max {
                break Err(InvalidPdu::DataSegmentTooLong {
                    len: dsl,
                    max,
                    opcode: packet.opcode(),
                }
                .into());
            }
            let Some(total) = pdu_len(rest) else {
                break Ok(());
            };
            if rest.len() < total {
                break Ok(());
            }
            if let Err(e) = self.handle_pdu(&rest[..total]) {
                break Err(e);
            }
            consumed += total;
        };
        rx.drain(..consumed);
        self.rx = rx;
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Tells the session the connection ended. Fails with [`InvalidPdu::CutShort`] if a partial
    /// PDU was buffered; otherwise succeeds (whether the session had finished is
    /// [`Self::is_finished`]).
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        if !self.rx.is_empty() {
            self.failed = true;
            return Err(InvalidPdu::CutShort {
                buffered: self.rx.len(),
            }
            .into());
        }
        Ok(())
    }

    /// Handles one complete PDU (BHS, AHS, data, padding optional at the end).
    pub fn handle_pdu(&mut self, pdu: &[u8]) -> Result<(), Error> {
        self.over()?;
        let result = self.handle_pdu_inner(pdu);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn handle_pdu_inner(&mut self, pdu: &[u8]) -> Result<(), Error> {
        self.cx.stats.pdus_received += 1;
        self.cx.stats.bytes_received += pdu.len();
        if self.cx.stats.pdus_received > self.cx.config.max_pdus {
            return Err(Limit::Pdus {
                max: self.cx.config.max_pdus,
            }
            .into());
        }
        let packet = Packet::new_checked(pdu)?;
        let dsl = packet.data_segment_len();
        let max = self.max_incoming_data_segment_length();
        if dsl > max {
            return Err(InvalidPdu::DataSegmentTooLong {
                len: dsl,
                max,
                opcode: packet.opcode(),
            }
            .into());
        }
        let repr = Repr::parse(&packet)?;
        let state = self.state.take().ok_or(ApiMisuse::SessionOver("failed"))?;
        let next = state.handle(&mut self.cx, repr)?;
        self.state = Some(next);
        Ok(())
    }
}
