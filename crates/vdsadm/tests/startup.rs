//! How vdsadm starts: GCC's unwinder is linked in (build.rs) rather than loaded from
//! libgcc_s.so.1, the binary keeps its hardening, and unwinding still works through it; and its
//! own entry point (src/start.rs) keeps what Rust's would have done to the process: standard
//! descriptors that came closed are opened on /dev/null, and a closed pipe does not kill it.

#![cfg(all(
    target_os = "linux",
    target_env = "gnu",
    not(target_feature = "crt-static")
))]

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let elf = std::fs::read(BIN).expect("read vdsadm");
    let h = Hardening::of(&elf);
    assert!(h.pie, "not a position-independent executable");
    assert!(h.bind_now, "symbols are bound lazily");
    assert!(h.relro, "no read-only relocations segment");
}

/// What an x86_64 ELF executable says about its hardening.
struct Hardening {
    /// ET_DYN with DF_1_PIE: placed at a random address.
    pie: bool,
    /// DF_BIND_NOW or DF_1_NOW: every symbol bound at start, so the GOT can be made read-only.
    bind_now: bool,
    /// A PT_GNU_RELRO segment.
    relro: bool,
}

impl Hardening {
    fn of(elf: &[u8]) -> Hardening {
        let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
        assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
        let (phoff, phentsize, phnum) = (u64_at(32) as usize, u16_at(54), u16_at(56));
        let mut h = Hardening {
            pie: false,
            bind_now: false,
            relro: false,
        };
        for i in 0..usize::from(phnum) {
            let ph = phoff + i * usize::from(phentsize);
            match u32_at(ph) {
                0x6474_e552 => h.relro = true, // PT_GNU_RELRO
                2 => {
                    // PT_DYNAMIC: (tag, value) pairs up to DT_NULL.
                    let (off, size) = (u64_at(ph + 8) as usize, u64_at(ph + 32) as usize);
                    for entry in elf[off..off + size].chunks_exact(16) {
                        let tag = u64::from_le_bytes(entry[..8].try_into().unwrap());
                        let val = u64::from_le_bytes(entry[8..].try_into().unwrap());
                        match tag {
                            0 => break,
                            30 => h.bind_now |= val & 0x8 != 0, // DT_FLAGS: DF_BIND_NOW
                            0x6fff_fffb => {
                                // DT_FLAGS_1: DF_1_NOW, DF_1_PIE
                                h.bind_now |= val & 0x1 != 0;
                                h.pie = u16_at(16) == 3 && val & 0x0800_0000 != 0;
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        h
    }
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
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    assert!(
        !maps.contains("libgcc_s"),
        "this test unwound through libgcc_s.so.1, not the linked unwinder"
    );
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    assert!(
        bt.contains("a_panic_unwinds_and_a_backtrace_walks"),
        "the backtrace misses this frame:\n{bt}"
    );
}

#[test]
fn a_closed_pipe_ends_the_output_and_not_the_process() {
    // `vdsadm list subsystems | head -0`: the reader is gone before vdsadm writes.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(BIN)
        .args(["--sim", "list", "subsystems"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run vdsadm");
    assert_eq!(
        out.status.signal(),
        None,
        "vdsadm was killed by a signal writing to a closed pipe: {out:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn standard_descriptors_that_come_closed_are_opened_on_dev_null() {
    // `vdsadm watch <&- >&- 2>&-`: without /dev/null on 0, 1 and 2, the first files and sockets
    // vdsadm opens would take those numbers, and what it prints would go into them.
    let mut cmd = Command::new(BIN);
    cmd.args(["--sim", "watch", "--refresh-every", "1h"]);
    // SAFETY: only close(2), which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start vdsadm watch");
    let pid = child.id();
    let fd_dir = format!("/proc/{pid}/fd");
    let link = |fd: u32| std::fs::read_link(format!("{fd_dir}/{fd}")).ok();
    // `watch` is going once it holds more than the three: its runtime and its store.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut links = Vec::new();
    while links.is_empty() && Instant::now() < deadline {
        if std::fs::read_dir(&fd_dir).map_or(0, |d| d.count()) > 3 {
            links = (0..3).map(link).collect();
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let running = child.try_wait().expect("wait").is_none();
    // SIGTERM, which `watch` answers by removing its throwaway store and exiting.
    // SAFETY: a signal to the child this test started, which has not been waited for.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait for vdsadm");
    assert!(
        running && !links.is_empty(),
        "vdsadm watch was not running with its store open within 20 s ({status})"
    );
    for (fd, target) in links.iter().enumerate() {
        assert_eq!(
            target.as_deref(),
            Some(std::path::Path::new("/dev/null")),
            "descriptor {fd} of vdsadm: {links:?}"
        );
    }
}
