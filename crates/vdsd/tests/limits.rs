//! Requests the daemon refuses before a route sees them, over the Unix socket with raw bytes: heads
//! hyper cannot take (over the size or header-count limit, not HTTP, a bad header line), bodies over
//! the limit (declared, or chunked and never-ending), bad chunked framing. Each gets the status and
//! an `E_INVALIDARG` error document, and the daemon goes on serving. Every read has a deadline.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;

/// The whole answer to `request` on a new connection (read until the daemon closes it, within
/// 30 s), as (status, headers, body).
fn exchange(socket: &Path, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The daemon may answer and close before it has read everything: a write error is fine.
    let _ = s.write_all(request);
    read_answer(&mut s)
}

fn read_answer(s: &mut UnixStream) -> (u16, String, Vec<u8>) {
    let mut raw = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 65536];
    loop {
        assert!(Instant::now() < end, "no end of answer in 30 s: {raw:?}");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => panic!("reading the answer: {e} after {raw:?}"),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, head, raw[split + 4..].to_vec())
}

/// The answer is `status` with an `E_INVALIDARG` document and closes the connection.
fn assert_refused(what: &str, answer: (u16, String, Vec<u8>), status: u16) {
    let (got, head, body) = answer;
    assert_eq!(got, status, "{what}: {head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/json"),
        "{what}: {head}"
    );
    let doc: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&body)));
    assert_eq!(doc["error"]["name"], "E_INVALIDARG", "{what}: {doc}");
    assert_eq!(doc["error"]["hresult"], "0x80070057", "{what}: {doc}");
    assert!(
        !doc["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{what}: {doc}"
    );
}

#[test]
fn heads_hyper_refuses_get_the_daemon_s_error_body() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    // One header over the head limit (16 KiB by default).
    let big = format!(
        "GET /v1/service HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_refused("a 64 KiB head", exchange(&d.socket, big.as_bytes()), 431);
    // More header lines than allowed, each small.
    let mut many = String::from("GET /v1/service HTTP/1.1\r\nhost: x\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-h{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert_refused(
        "150 header lines",
        exchange(&d.socket, many.as_bytes()),
        431,
    );
    // A header line without a colon.
    assert_refused(
        "a bad header line",
        exchange(
            &d.socket,
            b"GET /v1/service HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n",
        ),
        400,
    );
    // Not HTTP at all: a TLS ClientHello's first bytes on the plain socket.
    assert_refused(
        "a TLS hello",
        exchange(
            &d.socket,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ),
        400,
    );
    // A request line that is not one.
    assert_refused(
        "a bad request line",
        exchange(&d.socket, b"GET\r\n\r\n"),
        400,
    );
    // Routes still answer as before: a wrong method is the router's 405, with its body.
    let (status, _, body) = exchange(
        &d.socket,
        b"PATCH /v1/providers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{}", String::from_utf8_lossy(&body));
    // And the daemon serves on.
    assert_eq!(d.get_json("/v1/service")["caller_role"], "admin");
    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn bodies_over_the_limit_or_badly_framed_are_refused() {
    let d = Daemon::start(&["--sim", "--refresh-interval", "0s"]);
    // A declared length over the limit (1 MiB), on a route that reads no body: refused before
    // anything runs.
    assert_refused(
        "a declared 2 MiB body on POST /v1/refresh",
        exchange(
            &d.socket,
            b"POST /v1/refresh HTTP/1.1\r\nhost: x\r\ncontent-length: 2097152\r\n\r\n",
        ),
        413,
    );
    // Bad chunked framing.
    assert_refused(
        "a chunk size that is not hex",
        exchange(
            &d.socket,
            b"POST /v1/providers HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        ),
        400,
    );
    // A chunked body that never ends: the daemon stops reading at the limit and answers 413 while
    // the client is still writing; the writer then finds the connection closed. The writer runs
    // on its own thread so that neither side waits on the other.
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    w.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(
            b"POST /v1/providers HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n",
        );
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        let mut sent = 0usize;
        // 64 MiB at most: far more than the limit and the socket's buffers together.
        while sent < 64 << 20 {
            match w.write_all(chunk.as_bytes()) {
                Ok(()) => sent += 0x10000,
                Err(e) => return (sent, Some(e.kind())),
            }
        }
        (sent, None)
    });
    let answer = read_answer(&mut s);
    assert_refused("a never-ending chunked body", answer, 413);
    let (sent, error) = writer.join().expect("writer");
    assert!(
        error.is_some(),
        "the daemon read all {sent} bytes instead of stopping at the limit"
    );
    assert!(sent < 16 << 20, "{sent} bytes were taken before the answer");
    assert_eq!(d.get_json("/v1/service")["caller_role"], "admin");
    assert_eq!(d.stop().code(), Some(0));
}
