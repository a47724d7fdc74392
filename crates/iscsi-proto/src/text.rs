//! The `key=value\0` text format of Login and Text PDUs (RFC 7143 §6): a decoder that keeps
//! repeated keys in order and names the key and byte offset of anything invalid, a
//! [`TextAccumulator`] that joins the data segments of several PDUs into one byte stream before
//! decoding (tgt splits long answers at raw byte offsets, even with C=0), and an encoder for
//! requests.
//!
//! This module knows no key semantics; see `session` and `address` for those.

use crate::error::ApiMisuse;

/// Longest key name allowed (RFC 7143 §6.1: 63 bytes).
pub const MAX_KEY_LEN: usize = 63;

/// Longest value accepted. RFC 7143 allows 255 bytes for most values but binary CHAP values may
/// take 2 + 2×1024 hex digits, and every implementation must accept 8192 bytes of text.
pub const MAX_VALUE_LEN: usize = 8192;

/// One decoded pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (may be empty).
    pub value: String,
}

/// Why a text segment does not decode; names the key (when known) and the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text at byte {offset}{}: {kind}", key.as_deref().map(|k| format!(" (key {k})")).unwrap_or_default())]
pub struct TextError {
    /// What is wrong.
    pub kind: TextErrorKind,
    /// Byte offset of the start of the offending pair in the decoded stream.
    pub offset: usize,
    /// The key, when it could be read (lossily converted to UTF-8, at most 64 bytes).
    pub key: Option<String>,
}

/// What is wrong with a text pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextErrorKind {
    /// The pair is not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// No `=` in the pair.
    #[error("missing '='")]
    MissingEquals,
    /// `=value` with an empty key.
    #[error("empty key")]
    EmptyKey,
    /// Key longer than [`MAX_KEY_LEN`].
    #[error("key longer than 63 bytes")]
    KeyTooLong,
    /// Value longer than [`MAX_VALUE_LEN`].
    #[error("value longer than 8192 bytes")]
    ValueTooLong,
    /// The last pair has no terminating NUL.
    #[error("last pair is not NUL-terminated")]
    Unterminated,
}

fn lossy_key(bytes: &[u8]) -> String {
    let k = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(k).into_owned()
}

/// Iterates over the `key=value` pairs of a complete text stream, borrowing from it.
///
/// Empty entries (two NULs in a row, or NUL padding) are skipped. The stream must end with NUL
/// (or be empty).
pub fn pairs(data: &[u8]) -> Pairs<'_> {
    // UTF-8 is validated once for the whole stream. NUL and '=' are ASCII, so every key and
    // value that lies inside the valid prefix is valid on its own; only a pair reaching past it
    // is checked again, which yields the same error (kind, offset, key) as checking each pair.
    let valid = match core::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    Pairs {
        data,
        valid,
        pos: 0,
    }
}

/// Iterator returned by [`pairs`].
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    data: &'a [u8],
    /// The longest valid UTF-8 prefix of `data`.
    valid: &'a str,
    pos: usize,
}

/// Index of the first byte of `hay` that is NUL, or also `=` when `stop_at_eq` (memchr's
/// vectorised search: SendTargets answers are mostly long values).
///
/// On x86_64 memchr's SSE2 searchers, which need no CPU feature detection: SSE2 is part of
/// x86_64. `memchr::memchr2` asks the CPU for AVX2 on its first call, and under a hypervisor each
/// of the nine `CPUID`s that takes is a VM exit (0.08 ms of every `vdsadm discover`,
/// docs/PERFORMANCE.md). The values searched are tens of bytes, where SSE2 is as fast.
#[inline(always)]
fn scan(hay: &[u8], stop_at_eq: bool) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use memchr::arch::x86_64::sse2::memchr::{One, Two};
        if stop_at_eq {
            if let Some(two) = Two::new(0, b'=') {
                return two.find(hay);
            }
        } else if let Some(one) = One::new(0) {
            return one.find(hay);
        }
    }
    if stop_at_eq {
        memchr::memchr2(0, b'=', hay)
    } else {
        memchr::memchr(0, hay)
    }
}

impl<'a> Pairs<'a> {
    /// `data[start..end]` as text, without validating again when it lies in the valid prefix.
    fn text(&self, start: usize, end: usize) -> Option<&'a str> {
        if end <= self.valid.len() {
            self.valid.get(start..end)
        } else {
            core::str::from_utf8(self.data.get(start..end)?).ok()
        }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a str, &'a str), TextError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.data.get(self.pos..)?;
            if rest.is_empty() {
                return None;
            }
            let offset = self.pos;
            let err = |kind, key: Option<&[u8]>| {
                Some(Err(TextError {
                    kind,
                    offset,
                    key: key.map(lossy_key),
                }))
            };
            // The first NUL or '=' of the entry: a NUL first means an empty entry (skipped)
            // or an entry without '='.
            let eq = match scan(rest, true) {
                Some(0) if rest[0] == 0 => {
                    self.pos += 1;
                    continue;
                }
                Some(i) if rest[i] == b'=' => i,
                Some(i) => {
                    self.pos = self.data.len();
                    return err(TextErrorKind::MissingEquals, Some(&rest[..i]));
                }
                None => {
                    self.pos = self.data.len();
                    return err(TextErrorKind::MissingEquals, Some(rest));
                }
            };
            let k = &rest[..eq];
            let Some(vlen) = scan(&rest[eq + 1..], false) else {
                self.pos = self.data.len();
                return err(TextErrorKind::Unterminated, Some(k));
            };
            self.pos += eq + 1 + vlen + 1;
            if k.is_empty() {
                self.pos = self.data.len();
                return err(TextErrorKind::EmptyKey, None);
            }
            if k.len() > MAX_KEY_LEN {
                self.pos = self.data.len();
                return err(TextErrorKind::KeyTooLong, Some(k));
            }
            if vlen > MAX_VALUE_LEN {
                self.pos = self.data.len();
                return err(TextErrorKind::ValueTooLong, Some(k));
            }
            let (Some(ks), Some(vs)) = (
                self.text(offset, offset + eq),
                self.text(offset + eq + 1, offset + eq + 1 + vlen),
            ) else {
                self.pos = self.data.len();
                return err(TextErrorKind::NotUtf8, Some(k));
            };
            return Some(Ok((ks, vs)));
        }
    }
}

/// Decodes a complete text stream into owned pairs, in order, repeated keys kept.
pub fn decode(data: &[u8]) -> Result<Vec<KeyValue>, TextError> {
    pairs(data)
        .map(|r| {
            r.map(|(k, v)| KeyValue {
                key: k.to_owned(),
                value: v.to_owned(),
            })
        })
        .collect()
}

/// Returns the value of the first pair with `key`, if any.
pub fn find<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

/// Joins the data segments of the PDUs of one exchange into one byte stream, up to a cap.
#[derive(Debug, Clone, Default)]
pub struct TextAccumulator {
    buf: Vec<u8>,
}

impl TextAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one PDU's data segment. Returns `false` (and appends nothing) when the total
    /// would exceed `cap` bytes.
    pub fn push(&mut self, segment: &[u8], cap: usize) -> bool {
        if self.buf.len().saturating_add(segment.len()) > cap {
            return false;
        }
        self.buf.extend_from_slice(segment);
        true
    }

    /// Bytes accumulated so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was accumulated.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The raw stream.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Decodes the whole stream.
    pub fn decode(&self) -> Result<Vec<KeyValue>, TextError> {
        decode(&self.buf)
    }
}

/// Builds the text of a request, validating every key and value.
#[derive(Debug, Clone, Default)]
pub struct TextWriter {
    buf: Vec<u8>,
}

impl TextWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `key=value\0`. The key must be 1..=63 bytes of `[A-Za-z0-9.\-+@_]`; the value
    /// must not contain NUL and must be at most [`MAX_VALUE_LEN`] bytes.
    pub fn push(&mut self, key: &str, value: &str) -> Result<&mut Self, ApiMisuse> {
        let bad = |why| ApiMisuse::BadText {
            key: key.chars().take(64).collect(),
            why,
        };
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(bad("key longer than 63 bytes"));
        }
        if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+@_".contains(&b))
        {
            return Err(bad("key has characters outside [A-Za-z0-9.-+@_]"));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(bad("value longer than 8192 bytes"));
        }
        if value.bytes().any(|b| b == 0) {
            return Err(bad("value contains NUL"));
        }
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'=');
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        Ok(self)
    }

    /// The encoded bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Finishes and returns the encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Encodes pairs in order; see [`TextWriter::push`] for the rules.
pub fn encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<Vec<u8>, ApiMisuse> {
    let mut w = TextWriter::new();
    for (k, v) in pairs {
        w.push(k.as_ref(), v.as_ref())?;
    }
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_in_order_with_repeats() {
        let d = b"TargetName=a\0TargetAddress=1.2.3.4:3260,1\0TargetAddress=[::1],2\0";
        let kv = decode(d).unwrap();
        assert_eq!(kv.len(), 3);
        assert_eq!(kv[1].value, "1.2.3.4:3260,1");
        assert_eq!(kv[2].key, "TargetAddress");
        assert_eq!(find(&kv, "TargetAddress"), Some("1.2.3.4:3260,1"));
    }

    #[test]
    fn empty_value_and_padding_nuls() {
        let kv = decode(b"SendTargets=\0\0\0").unwrap();
        assert_eq!(
            kv,
            vec![KeyValue {
                key: "SendTargets".into(),
                value: String::new()
            }]
        );
        assert!(decode(b"").unwrap().is_empty());
    }

    #[test]
    fn value_with_equals_is_kept_whole() {
        let kv = decode(b"CHAP_C=0bAAA=\0").unwrap();
        assert_eq!(kv[0].value, "0bAAA=");
    }

    #[test]
    fn errors_name_key_and_offset() {
        let e = decode(b"A=1\0TargetName=\xff\xfe\0").unwrap_err();
        assert_eq!(e.kind, TextErrorKind::NotUtf8);
        assert_eq!(e.offset, 4);
        assert_eq!(e.key.as_deref(), Some("TargetName"));
        assert!(e.to_string().contains("TargetName"));

        let e = decode(b"A=1\0novalue\0").unwrap_err();
        assert_eq!((e.kind, e.offset), (TextErrorKind::MissingEquals, 4));
        let e = decode(b"=x\0").unwrap_err();
        assert_eq!(e.kind, TextErrorKind::EmptyKey);
        let e = decode(b"A=1\0B=2").unwrap_err();
        assert_eq!(
            (e.kind, e.offset, e.key.as_deref()),
            (TextErrorKind::Unterminated, 4, Some("B"))
        );
        let long_key = format!("{}=1\0", "k".repeat(64));
        assert_eq!(
            decode(long_key.as_bytes()).unwrap_err().kind,
            TextErrorKind::KeyTooLong
        );
        let long_val = format!("K={}\0", "v".repeat(8193));
        assert_eq!(
            decode(long_val.as_bytes()).unwrap_err().kind,
            TextErrorKind::ValueTooLong
        );
    }

    #[test]
    fn utf8_error_after_a_long_valid_prefix_names_its_pair() {
        // Many valid pairs (multi-byte text included) before the bad one; the error still names
        // the pair's offset and key, and bad bytes in a later pair do not hide earlier errors.
        let mut d = Vec::new();
        for i in 0..50 {
            d.extend_from_slice(format!("TargetName=iqn.é-{i}\0").as_bytes());
        }
        let bad_at = d.len();
        d.extend_from_slice(b"TargetAlias=ok\xc3\0Next=\xff\0");
        let e = decode(&d).unwrap_err();
        assert_eq!(
            (e.kind, e.offset, e.key.as_deref()),
            (TextErrorKind::NotUtf8, bad_at, Some("TargetAlias"))
        );
        let e = decode(b"K\xff=v\0").unwrap_err();
        assert_eq!(
            (e.kind, e.key.as_deref()),
            (TextErrorKind::NotUtf8, Some("K\u{fffd}"))
        );
        let e = decode(b"A=1\0B=\xff").unwrap_err();
        assert_eq!((e.kind, e.offset), (TextErrorKind::Unterminated, 4));
        let e = decode(b"A=1\0\xffnoequals\0").unwrap_err();
        assert_eq!((e.kind, e.offset), (TextErrorKind::MissingEquals, 4));
        let kv = decode("Ké=vé=x\0\0Long=0123456789abcdef0123\0".as_bytes()).unwrap();
        assert_eq!(kv[0].key, "Ké");
        assert_eq!(kv[0].value, "vé=x");
        assert_eq!(kv[1].value, "0123456789abcdef0123");
    }

    #[test]
    fn accumulator_joins_split_pairs_and_caps() {
        let mut acc = TextAccumulator::new();
        assert!(acc.push(b"TargetName=iqn.2026-11", 100));
        assert!(acc.push(b".test.vds:big008\0TargetAddress=127.0.0.3:3260,1\0", 100));
        let kv = acc.decode().unwrap();
        assert_eq!(kv[0].value, "iqn.2026-11.test.vds:big008");
        assert!(!acc.push(&[0u8; 60], 100));
        assert_eq!(acc.len(), 70);
    }

    #[test]
    fn writer_validates() {
        let v = encode(&[("SendTargets", "All"), ("InitiatorName", "iqn.x")]).unwrap();
        assert_eq!(v, b"SendTargets=All\0InitiatorName=iqn.x\0");
        assert!(encode(&[("", "x")]).is_err());
        assert!(encode(&[("a=b", "x")]).is_err());
        assert!(encode(&[("a", "x\0")]).is_err());
    }
}
