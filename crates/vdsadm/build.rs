//! Links GCC's unwinder into vdsadm (`libgcc_eh.a`, what `gcc -static-libgcc` does) instead of
//! loading `libgcc_s.so.1` at every start.
//!
//! vdsadm is a short command, so its start-up is most of a query's time. Loading libgcc_s costs
//! about 0.1 ms per run on the machines docs/PERFORMANCE.md was measured on: a library to map and
//! relocate, and a constructor that asks the CPU for its features with `CPUID`, which under a
//! hypervisor is a VM exit each (about 8 µs). The unwinder itself (panics, backtraces) is the
//! same code either way. glibc stays dynamic (its NSS modules must match it) and the binary stays
//! a position-independent executable with immediate binding and read-only relocations.
//!
//! Only for a native Linux glibc build that is not static already. A cross build, or a C compiler
//! that does not know where `libgcc_eh.a` is, gets a warning saying so and the default link.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    if var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static")
    {
        return; // a static build links the unwinder statically already
    }
    if var("HOST") != var("TARGET") {
        println!(
            "cargo:warning=cross build: vdsadm links libgcc_s.so.1 (the host's C compiler cannot \
             say where the target's libgcc_eh.a is)"
        );
        return;
    }
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    match unwinder_archive(&cc) {
        Ok(archive) => {
            let dir = archive.parent().expect("an absolute path has a parent");
            // A compiler upgrade moves the archive: look again rather than keep a stale path.
            println!("cargo:rerun-if-changed={}", archive.display());
            println!("cargo:rustc-link-search=native={}", dir.display());
            // Before std's `-lgcc_s` on the link line, so the unwinder's symbols come from here
            // and `--as-needed` drops libgcc_s.so.1.
            println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
        }
        Err(why) => {
            println!("cargo:warning=vdsadm links libgcc_s.so.1 (about 0.1 ms more per run): {why}")
        }
    }
}

/// Where `cc` finds `libgcc_eh.a`.
fn unwinder_archive(cc: &str) -> Result<PathBuf, String> {
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .map_err(|e| format!("`{cc} -print-file-name=libgcc_eh.a` did not run: {e}"))?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = PathBuf::from(&printed);
    // An unknown file is printed back as its bare name.
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return Err(format!(
            "`{cc} -print-file-name=libgcc_eh.a` found no archive ({printed:?})"
        ));
    }
    Ok(path)
}
