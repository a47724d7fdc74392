//! `query_portals` plus a full enumeration at 10, 1,000 and 100,000 portals, on the simulator: the
//! COM-style loop (`next(1)` until `S_FALSE`), the iterator, and the iterator reading each portal's
//! properties (`GetProperties`, as `list tportals` does).
//!
//! Run: `cargo bench -p vds-model --bench query_portals`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vds_model::{Hresult, HwProvider, sim::SimBackend};

fn query_and_enumerate(c: &mut Criterion) {
    let mut group = c.benchmark_group("query_portals+enumerate");
    for &n in &[10usize, 1_000, 100_000] {
        let provider = HwProvider::new(SimBackend::scaled(1, n));
        provider.initialize().expect("initialize");
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(provider.reenumerate())
            .expect("reenumerate");
        let subsystem = provider
            .sub_system_by_key("sim-scale-0")
            .expect("subsystem");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("next(1)", n), &n, |b, &n| {
            b.iter(|| {
                let mut e = subsystem.query_portals().expect("query_portals");
                let mut count = 0usize;
                loop {
                    let (batch, hr) = e.next(1);
                    count += batch.len();
                    if hr == Hresult::S_FALSE {
                        break;
                    }
                }
                assert_eq!(count, n);
            })
        });
        group.bench_with_input(BenchmarkId::new("iterator", n), &n, |b, &n| {
            b.iter(|| {
                let e = subsystem.query_portals().expect("query_portals");
                let count = e.into_iter().fold(0usize, |n, p| {
                    std::hint::black_box(p.id());
                    n + 1
                });
                assert_eq!(count, n);
            })
        });
        group.bench_with_input(
            BenchmarkId::new("handles+get_properties", n),
            &n,
            |b, &n| {
                b.iter(|| {
                    let e = subsystem.query_portals().expect("query_portals");
                    let mut count = 0usize;
                    for portal in e {
                        let p = portal.get_properties().expect("get_properties");
                        count += usize::from(p.address.port() != 0);
                    }
                    assert_eq!(count, n);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, query_and_enumerate);
criterion_main!(benches);
