//! Keep freed activation buffers inside the process.
//!
//! Every UNet layer allocates its output afresh and frees its input. With glibc's default
//! settings, blocks of more than a few MiB are mapped and unmapped for each allocation, or
//! freed heap memory is trimmed back to the system, so the next layer's output pages are
//! faulted in and zeroed by the kernel again: about a tenth of a 512² CFG step on the CPU
//! (measured with `easel bench`: 4.97–5.09 s → 4.44–4.61 s on the 2-core development
//! machine, same peak RSS). Serving blocks of up to 32 MiB from the heap and never
//! trimming it lets the allocator hand those pages straight back out.

/// Apply the settings for this process (glibc on Linux; elsewhere nothing to do).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's largest accepted mmap threshold on 64-bit targets.
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        // SAFETY: mallopt only changes allocator tuning parameters; it is called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}
