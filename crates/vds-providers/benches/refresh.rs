//! `HwProvider::refresh` through the SendTargets provider: N subsystems (1, 100, 500), each with one
//! discovery portal on the same local tgtd (10 targets), refreshed concurrently (each under its own
//! gate; at most 64 connections open) on a multi-thread tokio runtime the bench builds, as the
//! service runs the provider on its own. Every iteration checks that every subsystem was refreshed
//! and nothing changed (an empty notification batch), so a failed discovery cannot pass for a fast
//! one. Results: docs/PERFORMANCE.md, "## SendTargets provider".

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use vds_model::{HwProvider, SubSystemStatus};
use vds_providers::sendtargets::{
    PROVIDER_NAME, SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem,
};
use vds_testpeers::{Tgtd, TgtdConfig};

fn provider(rt: &Runtime, portal: &str, n: usize) -> HwProvider {
    let subsystems: Vec<_> = (0..n)
        .map(|i| SendTargetsSubsystem {
            name: format!("bench-{i:03}"),
            portals: vec![portal.parse().expect("tgtd portal parses")],
            initiator_name: None,
            chap: None,
            mutual: None,
        })
        .collect();
    let backend = SendTargetsBackend::new(PROVIDER_NAME, subsystems, SendTargetsOptions::default())
        .expect("backend builds");
    let provider = HwProvider::new(backend);
    provider.initialize().expect("initialize");
    rt.block_on(provider.reenumerate()).expect("reenumerate");
    for s in provider.export() {
        assert_eq!(
            s.status,
            SubSystemStatus::Online,
            "{}: {:?}",
            s.key,
            s.detail
        );
        assert_eq!(s.targets.len(), 10);
    }
    provider
}

fn refresh(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tgtd = Tgtd::start(TgtdConfig::single()).expect("tgtd starts");
    tgtd.add_targets(10, "iqn.2026-11.test.vds.bench:t")
        .expect("targets");
    let portal = tgtd.portals()[0].clone();
    let mut group = c.benchmark_group("sendtargets_refresh");
    for n in [1usize, 100, 500] {
        let provider = provider(&rt, &portal, n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let report = rt.block_on(provider.refresh()).expect("refresh");
                assert!(
                    report.failures.is_empty(),
                    "not refreshed: {:?}",
                    report.failures
                );
                assert_eq!(report.refreshed, n);
                assert!(
                    report.notifications.is_empty(),
                    "the array changed: {:?}",
                    report.notifications
                );
            })
        });
    }
    group.finish();
    drop(tgtd);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = refresh
}
criterion_main!(benches);
