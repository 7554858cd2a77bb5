//! `easel upscale IMG`: A1111's Extras tab for one image — an upscaler from the models
//! folder (or the built-in Lanczos / Nearest) run by A1111's upscale loop, "Scale by" or
//! "Scale to" (with "Crop to fit"), and the PNG carrying the Extras infotext
//! (`Postprocess upscale by: 4, Postprocess upscaler: R-ESRGAN 4x+`) in the `postprocessing`
//! and `extras` text chunks, the source image's `parameters` kept beside them.

use crate::compute::{Compute, ComputeArgs};
use crate::generate::{models_folder, parse_size};
use clap::Args;
use easel_core::backend::Backend;
use easel_core::image::{
    decode_image, upscale, ImageUpscaler, LanczosUpscaler, NearestUpscaler, RgbImage, UpscaleTarget,
};
use easel_core::infotext::param_line::quote;
use easel_core::infotext::{parameters_from_png_bytes, write_png_with_texts};
use easel_core::{Error, Result};
use easel_upscalers::{find_upscaler, ModelUpscaler, TileSettings};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct UpscaleArgs {
    /// The image to upscale (PNG, JPEG, WebP, BMP).
    pub image: PathBuf,
    /// Upscaler by A1111 name: a model in models/ESRGAN, RealESRGAN or SwinIR (its file
    /// stem; A1111's names such as "R-ESRGAN 4x+" for the Real-ESRGAN releases), or the
    /// built-in Lanczos or Nearest. `easel models` lists them.
    #[arg(long)]
    pub upscaler: String,
    /// Scale factor (A1111's "Scale by"; the result is rounded down to a multiple of 8).
    #[arg(long, conflicts_with = "resize")]
    pub scale: Option<f64>,
    /// Target size WIDTHxHEIGHT (A1111's "Scale to"): upscaled by the larger of the two
    /// ratios, then centred on a WIDTHxHEIGHT canvas, cutting the overflow.
    #[arg(long)]
    pub resize: Option<String>,
    /// With --resize: keep the whole upscaled image (A1111's "Crop to fit" off).
    #[arg(long, requires = "resize")]
    pub no_crop: bool,
    /// Output PNG.
    #[arg(short, long)]
    pub output: PathBuf,
    /// An A1111-style models folder (default: ./models, else the bundled tiny model).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Tile size in input pixels (A1111's ESRGAN_tile / SWIN_tile; 0 = the whole image at once).
    #[arg(long, default_value_t = 192)]
    pub tile: usize,
    /// Tile overlap in input pixels (A1111's ESRGAN_tile_overlap / SWIN_tile_overlap).
    #[arg(long, default_value_t = 8)]
    pub tile_overlap: usize,
    #[command(flatten)]
    pub compute: ComputeArgs,
}

/// Python's `str()` of the number A1111's UI sends: an integer stays one (`4`), otherwise
/// the shortest float text (`2.5`).
fn python_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The fields A1111's upscale postprocessing records, in its order: the target
/// (`Postprocess upscale by` / `… upscale to`), `Postprocess crop to` when the result was
/// cropped to the requested size, then the upscaler(s).
pub fn extras_fields(
    target: UpscaleTarget,
    upscaler: &str,
    second: Option<&str>,
    out: (usize, usize),
) -> Vec<(&'static str, String)> {
    let mut fields = Vec::new();
    match target {
        UpscaleTarget::Size { width, height, .. } => {
            fields.push(("Postprocess upscale to", format!("{width}x{height}")))
        }
        UpscaleTarget::Scale(s) => fields.push(("Postprocess upscale by", python_number(s))),
    }
    if let UpscaleTarget::Size { crop: true, .. } = target {
        fields.push(("Postprocess crop to", format!("{}x{}", out.0, out.1)));
    }
    fields.push(("Postprocess upscaler", upscaler.to_string()));
    if let Some(u) = second {
        fields.push(("Postprocess upscaler 2", u.to_string()));
    }
    fields
}

/// The text chunks of an Extras result, in A1111's order: the source's `parameters` when it
/// had them, then the Extras infotext as `postprocessing` and `extras`.
pub fn extras_texts<'a>(
    parameters: Option<&'a str>,
    info: &'a str,
) -> Vec<(&'static str, &'a str)> {
    let mut texts = Vec::new();
    if let Some(p) = parameters {
        texts.push(("parameters", p));
    }
    texts.push(("postprocessing", info));
    texts.push(("extras", info));
    texts
}

/// A1111's Extras infotext: `k: v` pairs joined by `, `, values quoted where needed.
pub fn extras_infotext(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}: {}", quote(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_with(
    img: &RgbImage,
    target: UpscaleTarget,
    upscaler: &dyn ImageUpscaler,
) -> Result<RgbImage> {
    upscale(img, target, upscaler)
}

fn model_upscaler<B>(a: &UpscaleArgs, backend: B) -> Result<ModelUpscaler<B>>
where
    B: Backend,
{
    let (models, _) = models_folder(&a.models, "");
    let entry = find_upscaler(&models, &a.upscaler)?;
    ModelUpscaler::open(
        &entry,
        backend,
        TileSettings {
            tile: a.tile,
            overlap: a.tile_overlap,
        },
    )
}

pub fn run(a: UpscaleArgs) -> Result<()> {
    let compute = a.compute.choose()?;
    if a.output
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("png"))
    {
        return Err(Error::Invalid(format!(
            "{}: easel upscale writes PNG; give the output a .png name",
            a.output.display()
        )));
    }
    let bytes = std::fs::read(&a.image).map_err(|e| Error::io(&a.image, e))?;
    let name = a.image.display().to_string();
    let img = decode_image(&bytes, &name)?;
    let existing = parameters_from_png_bytes(&bytes, &name).ok().flatten();

    let target = match (&a.resize, a.scale) {
        (Some(size), _) => {
            let (w, h) = parse_size(size).map_err(|_| {
                Error::Invalid(format!(
                    "--resize `{size}` is not WIDTHxHEIGHT (e.g. 2048x2048)"
                ))
            })?;
            UpscaleTarget::Size {
                width: w,
                height: h,
                crop: !a.no_crop,
            }
        }
        (None, s) => UpscaleTarget::Scale(s.unwrap_or(4.0)),
    };

    let started = Instant::now();
    let (out, upscaler_name) = match a.upscaler.as_str() {
        "Lanczos" => (run_with(&img, target, &LanczosUpscaler)?, "Lanczos".to_string()),
        "Nearest" => (run_with(&img, target, &NearestUpscaler)?, "Nearest".to_string()),
        "None" => {
            return Err(Error::Invalid(
                "--upscaler None leaves the image as it is; name an upscaler (`easel models` lists them)"
                    .into(),
            ))
        }
        _ => match compute {
            Compute::Candle => {
                let up = model_upscaler(&a, a.compute.candle()?)?;
                (run_with(&img, target, &up)?, up.name().to_string())
            }
            Compute::Wgpu => {
                let up = model_upscaler(&a, a.compute.wgpu()?)?;
                (run_with(&img, target, &up)?, up.name().to_string())
            }
        },
    };
    let fields = extras_fields(target, &upscaler_name, None, (out.width, out.height));
    let info = extras_infotext(&fields);

    let texts = extras_texts(existing.as_deref(), &info);
    write_png_with_texts(
        &a.output,
        out.width as u32,
        out.height as u32,
        &out.data,
        &texts,
    )?;
    eprintln!(
        "{}x{} → {}x{} in {:.1} s: {}",
        img.width,
        img.height,
        out.width,
        out.height,
        started.elapsed().as_secs_f64(),
        a.output.display()
    );
    println!("{info}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_python_prints_the_ui_value() {
        assert_eq!(python_number(4.0), "4");
        assert_eq!(python_number(2.5), "2.5");
        assert_eq!(python_number(1.1), "1.1");
    }

    #[test]
    fn infotext_is_a1111s_extras_line() {
        let s = extras_infotext(&[
            ("Postprocess upscale by", "4".into()),
            ("Postprocess upscaler", "R-ESRGAN 4x+".into()),
        ]);
        assert_eq!(
            s,
            "Postprocess upscale by: 4, Postprocess upscaler: R-ESRGAN 4x+"
        );
    }
}
