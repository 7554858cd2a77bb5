//! GEMM tile shapes of `linear.wgsl` and `conv2d.wgsl`, picked per call. A 64x64 tile wastes
//! nearly all its work when one side of the product is tiny: the UNet's deepest layers at
//! 64x64 pixels see 1-4 pixels per image, the time embedding is a GEMM of two rows. There a
//! tall (or wide) tile that is only 4 or 16 wide along the short side does the same job
//! with 16 (or 4) times fewer wasted products. Every shape has 256 invocations (Chromium's
//! limit) and stays under 9 KiB of workgroup memory (16 KiB is WebGPU's guarantee).

use crate::kernels::Variant;

/// Invocations along x and y, outputs per invocation along rows and columns, k-slice depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    wx: u32,
    wy: u32,
    rm: u32,
    rn: u32,
    tk: u32,
}

/// 64 x 64: the shape for large products (4x4 outputs per invocation).
const SQUARE: Tile = Tile {
    wx: 16,
    wy: 16,
    rm: 4,
    rn: 4,
    tk: 16,
};
/// 256 rows x 4 columns.
const COLS_4: Tile = Tile {
    wx: 2,
    wy: 128,
    rm: 2,
    rn: 2,
    tk: 8,
};
/// 128 rows x 16 columns.
const COLS_16: Tile = Tile {
    wx: 4,
    wy: 64,
    rm: 2,
    rn: 4,
    tk: 16,
};

impl Tile {
    /// The tile for an output of `rows` x `cols`.
    pub fn pick(rows: usize, cols: usize) -> Tile {
        let transpose = |t: Tile| Tile {
            wx: t.wy,
            wy: t.wx,
            rm: t.rn,
            rn: t.rm,
            tk: t.tk,
        };
        if cols <= 4 && cols <= rows {
            COLS_4
        } else if rows <= 4 {
            transpose(COLS_4)
        } else if cols <= 32 && cols <= rows {
            COLS_16
        } else if rows <= 32 {
            transpose(COLS_16)
        } else {
            SQUARE
        }
    }

    /// Output rows covered by one workgroup.
    pub fn rows(self) -> usize {
        (self.wy * self.rm) as usize
    }

    /// Output columns covered by one workgroup.
    pub fn cols(self) -> usize {
        (self.wx * self.rn) as usize
    }

    /// `variant` with this tile's constants substituted.
    pub fn apply(self, mut variant: Variant) -> Variant {
        variant.consts.extend([
            ("WX", self.wx),
            ("WY", self.wy),
            ("RM", self.rm),
            ("RN", self.rn),
            ("TK", self.tk),
        ]);
        variant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_fit_browser_limits() {
        for t in [SQUARE, COLS_4, COLS_16] {
            assert_eq!(t.wx * t.wy, 256);
            let words = t.tk * (t.wy * t.rm + t.wx * t.rn);
            assert!(words * 4 <= 16384, "{t:?}");
        }
        assert_eq!(Tile::pick(1280, 2), COLS_4);
        assert_eq!(Tile::pick(2, 1280).rows(), 4);
        assert_eq!(Tile::pick(320, 32).cols(), 16);
        assert_eq!(Tile::pick(320, 4096), SQUARE);
    }
}
