//! Remote backends against a fake server on 127.0.0.1: measured speed against
//! injected delays, log-likelihoods in both log-prob layouts, endpoints that
//! give no prompt log-probs, retries, broken responses, the response cache,
//! Anthropic's event stream, and API keys that must never leak.

mod anthropic;
mod eval;
mod fake_server;
mod faults;
mod openai;

use std::collections::HashMap;
use std::sync::Mutex;

use podium_core::{GenerateRequest, ResponseCache};

/// Set an environment variable holding a fake key. Each test uses its own
/// variable name, so no test reads a variable another one is writing.
#[allow(unsafe_code)]
pub(crate) fn set_fake_key(name: &str, value: &str) {
    // SAFETY: the names are unique per test and no code reads them before
    // this call returns; nothing else in these tests writes the environment.
    unsafe { std::env::set_var(name, value) };
}

pub(crate) fn generate_request(context: &str) -> GenerateRequest {
    GenerateRequest {
        messages: None,
        context: context.to_string(),
        until: vec!["\n\nQ:".to_string()],
        max_tokens: 64,
        temperature: 0.0,
        top_p: 1.0,
        do_sample: false,
        seed: 1234,
    }
}

/// A response cache in memory, counting its hits.
#[derive(Default)]
pub(crate) struct MemoryCache {
    pub(crate) entries: Mutex<HashMap<String, String>>,
    pub(crate) hits: Mutex<usize>,
}

impl ResponseCache for MemoryCache {
    fn get(&self, key: &str) -> Option<String> {
        let hit = self.entries.lock().unwrap().get(key).cloned();
        if hit.is_some() {
            *self.hits.lock().unwrap() += 1;
        }
        hit
    }

    fn put(&self, key: &str, value: &str) {
        self.entries
            .lock()
            .unwrap()
            .insert(key.to_string(), value.to_string());
    }
}

/// `|measured − expected| ≤ tolerance`, with a message naming the quantity.
pub(crate) fn assert_near(what: &str, measured: f64, expected: f64, tolerance: f64) {
    assert!(
        (measured - expected).abs() <= tolerance,
        "{what}: measured {measured:.4}, expected {expected:.4} ± {tolerance}"
    );
}
