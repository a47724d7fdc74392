//! One in-process discovery cycle (connect, login, SendTargets, logout, close) against a private
//! tgtd with 100 targets, next to the bare exchange floor measured in the same run: the same
//! three requests pre-built once and written over a tokio TcpStream, each answer read until its
//! PDU is complete, no state machine, no parsing beyond PDU framing.
//!
//! Run: `cargo bench -p iscsi-client --bench discovery` (needs tgtd: scripts/install-deps.sh).

use std::net::{Ipv4Addr, SocketAddr};

use criterion::{Criterion, criterion_group, criterion_main};
use iscsi_client::{DiscoveryOptions, Host, discover};
use iscsi_proto::text;
use iscsi_proto::wire::{
    LoginRequest, LogoutReason, LogoutRequest, Packet, RESERVED_TAG, Repr, Stage, TextRequest,
    pdu_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vds_testpeers::{Tgtd, TgtdConfig};

/// The three requests of a discovery, pre-built.
fn requests() -> [Vec<u8>; 3] {
    let keys = text::encode(&[
        ("InitiatorName", "iqn.2026-11.org.vds:bench"),
        ("SessionType", "Discovery"),
        ("HeaderDigest", "None"),
        ("DataDigest", "None"),
        ("MaxRecvDataSegmentLength", "262144"),
    ])
    .unwrap();
    let login = Repr::LoginRequest(LoginRequest {
        transit: true,
        cont: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid: [0x80, 1, 2, 3, 0, 0],
        tsih: 0,
        itt: 1,
        cid: 0,
        cmd_sn: 1,
        exp_stat_sn: 0,
        data: &keys,
    });
    let st = text::encode(&[("SendTargets", "All")]).unwrap();
    let text = Repr::TextRequest(TextRequest {
        immediate: true,
        final_: true,
        cont: false,
        lun: 0,
        itt: 2,
        ttt: RESERVED_TAG,
        cmd_sn: 1,
        exp_stat_sn: 1,
        data: &st,
    });
    let logout = Repr::LogoutRequest(LogoutRequest {
        immediate: true,
        reason: LogoutReason::CloseSession,
        itt: 3,
        cid: 0,
        cmd_sn: 1,
        exp_stat_sn: 2,
    });
    [
        login.to_vec().unwrap(),
        text.to_vec().unwrap(),
        logout.to_vec().unwrap(),
    ]
}

/// Reads whole PDUs until one with the F bit arrives.
async fn read_until_final(s: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let mut start = 0;
    loop {
        while let Some(n) = pdu_len(&buf[start..]) {
            if buf.len() - start < n {
                break;
            }
            let p = Packet::new_unchecked(&buf[start..start + n]);
            if p.final_flag() {
                return;
            }
            start += n;
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "tgtd closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn bare_exchange(addr: SocketAddr, reqs: &[Vec<u8>; 3], buf: &mut Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    for r in reqs {
        s.write_all(r).await.unwrap();
        read_until_final(&mut s, buf).await;
    }
}

fn discovery(c: &mut Criterion) {
    let tgtd = Tgtd::start(TgtdConfig::single()).expect("tgtd (run scripts/install-deps.sh)");
    let addr: SocketAddr = tgtd.portals()[0].parse().unwrap();
    tgtd.add_targets(100, "iqn.2026-11.test.vds:big").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host = Host::Ipv4(Ipv4Addr::LOCALHOST);
    let opts = DiscoveryOptions::default();
    let found = rt.block_on(discover(&host, addr.port(), &opts)).unwrap();
    assert_eq!(found.targets.len(), 100);
    let reqs = requests();
    let mut buf = Vec::new();

    let mut g = c.benchmark_group("discovery_tgtd_100_targets");
    g.sample_size(200);
    g.bench_function("iscsi_client_discover", |b| {
        b.iter(|| {
            let r = rt.block_on(discover(&host, addr.port(), &opts)).unwrap();
            assert_eq!(r.targets.len(), 100);
        })
    });
    g.bench_function("bare_exchange_floor", |b| {
        b.iter(|| rt.block_on(bare_exchange(addr, &reqs, &mut buf)))
    });
    let small = DiscoveryOptions {
        max_recv_data_segment_length: 512,
        ..DiscoveryOptions::default()
    };
    g.bench_function("iscsi_client_discover_mrdsl512", |b| {
        b.iter(|| {
            let r = rt.block_on(discover(&host, addr.port(), &small)).unwrap();
            assert_eq!(r.targets.len(), 100);
        })
    });
    g.finish();
    drop(rt);
    tgtd.stop().unwrap();
}

criterion_group!(benches, discovery);
criterion_main!(benches);
