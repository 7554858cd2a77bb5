//! The samplers and schedules the page offers. The page's form is sent as the generation
//! service's own settings JSON ([`easel_core::service::GenerationSettings`]), so the page
//! honours every setting the CLI does.

use easel_core::registry::{SamplerRegistry, SchedulerRegistry};

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

#[cfg(test)]
mod tests {
    use easel_core::noise::{RngKind, TorchDevice};
    use easel_core::service::GenerationSettings;
    use easel_core::text::EmphasisMode;

    /// The JSON main.js sends (`settings()` there) is the service's settings type.
    #[test]
    fn the_form_json_is_the_service_settings() {
        let s = GenerationSettings::from_json(
            r#"{"prompt":"a cat","negative_prompt":"","sampler":"Euler a","schedule_type":"Karras",
               "steps":3,"cfg_scale":7,"seed":5,"width":64,"height":64,"batch_size":1,"clip_skip":2,
               "rng":"cpu","noise_device":"auto","ensd":31337,"emphasis":"No norm","nai_braces":true,
               "sampler_params":{"eta":0.5,"rho":5},"hypernets":[{"name":"anime","strength":0.5}]}"#,
        )
        .unwrap();
        assert_eq!((s.steps, s.seed, s.clip_skip, s.ensd), (3, 5, 2, 31337));
        assert_eq!((s.rng, s.noise_device), (RngKind::Cpu, None));
        assert_eq!(s.effective_noise_device(), TorchDevice::Cpu);
        assert_eq!(s.emphasis, EmphasisMode::NoNorm);
        assert!(s.nai_braces);
        assert_eq!(s.sampler_params.schedule_rho, Some(5.0));
        assert_eq!(s.hypernets[0].strength, 0.5);
        let err = GenerationSettings::from_json(r#"{"colour":1}"#).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
