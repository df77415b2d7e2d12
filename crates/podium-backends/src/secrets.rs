//! The secrets this process sends to endpoints (API keys, the credentials of a
//! base URL's `user:password@`), and scrubbing them out of text that came from a
//! server or the network stack before any of it is cut, stored, logged or shown.
//!
//! Why a process-wide list instead of each endpoint's own: a server's bytes are
//! excerpted in many places (error bodies, stream events, JSON bodies, the HTTP
//! client's own errors), and every excerpt must be scrubbed *before* it is cut (a
//! key straddling the cut would otherwise survive in part). Handing each endpoint's
//! secrets to every parser is plumbing that gets missed; [`excerpt`] scrubs every
//! known secret wherever it is called. Scrubbing one endpoint's secret out of
//! another's messages is harmless.

use std::sync::{OnceLock, RwLock};

/// Secrets shorter than this are not scrubbed: replacing every `ab` in a message
/// would garble it and protect nothing.
const MIN_SECRET_CHARS: usize = 6;
/// A run of this many characters of a secret, seen anywhere in a message, is
/// scrubbed too (a server may echo part of a key back, or a cut may leave one).
const MIN_FRAGMENT_CHARS: usize = 8;

const MASK: &str = "***";

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Remember `secret` so that it is scrubbed from every excerpt and message.
pub(crate) fn register(secret: &str) {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    let mut secrets = registry().write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|known| known == secret) {
        secrets.push(secret.to_string());
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every known secret, and every run of at least
/// [`MIN_FRAGMENT_CHARS`] characters of one, replaced by `***`.
pub(crate) fn redact(text: &str) -> String {
    let secrets = registry().read().unwrap_or_else(|e| e.into_inner());
    redact_with(text, &secrets)
}

fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    for secret in secrets {
        out = scrub_fragments(&out, secret);
    }
    out
}

/// Replace every run of at least [`MIN_FRAGMENT_CHARS`] bytes of `text` that is
/// also a run of `secret`'s. Quadratic in the worst case, so it is meant for
/// messages (callers cut excerpts to a few hundred characters first).
fn scrub_fragments(text: &str, secret: &str) -> String {
    let (haystack, needle) = (text.as_bytes(), secret.as_bytes());
    if needle.len() < MIN_FRAGMENT_CHARS || haystack.len() < MIN_FRAGMENT_CHARS {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + MIN_FRAGMENT_CHARS <= haystack.len() {
        let longest = (0..needle.len())
            .map(|j| {
                haystack[i..]
                    .iter()
                    .zip(&needle[j..])
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .max()
            .unwrap_or(0);
        if longest >= MIN_FRAGMENT_CHARS {
            // Widen to character boundaries, so the rest stays valid UTF-8.
            let mut end = i + longest;
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let mut start = i;
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            out.push_str(&text[copied..start.max(copied)]);
            out.push_str(MASK);
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

/// At most `max_chars` characters of `text` (which came from a server), secrets
/// scrubbed first, with `…` when cut: the one way remote text enters a message.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    let secrets = registry().read().unwrap_or_else(|e| e.into_inner());
    let mut text = std::borrow::Cow::Borrowed(text);
    // Whole secrets go before the cut; fragments (needing a quadratic scan) after it.
    for secret in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = std::borrow::Cow::Owned(text.replace(secret.as_str(), MASK));
        }
    }
    let cut = match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    };
    redact_with(&cut, &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_secrets_and_fragments_are_scrubbed() {
        let secrets = vec!["sk-abcdefghijklmnop".to_string()];
        let check = |text: &str, expected: &str| {
            assert_eq!(redact_with(text, &secrets), expected, "{text}");
        };
        check("key sk-abcdefghijklmnop given", "key *** given");
        check("prefix sk-abcdefg… cut", "prefix ***… cut");
        check("tail hijklmnop end", "tail *** end");
        check("short sk-abc is fine", "short sk-abc is fine");
        check("é sk-abcdefgh é", "é *** é");
        check("", "");
    }

    #[test]
    fn excerpts_scrub_before_they_cut() {
        register("sk-excerpt-test-0123456789");
        // The key straddles the 20-character cut.
        let text = format!("{}sk-excerpt-test-0123456789 and more", "x".repeat(15));
        let cut = excerpt(&text, 20);
        assert!(!cut.contains("sk-excerpt"), "{cut}");
        assert!(!cut.contains("0123"), "{cut}");
        assert_eq!(cut, format!("{}*** a…", "x".repeat(15)));
        // Without the scrub first, the cut would have kept `sk-ex`.
        register("ab");
        assert_eq!(redact("ab"), "ab", "too short to be scrubbed");
    }
}
