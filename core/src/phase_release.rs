//! A hook through which the program running Easel gives freed memory back to the system
//! between the phases of a generation whose memory grows: sampling, then the VAE decode,
//! whose every level is four times the size of the last.
//!
//! Each phase frees what the last one held (the UNet's activations, a decoder level's), but
//! an allocator that keeps freed pages for reuse, as the `easel` binary's does to avoid
//! faulting pages in layer after layer, would then hold them while the next phase grows its
//! own, larger activations: the process's peak would be both. Giving them back inside a
//! phase instead faults them in again at once (on a 2-core Zen 3, trimming whenever a
//! large block grew cost about 50 000 page faults per 512² step). So the networks call
//! [`release_between_phases`] where one phase has ended and the next has not begun (the
//! VAE decoder, before it starts and before each level), and the program decides what that
//! means: a no-op unless it registered a function with [`set_phase_release`] (core knows
//! no allocator; the browser build registers none).

use std::sync::OnceLock;

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Registers the function [`release_between_phases`] calls. Only the first registration
/// counts; returns whether this one did.
pub fn set_phase_release(release: fn()) -> bool {
    RELEASE.set(release).is_ok()
}

/// Called between phases (by the VAE decoder): runs the registered function, if any.
pub fn release_between_phases() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}
