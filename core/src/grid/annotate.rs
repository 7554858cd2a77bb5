//! Tiling cells and drawing row and column headers, after A1111's `image_grid` and
//! `draw_grid_annotations` (modules/images.py): black-backed tiles; a white band on top
//! for column labels and, when any row has a label, a band on the left three quarters of
//! a cell wide; labels word-wrapped to the space they have and centred; font size
//! `(cell width + cell height) / 25` pixels (at least [`MIN_FONT_SIZE`]).

use super::canvas::{RgbImage, BLACK, WHITE};
use super::font::LabelFont;

/// A1111 would draw 5-pixel text on 64×64 cells; below this nothing is legible.
pub const MIN_FONT_SIZE: usize = 12;

/// `images` (all the size of the first) in `rows` rows, left to right then top to bottom.
pub fn image_grid(images: &[RgbImage], rows: usize) -> RgbImage {
    let Some(first) = images.first() else {
        return RgbImage::filled(0, 0, BLACK);
    };
    let rows = rows.max(1);
    let cols = images.len().div_ceil(rows);
    let (w, h) = (first.width, first.height);
    let mut grid = RgbImage::filled(cols * w, rows * h, BLACK);
    for (i, img) in images.iter().enumerate() {
        grid.paste(img, i % cols * w, i / cols * h);
    }
    grid
}

/// The label font size A1111 picks for cells of this size.
pub fn font_size(cell_w: usize, cell_h: usize) -> usize {
    ((cell_w + cell_h) / 25).max(MIN_FONT_SIZE)
}

/// Width of the left label band: none when every row label is empty.
pub fn left_band_width(cell_w: usize, row_labels: &[String]) -> usize {
    if row_labels.iter().all(|l| l.is_empty()) {
        0
    } else {
        cell_w * 3 / 4
    }
}

/// Words of `text` packed greedily into lines no wider than `max_width`.
fn wrap(font: &LabelFont, text: &str, max_width: f32) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("lines starts non-empty");
        let candidate = if last.is_empty() {
            word.to_string()
        } else {
            format!("{last} {word}")
        };
        if font.text_width(&candidate) <= max_width {
            *last = candidate;
        } else {
            lines.push(word.to_string());
        }
    }
    lines
}

/// Adds the header bands to `grid` (a tiling of `cell_w`×`cell_h` cells) and draws
/// `col_labels` above the columns and `row_labels` left of the rows.
pub fn draw_grid_annotations(
    grid: &RgbImage,
    cell_w: usize,
    cell_h: usize,
    col_labels: &[String],
    row_labels: &[String],
) -> RgbImage {
    let size = font_size(cell_w, cell_h);
    let font = LabelFont::new(size as f32);
    let spacing = (size / 2) as f32;
    let pad_left = left_band_width(cell_w, row_labels);

    let lay_out = |labels: &[String], width: usize| -> Vec<Vec<(String, f32)>> {
        labels
            .iter()
            .map(|l| {
                wrap(&font, l, width as f32)
                    .into_iter()
                    .map(|line| {
                        let h = font.line_height(&line);
                        (line, h)
                    })
                    .collect()
            })
            .collect()
    };
    let cols = lay_out(col_labels, cell_w);
    let rows = lay_out(row_labels, pad_left);

    // Column blocks are lines plus the gaps between them; A1111 measures row blocks
    // without the gaps (and still draws them), which centres rows slightly low.
    let col_heights: Vec<f32> = cols
        .iter()
        .map(|lines| lines.iter().map(|(_, h)| h + spacing).sum::<f32>() - spacing)
        .collect();
    let row_heights: Vec<f32> = rows
        .iter()
        .map(|lines| lines.iter().map(|(_, h)| *h).sum::<f32>())
        .collect();
    let pad_top = (col_heights.iter().cloned().fold(0.0, f32::max) + spacing * 2.0) as usize;

    let mut out = RgbImage::filled(grid.width + pad_left, grid.height + pad_top, WHITE);
    out.paste(grid, pad_left, pad_top);

    let draw_block = |out: &mut RgbImage, lines: &[(String, f32)], x: f32, mut y: f32| {
        for (line, h) in lines {
            font.draw_centered(out, line, x, y, BLACK);
            y += h + spacing;
        }
    };
    for (c, lines) in cols.iter().enumerate() {
        let x = pad_left as f32 + (cell_w * c) as f32 + cell_w as f32 / 2.0;
        let y = pad_top as f32 / 2.0 - col_heights[c] / 2.0;
        draw_block(&mut out, lines, x, y);
    }
    for (r, lines) in rows.iter().enumerate() {
        let x = pad_left as f32 / 2.0;
        let y = pad_top as f32 + (cell_h * r) as f32 + cell_h as f32 / 2.0 - row_heights[r] / 2.0;
        draw_block(&mut out, lines, x, y);
    }
    out
}
