//! The one place that turns [`GenerationSettings`] into images and infotexts: it resolves
//! the sampler and schedule, keeps the model (and, through its [`NetworkProvider`], the
//! hypernetworks) loaded between jobs and switches them when a job names another, runs the
//! batches, and writes each image's A1111 infotext. The CLI, the page and the HTTP server
//! only map their input onto the settings and present the result.
//!
//! The model can come two ways, so the service also runs in the browser: from a models
//! folder ([`GenerationService::load_model`], native) or handed in already loaded
//! ([`GenerationService::set_model`], which the page does after reading the user's files
//! through its own byte sources).

use super::img2img_job::{GenerationInputs, PreparedJob};
use super::networks::{NetworkProvider, PreparedNetworks};
use super::settings::GenerationSettings;
use crate::image::UpscalerRegistry;
use crate::infotext::Infotext;
use crate::model::{checkpoint_files, resolve_checkpoint, ModelInfo, StableDiffusion, VaeChoice};
use crate::nn::AttentionHook;
use crate::pipeline::{
    txt2img_infotext, CancelToken, GeneratedImage, PromptOptions, Txt2ImgParams,
};
use crate::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use crate::sampler::block_on;
use crate::text::{emphasis_infotext, AttentionSyntax};
use crate::{Backend, Error, Result};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One image of a job with the infotext A1111 would write for it.
#[derive(Clone, Debug)]
pub struct Generated {
    pub image: GeneratedImage,
    pub infotext: Infotext,
}

/// Where a job is, reported after every sampling step.
pub struct StepProgress<'a> {
    /// Batch being sampled, from 0, of `batch_count`.
    pub batch: usize,
    pub batch_count: usize,
    /// Step just finished, from 0, of `steps`.
    pub step: usize,
    pub steps: usize,
    /// The current latent of the whole batch, `[batch_size, channels, h/8, w/8]`.
    pub latent: &'a [f32],
    /// `[channels, h/8, w/8]` of one image.
    pub latent_shape: [usize; 3],
}

/// The files a loaded model came from (checkpoint, VAE); `None` for a model handed in.
type ModelKey = Option<(PathBuf, Option<PathBuf>)>;

pub struct GenerationService<B: Backend> {
    backend: B,
    samplers: SamplerRegistry,
    schedulers: SchedulerRegistry,
    models_dir: Option<PathBuf>,
    /// One checkpoint at a time: a 4 GB model is freed before the next one loads.
    model: Option<(ModelKey, Rc<StableDiffusion<B>>)>,
    networks: Option<Box<dyn NetworkProvider<B>>>,
    /// Image upscalers by A1111 name (Lanczos, Nearest, model files) for hires fix.
    upscalers: UpscalerRegistry,
}

impl<B: Backend> GenerationService<B> {
    /// A service on `backend` with the samplers and schedules the front end registered.
    pub fn new(backend: B, samplers: SamplerRegistry, schedulers: SchedulerRegistry) -> Self {
        Self {
            backend,
            samplers,
            schedulers,
            models_dir: None,
            model: None,
            networks: None,
            upscalers: UpscalerRegistry::with_builtins(),
        }
    }

    /// Replace the image upscalers hires fix can name (the built-ins are Lanczos, Nearest).
    pub fn set_upscalers(&mut self, upscalers: UpscalerRegistry) {
        self.upscalers = upscalers;
    }

    pub fn upscalers(&self) -> &UpscalerRegistry {
        &self.upscalers
    }

    /// Load models by name from this A1111 models folder.
    pub fn with_models_folder(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = Some(dir.into());
        self
    }

    /// Apply attention networks (hypernetworks) through `provider`.
    pub fn with_networks(mut self, provider: Box<dyn NetworkProvider<B>>) -> Self {
        self.networks = Some(provider);
        self
    }

    /// Replace the network provider (e.g. for another models folder).
    pub fn set_networks(&mut self, provider: Box<dyn NetworkProvider<B>>) {
        self.networks = Some(provider);
    }

    /// Switch the models folder (a loaded model stays until a job names another).
    pub fn set_models_folder(&mut self, dir: &Path) {
        if self.models_dir.as_deref() != Some(dir) {
            self.models_dir = Some(dir.to_path_buf());
        }
    }

    pub fn models_folder(&self) -> Option<&Path> {
        self.models_dir.as_deref()
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn samplers(&self) -> &SamplerRegistry {
        &self.samplers
    }

    pub fn schedulers(&self) -> &SchedulerRegistry {
        &self.schedulers
    }

    /// What is loaded now, if anything.
    pub fn loaded_model(&self) -> Option<&ModelInfo> {
        self.model.as_ref().map(|(_, m)| &m.info)
    }

    /// Install a model loaded elsewhere (the page reads the user's files itself).
    pub fn set_model(&mut self, model: StableDiffusion<B>) {
        self.model = Some((None, Rc::new(model)));
    }

    /// Free the loaded model.
    pub fn unload_model(&mut self) {
        self.model = None;
    }

    /// The checkpoint `name` (name, stem, path, hash or A1111 title; empty = the first) with
    /// VAE `vae` from the models folder, loading it unless it is the one loaded already.
    /// Returns the model and whether it was loaded by this call.
    pub fn load_model(&mut self, name: &str, vae: &str) -> Result<(Rc<StableDiffusion<B>>, bool)> {
        let dir = self
            .models_dir
            .clone()
            .ok_or_else(|| Error::Invalid("no models folder is set: load a model first".into()))?;
        let checkpoint = resolve_checkpoint(&dir, name)?;
        let files = checkpoint_files(&dir, &checkpoint, &VaeChoice::parse(vae))?;
        let key = Some((files.checkpoint.clone(), files.vae.clone()));
        if let Some((loaded, m)) = &self.model {
            if *loaded == key {
                return Ok((m.clone(), false));
            }
        }
        // Free the previous checkpoint before loading the next.
        self.model = None;
        let model = Rc::new(StableDiffusion::load(&self.backend, &files)?);
        self.model = Some((key, model.clone()));
        Ok((model, true))
    }

    /// The model a job runs on: the one its settings name from the folder, or the model
    /// handed in when the service has no folder.
    fn model_for(&mut self, s: &GenerationSettings) -> Result<Rc<StableDiffusion<B>>> {
        if self.models_dir.is_some() {
            return Ok(self.load_model(&s.model, &s.vae)?.0);
        }
        self.model
            .as_ref()
            .map(|(_, m)| m.clone())
            .ok_or_else(|| Error::Invalid("no model is loaded: pick a checkpoint first".into()))
    }

    /// The pipeline parameters of batch 0 of `s` (prompt as written); every setting is
    /// checked, and an unknown sampler or schedule is an error naming it.
    pub fn params(&self, s: &GenerationSettings) -> Result<Txt2ImgParams> {
        let choice = SamplerChoice::parse(
            &self.samplers,
            &self.schedulers,
            &s.sampler,
            s.schedule_type.as_deref(),
        )?;
        let (sampler, scheduler) = choice.configured(&self.schedulers, &s.sampler_params)?;
        if s.batch_count == 0 {
            return Err(Error::Invalid("batch count must be at least 1".into()));
        }
        let params = Txt2ImgParams {
            prompt: s.prompt.clone(),
            negative_prompt: s.negative_prompt.clone(),
            steps: s.steps,
            cfg_scale: s.cfg_scale,
            seed: s.seed,
            width: s.width,
            height: s.height,
            batch_size: s.batch_size,
            clip_skip: s.clip_skip,
            rng: s.rng,
            noise_device: s.effective_noise_device(),
            ensd: s.ensd,
            sampler,
            scheduler,
        };
        params.validate()?;
        Ok(params)
    }

    /// Every batch of `s`: images with their infotexts, in order. `progress` hears every
    /// step; `cancel` stops the job (Interrupt) or the current batch (Skip), and the images
    /// of a stopped batch are still returned, decoded from where sampling stopped.
    pub async fn generate(
        &mut self,
        s: &GenerationSettings,
        progress: &mut dyn FnMut(&StepProgress),
        cancel: &CancelToken,
    ) -> Result<Vec<Generated>> {
        self.generate_with_inputs(s, &GenerationInputs::default(), progress, cancel)
            .await
    }

    /// [`Self::generate`] from init images (img2img, inpainting with `inputs.mask`); with
    /// no init image, txt2img (with hires fix when `s.enable_hr`).
    pub async fn generate_with_inputs(
        &mut self,
        s: &GenerationSettings,
        inputs: &GenerationInputs,
        progress: &mut dyn FnMut(&StepProgress),
        cancel: &CancelToken,
    ) -> Result<Vec<Generated>> {
        let mut params = self.params(s)?;
        let model = self.model_for(s)?;
        let job =
            PreparedJob::prepare(s, inputs, &self.samplers, &self.schedulers, &self.upscalers)?;
        let prepared = match &mut self.networks {
            Some(provider) => provider.prepare(&self.backend, &s.prompt, &s.hypernets)?,
            None => PreparedNetworks {
                prompt: s.prompt.clone(),
                hook: None,
                infotext: Vec::new(),
            },
        };
        params.prompt.clone_from(&prepared.prompt);
        let options = PromptOptions {
            emphasis: s.emphasis,
            syntax: if s.nai_braces {
                AttentionSyntax::NovelAi
            } else {
                AttentionSyntax::A1111
            },
        };
        let emphasis_field =
            emphasis_infotext(s.emphasis, [s.prompt.as_str(), s.negative_prompt.as_str()]);
        let latent_shape = [model.config.unet.out_channels, s.height / 8, s.width / 8];
        let mut out = Vec::new();
        for batch in 0..s.batch_count {
            if cancel.is_interrupted() {
                break;
            }
            cancel.clear_skip();
            params.seed = s.batch_seed(batch);
            let hooks: Vec<&dyn AttentionHook<B>> =
                prepared.hook.iter().map(|h| h.as_ref()).collect();
            let mut on_step = |step: usize, steps: usize, latent: &[f32]| {
                progress(&StepProgress {
                    batch,
                    batch_count: s.batch_count,
                    step,
                    steps,
                    latent,
                    latent_shape,
                })
            };
            let images = job
                .run_batch(
                    &self.backend,
                    &model,
                    &params,
                    s,
                    &options,
                    hooks,
                    &mut on_step,
                    cancel,
                )
                .await?;
            for image in images {
                let mut infotext = txt2img_infotext(&params, &model.info, image.seed);
                job.infotext(&mut infotext, s, &params);
                infotext.prompt.clone_from(&s.prompt);
                for (k, v) in &prepared.infotext {
                    infotext.push(k.clone(), v);
                }
                if let Some(mode) = emphasis_field {
                    infotext.push("Emphasis", mode);
                }
                out.push(Generated { image, infotext });
            }
        }
        Ok(out)
    }

    /// [`Self::generate`] for native front ends, which wait on the thread they run on.
    pub fn generate_blocking(
        &mut self,
        s: &GenerationSettings,
        progress: &mut dyn FnMut(&StepProgress),
        cancel: &CancelToken,
    ) -> Result<Vec<Generated>> {
        block_on(self.generate(s, progress, cancel))
    }

    /// [`Self::generate_with_inputs`] for native front ends.
    pub fn generate_with_inputs_blocking(
        &mut self,
        s: &GenerationSettings,
        inputs: &GenerationInputs,
        progress: &mut dyn FnMut(&StepProgress),
        cancel: &CancelToken,
    ) -> Result<Vec<Generated>> {
        block_on(self.generate_with_inputs(s, inputs, progress, cancel))
    }
}
