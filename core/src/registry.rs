//! Plugins register here by name so front ends can list and pick them without knowing
//! which crate provides them.

use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::sampler_params::SamplerParams;
use crate::scheduler::{Scheduler, AUTOMATIC};
use std::sync::Arc;

/// What a registry needs of its plugins: a registry name and an A1111 label.
pub trait Named {
    fn name(&self) -> &str;
    fn label(&self) -> &str;
    /// Plural noun for messages ("sampler", "schedule type").
    const KIND: &'static str;
}

impl Named for dyn Sampler {
    fn name(&self) -> &str {
        Sampler::name(self)
    }
    fn label(&self) -> &str {
        Sampler::label(self)
    }
    const KIND: &'static str = "sampler";
}

impl Named for dyn Scheduler {
    fn name(&self) -> &str {
        Scheduler::name(self)
    }
    fn label(&self) -> &str {
        Scheduler::label(self)
    }
    const KIND: &'static str = "schedule type";
}

/// Plugins of one kind by registry name, A1111 label and aliases, in registration order.
pub struct Registry<T: ?Sized + Named> {
    entries: Vec<(Arc<T>, Vec<String>)>,
}

/// Samplers by registry name, A1111 label and aliases.
pub type SamplerRegistry = Registry<dyn Sampler>;
/// Schedulers ("Schedule type") by registry name, A1111 label and aliases.
pub type SchedulerRegistry = Registry<dyn Scheduler>;

impl<T: ?Sized + Named> Default for Registry<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: ?Sized + Named> Clone for Registry<T> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
        }
    }
}

/// Case- and punctuation-insensitive form of a name: `Euler a`, `euler_a`, `k_euler_a`
/// and `EULER-A` all become `euler_a`.
fn normalize(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let lower = lower.strip_prefix("k_").unwrap_or(&lower).to_string();
    lower
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

impl<T: ?Sized + Named> Registry<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a plugin; it is found by its name, its label and every alias. A plugin
    /// with the same name replaces the earlier one.
    pub fn register(&mut self, item: Arc<T>, aliases: &[&str]) {
        let mut keys = vec![normalize(item.name()), normalize(item.label())];
        keys.extend(aliases.iter().map(|a| normalize(a)));
        self.entries.retain(|(s, _)| s.name() != item.name());
        self.entries.push((item, keys));
    }

    pub fn get(&self, name: &str) -> Result<Arc<T>> {
        self.find(&normalize(name)).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown {} `{name}`; available: {}",
                T::KIND,
                self.labels().join(", ")
            ))
        })
    }

    fn find(&self, key: &str) -> Option<Arc<T>> {
        self.entries
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == key))
            .map(|(s, _)| s.clone())
    }

    /// Labels of everything registered, in registration order.
    pub fn labels(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(s, _)| s.label().to_string())
            .collect()
    }

    pub fn items(&self) -> impl Iterator<Item = &Arc<T>> {
        self.entries.iter().map(|(s, _)| s)
    }
}

impl SamplerRegistry {
    pub fn samplers(&self) -> impl Iterator<Item = &Arc<dyn Sampler>> {
        self.items()
    }
}

impl SchedulerRegistry {
    pub fn schedulers(&self) -> impl Iterator<Item = &Arc<dyn Scheduler>> {
        self.items()
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
    /// The sampler and the schedule that actually run: `Automatic` resolved to the
    /// sampler's default (see [`SchedulerRegistry::effective`]), then the user's tunable
    /// parameters applied to both (each takes only those A1111 gives it).
    pub fn configured(
        &self,
        schedulers: &SchedulerRegistry,
        params: &SamplerParams,
    ) -> Result<(Arc<dyn Sampler>, Arc<dyn Scheduler>)> {
        params.validate()?;
        let scheduler = schedulers.effective(self.sampler.as_ref(), &self.scheduler)?;
        let scheduler = scheduler.with_params(params).unwrap_or(scheduler);
        let sampler = self
            .sampler
            .with_params(params)
            .unwrap_or_else(|| self.sampler.clone());
        Ok((sampler, scheduler))
    }

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
