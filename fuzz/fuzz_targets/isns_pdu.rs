//! iSNS PDUs: header view, TLV walk, message parse, SCN view, object decoding and the QueryAll
//! procedure on any bytes. What parses re-emits to bytes that parse to the same message, and
//! re-emitting those is a fixed point.
#![no_main]

use isns_proto::query::{QueryAll, QueryLimits};
use isns_proto::wire::{Attributes, Header, Packet};
use isns_proto::{Attribute, Message, Objects, Scn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    // Every accessor is safe after new_checked.
    let _ = (
        packet.version(),
        packet.function(),
        packet.flags(),
        packet.transaction_id(),
        packet.sequence_id(),
        packet.total_len(),
    );
    let _ = Header::parse(&packet);
    for tlv in Attributes::new(packet.payload(), 12) {
        match tlv {
            Ok(t) => {
                let _ = (t.tag(), t.length(), t.value());
                let _ = Attribute::parse(&t);
            }
            Err(_) => break,
        }
    }
    let Ok(message) = Message::parse(&packet) else {
        return;
    };
    let _ = (message.source(), message.key(), message.operating());
    let bytes = message.to_vec().expect("a parsed message re-emits");
    let again = Message::parse_bytes(&bytes).expect("an emitted message parses");
    assert_eq!(again, message);
    assert_eq!(again.to_vec().expect("re-emit"), bytes);

    let _ = Scn::from_message(&message);
    if let Ok(objects) = Objects::decode(message.operating()) {
        let mut o = objects;
        o.drop_stale_portal_groups();
    }
    let mut q = QueryAll::new("iqn.2026-11.org.vds:fuzz", QueryLimits::default());
    for _ in 0..3 {
        let Some(request) = q.poll_request() else { break };
        let mut reply = message.clone();
        reply.transaction_id = request.transaction_id;
        if q.handle_response(&reply).is_err() {
            break;
        }
    }
    let _ = q.finish();
});
