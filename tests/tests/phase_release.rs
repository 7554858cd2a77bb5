//! The VAE decoder calls the phase-release hook (`easel_core::phase_release`) before it
//! starts and before each of its levels, where the `easel` binary hands freed memory back
//! so that each level's larger activations do not come on top of the last level's. Its own
//! test binary: the hook is process-wide and registered once.

use easel_candle::CandleBackend;
use easel_core::nn::{random_weights, AutoencoderKl, VaeConfig, Weights};
use easel_core::phase_release::{release_between_phases, set_phase_release};
use easel_core::Backend;
use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn the_decoder_releases_before_it_starts_and_before_each_level() {
    // Nothing registered yet: a call is a no-op.
    release_between_phases();
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
    assert!(set_phase_release(count));
    assert!(
        !set_phase_release(count),
        "only the first registration counts"
    );

    let cfg = VaeConfig {
        ch: 32,
        ch_mult: vec![1, 2, 2, 2],
        ..VaeConfig::sd15()
    };
    let store = random_weights(None, Some(&cfg), None, 3);
    let b = CandleBackend::cpu();
    let vae = AutoencoderKl::load(&b, &Weights::new(&store, "first_stage_model"), &cfg).unwrap();
    let z = b.upload(&vec![0.1; 4 * 4 * 4], &[1, 4, 4, 4]).unwrap();
    let image = b.download(&vae.decode(&b, &z).unwrap()).unwrap();
    assert_eq!(image.len(), 3 * 32 * 32);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1 + cfg.ch_mult.len(),
        "once before the decode, once per level"
    );
}
