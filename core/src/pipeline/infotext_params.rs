//! The infotext A1111 would write for a txt2img image: same keys, same order, same
//! omissions, so the PNG reads back in A1111 and other tools.

use super::txt2img::Txt2ImgParams;
use crate::infotext::Infotext;
use crate::model::ModelInfo;
use crate::sampler_params::format_param;

/// Infotext for the image generated from `params` with seed `seed`.
pub fn txt2img_infotext(params: &Txt2ImgParams, model: &ModelInfo, seed: u64) -> Infotext {
    let mut t = Infotext::new(params.prompt.clone(), params.negative_prompt.clone());
    t.push("Steps", params.steps);
    t.push("Sampler", params.sampler.label());
    // Current A1111 writes the schedule actually used (`Automatic` when the sampler has none).
    t.push("Schedule type", params.scheduler.label());
    t.push("CFG scale", format_param(params.cfg_scale));
    t.push("Seed", seed);
    t.push("Size", format!("{}x{}", params.width, params.height));
    t.push("Model hash", &model.hash);
    t.push("Model", &model.name);
    if let Some(hash) = &model.vae_hash {
        t.push("VAE hash", hash);
    }
    if let Some(vae) = &model.vae_name {
        t.push("VAE", vae);
    }
    if params.clip_skip > 1 {
        t.push("Clip skip", params.clip_skip);
    }
    if params.ensd != 0 && params.sampler.uses_ensd() {
        t.push("ENSD", params.ensd);
    }
    if let Some(rng) = params.rng.infotext_value() {
        t.push("RNG", rng);
    }
    let scheduler_fields = params.scheduler.params_infotext();
    for (key, value) in scheduler_fields
        .into_iter()
        .chain(params.sampler.params_infotext())
    {
        t.push(key, format_param(value));
    }
    t
}
