//! Parses a SendTargets answer many times, for instruction counts under callgrind:
//! the captured 100-target tgt answer (`captured`, one IPv4 address each) or the bench's
//! synthetic form (`synthetic`, 100 targets with an IPv4 and an IPv6 address each).
//!
//! ```text
//! cargo build --release -p iscsi-proto --example parse_sendtargets
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect=parse_sendtargets::parse_once \
//!     target/release/examples/parse_sendtargets captured 100
//! ```
//! Instructions per parse = the collected total / the count.

use std::hint::black_box;

use iscsi_proto::address::{DiscoveredTarget, parse_send_targets_text};
use iscsi_proto::text::{TextAccumulator, TextWriter};
use iscsi_proto::wire::{Packet, Repr, pdu_len};

const MRDSL512_T2I: &[u8] =
    include_bytes!("../tests/vectors/sendtargets-100targets-mrdsl512-s0-t2i.bin");

/// The text of the captured answer: the data segments of its Text Responses, joined.
fn captured_answer() -> Vec<u8> {
    let mut stream = MRDSL512_T2I;
    let mut acc = TextAccumulator::new();
    while let Some(n) = pdu_len(stream) {
        let n = n.min(stream.len());
        if let Ok(packet) = Packet::new_checked(&stream[..n]) {
            if let Ok(Repr::TextResponse(t)) = Repr::parse(&packet) {
                acc.push(t.data, 1 << 20);
            }
        }
        stream = &stream[n..];
    }
    acc.as_bytes().to_vec()
}

/// The bench's form: each target with a v4 and a v6 address.
fn synthetic_answer(n: usize) -> Vec<u8> {
    let mut w = TextWriter::new();
    for i in 0..n {
        let name = format!("iqn.2026-11.test.vds:synthetic-target-{i:05}");
        let v4 = format!(
            "10.{}.{}.{}:3260,{}",
            i >> 16,
            (i >> 8) & 255,
            i & 255,
            i % 7 + 1
        );
        let v6 = format!("[fd00::{:x}]:3261,{}", i, i % 7 + 1);
        for (k, v) in [
            ("TargetName", &name),
            ("TargetAddress", &v4),
            ("TargetAddress", &v6),
        ] {
            if w.push(k, v).is_err() {
                unreachable!("the synthetic pairs are valid");
            }
        }
    }
    w.finish()
}

#[inline(never)]
fn parse_once(answer: &[u8]) -> usize {
    match parse_send_targets_text(black_box(answer)) {
        Ok(t) => black_box::<Vec<DiscoveredTarget>>(t).len(),
        Err(e) => panic!("{e}"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let answer = match args.next().as_deref() {
        Some("synthetic") => synthetic_answer(100),
        _ => captured_answer(),
    };
    let count: usize = args.next().and_then(|c| c.parse().ok()).unwrap_or(100);
    let mut targets = 0;
    for _ in 0..count {
        targets = parse_once(&answer);
    }
    println!(
        "{} bytes, {targets} targets, parsed {count} times",
        answer.len()
    );
}
