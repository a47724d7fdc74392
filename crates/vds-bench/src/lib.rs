//! The report of `bench/compare`, the side-by-side benchmark of vds against `iscsi-ls` and the
//! floor set by the target, of the iSNS provider against `isnsadm`, and of the daemon against
//! a minimal hyper server (docs/PERFORMANCE.md: "Comparison with iscsi-ls", "iSNS provider",
//! "The daemon: GET portals against the floor").
//!
//! The harness is the script `bench/compare` at the root of the repository. This crate owns the
//! reading of the script's report, [`ratios`], which its smoke test (`tests/compare_smoke.rs`,
//! running `bench/compare --quick`) uses to check that every comparison ended with a ratio, and the
//! binary `vds-bench-http` (the daemon comparison's load generator and floor server). It must not
//! depend on the crates it measures.

#![deny(missing_docs)]

use std::path::PathBuf;

/// The comparisons `bench/compare` makes, by the key of their `ratio` line.
pub const COMPARISONS: [&str; 14] = [
    "discover",
    "refresh-vs-loop",
    "refresh-vs-xargs",
    "refresh-cpu",
    "rss-growth",
    "tgt-refresh-100",
    "tgt-refresh-1000",
    "isns-small",
    "isns-large",
    "daemon-unix",
    "daemon-tcp",
    "daemon-memory",
    "list-via-daemon",
    "daemon-refresh-cpu",
];

/// One `ratio KEY: A / B = R.RRRx ...` line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    /// The comparison (one of [`COMPARISONS`]).
    pub key: String,
    /// `A / B`, as printed.
    pub pair: String,
    /// The ratio.
    pub value: f64,
    /// What follows the ratio (the target and `MET`/`MISSED`, when the comparison has one).
    pub verdict: String,
}

/// The `ratio` lines of a report, in order. Lines that do not follow the format are skipped.
pub fn ratios(report: &str) -> Vec<Ratio> {
    report.lines().filter_map(parse_ratio).collect()
}

fn parse_ratio(line: &str) -> Option<Ratio> {
    let rest = line.strip_prefix("ratio ")?;
    let (key, rest) = rest.split_once(": ")?;
    let (pair, rest) = rest.rsplit_once(" = ")?;
    let (number, verdict) = rest.split_once('x')?;
    let value: f64 = number.trim().parse().ok()?;
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    Some(Ratio {
        key: key.to_owned(),
        pair: pair.to_owned(),
        value,
        verdict: verdict.trim().to_owned(),
    })
}

/// The repository's root (where `bench/compare` lives), from this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.clone(), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ratio_lines_and_skips_the_rest() {
        let report = "== 1. one discovery ==\n\
            ratio discover: vdsadm discover / iscsi-ls = 0.912x  target <= 1.0x: MET\n\
            ratio refresh-vs-loop: iscsi-ls sequential loop / vdsadm refresh = 12.500x  (speed-up) target >= 20x: MISSED\n\
            ratio broken: no equals sign\n\
            ratio nan: a / b = NaNx\n\
            ratio rss-growth: maxrss at 5000 / maxrss at 500 = 3.100x\n";
        let r = ratios(report);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].key, "discover");
        assert_eq!(r[0].pair, "vdsadm discover / iscsi-ls");
        assert!((r[0].value - 0.912).abs() < 1e-9);
        assert_eq!(r[0].verdict, "target <= 1.0x: MET");
        assert_eq!(r[1].value, 12.5);
        assert!(r[1].verdict.ends_with("MISSED"));
        assert_eq!(r[2].key, "rss-growth");
        assert_eq!(r[2].verdict, "");
    }

    #[test]
    fn repo_root_holds_the_script() {
        assert!(repo_root().join("bench").join("compare").is_file());
    }
}
