//! `<hypernet:name:strength>` in a prompt, and `--hypernet name[:strength]` on the command
//! line.
//!
//! Tags are found by core's A1111 tag parser ([`easel_core::text::extra_networks`]). For
//! `hypernet` tags the first argument is the name and the second, if any, the strength
//! (default 1.0).

use easel_core::text::extract_extra_networks;
pub use easel_core::text::{parse_extra_networks, ExtraNetworkTag};
use easel_core::{Error, Result};

/// A hypernetwork asked for by name, with its strength.
#[derive(Clone, Debug, PartialEq)]
pub struct HypernetRequest {
    pub name: String,
    pub strength: f32,
    /// Whether `name` may be a file path: true for the user's own `--hypernet` flag, false
    /// for prompt tags (and anything else from outside data), which name files in the
    /// models folder only.
    pub path_allowed: bool,
}

impl HypernetRequest {
    /// Parses `--hypernet name[:strength]`. The strength is what follows the last `:` when
    /// that is a number, so names or paths containing `:` (`C:\hn\anime.pt`) still work.
    pub fn parse_cli(arg: &str) -> Result<Self> {
        let (name, strength) = match arg.rsplit_once(':') {
            Some((name, s)) if s.trim().parse::<f32>().is_ok() => (name, parse_strength(s, arg)?),
            _ => (arg, 1.0),
        };
        if name.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "--hypernet `{arg}`: no hypernetwork name"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            strength,
            path_allowed: true,
        })
    }

    /// The file this request names among `entries` (the models folder's hypernetworks);
    /// a path only when [`HypernetRequest::path_allowed`].
    pub fn resolve(
        &self,
        entries: &[crate::library::HypernetworkEntry],
    ) -> Result<crate::library::HypernetworkEntry> {
        if self.path_allowed {
            crate::library::resolve(entries, &self.name)
        } else {
            crate::library::resolve_name(entries, &self.name)
        }
    }
}

fn parse_strength(text: &str, context: &str) -> Result<f32> {
    match text.trim().parse::<f32>() {
        Ok(s) if s.is_finite() => Ok(s),
        _ => Err(Error::Invalid(format!(
            "{context}: hypernetwork strength `{text}` is not a number"
        ))),
    }
}

/// Only the `<hypernet:…>` tags removed (tags of other kinds stay for their own handler);
/// the requested hypernetworks in order of appearance. A tag whose strength is not a
/// number is an error naming the tag.
pub fn extract_hypernet_tags(prompt: &str) -> Result<(String, Vec<HypernetRequest>)> {
    let (cleaned, tags) = extract_extra_networks(prompt, &|kind| kind == "hypernet");
    Ok((cleaned, hypernet_requests(&tags)?))
}

/// The hypernetworks requested by `hypernet` tags among `tags` (others are ignored).
pub fn hypernet_requests(tags: &[ExtraNetworkTag]) -> Result<Vec<HypernetRequest>> {
    tags.iter()
        .filter(|t| t.kind == "hypernet")
        .map(|t| {
            let context = format!("prompt tag `{}`", t.text);
            let name = t.args[0].clone();
            if name.is_empty() {
                return Err(Error::Invalid(format!("{context}: no hypernetwork name")));
            }
            let strength = match t.args.get(1) {
                Some(s) => parse_strength(s, &context)?,
                None => 1.0,
            };
            Ok(HypernetRequest {
                name,
                strength,
                path_allowed: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, strength: f32) -> HypernetRequest {
        HypernetRequest {
            name: name.into(),
            strength,
            path_allowed: false,
        }
    }
    fn flag(name: &str, strength: f32) -> HypernetRequest {
        HypernetRequest {
            path_allowed: true,
            ..req(name, strength)
        }
    }

    #[test]
    fn tags_are_removed_and_read_in_order() {
        let (p, r) =
            extract_hypernet_tags("a cat, <hypernet:anime:0.5> sitting<hypernet:furry>").unwrap();
        assert_eq!(p, "a cat,  sitting");
        assert_eq!(r, vec![req("anime", 0.5), req("furry", 1.0)]);
    }

    #[test]
    fn other_kinds_stay_unless_all_are_parsed() {
        let prompt = "x <lora:style:0.7>, <hypernet:anime_2:1.2>";
        let (p, r) = extract_hypernet_tags(prompt).unwrap();
        assert_eq!(p, "x <lora:style:0.7>, ");
        assert_eq!(r, vec![req("anime_2", 1.2)]);
        let (p, tags) = parse_extra_networks(prompt);
        assert_eq!(p, "x , ");
        assert_eq!(tags[0].kind, "lora");
        assert_eq!(tags[0].args, vec!["style", "0.7"]);
    }

    #[test]
    fn regex_edge_cases_match_a1111() {
        // `[^>]+` may contain `<`: the first `<` starts a tag that runs to the first `>`.
        let (p, tags) = parse_extra_networks("<a:<hypernet:x> y");
        assert_eq!(p, " y");
        assert_eq!(tags[0].kind, "a");
        assert_eq!(tags[0].args, vec!["<hypernet", "x"]);
        // Not tags: no kind, no colon, empty args, unclosed.
        for s in [
            "<:x>",
            "<hypernet>",
            "<hypernet:>",
            "<hypernet:x",
            "< hypernet:x>",
        ] {
            assert_eq!(parse_extra_networks(s), (s.to_string(), vec![]), "{s}");
        }
        // Multi-byte text around tags survives.
        let (p, r) = extract_hypernet_tags("猫<hypernet:ü:0.25>é").unwrap();
        assert_eq!(p, "猫é");
        assert_eq!(r, vec![req("ü", 0.25)]);
    }

    #[test]
    fn bad_strength_is_an_error_naming_the_tag() {
        let err = extract_hypernet_tags("<hypernet:anime:strong>")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<hypernet:anime:strong>") && err.contains("strong"),
            "{err}"
        );
    }

    #[test]
    fn cli_argument() {
        assert_eq!(
            HypernetRequest::parse_cli("anime").unwrap(),
            flag("anime", 1.0)
        );
        assert_eq!(
            HypernetRequest::parse_cli("anime:0.6").unwrap(),
            flag("anime", 0.6)
        );
        assert_eq!(
            HypernetRequest::parse_cli("C:\\hn\\a.pt").unwrap(),
            flag("C:\\hn\\a.pt", 1.0)
        );
        assert_eq!(
            HypernetRequest::parse_cli("C:\\hn\\a.pt:2").unwrap(),
            flag("C:\\hn\\a.pt", 2.0)
        );
        assert!(HypernetRequest::parse_cli(":0.5").is_err());
        assert!(HypernetRequest::parse_cli("").is_err());
    }
}
