//! CHAP for iSCSI (RFC 7143 §12.1.3, RFC 1994): the response hash
//! `H(CHAP_I ‖ secret ‖ challenge)` for MD5 (5), SHA-1 (6), SHA-256 (7) and SHA3-256 (8), the
//! binary value encodings (`0x` hex in either case, `0b` base64), and the credential types whose
//! secrets are zeroed on drop and never printed by `Debug`.
//!
//! The session state machine decides *when* to use these; this module only computes.

use core::fmt;

use base64::Engine as _;

/// Largest binary CHAP value accepted (challenge or response), in bytes (RFC 7143 §12.1.3).
pub const MAX_BINARY_LEN: usize = 1024;

/// A CHAP algorithm (IANA "PPP Authentication Algorithms" values used by iSCSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChapAlgorithm {
    /// 5: MD5.
    Md5,
    /// 6: SHA-1.
    Sha1,
    /// 7: SHA-256.
    Sha256,
    /// 8: SHA3-256.
    Sha3_256,
}

impl ChapAlgorithm {
    /// The number used in `CHAP_A`.
    pub fn code(self) -> u8 {
        match self {
            ChapAlgorithm::Md5 => 5,
            ChapAlgorithm::Sha1 => 6,
            ChapAlgorithm::Sha256 => 7,
            ChapAlgorithm::Sha3_256 => 8,
        }
    }

    /// The algorithm for a `CHAP_A` number.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            5 => Some(ChapAlgorithm::Md5),
            6 => Some(ChapAlgorithm::Sha1),
            7 => Some(ChapAlgorithm::Sha256),
            8 => Some(ChapAlgorithm::Sha3_256),
            _ => None,
        }
    }

    /// Length of the response in bytes.
    pub fn output_len(self) -> usize {
        match self {
            ChapAlgorithm::Md5 => 16,
            ChapAlgorithm::Sha1 => 20,
            ChapAlgorithm::Sha256 | ChapAlgorithm::Sha3_256 => 32,
        }
    }

    /// Computes `H(id ‖ secret ‖ challenge)`.
    pub fn response(self, id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
        fn run<D: md5::Digest>(id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
            let mut h = D::new();
            h.update([id]);
            h.update(secret);
            h.update(challenge);
            h.finalize().to_vec()
        }
        match self {
            ChapAlgorithm::Md5 => run::<md5::Md5>(id, secret, challenge),
            ChapAlgorithm::Sha1 => run::<sha1::Sha1>(id, secret, challenge),
            ChapAlgorithm::Sha256 => run::<sha2::Sha256>(id, secret, challenge),
            ChapAlgorithm::Sha3_256 => run::<sha3::Sha3_256>(id, secret, challenge),
        }
    }
}

/// A CHAP value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {key} value: {reason}")]
pub struct ChapValueError {
    /// The key (`CHAP_C`, `CHAP_R`, `CHAP_I`, `CHAP_A`).
    pub key: &'static str,
    /// What is wrong.
    pub reason: &'static str,
}

/// Decodes a binary CHAP value: `0x`/`0X` + hex (either case, odd length allowed with an
/// implied leading zero) or `0b`/`0B` + base64. At most [`MAX_BINARY_LEN`] bytes, at least one.
pub fn decode_binary(key: &'static str, value: &str) -> Result<Vec<u8>, ChapValueError> {
    let err = |reason| ChapValueError { key, reason };
    let bytes = if let Some(h) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        if h.len() > 2 * MAX_BINARY_LEN {
            return Err(err("longer than 1024 bytes"));
        }
        if h.len() % 2 == 1 {
            let mut padded = String::with_capacity(h.len() + 1);
            padded.push('0');
            padded.push_str(h);
            hex::decode(padded).map_err(|_| err("bad hex digits"))?
        } else {
            hex::decode(h).map_err(|_| err("bad hex digits"))?
        }
    } else if let Some(b) = value
        .strip_prefix("0b")
        .or_else(|| value.strip_prefix("0B"))
    {
        if b.len() > 4 * MAX_BINARY_LEN.div_ceil(3) {
            return Err(err("longer than 1024 bytes"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|_| err("bad base64"))?
    } else {
        return Err(err("neither 0x (hex) nor 0b (base64) encoded"));
    };
    if bytes.is_empty() {
        return Err(err("empty"));
    }
    if bytes.len() > MAX_BINARY_LEN {
        return Err(err("longer than 1024 bytes"));
    }
    Ok(bytes)
}

/// Encodes binary as `0x` + lower-case hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    s.push_str(&hex::encode(bytes));
    s
}

/// Parses `CHAP_I` (a decimal number 0..=255; hex `0x..` is tolerated).
pub fn parse_identifier(value: &str) -> Result<u8, ChapValueError> {
    let err = ChapValueError {
        key: "CHAP_I",
        reason: "not a number in 0..=255",
    };
    if let Some(h) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        return u8::from_str_radix(h, 16).map_err(|_| err);
    }
    if value.is_empty() || value.len() > 3 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err);
    }
    value.parse::<u8>().map_err(|_| err)
}

pub use vds_secret::Secret;

/// A CHAP user name and secret. There is no `PartialEq`: secrets are not compared byte by byte.
#[derive(Clone)]
pub struct ChapCredentials {
    /// The name sent as (or expected in) `CHAP_N`.
    pub user: String,
    /// The secret.
    pub secret: Secret,
}

impl ChapCredentials {
    /// Builds credentials.
    pub fn new(user: impl Into<String>, secret: impl Into<Secret>) -> Self {
        ChapCredentials {
            user: user.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for ChapCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChapCredentials")
            .field("user", &self.user)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest as _;

    /// The exchange captured against tgtd in `chap-discovery.pcap` (decoded in
    /// `chap-discovery-decoded.txt`).
    #[test]
    fn tgtd_capture_vector_md5() {
        let c = decode_binary(
            "CHAP_C",
            "0xc744cadb41ffa9c579e8cb70eef6c2aa1e436f4338fc2b3b77c40f793c824fc126252b910bd30b0e5810f552821ce1f363be",
        )
        .unwrap();
        assert_eq!(c.len(), 50);
        let id = parse_identifier("4").unwrap();
        let r = ChapAlgorithm::Md5.response(id, b"discpass12345", &c);
        let expected = decode_binary("CHAP_R", "0x9682D8C16E683EFB2F9422727F61F907").unwrap();
        assert_eq!(r, expected);
        // The second capture used the wrong password "wrongpass123".
        let c2 = decode_binary(
            "CHAP_C",
            "0x4d437351e1ae421633cc1d33d459892753815b705d343de3f17a9c2fa28dbaaabbecca1eb1c39a0adebd3668264f6ec73f35",
        )
        .unwrap();
        let r2 = ChapAlgorithm::Md5.response(5, b"wrongpass123", &c2);
        assert_eq!(encode_hex(&r2), "0x74d7a32d66bc522bb7caf0322d113a1d");
    }

    #[test]
    fn other_algorithms_have_their_lengths() {
        for (alg, code) in [
            (ChapAlgorithm::Md5, 5),
            (ChapAlgorithm::Sha1, 6),
            (ChapAlgorithm::Sha256, 7),
            (ChapAlgorithm::Sha3_256, 8),
        ] {
            assert_eq!(alg.code(), code);
            assert_eq!(ChapAlgorithm::from_code(code), Some(alg));
            assert_eq!(alg.response(1, b"s", b"c").len(), alg.output_len());
        }
        // SHA-256 of 0x01 "s" "c" computed independently: H(b"\x01sc").
        let direct = sha2::Sha256::digest(b"\x01sc").to_vec();
        assert_eq!(ChapAlgorithm::Sha256.response(1, b"s", b"c"), direct);
        assert_eq!(ChapAlgorithm::from_code(9), None);
    }

    #[test]
    fn binary_encodings() {
        assert_eq!(decode_binary("CHAP_C", "0xABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(decode_binary("CHAP_C", "0XabC").unwrap(), vec![0x0a, 0xbc]);
        assert_eq!(decode_binary("CHAP_C", "0bAQID").unwrap(), vec![1, 2, 3]);
        assert!(decode_binary("CHAP_C", "abcd").is_err());
        assert!(decode_binary("CHAP_C", "0x").is_err());
        assert!(decode_binary("CHAP_C", "0xzz").is_err());
        assert!(decode_binary("CHAP_C", "0b***").is_err());
        let max = format!("0x{}", "ab".repeat(1024));
        assert_eq!(decode_binary("CHAP_C", &max).unwrap().len(), 1024);
        let over = format!("0x{}", "ab".repeat(1025));
        assert!(decode_binary("CHAP_C", &over).is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 1024]);
        assert_eq!(
            decode_binary("CHAP_C", &format!("0b{b64}")).unwrap().len(),
            1024
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 1025]);
        assert!(decode_binary("CHAP_C", &format!("0b{b64}")).is_err());
    }

    #[test]
    fn identifier() {
        assert_eq!(parse_identifier("0").unwrap(), 0);
        assert_eq!(parse_identifier("255").unwrap(), 255);
        assert_eq!(parse_identifier("0x1f").unwrap(), 31);
        assert!(parse_identifier("256").is_err());
        assert!(parse_identifier("").is_err());
        assert!(parse_identifier("-1").is_err());
    }

    #[test]
    fn secret_is_redacted() {
        let c = ChapCredentials::new("discuser", "discpass12345");
        let dbg = format!("{c:?}");
        assert!(dbg.contains("discuser"));
        assert!(!dbg.contains("discpass"));
        assert_eq!(c.secret.expose(), b"discpass12345");
    }
}
