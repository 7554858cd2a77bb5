//! Which cell is which: A1111's X/Y/Z plot stores cell (x, y, z) at index
//! `x + y·|X| + z·|X|·|Y|`, generates them with the costliest axis outermost (z, then y,
//! then x when no axis costs more), tiles each z slice with X across and Y down, and
//! puts the z slices side by side under their own labels.

use super::annotate::{draw_grid_annotations, image_grid};
use super::axis::{Axis, AxisKind};
use super::canvas::RgbImage;
use crate::{Error, Result};

/// Position of a cell along the three axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellIndex {
    pub x: usize,
    pub y: usize,
    pub z: usize,
}

/// Most cells one grid may have (A1111 bounds the grid picture's size instead, which
/// [`GridPlan::check_image_size`] does too).
pub const MAX_GRID_CELLS: usize = 1024;
/// Largest grid picture, in megapixels (A1111's default `img_max_size_mp`).
pub const MAX_GRID_MEGAPIXELS: f64 = 200.0;

/// The three axes of one grid (absent ones are [`Axis::nothing`]).
#[derive(Clone, Debug)]

pub struct GridPlan {
    pub x: Axis,
    pub y: Axis,
    pub z: Axis,
}

impl GridPlan {
    /// Checks that an axis type is used at most once (A1111 lets the later one win,
    /// which only hides a mistake).
    pub fn new(x: Axis, y: Axis, z: Axis) -> Result<GridPlan> {
        for (a, b) in [(&x, &y), (&x, &z), (&y, &z)] {
            if a.kind == b.kind && a.kind != AxisKind::Nothing {
                return Err(Error::Invalid(format!(
                    "grid axis type `{}` is given twice",
                    a.kind.label()
                )));
            }
        }
        let cells = [&y, &z]
            .iter()
            .try_fold(x.values.len(), |n, a| n.checked_mul(a.values.len()))
            .filter(|&n| n <= MAX_GRID_CELLS);
        if cells.is_none() {
            return Err(Error::Invalid(format!(
                "the grid has {} × {} × {} cells; the limit is {MAX_GRID_CELLS}",
                x.values.len(),
                y.values.len(),
                z.values.len()
            )));
        }
        Ok(GridPlan { x, y, z })
    }

    /// Refuses a grid whose picture would exceed [`MAX_GRID_MEGAPIXELS`] with cells of
    /// `width`×`height` (A1111's "maximum grid size" setting, 200 MP by default).
    pub fn check_image_size(&self, width: usize, height: usize) -> Result<()> {
        let pixels = (self.cell_count() as f64) * width as f64 * height as f64;
        if pixels > MAX_GRID_MEGAPIXELS * 1e6 {
            return Err(Error::Invalid(format!(
                "the grid would be {:.0} megapixels ({} cells of {width}x{height}); the limit is {MAX_GRID_MEGAPIXELS}",
                pixels / 1e6,
                self.cell_count()
            )));
        }
        Ok(())
    }

    pub fn cell_count(&self) -> usize {
        self.x.values.len() * self.y.values.len() * self.z.values.len()
    }

    /// Where cell `c` is kept in the list [`compose`](Self::compose) takes.
    pub fn storage_index(&self, c: CellIndex) -> usize {
        let (nx, ny) = (self.x.values.len(), self.y.values.len());
        c.x + c.y * nx + c.z * nx * ny
    }

    /// Every cell in the order A1111 generates them: nested loops with the axis of
    /// highest switching cost outermost; on ties z, then y, outside x.
    pub fn processing_order(&self) -> Vec<CellIndex> {
        let (cx, cy, cz) = (self.x.kind.cost(), self.y.kind.cost(), self.z.kind.cost());
        // Axis letters from outermost to innermost.
        let order: [char; 3] = if cx > cy && cx > cz {
            if cy > cz {
                ['x', 'y', 'z']
            } else {
                ['x', 'z', 'y']
            }
        } else if cy > cx && cy > cz {
            if cx > cz {
                ['y', 'x', 'z']
            } else {
                ['y', 'z', 'x']
            }
        } else if cz > cx && cz > cy {
            if cx > cy {
                ['z', 'x', 'y']
            } else {
                ['z', 'y', 'x']
            }
        } else {
            ['z', 'y', 'x']
        };
        let len = |a: char| match a {
            'x' => self.x.values.len(),
            'y' => self.y.values.len(),
            _ => self.z.values.len(),
        };
        let mut out = Vec::with_capacity(self.cell_count());
        for i in 0..len(order[0]) {
            for j in 0..len(order[1]) {
                for k in 0..len(order[2]) {
                    let mut c = CellIndex { x: 0, y: 0, z: 0 };
                    for (axis, v) in order.iter().zip([i, j, k]) {
                        match axis {
                            'x' => c.x = v,
                            'y' => c.y = v,
                            _ => c.z = v,
                        }
                    }
                    out.push(c);
                }
            }
        }
        out
    }

    /// The labelled grid image from the cells in storage order (all of one size).
    pub fn compose(&self, cells: &[RgbImage]) -> Result<RgbImage> {
        if cells.len() != self.cell_count() || cells.is_empty() {
            return Err(Error::Invalid(format!(
                "grid has {} cells, {} images given",
                self.cell_count(),
                cells.len()
            )));
        }
        let (w, h) = (cells[0].width, cells[0].height);
        if cells.iter().any(|c| c.width != w || c.height != h) {
            return Err(Error::Invalid(
                "grid cells differ in size (a checkpoint or size axis changed it)".into(),
            ));
        }
        let per_slice = self.x.values.len() * self.y.values.len();
        let (xl, yl) = (self.x.labels(), self.y.labels());
        let slices: Vec<RgbImage> = cells
            .chunks(per_slice)
            .map(|slice| {
                let tiled = image_grid(slice, self.y.values.len());
                draw_grid_annotations(&tiled, w, h, &xl, &yl)
            })
            .collect();
        if self.z.kind == AxisKind::Nothing {
            // A1111 would add an empty title band here; without a Z axis it only wastes space.
            return Ok(slices.into_iter().next().expect("one slice"));
        }
        let (sw, sh) = (slices[0].width, slices[0].height);
        let row = image_grid(&slices, 1);
        Ok(draw_grid_annotations(
            &row,
            sw,
            sh,
            &self.z.labels(),
            &[String::new()],
        ))
    }

    /// The entries A1111 adds to the grid image's infotext (`Script`, `X Type`,
    /// `X Values`, `Fixed X Values` for seeds, ...).
    pub fn infotext_fields(&self) -> Vec<(String, String)> {
        let mut out = vec![("Script".to_string(), "X/Y/Z plot".to_string())];
        for (letter, axis) in [("X", &self.x), ("Y", &self.y), ("Z", &self.z)] {
            if axis.kind == AxisKind::Nothing {
                continue;
            }
            out.push((format!("{letter} Type"), axis.kind.label().to_string()));
            out.push((format!("{letter} Values"), axis.text.clone()));
            if axis.kind == AxisKind::Seed {
                let fixed: Vec<String> = axis
                    .values
                    .iter()
                    .map(|v| match v {
                        super::axis::AxisValue::Int(n) => n.to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                out.push((format!("Fixed {letter} Values"), fixed.join(", ")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::axis::AxisKind;

    fn plan(x: (&str, &str), y: (&str, &str), z: (&str, &str)) -> GridPlan {
        let ax = |(k, v): (&str, &str)| {
            if k.is_empty() {
                Axis::nothing()
            } else {
                Axis::parse(AxisKind::parse(k).unwrap(), v).unwrap()
            }
        };
        GridPlan::new(ax(x), ax(y), ax(z)).unwrap()
    }

    #[test]
    fn order_is_z_y_x_unless_an_axis_costs_more() {
        let p = plan(("Seed", "1,2"), ("Steps", "3,4"), ("", ""));
        let o: Vec<(usize, usize)> = p.processing_order().iter().map(|c| (c.x, c.y)).collect();
        assert_eq!(o, [(0, 0), (1, 0), (0, 1), (1, 1)]);
        // A checkpoint axis on X becomes the outer loop.
        let p = plan(("Checkpoint name", "a,b"), ("Seed", "1,2"), ("", ""));
        let o: Vec<(usize, usize)> = p.processing_order().iter().map(|c| (c.x, c.y)).collect();
        assert_eq!(o, [(0, 0), (0, 1), (1, 0), (1, 1)]);
    }

    #[test]
    fn storage_index_is_x_fastest() {
        let p = plan(("Seed", "1,2,3"), ("Steps", "3,4"), ("CFG Scale", "5,6"));
        assert_eq!(p.storage_index(CellIndex { x: 2, y: 1, z: 1 }), 2 + 3 + 6);
    }

    #[test]
    fn repeated_axis_type_is_an_error() {
        let a = Axis::parse(AxisKind::Seed, "1").unwrap();
        assert!(GridPlan::new(a.clone(), a, Axis::nothing()).is_err());
    }

    #[test]
    fn composed_size_is_cells_plus_bands() {
        let p = plan(("Seed", "1,2,3"), ("Steps", "3,4"), ("", ""));
        let cells: Vec<RgbImage> = (0..6)
            .map(|_| RgbImage::filled(64, 48, [10, 20, 30]))
            .collect();
        let g = p.compose(&cells).unwrap();
        assert_eq!(g.width, 3 * 64 + 64 * 3 / 4);
        assert!(g.height > 2 * 48);
    }
}
