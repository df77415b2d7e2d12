//! Hashes as Podium writes them: lower-case hex SHA-256 of bytes, of a
//! reader's contents, and the response-cache key.

use sha2::{Digest, Sha256};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of everything `reader` yields (a model file, read
/// in chunks; the caller opens it and names it in errors).
pub fn sha256_hex_reader(mut reader: impl std::io::Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut reader, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// The response-cache key of a request: hex SHA-256 over the endpoint, the
/// served model name and the exact request body, each prefixed by its byte
/// length (little-endian u64) so different splits of the same bytes cannot
/// collide. Every cached response is stored under this key: changing the
/// scheme invalidates every cache, so its value is pinned by a test.
pub fn cache_key(endpoint: &str, model: &str, request_body: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [endpoint, model, request_body] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_sha256_are_the_usual_ones() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex_reader(&b"abc"[..]).unwrap(), sha256_hex(b"abc"));
    }

    /// A deliberate, visible change: a new value here means every user's
    /// response cache misses once.
    #[test]
    fn the_cache_key_scheme_is_pinned() {
        assert_eq!(
            cache_key("http://localhost:8080/v1", "qwen", "{\"a\":1}"),
            "9d7b3e1317eddc08d2386c330c12b73003bdfe5b03811c414c987d105775eae9"
        );
        assert_ne!(cache_key("a", "bc", ""), cache_key("ab", "c", ""));
    }
}
