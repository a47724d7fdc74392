//! Hostile iSNS servers and SCN senders written here (tokio listeners on 127.0.0.1:0): every
//! misbehaviour gives its own typed error within its deadline, never a panic, and memory stays
//! bounded by the reply cap.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isns_client::{
    Client, ClientConfig, ErrorKind, Function, Message, Phase, ScnBitmap, ScnListener,
    ScnListenerConfig, Status,
};
use isns_proto::wire::pdu_len;
use isns_proto::{Attribute, Flags, InvalidMessage, PeerMisbehaved, Tag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SOURCE: &str = "iqn.2026-12.test.vds:hostile";
const EXCHANGE: Duration = Duration::from_millis(600);

fn config() -> ClientConfig {
    let mut c = ClientConfig::new(SOURCE);
    c.connect_timeout = Duration::from_secs(1);
    c.exchange_timeout = EXCHANGE;
    c
}

/// Serves every connection with `script`; returns the address.
async fn server<F, Fut>(script: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(script(s));
        }
    });
    addr
}

/// Reads one request PDU.
async fn read_request(s: &mut TcpStream) -> Option<Message> {
    let mut buf = vec![0u8; 12];
    s.read_exact(&mut buf).await.ok()?;
    let n = pdu_len(&buf)?;
    buf.resize(n, 0);
    s.read_exact(&mut buf[12..]).await.ok()?;
    Message::parse_bytes(&buf).ok()
}

/// A reply header for `req` announcing `payload_len` bytes.
fn header(req: &Message, payload_len: u16) -> Vec<u8> {
    let mut h = vec![0, 1];
    h.extend(req.function.response().0.to_be_bytes());
    h.extend(payload_len.to_be_bytes());
    h.extend(Flags::SERVER_SINGLE.0.to_be_bytes());
    h.extend(req.transaction_id.to_be_bytes());
    h.extend([0, 0]);
    h
}

/// Answers the first request with `body` (after a header announcing exactly its length).
async fn answer_with(body: Vec<u8>) -> SocketAddr {
    server(move |mut s| {
        let body = body.clone();
        async move {
            if let Some(req) = read_request(&mut s).await {
                let mut pdu = header(&req, body.len() as u16);
                pdu.extend(&body);
                let _ = s.write_all(&pdu).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    })
    .await
}

async fn query(addr: SocketAddr, cfg: ClientConfig) -> (isns_client::Error, Duration) {
    let start = Instant::now();
    let mut c = Client::new(addr.to_string(), cfg);
    let e = match c.query_all().await {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e,
    };
    (e, start.elapsed())
}

fn malformed(e: &isns_client::Error) -> &isns_proto::Error {
    match e.kind() {
        ErrorKind::Malformed(m) => m,
        other => panic!("expected Malformed, got {other:?} ({e})"),
    }
}

#[tokio::test]
async fn truncated_tlv() {
    // Status 0, then an attribute header cut after 4 of its 8 bytes.
    let addr = answer_with(vec![0, 0, 0, 0, 0, 0, 0, 0x20]).await;
    let (e, took) = query(addr, config()).await;
    assert_eq!(
        malformed(&e),
        &isns_proto::Error::InvalidMessage(InvalidMessage::AttributeHeaderTruncated {
            offset: 16,
            remaining: 4
        })
    );
    assert_eq!(e.function(), Some(Function::DEV_ATTR_QRY));
    assert!(took < EXCHANGE, "{took:?}");
}

#[tokio::test]
async fn attribute_length_past_the_pdu() {
    // Status 0, tag 32 claiming 100 bytes with 4 left.
    let addr = answer_with(vec![
        0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 100, b'i', b'q', b'n', 0,
    ])
    .await;
    let (e, _) = query(addr, config()).await;
    assert_eq!(
        malformed(&e),
        &isns_proto::Error::InvalidMessage(InvalidMessage::AttributePastPdu {
            tag: Tag::ISCSI_NAME,
            offset: 16,
            len: 100,
            remaining: 4
        })
    );
    assert!(e.to_string().contains("claims 100 bytes"), "{e}");
}

#[tokio::test]
async fn a_million_attributes() {
    // A header announcing the largest payload, then eight million bytes of NIL attributes
    // (a million TLVs): the client reads one PDU, finds more than 4096 attributes and hangs up.
    let addr = server(|mut s| async move {
        if let Some(req) = read_request(&mut s).await {
            let mut pdu = header(&req, 0xfffc);
            pdu.extend([0, 0, 0, 0]);
            let _ = s.write_all(&pdu).await;
            let chunk = [0u8, 0, 0, 0x21, 0, 0, 0, 0].repeat(8192);
            for _ in 0..(1_000_000 / 8192 + 1) {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    let (e, took) = query(addr, config()).await;
    assert_eq!(
        malformed(&e),
        &isns_proto::Error::InvalidMessage(InvalidMessage::TooManyAttributes { max: 4096 })
    );
    assert!(took < EXCHANGE, "{took:?}");

    // With a smaller reply cap, the same server is refused before its payload is read.
    let mut cfg = config();
    cfg.max_reply_len = 8192 + 12;
    let (e, _) = query(addr, cfg).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ReplyTooLarge {
                len: 65544,
                max: 8204
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn wrong_transaction_id_and_wrong_function() {
    let addr = server(|mut s| async move {
        if let Some(req) = read_request(&mut s).await {
            let mut reply = Message::response_to(&req, Status::SUCCESSFUL, vec![]);
            reply.transaction_id = req.transaction_id.wrapping_add(7);
            let _ = s.write_all(&reply.to_vec().unwrap()).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
    .await;
    let (e, _) = query(addr, config()).await;
    assert_eq!(
        malformed(&e),
        &isns_proto::Error::PeerMisbehaved(PeerMisbehaved::TransactionIdMismatch {
            expected: 1,
            got: 8
        })
    );

    let addr = server(|mut s| async move {
        if let Some(req) = read_request(&mut s).await {
            let mut reply = Message::response_to(&req, Status::SUCCESSFUL, vec![]);
            reply.function = Function::DEV_GET_NEXT_RSP;
            let _ = s.write_all(&reply.to_vec().unwrap()).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
    .await;
    let (e, _) = query(addr, config()).await;
    assert!(matches!(
        malformed(&e),
        isns_proto::Error::PeerMisbehaved(PeerMisbehaved::UnexpectedFunction { .. })
    ));
}

#[tokio::test]
async fn silence_and_dribble_time_out() {
    let addr = server(|mut s| async move {
        let _ = read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let (e, took) = query(addr, config()).await;
    assert!(
        matches!(e.kind(), ErrorKind::Timeout { phase: Phase::Receive, after } if *after == EXCHANGE),
        "{e}"
    );
    assert!(took >= EXCHANGE && took < EXCHANGE * 2, "{took:?}");

    // One byte every 100 ms: the deadline covers the whole reply, not each read.
    let addr = server(|mut s| async move {
        if let Some(req) = read_request(&mut s).await {
            let mut pdu = header(&req, 8);
            pdu.extend([0u8; 8]);
            for b in pdu {
                if s.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;
    let (e, took) = query(addr, config()).await;
    assert!(e.is_timeout(), "{e}");
    assert!(took < EXCHANGE * 2, "{took:?}");
}

#[tokio::test]
async fn closed_mid_reply_and_refused() {
    let addr = server(|mut s| async move {
        if let Some(req) = read_request(&mut s).await {
            let mut pdu = header(&req, 40);
            pdu.extend([0u8; 10]);
            let _ = s.write_all(&pdu).await;
        }
    })
    .await;
    let (e, _) = query(addr, config()).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Closed {
                phase: Phase::Receive,
                received: 22
            }
        ),
        "{e}"
    );

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = Client::new(format!("127.0.0.1:{port}"), config());
    let e = c.query_all().await.unwrap_err();
    assert!(e.is_refused(), "{e}");
    let e = Client::new("not a host:port", config())
        .query_all()
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Resolve(_)), "{e}");
}

#[tokio::test]
async fn a_status_becomes_a_typed_error_and_the_client_recovers() {
    // First connection: status 8 to the query. Second: a proper empty answer.
    let addr = server(|mut s| async move {
        while let Some(req) = read_request(&mut s).await {
            let status = if req.transaction_id == 1 {
                Status::SOURCE_UNAUTHORIZED
            } else {
                Status::NO_SUCH_ENTRY
            };
            let reply = Message::response_to(&req, status, vec![]);
            if s.write_all(&reply.to_vec().unwrap()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut c = Client::new(addr.to_string(), config());
    let e = c.query_all().await.unwrap_err();
    assert_eq!(e.status(), Some(Status::SOURCE_UNAUTHORIZED));
    let found = c.query_all().await.unwrap();
    assert!(found.objects.is_empty());
    // A request that cannot be encoded never reaches the wire.
    let bad = Message::dev_attr_qry(&"x".repeat(300), vec![], vec![]);
    assert!(matches!(
        c.exchange(bad).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest(_)
    ));
}

/// An SCN for `dest` naming `node`.
fn scn(xid: u16, dest: &str, node: &str) -> Vec<u8> {
    Message {
        function: Function::SCN,
        flags: Flags::CLIENT_SINGLE,
        transaction_id: xid,
        status: None,
        attributes: vec![
            Attribute::string(Tag::ISCSI_NAME, dest),
            Attribute {
                tag: Tag::TIMESTAMP,
                value: isns_proto::Value::U64(1),
            },
            Attribute::u32(Tag::ISCSI_SCN_BITMAP, ScnBitmap::OBJECT_ADDED.0),
            Attribute::string(Tag::ISCSI_NAME, node),
        ],
    }
    .to_vec()
    .unwrap()
}

#[tokio::test]
async fn scn_listener_serves_good_senders_despite_hostile_ones() {
    let mut cfg = ScnListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.read_timeout = Duration::from_millis(500);
    cfg.max_connections = 4;
    let mut listener = ScnListener::bind(cfg).await.unwrap();
    let addr = listener.local_addr();

    // A silent connection and a garbage sender.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0xff; 64]).await.unwrap();
    // A sender claiming a huge PDU and dribbling.
    let mut dribble = TcpStream::connect(addr).await.unwrap();
    dribble
        .write_all(&[0, 1, 0, 8, 0xff, 0xfc, 0x8c, 0, 0, 1, 0, 0])
        .await
        .unwrap();

    // A good sender is served at once, answered with the SCN response.
    let start = Instant::now();
    let mut good = TcpStream::connect(addr).await.unwrap();
    good.write_all(&scn(42, "iqn.x:ctl", "iqn.x:new"))
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(n.scn.destination, "iqn.x:ctl");
    assert_eq!(n.scn.events[0].node, "iqn.x:new");
    let mut answer = vec![0u8; 36];
    good.read_exact(&mut answer).await.unwrap();
    let answer = Message::parse_bytes(&answer).unwrap();
    assert_eq!(answer, Message::scn_response(42, "iqn.x:ctl"));
    // Several SCNs on one connection.
    good.write_all(&scn(43, "iqn.x:ctl", "iqn.x:other"))
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.scn.transaction_id, 43);
    let mut answer = vec![0u8; 36];
    good.read_exact(&mut answer).await.unwrap();
    assert_eq!(Message::parse_bytes(&answer).unwrap().transaction_id, 43);

    // The hostile ones are closed within the read deadline.
    let mut buf = [0u8; 16];
    for mut s in [silent, garbage, dribble] {
        let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    }
    drop(good);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stats = listener.stats();
    assert_eq!(stats.answered, 2);
    // The garbage and the dribbling sender; the silent one was merely idle.
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.connections, 4);

    // Past max_connections, extra connections are closed on accept.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    assert!(listener.stats().refused_connections >= 1);
}

#[tokio::test]
async fn an_scn_the_caller_does_not_take_is_left_unanswered() {
    let mut cfg = ScnListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.read_timeout = Duration::from_millis(300);
    cfg.queue = 1;
    let listener = ScnListener::bind(cfg).await.unwrap();
    let mut s = TcpStream::connect(listener.local_addr()).await.unwrap();
    s.write_all(&scn(1, "iqn.x:ctl", "iqn.x:a")).await.unwrap();
    let mut answer = vec![0u8; 36];
    s.read_exact(&mut answer).await.unwrap();
    // The queue (1) is full and nobody reads it: the second SCN gets no answer, the connection
    // is closed, and the server will retry it.
    s.write_all(&scn(2, "iqn.x:ctl", "iqn.x:b")).await.unwrap();
    let mut buf = [0u8; 36];
    let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    assert_eq!(listener.stats().answered, 1);
}
