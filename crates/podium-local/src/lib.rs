//! Podium's local CPU inference engine: loads GGUF models (llama, qwen2, qwen3, phi3 and gemma3 families)
//! with candle's quantized tensors and runs our own forward pass over them.
//!
//! The engine works on token ids; text comes in through a [`TextTokenizer`].
//! [`LocalModel`] is the loaded model, run on the thread that calls it; [`LocalBackend`]
//! moves one onto a thread of its own, fed by a channel, and implements
//! [`podium_core::Backend`] by sending jobs there and awaiting the replies (`serve-model`
//! instead calls a `LocalModel` from its one model thread).
//!
//! Architecture invariant: nothing here blocks an async runtime's threads; every tensor
//! operation happens on a model thread.

mod activation;
mod backend;
mod config;
mod dense;
mod engine;
mod error;
mod gguf;
mod gguf_tokenizer;
mod load;
mod model;
mod qkernels;
mod sampling;
mod threads;
mod tokenizer;

#[cfg(test)]
mod fidelity_tests;
#[cfg(test)]
mod tests;

pub use backend::{LocalBackend, LocalModel, LocalOptions, StreamEvent};
pub use config::{Architecture, BlockOptions, ModelConfig, SUPPORTED_ARCHITECTURES};
pub use engine::{FinishReason, SequenceScore, SpeedReport};
pub use error::LocalError;
pub use gguf_tokenizer::GgufTokenizer;
pub use load::{WeightFormat, read_gguf_header};
pub use sampling::SamplingParams;
pub use threads::set_thread_count;
pub use tokenizer::{TextTokenizer, TokenizerError, encode_pair};

#[doc(hidden)]
pub use qkernels::bench as qkernels_bench;

/// Entry points for the fuzz harnesses of `podium-fuzz`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use crate::error::LocalError;

    /// Everything loading does with a GGUF file before reading its weights, on `bytes`
    /// as the whole file: the header, the model configuration and tensor shapes, and the
    /// tokenizer and chat template (then used on a short text and message). Returns the
    /// first error of loading.
    pub fn check_header(bytes: &[u8]) -> Result<(), LocalError> {
        let path = Path::new("fuzz-input.gguf");
        let content = crate::load::read_content(&mut &bytes[..], bytes.len() as u64, path)?;
        // Both halves run whatever the other says, so that each is exercised.
        let model = crate::load::inspect(&content, path).map(|_| ());
        let tokenizer = crate::GgufTokenizer::from_gguf(&content).map(|tokenizer| {
            use crate::TextTokenizer;
            // A text the vocabulary cannot spell is an error of that call, not of the file.
            if let Ok(ids) = tokenizer.encode("Hello, world! <|im_start|> 123 \u{e9}\n", true) {
                let _ = tokenizer.decode(&ids);
            }
            let _ = tokenizer.apply_chat_template(
                &[podium_core::ChatMessage {
                    role: "user".into(),
                    content: "Hi".into(),
                }],
                true,
            );
        });
        model.and(tokenizer)
    }

    /// A tiny valid GGUF file, a few KB: one layer of `architecture` (`llama`, `qwen2`
    /// with Q/K/V biases, `qwen3`, `phi3` with fused QKV and gate/up, or `gemma3`) with a
    /// hidden size of 32, zero weights, and a vocabulary of
    /// `tokenizer_model` (`gpt2` byte-level BPE or `llama` SentencePiece). Seeds the
    /// fuzz corpus.
    pub fn tiny_gguf(architecture: &str, tokenizer_model: &str) -> Result<Vec<u8>, LocalError> {
        tiny_gguf_with_chat_template(
            architecture,
            tokenizer_model,
            "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
        )
    }

    /// [`tiny_gguf`] whose `llama` vocabulary comes with `chat_template` (a `gpt2`
    /// vocabulary has none).
    pub fn tiny_gguf_with_chat_template(
        architecture: &str,
        tokenizer_model: &str,
        chat_template: &str,
    ) -> Result<Vec<u8>, LocalError> {
        use candle_core::quantized::gguf_file::{self, Value};
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{DType, Device, Tensor};

        const HIDDEN: usize = 32;
        let arch = architecture;
        let gemma = arch == "gemma3";
        let u32_value = |v: usize| Value::U32(v as u32);
        let mut metadata: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (format!("{arch}.block_count"), u32_value(1)),
            (format!("{arch}.context_length"), u32_value(64)),
            (format!("{arch}.embedding_length"), u32_value(HIDDEN)),
            (format!("{arch}.feed_forward_length"), u32_value(HIDDEN)),
            (format!("{arch}.attention.head_count"), u32_value(2)),
            (format!("{arch}.attention.head_count_kv"), u32_value(1)),
            (format!("{arch}.attention.key_length"), u32_value(16)),
            (
                format!("{arch}.attention.layer_norm_rms_epsilon"),
                Value::F32(1e-6),
            ),
            (format!("{arch}.rope.freq_base"), Value::F32(1e4)),
        ];
        if gemma {
            metadata.push((format!("{arch}.attention.sliding_window"), u32_value(4)));
            metadata.push((format!("{arch}.final_logit_softcapping"), Value::F32(30.0)));
        }
        let texts: Vec<&str> = if tokenizer_model == "gpt2" {
            vec![
                "<|endoftext|>",
                "<|im_start|>",
                "a",
                "b",
                "Ġ",
                "ab",
                "Ġab",
                "1",
            ]
        } else {
            vec!["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "<0x41>"]
        };
        let strings = |items: &[&str]| {
            Value::Array(items.iter().map(|s| Value::String((*s).into())).collect())
        };
        metadata.push((
            "tokenizer.ggml.model".into(),
            Value::String(tokenizer_model.into()),
        ));
        metadata.push(("tokenizer.ggml.tokens".into(), strings(&texts)));
        if tokenizer_model == "gpt2" {
            metadata.push(("tokenizer.ggml.pre".into(), Value::String("smollm".into())));
            metadata.push(("tokenizer.ggml.merges".into(), strings(&["a b", "Ġ ab"])));
            metadata.push(("tokenizer.ggml.bos_token_id".into(), u32_value(0)));
            let types = [3, 3, 1, 1, 1, 1, 1, 1];
            metadata.push((
                "tokenizer.ggml.token_type".into(),
                Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
            ));
        } else {
            let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -1.5, 0.0];
            metadata.push((
                "tokenizer.ggml.scores".into(),
                Value::Array(scores.iter().map(|&s| Value::F32(s)).collect()),
            ));
            let types = [2, 3, 3, 1, 1, 1, 1, 6];
            metadata.push((
                "tokenizer.ggml.token_type".into(),
                Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
            ));
            metadata.push((
                "tokenizer.chat_template".into(),
                Value::String(chat_template.into()),
            ));
        }

        let zeros = |dims: &[usize], dtype: GgmlDType| -> Result<QTensor, LocalError> {
            let tensor = Tensor::zeros(dims, DType::F32, &Device::Cpu)?;
            Ok(QTensor::quantize(&tensor, dtype)?)
        };
        let (q_dim, kv_dim) = (2 * 16, 16);
        let mut tensors: Vec<(String, QTensor)> = vec![
            (
                "token_embd.weight".into(),
                zeros(&[texts.len(), HIDDEN], GgmlDType::Q8_0)?,
            ),
            (
                "output_norm.weight".into(),
                zeros(&[HIDDEN], GgmlDType::F32)?,
            ),
        ];
        let layer = |suffix: &str| format!("blk.0.{suffix}.weight");
        let fused = arch == "phi3";
        let mut matrices = vec![("attn_norm", vec![HIDDEN])];
        if fused {
            matrices.push(("attn_qkv", vec![q_dim + 2 * kv_dim, HIDDEN]));
        } else {
            matrices.push(("attn_q", vec![q_dim, HIDDEN]));
            matrices.push(("attn_k", vec![kv_dim, HIDDEN]));
            matrices.push(("attn_v", vec![kv_dim, HIDDEN]));
        }
        matrices.push(("attn_output", vec![HIDDEN, q_dim]));
        matrices.push(("ffn_norm", vec![HIDDEN]));
        if fused {
            matrices.push(("ffn_up", vec![2 * HIDDEN, HIDDEN]));
        } else {
            matrices.push(("ffn_gate", vec![HIDDEN, HIDDEN]));
            matrices.push(("ffn_up", vec![HIDDEN, HIDDEN]));
        }
        matrices.push(("ffn_down", vec![HIDDEN, HIDDEN]));
        for (suffix, dims) in matrices {
            let dtype = if dims.len() == 1 {
                GgmlDType::F32
            } else {
                GgmlDType::Q8_0
            };
            tensors.push((layer(suffix), zeros(&dims, dtype)?));
        }
        if gemma || arch == "qwen3" {
            for suffix in ["attn_q_norm", "attn_k_norm"] {
                tensors.push((layer(suffix), zeros(&[16], GgmlDType::F32)?));
            }
        }
        if gemma {
            for suffix in ["post_attention_norm", "post_ffw_norm"] {
                tensors.push((layer(suffix), zeros(&[HIDDEN], GgmlDType::F32)?));
            }
        }
        if arch == "qwen2" {
            for (suffix, len) in [("attn_q", q_dim), ("attn_k", kv_dim), ("attn_v", kv_dim)] {
                tensors.push((
                    format!("blk.0.{suffix}.bias"),
                    zeros(&[len], GgmlDType::F32)?,
                ));
            }
        }
        let metadata_refs: Vec<(&str, &Value)> =
            metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensor_refs: Vec<(&str, &QTensor)> =
            tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut bytes = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut bytes, &metadata_refs, &tensor_refs)?;
        Ok(bytes.into_inner())
    }
}
