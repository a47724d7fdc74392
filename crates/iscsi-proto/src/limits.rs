//! The limits RFC 7143 (and RFC 3720/3722 before it) puts on what an administrator enters: iSCSI
//! names, CHAP user names and secrets. The session checks them before it sends anything; front ends
//! check the same numbers where the value is typed, so a value accepted once is never refused
//! later. One definition, used everywhere.

use std::fmt;

/// The longest iSCSI name, in bytes of UTF-8 (RFC 7143 §4.2.7.1).
pub const MAX_ISCSI_NAME_LEN: usize = 223;

/// The longest CHAP user name (`CHAP_N`), in bytes (an iSCSI text value, RFC 7143 §6.1).
pub const MAX_CHAP_USER_LEN: usize = 255;

/// The longest CHAP secret, in bytes (the largest binary value a `CHAP_C`/`CHAP_R` exchange
/// handles; RFC 7143 §12.1.3 sets no smaller limit).
pub const MAX_CHAP_SECRET_LEN: usize = 1024;

/// The shortest CHAP secret RFC 7143 §12.1.3 recommends (96 bits): shorter ones are accepted with a
/// warning, as targets accept them.
pub const MIN_RECOMMENDED_CHAP_SECRET_LEN: usize = 12;

/// Why an iSCSI name, CHAP user or secret is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError(pub String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitError {}

/// Checks an iSCSI name: 1 to [`MAX_ISCSI_NAME_LEN`] bytes, no white space or control character,
/// and one of the three forms of RFC 7143 §4.2.7.1: `iqn.YYYY-MM.reversed.domain[:anything]`,
/// `eui.` and 16 hexadecimal digits, or `naa.` and 16 or 32 hexadecimal digits. The type prefix
/// may be in either case.
pub fn check_iscsi_name(name: &str) -> Result<(), LimitError> {
    let bad = |why: &str| Err(LimitError(format!("{name:?} is not an iSCSI name: {why}")));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_ISCSI_NAME_LEN {
        return bad(&format!(
            "it has {} bytes; an iSCSI name has at most {MAX_ISCSI_NAME_LEN}",
            name.len()
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains white space or a control character");
    }
    let lower = name.to_ascii_lowercase();
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = lower.strip_prefix("iqn.") {
        // iqn.YYYY-MM.naming-authority
        let date_ok = rest.len() > 8
            && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && rest.as_bytes()[4] == b'-'
            && rest.as_bytes()[5..7].iter().all(u8::is_ascii_digit)
            && rest.as_bytes()[7] == b'.';
        if !date_ok {
            return bad(
                "an iqn. name goes on with a date and a naming authority: iqn.2026-12.org.example[:...]",
            );
        }
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("eui.") {
        if rest.len() == 16 && hex(rest) {
            return Ok(());
        }
        return bad("an eui. name goes on with 16 hexadecimal digits");
    }
    if let Some(rest) = lower.strip_prefix("naa.") {
        if (rest.len() == 16 || rest.len() == 32) && hex(rest) {
            return Ok(());
        }
        return bad("a naa. name goes on with 16 or 32 hexadecimal digits");
    }
    bad("it must start with iqn., eui. or naa.")
}

/// Checks a CHAP user name: 1 to [`MAX_CHAP_USER_LEN`] bytes, no control character.
pub fn check_chap_user(user: &str) -> Result<(), LimitError> {
    if user.is_empty() || user.len() > MAX_CHAP_USER_LEN {
        return Err(LimitError(format!(
            "a CHAP user name has 1 to {MAX_CHAP_USER_LEN} bytes; this one has {}",
            user.len()
        )));
    }
    if user.chars().any(char::is_control) {
        return Err(LimitError(
            "a CHAP user name cannot contain control characters".into(),
        ));
    }
    Ok(())
}

/// Checks a CHAP secret's length: 1 to [`MAX_CHAP_SECRET_LEN`] bytes.
pub fn check_chap_secret(secret: &[u8]) -> Result<(), LimitError> {
    if secret.is_empty() || secret.len() > MAX_CHAP_SECRET_LEN {
        return Err(LimitError(format!(
            "a CHAP secret has 1 to {MAX_CHAP_SECRET_LEN} bytes; this one has {}",
            secret.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iscsi_names() {
        for ok in [
            "iqn.2026-12.org.example",
            "iqn.2026-12.org.example:disk1",
            "IQN.2026-12.org.example:Disk",
            "eui.02004567A425678D",
            "naa.52004567BA64678D",
            "naa.62004567BA64678D0123456789ABCDEF",
        ] {
            assert!(check_iscsi_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "iqn.",
            "iqn.26-12.x",
            "iqn.2026-1x.org.example",
            "eui.123",
            "naa.1234567",
            "host1",
            "iqn.2026-12.org.example:a b",
            &format!("iqn.2026-12.org.example:{}", "x".repeat(200)),
        ] {
            assert!(check_iscsi_name(bad).is_err(), "{bad}");
        }
        let e = check_iscsi_name(&format!("iqn.2026-12.x:{}", "y".repeat(300))).unwrap_err();
        assert!(e.0.contains("223"), "{e}");
    }

    #[test]
    fn chap_limits() {
        assert!(check_chap_user("u").is_ok());
        assert!(check_chap_user(&"u".repeat(255)).is_ok());
        assert!(check_chap_user(&"u".repeat(256)).is_err());
        assert!(check_chap_user("").is_err());
        assert!(check_chap_secret(&[1; 1024]).is_ok());
        assert!(check_chap_secret(&[1; 1025]).is_err());
        assert!(check_chap_secret(&[]).is_err());
    }
}
