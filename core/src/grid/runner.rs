//! Generating every cell of a grid in A1111's order and assembling the result; the
//! caller supplies the function that turns a cell's position into an image, so this
//! works with any backend and front end.

use super::canvas::RgbImage;
use super::layout::{CellIndex, GridPlan};
use crate::infotext::Infotext;
use crate::Result;

/// One generated cell.
#[derive(Clone, Debug)]
pub struct GridCell {
    pub index: CellIndex,
    pub image: RgbImage,
    /// The cell's own infotext (what its PNG carries when cells are saved).
    pub infotext: Infotext,
}

/// A finished grid.
#[derive(Clone, Debug)]
pub struct GridOutput {
    /// The labelled grid.
    pub image: RgbImage,
    /// As A1111: the first cell's infotext plus the plot's `Script`, `X Type`, ... entries.
    pub infotext: Infotext,
    /// Every cell, in storage order (x fastest, then y, then z).
    pub cells: Vec<GridCell>,
}

/// Renders each cell of `plan` with `render`, in [`GridPlan::processing_order`], and
/// lays the images out. The first error stops the grid.
pub fn run_grid(
    plan: &GridPlan,
    mut render: impl FnMut(CellIndex) -> Result<(RgbImage, Infotext)>,
) -> Result<GridOutput> {
    let mut slots: Vec<Option<GridCell>> = vec![None; plan.cell_count()];
    for index in plan.processing_order() {
        let (image, infotext) = render(index)?;
        slots[plan.storage_index(index)] = Some(GridCell {
            index,
            image,
            infotext,
        });
    }
    let cells: Vec<GridCell> = slots.into_iter().flatten().collect();
    let images: Vec<RgbImage> = cells.iter().map(|c| c.image.clone()).collect();
    let image = plan.compose(&images)?;
    let mut infotext = cells[0].infotext.clone();
    for (k, v) in plan.infotext_fields() {
        infotext.push_before("Version", k, v);
    }
    Ok(GridOutput {
        image,
        infotext,
        cells,
    })
}
