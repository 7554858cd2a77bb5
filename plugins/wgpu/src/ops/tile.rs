//! GEMM tile shapes of `linear.wgsl` and `conv2d.wgsl`, picked per call. A 64x64 tile wastes
//! nearly all its work when one side of the product is tiny: the UNet's deepest layers at
//! 64x64 pixels see 1-4 pixels per image, the time embedding is a GEMM of two rows. There a
//! tall (or wide) tile that is only 4 or 16 wide along the short side does the same job
//! with 16 (or 4) times fewer wasted products. Every GPU shape has 256 invocations
//! (Chromium's limit); the software adapters' shapes ([`crate::KernelShapes`]) have 64, each
//! computing an 8-row block where the GPU's computes 2 or 4. All stay under 9 KiB of
//! workgroup memory (16 KiB is WebGPU's guarantee), and every tile's columns divide its
//! invocations (the convolution stages one patch column per invocation).

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

/// The software adapters' shapes: 64 x 64 (8x8 outputs per invocation) ...
const SQUARE_SMALL: Tile = Tile {
    wx: 8,
    wy: 8,
    rm: 8,
    rn: 8,
    tk: 16,
};
/// ... 256 rows x 4 columns ...
const COLS_4_SMALL: Tile = Tile {
    wx: 2,
    wy: 32,
    rm: 8,
    rn: 2,
    tk: 8,
};
/// ... 128 rows x 16 columns ...
const COLS_16_SMALL: Tile = Tile {
    wx: 4,
    wy: 16,
    rm: 8,
    rn: 4,
    tk: 16,
};
/// ... 4 rows x 64 columns ...
const ROWS_4_SMALL: Tile = Tile {
    wx: 32,
    wy: 2,
    rm: 2,
    rn: 2,
    tk: 16,
};
/// ... and 16 rows x 64 columns.
const ROWS_16_SMALL: Tile = Tile {
    wx: 16,
    wy: 4,
    rm: 4,
    rn: 4,
    tk: 16,
};

/// One kind of adapter's tiles, by the output's narrow side.
struct TileSet {
    /// At most 4 columns (and no more than the rows).
    cols_4: Tile,
    /// At most 4 rows.
    rows_4: Tile,
    /// At most 32 columns (and no more than the rows).
    cols_16: Tile,
    /// At most 32 rows.
    rows_16: Tile,
    /// Everything larger.
    square: Tile,
}

/// A GPU's: the narrow row tiles are the column tiles transposed.
const GPU_TILES: TileSet = TileSet {
    cols_4: COLS_4,
    rows_4: COLS_4.transposed(),
    cols_16: COLS_16,
    rows_16: COLS_16.transposed(),
    square: SQUARE,
};

/// A software adapter's: the row tiles stay 64 columns wide, since the convolution stages
/// one patch column per invocation.
const SMALL_TILES: TileSet = TileSet {
    cols_4: COLS_4_SMALL,
    rows_4: ROWS_4_SMALL,
    cols_16: COLS_16_SMALL,
    rows_16: ROWS_16_SMALL,
    square: SQUARE_SMALL,
};

impl Tile {
    /// The tile for an output of `rows` x `cols`, from the 64-invocation shapes when
    /// `small` (a software adapter).
    pub fn pick(rows: usize, cols: usize, small: bool) -> Tile {
        let set = if small { &SMALL_TILES } else { &GPU_TILES };
        if cols <= 4 && cols <= rows {
            set.cols_4
        } else if rows <= 4 {
            set.rows_4
        } else if cols <= 32 && cols <= rows {
            set.cols_16
        } else if rows <= 32 {
            set.rows_16
        } else {
            set.square
        }
    }

    /// Rows and columns swapped.
    const fn transposed(self) -> Tile {
        Tile {
            wx: self.wy,
            wy: self.wx,
            rm: self.rn,
            rn: self.rm,
            tk: self.tk,
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
        for small in [false, true] {
            let invocations = if small { 64 } else { 256 };
            for (rows, cols) in [(1280, 2), (2, 1280), (320, 32), (32, 320), (320, 4096)] {
                let t = Tile::pick(rows, cols, small);
                assert_eq!(t.wx * t.wy, invocations, "{t:?}");
                let words = t.tk * (t.wy * t.rm + t.wx * t.rn);
                assert!(words * 4 <= 9 * 1024, "{t:?}");
                assert_eq!(invocations % t.cols() as u32, 0, "{t:?}");
                assert_eq!(t.tk % 8, 0, "{t:?}");
            }
            assert_eq!(Tile::pick(1280, 2, small).cols(), 4);
            assert_eq!(Tile::pick(2, 1280, small).rows(), 4);
            assert_eq!(Tile::pick(320, 32, small).cols(), 16);
            assert_eq!(Tile::pick(32, 320, small).rows(), 16);
            assert_eq!(Tile::pick(320, 4096, small).rows(), 64);
        }
    }
}
