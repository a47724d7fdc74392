//! Property tests: Repr emit→parse, TargetAddress format→parse, text encode→decode, and the
//! session never panicking on arbitrary bytes.

use iscsi_proto::session::{DiscoverySession, SessionConfig, SessionSeed};
use iscsi_proto::text;
use iscsi_proto::wire::{
    AsyncEvent, AsyncMessage, LoginRequest, LoginResponse, LogoutReason, LogoutRequest,
    LogoutResponse, NopIn, NopOut, Packet, Reject, RejectReason, Repr, Stage, TextRequest,
    TextResponse,
};
use iscsi_proto::{Host, TargetAddress};
use proptest::prelude::*;

/// Random field values; `build` turns them into one PDU of kind `k`.
type Fields = (
    (bool, bool, bool),
    (u8, u8, u8, u8),
    (u16, u16, u16),
    (u32, u32, u32, u32, u32),
    u64,
    [u8; 6],
);

fn build<'a>(k: u8, f: &Fields, data: &'a [u8]) -> Repr<'a> {
    let ((b1, b2, b3), (x1, x2, x3, x4), (h1, h2, h3), (w1, w2, w3, w4, w5), lun, isid) = *f;
    let (csg, nsg) = (Stage::from(x3), Stage::from(x4));
    match k % 11 {
        0 => Repr::LoginRequest(LoginRequest {
            transit: b1,
            cont: b2,
            csg,
            nsg,
            version_max: x1,
            version_min: x2,
            isid,
            tsih: h1,
            itt: w1,
            cid: h2,
            cmd_sn: w2,
            exp_stat_sn: w3,
            data,
        }),
        1 => Repr::LoginResponse(LoginResponse {
            transit: b1,
            cont: b2,
            csg,
            nsg,
            version_max: x1,
            version_active: x2,
            isid,
            tsih: h1,
            itt: w1,
            stat_sn: w2,
            exp_cmd_sn: w3,
            max_cmd_sn: w4,
            status_class: x3,
            status_detail: x4,
            data,
        }),
        2 => Repr::TextRequest(TextRequest {
            immediate: b1,
            final_: b2,
            cont: b3,
            lun,
            itt: w1,
            ttt: w2,
            cmd_sn: w3,
            exp_stat_sn: w4,
            data,
        }),
        3 => Repr::TextResponse(TextResponse {
            final_: b1,
            cont: b2,
            lun,
            itt: w1,
            ttt: w2,
            stat_sn: w3,
            exp_cmd_sn: w4,
            max_cmd_sn: w5,
            data,
        }),
        4 => Repr::LogoutRequest(LogoutRequest {
            immediate: b1,
            reason: LogoutReason::from(x1),
            itt: w1,
            cid: h1,
            cmd_sn: w2,
            exp_stat_sn: w3,
        }),
        5 => Repr::LogoutResponse(LogoutResponse {
            response: x1,
            itt: w1,
            stat_sn: w2,
            exp_cmd_sn: w3,
            max_cmd_sn: w4,
            time2wait: h1,
            time2retain: h2,
        }),
        6 => Repr::Reject(Reject {
            reason: RejectReason::from(x1),
            stat_sn: w1,
            exp_cmd_sn: w2,
            max_cmd_sn: w3,
            data_sn: w4,
            data,
        }),
        7 => Repr::NopIn(NopIn {
            lun,
            itt: w1,
            ttt: w2,
            stat_sn: w3,
            exp_cmd_sn: w4,
            max_cmd_sn: w5,
            data,
        }),
        8 => Repr::NopOut(NopOut {
            immediate: b1,
            lun,
            itt: w1,
            ttt: w2,
            cmd_sn: w3,
            exp_stat_sn: w4,
            data,
        }),
        9 => Repr::AsyncMessage(AsyncMessage {
            lun,
            stat_sn: w1,
            exp_cmd_sn: w2,
            max_cmd_sn: w3,
            event: AsyncEvent::from(x1),
            vcode: x2,
            parameter1: h1,
            parameter2: h2,
            parameter3: h3,
            data,
        }),
        _ => Repr::Unknown {
            opcode: [0x01u8, 0x02, 0x05, 0x10, 0x1c, 0x21, 0x25, 0x31, 0x3a][usize::from(x1) % 9],
            data,
        },
    }
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| Host::Ipv4(a.into())),
        (
            any::<[u8; 16]>(),
            prop::option::of("[a-z][a-z0-9]{0,7}|[0-9]{1,3}")
        )
            .prop_map(|(a, zone)| Host::Ipv6 {
                addr: a.into(),
                zone
            }),
        "[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z][a-z0-9]{0,10}){0,3}".prop_map(Host::Name),
    ]
}

proptest! {
    #[test]
    fn repr_emit_parse_round_trip(k in any::<u8>(), f in any::<Fields>(), data in prop::collection::vec(any::<u8>(), 0..600)) {
        let repr = build(k, &f, &data);
        let bytes = repr.to_vec().unwrap();
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert_eq!(bytes.len() % 4, 0);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let parsed = Repr::parse(&packet).unwrap();
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn target_address_format_parse_round_trip(host in host(), port in 1u16.., tag in prop::option::of(any::<u16>())) {
        let a = TargetAddress { host, port, tag };
        let s = a.to_string();
        prop_assert_eq!(TargetAddress::parse(&s).unwrap(), a);
    }

    #[test]
    fn target_address_parse_never_panics(s in "\\PC{0,80}") {
        let _ = TargetAddress::parse(&s);
    }

    #[test]
    fn text_encode_decode_round_trip(pairs in prop::collection::vec(("[A-Za-z][A-Za-z0-9._-]{0,62}", "[^\\x00]{0,100}"), 0..20)) {
        let enc = text::encode(&pairs).unwrap();
        let dec = text::decode(&enc).unwrap();
        let back: Vec<(String, String)> = dec.into_iter().map(|kv| (kv.key, kv.value)).collect();
        prop_assert_eq!(back, pairs);
    }

    #[test]
    fn text_decode_split_anywhere_equals_whole(pairs in prop::collection::vec(("[A-Za-z]{1,10}", "[a-z0-9:.,]{0,30}"), 1..20), cut in any::<prop::sample::Index>()) {
        let enc = text::encode(&pairs).unwrap();
        let at = cut.index(enc.len());
        let mut acc = text::TextAccumulator::new();
        acc.push(&enc[..at], usize::MAX);
        acc.push(&enc[at..], usize::MAX);
        prop_assert_eq!(acc.decode().unwrap(), text::decode(&enc).unwrap());
    }

    #[test]
    fn session_never_panics_on_arbitrary_bytes(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut s = DiscoverySession::new(SessionConfig::new("iqn.2026-11.org.vds:p"), SessionSeed::from_rng(&mut rand::rngs::mock::StepRng::new(1, 1))).unwrap();
        for c in &chunks {
            if s.handle_bytes(c).is_err() { break; }
            let _ = s.poll_transmit();
        }
        let _ = s.handle_eof();
    }
}
