//! Bottom/right padding of `[C, H, W]` host images as torch's `F.pad` does it for the
//! modes spandrel uses: `reflect` (mirror without repeating the edge; at most size − 1)
//! and `replicate` (repeat the edge).

use easel_core::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Reflect,
    Replicate,
}

fn source(i: usize, size: usize, mode: PadMode) -> usize {
    if i < size {
        return i;
    }
    match mode {
        PadMode::Reflect => 2 * (size - 1) - i,
        PadMode::Replicate => size - 1,
    }
}

/// Pads `pad_h` rows at the bottom and `pad_w` columns at the right of every plane.
pub fn pad_bottom_right(
    x: &[f32],
    c: usize,
    h: usize,
    w: usize,
    pad_h: usize,
    pad_w: usize,
    mode: PadMode,
) -> Result<(Vec<f32>, usize, usize)> {
    if pad_h == 0 && pad_w == 0 {
        return Ok((x.to_vec(), h, w));
    }
    if mode == PadMode::Reflect && (pad_h >= h.max(1) || pad_w >= w.max(1)) {
        return Err(Error::Invalid(format!(
            "reflect padding of {pad_h}×{pad_w} does not fit a {h}×{w} image"
        )));
    }
    let (oh, ow) = (h + pad_h, w + pad_w);
    let mut out = Vec::with_capacity(c * oh * ow);
    for ci in 0..c {
        for y in 0..oh {
            let row = &x[(ci * h + source(y, h, mode)) * w..][..w];
            for xx in 0..ow {
                out.push(row[source(xx, w, mode)]);
            }
        }
    }
    Ok((out, oh, ow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_and_replicate_like_torch() {
        let x = [1.0, 2.0, 3.0];
        let (r, _, w) = pad_bottom_right(&x, 1, 1, 3, 0, 2, PadMode::Reflect).unwrap();
        assert_eq!((r, w), (vec![1.0, 2.0, 3.0, 2.0, 1.0], 5));
        let (p, _, _) = pad_bottom_right(&x, 1, 1, 3, 0, 2, PadMode::Replicate).unwrap();
        assert_eq!(p, [1.0, 2.0, 3.0, 3.0, 3.0]);
        assert!(pad_bottom_right(&x, 1, 1, 3, 0, 3, PadMode::Reflect).is_err());
    }
}
