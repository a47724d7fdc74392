//! tgtd's management messages on the wire: zero-copy views of the 120-byte request header
//! ([`RequestHeader`]) and the 8-byte reply header ([`ReplyHeader`]), and the open enums of the
//! values their fields carry ([`Mode`], [`Operation`], [`ErrorCode`]).
//!
//! This module owns byte layout only; which fields an operation uses is [`crate::request`]'s
//! business. The layout is `struct tgtadm_req` / `struct tgtadm_rsp` of tgt 1.0.85 on x86_64:
//! native little-endian, no version field, no padding.
//!
//! # Safety of accessors
//!
//! Untrusted bytes go through [`RequestHeader::new_checked`] / [`ReplyHeader::new_checked`], which
//! check that the buffer holds the whole header. After that **no accessor can panic**: every field
//! lies inside the checked header. `new_unchecked` exists for buffers the caller sized itself; on
//! a shorter buffer accessors may panic.

use crate::error::InvalidMessage;

/// Length of `struct tgtadm_req`.
pub const REQUEST_HEADER_LEN: usize = 120;

/// Length of `struct tgtadm_rsp`.
pub const REPLY_HEADER_LEN: usize = 8;

/// tgtd's `MAX_MGT_BUFSIZE`: the most request payload bytes (the text **and** its trailing NUL)
/// tgtd reads. One byte more and it closes the connection without a reply (checked on tgt 1.0.85:
/// 8192 bytes are answered, 8193 are not).
pub const MAX_REQUEST_PAYLOAD: usize = 8192;

/// Size of the `lld` field; tgtd forces its last byte to NUL, so a name has at most 63 bytes.
pub const LLD_FIELD_LEN: usize = 64;

/// The only low-level driver this crate speaks to.
pub const LLD_ISCSI: &str = "iscsi";

/// `GLOBAL_TID`: the `tid` of requests that concern no target (and of discovery account bindings).
pub const NO_TID: i32 = -1;

/// The `lun` tgtadm sends when no LUN is concerned: all ones.
pub const NO_LUN: u64 = u64::MAX;

/// Byte offsets of the fields of both headers.
mod field {
    use core::ops::Range;

    pub const MODE: Range<usize> = 0..4;
    pub const OP: Range<usize> = 4..8;
    pub const LLD: Range<usize> = 8..72;
    pub const LEN: Range<usize> = 72..76;
    pub const TID: Range<usize> = 76..80;
    pub const SID: Range<usize> = 80..88;
    pub const LUN: Range<usize> = 88..96;
    pub const CID: Range<usize> = 96..100;
    pub const HOST_NO: Range<usize> = 100..104;
    pub const DEVICE_TYPE: Range<usize> = 104..108;
    pub const AC_DIR: Range<usize> = 108..112;
    pub const PACK: Range<usize> = 112..116;
    pub const FORCE: Range<usize> = 116..120;

    pub const RSP_ERR: Range<usize> = 0..4;
    pub const RSP_LEN: Range<usize> = 4..8;
}

/// Makes an open wire enum: one variant per known value plus `Unknown(raw)`, so that every value
/// parses and `u32::from(E::from(v)) == v` for every `v`.
macro_rules! enum_with_unknown {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value this crate does not know; kept as it was.
            Unknown(u32),
        }

        impl From<u32> for $name {
            fn from(value: u32) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// `enum tgtadm_mode`: what a request is about.
    pub enum Mode {
        /// 0: the daemon itself (`--mode system`).
        System = 0,
        /// 1: targets (`--mode target`).
        Target = 1,
        /// 2: logical units (`--mode logicalunit`).
        Device = 2,
        /// 3: listening portals (`--mode portal`).
        Portal = 3,
        /// 4: low-level drivers (`--mode lld`).
        Lld = 4,
        /// 5: sessions.
        Session = 5,
        /// 6: connections.
        Connection = 6,
        /// 7: CHAP accounts (`--mode account`).
        Account = 7,
    }
}

enum_with_unknown! {
    /// `enum tgtadm_op`: what to do.
    pub enum Operation {
        /// 0: create.
        New = 0,
        /// 1: delete.
        Delete = 1,
        /// 2: list.
        Show = 2,
        /// 3: bind (ACLs, accounts).
        Bind = 3,
        /// 4: unbind.
        Unbind = 4,
        /// 5: change parameters or state.
        Update = 5,
        /// 6: statistics.
        Stats = 6,
        /// 7: start a driver.
        Start = 7,
        /// 8: stop a driver.
        Stop = 8,
    }
}

/// Makes [`ErrorCode`] from one line per code: variant, value, tgtd's name, what it means. The
/// table is written once here; `name`, `description` and both conversions come from it.
macro_rules! tgtadm_errors {
    ( $( $(#[$vattr:meta])* $variant:ident = $value:literal, $cname:literal, $desc:literal; )+ ) => {
        /// `tgtadm_err`: the `err` field of a reply. Open: an unknown code round-trips.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[must_use]
        pub enum ErrorCode {
            $( $(#[$vattr])* #[doc = concat!($value, " `TGTADM_", $cname, "`: ", $desc, ".")] $variant, )+
            /// A code tgt 1.0.85 does not define; kept as it was.
            Unknown(u32),
        }

        impl From<u32> for ErrorCode {
            fn from(value: u32) -> Self {
                match value {
                    $( $value => ErrorCode::$variant, )+
                    other => ErrorCode::Unknown(other),
                }
            }
        }

        impl From<ErrorCode> for u32 {
            fn from(value: ErrorCode) -> u32 {
                match value {
                    $( ErrorCode::$variant => $value, )+
                    ErrorCode::Unknown(other) => other,
                }
            }
        }

        impl ErrorCode {
            /// tgtd's name without the `TGTADM_` prefix (`"TARGET_EXIST"`), or `"UNKNOWN"`.
            pub fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $cname, )+
                    ErrorCode::Unknown(_) => "UNKNOWN",
                }
            }

            /// What the code means, in a few words.
            pub fn description(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $desc, )+
                    ErrorCode::Unknown(_) => "error code not defined by tgt 1.0.85",
                }
            }
        }
    };
}

tgtadm_errors! {
    Success = 0, "SUCCESS", "success";
    UnknownErr = 1, "UNKNOWN_ERR", "unknown error";
    NoMem = 2, "NOMEM", "out of memory";
    NoDriver = 3, "NO_DRIVER", "no such or inactive low-level driver";
    NoTarget = 4, "NO_TARGET", "no such target";
    NoLun = 5, "NO_LUN", "no such logical unit";
    NoSession = 6, "NO_SESSION", "no such session";
    NoConnection = 7, "NO_CONNECTION", "no such connection";
    NoBinding = 8, "NO_BINDING", "no such binding";
    TargetExist = 9, "TARGET_EXIST", "target already exists";
    LunExist = 10, "LUN_EXIST", "logical unit already exists";
    BindingExist = 11, "BINDING_EXIST", "binding already exists";
    AclExist = 12, "ACL_EXIST", "ACL already exists";
    AclNoexist = 13, "ACL_NOEXIST", "no such ACL";
    UserExist = 14, "USER_EXIST", "account already exists or is already bound";
    NoUser = 15, "NO_USER", "no such account or binding";
    TooManyUser = 16, "TOO_MANY_USER", "too many accounts";
    InvalidRequest = 17, "INVALID_REQUEST", "invalid request";
    OutaccountExist = 18, "OUTACCOUNT_EXIST", "target already has an outgoing account";
    TargetActive = 19, "TARGET_ACTIVE", "target is active (it has sessions)";
    LunActive = 20, "LUN_ACTIVE", "logical unit is active";
    DriverActive = 21, "DRIVER_ACTIVE", "driver is active";
    UnsupportedOperation = 22, "UNSUPPORTED_OPERATION", "unsupported operation";
    UnknownParam = 23, "UNKNOWN_PARAM", "unknown parameter";
    PreventRemoval = 24, "PREVENT_REMOVAL", "medium removal is prevented";
}

impl ErrorCode {
    /// True for [`ErrorCode::Success`].
    pub fn is_success(self) -> bool {
        self == ErrorCode::Success
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} ({}: {})",
            self.description(),
            u32::from(*self),
            self.name()
        )
    }
}

fn read_u32(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8], r: core::ops::Range<usize>) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    u64::from_le_bytes(a)
}

/// A read/write view of the 120-byte request header (`struct tgtadm_req`). The payload, if any,
/// follows the header; this view does not cover it.
#[derive(Debug, Clone)]
pub struct RequestHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RequestHeader<T> {
    /// Wraps a buffer without checking its length; see the module doc.
    pub const fn new_unchecked(buffer: T) -> RequestHeader<T> {
        RequestHeader { buffer }
    }

    /// Wraps a buffer and checks that it holds the whole header.
    pub fn new_checked(buffer: T) -> Result<RequestHeader<T>, InvalidMessage> {
        let got = buffer.as_ref().len();
        if got < REQUEST_HEADER_LEN {
            return Err(InvalidMessage::Truncated {
                needed: REQUEST_HEADER_LEN,
                got,
            });
        }
        Ok(RequestHeader { buffer })
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The mode (what the request is about).
    pub fn mode(&self) -> Mode {
        Mode::from(read_u32(self.b(), field::MODE))
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        Operation::from(read_u32(self.b(), field::OP))
    }

    /// The driver name: the `lld` field up to its first NUL (tgtd also stops at byte 63).
    pub fn lld(&self) -> &[u8] {
        let raw = &self.b()[field::LLD][..LLD_FIELD_LEN - 1];
        let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        &raw[..end]
    }

    /// Total request length: 120 plus the payload bytes (text and trailing NUL).
    pub fn len(&self) -> u32 {
        read_u32(self.b(), field::LEN)
    }

    /// True when the header announces no payload (`len` = 120).
    pub fn is_empty(&self) -> bool {
        self.len() as usize == REQUEST_HEADER_LEN
    }

    /// Target id; [`NO_TID`] when not applicable.
    pub fn tid(&self) -> i32 {
        read_u32(self.b(), field::TID) as i32
    }

    /// Session id.
    pub fn sid(&self) -> u64 {
        read_u64(self.b(), field::SID)
    }

    /// LUN; [`NO_LUN`] when not applicable.
    pub fn lun(&self) -> u64 {
        read_u64(self.b(), field::LUN)
    }

    /// Connection id.
    pub fn cid(&self) -> u32 {
        read_u32(self.b(), field::CID)
    }

    /// SCSI host number.
    pub fn host_no(&self) -> u32 {
        read_u32(self.b(), field::HOST_NO)
    }

    /// Device type of a new LUN (0 disk).
    pub fn device_type(&self) -> u32 {
        read_u32(self.b(), field::DEVICE_TYPE)
    }

    /// Account direction: 0 incoming, 1 outgoing.
    pub fn ac_dir(&self) -> u32 {
        read_u32(self.b(), field::AC_DIR)
    }

    /// `pack` (unused by the operations of this crate).
    pub fn pack(&self) -> u32 {
        read_u32(self.b(), field::PACK)
    }

    /// `force`: 1 deletes a target even with sessions.
    pub fn force(&self) -> u32 {
        read_u32(self.b(), field::FORCE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RequestHeader<T> {
    fn put_u32(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, r: core::ops::Range<usize>, v: u64) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets the mode.
    pub fn set_mode(&mut self, v: Mode) {
        self.put_u32(field::MODE, v.into());
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, v: Operation) {
        self.put_u32(field::OP, v.into());
    }

    /// Sets the driver name, NUL padded. Callers pass at most 63 bytes; longer names are cut
    /// there, as tgtd would cut them.
    pub fn set_lld(&mut self, name: &[u8]) {
        let f = &mut self.buffer.as_mut()[field::LLD];
        f.fill(0);
        let n = name.len().min(LLD_FIELD_LEN - 1);
        f[..n].copy_from_slice(&name[..n]);
    }

    /// Sets the total length.
    pub fn set_len(&mut self, v: u32) {
        self.put_u32(field::LEN, v);
    }

    /// Sets the target id.
    pub fn set_tid(&mut self, v: i32) {
        self.put_u32(field::TID, v as u32);
    }

    /// Sets the session id.
    pub fn set_sid(&mut self, v: u64) {
        self.put_u64(field::SID, v);
    }

    /// Sets the LUN.
    pub fn set_lun(&mut self, v: u64) {
        self.put_u64(field::LUN, v);
    }

    /// Sets the connection id.
    pub fn set_cid(&mut self, v: u32) {
        self.put_u32(field::CID, v);
    }

    /// Sets the host number.
    pub fn set_host_no(&mut self, v: u32) {
        self.put_u32(field::HOST_NO, v);
    }

    /// Sets the device type.
    pub fn set_device_type(&mut self, v: u32) {
        self.put_u32(field::DEVICE_TYPE, v);
    }

    /// Sets the account direction.
    pub fn set_ac_dir(&mut self, v: u32) {
        self.put_u32(field::AC_DIR, v);
    }

    /// Sets `pack`.
    pub fn set_pack(&mut self, v: u32) {
        self.put_u32(field::PACK, v);
    }

    /// Sets `force`.
    pub fn set_force(&mut self, v: u32) {
        self.put_u32(field::FORCE, v);
    }
}

/// A read/write view of the 8-byte reply header (`struct tgtadm_rsp`).
#[derive(Debug, Clone)]
pub struct ReplyHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReplyHeader<T> {
    /// Wraps a buffer without checking its length; see the module doc.
    pub const fn new_unchecked(buffer: T) -> ReplyHeader<T> {
        ReplyHeader { buffer }
    }

    /// Wraps a buffer and checks that it holds the whole header.
    pub fn new_checked(buffer: T) -> Result<ReplyHeader<T>, InvalidMessage> {
        let got = buffer.as_ref().len();
        if got < REPLY_HEADER_LEN {
            return Err(InvalidMessage::Truncated {
                needed: REPLY_HEADER_LEN,
                got,
            });
        }
        Ok(ReplyHeader { buffer })
    }

    /// The `err` field.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from(read_u32(self.buffer.as_ref(), field::RSP_ERR))
    }

    /// The `len` field: 8 plus the payload bytes that follow.
    pub fn len(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::RSP_LEN)
    }

    /// True when the header announces no payload (`len` = 8).
    pub fn is_empty(&self) -> bool {
        self.len() as usize == REPLY_HEADER_LEN
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ReplyHeader<T> {
    /// Sets the `err` field.
    pub fn set_error_code(&mut self, v: ErrorCode) {
        self.buffer.as_mut()[field::RSP_ERR].copy_from_slice(&u32::from(v).to_le_bytes());
    }

    /// Sets the `len` field.
    pub fn set_len(&mut self, v: u32) {
        self.buffer.as_mut()[field::RSP_LEN].copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_round_trip_every_value() {
        for v in [0u32, 1, 7, 8, 9, 24, 25, 99, u32::MAX] {
            assert_eq!(u32::from(Mode::from(v)), v);
            assert_eq!(u32::from(Operation::from(v)), v);
            assert_eq!(u32::from(ErrorCode::from(v)), v);
        }
        assert_eq!(ErrorCode::from(9), ErrorCode::TargetExist);
        assert_eq!(ErrorCode::from(24), ErrorCode::PreventRemoval);
        assert_eq!(ErrorCode::from(25), ErrorCode::Unknown(25));
        assert_eq!(ErrorCode::from(25).name(), "UNKNOWN");
        assert_eq!(
            ErrorCode::TargetExist.to_string(),
            "target already exists (9: TARGET_EXIST)"
        );
    }

    #[test]
    fn every_code_has_its_reference_name() {
        let names = [
            "SUCCESS",
            "UNKNOWN_ERR",
            "NOMEM",
            "NO_DRIVER",
            "NO_TARGET",
            "NO_LUN",
            "NO_SESSION",
            "NO_CONNECTION",
            "NO_BINDING",
            "TARGET_EXIST",
            "LUN_EXIST",
            "BINDING_EXIST",
            "ACL_EXIST",
            "ACL_NOEXIST",
            "USER_EXIST",
            "NO_USER",
            "TOO_MANY_USER",
            "INVALID_REQUEST",
            "OUTACCOUNT_EXIST",
            "TARGET_ACTIVE",
            "LUN_ACTIVE",
            "DRIVER_ACTIVE",
            "UNSUPPORTED_OPERATION",
            "UNKNOWN_PARAM",
            "PREVENT_REMOVAL",
        ];
        for (code, name) in names.iter().enumerate() {
            let c = ErrorCode::from(code as u32);
            assert_eq!(c.name(), *name);
            assert!(!matches!(c, ErrorCode::Unknown(_)));
        }
    }

    #[test]
    fn short_buffers_are_refused_by_new_checked() {
        assert_eq!(
            RequestHeader::new_checked(&[0u8; 119][..]).err(),
            Some(InvalidMessage::Truncated {
                needed: 120,
                got: 119
            })
        );
        assert!(ReplyHeader::new_checked(&[0u8; 7][..]).is_err());
        let reply = ReplyHeader::new_checked(&[9u8, 0, 0, 0, 8, 0, 0, 0][..]);
        assert!(reply.is_ok_and(|r| r.error_code() == ErrorCode::TargetExist && r.is_empty()));
    }

    #[test]
    fn lld_stops_at_nul_and_at_byte_63() {
        let mut buf = [0u8; REQUEST_HEADER_LEN];
        let mut h = RequestHeader::new_unchecked(&mut buf[..]);
        h.set_lld(b"iscsi");
        assert_eq!(h.lld(), b"iscsi");
        h.set_lld(&[b'x'; 80]);
        assert_eq!(h.lld().len(), 63);
    }
}
