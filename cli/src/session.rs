//! The CLI's view of the generation service: a job's settings plus the models folder they
//! name files in, and a session that keeps one service (models, VAEs and hypernetworks
//! loaded once, reused for every image of a batch count or every cell of a grid).

use crate::generate::{sampler_registry, scheduler_registry};
use easel_core::infotext::Infotext;
use easel_core::pipeline::{CancelToken, GeneratedImage};
use easel_core::service::{GenerationInputs, GenerationService, GenerationSettings, StepProgress};
use easel_core::{Backend, Result};
use easel_hypernetwork::FolderHypernetworks;
use easel_lora::FolderLoras;
use easel_upscalers::{folder_upscalers, TileSettings};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

/// One job as the CLI describes it: the service's settings and the models folder.
#[derive(Clone, Debug)]
pub struct Settings {
    pub models: PathBuf,
    /// `--embeddings-dir`; `None` = `embeddings/` beside the models folder.
    pub embeddings: Option<PathBuf>,
    pub generation: GenerationSettings,
}

impl Deref for Settings {
    type Target = GenerationSettings;
    fn deref(&self) -> &GenerationSettings {
        &self.generation
    }
}

impl DerefMut for Settings {
    fn deref_mut(&mut self) -> &mut GenerationSettings {
        &mut self.generation
    }
}

/// What the front ends generate on: a backend whose handle can be shared with the
/// upscaler models that hires fix loads from the models folder.
pub trait SessionBackend: Backend<Tensor: Send + Sync> + Clone + Send + Sync + 'static {}

impl<T> SessionBackend for T where T: Backend<Tensor: Send + Sync> + Clone + Send + Sync + 'static {}

/// Points `svc` at the models folder `models`: its hypernetworks, LoRAs and upscaler
/// models. `request_paths` lets requests (not prompt tags) name a hypernetwork by path, as
/// the CLI's own `--hypernet` may.
fn use_models_folder<B: SessionBackend>(
    svc: &mut GenerationService<B>,
    models: &Path,
    request_paths: bool,
) {
    svc.set_models_folder(models);
    let hypernets = FolderHypernetworks::<B>::new(models);
    svc.set_networks(Box::new(if request_paths {
        hypernets.with_request_paths()
    } else {
        hypernets
    }));
    svc.set_weight_patches(Box::new(FolderLoras::new(models)));
    let upscalers = folder_upscalers(models, svc.backend(), TileSettings::A1111);
    svc.set_upscalers(upscalers);
}

/// A generation service on backend `B` with this build's samplers, hypernetworks, LoRAs
/// and the folder's upscaler models.
pub fn service<B: SessionBackend>(
    backend: B,
    models: PathBuf,
    embeddings: Option<PathBuf>,
) -> GenerationService<B> {
    let mut svc = GenerationService::new(backend, sampler_registry(), scheduler_registry());
    use_models_folder(&mut svc, &models, false);
    svc.set_embeddings_folder(embeddings);
    svc
}

/// Models, VAEs and hypernetworks loaded onto backend `B`, reused across images.
pub struct Session<B: SessionBackend> {
    service: GenerationService<B>,
}

impl<B: SessionBackend> Session<B> {
    pub fn new(backend: B) -> Self {
        Self {
            service: GenerationService::new(backend, sampler_registry(), scheduler_registry()),
        }
    }

    /// The backend the session generates on.
    pub fn backend(&self) -> &B {
        self.service.backend()
    }

    /// The service, looking in `models` (networks are re-read when the folder changes).
    fn service_for(&mut self, models: &Path) -> &mut GenerationService<B> {
        if self.service.models_folder() != Some(models) {
            // The CLI's own `--hypernet` may be a path; pasted names are checked in
            // `GenerateArgs::settings`.
            use_models_folder(&mut self.service, models, true);
        }
        &mut self.service
    }

    /// Generate every batch of `s` (from init images / a mask for img2img and inpainting);
    /// each image comes with the infotext A1111 would write. `progress` hears every
    /// sampling step.
    pub fn generate_with_inputs(
        &mut self,
        s: &Settings,
        inputs: &GenerationInputs,
        progress: &mut dyn FnMut(&StepProgress),
    ) -> Result<Vec<(GeneratedImage, Infotext)>> {
        let service = self.service_for(&s.models);
        service.set_embeddings_folder(s.embeddings.clone());
        // Settings are checked before a (slow) model load.
        service.params(&s.generation)?;
        let t0 = std::time::Instant::now();
        // Loads the model with the job's LoRAs patched in (again only when the set changes).
        let (model, fresh) = service.ready_model(&s.generation)?;
        if fresh {
            eprintln!(
                "loaded {} [{}]{} in {:.1}s",
                model.info.name,
                model.info.hash,
                model
                    .info
                    .vae_name
                    .as_ref()
                    .map(|v| format!(" with VAE {v}"))
                    .unwrap_or_default(),
                t0.elapsed().as_secs_f32()
            );
        }
        let images = service.generate_with_inputs_blocking(
            &s.generation,
            inputs,
            progress,
            &CancelToken::new(),
        )?;
        for w in service.warnings() {
            eprintln!("warning: {w}");
        }
        Ok(images.into_iter().map(|g| (g.image, g.infotext)).collect())
    }
}
