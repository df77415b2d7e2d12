//! Model hyper-parameters read from GGUF metadata, one struct for every supported architecture.

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{LocalError, Result};

/// The `general.architecture` values this engine can run.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "gemma3"];

/// Which transformer family a model belongs to; decides the block layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama: RMSNorm, SwiGLU, interleaved RoPE (llama.cpp's converter permutes q/k for it).
    Llama,
    /// Gemma 3: embeddings scaled by sqrt(hidden), q/k norms, post-attention and
    /// post-feed-forward norms, GeGLU (GELU-tanh), NeoX RoPE, interleaved sliding-window layers.
    Gemma3,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Gemma3 => "gemma3",
        }
    }
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
    pub(crate) rope_style: RopeStyle,
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
        let n_layers = meta.usize("block_count")?;
        let hidden_size = meta.usize("embedding_length")?;
        let ffn_size = meta.usize("feed_forward_length")?;
        let n_heads = meta.usize("attention.head_count")?;
        let n_kv_heads = meta.usize_or("attention.head_count_kv", n_heads)?;
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(LocalError::InvalidMetadata {
                key: meta.key("attention.head_count_kv"),
                message: format!("{n_kv_heads} key/value heads do not divide {n_heads} heads"),
            });
        }
        let head_dim = meta.usize_or("attention.key_length", hidden_size / n_heads)?;
        let value_dim = meta.usize_or("attention.value_length", head_dim)?;
        if value_dim != head_dim {
            return Err(LocalError::UnsupportedFeature(format!(
                "value length {value_dim} differs from key length {head_dim}"
            )));
        }
        let rope_dim = meta.usize_or("rope.dimension_count", head_dim)?;
        if rope_dim != head_dim {
            return Err(LocalError::UnsupportedFeature(format!(
                "partial RoPE ({rope_dim} of {head_dim} dimensions)"
            )));
        }
        let rms_eps = meta.f64("attention.layer_norm_rms_epsilon")?;
        let context_length = meta.usize("context_length")?;
        let freq_base = meta.f64_or("rope.freq_base", 10_000.0)? as f32;
        let freq_scale = rope_freq_scale(&meta)?;
        let attn_logit_softcap = meta.optional_f64("attn_logit_softcapping")?;
        let final_logit_softcap = meta.optional_f64("final_logit_softcapping")?;
        let rope_global = RopeParams {
            freq_base,
            freq_scale,
        };

        let config = match architecture {
            Architecture::Llama => ModelConfig {
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
                attn_logit_softcap: attn_logit_softcap.map(|v| v as f32),
                final_logit_softcap: final_logit_softcap.map(|v| v as f32),
                rope_style: RopeStyle::Interleaved,
                rope_global,
                rope_local: rope_global,
                layer_is_local: vec![false; n_layers],
                attention_scale: 1.0 / (head_dim as f32).sqrt(),
            },
            Architecture::Gemma3 => {
                let sliding_window = meta.usize("attention.sliding_window")?;
                let layer_is_local = gemma3_local_layers(&meta, n_layers)?;
                // llama.cpp (and gemma_pytorch) scale queries by 1/sqrt(head_dim), except the
                // 62-layer 27B model, which uses 1/sqrt(hidden / heads).
                let attention_scale = if n_layers == 62 {
                    1.0 / ((hidden_size / n_heads) as f32).sqrt()
                } else {
                    1.0 / (head_dim as f32).sqrt()
                };
                ModelConfig {
                    architecture,
                    n_layers,
                    hidden_size,
                    ffn_size,
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    rms_eps,
                    context_length,
                    sliding_window: Some(sliding_window),
                    attn_logit_softcap: attn_logit_softcap.map(|v| v as f32),
                    final_logit_softcap: final_logit_softcap.map(|v| v as f32),
                    rope_style: RopeStyle::Halves,
                    rope_global,
                    // Gemma 3's local layers always use base 10000 and no scaling,
                    // whatever the global layers use (llama.cpp hard-codes the same).
                    rope_local: RopeParams {
                        freq_base: 10_000.0,
                        freq_scale: 1.0,
                    },
                    layer_is_local,
                    attention_scale,
                }
            }
        };
        Ok(config)
    }
}

/// Linear RoPE scaling (`rope.scaling.type = linear`) divides positions by the factor.
fn rope_freq_scale(meta: &Metadata<'_>) -> Result<f32> {
    let kind = meta.optional_string("rope.scaling.type")?;
    let factor = meta.optional_f64("rope.scaling.factor")?;
    match (kind.as_deref(), factor) {
        (None | Some("none"), _) => Ok(1.0),
        (Some("linear"), Some(factor)) if factor > 0.0 => Ok((1.0 / factor) as f32),
        (Some("linear"), None) => Ok(1.0),
        (Some(other), _) => Err(LocalError::UnsupportedFeature(format!(
            "RoPE scaling type `{other}`"
        ))),
    }
}

/// Gemma 3 makes every 6th layer global (layers 5, 11, ...) unless the file says otherwise.
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
            if period == 0 {
                return Ok(vec![false; n_layers]);
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

    fn f64_or(&self, suffix: &str, default: f64) -> Result<f64> {
        Ok(self.optional_f64(suffix)?.unwrap_or(default))
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
