//! A whole-process measurement aid for docs/PERFORMANCE.md: what `vdsadm list tportals` costs in
//! the store, start-up and exit included. Everything is cached under provider `sim`.
//!
//! ```text
//! cache_tool fill ROOT [SUBSYSTEMS] [PORTALS]   # save a scaled simulator cache (default 1000 × 16)
//! cache_tool list ROOT KEY                       # print one subsystem's portals (load One)
//! cache_tool list-all ROOT                       # print every portal (load All)
//! ```

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use vds_model::{CacheHealth, SubSystemSnapshot, sim::SimBackend};
use vds_store::{Selection, Store};

/// The provider the tool saves under and reads from.
const PROVIDER: &str = "sim";

fn print(out: &mut impl Write, s: &SubSystemSnapshot) -> std::io::Result<()> {
    for p in &s.portals {
        writeln!(out, "{}\t{}\t{}", s.key, p.address, p.status)?;
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let usage =
        "usage: cache_tool fill ROOT [SUBSYSTEMS] [PORTALS] | list ROOT KEY | list-all ROOT";
    let (cmd, root) = match args {
        [cmd, root, ..] => (cmd.as_str(), Path::new(root)),
        _ => return Err(usage.into()),
    };
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match (cmd, &args[2..]) {
        ("fill", rest) => {
            let n = |i: usize, d: usize| -> Result<usize, String> {
                rest.get(i)
                    .map_or(Ok(d), |v| v.parse().map_err(|e| format!("{v}: {e}")))
            };
            let snapshots = SimBackend::scaled(n(0, 1_000)?, n(1, 16)?)
                .control()
                .truth();
            // What a reenumeration saves: these subsystems and no other.
            store
                .save_enumeration(PROVIDER, &snapshots, CacheHealth::Good)
                .map_err(|e| e.to_string())?;
        }
        ("list", [key]) => {
            let cached = store
                .load(PROVIDER, Selection::One(key))
                .map_err(|e| e.to_string())?;
            if cached.health != CacheHealth::Good {
                return Err("the cache is not good".into());
            }
            let (s, _) = cached
                .subsystems
                .first()
                .ok_or_else(|| format!("no subsystem {key}"))?;
            print(&mut out, s).map_err(|e| e.to_string())?;
        }
        ("list-all", []) => {
            let cached = store
                .load(PROVIDER, Selection::All)
                .map_err(|e| e.to_string())?;
            for (s, _) in &cached.subsystems {
                print(&mut out, s).map_err(|e| e.to_string())?;
            }
        }
        _ => return Err(usage.into()),
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cache_tool: {e}");
            ExitCode::FAILURE
        }
    }
}
