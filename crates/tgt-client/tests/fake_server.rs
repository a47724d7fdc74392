//! The client against test-local Unix listeners that misbehave: no socket, a dead socket, a
//! reply cut short, a reply over the cap, no reply at all, garbage, a reply in tiny pieces. Each
//! gives a clear typed error (naming the socket) within its deadline, never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tgt_client::{Client, ClientConfig, Deadline, ErrorCode, ErrorKind, Request};
use tgt_proto::{ReplyRepr, wire::REQUEST_HEADER_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const FAST: Duration = Duration::from_millis(300);

fn config(socket: &Path) -> ClientConfig {
    ClientConfig {
        connect_timeout: FAST,
        exchange_timeout: FAST,
        ..ClientConfig::new(socket)
    }
}

/// Reads one whole request the way tgtd does (header, then `len − 120` bytes).
async fn read_request(s: &mut UnixStream) -> Vec<u8> {
    let mut req = vec![0u8; REQUEST_HEADER_LEN];
    s.read_exact(&mut req).await.unwrap();
    let len = u32::from_le_bytes([req[72], req[73], req[74], req[75]]) as usize;
    req.resize(len, 0);
    s.read_exact(&mut req[REQUEST_HEADER_LEN..]).await.unwrap();
    req
}

/// Runs `client.send(ShowPortals)` against a server that accepts once and runs `serve` on the
/// connection; returns the client's result and how long it took.
fn against<F, Fut>(
    max_reply: Option<usize>,
    serve: F,
) -> (
    Result<tgt_client::RawReply, tgt_client::Error>,
    Duration,
    PathBuf,
)
where
    F: FnOnce(UnixStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("sock.0");
    let rt = common::runtime();
    let mut cfg = config(&path);
    if let Some(m) = max_reply {
        cfg.max_reply_bytes = m;
    }
    let client = Client::new(cfg);
    let (result, elapsed) = rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            serve(s).await;
        });
        let start = Instant::now();
        let r = client.send(&Request::ShowPortals).await;
        let elapsed = start.elapsed();
        server.abort();
        (r, elapsed)
    });
    (result, elapsed, path)
}

fn kind(r: &Result<tgt_client::RawReply, tgt_client::Error>) -> &ErrorKind {
    match r {
        Err(e) => e.kind(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn assert_names_socket(r: &Result<tgt_client::RawReply, tgt_client::Error>, path: &Path) {
    if let Err(e) = r {
        assert_eq!(e.socket(), path);
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
    }
}

#[test]
fn missing_socket_is_socket_missing() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("nothing.0");
    let r = common::runtime().block_on(Client::new(config(&path)).send(&Request::ShowTargets));
    assert!(matches!(kind(&r), ErrorKind::SocketMissing));
    assert_names_socket(&r, &path);
}

#[test]
fn overlong_path_is_a_connect_error() {
    // sockaddr_un holds 107 bytes and a NUL.
    let path = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
    let r = common::runtime().block_on(Client::new(config(&path)).send(&Request::ShowTargets));
    assert!(matches!(kind(&r), ErrorKind::Connect(_)), "{r:?}");
    assert_names_socket(&r, &path);
}

#[test]
fn dead_socket_is_connection_refused() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("stale.0");
    // Bound then dropped: the file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let r = common::runtime().block_on(Client::new(config(&path)).send(&Request::ShowTargets));
    assert!(matches!(kind(&r), ErrorKind::ConnectionRefused), "{r:?}");
    assert_names_socket(&r, &path);
}

#[test]
fn whole_reply_is_read_and_request_is_exact() {
    let (r, _, _) = against(None, |mut s| async move {
        let req = read_request(&mut s).await;
        assert_eq!(req, Request::ShowPortals.emit().unwrap().to_vec());
        let text = b"Portal: 127.0.0.1:3260,1\n\0";
        let mut reply = ReplyRepr {
            code: ErrorCode::Success,
            len: 8 + text.len() as u32,
        }
        .emit()
        .to_vec();
        reply.extend_from_slice(text);
        s.write_all(&reply).await.unwrap();
    });
    let r = r.unwrap();
    assert_eq!(r.code, ErrorCode::Success);
    assert_eq!(r.text(), "Portal: 127.0.0.1:3260,1\n");
    assert_eq!(r.reads, 1);
}

#[test]
fn reply_in_tiny_pieces_is_put_together() {
    let text = "Portal: 127.0.0.1:3260,1\n".repeat(50) + "\0";
    let expected = text.trim_end_matches('\0').to_owned();
    let (r, _, _) = against(None, move |mut s| async move {
        read_request(&mut s).await;
        let mut reply = ReplyRepr {
            code: ErrorCode::Success,
            len: 8 + text.len() as u32,
        }
        .emit()
        .to_vec();
        reply.extend_from_slice(text.as_bytes());
        // Small pieces, with the client given a turn after each (one thread runs both).
        for piece in reply.chunks(7) {
            s.write_all(piece).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let r = r.unwrap();
    assert_eq!(r.text(), expected);
    assert!(r.reads > 1, "{} reads", r.reads);
}

#[test]
fn error_code_is_returned_and_typed() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("sock.0");
    let rt = common::runtime();
    let client = Client::new(config(&path));
    let r = rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_request(&mut s).await;
            s.write_all(&ReplyRepr::new(ErrorCode::from(9)).emit())
                .await
                .unwrap();
        });
        client.new_target(1, "iqn.2026-12.test:x").await
    });
    let e = r.unwrap_err();
    assert_eq!(e.tgtd_code(), Some(ErrorCode::TargetExist));
    assert!(e.to_string().contains("TARGET_EXIST"), "{e}");
}

#[test]
fn reply_cut_short_is_reported_with_counts() {
    let (r, _, path) = against(None, |mut s| async move {
        read_request(&mut s).await;
        let mut reply = ReplyRepr {
            code: ErrorCode::Success,
            len: 108,
        }
        .emit()
        .to_vec();
        reply.extend_from_slice(&[b'x'; 50]);
        s.write_all(&reply).await.unwrap();
        // Dropping `s` closes the connection.
    });
    assert!(
        matches!(
            kind(&r),
            ErrorKind::ReplyCutShort {
                expected: 108,
                got: 58
            }
        ),
        "{r:?}"
    );
    assert_names_socket(&r, &path);

    let (r, _, _) = against(None, |mut s| async move {
        read_request(&mut s).await;
        s.write_all(&[0, 0, 0]).await.unwrap();
    });
    assert!(
        matches!(
            kind(&r),
            ErrorKind::ReplyCutShort {
                expected: 8,
                got: 3
            }
        ),
        "{r:?}"
    );
}

#[test]
fn closed_without_reply() {
    let (r, _, _) = against(None, |s| async move { drop(s) });
    assert!(matches!(kind(&r), ErrorKind::ClosedWithoutReply), "{r:?}");
    let (r, _, _) = against(None, |mut s| async move {
        read_request(&mut s).await;
    });
    assert!(matches!(kind(&r), ErrorKind::ClosedWithoutReply), "{r:?}");
}

#[test]
fn reply_over_the_cap_is_refused_after_the_header() {
    let (r, elapsed, _) = against(Some(4096), |mut s| async move {
        read_request(&mut s).await;
        // Announce 1 GiB and keep the connection open: the client must not wait for it.
        let h = ReplyRepr {
            code: ErrorCode::Success,
            len: 1 << 30,
        }
        .emit();
        s.write_all(&h).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    assert!(
        matches!(
            kind(&r),
            ErrorKind::ReplyTooLarge {
                announced: 1_073_741_824,
                max: 4096
            }
        ),
        "{r:?}"
    );
    assert!(elapsed < FAST, "{elapsed:?}");
}

#[test]
fn no_reply_times_out_within_the_deadline() {
    let (r, elapsed, path) = against(None, |mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    assert!(
        matches!(kind(&r), ErrorKind::Timeout { deadline: Deadline::Exchange, after } if *after == FAST),
        "{r:?}"
    );
    assert!(elapsed >= FAST && elapsed < FAST * 3, "{elapsed:?}");
    assert_names_socket(&r, &path);

    // A reply that starts and then stalls is cut by the same deadline.
    let (r, elapsed, _) = against(None, |mut s| async move {
        read_request(&mut s).await;
        let h = ReplyRepr {
            code: ErrorCode::Success,
            len: 100,
        }
        .emit();
        s.write_all(&h).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    assert!(matches!(kind(&r), ErrorKind::Timeout { .. }), "{r:?}");
    assert!(elapsed < FAST * 3, "{elapsed:?}");
}

#[test]
fn garbage_is_an_invalid_reply() {
    // A length field below the header size.
    let (r, _, _) = against(None, |mut s| async move {
        read_request(&mut s).await;
        s.write_all(&[0xde, 0xad, 0xbe, 0xef, 4, 0, 0, 0])
            .await
            .unwrap();
    });
    assert!(matches!(kind(&r), ErrorKind::InvalidReply(_)), "{r:?}");
    // More bytes than announced.
    let (r, _, _) = against(None, |mut s| async move {
        read_request(&mut s).await;
        let mut reply = ReplyRepr::new(ErrorCode::Success).emit().to_vec();
        reply.extend_from_slice(b"surplus");
        s.write_all(&reply).await.unwrap();
    });
    assert!(matches!(kind(&r), ErrorKind::InvalidReply(_)), "{r:?}");
    // Random bytes announcing a huge length.
    let (r, _, _) = against(None, |mut s| async move {
        read_request(&mut s).await;
        s.write_all(&[0x41; 64]).await.unwrap();
    });
    assert!(matches!(kind(&r), ErrorKind::ReplyTooLarge { .. }), "{r:?}");
    // A successful reply whose show text is malformed.
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("sock.0");
    let rt = common::runtime();
    let client = Client::new(config(&path));
    let r = rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_request(&mut s).await;
            let text = b"Portal: nonsense\n\0";
            let mut reply = ReplyRepr {
                code: ErrorCode::Success,
                len: 8 + text.len() as u32,
            }
            .emit()
            .to_vec();
            reply.extend_from_slice(text);
            s.write_all(&reply).await.unwrap();
        });
        client.show_portals().await
    });
    match r {
        Err(e) => match e.kind() {
            ErrorKind::Malformed(m) => assert_eq!(m.line, 1),
            other => panic!("{other:?}"),
        },
        Ok(v) => panic!("{v:?}"),
    }
}
