//! The one error type of vds: an [`Hresult`] (which decides behaviour and exit codes), the object it
//! concerns ([`Subject`]) and, when known, the cause (why, for people).
//!
//! Every layer fails with an [`Error`]: the model, the provider backends, the service and the front
//! ends. Two errors compare equal when their codes are equal, and an `Error` converts into its
//! `Hresult`, so code that only cares about the VDS result keeps working with codes. The message an
//! administrator reads is composed in one place, [`Error::message`] (and `Display`, which adds the
//! code): `subsystem "lab": the subsystem is in a failed state: 127.0.0.1:3260: authentication
//! failure`. A cause never contains a secret.

use std::fmt;

use crate::Hresult;

/// What an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// A provider, by name.
    Provider(String),
    /// A subsystem, by its key (its configured name, an iSNS entity id, …).
    Subsystem(String),
    /// A portal of a subsystem, by address (`127.0.0.1:3260`, `[::1]:3260`).
    Portal {
        /// The subsystem's key.
        subsystem: String,
        /// The portal's address and port.
        portal: String,
    },
    /// A target of a subsystem, by iSCSI name.
    Target {
        /// The subsystem's key.
        subsystem: String,
        /// The target's iSCSI name.
        target: String,
    },
    /// A portal group of a target, by tag.
    PortalGroup {
        /// The subsystem's key.
        subsystem: String,
        /// The target's iSCSI name.
        target: String,
        /// The group's tag.
        tag: u16,
    },
    /// A provider's cache.
    ProviderCache,
    /// The configuration.
    Configuration,
    /// Anything else, already in words (`CHAP secret file /root/x`, `store /var/lib/vds`).
    Other(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Provider(name) => write!(f, "provider {name:?}"),
            Subject::Subsystem(name) => write!(f, "subsystem {name:?}"),
            Subject::Portal { subsystem, portal } => {
                write!(f, "portal {portal} of subsystem {subsystem:?}")
            }
            Subject::Target { subsystem, target } => {
                write!(f, "target {target:?} of subsystem {subsystem:?}")
            }
            Subject::PortalGroup {
                subsystem,
                target,
                tag,
            } => write!(
                f,
                "portal group {tag} of target {target:?} of subsystem {subsystem:?}"
            ),
            Subject::ProviderCache => f.write_str("provider cache"),
            Subject::Configuration => f.write_str("configuration"),
            Subject::Other(words) => f.write_str(words),
        }
    }
}

/// A failure: its code, what it concerns, and why. See the module documentation.
#[derive(Clone)]
pub struct Error {
    code: Hresult,
    subject: Option<Subject>,
    cause: Option<String>,
}

impl Error {
    /// An error with `code` and nothing else known yet.
    pub fn new(code: Hresult) -> Error {
        Error {
            code,
            subject: None,
            cause: None,
        }
    }

    /// The same error about `subject` (replacing any subject it had).
    #[must_use]
    pub fn about(mut self, subject: Subject) -> Error {
        self.subject = Some(subject);
        self
    }

    /// The same error about `subject`, unless it already names one (an inner layer knew better).
    #[must_use]
    pub fn about_if_unset(mut self, subject: Subject) -> Error {
        if self.subject.is_none() {
            self.subject = Some(subject);
        }
        self
    }

    /// The same error with `cause` added (after any cause it had, separated by `": "`).
    #[must_use]
    pub fn because(mut self, cause: impl Into<String>) -> Error {
        let cause = cause.into();
        if cause.is_empty() {
            return self;
        }
        self.cause = Some(match self.cause.take() {
            Some(before) => format!("{before}: {cause}"),
            None => cause,
        });
        self
    }

    /// The code.
    pub fn code(&self) -> Hresult {
        self.code
    }

    /// What the error is about, when known.
    pub fn subject(&self) -> Option<&Subject> {
        self.subject.as_ref()
    }

    /// Why, when known (without the code's standard wording).
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// The code's symbolic name (`VDS_E_OBJECT_DELETED`), or `HRESULT_FROM_WIN32(n)`, or the hex
    /// value for a code without a name.
    pub fn code_name(&self) -> String {
        match (self.code.name(), self.code.win32_code()) {
            (Some(name), _) => name.to_string(),
            (None, Some(w)) => format!("HRESULT_FROM_WIN32({w})"),
            (None, None) => self.code_hex(),
        }
    }

    /// The code in hex as documentation writes it: `0x80042431`.
    pub fn code_hex(&self) -> String {
        format!("0x{:08X}", self.code.code())
    }

    /// The standard words for the code followed by the cause:
    /// `the subsystem is in a failed state: 127.0.0.1:3260: authentication failure`.
    pub fn explanation(&self) -> String {
        let mut out = standard_words(self.code);
        if let Some(cause) = &self.cause {
            out.push_str(": ");
            out.push_str(cause);
        }
        out
    }

    /// The message without the code: `subsystem "lab": ` and the [explanation](Self::explanation).
    pub fn message(&self) -> String {
        match &self.subject {
            Some(subject) => format!("{subject}: {}", self.explanation()),
            None => self.explanation(),
        }
    }
}

/// The standard words for a code: worded for an administrator where the one-line description of the
/// reference would mislead (naming the `vdsadm` command that helps, the project's one tool), the
/// description otherwise.
fn standard_words(hr: Hresult) -> String {
    let own = match hr {
        Hresult::VDS_E_OBJECT_STATUS_FAILED => Some("the subsystem is in a failed state"),
        Hresult::VDS_E_PROVIDER_CACHE_CORRUPT => Some(
            "the provider cache is corrupt; run `vdsadm reenumerate` then `vdsadm refresh` to \
             rebuild it",
        ),
        Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS => {
            Some("another refresh, reenumerate or change is running on it; try again when it ends")
        }
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

/// `subsystem "lab": VDS_E_OBJECT_STATUS_FAILED (0x80042431): the subsystem is in a failed state: …`
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        write!(
            f,
            "{} ({}): {}",
            self.code_name(),
            self.code_hex(),
            self.explanation()
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({self})")
    }
}

impl std::error::Error for Error {}

/// Errors compare by code: the subject and cause are for people.
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.code == other.code
    }
}

impl Eq for Error {}

impl PartialEq<Hresult> for Error {
    fn eq(&self, other: &Hresult) -> bool {
        self.code == *other
    }
}

impl PartialEq<Error> for Hresult {
    fn eq(&self, other: &Error) -> bool {
        *self == other.code
    }
}

impl From<Hresult> for Error {
    fn from(code: Hresult) -> Error {
        Error::new(code)
    }
}

impl From<Error> for Hresult {
    fn from(e: Error) -> Hresult {
        e.code
    }
}

impl From<&Error> for Hresult {
    fn from(e: &Error) -> Hresult {
        e.code
    }
}

/// `io::Error` → the Win32 code Windows would have reported, with the OS message as the cause.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(Hresult::from_io_error(&e)).because(e.to_string())
    }
}

/// `Result<T, Error>` → `Result<T, Hresult>`, for code (and tests) that only compare codes.
pub trait ResultExt<T> {
    /// The result with the error reduced to its code.
    fn hresult(self) -> Result<T, Hresult>;
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn hresult(self) -> Result<T, Hresult> {
        self.map_err(|e| e.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_composed_in_one_place() {
        let e = Error::new(Hresult::VDS_E_OBJECT_STATUS_FAILED)
            .about(Subject::Subsystem("lab".into()))
            .because("127.0.0.1:3260: authentication failure");
        assert_eq!(
            e.to_string(),
            "subsystem \"lab\": VDS_E_OBJECT_STATUS_FAILED (0x80042431): the subsystem is in a \
             failed state: 127.0.0.1:3260: authentication failure"
        );
        assert_eq!(
            e.message(),
            "subsystem \"lab\": the subsystem is in a failed state: 127.0.0.1:3260: \
             authentication failure"
        );
        let refused = Error::new(Hresult::from_win32(10061));
        assert_eq!(refused.code_name(), "HRESULT_FROM_WIN32(10061)");
        assert_eq!(refused.code_hex(), "0x8007274D");
    }

    #[test]
    fn errors_compare_and_convert_by_code() {
        let a = Error::new(Hresult::VDS_E_OBJECT_DELETED).because("one");
        let b = Error::new(Hresult::VDS_E_OBJECT_DELETED).about(Subject::ProviderCache);
        assert_eq!(a, b);
        assert_eq!(a, Hresult::VDS_E_OBJECT_DELETED);
        assert_eq!(Hresult::from(a.clone()), Hresult::VDS_E_OBJECT_DELETED);
        let r: Result<(), Error> = Err(a);
        assert_eq!(r.hresult(), Err(Hresult::VDS_E_OBJECT_DELETED));
    }

    #[test]
    fn causes_accumulate_and_subjects_keep_the_innermost() {
        let e = Error::new(Hresult::E_INVALIDARG)
            .because("first")
            .because("")
            .because("second")
            .about_if_unset(Subject::Configuration)
            .about_if_unset(Subject::ProviderCache);
        assert_eq!(e.cause(), Some("first: second"));
        assert_eq!(e.subject(), Some(&Subject::Configuration));
        let names = Subject::PortalGroup {
            subsystem: "a\u{1b}".into(),
            target: "iqn.x".into(),
            tag: 2,
        };
        // Names are quoted with Rust's escapes, so a control character never reaches a terminal raw.
        assert_eq!(
            names.to_string(),
            "portal group 2 of target \"iqn.x\" of subsystem \"a\\u{1b}\""
        );
    }
}
