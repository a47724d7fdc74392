//! Smoke test of the comparison harness: `bench/compare --quick` runs end to end (its own tgtd and
//! isnsd on loopback, every comparison, both stopped) and prints a ratio for each comparison. The
//! figures themselves are not checked: they belong to the full run (docs/PERFORMANCE.md).
//!
//! Needs root, tgtd/iscsi-ls and isnsd/isnsadm (`scripts/install-deps.sh`). It runs the debug
//! vdsadm, vdsd and vds-bench-http (`--debug`: `cargo build -p …`, already built by `cargo test
//! --workspace`), so the smoke test costs no release build; the figures it prints are therefore not
//! the published ones. The daemon's comparison (6) must end with its servers stopped too.

use std::process::Command;

use vds_bench::{COMPARISONS, ratios, repo_root};

#[test]
fn quick_run_prints_a_ratio_for_each_comparison() {
    let script = repo_root().join("bench").join("compare");
    let out = Command::new(&script)
        .arg("--quick")
        .arg("--debug")
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/compare --quick failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let found = ratios(&stdout);
    for key in COMPARISONS {
        let r = found
            .iter()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("no ratio for {key} in:\n{stdout}"));
        assert!(r.value > 0.0 && r.value.is_finite(), "{r:?}");
    }
    // The verdicts are stated where the issue sets a target.
    for key in [
        "discover",
        "refresh-vs-loop",
        "refresh-cpu",
        "rss-growth",
        "daemon-memory",
        "list-via-daemon",
        "daemon-refresh-cpu",
    ] {
        let r = found
            .iter()
            .find(|r| r.key == key)
            .map(|r| r.verdict.as_str());
        assert!(
            r.is_some_and(|v| v.ends_with("MET") || v.ends_with("MISSED")),
            "{key}: no verdict in {r:?}"
        );
    }
    // A refresh pages through its subsystems: ten times the fleet is not ten times the memory
    // (before paging, 500 subsystems took 6 to 7 times the peak RSS of 50; with pages of 16,
    // eight at once, the larger run has a full window and the smaller one a partial one).
    let growth = found
        .iter()
        .find(|r| r.key == "rss-growth")
        .map(|r| r.value)
        .unwrap_or(f64::INFINITY);
    assert!(
        growth < 3.0,
        "peak RSS grows {growth:.2}x for 10x the subsystems:\n{stdout}"
    );
    // The tgtd and the isnsd the script started are gone.
    for daemon in ["tgtd", "isnsd"] {
        let pid: u32 = stdout
            .split(&format!("{daemon} pid "))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no {daemon} pid in:\n{stdout}"));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_ne!(comm.trim(), daemon, "{daemon} {pid} still running");
    }
    // So are vdsd and the two floor servers of comparison 6.
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("vdsd pid "))
        .unwrap_or_else(|| panic!("no vdsd pid in:\n{stdout}"));
    let pids: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .take(3)
        .collect();
    assert_eq!(pids.len(), 3, "{line}");
    for pid in pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert!(
            !comm.starts_with("vdsd") && !comm.starts_with("vds-bench"),
            "{pid} ({}) still running",
            comm.trim()
        );
    }
}
