//! Plugins register here by name so front ends can list and pick them without knowing
//! which crate provides them.

use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::scheduler::{Scheduler, AUTOMATIC};
use std::sync::Arc;

/// Samplers by registry name, A1111 label and aliases.
#[derive(Default, Clone)]
pub struct SamplerRegistry {
    entries: Vec<(Arc<dyn Sampler>, Vec<String>)>,
}

/// Case- and punctuation-insensitive form of a sampler name: `Euler a`, `euler_a`,
/// `k_euler_a` and `EULER-A` all become `euler_a`.
fn normalize(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let lower = lower.strip_prefix("k_").unwrap_or(&lower).to_string();
    lower
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

impl SamplerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a sampler; it is found by its name, its label and every alias.
    pub fn register(&mut self, sampler: Arc<dyn Sampler>, aliases: &[&str]) {
        let mut keys = vec![normalize(sampler.name()), normalize(sampler.label())];
        keys.extend(aliases.iter().map(|a| normalize(a)));
        self.entries.retain(|(s, _)| s.name() != sampler.name());
        self.entries.push((sampler, keys));
    }

    pub fn get(&self, name: &str) -> Result<Arc<dyn Sampler>> {
        self.find(&normalize(name)).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown sampler `{name}`; available: {}",
                self.labels().join(", ")
            ))
        })
    }

    fn find(&self, key: &str) -> Option<Arc<dyn Sampler>> {
        self.entries
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == key))
            .map(|(s, _)| s.clone())
    }

    /// Labels of all registered samplers, in registration order.
    pub fn labels(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(s, _)| s.label().to_string())
            .collect()
    }

    pub fn samplers(&self) -> impl Iterator<Item = &Arc<dyn Sampler>> {
        self.entries.iter().map(|(s, _)| s)
    }
}

/// Schedulers ("Schedule type") by registry name, A1111 label and aliases.
#[derive(Default, Clone)]
pub struct SchedulerRegistry {
    entries: Vec<(Arc<dyn Scheduler>, Vec<String>)>,
}

impl SchedulerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a scheduler; it is found by its name, its label and every alias.
    pub fn register(&mut self, scheduler: Arc<dyn Scheduler>, aliases: &[&str]) {
        let mut keys = vec![normalize(scheduler.name()), normalize(scheduler.label())];
        keys.extend(aliases.iter().map(|a| normalize(a)));
        self.entries.retain(|(s, _)| s.name() != scheduler.name());
        self.entries.push((scheduler, keys));
    }

    pub fn get(&self, name: &str) -> Result<Arc<dyn Scheduler>> {
        self.find(&normalize(name)).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown schedule type `{name}`; available: {}",
                self.labels().join(", ")
            ))
        })
    }

    fn find(&self, key: &str) -> Option<Arc<dyn Scheduler>> {
        self.entries
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == key))
            .map(|(s, _)| s.clone())
    }

    /// Labels of all registered schedulers, in registration order.
    pub fn labels(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(s, _)| s.label().to_string())
            .collect()
    }

    pub fn schedulers(&self) -> impl Iterator<Item = &Arc<dyn Scheduler>> {
        self.entries.iter().map(|(s, _)| s)
    }

    /// The scheduler that actually spaces σ for `sampler` when `selected` is chosen:
    /// `selected` itself, or for `Automatic` the sampler's own default.
    pub fn effective(
        &self,
        sampler: &dyn Sampler,
        selected: &Arc<dyn Scheduler>,
    ) -> Result<Arc<dyn Scheduler>> {
        if selected.name() != AUTOMATIC {
            return Ok(selected.clone());
        }
        self.get(sampler.default_scheduler())
    }
}

/// A sampler with the schedule chosen for it, parsed from A1111's names.
#[derive(Clone)]
pub struct SamplerChoice {
    pub sampler: Arc<dyn Sampler>,
    /// As selected; may be `Automatic` (see [`SchedulerRegistry::effective`]).
    pub scheduler: Arc<dyn Scheduler>,
}

impl SamplerChoice {
    /// Parse a sampler name and an optional `Schedule type`, as A1111 reads both old
    /// infotexts (`Sampler: DPM++ 2M Karras`) and new ones (`Sampler: DPM++ 2M,
    /// Schedule type: Karras`). A schedule named at the end of the sampler name wins over
    /// `schedule_type`; no schedule at all means `Automatic`. Aliases such as
    /// `k_dpmpp_2m_ka` or `dpmpp_2m_karras` work the same way.
    pub fn parse(
        samplers: &SamplerRegistry,
        schedulers: &SchedulerRegistry,
        sampler: &str,
        schedule_type: Option<&str>,
    ) -> Result<SamplerChoice> {
        let selected = match schedule_type.map(str::trim).filter(|s| !s.is_empty()) {
            Some(name) => schedulers.get(name)?,
            None => schedulers.get(AUTOMATIC)?,
        };
        let key = normalize(sampler);
        if let Some(found) = samplers.find(&key) {
            return Ok(SamplerChoice {
                sampler: found,
                scheduler: selected,
            });
        }
        for (scheduler, keys) in &schedulers.entries {
            for suffix in keys {
                let Some(prefix) = key.strip_suffix(suffix.as_str()) else {
                    continue;
                };
                let Some(prefix) = prefix.strip_suffix('_') else {
                    continue;
                };
                if let Some(found) = samplers.find(prefix) {
                    return Ok(SamplerChoice {
                        sampler: found,
                        scheduler: scheduler.clone(),
                    });
                }
            }
        }
        Err(Error::Invalid(format!(
            "unknown sampler `{sampler}`; available: {} (a schedule may follow, e.g. `DPM++ 2M Karras`; schedules: {})",
            samplers.labels().join(", "),
            schedulers.labels().join(", ")
        )))
    }

    /// The infotext `Sampler:` value (A1111's label, without the schedule).
    pub fn infotext_sampler(&self) -> &str {
        self.sampler.label()
    }

    /// The infotext `Schedule type:` value, as current A1111 writes it: the label of the
    /// schedule actually used (`Automatic` when the sampler has no default of its own).
    pub fn infotext_schedule_type(&self, schedulers: &SchedulerRegistry) -> Result<String> {
        let effective = schedulers.effective(self.sampler.as_ref(), &self.scheduler)?;
        Ok(effective.label().to_string())
    }
}
