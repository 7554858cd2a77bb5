//! Turns a checkpoint's object tree into the flat view a [`TensorStore`](super::TensorStore)
//! holds: tensors under dotted names, everything else as metadata text.
//!
//! Training checkpoints wrap the weights as `{"state_dict": {...}, "global_step": ...}`;
//! the wrapper is removed so keys read `model.diffusion_model...` as in the LDM layout.
//! Nested containers join their keys with dots, so a hypernetwork file
//! `{320: [module_a, module_b]}` yields `320.0.linear1.weight`, `320.1.linear1.weight`, ...

use super::value::{TensorRef, Value};
use std::collections::BTreeMap;

/// Tensors by dotted name (in tree order) and metadata text by dotted name.
///
/// Metadata text: strings as they are, every other value as JSON-like text (`5`, `1.0`,
/// `true`, `[1, 2, 1]`). Tensors outside `state_dict` (optimizer states of a training
/// checkpoint) are left out when the wrapper is removed.
pub fn flatten_checkpoint(root: &Value) -> (Vec<(String, TensorRef)>, BTreeMap<String, String>) {
    let mut out = Flat::default();
    match root.get("state_dict") {
        Some(sd @ Value::Dict(_)) => {
            out.walk(sd, "", true);
            for (k, v) in root.as_dict().unwrap_or_default() {
                if k.as_str() != Some("state_dict") {
                    out.walk(v, &k.key_text(), false);
                }
            }
        }
        _ => out.walk(root, "", true),
    }
    (out.tensors, out.metadata)
}

#[derive(Default)]
struct Flat {
    tensors: Vec<(String, TensorRef)>,
    metadata: BTreeMap<String, String>,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Flat {
    fn walk(&mut self, v: &Value, prefix: &str, keep_tensors: bool) {
        match v {
            Value::Tensor(t) => {
                if keep_tensors {
                    self.tensors.push((prefix.to_string(), t.clone()));
                }
            }
            Value::Dict(d) => {
                for (k, v) in d {
                    self.walk(v, &join(prefix, &k.key_text()), keep_tensors);
                }
            }
            Value::List(items) | Value::Tuple(items) if v.contains_tensor() => {
                for (i, x) in items.iter().enumerate() {
                    self.walk(x, &join(prefix, &i.to_string()), keep_tensors);
                }
            }
            Value::Str(s) => {
                self.metadata.insert(prefix.to_string(), s.clone());
            }
            other => {
                self.metadata
                    .insert(prefix.to_string(), other.to_json_text());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::value::StorageRef;
    use crate::formats::DType;

    fn tensor(key: &str) -> Value {
        Value::Tensor(TensorRef {
            storage: StorageRef {
                key: key.into(),
                dtype: DType::F32,
                location: "cpu".into(),
                numel: 1,
            },
            storage_offset: 0,
            shape: vec![1],
            strides: vec![1],
            requires_grad: false,
        })
    }
    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn unwraps_state_dict_and_keeps_scalars_as_metadata() {
        let root = Value::Dict(vec![
            (
                s("state_dict"),
                Value::Dict(vec![(s("model.w"), tensor("0"))]),
            ),
            (s("global_step"), Value::Int(7)),
            (s("optimizer_states"), Value::List(vec![tensor("9")])),
        ]);
        let (t, m) = flatten_checkpoint(&root);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, "model.w");
        assert_eq!(m.get("global_step").map(String::as_str), Some("7"));
    }

    #[test]
    fn int_keys_and_lists_become_dotted_names() {
        let module = Value::Dict(vec![(s("linear1.weight"), tensor("0"))]);
        let root = Value::Dict(vec![
            (Value::Int(320), Value::List(vec![module.clone(), module])),
            (s("name"), s("anime")),
            (
                s("layer_structure"),
                Value::List(vec![
                    Value::Float(1.0),
                    Value::Float(2.0),
                    Value::Float(1.0),
                ]),
            ),
        ]);
        let (t, m) = flatten_checkpoint(&root);
        let names: Vec<_> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["320.0.linear1.weight", "320.1.linear1.weight"]);
        assert_eq!(m["name"], "anime");
        assert_eq!(m["layer_structure"], "[1.0, 2.0, 1.0]");
    }
}
