//! Fuzz targets of `podium-backends`: what a remote endpoint's bytes go through.
//!
//! - `sse_decoder`: the server-sent event decoder on any byte stream, fed whole, in
//!   three pieces cut where the input says, and a byte at a time: every feeding must
//!   give the same events and the same end (a split point must never change what a
//!   stream means), and the limit on an event's size must hold.
//! - `h1_response`: the built-in HTTP/1.1 client's response reading (status line,
//!   headers, `content-length`, chunked and until-close bodies) on any bytes, read
//!   back in pieces of a size the input picks.
//! - `openai_event`: one OpenAI-compatible stream event's `data` (typed parse, lenient
//!   fallback, usage counts, the recorder).
//! - `openai_logprobs`: the hand-written reading of echoed prompt log-probs (both
//!   layouts) and the sum over a continuation.

use podium_backends::fuzzing;

use crate::Target;

pub const TARGETS: &[Target] = &[
    Target {
        name: "sse_decoder",
        run: sse_decoder,
    },
    Target {
        name: "h1_response",
        run: h1_response,
    },
    Target {
        name: "openai_event",
        run: openai_event,
    },
    Target {
        name: "openai_logprobs",
        run: openai_logprobs,
    },
];

/// Input: `[limit, split1, split2, stream…]`.
pub fn sse_decoder(data: &[u8]) {
    let [limit, split1, split2, stream @ ..] = data else {
        return;
    };
    let max_event_bytes = [4, 16, 64, 1 << 20][usize::from(*limit) % 4];
    let at = |fraction: u8| stream.len() * usize::from(fraction) / 255;
    let (first, second) = (at(*split1).min(at(*split2)), at(*split1).max(at(*split2)));
    let whole = fuzzing::sse_events(&[stream], max_event_bytes);
    let pieces = fuzzing::sse_events(
        &[&stream[..first], &stream[first..second], &stream[second..]],
        max_event_bytes,
    );
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let by_byte = fuzzing::sse_events(&bytes, max_event_bytes);
    assert_eq!(whole, pieces, "cut at {first} and {second}");
    assert_eq!(whole, by_byte, "fed a byte at a time");
    for (name, data) in &whole.0 {
        assert!(data.len() <= max_event_bytes, "an event over the limit");
        assert!(name.as_ref().is_none_or(|n| n.len() <= max_event_bytes));
    }
}

/// Input: `[piece size, response…]`.
pub fn h1_response(data: &[u8]) {
    let [piece, response @ ..] = data else {
        return;
    };
    let piece = [1, 7, 64, 1000, 16 * 1024, 1 << 20][usize::from(*piece) % 6];
    if let Ok((status, body)) = fuzzing::h1_response(response, piece) {
        assert!(status < 1000, "status {status}");
        assert!(
            body.len() <= response.len(),
            "more body than bytes received"
        );
    }
}

/// Input: one event's `data`, as text.
pub fn openai_event(data: &[u8]) {
    let _ = fuzzing::openai_event(&String::from_utf8_lossy(data));
}

/// Input: `[context fraction, JSON body…, 0, prompt…]`.
pub fn openai_logprobs(data: &[u8]) {
    let [fraction, rest @ ..] = data else {
        return;
    };
    let (body, prompt) = match rest.iter().position(|&b| b == 0) {
        Some(zero) => (&rest[..zero], &rest[zero + 1..]),
        None => (rest, &[][..]),
    };
    let prompt = String::from_utf8_lossy(prompt);
    let context_len = prompt.len() * usize::from(*fraction) / 255;
    let _ = fuzzing::openai_logprobs(&String::from_utf8_lossy(body), &prompt, context_len);
}
