//! iscsi-proto benchmarks: PDU parse/emit, and the text codec + TargetAddress parser on a
//! synthetic 10,000-target SendTargets answer (reported as throughput), plus a replay of the
//! captured 100-target MRDSL=512 exchange through the whole session state machine.
//!
//! Run: `cargo bench -p iscsi-proto --bench proto`.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use iscsi_proto::address::{parse_send_targets, parse_send_targets_text};
use iscsi_proto::session::{DiscoverySession, SessionConfig, SessionSeed};
use iscsi_proto::text;
use iscsi_proto::wire::{Packet, RESERVED_TAG, Repr, TextResponse};

const MRDSL512_T2I: &[u8] =
    include_bytes!("../tests/vectors/sendtargets-100targets-mrdsl512-s0-t2i.bin");
const MRDSL512_I2T: &[u8] =
    include_bytes!("../tests/vectors/sendtargets-100targets-mrdsl512-s0-i2t.bin");

/// A SendTargets answer with `n` targets, each with a v4 and a v6 address (≈120 bytes/target).
fn synthetic_answer(n: usize) -> Vec<u8> {
    let mut w = text::TextWriter::new();
    for i in 0..n {
        w.push(
            "TargetName",
            &format!("iqn.2026-11.test.vds:synthetic-target-{i:05}"),
        )
        .unwrap();
        w.push(
            "TargetAddress",
            &format!(
                "10.{}.{}.{}:3260,{}",
                i >> 16,
                (i >> 8) & 255,
                i & 255,
                i % 7 + 1
            ),
        )
        .unwrap();
        w.push(
            "TargetAddress",
            &format!("[fd00::{:x}]:3261,{}", i, i % 7 + 1),
        )
        .unwrap();
    }
    w.finish()
}

fn pdus(c: &mut Criterion) {
    let answer = synthetic_answer(60);
    let repr = Repr::TextResponse(TextResponse {
        final_: true,
        cont: false,
        lun: 0,
        itt: 1,
        ttt: RESERVED_TAG,
        stat_sn: 2,
        exp_cmd_sn: 3,
        max_cmd_sn: 4,
        data: &answer,
    });
    let bytes = repr.to_vec().unwrap();
    let mut g = c.benchmark_group("pdu");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_text_response_bhs", |b| {
        b.iter(|| {
            let p = Packet::new_checked(black_box(&bytes[..])).unwrap();
            black_box(Repr::parse(&p).unwrap());
        })
    });
    let mut out = vec![0u8; repr.buffer_len()];
    g.bench_function("emit_text_response", |b| {
        b.iter(|| {
            black_box(&repr)
                .emit(&mut Packet::new_unchecked(&mut out[..]))
                .unwrap()
        })
    });
    g.finish();
}

fn sendtargets(c: &mut Criterion) {
    let answer = synthetic_answer(10_000);
    let mut g = c.benchmark_group("sendtargets_10000");
    g.throughput(Throughput::Bytes(answer.len() as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("text_decode", answer.len()), |b| {
        b.iter(|| black_box(text::decode(black_box(&answer)).unwrap()))
    });
    let kv = text::decode(&answer).unwrap();
    g.bench_function(
        BenchmarkId::new("group_and_parse_addresses", answer.len()),
        |b| b.iter(|| black_box(parse_send_targets(black_box(&kv)).unwrap())),
    );
    g.bench_function(BenchmarkId::new("decode_and_parse", answer.len()), |b| {
        b.iter(|| black_box(parse_send_targets_text(black_box(&answer)).unwrap()))
    });
    g.finish();
}

fn session_replay(c: &mut Criterion) {
    let first = Packet::new_checked(MRDSL512_I2T).unwrap();
    let seed = SessionSeed {
        isid: first.isid(),
        itt: first.itt(),
        cmd_sn: first.cmd_sn(),
        chap_identifier: 0,
        chap_challenge: [0; 32],
    };
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Bytes(MRDSL512_T2I.len() as u64));
    g.bench_function("replay_100_targets_mrdsl512", |b| {
        b.iter(|| {
            let mut config = SessionConfig::new("iqn.2026-11.org.vds:bench");
            config.max_recv_data_segment_length = 512;
            let mut s = DiscoverySession::new(config, seed.clone()).unwrap();
            s.handle_bytes(black_box(MRDSL512_T2I)).unwrap();
            assert!(s.is_finished());
            black_box(s.poll_transmit());
        })
    });
    g.finish();
}

criterion_group!(benches, pdus, sendtargets, session_replay);
criterion_main!(benches);
