//! Our own transformer forward pass over quantized weights: one transformer block for
//! every supported family (llama, qwen2, qwen3, phi3, gemma3), steered by the family's
//! [`crate::config::BlockOptions`]. Loading a GGUF file into a [`Model`] is in
//! [`crate::load`].

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};

use crate::activation::gated;
use crate::config::{ModelConfig, RopeParams, RopeStyle};
use crate::error::{LocalError, Result};
use crate::qkernels::QuantMatrix;

/// The keys and values of one model's attention, for every position computed so far.
///
/// Each layer keeps its keys and its values in one growable buffer each, position-major
/// (`[len, batch, n_kv_heads * head_dim]`): a forward call appends its new positions in
/// place (the buffers grow by doubling) and attention reads the filled prefix, so a
/// decoding step copies nothing it has already cached.
///
/// Cloning is cheap (the buffers are reference-counted), which is how a shared context
/// is reused by several continuations: the first append to a buffer that is shared
/// copies it (copy on write), so the context it came from never changes.
#[derive(Debug, Clone)]
pub(crate) struct KvCache {
    layers: Vec<Arc<LayerKv>>,
    len: usize,
}

/// One layer's keys and values (see [`KvCache`]).
#[derive(Debug, Clone, Default)]
struct LayerKv {
    /// Rows (sequences) per position; 0 before the first append.
    batch: usize,
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl KvCache {
    pub(crate) fn new(n_layers: usize) -> KvCache {
        KvCache {
            layers: (0..n_layers)
                .map(|_| Arc::new(LayerKv::default()))
                .collect(),
            len: 0,
        }
    }

    /// Number of positions held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl LayerKv {
    /// The buffers of `slot`, holding its first `start` positions for `batch` rows, with
    /// room for `new` more to be appended: copied first if they are shared (or, to
    /// continue a single cached sequence in `batch` rows, widened by repeating each
    /// position); anything past `start` (left by a failed call) is dropped. A copy gets
    /// exactly the room asked for (a shared context is copied once per set of
    /// continuations, which seldom grow further); buffers that are appended to again
    /// grow by doubling.
    fn prepare(
        slot: &mut Arc<LayerKv>,
        batch: usize,
        start: usize,
        new: usize,
        width: usize,
    ) -> Result<&mut LayerKv> {
        let held = slot.batch;
        if start > 0 && slot.keys.len().min(slot.values.len()) < start * held * width {
            return Err(LocalError::InvalidInput(format!(
                "a key/value cache of {} values cannot hold {start} positions",
                slot.keys.len()
            )));
        }
        let widen = start > 0 && held != batch;
        if widen && held != 1 {
            return Err(LocalError::InvalidInput(format!(
                "a cache of {held} rows cannot be continued by {batch} rows"
            )));
        }
        if start == 0 {
            if let Some(kv) = Arc::get_mut(slot) {
                kv.keys.clear();
                kv.values.clear();
                kv.batch = batch;
            } else {
                *slot = Arc::new(LayerKv {
                    batch,
                    ..LayerKv::default()
                });
            }
        } else if widen || Arc::get_mut(slot).is_none() {
            let keep = start * held * width;
            let copy = |from: &[f32]| -> Vec<f32> {
                let mut to = Vec::with_capacity((start + new) * batch * width);
                for position in from[..keep].chunks_exact(width) {
                    for _ in 0..batch / held {
                        to.extend_from_slice(position);
                    }
                }
                to
            };
            *slot = Arc::new(LayerKv {
                batch,
                keys: copy(&slot.keys),
                values: copy(&slot.values),
            });
        }
        let kv = Arc::get_mut(slot)
            .ok_or_else(|| LocalError::InvalidInput("a shared key/value cache".into()))?;
        let keep = start * batch * width;
        kv.keys.truncate(keep);
        kv.values.truncate(keep);
        kv.keys.reserve(new * batch * width);
        kv.values.reserve(new * batch * width);
        Ok(kv)
    }
}

/// Most query rows (batch x new positions) whose attention is computed directly on the
/// cache's buffers; more go through candle's matrix products on a copy of them.
const DIRECT_ATTENTION_MAX_ROWS: usize = 8;

/// Fewest rows for which a [`Linear`] uses its dense copy: below this, candle's quantized
/// kernels (one pass over compact weights) win; above it, f16 gemm does (measured with
/// `examples/matmul_kernels.rs`: 2x on 128 rows x 576 columns, 3x slower on one row).
pub(crate) const DENSE_MIN_ROWS: usize = 8;

/// A weight matrix used as `x @ W^T`.
///
/// The quantized form serves single rows (decoding): through our own kernels
/// (`direct`, the file's blocks as stored) where there are some for its type, else
/// through candle's. For batches (prefill, scoring) an optional dense f16 copy is used,
/// multiplied in f32 arithmetic (`dense.rs`): gemm runs it about twice as fast as
/// candle's quantized kernels, and with f32 activations instead of 8-bit ones it is also
/// much closer to an f32 forward pass.
pub(crate) struct Linear {
    pub(crate) quantized: QMatMul,
    pub(crate) direct: Option<QuantMatrix>,
    pub(crate) dense: Option<QMatMul>,
    /// Added to every output row (`[out]`, f32), for the families whose files carry one.
    pub(crate) bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(D::Minus1)?.max(1);
        let out = match (&self.dense, &self.direct) {
            (Some(QMatMul::TensorF16(weight)), _) if rows >= DENSE_MIN_ROWS => {
                f16_weights_product(x, weight)?
            }
            (Some(dense), _) if rows >= DENSE_MIN_ROWS => dense.forward(x)?,
            (_, Some(direct)) => {
                let dims = product_dims(x, direct.rows(), direct.cols())?;
                let values = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let out = direct.matmul(&values)?;
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

/// `x @ W^T` for f32 `x` (`[.., k]`) and an f16 weight copy `W` (`[n, k]`), in f32
/// arithmetic (see `dense.rs`).
fn f16_weights_product(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (n, k) = weight.dims2()?;
    let dims = product_dims(x, n, k)?;
    let m = x.elem_count() / k.max(1);
    let x = x.to_dtype(DType::F32)?.contiguous()?;
    let weight = weight.contiguous()?;
    let (x_storage, x_layout) = x.storage_and_layout();
    let (w_storage, w_layout) = weight.storage_and_layout();
    let (
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(xs)),
        candle_core::Storage::Cpu(candle_core::CpuStorage::F16(ws)),
    ) = (&*x_storage, &*w_storage)
    else {
        return Err(LocalError::InvalidInput(
            "f16 weight product: not f32 activations and f16 weights in CPU memory".into(),
        ));
    };
    let (Some((x0, x1)), Some((w0, w1))) =
        (x_layout.contiguous_offsets(), w_layout.contiguous_offsets())
    else {
        return Err(LocalError::InvalidInput(
            "f16 weight product: tensors not contiguous".into(),
        ));
    };
    let out = xs
        .get(x0..x1)
        .zip(ws.get(w0..w1))
        .and_then(|(xs, ws)| crate::dense::matmul_f16_weights(xs, ws, m, n, k))
        .ok_or_else(|| {
            LocalError::InvalidInput(format!(
                "f16 weight product: {m} x {k} activations against {n} x {k} weights"
            ))
        })?;
    Ok(Tensor::from_vec(out, dims, x.device())?)
}

/// The shape of `x @ W^T` for `W` of `rows x cols`: `x`'s with its last dimension
/// `rows`, or an error when that dimension is not `cols`.
fn product_dims(x: &Tensor, rows: usize, cols: usize) -> Result<Vec<usize>> {
    let mut dims = x.dims().to_vec();
    match dims.last_mut() {
        Some(last) if *last == cols => {
            *last = rows;
            Ok(dims)
        }
        _ => Err(LocalError::InvalidInput(format!(
            "a product of {:?} with a matrix of {cols} columns",
            x.dims()
        ))),
    }
}

pub(crate) struct Layer {
    pub(crate) attn_norm: Tensor,
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
    pub(crate) q_norm: Option<Tensor>,
    pub(crate) k_norm: Option<Tensor>,
    pub(crate) post_attn_norm: Option<Tensor>,
    pub(crate) ffn_norm: Tensor,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
    pub(crate) post_ffn_norm: Option<Tensor>,
}

/// A loaded model: configuration and weights, ready to run on the CPU.
pub(crate) struct Model {
    pub(crate) config: ModelConfig,
    pub(crate) vocab_size: usize,
    pub(crate) embedding: Arc<QTensor>,
    pub(crate) output: Linear,
    pub(crate) output_norm: Tensor,
    /// The per-dimension RoPE frequency divisors in use: Llama 3.1's `rope_freqs.weight`,
    /// or one of Phi-3's long/short factors (see [`Model::with_context`]).
    pub(crate) rope_freq_factors: Option<Vec<f32>>,
    /// Phi-3's long and short RoPE factors, when the file has them.
    pub(crate) long_short_rope_factors: Option<(Vec<f32>, Vec<f32>)>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) device: Device,
}

/// A run of packed tokens whose attention is computed on its own: its tokens see the
/// cached positions and tokens of the same run only. `masks` are the additive masks
/// (global, sliding-window), `[len, cache + len]`.
struct Segment {
    range: std::ops::Range<usize>,
    masks: (Tensor, Tensor),
}

impl Model {
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
            let mut attn = self.attention(
                layer,
                &h,
                rope,
                segments,
                local,
                (&mut cache.layers[il], cache.len),
            )?;
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
        // Dense copies are f16 or f32; both multiply f32 activations.
        let f16 = weight.dtype() == DType::F16;
        let x = hidden.to_dtype(DType::F32)?;
        let mut start = 0;
        while start < self.vocab_size {
            let len = slice.min(self.vocab_size - start);
            let slice_weight = weight.narrow(0, start, len)?;
            let mut logits = if f16 {
                f16_weights_product(&x, &slice_weight)?
            } else {
                x.matmul(&slice_weight.t()?)?.to_dtype(DType::F32)?
            };
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
        (cache, start): (&mut Arc<LayerKv>, usize),
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

        // Append the new keys and values to the cache, position-major.
        let width = n_kv * head_dim;
        let kv = LayerKv::prepare(cache, batch, start, seq_len, width)?;
        let position_major = |t: &Tensor| -> Result<Vec<f32>> {
            Ok(t.permute((2, 0, 1, 3))?.flatten_all()?.to_vec1::<f32>()?)
        };
        kv.keys.extend_from_slice(&position_major(&k)?);
        kv.values.extend_from_slice(&position_major(&v)?);
        let q = (q * f64::from(config.attention_scale))?;
        if batch * seq_len <= DIRECT_ATTENTION_MAX_ROWS {
            let out = direct_attention(
                &q.flatten_all()?.to_vec1::<f32>()?,
                kv,
                segments,
                local,
                start,
                seq_len,
                (n_heads, n_kv, head_dim),
                config.attn_logit_softcap,
            )?;
            let out = Tensor::from_vec(out, (batch, seq_len, n_heads * head_dim), &self.device)?;
            return layer.o.forward(&out);
        }
        let total = start + seq_len;
        // Keys and values `[batch, n_kv, total, head_dim]`: the run's own when nothing is
        // cached, else a row-major copy of the cache (the matmuls below need one).
        let all = |new: &Tensor, buffer: &[f32]| -> Result<Tensor> {
            if start == 0 {
                return Ok(new.clone());
            }
            Ok(
                Tensor::from_slice(buffer, (total, batch, n_kv, head_dim), &self.device)?
                    .permute((1, 2, 0, 3))?
                    .contiguous()?,
            )
        };
        let k_all = all(&k, &kv.keys)?;
        let v_all = all(&v, &kv.values)?;
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
            // A segment sees the cached positions and its own run.
            let keys_of = |t: &Tensor| -> Result<Tensor> {
                if whole {
                    Ok(t.clone())
                } else if start == 0 {
                    Ok(t.narrow(2, range.start, len)?.contiguous()?)
                } else {
                    Ok(Tensor::cat(
                        &[
                            t.narrow(2, 0, start)?,
                            t.narrow(2, start + range.start, len)?,
                        ],
                        2,
                    )?
                    .contiguous()?)
                }
            };
            let (k_seg, v_seg) = (keys_of(&k_all)?, keys_of(&v_all)?);
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

/// Attention of a few query rows computed directly on the cache's buffers (see
/// [`KvCache`]), which already hold the run's own keys and values after the `start`
/// cached positions. `q` is `[batch, n_heads, seq_len, head_dim]`, scaled; returns
/// `[batch, seq_len, n_heads * head_dim]`. Each segment's rows see the key positions its
/// mask allows: the cached ones, then the segment's own run.
#[allow(clippy::too_many_arguments)]
fn direct_attention(
    q: &[f32],
    kv: &LayerKv,
    segments: &[Segment],
    local: bool,
    start: usize,
    seq_len: usize,
    (n_heads, n_kv, head_dim): (usize, usize, usize),
    softcap: Option<f32>,
) -> Result<Vec<f32>> {
    let batch = kv.batch;
    let group = n_heads / n_kv.max(1);
    let width = n_kv * head_dim;
    let total = start + seq_len;
    if q.len() != batch * n_heads * seq_len * head_dim
        || kv.keys.len() < total * batch * width
        || kv.values.len() < total * batch * width
    {
        return Err(LocalError::InvalidInput(format!(
            "attention of {} query values over a cache of {} for {total} positions",
            q.len(),
            kv.keys.len()
        )));
    }
    let mut out = vec![0f32; batch * seq_len * n_heads * head_dim];
    let mut scores = Vec::with_capacity(total);
    for segment in segments {
        let range = &segment.range;
        let seen = start + range.len();
        let mask = if local {
            &segment.masks.1
        } else {
            &segment.masks.0
        };
        let mask = mask.flatten_all()?.to_vec1::<f32>()?;
        if mask.len() != range.len() * seen {
            return Err(LocalError::InvalidInput(format!(
                "an attention mask of {} values for {} rows of {seen} keys",
                mask.len(),
                range.len()
            )));
        }
        // Key `j` of the segment's view: a cached position, then the run's own.
        let position = |j: usize| {
            if j < start {
                j
            } else {
                start + range.start + (j - start)
            }
        };
        for b in 0..batch {
            for (row, t) in range.clone().enumerate() {
                let mask_row = &mask[row * seen..(row + 1) * seen];
                for h in 0..n_heads {
                    let at = ((b * n_heads + h) * seq_len + t) * head_dim;
                    let query = &q[at..at + head_dim];
                    let head = (h / group) * head_dim;
                    let offset = |j: usize| (position(j) * batch + b) * width + head;
                    scores.clear();
                    let mut max = f32::NEG_INFINITY;
                    for (j, &m) in mask_row.iter().enumerate() {
                        let score = if m == f32::NEG_INFINITY {
                            m
                        } else {
                            let o = offset(j);
                            let mut s = dot(query, &kv.keys[o..o + head_dim]);
                            if let Some(cap) = softcap {
                                s = (s / cap).tanh() * cap;
                            }
                            s + m
                        };
                        max = max.max(score);
                        scores.push(score);
                    }
                    if max == f32::NEG_INFINITY {
                        continue;
                    }
                    let mut sum = 0f32;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let o_at = ((b * seq_len + t) * n_heads + h) * head_dim;
                    let dest = &mut out[o_at..o_at + head_dim];
                    for (j, &p) in scores.iter().enumerate() {
                        if p == 0.0 {
                            continue;
                        }
                        let o = offset(j);
                        let p = p / sum;
                        for (d, &v) in dest.iter_mut().zip(&kv.values[o..o + head_dim]) {
                            *d += p * v;
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Dot product in 16 independent lanes (which the compiler vectorizes).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = a.chunks_exact(16).zip(b.chunks_exact(16));
    let tail: f32 = a
        .chunks_exact(16)
        .remainder()
        .iter()
        .zip(b.chunks_exact(16).remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
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
