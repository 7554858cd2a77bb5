//! `Value`: the data a checkpoint pickle describes, as plain Rust data. The unpickler builds
//! it without running anything; tensors appear as [`TensorRef`]s pointing into storages
//! that are read lazily later.

use super::tensor_store::DType;
use std::fmt::Write as _;

/// A torch storage named by a pickle persistent id: `('storage', <Kind>Storage, key,
/// location, numel)`. In a zip checkpoint its bytes are the entry `<root>/data/<key>`.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: DType,
    /// Device the tensor was saved from (`cpu`, `cuda:0`); irrelevant to reading.
    pub location: String,
    /// Number of elements the storage holds.
    pub numel: u64,
}

/// A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    /// Offset of element [0, 0, ...] in the storage, in elements.
    pub storage_offset: u64,
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub strides: Vec<usize>,
    pub requires_grad: bool,
}

impl TensorRef {
    pub fn dtype(&self) -> DType {
        self.storage.dtype
    }
}

/// One unpickled object.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Insertion-ordered; keys may be any value (hypernetwork files key by ints).
    Dict(Vec<(Value, Value)>),
    Tensor(TensorRef),
    /// A storage not (yet) wrapped in a tensor.
    Storage(StorageRef),
    /// A whitelisted global referenced but not called, e.g. a class used as a dict key.
    Global(String),
    /// An instance of a harmless whitelisted class, kept as data: `class(*args)` then
    /// `__setstate__(state)`.
    Object {
        class: String,
        args: Vec<Value>,
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// Short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Tensor(_) => "tensor",
            Value::Storage(_) => "storage",
            Value::Global(_) => "global",
            Value::Object { .. } => "object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// Elements of a list or tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
    /// Dict lookup by string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Whether a tensor occurs anywhere inside.
    pub fn contains_tensor(&self) -> bool {
        match self {
            Value::Tensor(_) => true,
            Value::List(v) | Value::Tuple(v) => v.iter().any(Value::contains_tensor),
            Value::Dict(d) => d.iter().any(|(_, v)| v.contains_tensor()),
            Value::Object { args, state, .. } => {
                args.iter().any(Value::contains_tensor)
                    || state.as_ref().is_some_and(|s| s.contains_tensor())
            }
            _ => false,
        }
    }

    /// Text used when the value becomes a dotted key segment (`320`, `linear1`).
    pub fn key_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Global(g) => g.clone(),
            _ => self.to_json_text(),
        }
    }

    /// JSON-like text for metadata: numbers, booleans, `null`, strings quoted, lists as
    /// arrays, dicts as objects with stringified keys; tensors, bytes and objects as short
    /// quoted descriptions. Floats keep a decimal point (`1.0`) as Python prints them.
    pub fn to_json_text(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::None => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                if f.is_finite() {
                    let _ = write!(out, "{f:?}");
                } else {
                    // JSON has no literal for these; Python spells them so.
                    let s = if f.is_nan() {
                        "NaN"
                    } else if *f > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    };
                    out.push_str(s);
                }
            }
            Value::Str(s) => write_json_string(out, s),
            Value::Bytes(b) => write_json_string(out, &format!("<{} bytes>", b.len())),
            Value::List(v) | Value::Tuple(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    x.write_json(out);
                }
                out.push(']');
            }
            Value::Dict(d) => {
                out.push('{');
                for (i, (k, v)) in d.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_json_string(out, &k.key_text());
                    out.push_str(": ");
                    v.write_json(out);
                }
                out.push('}');
            }
            Value::Tensor(t) => write_json_string(
                out,
                &format!("<tensor {} {:?}>", t.dtype().safetensors_name(), t.shape),
            ),
            Value::Storage(s) => write_json_string(
                out,
                &format!("<storage {} x{}>", s.dtype.safetensors_name(), s.numel),
            ),
            Value::Global(g) => write_json_string(out, &format!("<{g}>")),
            Value::Object { class, .. } => write_json_string(out, &format!("<{class} object>")),
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_of_metadata_values() {
        let v = Value::List(vec![Value::Float(1.0), Value::Float(2.5), Value::Int(-3)]);
        assert_eq!(v.to_json_text(), "[1.0, 2.5, -3]");
        let d = Value::Dict(vec![
            (Value::Int(320), Value::Bool(true)),
            (Value::Str("a\"b".into()), Value::None),
        ]);
        assert_eq!(d.to_json_text(), r#"{"320": true, "a\"b": null}"#);
        assert_eq!(Value::Str("x".into()).key_text(), "x");
        assert_eq!(Value::Int(640).key_text(), "640");
    }
}
