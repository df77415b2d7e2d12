//! GGUF loading and our own transformer forward pass over quantized weights: one
//! transformer block for every supported family (llama, qwen2, qwen3, phi3, gemma3),
//! steered by the family's [`crate::config::BlockOptions`].

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};

use crate::activation::gated;
use crate::config::{Architecture, MAX_VOCAB_SIZE, ModelConfig, RopeParams, RopeStyle};
use crate::error::{LocalError, Result};
use crate::gguf::GgufError;
use crate::qkernels::QuantMatrix;

/// How weights are kept in memory after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// Keep every tensor in the file's own quantization.
    AsStored,
    /// Keep every tensor as stored where our own kernels ([`crate::qkernels`]) multiply
    /// it (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K on a CPU with AVX2); elsewhere
    /// re-quantize the types candle has no SIMD kernels for (Q4_1, Q5_0, Q5_1) to Q8_0,
    /// which costs a fraction of a second at load and about 1.7x their memory, and runs
    /// several times faster than candle's scalar code for them; Q8_0 holds every
    /// Q4_1/Q5_x value almost exactly.
    #[default]
    Q8_0ForSlowTypes,
    /// Dequantize every matrix to f32: a slow, memory-hungry reference (no quantization
    /// of activations either), for checking the quantized paths.
    F32Reference,
}

impl WeightFormat {
    /// The name specs give it (`weights=q8|stored|f32`).
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::AsStored => "stored",
            WeightFormat::Q8_0ForSlowTypes => "q8",
            WeightFormat::F32Reference => "f32",
        }
    }
}

/// The keys and values of one model's attention, for every position computed so far.
///
/// Cloning is cheap (tensors are reference-counted), which is how a shared context
/// is reused by several continuations.
#[derive(Debug, Clone)]
pub(crate) struct KvCache {
    /// Per layer: keys and values, each `[batch, n_kv_heads, len, head_dim]`.
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    pub(crate) fn new(n_layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; n_layers],
            len: 0,
        }
    }

    /// Number of positions held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Fewest rows for which a [`Linear`] uses its dense copy: below this, candle's quantized
/// kernels (one pass over compact weights) win; above it, f16 gemm does (measured with
/// `examples/matmul_kernels.rs`: 2x on 128 rows x 576 columns, 3x slower on one row).
const DENSE_MIN_ROWS: usize = 8;

/// A weight matrix used as `x @ W^T`.
///
/// The quantized form serves single rows (decoding): through our own kernels
/// (`direct`, the file's blocks as stored) where there are some for its type, else
/// through candle's. For batches (prefill, scoring) an optional dense f16 copy is used:
/// candle's f16 gemm runs them about twice as fast as its quantized kernels, and with
/// 16-bit activations instead of 8-bit it is also much closer to an f32 forward pass.
struct Linear {
    quantized: QMatMul,
    direct: Option<QuantMatrix>,
    dense: Option<QMatMul>,
    /// Added to every output row (`[out]`, f32), for the families whose files carry one.
    bias: Option<Tensor>,
}

impl Linear {
    /// The matrix `tensor` in `format`, with `dense` as its copy for batches.
    fn new(tensor: Arc<QTensor>, format: WeightFormat, dense: Option<QMatMul>) -> Result<Linear> {
        if format == WeightFormat::F32Reference {
            return Ok(Linear {
                quantized: QMatMul::Tensor(tensor.dequantize(&Device::Cpu)?),
                direct: None,
                dense,
                bias: None,
            });
        }
        let direct = QuantMatrix::new(tensor.clone()).ok();
        let quantized = match direct {
            Some(_) => QMatMul::from_arc(tensor)?,
            None => to_matmul(tensor, format)?,
        };
        Ok(Linear {
            quantized,
            direct,
            dense,
            bias: None,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(D::Minus1)?.max(1);
        let out = match (&self.dense, &self.direct) {
            (Some(dense), _) if rows >= DENSE_MIN_ROWS => dense.forward(x)?,
            (_, Some(direct)) => {
                let mut dims = x.dims().to_vec();
                if dims.last() != Some(&direct.cols()) {
                    return Err(LocalError::InvalidInput(format!(
                        "a product of {:?} with a matrix of {} columns",
                        dims,
                        direct.cols()
                    )));
                }
                let values = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let out = direct.matmul(&values)?;
                if let Some(last) = dims.last_mut() {
                    *last = direct.rows();
                }
                Tensor::from_vec(out, dims, x.device())?
            }
            _ => self.quantized.forward(x)?,
        };
        match &self.bias {
            Some(bias) => Ok(out.broadcast_add(&bias.to_dtype(out.dtype())?)?),
            None => Ok(out),
        }
    }
}

struct Layer {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    post_attn_norm: Option<Tensor>,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Option<Tensor>,
}

/// A loaded model: configuration and weights, ready to run on the CPU.
pub(crate) struct Model {
    pub(crate) config: ModelConfig,
    pub(crate) vocab_size: usize,
    embedding: Arc<QTensor>,
    output: Linear,
    output_norm: Tensor,
    /// The per-dimension RoPE frequency divisors in use: Llama 3.1's `rope_freqs.weight`,
    /// or one of Phi-3's long/short factors (see [`Model::with_context`]).
    rope_freq_factors: Option<Vec<f32>>,
    /// Phi-3's long and short RoPE factors, when the file has them.
    long_short_rope_factors: Option<(Vec<f32>, Vec<f32>)>,
    layers: Vec<Layer>,
    device: Device,
}

/// A run of packed tokens whose attention is computed on its own: its tokens see the
/// cached positions and tokens of the same run only. `masks` are the additive masks
/// (global, sliding-window), `[len, cache + len]`.
struct Segment {
    range: std::ops::Range<usize>,
    masks: (Tensor, Tensor),
}

/// An opened GGUF file: parsed header plus the reader its tensors come from.
pub(crate) struct GgufFile {
    pub(crate) content: Content,
    reader: File,
}

/// The header (metadata and tensor infos) of the GGUF file at `path`, read and checked
/// by the bounded reader that loading uses; no weights are read. For tools that need
/// only the metadata (a tokenizer, say) of a file that may be hostile.
pub fn read_gguf_header(path: &Path) -> Result<Content> {
    GgufFile::open(path).map(|gguf| gguf.content)
}

/// Reads a GGUF header from `reader` (the whole file is `file_size` bytes), with errors
/// that name `path`.
pub(crate) fn read_content(reader: &mut impl Read, file_size: u64, path: &Path) -> Result<Content> {
    crate::gguf::read_header(reader, file_size).map_err(|e| match e {
        GgufError::NotGguf { magic } => LocalError::NotGguf {
            path: path.to_path_buf(),
            magic,
        },
        GgufError::Io(source) => LocalError::Io {
            path: path.to_path_buf(),
            source,
        },
        GgufError::Corrupt(message) => LocalError::CorruptHeader {
            path: path.to_path_buf(),
            message,
        },
        GgufError::UnsupportedType { tensor, type_id } => LocalError::UnsupportedQuantization {
            path: path.to_path_buf(),
            tensor,
            type_name: ggml_type_name(type_id).to_string(),
            type_id,
        },
    })
}

/// ggml's type ids, to name a type candle cannot read.
fn ggml_type_name(type_id: u32) -> &'static str {
    match type_id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}

impl GgufFile {
    /// Opens `path` and reads its header with the bounded reader of [`crate::gguf`], so
    /// that a corrupt or hostile file gets a clear error naming the file and the key.
    pub(crate) fn open(path: &Path) -> Result<GgufFile> {
        let io_error = |source| LocalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = File::open(path).map_err(io_error)?;
        let file_size = reader.metadata().map_err(io_error)?.len();
        let content = read_content(&mut BufReader::new(&mut reader), file_size, path)?;
        Ok(GgufFile { content, reader })
    }

    fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn qtensor(&mut self, name: &str) -> Result<QTensor> {
        if !self.has_tensor(name) {
            return Err(LocalError::MissingTensor { name: name.into() });
        }
        Ok(self.content.tensor(&mut self.reader, name, &Device::Cpu)?)
    }

    /// A dense f32 tensor (norm weights), checked against the expected shape.
    fn dense(&mut self, name: &str, len: usize) -> Result<Tensor> {
        let tensor = self.qtensor(name)?;
        check_shape(name, tensor.shape().dims(), &[len])?;
        Ok(tensor.dequantize(&Device::Cpu)?)
    }

    /// A matrix `[out, in]` for `x @ W^T`, optionally re-quantized, with a dense copy for
    /// batches in the `dense` dtype when one is asked for.
    fn matrix(
        &mut self,
        name: &str,
        out_dim: usize,
        in_dim: usize,
        format: WeightFormat,
        dense: Option<DType>,
    ) -> Result<Linear> {
        let tensor = self.qtensor(name)?;
        check_shape(name, tensor.shape().dims(), &[out_dim, in_dim])?;
        linear(tensor, format, dense)
    }

    /// The matrix `name`, `[sum(rows), in]`, split into consecutive blocks of `rows` rows,
    /// one [`Linear`] each: fused QKV and fused gate/up. Splitting rows is exact (each
    /// output row of a product depends on its weight row only).
    fn split_matrix(
        &mut self,
        name: &str,
        rows: &[usize],
        in_dim: usize,
        format: WeightFormat,
        dense: Option<DType>,
    ) -> Result<Vec<Linear>> {
        let tensor = self.qtensor(name)?;
        check_shape(name, tensor.shape().dims(), &[rows.iter().sum(), in_dim])?;
        split_rows(name, &tensor, rows)?
            .into_iter()
            .map(|part| linear(part, format, dense))
            .collect()
    }

    /// The vector `name` of `len` values, when the file has it.
    fn optional_dense(&mut self, name: &str, len: usize) -> Result<Option<Tensor>> {
        if self.has_tensor(name) {
            self.dense(name, len).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A [`Linear`] over `tensor`, optionally re-quantized, with a dense copy for batches in
/// the `dense` dtype when one is asked for.
fn linear(tensor: QTensor, format: WeightFormat, dense: Option<DType>) -> Result<Linear> {
    let dense = dense_copy(&tensor, format, dense)?;
    Linear::new(Arc::new(tensor), format, dense)
}

/// `tensor` (`[rows, in]`) cut into consecutive blocks of `rows` rows, without
/// re-quantizing: a row is whole blocks of its type (the header reader checked that), so
/// each block of rows is a byte range of the data.
fn split_rows(name: &str, tensor: &QTensor, rows: &[usize]) -> Result<Vec<QTensor>> {
    let (_, in_dim) = tensor.shape().dims2()?;
    let dtype = tensor.dtype();
    let row_bytes = in_dim / dtype.block_size() * dtype.type_size();
    let data = tensor.data()?;
    let mut start = 0;
    let mut parts = Vec::with_capacity(rows.len());
    for &n in rows {
        let end = start + n * row_bytes;
        let bytes = data
            .get(start..end)
            .ok_or_else(|| LocalError::InvalidTensor {
                name: name.into(),
                message: format!("{} bytes of data, fewer than its shape needs", data.len()),
            })?;
        let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, dtype)?;
        parts.push(QTensor::new(storage, (n, in_dim))?);
        start = end;
    }
    Ok(parts)
}

/// The rows `start..start + len` of a bias vector.
fn bias_part(bias: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    Ok(bias.narrow(0, start, len)?.contiguous()?)
}

/// The architecture `general.architecture` names, if this engine runs it.
fn architecture_of(content: &Content, path: &Path) -> Result<Architecture> {
    let key = "general.architecture";
    let name = match content.metadata.get(key) {
        Some(Value::String(name)) => name.as_str(),
        Some(_) => {
            return Err(LocalError::InvalidMetadata {
                key: key.into(),
                message: "expected a string".into(),
            });
        }
        None => return Err(LocalError::MissingMetadata { key: key.into() }),
    };
    Architecture::from_name(name).ok_or_else(|| LocalError::UnsupportedArchitecture {
        path: path.to_path_buf(),
        architecture: name.to_string(),
    })
}

/// The model a GGUF header describes, checked before any weight is read: its
/// hyper-parameters within bounds (see [`ModelConfig::from_gguf`]) and every tensor the
/// forward pass uses present, with the shape they imply. (The header reader has already
/// checked that each tensor's bytes lie inside the file.) Returns the configuration and
/// the vocabulary size.
pub(crate) fn inspect(content: &Content, path: &Path) -> Result<(ModelConfig, usize)> {
    let architecture = architecture_of(content, path)?;
    let config = ModelConfig::from_gguf(content, architecture)?;
    let vocab_size = check_tensors(content, &config)?;
    Ok((config, vocab_size))
}

/// Checks the shape of every tensor the forward pass of `config` reads; returns the
/// vocabulary size (the embedding's rows).
fn check_tensors(content: &Content, config: &ModelConfig) -> Result<usize> {
    let dims = |name: &str| -> Result<&[usize]> {
        content
            .tensor_infos
            .get(name)
            .map(|info| info.shape.dims())
            .ok_or_else(|| LocalError::MissingTensor { name: name.into() })
    };
    let hidden = config.hidden_size;
    let embedding = "token_embd.weight";
    let vocab_size = match dims(embedding)? {
        &[vocab, h] if h == hidden => vocab,
        actual => {
            return Err(LocalError::TensorShape {
                name: embedding.into(),
                actual: actual.to_vec(),
                expected: vec![VOCAB_PLACEHOLDER, hidden],
            });
        }
    };
    if !(2..=MAX_VOCAB_SIZE).contains(&vocab_size) {
        return Err(LocalError::InvalidTensor {
            name: embedding.into(),
            message: format!(
                "a vocabulary of {vocab_size} tokens (2 to {MAX_VOCAB_SIZE} expected)"
            ),
        });
    }
    let has = |name: &str| content.tensor_infos.contains_key(name);
    let block = config.block;
    let mut expected: Vec<(String, Vec<usize>)> = vec![("output_norm.weight".into(), vec![hidden])];
    // Optional tensors are checked when present; the loader uses them when present.
    let optional = |expected: &mut Vec<(String, Vec<usize>)>, name: String, shape| {
        if has(&name) {
            expected.push((name, shape));
        }
    };
    optional(
        &mut expected,
        "output.weight".into(),
        vec![vocab_size, hidden],
    );
    if block.head_bias {
        optional(&mut expected, "output.bias".into(), vec![vocab_size]);
    }
    if block.rope_freq_factors {
        optional(
            &mut expected,
            "rope_freqs.weight".into(),
            vec![config.rope_dim / 2],
        );
    }
    // Phi-3's long-context RoPE factors: both or neither (llama.cpp would run a context
    // past the original one with no factors at all). Other families do not read them
    // (llama's `longrope` scaling type is refused with the type).
    let long_short = ["rope_factors_long.weight", "rope_factors_short.weight"];
    match long_short.map(has) {
        [false, false] => {}
        [true, true] if block.long_short_rope_factors => {
            for name in long_short {
                expected.push((name.into(), vec![config.rope_dim / 2]));
            }
        }
        _ => {
            let name = long_short
                .iter()
                .find(|n| has(n))
                .copied()
                .unwrap_or(long_short[0]);
            return Err(LocalError::UnsupportedFeature(format!(
                "long-context RoPE factors (tensor `{name}`) without their pair, or for `{}`",
                config.architecture.name()
            )));
        }
    }
    let q_dim = config.n_heads * config.head_dim;
    let kv_dim = config.n_kv_heads * config.head_dim;
    let ffn = config.ffn_size;
    for il in 0..config.n_layers {
        let name = |suffix: &str| format!("blk.{il}.{suffix}");
        let mut tensor = |suffix: &str, shape: Vec<usize>| {
            expected.push((name(&format!("{suffix}.weight")), shape));
        };
        tensor("attn_norm", vec![hidden]);
        // Every family may store Q, K and V fused (`attn_qkv`) or apart, with optional
        // biases (llama.cpp's `create_tensor_qkv`).
        let fused_qkv = has(&name("attn_qkv.weight"));
        if fused_qkv {
            tensor("attn_qkv", vec![q_dim + 2 * kv_dim, hidden]);
        } else {
            tensor("attn_q", vec![q_dim, hidden]);
            tensor("attn_k", vec![kv_dim, hidden]);
            tensor("attn_v", vec![kv_dim, hidden]);
        }
        tensor("attn_output", vec![hidden, q_dim]);
        tensor("ffn_norm", vec![hidden]);
        if block.fused_gate_up {
            tensor("ffn_up", vec![2 * ffn, hidden]);
        } else {
            tensor("ffn_gate", vec![ffn, hidden]);
            tensor("ffn_up", vec![ffn, hidden]);
        }
        tensor("ffn_down", vec![hidden, ffn]);
        if block.qk_norm {
            tensor("attn_q_norm", vec![config.head_dim]);
            tensor("attn_k_norm", vec![config.head_dim]);
        }
        if block.post_norms {
            tensor("post_attention_norm", vec![hidden]);
            tensor("post_ffw_norm", vec![hidden]);
        }
        if fused_qkv {
            optional(
                &mut expected,
                name("attn_qkv.bias"),
                vec![q_dim + 2 * kv_dim],
            );
        }
        optional(&mut expected, name("attn_q.bias"), vec![q_dim]);
        optional(&mut expected, name("attn_k.bias"), vec![kv_dim]);
        optional(&mut expected, name("attn_v.bias"), vec![kv_dim]);
        if block.output_and_ffn_biases {
            optional(&mut expected, name("attn_output.bias"), vec![hidden]);
            optional(&mut expected, name("ffn_gate.bias"), vec![ffn]);
            optional(&mut expected, name("ffn_up.bias"), vec![ffn]);
            optional(&mut expected, name("ffn_down.bias"), vec![hidden]);
        }
    }
    for (name, shape) in &expected {
        check_shape(name, dims(name)?, shape)?;
    }
    Ok(vocab_size)
}

/// Stands for "any number of rows" in the expected shape of the embedding.
const VOCAB_PLACEHOLDER: usize = 0;

/// The f16 copy of `tensor` for batched rows (see [`Linear`]).
fn dense_copy(
    tensor: &QTensor,
    format: WeightFormat,
    dense: Option<DType>,
) -> Result<Option<QMatMul>> {
    let Some(dtype) = dense else {
        return Ok(None);
    };
    if format == WeightFormat::F32Reference {
        return Ok(None);
    }
    // Every matrix, including those candle has tiled int8 kernels for (Q8_0/Q4_K/Q6_K with
    // an inner size that is a multiple of 256): those kernels quantize activations to
    // 8 bits per 256 values, which alone moved SmolLM2's log-probs by 0.07 nats/token
    // against an f32 forward pass, for about 7% of HellaSwag wall time.
    let dense = tensor.dequantize(&Device::Cpu)?.to_dtype(dtype)?;
    Ok(Some(if dtype == DType::F16 {
        QMatMul::TensorF16(dense)
    } else {
        QMatMul::Tensor(dense)
    }))
}

fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual != expected {
        return Err(LocalError::TensorShape {
            name: name.into(),
            actual: actual.to_vec(),
            expected: expected.to_vec(),
        });
    }
    Ok(())
}

/// candle's form of a matrix that our kernels do not multiply.
fn to_matmul(tensor: Arc<QTensor>, format: WeightFormat) -> Result<QMatMul> {
    let slow = matches!(
        tensor.dtype(),
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    );
    Ok(match format {
        WeightFormat::Q8_0ForSlowTypes if slow => {
            let dense = tensor.dequantize(&Device::Cpu)?;
            QMatMul::from_qtensor(QTensor::quantize(&dense, GgmlDType::Q8_0)?)?
        }
        WeightFormat::F32Reference => QMatMul::Tensor(tensor.dequantize(&Device::Cpu)?),
        _ => QMatMul::from_arc(tensor)?,
    })
}

impl Model {
    /// Builds the model from an opened GGUF file.
    /// `dense` keeps copies of every matrix in that dtype (f16 or f32) for batched rows
    /// (see [`Linear`]); they cost 2 or 4 bytes per weight.
    /// Every error names the file.
    pub(crate) fn load(
        gguf: &mut GgufFile,
        path: &Path,
        format: WeightFormat,
        dense: Option<DType>,
    ) -> Result<Model> {
        Model::load_weights(gguf, path, format, dense).map_err(|e| e.in_file(path))
    }

    fn load_weights(
        gguf: &mut GgufFile,
        path: &Path,
        format: WeightFormat,
        dense: Option<DType>,
    ) -> Result<Model> {
        let (config, _) = inspect(&gguf.content, path)?;
        let config_context = config.context_length;
        let block = config.block;
        let hidden = config.hidden_size;
        let q_dim = config.n_heads * config.head_dim;
        let kv_dim = config.n_kv_heads * config.head_dim;
        let ffn = config.ffn_size;

        let embedding = gguf.qtensor("token_embd.weight")?;
        let embedding_dims = embedding.shape().dims().to_vec();
        let vocab_size = match embedding_dims.as_slice() {
            [vocab, h] if *h == hidden => *vocab,
            _ => {
                return Err(LocalError::TensorShape {
                    name: "token_embd.weight".into(),
                    actual: embedding_dims,
                    expected: vec![0, hidden],
                });
            }
        };
        let embedding = Arc::new(embedding);
        // Tied embeddings: without `output.weight` the output head is the embedding matrix.
        let mut output = if gguf.has_tensor("output.weight") {
            gguf.matrix("output.weight", vocab_size, hidden, format, dense)?
        } else {
            // As stored (not re-quantized): the embedding's own tensor, shared.
            let format = match format {
                WeightFormat::F32Reference => format,
                _ => WeightFormat::AsStored,
            };
            Linear::new(
                embedding.clone(),
                format,
                dense_copy(&embedding, format, dense)?,
            )?
        };
        if block.head_bias {
            output.bias = gguf.optional_dense("output.bias", vocab_size)?;
        }
        let output_norm = gguf.dense("output_norm.weight", hidden)?;
        let mut rope_factors = |name: &str| -> Result<Option<Vec<f32>>> {
            let Some(factors) = gguf.optional_dense(name, config.rope_dim / 2)? else {
                return Ok(None);
            };
            let factors = factors.to_vec1::<f32>()?;
            if let Some(bad) = factors.iter().find(|f| !f.is_finite() || **f <= 0.0) {
                return Err(LocalError::InvalidTensor {
                    name: name.into(),
                    message: format!("a frequency factor of {bad} (positive expected)"),
                });
            }
            Ok(Some(factors))
        };
        let rope_freq_factors = if block.rope_freq_factors {
            rope_factors("rope_freqs.weight")?
        } else {
            None
        };
        let long_short_rope_factors = if block.long_short_rope_factors {
            match (
                rope_factors("rope_factors_long.weight")?,
                rope_factors("rope_factors_short.weight")?,
            ) {
                (Some(long), Some(short)) => Some((long, short)),
                _ => None,
            }
        } else {
            None
        };

        let mut layers = Vec::with_capacity(config.n_layers);
        for il in 0..config.n_layers {
            let name = |suffix: &str| format!("blk.{il}.{suffix}.weight");
            let bias_name = |suffix: &str| format!("blk.{il}.{suffix}.bias");
            let with_bias = |mut linear: Linear, bias: Option<Tensor>| {
                linear.bias = bias;
                linear
            };
            let (q, k, v) = if gguf.has_tensor(&name("attn_qkv")) {
                let sizes = [q_dim, kv_dim, kv_dim];
                let mut parts = gguf
                    .split_matrix(&name("attn_qkv"), &sizes, hidden, format, dense)?
                    .into_iter();
                let fused_bias = gguf.optional_dense(&bias_name("attn_qkv"), sizes.iter().sum())?;
                let separate_biases = (
                    gguf.optional_dense(&bias_name("attn_q"), q_dim)?,
                    gguf.optional_dense(&bias_name("attn_k"), kv_dim)?,
                    gguf.optional_dense(&bias_name("attn_v"), kv_dim)?,
                );
                // A fused bias, or else separate ones when all three are there (llama.cpp's rule).
                let biases = match (fused_bias, separate_biases) {
                    (Some(b), _) => [
                        Some(bias_part(&b, 0, q_dim)?),
                        Some(bias_part(&b, q_dim, kv_dim)?),
                        Some(bias_part(&b, q_dim + kv_dim, kv_dim)?),
                    ],
                    (None, (Some(bq), Some(bk), Some(bv))) => [Some(bq), Some(bk), Some(bv)],
                    (None, _) => [None, None, None],
                };
                let [bq, bk, bv] = biases;
                let mut next = || {
                    parts.next().ok_or_else(|| LocalError::InvalidTensor {
                        name: name("attn_qkv"),
                        message: "cannot be split into Q, K and V".into(),
                    })
                };
                (
                    with_bias(next()?, bq),
                    with_bias(next()?, bk),
                    with_bias(next()?, bv),
                )
            } else {
                (
                    with_bias(
                        gguf.matrix(&name("attn_q"), q_dim, hidden, format, dense)?,
                        gguf.optional_dense(&bias_name("attn_q"), q_dim)?,
                    ),
                    with_bias(
                        gguf.matrix(&name("attn_k"), kv_dim, hidden, format, dense)?,
                        gguf.optional_dense(&bias_name("attn_k"), kv_dim)?,
                    ),
                    with_bias(
                        gguf.matrix(&name("attn_v"), kv_dim, hidden, format, dense)?,
                        gguf.optional_dense(&bias_name("attn_v"), kv_dim)?,
                    ),
                )
            };
            let optional_bias = |gguf: &mut GgufFile, suffix: &str, len: usize| {
                if block.output_and_ffn_biases {
                    gguf.optional_dense(&bias_name(suffix), len)
                } else {
                    Ok(None)
                }
            };
            let (gate, up) = if block.fused_gate_up {
                let mut parts = gguf
                    .split_matrix(&name("ffn_up"), &[ffn, ffn], hidden, format, dense)?
                    .into_iter();
                match (parts.next(), parts.next()) {
                    (Some(gate), Some(up)) => (gate, up),
                    _ => {
                        return Err(LocalError::InvalidTensor {
                            name: name("ffn_up"),
                            message: "cannot be split into gate and up".into(),
                        });
                    }
                }
            } else {
                (
                    with_bias(
                        gguf.matrix(&name("ffn_gate"), ffn, hidden, format, dense)?,
                        optional_bias(gguf, "ffn_gate", ffn)?,
                    ),
                    with_bias(
                        gguf.matrix(&name("ffn_up"), ffn, hidden, format, dense)?,
                        optional_bias(gguf, "ffn_up", ffn)?,
                    ),
                )
            };
            let norm_if = |gguf: &mut GgufFile, present: bool, suffix: &str, len: usize| {
                if present {
                    gguf.dense(&name(suffix), len).map(Some)
                } else {
                    Ok(None)
                }
            };
            layers.push(Layer {
                attn_norm: gguf.dense(&name("attn_norm"), hidden)?,
                q,
                k,
                v,
                o: with_bias(
                    gguf.matrix(&name("attn_output"), hidden, q_dim, format, dense)?,
                    optional_bias(gguf, "attn_output", hidden)?,
                ),
                q_norm: norm_if(gguf, block.qk_norm, "attn_q_norm", config.head_dim)?,
                k_norm: norm_if(gguf, block.qk_norm, "attn_k_norm", config.head_dim)?,
                post_attn_norm: norm_if(gguf, block.post_norms, "post_attention_norm", hidden)?,
                ffn_norm: gguf.dense(&name("ffn_norm"), hidden)?,
                gate,
                up,
                down: with_bias(
                    gguf.matrix(&name("ffn_down"), hidden, ffn, format, dense)?,
                    optional_bias(gguf, "ffn_down", hidden)?,
                ),
                post_ffn_norm: norm_if(gguf, block.post_norms, "post_ffw_norm", hidden)?,
            });
        }
        Ok(Model {
            config,
            vocab_size,
            embedding,
            output,
            output_norm,
            rope_freq_factors,
            long_short_rope_factors,
            layers,
            device: Device::Cpu,
        }
        .with_context(config_context))
    }

    /// Picks what depends on the context length the model will run on: a Phi-3
    /// long-context model's long RoPE factors past its original context, else its short
    /// ones (llama.cpp's `get_rope_factors` with the context size as `n_ctx_seq`).
    /// [`Model::load`] picks for the training context.
    pub(crate) fn with_context(mut self, max_context: usize) -> Model {
        if let Some((long, short)) = &self.long_short_rope_factors {
            self.rope_freq_factors = Some(if max_context > self.config.rope_original_context {
                long.clone()
            } else {
                short.clone()
            });
        }
        self
    }

    pub(crate) fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layers)
    }

    /// Runs `tokens` (`batch` rows of equal length, row-major) after the positions already
    /// in `cache`, appends their keys and values to it, and returns the final-normed hidden
    /// states of the flattened rows `rows` (`[rows.len(), hidden]`).
    ///
    /// A cache holding one sequence may be extended by a larger batch: every row then
    /// continues that same prefix.
    pub(crate) fn forward(
        &self,
        tokens: &[u32],
        batch: usize,
        cache: &mut KvCache,
        rows: &[usize],
    ) -> Result<Tensor> {
        if batch == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(batch) {
            return Err(LocalError::InvalidInput(format!(
                "{} tokens cannot form {batch} equal rows",
                tokens.len()
            )));
        }
        let seq_len = tokens.len() / batch;
        let start = cache.len;
        let positions: Vec<usize> = (start..start + seq_len).collect();
        let window = self.config.sliding_window;
        let whole = Segment {
            range: 0..seq_len,
            masks: (
                attention_mask(start, seq_len, None, &self.device)?,
                attention_mask(start, seq_len, window, &self.device)?,
            ),
        };
        let hidden = self.forward_inner(tokens, batch, &positions, &[whole], cache, rows)?;
        cache.len += seq_len;
        Ok(hidden)
    }

    /// Runs a tree of token paths packed into one row after the sequence in `cache`:
    /// `parents[i]` is the index of the token `tokens[i]` follows, or `None` for a token
    /// that directly follows the cached sequence. Each token sees the cache and its own
    /// ancestors only, at the position its depth gives it, so a shared context and all of
    /// its continuations run in one forward call without padding.
    ///
    /// Returns the final-normed hidden states of `rows`. The cache is left holding the
    /// packed tree, which no further tokens can follow: callers pass a throwaway clone.
    pub(crate) fn forward_tree(
        &self,
        tokens: &[u32],
        parents: &[Option<usize>],
        cache: &mut KvCache,
        rows: &[usize],
    ) -> Result<Tensor> {
        if tokens.is_empty() || parents.len() != tokens.len() {
            return Err(LocalError::InvalidInput(format!(
                "a packed tree needs one parent per token ({} tokens, {} parents)",
                tokens.len(),
                parents.len()
            )));
        }
        let start = cache.len;
        let mut positions = Vec::with_capacity(tokens.len());
        for (i, parent) in parents.iter().enumerate() {
            let position = match *parent {
                None => start,
                Some(p) if p < i => positions[p] + 1,
                Some(p) => {
                    return Err(LocalError::InvalidInput(format!(
                        "token {i} of a packed tree follows token {p}, which is not before it"
                    )));
                }
            };
            positions.push(position);
        }
        // Independent subtrees (no token follows one outside its own run) attend apart,
        // so packing several requests costs no attention across them. A run ends before
        // token `i` when no later token follows anything before `i`.
        let mut later_min_parent = vec![usize::MAX; tokens.len() + 1];
        for i in (0..tokens.len()).rev() {
            later_min_parent[i] = later_min_parent[i + 1].min(parents[i].unwrap_or(usize::MAX));
        }
        let mut segments = Vec::new();
        let mut begin = 0;
        for (end, &min_parent) in later_min_parent.iter().enumerate().skip(1) {
            if end == tokens.len() || min_parent >= end {
                let range = begin..end;
                let mask = |window| {
                    tree_mask(
                        start,
                        &parents[range.clone()],
                        &positions[range.clone()],
                        begin,
                        window,
                        &self.device,
                    )
                };
                segments.push(Segment {
                    masks: (mask(None)?, mask(self.config.sliding_window)?),
                    range,
                });
                begin = end;
            }
        }
        let hidden = self.forward_inner(tokens, 1, &positions, &segments, cache, rows)?;
        cache.len += tokens.len();
        Ok(hidden)
    }

    /// The transformer over `batch` rows of `positions.len()` tokens each, whose attention
    /// is computed per segment (the segments cover `0..positions.len()` in order).
    fn forward_inner(
        &self,
        tokens: &[u32],
        batch: usize,
        positions: &[usize],
        segments: &[Segment],
        cache: &mut KvCache,
        rows: &[usize],
    ) -> Result<Tensor> {
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.vocab_size) {
            return Err(LocalError::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.vocab_size
            )));
        }
        let seq_len = positions.len();
        let config = &self.config;

        let ids = Tensor::from_slice(tokens, tokens.len(), &self.device)?;
        let mut x =
            self.embedding
                .embedding(&ids)?
                .reshape((batch, seq_len, config.hidden_size))?;
        if config.block.scale_embeddings {
            x = (x * (config.hidden_size as f64).sqrt())?;
        }

        let factors = self.rope_freq_factors.as_deref();
        let rope_global = self.rope_tables(config.rope_global, factors, positions)?;
        let rope_local = if config.rope_local == config.rope_global {
            rope_global.clone()
        } else {
            // Gemma 3's local layers: their own base, no frequency factors.
            self.rope_tables(config.rope_local, None, positions)?
        };

        for (il, layer) in self.layers.iter().enumerate() {
            let local = config.layer_is_local[il];
            let rope = if local { &rope_local } else { &rope_global };
            let residual = &x;
            let h = rms_norm(&x, &layer.attn_norm, config.rms_eps)?;
            let mut attn =
                self.attention(layer, &h, rope, segments, local, &mut cache.layers[il])?;
            if let Some(norm) = &layer.post_attn_norm {
                attn = rms_norm(&attn, norm, config.rms_eps)?;
            }
            let x_mid = (residual + attn)?;
            let h = rms_norm(&x_mid, &layer.ffn_norm, config.rms_eps)?;
            let gated = gated(
                &layer.gate.forward(&h)?,
                &layer.up.forward(&h)?,
                config.block.activation,
            )?;
            let mut ffn = layer.down.forward(&gated)?;
            if let Some(norm) = &layer.post_ffn_norm {
                ffn = rms_norm(&ffn, norm, config.rms_eps)?;
            }
            x = (x_mid + ffn)?;
        }

        let x = x.reshape((batch * seq_len, config.hidden_size))?;
        let rows_u32: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let rows_tensor = Tensor::from_slice(&rows_u32, rows_u32.len(), &self.device)?;
        let selected = x.index_select(&rows_tensor, 0)?;
        rms_norm(&selected, &self.output_norm, config.rms_eps)
    }

    /// Logits `[n, vocab]` for final-normed hidden states `[n, hidden]`.
    pub(crate) fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let logits = self.output.forward(hidden)?;
        Ok(match self.config.final_logit_softcap {
            Some(cap) => softcap(&logits, cap)?,
            None => logits,
        })
    }

    /// Scores `wanted` (row of `hidden`, target token) pairs when the output head has a
    /// dense copy and there are enough rows for it: every row goes through the head at once,
    /// one slice of the vocabulary at a time, with a running log-sum-exp per row, so the
    /// matrix products are large (fast) while only `rows x slice` logits exist at a time.
    /// Returns `None` when the head has no dense copy or too few rows (the caller then uses
    /// [`Model::logits`]).
    /// `slice` is the number of vocabulary entries per matrix product (at least 1).
    pub(crate) fn score_rows_dense(
        &self,
        hidden: &Tensor,
        wanted: &[(usize, u32)],
        slice: usize,
    ) -> Result<Option<Vec<TokenScore>>> {
        let weight = match &self.output.dense {
            Some(QMatMul::TensorF16(weight) | QMatMul::Tensor(weight)) => weight,
            _ => return Ok(None),
        };
        let n_rows = hidden.dim(0)?;
        if n_rows < DENSE_MIN_ROWS {
            return Ok(None);
        }
        if let Some(&(row, target)) = wanted
            .iter()
            .find(|&&(row, target)| row >= n_rows || target as usize >= self.vocab_size)
        {
            return Err(LocalError::InvalidInput(format!(
                "cannot score token {target} at row {row} of {n_rows}"
            )));
        }
        let slice = slice.max(1);
        let mut max = vec![f32::NEG_INFINITY; n_rows];
        let mut sum_exp = vec![0f64; n_rows];
        let mut best = vec![(0u32, f32::NEG_INFINITY); n_rows];
        let mut target_logit = vec![f32::NEG_INFINITY; wanted.len()];
        let x = hidden.to_dtype(weight.dtype())?;
        let mut start = 0;
        while start < self.vocab_size {
            let len = slice.min(self.vocab_size - start);
            let mut logits = x
                .matmul(&weight.narrow(0, start, len)?.t()?)?
                .to_dtype(DType::F32)?;
            if let Some(bias) = &self.output.bias {
                logits = logits.broadcast_add(&bias.narrow(0, start, len)?)?;
            }
            if let Some(cap) = self.config.final_logit_softcap {
                logits = softcap(&logits, cap)?;
            }
            let logits = logits.to_vec2::<f32>()?;
            for (row, values) in logits.iter().enumerate() {
                let chunk_max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                // Arg-max: the first index among equals, over the whole vocabulary.
                if chunk_max > best[row].1 {
                    let index = values.iter().position(|&v| v == chunk_max).unwrap_or(0);
                    best[row] = ((start + index) as u32, chunk_max);
                }
                let new_max = max[row].max(chunk_max);
                let rescale = if max[row] == f32::NEG_INFINITY {
                    0.0
                } else {
                    f64::from(max[row] - new_max).exp()
                };
                let chunk_sum: f64 = values.iter().map(|&v| f64::from(v - new_max).exp()).sum();
                sum_exp[row] = sum_exp[row] * rescale + chunk_sum;
                max[row] = new_max;
            }
            for (k, &(row, target)) in wanted.iter().enumerate() {
                let t = target as usize;
                if (start..start + len).contains(&t) {
                    target_logit[k] = logits[row][t - start];
                }
            }
            start += len;
        }
        Ok(Some(
            wanted
                .iter()
                .zip(target_logit)
                .map(|(&(row, target), logit)| {
                    let log_sum = f64::from(max[row]) + sum_exp[row].ln();
                    TokenScore {
                        logprob: f64::from(logit) - log_sum,
                        greedy: best[row].0 == target,
                        top_id: best[row].0,
                        top_logprob: f64::from(best[row].1) - log_sum,
                    }
                })
                .collect(),
        ))
    }

    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        segments: &[Segment],
        local: bool,
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let config = &self.config;
        let (batch, seq_len, _) = x.dims3()?;
        let (n_heads, n_kv, head_dim) = (config.n_heads, config.n_kv_heads, config.head_dim);
        let group = n_heads / n_kv;

        let split_heads = |t: Tensor, heads: usize, norm: &Option<Tensor>| -> Result<Tensor> {
            let mut t = t.reshape((batch, seq_len, heads, head_dim))?;
            if let Some(norm) = norm {
                t = rms_norm(&t, norm, config.rms_eps)?;
            }
            Ok(t.transpose(1, 2)?.contiguous()?)
        };
        let q = split_heads(layer.q.forward(x)?, n_heads, &layer.q_norm)?;
        let k = split_heads(layer.k.forward(x)?, n_kv, &layer.k_norm)?;
        let v = split_heads(layer.v.forward(x)?, n_kv, &None)?;
        let q = apply_rope(&q, rope, config.rope_style, config.rope_dim)?;
        let k = apply_rope(&k, rope, config.rope_style, config.rope_dim)?;

        let cached = cache.take();
        let widen = |t: &Tensor| -> Result<Tensor> {
            if t.dim(0)? == batch {
                Ok(t.clone())
            } else {
                let (_, h, l, d) = t.dims4()?;
                Ok(t.broadcast_as((batch, h, l, d))?)
            }
        };
        // Keys and values a run of new positions attends to: the cache, then the run's own.
        // `cat` along an inner axis can return a permuted layout; the matmuls below need
        // plain row-major keys and values.
        let with_cache = |new: Tensor, old: Option<&Tensor>| -> Result<Tensor> {
            match old {
                None => Ok(new),
                Some(old) => Ok(Tensor::cat(&[widen(old)?, new], 2)?.contiguous()?),
            }
        };
        let k_all = with_cache(k.clone(), cached.as_ref().map(|c| &c.0))?;
        let v_all = with_cache(v.clone(), cached.as_ref().map(|c| &c.1))?;
        let q = (q * f64::from(config.attention_scale))?;
        let mut outs = Vec::with_capacity(segments.len());
        for segment in segments {
            let range = &segment.range;
            let len = range.len();
            let whole = len == seq_len;
            let part = |t: &Tensor| -> Result<Tensor> {
                Ok(if whole {
                    t.clone()
                } else {
                    t.narrow(2, range.start, len)?.contiguous()?
                })
            };
            let (k_seg, v_seg) = if whole {
                (k_all.clone(), v_all.clone())
            } else {
                (
                    with_cache(part(&k)?, cached.as_ref().map(|c| &c.0))?,
                    with_cache(part(&v)?, cached.as_ref().map(|c| &c.1))?,
                )
            };
            let total_len = k_seg.dim(2)?;
            // Grouped-query attention without copying keys: the `group` query heads that
            // share a key/value head are stacked along the row axis of one matmul.
            let q_seg = part(&q)?.reshape((batch, n_kv, group * len, head_dim))?;
            let mut scores = q_seg.matmul(&k_seg.t()?)?;
            if let Some(cap) = config.attn_logit_softcap {
                scores = softcap(&scores, cap)?;
            }
            let mask = if local {
                &segment.masks.1
            } else {
                &segment.masks.0
            };
            let scores = scores
                .reshape((batch, n_kv, group, len, total_len))?
                .broadcast_add(mask)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            outs.push(
                probs
                    .reshape((batch, n_kv, group * len, total_len))?
                    .matmul(&v_seg)?
                    .reshape((batch, n_heads, len, head_dim))?,
            );
        }
        *cache = Some((k_all, v_all));
        let out = if outs.len() == 1 {
            outs.pop()
                .ok_or_else(|| LocalError::InvalidInput("no segment".into()))?
        } else {
            Tensor::cat(&outs, 2)?
        };
        let out = out
            .transpose(1, 2)?
            .reshape((batch, seq_len, n_heads * head_dim))?;
        layer.o.forward(&out)
    }

    /// cos/sin tables `[positions.len(), rope_dim / 2]`, one row per position: angle
    /// `pos * freq_scale * base^(-2i / rope_dim) / factors[i]`, both scaled by the RoPE
    /// attention factor (ggml's `rope_yarn` without extrapolation mixing).
    fn rope_tables(
        &self,
        params: RopeParams,
        factors: Option<&[f32]>,
        positions: &[usize],
    ) -> Result<(Tensor, Tensor)> {
        let rope_dim = self.config.rope_dim;
        let half = rope_dim / 2;
        let base = f64::from(params.freq_base);
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| {
                let factor = factors
                    .and_then(|f| f.get(i))
                    .map_or(1.0, |&f| f64::from(f));
                base.powf(-2.0 * i as f64 / rope_dim as f64) / factor
            })
            .collect();
        let mscale = f64::from(self.config.rope_attn_factor);
        let seq_len = positions.len();
        let mut cos = Vec::with_capacity(seq_len * half);
        let mut sin = Vec::with_capacity(seq_len * half);
        for &pos in positions {
            let pos = pos as f64 * f64::from(params.freq_scale);
            for &f in &inv_freq {
                let angle = pos * f;
                cos.push((angle.cos() * mscale) as f32);
                sin.push((angle.sin() * mscale) as f32);
            }
        }
        Ok((
            Tensor::from_vec(cos, (seq_len, half), &self.device)?,
            Tensor::from_vec(sin, (seq_len, half), &self.device)?,
        ))
    }
}

/// RoPE over the first `rope_dim` dimensions of each head of `x` (`[batch, heads, len,
/// head_dim]`); the rest pass through unrotated (partial rotary, as ggml's `rope` with
/// `n_dims < head_dim`).
fn apply_rope(
    x: &Tensor,
    (cos, sin): &(Tensor, Tensor),
    style: RopeStyle,
    rope_dim: usize,
) -> Result<Tensor> {
    let rotate = |t: &Tensor| -> Result<Tensor> {
        Ok(match style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(t, cos, sin)?,
            RopeStyle::Halves => candle_nn::rotary_emb::rope(t, cos, sin)?,
        })
    };
    let head_dim = x.dim(D::Minus1)?;
    if rope_dim == head_dim {
        return rotate(x);
    }
    let rotated = rotate(&x.narrow(D::Minus1, 0, rope_dim)?.contiguous()?)?;
    let rest = x.narrow(D::Minus1, rope_dim, head_dim - rope_dim)?;
    Ok(Tensor::cat(&[&rotated, &rest], D::Minus1)?.contiguous()?)
}

/// Additive mask `[seq_len, start + seq_len]`: causal, and for sliding-window layers a
/// query at position p sees only keys at positions p - window + 1 ..= p (llama.cpp's rule).
fn attention_mask(
    start: usize,
    seq_len: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let total = start + seq_len;
    let mut mask = vec![0f32; seq_len * total];
    for t in 0..seq_len {
        let pos = start + t;
        for (j, slot) in mask[t * total..(t + 1) * total].iter_mut().enumerate() {
            let hidden = j > pos || window.is_some_and(|w| pos - j >= w);
            if hidden {
                *slot = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(mask, (seq_len, total), device)?)
}

/// Additive mask `[n, start + n]` for one run of a packed tree (see
/// [`Model::forward_tree`]) whose first token has packed index `offset`: a token sees every
/// cached position and its own ancestors, within the sliding window if any.
fn tree_mask(
    start: usize,
    parents: &[Option<usize>],
    positions: &[usize],
    offset: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let n = parents.len();
    let total = start + n;
    let mut mask = vec![f32::NEG_INFINITY; n * total];
    for i in 0..n {
        let row = &mut mask[i * total..(i + 1) * total];
        let pos = positions[i];
        let visible = |key_pos: usize| window.is_none_or(|w| pos - key_pos < w);
        for (j, slot) in row[..start].iter_mut().enumerate() {
            if visible(j) {
                *slot = 0.0;
            }
        }
        let mut node = Some(i);
        while let Some(k) = node {
            if visible(positions[k]) {
                row[start + k] = 0.0;
            }
            node = parents[k].map(|p| p - offset);
        }
    }
    Ok(Tensor::from_vec(mask, (n, total), device)?)
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let x = if x.is_contiguous() {
        x.clone()
    } else {
        x.contiguous()?
    };
    Ok(candle_nn::ops::rms_norm(&x, weight, eps as f32)?)
}

fn softcap(x: &Tensor, cap: f32) -> Result<Tensor> {
    let cap = f64::from(cap);
    Ok(((x / cap)?.tanh()? * cap)?)
}

/// How one target token scored in one row of logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TokenScore {
    pub(crate) logprob: f64,
    /// Whether the target is the arg-max (first among equals), as lm-evaluation-harness counts it.
    pub(crate) greedy: bool,
    /// The arg-max token and its log-probability.
    pub(crate) top_id: u32,
    pub(crate) top_logprob: f64,
}

/// Log-probability of `target`, whether it is the arg-max, and the arg-max itself.
pub(crate) fn row_logprob(logits: &[f32], target: u32) -> TokenScore {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits
        .iter()
        .map(|&l| f64::from(l - max).exp())
        .sum::<f64>()
        .ln();
    let logprob = f64::from(logits[target as usize] - max) - log_sum;
    let top_id = argmax(logits);
    TokenScore {
        logprob,
        greedy: top_id == target,
        top_id,
        top_logprob: f64::from(logits[top_id as usize] - max) - log_sum,
    }
}

/// Index of the largest logit (the first one among equals).
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Shape-checks a logits tensor and copies it out as rows.
pub(crate) fn logits_rows(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let logits = logits.to_dtype(DType::F32)?;
    let _ = logits.dim(D::Minus1)?;
    Ok(logits.to_vec2::<f32>()?)
}
