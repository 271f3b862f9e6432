//! A reader for *legacy* (pre-zip, PyTorch < 1.6) `.pth` checkpoints, and their conversion to
//! safetensors. Nothing in the file is ever executed.
//!
//! # The legacy format
//!
//! A legacy checkpoint is five pickles back to back, then the raw tensor data:
//!
//! 1. the magic number `0x1950a86a20f9469cfc6c` (a pickled int);
//! 2. the protocol version (1001);
//! 3. `sys_info`, a dict with `little_endian`, `type_sizes`, …;
//! 4. the object itself, here a state dict (`collections.OrderedDict`) whose values are
//!    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` calls and whose
//!    storages are *persistent ids* `('storage', torch.FloatStorage, key, location, numel[, view])`;
//! 5. the list of storage keys, in the order their data follows;
//!
//! then, for each key of that list, an 8-byte little-endian element count followed by the
//! storage's raw little-endian elements.
//!
//! # The pickle interpreter
//!
//! [`Unpickler`] is a small opcode interpreter (the protocol 0–4 opcodes a state dict uses) that
//! builds a [`Value`] tree: a `GLOBAL` becomes [`Value::Global`] (a name, never imported), a
//! `REDUCE` becomes [`Value::Call`] (never called), a persistent id becomes
//! [`Value::Persistent`]. Only `collections.OrderedDict()` is interpreted (as an empty dict, so
//! that `SETITEMS` can fill it). The memo stores values, not references: an object mutated after
//! it was memoized is seen as it was when stored (state dicts do not depend on that).
//!
//! [`read_legacy`] then walks the tree to find each tensor's storage, offset, shape and strides,
//! and gathers its elements into a contiguous row-major buffer (views of a shared storage, offsets
//! and permuted strides are honoured and bounds-checked).

use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The magic number of legacy PyTorch checkpoints.
const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The only legacy protocol version.
const PROTOCOL: i128 = 1001;

/// A node of the pickle's value tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A `module.name` reference (`GLOBAL`/`STACK_GLOBAL`); nothing is imported.
    Global {
        module: String,
        name: String,
    },
    /// `func(*args)` as `REDUCE`/`NEWOBJ` would call it; nothing is called.
    Call {
        func: Box<Value>,
        args: Box<Value>,
    },
    /// `obj.__setstate__(state)` (`BUILD`) on something that is not a dict.
    Build {
        obj: Box<Value>,
        state: Box<Value>,
    },
    /// A persistent id (`BINPERSID`): in PyTorch checkpoints, a storage reference.
    Persistent(Box<Value>),
}

impl Value {
    fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    fn is_global(&self, module: &str, name: &str) -> bool {
        matches!(self, Value::Global { module: m, name: n } if m == module && n == name)
    }
}

/// A stack item: a value or a `MARK`.
#[derive(Debug, Clone)]
enum Item {
    Mark,
    Value(Value),
}

/// One pickle's opcode interpreter over a byte slice.
pub struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    /// An interpreter reading `data` from byte `pos`.
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Unpickler {
            data,
            pos,
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// The position just after the last `STOP` read.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                anyhow!(
                    "truncated pickle: {n} bytes wanted at offset {} of {}",
                    self.pos,
                    self.data.len()
                )
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("truncated pickle: no newline after offset {}", self.pos))?;
        let s = String::from_utf8(rest[..n].to_vec())
            .with_context(|| format!("non-UTF-8 name at offset {}", self.pos))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<String> {
        let at = self.pos;
        String::from_utf8(self.take(n)?.to_vec())
            .with_context(|| format!("invalid UTF-8 string at offset {at}"))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Value(v));
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => bail!("unexpected MARK on the stack at offset {}", self.pos),
            None => bail!("pickle stack underflow at offset {}", self.pos),
        }
    }

    fn top(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        match self.stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => bail!("pickle stack has no value on top at offset {pos}"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| anyhow!("no MARK on the pickle stack at offset {}", self.pos))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .map(|i| match i {
                Item::Value(v) => v,
                Item::Mark => unreachable!("rposition found the last mark"),
            })
            .collect())
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| anyhow!("pickle memo has no entry {key} (offset {})", self.pos))?;
        self.push(v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        ensure!(
            items.len().is_multiple_of(2),
            "odd number of items for SETITEMS at offset {}",
            self.pos
        );
        let pos = self.pos;
        match self.top()? {
            Value::Dict(d) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => bail!("SETITEM(S) on a non-dict {other:?} at offset {pos}"),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let pos = self.pos;
        match self.top()? {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            other => bail!("APPEND(S) on a non-list {other:?} at offset {pos}"),
        }
    }

    fn call(func: Value, args: Value) -> Value {
        // The one call interpreted: an empty OrderedDict, so that SETITEMS can fill it.
        if func.is_global("collections", "OrderedDict")
            && matches!(&args, Value::Tuple(a) if a.is_empty())
        {
            return Value::Dict(Vec::new());
        }
        Value::Call {
            func: Box::new(func),
            args: Box::new(args),
        }
    }

    /// Reads one pickle up to its `STOP` and returns the value on top of the stack.
    pub fn load(&mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    ensure!(
                        proto <= 5,
                        "unsupported pickle protocol {proto} at offset {at}"
                    );
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint
                }
                b'.' => {
                    let v = self.pop()?;
                    ensure!(
                        self.stack.is_empty(),
                        "pickle stack not empty at STOP (offset {at})"
                    );
                    return Ok(v);
                }
                b'(' => self.stack.push(Item::Mark),
                b'0' => {
                    self.stack.pop();
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v);
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    ensure!(n <= 16, "LONG1 of {n} bytes at offset {at} is too large");
                    let bytes = self.take(n)?;
                    let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                        [0xffu8; 16]
                    } else {
                        [0u8; 16]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i128::from_le_bytes(buf)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s));
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s));
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b'}' => self.push(Value::Dict(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Dict(Vec::new()));
                    self.set_items(items)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    ensure!(
                        self.stack.len() >= n,
                        "pickle stack underflow at offset {at}"
                    );
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items));
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(k.into())?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(k.into())?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.push(Value::Global { module, name })
                        }
                        _ => bail!("STACK_GLOBAL without two strings at offset {at}"),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.push(Self::call(func, args));
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    let v = match obj {
                        // A dict subclass's extra attributes (an OrderedDict's `_metadata`):
                        // the items are what matters.
                        d @ Value::Dict(_) => d,
                        obj => Value::Build {
                            obj: Box::new(obj),
                            state: Box::new(state),
                        },
                    };
                    self.push(v);
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
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Value::Persistent(Box::new(pid)));
                }
                other => bail!("unsupported pickle opcode 0x{other:02x} at offset {at}"),
            }
        }
    }
}

/// Element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    fn from_storage(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => DType::F64,
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    fn safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype as S;
        match self {
            DType::F64 => S::F64,
            DType::F32 => S::F32,
            DType::F16 => S::F16,
            DType::BF16 => S::BF16,
            DType::I64 => S::I64,
            DType::I32 => S::I32,
            DType::I16 => S::I16,
            DType::I8 => S::I8,
            DType::U8 => S::U8,
            DType::Bool => S::BOOL,
        }
    }
}

/// One tensor of a checkpoint, contiguous, row-major, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Where a tensor's elements are: a view into a storage.
struct View {
    key: String,
    dtype: DType,
    numel: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn usize_of(v: &Value, what: &str, name: &str) -> Result<usize> {
    v.as_int()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| anyhow!("tensor {name}: {what} is not a non-negative integer: {v:?}"))
}

fn usizes(v: &Value, what: &str, name: &str) -> Result<Vec<usize>> {
    v.as_seq()
        .ok_or_else(|| anyhow!("tensor {name}: {what} is not a tuple: {v:?}"))?
        .iter()
        .map(|x| usize_of(x, what, name))
        .collect()
}

/// Decodes `_rebuild_tensor_v2(storage, offset, size, stride, …)` (or `_rebuild_tensor`, or a
/// `_rebuild_parameter` around either).
fn view_of(name: &str, v: &Value) -> Result<View> {
    let Value::Call { func, args } = v else {
        bail!("value of {name} is not a tensor: {v:?}");
    };
    let args = args
        .as_seq()
        .ok_or_else(|| anyhow!("tensor {name}: arguments are not a tuple"))?;
    if func.is_global("torch._utils", "_rebuild_parameter") {
        let inner = args
            .first()
            .ok_or_else(|| anyhow!("parameter {name} has no tensor"))?;
        return view_of(name, inner);
    }
    ensure!(
        func.is_global("torch._utils", "_rebuild_tensor_v2")
            || func.is_global("torch._utils", "_rebuild_tensor"),
        "value of {name} is built by {func:?}, not torch._utils._rebuild_tensor_v2"
    );
    ensure!(
        args.len() >= 4,
        "tensor {name}: {} rebuild arguments, expected at least 4",
        args.len()
    );
    let Value::Persistent(pid) = &args[0] else {
        bail!(
            "tensor {name}: storage is not a persistent id: {:?}",
            args[0]
        );
    };
    let pid = pid
        .as_seq()
        .ok_or_else(|| anyhow!("tensor {name}: persistent id is not a tuple"))?;
    ensure!(
        pid.len() >= 5 && pid[0].as_str() == Some("storage"),
        "tensor {name}: persistent id {pid:?} is not ('storage', type, key, location, numel)"
    );
    let dtype = match &pid[1] {
        Value::Global { module, name: cls } if module == "torch" => DType::from_storage(cls)
            .ok_or_else(|| anyhow!("tensor {name}: unsupported storage type torch.{cls}"))?,
        other => bail!("tensor {name}: storage type {other:?} is not a torch storage class"),
    };
    let key = pid[2]
        .as_str()
        .ok_or_else(|| anyhow!("tensor {name}: storage key is not a string"))?
        .to_string();
    let numel = usize_of(&pid[4], "storage size", name)?;
    let offset = usize_of(&args[1], "storage offset", name)?;
    let shape = usizes(&args[2], "size", name)?;
    let stride = usizes(&args[3], "stride", name)?;
    ensure!(
        shape.len() == stride.len(),
        "tensor {name}: size {shape:?} and stride {stride:?} differ in rank"
    );
    Ok(View {
        key,
        dtype,
        numel,
        offset,
        shape,
        stride,
    })
}

/// Copies a strided view out of a storage into a contiguous row-major buffer.
fn gather(name: &str, view: &View, storage: &[u8]) -> Result<Vec<u8>> {
    let es = view.dtype.size();
    let count: usize = view.shape.iter().product();
    if count == 0 {
        return Ok(Vec::new());
    }
    // The largest element index the view touches must lie inside the storage.
    let last = view.offset
        + view
            .shape
            .iter()
            .zip(&view.stride)
            .map(|(&n, &s)| (n - 1) * s)
            .sum::<usize>();
    ensure!(
        last < view.numel && (last + 1) * es <= storage.len(),
        "tensor {name}: view (offset {}, size {:?}, stride {:?}) reaches element {last} of a \
         storage of {} elements",
        view.offset,
        view.shape,
        view.stride,
        view.numel
    );
    let mut out = Vec::with_capacity(count * es);
    let mut idx = vec![0usize; view.shape.len()];
    for _ in 0..count {
        let src = view.offset
            + idx
                .iter()
                .zip(&view.stride)
                .map(|(&i, &s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(&storage[src * es..(src + 1) * es]);
        for (i, &n) in idx.iter_mut().zip(&view.shape).rev() {
            *i += 1;
            if *i < n {
                break;
            }
            *i = 0;
        }
    }
    Ok(out)
}

/// Reads a legacy PyTorch checkpoint holding a state dict: tensor name → tensor, in the
/// checkpoint's order.
pub fn read_legacy(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let mut pos = 0;
    let mut next = || -> Result<Value> {
        let mut u = Unpickler::new(bytes, pos);
        let v = u.load()?;
        pos = u.position();
        Ok(v)
    };
    let magic = next().context("reading the magic number")?;
    ensure!(
        magic.as_int() == Some(MAGIC),
        "not a legacy PyTorch checkpoint: magic number {magic:?} (a zip-format checkpoint \
         starts with `PK`)"
    );
    let protocol = next().context("reading the protocol version")?;
    ensure!(
        protocol.as_int() == Some(PROTOCOL),
        "unsupported legacy protocol version {protocol:?}"
    );
    let sys_info = next().context("reading sys_info")?;
    if let Value::Dict(items) = &sys_info {
        for (k, v) in items {
            if k.as_str() == Some("little_endian") {
                ensure!(
                    *v == Value::Bool(true),
                    "big-endian checkpoints are not supported"
                );
            }
        }
    }
    let root = next().context("reading the state dict")?;
    let keys = next().context("reading the storage keys")?;
    let Value::Dict(items) = root else {
        bail!("the checkpoint holds {root:?}, not a state dict");
    };
    let mut views = Vec::with_capacity(items.len());
    for (k, v) in &items {
        let name = k
            .as_str()
            .ok_or_else(|| anyhow!("state dict key {k:?} is not a string"))?;
        views.push((name.to_string(), view_of(name, v)?));
    }
    // Storage key → element type and size, from the tensors that use it.
    let mut kinds: HashMap<&str, (DType, usize)> = HashMap::new();
    for (name, v) in &views {
        if let Some(&(dt, n)) = kinds.get(v.key.as_str()) {
            ensure!(
                dt == v.dtype && n == v.numel,
                "tensor {name}: storage {} is used with two types or sizes",
                v.key
            );
        }
        kinds.insert(&v.key, (v.dtype, v.numel));
    }
    let keys = keys
        .as_seq()
        .ok_or_else(|| anyhow!("the storage key list is {keys:?}, not a list"))?;
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let key = key
            .as_str()
            .ok_or_else(|| anyhow!("storage key {key:?} is not a string"))?;
        let &(dtype, numel) = kinds
            .get(key)
            .ok_or_else(|| anyhow!("storage {key} is listed but no tensor uses it"))?;
        let head = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| anyhow!("truncated checkpoint: no size for storage {key} at {pos}"))?;
        let n = u64::from_le_bytes(head.try_into().expect("8 bytes")) as usize;
        ensure!(
            n == numel,
            "storage {key} holds {n} elements, the state dict says {numel}"
        );
        let start = pos + 8;
        let end = start + n * dtype.size();
        let data = bytes.get(start..end).ok_or_else(|| {
            anyhow!(
                "truncated checkpoint: storage {key} needs bytes {start}..{end} of {}",
                bytes.len()
            )
        })?;
        storages.insert(key.to_string(), data);
        pos = end;
    }
    ensure!(
        pos == bytes.len(),
        "{} bytes after the last storage",
        bytes.len() - pos
    );
    views
        .into_iter()
        .map(|(name, v)| {
            let storage = storages
                .get(&v.key)
                .ok_or_else(|| anyhow!("tensor {name}: storage {} has no data", v.key))?;
            let data = gather(&name, &v, storage)?;
            Ok((
                name,
                Tensor {
                    dtype: v.dtype,
                    shape: v.shape,
                    data,
                },
            ))
        })
        .collect()
}

/// Converts the legacy checkpoint `pth` to the safetensors file `out`; returns the number of
/// tensors written.
pub fn convert(pth: &Path, out: &Path) -> Result<usize> {
    let bytes = std::fs::read(pth).with_context(|| format!("reading {}", pth.display()))?;
    let tensors = read_legacy(&bytes).with_context(|| format!("parsing {}", pth.display()))?;
    write_safetensors(&tensors, out)?;
    Ok(tensors.len())
}

/// Writes tensors to a safetensors file (sorted by name, as safetensors does).
pub fn write_safetensors(tensors: &[(String, Tensor)], out: &Path) -> Result<()> {
    let mut views = BTreeMap::new();
    for (name, t) in tensors {
        let view =
            safetensors::tensor::TensorView::new(t.dtype.safetensors(), t.shape.clone(), &t.data)
                .map_err(|e| anyhow!("tensor {name}: {e}"))?;
        views.insert(name.clone(), view);
    }
    safetensors::tensor::serialize_to_file(views, None, out)
        .map_err(|e| anyhow!("writing {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pickle opcode builders for hand-made fixtures.
    fn unicode(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((s.len() as u32).to_le_bytes());
        v.extend(s.as_bytes());
        v
    }

    fn int(i: u16) -> Vec<u8> {
        if i < 256 {
            vec![b'K', i as u8]
        } else {
            let mut v = vec![b'M'];
            v.extend(i.to_le_bytes());
            v
        }
    }

    fn ints(xs: &[u16]) -> Vec<u8> {
        let mut v = vec![b'('];
        for &x in xs {
            v.extend(int(x));
        }
        v.push(b't');
        v
    }

    /// `_rebuild_tensor_v2(('storage', torch.<ty>, key, 'cpu', numel), offset, size, stride,
    /// False, OrderedDict())`, with the rebuild function and the storage class memoized at 1/2
    /// on first use (as torch.save does) and recalled with BINGET afterwards.
    fn tensor(
        first: bool,
        ty: &str,
        key: &str,
        numel: u16,
        offset: u16,
        size: &[u16],
        stride: &[u16],
    ) -> Vec<u8> {
        let mut v = Vec::new();
        if first {
            v.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x01");
        } else {
            v.extend(b"h\x01");
        }
        v.extend(b"((");
        v.extend(unicode("storage"));
        v.extend(format!("ctorch\n{ty}\n").as_bytes());
        v.extend(unicode(key));
        v.extend(unicode("cpu"));
        v.extend(int(numel));
        v.extend(b"NtQ");
        v.extend(int(offset));
        v.extend(ints(size));
        v.extend(ints(stride));
        v.push(0x89);
        v.extend(b"ccollections\nOrderedDict\n)R");
        v.extend(b"tR");
        v
    }

    /// A legacy checkpoint with three tensors:
    /// - `w`: 2×3 f32, the *transpose* of a 3×2 row-major storage block starting at element 1
    ///   of storage "10" (7 elements 0,1,…,6): w[i][j] = s[1 + i + 2j];
    /// - `b`: 1-d f32 view of the same storage, elements 5..7;
    /// - `n`: a 0-d i64 (`num_batches_tracked`).
    fn fixture() -> Vec<u8> {
        let mut f = Vec::new();
        // 1. magic: LONG1 of 10 bytes.
        f.extend([0x80, 2, 0x8a, 10]);
        f.extend(&MAGIC.to_le_bytes()[..10]);
        f.push(b'.');
        // 2. protocol version.
        f.extend([0x80, 2]);
        f.extend(int(1001));
        f.push(b'.');
        // 3. sys_info.
        f.extend([0x80, 2, b'}', b'(']);
        f.extend(unicode("little_endian"));
        f.push(0x88);
        f.extend(b"u.");
        // 4. the state dict.
        f.extend([0x80, 2]);
        f.extend(b"ccollections\nOrderedDict\nq\x00)R(");
        f.extend(unicode("w"));
        f.extend(tensor(true, "FloatStorage", "10", 7, 1, &[2, 3], &[1, 2]));
        f.extend(unicode("b"));
        f.extend(tensor(false, "FloatStorage", "10", 7, 5, &[2], &[1]));
        f.extend(unicode("n"));
        f.extend(tensor(false, "LongStorage", "20", 1, 0, &[], &[]));
        // SETITEMS, then BUILD with an empty `_metadata` state.
        f.extend(b"u}b.");
        // 5. the storage keys.
        f.extend([0x80, 2, b']', b'(']);
        f.extend(unicode("20"));
        f.extend(unicode("10"));
        f.extend(b"e.");
        // Data, in key order.
        f.extend(1u64.to_le_bytes());
        f.extend(42i64.to_le_bytes());
        f.extend(7u64.to_le_bytes());
        for i in 0..7 {
            f.extend((i as f32).to_le_bytes());
        }
        f
    }

    fn f32s(t: &Tensor) -> Vec<f32> {
        t.data
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn reads_a_hand_made_legacy_checkpoint() {
        let t = read_legacy(&fixture()).unwrap();
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["w", "b", "n"]);
        let w = &t[0].1;
        assert_eq!(
            (w.dtype, w.shape.as_slice()),
            (DType::F32, &[2usize, 3][..])
        );
        // w[i][j] = s[1 + i + 2j]
        assert_eq!(f32s(w), [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        assert_eq!(f32s(&t[1].1), [5.0, 6.0]);
        let n = &t[2].1;
        assert_eq!((n.dtype, n.shape.len()), (DType::I64, 0));
        assert_eq!(i64::from_le_bytes(n.data[..].try_into().unwrap()), 42);
    }

    #[test]
    fn converts_to_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let pth = dir.path().join("x.pth");
        let out = dir.path().join("x.safetensors");
        std::fs::write(&pth, fixture()).unwrap();
        assert_eq!(convert(&pth, &out).unwrap(), 3);
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let w = st.tensor("w").unwrap();
        assert_eq!(w.shape(), [2, 3]);
        assert_eq!(w.dtype(), safetensors::Dtype::F32);
        assert_eq!(st.tensor("n").unwrap().dtype(), safetensors::Dtype::I64);
    }

    #[test]
    fn rejects_bad_input_clearly() {
        let good = fixture();
        // Truncated data.
        let err = read_legacy(&good[..good.len() - 3]).unwrap_err();
        assert!(
            format!("{err:#}").contains("truncated checkpoint"),
            "{err:#}"
        );
        // A zip checkpoint.
        let err = read_legacy(b"PK\x03\x04rest").unwrap_err();
        assert!(
            format!("{err:#}").contains("unsupported pickle opcode 0x50"),
            "{err:#}"
        );
        // A view that reaches past its storage: offset 5 with 3 elements of a 7-element storage.
        let mut f = good.clone();
        // `b`'s size tuple `(K 2 t` → `(K 3 t`.
        let b_at = f
            .windows(3)
            .position(|w| w == [b'K', 5, b'('])
            .expect("b's offset then size");
        f[b_at + 4] = 3;
        let err = read_legacy(&f).unwrap_err();
        assert!(format!("{err:#}").contains("tensor b: view"), "{err:#}");
        // An unknown global in place of a tensor is reported, not called.
        let mut f = good;
        let at = f
            .windows(18)
            .position(|w| w == b"_rebuild_tensor_v2")
            .unwrap();
        f[at + 1] = b'X';
        let err = read_legacy(&f).unwrap_err();
        assert!(
            format!("{err:#}").contains("not torch._utils._rebuild_tensor_v2"),
            "{err:#}"
        );
    }
}
