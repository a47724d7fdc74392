//! How vdsadm starts: GCC's unwinder is linked in (build.rs) rather than loaded from
//! libgcc_s.so.1, the binary keeps its hardening, and unwinding still works through it; and its
//! own entry point (src/start.rs) keeps what Rust's would have done to the process: standard
//! descriptors that came closed are opened on /dev/null, and a closed pipe does not kill it.

#![cfg(all(
    target_os = "linux",
    target_env = "gnu",
    not(target_feature = "crt-static")
))]

use std::os::fd::{FromRawFd, OwnedFd};
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

/// Runs vdsadm with `args`, its stdout (or stderr) a pipe whose reader is already gone.
fn into_a_closed_pipe(args: &[&str], stderr: bool) -> std::process::Output {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills in two new descriptors, each owned once here.
    let (reader, writer) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(reader);
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if stderr {
        cmd.stdout(Stdio::null()).stderr(writer);
    } else {
        cmd.stdout(writer).stderr(Stdio::piped());
    }
    cmd.output().expect("run vdsadm")
}

#[test]
fn a_closed_pipe_ends_the_output_and_not_the_process() {
    // `vdsadm list subsystems | head -0`: the reader is gone before vdsadm writes; the same for
    // what clap prints (help, version).
    for args in [
        &["--sim", "list", "subsystems"][..],
        &["--help"],
        &["--version"],
        &["list", "--help"],
    ] {
        let out = into_a_closed_pipe(args, false);
        assert_eq!(
            out.status.signal(),
            None,
            "vdsadm {args:?} was killed by a signal writing to a closed pipe: {out:?}"
        );
        assert_eq!(out.status.code(), Some(0), "vdsadm {args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "vdsadm {args:?}: {out:?}");
    }
}

#[test]
fn a_closed_stderr_leaves_the_exit_status_as_it_is() {
    // A usage error (2) and an object not found (3), said into a stderr nobody reads.
    for (args, code) in [
        (&["list", "bogus"][..], 2),
        (&["--sim", "list", "tportals", "--subsystem", "nowhere"], 3),
    ] {
        let out = into_a_closed_pipe(args, true);
        assert_eq!(out.status.code(), Some(code), "vdsadm {args:?}: {out:?}");
    }
}

#[test]
fn standard_descriptors_that_come_closed_are_opened_on_dev_null() {
    // `vdsadm watch <&- >&- 2>&-`: without /dev/null on 0, 1 and 2, the first files and sockets
    // vdsadm opens would take those numbers, and what it prints would go into them.
    // Its throwaway store goes into a directory of this test's, checked empty at the end.
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut cmd = Command::new(BIN);
    cmd.args(["--sim", "watch", "--refresh-every", "1h"])
        .env("TMPDIR", tmp.path());
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
    // `watch` is going once it catches SIGTERM (it then removes its store when told to stop):
    // its runtime and its store are open by then.
    let deadline = Instant::now() + Duration::from_secs(20);
    let going = loop {
        if catches_sigterm(pid) {
            break true;
        }
        if Instant::now() >= deadline || child.try_wait().expect("wait").is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let links: Vec<_> = (0..3)
        .map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
        .collect();
    // SAFETY: a signal to the child this test started, which has not been waited for.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait for vdsadm");
    assert!(going, "vdsadm watch was not going within 20 s ({status})");
    assert_eq!(
        status.signal(),
        None,
        "vdsadm watch did not end on SIGTERM by itself"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read the temporary directory")
        .collect();
    assert!(left.is_empty(), "vdsadm watch left {left:?}");
    for (fd, target) in links.iter().enumerate() {
        assert_eq!(
            target.as_deref(),
            Some(std::path::Path::new("/dev/null")),
            "descriptor {fd} of vdsadm: {links:?}"
        );
    }
}

/// Whether process `pid` has a handler for SIGTERM (`SigCgt` of /proc/PID/status).
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}
