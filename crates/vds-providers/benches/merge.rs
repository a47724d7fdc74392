//! The CPU the SendTargets provider spends on one subsystem once its discoveries have answered:
//! the portals to probe, then the merged picture (`sendtargets::bench::refresh_cpu`). The subsystem
//! is what tgtd answers: one discovery portal, 100 targets, each at that same portal with tag 1.
//! No network; the answers are built once, outside the measurement.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iscsi_proto::{DiscoveredTarget, TargetAddress};
use vds_providers::sendtargets::SendTargetsSubsystem;
use vds_providers::sendtargets::bench::{Answers, refresh_cpu};

const TARGETS: usize = 100;

fn merge(c: &mut Criterion) {
    let config = SendTargetsSubsystem {
        name: "bench".into(),
        portals: vec!["127.0.0.1:3260".parse().expect("portal parses")],
        initiator_name: None,
        chap: None,
        mutual: None,
    };
    let address = TargetAddress::parse("127.0.0.1:3260,1").expect("address parses");
    let targets: Vec<DiscoveredTarget> = (0..TARGETS)
        .map(|i| DiscoveredTarget {
            name: format!("iqn.2026-11.test.vds.bench:t{i:03}"),
            addresses: vec![address.clone()],
        })
        .collect();
    let answers = Answers::new(vec![(targets, Some(1))]);
    // The picture is what the provider would publish, so a fast wrong merge cannot pass.
    let snap = refresh_cpu(&config, &answers);
    assert_eq!(snap.portals.len(), 1);
    assert_eq!(snap.targets.len(), TARGETS);
    assert!(snap.targets.iter().all(|t| t.portal_groups.len() == 1));

    let mut group = c.benchmark_group("sendtargets_merge");
    group.throughput(Throughput::Elements(TARGETS as u64));
    group.bench_function("100_targets_one_address", |b| {
        b.iter(|| refresh_cpu(black_box(&config), black_box(&answers)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = merge
}
criterion_main!(benches);
