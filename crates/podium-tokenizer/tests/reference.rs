//! Checks Podium's ids against llama.cpp's on the real GGUF files, for every
//! string in `tests/data/reference_ids.json` (see `tests/data/SOURCE.md`).
//!
//! They need `SmolLM2-135M-Instruct.Q4_1.gguf` and `gemma-3-270m-q4_k_m.gguf` in
//! `PODIUM_MODEL_DIR` (`scripts/test` fetches them); without them they fail
//! saying so, unless `PODIUM_SKIP_MODEL_TESTS=1` (podium-testkit's `models`).

use std::path::PathBuf;

use candle_core::quantized::gguf_file::Content;
use podium_core::ChatMessage;
use podium_tokenizer::{ChatTemplate, EncodeOptions, TokenizeReport, Tokenizer};

const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

fn model_path(file: &str) -> Option<PathBuf> {
    podium_testkit::models::test_model(file)
}

fn load(file: &str) -> Option<(Content, Tokenizer)> {
    let path = model_path(file)?;
    let mut reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let content = Content::read(&mut reader).unwrap();
    let tokenizer = Tokenizer::from_gguf(&content).unwrap();
    Some((content, tokenizer))
}

struct Reference {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
}

fn reference(model_key: &str) -> Reference {
    let raw = include_str!("data/reference_ids.json");
    let all: serde_json::Value = serde_json::from_str(raw).unwrap();
    let entry = &all[model_key];
    let texts: Vec<String> = serde_json::from_value(entry["texts"].clone()).unwrap();
    let ids: Vec<Vec<u32>> = serde_json::from_value(entry["ids"].clone()).unwrap();
    assert_eq!(
        texts.len(),
        ids.len(),
        "{model_key}: texts and ids differ in length"
    );
    Reference { texts, ids }
}

/// Encodes every reference text the way the reference was made
/// (`add_bos = false`, `special = true`) and lists all mismatches at once.
fn check_all(tokenizer: &Tokenizer, model_key: &str) {
    let reference = reference(model_key);
    let options = EncodeOptions {
        add_special: false,
        parse_special: true,
    };
    let mut failures = Vec::new();
    for (text, expected) in reference.texts.iter().zip(&reference.ids) {
        let got = tokenizer.encode(text, options).unwrap();
        if &got != expected {
            failures.push(format!(
                "{text:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{model_key}: {} of {} strings differ from llama.cpp:\n{}",
        failures.len(),
        reference.texts.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_ids_match_llama_cpp() {
    let Some((_, tokenizer)) = load(SMOLLM2_FILE) else {
        return;
    };
    check_all(&tokenizer, "smollm2-135m-instruct");
}

#[test]
fn gemma3_ids_match_llama_cpp() {
    let Some((_, tokenizer)) = load(GEMMA3_FILE) else {
        return;
    };
    check_all(&tokenizer, "gemma3-270m");
}

#[test]
fn decoding_reference_ids_gives_the_text_back() {
    for (file, key) in [
        (SMOLLM2_FILE, "smollm2-135m-instruct"),
        (GEMMA3_FILE, "gemma3-270m"),
    ] {
        let Some((_, tokenizer)) = load(file) else {
            return;
        };
        let reference = reference(key);
        for (text, ids) in reference.texts.iter().zip(&reference.ids) {
            // SentencePiece spells spaces as `▁`, so a literal `▁` in the input
            // comes back as a space; that loss is inherent, not a bug.
            if tokenizer.vocab_kind() == podium_tokenizer::VocabKind::SentencePiece
                && text.contains('▁')
            {
                continue;
            }
            let decoded = tokenizer
                .decode_with(
                    ids,
                    podium_tokenizer::DecodeOptions {
                        render_special: true,
                    },
                )
                .unwrap();
            assert_eq!(&decoded, text, "{key}: decode of {ids:?}");
        }
    }
}

#[test]
fn special_ids_and_flags_come_from_metadata() {
    let Some((_, smol)) = load(SMOLLM2_FILE) else {
        return;
    };
    assert_eq!(smol.vocab_size(), 49152);
    assert_eq!(smol.bos_id(), Some(1));
    assert_eq!(smol.eos_id(), Some(2));
    assert_eq!(smol.eot_id(), smol.token_id("<|im_end|>"));
    assert!(
        !smol.adds_bos(),
        "SmolLM2's GGUF sets add_bos_token = false"
    );
    assert_eq!(
        smol.encode("hi", EncodeOptions::PROMPT).unwrap(),
        smol.encode("hi", EncodeOptions::PLAIN).unwrap()
    );

    let Some((_, gemma)) = load(GEMMA3_FILE) else {
        return;
    };
    assert_eq!(gemma.vocab_size(), 262144);
    assert_eq!(gemma.bos_id(), Some(2));
    assert_eq!(gemma.eos_id(), Some(1));
    assert_eq!(gemma.eot_id(), gemma.token_id("<end_of_turn>"));
    assert!(gemma.is_eog(1) && gemma.is_eog(gemma.eot_id().unwrap()));
    let with_bos = gemma.encode("hi", EncodeOptions::PROMPT).unwrap();
    assert_eq!(with_bos[0], 2, "Gemma adds BOS");
    assert_eq!(
        &with_bos[1..],
        gemma.encode("hi", EncodeOptions::PLAIN).unwrap()
    );
}

#[test]
fn control_text_is_plain_text_unless_parse_special() {
    let Some((_, smol)) = load(SMOLLM2_FILE) else {
        return;
    };
    let parsed = smol
        .encode(
            "<|im_start|>user",
            EncodeOptions {
                add_special: false,
                parse_special: true,
            },
        )
        .unwrap();
    let plain = smol
        .encode("<|im_start|>user", EncodeOptions::PLAIN)
        .unwrap();
    assert_eq!(parsed[0], 1);
    assert!(
        !plain.contains(&1),
        "without parse_special the marker is ordinary text: {plain:?}"
    );
    assert_eq!(smol.decode(&plain).unwrap(), "<|im_start|>user");
}

#[test]
fn smollm2_chat_template_renders_and_gemma_base_has_none() {
    let Some((content, smol)) = load(SMOLLM2_FILE) else {
        return;
    };
    let template = ChatTemplate::from_gguf(&content)
        .unwrap()
        .expect("SmolLM2 has a template");
    let messages = [ChatMessage {
        role: "user".to_owned(),
        content: "hi".to_owned(),
    }];
    let prompt = template.render(&messages, true).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = smol.encode(&prompt, EncodeOptions::PROMPT).unwrap();
    assert_eq!(
        ids[0], 1,
        "the prompt starts with the <|im_start|> control token"
    );

    let Some((gemma_content, _)) = load(GEMMA3_FILE) else {
        return;
    };
    assert!(ChatTemplate::from_gguf(&gemma_content).unwrap().is_none());
}

#[test]
fn report_lists_ids_and_pieces() {
    let Some((_, smol)) = load(SMOLLM2_FILE) else {
        return;
    };
    let ids = smol
        .encode(
            "<|im_start|>Hello world",
            EncodeOptions {
                add_special: false,
                parse_special: true,
            },
        )
        .unwrap();
    let report = TokenizeReport::new(&smol, &ids).unwrap();
    assert_eq!(report.n_tokens, 3);
    assert_eq!(
        report.to_text(),
        "3 tokens\n0      1  \"<|im_start|>\"  [control]\n1  19556  \"Hello\"\n2    905  \" world\"\n"
    );
    assert_eq!(report.to_json()["tokens"][2]["piece"], " world");
}
