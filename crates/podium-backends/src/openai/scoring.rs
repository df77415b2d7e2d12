//! Log-likelihoods from `/completions` with `echo` + `logprobs`: the request, the
//! two layouts servers answer in (legacy offsets, and `content` with bytes), and
//! a continuation's score from the prompt's tokens.

use super::*;

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use podium_core::{BackendError, LoglikelihoodResult};

use crate::http::{Failure, excerpt, failure_from_status, server_message};

/// A continuation's score (or a whole text's, with an empty context).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct SpanScore {
    logprob: f64,
    is_greedy: bool,
    n_tokens: usize,
}

impl From<SpanScore> for LoglikelihoodResult {
    fn from(score: SpanScore) -> Self {
        LoglikelihoodResult {
            logprob: score.logprob,
            is_greedy: score.is_greedy,
            n_tokens: score.n_tokens,
        }
    }
}

/// Score `continuation` after `context` with one echo+logprobs request.
pub(super) async fn score_span(
    inner: &Inner,
    context: &str,
    continuation: &str,
) -> Result<LoglikelihoodResult, BackendError> {
    if inner.no_prompt_logprobs.load(Ordering::Relaxed) {
        return Err(BackendError::Unsupported(NO_PROMPT_LOGPROBS.into()));
    }
    let url = format!("{}/completions", inner.base_url);
    let prompt = format!("{context}{continuation}");
    // The key covers where the continuation starts: the same prompt split
    // differently is a different question.
    let cache_key = podium_core::cache_key(
        &url,
        &inner.model,
        &format!(
            "{}\0continuation_start={}",
            loglikelihood_body(&inner.model, &prompt, 0),
            context.len()
        ),
    );
    let score: SpanScore = inner
        .endpoint
        .cached(
            &url,
            &cache_key,
            prompt.len() / 4 + 1,
            |_| {},
            |_start| score_attempt(inner, &url, context, &prompt),
        )
        .await?;
    Ok(score.into())
}

pub(super) fn loglikelihood_body(model: &str, prompt: &str, max_tokens: u32) -> String {
    json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "echo": true,
        "logprobs": 1,
    })
    .to_string()
}

/// One attempt at scoring: a request with `max_tokens: 0`, or 1 where the
/// server refuses 0 (then the extra token, past the prompt, is not scored).
pub(super) async fn score_attempt(
    inner: &Inner,
    url: &str,
    context: &str,
    prompt: &str,
) -> Result<(SpanScore, Option<u64>), Failure> {
    let zero_rejected = inner.max_tokens_zero_rejected.load(Ordering::Relaxed);
    let body = |max_tokens| loglikelihood_body(&inner.model, prompt, max_tokens);
    let mut answer = post_json(inner, url, body(u32::from(zero_rejected))).await?;
    if let JsonAnswer::Rejected { status, .. } = &answer
        && !zero_rejected
        && (*status == 400 || *status == 422)
    {
        inner
            .max_tokens_zero_rejected
            .store(true, Ordering::Relaxed);
        answer = post_json(inner, url, body(1)).await?;
    }
    let json = match answer {
        JsonAnswer::Json(json) => json,
        JsonAnswer::Rejected { status, message } => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("echo") || lower.contains("logprob") {
                inner.no_prompt_logprobs.store(true, Ordering::Relaxed);
                return Err(Failure::Unsupported(format!(
                    "{NO_PROMPT_LOGPROBS} (the server said: HTTP {status}: {message})"
                )));
            }
            return Err(Failure::Permanent(format!("HTTP {status}: {message}")));
        }
    };
    let tokens = match prompt_token_logprobs(&json, prompt) {
        Ok(tokens) => tokens,
        Err(failure @ Failure::Unsupported(_)) => {
            inner.no_prompt_logprobs.store(true, Ordering::Relaxed);
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    let score = score_tokens(&tokens, context, prompt)?;
    let used = json.pointer("/usage/total_tokens").and_then(Value::as_u64);
    Ok((score, used))
}

pub(super) enum JsonAnswer {
    Json(Value),
    /// A 4xx other than 408/409/429: the request itself was refused.
    Rejected {
        status: u16,
        message: String,
    },
}

pub(super) async fn post_json(
    inner: &Inner,
    url: &str,
    body: String,
) -> Result<JsonAnswer, Failure> {
    let (_, response) = inner.endpoint.post(url, "application/json", body).await?;
    let status = response.status();
    if (400..500).contains(&status) && ![408, 409, 429].contains(&status) {
        let text = response.text().await;
        return Ok(JsonAnswer::Rejected {
            status,
            message: server_message(&text),
        });
    }
    if !response.is_success() {
        return Err(failure_from_status(response).await);
    }
    let bytes = response.bytes().await?;
    let text = String::from_utf8_lossy(&bytes);
    let json: Value = serde_json::from_str(&text).map_err(|err| {
        Failure::Permanent(format!(
            "invalid JSON body ({err}): `{}`",
            excerpt(text.trim(), 200)
        ))
    })?;
    if json.get("error").is_some_and(|e| !e.is_null()) {
        return Err(Failure::Permanent(format!(
            "HTTP 200 with an error body: {}",
            server_message(&text)
        )));
    }
    Ok(JsonAnswer::Json(json))
}

/// One token of an echoed prompt, located in the prompt.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PromptToken {
    /// Start and end in `unit`s from the start of the prompt.
    start: usize,
    end: usize,
    /// `None` for the first token, which has no context to be predicted from.
    logprob: Option<f64>,
    /// The token is its position's most likely one.
    is_top: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OffsetUnit {
    Chars,
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct PromptTokens {
    unit: OffsetUnit,
    tokens: Vec<PromptToken>,
}

/// The echoed prompt's tokens with their log-probs, from either layout:
/// the legacy completions one (`tokens`, `token_logprobs`, `top_logprobs`,
/// `text_offset`) or llama.cpp's chat-like one (`content[{token, logprob,
/// top_logprobs}]`). `Unsupported` when the tokens do not cover the prompt
/// (the server ignored `echo`).
pub(super) fn prompt_token_logprobs(json: &Value, prompt: &str) -> Result<PromptTokens, Failure> {
    let Some(choice) = json.pointer("/choices/0") else {
        return Err(Failure::Permanent(format!(
            "the response has no choices: `{}`",
            excerpt(&json.to_string(), 200)
        )));
    };
    let logprobs = choice.get("logprobs").filter(|l| !l.is_null());
    let Some(logprobs) = logprobs else {
        return Err(Failure::Unsupported(NO_PROMPT_LOGPROBS.into()));
    };
    let tokens = if let Some(content) = logprobs.get("content") {
        content_layout(content, prompt)?
    } else {
        legacy_layout(logprobs, choice.get("text").and_then(Value::as_str), prompt)?
    };
    Ok(tokens)
}

pub(super) fn malformed(what: &str) -> Failure {
    Failure::Permanent(format!("malformed logprobs in the response: {what}"))
}

pub(super) fn legacy_layout(
    logprobs: &Value,
    echoed_text: Option<&str>,
    prompt: &str,
) -> Result<PromptTokens, Failure> {
    let strings = |key: &str| -> Result<Vec<&str>, Failure> {
        logprobs
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&format!("no `{key}` array")))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| malformed(&format!("`{key}` holds a non-string")))
            })
            .collect()
    };
    let tokens = strings("tokens")?;
    let token_logprobs: Vec<Option<f64>> = logprobs
        .get("token_logprobs")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no `token_logprobs` array"))?
        .iter()
        .map(Value::as_f64)
        .collect();
    if token_logprobs.len() != tokens.len() {
        return Err(malformed("`tokens` and `token_logprobs` differ in length"));
    }
    let top: Vec<Option<&serde_json::Map<String, Value>>> = match logprobs.get("top_logprobs") {
        Some(Value::Array(items)) => items.iter().map(Value::as_object).collect(),
        _ => vec![None; tokens.len()],
    };
    let prompt_chars = prompt.chars().count();
    let starts: Vec<usize> = match logprobs.get("text_offset").and_then(Value::as_array) {
        Some(offsets) => {
            if offsets.len() != tokens.len() {
                return Err(malformed("`text_offset` and `tokens` differ in length"));
            }
            offsets
                .iter()
                .map(|o| o.as_u64().map(|o| o as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("`text_offset` holds a non-integer"))?
        }
        None => tokens
            .iter()
            .scan(0, |offset, token| {
                let start = *offset;
                *offset += token.chars().count();
                Some(start)
            })
            .collect(),
    };
    let echoed = match echoed_text {
        Some(text) => text.starts_with(prompt),
        None => tokens.concat().starts_with(prompt),
    };
    let mut out = Vec::with_capacity(tokens.len());
    for i in 0..tokens.len() {
        let end = starts
            .get(i + 1)
            .copied()
            .unwrap_or_else(|| starts[i].saturating_add(tokens[i].chars().count()));
        let is_top = match top.get(i).copied().flatten() {
            Some(alternatives) => is_top_choice(
                tokens[i],
                token_logprobs[i],
                alternatives
                    .iter()
                    .filter_map(|(token, lp)| Some((token.as_str(), lp.as_f64()?))),
            ),
            None => false,
        };
        out.push(PromptToken {
            start: starts[i],
            end,
            logprob: token_logprobs[i],
            is_top,
        });
    }
    let covered = echoed
        && out.first().is_some_and(|t| t.start == 0)
        && out.last().is_some_and(|t| t.end >= prompt_chars);
    if !covered && !prompt.is_empty() {
        return Err(Failure::Unsupported(NO_PROMPT_LOGPROBS.into()));
    }
    Ok(PromptTokens {
        unit: OffsetUnit::Chars,
        tokens: out,
    })
}

pub(super) fn content_layout(content: &Value, prompt: &str) -> Result<PromptTokens, Failure> {
    let items = content
        .as_array()
        .ok_or_else(|| malformed("`content` is not an array"))?;
    let mut echoed: Vec<u8> = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let token = item
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("a `content` item has no `token`"))?;
        // `bytes` is exact where a token is part of a UTF-8 character.
        let bytes: Vec<u8> = match item.get("bytes").and_then(Value::as_array) {
            Some(bytes) => bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("`bytes` holds a non-byte"))?,
            None => token.as_bytes().to_vec(),
        };
        let logprob = item.get("logprob").and_then(Value::as_f64);
        let alternatives = item
            .get("top_logprobs")
            .and_then(Value::as_array)
            .map(|alts| {
                alts.iter()
                    .filter_map(|alt| {
                        Some((alt.get("token")?.as_str()?, alt.get("logprob")?.as_f64()?))
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let start = echoed.len();
        echoed.extend_from_slice(&bytes);
        out.push(PromptToken {
            start,
            end: echoed.len(),
            logprob,
            is_top: is_top_choice(token, logprob, alternatives.into_iter()),
        });
    }
    if !prompt.is_empty() && !echoed.starts_with(prompt.as_bytes()) {
        return Err(Failure::Unsupported(NO_PROMPT_LOGPROBS.into()));
    }
    Ok(PromptTokens {
        unit: OffsetUnit::Bytes,
        tokens: out,
    })
}

/// Whether `token` is the most likely at its position: it is the top
/// alternative, or no alternative is more likely than it.
pub(super) fn is_top_choice<'a>(
    token: &str,
    logprob: Option<f64>,
    alternatives: impl Iterator<Item = (&'a str, f64)>,
) -> bool {
    let best = alternatives.fold(None::<(&str, f64)>, |best, (alt, lp)| match best {
        Some((_, best_lp)) if best_lp >= lp => best,
        _ => Some((alt, lp)),
    });
    match (best, logprob) {
        (Some((best_token, _)), _) if best_token == token => true,
        (Some((_, best_lp)), Some(lp)) => lp >= best_lp - 1e-9 * best_lp.abs().max(1.0),
        _ => false,
    }
}

/// Sum the log-probs of the tokens covering `prompt[context.len()..]`. A token
/// that straddles the boundary counts as the continuation's; tokens past the
/// prompt (generated ones) do not count.
pub(super) fn score_tokens(
    tokens: &PromptTokens,
    context: &str,
    prompt: &str,
) -> Result<SpanScore, Failure> {
    let (context_len, prompt_len) = match tokens.unit {
        OffsetUnit::Chars => (context.chars().count(), prompt.chars().count()),
        OffsetUnit::Bytes => (context.len(), prompt.len()),
    };
    let mut score = SpanScore {
        logprob: 0.0,
        is_greedy: true,
        n_tokens: 0,
    };
    for token in &tokens.tokens {
        if token.start >= prompt_len {
            break;
        }
        if token.end <= context_len {
            continue;
        }
        match token.logprob {
            Some(logprob) => {
                score.logprob += logprob;
                score.is_greedy &= token.is_top;
                score.n_tokens += 1;
            }
            // The prompt's first token has no log-prob (nothing predicts it).
            None if token.start == 0 => {}
            None => {
                return Err(malformed(&format!(
                    "the token at offset {} has no log-prob",
                    token.start
                )));
            }
        }
    }
    Ok(score)
}

/// Echoed log-probs read and scored as [`score_attempt`] does, for the fuzz harness;
/// `context_len` is cut down to a character boundary of `prompt`.
pub(crate) fn fuzz_logprobs(body: &str, prompt: &str, context_len: usize) -> Result<(), String> {
    let mut cut = context_len.min(prompt.len());
    while !prompt.is_char_boundary(cut) {
        cut -= 1;
    }
    let json: Value = serde_json::from_str(body).map_err(|err| err.to_string())?;
    let tokens = prompt_token_logprobs(&json, prompt).map_err(|f| f.message().to_string())?;
    score_tokens(&tokens, &prompt[..cut], prompt).map_err(|f| f.message().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn legacy(prompt_tokens: &[(&str, Option<f64>, &str)]) -> Value {
        let mut offset = 0;
        let mut offsets = Vec::new();
        for (token, _, _) in prompt_tokens {
            offsets.push(offset);
            offset += token.chars().count();
        }
        json!({"choices": [{
            "text": prompt_tokens.iter().map(|t| t.0).collect::<String>(),
            "logprobs": {
                "tokens": prompt_tokens.iter().map(|t| t.0).collect::<Vec<_>>(),
                "token_logprobs": prompt_tokens.iter().map(|t| t.1).collect::<Vec<_>>(),
                "top_logprobs": prompt_tokens.iter().map(|t| match t.1 {
                    Some(lp) => json!({ t.2: if t.2 == t.0 { lp } else { lp + 0.5 } }),
                    None => Value::Null,
                }).collect::<Vec<_>>(),
                "text_offset": offsets,
            }
        }]})
    }

    fn check_score(json: &Value, context: &str, continuation: &str, expected: (f64, bool, usize)) {
        let prompt = format!("{context}{continuation}");
        let tokens = prompt_token_logprobs(json, &prompt).unwrap();
        let score = score_tokens(&tokens, context, &prompt).unwrap();
        assert!(
            (score.logprob - expected.0).abs() < 1e-12,
            "{score:?} vs {expected:?}"
        );
        assert_eq!((score.is_greedy, score.n_tokens), (expected.1, expected.2));
    }

    #[test]
    fn legacy_layout_sums_the_continuation() {
        let json = legacy(&[
            ("Q", None, "Q"),
            (":", Some(-1.0), ":"),
            (" yes", Some(-0.25), " yes"),
            (" sir", Some(-0.5), " no"),
        ]);
        check_score(&json, "Q:", " yes sir", (-0.75, false, 2));
        check_score(&json, "Q: yes", " sir", (-0.5, false, 1));
        check_score(&json, "Q:", " yes", (-0.25, true, 1));
        // A boundary inside a token gives the whole token to the continuation.
        check_score(&json, "Q: y", "es", (-0.25, true, 1));
        // Rolling: every token with a log-prob.
        check_score(&json, "", "Q: yes sir", (-1.75, false, 3));
    }

    #[test]
    fn generated_tokens_past_the_prompt_do_not_count() {
        let json = legacy(&[
            ("A", None, "A"),
            ("B", Some(-1.0), "B"),
            ("C", Some(-2.0), "C"),
        ]);
        check_score(&json, "A", "B", (-1.0, true, 1));
    }

    #[test]
    fn content_layout_with_bytes() {
        let json = json!({"choices": [{"logprobs": {"content": [
            {"token": "é", "logprob": -0.5, "bytes": [195, 169], "top_logprobs": [{"token": "é", "logprob": -0.5}]},
            {"token": "t", "logprob": -1.5, "bytes": [116], "top_logprobs": [{"token": "a", "logprob": -0.1}]},
            {"token": "é", "logprob": -0.25, "top_logprobs": [{"token": "é", "logprob": -0.25}]},
        ]}}]});
        check_score(&json, "é", "té", (-1.75, false, 2));
        check_score(&json, "ét", "é", (-0.25, true, 1));
    }

    #[test]
    fn no_echo_is_unsupported() {
        let prompt = "Q: yes";
        // llama.cpp: only the generated token, no prompt tokens.
        let generated_only = json!({"choices": [{"text": "!", "logprobs": {"content": [
            {"token": "!", "logprob": -0.1, "top_logprobs": []}
        ]}}]});
        // Legacy layout without echo: offsets start at the prompt's end.
        let offsets_after_prompt = json!({"choices": [{"text": "!", "logprobs": {
            "tokens": ["!"], "token_logprobs": [-0.1], "top_logprobs": [null], "text_offset": [6]
        }}]});
        let no_logprobs = json!({"choices": [{"text": "", "logprobs": null}]});
        for json in [generated_only, offsets_after_prompt, no_logprobs] {
            assert!(
                matches!(
                    prompt_token_logprobs(&json, prompt),
                    Err(Failure::Unsupported(_))
                ),
                "{json}"
            );
        }
    }
}
