//! Win32 and Winsock error codes, and what Windows would report for a Linux I/O error.
//!
//! A VDS client on Windows sees socket failures as `HRESULT_FROM_WIN32(WSAE…)`. vds runs on Linux, so
//! it maps each `std::io::Error` to the Win32 code Windows gives for the same condition. The table is
//! [`Win32Error::from_io_error`]; its rows are tested one by one.

use std::io;

/// A Win32 (or Winsock) error code, before `HRESULT_FROM_WIN32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Win32Error(pub u32);

impl Win32Error {
    /// `ERROR_FILE_NOT_FOUND`
    pub const FILE_NOT_FOUND: Win32Error = Win32Error(2);
    /// `ERROR_PATH_NOT_FOUND`
    pub const PATH_NOT_FOUND: Win32Error = Win32Error(3);
    /// `ERROR_ACCESS_DENIED`
    pub const ACCESS_DENIED: Win32Error = Win32Error(5);
    /// `ERROR_INVALID_DATA`
    pub const INVALID_DATA: Win32Error = Win32Error(13);
    /// `ERROR_OUTOFMEMORY`
    pub const OUTOFMEMORY: Win32Error = Win32Error(14);
    /// `ERROR_WRITE_PROTECT`
    pub const WRITE_PROTECT: Win32Error = Win32Error(19);
    /// `ERROR_GEN_FAILURE`
    pub const GEN_FAILURE: Win32Error = Win32Error(31);
    /// `ERROR_HANDLE_EOF`
    pub const HANDLE_EOF: Win32Error = Win32Error(38);
    /// `ERROR_NOT_SUPPORTED`
    pub const NOT_SUPPORTED: Win32Error = Win32Error(50);
    /// `ERROR_INVALID_PARAMETER`
    pub const INVALID_PARAMETER: Win32Error = Win32Error(87);
    /// `ERROR_BROKEN_PIPE`
    pub const BROKEN_PIPE: Win32Error = Win32Error(109);
    /// `ERROR_DISK_FULL`
    pub const DISK_FULL: Win32Error = Win32Error(112);
    /// `ERROR_DIR_NOT_EMPTY`
    pub const DIR_NOT_EMPTY: Win32Error = Win32Error(145);
    /// `ERROR_ALREADY_EXISTS`
    pub const ALREADY_EXISTS: Win32Error = Win32Error(183);
    /// `ERROR_TIMEOUT`
    pub const TIMEOUT: Win32Error = Win32Error(1460);
    /// `WSAEINTR`
    pub const WSAEINTR: Win32Error = Win32Error(10004);
    /// `WSAEWOULDBLOCK`
    pub const WSAEWOULDBLOCK: Win32Error = Win32Error(10035);
    /// `WSAEADDRINUSE`
    pub const WSAEADDRINUSE: Win32Error = Win32Error(10048);
    /// `WSAEADDRNOTAVAIL`
    pub const WSAEADDRNOTAVAIL: Win32Error = Win32Error(10049);
    /// `WSAENETDOWN`
    pub const WSAENETDOWN: Win32Error = Win32Error(10050);
    /// `WSAENETUNREACH`
    pub const WSAENETUNREACH: Win32Error = Win32Error(10051);
    /// `WSAECONNABORTED`
    pub const WSAECONNABORTED: Win32Error = Win32Error(10053);
    /// `WSAECONNRESET`
    pub const WSAECONNRESET: Win32Error = Win32Error(10054);
    /// `WSAENOTCONN`
    pub const WSAENOTCONN: Win32Error = Win32Error(10057);
    /// `WSAETIMEDOUT`
    pub const WSAETIMEDOUT: Win32Error = Win32Error(10060);
    /// `WSAECONNREFUSED`
    pub const WSAECONNREFUSED: Win32Error = Win32Error(10061);
    /// `WSAEHOSTDOWN`
    pub const WSAEHOSTDOWN: Win32Error = Win32Error(10064);
    /// `WSAEHOSTUNREACH`
    pub const WSAEHOSTUNREACH: Win32Error = Win32Error(10065);
    /// `WSAHOST_NOT_FOUND`: a DNS name that does not resolve.
    pub const WSAHOST_NOT_FOUND: Win32Error = Win32Error(11001);

    /// The Win32 code Windows would report for `error`.
    ///
    /// | Linux condition (`io::ErrorKind`, or errno) | Win32 code | HRESULT |
    /// |---|---|---|
    /// | `ConnectionRefused` (ECONNREFUSED) | WSAECONNREFUSED 10061 | 0x8007274D |
    /// | `TimedOut` (ETIMEDOUT) | WSAETIMEDOUT 10060 | 0x8007274C |
    /// | `HostUnreachable` (EHOSTUNREACH) | WSAEHOSTUNREACH 10065 | 0x80072751 |
    /// | EHOSTDOWN | WSAEHOSTDOWN 10064 | 0x80072750 |
    /// | `NetworkUnreachable` (ENETUNREACH) | WSAENETUNREACH 10051 | 0x80072743 |
    /// | `NetworkDown` (ENETDOWN) | WSAENETDOWN 10050 | 0x80072742 |
    /// | `ConnectionReset` (ECONNRESET) | WSAECONNRESET 10054 | 0x80072746 |
    /// | `ConnectionAborted` (ECONNABORTED) | WSAECONNABORTED 10053 | 0x80072745 |
    /// | `NotConnected` (ENOTCONN) | WSAENOTCONN 10057 | 0x80072749 |
    /// | `AddrInUse` (EADDRINUSE) | WSAEADDRINUSE 10048 | 0x80072740 |
    /// | `AddrNotAvailable` (EADDRNOTAVAIL) | WSAEADDRNOTAVAIL 10049 | 0x80072741 |
    /// | `WouldBlock` (EAGAIN) | WSAEWOULDBLOCK 10035 | 0x80072733 |
    /// | `Interrupted` (EINTR) | WSAEINTR 10004 | 0x80072714 |
    /// | `PermissionDenied` (EACCES, EPERM) | ERROR_ACCESS_DENIED 5 | 0x80070005 |
    /// | `NotFound` (ENOENT) | ERROR_FILE_NOT_FOUND 2 | 0x80070002 |
    /// | `OutOfMemory` (ENOMEM) | ERROR_OUTOFMEMORY 14 | 0x8007000E (`E_OUTOFMEMORY`) |
    /// | `InvalidInput` (EINVAL) | ERROR_INVALID_PARAMETER 87 | 0x80070057 (`E_INVALIDARG`) |
    /// | `InvalidData` | ERROR_INVALID_DATA 13 | 0x8007000D |
    /// | `UnexpectedEof` | ERROR_HANDLE_EOF 38 | 0x80070026 |
    /// | `BrokenPipe` (EPIPE) | ERROR_BROKEN_PIPE 109 | 0x8007006D |
    /// | `AlreadyExists` (EEXIST) | ERROR_ALREADY_EXISTS 183 | 0x800700B7 |
    /// | `StorageFull` (ENOSPC) | ERROR_DISK_FULL 112 | 0x80070070 |
    /// | `ReadOnlyFilesystem` (EROFS) | ERROR_WRITE_PROTECT 19 | 0x80070013 |
    /// | `Unsupported` (EOPNOTSUPP) | ERROR_NOT_SUPPORTED 50 | 0x80070032 |
    /// | anything else | ERROR_GEN_FAILURE 31 | 0x8007001F |
    pub fn from_io_error(error: &io::Error) -> Win32Error {
        // errno first where Rust folds distinct causes into one kind (EHOSTDOWN).
        if let Some(errno) = error.raw_os_error() {
            const EHOSTDOWN: i32 = 112;
            if errno == EHOSTDOWN {
                return Win32Error::WSAEHOSTDOWN;
            }
        }
        use io::ErrorKind as K;
        match error.kind() {
            K::ConnectionRefused => Win32Error::WSAECONNREFUSED,
            K::TimedOut => Win32Error::WSAETIMEDOUT,
            K::HostUnreachable => Win32Error::WSAEHOSTUNREACH,
            K::NetworkUnreachable => Win32Error::WSAENETUNREACH,
            K::NetworkDown => Win32Error::WSAENETDOWN,
            K::ConnectionReset => Win32Error::WSAECONNRESET,
            K::ConnectionAborted => Win32Error::WSAECONNABORTED,
            K::NotConnected => Win32Error::WSAENOTCONN,
            K::AddrInUse => Win32Error::WSAEADDRINUSE,
            K::AddrNotAvailable => Win32Error::WSAEADDRNOTAVAIL,
            K::WouldBlock => Win32Error::WSAEWOULDBLOCK,
            K::Interrupted => Win32Error::WSAEINTR,
            K::PermissionDenied => Win32Error::ACCESS_DENIED,
            K::NotFound => Win32Error::FILE_NOT_FOUND,
            K::OutOfMemory => Win32Error::OUTOFMEMORY,
            K::InvalidInput => Win32Error::INVALID_PARAMETER,
            K::InvalidData => Win32Error::INVALID_DATA,
            K::UnexpectedEof => Win32Error::HANDLE_EOF,
            K::BrokenPipe => Win32Error::BROKEN_PIPE,
            K::AlreadyExists => Win32Error::ALREADY_EXISTS,
            K::StorageFull => Win32Error::DISK_FULL,
            K::ReadOnlyFilesystem => Win32Error::WRITE_PROTECT,
            K::Unsupported => Win32Error::NOT_SUPPORTED,
            _ => Win32Error::GEN_FAILURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hresult;

    fn hr_of_errno(errno: i32) -> u32 {
        Hresult::from_io_error(&io::Error::from_raw_os_error(errno)).code()
    }

    fn hr_of_kind(kind: io::ErrorKind) -> u32 {
        Hresult::from_io_error(&io::Error::from(kind)).code()
    }

    #[test]
    fn linux_errno_rows() {
        // (errno on Linux, expected HRESULT)
        let rows: &[(i32, u32)] = &[
            (111, 0x8007_274D), // ECONNREFUSED -> WSAECONNREFUSED 10061
            (110, 0x8007_274C), // ETIMEDOUT -> WSAETIMEDOUT 10060
            (113, 0x8007_2751), // EHOSTUNREACH -> WSAEHOSTUNREACH 10065
            (112, 0x8007_2750), // EHOSTDOWN -> WSAEHOSTDOWN 10064
            (101, 0x8007_2743), // ENETUNREACH -> WSAENETUNREACH 10051
            (100, 0x8007_2742), // ENETDOWN -> WSAENETDOWN 10050
            (104, 0x8007_2746), // ECONNRESET -> WSAECONNRESET 10054
            (103, 0x8007_2745), // ECONNABORTED -> WSAECONNABORTED 10053
            (107, 0x8007_2749), // ENOTCONN -> WSAENOTCONN 10057
            (98, 0x8007_2740),  // EADDRINUSE -> WSAEADDRINUSE 10048
            (99, 0x8007_2741),  // EADDRNOTAVAIL -> WSAEADDRNOTAVAIL 10049
            (11, 0x8007_2733),  // EAGAIN -> WSAEWOULDBLOCK 10035
            (4, 0x8007_2714),   // EINTR -> WSAEINTR 10004
            (13, 0x8007_0005),  // EACCES -> ERROR_ACCESS_DENIED
            (1, 0x8007_0005),   // EPERM -> ERROR_ACCESS_DENIED
            (2, 0x8007_0002),   // ENOENT -> ERROR_FILE_NOT_FOUND
            (12, 0x8007_000E),  // ENOMEM -> E_OUTOFMEMORY
            (22, 0x8007_0057),  // EINVAL -> E_INVALIDARG
            (32, 0x8007_006D),  // EPIPE -> ERROR_BROKEN_PIPE
            (17, 0x8007_00B7),  // EEXIST -> ERROR_ALREADY_EXISTS
            (28, 0x8007_0070),  // ENOSPC -> ERROR_DISK_FULL
            (30, 0x8007_0013),  // EROFS -> ERROR_WRITE_PROTECT
            (95, 0x8007_0032),  // EOPNOTSUPP -> ERROR_NOT_SUPPORTED
        ];
        for &(errno, want) in rows {
            assert_eq!(hr_of_errno(errno), want, "errno {errno}");
        }
    }

    #[test]
    fn error_kind_rows() {
        use io::ErrorKind as K;
        assert_eq!(hr_of_kind(K::ConnectionRefused), 0x8007_274D);
        assert_eq!(hr_of_kind(K::TimedOut), 0x8007_274C);
        assert_eq!(hr_of_kind(K::InvalidData), 0x8007_000D);
        assert_eq!(hr_of_kind(K::UnexpectedEof), 0x8007_0026);
        assert_eq!(hr_of_kind(K::OutOfMemory), Hresult::E_OUTOFMEMORY.code());
        assert_eq!(hr_of_kind(K::Other), 0x8007_001F);
    }
}
