//! Keep freed activation buffers inside the process, and give them back when idle.
//!
//! Every network layer allocates its output afresh and frees its input. Left to glibc, a
//! block of 32 MiB or more (the VAE decoder's 128–256 MiB activations at 512², the UNet's
//! at 1024²) is mapped for its allocation and unmapped when freed, so the next one is
//! faulted in and zeroed by the kernel page by page: on the 2-core Zen 5 development
//! machine, 1 thread, `clear_page` was a quarter of a 512² VAE decode in `perf`. Two
//! measures keep those pages in use:
//!
//! - blocks under 32 MiB come from glibc's heap, which is never trimmed while work runs
//!   (glibc's own tuning, [`keep_freed_memory`]);
//! - blocks of 32 MiB and more go through the binary's global allocator,
//!   [`RecyclingAllocator`](crate::recycling_allocator::RecyclingAllocator): a freed block
//!   is kept and handed to the next request of its size or smaller. glibc cannot be told to
//!   do this: even with its mapping disabled, a thread other than the main one maps each
//!   block above its arena's 64 MiB on its own, and the server generates on such a thread.
//!   A request larger than every kept block grows the largest with `mremap` (its pages
//!   move into the new block; only the difference is fresh) rather than mapping all-new
//!   pages: on a 2-core Zen 3, 1 thread, the 512² decode's page faults fell from 212 000 to
//!   133 000–167 000 and its time from 13.3 to 12.8–13.1 s.
//!
//! Measured with `easel bench --pipeline --steps 2` on that machine, 1 thread: the 512² VAE
//! decode 12.3 → 9.2 s in fp32 and 10.2 → 9.0–9.2 s in bf16, steps unchanged, the decode's
//! peak RSS lower (2765 → 2736 MiB in bf16). The price is that a long-lived process keeps
//! the blocks it freed: [`release_free_memory`] hands them back, called by the server when
//! it goes idle and after unloading a model.
//!
//! Hand-written rather than a general-purpose allocator crate: jemalloc with its defaults
//! made the same bench slower (step 7.3 → 8.6 s, more kernel time: it purges freed large
//! blocks), and what is needed is one narrow policy on top of the system allocator.

/// Apply glibc's settings for this process (elsewhere nothing to do).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's largest accepted mmap threshold on 64-bit targets: larger blocks never
        // reach glibc in the `easel` binary (see `RecyclingAllocator`).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        // SAFETY: mallopt only changes allocator tuning parameters; it is called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}

/// Return the memory freed blocks still hold to the system: the recycled large blocks and
/// the free pages of glibc's heap (`malloc_trim` also releases whole free pages inside the
/// heap, not only its top). The next allocations fault pages in again, so call it where the
/// process waits, not between layers.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", not(test)))]
    crate::GLOBAL_ALLOCATOR.release();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
