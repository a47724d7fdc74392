//! The allocator of vdsd: mimalloc, for every allocation of a program that links this crate, tuned
//! by [`tune`] to return freed memory to the system at once.
//!
//! Why: a refresh allocates and frees a string or a vector for nearly every target it reads, and
//! glibc's malloc was about a quarter of its CPU time; with mimalloc the same refresh of 5,000
//! subsystems takes a fifth less CPU (docs/PERFORMANCE.md, "Fleet scale"). mimalloc's defaults keep
//! freed memory for a while and commit whole arenas ahead, which raised the peak RSS of a refresh
//! of 5,000 subsystems from 42 to 68 MiB; purging at once and committing arenas on demand brings it
//! back to the glibc figure, for a few percent of the CPU saved.
//!
//! vdsadm does not link it: mimalloc's start-up (it reserves its arena, reads `/proc/self/maps`,
//! purges at exit) costs about 0.4 ms, a fifth of a `vdsadm list` or `discover`, which matter more
//! at a terminal than the CPU of a large refresh.

/// mimalloc serves every allocation of the program.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_e` (`mimalloc.h`; the crate version
/// is pinned in Cargo.lock). libmimalloc-sys names only the options older versions had.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay`, likewise.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tunes the allocator: freed memory is purged at once (not after a second), and arenas are committed
/// as they are used rather than ahead. Call first thing in `main`; what is allocated before is
/// unaffected but still served by mimalloc. The environment (`MIMALLOC_PURGE_DELAY`, …) can no
/// longer override these two.
pub fn tune() {
    // SAFETY: `mi_option_set` only stores a value in mimalloc's option table; both option numbers
    // exist in the bundled mimalloc v3, and the values are in their documented ranges.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

#[cfg(test)]
mod tests {
    /// The two numbers name the options `tune` means: before it, they read the bundled mimalloc
    /// v3's defaults (`options.c`: purge delay 1,000 ms, arena eager commit 2; `mimalloc.h`'s
    /// comment still says 10 ms), which no neighbouring option shares; after it, what `tune` set.
    #[test]
    fn tune_sets_the_purge_delay_and_the_arena_commit() {
        let read = || {
            // SAFETY: reading an option is a lookup in mimalloc's option table.
            unsafe {
                (
                    libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                    libmimalloc_sys::mi_option_get(super::MI_OPTION_ARENA_EAGER_COMMIT),
                )
            }
        };
        // The environment may set them; the defaults are checked only when it does not.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
            && std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none()
        {
            assert_eq!(read(), (1000, 2), "not the options this crate means");
        }
        super::tune();
        assert_eq!(read(), (0, 0));
        // And the allocator still works.
        let v: Vec<u64> = (0..100_000).collect();
        assert_eq!(v.iter().sum::<u64>(), 4_999_950_000);
    }
}
