//! The whole discovery session fed arbitrary bytes, in arbitrary chunks, with or without CHAP:
//! it must never panic, and once it failed it must stay failed.
#![no_main]

use iscsi_proto::session::{DiscoverySession, SessionConfig, SessionSeed};
use iscsi_proto::{ChapAlgorithm, ChapCredentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut config = SessionConfig::new("iqn.2026-11.org.vds:fuzz");
    if mode & 1 != 0 {
        config.chap = Some(ChapCredentials::new("user", "secret-secret"));
        config.chap_algorithms = vec![ChapAlgorithm::Md5, ChapAlgorithm::Sha256];
    }
    if mode & 2 != 0 {
        config.mutual = config
            .chap
            .clone()
            .map(|_| ChapCredentials::new("target", "tsecret-tsecret"));
    }
    if mode & 4 != 0 {
        config.max_recv_data_segment_length = 512;
    }
    config.max_pdus = 64;
    let seed = SessionSeed {
        isid: [0x80, 0, 0, 0, 0, 0],
        itt: 1,
        cmd_sn: 1,
        chap_identifier: 1,
        chap_challenge: [7; 32],
    };
    let Ok(mut s) = DiscoverySession::new(config, seed) else {
        return;
    };
    let chunk = usize::from(mode >> 3).max(1) * 7;
    let mut failed = false;
    for c in rest.chunks(chunk) {
        let _ = s.poll_transmit();
        if s.handle_bytes(c).is_err() {
            failed = true;
            break;
        }
        while s.poll_event().is_some() {}
    }
    if failed {
        assert!(s.handle_bytes(b"x").is_err());
    } else {
        let _ = s.handle_eof();
    }
});
