//! The cache at 1,000 subsystems × 16 portals: loading everything, loading one subsystem (what
//! `vdsadm list tportals --subsystem X` needs), opening a store and answering one subsystem from
//! scratch (the per-process cost of a CLI call), the full check, and a whole save.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-store cargo bench -p vds-store --bench cache`

use criterion::{Criterion, criterion_group, criterion_main};
use vds_model::{CacheHealth, HwProvider, sim::SimBackend};
use vds_store::Store;

const SUBSYSTEMS: usize = 1_000;
const PORTALS: usize = 16;

fn scaled() -> Vec<vds_model::SubSystemSnapshot> {
    let provider = HwProvider::new(SimBackend::scaled(SUBSYSTEMS, PORTALS));
    provider.initialize().expect("initialize");
    provider.reenumerate().expect("reenumerate");
    provider.export()
}

fn cache(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = scaled();
    {
        let store = Store::open(dir.path()).expect("open");
        store.save_cache(&snaps, CacheHealth::Good).expect("save");
    }
    let store = Store::open(dir.path()).expect("open");
    let key = "sim-scale-500";
    let mut group = c.benchmark_group("cache 1000x16");
    group.sample_size(20);

    group.bench_function("load_cache", |b| {
        b.iter(|| {
            let state = store.load_cache().expect("load");
            assert_eq!(state.subsystems.len(), SUBSYSTEMS);
        })
    });
    group.bench_function("load_subsystem", |b| {
        b.iter(|| {
            let s = store.load_subsystem(key).expect("load").expect("present");
            assert_eq!(s.portals.len(), PORTALS);
        })
    });
    group.bench_function("open+health+load_subsystem (cold store)", |b| {
        b.iter(|| {
            let store = Store::open(dir.path()).expect("open");
            let _ = store.cache_health().expect("health");
            let s = store.load_subsystem(key).expect("load").expect("present");
            assert_eq!(s.portals.len(), PORTALS);
        })
    });
    group.bench_function("open+load_subsystem_and_health (cold store)", |b| {
        b.iter(|| {
            let store = Store::open(dir.path()).expect("open");
            let (health, found) = store.load_subsystem_and_health(key).expect("load");
            assert_eq!(health, CacheHealth::Good);
            assert_eq!(found.expect("present").0.portals.len(), PORTALS);
        })
    });
    group.bench_function("open+load_cache (cold store)", |b| {
        b.iter(|| {
            let store = Store::open(dir.path()).expect("open");
            let state = store.load_cache().expect("load");
            assert_eq!(state.subsystems.len(), SUBSYSTEMS);
        })
    });
    group.bench_function("verify_cache quick_check", |b| {
        b.iter(|| store.verify_cache(false).expect("verify"))
    });
    group.bench_function("verify_cache integrity_check", |b| {
        b.iter(|| store.verify_cache(true).expect("verify"))
    });
    group.bench_function("save_cache", |b| {
        b.iter(|| store.save_cache(&snaps, CacheHealth::Good).expect("save"))
    });
    group.finish();
}

criterion_group!(benches, cache);
criterion_main!(benches);
