//! `HRESULT`: the 32-bit result code every VDS method returns.
//!
//! This module owns the [`Hresult`] newtype, the one table of every code vds knows (names, values,
//! one-line descriptions, written once in the `hresults!` invocation in `table.rs`, whose module doc
//! says how to add a code), `HRESULT_FROM_WIN32`, and the mapping from `std::io::Error` to the
//! Win32 code Windows would have reported. It must not grow scattered literals: a code is named
//! through an associated constant such as [`Hresult::VDS_E_OBJECT_DELETED`], never written as a
//! number elsewhere.

mod table;
mod win32;

pub use win32::Win32Error;

use std::fmt;

/// A COM `HRESULT`, bit-exact.
///
/// Success codes have the high bit clear (`S_OK`, `S_FALSE`, the `VDS_S_*` success-with-information
/// codes); failures have it set. The numeric value is kept as `i32`, as in the Windows headers, so the
/// sign is the severity.
///
/// ```
/// use vds_model::Hresult;
/// assert!(Hresult::S_FALSE.is_ok());
/// assert!(Hresult::VDS_S_PROPERTIES_INCOMPLETE.is_ok());
/// assert!(Hresult::VDS_E_OBJECT_DELETED.is_err());
/// assert_eq!(Hresult::VDS_E_OBJECT_DELETED.to_string(), "VDS_E_OBJECT_DELETED (0x8004240B)");
/// assert_eq!(Hresult::from_win32(5).code(), 0x8007_0005);
/// ```
#[repr(transparent)]
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Hresult(pub i32);

/// The facility of VDS codes (`FACILITY_ITF`).
pub const FACILITY_ITF: u32 = 4;
/// The facility of converted Win32 codes (`FACILITY_WIN32`).
pub const FACILITY_WIN32: u32 = 7;

impl Hresult {
    /// The code from its unsigned 32-bit form, as written in documentation (`0x8004240B`).
    pub const fn from_code(code: u32) -> Hresult {
        Hresult(code as i32)
    }

    /// The unsigned 32-bit form, as written in documentation.
    pub const fn code(self) -> u32 {
        self.0 as u32
    }

    /// True for every success code, `S_FALSE` and the `VDS_S_*` codes included (`SUCCEEDED`).
    pub const fn is_ok(self) -> bool {
        self.0 >= 0
    }

    /// True for every failure code (`FAILED`).
    pub const fn is_err(self) -> bool {
        self.0 < 0
    }

    /// The facility field (bits 16..29).
    pub const fn facility(self) -> u32 {
        (self.code() >> 16) & 0x1FFF
    }

    /// `HRESULT_FROM_WIN32`: a Win32 error code folded into `0x8007xxxx`.
    ///
    /// A value that is zero or negative when read as `i32` is returned unchanged, as the Windows macro
    /// does (so `from_win32(0)` is `S_OK` and an HRESULT passed by mistake is not mangled).
    pub const fn from_win32(code: u32) -> Hresult {
        if (code as i32) <= 0 {
            Hresult(code as i32)
        } else {
            Hresult::from_code((code & 0xFFFF) | (FACILITY_WIN32 << 16) | 0x8000_0000)
        }
    }

    /// The Win32 code inside a `FACILITY_WIN32` failure, if this is one.
    pub const fn win32_code(self) -> Option<u32> {
        if self.is_err() && self.facility() == FACILITY_WIN32 {
            Some(self.code() & 0xFFFF)
        } else {
            None
        }
    }

    /// The code Windows would report for an I/O error: `HRESULT_FROM_WIN32` of the matching Win32 or
    /// Winsock code (see [`Win32Error::from_io_error`] for the table).
    pub fn from_io_error(error: &std::io::Error) -> Hresult {
        Hresult::from_win32(Win32Error::from_io_error(error).0)
    }

    /// The symbolic name (`"VDS_E_OBJECT_DELETED"`), or `None` for a code vds does not know.
    pub fn name(self) -> Option<&'static str> {
        lookup(self).map(|row| row.1)
    }

    /// A one-line description, or `None` for a code vds does not know.
    pub fn description(self) -> Option<&'static str> {
        lookup(self).map(|row| row.2)
    }

    /// The code whose symbolic name is `name`, if vds knows it.
    pub fn from_name(name: &str) -> Option<Hresult> {
        table::TABLE
            .iter()
            .find(|row| row.1 == name)
            .map(|row| row.0)
    }

    /// Every code vds knows, with its name and description, sorted by unsigned value.
    pub fn known() -> impl Iterator<Item = (Hresult, &'static str, &'static str)> {
        table::TABLE.iter().copied()
    }

    /// `Ok(self)` for a success code, `Err(self)` for a failure: for `?` on a raw code.
    pub fn ok(self) -> Result<Hresult, Hresult> {
        if self.is_ok() { Ok(self) } else { Err(self) }
    }
}

fn lookup(hr: Hresult) -> Option<&'static (Hresult, &'static str, &'static str)> {
    table::TABLE
        .binary_search_by_key(&hr.code(), |row| row.0.code())
        .ok()
        .map(|i| &table::TABLE[i])
}

/// `NAME (0x8004240B)` for a known code; for a converted Win32 code without a name,
/// `HRESULT_FROM_WIN32(10061) (0x8007274D)`; otherwise just the hex value.
impl fmt::Display for Hresult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.win32_code()) {
            (Some(name), _) => write!(f, "{name} ({:#010X})", self.code()),
            (None, Some(w)) => write!(f, "HRESULT_FROM_WIN32({w}) ({:#010X})", self.code()),
            (None, None) => write!(f, "{:#010X}", self.code()),
        }
    }
}

impl fmt::Debug for Hresult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hresult({self})")
    }
}

impl fmt::UpperHex for Hresult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(&self.code(), f)
    }
}

impl std::error::Error for Hresult {}

impl From<std::io::Error> for Hresult {
    fn from(error: std::io::Error) -> Hresult {
        Hresult::from_io_error(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_of_the_query_portals_codes() {
        assert_eq!(Hresult::S_OK.code(), 0);
        assert_eq!(Hresult::S_FALSE.code(), 1);
        assert_eq!(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT.code(), 0x8004_241F);
        assert_eq!(Hresult::VDS_E_OBJECT_DELETED.code(), 0x8004_240B);
        assert_eq!(Hresult::VDS_E_OBJECT_STATUS_FAILED.code(), 0x8004_2431);
        assert_eq!(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS.code(), 0x8004_2404);
        assert_eq!(Hresult::E_INVALIDARG.code(), 0x8007_0057);
        assert_eq!(Hresult::E_OUTOFMEMORY.code(), 0x8007_000E);
        assert_eq!(Hresult::E_POINTER.code(), 0x8000_4003);
        assert_eq!(Hresult::E_FAIL.code(), 0x8000_4005);
        assert_eq!(Hresult::E_UNEXPECTED.code(), 0x8000_FFFF);
        assert_eq!(Hresult::E_NOTIMPL.code(), 0x8000_4001);
        assert_eq!(Hresult::VDS_E_NOT_SUPPORTED.code(), 0x8004_2400);
        assert_eq!(Hresult::VDS_E_NAME_NOT_UNIQUE.code(), 0x8004_2701);
        assert_eq!(Hresult::VDS_E_ASSOCIATED_PORTALS_EXIST.code(), 0x8004_270C);
        assert_eq!(Hresult::VDS_E_OBJECT_NOT_FOUND.code(), 0x8004_2405);
        assert_eq!(Hresult::VDS_S_PROPERTIES_INCOMPLETE.code(), 0x0004_2715);
        assert_eq!(Hresult::VDS_S_ALREADY_EXISTS.code(), 0x0004_2714);
        assert_eq!(Hresult::VDS_E_INITIALIZE_NOT_CALLED.code(), 0x8004_2402);
        assert_eq!(Hresult::VDS_E_BAD_COOKIE.code(), 0x8004_2411);
        // The header value, not the common-codes table's 0x80042517.
        assert_eq!(Hresult::VDS_S_NO_NOTIFICATION.code(), 0x0004_2517);
    }

    #[test]
    fn vds_codes_use_facility_itf_and_success_codes_are_ok() {
        for (hr, name, _) in Hresult::known() {
            if name.starts_with("VDS_") {
                assert_eq!(hr.facility(), FACILITY_ITF, "{name}");
            }
            // Every _S_ code is a success, with the one documented exception whose header value
            // carries the error bit.
            if name.contains("_S_") && name != "VDS_S_GPT_BOOT_MIRRORED_TO_MBR" {
                assert!(hr.is_ok(), "{name}");
            }
            if name.contains("_E_") {
                assert!(hr.is_err(), "{name}");
            }
        }
        assert!(Hresult::VDS_S_GPT_BOOT_MIRRORED_TO_MBR.is_err());
    }

    #[test]
    fn from_win32_folds_and_passes_through() {
        assert_eq!(Hresult::from_win32(0), Hresult::S_OK);
        assert_eq!(Hresult::from_win32(5).code(), 0x8007_0005);
        assert_eq!(Hresult::from_win32(50).code(), 0x8007_0032);
        assert_eq!(Hresult::from_win32(87), Hresult::E_INVALIDARG);
        assert_eq!(Hresult::from_win32(14), Hresult::E_OUTOFMEMORY);
        assert_eq!(Hresult::from_win32(1780).code(), 0x8007_06F4);
        assert_eq!(Hresult::from_win32(10061).code(), 0x8007_274D);
        // <= 0 as i32 passes through unchanged, so an HRESULT is not mangled.
        assert_eq!(
            Hresult::from_win32(0x8004_240B),
            Hresult::VDS_E_OBJECT_DELETED
        );
        assert_eq!(Hresult::from_win32(0x8007_274D).code(), 0x8007_274D);
        assert_eq!(Hresult::from_win32(10061).win32_code(), Some(10061));
        assert_eq!(Hresult::VDS_E_OBJECT_DELETED.win32_code(), None);
    }

    #[test]
    fn display_names_and_hex() {
        assert_eq!(
            Hresult::VDS_E_OBJECT_STATUS_FAILED.to_string(),
            "VDS_E_OBJECT_STATUS_FAILED (0x80042431)"
        );
        assert_eq!(
            Hresult::from_win32(10061).to_string(),
            "HRESULT_FROM_WIN32(10061) (0x8007274D)"
        );
        assert_eq!(Hresult::from_code(0x8123_4567).to_string(), "0x81234567");
        assert_eq!(format!("{:X}", Hresult::VDS_E_OBJECT_DELETED), "8004240B");
        assert_eq!(Hresult::from_name("S_FALSE"), Some(Hresult::S_FALSE));
        assert!(
            Hresult::VDS_E_PROVIDER_CACHE_CORRUPT
                .description()
                .is_some_and(|d| d.contains("Reenumerate"))
        );
    }

    #[test]
    fn table_is_sorted_and_unique() {
        let codes: Vec<u32> = Hresult::known().map(|r| r.0.code()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
    }
}
