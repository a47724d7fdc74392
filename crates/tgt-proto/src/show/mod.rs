//! Parsers for the text tgtd answers to `show` requests, one module per grammar, and renderers
//! that write the same text back (for fake servers and round-trip tests).
//!
//! tgtd prints nested sections indented by steps of 4 spaces. Every parser here:
//! - skips lines and keys it does not know (newer tgt versions add some);
//! - returns a [`ShowError`] naming the line for malformed *structure* (a number that does not
//!   parse, a line whose parent header is missing, a value of the wrong form);
//! - never panics, and allocates at most a constant factor of its input: each line adds at most
//!   one entry, and every string is a copy of part of a line.
//!
//! Text comes from outside: callers escape it before printing it to a terminal.

mod accounts;
mod lld;
mod portals;
mod system;
mod targets;

pub use accounts::{parse_accounts, render_accounts};
pub use lld::{Lld, LldTarget, parse_lld};
pub use portals::{PortalEntry, parse_portals, render_portals};
pub use system::{IsnsSettings, SystemInfo, parse_system};
pub use targets::{
    Connection, Lun, Nexus, State, Target, TargetAccount, parse_targets, render_targets,
};

pub use crate::error::{Grammar, ShowError, ShowProblem};

/// Indentation step of tgtd's output.
pub(crate) const INDENT: usize = 4;

/// One non-empty line: its 1-based number, its nesting level (leading spaces / 4) and the text
/// after the indentation (trailing spaces kept, trailing `\r`s dropped).
pub(crate) struct Line<'a> {
    pub number: usize,
    pub level: usize,
    pub text: &'a str,
    pub raw: &'a str,
}

/// The non-empty lines of `text`.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.split('\n').enumerate().filter_map(|(i, raw)| {
        let raw = raw.trim_end_matches('\r');
        let body = raw.trim_start_matches(' ');
        if body.trim().is_empty() {
            return None;
        }
        Some(Line {
            number: i + 1,
            level: (raw.len() - body.len()) / INDENT,
            text: body,
            raw,
        })
    })
}

/// `"Key: value"` → `("Key", "value")`; the value loses one leading space (tgtd prints
/// `"Backing store flags: "` with an empty value, and a trimmed copy lacks even that space).
pub(crate) fn key_value(text: &str) -> Option<(&str, &str)> {
    let (k, v) = text.split_once(':')?;
    Some((k, v.strip_prefix(' ').unwrap_or(v)))
}

/// `Yes`/`No` as tgtd prints booleans.
pub(crate) fn yes_no(v: &str) -> Option<bool> {
    match v.trim() {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

pub(crate) fn err(grammar: Grammar, line: &Line<'_>, problem: ShowProblem) -> ShowError {
    ShowError::new(grammar, line.number, line.raw, problem)
}
