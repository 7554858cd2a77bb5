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
use super::networks::{NetworkProvider, PreparedNetworks, PreparedPatch, WeightPatchProvider};
use super::settings::GenerationSettings;
use crate::embeddings::{ti_hashes, EmbeddingDatabase, EmbeddingsCache, TI_HASHES_KEY};
use crate::image::UpscalerRegistry;
use crate::infotext::Infotext;
use crate::io::ByteSource;
use crate::model::{
    checkpoint_files, resolve_checkpoint, CheckpointSources, ModelInfo, StableDiffusion, VaeChoice,
};
use crate::nn::taesd::TaesdFolder;
use crate::nn::AttentionHook;
use crate::pipeline::{
    txt2img_infotext, CancelToken, CondPadding, CondPaddingMode, GeneratedImage, PromptOptions,
    Txt2ImgParams,
};
use crate::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use crate::sampler::block_on;
use crate::text::{
    emphasis_infotext, extract_extra_networks, kinds_in_order, parse_extra_networks,
    strip_comments, AttentionSyntax, ScheduleOptions,
};
use crate::vae_plugin::{VaeMethods, VaeProvider};
use crate::{Backend, Error, Result};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

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
    /// [`PreparedPatch::key`] of the LoRA set the loaded model's weights carry.
    model_patch: String,
    /// The checkpoint as byte sources (the page's picked files), loaded again from them
    /// whenever the LoRA set changes.
    model_sources: Option<CheckpointSources>,
    networks: Option<Box<dyn NetworkProvider<B>>>,
    /// `--embeddings-dir`; `None` = `embeddings/` beside the models folder (A1111's layout).
    embeddings_dir: Option<PathBuf>,
    /// The embeddings folder as last loaded, reused while its files are unchanged.
    embeddings: EmbeddingsCache,
    /// Embedding files given directly (the browser's picked files), used instead of a
    /// folder; with the database last built from them, by text encoder width.
    embedding_files: Option<EmbeddingFiles>,
    patches: Option<Box<dyn WeightPatchProvider>>,
    /// The LoRA set readied for the current job.
    job_patch: PreparedPatch,
    /// Warnings of the last job (networks skipped, unknown tags).
    warnings: Vec<String>,
    /// What the last model load reported (LoRA layers that matched nothing or could not be
    /// applied): part of the warnings of every `ready_model` call until the job that
    /// caused the load ends, since a front end may ready the model before generating.
    load_report: Vec<String>,
    /// Image upscalers by A1111 name (Lanczos, Nearest, model files) for hires fix.
    upscalers: UpscalerRegistry,
    /// What offers VAE methods besides the checkpoint's VAE (TAESD built in, plugins').
    vae_providers: Vec<Box<dyn VaeProvider<B>>>,
    /// What the providers offered, by the models folder they were asked about: a model
    /// loaded again (another LoRA set, another checkpoint) reuses the loaded networks.
    vae_methods: Option<(Option<PathBuf>, VaeMethods<B>)>,
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
            model_patch: String::new(),
            model_sources: None,
            networks: None,
            patches: None,
            job_patch: PreparedPatch::none(),
            warnings: Vec::new(),
            load_report: Vec::new(),
            embeddings_dir: None,
            embeddings: EmbeddingsCache::default(),
            embedding_files: None,
            upscalers: UpscalerRegistry::with_builtins(),
            vae_providers: vec![Box::new(TaesdFolder)],
            vae_methods: None,
        }
    }

    /// Adds a provider of VAE methods (a plugin's decoder or encoder), consulted at each
    /// checkpoint load after the built-in TAESD.
    pub fn add_vae_provider(&mut self, provider: Box<dyn VaeProvider<B>>) {
        self.vae_providers.push(provider);
        self.vae_methods = None;
    }

    /// Replaces every VAE provider (the page's picked TAESD files) and attaches their
    /// methods to the loaded model at once, when no job holds it.
    pub fn set_vae_providers(&mut self, providers: Vec<Box<dyn VaeProvider<B>>>) -> Result<()> {
        self.vae_providers = providers;
        self.vae_methods = None;
        let models = self.models_dir.clone();
        let Some((key, model)) = self.model.take() else {
            return Ok(());
        };
        let mut model = Rc::try_unwrap(model).map_err(|m| {
            self.model = Some((key.clone(), m));
            Error::Invalid("the model is in use; pick the files again after the job".into())
        })?;
        self.attach_vae_methods(&mut model, models.as_deref());
        self.model = Some((key, Rc::new(model)));
        Ok(())
    }

    /// The VAE methods the providers offer (TAESD from `VAE-approx/`, plugins'), attached
    /// to `model`; loaded once per models folder and provider set. One that cannot load is
    /// a warning, and jobs not naming it go on.
    fn attach_vae_methods(&mut self, model: &mut StableDiffusion<B>, models: Option<&Path>) {
        let known = matches!(&self.vae_methods, Some((dir, _)) if dir.as_deref() == models);
        if !known {
            let mut all = VaeMethods::default();
            for provider in &self.vae_providers {
                match provider.methods(&self.backend, models) {
                    Ok(m) => all.extend(m),
                    Err(e) => self.warnings.push(e.to_string()),
                }
            }
            self.vae_methods = Some((models.map(Path::to_path_buf), all));
        }
        if let Some((_, methods)) = &self.vae_methods {
            model.vae_methods = methods.clone();
        }
    }

    /// Read textual-inversion embeddings from `dir` instead of `embeddings/` beside the
    /// models folder.
    pub fn with_embeddings_folder(mut self, dir: impl Into<PathBuf>) -> Self {
        self.embeddings_dir = Some(dir.into());
        self
    }

    /// Switch the embeddings folder (`None`: `embeddings/` beside the models folder).
    pub fn set_embeddings_folder(&mut self, dir: Option<PathBuf>) {
        self.embeddings_dir = dir;
    }

    /// The embeddings folder in use: the one set, else `embeddings/` beside the models
    /// folder; `None` without either.
    pub fn embeddings_folder(&self) -> Option<PathBuf> {
        self.embeddings_dir.clone().or_else(|| {
            let models = self.models_dir.as_deref()?;
            Some(models.parent().unwrap_or(Path::new(".")).join("embeddings"))
        })
    }

    /// The embeddings for a text encoder of hidden size `width`, read from the embeddings
    /// folder unless its files are unchanged since the last call; also whether they were
    /// (re)read now, so a front end shows [`EmbeddingDatabase::warnings`] once.
    pub fn embeddings_for(&mut self, width: usize) -> (Arc<EmbeddingDatabase>, bool) {
        if let Some(files) = &mut self.embedding_files {
            return files.database(width);
        }
        match self.embeddings_folder() {
            Some(dir) => self.embeddings.get(&dir, width),
            None => (Arc::new(EmbeddingDatabase::new(width)), false),
        }
    }

    /// Use these embedding files (`(file name, source)`, in A1111's scan order) instead of
    /// an embeddings folder: the browser's picked files. `None` goes back to the folder.
    pub fn set_embedding_files(&mut self, files: Option<Vec<(String, Arc<dyn ByteSource>)>>) {
        self.embedding_files = files.map(|files| EmbeddingFiles { files, built: None });
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

    /// Apply weight patches (LoRA) through `provider`.
    pub fn with_weight_patches(mut self, provider: Box<dyn WeightPatchProvider>) -> Self {
        self.patches = Some(provider);
        self
    }

    /// Replace the weight-patch provider (e.g. for another models folder).
    pub fn set_weight_patches(&mut self, provider: Box<dyn WeightPatchProvider>) {
        self.patches = Some(provider);
    }

    /// What the last job skipped and why (a LoRA not found, an unknown `<kind:…>` tag, …),
    /// for the front end to show; A1111 generates on in these cases.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
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

    /// The loaded model's text encoder width (what embeddings must match).
    pub fn loaded_text_width(&self) -> Option<usize> {
        self.model.as_ref().map(|(_, m)| m.config.clip.hidden)
    }

    /// Load the checkpoint given as byte sources (the page's picked files), without a
    /// models folder; jobs with LoRAs load it again from them with the LoRA set applied.
    pub fn set_model_sources(&mut self, sources: CheckpointSources) -> Result<ModelInfo> {
        self.unload_model();
        let mut model = StableDiffusion::load_from_sources(&self.backend, &sources)?;
        self.attach_vae_methods(&mut model, None);
        let info = model.info.clone();
        self.model = Some((None, Rc::new(model)));
        self.model_sources = Some(sources);
        self.model_patch.clear();
        Ok(info)
    }

    /// Free the loaded model.
    pub fn unload_model(&mut self) {
        self.model = None;
        self.model_sources = None;
    }

    /// The checkpoint `name` (name, stem, path, hash or A1111 title; empty = the first) with
    /// VAE `vae` from the models folder, loading it unless it is the one loaded already.
    /// Returns the model and whether it was loaded by this call.
    pub fn load_model(&mut self, name: &str, vae: &str) -> Result<(Rc<StableDiffusion<B>>, bool)> {
        self.job_patch = PreparedPatch::none();
        self.load_model_with_patch(name, vae)
    }

    /// [`Self::load_model`] with the weights patched by `self.job_patch`: a model loaded with
    /// another LoRA set is loaded again from the file, so every set is applied to the
    /// original weights.
    fn load_model_with_patch(
        &mut self,
        name: &str,
        vae: &str,
    ) -> Result<(Rc<StableDiffusion<B>>, bool)> {
        let dir = self
            .models_dir
            .clone()
            .ok_or_else(|| Error::Invalid("no models folder is set: load a model first".into()))?;
        let checkpoint = resolve_checkpoint(&dir, name)?;
        let files = checkpoint_files(&dir, &checkpoint, &VaeChoice::parse(vae))?;
        let key = Some((files.checkpoint.clone(), files.vae.clone()));
        if let Some((loaded, m)) = &self.model {
            if *loaded == key && self.model_patch == self.job_patch.key {
                return Ok((m.clone(), false));
            }
        }
        // Free the previous checkpoint before loading the next.
        self.model = None;
        let patch = self.job_patch.patch.clone();
        let mut model = StableDiffusion::load_patched(&self.backend, &files, patch.clone())?;
        self.attach_vae_methods(&mut model, Some(&dir));
        let model = Rc::new(model);
        self.load_report = patch.map(|p| p.report()).unwrap_or_default();
        self.model = Some((key, model.clone()));
        self.model_patch.clone_from(&self.job_patch.key);
        Ok((model, true))
    }

    /// Readies what `s` asks for before sampling: reads its LoRA tags and `loras`, then
    /// loads the model with that LoRA set (unless it is loaded already). Returns the model
    /// and whether this call loaded it; the job's warnings so far are in [`Self::warnings`].
    pub fn ready_model(
        &mut self,
        s: &GenerationSettings,
    ) -> Result<(Rc<StableDiffusion<B>>, bool)> {
        self.warnings.clear();
        let ready = self.ready_model_for_job(s);
        self.warnings.extend(self.load_report.iter().cloned());
        ready
    }

    fn ready_model_for_job(
        &mut self,
        s: &GenerationSettings,
    ) -> Result<(Rc<StableDiffusion<B>>, bool)> {
        let prompt = strip_comments(&s.prompt);
        self.job_patch = match &mut self.patches {
            Some(provider) => {
                let kinds = provider.kinds();
                let (_, tags) = extract_extra_networks(&prompt, &|k| kinds.iter().any(|x| x == k));
                provider.prepare(&tags, &s.loras)?
            }
            None => PreparedPatch::none(),
        };
        self.warnings
            .extend(self.job_patch.warnings.iter().cloned());
        if self.models_dir.is_some() {
            return self.load_model_with_patch(&s.model, &s.vae);
        }
        if let Some(sources) = self.model_sources.clone() {
            return self.reload_sources_with_patch(&sources);
        }
        if self.job_patch.patch.is_some() {
            self.warnings.push(
                "LoRA needs the model loaded from a models folder; generating without it".into(),
            );
        }
        self.model
            .as_ref()
            .map(|(_, m)| (m.clone(), false))
            .ok_or_else(|| Error::Invalid("no model is loaded: pick a checkpoint first".into()))
    }

    /// The model of `sources` with `self.job_patch`'s LoRA set: the loaded one when it
    /// carries that set, else loaded again from the sources (freeing the old one first).
    fn reload_sources_with_patch(
        &mut self,
        sources: &CheckpointSources,
    ) -> Result<(Rc<StableDiffusion<B>>, bool)> {
        if let Some((_, m)) = &self.model {
            if self.model_patch == self.job_patch.key {
                return Ok((m.clone(), false));
            }
        }
        self.model = None;
        let patch = self.job_patch.patch.clone();
        let mut model =
            StableDiffusion::load_from_sources_patched(&self.backend, sources, patch.clone())?;
        self.attach_vae_methods(&mut model, None);
        let model = Rc::new(model);
        self.load_report = patch.map(|p| p.report()).unwrap_or_default();
        self.model = Some((None, model.clone()));
        self.model_patch.clone_from(&self.job_patch.key);
        Ok((model, true))
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
            downcast_alphas_cumprod: s.downcast_alphas_cumprod,
            vae_decoder: s.vae_decoder.clone(),
            vae_encoder: s.vae_encoder.clone(),
            vae_tiling: s.vae_tiling,
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
        let generated = self.generate_job(s, inputs, progress, cancel).await;
        // The load's report has been part of this job's warnings; the next job that
        // reuses the model has nothing new to report.
        self.load_report.clear();
        generated
    }

    async fn generate_job(
        &mut self,
        s: &GenerationSettings,
        inputs: &GenerationInputs,
        progress: &mut dyn FnMut(&StepProgress),
        cancel: &CancelToken,
    ) -> Result<Vec<Generated>> {
        let mut params = self.params(s)?;
        let model = self.ready_model(s)?.0;
        let (embeddings, fresh) = self.embeddings_for(model.config.clip.hidden);
        if fresh {
            // A1111 reports each embedding file it could not load (naming it) once, when
            // it reads the folder, and generates on.
            self.warnings.extend(embeddings.warnings());
        }
        let job =
            PreparedJob::prepare(s, inputs, &self.samplers, &self.schedulers, &self.upscalers)?;
        // A VAE method the model does not offer is refused before any sampling.
        if !s.vae_decoder.is_full() {
            model.vae_methods.decoder(s.vae_decoder.label())?;
        }
        if !s.vae_encoder.is_full() && (!inputs.init_images.is_empty() || job.hires_reencodes()) {
            model.vae_methods.encoder(s.vae_encoder.label())?;
        }
        // A1111 strips `#` comments first, then removes every extra-network tag from the
        // (positive) prompt: the providers' kinds are applied, any other kind is skipped.
        let prompt = strip_comments(&s.prompt);
        let prepared = match &mut self.networks {
            Some(provider) => provider.prepare(&self.backend, &prompt, &s.hypernets)?,
            None => PreparedNetworks {
                prompt,
                hook: None,
                infotext: Vec::new(),
            },
        };
        let (clean_prompt, other_tags) = parse_extra_networks(&prepared.prompt);
        let patch_kinds = self.patches.as_ref().map(|p| p.kinds()).unwrap_or_default();
        for kind in kinds_in_order(&other_tags) {
            if !patch_kinds.iter().any(|k| k == kind) {
                let tag = other_tags
                    .iter()
                    .find(|t| t.kind == kind)
                    .map(|t| t.text.as_str());
                self.warnings.push(format!(
                    "skipping unknown extra network `{kind}` (`{}`): the tag was removed from the prompt",
                    tag.unwrap_or_default()
                ));
            }
        }
        params.prompt = clean_prompt;
        let options = PromptOptions {
            emphasis: s.emphasis,
            syntax: if s.nai_braces {
                AttentionSyntax::NovelAi
            } else {
                AttentionSyntax::A1111
            },
            embeddings: Some(embeddings.clone()),
            schedule: ScheduleOptions {
                hires_steps: None,
                use_old_scheduling: s.old_prompt_timelines,
            },
            cond_padding: CondPadding::new(if s.pad_conds_v0 {
                CondPaddingMode::LastVector
            } else if s.pad_conds {
                CondPaddingMode::EmptyChunks
            } else {
                CondPaddingMode::Off
            }),
        };
        let emphasis_field =
            emphasis_infotext(s.emphasis, [s.prompt.as_str(), s.negative_prompt.as_str()]);
        let ti_field = ti_hashes(
            &strip_comments(&params.prompt),
            &strip_comments(&params.negative_prompt),
            params.steps,
            options.chunk_options(),
            &embeddings,
        )?;
        // Both fields come from the text encoder's calls (negative prompt first): the one
        // its first call sets comes first.
        let ti_first = {
            let brackets = |t: &str| t.contains('(') || t.contains('[');
            let ti_in_negative = ti_field.is_some()
                && ti_hashes(
                    "",
                    &strip_comments(&params.negative_prompt),
                    params.steps,
                    options.chunk_options(),
                    &embeddings,
                )?
                .is_some();
            ti_in_negative || !brackets(&s.negative_prompt)
        };
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
                infotext.prompt = format!("{}{}", s.prompt, self.job_patch.prompt_tags);
                for (k, v) in prepared.infotext.iter().chain(&self.job_patch.infotext) {
                    infotext.push(k.clone(), v);
                }
                if let (Some(v), true) = (&ti_field, ti_first) {
                    infotext.push(TI_HASHES_KEY, v);
                }
                if let Some(mode) = emphasis_field {
                    infotext.push("Emphasis", mode);
                }
                if s.old_prompt_timelines {
                    infotext.push("Old prompt editing timelines", "True");
                }
                // A1111 adds it after sampling, when the pass's last model call padded.
                if let (true, Some(key)) = (
                    options.cond_padding.was_applied(),
                    options.cond_padding.infotext_key(),
                ) {
                    infotext.push(key, "True");
                }
                // A1111 records the encoder of the hires pass's re-encode during that pass.
                if !s.vae_encoder.is_full() && job.hires_reencodes() {
                    infotext.push("VAE Encoder", s.vae_encoder.label());
                }
                // A1111 sets it after sampling, so it follows every other field.
                if !s.vae_decoder.is_full() {
                    infotext.push("VAE Decoder", s.vae_decoder.label());
                } else if s.vae_tiling {
                    infotext.push("VAE tiling", "True");
                }
                if let (Some(v), false) = (&ti_field, ti_first) {
                    infotext.push(TI_HASHES_KEY, v);
                }
                infotext.push("Version", crate::VERSION_LABEL);
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

/// Embedding files given as byte sources, and the database last built from them.
struct EmbeddingFiles {
    files: Vec<(String, Arc<dyn ByteSource>)>,
    built: Option<(usize, Arc<EmbeddingDatabase>)>,
}

impl EmbeddingFiles {
    /// The database for text encoder width `width`, built now unless it was for that width
    /// already; and whether it was built by this call.
    fn database(&mut self, width: usize) -> (Arc<EmbeddingDatabase>, bool) {
        if let Some((w, db)) = &self.built {
            if *w == width {
                return (db.clone(), false);
            }
        }
        let db = Arc::new(crate::embeddings::load_embedding_sources(
            &self.files,
            width,
        ));
        self.built = Some((width, db.clone()));
        (db, true)
    }
}
