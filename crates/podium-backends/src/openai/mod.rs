//! OpenAI-compatible HTTP endpoints (vLLM, llama.cpp's server, SGLang, TGI,
//! OpenAI, Together, …): streamed generation through `/completions` or
//! `/chat/completions`, and log-likelihoods from `/completions` with
//! `echo` + `logprobs`.
//!
//! Specs:
//! - `openai-compatible:BASE_URL#SERVED_MODEL[?options]`, e.g.
//!   `openai-compatible:http://127.0.0.1:8000/v1#Qwen/Qwen3-0.6B?api=chat`.
//!   A base URL with no path gets `/v1`. No key is sent unless `api_key_env=NAME`.
//! - `openai:MODEL[?options]` (https://api.openai.com/v1, key from `OPENAI_API_KEY`).
//! - `together:MODEL[?options]` (https://api.together.xyz/v1, key from `TOGETHER_API_KEY`).
//!
//! Options: `api=completions|chat` (default `completions`: evaluation prompts
//! are already rendered); `tokenizer=NAME|PATH`, the served model's tokenizer (a
//! catalogue model in the cache, or a GGUF file), which counts output tokens when the
//! server reports no `usage` (else each token-bearing event counts as one, an
//! estimate); and the endpoint options of [`EndpointOptions`].
//!
//! Generation streams are read in `stream`, echoed prompt log-probs in `scoring`.

mod scoring;
mod stream;

pub(crate) use scoring::fuzz_logprobs;
use scoring::*;
pub(crate) use stream::fuzz_event;
use stream::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use podium_core::{
    Backend, BackendError, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, ModelKind, ModelSpec, ResponseCache, RollingRequest,
    RollingResult,
};

use crate::OpenError;
use crate::http::{self, ApiKey, ENDPOINT_OPTION_NAMES, Endpoint, EndpointOptions, KeyHeader};
use crate::timing::TokenCounter;

/// The message of the run-stopping error when an endpoint cannot score prompts.
pub const NO_PROMPT_LOGPROBS: &str = "this endpoint gives no prompt log-probs: multiple-choice tasks need a completions endpoint with echo+logprobs, or use a generation variant of the task";

/// OpenAI's limit on stop strings per request; further ones are cut client-side.
const MAX_SERVER_STOPS: usize = 4;

/// Which endpoint generation goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiApi {
    /// `/completions` with the raw prompt.
    Completions,
    /// `/chat/completions` with the prompt as one user message.
    Chat,
}

/// A backend for an OpenAI-compatible endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The spec without operational options: what identifies the model in a run.
    spec: String,
    base_url: String,
    model: String,
    api: OpenAiApi,
    endpoint: Endpoint,
    /// Set once a response shows that the server does not echo prompt log-probs.
    no_prompt_logprobs: AtomicBool,
    /// Set once the server rejects `max_tokens: 0`; later requests ask for 1 token.
    max_tokens_zero_rejected: AtomicBool,
    /// The served model's tokenizer (`tokenizer=` option), to count output tokens
    /// when the server sends no `usage`.
    tokenizer: Option<TokenCounter>,
    /// The `tokenizer=` value: it changes the stored token counts, so it is part of
    /// the identity (a run counted one way never resumes one counted another way).
    tokenizer_name: Option<String>,
}

impl OpenAiBackend {
    /// Open an `openai-compatible:`, `openai:` or `together:` spec.
    pub fn open(
        spec: &str,
        cache: Option<Arc<dyn ResponseCache>>,
    ) -> Result<OpenAiBackend, OpenError> {
        Self::open_shared(
            spec,
            podium_core::Shared {
                cache,
                limits: None,
            },
        )
    }

    /// [`Self::open`] with the limits shared with other processes, if any.
    pub fn open_shared(
        spec: &str,
        shared: podium_core::Shared,
    ) -> Result<OpenAiBackend, OpenError> {
        let invalid = |message: String| OpenError::Invalid {
            spec: http::redact_spec(spec),
            message,
        };
        let parsed = ModelSpec::parse(spec).map_err(|_| {
            invalid(
                "expected openai-compatible:BASE_URL#MODEL, openai:MODEL or together:MODEL".into(),
            )
        })?;
        let (base_url, model_and_query, default_key_env) = match parsed.kind {
            ModelKind::OpenAiCompatible => {
                let Some((url, rest)) = parsed.rest.rsplit_once('#') else {
                    return Err(invalid(
                        "write openai-compatible:BASE_URL#SERVED_MODEL, e.g. openai-compatible:http://127.0.0.1:8000/v1#my-model".into(),
                    ));
                };
                (url, rest, None)
            }
            ModelKind::OpenAi => (
                "https://api.openai.com/v1",
                parsed.rest.as_str(),
                Some("OPENAI_API_KEY"),
            ),
            ModelKind::Together => (
                "https://api.together.xyz/v1",
                parsed.rest.as_str(),
                Some("TOGETHER_API_KEY"),
            ),
            other => {
                return Err(invalid(format!(
                    "`{other}` is not an OpenAI-compatible kind"
                )));
            }
        };
        // `user:password@` in the URL travels as a header and is kept out of the URL
        // that goes into the model's identity, the store, errors and logs.
        let (base_url, credentials) = http::take_url_credentials(base_url);
        let base_url = normalize_base_url(&base_url).map_err(|e| invalid(e.to_string()))?;
        let (model, query) = model_and_query
            .split_once('?')
            .unwrap_or((model_and_query, ""));
        if model.is_empty() {
            return Err(invalid("the served model name is empty".into()));
        }
        let mut api = OpenAiApi::Completions;
        let mut tokenizer = None;
        let mut tokenizer_name = None;
        let mut options = EndpointOptions::default();
        for (key, value) in http::query_pairs(query) {
            if http::is_secret_option(key) {
                return Err(invalid(format!(
                    "`{key}` cannot be given in a spec (specs are stored and shown); put the key in an environment variable and name it with api_key_env=NAME"
                )));
            }
            if key == "api" {
                api = match value {
                    "completions" => OpenAiApi::Completions,
                    "chat" => OpenAiApi::Chat,
                    _ => {
                        return Err(invalid(format!(
                            "`api` is `completions` or `chat`, got `{value}`"
                        )));
                    }
                };
                continue;
            }
            if key == "tokenizer" {
                tokenizer = Some(crate::local::token_counter(value, spec)?);
                tokenizer_name = Some(value.to_string());
                continue;
            }
            if !options
                .take(key, value)
                .map_err(|e| invalid(e.to_string()))?
            {
                return Err(invalid(format!(
                    "unknown option `{key}` (known: api, tokenizer, {})",
                    ENDPOINT_OPTION_NAMES.join(", ")
                )));
            }
        }
        let key_env = options.api_key_env.as_deref().or(default_key_env);
        let key = match key_env {
            Some(name) => Some(ApiKey::from_env(name).map_err(|e| invalid(e.to_string()))?),
            None => None,
        };
        let endpoint = Endpoint::new(
            options,
            key,
            KeyHeader::Bearer,
            credentials.as_ref(),
            &[],
            shared,
            format!("{base_url}#{model}"),
        )
        .map_err(|e| invalid(e.to_string()))?;
        let head = match parsed.kind {
            ModelKind::OpenAiCompatible => format!("openai-compatible:{base_url}#{model}"),
            kind => format!("{kind}:{model}"),
        };
        let canonical = match api {
            OpenAiApi::Completions => head,
            OpenAiApi::Chat => format!("{head}?api=chat"),
        };
        Ok(OpenAiBackend {
            inner: Arc::new(Inner {
                spec: canonical,
                base_url,
                model: model.to_string(),
                api,
                endpoint,
                no_prompt_logprobs: AtomicBool::new(false),
                max_tokens_zero_rejected: AtomicBool::new(false),
                tokenizer,
                tokenizer_name,
            }),
        })
    }

    fn unsupported_if_known(&self) -> Result<(), BackendError> {
        if self.inner.no_prompt_logprobs.load(Ordering::Relaxed) {
            Err(BackendError::Unsupported(NO_PROMPT_LOGPROBS.into()))
        } else {
            Ok(())
        }
    }
}

/// Why a base URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BaseUrlError {
    /// Shows only what comes before the offending character.
    #[error(
        "the base URL `{0}…` has a query, a fragment, a space or a control character; options go after the served model: BASE_URL#MODEL?api=chat"
    )]
    QueryOrSpace(String),
    #[error("the base URL `{0}` needs a scheme, e.g. http://127.0.0.1:8000/v1")]
    NoScheme(String),
    #[error("the base URL `{0}` must start with http:// or https://")]
    Scheme(String),
    #[error("the base URL `{0}` has no host")]
    NoHost(String),
}

/// `http://host:port` gets `/v1`; a trailing `/` goes.
fn normalize_base_url(url: &str) -> Result<String, BaseUrlError> {
    let url = url.trim_end_matches('/');
    // A query or fragment would take `/completions` into it, and may hold what the user
    // meant as options (found by the model_spec fuzz target: `URL?#api_key=…` made the
    // key the served model's name, stored in the identity). Checked first, so no message
    // below echoes such a part; this one shows only what comes before it.
    if let Some(at) =
        url.find(|c: char| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(BaseUrlError::QueryOrSpace(url[..at].to_string()));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(BaseUrlError::NoScheme(url.to_string()));
    };
    if scheme != "http" && scheme != "https" {
        return Err(BaseUrlError::Scheme(url.to_string()));
    }
    if rest.is_empty() {
        return Err(BaseUrlError::NoHost(url.to_string()));
    }
    if rest.contains('/') {
        Ok(url.to_string())
    } else {
        Ok(format!("{url}/v1"))
    }
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            spec: self.inner.spec.clone(),
            fingerprint: match &self.inner.tokenizer_name {
                None => format!("{}#{}", self.inner.base_url, self.inner.model),
                Some(name) => format!(
                    "{}#{};tokenizer={name}",
                    self.inner.base_url, self.inner.model
                ),
            },
            chat_template_hash: None,
        }
    }

    async fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError> {
        self.unsupported_if_known()?;
        let mut jobs = Vec::new();
        for request in requests {
            for continuation in &request.continuations {
                let inner = Arc::clone(&self.inner);
                let context = request.context.clone();
                let continuation = continuation.clone();
                jobs.push(async move { score_span(&inner, &context, &continuation).await });
            }
        }
        let mut scores = http::run_concurrently(jobs).await.into_iter();
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            let per_request: Vec<_> = scores.by_ref().take(request.continuations.len()).collect();
            if let Some(Err(BackendError::Unsupported(message))) = per_request
                .iter()
                .find(|r| matches!(r, Err(BackendError::Unsupported(_))))
            {
                return Err(BackendError::Unsupported(message.clone()));
            }
            out.push(per_request.into_iter().collect());
        }
        Ok(out)
    }

    async fn loglikelihood_rolling(
        &self,
        requests: &[RollingRequest],
    ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError> {
        self.unsupported_if_known()?;
        let jobs = requests.iter().map(|request| {
            let inner = Arc::clone(&self.inner);
            let text = request.text.clone();
            async move { score_span(&inner, "", &text).await }
        });
        let scores = http::run_concurrently(jobs.collect()).await;
        if let Some(Err(BackendError::Unsupported(message))) = scores
            .iter()
            .find(|r| matches!(r, Err(BackendError::Unsupported(_))))
        {
            return Err(BackendError::Unsupported(message.clone()));
        }
        Ok(scores
            .into_iter()
            .map(|score| {
                score.map(|s| RollingResult {
                    logprob: s.logprob,
                    n_tokens: s.n_tokens,
                })
            })
            .collect())
    }

    async fn generate_until(
        &self,
        requests: &[GenerateRequest],
    ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError> {
        Ok(http::each_concurrently(&self.inner, requests, generate_one).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let backend = OpenAiBackend::open(
            "openai-compatible:http://127.0.0.1:8000#m?api=chat&concurrency=2",
            None,
        )
        .unwrap();
        let identity = backend.identity();
        assert_eq!(
            identity.spec,
            "openai-compatible:http://127.0.0.1:8000/v1#m?api=chat"
        );
        assert_eq!(identity.fingerprint, "http://127.0.0.1:8000/v1#m");
        let err = |spec: &str| OpenAiBackend::open(spec, None).unwrap_err().to_string();
        assert!(err("openai-compatible:http://x/v1").contains("BASE_URL#SERVED_MODEL"));
        assert!(err("openai-compatible:x/v1#m").contains("needs a scheme"));
        let query = err("openai-compatible:http://127.0.0.1:8000?#api_key=sk-0123456789abcdef");
        assert!(query.contains("has a query"), "{query}");
        assert!(!query.contains("0123456789abcdef"), "{query}");
        let in_url = err("openai-compatible:http://h/v1?api_key=sk-0123456789abcdef#m");
        assert!(!in_url.contains("0123456789abcdef"), "{in_url}");
        // No scheme, and a key after an earlier `#`: the message stops before it.
        let no_scheme = err("openai-compatible:h7#?api_key=sk-0123456789abcdef#?x");
        assert!(!no_scheme.contains("0123456789abcdef"), "{no_scheme}");
        assert!(err("openai-compatible:http://x/v1#m?foo=1").contains("unknown option `foo`"));
        let pasted = err("openai-compatible:http://x/v1#m?api_key=sk-secret-123");
        assert!(!pasted.contains("sk-secret-123"), "{pasted}");
        assert!(pasted.contains("api_key_env=NAME"), "{pasted}");
        let missing = err("openai-compatible:http://x/v1#m?api_key_env=PODIUM_TEST_SURELY_UNSET");
        assert!(
            missing.contains("PODIUM_TEST_SURELY_UNSET is not set"),
            "{missing}"
        );
    }
}
