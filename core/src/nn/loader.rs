//! `Weights`: prefix-scoped, shape-checked access to a `TensorStore`, in the style of
//! candle's `VarBuilder`, so each network block loads its own tensors by short name and a
//! missing or mis-shaped tensor is reported with its full key and file.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::tensor_store::TensorStore;
use crate::nn::weight_patch::SharedWeightPatch;
use std::sync::Arc;

/// Maps a full (logical) key to the key actually stored in the file, e.g. for EMA weights
/// or the older CLIP layout without `text_model.`.
pub type KeyMap = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(Clone)]
pub struct Weights<'a> {
    store: &'a TensorStore,
    prefix: String,
    map: Option<KeyMap>,
    /// Applied to every tensor read, by its logical key (LoRA; see `weight_patch`).
    patch: Option<SharedWeightPatch>,
}

impl<'a> Weights<'a> {
    pub fn new(store: &'a TensorStore, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_string(),
            map: None,
            patch: None,
        }
    }
    pub fn with_key_map(mut self, map: KeyMap) -> Self {
        self.map = Some(map);
        self
    }
    /// Every tensor read through this view (and views below it) goes through `patch`.
    pub fn with_patch(mut self, patch: Option<SharedWeightPatch>) -> Self {
        self.patch = patch;
        self
    }
    /// A view one level down: `w.pp("input_blocks.1.0")`.
    pub fn pp(&self, sub: impl std::fmt::Display) -> Self {
        let sub = sub.to_string();
        let prefix = if self.prefix.is_empty() {
            sub
        } else if self.prefix.ends_with('.') {
            format!("{}{sub}", self.prefix)
        } else {
            format!("{}.{sub}", self.prefix)
        };
        Self {
            store: self.store,
            prefix,
            map: self.map.clone(),
            patch: self.patch.clone(),
        }
    }
    pub fn file(&self) -> &str {
        self.store.name()
    }
    /// The logical full key of `name` under this prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else if self.prefix.ends_with('.') {
            format!("{}{name}", self.prefix)
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
    fn stored_key(&self, name: &str) -> String {
        let k = self.key(name);
        match &self.map {
            Some(m) => m(&k),
            None => k,
        }
    }
    pub fn contains(&self, name: &str) -> bool {
        self.store.contains(&self.stored_key(name))
    }
    /// Stored shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.store
            .get(&self.stored_key(name))
            .map(|i| i.shape.clone())
    }
    /// Stored shape of `name`, or a missing-key error.
    pub fn require_shape(&self, name: &str) -> Result<Vec<usize>> {
        self.shape(name).ok_or_else(|| Error::MissingKey {
            file: self.file().to_string(),
            key: self.stored_key(name),
        })
    }
    /// f32 data of `name`, which must have exactly `shape`; a stored shape that only
    /// differs by trailing 1-sized dims (1×1 conv stored for a linear, or the reverse) is
    /// accepted.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let key = self.stored_key(name);
        let info = self.store.info(&key)?;
        let trim = |s: &[usize]| {
            let mut v = s.to_vec();
            while v.len() > 1 && v.last() == Some(&1) {
                v.pop();
            }
            v
        };
        if info.shape != shape && trim(&info.shape) != trim(shape) {
            return Err(Error::Shape {
                file: self.file().to_string(),
                key,
                got: info.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        let mut data = self.store.read_f32(&key)?;
        // A NaN or infinite weight poisons every output downstream, where the error would
        // name neither file nor tensor; refuse it here, where both are known.
        if let Some(i) = first_non_finite(&data) {
            return Err(Error::format(
                self.file(),
                format!("tensor `{key}` holds {} at element {i}", data[i]),
            ));
        }
        if let Some(patch) = &self.patch {
            patch.patch(&self.key(name), shape, &mut data)?;
        }
        Ok(data)
    }
    /// Read `name` with `shape` and upload it as a weight.
    pub fn load<B: Backend>(&self, b: &B, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        let data = self.get(name, shape)?;
        b.upload_weight_owned(data, shape)
    }
}

/// Index of the first NaN or infinity in `data`. Each block is first tested whole with a
/// branch-free test the compiler vectorises, and searched only if it holds one: this check
/// runs over every weight of every checkpoint loaded.
fn first_non_finite(data: &[f32]) -> Option<usize> {
    const BLOCK: usize = 1024;
    data.chunks(BLOCK).enumerate().find_map(|(b, block)| {
        let any = block.iter().fold(false, |acc, v| acc | !v.is_finite());
        any.then(|| b * BLOCK + block.iter().position(|v| !v.is_finite()).unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    /// The first NaN or infinity is found wherever it lies: in the first block, past a block
    /// seam, in a short last block; none in finite data (extremes included).
    #[test]
    fn first_non_finite_finds_the_first_one() {
        let mut data = vec![1.0f32; 3000];
        data[2] = f32::MAX;
        data[1500] = f32::MIN_POSITIVE / 2.0;
        assert_eq!(first_non_finite(&data), None);
        data[2999] = f32::NEG_INFINITY;
        assert_eq!(first_non_finite(&data), Some(2999));
        data[1024] = f32::NAN;
        assert_eq!(first_non_finite(&data), Some(1024));
        data[3] = f32::INFINITY;
        assert_eq!(first_non_finite(&data), Some(3));
        assert_eq!(first_non_finite(&[]), None);
    }
}
