//! Label text: the bundled DejaVu Sans (Bitstream Vera licence, see
//! `core/assets/fonts/DejaVuSans-LICENSE.txt`) measured and drawn with `ab_glyph`, so a
//! grid looks the same on every machine without a system font.

use super::canvas::RgbImage;
use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The label font at one size. `size` is the em size in pixels, as PIL's
/// `ImageFont.truetype(font, size)` takes it.
pub struct LabelFont {
    font: FontRef<'static>,
    scale: PxScale,
}

impl LabelFont {
    pub fn new(size: f32) -> LabelFont {
        // The bundled file is a known-good TrueType font.
        let font = FontRef::try_from_slice(DEJAVU_SANS).expect("bundled DejaVu Sans parses");
        let units_per_em = font.units_per_em().unwrap_or(2048.0);
        // ab_glyph scales by ascent - descent; PIL by the em square.
        let scale = PxScale::from(size * font.height_unscaled() / units_per_em);
        LabelFont { font, scale }
    }

    /// Advance width of `text` in pixels (PIL's `textlength`).
    pub fn text_width(&self, text: &str) -> f32 {
        let f = self.font.as_scaled(self.scale);
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                width += f.kern(p, id);
            }
            width += f.h_advance(id);
            prev = Some(id);
        }
        width
    }

    /// Height of one line of text: ascent to descent; an empty line has none.
    pub fn line_height(&self, text: &str) -> f32 {
        if text.is_empty() {
            return 0.0;
        }
        let f = self.font.as_scaled(self.scale);
        (f.ascent() - f.descent()).ceil()
    }

    /// Draws `text` in `color`, centred on `center_x`, its line box's top at `top`.
    pub fn draw_centered(
        &self,
        img: &mut RgbImage,
        text: &str,
        center_x: f32,
        top: f32,
        color: [u8; 3],
    ) {
        let f = self.font.as_scaled(self.scale);
        let mut x = center_x - self.text_width(text) / 2.0;
        let baseline = top + f.ascent();
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                x += f.kern(p, id);
            }
            let glyph = id.with_scale_and_position(self.scale, point(x, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    img.blend(
                        bounds.min.x as i64 + gx as i64,
                        bounds.min.y as i64 + gy as i64,
                        color,
                        coverage,
                    );
                });
            }
            x += f.h_advance(id);
            prev = Some(id);
        }
    }
}
