//! What a failed command reports: one [`CliError`] carrying the HRESULT, the object it concerns and
//! the cause, and the one table ([`EXIT_CODES`]) that turns it into a process exit status.
//!
//! Every failure of every command ends here, so the one-line stderr form, the `--json` form and the
//! exit status cannot disagree. Nothing here prints; `main` does.

use std::fmt;

use vds_model::Hresult;

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

/// A failed command: the HRESULT, what it concerns (`subsystem "lab"`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The code.
    pub hresult: Hresult,
    /// The object, in words (`subsystem "lab"`, `portal 127.0.0.1:3260`); empty when none.
    pub subject: String,
    /// The cause, for people. Never contains a secret.
    pub cause: String,
    /// A command-line mistake found during validation: exit status 2, like clap's own.
    pub usage: bool,
}

impl CliError {
    /// An error about `subject` with the standard cause for `hresult`, and `detail` appended when
    /// there is one (`…: 127.0.0.1:3260: authentication failure`).
    pub fn new(hresult: Hresult, subject: impl Into<String>, detail: Option<&str>) -> CliError {
        let mut cause = standard_cause(hresult);
        if let Some(d) = detail.filter(|d| !d.is_empty()) {
            cause.push_str(": ");
            cause.push_str(d);
        }
        CliError {
            hresult,
            subject: subject.into(),
            cause,
            usage: false,
        }
    }

    /// An error whose cause is given in full.
    pub fn with_cause(
        hresult: Hresult,
        subject: impl Into<String>,
        cause: impl Into<String>,
    ) -> CliError {
        CliError {
            hresult,
            subject: subject.into(),
            cause: cause.into(),
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

    /// The code's symbolic name, or `HRESULT_FROM_WIN32(n)` / the hex value when it has none.
    pub fn name(&self) -> String {
        match (self.hresult.name(), self.hresult.win32_code()) {
            (Some(name), _) => name.to_string(),
            (None, Some(w)) => format!("HRESULT_FROM_WIN32({w})"),
            (None, None) => self.hex(),
        }
    }

    /// `0x80042431`.
    pub fn hex(&self) -> String {
        format!("0x{:08X}", self.hresult.code())
    }

    /// The message without the code: `subsystem "lab": the subsystem is in a failed state: …`.
    pub fn message(&self) -> String {
        if self.subject.is_empty() {
            self.cause.clone()
        } else {
            format!("{}: {}", self.subject, self.cause)
        }
    }

    /// The exit class.
    pub fn class(&self) -> ExitClass {
        if self.usage {
            return ExitClass::Usage;
        }
        ExitClass::of(self.hresult)
    }

    /// The `--json` document: `{"error": {"hresult", "name", "message"}}`, pretty-printed.
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body {
            hresult: String,
            name: String,
            message: String,
        }
        #[derive(serde::Serialize)]
        struct Doc {
            error: Body,
        }
        let doc = Doc {
            error: Body {
                hresult: self.hex(),
                name: self.name(),
                message: self.message(),
            },
        };
        serde_json::to_string_pretty(&doc)
            .unwrap_or_else(|_| format!("{{\"error\": {{\"hresult\": \"{}\"}}}}", self.hex()))
    }
}

/// `subsystem "lab": VDS_E_OBJECT_STATUS_FAILED (0x80042431): the subsystem is in a failed state`.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.subject.is_empty() {
            write!(f, "{}: ", self.subject)?;
        }
        write!(f, "{} ({}): {}", self.name(), self.hex(), self.cause)
    }
}

/// The cause vdsadm states for a code: worded for this tool where the model's one-line description
/// would mislead an administrator, the model's description otherwise.
fn standard_cause(hr: Hresult) -> String {
    let own = match hr {
        Hresult::VDS_E_OBJECT_STATUS_FAILED => Some("the subsystem is in a failed state"),
        Hresult::VDS_E_PROVIDER_CACHE_CORRUPT => Some(
            "the provider cache is corrupt; run `vdsadm reenumerate` then `vdsadm refresh` to rebuild it",
        ),
        Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS => Some(
            "another vdsadm refresh, reenumerate or subsystem change is running on it; try again when it ends",
        ),
        Hresult::VDS_E_OBJECT_NOT_FOUND => Some("not found"),
        Hresult::VDS_E_OBJECT_DELETED => Some("no longer exists"),
        _ => None,
    };
    match own {
        Some(s) => s.to_string(),
        None => match hr.description() {
            Some(d) => lower_first(d.trim_end_matches('.')),
            None => match hr.win32_code() {
                Some(w) => format!("Win32 error {w}"),
                None => "failed".to_string(),
            },
        },
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Shorthand for command results.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_renders_exactly() {
        let e = CliError::new(
            Hresult::VDS_E_OBJECT_STATUS_FAILED,
            "subsystem \"lab\"",
            Some("127.0.0.1:3260: authentication failure"),
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
        let e = CliError::new(refused, "portal 127.0.0.1:1", None);
        assert_eq!(e.name(), "HRESULT_FROM_WIN32(10061)");
        assert_eq!(e.hex(), "0x8007274D");
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
    }
}
