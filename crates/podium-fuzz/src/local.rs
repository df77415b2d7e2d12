//! Fuzz targets of `podium-local` and `podium-tokenizer`: the GGUF header as a model
//! load reads it, and the tokenizer on arbitrary text and ids.

use std::sync::OnceLock;

use podium_tokenizer::{DecodeOptions, EncodeOptions, Tokenizer};

use crate::Target;

pub const TARGETS: &[Target] = &[
    Target {
        name: "gguf_header",
        run: gguf_header,
    },
    Target {
        name: "tokenizer_encode",
        run: tokenizer_encode,
    },
];

/// Everything a model load does before reading weights, on `data` as a whole GGUF file:
/// the bounded header reader, the model configuration and tensor shape checks, and the
/// tokenizer and chat template built from the metadata. Any error is a fine answer.
pub fn gguf_header(data: &[u8]) {
    let _ = podium_local::fuzzing::check_header(data);
}

/// The fixed tokenizers `tokenizer_encode` picks from: byte-level BPE with three
/// pre-tokenizers, SentencePiece with and without the space prefix, then byte-level
/// BPE with the pre-tokenizers of Qwen 2, Qwen 3.5, DeepSeek LLM and Coder, Falcon and
/// llama.cpp's default, Gemma 4's BPE and BERT's WordPiece.
fn tokenizers() -> &'static [Tokenizer] {
    static TOKENIZERS: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        use podium_tokenizer::fuzzing::{
            tiny_bpe_with_pre_tokenizer, tiny_gemma4, tiny_spm, tiny_wordpiece,
        };
        let mut tokenizers = vec![
            tiny_bpe_with_pre_tokenizer("smollm"),
            tiny_bpe_with_pre_tokenizer("llama3"),
            tiny_bpe_with_pre_tokenizer("gpt-2"),
            tiny_spm(true),
            tiny_spm(false),
        ];
        for pre in [
            "qwen2",
            "qwen35",
            "deepseek-llm",
            "deepseek-coder",
            "falcon",
            "default",
        ] {
            tokenizers.push(tiny_bpe_with_pre_tokenizer(pre));
        }
        tokenizers.push(tiny_gemma4());
        tokenizers.push(tiny_wordpiece());
        tokenizers
    })
}

/// The first byte picks a tokenizer and the options; the rest is text (as lossy UTF-8)
/// to encode and decode, and also a list of 16-bit ids to decode. Encoding with these
/// vocabularies cannot fail (every byte has a token or is dropped as llama.cpp drops
/// it), its ids must decode, and SentencePiece without the space prefix must give the
/// text back.
pub fn tokenizer_encode(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let tokenizers = tokenizers();
    let index = usize::from(selector & 0x0f) % tokenizers.len();
    let tokenizer = &tokenizers[index];
    let options = EncodeOptions {
        add_special: selector & 0x10 != 0,
        parse_special: selector & 0x20 != 0,
    };
    let text = String::from_utf8_lossy(rest);
    let ids = tokenizer
        .encode(&text, options)
        .expect("these vocabularies encode any text");
    let decoded = tokenizer.decode(&ids).expect("encoded ids decode");
    let spm_without_prefix = index == 4;
    if spm_without_prefix && options == EncodeOptions::PLAIN && !text.contains('▁') {
        assert_eq!(decoded, text, "SentencePiece round trip");
    }
    let vocab_size = tokenizer.vocab_size() as u32;
    let ids: Vec<u32> = rest
        .chunks(2)
        .map(|pair| {
            let id = u32::from(pair[0]) | pair.get(1).map_or(0, |&b| u32::from(b) << 8);
            // Mostly valid ids, some out of range.
            id % (vocab_size + 4)
        })
        .collect();
    let render_special = selector & 0x40 != 0;
    let _ = tokenizer.decode_with(&ids, DecodeOptions { render_special });
    for &id in ids.iter().take(32) {
        let _ = tokenizer.token_piece(id);
        let _ = tokenizer.token_kind(id);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tiny_seed_models_pass_every_check() {
        for (architecture, tokenizer) in [
            ("llama", "gpt2"),
            ("gemma3", "llama"),
            ("qwen2", "gpt2"),
            ("qwen3", "gpt2"),
            ("phi3", "llama"),
        ] {
            let bytes = podium_local::fuzzing::tiny_gguf(architecture, tokenizer).unwrap();
            podium_local::fuzzing::check_header(&bytes).unwrap();
            // `PODIUM_WRITE_SEEDS=1 cargo test -p podium-fuzz` refreshes the corpus seeds.
            if std::env::var_os("PODIUM_WRITE_SEEDS").is_some() {
                let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/gguf_header");
                std::fs::create_dir_all(dir).unwrap();
                let path = format!("{dir}/tiny-{architecture}-{tokenizer}.gguf");
                std::fs::write(path, &bytes).unwrap();
            }
        }
    }
}
