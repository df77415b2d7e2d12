//! Loading a GGUF file: its header read and checked, the tensors the forward pass needs
//! checked for shape before any weight is read, then the weights built into a [`Model`]
//! (quantized matrices as stored or re-quantized, dense copies for batches, fused
//! tensors split by rows).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};

use crate::config::{Architecture, MAX_VOCAB_SIZE, ModelConfig};
use crate::error::{LocalError, Result};
use crate::gguf::GgufError;
use crate::model::{Layer, Linear, Model};
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
}
