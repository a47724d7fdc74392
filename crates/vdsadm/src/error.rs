//! What a failed command reports: one [`CliError`] carrying the HRESULT, the object it concerns and
//! the cause, and the one table ([`EXIT_CODES`]) that turns it into a process exit status.
//!
//! Every failure of every command ends here, so the one-line stderr form, the `--json` form and the
//! exit status cannot disagree. Nothing here prints; `main` does.

use std::fmt;

use vds_model::{Error, Hresult, Subject};

/// The classes of failure that have their own exit status. The numbers are the contract documented
/// in `docs/CLI.md` and in `vdsadm --help`; they never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// Success.
    Ok,
    /// Anything not in another class.
    Other,
    /// The command line was wrong (clap's own status).
    Usage,
    /// The named subsystem, portal, target or group does not exist.
    NotFound,
    /// The array could not be reached, or refused the login.
    Network,
    /// The subsystem is in a failed state (`VDS_E_OBJECT_STATUS_FAILED`).
    SubsystemFailed,
    /// The provider cache is corrupt (`VDS_E_PROVIDER_CACHE_CORRUPT`).
    CacheCorrupt,
    /// Another refresh or reenumerate holds the subsystems (`VDS_E_ANOTHER_CALL_IN_PROGRESS`).
    Busy,
}

/// The exit-code table: class, status, and the words used for it in `--help` and `docs/CLI.md`.
pub const EXIT_CODES: &[(ExitClass, u8, &str)] = &[
    (ExitClass::Ok, 0, "success"),
    (ExitClass::Other, 1, "any other failure"),
    (ExitClass::Usage, 2, "usage error (bad flags or arguments)"),
    (
        ExitClass::NotFound,
        3,
        "object not found (VDS_E_OBJECT_NOT_FOUND, VDS_E_OBJECT_DELETED)",
    ),
    (
        ExitClass::Network,
        4,
        "network or login failure (HRESULT_FROM_WIN32(WSAE*), VDS_E_ISCSI_LOGIN_FAILED, ...)",
    ),
    (
        ExitClass::SubsystemFailed,
        5,
        "subsystem failed (VDS_E_OBJECT_STATUS_FAILED)",
    ),
    (
        ExitClass::CacheCorrupt,
        6,
        "provider cache corrupt (VDS_E_PROVIDER_CACHE_CORRUPT)",
    ),
    (
        ExitClass::Busy,
        7,
        "another call in progress (VDS_E_ANOTHER_CALL_IN_PROGRESS)",
    ),
];

impl ExitClass {
    /// The class of a failure code.
    pub fn of(hr: Hresult) -> ExitClass {
        if hr.is_ok() {
            return ExitClass::Ok;
        }
        match hr {
            Hresult::VDS_E_OBJECT_NOT_FOUND | Hresult::VDS_E_OBJECT_DELETED => ExitClass::NotFound,
            Hresult::VDS_E_OBJECT_STATUS_FAILED => ExitClass::SubsystemFailed,
            Hresult::VDS_E_PROVIDER_CACHE_CORRUPT => ExitClass::CacheCorrupt,
            Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS => ExitClass::Busy,
            Hresult::VDS_E_ISCSI_LOGIN_FAILED | Hresult::VDS_E_ISCSI_CHAP_SECRET => {
                ExitClass::Network
            }
            _ => match hr.win32_code() {
                // Winsock (WSAE*, WSAHOST_NOT_FOUND) and ERROR_TIMEOUT: the network.
                Some(10000..=11999) | Some(1460) => ExitClass::Network,
                _ => ExitClass::Other,
            },
        }
    }

    /// The process exit status of this class.
    pub fn code(self) -> u8 {
        EXIT_CODES
            .iter()
            .find(|(class, _, _)| *class == self)
            .map_or(1, |(_, code, _)| *code)
    }
}

/// The exit-code table as text, for `--help` and the manual page.
pub fn exit_code_help() -> String {
    let mut out = String::from("Exit status:\n");
    for (_, code, words) in EXIT_CODES {
        out.push_str(&format!("  {code}  {words}\n"));
    }
    out
}

/// A failed command: the one error of vds ([`vds_model::Error`]: the HRESULT, what it concerns, why)
/// and whether it is a command-line mistake (exit status 2).
#[derive(Debug, Clone)]
pub struct CliError {
    /// The error.
    pub error: Error,
    /// A command-line mistake found during validation: exit status 2, like clap's own.
    pub usage: bool,
}

impl CliError {
    /// An error about `subject` (in words; empty for none) whose cause is given in full.
    pub fn with_cause(
        hresult: Hresult,
        subject: impl Into<String>,
        cause: impl Into<String>,
    ) -> CliError {
        let subject = subject.into();
        let mut error = Error::new(hresult).because(cause);
        if !subject.is_empty() {
            error = error.about(Subject::Other(subject));
        }
        CliError {
            error,
            usage: false,
        }
    }

    /// A command-line mistake (`E_INVALIDARG`, exit status 2).
    pub fn usage(subject: impl Into<String>, cause: impl Into<String>) -> CliError {
        CliError {
            usage: true,
            ..CliError::with_cause(Hresult::E_INVALIDARG, subject, cause)
        }
    }

    /// The exit class.
    pub fn class(&self) -> ExitClass {
        if self.usage {
            return ExitClass::Usage;
        }
        ExitClass::of(self.error.code())
    }

    /// The `--json` document: `{"error": {"hresult", "name", "message"}}`, pretty-printed.
    pub fn to_json(&self) -> String {
        let doc = vds_api::ErrorDoc::from(&self.error);
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| {
            format!(
                "{{\"error\": {{\"hresult\": \"{}\"}}}}",
                self.error.code_hex()
            )
        })
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        // The store refuses a bad name as E_INVALIDARG; typed at the command line it is a usage
        // mistake, but names are checked in `args` already, so what reaches here is not one.
        CliError {
            error,
            usage: false,
        }
    }
}

/// `subsystem "lab": VDS_E_OBJECT_STATUS_FAILED (0x80042431): the subsystem is in a failed state`.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// Shorthand for command results.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_renders_exactly() {
        let e = CliError::from(
            Error::new(Hresult::VDS_E_OBJECT_STATUS_FAILED)
                .about(Subject::Subsystem("lab".into()))
                .because("127.0.0.1:3260: authentication failure"),
        );
        assert_eq!(
            e.to_string(),
            "subsystem \"lab\": VDS_E_OBJECT_STATUS_FAILED (0x80042431): the subsystem is in a \
             failed state: 127.0.0.1:3260: authentication failure"
        );
        let j: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(j["error"]["hresult"], "0x80042431");
        assert_eq!(j["error"]["name"], "VDS_E_OBJECT_STATUS_FAILED");
        assert_eq!(e.class().code(), 5);
    }

    #[test]
    fn classes_are_distinct_and_cover_the_issue() {
        let mut codes: Vec<u8> = EXIT_CODES.iter().map(|r| r.1).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), EXIT_CODES.len());
        let refused = Hresult::from_win32(10061);
        assert_eq!(refused.code(), 0x8007_274D);
        assert_eq!(ExitClass::of(refused), ExitClass::Network);
        let e = CliError::with_cause(refused, "portal 127.0.0.1:1", "refused");
        assert_eq!(e.error.code_name(), "HRESULT_FROM_WIN32(10061)");
        assert_eq!(e.error.code_hex(), "0x8007274D");
        assert_eq!(ExitClass::of(Hresult::VDS_E_OBJECT_NOT_FOUND).code(), 3);
        assert_eq!(
            ExitClass::of(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT).code(),
            6
        );
        assert_eq!(
            ExitClass::of(Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS).code(),
            7
        );
        assert_eq!(ExitClass::of(Hresult::E_FAIL).code(), 1);
        assert_eq!(ExitClass::Usage.code(), 2);
        assert_eq!(CliError::usage("x", "y").class().code(), 2);
    }
}
