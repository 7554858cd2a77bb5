//! The LDM `.yaml` config that sits beside a checkpoint (`final-pruned.yaml`). Only the
//! numbers that shape the networks and the schedule are read; `target:` class names are
//! informational and never imported or executed.

use crate::error::{Error, Result};
use crate::nn::config::check_schedule;
use crate::nn::{UNetConfig, VaeConfig};
use serde_yaml::Value;
use std::path::Path;

/// Largest `.yaml` config read (the SD configs are about 2 KB).
pub const MAX_YAML_BYTES: usize = 256 * 1024;

/// What a sidecar yaml says. `None` fields were absent and fall back to shape inference
/// or SD1.x defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LdmYaml {
    pub unet: Option<UNetConfig>,
    pub vae: Option<VaeConfig>,
    pub scale_factor: Option<f32>,
    pub use_ema: Option<bool>,
    pub linear_start: Option<f64>,
    pub linear_end: Option<f64>,
    pub timesteps: Option<usize>,
}

impl LdmYaml {
    pub fn read(path: &Path) -> Result<Self> {
        let (file, meta) = crate::io::open_regular_file(path)?;
        if meta.len() > MAX_YAML_BYTES as u64 {
            return Err(Error::format(
                path.display().to_string(),
                format!(
                    "{} bytes is larger than any LDM config ({MAX_YAML_BYTES} bytes)",
                    meta.len()
                ),
            ));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_YAML_BYTES as u64),
            &mut text,
        )
        .map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse yaml text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        // A real config is a few KB; a bound keeps a hostile one from costing parse time.
        if text.len() > MAX_YAML_BYTES {
            return Err(Error::format(
                file,
                format!(
                    "{} bytes is larger than any LDM config ({MAX_YAML_BYTES} bytes)",
                    text.len()
                ),
            ));
        }
        if let Some(line) = flow_nesting_beyond(text, MAX_FLOW_NESTING) {
            return Err(Error::format(
                file,
                format!(
                    "line {line}: `[`/`{{` brackets nest deeper than {MAX_FLOW_NESTING} levels"
                ),
            ));
        }
        let root: Value = serde_yaml::from_str(text)
            .map_err(|e| Error::format(file, format!("invalid YAML: {e}")))?;
        let params = root
            .get("model")
            .and_then(|m| m.get("params"))
            .ok_or_else(|| Error::format(file, "no `model.params` section (not an LDM config?)"))?;
        let bad = |key: &str, why: &str| Error::format(file, format!("`{key}`: {why}"));

        let unet =
            match params.get("unet_config").and_then(|u| u.get("params")) {
                Some(u) => Some(unet_from(u).map_err(|(k, why)| {
                    bad(&format!("model.params.unet_config.params.{k}"), &why)
                })?),
                None => None,
            };
        let vae = match params
            .get("first_stage_config")
            .and_then(|f| f.get("params"))
        {
            Some(f) => Some(vae_from(f).map_err(|(k, why)| {
                bad(&format!("model.params.first_stage_config.params.{k}"), &why)
            })?),
            None => None,
        };
        if let Some(u) = &unet {
            u.check()
                .map_err(|(k, why)| bad(&format!("model.params.unet_config.params.{k}"), &why))?;
        }
        if let Some(v) = &vae {
            v.check().map_err(|(k, why)| {
                let k = match k.as_str() {
                    "embed_dim" => k,
                    _ => format!("ddconfig.{k}"),
                };
                bad(&format!("model.params.first_stage_config.params.{k}"), &why)
            })?;
        }
        let number = |key: &str| -> Result<Option<f64>> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| bad(&format!("model.params.{key}"), "expected a number")),
            }
        };
        let timesteps = match params.get("timesteps") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|t| usize::try_from(t).ok())
                    .ok_or_else(|| {
                        bad("model.params.timesteps", "expected a non-negative integer")
                    })?,
            ),
        };
        let parsed = Self {
            unet,
            vae,
            scale_factor: number("scale_factor")?.map(|v| v as f32),
            use_ema: params.get("use_ema").and_then(Value::as_bool),
            linear_start: number("linear_start")?,
            linear_end: number("linear_end")?,
            timesteps,
        };
        // Absent values take SD1.x's, so a partial yaml is checked as it will be used.
        check_schedule(
            parsed.timesteps.unwrap_or(1000),
            parsed.linear_start.unwrap_or(0.00085),
            parsed.linear_end.unwrap_or(0.012),
            parsed.scale_factor.unwrap_or(0.18215),
        )
        .map_err(|(k, why)| bad(&format!("model.params.{k}"), &why))?;
        Ok(parsed)
    }
}

/// Deepest `[`/`{` nesting accepted (an LDM config uses 1); the YAML parser would reject
/// deeper text too, but only after work that grows with the square of the depth.
const MAX_FLOW_NESTING: usize = 32;

/// The 1-based line where `[`/`{` brackets (outside quotes and comments) first nest deeper
/// than `limit`, if they do.
fn flow_nesting_beyond(text: &str, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > limit {
                        return Some(i + 1);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

type FieldResult<T> = std::result::Result<T, (String, String)>;

fn usize_of(v: &Value, key: &str) -> FieldResult<Option<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| (key.to_string(), "expected a non-negative integer".into())),
    }
}

fn list_of(v: &Value, key: &str) -> FieldResult<Option<Vec<usize>>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| i.as_u64().map(|n| n as usize))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| (key.to_string(), "expected a list of integers".into())),
        Some(_) => Err((key.to_string(), "expected a list".into())),
    }
}

fn unet_from(u: &Value) -> FieldResult<UNetConfig> {
    let d = UNetConfig::sd15();
    let num_head_channels = match usize_of(u, "num_head_channels")? {
        Some(n) if n > 0 => Some(n),
        _ => None,
    };
    let num_heads = match u.get("num_heads").and_then(Value::as_i64) {
        Some(n) if n > 0 => n as usize,
        _ => d.num_heads,
    };
    Ok(UNetConfig {
        in_channels: usize_of(u, "in_channels")?.unwrap_or(d.in_channels),
        out_channels: usize_of(u, "out_channels")?.unwrap_or(d.out_channels),
        model_channels: usize_of(u, "model_channels")?.unwrap_or(d.model_channels),
        attention_resolutions: list_of(u, "attention_resolutions")?
            .unwrap_or(d.attention_resolutions),
        num_res_blocks: usize_of(u, "num_res_blocks")?.unwrap_or(d.num_res_blocks),
        channel_mult: list_of(u, "channel_mult")?.unwrap_or(d.channel_mult),
        num_heads,
        num_head_channels,
        transformer_depth: usize_of(u, "transformer_depth")?.unwrap_or(d.transformer_depth),
        context_dim: usize_of(u, "context_dim")?.unwrap_or(d.context_dim),
        use_linear_in_transformer: u
            .get("use_linear_in_transformer")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn vae_from(f: &Value) -> FieldResult<VaeConfig> {
    let d = VaeConfig::sd15();
    let dd = f
        .get("ddconfig")
        .ok_or_else(|| ("ddconfig".to_string(), "missing".to_string()))?;
    let sub = |r: FieldResult<Option<usize>>| r.map_err(|(k, w)| (format!("ddconfig.{k}"), w));
    Ok(VaeConfig {
        ch: sub(usize_of(dd, "ch"))?.unwrap_or(d.ch),
        ch_mult: list_of(dd, "ch_mult")
            .map_err(|(k, w)| (format!("ddconfig.{k}"), w))?
            .unwrap_or(d.ch_mult),
        num_res_blocks: sub(usize_of(dd, "num_res_blocks"))?.unwrap_or(d.num_res_blocks),
        in_channels: sub(usize_of(dd, "in_channels"))?.unwrap_or(d.in_channels),
        out_ch: sub(usize_of(dd, "out_ch"))?.unwrap_or(d.out_ch),
        z_channels: sub(usize_of(dd, "z_channels"))?.unwrap_or(d.z_channels),
        embed_dim: usize_of(f, "embed_dim")?.unwrap_or(d.embed_dim),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "model:\n  base_learning_rate: 1.0e-04\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n  params:\n    linear_start: 0.00085\n    linear_end: 0.0120\n    timesteps: 1000\n    scale_factor: 0.18215\n    use_ema: False\n    unet_config:\n      target: ldm.modules.diffusionmodules.openaimodel.UNetModel\n      params:\n        image_size: 32\n        in_channels: 4\n        out_channels: 4\n        model_channels: 320\n        attention_resolutions: [ 4, 2, 1 ]\n        num_res_blocks: 2\n        channel_mult: [ 1, 2, 4, 4 ]\n        num_heads: 8\n        use_spatial_transformer: True\n        transformer_depth: 1\n        context_dim: 768\n    first_stage_config:\n      target: ldm.models.autoencoder.AutoencoderKL\n      params:\n        embed_dim: 4\n        ddconfig:\n          double_z: true\n          z_channels: 4\n          in_channels: 3\n          out_ch: 3\n          ch: 128\n          ch_mult: [1, 2, 4, 4]\n          num_res_blocks: 2\n";

    #[test]
    fn v1_inference_config_is_sd15() {
        let y = LdmYaml::parse(V1, "v1.yaml").unwrap();
        assert_eq!(y.unet, Some(UNetConfig::sd15()));
        assert_eq!(y.vae, Some(VaeConfig::sd15()));
        assert_eq!(y.use_ema, Some(false));
        assert_eq!(y.scale_factor, Some(0.18215));
        assert_eq!(y.timesteps, Some(1000));
    }

    #[test]
    fn bad_yaml_names_file_and_key() {
        let e = LdmYaml::parse("model: [", "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.yaml"), "{e}");
        let bad = V1.replace(
            "num_res_blocks: 2\n        channel_mult",
            "num_res_blocks: two\n        channel_mult",
        );
        let e = LdmYaml::parse(&bad, "y.yaml").unwrap_err().to_string();
        assert!(e.contains("unet_config.params.num_res_blocks"), "{e}");
        let e = LdmYaml::parse("foo: 1", "z.yaml").unwrap_err().to_string();
        assert!(e.contains("model.params"), "{e}");
    }

    #[test]
    fn hostile_schedule_and_widths_are_refused_naming_file_and_key() {
        let cases = [
            ("timesteps: 1000", "timesteps: 0", "model.params.timesteps"),
            ("timesteps: 1000", "timesteps: 1", "model.params.timesteps"),
            (
                "timesteps: 1000",
                "timesteps: 4611686018427387904",
                "model.params.timesteps",
            ),
            (
                "timesteps: 1000",
                "timesteps: 1000000000000",
                "model.params.timesteps",
            ),
            ("timesteps: 1000", "timesteps: -3", "model.params.timesteps"),
            (
                "linear_start: 0.00085",
                "linear_start: .nan",
                "model.params.linear_start",
            ),
            (
                "linear_end: 0.0120",
                "linear_end: 0.0001",
                "model.params.linear_start",
            ),
            (
                "scale_factor: 0.18215",
                "scale_factor: 0",
                "model.params.scale_factor",
            ),
            (
                "model_channels: 320",
                "model_channels: 0",
                "unet_config.params.model_channels",
            ),
            (
                "model_channels: 320",
                "model_channels: 100",
                "unet_config.params.model_channels",
            ),
            (
                "channel_mult: [ 1, 2, 4, 4 ]",
                "channel_mult: [ 1, 0 ]",
                "unet_config.params.channel_mult",
            ),
            (
                "channel_mult: [ 1, 2, 4, 4 ]",
                "channel_mult: [ 1, 100000000000 ]",
                "unet_config.params.channel_mult",
            ),
            (
                "num_heads: 8",
                "num_heads: 7",
                "unet_config.params.num_heads",
            ),
            (
                "context_dim: 768",
                "context_dim: 0",
                "unet_config.params.context_dim",
            ),
            ("ch: 128", "ch: 0", "first_stage_config.params.ddconfig.ch"),
            (
                "z_channels: 4",
                "z_channels: 0",
                "first_stage_config.params.ddconfig.z_channels",
            ),
        ];
        let nested = format!("model:\n  params: {}{}", "[".repeat(5000), "]".repeat(5000));
        let e = LdmYaml::parse(&nested, "deep.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deep.yaml") && e.contains("nest deeper than 32"),
            "{e}"
        );
        for (from, to, key) in cases {
            assert!(V1.contains(from), "{from}");
            let text = V1.replace(from, to);
            let e = LdmYaml::parse(&text, "bad.yaml").unwrap_err().to_string();
            assert!(e.contains("bad.yaml") && e.contains(key), "{to}: {e}");
        }
    }
}
