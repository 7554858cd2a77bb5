//! One generation session: models, VAEs and hypernetworks are loaded once and reused for
//! every image (a batch count, or every cell of a grid), keyed by the files they came from.

use crate::generate::{sampler_registry, scheduler_registry};
use easel_core::infotext::Infotext;
use easel_core::model::{checkpoint_files, resolve_checkpoint, StableDiffusion, VaeChoice};
use easel_core::nn::AttentionHook;
use easel_core::noise::{RngKind, TorchDevice};
use easel_core::pipeline::{
    txt2img_infotext, txt2img_with_options, GeneratedImage, PromptOptions, Txt2ImgParams,
};
use easel_core::registry::SamplerChoice;
use easel_core::sampler::block_on;
use easel_core::sampler_params::SamplerParams;
use easel_core::text::{emphasis_infotext, AttentionSyntax, EmphasisMode};
use easel_core::{Backend, Result};
use easel_hypernetwork::{
    extract_hypernet_tags, infotext_fields, list_hypernetworks, HypernetRequest, Hypernetwork,
    HypernetworkStack, LoadedHypernetwork,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// Everything that decides one batch of images (what `easel generate` flags describe).
#[derive(Clone, Debug)]
pub struct Settings {
    /// As written, `<hypernet:...>` tags included (they stay in the infotext).
    pub prompt: String,
    pub negative: String,
    pub steps: usize,
    pub sampler: String,
    pub schedule_type: Option<String>,
    pub cfg: f32,
    pub seed: u64,
    pub width: usize,
    pub height: usize,
    pub clip_skip: usize,
    pub rng: RngKind,
    /// The torch device of the A1111 run to reproduce (SDE samplers' Brownian noise);
    /// `None` = the one `rng` implies.
    pub noise_device: Option<TorchDevice>,
    pub ensd: u64,
    /// Eta, Eta DDIM and the churn set; unset ones keep the sampler's defaults.
    pub sampler_params: SamplerParams,
    pub batch_size: usize,
    pub models: PathBuf,
    /// Checkpoint name, path, hash or A1111 title.
    pub model: String,
    /// `--vae` value.
    pub vae: String,
    /// `--hypernet NAME[:STRENGTH]` values.
    pub hypernets: Vec<String>,
    /// A1111's emphasis mode (Original, No norm, Ignore, None).
    pub emphasis: EmphasisMode,
    /// Read `{a}`/`[a]` as NovelAI's ×1.05 / ÷1.05 instead of A1111's brackets.
    pub nai_braces: bool,
}

/// A loaded model is identified by its checkpoint and VAE files.
type ModelKey = (PathBuf, Option<PathBuf>);

/// Models, VAEs and hypernetworks loaded onto backend `B`, reused across images.
pub struct Session<B: Backend> {
    backend: B,
    /// The checkpoint (and VAE) in memory: one at a time, since a grid over 4 GB models
    /// visits each checkpoint once.
    model: Option<(ModelKey, Rc<StableDiffusion<B>>)>,
    hypernets: HashMap<PathBuf, (Hypernetwork, Arc<LoadedHypernetwork<B>>)>,
}

impl<B: Backend> Session<B> {
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            model: None,
            hypernets: HashMap::new(),
        }
    }

    fn model(&mut self, s: &Settings) -> Result<Rc<StableDiffusion<B>>> {
        let checkpoint = resolve_checkpoint(&s.models, &s.model)?;
        let files = checkpoint_files(&s.models, &checkpoint, &VaeChoice::parse(&s.vae))?;
        let key = (files.checkpoint.clone(), files.vae.clone());
        if let Some((loaded, m)) = &self.model {
            if *loaded == key {
                return Ok(m.clone());
            }
        }
        // Free the previous checkpoint before loading the next.
        self.model = None;
        let t0 = std::time::Instant::now();
        let model = Rc::new(StableDiffusion::load(&self.backend, &files)?);
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
        self.model = Some((key, model.clone()));
        Ok(model)
    }

    /// Generate one batch; each image comes with the infotext A1111 would write for it.
    pub fn generate(
        &mut self,
        s: &Settings,
        progress: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Vec<(GeneratedImage, Infotext)>> {
        let schedulers = scheduler_registry();
        let choice = SamplerChoice::parse(
            &sampler_registry(),
            &schedulers,
            &s.sampler,
            s.schedule_type.as_deref(),
        )?;
        let (sampler, scheduler) = choice.configured(&schedulers, &s.sampler_params)?;
        // Hypernetwork tags are taken out of the text the encoder sees.
        let (clean_prompt, tag_requests) = extract_hypernet_tags(&s.prompt)?;
        let mut requests = s
            .hypernets
            .iter()
            .map(|h| HypernetRequest::parse_cli(h))
            .collect::<Result<Vec<_>>>()?;
        requests.extend(tag_requests);
        let params = Txt2ImgParams {
            prompt: clean_prompt,
            negative_prompt: s.negative.clone(),
            steps: s.steps,
            cfg_scale: s.cfg,
            seed: s.seed,
            width: s.width,
            height: s.height,
            batch_size: s.batch_size,
            clip_skip: s.clip_skip,
            rng: s.rng,
            noise_device: s.noise_device.unwrap_or(TorchDevice::implied_by(s.rng)),
            ensd: s.ensd,
            sampler,
            scheduler,
        };
        params.validate()?;
        let model = self.model(s)?;

        let entries = if requests.is_empty() {
            Vec::new()
        } else {
            list_hypernetworks(&s.models)
        };
        let mut applied = Vec::new();
        for r in &requests {
            let entry = r.resolve(&entries)?;
            if !self.hypernets.contains_key(&entry.path) {
                let hn = entry.load()?;
                let device = Arc::new(LoadedHypernetwork::upload(&self.backend, &hn)?);
                self.hypernets.insert(entry.path.clone(), (hn, device));
            }
            applied.push((entry.path.clone(), r.strength));
        }
        let stack = HypernetworkStack::new(
            applied
                .iter()
                .map(|(p, st)| (self.hypernets[p].1.clone(), *st))
                .collect(),
        );
        let hn_fields = infotext_fields(
            &applied
                .iter()
                .map(|(p, st)| (&self.hypernets[p].0, *st))
                .collect::<Vec<_>>(),
        )?;
        let hooks: Vec<&dyn AttentionHook<B>> = if applied.is_empty() {
            Vec::new()
        } else {
            vec![&stack]
        };

        let options = PromptOptions {
            emphasis: s.emphasis,
            syntax: if s.nai_braces {
                AttentionSyntax::NovelAi
            } else {
                AttentionSyntax::A1111
            },
        };
        let emphasis_field =
            emphasis_infotext(s.emphasis, [s.prompt.as_str(), s.negative.as_str()]);
        let images = block_on(txt2img_with_options(
            &self.backend,
            &model,
            &params,
            &options,
            hooks,
            progress,
        ))?;
        Ok(images
            .into_iter()
            .map(|img| {
                let mut info = txt2img_infotext(&params, &model.info, img.seed);
                info.prompt.clone_from(&s.prompt);
                for (k, v) in &hn_fields {
                    info.push(k.clone(), v);
                }
                if let Some(mode) = emphasis_field {
                    info.push("Emphasis", mode);
                }
                (img, info)
            })
            .collect())
    }
}
