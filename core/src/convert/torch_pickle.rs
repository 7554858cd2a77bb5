//! Writes the `data.pkl` of a PyTorch checkpoint: a protocol-2 pickle of
//! `{"state_dict": OrderedDict(name -> tensor), <extra scalars>}` in which every tensor is
//! `torch._utils._rebuild_tensor_v2(storage, 0, shape, contiguous strides, False,
//! OrderedDict())` over its own storage, named by the persistent id
//! `('storage', torch.<Kind>Storage, '<index>', 'cpu', numel)`. These globals are exactly
//! the ones `torch.load(..., weights_only=True)` and A1111's restricted unpickler allow.

use crate::formats::{DType, TensorInfo};
use std::collections::HashMap;

/// A scalar stored beside the state dict (e.g. `global_step`).
#[derive(Clone, Debug, PartialEq)]
pub enum PickleScalar {
    Int(i64),
    Float(f64),
    Str(String),
}

impl PickleScalar {
    /// Maps flattened metadata text back to a value: canonical integers and decimal floats
    /// become numbers, anything else stays text.
    pub fn from_text(text: &str) -> Self {
        if let Ok(i) = text.parse::<i64>() {
            if i.to_string() == text {
                return PickleScalar::Int(i);
            }
        }
        let looks_decimal = text.contains('.')
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
        if looks_decimal {
            if let Ok(f) = text.parse::<f64>() {
                return PickleScalar::Float(f);
            }
        }
        PickleScalar::Str(text.to_string())
    }
}

/// One tensor of the state dict; its storage key is its index in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct PickledTensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl PickledTensor {
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
    pub fn byte_len(&self) -> u64 {
        self.numel() * self.dtype.size() as u64
    }
}

/// torch's storage class for a dtype.
pub fn storage_class(dtype: DType) -> &'static str {
    match dtype {
        DType::F64 => "DoubleStorage",
        DType::F32 => "FloatStorage",
        DType::F16 => "HalfStorage",
        DType::BF16 => "BFloat16Storage",
        DType::I64 => "LongStorage",
        DType::I32 => "IntStorage",
        DType::I16 => "ShortStorage",
        DType::I8 => "CharStorage",
        DType::U8 => "ByteStorage",
        DType::Bool => "BoolStorage",
    }
}

/// The pickle bytes for `tensors` (storage keys `"0"`, `"1"`, ... in order) and `extras`
/// (top-level entries after `state_dict`).
pub fn state_dict_pickle(tensors: &[PickledTensor], extras: &[(String, PickleScalar)]) -> Vec<u8> {
    let mut p = Pickler::default();
    p.out.extend_from_slice(&[0x80, 2]); // PROTO 2
    p.out.push(b'}'); // EMPTY_DICT: the top level
    p.out.push(b'('); // MARK
    p.string("state_dict");
    p.call_no_args("collections", "OrderedDict");
    if !tensors.is_empty() {
        // Items in batches, as Python's pickler emits them (any batch size loads).
        for (batch_no, batch) in tensors.chunks(1000).enumerate() {
            let first = batch_no * 1000;
            p.out.push(b'(');
            for (i, t) in batch.iter().enumerate() {
                p.string(&t.name);
                p.tensor(first + i, t);
            }
            p.out.push(b'u'); // SETITEMS
        }
    }
    for (key, value) in extras {
        p.string(key);
        match value {
            PickleScalar::Int(i) => p.int(*i),
            PickleScalar::Float(f) => {
                p.out.push(b'G'); // BINFLOAT, big-endian
                p.out.extend_from_slice(&f.to_be_bytes());
            }
            PickleScalar::Str(s) => p.string(s),
        }
    }
    p.out.push(b'u'); // SETITEMS on the top-level dict
    p.out.push(b'.'); // STOP
    p.out
}

/// A pickle encoder for the few value kinds above; globals and repeated strings are
/// memoized as Python's pickler does, so 1000 tensors don't repeat the same names.
#[derive(Default)]
struct Pickler {
    out: Vec<u8>,
    memo: HashMap<String, u32>,
}

impl Pickler {
    fn put(&mut self, key: String) {
        let slot = self.memo.len() as u32;
        if slot < 256 {
            self.out.extend_from_slice(&[b'q', slot as u8]); // BINPUT
        } else {
            self.out.push(b'r'); // LONG_BINPUT
            self.out.extend_from_slice(&slot.to_le_bytes());
        }
        self.memo.insert(key, slot);
    }
    /// Pushes a memoized object if `key` was seen, returning whether it was.
    fn get(&mut self, key: &str) -> bool {
        let Some(&slot) = self.memo.get(key) else {
            return false;
        };
        if slot < 256 {
            self.out.extend_from_slice(&[b'h', slot as u8]); // BINGET
        } else {
            self.out.push(b'j'); // LONG_BINGET
            self.out.extend_from_slice(&slot.to_le_bytes());
        }
        true
    }
    fn global(&mut self, module: &str, name: &str) {
        let key = format!("global {module}.{name}");
        if !self.get(&key) {
            self.out.push(b'c'); // GLOBAL
            self.out.extend_from_slice(module.as_bytes());
            self.out.push(b'\n');
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'\n');
            self.put(key);
        }
    }
    /// `module.name()`.
    fn call_no_args(&mut self, module: &str, name: &str) {
        self.global(module, name);
        self.out.push(b')'); // EMPTY_TUPLE
        self.out.push(b'R'); // REDUCE
    }
    fn string(&mut self, s: &str) {
        self.out.push(b'X'); // BINUNICODE
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }
    /// A string used many times (`storage`, `cpu`).
    fn shared_string(&mut self, s: &str) {
        let key = format!("str {s}");
        if !self.get(&key) {
            self.string(s);
            self.put(key);
        }
    }
    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]); // BININT1
        } else if (0..65536).contains(&v) {
            self.out.push(b'M'); // BININT2
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J'); // BININT
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            // LONG1: minimal little-endian two's complement.
            let bytes = v.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let top = bytes[n - 1];
                let next_sign = bytes[n - 2] & 0x80;
                if (top == 0 && next_sign == 0) || (top == 0xFF && next_sign != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[0x8a, n as u8]);
            self.out.extend_from_slice(&bytes[..n]);
        }
    }
    fn int_tuple(&mut self, values: &[usize]) {
        match values.len() {
            0 => self.out.push(b')'),
            1..=3 => {
                for &v in values {
                    self.int(v as i64);
                }
                self.out.push([0x85, 0x86, 0x87][values.len() - 1]); // TUPLE1..3
            }
            _ => {
                self.out.push(b'(');
                for &v in values {
                    self.int(v as i64);
                }
                self.out.push(b't'); // TUPLE
            }
        }
    }
    fn tensor(&mut self, index: usize, t: &PickledTensor) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        // Persistent id of the storage.
        self.out.push(b'(');
        self.shared_string("storage");
        self.global("torch", storage_class(t.dtype));
        self.string(&index.to_string());
        self.shared_string("cpu");
        self.int(t.numel() as i64);
        self.out.push(b't');
        self.out.push(b'Q'); // BINPERSID
        self.int(0); // storage offset
        self.int_tuple(&t.shape);
        self.int_tuple(&TensorInfo::contiguous_strides(&t.shape));
        self.out.push(0x89); // NEWFALSE: requires_grad
        self.call_no_args("collections", "OrderedDict"); // backward hooks
        self.out.push(b't');
        self.out.push(b'R');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::pickle::unpickle;
    use crate::formats::Value;

    #[test]
    fn reads_back_with_the_restricted_unpickler() {
        let tensors: Vec<PickledTensor> = (0..1203)
            .map(|i| PickledTensor {
                name: format!("t{i}"),
                dtype: if i % 2 == 0 { DType::F16 } else { DType::I64 },
                shape: vec![i % 5 + 1, 3, 1, 70_000 * (i % 2)],
            })
            .collect();
        let extras = vec![
            ("global_step".to_string(), PickleScalar::Int(5_000_000_000)),
            ("neg".to_string(), PickleScalar::Int(-129)),
            ("lr".to_string(), PickleScalar::Float(1.5e-6)),
            ("note".to_string(), PickleScalar::Str("hé".into())),
        ];
        let bytes = state_dict_pickle(&tensors, &extras);
        let (v, used) = unpickle(&bytes, "x").unwrap();
        assert_eq!(used, bytes.len());
        let sd = v.get("state_dict").unwrap().as_dict().unwrap();
        assert_eq!(sd.len(), tensors.len());
        for (i, ((k, t), want)) in sd.iter().zip(&tensors).enumerate() {
            assert_eq!(k.as_str(), Some(want.name.as_str()));
            let Value::Tensor(t) = t else {
                panic!("not a tensor")
            };
            assert_eq!(t.storage.key, i.to_string());
            assert_eq!(t.dtype(), want.dtype);
            assert_eq!(t.shape, want.shape);
            assert_eq!(t.strides, TensorInfo::contiguous_strides(&want.shape));
            assert_eq!(t.storage.numel, want.numel());
        }
        assert_eq!(v.get("global_step").unwrap().as_int(), Some(5_000_000_000));
        assert_eq!(v.get("neg").unwrap().as_int(), Some(-129));
        assert_eq!(v.get("lr").unwrap().as_float(), Some(1.5e-6));
        assert_eq!(v.get("note").unwrap().as_str(), Some("hé"));
    }

    #[test]
    fn metadata_text_maps_back_to_numbers_only_when_canonical() {
        assert_eq!(PickleScalar::from_text("4242"), PickleScalar::Int(4242));
        assert_eq!(PickleScalar::from_text("0.5"), PickleScalar::Float(0.5));
        assert_eq!(
            PickleScalar::from_text("007"),
            PickleScalar::Str("007".into())
        );
        assert_eq!(
            PickleScalar::from_text("[1, 2]"),
            PickleScalar::Str("[1, 2]".into())
        );
        assert_eq!(
            PickleScalar::from_text("pt"),
            PickleScalar::Str("pt".into())
        );
    }
}
