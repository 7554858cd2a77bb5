//! `StableDiffusion<B>`: one checkpoint loaded onto a backend — CLIP text encoder, UNet,
//! VAE, the schedule and the config — following A1111's rules for sidecar yaml, VAE
//! override and EMA weights.

use super::files::CheckpointFiles;
use super::hashes::short_hash_cached;
use super::ldm_yaml::LdmYaml;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::{open_tensor_store, TensorStore};
use crate::nn::config::{check_schedule, ConfigFault};
use crate::nn::{infer_clip_config, infer_unet_config, infer_vae_config};
use crate::nn::{AutoencoderKl, ClipTextEncoder, ModelConfig, SharedWeightPatch, UNet, Weights};
use crate::schedule::DiscreteSchedule;
use std::sync::Arc;

const UNET_PREFIX: &str = "model.diffusion_model";
const VAE_PREFIX: &str = "first_stage_model";
const CLIP_PREFIX: &str = "cond_stage_model.transformer.text_model";
/// SD1.x latent scale, used when no yaml says otherwise.
pub const SD1_SCALE_FACTOR: f32 = 0.18215;

/// Names and hashes that go into the infotext.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub files: CheckpointFiles,
    /// Checkpoint stem, A1111's `Model:` field.
    pub name: String,
    /// A1111 v1.x's short hash (first 10 hex of the file's sha256), its `Model hash:` field.
    pub hash: String,
    /// VAE override file name, A1111's `VAE:` field, if one is used.
    pub vae_name: Option<String>,
    /// The VAE override's short hash, A1111's `VAE hash:` field.
    pub vae_hash: Option<String>,
}

pub struct StableDiffusion<B: Backend> {
    pub clip: ClipTextEncoder<B>,
    pub unet: UNet<B>,
    pub vae: AutoencoderKl<B>,
    pub config: ModelConfig,
    pub schedule: DiscreteSchedule,
    /// [`DiscreteSchedule::downcast_f16`] of `schedule`, for jobs with A1111's "Downcast
    /// alphas_cumprod" option.
    pub schedule_f16: DiscreteSchedule,
    pub info: ModelInfo,
    /// The VAE methods besides the checkpoint's own (TAESD, plugins'), for jobs that name
    /// one; the generation service attaches them from its VAE providers.
    pub vae_methods: crate::vae_plugin::VaeMethods<B>,
}

/// The UNet key map for EMA weights: `model.diffusion_model.a.b` is stored as
/// `model_ema.diffusion_modelab` (some Dreambooth files drop `diffusion_model`).
fn ema_key_map(store: &TensorStore) -> Result<crate::nn::loader::KeyMap> {
    let with_dm = store
        .keys()
        .any(|k| k.starts_with("model_ema.diffusion_model"));
    let any_ema = store.keys().any(|k| {
        k.starts_with("model_ema.") && k != "model_ema.decay" && k != "model_ema.num_updates"
    });
    if !any_ema {
        return Err(Error::format(
            store.name(),
            "config says use_ema: True but the checkpoint has no `model_ema.*` weights",
        ));
    }
    Ok(Arc::new(move |key: &str| {
        let rest = key.strip_prefix("model.").unwrap_or(key);
        let rest = if with_dm {
            rest.to_string()
        } else {
            rest.strip_prefix("diffusion_model.")
                .unwrap_or(rest)
                .to_string()
        };
        format!("model_ema.{}", rest.replace('.', ""))
    }))
}

/// CLIP keys: current layout has `...transformer.text_model.`, older files lack `text_model.`.
fn clip_weights(store: &TensorStore) -> Weights<'_> {
    let modern = store.contains(&format!("{CLIP_PREFIX}.embeddings.token_embedding.weight"));
    let w = Weights::new(store, CLIP_PREFIX);
    if modern {
        w
    } else {
        w.with_key_map(Arc::new(|k: &str| {
            k.replacen("transformer.text_model.", "transformer.", 1)
        }))
    }
}

impl<B: Backend> StableDiffusion<B> {
    pub fn load(b: &B, files: &CheckpointFiles) -> Result<Self> {
        Self::load_patched(b, files, None)
    }

    /// [`StableDiffusion::load`] with `patch` applied to the text encoder's and UNet's
    /// weights as they load (LoRA; see [`crate::nn::weight_patch`]).
    pub fn load_patched(
        b: &B,
        files: &CheckpointFiles,
        patch: Option<SharedWeightPatch>,
    ) -> Result<Self> {
        let store = open_tensor_store(&files.checkpoint)?;
        let yaml = match &files.config {
            Some(p) => Some(LdmYaml::read(p)?),
            None => None,
        };
        let vae_store = match &files.vae {
            Some(p) => Some(open_tensor_store(p)?),
            None => None,
        };
        let info = ModelInfo {
            name: super::files::stem(&files.checkpoint),
            hash: short_hash_cached(&files.checkpoint)?,
            vae_hash: files.vae.as_deref().map(short_hash_cached).transpose()?,
            vae_name: files.vae.as_ref().map(|p| {
                p.file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default()
            }),
            files: files.clone(),
        };
        Self::assemble(
            b,
            &store,
            yaml.unwrap_or_default(),
            vae_store.as_ref(),
            info,
            patch,
        )
    }

    /// Builds the networks from opened stores; shared by [`StableDiffusion::load`] (files
    /// on disk) and the byte-source loader the browser uses.
    pub(crate) fn assemble(
        b: &B,
        store: &TensorStore,
        yaml: LdmYaml,
        vae_store: Option<&TensorStore>,
        info: ModelInfo,
        patch: Option<SharedWeightPatch>,
    ) -> Result<Self> {
        let use_ema = yaml.use_ema.unwrap_or(false);

        let mut unet_w = Weights::new(store, UNET_PREFIX);
        if use_ema {
            unet_w = unet_w.with_key_map(ema_key_map(store)?);
        }
        let unet_w = unet_w.with_patch(patch.clone());
        let clip_w = clip_weights(store).with_patch(patch);

        let vae_w = match vae_store {
            // A `.vae.pt` holds the first-stage weights without the prefix.
            Some(vs) => Weights::new(
                vs,
                if vs.keys().any(|k| k.starts_with("first_stage_model.")) {
                    VAE_PREFIX
                } else {
                    ""
                },
            ),
            None => Weights::new(store, VAE_PREFIX),
        };

        let config = ModelConfig {
            unet: match yaml.unet.clone() {
                Some(c) => c,
                None => infer_unet_config(&unet_w)?,
            },
            vae: match yaml.vae.clone() {
                Some(c) => c,
                None => infer_vae_config(&vae_w)?,
            },
            clip: infer_clip_config(&clip_w)?,
            scale_factor: yaml.scale_factor.unwrap_or(SD1_SCALE_FACTOR),
            use_ema,
            linear_start: yaml.linear_start.unwrap_or(0.00085),
            linear_end: yaml.linear_end.unwrap_or(0.012),
            timesteps: yaml.timesteps.unwrap_or(1000),
        };
        // Validate the whole config before anything is built or allocated; a fault names
        // the yaml when the yaml set the value, else the checkpoint the value came from.
        let yaml_file = info.files.config.as_ref().map(|p| p.display().to_string());
        let from_yaml = |set: bool, section: &str, (key, why): ConfigFault| match &yaml_file {
            Some(y) if set => Error::format(y, format!("`model.params.{section}{key}`: {why}")),
            _ => Error::format(
                store.name(),
                format!("network config inferred from the tensor shapes: `{key}` {why}"),
            ),
        };
        config
            .unet
            .check()
            .map_err(|f| from_yaml(yaml.unet.is_some(), "unet_config.params.", f))?;
        config.vae.check().map_err(|f| {
            let vae_file = vae_store.map(|v| v.name()).unwrap_or(store.name());
            match (&yaml_file, yaml.vae.is_some()) {
                (Some(_), true) => from_yaml(true, "first_stage_config.params.", f),
                _ => Error::format(
                    vae_file,
                    format!(
                        "VAE config inferred from the tensor shapes: `{}` {}",
                        f.0, f.1
                    ),
                ),
            }
        })?;
        config.clip.check().map_err(|f| from_yaml(false, "", f))?;
        check_schedule(
            config.timesteps,
            config.linear_start,
            config.linear_end,
            config.scale_factor,
        )
        .map_err(|f| from_yaml(true, "", f))?;

        // The checkpoint's own ᾱ buffer wins (A1111 samples with the loaded buffer).
        let schedule = match store.get("alphas_cumprod") {
            Some(info) if info.numel() == config.timesteps && config.timesteps > 1 => {
                let alphas = store.read_f32("alphas_cumprod")?;
                if let Some(bad) = alphas
                    .iter()
                    .find(|a| !(a.is_finite() && **a > 0.0 && **a <= 1.0))
                {
                    return Err(Error::format(
                        store.name(),
                        format!("`alphas_cumprod` holds {bad}, not a value in (0, 1]"),
                    ));
                }
                DiscreteSchedule::from_alphas_cumprod(&alphas)
            }
            _ => DiscreteSchedule::scaled_linear(
                config.linear_start,
                config.linear_end,
                config.timesteps,
            ),
        };

        let clip = ClipTextEncoder::load(b, &clip_w, &config.clip)?;
        let unet = UNet::load(b, &unet_w, &config.unet)?;
        let vae = AutoencoderKl::load(b, &vae_w, &config.vae)?;

        Ok(Self {
            clip,
            unet,
            vae,
            config,
            schedule_f16: schedule.downcast_f16(),
            schedule,
            info,
            vae_methods: Default::default(),
        })
    }
}
