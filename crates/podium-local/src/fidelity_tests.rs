//! Agreement with llama.cpp on tiny random-weight models of every supported family.
//!
//! `tests/fidelity/generate.py` wrote the GGUF files under `tests/fidelity/models/` (f32,
//! and Q8_0 / Q4_K_M quantized by llama.cpp's own quantizer) and ran llama.cpp 0.3.36
//! (through llama-cpp-python, f32 key/value cache) on fixed token sequences, keeping the
//! log-probability of every next token and the top 5 in `tests/fidelity/llamacpp.json`.
//! Here Podium runs the same files on the same token ids; neither llama.cpp nor Python is
//! needed. docs/CROSSCHECK.md has the figures and the command that regenerates the fixtures.

use std::path::{Path, PathBuf};

use candle_core::DType;
use serde_json::Value;

use crate::load::{GgufFile, WeightFormat};
use crate::model::{KvCache, Model, logits_rows, row_logprob};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity")
}

/// One fixed token sequence and llama.cpp's log-probs on it.
struct Expected {
    tokens: Vec<u32>,
    /// Log-prob of `tokens[i + 1]` after `tokens[..=i]`.
    logprobs: Vec<f64>,
    /// llama.cpp's 5 most likely next tokens at each position, with their log-probs.
    top_ids: Vec<Vec<u32>>,
    top_logprobs: Vec<Vec<f64>>,
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

fn expected_for(file: &str) -> Vec<Expected> {
    let text = std::fs::read_to_string(fixture_dir().join("llamacpp.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let sequences = json["files"][file]
        .as_array()
        .unwrap_or_else(|| panic!("no fixture for {file}"));
    sequences
        .iter()
        .map(|s| Expected {
            tokens: numbers(&s["tokens"]).iter().map(|&t| t as u32).collect(),
            logprobs: numbers(&s["logprobs"]),
            top_ids: s["top_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ids| numbers(ids).iter().map(|&t| t as u32).collect())
                .collect(),
            top_logprobs: s["top_logprobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(numbers)
                .collect(),
        })
        .collect()
}

/// How Podium runs a file in one comparison.
#[derive(Clone, Copy, Debug)]
struct Setup {
    name: &'static str,
    format: WeightFormat,
    dense: Option<DType>,
    /// Feed the sequence one token at a time (the decode path) instead of in one batch.
    one_at_a_time: bool,
    /// Bound on the mean |Δ log-prob| per token against llama.cpp.
    bound: f64,
    /// A position counts as a top-1 mismatch when llama.cpp's top token leads its second
    /// by more than this and is not Podium's arg-max.
    top1_margin: f64,
}

/// Bound with f32 weights (issue 15: 1e-3 nats/token). Measured: under 5e-7 for every
/// family but Gemma 3 (1.8e-4: llama.cpp's GELU reads an f16 table).
const F32_BOUND: f64 = 1e-3;
/// Bound for the quantized kernels, which quantize activations to 8 bits as llama.cpp's
/// do and so compute nearly the same numbers (measured: 1e-7 to 9e-3).
const QUANTIZED_KERNELS_BOUND: f64 = 0.015;
/// Bound for the engine's default batch path (f16 weight copies, f16 activations): it
/// differs from llama.cpp by llama.cpp's 8-bit activation rounding (measured 0.008 to
/// 0.019 on these random models, whose logits are more sensitive than a trained
/// model's; it stays within 0.0011 of Podium's own f32 reference).
const DEFAULT_PATH_BOUND: f64 = 0.03;

/// The engine's defaults (Q8_0 for slow types, f16 copies for batches), and the
/// quantized kernels alone, which quantize activations to 8 bits as llama.cpp does.
const QUANTIZED_SETUPS: [Setup; 3] = [
    DEFAULT_SETUP,
    Setup {
        name: "stored quantized, batch",
        format: WeightFormat::AsStored,
        dense: None,
        one_at_a_time: false,
        bound: QUANTIZED_KERNELS_BOUND,
        top1_margin: 0.01,
    },
    Setup {
        name: "stored quantized, one token at a time",
        format: WeightFormat::AsStored,
        dense: None,
        one_at_a_time: true,
        bound: QUANTIZED_KERNELS_BOUND,
        top1_margin: 0.01,
    },
];

const DEFAULT_SETUP: Setup = Setup {
    name: "default (f16 batch weights)",
    format: WeightFormat::Q8_0ForSlowTypes,
    dense: Some(DType::F16),
    one_at_a_time: false,
    bound: DEFAULT_PATH_BOUND,
    top1_margin: 0.1,
};

/// Podium's f32 reference: weights dequantized, activations in f32.
const REFERENCE_SETUP: Setup = Setup {
    name: "f32 reference",
    format: WeightFormat::F32Reference,
    dense: None,
    one_at_a_time: false,
    bound: 0.0,
    top1_margin: 0.0,
};

const F32_SETUPS: [Setup; 2] = [
    Setup {
        name: "f32 weights, batch",
        format: WeightFormat::AsStored,
        dense: None,
        one_at_a_time: false,
        bound: F32_BOUND,
        top1_margin: 0.01,
    },
    Setup {
        name: "f32 weights, one token at a time",
        format: WeightFormat::AsStored,
        dense: None,
        one_at_a_time: true,
        bound: F32_BOUND,
        top1_margin: 0.01,
    },
];

/// Logit rows (full vocabulary) after each prefix of `tokens`.
fn podium_logprob_rows(model: &Model, tokens: &[u32], one_at_a_time: bool) -> Vec<Vec<f32>> {
    let mut cache: KvCache = model.new_cache();
    if one_at_a_time {
        let mut rows = Vec::new();
        for &token in tokens {
            let hidden = model.forward(&[token], 1, &mut cache, &[0]).unwrap();
            rows.extend(logits_rows(&model.logits(&hidden).unwrap()).unwrap());
        }
        rows
    } else {
        let rows: Vec<usize> = (0..tokens.len()).collect();
        let hidden = model.forward(tokens, 1, &mut cache, &rows).unwrap();
        logits_rows(&model.logits(&hidden).unwrap()).unwrap()
    }
}

/// Agreement of one file under one setup.
struct Agreement {
    /// Mean |Δ log-prob| of the actual next tokens.
    mean_abs: f64,
    /// Largest |Δ log-prob| over the next tokens and llama.cpp's top 5.
    max_abs: f64,
    /// Positions where llama.cpp's top token is clearly ahead (by 0.01 nats) but is not
    /// Podium's arg-max.
    top1_mismatches: usize,
    n_tokens: usize,
}

fn load(file: &str, setup: Setup) -> Model {
    let path = fixture_dir().join("models").join(file);
    let mut gguf = GgufFile::open(&path).unwrap();
    Model::load(&mut gguf, &path, setup.format, setup.dense)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Mean |Δ log-prob| of the next tokens between two of Podium's setups on one file.
fn podium_self_difference(file: &str, a: Setup, b: Setup) -> f64 {
    let (model_a, model_b) = (load(file, a), load(file, b));
    let mut sum = 0.0;
    let mut n = 0;
    for expected in expected_for(file) {
        let tokens = &expected.tokens;
        let rows_a = podium_logprob_rows(&model_a, tokens, a.one_at_a_time);
        let rows_b = podium_logprob_rows(&model_b, tokens, b.one_at_a_time);
        for i in 0..tokens.len() - 1 {
            let next = tokens[i + 1];
            sum += (row_logprob(&rows_a[i], next).logprob - row_logprob(&rows_b[i], next).logprob)
                .abs();
            n += 1;
        }
    }
    sum / n as f64
}

fn compare(file: &str, setup: Setup) -> Agreement {
    let model = load(file, setup);
    let mut sum = 0.0;
    let mut max_abs: f64 = 0.0;
    let mut top1_mismatches = 0;
    let mut n_tokens = 0;
    for expected in expected_for(file) {
        let rows = podium_logprob_rows(&model, &expected.tokens, setup.one_at_a_time);
        for (i, &want) in expected.logprobs.iter().enumerate() {
            let row = &rows[i];
            let got = row_logprob(row, expected.tokens[i + 1]);
            let delta = (got.logprob - want).abs();
            sum += delta;
            max_abs = max_abs.max(delta);
            n_tokens += 1;
            for (&id, &want_top) in expected.top_ids[i].iter().zip(&expected.top_logprobs[i]) {
                max_abs = max_abs.max((row_logprob(row, id).logprob - want_top).abs());
            }
            let margin = expected.top_logprobs[i][0] - expected.top_logprobs[i][1];
            if margin > setup.top1_margin && got.top_id != expected.top_ids[i][0] {
                top1_mismatches += 1;
            }
        }
    }
    Agreement {
        mean_abs: sum / n_tokens as f64,
        max_abs,
        top1_mismatches,
        n_tokens,
    }
}

/// The weight types a fixture comes in: always f32, most also Q8_0, the families new in
/// issue 15 also Q4_K_M.
#[derive(Clone, Copy, PartialEq)]
enum Types {
    F32,
    F32Q8,
    F32Q8Q4k,
}

fn check_family(family: &str, types: Types) {
    let mut files = vec![(format!("{family}.f32.gguf"), &F32_SETUPS[..])];
    if types != Types::F32 {
        files.push((format!("{family}.q8_0.gguf"), &QUANTIZED_SETUPS[..]));
    }
    if types == Types::F32Q8Q4k {
        files.push((format!("{family}.q4_k.gguf"), &QUANTIZED_SETUPS[..]));
    }
    let mut failures = Vec::new();
    for (file, setups) in files {
        if setups.len() == QUANTIZED_SETUPS.len() {
            let own = podium_self_difference(&file, DEFAULT_SETUP, REFERENCE_SETUP);
            println!(
                "{file:24} {:40} mean |Δ| {own:.2e} nats/token against Podium's f32 reference",
                DEFAULT_SETUP.name
            );
        }
        for &setup in setups {
            let bound = setup.bound;
            let a = compare(&file, setup);
            println!(
                "{file:24} {:40} mean |Δ| {:.2e} nats/token, max |Δ| {:.2e} (next and top-5), \
                 top-1 mismatches {} of {} tokens",
                setup.name, a.mean_abs, a.max_abs, a.top1_mismatches, a.n_tokens
            );
            if a.mean_abs >= bound || a.top1_mismatches > 0 {
                failures.push(format!(
                    "{file} ({}): mean |Δ| {:.2e} (bound {bound:.0e}), {} top-1 mismatches",
                    setup.name, a.mean_abs, a.top1_mismatches
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn llama_matches_llama_cpp() {
    check_family("llama", Types::F32Q8);
}

#[test]
fn gemma3_matches_llama_cpp() {
    check_family("gemma3", Types::F32Q8);
}

#[test]
fn llama3_rope_factors_match_llama_cpp() {
    check_family("llama3", Types::F32Q8Q4k);
}

#[test]
fn llama_with_biases_matches_llama_cpp() {
    check_family("llama_biases", Types::F32Q8);
}

#[test]
fn qwen2_matches_llama_cpp() {
    check_family("qwen2", Types::F32Q8Q4k);
}

#[test]
fn qwen3_matches_llama_cpp() {
    check_family("qwen3", Types::F32Q8Q4k);
}

#[test]
fn phi3_matches_llama_cpp() {
    check_family("phi3", Types::F32Q8Q4k);
}

#[test]
fn phi3_long_context_rope_factors_match_llama_cpp() {
    // Run on a context past the original one: the long factors.
    check_family("phi3_long", Types::F32);
    // Within it: the short factors.
    check_family("phi3_short", Types::F32);
}
