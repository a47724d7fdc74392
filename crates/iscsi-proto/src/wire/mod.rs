//! The iSCSI PDU on the wire: a zero-copy [`Packet`] view over the 48-byte Basic Header Segment
//! (BHS), the optional Additional Header Segments (AHS) and the data segment, and the typed
//! [`Repr`] of the PDUs a discovery session sends or receives (RFC 7143 §11).
//!
//! This module owns byte layout only: it knows nothing about sessions, sequence numbers or keys.
//!
//! # Safety of accessors
//!
//! Untrusted bytes go through [`Packet::new_checked`], which calls [`Packet::check_len`]. Once
//! `check_len` has passed, **no accessor of [`Packet`] can panic**: every field lies inside the
//! 48-byte BHS that was checked, and [`Packet::ahs`] / [`Packet::data`] are bounded by the total
//! length that was checked. [`Packet::new_unchecked`] exists for buffers the caller built itself;
//! on such a buffer accessors may panic if it is too short.
//!
//! Digests are never negotiated by this crate (it offers `HeaderDigest=None`,
//! `DataDigest=None` and refuses anything else), so no digest bytes are modelled.

mod repr;

pub use repr::{
    AsyncEvent, AsyncMessage, LoginRequest, LoginResponse, LogoutReason, LogoutRequest,
    LogoutResponse, NopIn, NopOut, Reject, RejectReason, Repr, Stage, TextRequest, TextResponse,
};

use crate::error::InvalidPdu;

/// Length of the Basic Header Segment.
pub const BHS_LEN: usize = 48;

/// The reserved tag value 0xffffffff (ITT/TTT "none").
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Largest DataSegmentLength the 24-bit field can carry.
pub const MAX_DATA_SEGMENT_LENGTH: u32 = 0x00ff_ffff;

/// Byte offsets of the BHS fields. Which of them are meaningful depends on the opcode.
mod field {
    use core::ops::Range;

    pub const OPCODE: usize = 0;
    pub const FLAGS: usize = 1;
    /// Login: Version-max. Logout Response: Response. Reject: Reason.
    pub const BYTE2: usize = 2;
    /// Login Request: Version-min. Login Response: Version-active.
    pub const BYTE3: usize = 3;
    pub const TOTAL_AHS_LEN: usize = 4;
    pub const DATA_SEGMENT_LEN: Range<usize> = 5..8;
    pub const LUN: Range<usize> = 8..16;
    pub const ISID: Range<usize> = 8..14;
    pub const TSIH: Range<usize> = 14..16;
    pub const ITT: Range<usize> = 16..20;
    /// Text/NOP: Target Transfer Tag.
    pub const TTT: Range<usize> = 20..24;
    /// Login/Logout Request: CID.
    pub const CID: Range<usize> = 20..22;
    /// Requests: CmdSN. Responses: StatSN.
    pub const SN1: Range<usize> = 24..28;
    /// Requests: ExpStatSN. Responses: ExpCmdSN.
    pub const SN2: Range<usize> = 28..32;
    /// Responses: MaxCmdSN.
    pub const MAX_CMD_SN: Range<usize> = 32..36;
    /// Login Response: Status-Class.
    pub const STATUS_CLASS: usize = 36;
    /// Login Response: Status-Detail.
    pub const STATUS_DETAIL: usize = 37;
    /// Reject: DataSN/R2TSN.
    pub const DATA_SN: Range<usize> = 36..40;
    /// Async Message: AsyncEvent.
    pub const ASYNC_EVENT: usize = 36;
    /// Async Message: AsyncVCode.
    pub const ASYNC_VCODE: usize = 37;
    pub const PARAMETER1: Range<usize> = 38..40;
    /// Async: Parameter2. Logout Response: Time2Wait.
    pub const PARAMETER2: Range<usize> = 40..42;
    /// Async: Parameter3. Logout Response: Time2Retain.
    pub const PARAMETER3: Range<usize> = 42..44;
}

/// PDU opcodes (RFC 7143 §11.1.1.1). Unknown values are kept, never rejected here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0x00 NOP-Out.
    NopOut,
    /// 0x03 Login Request.
    LoginRequest,
    /// 0x04 Text Request.
    TextRequest,
    /// 0x06 Logout Request.
    LogoutRequest,
    /// 0x20 NOP-In.
    NopIn,
    /// 0x23 Login Response.
    LoginResponse,
    /// 0x24 Text Response.
    TextResponse,
    /// 0x26 Logout Response.
    LogoutResponse,
    /// 0x32 Asynchronous Message.
    AsyncMessage,
    /// 0x3f Reject.
    Reject,
    /// Any other 6-bit opcode (SCSI command, Data-In, R2T, vendor ...).
    Unknown(u8),
}

impl From<u8> for Opcode {
    fn from(v: u8) -> Self {
        match v & 0x3f {
            0x00 => Opcode::NopOut,
            0x03 => Opcode::LoginRequest,
            0x04 => Opcode::TextRequest,
            0x06 => Opcode::LogoutRequest,
            0x20 => Opcode::NopIn,
            0x23 => Opcode::LoginResponse,
            0x24 => Opcode::TextResponse,
            0x26 => Opcode::LogoutResponse,
            0x32 => Opcode::AsyncMessage,
            0x3f => Opcode::Reject,
            other => Opcode::Unknown(other),
        }
    }
}

impl From<Opcode> for u8 {
    fn from(v: Opcode) -> u8 {
        match v {
            Opcode::NopOut => 0x00,
            Opcode::LoginRequest => 0x03,
            Opcode::TextRequest => 0x04,
            Opcode::LogoutRequest => 0x06,
            Opcode::NopIn => 0x20,
            Opcode::LoginResponse => 0x23,
            Opcode::TextResponse => 0x24,
            Opcode::LogoutResponse => 0x26,
            Opcode::AsyncMessage => 0x32,
            Opcode::Reject => 0x3f,
            Opcode::Unknown(v) => v & 0x3f,
        }
    }
}

/// Rounds a data segment length up to the 4-byte boundary the wire uses.
pub const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads the total PDU length (BHS + AHS + padded data) announced by a BHS prefix.
///
/// Returns `None` while fewer than [`BHS_LEN`] bytes are available. Never panics.
pub fn pdu_len(header: &[u8]) -> Option<usize> {
    let bhs = header.get(..BHS_LEN)?;
    let ahs = usize::from(bhs[field::TOTAL_AHS_LEN]) * 4;
    let dsl = read_u24(&bhs[field::DATA_SEGMENT_LEN]) as usize;
    Some(BHS_LEN + ahs + padded(dsl))
}

fn read_u24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A read/write view of one iSCSI PDU (BHS, AHS, data segment and its padding).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; see the module doc.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that it holds the BHS and everything the BHS announces.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, InvalidPdu> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the 48-byte BHS, the announced AHS and the announced data
    /// segment (padding may be absent at the very end of the buffer).
    pub fn check_len(&self) -> Result<(), InvalidPdu> {
        let buf = self.buffer.as_ref();
        if buf.len() < BHS_LEN {
            return Err(InvalidPdu::Truncated {
                needed: BHS_LEN,
                got: buf.len(),
            });
        }
        let needed = BHS_LEN + self.ahs_len() + self.data_segment_len() as usize;
        if buf.len() < needed {
            return Err(InvalidPdu::Truncated {
                needed,
                got: buf.len(),
            });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The opcode (low 6 bits of byte 0).
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.b()[field::OPCODE])
    }

    /// The I (immediate delivery) bit.
    pub fn immediate(&self) -> bool {
        self.b()[field::OPCODE] & 0x40 != 0
    }

    /// Byte 1: the F bit and the opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    /// The F (final) bit; for Login this position is the T (transit) bit.
    pub fn final_flag(&self) -> bool {
        self.flags() & 0x80 != 0
    }

    /// The C (continue) bit of Login and Text PDUs.
    pub fn continue_flag(&self) -> bool {
        self.flags() & 0x40 != 0
    }

    /// Login: the current stage (CSG), bits 3–2 of byte 1.
    pub fn csg(&self) -> Stage {
        Stage::from((self.flags() >> 2) & 0x03)
    }

    /// Login: the next stage (NSG), bits 1–0 of byte 1.
    pub fn nsg(&self) -> Stage {
        Stage::from(self.flags() & 0x03)
    }

    /// Byte 2: Login Version-max, Logout Response code, Reject reason.
    pub fn byte2(&self) -> u8 {
        self.b()[field::BYTE2]
    }

    /// Byte 3: Login Request Version-min, Login Response Version-active.
    pub fn byte3(&self) -> u8 {
        self.b()[field::BYTE3]
    }

    /// Length of the AHS in bytes (TotalAHSLength × 4).
    pub fn ahs_len(&self) -> usize {
        usize::from(self.b()[field::TOTAL_AHS_LEN]) * 4
    }

    /// DataSegmentLength (without padding).
    pub fn data_segment_len(&self) -> u32 {
        read_u24(&self.b()[field::DATA_SEGMENT_LEN])
    }

    /// Total length on the wire: BHS + AHS + padded data segment.
    pub fn total_len(&self) -> usize {
        BHS_LEN + self.ahs_len() + padded(self.data_segment_len() as usize)
    }

    /// The 8-byte LUN field (Text, NOP, Async).
    pub fn lun(&self) -> u64 {
        let b = &self.b()[field::LUN];
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Login: the ISID.
    pub fn isid(&self) -> [u8; 6] {
        let b = &self.b()[field::ISID];
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    /// Login: the TSIH.
    pub fn tsih(&self) -> u16 {
        read_u16(&self.b()[field::TSIH])
    }

    /// Initiator Task Tag.
    pub fn itt(&self) -> u32 {
        read_u32(&self.b()[field::ITT])
    }

    /// Target Transfer Tag (Text, NOP).
    pub fn ttt(&self) -> u32 {
        read_u32(&self.b()[field::TTT])
    }

    /// Connection ID (Login and Logout requests).
    pub fn cid(&self) -> u16 {
        read_u16(&self.b()[field::CID])
    }

    /// Requests: CmdSN.
    pub fn cmd_sn(&self) -> u32 {
        read_u32(&self.b()[field::SN1])
    }

    /// Requests: ExpStatSN.
    pub fn exp_stat_sn(&self) -> u32 {
        read_u32(&self.b()[field::SN2])
    }

    /// Responses: StatSN.
    pub fn stat_sn(&self) -> u32 {
        read_u32(&self.b()[field::SN1])
    }

    /// Responses: ExpCmdSN.
    pub fn exp_cmd_sn(&self) -> u32 {
        read_u32(&self.b()[field::SN2])
    }

    /// Responses: MaxCmdSN.
    pub fn max_cmd_sn(&self) -> u32 {
        read_u32(&self.b()[field::MAX_CMD_SN])
    }

    /// Login Response: Status-Class.
    pub fn status_class(&self) -> u8 {
        self.b()[field::STATUS_CLASS]
    }

    /// Login Response: Status-Detail.
    pub fn status_detail(&self) -> u8 {
        self.b()[field::STATUS_DETAIL]
    }

    /// Reject: DataSN/R2TSN.
    pub fn data_sn(&self) -> u32 {
        read_u32(&self.b()[field::DATA_SN])
    }

    /// Async Message: AsyncEvent.
    pub fn async_event(&self) -> u8 {
        self.b()[field::ASYNC_EVENT]
    }

    /// Async Message: AsyncVCode.
    pub fn async_vcode(&self) -> u8 {
        self.b()[field::ASYNC_VCODE]
    }

    /// Async Message: Parameter1.
    pub fn parameter1(&self) -> u16 {
        read_u16(&self.b()[field::PARAMETER1])
    }

    /// Async Message: Parameter2; Logout Response: Time2Wait.
    pub fn parameter2(&self) -> u16 {
        read_u16(&self.b()[field::PARAMETER2])
    }

    /// Async Message: Parameter3; Logout Response: Time2Retain.
    pub fn parameter3(&self) -> u16 {
        read_u16(&self.b()[field::PARAMETER3])
    }

    /// The Additional Header Segments (skipped by this crate, exposed for completeness).
    pub fn ahs(&self) -> &[u8] {
        let end = BHS_LEN + self.ahs_len();
        self.b().get(BHS_LEN..end).unwrap_or(&[])
    }

    /// The data segment without its padding.
    pub fn data(&self) -> &[u8] {
        let start = BHS_LEN + self.ahs_len();
        let end = start + self.data_segment_len() as usize;
        self.b().get(start..end).unwrap_or(&[])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The data segment without its padding, borrowed for the buffer's lifetime.
    pub fn data_segment(&self) -> &'a [u8] {
        let buf: &'a [u8] = self.buffer.as_ref();
        let start = BHS_LEN + self.ahs_len();
        let end = start + self.data_segment_len() as usize;
        buf.get(start..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the opcode and the I bit (clears bit 7).
    pub fn set_opcode(&mut self, opcode: Opcode, immediate: bool) {
        self.bm()[field::OPCODE] = u8::from(opcode) | if immediate { 0x40 } else { 0 };
    }

    /// Sets byte 1.
    pub fn set_flags(&mut self, flags: u8) {
        self.bm()[field::FLAGS] = flags;
    }

    /// Sets byte 2.
    pub fn set_byte2(&mut self, v: u8) {
        self.bm()[field::BYTE2] = v;
    }

    /// Sets byte 3.
    pub fn set_byte3(&mut self, v: u8) {
        self.bm()[field::BYTE3] = v;
    }

    /// Sets TotalAHSLength in 4-byte words.
    pub fn set_total_ahs_words(&mut self, words: u8) {
        self.bm()[field::TOTAL_AHS_LEN] = words;
    }

    /// Sets DataSegmentLength (the top 8 bits of `len` are dropped; see
    /// [`MAX_DATA_SEGMENT_LENGTH`]).
    pub fn set_data_segment_len(&mut self, len: u32) {
        let b = len.to_be_bytes();
        self.bm()[field::DATA_SEGMENT_LEN].copy_from_slice(&b[1..4]);
    }

    /// Sets the LUN field.
    pub fn set_lun(&mut self, v: u64) {
        self.bm()[field::LUN].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the ISID.
    pub fn set_isid(&mut self, v: [u8; 6]) {
        self.bm()[field::ISID].copy_from_slice(&v);
    }

    /// Sets the TSIH.
    pub fn set_tsih(&mut self, v: u16) {
        self.bm()[field::TSIH].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the ITT.
    pub fn set_itt(&mut self, v: u32) {
        self.bm()[field::ITT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the TTT.
    pub fn set_ttt(&mut self, v: u32) {
        self.bm()[field::TTT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the CID.
    pub fn set_cid(&mut self, v: u16) {
        self.bm()[field::CID].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets bytes 24..28 (CmdSN / StatSN).
    pub fn set_sn1(&mut self, v: u32) {
        self.bm()[field::SN1].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets bytes 28..32 (ExpStatSN / ExpCmdSN).
    pub fn set_sn2(&mut self, v: u32) {
        self.bm()[field::SN2].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets MaxCmdSN.
    pub fn set_max_cmd_sn(&mut self, v: u32) {
        self.bm()[field::MAX_CMD_SN].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Status-Class and Status-Detail.
    pub fn set_status(&mut self, class: u8, detail: u8) {
        self.bm()[field::STATUS_CLASS] = class;
        self.bm()[field::STATUS_DETAIL] = detail;
    }

    /// Sets DataSN (Reject).
    pub fn set_data_sn(&mut self, v: u32) {
        self.bm()[field::DATA_SN].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets AsyncEvent and AsyncVCode.
    pub fn set_async(&mut self, event: u8, vcode: u8) {
        self.bm()[field::ASYNC_EVENT] = event;
        self.bm()[field::ASYNC_VCODE] = vcode;
    }

    /// Sets Parameter1..3 (Async) — Parameter2/3 double as Time2Wait/Time2Retain.
    pub fn set_parameters(&mut self, p1: u16, p2: u16, p3: u16) {
        self.bm()[field::PARAMETER1].copy_from_slice(&p1.to_be_bytes());
        self.bm()[field::PARAMETER2].copy_from_slice(&p2.to_be_bytes());
        self.bm()[field::PARAMETER3].copy_from_slice(&p3.to_be_bytes());
    }

    /// Copies `data` into the data segment (after the AHS), sets DataSegmentLength and zeroes the
    /// padding. The buffer must be at least [`Packet::total_len`] long afterwards.
    pub fn set_data(&mut self, data: &[u8]) {
        self.set_data_segment_len(data.len() as u32);
        let start = BHS_LEN + self.ahs_len();
        let end = start + data.len();
        let buf = self.bm();
        buf[start..end].copy_from_slice(data);
        let pad_end = (start + padded(data.len())).min(buf.len());
        buf[end..pad_end].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_round_trip() {
        for v in 0u8..64 {
            assert_eq!(u8::from(Opcode::from(v)), v);
        }
        assert_eq!(Opcode::from(0x43), Opcode::LoginRequest);
        assert_eq!(Opcode::from(0x1c), Opcode::Unknown(0x1c));
    }

    #[test]
    fn short_buffers_are_rejected_not_panicking() {
        for n in 0..BHS_LEN {
            assert!(Packet::new_checked(vec![0u8; n]).is_err());
        }
        let mut b = vec![0u8; BHS_LEN];
        b[7] = 5; // DSL 5, data missing
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            InvalidPdu::Truncated {
                needed: 53,
                got: 48
            }
        );
        b[4] = 1; // 4 bytes AHS
        b[7] = 0;
        assert!(Packet::new_checked(&b[..]).is_err());
        b.extend_from_slice(&[9, 9, 9, 9, b'a', b'=', b'b', 0]);
        b[7] = 4;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.ahs(), &[9, 9, 9, 9]);
        assert_eq!(p.data(), b"a=b\0");
    }

    #[test]
    fn pdu_len_counts_padding_and_ahs() {
        let mut b = [0u8; BHS_LEN];
        assert_eq!(pdu_len(&b[..47]), None);
        b[7] = 198;
        assert_eq!(pdu_len(&b), Some(48 + 200));
        b[4] = 2;
        assert_eq!(pdu_len(&b), Some(48 + 8 + 200));
        b[5] = 0xff;
        b[6] = 0xff;
        b[7] = 0xff;
        assert_eq!(pdu_len(&b), Some(48 + 8 + 0x0100_0000));
    }
}
