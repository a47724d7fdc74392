//! Property tests: every Repr emit → parse round-trips, attributes are padded to 4 with zeros,
//! and parsing arbitrary bytes (whole PDUs, attribute lists, object decoding) never panics.

use std::net::{IpAddr, Ipv6Addr};

use isns_proto::query::{QueryAll, QueryLimits};
use isns_proto::wire::{Attributes, Header, Packet, attr::canonical_ip};
use isns_proto::{Attribute, Flags, Function, Message, Objects, Port, Scn, Status, Tag, Value};
use proptest::prelude::*;

fn string_for(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9.:_ é-]{0,40}")
        .unwrap()
        .prop_map(move |s| {
            let mut s = s;
            while s.len() > max {
                s.pop();
            }
            s
        })
}

/// Any attribute this crate can emit, with a value of its tag's type (or NIL).
fn attribute() -> impl Strategy<Value = Attribute> {
    let string_tags = prop::sample::select(vec![1u32, 32, 34, 48, 18]);
    let u32_tags = prop::sample::select(vec![2u32, 6, 7, 19, 22, 33, 35, 36, 51, 52]);
    let port_tags = prop::sample::select(vec![17u32, 20, 23, 50]);
    let ip_tags = prop::sample::select(vec![3u32, 16, 49]);
    let raw_tags = prop::sample::select(vec![5u32, 8, 12, 24, 37, 0x8000_0001, 2065]);
    prop_oneof![
        (string_tags, string_for(200)).prop_map(|(t, s)| Attribute::string(Tag(t), s)),
        (u32_tags, any::<u32>()).prop_map(|(t, v)| Attribute::u32(Tag(t), v)),
        (port_tags, any::<u16>(), any::<bool>())
            .prop_map(|(t, number, udp)| Attribute::port(Tag(t), Port { number, udp })),
        (ip_tags.clone(), any::<[u8; 16]>())
            .prop_map(|(t, b)| Attribute::ip(Tag(t), IpAddr::V6(Ipv6Addr::from(b)))),
        (ip_tags, any::<[u8; 4]>()).prop_map(|(t, b)| Attribute::ip(Tag(t), IpAddr::from(b))),
        any::<u64>().prop_map(|v| Attribute {
            tag: Tag::TIMESTAMP,
            value: Value::U64(v)
        }),
        (raw_tags, prop::collection::vec(any::<[u8; 4]>(), 0..8)).prop_map(|(t, words)| {
            let raw: Vec<u8> = words.concat();
            if raw.is_empty() {
                Attribute::nil(Tag(t))
            } else {
                Attribute {
                    tag: Tag(t),
                    value: Value::Raw(raw),
                }
            }
        }),
        any::<u32>().prop_map(|t| Attribute::nil(Tag(t))),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec(attribute(), 0..40),
    )
        .prop_map(|(function, flags, xid, status, attributes)| {
            let function = Function(function);
            Message {
                function,
                flags: Flags(flags | 0x0c00),
                transaction_id: xid,
                status: function.is_response().then_some(Status(status)),
                attributes,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn attribute_round_trips_and_is_padded(a in attribute()) {
        let len = a.buffer_len().unwrap();
        prop_assert_eq!(len % 4, 0);
        let mut buf = vec![0xa5u8; len + 3];
        prop_assert_eq!(a.emit(&mut buf).unwrap(), len);
        if let Value::String(s) = &a.value {
            // NUL-terminated and zero-padded, the length field counting the padding.
            prop_assert_eq!(len - 8, (s.len() + 1 + 3) & !3);
            prop_assert!(buf[8 + s.len()..len].iter().all(|&b| b == 0));
        }
        let tlv = Attributes::new(&buf[..len], 0).next().unwrap().unwrap();
        prop_assert_eq!(tlv.total_len(), len);
        prop_assert_eq!(Attribute::parse(&tlv).unwrap(), a);
    }

    #[test]
    fn message_round_trips(m in message()) {
        let bytes = m.to_vec().unwrap();
        prop_assert_eq!(bytes.len() % 4, 0);
        let back = Message::parse_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        let h = Header::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        prop_assert_eq!(usize::from(h.pdu_length) + 12, bytes.len());
        prop_assert_eq!(back.to_vec().unwrap(), bytes);
    }

    #[test]
    fn addresses_are_canonical(b in any::<[u8; 16]>()) {
        let ip = canonical_ip(IpAddr::V6(Ipv6Addr::from(b)));
        prop_assert_eq!(canonical_ip(ip), ip);
    }

    #[test]
    fn arbitrary_pdus_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..600), fix in any::<bool>()) {
        if fix && bytes.len() >= 12 {
            // Make the header plausible so the attribute layer is reached.
            let len = (bytes.len() - 12) as u16;
            bytes[0] = 0; bytes[1] = 1;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
            bytes[6] = 0x8c; bytes[10] = 0; bytes[11] = 0;
        }
        if let Ok(m) = Message::parse_bytes(&bytes) {
            let again = Message::parse_bytes(&m.to_vec().unwrap()).unwrap();
            prop_assert_eq!(&again, &m);
            let _ = Objects::decode(m.operating());
            let _ = Scn::from_message(&m);
            let mut q = QueryAll::new("iqn.x:y", QueryLimits::default());
            let _ = q.poll_request();
            let _ = q.handle_response(&m);
        }
    }

    #[test]
    fn arbitrary_attribute_lists_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for tlv in Attributes::new(&bytes, 0) {
            match tlv {
                Ok(t) => { let _ = Attribute::parse(&t); }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn objects_from_well_formed_attributes_never_panic(attrs in prop::collection::vec(attribute(), 0..60)) {
        let _ = Objects::decode(&attrs);
    }
}
