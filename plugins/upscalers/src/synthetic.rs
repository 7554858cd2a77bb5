//! Seeded random weights of an RRDBNet in ESRGAN's original key layout, made in memory:
//! what `easel bench --upscale` times (speed does not depend on the values), so the
//! benchmark needs no model file. Values are uniform in ±0.03 (activations stay finite
//! through 23 blocks thanks to the 0.2-scaled residuals).

use crate::rrdb::GROWTH;
use easel_core::formats::{DType, TensorInfo, TensorStore};
use easel_core::io::MemorySource;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An RRDBNet (3 → 3 channels) with `features` channels, `blocks` blocks and `scale`
/// (a power of two), its weights a function of `seed`.
pub fn random_rrdb(features: usize, blocks: usize, scale: usize, seed: u64) -> TensorStore {
    let mut shapes: Vec<(String, Vec<usize>)> = Vec::new();
    let mut conv = |name: String, cin: usize, cout: usize| {
        shapes.push((format!("{name}.weight"), vec![cout, cin, 3, 3]));
        shapes.push((format!("{name}.bias"), vec![cout]));
    };
    let (nf, gc) = (features, GROWTH);
    conv("model.0".into(), 3, nf);
    for b in 0..blocks {
        for r in 1..=3 {
            for k in 1..=5 {
                let cin = nf + (k - 1) * gc;
                let cout = if k == 5 { nf } else { gc };
                conv(format!("model.1.sub.{b}.RDB{r}.conv{k}.0"), cin, cout);
            }
        }
    }
    conv(format!("model.1.sub.{blocks}"), nf, nf);
    let ups = scale.trailing_zeros() as usize;
    for i in 0..ups {
        conv(format!("model.{}", 3 + 3 * i), nf, nf);
    }
    conv(format!("model.{}", 2 + 3 * ups), nf, nf);
    conv(format!("model.{}", 4 + 3 * ups), nf, 3);

    let mut tensors = BTreeMap::new();
    let mut bytes = Vec::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for (key, shape) in shapes {
        let n: usize = shape.iter().product();
        let offset = bytes.len() as u64;
        for _ in 0..n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            bytes.extend_from_slice(&((unit * 2.0 - 1.0) * 0.03).to_le_bytes());
        }
        tensors.insert(
            key,
            TensorInfo {
                dtype: DType::F32,
                strides: TensorInfo::contiguous_strides(&shape),
                shape,
                offset,
                storage_start: offset,
                storage_len: (n * 4) as u64,
            },
        );
    }
    let source = Arc::new(MemorySource::new("<random RRDBNet>", bytes));
    TensorStore::new(source, tensors, BTreeMap::new())
}
