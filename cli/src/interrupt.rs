//! Ctrl-C and SIGTERM end the run without leaving the hidden temporary files of `convert`,
//! `prune` or `import` behind: the signal handler only raises a flag (all a handler may
//! safely do), and a watcher thread then deletes the files being written and exits with
//! the shell's code for an interrupted command (128 + signal).

/// Installs the handlers (Linux with glibc; elsewhere the default handling stays, and the
/// next run sweeps what an interrupted one left).
pub fn remove_temp_files_on_signal() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::{AtomicI32, Ordering};
        static RECEIVED: AtomicI32 = AtomicI32::new(0);
        extern "C" fn on_signal(sig: libc::c_int) {
            RECEIVED.store(sig, Ordering::SeqCst);
        }
        let spawned = std::thread::Builder::new()
            .name("signal-watch".into())
            .spawn(|| loop {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let sig = RECEIVED.load(Ordering::SeqCst);
                if sig != 0 {
                    easel_core::io::atomic_file::remove_temp_files();
                    std::process::exit(128 + sig);
                }
            });
        if spawned.is_ok() {
            let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                libc::signal(libc::SIGINT, handler);
                libc::signal(libc::SIGTERM, handler);
            }
        }
    }
}
