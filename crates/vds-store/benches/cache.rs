//! The cache at 1,000 subsystems × 16 portals of one provider: loading everything, loading one
//! subsystem with the provider's health (what `vdsadm list tportals --subsystem X` needs), opening
//! a store and answering one subsystem from scratch (the per-process cost of a CLI call), the full
//! check, and whole saves (unchanged, and every subsystem changed).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-store cargo bench -p vds-store --bench cache`

use criterion::{Criterion, criterion_group, criterion_main};
use vds_model::{CacheHealth, SubSystemSnapshot, SubSystemStatus, sim::SimBackend};
use vds_store::{Selection, Store};

const SUBSYSTEMS: usize = 1_000;
const PORTALS: usize = 16;
const PROVIDER: &str = "sim";

fn scaled() -> Vec<SubSystemSnapshot> {
    SimBackend::scaled(SUBSYSTEMS, PORTALS).control().truth()
}

fn cache(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = scaled();
    // The same subsystems with every one changed, so that a save rewrites all their rows.
    let changed: Vec<SubSystemSnapshot> = snaps
        .iter()
        .map(|s| SubSystemSnapshot {
            status: SubSystemStatus::Offline,
            ..s.clone()
        })
        .collect();
    {
        let store = Store::open(dir.path()).expect("open");
        store
            .save(PROVIDER, &snaps, CacheHealth::Good)
            .expect("save");
    }
    let store = Store::open(dir.path()).expect("open");
    let key = "sim-scale-500";
    let mut group = c.benchmark_group("cache 1000x16");
    group.sample_size(20);

    group.bench_function("load All", |b| {
        b.iter(|| {
            let cached = store.load(PROVIDER, Selection::All).expect("load");
            assert_eq!(cached.subsystems.len(), SUBSYSTEMS);
        })
    });
    group.bench_function("load One", |b| {
        b.iter(|| {
            let cached = store.load(PROVIDER, Selection::One(key)).expect("load");
            assert_eq!(cached.subsystems[0].0.portals.len(), PORTALS);
        })
    });
    group.bench_function("open+load One (cold store)", |b| {
        b.iter(|| {
            let store = Store::open(dir.path()).expect("open");
            let cached = store.load(PROVIDER, Selection::One(key)).expect("load");
            assert_eq!(cached.health, CacheHealth::Good);
            assert_eq!(cached.subsystems[0].0.portals.len(), PORTALS);
        })
    });
    group.bench_function("open+load All (cold store)", |b| {
        b.iter(|| {
            let store = Store::open(dir.path()).expect("open");
            let cached = store.load(PROVIDER, Selection::All).expect("load");
            assert_eq!(cached.subsystems.len(), SUBSYSTEMS);
        })
    });
    group.bench_function("load_everything", |b| {
        b.iter(|| {
            let (everything, _) = store.load_everything().expect("load");
            assert_eq!(everything[0].1.subsystems.len(), SUBSYSTEMS);
        })
    });
    group.bench_function("verify_cache quick_check", |b| {
        b.iter(|| store.verify_cache(false).expect("verify"))
    });
    group.bench_function("verify_cache integrity_check", |b| {
        b.iter(|| store.verify_cache(true).expect("verify"))
    });
    group.bench_function("save 1000 unchanged", |b| {
        b.iter(|| {
            store
                .save(PROVIDER, &snaps, CacheHealth::Good)
                .expect("save")
        })
    });
    let mut flip = false;
    group.bench_function("save 1000 changed", |b| {
        b.iter(|| {
            flip = !flip;
            let next = if flip { &changed } else { &snaps };
            store.save(PROVIDER, next, CacheHealth::Good).expect("save")
        })
    });
    group.finish();
}

criterion_group!(benches, cache);
criterion_main!(benches);
