//! A bounded reader of GGUF headers: metadata and tensor infos, checked against the file
//! size and fixed limits before anything is allocated, and returned as candle's
//! `gguf_file::Content` so that the weights are then read by candle.
//!
//! candle's own `Content::read` trusts too much of a crafted file: `general.alignment = 0`
//! divides by zero, a tensor's element count can overflow, and it accepts tensors whose
//! rows do not fill whole quantization blocks (the model thread then panics at
//! inference). Every check here follows llama.cpp's `gguf.cpp`, which is what produces
//! and reads these files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Read;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};

/// The most metadata entries a header may declare (real models have a few dozen).
pub(crate) const MAX_METADATA_ENTRIES: u64 = 1 << 16;
/// The most tensors a header may declare (a 126-layer model has under 2,000).
pub(crate) const MAX_TENSORS: u64 = 1 << 16;
/// The longest metadata key or tensor name, in bytes (the GGUF specification's limit).
pub(crate) const MAX_NAME_BYTES: u64 = 65_535;
/// The longest string value, in bytes (chat templates are the longest, tens of KB).
pub(crate) const MAX_STRING_BYTES: u64 = 16 << 20;
/// The most elements in one metadata array (vocabularies have up to ~260k tokens and
/// merges).
pub(crate) const MAX_ARRAY_ELEMENTS: u64 = 1 << 22;
/// The most array elements in all metadata together: each takes ~32 bytes in memory
/// whatever its size on disk, so this bounds the header's memory at ~256 MiB.
pub(crate) const MAX_TOTAL_ARRAY_ELEMENTS: u64 = 1 << 23;
/// ggml's `GGML_MAX_DIMS`.
pub(crate) const MAX_TENSOR_DIMS: u32 = 4;
/// llama.cpp's default alignment of the data section and of every tensor in it.
const DEFAULT_ALIGNMENT: u64 = 32;

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GgufError {
    #[error("not a GGUF file")]
    NotGguf { magic: Vec<u8> },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Corrupt(String),
    #[error("tensor `{tensor}` has ggml type {type_id}, which Podium cannot read")]
    UnsupportedType { tensor: String, type_id: u32 },
}

/// Reads the header of a GGUF file of `file_size` bytes from `reader`, which stands at
/// its first byte. Reads nothing past the tensor infos.
pub(crate) fn read_header(reader: &mut impl Read, file_size: u64) -> Result<Content, GgufError> {
    let mut reader = Reader {
        inner: reader,
        position: 0,
        file_size,
        array_elements: 0,
        wide: true,
    };
    let mut magic = [0u8; 4];
    let n_read = reader.fill(&mut magic)?;
    if n_read < 4 || &magic != b"GGUF" {
        return Err(GgufError::NotGguf {
            magic: magic[..n_read].to_vec(),
        });
    }
    let version = reader.u32("the version")?;
    let versioned = match version {
        1 => VersionedMagic::GgufV1,
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        other => return corrupt(format!("unsupported GGUF version {other}")),
    };
    reader.wide = version >= 2;
    let n_tensors = reader.length("the tensor count")?;
    let n_metadata = reader.length("the metadata entry count")?;
    if n_tensors > MAX_TENSORS {
        return corrupt(format!(
            "{n_tensors} tensors (Podium reads at most {MAX_TENSORS})"
        ));
    }
    if n_metadata > MAX_METADATA_ENTRIES {
        return corrupt(format!(
            "{n_metadata} metadata entries (Podium reads at most {MAX_METADATA_ENTRIES})"
        ));
    }
    // Smallest possible entries: a key or name's length, a type and one byte of value;
    // a name's length, a dimension count, one dimension, a type and an offset.
    let prefix = reader.length_size();
    let needed = n_metadata * (prefix + 4 + 1) + n_tensors * (prefix + 4 + 4 + 4 + 8);
    if needed > reader.remaining() {
        return corrupt(format!(
            "the header declares {n_tensors} tensors and {n_metadata} metadata entries, \
             more than the {} bytes left in the file",
            reader.remaining()
        ));
    }

    let mut metadata = HashMap::with_capacity(n_metadata as usize);
    for index in 0..n_metadata {
        let key = reader.name(&format!("metadata entry {index}"))?;
        let value_type = reader.u32(&format!("the type of metadata `{key}`"))?;
        let value = reader.value(value_type, &key, None)?;
        match metadata.entry(key) {
            Entry::Occupied(entry) => {
                return corrupt(format!("metadata key `{}` appears twice", entry.key()));
            }
            Entry::Vacant(entry) => {
                entry.insert(value);
            }
        }
    }
    let alignment = alignment(&metadata)?;

    let mut tensor_infos = HashMap::with_capacity(n_tensors as usize);
    let mut sizes = Vec::with_capacity(n_tensors as usize);
    for index in 0..n_tensors {
        let name = reader.name(&format!("tensor {index}"))?;
        let (info, size) = reader.tensor_info(&name, alignment)?;
        sizes.push((name.clone(), info.offset, size));
        if tensor_infos.insert(name.clone(), info).is_some() {
            return corrupt(format!("tensor `{name}` appears twice"));
        }
    }

    let data_offset = reader
        .position
        .checked_next_multiple_of(alignment)
        .filter(|&offset| offset <= file_size)
        .ok_or_else(|| {
            GgufError::Corrupt(format!(
                "the tensor data would start past the end of the file ({file_size} bytes)"
            ))
        })?;
    let data_size = file_size - data_offset;
    for (name, offset, size) in sizes {
        if offset.checked_add(size).is_none_or(|end| end > data_size) {
            return corrupt(format!(
                "tensor `{name}` needs {size} bytes at offset {offset} of the data section, \
                 which has {data_size} bytes"
            ));
        }
    }
    Ok(Content {
        magic: versioned,
        metadata,
        tensor_infos,
        tensor_data_offset: data_offset,
    })
}

fn corrupt<T>(message: String) -> Result<T, GgufError> {
    Err(GgufError::Corrupt(message))
}

/// `general.alignment`: a power of two, as llama.cpp requires (it rounds offsets up to
/// it, and 0 would divide by zero).
fn alignment(metadata: &HashMap<String, Value>) -> Result<u64, GgufError> {
    let key = "general.alignment";
    let Some(value) = metadata.get(key) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let alignment = match *value {
        Value::U8(v) => u64::from(v),
        Value::U16(v) => u64::from(v),
        Value::U32(v) => u64::from(v),
        Value::U64(v) => v,
        _ => return corrupt(format!("metadata `{key}` is not an unsigned integer")),
    };
    if !alignment.is_power_of_two() {
        return corrupt(format!(
            "metadata `{key}` is {alignment}, not a power of two"
        ));
    }
    Ok(alignment)
}

/// ggml's type id → candle's type, for the types candle can read.
fn ggml_dtype(type_id: u32) -> Option<GgmlDType> {
    Some(match type_id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

struct Reader<'r, R> {
    inner: &'r mut R,
    position: u64,
    file_size: u64,
    /// Array elements read so far, against `MAX_TOTAL_ARRAY_ELEMENTS`.
    array_elements: u64,
    /// Lengths are u64 (GGUF v2 and v3) rather than u32 (v1).
    wide: bool,
}

impl<R: Read> Reader<'_, R> {
    fn remaining(&self) -> u64 {
        self.file_size.saturating_sub(self.position)
    }

    fn length_size(&self) -> u64 {
        if self.wide { 8 } else { 4 }
    }

    /// Reads as much of `buf` as the file has; returns how much that was.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, GgufError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.position += filled as u64;
        Ok(filled)
    }

    fn exact<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        if self.fill(&mut buf)? < N {
            return corrupt(format!("the file ends inside {what}"));
        }
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.exact(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.exact(what)?))
    }

    fn length(&mut self, what: &str) -> Result<u64, GgufError> {
        if self.wide {
            self.u64(what)
        } else {
            self.u32(what).map(u64::from)
        }
    }

    /// `len` bytes, checked against `max` and the rest of the file first.
    fn bytes(&mut self, len: u64, max: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        if len > max {
            return corrupt(format!("{what} is {len} bytes long (at most {max})"));
        }
        if len > self.remaining() {
            return corrupt(format!(
                "{what} is {len} bytes long, more than the {} bytes left in the file",
                self.remaining()
            ));
        }
        let mut buf = vec![0u8; len as usize];
        if self.fill(&mut buf)? < buf.len() {
            return corrupt(format!("the file ends inside {what}"));
        }
        Ok(buf)
    }

    fn string(&mut self, max: u64, what: &str) -> Result<String, GgufError> {
        let len = self.length(what)?;
        let mut bytes = self.bytes(len, max, what)?;
        // Strings are not NUL-terminated, but some converters wrote the NUL anyway.
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        String::from_utf8(bytes).map_err(|e| {
            GgufError::Corrupt(format!(
                "{what} is not UTF-8 (invalid byte at {})",
                e.utf8_error().valid_up_to()
            ))
        })
    }

    /// A metadata key or tensor name: non-empty UTF-8.
    fn name(&mut self, what: &str) -> Result<String, GgufError> {
        let name = self.string(MAX_NAME_BYTES, &format!("the name of {what}"))?;
        if name.is_empty() {
            return corrupt(format!("{what} has an empty name"));
        }
        Ok(name)
    }

    /// One metadata value of GGUF type `value_type`; arrays are not nested (llama.cpp
    /// does not nest them either).
    /// `index` is the element's index when the value is one of an array's.
    fn value(
        &mut self,
        value_type: u32,
        key: &str,
        index: Option<u64>,
    ) -> Result<Value, GgufError> {
        let what = || match index {
            None => format!("metadata `{key}`"),
            Some(index) => format!("metadata `{key}`[{index}]"),
        };
        Ok(match value_type {
            0 => Value::U8(self.exact::<1>(&what())?[0]),
            1 => Value::I8(i8::from_le_bytes(self.exact(&what())?)),
            2 => Value::U16(u16::from_le_bytes(self.exact(&what())?)),
            3 => Value::I16(i16::from_le_bytes(self.exact(&what())?)),
            4 => Value::U32(u32::from_le_bytes(self.exact(&what())?)),
            5 => Value::I32(i32::from_le_bytes(self.exact(&what())?)),
            6 => Value::F32(f32::from_le_bytes(self.exact(&what())?)),
            7 => match self.exact::<1>(&what())?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return corrupt(format!("{} is a boolean of value {other}", what())),
            },
            8 => Value::String(self.string(MAX_STRING_BYTES, &what())?),
            9 if index.is_none() => self.array(key)?,
            9 => return corrupt(format!("{} is an array of arrays", what())),
            10 => Value::U64(u64::from_le_bytes(self.exact(&what())?)),
            11 => Value::I64(i64::from_le_bytes(self.exact(&what())?)),
            12 => Value::F64(f64::from_le_bytes(self.exact(&what())?)),
            other => return corrupt(format!("{} has unknown value type {other}", what())),
        })
    }

    fn array(&mut self, key: &str) -> Result<Value, GgufError> {
        let element_type = self.u32(&format!("the element type of metadata `{key}`"))?;
        let len = self.length(&format!("the length of metadata `{key}`"))?;
        let min_size = match element_type {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 => self.length_size(),
            10..=12 => 8,
            // Nested or unknown: `value` names the problem when the first element is read.
            _ => 0,
        };
        if len > MAX_ARRAY_ELEMENTS {
            return corrupt(format!(
                "metadata `{key}` has {len} elements (at most {MAX_ARRAY_ELEMENTS})"
            ));
        }
        self.array_elements += len;
        if self.array_elements > MAX_TOTAL_ARRAY_ELEMENTS {
            return corrupt(format!(
                "metadata arrays hold more than {MAX_TOTAL_ARRAY_ELEMENTS} elements in all \
                 (at metadata `{key}`)"
            ));
        }
        if len * min_size > self.remaining() {
            return corrupt(format!(
                "metadata `{key}` has {len} elements, more than the {} bytes left in the file hold",
                self.remaining()
            ));
        }
        let mut values = Vec::with_capacity(len as usize);
        for index in 0..len {
            values.push(self.value(element_type, key, Some(index))?);
        }
        Ok(Value::Array(values))
    }

    /// One tensor info and the size of its data in bytes, checked as llama.cpp does:
    /// 1 to 4 dimensions, rows made of whole blocks of its type, a size that fits in
    /// 64 bits, and an offset aligned to `alignment`.
    fn tensor_info(&mut self, name: &str, alignment: u64) -> Result<(TensorInfo, u64), GgufError> {
        let what = format!("tensor `{name}`");
        let n_dims = self.u32(&what)?;
        if n_dims == 0 || n_dims > MAX_TENSOR_DIMS {
            return corrupt(format!(
                "{what} has {n_dims} dimensions (1 to {MAX_TENSOR_DIMS})"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let dim = self.length(&what)?;
            if dim == 0 {
                return corrupt(format!("{what} has a dimension of size 0"));
            }
            dims.push(dim);
        }
        let type_id = self.u32(&what)?;
        let offset = self.u64(&what)?;
        let dtype = ggml_dtype(type_id).ok_or_else(|| GgufError::UnsupportedType {
            tensor: name.to_owned(),
            type_id,
        })?;
        let n_elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64 && usize::try_from(n).is_ok())
            .ok_or_else(|| {
                GgufError::Corrupt(format!("{what} has shape {dims:?}, too many elements"))
            })?;
        let block = dtype.block_size() as u64;
        if dims[0] % block != 0 {
            return corrupt(format!(
                "{what} has rows of {} elements, not a multiple of its type's block of {block}",
                dims[0]
            ));
        }
        let size = (n_elements / block)
            .checked_mul(dtype.type_size() as u64)
            .ok_or_else(|| GgufError::Corrupt(format!("{what} has a size beyond 64 bits")))?;
        if offset % alignment != 0 {
            return corrupt(format!(
                "{what} starts at offset {offset}, not a multiple of the alignment {alignment}"
            ));
        }
        // GGUF lists dimensions innermost first; candle's shapes are outermost first.
        let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
        Ok((
            TensorInfo {
                ggml_dtype: dtype,
                shape: shape.into(),
                offset,
            },
            size,
        ))
    }
}
