//! Commands for local models: `pull`, `tokenize` and `serve-model`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use podium_core::{ChatMessage, GenerateRequest};
use podium_local::{LocalBackend, StreamEvent};
use podium_server::{
    Engine, FinishReason, GenerateOutcome, GenerateParams, Prompt, PromptScores, TokenLogprob,
    TokenizerInfo,
};
use podium_tokenizer::{EncodeOptions, TokenizeReport, Tokenizer};

use crate::UserError;
use crate::args::Format;

pub(crate) fn pull(spec: &str) -> anyhow::Result<ExitCode> {
    let cache = podium_models::default_cache_dir()?;
    crate::note!("pulling {spec} into {} …", cache.display());
    let path = podium_models::pull(spec, &cache).map_err(|e| UserError(e.to_string()))?;
    crate::emit(&format!("{}\n", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The GGUF file a model spec or name points at (`local:NAME`, `gguf:PATH`, NAME, PATH).
pub(crate) fn model_file(model: &str) -> anyhow::Result<PathBuf> {
    let (kind, rest) = match model.split_once(':') {
        Some((kind @ ("local" | "gguf"), rest)) => (kind, rest),
        _ if Path::new(model).is_file() => ("gguf", model),
        _ => ("local", model),
    };
    Ok(podium_backends::local_model_path(kind, rest, model)?)
}

pub(crate) fn tokenize(
    model: &str,
    text: Option<&str>,
    file: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let text = match (text, file) {
        (Some(t), None) => t.to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        _ => return Err(UserError("give exactly one of --text or --file".into()).into()),
    };
    let path = model_file(model)?;
    let content = podium_local::read_gguf_header(&path).map_err(|e| UserError(e.to_string()))?;
    let tokenizer = Tokenizer::from_gguf(&content)
        .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
    let ids = tokenizer.encode(
        &text,
        EncodeOptions {
            add_special: false,
            parse_special: true,
        },
    )?;
    let report = TokenizeReport::new(&tokenizer, &ids)?;
    match format {
        Format::Json => crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report.to_json())?
        ))?,
        _ => crate::emit(&report.to_text())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The local engine behind `serve-model`'s blocking `Engine` interface.
struct LocalEngine {
    backend: Arc<LocalBackend>,
    runtime: tokio::runtime::Handle,
    name: String,
    vocab_size: usize,
}

/// How many ids the tokenizer knows: ids run from 0 without gaps, so the first id it
/// has no text for (found by bisection) is the size.
fn tokenizer_vocab_size(tokenizer: &dyn podium_local::TextTokenizer) -> usize {
    let (mut known, mut unknown) = (0_u64, 1_u64 << 32);
    if tokenizer.token_text(0).is_none() {
        return 0;
    }
    while unknown - known > 1 {
        let middle = known + (unknown - known) / 2;
        match u32::try_from(middle)
            .ok()
            .and_then(|id| tokenizer.token_text(id))
        {
            Some(_) => known = middle,
            None => unknown = middle,
        }
    }
    usize::try_from(unknown).unwrap_or(usize::MAX)
}

impl Engine for LocalEngine {
    fn model_id(&self) -> String {
        self.name.clone()
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, String> {
        podium_core::Backend::apply_chat_template(self.backend.as_ref(), messages, true)
            .map_err(|e| e.to_string())
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerateOutcome, String> {
        let request = GenerateRequest {
            messages: None,
            context: prompt.to_string(),
            until: Vec::new(),
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            top_p: params.top_p,
            do_sample: params.temperature > 0.0,
            seed: params.seed,
        };
        let mut events = self.backend.generate_stream(request);
        while let Some(event) = events.blocking_recv() {
            match event {
                StreamEvent::Text(text) => {
                    if !on_text(&text) {
                        // Dropping the receiver stops the generation.
                        let tokens = self
                            .backend
                            .tokenizer()
                            .encode(prompt, true)
                            .map(|t| t.len())
                            .unwrap_or(0);
                        return Ok(GenerateOutcome {
                            prompt_tokens: tokens,
                            completion_tokens: 0,
                            finish_reason: FinishReason::Stop,
                        });
                    }
                }
                StreamEvent::Done(result) => {
                    let n_out = result.n_output_tokens.unwrap_or(0);
                    return Ok(GenerateOutcome {
                        prompt_tokens: result.n_input_tokens.unwrap_or(0),
                        completion_tokens: n_out,
                        finish_reason: if n_out >= params.max_tokens {
                            FinishReason::Length
                        } else {
                            FinishReason::Stop
                        },
                    });
                }
                StreamEvent::Error(err) => return Err(err.to_string()),
            }
        }
        Err("the model thread stopped".into())
    }

    fn prompt_logprobs(&self, prompt: &Prompt) -> Result<PromptScores, String> {
        self.prompt_logprobs_batch(std::slice::from_ref(prompt))
            .pop()
            .unwrap_or_else(|| Err("no score".into()))
    }

    /// Every prompt of the batch goes to the engine in one job, which packs them into
    /// shared forward passes.
    fn prompt_logprobs_batch(&self, prompts: &[Prompt]) -> Vec<Result<PromptScores, String>> {
        let tokenizer = self.backend.tokenizer();
        let ids: Vec<Result<Vec<u32>, String>> = prompts
            .iter()
            .map(|prompt| match prompt {
                Prompt::Text(text) => tokenizer.encode(text, true).map_err(|e| e.to_string()),
                Prompt::Ids(ids) if ids.is_empty() => Err("empty prompt".into()),
                Prompt::Ids(ids) => Ok(ids.clone()),
            })
            .collect();
        // Each prompt is its first token as context and the rest as the continuation,
        // plus one placeholder target that makes the engine report the greedy next token.
        let mut items = Vec::new();
        for ids in ids.iter().flatten() {
            if let Some((first, rest)) = ids.split_first() {
                let mut targets = rest.to_vec();
                targets.push(0);
                items.push((vec![*first], vec![targets]));
            }
        }
        let mut scores = match self.runtime.block_on(self.backend.score_token_batch(items)) {
            Ok(scores) => scores.into_iter(),
            Err(e) => return prompts.iter().map(|_| Err(e.to_string())).collect(),
        };
        ids.into_iter()
            .map(|ids| {
                let ids = ids?;
                if ids.is_empty() {
                    return Err("empty prompt".into());
                }
                let score = scores
                    .next()
                    .ok_or("no score")?
                    .map_err(|e| e.to_string())?
                    .pop()
                    .ok_or("no score")?;
                prompt_scores(tokenizer.as_ref(), &ids, &score)
            })
            .collect()
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, String> {
        self.backend
            .tokenizer()
            .encode(text, add_special)
            .map_err(|e| e.to_string())
    }

    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        self.backend
            .tokenizer()
            .decode(ids)
            .map_err(|e| e.to_string())
    }

    fn tokenizer_info(&self) -> TokenizerInfo {
        let tokenizer = self.backend.tokenizer();
        let text = |id: Option<u32>| id.and_then(|id| tokenizer.token_text(id));
        TokenizerInfo {
            bos_token: text(tokenizer.bos_id()),
            eos_token: text(tokenizer.eos_id()),
            pad_token: None,
            chat_template: tokenizer.chat_template_source(),
            max_model_len: self.backend.max_context(),
        }
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Per-token log-probs, top alternatives and offsets of a prompt from its engine score
/// (the first token has none; the score's extra last position is the greedy next token).
fn prompt_scores(
    tokenizer: &dyn podium_local::TextTokenizer,
    ids: &[u32],
    score: &podium_local::SequenceScore,
) -> Result<PromptScores, String> {
    let piece = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    let mut offset = 0;
    let mut tokens = Vec::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        let text = piece(id);
        let (logprob, top) = if i == 0 {
            (None, None)
        } else {
            (
                score.token_logprobs.get(i - 1).copied(),
                score
                    .top_token_ids
                    .get(i - 1)
                    .zip(score.top_logprobs.get(i - 1))
                    .map(|(&t, &lp)| (piece(t), lp)),
            )
        };
        tokens.push(TokenLogprob {
            token: text.clone(),
            logprob,
            top,
            offset,
        });
        offset += text.len();
    }
    let last = ids.len().checked_sub(1).ok_or("empty prompt")?;
    let next_id = *score.top_token_ids.get(last).ok_or("no next token")?;
    let next_lp = score.top_logprobs.get(last).copied();
    let next = TokenLogprob {
        token: piece(next_id),
        logprob: next_lp,
        top: next_lp.map(|lp| (piece(next_id), lp)),
        offset,
    };
    Ok(PromptScores { tokens, next })
}

pub(crate) fn serve_model(model: &str, addr: &str, queue: usize) -> anyhow::Result<ExitCode> {
    let spec = if model.contains(':') {
        model.to_string()
    } else {
        format!("local:{model}")
    };
    let backend = match spec.split_once(':') {
        Some((kind @ ("local" | "gguf"), rest)) => podium_backends::open_local(kind, rest, &spec)?,
        _ => {
            return Err(UserError(format!(
                "serve-model serves local models (local:NAME or gguf:PATH), not `{spec}`"
            ))
            .into());
        }
    };
    let name = spec
        .split_once(':')
        .map_or(spec.as_str(), |(_, r)| r)
        .split('?')
        .next()
        .unwrap_or("model");
    let name = Path::new(name)
        .file_stem()
        .map_or(name.to_string(), |s| s.to_string_lossy().into_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let vocab_size = tokenizer_vocab_size(backend.tokenizer().as_ref());
    let engine = LocalEngine {
        vocab_size,
        backend: Arc::new(backend),
        runtime: runtime.handle().clone(),
        name: name.clone(),
    };
    let worker = podium_server::Worker::start(Arc::new(engine), queue);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        eprintln!(
            "serving `{name}` on http://{}/v1 (Ctrl-C to stop)",
            listener.local_addr()?
        );
        podium_server::serve(listener, worker, podium_server::Limits::default(), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("server failed")
    })?;
    Ok(ExitCode::SUCCESS)
}
