//! Several LoRA files with their multipliers as one [`WeightPatch`].
//!
//! As A1111's `network_apply_weights`: for each layer, the networks are applied in the
//! order they were asked for, each to the weight as the previous ones left it (this only
//! matters for (IA)³, whose change is proportional to the weight), and an extra bias is added
//! to the layer's bias. The text encoder's layers use each network's `te` multiplier, the
//! UNet's its `unet` multiplier. Failures inside one layer (a shape that does not fit) skip
//! that layer for that network and are reported, as A1111 counts them as errors.

use crate::file::LoraFile;
use crate::key_map::{module_of_ldm_key, Part, Target};
use easel_core::nn::WeightPatch;
use easel_core::Result;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// One file in a set, with A1111's per-network settings.
#[derive(Clone, Debug)]
pub struct AppliedLora {
    /// The name it was asked for by (A1111's `mentioned_name`).
    pub name: String,
    pub file: Arc<LoraFile>,
    pub te_multiplier: f32,
    pub unet_multiplier: f32,
    /// `dyn`: a plain LoRA's rank cut to this many components.
    pub dyn_dim: Option<i64>,
}

#[derive(Default)]
struct LoadLog {
    /// (network index, module name) of every module applied in the current load.
    hits: BTreeSet<(usize, String)>,
    problems: Vec<String>,
}

pub struct LoraPatch {
    nets: Vec<AppliedLora>,
    log: Mutex<LoadLog>,
}

impl LoraPatch {
    pub fn new(nets: Vec<AppliedLora>) -> Self {
        Self {
            nets,
            log: Mutex::new(LoadLog::default()),
        }
    }

    pub fn networks(&self) -> &[AppliedLora] {
        &self.nets
    }
}

fn list_some(keys: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = keys
        .iter()
        .take(SHOWN)
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    s
}

impl WeightPatch for LoraPatch {
    fn patch(&self, key: &str, shape: &[usize], data: &mut [f32]) -> Result<()> {
        let Some((module, target, part)) = module_of_ldm_key(key) else {
            return Ok(());
        };
        for (i, net) in self.nets.iter().enumerate() {
            let Some(m) = net.file.modules.get(&module) else {
                continue;
            };
            let multiplier = match target {
                Target::TextEncoder => net.te_multiplier,
                Target::Unet => net.unet_multiplier,
            };
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.hits.insert((i, module.clone()));
            // The bias's own change needs no weight; the weight of the same layer is not
            // at hand here, and only the extra bias (norm, diff_b) depends on nothing else.
            let result = match part {
                Part::Weight => m
                    .delta(data, shape, multiplier, net.dyn_dim)
                    .map(|(d, _)| d),
                Part::Bias => match m.extra_bias(multiplier) {
                    Some(b) => Ok(b),
                    None => continue,
                },
            };
            match result {
                Ok(delta) if delta.len() == data.len() => {
                    for (w, d) in data.iter_mut().zip(&delta) {
                        *w += d;
                    }
                }
                Ok(delta) => log.problems.push(format!(
                    "{}: layer `{}`: a bias change of {} elements for a bias of {}; skipped",
                    net.file.path.display(),
                    net.file.network_keys[&module],
                    delta.len(),
                    data.len()
                )),
                Err(e) => log.problems.push(format!(
                    "{}: layer `{}` skipped: {e}",
                    net.file.path.display(),
                    net.file.network_keys[&module]
                )),
            }
        }
        Ok(())
    }

    fn report(&self) -> Vec<String> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::mem::take(&mut log.problems);
        for (i, net) in self.nets.iter().enumerate() {
            let mut missing: Vec<String> = net
                .file
                .modules
                .keys()
                .filter(|m| !log.hits.contains(&(i, (*m).clone())))
                .map(|m| net.file.network_keys[m].clone())
                .collect();
            missing.extend(net.file.unmatched.iter().cloned());
            if !missing.is_empty() {
                out.push(format!(
                    "{}: {} key(s) match no layer of this model and were ignored: {}",
                    net.file.path.display(),
                    missing.len(),
                    list_some(&missing)
                ));
            }
        }
        log.hits.clear();
        out
    }
}
