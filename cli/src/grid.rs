//! `easel grid`: A1111's X/Y/Z plot. The generate flags give the base settings; each axis
//! varies one of them over values written in A1111's syntax (`1-5`, `1-10 [5]`,
//! `0.5-1.5 (+0.25)`, CSV with quotes). Every model, VAE and hypernetwork is loaded once
//! for the whole grid (the [`Session`] keeps them).

use crate::compute::Compute;
use crate::generate::{sampler_registry, scheduler_registry, GenerateArgs};
use crate::progress::step_bar;
use crate::session::{Session, SessionBackend, Settings};
use clap::Args;
use easel_core::grid::{
    prompt_search_replace, run_grid, Axis, AxisKind, AxisValue, CellIndex, GridOutput, GridPlan,
    RgbImage,
};
use easel_core::infotext::write_png;
use easel_core::model::{checkpoint_files, resolve_checkpoint, VaeChoice};
use easel_core::registry::SamplerChoice;
use easel_core::service::{GenerationInputs, NetworkSetting, StepProgress};
use easel_core::{Error, Result};
use easel_hypernetwork::{find_closest, list_hypernetworks};
use std::path::{Path, PathBuf};

#[derive(Args, Clone)]
pub struct GridArgs {
    /// The settings every cell starts from (the axes override them).
    #[command(flatten)]
    pub base: GenerateArgs,
    /// X axis type: Seed, Steps, "CFG Scale", Sampler, "Schedule type", "Checkpoint name",
    /// VAE, Hypernetwork, "Hypernet str.", "Clip skip", "Prompt S/R", Eta, "Sigma Churn",
    /// "Sigma min", "Sigma max", "Sigma noise", "Schedule min sigma", "Schedule max sigma",
    /// "Schedule rho", Denoising, "Hires upscaler", "Hires steps" (case and `_` ignored).
    #[arg(long = "x-type")]
    pub x_type: Option<String>,
    /// X values, A1111 syntax: `1,2,3`, `1-5`, `1-5 (+2)`, `1-10 [5]`, `0.5-1.5 (+0.25)`,
    /// `"quoted, with comma"` (a quote opens only right after a comma).
    #[arg(long = "x-values", allow_hyphen_values = true)]
    pub x_values: Option<String>,
    /// Y axis type (see --x-type).
    #[arg(long = "y-type")]
    pub y_type: Option<String>,
    /// Y values (see --x-values).
    #[arg(long = "y-values", allow_hyphen_values = true)]
    pub y_values: Option<String>,
    /// Z axis type: one labelled sub-grid per value, side by side.
    #[arg(long = "z-type")]
    pub z_type: Option<String>,
    /// Z values (see --x-values).
    #[arg(long = "z-values", allow_hyphen_values = true)]
    pub z_values: Option<String>,
    /// Also write every cell as its own PNG (with its infotext) into this folder.
    #[arg(long = "save-cells")]
    pub save_cells: Option<PathBuf>,
}

/// One axis from its `--?-type` / `--?-values` pair.
fn parse_axis(letter: char, kind: &Option<String>, values: &Option<String>) -> Result<Axis> {
    match (kind, values) {
        (None, None) => Ok(Axis::nothing()),
        (Some(k), Some(v)) => Axis::parse(AxisKind::parse(k)?, v),
        (Some(k), None) => Err(Error::Invalid(format!(
            "--{letter}-type `{k}` needs --{letter}-values"
        ))),
        (None, Some(_)) => Err(Error::Invalid(format!(
            "--{letter}-values needs --{letter}-type"
        ))),
    }
}

/// The grid's axes from the flags, -1 seeds already drawn.
pub fn plan_from_args(a: &GridArgs) -> Result<GridPlan> {
    let mut x = parse_axis('x', &a.x_type, &a.x_values)?;
    let mut y = parse_axis('y', &a.y_type, &a.y_values)?;
    let mut z = parse_axis('z', &a.z_type, &a.z_values)?;
    if [&x, &y, &z].iter().all(|a| a.kind == AxisKind::Nothing) {
        return Err(Error::Invalid(
            "easel grid needs at least one axis (--x-type and --x-values)".into(),
        ));
    }
    for axis in [&mut x, &mut y, &mut z] {
        axis.fix_random_seeds(random_seed);
    }
    GridPlan::new(x, y, z)
}

/// A seed in A1111's range [0, 2^32), different on every call.
fn random_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    (nanos ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

/// What the axes change in one cell, gathered first so the result does not depend on
/// which letter an axis is on.
#[derive(Default)]
struct CellOverrides {
    hypernetwork: Option<Option<String>>,
    hypernet_strength: Option<f32>,
}

/// The settings of cell `c`: `base` with every axis' value applied.
pub fn cell_settings(plan: &GridPlan, base: &Settings, c: CellIndex) -> Result<Settings> {
    let mut s = base.clone();
    s.batch_size = 1;
    s.batch_count = 1;
    let mut o = CellOverrides::default();
    for (axis, i) in [(&plan.x, c.x), (&plan.y, c.y), (&plan.z, c.z)] {
        apply(&mut s, &mut o, axis, &axis.values[i])?;
    }
    if let Some(choice) = o.hypernetwork {
        let strength = base.hypernets.first().map_or(1.0, |h| h.strength);
        s.hypernets = choice
            .into_iter()
            .map(|name| NetworkSetting { name, strength })
            .collect();
    }
    if let Some(strength) = o.hypernet_strength {
        for h in &mut s.hypernets {
            h.strength = strength;
        }
    }
    Ok(s)
}

fn apply(s: &mut Settings, o: &mut CellOverrides, axis: &Axis, v: &AxisValue) -> Result<()> {
    let text = || match v {
        AxisValue::Text(t) => t.clone(),
        other => format!("{other:?}"),
    };
    match (axis.kind, v) {
        (AxisKind::Nothing, _) => {}
        (AxisKind::Seed, AxisValue::Int(n)) => s.seed = *n as u64,
        (AxisKind::Steps, AxisValue::Int(n)) => s.steps = *n as usize,
        (AxisKind::ClipSkip, AxisValue::Int(n)) => s.clip_skip = *n as usize,
        (AxisKind::HiresSteps, AxisValue::Int(n)) => {
            s.hr_second_pass_steps = usize::try_from(*n).map_err(|_| {
                Error::Invalid(format!("grid: Hires steps {n} must not be negative"))
            })?
        }
        (AxisKind::Denoising, AxisValue::Float(f)) => s.denoising_strength = *f,
        (AxisKind::HiresUpscaler, _) => s.hr_upscaler = text(),
        (AxisKind::CfgScale, AxisValue::Float(f)) => s.cfg_scale = *f as f32,
        (AxisKind::HypernetStrength, AxisValue::Float(f)) => o.hypernet_strength = Some(*f as f32),
        (AxisKind::Eta, AxisValue::Float(f)) => {
            s.sampler_params.eta = Some(*f as f32);
            s.sampler_params.eta_ddim = Some(*f as f32);
        }
        (AxisKind::SigmaChurn, AxisValue::Float(f)) => s.sampler_params.s_churn = Some(*f as f32),
        (AxisKind::SigmaMin, AxisValue::Float(f)) => s.sampler_params.s_tmin = Some(*f as f32),
        (AxisKind::SigmaMax, AxisValue::Float(f)) => s.sampler_params.s_tmax = Some(*f as f32),
        (AxisKind::SigmaNoise, AxisValue::Float(f)) => s.sampler_params.s_noise = Some(*f as f32),
        (AxisKind::ScheduleMinSigma, AxisValue::Float(f)) => {
            s.sampler_params.schedule_sigma_min = Some(*f as f32)
        }
        (AxisKind::ScheduleMaxSigma, AxisValue::Float(f)) => {
            s.sampler_params.schedule_sigma_max = Some(*f as f32)
        }
        (AxisKind::ScheduleRho, AxisValue::Float(f)) => {
            s.sampler_params.schedule_rho = Some(*f as f32)
        }
        (AxisKind::Sampler, _) => s.sampler = text(),
        (AxisKind::ScheduleType, _) => s.schedule_type = Some(text()),
        (AxisKind::Checkpoint, _) => s.model = text(),
        (AxisKind::Vae, _) => s.vae = text(),
        (AxisKind::Hypernetwork, _) => {
            let name = text();
            o.hypernetwork = Some(if is_none(&name) {
                None
            } else {
                Some(closest_hypernetwork(&s.models, &name)?)
            });
        }
        (AxisKind::PromptSr, _) => {
            let search = match axis.values.first() {
                Some(AxisValue::Text(t)) => t.clone(),
                _ => String::new(),
            };
            (s.prompt, s.negative_prompt) =
                prompt_search_replace(&s.prompt, &s.negative_prompt, &search, &text())?;
        }
        (kind, other) => {
            return Err(Error::Invalid(format!(
                "grid axis `{}` cannot take {other:?}",
                kind.label()
            )))
        }
    }
    Ok(())
}

/// A1111's "no hypernetwork" values.
fn is_none(name: &str) -> bool {
    name.is_empty() || name.eq_ignore_ascii_case("none")
}

/// A1111's grid lookup: the shortest hypernetwork name containing `name`, ignoring case;
/// unknown names are an error listing what the folder has.
fn closest_hypernetwork(models: &Path, name: &str) -> Result<String> {
    let entries = list_hypernetworks(models);
    find_closest(&entries, name)
        .map(|e| e.name.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            Error::Invalid(format!(
                "grid axis `Hypernetwork`: unknown hypernetwork `{name}` (available: {})",
                if names.is_empty() {
                    format!("none in {}", models.join("hypernetworks").display())
                } else {
                    names.join(", ")
                }
            ))
        })
}

/// Checks every axis value against the models folder and the registries before the
/// first cell runs, so a typo in the last value does not waste the whole grid.
pub fn validate(plan: &GridPlan, base: &Settings) -> Result<()> {
    let samplers = sampler_registry();
    let schedulers = scheduler_registry();
    for axis in [&plan.x, &plan.y, &plan.z] {
        let label = axis.kind.label();
        let context = |e: Error| Error::Invalid(format!("grid axis `{label}`: {e}"));
        for v in &axis.values {
            let AxisValue::Text(t) = v else { continue };
            match axis.kind {
                AxisKind::Sampler => {
                    SamplerChoice::parse(&samplers, &schedulers, t, base.schedule_type.as_deref())
                        .map_err(context)?;
                }
                AxisKind::ScheduleType => {
                    SamplerChoice::parse(&samplers, &schedulers, &base.sampler, Some(t))
                        .map_err(context)?;
                }
                AxisKind::Checkpoint => {
                    let ckpt = resolve_checkpoint(&base.models, t).map_err(context)?;
                    checkpoint_files(&base.models, &ckpt, &VaeChoice::parse(&base.vae))
                        .map_err(context)?;
                }
                AxisKind::Vae => {
                    let ckpt = resolve_checkpoint(&base.models, &base.model)?;
                    checkpoint_files(&base.models, &ckpt, &VaeChoice::parse(t)).map_err(context)?;
                }
                AxisKind::Hypernetwork if !is_none(t) => {
                    closest_hypernetwork(&base.models, t)?;
                }
                _ => {}
            }
        }
    }
    let axes = [&plan.x, &plan.y, &plan.z];
    let has = |k: AxisKind| axes.iter().any(|a| a.kind == k);
    if has(AxisKind::HypernetStrength) && base.hypernets.is_empty() && !has(AxisKind::Hypernetwork)
    {
        return Err(Error::Invalid(
            "grid axis `Hypernet str.` needs a hypernetwork to act on: give --hypernet NAME or a Hypernetwork axis (strengths written in <hypernet:...> prompt tags stay as written; vary them with Prompt S/R)".into(),
        ));
    }
    // Every cell's settings must be buildable (Prompt S/R must find its text).
    for c in plan.processing_order() {
        cell_settings(plan, base, c)?;
    }
    Ok(())
}

/// Generates the grid on `session`: every cell's image and infotext, and the labelled grid.
/// `inputs` (init images, mask) make every cell an img2img cell, as an img2img X/Y/Z plot.
pub fn generate_grid<B: SessionBackend>(
    session: &mut Session<B>,
    plan: &GridPlan,
    base: &Settings,
    inputs: &GenerationInputs,
    show_progress: bool,
) -> Result<GridOutput> {
    validate(plan, base)?;
    let total = plan.cell_count();
    let mut done = 0;
    run_grid(plan, |c| {
        done += 1;
        let s = cell_settings(plan, base, c)?;
        let bar = show_progress.then(|| step_bar(s.steps as u64, &format!("cell {done}/{total}")));
        let mut on_step = |p: &StepProgress| {
            if let Some(b) = &bar {
                b.set_position(p.step as u64 + 1);
            }
        };
        let mut images = session.generate_with_inputs(&s, inputs, &mut on_step)?;
        if let Some(b) = &bar {
            b.finish();
        }
        if images.is_empty() {
            return Err(Error::Invalid("the pipeline returned no image".into()));
        }
        let (img, info) = images.swap_remove(0);
        Ok((RgbImage::from_rgb(img.width, img.height, img.rgb)?, info))
    })
}

/// File name of a saved cell: its position along each axis, from 1.
fn cell_file_name(plan: &GridPlan, c: CellIndex) -> String {
    let mut name = format!("cell-x{}", c.x + 1);
    if plan.y.kind != AxisKind::Nothing {
        name.push_str(&format!("-y{}", c.y + 1));
    }
    if plan.z.kind != AxisKind::Nothing {
        name.push_str(&format!("-z{}", c.z + 1));
    }
    name + ".png"
}

pub fn run(a: GridArgs) -> Result<()> {
    match a.base.compute.choose()? {
        Compute::Candle => run_on(&a, Session::new(a.base.compute.candle()?)),
        Compute::Wgpu => run_on(&a, Session::new(a.base.compute.wgpu()?)),
    }
}

fn run_on<B: SessionBackend>(a: &GridArgs, mut session: Session<B>) -> Result<()> {
    let plan = plan_from_args(a)?;
    let base = a.base.settings()?;
    let inputs = a.base.img2img.inputs()?;
    plan.check_image_size(base.width, base.height)?;
    eprintln!(
        "X/Y/Z plot: {} images on a {}x{} grid{}",
        plan.cell_count(),
        plan.x.values.len(),
        plan.y.values.len(),
        if plan.z.values.len() > 1 {
            format!(" ×{} (Z)", plan.z.values.len())
        } else {
            String::new()
        }
    );
    let out = generate_grid(&mut session, &plan, &base, &inputs, true)?;
    if let Some(dir) = &a.save_cells {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for cell in &out.cells {
            let path = dir.join(cell_file_name(&plan, cell.index));
            write_png(
                &path,
                cell.image.width as u32,
                cell.image.height as u32,
                &cell.image.data,
                Some(&cell.infotext.format()),
            )?;
        }
        eprintln!("wrote {} cells to {}", out.cells.len(), dir.display());
    }
    write_png(
        &a.base.output,
        out.image.width as u32,
        out.image.height as u32,
        &out.image.data,
        Some(&out.infotext.format()),
    )?;
    eprintln!(
        "wrote {} ({}x{})",
        a.base.output.display(),
        out.image.width,
        out.image.height
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use easel_candle::CandleBackend;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        grid: GridArgs,
    }

    fn args(extra: &[&str]) -> GridArgs {
        let mut argv = vec!["easel-grid"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("flags parse").grid
    }

    fn base_args() -> Vec<&'static str> {
        vec![
            "-p",
            "a cat",
            "--steps",
            "2",
            "--size",
            "64x64",
            "--seed",
            "7",
            "--sampler",
            "Euler",
        ]
    }

    #[test]
    fn flags_parse_with_negative_and_quoted_values() {
        let mut v = base_args();
        v.extend([
            "--x-type",
            "Seed",
            "--x-values",
            "-1, 5",
            "--y-type",
            "cfg",
            "--y-values",
            "1-2",
        ]);
        let a = args(&v);
        let plan = plan_from_args(&a).unwrap();
        assert_eq!(plan.x.values.len(), 2);
        assert_ne!(plan.x.values[0], AxisValue::Int(-1));
        assert_eq!(
            plan.y.values,
            [AxisValue::Float(1.0), AxisValue::Float(2.0)]
        );
    }

    #[test]
    fn cell_settings_apply_every_axis() {
        let mut v = base_args();
        v.extend([
            "--x-type",
            "Prompt S/R",
            "--x-values",
            "cat,dog",
            "--y-type",
            "steps",
            "--y-values",
            "2-3",
            "--z-type",
            "Clip skip",
            "--z-values",
            "1,2",
        ]);
        let a = args(&v);
        let plan = plan_from_args(&a).unwrap();
        let base = a.base.settings().unwrap();
        let s = cell_settings(&plan, &base, CellIndex { x: 1, y: 1, z: 1 }).unwrap();
        assert_eq!(
            (s.prompt.as_str(), s.steps, s.clip_skip, s.seed),
            ("a dog", 3, 2, 7)
        );
    }

    #[test]
    fn unknown_hypernetwork_lists_the_available_ones() {
        let mut v = base_args();
        v.extend(["--x-type", "Hypernetwork", "--x-values", "None, nosuchnet"]);
        let a = args(&v);
        let plan = plan_from_args(&a).unwrap();
        let base = a.base.settings().unwrap();
        let e = validate(&plan, &base).unwrap_err().to_string();
        assert!(e.contains("`nosuchnet`") && e.contains("tiny-nai"), "{e}");
    }

    #[test]
    fn grid_cells_match_independent_generations() {
        let mut v = base_args();
        v.extend([
            "--x-type",
            "Seed",
            "--x-values",
            "1,2",
            "--y-type",
            "CFG Scale",
            "--y-values",
            "3, 9",
        ]);
        let a = args(&v);
        let plan = plan_from_args(&a).unwrap();
        let base = a.base.settings().unwrap();
        let mut session = Session::new(CandleBackend::cpu());
        let out = generate_grid(
            &mut session,
            &plan,
            &base,
            &GenerationInputs::default(),
            false,
        )
        .unwrap();
        for cell in &out.cells {
            let s = cell_settings(&plan, &base, cell.index).unwrap();
            let mut fresh = Session::new(CandleBackend::cpu());
            let (img, _) = fresh
                .generate_with_inputs(&s, &GenerationInputs::default(), &mut |_| {})
                .unwrap()
                .remove(0);
            assert_eq!(img.rgb, cell.image.data, "cell {:?}", cell.index);
        }
        assert_eq!(out.infotext.get("X Type"), Some("Seed"));
        assert_eq!(out.infotext.get("Fixed X Values"), Some("1, 2"));
    }
}
