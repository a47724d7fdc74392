//! The session state machine driven by a scripted target, deterministically: mutual CHAP,
//! redirects, NOP-In, Async Messages, Reject, caps and every kind of bad answer.

use iscsi_proto::chap::{self, ChapAlgorithm};
use iscsi_proto::error::{ApiMisuse, InvalidPdu, Limit, PeerMisbehaved};
use iscsi_proto::session::{
    DiscoverySession, Event, Phase, Purpose, SendTargetsQuery, SessionConfig, SessionSeed,
};
use iscsi_proto::text::{self, KeyValue};
use iscsi_proto::wire::{
    AsyncEvent, AsyncMessage, LoginResponse, LogoutResponse, NopIn, Opcode, Packet, RESERVED_TAG,
    Reject, RejectReason, Repr, Stage, TextResponse, pdu_len,
};
use iscsi_proto::{ChapCredentials, Error, Host, LoginFailure, TargetAddress};

const SEED_CHALLENGE: [u8; 32] = [0x11; 32];

fn seed() -> SessionSeed {
    SessionSeed {
        isid: [0x80, 1, 2, 3, 0, 0],
        itt: 100,
        cmd_sn: 7,
        chap_identifier: 9,
        chap_challenge: SEED_CHALLENGE,
    }
}

/// What we sent, PDU by PDU, with its keys.
struct Sent {
    opcode: Opcode,
    flags: u8,
    itt: u32,
    ttt: u32,
    cmd_sn: u32,
    exp_stat_sn: u32,
    keys: Vec<KeyValue>,
    data: Vec<u8>,
}

fn drain(s: &mut DiscoverySession) -> Vec<Sent> {
    let mut out = Vec::new();
    let Some(bytes) = s.poll_transmit() else {
        return out;
    };
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = pdu_len(rest).unwrap();
        let p = Packet::new_checked(&rest[..n]).unwrap();
        out.push(Sent {
            opcode: p.opcode(),
            flags: p.flags(),
            itt: p.itt(),
            ttt: p.ttt(),
            cmd_sn: p.cmd_sn(),
            exp_stat_sn: p.exp_stat_sn(),
            keys: if matches!(p.opcode(), Opcode::LoginRequest | Opcode::TextRequest) {
                text::decode(p.data()).unwrap()
            } else {
                Vec::new()
            },
            data: p.data().to_vec(),
        });
        rest = &rest[n..];
    }
    out
}

fn events(s: &mut DiscoverySession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<u8> {
    text::encode(pairs).unwrap()
}

struct Target {
    stat_sn: u32,
}

impl Target {
    #[allow(clippy::too_many_arguments)]
    fn login(
        &mut self,
        itt: u32,
        t: bool,
        csg: Stage,
        nsg: Stage,
        class: u8,
        detail: u8,
        data: &[u8],
    ) -> Vec<u8> {
        self.stat_sn += 1;
        Repr::LoginResponse(LoginResponse {
            transit: t,
            cont: false,
            csg,
            nsg,
            version_max: 0,
            version_active: 0,
            isid: [0x80, 1, 2, 3, 0, 0],
            tsih: 0x100,
            itt,
            stat_sn: self.stat_sn,
            exp_cmd_sn: 7,
            max_cmd_sn: 8,
            status_class: class,
            status_detail: detail,
            data,
        })
        .to_vec()
        .unwrap()
    }

    fn op_ok(&mut self, itt: u32) -> Vec<u8> {
        let d = kv(&[
            ("TargetPortalGroupTag", "3"),
            ("HeaderDigest", "None"),
            ("DataDigest", "None"),
            ("MaxRecvDataSegmentLength", "8192"),
        ]);
        self.login(itt, true, Stage::Operational, Stage::FullFeature, 0, 0, &d)
    }

    fn text(&mut self, itt: u32, final_: bool, ttt: u32, data: &[u8]) -> Vec<u8> {
        self.text_expecting(itt, final_, ttt, 7, data)
    }

    /// A Text Response whose ExpCmdSN is `exp_cmd_sn` (MaxCmdSN one past it).
    fn text_expecting(
        &mut self,
        itt: u32,
        final_: bool,
        ttt: u32,
        exp_cmd_sn: u32,
        data: &[u8],
    ) -> Vec<u8> {
        self.stat_sn += 1;
        Repr::TextResponse(TextResponse {
            final_,
            cont: false,
            lun: 0,
            itt,
            ttt,
            stat_sn: self.stat_sn,
            exp_cmd_sn,
            max_cmd_sn: exp_cmd_sn.wrapping_add(1),
            data,
        })
        .to_vec()
        .unwrap()
    }

    fn logout(&mut self, itt: u32, response: u8) -> Vec<u8> {
        self.stat_sn += 1;
        Repr::LogoutResponse(LogoutResponse {
            response,
            itt,
            stat_sn: self.stat_sn,
            exp_cmd_sn: 7,
            max_cmd_sn: 8,
            time2wait: 0,
            time2retain: 0,
        })
        .to_vec()
        .unwrap()
    }
}

fn config() -> SessionConfig {
    SessionConfig::new("iqn.2026-11.org.vds:test")
}

/// Logs in without CHAP and returns the session waiting for the SendTargets answer.
fn logged_in(config: SessionConfig) -> (DiscoverySession, Target, Sent) {
    let mut s = DiscoverySession::new(config, seed()).unwrap();
    let login = drain(&mut s).remove(0);
    assert_eq!(login.opcode, Opcode::LoginRequest);
    let mut t = Target { stat_sn: 0 };
    s.handle_bytes(&t.op_ok(login.itt)).unwrap();
    let text = drain(&mut s).remove(0);
    (s, t, text)
}

#[test]
fn plain_login_keys_and_sendtargets_name() {
    let mut c = config();
    c.purpose = Purpose::SendTargets(SendTargetsQuery::Name("iqn.x:one".into()));
    c.max_recv_data_segment_length = 4096;
    let mut s = DiscoverySession::new(c, seed()).unwrap();
    let login = drain(&mut s).remove(0);
    assert_eq!(login.flags, 0x87, "T=1 CSG=1 NSG=3");
    assert_eq!(login.itt, 100);
    assert_eq!(login.cmd_sn, 7);
    assert_eq!(login.exp_stat_sn, 0);
    let keys: Vec<_> = login
        .keys
        .iter()
        .map(|k| (k.key.as_str(), k.value.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("InitiatorName", "iqn.2026-11.org.vds:test"),
            ("SessionType", "Discovery"),
            ("HeaderDigest", "None"),
            ("DataDigest", "None"),
            ("MaxRecvDataSegmentLength", "4096"),
        ]
    );
    let mut t = Target { stat_sn: 0 };
    s.handle_bytes(&t.op_ok(100)).unwrap();
    assert_eq!(
        events(&mut s),
        [Event::LoggedIn {
            portal_group_tag: Some(3),
            tsih: 0x100,
            target_max_recv_data_segment_length: 8192
        }]
    );
    let text = drain(&mut s).remove(0);
    assert_eq!(text.opcode, Opcode::TextRequest);
    assert_eq!(
        (
            text.flags,
            text.itt,
            text.ttt,
            text.cmd_sn,
            text.exp_stat_sn
        ),
        (0x80, 101, RESERVED_TAG, 7, 2)
    );
    assert_eq!(text::find(&text.keys, "SendTargets"), Some("iqn.x:one"));
    assert_eq!(s.phase(), Phase::SendTargets);
    s.handle_bytes(&t.text(101, true, RESERVED_TAG, b"TargetName=iqn.x:one\0"))
        .unwrap();
    let ev = events(&mut s);
    assert_eq!(
        ev,
        [Event::Targets(vec![iscsi_proto::DiscoveredTarget {
            name: "iqn.x:one".into(),
            addresses: vec![]
        }])]
    );
    let logout = drain(&mut s).remove(0);
    assert_eq!(
        (logout.opcode, logout.flags, logout.itt, logout.cmd_sn),
        (Opcode::LogoutRequest, 0x80, 102, 7)
    );
    s.handle_bytes(&t.logout(102, 0)).unwrap();
    assert_eq!(events(&mut s), [Event::LoggedOut]);
    assert!(s.is_finished());
    assert_eq!(s.stats().pdus_received, 3);
    // The session is over: more input is the caller's mistake.
    assert!(matches!(
        s.handle_bytes(&t.logout(102, 0)),
        Err(Error::ApiMisuse(ApiMisuse::SessionOver(_)))
    ));
}

#[test]
fn probe_logs_out_without_sendtargets() {
    let mut c = config();
    c.purpose = Purpose::Probe;
    let mut s = DiscoverySession::new(c, seed()).unwrap();
    drain(&mut s);
    let mut t = Target { stat_sn: 0 };
    s.handle_bytes(&t.op_ok(100)).unwrap();
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].opcode, Opcode::LogoutRequest);
    s.handle_bytes(&t.logout(out[0].itt, 0)).unwrap();
    assert!(s.is_finished());
}

fn chap_config(mutual: bool) -> SessionConfig {
    let mut c = config();
    c.chap = Some(ChapCredentials::new("user", "initiator-secret"));
    if mutual {
        c.mutual = Some(ChapCredentials::new("tgtuser", "target-secret1"));
    }
    c.chap_algorithms = vec![ChapAlgorithm::Sha256, ChapAlgorithm::Md5];
    c
}

/// Drives a CHAP login up to the target's answer to our CHAP_N/CHAP_R; returns our keys.
fn chap_until_response(s: &mut DiscoverySession, t: &mut Target, alg: &str) -> Vec<KeyValue> {
    let first = drain(s).remove(0);
    assert_eq!(first.flags, 0x81, "T=1 CSG=0 NSG=1");
    s.handle_bytes(&t.login(
        100,
        false,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("TargetPortalGroupTag", "1"), ("AuthMethod", "CHAP")]),
    ))
    .unwrap();
    let a = drain(s).remove(0);
    assert_eq!(text::find(&a.keys, "CHAP_A"), Some("7,5"));
    s.handle_bytes(&t.login(
        100,
        false,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("CHAP_A", alg), ("CHAP_I", "4"), ("CHAP_C", "0XC744CADB41")]),
    ))
    .unwrap();
    drain(s).remove(0).keys
}

#[test]
fn one_way_chap_sha256() {
    let mut s = DiscoverySession::new(chap_config(false), seed()).unwrap();
    let mut t = Target { stat_sn: 0 };
    let keys = chap_until_response(&mut s, &mut t, "7");
    assert_eq!(text::find(&keys, "CHAP_N"), Some("user"));
    let want =
        ChapAlgorithm::Sha256.response(4, b"initiator-secret", &[0xc7, 0x44, 0xca, 0xdb, 0x41]);
    assert_eq!(
        text::find(&keys, "CHAP_R"),
        Some(chap::encode_hex(&want).as_str())
    );
    assert_eq!(text::find(&keys, "CHAP_C"), None, "no mutual challenge");
    s.handle_bytes(&t.login(100, true, Stage::Security, Stage::Operational, 0, 0, &[]))
        .unwrap();
    let op = drain(&mut s).remove(0);
    assert_eq!(op.flags, 0x87);
    assert_eq!(
        text::find(&op.keys, "InitiatorName"),
        None,
        "sent only in the first PDU"
    );
    s.handle_bytes(&t.op_ok(100)).unwrap();
    assert_eq!(drain(&mut s)[0].opcode, Opcode::TextRequest);
}

#[test]
fn mutual_chap_accepts_the_right_target_and_rejects_a_wrong_one() {
    for (name, secret, ok) in [
        ("tgtuser", &b"target-secret1"[..], true),
        ("tgtuser", &b"wrong-secret12"[..], false),
        ("other", &b"target-secret1"[..], false),
    ] {
        let mut s = DiscoverySession::new(chap_config(true), seed()).unwrap();
        let mut t = Target { stat_sn: 0 };
        let keys = chap_until_response(&mut s, &mut t, "5");
        assert_eq!(text::find(&keys, "CHAP_I"), Some("9"));
        assert_eq!(
            text::find(&keys, "CHAP_C"),
            Some(chap::encode_hex(&SEED_CHALLENGE).as_str())
        );
        let r = ChapAlgorithm::Md5.response(9, secret, &SEED_CHALLENGE);
        let answer = kv(&[
            ("CHAP_N", name),
            (
                "CHAP_R",
                &chap::encode_hex(&r).to_uppercase().replace("0X", "0x"),
            ),
        ]);
        let res = s.handle_bytes(&t.login(
            100,
            true,
            Stage::Security,
            Stage::Operational,
            0,
            0,
            &answer,
        ));
        if ok {
            res.unwrap();
            assert_eq!(drain(&mut s)[0].flags, 0x87);
        } else {
            assert!(
                matches!(
                    res,
                    Err(Error::PeerMisbehaved(
                        PeerMisbehaved::TargetAuthenticationFailed(_)
                    ))
                ),
                "{res:?}"
            );
        }
    }
}

#[test]
fn mutual_chap_missing_response_and_skipped_auth_fail() {
    let mut s = DiscoverySession::new(chap_config(true), seed()).unwrap();
    let mut t = Target { stat_sn: 0 };
    chap_until_response(&mut s, &mut t, "5");
    let r = s.handle_bytes(&t.login(100, true, Stage::Security, Stage::Operational, 0, 0, &[]));
    assert!(matches!(
        r,
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::TargetAuthenticationFailed(_)
        ))
    ));

    let mut s = DiscoverySession::new(chap_config(true), seed()).unwrap();
    let first = drain(&mut s).remove(0);
    assert_eq!(
        text::find(&first.keys, "AuthMethod"),
        Some("CHAP"),
        "mutual offers no None"
    );
    let r = s.handle_bytes(&t.login(
        100,
        true,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("AuthMethod", "None")]),
    ));
    assert_eq!(
        r,
        Err(Error::PeerMisbehaved(PeerMisbehaved::AuthenticationSkipped))
    );
}

#[test]
fn reflected_challenge_and_unoffered_algorithm_fail() {
    let mut s = DiscoverySession::new(chap_config(true), seed()).unwrap();
    let mut t = Target { stat_sn: 0 };
    drain(&mut s);
    s.handle_bytes(&t.login(
        100,
        false,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("AuthMethod", "CHAP")]),
    ))
    .unwrap();
    drain(&mut s);
    let c = chap::encode_hex(&SEED_CHALLENGE);
    let r = s.handle_bytes(&t.login(
        100,
        false,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("CHAP_A", "5"), ("CHAP_I", "1"), ("CHAP_C", &c)]),
    ));
    assert_eq!(
        r,
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::ChapChallengeReflected
        ))
    );

    let mut s = DiscoverySession::new(chap_config(false), seed()).unwrap();
    drain(&mut s);
    s.handle_bytes(&t.login(
        100,
        false,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("AuthMethod", "CHAP")]),
    ))
    .unwrap();
    drain(&mut s);
    let r = s.handle_bytes(&t.login(
        100,
        false,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("CHAP_A", "6"), ("CHAP_I", "1"), ("CHAP_C", "0x01")]),
    ));
    assert_eq!(
        r,
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::ChapAlgorithmNotOffered("6".into())
        ))
    );
}

#[test]
fn one_way_chap_target_choosing_none_is_fine() {
    let mut s = DiscoverySession::new(chap_config(false), seed()).unwrap();
    let mut t = Target { stat_sn: 0 };
    drain(&mut s);
    s.handle_bytes(&t.login(
        100,
        true,
        Stage::Security,
        Stage::Operational,
        0,
        0,
        &kv(&[("AuthMethod", "None")]),
    ))
    .unwrap();
    assert_eq!(drain(&mut s)[0].flags, 0x87);
}

#[test]
fn login_failures_are_named() {
    for (class, detail, text) in [
        (2, 1, "authentication failure"),
        (2, 2, "authorization failure"),
        (2, 3, "target not found"),
        (2, 4, "target removed"),
        (2, 5, "unsupported version"),
        (3, 0, "target error"),
        (3, 1, "service unavailable"),
        (3, 2, "out of resources"),
        (9, 9, "unknown login status"),
    ] {
        let mut s = DiscoverySession::new(config(), seed()).unwrap();
        drain(&mut s);
        let mut t = Target { stat_sn: 0 };
        let err = s
            .handle_bytes(&t.login(
                100,
                false,
                Stage::Operational,
                Stage::Operational,
                class,
                detail,
                &[],
            ))
            .unwrap_err();
        assert_eq!(err, Error::Login(LoginFailure { class, detail }));
        assert!(err.to_string().contains(text), "{err}");
    }
}

#[test]
fn redirect_is_reported() {
    let mut s = DiscoverySession::new(config(), seed()).unwrap();
    drain(&mut s);
    let mut t = Target { stat_sn: 0 };
    s.handle_bytes(&t.login(
        100,
        false,
        Stage::Operational,
        Stage::Operational,
        1,
        2,
        &kv(&[("TargetAddress", "[fe80::2%eth1]:3261")]),
    ))
    .unwrap();
    assert!(s.is_finished());
    assert_eq!(
        events(&mut s),
        [Event::Redirected {
            address: TargetAddress {
                host: Host::Ipv6 {
                    addr: "fe80::2".parse().unwrap(),
                    zone: Some("eth1".into())
                },
                port: 3261,
                tag: None
            },
            permanent: true
        }]
    );
    let mut s = DiscoverySession::new(config(), seed()).unwrap();
    drain(&mut s);
    let r = s.handle_bytes(&t.login(
        100,
        false,
        Stage::Operational,
        Stage::Operational,
        1,
        1,
        &[],
    ));
    assert_eq!(
        r,
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::RedirectWithoutAddress
        ))
    );
}

#[test]
fn continuation_echoes_ttt_until_final() {
    let (mut s, mut t, text) = logged_in(config());
    s.handle_bytes(&t.text(text.itt, false, 0x55, b"TargetName=iqn.a\0TargetAdd"))
        .unwrap();
    let cont = drain(&mut s).remove(0);
    assert_eq!(
        (cont.opcode, cont.flags, cont.itt, cont.ttt, cont.data.len()),
        (Opcode::TextRequest, 0x80, text.itt, 0x55, 0)
    );
    s.handle_bytes(&t.text(text.itt, true, RESERVED_TAG, b"ress=10.0.0.1,1\0"))
        .unwrap();
    let ev = events(&mut s);
    let Event::Targets(targets) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(targets[0].addresses[0].to_string(), "10.0.0.1:3260,1");
}

#[test]
fn nop_in_is_answered_and_async_tolerated() {
    let (mut s, mut t, text) = logged_in(config());
    let nop = Repr::NopIn(NopIn {
        lun: 0,
        itt: RESERVED_TAG,
        ttt: 0x77,
        stat_sn: 3,
        exp_cmd_sn: 7,
        max_cmd_sn: 8,
        data: b"ping",
    })
    .to_vec()
    .unwrap();
    s.handle_bytes(&nop).unwrap();
    let out = drain(&mut s).remove(0);
    assert_eq!(
        (out.opcode, out.itt, out.ttt, out.data.as_slice()),
        (Opcode::NopOut, RESERVED_TAG, 0x77, &b"ping"[..])
    );
    // A NOP-In answering nothing (TTT reserved) needs no answer.
    let nop = Repr::NopIn(NopIn {
        lun: 0,
        itt: RESERVED_TAG,
        ttt: RESERVED_TAG,
        stat_sn: 3,
        exp_cmd_sn: 7,
        max_cmd_sn: 8,
        data: b"",
    })
    .to_vec()
    .unwrap();
    s.handle_bytes(&nop).unwrap();
    assert!(drain(&mut s).is_empty());
    let am = |event| {
        Repr::AsyncMessage(AsyncMessage {
            lun: 0,
            stat_sn: 3,
            exp_cmd_sn: 7,
            max_cmd_sn: 8,
            event,
            vcode: 0,
            parameter1: 0,
            parameter2: 0,
            parameter3: 2,
            data: b"",
        })
        .to_vec()
        .unwrap()
    };
    s.handle_bytes(&am(AsyncEvent::LogoutRequested)).unwrap();
    s.handle_bytes(&t.text(text.itt, true, RESERVED_TAG, b""))
        .unwrap();
    assert!(events(&mut s).contains(&Event::Async {
        event: AsyncEvent::LogoutRequested
    }));
    let err = s.handle_bytes(&am(AsyncEvent::DropConnection)).unwrap_err();
    assert_eq!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::ConnectionDropAnnounced { event: 2 })
    );
}

#[test]
fn reject_unknown_opcode_and_wrong_itt() {
    let (mut s, _t, _) = logged_in(config());
    let rej = Repr::Reject(Reject {
        reason: RejectReason::ProtocolError,
        stat_sn: 2,
        exp_cmd_sn: 7,
        max_cmd_sn: 8,
        data_sn: 0,
        data: &[0u8; 48],
    })
    .to_vec()
    .unwrap();
    let err = s.handle_bytes(&rej).unwrap_err();
    assert_eq!(
        err,
        Error::Rejected {
            reason: RejectReason::ProtocolError
        }
    );
    assert!(err.to_string().contains("protocol error (0x04)"));

    let (mut s, _t, _) = logged_in(config());
    let unk = Repr::Unknown {
        opcode: 0x3a,
        data: b"",
    }
    .to_vec()
    .unwrap();
    let err = s.handle_bytes(&unk).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PeerMisbehaved(PeerMisbehaved::UnexpectedPdu {
                opcode: Opcode::Unknown(0x3a),
                ..
            })
        ),
        "{err:?}"
    );

    let (mut s, mut t, text) = logged_in(config());
    let err = s
        .handle_bytes(&t.text(text.itt + 5, true, RESERVED_TAG, b""))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::UnexpectedItt { .. })
    ));
}

#[test]
fn caps_and_garbage() {
    // Oversized DataSegmentLength fails as soon as the BHS arrives.
    let (mut s, _t, _) = logged_in(config());
    let mut bhs = [0u8; 48];
    bhs[0] = 0x24;
    bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    let err = s.handle_bytes(&bhs).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidPdu(InvalidPdu::DataSegmentTooLong {
                len: 0xffffff,
                max: 262144,
                ..
            })
        ),
        "{err:?}"
    );

    // Endless continuation: the answer-bytes cap.
    let mut c = config();
    c.max_answer_bytes = 1000;
    let (mut s, mut t, text) = logged_in(c);
    let chunk = vec![b'a'; 400];
    let mut res = Ok(());
    for _ in 0..10 {
        res = s.handle_bytes(&t.text(text.itt, false, 1, &chunk));
        if res.is_err() {
            break;
        }
        drain(&mut s);
    }
    assert_eq!(
        res,
        Err(Error::LimitExceeded(Limit::AnswerBytes { max: 1000 }))
    );

    // Endless empty continuation: the PDU cap.
    let mut c = config();
    c.max_pdus = 50;
    let (mut s, mut t, text) = logged_in(c);
    let mut res = Ok(());
    for _ in 0..100 {
        res = s.handle_bytes(&t.text(text.itt, false, 1, b""));
        if res.is_err() {
            break;
        }
    }
    assert_eq!(res, Err(Error::LimitExceeded(Limit::Pdus { max: 50 })));

    // Not final but no tag.
    let (mut s, mut t, text) = logged_in(config());
    assert_eq!(
        s.handle_bytes(&t.text(text.itt, false, RESERVED_TAG, b"")),
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::ContinuationWithoutTag
        ))
    );

    // Non-UTF-8 value names the key.
    let (mut s, mut t, text) = logged_in(config());
    let err = s
        .handle_bytes(&t.text(text.itt, true, RESERVED_TAG, b"TargetName=\xc3\x28\0"))
        .unwrap_err();
    assert!(
        err.to_string().contains("TargetName") && err.to_string().contains("UTF-8"),
        "{err}"
    );

    // A partial PDU at EOF is "cut short".
    let (mut s, mut t, text) = logged_in(config());
    let pdu = t.text(text.itt, true, RESERVED_TAG, b"TargetName=x\0");
    s.handle_bytes(&pdu[..30]).unwrap();
    assert_eq!(
        s.handle_eof(),
        Err(Error::InvalidPdu(InvalidPdu::CutShort { buffered: 30 }))
    );
}

#[test]
fn digests_must_stay_none() {
    let mut s = DiscoverySession::new(config(), seed()).unwrap();
    drain(&mut s);
    let mut t = Target { stat_sn: 0 };
    let err = s
        .handle_bytes(&t.login(
            100,
            true,
            Stage::Operational,
            Stage::FullFeature,
            0,
            0,
            &kv(&[("HeaderDigest", "CRC32C")]),
        ))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::KeyRefused { .. })
    ));
    // NotUnderstood/Irrelevant answers are tolerated.
    let mut s = DiscoverySession::new(config(), seed()).unwrap();
    drain(&mut s);
    s.handle_bytes(&t.login(
        100,
        true,
        Stage::Operational,
        Stage::FullFeature,
        0,
        0,
        &kv(&[
            ("HeaderDigest", "NotUnderstood"),
            ("DataDigest", "Irrelevant"),
            ("MaxRecvDataSegmentLength", "Irrelevant"),
        ]),
    ))
    .unwrap();
    assert_eq!(drain(&mut s)[0].opcode, Opcode::TextRequest);
}

#[test]
fn logout_uses_the_larger_cmdsn_and_wraps() {
    let mut sd = seed();
    sd.cmd_sn = u32::MAX;
    let mut s = DiscoverySession::new(config(), sd).unwrap();
    drain(&mut s);
    let mut t = Target { stat_sn: 0 };
    s.handle_bytes(&t.op_ok(100)).unwrap();
    let text = drain(&mut s).remove(0);
    // ExpCmdSN 7 is "after" u32::MAX in serial arithmetic.
    s.handle_bytes(&t.text(text.itt, true, RESERVED_TAG, b""))
        .unwrap();
    assert_eq!(drain(&mut s)[0].cmd_sn, 7);
}

#[test]
fn bad_config_is_api_misuse() {
    let mut c = config();
    c.max_recv_data_segment_length = 100;
    assert!(matches!(
        DiscoverySession::new(c, seed()),
        Err(Error::ApiMisuse(ApiMisuse::BadConfig(_)))
    ));
    let mut c = config();
    c.initiator_name = String::new();
    assert!(DiscoverySession::new(c, seed()).is_err());
    let mut c = config();
    c.mutual = Some(ChapCredentials::new("a", "b"));
    assert!(DiscoverySession::new(c, seed()).is_err());
}

#[test]
fn login_that_never_ends_is_bounded() {
    let mut s = DiscoverySession::new(config(), seed()).unwrap();
    drain(&mut s);
    let mut t = Target { stat_sn: 0 };
    let mut res = Ok(());
    for _ in 0..40 {
        res = s.handle_bytes(&t.login(
            100,
            false,
            Stage::Operational,
            Stage::FullFeature,
            0,
            0,
            &[],
        ));
        if res.is_err() {
            break;
        }
    }
    assert!(matches!(
        res,
        Err(Error::PeerMisbehaved(PeerMisbehaved::LoginTooLong(_)))
    ));
}

/// Hands out 0, 1, 2, … and counts how often it was asked.
struct Counting {
    next: u8,
    draws: usize,
}

impl rand::RngCore for Counting {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.draws += 1;
        for b in dest {
            *b = self.next;
            self.next = self.next.wrapping_add(1);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[test]
fn a_seed_is_one_draw_laid_out_in_order() {
    let mut rng = Counting { next: 0, draws: 0 };
    let s = SessionSeed::from_rng(&mut rng);
    // One draw: `random` makes one getrandom call per session, not one per value.
    assert_eq!(rng.draws, 1);
    assert_eq!(s.isid, [0x80, 0, 1, 2, 0, 0]);
    let challenge: Vec<u8> = (3..35).collect();
    assert_eq!(s.chap_challenge.to_vec(), challenge);
    assert_eq!(s.itt, u32::from_le_bytes([35, 36, 37, 38]));
    assert_eq!(s.cmd_sn, u32::from_le_bytes([39, 40, 41, 42]));
    assert_eq!(s.chap_identifier, 43);
    // A first tag near the reserved one starts over at 1, so tags cannot reach it.
    let s = SessionSeed::from_rng(&mut rand::rngs::mock::StepRng::new(u64::MAX, 0));
    assert_eq!(s.itt, 1, "all-ones drew the reserved tag's neighbourhood");
}

#[test]
fn random_seeds_are_well_formed_and_differ() {
    let a = SessionSeed::random();
    let b = SessionSeed::random();
    for s in [&a, &b] {
        assert_eq!(s.isid[0], 0x80, "the random ISID format");
        assert_eq!(&s.isid[4..], &[0, 0], "TSIH-qualifier bytes stay zero");
        assert!(s.itt < RESERVED_TAG - 64);
    }
    // 44 bytes from the OS: two draws agreeing on every one would mean no randomness at all.
    assert!(a != b, "two random seeds came out the same: {a:?}");
}

#[test]
fn a_logout_takes_the_cmdsn_a_target_expects_after_an_immediate_text() {
    // istgt answers the immediate Text command (CmdSN 7) with ExpCmdSN 8 (peers.md §7). A Logout
    // at CmdSN 7 is then behind its window (istgt logs it as "might have dropped"); it goes at 8.
    let (mut s, mut t, text) = logged_in(config());
    assert_eq!((text.opcode, text.cmd_sn), (Opcode::TextRequest, 7));
    let answer = t.text_expecting(text.itt, true, RESERVED_TAG, 8, b"TargetName=iqn.x:one\0");
    s.handle_bytes(&answer).unwrap();
    let logout = drain(&mut s).remove(0);
    assert_eq!((logout.opcode, logout.cmd_sn), (Opcode::LogoutRequest, 8));
}
