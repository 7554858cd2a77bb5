//! A change applied to a model's weights as they load: LoRA and LyCORIS files (a plugin)
//! add `ΔW · multiplier` to the layers they name, exactly as A1111 patches its modules'
//! weights in place. Patching at load, rather than adding a side path to every layer's
//! forward pass, keeps a sampling step as cheap with LoRAs as without; a different set of
//! LoRAs means loading the model again with another patch, from the original weights.
//!
//! The loader ([`Weights`](super::loader::Weights)) hands every tensor it reads to the patch
//! by its full LDM key (`model.diffusion_model.input_blocks.1.1.proj_in.weight`,
//! `cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight`), in f32,
//! before the tensor is uploaded.

use crate::Result;
use std::sync::Arc;

pub trait WeightPatch: Send + Sync {
    /// Changes `data` (the tensor stored under LDM key `key`, with the shape the network
    /// asked for) in place. Keys the patch does not touch are left alone.
    fn patch(&self, key: &str, shape: &[usize], data: &mut [f32]) -> Result<()>;

    /// Messages about the last load (layers named by a file that the model does not have,
    /// shapes that did not fit), for the front end to show as warnings.
    fn report(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A patch shared between the loader and the service that keeps it.
pub type SharedWeightPatch = Arc<dyn WeightPatch>;
