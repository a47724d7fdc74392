//! Whole-process cost of `vdsadm list tportals --subsystem X` with 1,000 subsystems of 16 portals
//! each in the store: exec, store open, cache read of one subsystem, model walk, table or JSON.
//! The store is filled through `vds-store` directly (no array needed). Results: docs/PERFORMANCE.md.
//!
//! `VDSADM_BENCH_STORE=DIR` keeps the filled store in DIR (for hyperfine).

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use vds_model::sim::SimBackend;
use vds_model::{CacheHealth, HwProvider};
use vds_store::{ProviderConfig, Store, SubsystemConfig, V1_PROVIDER_KIND, V1_PROVIDER_NAME};

const SUBSYSTEMS: usize = 1000;
const PORTALS: usize = 16;

fn fill(root: &Path) {
    let store = Store::open(root).expect("open store");
    // The simulator's scale fixture gives 1,000 × 16 valid snapshots; rename them as the
    // sendtargets provider would key them.
    let mut snaps = SimBackend::scaled(SUBSYSTEMS, PORTALS).control().truth();
    store
        .update_config(|cfg| {
            cfg.providers
                .push(ProviderConfig::new(V1_PROVIDER_NAME, V1_PROVIDER_KIND));
            for (i, s) in snaps.iter_mut().enumerate() {
                let name = format!("array-{i:04}");
                s.key = name.clone();
                s.friendly_name = name.clone();
                let mut c = SubsystemConfig::new(name, V1_PROVIDER_NAME);
                c.portals = vec![format!("198.18.{}.{}:3260", i / 250, i % 250 + 1)];
                cfg.subsystems.push(c);
            }
            Ok(())
        })
        .expect("config");
    store
        .save(V1_PROVIDER_NAME, &snaps, CacheHealth::Good)
        .expect("save cache");
    let (_, problem) = HwProvider::from_cache(SimBackend::demo(), snaps, CacheHealth::Good);
    assert!(problem.is_none());
}

fn bench(c: &mut Criterion) {
    let kept = std::env::var_os("VDSADM_BENCH_STORE");
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = kept
        .as_ref()
        .map_or_else(|| tmp.path().join("store"), std::path::PathBuf::from);
    if !root.join("vds.toml").exists() {
        fill(&root);
    }
    let bin = env!("CARGO_BIN_EXE_vdsadm");
    let run = |json: bool| {
        let mut cmd = Command::new(bin);
        cmd.arg("--store").arg(&root);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(["list", "tportals", "--subsystem", "array-0500"])
            .output()
            .expect("run vdsadm");
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.len() > 100);
    };
    run(false);
    let mut group = c.benchmark_group("vdsadm");
    group.sample_size(200);
    group.bench_function("list tportals (1000x16, table)", |b| b.iter(|| run(false)));
    group.bench_function("list tportals (1000x16, --json)", |b| b.iter(|| run(true)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
