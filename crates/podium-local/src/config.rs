//! Model hyper-parameters read from GGUF metadata, one struct for every supported architecture.

use candle_core::quantized::gguf_file::{Content, Value};

use crate::activation::Activation;
use crate::error::{LocalError, Result};

/// Bounds on the hyper-parameters a file may give, far above any real model's: a value
/// past them is a corrupt or hostile file, and the engine allocates per layer, per head
/// and per position from them.
pub(crate) const MAX_LAYERS: usize = 1024;
pub(crate) const MAX_HIDDEN_SIZE: usize = 1 << 16;
pub(crate) const MAX_FFN_SIZE: usize = 1 << 18;
pub(crate) const MAX_HEADS: usize = 1024;
pub(crate) const MAX_HEAD_DIM: usize = 1024;
pub(crate) const MAX_CONTEXT_LENGTH: usize = 1 << 24;
pub(crate) const MAX_VOCAB_SIZE: usize = 1 << 22;
pub(crate) const MAX_ROPE_FREQ_BASE: f64 = 1e12;
/// Bound on RoPE's linear scaling factor and on logit soft-capping.
pub(crate) const MAX_SCALE: f64 = 1e6;

/// The `general.architecture` values this engine can run.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "phi3", "gemma3"];

/// Which transformer family a model belongs to. Each resolves, at load, to the
/// [`BlockOptions`] of the one transformer block every family shares; the per-family
/// facts follow llama.cpp's `src/models/*.cpp` and `llama_model_rope_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 1–3.x, Mistral, SmolLM: RMSNorm, SwiGLU, interleaved RoPE (llama.cpp's
    /// converter permutes q/k for it), optional attention-output and feed-forward biases,
    /// and Llama 3.1's RoPE frequency factors (`rope_freqs.weight`).
    Llama,
    /// Qwen 2 / 2.5: Llama's block with NeoX RoPE and biases on Q/K/V (and optionally on
    /// the output head).
    Qwen2,
    /// Qwen 3 (dense): NeoX RoPE and a per-head RMS norm on queries and keys.
    Qwen3,
    /// Phi-3 / Phi-4: NeoX RoPE over the first `rope.dimension_count` dimensions of a head
    /// (partial rotary), fused QKV and fused gate/up (`ffn_up` holds gate then up), and the
    /// 128k models' long/short RoPE factors.
    Phi3,
    /// Gemma 3: embeddings scaled by sqrt(hidden), q/k norms, post-attention and
    /// post-feed-forward norms, GeGLU (GELU-tanh), NeoX RoPE, interleaved sliding-window layers.
    Gemma3,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Phi3 => "phi3",
            Architecture::Gemma3 => "gemma3",
        }
    }

    /// The architecture named `name` (`general.architecture`), if this engine runs it.
    pub fn from_name(name: &str) -> Option<Architecture> {
        Some(match name {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "qwen3" => Architecture::Qwen3,
            "phi3" => Architecture::Phi3,
            "gemma3" => Architecture::Gemma3,
            _ => return None,
        })
    }
}

/// What distinguishes one family's transformer block from another's, resolved once at
/// load: the forward pass is one block that consults these flags. Which optional bias
/// tensors a file has is decided per tensor (see `load::check_tensors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockOptions {
    /// Per-head RMS norms on queries and keys before RoPE (`attn_q_norm`, `attn_k_norm`).
    pub qk_norm: bool,
    /// RMS norms after attention and after the feed-forward network, before the residual
    /// additions (`post_attention_norm`, `post_ffw_norm`).
    pub post_norms: bool,
    /// Gate and up projections stored as one `ffn_up` of twice the feed-forward size,
    /// gate rows first (llama.cpp's `LLM_FFN_SWIGLU` over a fused tensor).
    pub fused_gate_up: bool,
    /// Whether the family may carry biases on the attention output and the three
    /// feed-forward projections (llama.cpp loads them, optionally, for `llama` only).
    pub output_and_ffn_biases: bool,
    /// Whether the family may carry a bias on the output head (`output.bias`: `qwen2`).
    pub head_bias: bool,
    /// Whether the family reads RoPE frequency factors from `rope_freqs.weight` (Llama 3.1+).
    pub rope_freq_factors: bool,
    /// Whether the family reads Phi-3's long-context RoPE factors (`rope_factors_long` and
    /// `rope_factors_short`, one chosen by the context the model runs on).
    pub long_short_rope_factors: bool,
    /// Embeddings are multiplied by sqrt(hidden size) (Gemma).
    pub scale_embeddings: bool,
    pub(crate) activation: Activation,
}

/// How RoPE pairs up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RopeStyle {
    /// Pairs (2i, 2i+1): llama.cpp's `LLAMA_ROPE_TYPE_NORM`.
    Interleaved,
    /// Pairs (i, i + d/2): llama.cpp's `LLAMA_ROPE_TYPE_NEOX`.
    Halves,
}

/// The RoPE frequencies of one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RopeParams {
    pub(crate) freq_base: f32,
    /// Positions are multiplied by this (linear scaling); 1.0 means none.
    pub(crate) freq_scale: f32,
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub n_layers: usize,
    pub hidden_size: usize,
    pub ffn_size: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    /// The training context length (`{arch}.context_length`).
    pub context_length: usize,
    /// Local (sliding-window) attention span, for architectures that interleave it.
    pub sliding_window: Option<usize>,
    pub attn_logit_softcap: Option<f32>,
    pub final_logit_softcap: Option<f32>,
    /// The family's block layout.
    pub block: BlockOptions,
    pub(crate) rope_style: RopeStyle,
    /// How many leading dimensions of each head RoPE rotates (`rope.dimension_count`):
    /// the head size, or less for partial rotary (Phi-4-mini); even.
    pub(crate) rope_dim: usize,
    /// `rope.scaling.attn_factor`: multiplies RoPE's cos and sin (llama.cpp's
    /// `attn_factor`); 1.0 unless the file says otherwise.
    pub(crate) rope_attn_factor: f32,
    /// `rope.scaling.original_context_length` (the training context when not given): a
    /// Phi-3 long-context model uses its long RoPE factors when run on a longer context.
    pub(crate) rope_original_context: usize,
    /// RoPE of the global (full attention) layers.
    pub(crate) rope_global: RopeParams,
    /// RoPE of the sliding-window layers, when the model has any.
    pub(crate) rope_local: RopeParams,
    /// Per layer: whether it uses sliding-window attention.
    pub(crate) layer_is_local: Vec<bool>,
    /// Multiplier applied to the queries before the dot product.
    pub(crate) attention_scale: f32,
}

impl ModelConfig {
    /// Reads the hyper-parameters of `content` or says which key is wrong.
    pub(crate) fn from_gguf(content: &Content, architecture: Architecture) -> Result<ModelConfig> {
        let meta = Metadata {
            content,
            prefix: architecture.name(),
        };
        let n_layers = meta.bounded_usize("block_count", 1, MAX_LAYERS)?;
        let hidden_size = meta.bounded_usize("embedding_length", 1, MAX_HIDDEN_SIZE)?;
        let ffn_size = meta.bounded_usize("feed_forward_length", 1, MAX_FFN_SIZE)?;
        let n_heads = meta.bounded_usize("attention.head_count", 1, MAX_HEADS)?;
        let n_kv_heads = if meta.get("attention.head_count_kv").is_some() {
            meta.bounded_usize("attention.head_count_kv", 1, n_heads)?
        } else {
            n_heads
        };
        if !n_heads.is_multiple_of(n_kv_heads) {
            return Err(LocalError::InvalidMetadata {
                key: meta.key("attention.head_count_kv"),
                message: format!("{n_kv_heads} key/value heads do not divide {n_heads} heads"),
            });
        }
        let head_dim = if meta.get("attention.key_length").is_some() {
            meta.bounded_usize("attention.key_length", 2, MAX_HEAD_DIM)?
        } else if hidden_size.is_multiple_of(n_heads) {
            hidden_size / n_heads
        } else {
            return Err(LocalError::InvalidMetadata {
                key: meta.key("attention.head_count"),
                message: format!(
                    "{n_heads} heads do not divide the hidden size {hidden_size}, \
                     and `{}` is not given",
                    meta.key("attention.key_length")
                ),
            });
        };
        // RoPE rotates pairs of dimensions.
        if !head_dim.is_multiple_of(2) || head_dim > MAX_HEAD_DIM {
            return Err(LocalError::InvalidMetadata {
                key: meta.key("attention.key_length"),
                message: format!(
                    "a head of {head_dim} dimensions (an even number up to {MAX_HEAD_DIM} expected)"
                ),
            });
        }
        let value_dim = meta.usize_or("attention.value_length", head_dim)?;
        if value_dim != head_dim {
            return Err(LocalError::UnsupportedFeature(format!(
                "value length {value_dim} differs from key length {head_dim}"
            )));
        }
        // llama.cpp's llama, qwen2, qwen3 and gemma3 graphs require RoPE over the whole head;
        // phi3 rotates only the first `rope.dimension_count` dimensions.
        let rope_dim = meta.usize_or("rope.dimension_count", head_dim)?;
        let partial_rope_ok = architecture == Architecture::Phi3;
        if rope_dim == 0
            || !rope_dim.is_multiple_of(2)
            || rope_dim > head_dim
            || (rope_dim != head_dim && !partial_rope_ok)
        {
            return Err(LocalError::InvalidMetadata {
                key: meta.key("rope.dimension_count"),
                message: if partial_rope_ok {
                    format!("{rope_dim} (an even number up to the head size {head_dim} expected)")
                } else {
                    format!(
                        "{rope_dim}, but `{}` rotates whole heads of {head_dim} dimensions",
                        architecture.name()
                    )
                },
            });
        }
        let rms_eps = meta.bounded_f64("attention.layer_norm_rms_epsilon", 0.0, 1.0)?;
        if rms_eps == 0.0 {
            return Err(LocalError::InvalidMetadata {
                key: meta.key("attention.layer_norm_rms_epsilon"),
                message: "0 (a positive number expected)".into(),
            });
        }
        // Mixture-of-experts variants of these families are not supported.
        if meta.usize_or("expert_count", 0)? > 0 {
            return Err(LocalError::UnsupportedFeature(format!(
                "mixture of experts (`{}` is set)",
                meta.key("expert_count")
            )));
        }
        let context_length = meta.bounded_usize("context_length", 1, MAX_CONTEXT_LENGTH)?;
        let freq_base = if meta.get("rope.freq_base").is_some() {
            meta.bounded_f64("rope.freq_base", 1.0, MAX_ROPE_FREQ_BASE)? as f32
        } else {
            10_000.0
        };
        let freq_scale = rope_freq_scale(&meta)?;
        let rope_attn_factor = if meta.get("rope.scaling.attn_factor").is_some() {
            let factor = meta.bounded_f64("rope.scaling.attn_factor", 0.0, MAX_SCALE)?;
            if factor == 0.0 {
                return Err(LocalError::InvalidMetadata {
                    key: meta.key("rope.scaling.attn_factor"),
                    message: "0 (a positive number expected)".into(),
                });
            }
            factor as f32
        } else {
            1.0
        };
        let rope_original_context = if meta.get("rope.scaling.original_context_length").is_some() {
            meta.bounded_usize(
                "rope.scaling.original_context_length",
                1,
                MAX_CONTEXT_LENGTH,
            )?
        } else {
            context_length
        };
        let attn_logit_softcap = meta.optional_softcap("attn_logit_softcapping")?;
        let final_logit_softcap = meta.optional_softcap("final_logit_softcapping")?;
        let rope_global = RopeParams {
            freq_base,
            freq_scale,
        };
        let silu_block = BlockOptions {
            qk_norm: false,
            post_norms: false,
            fused_gate_up: false,
            output_and_ffn_biases: false,
            head_bias: false,
            rope_freq_factors: false,
            long_short_rope_factors: false,
            scale_embeddings: false,
            activation: Activation::Silu,
        };
        // Everything but Gemma 3: full attention on every layer, queries scaled by
        // 1/sqrt(head size). (llama.cpp reads no sliding window for `llama`, `qwen2` or
        // `qwen3`, and disables the one `phi3` files declare; so does this engine.)
        let plain = |block: BlockOptions, rope_style: RopeStyle| ModelConfig {
            architecture,
            n_layers,
            hidden_size,
            ffn_size,
            n_heads,
            n_kv_heads,
            head_dim,
            rms_eps,
            context_length,
            sliding_window: None,
            attn_logit_softcap,
            final_logit_softcap,
            block,
            rope_style,
            rope_dim,
            rope_attn_factor,
            rope_original_context,
            rope_global,
            rope_local: rope_global,
            layer_is_local: vec![false; n_layers],
            attention_scale: 1.0 / (head_dim as f32).sqrt(),
        };

        let config = match architecture {
            Architecture::Llama => plain(
                BlockOptions {
                    output_and_ffn_biases: true,
                    rope_freq_factors: true,
                    ..silu_block
                },
                RopeStyle::Interleaved,
            ),
            Architecture::Qwen2 => plain(
                BlockOptions {
                    head_bias: true,
                    ..silu_block
                },
                RopeStyle::Halves,
            ),
            Architecture::Qwen3 => plain(
                BlockOptions {
                    qk_norm: true,
                    ..silu_block
                },
                RopeStyle::Halves,
            ),
            Architecture::Phi3 => {
                // llama.cpp's phi3 graph splits heads of n_embd / n_head dimensions.
                if n_heads * head_dim != hidden_size {
                    return Err(LocalError::InvalidMetadata {
                        key: meta.key("attention.key_length"),
                        message: format!(
                            "{n_heads} heads of {head_dim} dimensions do not make the hidden \
                             size {hidden_size}"
                        ),
                    });
                }
                plain(
                    BlockOptions {
                        fused_gate_up: true,
                        long_short_rope_factors: true,
                        ..silu_block
                    },
                    RopeStyle::Halves,
                )
            }
            Architecture::Gemma3 => {
                let sliding_window =
                    meta.bounded_usize("attention.sliding_window", 1, MAX_CONTEXT_LENGTH)?;
                let layer_is_local = gemma3_local_layers(&meta, n_layers)?;
                // llama.cpp (and gemma_pytorch) scale queries by 1/sqrt(head_dim), except the
                // 62-layer 27B model, which uses 1/sqrt(hidden / heads).
                let attention_scale = if n_layers == 62 {
                    1.0 / ((hidden_size / n_heads) as f32).sqrt()
                } else {
                    1.0 / (head_dim as f32).sqrt()
                };
                ModelConfig {
                    sliding_window: Some(sliding_window),
                    rope_local: RopeParams {
                        // Gemma 3's local layers use `rope.freq_base_swa` (10000 when not
                        // given) and no scaling, whatever the global layers use (llama.cpp).
                        freq_base: if meta.get("rope.freq_base_swa").is_some() {
                            meta.bounded_f64("rope.freq_base_swa", 1.0, MAX_ROPE_FREQ_BASE)? as f32
                        } else {
                            10_000.0
                        },
                        freq_scale: 1.0,
                    },
                    layer_is_local,
                    attention_scale,
                    ..plain(
                        BlockOptions {
                            qk_norm: true,
                            post_norms: true,
                            scale_embeddings: true,
                            activation: Activation::GeluTanh,
                            ..silu_block
                        },
                        RopeStyle::Halves,
                    )
                }
            }
        };
        Ok(config)
    }
}

/// Linear RoPE scaling divides positions by `rope.scaling.factor` (or the older
/// `rope.scale_linear`). As in llama.cpp, a file without `rope.scaling.type` is linear,
/// `none` ignores the factor, and a factor of 0 means none.
fn rope_freq_scale(meta: &Metadata<'_>) -> Result<f32> {
    let kind = meta.optional_string("rope.scaling.type")?;
    match kind.as_deref() {
        Some("none") => Ok(1.0),
        None | Some("linear") => {
            let key = if meta.get("rope.scaling.factor").is_some() {
                "rope.scaling.factor"
            } else if meta.get("rope.scale_linear").is_some() {
                "rope.scale_linear"
            } else {
                return Ok(1.0);
            };
            let factor = meta.bounded_f64(key, 0.0, MAX_SCALE)?;
            if factor == 0.0 {
                return Ok(1.0);
            }
            if factor < 1.0 / MAX_SCALE {
                return Err(LocalError::InvalidMetadata {
                    key: meta.key(key),
                    message: format!("{factor} is below {}", 1.0 / MAX_SCALE),
                });
            }
            Ok((1.0 / factor) as f32)
        }
        Some(other) => Err(LocalError::UnsupportedFeature(format!(
            "RoPE scaling type `{other}` (`{}`)",
            meta.key("rope.scaling.type")
        ))),
    }
}

/// Gemma 3 makes every 6th layer global (layers 5, 11, ...) unless the file says otherwise
/// (`attention.sliding_window_pattern`: a period, or one flag per layer).
fn gemma3_local_layers(meta: &Metadata<'_>, n_layers: usize) -> Result<Vec<bool>> {
    let key = "attention.sliding_window_pattern";
    match meta.content.metadata.get(&meta.key(key)) {
        None => Ok((0..n_layers).map(|il| (il + 1) % 6 != 0).collect()),
        Some(Value::Array(flags)) => {
            if flags.len() != n_layers {
                return Err(LocalError::InvalidMetadata {
                    key: meta.key(key),
                    message: format!("{} entries for {n_layers} layers", flags.len()),
                });
            }
            flags
                .iter()
                .map(|flag| {
                    flag.to_bool().map_err(|e| LocalError::InvalidMetadata {
                        key: meta.key(key),
                        message: e.to_string(),
                    })
                })
                .collect()
        }
        Some(value) => {
            let period = value_to_u64(value).ok_or_else(|| LocalError::InvalidMetadata {
                key: meta.key(key),
                message: "expected an integer or an array of booleans".into(),
            })? as usize;
            // llama.cpp's `set_swa_pattern`: a period of 0 makes every layer local.
            if period == 0 {
                return Ok(vec![true; n_layers]);
            }
            Ok((0..n_layers).map(|il| (il + 1) % period != 0).collect())
        }
    }
}

fn value_to_u64(value: &Value) -> Option<u64> {
    match value {
        Value::U8(v) => Some(u64::from(*v)),
        Value::U16(v) => Some(u64::from(*v)),
        Value::U32(v) => Some(u64::from(*v)),
        Value::U64(v) => Some(*v),
        Value::I8(v) => u64::try_from(*v).ok(),
        Value::I16(v) => u64::try_from(*v).ok(),
        Value::I32(v) => u64::try_from(*v).ok(),
        Value::I64(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn value_to_f64(value: &Value) -> Option<f64> {
    match value {
        Value::F32(v) => Some(f64::from(*v)),
        Value::F64(v) => Some(*v),
        other => value_to_u64(other).map(|v| v as f64),
    }
}

/// Typed access to `{arch}.*` metadata keys with errors that name the key.
struct Metadata<'a> {
    content: &'a Content,
    prefix: &'a str,
}

impl Metadata<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    fn get(&self, suffix: &str) -> Option<&Value> {
        self.content.metadata.get(&self.key(suffix))
    }

    fn usize(&self, suffix: &str) -> Result<usize> {
        let value = self
            .get(suffix)
            .ok_or_else(|| LocalError::MissingMetadata {
                key: self.key(suffix),
            })?;
        value_to_u64(value)
            .map(|v| v as usize)
            .ok_or_else(|| LocalError::InvalidMetadata {
                key: self.key(suffix),
                message: format!("expected an unsigned integer, found {value:?}"),
            })
    }

    /// An unsigned integer in `min..=max`.
    fn bounded_usize(&self, suffix: &str, min: usize, max: usize) -> Result<usize> {
        let value = self.usize(suffix)?;
        if !(min..=max).contains(&value) {
            return Err(LocalError::InvalidMetadata {
                key: self.key(suffix),
                message: format!("{value} is outside {min}..={max}"),
            });
        }
        Ok(value)
    }

    /// A finite number in `min..=max`.
    fn bounded_f64(&self, suffix: &str, min: f64, max: f64) -> Result<f64> {
        let value = self.f64(suffix)?;
        if !value.is_finite() || !(min..=max).contains(&value) {
            return Err(LocalError::InvalidMetadata {
                key: self.key(suffix),
                message: format!("{value} is outside {min}..={max}"),
            });
        }
        Ok(value)
    }

    /// A logit soft-cap: positive and finite when given (0 would divide by zero).
    fn optional_softcap(&self, suffix: &str) -> Result<Option<f32>> {
        if self.get(suffix).is_none() {
            return Ok(None);
        }
        let cap = self.bounded_f64(suffix, 0.0, MAX_SCALE)?;
        if cap == 0.0 {
            return Err(LocalError::InvalidMetadata {
                key: self.key(suffix),
                message: "0 (a positive number expected)".into(),
            });
        }
        Ok(Some(cap as f32))
    }

    fn usize_or(&self, suffix: &str, default: usize) -> Result<usize> {
        if self.get(suffix).is_some() {
            self.usize(suffix)
        } else {
            Ok(default)
        }
    }

    fn f64(&self, suffix: &str) -> Result<f64> {
        self.optional_f64(suffix)?
            .ok_or_else(|| LocalError::MissingMetadata {
                key: self.key(suffix),
            })
    }

    fn optional_f64(&self, suffix: &str) -> Result<Option<f64>> {
        match self.get(suffix) {
            None => Ok(None),
            Some(value) => {
                value_to_f64(value)
                    .map(Some)
                    .ok_or_else(|| LocalError::InvalidMetadata {
                        key: self.key(suffix),
                        message: format!("expected a number, found {value:?}"),
                    })
            }
        }
    }

    fn optional_string(&self, suffix: &str) -> Result<Option<String>> {
        match self.get(suffix) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(value) => Err(LocalError::InvalidMetadata {
                key: self.key(suffix),
                message: format!("expected a string, found {value:?}"),
            }),
        }
    }
}
