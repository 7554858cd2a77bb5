//! `easel generate --preview FILE.png`: the live preview A1111 shows while sampling, written
//! (atomically) to a file every `--preview-every` steps and at the end of every pass, so an
//! image viewer that reloads the file follows the sampler. Methods, A1111's "Live preview
//! method": "Approx NN" (`models/VAE-approx/model.pt`), "Approx cheap" (a linear map of the
//! latent channels) and "TAESD" (`models/VAE-approx/taesd_decoder.pth`, full size). The
//! default is A1111's, Approx NN, when its file is there, else Approx cheap (A1111 would
//! download the network; Easel downloads nothing).

use easel_core::nn::{TaesdDecoder, VaeApprox};
use easel_core::pipeline::latent_preview_rgb;
use easel_core::sampler::block_on;
use easel_core::service::StepProgress;
use easel_core::{Backend, Error, Result};
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// How the latent becomes the preview.
enum Method<B: Backend> {
    ApproxNn(VaeApprox<B>),
    ApproxCheap,
    Taesd(TaesdDecoder<B>),
}

pub struct LivePreview<B: Backend> {
    path: PathBuf,
    every: usize,
    backend: B,
    method: Method<B>,
    /// Set after a failed write: the warning is printed once and previews stop.
    failed: Cell<bool>,
}

impl<B: Backend> LivePreview<B> {
    /// A preview written to `path` every `every` steps by `method` (`auto`, `approx-nn`,
    /// `approx-cheap`, `taesd`, or A1111's names), with the networks of `models`.
    pub fn new(
        path: PathBuf,
        every: usize,
        method: &str,
        models: &Path,
        backend: B,
    ) -> Result<Self> {
        if every == 0 {
            return Err(Error::Invalid("--preview-every must be at least 1".into()));
        }
        let missing = |file: &str| {
            Error::Invalid(format!(
                "--preview-method {method}: {} is not there",
                models.join(file).display()
            ))
        };
        let key = method.trim().to_ascii_lowercase().replace([' ', '_'], "-");
        let method = match key.as_str() {
            "auto" => match VaeApprox::from_models_folder(&backend, models)? {
                Some(net) => Method::ApproxNn(net),
                None => Method::ApproxCheap,
            },
            "approx-cheap" | "cheap" => Method::ApproxCheap,
            "approx-nn" | "nn" => Method::ApproxNn(
                VaeApprox::from_models_folder(&backend, models)?
                    .ok_or_else(|| missing(VaeApprox::<B>::FILE))?,
            ),
            "taesd" => Method::Taesd(
                TaesdDecoder::from_models_folder(&backend, models)?
                    .ok_or_else(|| missing(TaesdDecoder::<B>::FILE))?,
            ),
            _ => {
                return Err(Error::Invalid(format!(
                    "--preview-method `{method}` is not auto, approx-nn, approx-cheap or taesd"
                )))
            }
        };
        Ok(Self {
            path,
            every,
            backend,
            method,
            failed: Cell::new(false),
        })
    }

    /// A1111's name of the method in use.
    pub fn method(&self) -> &'static str {
        match self.method {
            Method::ApproxNn(_) => "Approx NN",
            Method::ApproxCheap => "Approx cheap",
            Method::Taesd(_) => "TAESD",
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
        let (rgb, pw, ph) = match &self.method {
            Method::ApproxNn(net) => (
                block_on(net.preview_rgb(&self.backend, first, h, w))?,
                2 * w,
                2 * h,
            ),
            Method::ApproxCheap => (latent_preview_rgb(first, h, w), w, h),
            Method::Taesd(net) => (
                block_on(net.decode_rgb(&self.backend, first, h, w))?,
                8 * w,
                8 * h,
            ),
        };
        easel_core::infotext::write_png(&self.path, pw as u32, ph as u32, &rgb, None)
    }
}
