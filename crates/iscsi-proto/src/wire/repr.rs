//! Typed, high-level representations of the PDUs of a discovery session. A `Repr` borrows its
//! data segment from the packet it was parsed from; `emit` writes it back. Reserved bits are not
//! represented: they parse as ignored and emit as zero.

use super::{BHS_LEN, Opcode, Packet, RESERVED_TAG, padded};
use crate::error::InvalidPdu;

/// A login stage (CSG/NSG, RFC 7143 §11.12.3). The reserved value 2 round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// 0: SecurityNegotiation.
    Security,
    /// 1: LoginOperationalNegotiation.
    Operational,
    /// 3: FullFeaturePhase.
    FullFeature,
    /// 2: reserved.
    Reserved,
}

impl From<u8> for Stage {
    fn from(v: u8) -> Self {
        match v & 3 {
            0 => Stage::Security,
            1 => Stage::Operational,
            3 => Stage::FullFeature,
            _ => Stage::Reserved,
        }
    }
}

impl From<Stage> for u8 {
    fn from(v: Stage) -> u8 {
        match v {
            Stage::Security => 0,
            Stage::Operational => 1,
            Stage::Reserved => 2,
            Stage::FullFeature => 3,
        }
    }
}

/// Login Request (opcode 0x03, always immediate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequest<'a> {
    /// T bit: the initiator is ready to move to `nsg`.
    pub transit: bool,
    /// C bit: the text is continued in the next PDU.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage (meaningful when `transit`).
    pub nsg: Stage,
    /// Version-max (0 for RFC 7143).
    pub version_max: u8,
    /// Version-min (0 for RFC 7143).
    pub version_min: u8,
    /// Initiator Session ID.
    pub isid: [u8; 6],
    /// Target Session Identifying Handle (0 for a new session).
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Connection ID.
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// `key=value\0` text.
    pub data: &'a [u8],
}

/// Login Response (opcode 0x23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginResponse<'a> {
    /// T bit: the target agrees to move to `nsg`.
    pub transit: bool,
    /// C bit.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage.
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-active.
    pub version_active: u8,
    /// ISID echoed.
    pub isid: [u8; 6],
    /// TSIH assigned by the target.
    pub tsih: u16,
    /// ITT echoed.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Status-Class (0 success, 1 redirect, 2 initiator error, 3 target error).
    pub status_class: u8,
    /// Status-Detail.
    pub status_detail: u8,
    /// `key=value\0` text.
    pub data: &'a [u8],
}

/// Text Request (opcode 0x04).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRequest<'a> {
    /// I bit.
    pub immediate: bool,
    /// F bit.
    pub final_: bool,
    /// C bit.
    pub cont: bool,
    /// LUN field (0 here).
    pub lun: u64,
    /// ITT.
    pub itt: u32,
    /// TTT (0xffffffff for a new request, the target's tag to continue).
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// `key=value\0` text.
    pub data: &'a [u8],
}

/// Text Response (opcode 0x24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextResponse<'a> {
    /// F bit.
    pub final_: bool,
    /// C bit.
    pub cont: bool,
    /// LUN field.
    pub lun: u64,
    /// ITT.
    pub itt: u32,
    /// TTT: not 0xffffffff while the target has more to send.
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Text bytes (may end in the middle of a key or value).
    pub data: &'a [u8],
}

/// Logout reason codes (RFC 7143 §11.14.1). Unknown values round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogoutReason {
    /// 0: close the session.
    CloseSession,
    /// 1: close the connection.
    CloseConnection,
    /// 2: remove the connection for recovery.
    RemoveConnectionForRecovery,
    /// Any other 7-bit value.
    Unknown(u8),
}

impl From<u8> for LogoutReason {
    fn from(v: u8) -> Self {
        match v & 0x7f {
            0 => LogoutReason::CloseSession,
            1 => LogoutReason::CloseConnection,
            2 => LogoutReason::RemoveConnectionForRecovery,
            other => LogoutReason::Unknown(other),
        }
    }
}

impl From<LogoutReason> for u8 {
    fn from(v: LogoutReason) -> u8 {
        match v {
            LogoutReason::CloseSession => 0,
            LogoutReason::CloseConnection => 1,
            LogoutReason::RemoveConnectionForRecovery => 2,
            LogoutReason::Unknown(v) => v & 0x7f,
        }
    }
}

/// Logout Request (opcode 0x06).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutRequest {
    /// I bit.
    pub immediate: bool,
    /// Reason code.
    pub reason: LogoutReason,
    /// ITT.
    pub itt: u32,
    /// CID (reasons 1 and 2).
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
}

/// Logout Response (opcode 0x26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutResponse {
    /// Response: 0 closed successfully, 1 CID not found, 2 recovery not supported, 3 cleanup
    /// failed.
    pub response: u8,
    /// ITT.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Time2Wait.
    pub time2wait: u16,
    /// Time2Retain.
    pub time2retain: u16,
}

/// Reject reason codes (RFC 7143 §11.17.1). Unknown values round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// 0x02 Data (payload) digest error.
    DataDigestError,
    /// 0x03 SNACK reject.
    SnackReject,
    /// 0x04 Protocol error.
    ProtocolError,
    /// 0x05 Command not supported.
    CommandNotSupported,
    /// 0x06 Immediate command reject: too many immediate commands.
    ImmediateCommandReject,
    /// 0x07 Task in progress.
    TaskInProgress,
    /// 0x08 Invalid data ack.
    InvalidDataAck,
    /// 0x09 Invalid PDU field.
    InvalidPduField,
    /// 0x0a Long operation reject: out of resources.
    LongOperationReject,
    /// 0x0b Deprecated (formerly negotiation reset).
    NegotiationReset,
    /// 0x0c Waiting for logout.
    WaitingForLogout,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for RejectReason {
    fn from(v: u8) -> Self {
        match v {
            0x02 => RejectReason::DataDigestError,
            0x03 => RejectReason::SnackReject,
            0x04 => RejectReason::ProtocolError,
            0x05 => RejectReason::CommandNotSupported,
            0x06 => RejectReason::ImmediateCommandReject,
            0x07 => RejectReason::TaskInProgress,
            0x08 => RejectReason::InvalidDataAck,
            0x09 => RejectReason::InvalidPduField,
            0x0a => RejectReason::LongOperationReject,
            0x0b => RejectReason::NegotiationReset,
            0x0c => RejectReason::WaitingForLogout,
            other => RejectReason::Unknown(other),
        }
    }
}

impl From<RejectReason> for u8 {
    fn from(v: RejectReason) -> u8 {
        match v {
            RejectReason::DataDigestError => 0x02,
            RejectReason::SnackReject => 0x03,
            RejectReason::ProtocolError => 0x04,
            RejectReason::CommandNotSupported => 0x05,
            RejectReason::ImmediateCommandReject => 0x06,
            RejectReason::TaskInProgress => 0x07,
            RejectReason::InvalidDataAck => 0x08,
            RejectReason::InvalidPduField => 0x09,
            RejectReason::LongOperationReject => 0x0a,
            RejectReason::NegotiationReset => 0x0b,
            RejectReason::WaitingForLogout => 0x0c,
            RejectReason::Unknown(v) => v,
        }
    }
}

impl core::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            RejectReason::DataDigestError => "data digest error",
            RejectReason::SnackReject => "SNACK reject",
            RejectReason::ProtocolError => "protocol error",
            RejectReason::CommandNotSupported => "command not supported",
            RejectReason::ImmediateCommandReject => "immediate command reject",
            RejectReason::TaskInProgress => "task in progress",
            RejectReason::InvalidDataAck => "invalid data ack",
            RejectReason::InvalidPduField => "invalid PDU field",
            RejectReason::LongOperationReject => "long operation reject",
            RejectReason::NegotiationReset => "negotiation reset",
            RejectReason::WaitingForLogout => "waiting for logout",
            RejectReason::Unknown(_) => "unknown reason",
        };
        write!(f, "{name} (0x{:02x})", u8::from(*self))
    }
}

/// Reject (opcode 0x3f).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject<'a> {
    /// Reason.
    pub reason: RejectReason,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// DataSN/R2TSN.
    pub data_sn: u32,
    /// The header of the rejected PDU.
    pub data: &'a [u8],
}

/// NOP-In (opcode 0x20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopIn<'a> {
    /// LUN.
    pub lun: u64,
    /// ITT (0xffffffff when the target pings on its own).
    pub itt: u32,
    /// TTT: not 0xffffffff when the target wants a NOP-Out back.
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Ping data.
    pub data: &'a [u8],
}

/// NOP-Out (opcode 0x00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopOut<'a> {
    /// I bit.
    pub immediate: bool,
    /// LUN (echoed from the NOP-In).
    pub lun: u64,
    /// ITT (0xffffffff when answering a NOP-In).
    pub itt: u32,
    /// TTT (echoed from the NOP-In).
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// Ping data (echoed).
    pub data: &'a [u8],
}

/// AsyncEvent codes (RFC 7143 §11.9.1). Unknown values round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsyncEvent {
    /// 0: SCSI asynchronous event.
    ScsiEvent,
    /// 1: the target requests a logout (Parameter3 = Time2Wait to logout).
    LogoutRequested,
    /// 2: the target will drop this connection.
    DropConnection,
    /// 3: the target will drop all connections of the session.
    DropAllConnections,
    /// 4: the target requests parameter negotiation.
    NegotiationRequested,
    /// 5: task termination.
    TaskTermination,
    /// 255: vendor-specific.
    Vendor,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for AsyncEvent {
    fn from(v: u8) -> Self {
        match v {
            0 => AsyncEvent::ScsiEvent,
            1 => AsyncEvent::LogoutRequested,
            2 => AsyncEvent::DropConnection,
            3 => AsyncEvent::DropAllConnections,
            4 => AsyncEvent::NegotiationRequested,
            5 => AsyncEvent::TaskTermination,
            255 => AsyncEvent::Vendor,
            other => AsyncEvent::Unknown(other),
        }
    }
}

impl From<AsyncEvent> for u8 {
    fn from(v: AsyncEvent) -> u8 {
        match v {
            AsyncEvent::ScsiEvent => 0,
            AsyncEvent::LogoutRequested => 1,
            AsyncEvent::DropConnection => 2,
            AsyncEvent::DropAllConnections => 3,
            AsyncEvent::NegotiationRequested => 4,
            AsyncEvent::TaskTermination => 5,
            AsyncEvent::Vendor => 255,
            AsyncEvent::Unknown(v) => v,
        }
    }
}

/// Asynchronous Message (opcode 0x32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncMessage<'a> {
    /// LUN.
    pub lun: u64,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// AsyncEvent.
    pub event: AsyncEvent,
    /// AsyncVCode.
    pub vcode: u8,
    /// Parameter1.
    pub parameter1: u16,
    /// Parameter2.
    pub parameter2: u16,
    /// Parameter3.
    pub parameter3: u16,
    /// Sense data / iSCSI event data.
    pub data: &'a [u8],
}

/// One parsed PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Login Request.
    LoginRequest(LoginRequest<'a>),
    /// Login Response.
    LoginResponse(LoginResponse<'a>),
    /// Text Request.
    TextRequest(TextRequest<'a>),
    /// Text Response.
    TextResponse(TextResponse<'a>),
    /// Logout Request.
    LogoutRequest(LogoutRequest),
    /// Logout Response.
    LogoutResponse(LogoutResponse),
    /// Reject.
    Reject(Reject<'a>),
    /// NOP-In.
    NopIn(NopIn<'a>),
    /// NOP-Out.
    NopOut(NopOut<'a>),
    /// Asynchronous Message.
    AsyncMessage(AsyncMessage<'a>),
    /// A PDU whose opcode this crate does not model (the opcode's 6 bits, data kept).
    Unknown {
        /// The 6-bit opcode.
        opcode: u8,
        /// The data segment.
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a packet, checking its length first. Fails only if the length check fails: unknown
    /// opcodes parse as [`Repr::Unknown`] and unknown codes inside known PDUs are kept.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>, InvalidPdu> {
        packet.check_len()?;
        let p = packet;
        let data = p.data_segment();
        let flags = p.flags();
        Ok(match p.opcode() {
            Opcode::LoginRequest => Repr::LoginRequest(LoginRequest {
                transit: flags & 0x80 != 0,
                cont: flags & 0x40 != 0,
                csg: p.csg(),
                nsg: p.nsg(),
                version_max: p.byte2(),
                version_min: p.byte3(),
                isid: p.isid(),
                tsih: p.tsih(),
                itt: p.itt(),
                cid: p.cid(),
                cmd_sn: p.cmd_sn(),
                exp_stat_sn: p.exp_stat_sn(),
                data,
            }),
            Opcode::LoginResponse => Repr::LoginResponse(LoginResponse {
                transit: flags & 0x80 != 0,
                cont: flags & 0x40 != 0,
                csg: p.csg(),
                nsg: p.nsg(),
                version_max: p.byte2(),
                version_active: p.byte3(),
                isid: p.isid(),
                tsih: p.tsih(),
                itt: p.itt(),
                stat_sn: p.stat_sn(),
                exp_cmd_sn: p.exp_cmd_sn(),
                max_cmd_sn: p.max_cmd_sn(),
                status_class: p.status_class(),
                status_detail: p.status_detail(),
                data,
            }),
            Opcode::TextRequest => Repr::TextRequest(TextRequest {
                immediate: p.immediate(),
                final_: flags & 0x80 != 0,
                cont: flags & 0x40 != 0,
                lun: p.lun(),
                itt: p.itt(),
                ttt: p.ttt(),
                cmd_sn: p.cmd_sn(),
                exp_stat_sn: p.exp_stat_sn(),
                data,
            }),
            Opcode::TextResponse => Repr::TextResponse(TextResponse {
                final_: flags & 0x80 != 0,
                cont: flags & 0x40 != 0,
                lun: p.lun(),
                itt: p.itt(),
                ttt: p.ttt(),
                stat_sn: p.stat_sn(),
                exp_cmd_sn: p.exp_cmd_sn(),
                max_cmd_sn: p.max_cmd_sn(),
                data,
            }),
            Opcode::LogoutRequest => Repr::LogoutRequest(LogoutRequest {
                immediate: p.immediate(),
                reason: LogoutReason::from(flags),
                itt: p.itt(),
                cid: p.cid(),
                cmd_sn: p.cmd_sn(),
                exp_stat_sn: p.exp_stat_sn(),
            }),
            Opcode::LogoutResponse => Repr::LogoutResponse(LogoutResponse {
                response: p.byte2(),
                itt: p.itt(),
                stat_sn: p.stat_sn(),
                exp_cmd_sn: p.exp_cmd_sn(),
                max_cmd_sn: p.max_cmd_sn(),
                time2wait: p.parameter2(),
                time2retain: p.parameter3(),
            }),
            Opcode::Reject => Repr::Reject(Reject {
                reason: RejectReason::from(p.byte2()),
                stat_sn: p.stat_sn(),
                exp_cmd_sn: p.exp_cmd_sn(),
                max_cmd_sn: p.max_cmd_sn(),
                data_sn: p.data_sn(),
                data,
            }),
            Opcode::NopIn => Repr::NopIn(NopIn {
                lun: p.lun(),
                itt: p.itt(),
                ttt: p.ttt(),
                stat_sn: p.stat_sn(),
                exp_cmd_sn: p.exp_cmd_sn(),
                max_cmd_sn: p.max_cmd_sn(),
                data,
            }),
            Opcode::NopOut => Repr::NopOut(NopOut {
                immediate: p.immediate(),
                lun: p.lun(),
                itt: p.itt(),
                ttt: p.ttt(),
                cmd_sn: p.cmd_sn(),
                exp_stat_sn: p.exp_stat_sn(),
                data,
            }),
            Opcode::AsyncMessage => Repr::AsyncMessage(AsyncMessage {
                lun: p.lun(),
                stat_sn: p.stat_sn(),
                exp_cmd_sn: p.exp_cmd_sn(),
                max_cmd_sn: p.max_cmd_sn(),
                event: AsyncEvent::from(p.async_event()),
                vcode: p.async_vcode(),
                parameter1: p.parameter1(),
                parameter2: p.parameter2(),
                parameter3: p.parameter3(),
                data,
            }),
            Opcode::Unknown(opcode) => Repr::Unknown { opcode, data },
        })
    }

    /// Parses one PDU from the start of `bytes`; returns the Repr and the number of bytes it
    /// used (padding included when present).
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<(Repr<'a>, usize), InvalidPdu> {
        let packet = Packet::new_checked(bytes)?;
        let used = packet.total_len().min(bytes.len());
        Ok((Repr::parse(&packet)?, used))
    }

    /// The opcode this Repr emits.
    pub fn opcode(&self) -> Opcode {
        match self {
            Repr::LoginRequest(_) => Opcode::LoginRequest,
            Repr::LoginResponse(_) => Opcode::LoginResponse,
            Repr::TextRequest(_) => Opcode::TextRequest,
            Repr::TextResponse(_) => Opcode::TextResponse,
            Repr::LogoutRequest(_) => Opcode::LogoutRequest,
            Repr::LogoutResponse(_) => Opcode::LogoutResponse,
            Repr::Reject(_) => Opcode::Reject,
            Repr::NopIn(_) => Opcode::NopIn,
            Repr::NopOut(_) => Opcode::NopOut,
            Repr::AsyncMessage(_) => Opcode::AsyncMessage,
            Repr::Unknown { opcode, .. } => Opcode::Unknown(*opcode),
        }
    }

    /// The data segment.
    pub fn data(&self) -> &'a [u8] {
        match self {
            Repr::LoginRequest(r) => r.data,
            Repr::LoginResponse(r) => r.data,
            Repr::TextRequest(r) => r.data,
            Repr::TextResponse(r) => r.data,
            Repr::LogoutRequest(_) | Repr::LogoutResponse(_) => &[],
            Repr::Reject(r) => r.data,
            Repr::NopIn(r) => r.data,
            Repr::NopOut(r) => r.data,
            Repr::AsyncMessage(r) => r.data,
            Repr::Unknown { data, .. } => data,
        }
    }

    /// Bytes needed to emit this PDU (BHS + padded data; no AHS is emitted).
    pub fn buffer_len(&self) -> usize {
        BHS_LEN + padded(self.data().len())
    }

    /// Emits this PDU into `packet`, whose buffer must be at least [`Repr::buffer_len`] bytes.
    /// Fails if the data segment does not fit the 24-bit length field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), crate::error::ApiMisuse> {
        let data = self.data();
        if data.len() > super::MAX_DATA_SEGMENT_LENGTH as usize {
            return Err(crate::error::ApiMisuse::DataSegmentTooLong { len: data.len() });
        }
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(crate::error::ApiMisuse::BufferTooSmall {
                needed: self.buffer_len(),
                got: packet.buffer.as_ref().len(),
            });
        }
        packet.buffer.as_mut()[..BHS_LEN].fill(0);
        let stage_flags = |t: bool, c: bool, csg: Stage, nsg: Stage| -> u8 {
            (if t { 0x80 } else { 0 })
                | (if c { 0x40 } else { 0 })
                | (u8::from(csg) << 2)
                | u8::from(nsg)
        };
        let fc =
            |f: bool, c: bool| -> u8 { (if f { 0x80 } else { 0 }) | (if c { 0x40 } else { 0 }) };
        match *self {
            Repr::LoginRequest(r) => {
                packet.set_opcode(Opcode::LoginRequest, true);
                packet.set_flags(stage_flags(r.transit, r.cont, r.csg, r.nsg));
                packet.set_byte2(r.version_max);
                packet.set_byte3(r.version_min);
                packet.set_isid(r.isid);
                packet.set_tsih(r.tsih);
                packet.set_itt(r.itt);
                packet.set_cid(r.cid);
                packet.set_sn1(r.cmd_sn);
                packet.set_sn2(r.exp_stat_sn);
            }
            Repr::LoginResponse(r) => {
                packet.set_opcode(Opcode::LoginResponse, false);
                packet.set_flags(stage_flags(r.transit, r.cont, r.csg, r.nsg));
                packet.set_byte2(r.version_max);
                packet.set_byte3(r.version_active);
                packet.set_isid(r.isid);
                packet.set_tsih(r.tsih);
                packet.set_itt(r.itt);
                packet.set_sn1(r.stat_sn);
                packet.set_sn2(r.exp_cmd_sn);
                packet.set_max_cmd_sn(r.max_cmd_sn);
                packet.set_status(r.status_class, r.status_detail);
            }
            Repr::TextRequest(r) => {
                packet.set_opcode(Opcode::TextRequest, r.immediate);
                packet.set_flags(fc(r.final_, r.cont));
                packet.set_lun(r.lun);
                packet.set_itt(r.itt);
                packet.set_ttt(r.ttt);
                packet.set_sn1(r.cmd_sn);
                packet.set_sn2(r.exp_stat_sn);
            }
            Repr::TextResponse(r) => {
                packet.set_opcode(Opcode::TextResponse, false);
                packet.set_flags(fc(r.final_, r.cont));
                packet.set_lun(r.lun);
                packet.set_itt(r.itt);
                packet.set_ttt(r.ttt);
                packet.set_sn1(r.stat_sn);
                packet.set_sn2(r.exp_cmd_sn);
                packet.set_max_cmd_sn(r.max_cmd_sn);
            }
            Repr::LogoutRequest(r) => {
                packet.set_opcode(Opcode::LogoutRequest, r.immediate);
                packet.set_flags(0x80 | u8::from(r.reason));
                packet.set_itt(r.itt);
                packet.set_cid(r.cid);
                packet.set_sn1(r.cmd_sn);
                packet.set_sn2(r.exp_stat_sn);
            }
            Repr::LogoutResponse(r) => {
                packet.set_opcode(Opcode::LogoutResponse, false);
                packet.set_flags(0x80);
                packet.set_byte2(r.response);
                packet.set_itt(r.itt);
                packet.set_sn1(r.stat_sn);
                packet.set_sn2(r.exp_cmd_sn);
                packet.set_max_cmd_sn(r.max_cmd_sn);
                packet.set_parameters(0, r.time2wait, r.time2retain);
            }
            Repr::Reject(r) => {
                packet.set_opcode(Opcode::Reject, false);
                packet.set_flags(0x80);
                packet.set_byte2(u8::from(r.reason));
                packet.set_itt(RESERVED_TAG);
                packet.set_sn1(r.stat_sn);
                packet.set_sn2(r.exp_cmd_sn);
                packet.set_max_cmd_sn(r.max_cmd_sn);
                packet.set_data_sn(r.data_sn);
            }
            Repr::NopIn(r) => {
                packet.set_opcode(Opcode::NopIn, false);
                packet.set_flags(0x80);
                packet.set_lun(r.lun);
                packet.set_itt(r.itt);
                packet.set_ttt(r.ttt);
                packet.set_sn1(r.stat_sn);
                packet.set_sn2(r.exp_cmd_sn);
                packet.set_max_cmd_sn(r.max_cmd_sn);
            }
            Repr::NopOut(r) => {
                packet.set_opcode(Opcode::NopOut, r.immediate);
                packet.set_flags(0x80);
                packet.set_lun(r.lun);
                packet.set_itt(r.itt);
                packet.set_ttt(r.ttt);
                packet.set_sn1(r.cmd_sn);
                packet.set_sn2(r.exp_stat_sn);
            }
            Repr::AsyncMessage(r) => {
                packet.set_opcode(Opcode::AsyncMessage, false);
                packet.set_flags(0x80);
                packet.set_lun(r.lun);
                packet.set_itt(RESERVED_TAG);
                packet.set_sn1(r.stat_sn);
                packet.set_sn2(r.exp_cmd_sn);
                packet.set_max_cmd_sn(r.max_cmd_sn);
                packet.set_async(u8::from(r.event), r.vcode);
                packet.set_parameters(r.parameter1, r.parameter2, r.parameter3);
            }
            Repr::Unknown { opcode, .. } => {
                packet.set_opcode(Opcode::Unknown(opcode), false);
            }
        }
        packet.set_data(data);
        Ok(())
    }

    /// Emits this PDU into a new vector of [`Repr::buffer_len`] bytes.
    pub fn to_vec(&self) -> Result<Vec<u8>, crate::error::ApiMisuse> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buf[..]))?;
        Ok(buf)
    }
}
