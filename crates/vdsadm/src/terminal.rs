//! Text from outside is untrusted all the way to the terminal: an array, a configuration file or a
//! cache controls target names, aliases, details and the values quoted in error messages, and a raw
//! ESC, OSC or bidirectional override in them would act on the administrator's terminal (colour,
//! window title, text that reads backwards). Every human-readable output goes through
//! [`escape`]: control characters (C0, DEL, C1) and the invisible format characters (bidirectional
//! controls, zero-width and other Unicode `Cf` characters) are shown as `\x1b` or `\u{202e}`, as `ls`
//! and git quote file names. JSON output is not escaped here: JSON escapes control characters itself
//! and a program reading it wants the exact string.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that must not reach a terminal as it is.
pub fn is_hazard(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7f..=0x9f).contains(&u)
        || matches!(
            u,
            0x00ad
                | 0x0600..=0x0605
                | 0x061c
                | 0x06dd
                | 0x070f
                | 0x08e2
                | 0x180e
                | 0x200b..=0x200f
                | 0x2028..=0x202e
                | 0x2060..=0x2064
                | 0x2066..=0x206f
                | 0xfeff
                | 0xfff9..=0xfffb
                | 0x110bd
                | 0x110cd
                | 0x13430..=0x1343f
                | 0x1bca0..=0x1bca3
                | 0x1d173..=0x1d17a
                | 0xe0001
                | 0xe0020..=0xe007f
        )
}

/// `s` with every hazard (see the module documentation) shown as an escape; `keep_newlines` keeps
/// `\n` as it is (for whole multi-line outputs whose layout is ours).
pub fn escape_with(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let hazard = |c: char| is_hazard(c) && !(keep_newlines && c == '\n');
    // Printable ASCII (what nearly every output is) holds no hazard: checked 64 bytes at a time
    // without a branch per byte (which the compiler vectorizes), before any character is decoded.
    let plain = |b: u8| (0x20..0x7f).contains(&b) | (keep_newlines & (b == b'\n'));
    let all_plain = s
        .as_bytes()
        .chunks(64)
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & plain(b)));
    if all_plain || !s.chars().any(hazard) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hazard(c) {
            if (c as u32) < 0x100 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` for one line or one table cell: every hazard escaped, line ends included.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, false)
}

/// A writer for the logs (`-v`): what tracing writes reaches stderr escaped, line ends kept.
pub struct EscapingStderr;

impl std::io::Write for EscapingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(escape_with(&text, true).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hazards_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape("plain text, é, 日本"), Cow::Borrowed(_)));
        assert_eq!(escape("a\u{1b}]0;title\u{7}b"), "a\\x1b]0;title\\x07b");
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m");
        assert_eq!(escape("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(escape("tab\there\nline"), "tab\\x09here\\x0aline");
        assert_eq!(escape_with("two\nlines\u{1b}", true), "two\nlines\\x1b");
        assert_eq!(escape("\u{7f}"), "\\x7f");
    }
}
