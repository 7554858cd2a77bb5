//! Extra-network tags (`<lora:name:0.8>`, `<hypernet:anime>`, `<lyco:…>`, any `<kind:args>`)
//! read out of a prompt as A1111's `extra_networks.parse_prompt` reads them.
//!
//! A1111 finds tags with the pattern `<(\w+):([^>]+)>`, scanning left to right, and replaces
//! each with nothing (the text around it, commas and spaces included, stays as it is); the
//! arguments are the text after the first `:` split on `:`. Every tag is removed from the
//! positive prompt, whatever its kind: a kind nobody handles is skipped with a message, never
//! encoded as text. The negative prompt is not parsed (A1111 encodes tags there as text).
//!
//! The scanner is written out by hand rather than with a regex crate: it is a few lines, and
//! Python's `\w` (Unicode letters, digits and `_`) is spelled exactly here.

/// One `<kind:arg:arg…>` tag.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraNetworkTag {
    pub kind: String,
    /// The text after the first `:`, split on `:` (A1111's `items`).
    pub args: Vec<String>,
    /// The tag as written, for messages.
    pub text: String,
}

impl ExtraNetworkTag {
    /// A1111's `ExtraNetworkParams.positional`: the arguments that are not `key=value`
    /// (an argument with exactly one `=` is named).
    pub fn positional(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter(|a| a.matches('=').count() != 1)
            .map(String::as_str)
            .collect()
    }

    /// A1111's `ExtraNetworkParams.named[key]`: the value of the last `key=value` argument.
    pub fn named(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .filter(|a| a.matches('=').count() == 1)
            .filter_map(|a| a.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
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

/// Removes every tag whose kind `take` accepts, returning the prompt without them and those
/// tags in order. A tag of another kind stays as written, and scanning resumes after it as
/// the regex would, so taking kinds in several passes removes exactly what one pass would.
pub fn extract_extra_networks(
    prompt: &str,
    take: &dyn Fn(&str) -> bool,
) -> (String, Vec<ExtraNetworkTag>) {
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
            } else {
                out.push_str(&rest[..len]);
            }
            i += len;
            continue;
        }
        let c = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..c]);
        i += c;
    }
    (out, tags)
}

/// Every tag removed, as A1111 conditions on the prompt; the tags in order of appearance.
pub fn parse_extra_networks(prompt: &str) -> (String, Vec<ExtraNetworkTag>) {
    extract_extra_networks(prompt, &|_| true)
}

/// The kinds among `tags` in order of first appearance (A1111 activates each kind once, with
/// all its tags, in this order).
pub fn kinds_in_order(tags: &[ExtraNetworkTag]) -> Vec<&str> {
    let mut kinds: Vec<&str> = Vec::new();
    for t in tags {
        if !kinds.contains(&t.kind.as_str()) {
            kinds.push(&t.kind);
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_kinds_are_removed_in_one_pass_or_several() {
        let prompt = "x <lora:style:0.7>, <hypernet:anime_2:1.2><foo:bar>";
        let (p, tags) = parse_extra_networks(prompt);
        assert_eq!(p, "x , ");
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].kind, "lora");
        assert_eq!(tags[0].args, vec!["style", "0.7"]);
        let (p1, hn) = extract_extra_networks(prompt, &|k| k == "hypernet");
        assert_eq!(p1, "x <lora:style:0.7>, <foo:bar>");
        assert_eq!(hn[0].text, "<hypernet:anime_2:1.2>");
        assert_eq!(parse_extra_networks(&p1).0, p);
    }

    #[test]
    fn regex_edge_cases() {
        let (p, tags) = parse_extra_networks("<a:<hypernet:x> y");
        assert_eq!(p, " y");
        assert_eq!(tags[0].args, vec!["<hypernet", "x"]);
        for s in ["<:x>", "<lora>", "<lora:>", "<lora:x", "< lora:x>"] {
            assert_eq!(parse_extra_networks(s), (s.to_string(), vec![]), "{s}");
        }
        let (p, tags) = parse_extra_networks("猫<lora:ü:0.25>é");
        assert_eq!(p, "猫é");
        assert_eq!(tags[0].args, vec!["ü", "0.25"]);
    }

    #[test]
    fn positional_and_named_arguments() {
        let (_, tags) = parse_extra_networks("<lora:a:0.5:unet=0.2:x=y=z:te=1:te=2>");
        let t = &tags[0];
        assert_eq!(t.positional(), vec!["a", "0.5", "x=y=z"]);
        assert_eq!(t.named("unet"), Some("0.2"));
        assert_eq!(t.named("te"), Some("2"));
        assert_eq!(t.named("dyn"), None);
        assert_eq!(kinds_in_order(&tags), vec!["lora"]);
    }
}
