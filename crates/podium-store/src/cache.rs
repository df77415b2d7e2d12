//! Keys for the response cache.

use sha2::{Digest, Sha256};

/// The cache key of a request: hex SHA-256 over the endpoint, the served model
/// name and the exact request body.
///
/// Each part is prefixed by its byte length so that different splits of the same
/// bytes (endpoint `a`, model `bc` vs endpoint `ab`, model `c`) cannot collide.
pub fn cache_key(endpoint: &str, model: &str, request_body: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [endpoint, model, request_body] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_hex_and_split_aware() {
        let key = cache_key("http://localhost:8080/v1", "qwen", "{\"a\":1}");
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            key,
            cache_key("http://localhost:8080/v1", "qwen", "{\"a\":1}")
        );
        assert_ne!(cache_key("a", "bc", ""), cache_key("ab", "c", ""));
    }
}
