//! How vdsadm starts: GCC's unwinder is linked in (build.rs) rather than loaded from
//! libgcc_s.so.1, and unwinding still works through it.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vdsadm");

#[test]
fn vdsadm_loads_no_libgcc_s_and_stays_a_pie() {
    // glibc's loader names every library it looks for.
    let out = Command::new(BIN)
        .arg("--version")
        .env("LD_DEBUG", "libs")
        .output()
        .expect("run vdsadm");
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("libc.so.6"),
        "LD_DEBUG=libs said nothing: {log}"
    );
    assert!(
        !log.contains("libgcc_s"),
        "vdsadm still loads libgcc_s:\n{log}"
    );
    // Still position-independent (ELF type ET_DYN), so the executable is placed at random.
    let elf = std::fs::read(BIN).expect("read vdsadm");
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(
        u16::from_le_bytes([elf[16], elf[17]]),
        3,
        "e_type is not ET_DYN"
    );
}

struct Dropped<'a>(&'a std::cell::Cell<bool>);

impl Drop for Dropped<'_> {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_panic_unwinds_and_a_backtrace_walks_through_the_linked_unwinder() {
    // This test binary links the unwinder the same way vdsadm does.
    let dropped = std::cell::Cell::new(false);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = Dropped(&dropped);
        panic!("on purpose");
    }));
    assert!(caught.is_err());
    assert!(dropped.get(), "unwinding skipped a destructor");
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    assert!(
        bt.contains("a_panic_unwinds_and_a_backtrace_walks"),
        "the backtrace misses this frame:\n{bt}"
    );
}
