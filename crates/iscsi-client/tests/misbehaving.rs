//! Misbehaving targets written here (raw tokio listeners on 127.0.0.1:0): each failure mode gives
//! its own error kind, within its deadline and well under the overall one.

use std::future::Future;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use iscsi_client::{Deadline, DiscoveryOptions, Error, ErrorKind, Host, Phase, discover};
use iscsi_proto::error::{InvalidPdu, PeerMisbehaved};
use iscsi_proto::text::TextErrorKind;
use iscsi_proto::wire::{
    LoginResponse, Packet, RESERVED_TAG, Reject, RejectReason, Repr, Stage, TextResponse, pdu_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: Host = Host::Ipv4(Ipv4Addr::LOCALHOST);
const OVERALL: Duration = Duration::from_secs(6);

fn opts() -> DiscoveryOptions {
    DiscoveryOptions {
        connect_timeout: Duration::from_secs(1),
        pdu_timeout: Duration::from_millis(700),
        overall_timeout: OVERALL,
        ..DiscoveryOptions::default()
    }
}

/// Serves every connection on a fresh listener with `script`; returns the port.
async fn target<F, Fut>(script: F) -> u16
where
    F: Fn(TcpStream, u16) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(script(s, port));
        }
    });
    port
}

/// Reads one PDU; `None` at EOF.
async fn read_pdu(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut pdu = vec![0u8; 48];
    s.read_exact(&mut pdu).await.ok()?;
    let total = pdu_len(&pdu)?;
    pdu.resize(total, 0);
    s.read_exact(&mut pdu[48..]).await.ok()?;
    Some(pdu)
}

fn itt(pdu: &[u8]) -> u32 {
    Packet::new_checked(pdu).unwrap().itt()
}

fn login_response(itt: u32, class: u8, detail: u8, data: &[u8]) -> Vec<u8> {
    Repr::LoginResponse(LoginResponse {
        transit: class == 0,
        cont: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_active: 0,
        isid: [0x80, 0, 0, 0, 0, 0],
        tsih: 1,
        itt,
        stat_sn: 1,
        exp_cmd_sn: 1,
        max_cmd_sn: 2,
        status_class: class,
        status_detail: detail,
        data,
    })
    .to_vec()
    .unwrap()
}

fn text_response(itt: u32, final_: bool, ttt: u32, data: &[u8]) -> Vec<u8> {
    Repr::TextResponse(TextResponse {
        final_,
        cont: false,
        lun: 0,
        itt,
        ttt,
        stat_sn: 2,
        exp_cmd_sn: 1,
        max_cmd_sn: 2,
        data,
    })
    .to_vec()
    .unwrap()
}

/// Completes the login and returns the SendTargets request.
async fn login(s: &mut TcpStream) -> Option<Vec<u8>> {
    let l = read_pdu(s).await?;
    s.write_all(&login_response(itt(&l), 0, 0, b"TargetPortalGroupTag=1\0"))
        .await
        .ok()?;
    read_pdu(s).await
}

async fn run(port: u16, opts: &DiscoveryOptions) -> (Error, Duration) {
    let start = Instant::now();
    let e = discover(&HOST, port, opts).await.unwrap_err();
    (e, start.elapsed())
}

fn assert_fast(elapsed: Duration, limit: Duration, e: &Error) {
    assert!(elapsed < limit, "took {elapsed:?} (limit {limit:?}): {e}");
    assert!(elapsed < OVERALL / 2, "took {elapsed:?}: {e}");
}

#[tokio::test]
async fn pdu_cut_short() {
    let port = target(|mut s, _| async move {
        let l = read_pdu(&mut s).await.unwrap();
        s.write_all(&login_response(itt(&l), 0, 0, b"TargetPortalGroupTag=1\0")[..30])
            .await
            .unwrap();
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Protocol(iscsi_proto::Error::InvalidPdu(InvalidPdu::CutShort {
                buffered: 30
            }))
        ),
        "{e}"
    );
    assert_eq!(e.phase(), Phase::Login);
    assert_fast(t, Duration::from_millis(500), &e);
}

#[tokio::test]
async fn data_segment_length_of_16_mib_fails_at_the_header() {
    let port = target(|mut s, _| async move {
        let l = read_pdu(&mut s).await.unwrap();
        let mut bhs = login_response(itt(&l), 0, 0, b"")[..48].to_vec();
        bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        s.write_all(&bhs).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await; // then send nothing more
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Protocol(iscsi_proto::Error::InvalidPdu(
                InvalidPdu::DataSegmentTooLong { len: 0xff_ffff, .. }
            ))
        ),
        "{e}"
    );
    assert!(e.to_string().contains("16777215"), "{e}");
    assert_fast(t, Duration::from_millis(500), &e);
}

#[tokio::test]
async fn unknown_opcode() {
    let port = target(|mut s, _| async move {
        login(&mut s).await.unwrap();
        let pdu = Repr::Unknown {
            opcode: 0x3a,
            data: b"hello",
        }
        .to_vec()
        .unwrap();
        s.write_all(&pdu).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Protocol(iscsi_proto::Error::PeerMisbehaved(
                PeerMisbehaved::UnexpectedPdu { .. }
            ))
        ),
        "{e}"
    );
    assert_eq!(e.phase(), Phase::SendTargets);
    assert_fast(t, Duration::from_millis(500), &e);
}

#[tokio::test]
async fn endless_continuation_hits_the_answer_cap_or_the_pdu_cap() {
    let port = target(|mut s, _| async move {
        let mut req = login(&mut s).await.unwrap();
        let chunk = b"TargetName=iqn.2026-11.test.vds:endless\0".repeat(100);
        loop {
            if s.write_all(&text_response(itt(&req), false, 7, &chunk))
                .await
                .is_err()
            {
                return;
            }
            match read_pdu(&mut s).await {
                Some(r) => req = r,
                None => return,
            }
        }
    })
    .await;
    let capped = DiscoveryOptions {
        max_answer_bytes: 256 << 10,
        ..opts()
    };
    let (e, t) = run(port, &capped).await;
    assert!(
        matches!(e.kind(), ErrorKind::AnswerTooLarge { max } if *max == 256 << 10),
        "{e}"
    );
    assert_fast(t, Duration::from_secs(2), &e);

    let capped = DiscoveryOptions {
        max_pdus: 50,
        ..opts()
    };
    let (e, t) = run(port, &capped).await;
    assert!(
        matches!(e.kind(), ErrorKind::TooManyPdus { max: 50 }),
        "{e}"
    );
    assert_fast(t, Duration::from_secs(2), &e);
}

#[tokio::test]
async fn silence_after_connect_is_a_pdu_timeout() {
    let port = target(|s, _| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(s);
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Timeout {
                phase: Phase::Login,
                deadline: Deadline::Pdu
            }
        ),
        "{e}"
    );
    assert!(t >= Duration::from_millis(650), "{t:?}");
    assert_fast(t, Duration::from_millis(1500), &e);
}

#[tokio::test]
async fn slow_drip_hits_the_overall_deadline() {
    let port = target(|mut s, _| async move {
        let l = read_pdu(&mut s).await.unwrap();
        let pdu = login_response(itt(&l), 0, 0, b"TargetPortalGroupTag=1\0");
        for b in pdu {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if s.write_all(&[b]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let o = DiscoveryOptions {
        overall_timeout: Duration::from_secs(2),
        ..opts()
    };
    let start = Instant::now();
    let e = discover(&HOST, port, &o).await.unwrap_err();
    let t = start.elapsed();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Timeout {
                deadline: Deadline::Overall,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        t >= Duration::from_millis(1900) && t < Duration::from_millis(2600),
        "{t:?}"
    );
}

#[tokio::test]
async fn connection_closed_mid_login() {
    let port = target(|mut s, _| async move {
        read_pdu(&mut s).await.unwrap();
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Closed {
                phase: Phase::Login
            }
        ),
        "{e}"
    );
    assert_fast(t, Duration::from_millis(500), &e);
}

#[tokio::test]
async fn non_utf8_text_value() {
    let port = target(|mut s, _| async move {
        let req = login(&mut s).await.unwrap();
        let data = b"TargetName=iqn.2026-11.test.vds:ok\0TargetName=iqn.\xff\xfe\0";
        s.write_all(&text_response(itt(&req), true, RESERVED_TAG, data))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    match e.kind() {
        ErrorKind::Protocol(iscsi_proto::Error::InvalidPdu(InvalidPdu::Text(te))) => {
            assert_eq!(te.kind, TextErrorKind::NotUtf8);
            assert_eq!(te.key.as_deref(), Some("TargetName"));
            assert_eq!(te.offset, 35);
        }
        _ => panic!("{e}"),
    }
    assert_fast(t, Duration::from_millis(500), &e);
}

#[tokio::test]
async fn reject_pdu_is_named() {
    let port = target(|mut s, _| async move {
        let req = login(&mut s).await.unwrap();
        let rej = Repr::Reject(Reject {
            reason: RejectReason::CommandNotSupported,
            stat_sn: 2,
            exp_cmd_sn: 1,
            max_cmd_sn: 2,
            data_sn: 0,
            data: &req[..48],
        })
        .to_vec()
        .unwrap();
        s.write_all(&rej).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Protocol(iscsi_proto::Error::Rejected {
                reason: RejectReason::CommandNotSupported
            })
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("command not supported (0x05)"),
        "{e}"
    );
    assert_fast(t, Duration::from_millis(500), &e);
}

#[tokio::test]
async fn redirect_loop_and_redirect_chain() {
    // A target that redirects to itself.
    let port = target(|mut s, port| async move {
        let l = read_pdu(&mut s).await.unwrap();
        let to = format!("TargetAddress=127.0.0.1:{port}\0");
        s.write_all(&login_response(itt(&l), 1, 1, to.as_bytes()))
            .await
            .unwrap();
    })
    .await;
    let (e, t) = run(port, &opts()).await;
    assert!(
        matches!(e.kind(), ErrorKind::RedirectLoop(a) if a.port == port),
        "{e}"
    );
    assert_fast(t, Duration::from_millis(500), &e);

    // A chain of distinct targets, each redirecting to the next, longer than max_redirects.
    let hops: Vec<TcpListener> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        v
    };
    let hop_ports: Vec<u16> = hops
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    for (i, l) in hops.into_iter().enumerate() {
        let next = hop_ports[(i + 1) % hop_ports.len()];
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let Some(pdu) = read_pdu(&mut s).await else {
                        return;
                    };
                    let to = format!("TargetAddress=127.0.0.1:{next}\0");
                    let _ = s
                        .write_all(&login_response(itt(&pdu), 1, 2, to.as_bytes()))
                        .await;
                });
            }
        });
    }
    let o = DiscoveryOptions {
        max_redirects: 2,
        ..opts()
    };
    let start = Instant::now();
    let e = discover(&HOST, hop_ports[0], &o).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::TooManyRedirects { max: 2 }),
        "{e}"
    );
    assert_eq!(e.portal(), format!("127.0.0.1:{}", hop_ports[2]));
    assert_fast(start.elapsed(), Duration::from_millis(500), &e);
}
