//! The form's settings as the page sends them (JSON), turned into pipeline parameters with
//! the same sampler/schedule lookup as the CLI.

use easel_core::noise::{RngKind, TorchDevice};
use easel_core::pipeline::Txt2ImgParams;
use easel_core::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use easel_core::sampler_params::SamplerParams;
use easel_core::{Error, Result};
use serde::Deserialize;

/// One generation request from the page. Field names match the form's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    pub sampler: String,
    #[serde(default)]
    pub schedule_type: Option<String>,
    pub steps: usize,
    pub cfg_scale: f32,
    /// Already resolved by the page when the user asked for a random one.
    pub seed: u64,
    pub width: usize,
    pub height: usize,
    #[serde(default = "one")]
    pub batch_size: usize,
    #[serde(default = "one")]
    pub clip_skip: usize,
    /// `gpu`, `cpu` or `nv`, as the CLI's `--rng`.
    #[serde(default = "gpu")]
    pub rng: String,
    /// `auto`, `cuda` or `cpu`, as the CLI's `--noise-device`.
    #[serde(default = "auto")]
    pub noise_device: String,
    #[serde(default)]
    pub ensd: u64,
    /// A1111's sampler and schedule parameters as an object (`{"eta": 0.5, "rho": 5}`,
    /// names as the CLI's flags); absent ones keep the defaults.
    #[serde(default)]
    pub sampler_params: SamplerParams,
    /// Hypernetworks from the form (`<hypernet:NAME:S>` tags in the prompt add more).
    #[serde(default)]
    pub hypernets: Vec<HypernetSetting>,
}

/// A hypernetwork chosen in the form: its file stem and strength.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypernetSetting {
    pub name: String,
    pub strength: f32,
}

fn one() -> usize {
    1
}
fn gpu() -> String {
    "gpu".into()
}
fn auto() -> String {
    "auto".into()
}

/// Every sampler the page offers (the k-diffusion family).
pub fn sampler_registry() -> SamplerRegistry {
    let mut reg = SamplerRegistry::new();
    easel_samplers::register_all(&mut reg);
    reg
}

/// Every schedule the page offers.
pub fn scheduler_registry() -> SchedulerRegistry {
    let mut reg = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut reg);
    reg
}

impl WebSettings {
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("settings: {e}")))
    }

    /// The pipeline parameters for `prompt` (the form's prompt with hypernetwork tags taken
    /// out); unknown sampler or schedule names are errors naming them.
    pub fn to_params(&self, prompt: &str) -> Result<Txt2ImgParams> {
        let samplers = sampler_registry();
        let schedulers = scheduler_registry();
        let choice = SamplerChoice::parse(
            &samplers,
            &schedulers,
            &self.sampler,
            self.schedule_type.as_deref(),
        )?;
        let (sampler, scheduler) = choice.configured(&schedulers, &self.sampler_params)?;
        let rng: RngKind = self.rng.parse()?;
        let params = Txt2ImgParams {
            prompt: prompt.to_string(),
            negative_prompt: self.negative_prompt.clone(),
            steps: self.steps,
            cfg_scale: self.cfg_scale,
            seed: self.seed,
            width: self.width,
            height: self.height,
            batch_size: self.batch_size,
            clip_skip: self.clip_skip,
            rng,
            noise_device: TorchDevice::parse_or_auto(&self.noise_device)?
                .unwrap_or(TorchDevice::implied_by(rng)),
            ensd: self.ensd,
            sampler,
            scheduler,
        };
        params.validate()?;
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(extra: &str) -> String {
        format!(
            r#"{{"prompt":"a cat","sampler":"Euler","steps":3,"cfg_scale":7,"seed":5,
               "width":64,"height":64,"rng":"cpu"{extra}}}"#
        )
    }

    #[test]
    fn form_settings_become_pipeline_parameters() {
        let s = WebSettings::from_json(&json("")).unwrap();
        let p = s.to_params("a cat").unwrap();
        assert_eq!((p.steps, p.seed, p.width, p.height), (3, 5, 64, 64));
        assert_eq!((p.batch_size, p.clip_skip), (1, 1));
        assert_eq!(p.sampler.label(), "Euler");
        assert_eq!(p.scheduler.label(), "Automatic");
    }

    #[test]
    fn sampler_parameters_reach_the_sampler_and_schedule() {
        let extra =
            r#","sampler":"Euler a","schedule_type":"Karras","sampler_params":{"eta":0.5,"rho":5}"#;
        let s = WebSettings::from_json(&json(extra).replace(r#""sampler":"Euler","#, "")).unwrap();
        let p = s.to_params("a cat").unwrap();
        assert_eq!(p.sampler.params_infotext(), vec![("Eta", 0.5)]);
        assert_eq!(p.scheduler.params_infotext(), vec![("Schedule rho", 5.0)]);
        let err = WebSettings::from_json(&json(r#","sampler_params":{"etta":1}"#)).unwrap_err();
        assert!(err.to_string().contains("etta"), "{err}");
    }

    /// The message `to_params` fails with (its `Ok` type has no `Debug`, so no `unwrap_err`).
    fn rejection(s: &WebSettings) -> String {
        match s.to_params("x") {
            Ok(_) => panic!("settings were accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_settings_name_what_is_wrong() {
        let err = WebSettings::from_json(&json(r#","colour":1"#)).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let s = WebSettings::from_json(&json("").replace("Euler", "Nope")).unwrap();
        let err = rejection(&s);
        assert!(err.contains("Nope"), "{err}");
        let s = WebSettings::from_json(&json("").replace("\"width\":64", "\"width\":60")).unwrap();
        let err = rejection(&s);
        assert!(err.contains("width"), "{err}");
    }
}
