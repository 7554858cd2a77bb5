//! Stopping a generation from another thread, as A1111's Interrupt and Skip buttons do.
//! Interrupt ends the whole job; Skip ends the batch being sampled and lets the next batch
//! of the job start. Either way the batch that was stopped still yields images: the last
//! denoised prediction is decoded, as A1111 returns it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared flags a front end sets (an HTTP handler, a button) and the pipeline polls before
/// every model evaluation. Cloning shares the flags.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    interrupted: Arc<AtomicBool>,
    skipped: Arc<AtomicBool>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop the job: the current batch ends early and no further batch starts.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
    }

    /// End the current batch early; later batches of the job still run.
    pub fn skip(&self) {
        self.skipped.store(true, Ordering::SeqCst);
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// True while the current batch should stop (interrupted or skipped).
    pub fn stops_batch(&self) -> bool {
        self.is_interrupted() || self.skipped.load(Ordering::SeqCst)
    }

    /// Clear Skip (a new batch starts).
    pub fn clear_skip(&self) {
        self.skipped.store(false, Ordering::SeqCst);
    }

    /// Clear both flags (a new job starts).
    pub fn reset(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
        self.skipped.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_stops_the_batch_only_and_clones_share_flags() {
        let t = CancelToken::new();
        let seen_by_worker = t.clone();
        assert!(!seen_by_worker.stops_batch());
        t.skip();
        assert!(seen_by_worker.stops_batch() && !seen_by_worker.is_interrupted());
        seen_by_worker.clear_skip();
        assert!(!t.stops_batch());
        t.interrupt();
        assert!(seen_by_worker.stops_batch() && seen_by_worker.is_interrupted());
        t.reset();
        assert!(!seen_by_worker.stops_batch());
    }
}
