//! The small GGUF test models (`scripts/fetch-test-models` fills the cache;
//! `scripts/test` sets `PODIUM_MODEL_DIR` to it). A test on a real model does
//! not pass silently without them: it fails saying how to get them, unless
//! `PODIUM_SKIP_MODEL_TESTS=1` asks to skip such tests on purpose.

use std::path::PathBuf;

/// The folder of the test models.
pub const MODEL_DIR_ENV: &str = "PODIUM_MODEL_DIR";
/// Set to 1 to skip the tests on real models (they print that they skipped).
pub const SKIP_ENV: &str = "PODIUM_SKIP_MODEL_TESTS";

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// The path of test model `file`, or `None` when the tests on real models are
/// skipped on purpose. Panics (failing the test) when the models are missing
/// and no skip was asked for.
pub fn test_model(file: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(MODEL_DIR_ENV) else {
        if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
            eprintln!("skipped ({SKIP_ENV}=1): a test on the real model {file}");
            return None;
        }
        panic!(
            "this test runs on the real model {file}: run `scripts/test` (it fetches the \
             test models once and sets {MODEL_DIR_ENV}), or set {MODEL_DIR_ENV} to the \
             folder `scripts/fetch-test-models` prints; {SKIP_ENV}=1 skips such tests"
        );
    };
    let path = PathBuf::from(dir).join(file);
    assert!(
        path.exists(),
        "{MODEL_DIR_ENV} is set but {} is missing (run scripts/fetch-test-models)",
        path.display()
    );
    Some(path)
}
