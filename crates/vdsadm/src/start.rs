//! vdsadm's entry point, in place of Rust's own (`#![no_main]` in `main.rs`).
//!
//! Rust's runtime entry does four things before `main` on Linux: it makes sure descriptors 0, 1
//! and 2 are open, sets SIGPIPE to be ignored, records which thread is the main one, and installs
//! the handler that turns a stack overflow into a message. The last is most of its cost: glibc
//! finds the main thread's stack by reading `/proc/self/maps`, and the handler needs an alternate
//! signal stack mapped and unmapped. That is 0.04 to 0.12 ms of every command, 3% of `vdsadm
//! discover` (docs/PERFORMANCE.md, "the sixth run"). vdsadm keeps the first two, which decide
//! what the process does, and leaves the last two: a stack overflow ends vdsadm with SIGSEGV and
//! no message, a panic names its thread `<unnamed>`, and a backtrace (`RUST_BACKTRACE=1`) runs
//! down to `_start` instead of stopping at `main`. Panics still end the process with status 101,
//! and the exit still flushes stdout (`std::process::exit`). Only for Linux with glibc (see
//! `main.rs`).

use std::ffi::c_int;

/// Makes the process what Rust's entry would have made it: descriptors 0, 1 and 2 open (on
/// `/dev/null` when they came closed, so that no file vdsadm opens takes their place and gets
/// its output) and SIGPIPE ignored (a closed pipe is an error `write` returns, which vdsadm
/// treats as the end of its output, not a signal that kills it).
fn prepare() {
    open_standard_descriptors();
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions, and no other thread
    // exists yet.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        // As Rust's entry does: a process that a closed pipe could kill does not go on.
        std::process::abort();
    }
}

fn open_standard_descriptors() {
    for fd in 0..3 {
        if is_open(fd) {
            continue;
        }
        // The lowest free descriptor is taken, and every lower one is open: this one is `fd`.
        // SAFETY: a NUL-terminated path and plain flags.
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got != fd {
            // Without /dev/null a file vdsadm opens could take over its output: do not go on.
            std::process::abort();
        }
    }
}

fn is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD on any number only reads the descriptor table.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
}

/// Runs vdsadm and ends the process with its status: 101 after a panic, as Rust's entry does
/// (the panic's message is printed by then). A panic must not unwind out of the C `main`.
pub fn run(vdsadm: fn() -> u8) -> ! {
    prepare();
    match std::panic::catch_unwind(vdsadm) {
        Ok(code) => std::process::exit(i32::from(code)),
        Err(payload) => {
            // Dropping the payload could panic in turn, outside any catch: leave it, as Rust's
            // entry does.
            std::mem::forget(payload);
            std::process::exit(101)
        }
    }
}
