//! `easel generate --preview FILE.png`: the live preview A1111 shows while sampling, written
//! (atomically) to a file every `--preview-every` steps and at the end of every pass, so an
//! image viewer that reloads the file follows the sampler. The method is A1111's default
//! "Approx NN" when `models/VAE-approx/model.pt` is there, else its "Approx cheap" linear
//! map of the latent channels (A1111 would download the network; Easel downloads nothing).

use easel_core::nn::VaeApprox;
use easel_core::pipeline::latent_preview_rgb;
use easel_core::sampler::block_on;
use easel_core::service::StepProgress;
use easel_core::{Backend, Error, Result};
use std::cell::Cell;
use std::path::{Path, PathBuf};

pub struct LivePreview<B: Backend> {
    path: PathBuf,
    every: usize,
    backend: B,
    net: Option<VaeApprox<B>>,
    /// Set after a failed write: the warning is printed once and previews stop.
    failed: Cell<bool>,
}

impl<B: Backend> LivePreview<B> {
    /// A preview written to `path` every `every` steps, with the network of `models` when it
    /// has one.
    pub fn new(path: PathBuf, every: usize, models: &Path, backend: B) -> Result<Self> {
        if every == 0 {
            return Err(Error::Invalid("--preview-every must be at least 1".into()));
        }
        let file = models.join("VAE-approx").join("model.pt");
        let net = if file.is_file() {
            Some(VaeApprox::load(&backend, &file)?)
        } else {
            None
        };
        Ok(Self {
            path,
            every,
            backend,
            net,
            failed: Cell::new(false),
        })
    }

    /// "Approx NN" or "Approx cheap".
    pub fn method(&self) -> &'static str {
        if self.net.is_some() {
            "Approx NN"
        } else {
            "Approx cheap"
        }
    }

    /// Writes the preview of the first image of the batch when this step is due.
    pub fn on_step(&self, p: &StepProgress) {
        let done = p.step + 1;
        if self.failed.get() || (!done.is_multiple_of(self.every) && done != p.steps) {
            return;
        }
        if let Err(e) = self.write(p) {
            eprintln!("warning: live preview: {e}; no more previews");
            self.failed.set(true);
        }
    }

    fn write(&self, p: &StepProgress) -> Result<()> {
        let [c, h, w] = p.latent_shape;
        let first = p.latent.get(..c * h * w).unwrap_or_default();
        let (rgb, pw, ph) = match &self.net {
            Some(net) => (
                block_on(net.preview_rgb(&self.backend, first, h, w))?,
                2 * w,
                2 * h,
            ),
            None => (latent_preview_rgb(first, h, w), w, h),
        };
        easel_core::infotext::write_png(&self.path, pw as u32, ph as u32, &rgb, None)
    }
}
