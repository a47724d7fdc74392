//! The key=value codec: decoding never panics; whatever decodes re-encodes and decodes the same.
#![no_main]

use iscsi_proto::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = text::decode(data) else {
        return;
    };
    let Ok(encoded) = text::encode(
        &pairs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect::<Vec<_>>(),
    ) else {
        // Keys the decoder accepts but the (stricter) encoder refuses, e.g. with spaces.
        return;
    };
    assert_eq!(text::decode(&encoded).expect("re-decode"), pairs);
    let _ = iscsi_proto::address::parse_send_targets(&pairs);
});
