//! Golden vectors from real captures (`tests/vectors/*.bin`, extracted by
//! `tests/vectors/extract.sh`): tgtd and isnsadm talking to isnsd 0.101 (`isns.pcap` from
//! `shared/fixtures/peers`) and a Control node registering for and receiving an SCN
//! (`isnsd-scn.pcap`). Every PDU parses to the exact field values, every PDU re-emits byte for
//! byte, and where the capture shows a request of the kind this crate builds, the builder emits
//! the same bytes.

use std::net::IpAddr;

use isns_proto::query::{get_next, one_shot_query};
use isns_proto::wire::{Packet, pdu_len};
use isns_proto::{
    Attribute, ControlNode, ControlPortal, Flags, Function, Message, NodeType, ObjectKind, Objects,
    Port, Scn, ScnBitmap, ScnEvent, Status, Tag,
};

const TGT_DEREG_C: &[u8] = include_bytes!("vectors/isns-s0-client.bin");
const TGT_DEREG_S: &[u8] = include_bytes!("vectors/isns-s0-server.bin");
const TGT_REG_C: &[u8] = include_bytes!("vectors/isns-s1-client.bin");
const TGT_REG_S: &[u8] = include_bytes!("vectors/isns-s1-server.bin");
const ADM_NAME_C: &[u8] = include_bytes!("vectors/isns-s2-client.bin");
const ADM_NAME_S: &[u8] = include_bytes!("vectors/isns-s2-server.bin");
const ADM_PORTAL_C: &[u8] = include_bytes!("vectors/isns-s3-client.bin");
const ADM_PORTAL_S: &[u8] = include_bytes!("vectors/isns-s3-server.bin");
const ADM_PG_C: &[u8] = include_bytes!("vectors/isns-s4-client.bin");
const ADM_PG_S: &[u8] = include_bytes!("vectors/isns-s4-server.bin");
const CTL_REG_C: &[u8] = include_bytes!("vectors/isnsd-scn-s0-client.bin");
const CTL_REG_S: &[u8] = include_bytes!("vectors/isnsd-scn-s0-server.bin");
const ADM_REG_C: &[u8] = include_bytes!("vectors/isnsd-scn-s1-client.bin");
const ADM_REG_S: &[u8] = include_bytes!("vectors/isnsd-scn-s1-server.bin");
const SCN_S: &[u8] = include_bytes!("vectors/isnsd-scn-s2-server.bin");
const SCN_C: &[u8] = include_bytes!("vectors/isnsd-scn-s2-client.bin");

const ALL: &[&[u8]] = &[
    TGT_DEREG_C,
    TGT_DEREG_S,
    TGT_REG_C,
    TGT_REG_S,
    ADM_NAME_C,
    ADM_NAME_S,
    ADM_PORTAL_C,
    ADM_PORTAL_S,
    ADM_PG_C,
    ADM_PG_S,
    CTL_REG_C,
    CTL_REG_S,
    ADM_REG_C,
    ADM_REG_S,
    SCN_S,
    SCN_C,
];

const ISNS1: &str = "iqn.2026-11.test.vds:isns1";
const ISNSADM: &str = "iqn.2026-11.test.vds:isnsadm";

/// Splits a byte stream into PDUs.
fn split(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let n = pdu_len(stream).expect("whole header").min(stream.len());
        out.push(&stream[..n]);
        stream = &stream[n..];
    }
    out
}

fn parse_all(stream: &[u8]) -> Vec<Message> {
    split(stream)
        .into_iter()
        .map(|p| Message::parse_bytes(p).expect("captured PDU parses"))
        .collect()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::from([a, b, c, d])
}

fn s(tag: Tag, v: &str) -> Attribute {
    Attribute::string(tag, v)
}

#[test]
fn every_captured_pdu_parses_and_re_emits_byte_for_byte() {
    let mut n = 0;
    for stream in ALL {
        for pdu in split(stream) {
            let m = Message::parse_bytes(pdu).unwrap();
            let packet = Packet::new_checked(pdu).unwrap();
            assert_eq!(packet.version(), 1);
            assert_eq!(packet.total_len(), pdu.len());
            assert_eq!(m.to_vec().unwrap(), pdu, "{m:?}");
            n += 1;
        }
    }
    assert_eq!(n, 30);
}

#[test]
fn tgt_deregistration_and_its_reply() {
    let [m] = parse_all(TGT_DEREG_C).try_into().unwrap();
    assert_eq!(m.function, Function::DEV_DEREG);
    assert_eq!(m.flags, Flags(0x8c00));
    assert_eq!(m.transaction_id, 11);
    assert_eq!(m.source(), Some(&s(Tag::ISCSI_NAME, ISNS1)));
    assert!(m.key().is_empty());
    assert_eq!(m.operating(), &[s(Tag::ENTITY_IDENTIFIER, "127.0.0.1")]);
    let ours = Message::dev_dereg(ISNS1, vec![s(Tag::ENTITY_IDENTIFIER, "127.0.0.1")])
        .with_transaction_id(11);
    assert_eq!(ours.to_vec().unwrap(), TGT_DEREG_C);

    let [r] = parse_all(TGT_DEREG_S).try_into().unwrap();
    assert_eq!(r.function, Function::DEV_DEREG_RSP);
    assert_eq!(r.flags, Flags(0x4c00));
    assert_eq!(r.transaction_id, 11);
    assert_eq!(r.status, Some(Status::SUCCESSFUL));
    assert_eq!(r.attributes, vec![Attribute::DELIMITER]);
}

#[test]
fn tgt_registration_scn_registration_and_queries() {
    let [reg, scnreg, q1, q2, q3, q4, q5] = parse_all(TGT_REG_C).try_into().unwrap();
    assert_eq!(reg.function, Function::DEV_ATTR_REG);
    assert_eq!(reg.flags, Flags(0x9c00));
    assert!(reg.flags.contains(Flags::REPLACE));
    assert_eq!(reg.transaction_id, 12);
    let eid = s(Tag::ENTITY_IDENTIFIER, "127.0.0.1");
    let operating = vec![
        eid.clone(),
        Attribute::u32(Tag::ENTITY_PROTOCOL, 2),
        Attribute::ip(Tag::PORTAL_IP, v4(127, 0, 0, 1)),
        Attribute::port(Tag::PORTAL_PORT, Port::tcp(3270)),
        Attribute::port(Tag::SCN_PORT, Port::tcp(43265)),
        s(Tag::ISCSI_NAME, ISNS1),
        Attribute::u32(Tag::ISCSI_NODE_TYPE, 1),
    ];
    assert_eq!(reg.key(), std::slice::from_ref(&eid));
    assert_eq!(reg.operating(), &operating[..]);
    // tgt sends IPv4-mapped addresses, as we emit them.
    let ours =
        Message::dev_attr_reg(ISNS1, vec![eid.clone()], operating, true).with_transaction_id(12);
    assert_eq!(ours.to_vec().unwrap(), split(TGT_REG_C)[0]);

    assert_eq!(scnreg.function, Function::SCN_REG);
    assert_eq!(scnreg.transaction_id, 13);
    let ours = Message::scn_reg(ISNS1, ISNS1, ScnBitmap(0x9c)).with_transaction_id(13);
    assert_eq!(ours, scnreg);
    assert_eq!(ours.to_vec().unwrap(), split(TGT_REG_C)[1]);

    assert_eq!(q1.function, Function::DEV_ATTR_QRY);
    assert_eq!(q1.key(), std::slice::from_ref(&eid));
    assert_eq!(q1.operating(), &[Attribute::nil(Tag::REGISTRATION_PERIOD)]);
    assert_eq!(q2.key(), &[Attribute::u32(Tag::ISCSI_NODE_TYPE, 2)]);
    assert_eq!(
        q2.operating(),
        &[
            Attribute::nil(Tag::ISCSI_NAME),
            Attribute::nil(Tag::ISCSI_NODE_TYPE),
            Attribute::nil(Tag::PORTAL_IP)
        ]
    );
    // tgt repeats the initiator query every second.
    for (q, xid) in [(&q2, 15), (&q3, 16), (&q4, 17), (&q5, 18)] {
        assert_eq!(q, &q2.clone().with_transaction_id(xid));
    }

    let replies = parse_all(TGT_REG_S);
    let xids: Vec<u16> = replies.iter().map(|r| r.transaction_id).collect();
    assert_eq!(xids, vec![12, 13, 14, 15, 16, 17, 18]);
    let r = &replies[0];
    assert_eq!(r.function, Function::DEV_ATTR_REG_RSP);
    assert_eq!(r.status, Some(Status::SUCCESSFUL));
    assert_eq!(r.key(), std::slice::from_ref(&eid));
    assert!(
        r.operating()
            .contains(&Attribute::u32(Tag::PORTAL_INDEX, 6))
    );
    let o = Objects::decode(r.operating()).unwrap();
    assert_eq!(o.portals[0].scn_port, Some(Port::tcp(43265)));
    assert_eq!(o.nodes[0].node_type, Some(NodeType::TARGET));
    assert_eq!(replies[1].function, Function::SCN_REG_RSP);
    assert_eq!(replies[1].attributes, vec![Attribute::DELIMITER]);
    // The registration-period query: key echoed, nothing else.
    assert_eq!(replies[2].operating(), &[] as &[Attribute]);
    // "Initiators?" — none; the key is echoed.
    assert_eq!(replies[3].key(), &[Attribute::u32(Tag::ISCSI_NODE_TYPE, 2)]);
    assert!(replies[3].operating().is_empty());
}

#[test]
fn isnsadm_name_query_decodes_to_objects() {
    let [q] = parse_all(ADM_NAME_C).try_into().unwrap();
    assert_eq!(q.function, Function::DEV_ATTR_QRY);
    assert_eq!(q.transaction_id, 1);
    assert_eq!(q.source(), Some(&s(Tag::ISCSI_NAME, ISNSADM)));
    assert_eq!(q.key(), &[s(Tag::ISCSI_NAME, ISNS1)]);
    assert!(q.operating().is_empty());

    let [r] = parse_all(ADM_NAME_S).try_into().unwrap();
    assert_eq!(r.status, Some(Status::SUCCESSFUL));
    assert!(
        r.operating()
            .contains(&Attribute::u32(Tag::ENTITY_INDEX, 5))
    );
    let ts = r
        .operating()
        .iter()
        .find(|a| a.tag == Tag::TIMESTAMP)
        .and_then(Attribute::as_u64);
    assert_eq!(ts, Some(0x6b04_cfe6));
    let o = Objects::decode(r.operating()).unwrap();
    assert_eq!(o.entities.len(), 1);
    assert_eq!(o.entities[0].eid, "127.0.0.1");
    assert_eq!(o.entities[0].protocol, Some(2));
    assert_eq!(o.nodes.len(), 1);
    assert_eq!(o.nodes[0].name, ISNS1);
    assert_eq!(o.nodes[0].entity.as_deref(), Some("127.0.0.1"));
    assert_eq!(o.portals.len(), 1);
    assert_eq!(o.portals[0].ip, v4(127, 0, 0, 1));
    assert_eq!(o.portals[0].port, Port::tcp(3270));
    assert_eq!(o.portals[0].index, Some(6));
    assert_eq!(o.portal_groups.len(), 1);
    let pg = &o.portal_groups[0];
    assert_eq!(
        (pg.node.as_str(), pg.ip, pg.port, pg.tag, pg.index),
        (ISNS1, v4(127, 0, 0, 1), Port::tcp(3270), Some(1), Some(8))
    );
}

#[test]
fn isnsadm_portal_and_group_queries() {
    let [q] = parse_all(ADM_PORTAL_C).try_into().unwrap();
    assert_eq!(q.key(), &[Attribute::nil(Tag::PORTAL_IP)]);
    let [r] = parse_all(ADM_PORTAL_S).try_into().unwrap();
    assert_eq!(r.key(), &[Attribute::nil(Tag::PORTAL_IP)]);
    let o = Objects::decode(r.operating()).unwrap();
    assert_eq!(o.portals.len(), 1);
    assert_eq!(o.portals[0].scn_port, Some(Port::tcp(43265)));

    let [q] = parse_all(ADM_PG_C).try_into().unwrap();
    assert_eq!(q.key(), &[Attribute::nil(Tag::PG_ISCSI_NAME)]);
    let [r] = parse_all(ADM_PG_S).try_into().unwrap();
    let o = Objects::decode(r.operating()).unwrap();
    assert_eq!(o.portal_groups.len(), 1);
    assert_eq!(o.portal_groups[0].tag, Some(1));
    assert_eq!(o.entities[0].eid, "127.0.0.1");
}

#[test]
fn control_node_registration_is_what_we_emit() {
    let [reg, scnreg] = parse_all(CTL_REG_C).try_into().unwrap();
    let ctl = ControlNode {
        name: "iqn.x:ctl2".into(),
        entity_id: "ctl2".into(),
        portal: Some(ControlPortal {
            ip: v4(127, 0, 0, 1),
            port: 23998,
            scn_port: Some(23998),
        }),
        registration_period: None,
    };
    let ours = ctl.registration(false).with_transaction_id(1);
    assert_eq!(ours, reg);
    assert_eq!(ours.to_vec().unwrap(), split(CTL_REG_C)[0]);
    let ours = ctl
        .scn_registration(ScnBitmap::ALL_EVENTS)
        .with_transaction_id(2);
    assert_eq!(ours.to_vec().unwrap(), split(CTL_REG_C)[1]);
    assert_eq!(
        scnreg.operating(),
        &[Attribute::u32(Tag::ISCSI_SCN_BITMAP, 0x3f)]
    );

    let [r1, r2] = parse_all(CTL_REG_S).try_into().unwrap();
    assert_eq!(r1.status, Some(Status::SUCCESSFUL));
    let o = Objects::decode(r1.operating()).unwrap();
    assert_eq!(o.nodes[0].node_type, Some(NodeType::CONTROL));
    assert_eq!(o.portals[0].scn_port, Some(Port::tcp(23998)));
    assert_eq!(o.portals[0].index, Some(18));
    assert_eq!(
        (r2.function, r2.status),
        (Function::SCN_REG_RSP, Some(Status(0)))
    );
}

#[test]
fn isnsd_scn_and_the_answer() {
    let [m] = parse_all(SCN_S).try_into().unwrap();
    assert_eq!(m.function, Function::SCN);
    // isnsd sends its SCN with the CLIENT flag (0x8c00), not SERVER.
    assert_eq!(m.flags, Flags(0x8c00));
    let scn = Scn::from_message(&m).unwrap();
    assert_eq!(scn.transaction_id, 1);
    assert_eq!(scn.destination, "iqn.x:ctl2");
    assert_eq!(scn.timestamp, Some(0x6b0f_b22d));
    assert_eq!(
        scn.events,
        vec![ScnEvent {
            bitmap: ScnBitmap(0x0c),
            node: "iqn.2024-01.test:new9".into()
        }]
    );
    assert!(scn.events[0].bitmap.contains(ScnBitmap::OBJECT_ADDED));
    assert!(scn.other.is_empty());

    // The captured client answered with SERVER flags; ours carry CLIENT flags, otherwise equal.
    let [answer] = parse_all(SCN_C).try_into().unwrap();
    let ours = Message::scn_response(1, "iqn.x:ctl2");
    assert_eq!(answer.flags, Flags(0x4c00));
    assert_eq!(
        Message {
            flags: Flags(0x4c00),
            ..ours.clone()
        },
        answer
    );
    assert_eq!(ours.flags, Flags::CLIENT_SINGLE);
}

#[test]
fn isnsadm_registration_of_a_target() {
    let [reg] = parse_all(ADM_REG_C).try_into().unwrap();
    assert_eq!(reg.key(), &[s(Tag::ENTITY_IDENTIFIER, "host9")]);
    assert!(
        reg.operating()
            .contains(&s(Tag::ISCSI_NAME, "iqn.2024-01.test:new9"))
    );
    let [r] = parse_all(ADM_REG_S).try_into().unwrap();
    assert_eq!(r.status, Some(Status::SUCCESSFUL));
}

#[test]
fn recipe_queries_have_the_reference_layout() {
    // The reference's example frame: DevGetNext for portal groups, source iqn.2024-01.test:vds.
    let m = get_next("iqn.2024-01.test:vds", ObjectKind::PortalGroup, None).with_transaction_id(1);
    let expected: Vec<u8> = [
        &[
            0x00, 0x01, 0x00, 0x03, 0x00, 0x40, 0x8c, 0x00, 0x00, 0x01, 0x00, 0x00,
        ][..],
        &[0, 0, 0, 0x20, 0, 0, 0, 0x18],
        b"iqn.2024-01.test:vds\0\0\0\0",
        &[0, 0, 0, 0x30, 0, 0, 0, 0],
        &[0, 0, 0, 0x31, 0, 0, 0, 0],
        &[0, 0, 0, 0x32, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(m.to_vec().unwrap(), expected);

    let q = one_shot_query("iqn.2024-01.test:vds");
    let tags: Vec<u32> = q.operating().iter().map(|a| a.tag.0).collect();
    assert_eq!(tags, vec![1, 32, 33, 34, 16, 17, 48, 49, 50, 51]);
    assert!(q.operating().iter().all(Attribute::is_nil));
    assert_eq!(q.key(), &[Attribute::nil(Tag::ISCSI_NODE_TYPE)]);
}
