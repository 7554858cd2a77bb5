//! What a `<lora:…>` / `<lyco:…>` tag or a `--lora` flag asks for, read as A1111's
//! `ExtraNetworkLora.activate` reads its parameters:
//!
//! - the first positional argument is the name;
//! - `te` = the second positional argument (default 1), then a named `te=` wins;
//! - `unet` = the third positional argument, else `te` (after `te=`), then a named `unet=` wins;
//! - `dyn` = the fourth positional argument, then a named `dyn=` wins (an integer; none by
//!   default).
//!
//! Numbers are read as Python's `float()`/`int()` read them (surrounding spaces allowed).

use easel_core::service::NetworkSetting;
use easel_core::text::ExtraNetworkTag;
use easel_core::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct LoraRequest {
    pub name: String,
    pub te_multiplier: f32,
    pub unet_multiplier: f32,
    pub dyn_dim: Option<i64>,
}

fn float(text: &str, what: &str, tag: &str) -> Result<f32> {
    text.trim()
        .parse::<f32>()
        .map_err(|_| Error::Invalid(format!("`{tag}`: {what} `{text}` is not a number")))
}

impl LoraRequest {
    pub fn from_tag(tag: &ExtraNetworkTag) -> Result<Self> {
        let pos = tag.positional();
        let name = pos.first().copied().unwrap_or_default();
        if name.is_empty() {
            return Err(Error::Invalid(format!("`{}`: no LoRA name", tag.text)));
        }
        let mut te = match pos.get(1) {
            Some(v) => float(v, "multiplier", &tag.text)?,
            None => 1.0,
        };
        if let Some(v) = tag.named("te") {
            te = float(v, "te multiplier", &tag.text)?;
        }
        let mut unet = match pos.get(2) {
            Some(v) => float(v, "unet multiplier", &tag.text)?,
            None => te,
        };
        if let Some(v) = tag.named("unet") {
            unet = float(v, "unet multiplier", &tag.text)?;
        }
        let int = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| Error::Invalid(format!("`{}`: dyn `{v}` is not an integer", tag.text)))
        };
        let mut dyn_dim = match pos.get(3) {
            Some(v) => Some(int(v)?),
            None => None,
        };
        if let Some(v) = tag.named("dyn") {
            dyn_dim = Some(int(v)?);
        }
        Ok(Self {
            name: name.to_string(),
            te_multiplier: te,
            unet_multiplier: unet,
            dyn_dim,
        })
    }

    /// A front end's own request (`--lora NAME[:W]`): one multiplier for both parts.
    pub fn from_setting(s: &NetworkSetting) -> Self {
        Self {
            name: s.name.clone(),
            te_multiplier: s.strength,
            unet_multiplier: s.strength,
            dyn_dim: None,
        }
    }

    /// The tag A1111 would have in its prompt for this request.
    pub fn tag_text(&self) -> String {
        let mut s = format!("<lora:{}:{}", self.name, self.te_multiplier);
        if self.unet_multiplier != self.te_multiplier || self.dyn_dim.is_some() {
            s.push_str(&format!(":{}", self.unet_multiplier));
        }
        if let Some(d) = self.dyn_dim {
            s.push_str(&format!(":{d}"));
        }
        s.push('>');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use easel_core::text::parse_extra_networks;

    fn req(prompt: &str) -> Result<LoraRequest> {
        LoraRequest::from_tag(&parse_extra_networks(prompt).1[0])
    }

    #[test]
    fn multipliers_as_a1111() {
        let r = req("<lora:a>").unwrap();
        assert_eq!(
            (r.te_multiplier, r.unet_multiplier, r.dyn_dim),
            (1.0, 1.0, None)
        );
        let r = req("<lora:a:0.5>").unwrap();
        assert_eq!((r.te_multiplier, r.unet_multiplier), (0.5, 0.5));
        let r = req("<lora:a:0.5:0.25:4>").unwrap();
        assert_eq!(
            (r.te_multiplier, r.unet_multiplier, r.dyn_dim),
            (0.5, 0.25, Some(4))
        );
        let r = req("<lora:a:te=0.3>").unwrap();
        assert_eq!((r.te_multiplier, r.unet_multiplier), (0.3, 0.3));
        let r = req("<lora:a:0.5:unet=0.1:dyn=2>").unwrap();
        assert_eq!(
            (r.te_multiplier, r.unet_multiplier, r.dyn_dim),
            (0.5, 0.1, Some(2))
        );
        assert!(req("<lora:a:strong>")
            .unwrap_err()
            .to_string()
            .contains("strong"));
        assert!(req("<lora:a:1:1:1.5>").is_err());
        assert_eq!(req("<lora:a: 0.5 >").unwrap().te_multiplier, 0.5);
    }

    #[test]
    fn tag_text_round_trips() {
        for t in ["<lora:a:0.5>", "<lora:a:0.5:0.25>", "<lora:a:1:1:4>"] {
            assert_eq!(req(t).unwrap().tag_text(), t);
        }
    }
}
