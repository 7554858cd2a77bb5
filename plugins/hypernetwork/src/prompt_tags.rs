//! `<hypernet:name:strength>` in a prompt, and `--hypernet name[:strength]` on the command
//! line.
//!
//! A1111 finds extra-network tags with the pattern `<(\w+):([^>]+)>`, scanning left to
//! right; each tag is removed from the prompt text (replaced by nothing: the surrounding
//! text, commas and spaces included, stays as it is) and its arguments are split on `:`.
//! For `hypernet` tags the first argument is the name and the second, if any, the strength
//! (default 1.0).

use easel_core::{Error, Result};

/// One `<kind:arg:arg…>` tag of any kind (`hypernet`, `lora`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraNetworkTag {
    pub kind: String,
    /// The text after the first `:`, split on `:`.
    pub args: Vec<String>,
    /// The tag as written, for messages.
    pub text: String,
}

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

/// Python's `\w` for str patterns: letters, digits (any script) and `_`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Matches `<(\w+):([^>]+)>` at the start of `s`; returns (kind, args text, byte length).
fn match_tag(s: &str) -> Option<(&str, &str, usize)> {
    let rest = s.strip_prefix('<')?;
    let kind_len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
    if kind_len == 0 {
        return None;
    }
    let after_kind = rest[kind_len..].strip_prefix(':')?;
    let args_len = after_kind.find('>')?;
    if args_len == 0 {
        return None;
    }
    let total = 1 + kind_len + 1 + args_len + 1;
    Some((&rest[..kind_len], &after_kind[..args_len], total))
}

/// Removes every extra-network tag for which `keep_kind(kind)` holds, returning the prompt
/// without them and the tags in order.
fn extract(prompt: &str, take: &dyn Fn(&str) -> bool) -> (String, Vec<ExtraNetworkTag>) {
    let mut out = String::with_capacity(prompt.len());
    let mut tags = Vec::new();
    let mut i = 0;
    while i < prompt.len() {
        let rest = &prompt[i..];
        if let Some((kind, args, len)) = match_tag(rest) {
            if take(kind) {
                tags.push(ExtraNetworkTag {
                    kind: kind.to_string(),
                    args: args.split(':').map(str::to_string).collect(),
                    text: rest[..len].to_string(),
                });
                i += len;
                continue;
            }
            // A tag of another kind stays, and scanning resumes after it as the regex would.
            out.push_str(&rest[..len]);
            i += len;
            continue;
        }
        let c = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..c]);
        i += c;
    }
    (out, tags)
}

/// All extra-network tags (`<kind:args>`, any kind) removed, as A1111 conditions on the
/// prompt; the tags in order of appearance.
pub fn parse_extra_networks(prompt: &str) -> (String, Vec<ExtraNetworkTag>) {
    extract(prompt, &|_| true)
}

/// Only the `<hypernet:…>` tags removed (tags of other kinds stay for their own handler);
/// the requested hypernetworks in order of appearance. A tag whose strength is not a
/// number is an error naming the tag.
pub fn extract_hypernet_tags(prompt: &str) -> Result<(String, Vec<HypernetRequest>)> {
    let (cleaned, tags) = extract(prompt, &|kind| kind == "hypernet");
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
