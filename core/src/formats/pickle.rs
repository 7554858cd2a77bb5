//! A restricted unpickler: reads the pickle opcodes torch emits (protocols 2 to 5) into a
//! [`Value`] tree without executing anything. Every GLOBAL is checked against a short
//! whitelist of tensor-rebuilding functions and harmless data classes; anything else is
//! [`Error::UnsafeGlobal`]. Calls (REDUCE/NEWOBJ) of whitelisted globals are interpreted by
//! hand: `_rebuild_tensor_v2` becomes a [`TensorRef`], `OrderedDict()` a dict, a numpy
//! scalar a number, and any other allowed class an inert [`Value::Object`].
//!
//! Objects are shared while parsing (`Rc`), as pickle's memo requires (a dict is memoized
//! before its items are set), and copied into the tree only at STOP, with a depth limit
//! (self-referencing containers) and a node budget (a small pickle that references one
//! list exponentially often).

use super::tensor_store::DType;
use super::value::{StorageRef, TensorRef, Value};
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting accepted in the resulting tree.
const MAX_DEPTH: usize = 256;
/// Memo slots accepted; real checkpoints use a few per tensor.
const MAX_MEMO: usize = 1 << 24;
/// Highest pickle protocol understood.
const MAX_PROTOCOL: u8 = 5;

/// What a whitelisted global is, which decides how calling it is interpreted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Allowed {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(DType),
    NumpyScalar,
    CodecsEncode,
    Set,
    /// A class whose instances are kept as inert data (numpy dtypes, lightning callbacks),
    /// or a name that is only ever referenced (torch dtypes).
    Inert,
}

/// The whitelist. Storage classes and `_rebuild_*` are what every checkpoint uses; the rest
/// are what real Stable Diffusion training checkpoints carry (the same set A1111 and
/// ComfyUI accept).
fn classify(module: &str, name: &str) -> Option<Allowed> {
    let storage = |d| Some(Allowed::Storage(d));
    match (module, name) {
        ("collections", "OrderedDict") => Some(Allowed::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Allowed::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Allowed::RebuildParameter),
        // A tensor rebuilt from a pickled numpy array (XLA-style saves): kept as inert data,
        // since its values live in the array's pickled bytes, not in a storage record.
        ("torch._utils", "_rebuild_device_tensor_from_numpy") => Some(Allowed::Inert),
        ("torch", "DoubleStorage") => storage(DType::F64),
        ("torch", "FloatStorage") => storage(DType::F32),
        ("torch", "HalfStorage") => storage(DType::F16),
        ("torch", "BFloat16Storage") => storage(DType::BF16),
        ("torch", "LongStorage") => storage(DType::I64),
        ("torch", "IntStorage") => storage(DType::I32),
        ("torch", "ShortStorage") => storage(DType::I16),
        ("torch", "CharStorage") => storage(DType::I8),
        ("torch", "ByteStorage") => storage(DType::U8),
        ("torch", "BoolStorage") => storage(DType::Bool),
        (
            "torch",
            "float64" | "float32" | "float16" | "bfloat16" | "int64" | "int32" | "int16" | "int8"
            | "uint8" | "bool",
        ) => Some(Allowed::Inert),
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => {
            Some(Allowed::NumpyScalar)
        }
        // numpy arrays in training checkpoints (`_reconstruct(ndarray, (0,), b"b")` then a
        // BUILD with the array's state): data, never weights.
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
            Some(Allowed::Inert)
        }
        ("numpy", "dtype" | "ndarray") => Some(Allowed::Inert),
        ("_codecs", "encode") => Some(Allowed::CodecsEncode),
        ("builtins" | "__builtin__", "set") => Some(Allowed::Set),
        ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
        | ("pytorch_lightning.callbacks", "model_checkpoint") => Some(Allowed::Inert),
        // Original textual-inversion embeddings pickle their vectors in a ParameterDict; its
        // state (`_parameters` and empty hook dicts) is kept as data.
        ("torch.nn.modules.container", "ParameterDict") => Some(Allowed::Inert),
        _ => None,
    }
}

/// A dict under construction: entries in insertion order plus an index for the key kinds
/// that can be hashed here, so that re-setting a key replaces it as in Python.
#[derive(Default)]
struct DictItem {
    entries: Vec<(Item, Item)>,
    index: HashMap<HashKey, usize>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum HashKey {
    None,
    /// Python's `True == 1`, so bools share the int key space.
    Int(i64),
    Float(u64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
}

impl DictItem {
    fn set(&mut self, key: Item, value: Item) {
        let hk = match &key {
            Item::None => Some(HashKey::None),
            Item::Bool(b) => Some(HashKey::Int(*b as i64)),
            Item::Int(i) => Some(HashKey::Int(*i)),
            Item::Float(f) => Some(HashKey::Float(f.to_bits())),
            Item::Str(s) => Some(HashKey::Str(s.clone())),
            Item::Bytes(b) => Some(HashKey::Bytes(b.clone())),
            _ => None,
        };
        match hk {
            Some(hk) => match self.index.get(&hk) {
                Some(&i) => self.entries[i].1 = value,
                None => {
                    self.index.insert(hk, self.entries.len());
                    self.entries.push((key, value));
                }
            },
            None => self.entries.push((key, value)),
        }
    }
}

struct ObjectItem {
    class: Rc<str>,
    args: Vec<Item>,
    state: Option<Item>,
}

/// A list's items, shared and mutable (APPEND after MEMOIZE must be seen through the memo).
#[derive(Default)]
struct ListNode(RefCell<Vec<Item>>);

impl std::ops::Deref for ListNode {
    type Target = RefCell<Vec<Item>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// A tuple's items (immutable once built).
struct TupleNode(Vec<Item>);

impl std::ops::Deref for TupleNode {
    type Target = [Item];
    fn deref(&self) -> &[Item] {
        &self.0
    }
}

// Dropping a container drops its children, so a graph nested 100k levels deep would be
// dropped 100k calls deep and overflow the stack — even when the pickle is refused or
// truncated. Every container therefore hands its children to `drop_iteratively`, which
// empties each uniquely owned child before letting it go, so no drop ever recurses more
// than one level.
impl Drop for ListNode {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(self.0.get_mut()));
    }
}
impl Drop for TupleNode {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(&mut self.0));
    }
}
impl Drop for DictItem {
    fn drop(&mut self) {
        let mut work = Vec::with_capacity(self.entries.len() * 2);
        for (k, v) in self.entries.drain(..) {
            work.push(k);
            work.push(v);
        }
        drop_iteratively(work);
    }
}
impl Drop for ObjectItem {
    fn drop(&mut self) {
        let mut work = std::mem::take(&mut self.args);
        work.extend(self.state.take());
        drop_iteratively(work);
    }
}

/// Drops `work` and everything only it owns with a heap work list instead of recursion.
fn drop_iteratively(mut work: Vec<Item>) {
    while let Some(item) = work.pop() {
        match item {
            Item::List(mut rc) => {
                if let Some(node) = Rc::get_mut(&mut rc) {
                    work.append(node.0.get_mut());
                }
            }
            Item::Tuple(mut rc) => {
                if let Some(node) = Rc::get_mut(&mut rc) {
                    work.append(&mut node.0);
                }
            }
            Item::Dict(mut rc) => {
                if let Some(dict) = Rc::get_mut(&mut rc) {
                    for (k, v) in dict.get_mut().entries.drain(..) {
                        work.push(k);
                        work.push(v);
                    }
                }
            }
            Item::Object(mut rc) => {
                if let Some(obj) = Rc::get_mut(&mut rc) {
                    let obj = obj.get_mut();
                    work.append(&mut obj.args);
                    work.extend(obj.state.take());
                }
            }
            _ => {}
        }
        // `rc`, now empty if it was the last owner, is dropped here without recursion.
    }
}

/// Empties every mutable container reachable from `roots`, shared or not, so that
/// self-referencing containers (`l.append(l)`) are freed instead of leaked. Run once the
/// parse is over and the owned [`Value`] (if any) has been copied out.
fn break_cycles(roots: Vec<Item>) {
    let mut seen_tuples: std::collections::HashSet<*const TupleNode> = Default::default();
    let mut work = roots;
    let mut garbage = Vec::new();
    while let Some(item) = work.pop() {
        match &item {
            Item::List(l) => {
                if let Ok(mut v) = l.try_borrow_mut() {
                    work.append(&mut v);
                }
            }
            Item::Tuple(t) if seen_tuples.insert(Rc::as_ptr(t)) => {
                work.extend(t.iter().cloned());
            }
            Item::Dict(d) => {
                if let Ok(mut d) = d.try_borrow_mut() {
                    d.index.clear();
                    for (k, v) in d.entries.drain(..) {
                        work.push(k);
                        work.push(v);
                    }
                }
            }
            Item::Object(o) => {
                if let Ok(mut o) = o.try_borrow_mut() {
                    work.append(&mut o.args);
                    work.extend(o.state.take());
                }
            }
            _ => {}
        }
        garbage.push(item);
    }
    drop_iteratively(garbage);
}

/// A value while parsing; containers are shared so memo references see later mutation.
#[derive(Clone)]
enum Item {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    List(Rc<ListNode>),
    Tuple(Rc<TupleNode>),
    Dict(Rc<RefCell<DictItem>>),
    Global(Rc<str>, Allowed),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    Object(Rc<RefCell<ObjectItem>>),
}

impl Item {
    fn kind(&self) -> &'static str {
        match self {
            Item::None => "None",
            Item::Bool(_) => "bool",
            Item::Int(_) => "int",
            Item::Float(_) => "float",
            Item::Str(_) => "str",
            Item::Bytes(_) => "bytes",
            Item::List(_) => "list",
            Item::Tuple(_) => "tuple",
            Item::Dict(_) => "dict",
            Item::Global(..) => "global",
            Item::Storage(_) => "storage",
            Item::Tensor(_) => "tensor",
            Item::Object(_) => "object",
        }
    }
    fn list(v: Vec<Item>) -> Item {
        Item::List(Rc::new(ListNode(RefCell::new(v))))
    }
    fn tuple(v: Vec<Item>) -> Item {
        Item::Tuple(Rc::new(TupleNode(v)))
    }
}

/// Parses one complete pickle from `data` (which may continue past its STOP).
/// Returns the value and the number of bytes the pickle took.
pub fn unpickle(data: &[u8], file: &str) -> Result<(Value, usize)> {
    unpickle_prefix(data, file)?.ok_or_else(|| {
        Error::format(
            file,
            format!(
                "pickle data ends after {} bytes without a STOP opcode: truncated?",
                data.len()
            ),
        )
    })
}

/// As [`unpickle`], but `Ok(None)` when `data` ends before the pickle does, so a caller
/// reading a stream of unknown length can retry with more bytes.
pub fn unpickle_prefix(data: &[u8], file: &str) -> Result<Option<(Value, usize)>> {
    let mut m = Machine {
        data,
        pos: 0,
        file,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        op_at: 0,
    };
    match m.run() {
        Ok(item) => {
            // A real pickle has about one node per opcode byte (memo references to shared
            // strings and globals count once per use); only a container referenced over
            // and over multiplies that, which is what the budget stops, before it costs
            // hundreds of MiB.
            let budget = 100_000usize.saturating_add(data.len().saturating_mul(4));
            let mut conv = Converter { budget, file };
            let value = conv.convert(&item, 0)?;
            Ok(Some((value, m.pos)))
        }
        Err(Stop::Eof) => Ok(None),
        Err(Stop::Fail(e)) => Err(e),
    }
}

enum Stop {
    /// The input ended before STOP.
    Eof,
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e)
    }
}

type Step<T> = std::result::Result<T, Stop>;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    file: &'a str,
    stack: Vec<Item>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Item>,
    /// Offset of the opcode being executed, for messages.
    op_at: usize,
}

impl Drop for Machine<'_> {
    fn drop(&mut self) {
        let mut roots = std::mem::take(&mut self.stack);
        roots.extend(self.memo.drain().map(|(_, v)| v));
        break_cycles(roots);
    }
}

impl<'a> Machine<'a> {
    fn fail(&self, msg: impl std::fmt::Display) -> Stop {
        Stop::Fail(Error::format(
            self.file,
            format!("bad pickle at byte {}: {msg}", self.op_at),
        ))
    }

    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Stop::Eof)?;
        if end > self.data.len() {
            return Err(Stop::Eof);
        }
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Step<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Step<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Step<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A length-prefixed byte string whose length field is `len` (checked against input).
    fn sized(&mut self, len: u64) -> Step<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| Stop::Eof)?;
        self.take(len)
    }
    /// A newline-terminated text argument (GLOBAL, PUT, GET).
    fn line(&mut self) -> Step<&'a str> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or(Stop::Eof)?;
        let line = self.take(n + 1)?;
        std::str::from_utf8(&line[..n]).map_err(|_| self.fail("text argument is not UTF-8"))
    }

    fn pop(&mut self) -> Step<Item> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.fail("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }
    fn top(&self) -> Step<&Item> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.fail("stack underflow"));
        }
        Ok(self.stack.last().expect("checked non-empty"))
    }
    /// Everything pushed since the last MARK, removing the mark.
    fn pop_mark(&mut self) -> Step<Vec<Item>> {
        let at = self
            .marks
            .pop()
            .ok_or_else(|| self.fail("no MARK to pop to"))?;
        Ok(self.stack.split_off(at))
    }
    fn str_item(&self, bytes: &[u8]) -> Step<Item> {
        let s = std::str::from_utf8(bytes).map_err(|_| self.fail("string is not valid UTF-8"))?;
        Ok(Item::Str(s.into()))
    }
    fn memo_put(&mut self, key: u64) -> Step<()> {
        let v = self.top()?.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&key) {
            return Err(self.fail("memo grows beyond its limit"));
        }
        self.memo.insert(key, v);
        Ok(())
    }
    fn memo_get(&mut self, key: u64) -> Step<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.fail(format!("memo slot {key} was never set")))?;
        self.stack.push(v);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Step<()> {
        let allowed = classify(module, name).ok_or_else(|| {
            Stop::Fail(Error::UnsafeGlobal {
                file: self.file.to_string(),
                global: format!("{module}.{name}"),
            })
        })?;
        self.stack
            .push(Item::Global(format!("{module}.{name}").into(), allowed));
        Ok(())
    }

    fn run(&mut self) -> Step<Item> {
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let v = self.u8()?;
                    if v > MAX_PROTOCOL {
                        return Err(self.fail(format!("unsupported pickle protocol {v}")));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Item::Dict(Default::default())),
                b']' => self.stack.push(Item::list(Vec::new())),
                b')' => self.stack.push(Item::tuple(Vec::new())),
                0x8f => self.stack.push(Item::list(Vec::new())), // EMPTY_SET
                b'N' => self.stack.push(Item::None),
                0x88 => self.stack.push(Item::Bool(true)),
                0x89 => self.stack.push(Item::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Item::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Item::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Item::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as u64
                    } else {
                        self.u32()? as u64
                    };
                    let b = self.sized(n)?;
                    let v = self.long(b)?;
                    self.stack.push(Item::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Item::Float(v));
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as u64,
                        0x8c => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let b = self.sized(n)?;
                    let item = self.str_item(b)?;
                    self.stack.push(item);
                }
                b'T' | b'U' => {
                    // Python 2 byte strings; torch loads them as text.
                    let n = if op == b'T' {
                        self.u32()? as u64
                    } else {
                        self.u8()? as u64
                    };
                    let b = self.sized(n)?;
                    self.stack
                        .push(Item::Str(String::from_utf8_lossy(b).as_ref().into()));
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => self.u32()? as u64,
                        b'C' => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let b = self.sized(n)?;
                    self.stack.push(Item::Bytes(Rc::from(b)));
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'p' => {
                    let line = self.line()?;
                    let k = line
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| self.fail("bad PUT index"))?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()? as u64;
                    self.memo_get(k)?;
                }
                b'g' => {
                    let line = self.line()?;
                    let k = line
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| self.fail("bad GET index"))?;
                    self.memo_get(k)?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Item::Str(m), Item::Str(n)) => self.global(&m, &n)?,
                        _ => return Err(self.fail("STACK_GLOBAL needs two strings")),
                    }
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Item::tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Item::tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Item::list(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = self.dict_from_pairs(items)?;
                    self.stack.push(dict);
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend(vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.extend(items)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Item::list(items));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent_load(&pid)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let result = self.call(&callable, &args)?;
                    self.stack.push(result);
                }
                0x81 | 0x92 => {
                    if op == 0x92 {
                        self.pop()?; // keyword arguments: ignored, classes here take none
                    }
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let result = self.call(&class, &args)?;
                    self.stack.push(result);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?.clone();
                    self.build(&target, state)?;
                }
                other => {
                    return Err(self.fail(format!(
                        "opcode 0x{other:02x} is not supported in model files"
                    )))
                }
            }
        }
    }

    fn long(&self, b: &[u8]) -> Step<i64> {
        if b.len() > 8 {
            // Wider only if the extra bytes are sign extension.
            let (low, high) = b.split_at(8);
            let neg = low[7] & 0x80 != 0;
            let fill = if neg { 0xFF } else { 0 };
            if high.iter().any(|&x| x != fill) {
                return Err(self.fail("integer does not fit in 64 bits"));
            }
            return self.long(low);
        }
        if b.is_empty() {
            return Ok(0);
        }
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut buf = [if neg { 0xFF } else { 0 }; 8];
        buf[..b.len()].copy_from_slice(b);
        Ok(i64::from_le_bytes(buf))
    }

    fn dict_from_pairs(&self, items: Vec<Item>) -> Step<Item> {
        if items.len() % 2 == 1 {
            return Err(self.fail("odd number of items for a dict"));
        }
        let mut d = DictItem::default();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.set(k, v);
        }
        Ok(Item::Dict(Rc::new(RefCell::new(d))))
    }

    fn extend(&mut self, items: Vec<Item>) -> Step<()> {
        match self.top()? {
            Item::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => Err(self.fail(format!("APPEND to a {}", other.kind()))),
        }
    }

    fn set_items(&mut self, items: Vec<Item>) -> Step<()> {
        if items.len() % 2 == 1 {
            return Err(self.fail("odd number of items for SETITEMS"));
        }
        let target = self.top()?.clone();
        let Item::Dict(d) = target else {
            return Err(self.fail(format!("SETITEM on a {}", target.kind())));
        };
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.set(k, v);
        }
        Ok(())
    }

    /// `('storage', <Kind>Storage, key, location, numel[, view_metadata])`.
    fn persistent_load(&self, pid: &Item) -> Step<Item> {
        let bad = |why: &str| self.fail(format!("unsupported persistent id: {why}"));
        let Item::Tuple(t) = pid else {
            return Err(bad("not a tuple"));
        };
        if !(5..=6).contains(&t.len()) {
            return Err(bad("expected 5 or 6 fields"));
        }
        match &t[0] {
            Item::Str(s) if &**s == "storage" => {}
            _ => return Err(bad("first field is not 'storage'")),
        }
        let dtype = match &t[1] {
            Item::Global(_, Allowed::Storage(d)) => *d,
            Item::Global(g, _) => return Err(bad(&format!("`{g}` is not a storage type"))),
            _ => return Err(bad("second field is not a storage type")),
        };
        let key = match &t[2] {
            Item::Str(s) => s.to_string(),
            Item::Int(i) => i.to_string(),
            _ => return Err(bad("storage key is not a string")),
        };
        let location = match &t[3] {
            Item::Str(s) => s.to_string(),
            _ => String::new(),
        };
        let numel = match &t[4] {
            Item::Int(n) if *n >= 0 => *n as u64,
            _ => return Err(bad("element count is not a non-negative int")),
        };
        if t.len() == 6 && !matches!(t[5], Item::None) {
            return Err(bad("storage views (old torch) are not supported"));
        }
        Ok(Item::Storage(Rc::new(StorageRef {
            key,
            dtype,
            location,
            numel,
        })))
    }

    fn call(&self, callable: &Item, args: &Item) -> Step<Item> {
        let Item::Global(name, allowed) = callable else {
            return Err(self.fail(format!("call of a {}, not a global", callable.kind())));
        };
        let args: &[Item] = match args {
            Item::Tuple(t) => t,
            other => return Err(self.fail(format!("arguments of `{name}` are a {}", other.kind()))),
        };
        match allowed {
            Allowed::OrderedDict => match args {
                [] => Ok(Item::Dict(Default::default())),
                [Item::List(pairs)] => {
                    let mut flat = Vec::new();
                    for p in pairs.borrow().iter() {
                        match p {
                            Item::Tuple(kv) if kv.len() == 2 => flat.extend(kv.iter().cloned()),
                            _ => return Err(self.fail("OrderedDict item is not a pair")),
                        }
                    }
                    self.dict_from_pairs(flat)
                }
                _ => Err(self.fail("unexpected OrderedDict arguments")),
            },
            Allowed::RebuildTensorV2 => self.rebuild_tensor(args),
            Allowed::RebuildParameter => match args {
                [Item::Tensor(t), rest @ ..] => {
                    let mut t = (**t).clone();
                    if let Some(Item::Bool(g)) = rest.first() {
                        t.requires_grad = *g;
                    }
                    Ok(Item::Tensor(Rc::new(t)))
                }
                _ => Err(self.fail("_rebuild_parameter expects a tensor")),
            },
            Allowed::CodecsEncode => {
                let (text, encoding) = match args {
                    [Item::Str(t)] => (t, "utf-8"),
                    [Item::Str(t), Item::Str(e)] => (t, &**e),
                    _ => return Err(self.fail("_codecs.encode expects (str, encoding)")),
                };
                let bytes: Vec<u8> = match encoding.to_ascii_lowercase().as_str() {
                    "latin1" | "latin-1" | "iso-8859-1" => text
                        .chars()
                        .map(|c| u8::try_from(c as u32))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|_| self.fail("latin-1 text holds a character above U+00FF"))?,
                    "utf-8" | "utf8" => text.as_bytes().to_vec(),
                    e => return Err(self.fail(format!("unsupported text encoding `{e}`"))),
                };
                Ok(Item::Bytes(Rc::from(bytes)))
            }
            Allowed::NumpyScalar => self.numpy_scalar(name, args),
            Allowed::Set => match args {
                [] => Ok(Item::list(Vec::new())),
                [Item::List(l)] => Ok(Item::list(l.borrow().clone())),
                [Item::Tuple(t)] => Ok(Item::list(t.to_vec())),
                _ => Err(self.fail("unexpected set arguments")),
            },
            Allowed::Storage(_) => Err(self.fail(format!(
                "`{name}` called directly; storages may only be named by a persistent id"
            ))),
            Allowed::Inert => Ok(Item::Object(Rc::new(RefCell::new(ObjectItem {
                class: name.clone(),
                args: args.to_vec(),
                state: None,
            })))),
        }
    }

    fn int_arg(&self, v: &Item, what: &str) -> Step<usize> {
        match v {
            Item::Int(i) if *i >= 0 => {
                usize::try_from(*i).map_err(|_| self.fail(format!("{what} too large")))
            }
            _ => Err(self.fail(format!("tensor {what} is not a non-negative int"))),
        }
    }

    fn int_tuple(&self, v: &Item, what: &str) -> Step<Vec<usize>> {
        match v {
            Item::Tuple(t) => t.iter().map(|x| self.int_arg(x, what)).collect(),
            Item::List(l) => l.borrow().iter().map(|x| self.int_arg(x, what)).collect(),
            _ => Err(self.fail(format!("tensor {what} is not a tuple"))),
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Item]) -> Step<Item> {
        if !(4..=7).contains(&args.len()) {
            return Err(self.fail("_rebuild_tensor_v2 takes 4 to 7 arguments"));
        }
        let Item::Storage(storage) = &args[0] else {
            return Err(self.fail(format!(
                "_rebuild_tensor_v2 storage argument is a {}",
                args[0].kind()
            )));
        };
        let storage_offset = self.int_arg(&args[1], "storage offset")? as u64;
        let shape = self.int_tuple(&args[2], "size")?;
        let strides = self.int_tuple(&args[3], "stride")?;
        if shape.len() != strides.len() {
            return Err(self.fail("tensor size and stride have different lengths"));
        }
        let requires_grad = matches!(args.get(4), Some(Item::Bool(true)));
        Ok(Item::Tensor(Rc::new(TensorRef {
            storage: (**storage).clone(),
            storage_offset,
            shape,
            strides,
            requires_grad,
        })))
    }

    /// `numpy.core.multiarray.scalar(dtype, raw_bytes)`: decode the number the bytes hold.
    fn numpy_scalar(&self, name: &str, args: &[Item]) -> Step<Item> {
        let (dtype, raw) = match args {
            [Item::Object(o), Item::Bytes(b)] => (o.clone(), b.clone()),
            _ => return Err(self.fail(format!("unexpected `{name}` arguments"))),
        };
        let o = dtype.borrow();
        let code = match o.args.first() {
            Some(Item::Str(s)) if &*o.class == "numpy.dtype" => s.clone(),
            _ => return Err(self.fail("numpy scalar without a numpy dtype")),
        };
        // numpy's dtype state is (version, byteorder, ...); '>' means big-endian.
        let big = match &o.state {
            Some(Item::Tuple(t)) => matches!(t.get(1), Some(Item::Str(s)) if &**s == ">"),
            _ => false,
        };
        let mut b = raw.to_vec();
        if big {
            b.reverse();
        }
        let need = |n: usize| -> Step<()> {
            if b.len() == n {
                Ok(())
            } else {
                Err(self.fail(format!("numpy `{code}` scalar has {} bytes", b.len())))
            }
        };
        let item = match &*code {
            "f8" => {
                need(8)?;
                Item::Float(f64::from_le_bytes(b[..8].try_into().expect("8")))
            }
            "f4" => {
                need(4)?;
                Item::Float(f32::from_le_bytes(b[..4].try_into().expect("4")) as f64)
            }
            "f2" => {
                need(2)?;
                Item::Float(half::f16::from_le_bytes([b[0], b[1]]).to_f64())
            }
            "i8" | "u8" | "i4" | "u4" | "i2" | "u2" | "i1" | "u1" => {
                let n: usize = code[1..].parse().expect("digit");
                need(n)?;
                let signed = code.starts_with('i');
                let neg = signed && b[n - 1] & 0x80 != 0;
                let mut buf = [if neg { 0xFF } else { 0 }; 8];
                buf[..n].copy_from_slice(&b);
                let v = i64::from_le_bytes(buf);
                if !signed && n == 8 && v < 0 {
                    return Err(self.fail("numpy uint64 scalar does not fit in i64"));
                }
                Item::Int(v)
            }
            "b1" => {
                need(1)?;
                Item::Bool(b[0] != 0)
            }
            other => {
                return Err(self.fail(format!("numpy scalar of dtype `{other}` is not supported")))
            }
        };
        Ok(item)
    }

    fn build(&self, target: &Item, state: Item) -> Step<()> {
        match target {
            Item::Object(o) => {
                o.borrow_mut().state = Some(state);
                Ok(())
            }
            // OrderedDict attributes (torch's `_metadata`) and tensor attributes are not
            // part of the data.
            Item::Dict(_) | Item::Tensor(_) => Ok(()),
            other => Err(self.fail(format!("BUILD on a {}", other.kind()))),
        }
    }
}

/// Copies the shared parse graph into an owned tree, bounded in depth and size.
struct Converter<'a> {
    budget: usize,
    file: &'a str,
}

impl Converter<'_> {
    fn convert(&mut self, item: &Item, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::format(
                self.file,
                format!("pickle nests deeper than {MAX_DEPTH} levels (or refers to itself)"),
            ));
        }
        if self.budget == 0 {
            return Err(Error::format(
                self.file,
                "pickle expands to too many objects (shared references repeated too often)",
            ));
        }
        self.budget -= 1;
        let d = depth + 1;
        Ok(match item {
            Item::None => Value::None,
            Item::Bool(b) => Value::Bool(*b),
            Item::Int(i) => Value::Int(*i),
            Item::Float(f) => Value::Float(*f),
            Item::Str(s) => Value::Str(s.to_string()),
            Item::Bytes(b) => Value::Bytes(b.to_vec()),
            Item::List(l) => Value::List(self.convert_all(&l.borrow(), d)?),
            Item::Tuple(t) => Value::Tuple(self.convert_all(t, d)?),
            Item::Dict(dict) => {
                let dict = dict.borrow();
                let mut out = Vec::with_capacity(dict.entries.len());
                for (k, v) in &dict.entries {
                    out.push((self.convert(k, d)?, self.convert(v, d)?));
                }
                Value::Dict(out)
            }
            Item::Global(g, _) => Value::Global(g.to_string()),
            Item::Storage(s) => Value::Storage((**s).clone()),
            Item::Tensor(t) => Value::Tensor((**t).clone()),
            Item::Object(o) => {
                let o = o.borrow();
                Value::Object {
                    class: o.class.to_string(),
                    args: self.convert_all(&o.args, d)?,
                    state: match &o.state {
                        Some(s) => Some(Box::new(self.convert(s, d)?)),
                        None => None,
                    },
                }
            }
        })
    }
    fn convert_all(&mut self, items: &[Item], depth: usize) -> Result<Vec<Value>> {
        items.iter().map(|i| self.convert(i, depth)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Value> {
        unpickle(bytes, "t.pkl").map(|(v, _)| v)
    }

    #[test]
    fn scalars_and_containers() {
        // Protocol 2: {'a': [1, -2, 300, 2**40], 'b': (1.5, True, None), 3: b'xy'}
        let mut p = vec![
            0x80, 2, b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a', b']', b'(',
        ];
        p.extend_from_slice(&[b'K', 1, b'J', 0xFE, 0xFF, 0xFF, 0xFF, b'M', 0x2C, 0x01]);
        p.extend_from_slice(&[0x8a, 6, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[b'e', 0x8c, 1, b'b', b'G']);
        p.extend_from_slice(&1.5f64.to_be_bytes());
        p.extend_from_slice(&[0x88, b'N', 0x87, b'K', 3, b'C', 2, b'x', b'y', b'u', b'.']);
        let v = parse(&p).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                (
                    Value::Str("a".into()),
                    Value::List(vec![
                        Value::Int(1),
                        Value::Int(-2),
                        Value::Int(300),
                        Value::Int(1 << 40)
                    ])
                ),
                (
                    Value::Str("b".into()),
                    Value::Tuple(vec![Value::Float(1.5), Value::Bool(true), Value::None])
                ),
                (Value::Int(3), Value::Bytes(b"xy".to_vec())),
            ])
        );
    }

    #[test]
    fn memo_sees_later_mutation_and_setitem_replaces() {
        // d = {}; memo[0] = d; d['k'] = 1; d['k'] = 2; return [d, memo[0]]
        let p = [
            0x80, 2, b']', b'}', b'q', 0, 0x8c, 1, b'k', b'K', 1, b's', 0x8c, 1, b'k', b'K', 2,
            b's', b'a', b'h', 0, b'a', b'.',
        ];
        let v = parse(&p).unwrap();
        let d = Value::Dict(vec![(Value::Str("k".into()), Value::Int(2))]);
        assert_eq!(v, Value::List(vec![d.clone(), d]));
    }

    #[test]
    fn parameter_dict_is_kept_as_inert_data() {
        // What the original textual-inversion code pickles: ParameterDict() then BUILD with
        // its __dict__ ({'_parameters': {'*': 1}} here, a number standing in for the tensor).
        let p = b"\x80\x02ctorch.nn.modules.container\nParameterDict\nq\x00)\x81q\x01}q\x02X\x0b\x00\x00\x00_parametersq\x03}q\x04X\x01\x00\x00\x00*K\x01ssb.";
        let v = parse(p).unwrap();
        let Value::Object { class, state, .. } = &v else {
            panic!("expected an object, got {v:?}");
        };
        assert_eq!(class, "torch.nn.modules.container.ParameterDict");
        let params = state.as_ref().unwrap().get("_parameters").unwrap();
        assert_eq!(params.get("*"), Some(&Value::Int(1)));
        // Other torch.nn classes stay refused.
        let p = b"\x80\x02ctorch.nn.modules.linear\nLinear\nq\x00)\x81.";
        assert!(matches!(parse(p), Err(Error::UnsafeGlobal { .. })));
    }

    #[test]
    fn unknown_global_is_refused_by_name() {
        let p = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.";
        match parse(p) {
            Err(Error::UnsafeGlobal { file, global }) => {
                assert_eq!(file, "t.pkl");
                assert_eq!(global, "os.system");
            }
            other => panic!("expected UnsafeGlobal, got {other:?}"),
        }
        // STACK_GLOBAL route (protocol 4)
        let p = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
        let err = parse(p).unwrap_err().to_string();
        assert!(err.contains("builtins.eval"), "{err}");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x80\x02",
            b"\x80\x02t.",
            b"\x80\x02a.",
            b"\x80\x02h\x05.",
            b"\x80\x02K\x01K\x02s.",
            b"\x80\x02\xff.",
            b"\x80\x09N.",
            b"\x80\x02X\xff\xff\xff\xff",
            b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x80\x02\x8a\x10\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01.",
            b"\x80\x02(.",
            b"\x80\x02NR.",
        ];
        for c in cases {
            assert!(parse(c).is_err(), "{c:?} should fail");
        }
    }

    #[test]
    fn self_reference_and_blowup_are_bounded() {
        // l = []; l.append(l)
        let p = b"\x80\x02]q\x00h\x00a.";
        let err = parse(p).unwrap_err().to_string();
        assert!(err.contains("deeper"), "{err}");
        // x0 = [0]; x_{i+1} = [x_i, x_i] for 60 levels: 2^60 nodes if copied naively.
        let mut p = b"\x80\x02]K\x00a".to_vec();
        for _ in 0..60 {
            p.extend_from_slice(b"q\x00]h\x00h\x00\x86a");
        }
        p.push(b'.');
        let err = parse(&p).unwrap_err().to_string();
        assert!(
            err.contains("too many objects") || err.contains("deeper"),
            "{err}"
        );
    }

    /// A pickle nesting `depth` containers: `open` pushes an empty container or a leaf,
    /// `close` (repeated) nests the top into the one below.
    fn nested(depth: usize, open: &[u8], close: &[u8], stop: bool) -> Vec<u8> {
        let mut p = b"\x80\x02".to_vec();
        for _ in 0..depth {
            p.extend_from_slice(open);
        }
        for _ in 1..depth {
            p.extend_from_slice(close);
        }
        if stop {
            p.push(b'.');
        }
        p
    }

    #[test]
    fn deep_nesting_is_refused_and_dropped_without_recursion() {
        // Run on a thread with the default 2 MiB stack of spawned threads: a recursive drop
        // of 200k levels needs tens of MiB and aborts the process; the iterative one needs
        // none, and the bounded copy into a `Value` fits easily.
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let depth = 200_000;
                let cases: Vec<(&str, Vec<u8>)> = vec![
                    ("lists", nested(depth, b"]", b"a", true)),
                    ("lists, truncated", nested(depth, b"]", b"a", false)),
                    ("tuples", {
                        let mut p = b"\x80\x02N".to_vec();
                        p.extend(std::iter::repeat_n(0x85u8, depth));
                        p.push(b'.');
                        p
                    }),
                    ("dicts", nested(depth, b"K\x00}", b"s", true)),
                    ("memoized lists", nested(depth, b"]\x94", b"a", true)),
                    ("objects", nested(depth, b"cnumpy\ndtype\n)R", b"b", true)),
                ];
                for (what, p) in cases {
                    match unpickle(&p, "deep.ckpt") {
                        Ok(_) => panic!("{what}: nesting {depth} deep was accepted"),
                        Err(e) => {
                            let e = e.to_string();
                            assert!(e.contains("deep.ckpt"), "{what}: {e}");
                            assert!(
                                e.contains("deeper than 256") || e.contains("without a STOP"),
                                "{what}: {e}"
                            );
                        }
                    }
                }
            })
            .unwrap();
        handle.join().expect("parsing a deep pickle crashed");
    }

    #[test]
    fn nesting_up_to_the_limit_is_read() {
        // 200 nested lists around an int: within MAX_DEPTH, read back exactly.
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b']', 200));
        p.extend_from_slice(b"K\x07");
        p.extend(std::iter::repeat_n(b'a', 200));
        p.push(b'.');
        let mut v = parse(&p).unwrap();
        for _ in 0..200 {
            v = match v {
                Value::List(mut l) if l.len() == 1 => l.pop().unwrap(),
                other => panic!("expected a one-item list, got {}", other.kind()),
            };
        }
        assert_eq!(v, Value::Int(7));
    }

    #[test]
    fn truncated_prefix_reports_none() {
        let p = b"\x80\x02X\x05\x00\x00\x00hel";
        assert!(unpickle_prefix(p, "t").unwrap().is_none());
        let err = parse(p).unwrap_err().to_string();
        assert!(err.contains("without a STOP"), "{err}");
    }
}
