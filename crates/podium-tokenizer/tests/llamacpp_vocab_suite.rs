//! llama.cpp's own tokenizer test suite, run on Podium's tokenizer: every
//! `ggml-vocab-NAME.gguf` in the folder that has `ggml-vocab-NAME.gguf.inp` (inputs) and
//! `.gguf.out` (llama.cpp's ids) must give exactly llama.cpp's ids for every input.
//!
//! The files are the `models/` folder of the llama.cpp that llama-cpp-python 0.3.36
//! vendors; `scripts/fetch-llamacpp-vocabs` puts them into a cache and `scripts/test`
//! points `PODIUM_LLAMACPP_VOCAB_DIR` at it. Without the folder the test fails, unless
//! `PODIUM_SKIP_MODEL_TESTS=1`.
//!
//! The inputs are read as llama.cpp's `tests/test-tokenizer-0.cpp` reads them: the
//! `.inp` file is cut at every `"\n__ggml_vocab_test__\n"` (a last piece without the
//! separator counts too), line i of `.out` holds the ids of input i separated by
//! spaces, and each input is tokenized with `add_special = false` and
//! `parse_special = false`. Unlike llama.cpp (which keeps the cases in a map) a repeated
//! input is checked as often as it occurs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;
use podium_tokenizer::{EncodeOptions, Tokenizer};

const DIR_ENV: &str = "PODIUM_LLAMACPP_VOCAB_DIR";
const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

/// The vocabularies with test files in llama.cpp as vendored by llama-cpp-python
/// 0.3.36, with their number of cases. A vocabulary missing from the folder fails the
/// test (a half-extracted cache must not pass); a vocabulary not in this list is still
/// run, and fails if Podium cannot load it.
const EXPECTED: &[(&str, usize)] = &[
    ("bert-bge", 46),
    ("command-r", 46),
    ("deepseek-coder", 46),
    ("deepseek-llm", 46),
    ("falcon", 46),
    ("gemma-4", 46),
    ("gpt-2", 46),
    ("llama-bpe", 46),
    ("llama-spm", 46),
    ("mpt", 46),
    ("phi-3", 46),
    ("qwen2", 46),
    ("qwen35", 50),
    ("refact", 46),
    ("starcoder", 46),
];

fn suite_dir() -> Option<PathBuf> {
    let skip = podium_testkit::models::SKIP_ENV;
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        if std::env::var(skip).is_ok_and(|v| v == "1") {
            eprintln!("skipped ({skip}=1): llama.cpp's tokenizer test suite");
            return None;
        }
        panic!(
            "this test runs llama.cpp's tokenizer test suite: run `scripts/test` (it fetches \
             the files once and sets {DIR_ENV}), or set {DIR_ENV} to the folder \
             `scripts/fetch-llamacpp-vocabs` prints; {skip}=1 skips such tests"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "{DIR_ENV} is set but {} is no folder (run scripts/fetch-llamacpp-vocabs)",
        dir.display()
    );
    Some(dir)
}

struct Case {
    input: String,
    expected: Vec<u32>,
}

/// The cases of one vocabulary, read as llama.cpp's test-tokenizer-0 reads them.
fn read_cases(inp: &Path, out: &Path) -> Vec<Case> {
    let raw = std::fs::read(inp).unwrap_or_else(|e| panic!("{}: {e}", inp.display()));
    let raw = String::from_utf8(raw).unwrap_or_else(|e| panic!("{}: {e}", inp.display()));
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        match raw[pos..].find(SEPARATOR) {
            Some(found) => {
                inputs.push(raw[pos..pos + found].to_owned());
                pos += found + SEPARATOR.len();
            }
            None => {
                inputs.push(raw[pos..].to_owned());
                break;
            }
        }
    }
    let expected_text =
        std::fs::read_to_string(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let expected: Vec<Vec<u32>> = expected_text
        .lines()
        .enumerate()
        .map(|(line, ids)| {
            ids.split_whitespace()
                .map(|id| {
                    id.parse().unwrap_or_else(|e| {
                        panic!("{} line {}: {id:?}: {e}", out.display(), line + 1)
                    })
                })
                .collect()
        })
        .collect();
    assert_eq!(
        inputs.len(),
        expected.len(),
        "{} has {} inputs but {} has {} lines",
        inp.display(),
        inputs.len(),
        out.display(),
        expected.len()
    );
    inputs
        .into_iter()
        .zip(expected)
        .map(|(input, expected)| Case { input, expected })
        .collect()
}

/// The vocabulary names (`NAME` of `ggml-vocab-NAME.gguf.inp`) in `dir`, sorted.
fn vocabularies(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(
                name.strip_prefix("ggml-vocab-")?
                    .strip_suffix(".gguf.inp")?
                    .to_owned(),
            )
        })
        .collect();
    names.sort();
    names
}

fn load(path: &Path) -> Result<Tokenizer, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let content = Content::read(&mut std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    Tokenizer::from_gguf(&content).map_err(|e| e.to_string())
}

#[test]
fn every_case_of_every_llamacpp_vocabulary_gives_llamacpp_ids() {
    let Some(dir) = suite_dir() else {
        return;
    };
    let names = vocabularies(&dir);
    let mut problems = Vec::new();
    for (name, _) in EXPECTED {
        if !names.iter().any(|n| n == name) {
            problems.push(format!(
                "{name}: ggml-vocab-{name}.gguf.inp is missing from {} (run scripts/fetch-llamacpp-vocabs)",
                dir.display()
            ));
        }
    }
    let mut summary = BTreeMap::new();
    for name in &names {
        let gguf = dir.join(format!("ggml-vocab-{name}.gguf"));
        let cases = read_cases(
            &dir.join(format!("ggml-vocab-{name}.gguf.inp")),
            &dir.join(format!("ggml-vocab-{name}.gguf.out")),
        );
        if let Some((_, n)) = EXPECTED.iter().find(|(known, _)| known == name)
            && *n != cases.len()
        {
            problems.push(format!(
                "{name}: {} cases, but llama.cpp's suite has {n}",
                cases.len()
            ));
        }
        let tokenizer = match load(&gguf) {
            Ok(tokenizer) => tokenizer,
            Err(e) => {
                problems.push(format!(
                    "{name}: Podium cannot load {}: {e}",
                    gguf.display()
                ));
                summary.insert(name.clone(), (0, cases.len()));
                continue;
            }
        };
        let mut passed = 0;
        for (idx, case) in cases.iter().enumerate() {
            let got = match tokenizer.encode(&case.input, EncodeOptions::PLAIN) {
                Ok(ids) => ids,
                Err(e) => {
                    problems.push(format!(
                        "{name} case {idx} {:?}: encode failed: {e}",
                        case.input
                    ));
                    continue;
                }
            };
            if got == case.expected {
                passed += 1;
            } else {
                problems.push(format!(
                    "{name} case {idx} {:?}\n  expected {:?}\n  got      {got:?}",
                    case.input, case.expected
                ));
            }
        }
        summary.insert(name.clone(), (passed, cases.len()));
    }
    let (passed, total) = summary
        .values()
        .fold((0, 0), |(p, t), &(passed, n)| (p + passed, t + n));
    let table: Vec<String> = summary
        .iter()
        .map(|(name, (passed, n))| format!("  {name}: {passed} of {n}"))
        .collect();
    eprintln!(
        "llama.cpp tokenizer suite in {}: {passed} of {total} cases\n{}",
        dir.display(),
        table.join("\n")
    );
    assert!(
        total > 0,
        "no ggml-vocab-*.gguf.inp files in {}",
        dir.display()
    );
    assert!(
        problems.is_empty(),
        "{} problems ({passed} of {total} cases pass):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
