//! Model engines behind the `Backend` trait, and the factory that opens one
//! from a model spec (`mock:NAME`, `openai-compatible:URL#MODEL`, `openai:MODEL`,
//! `together:MODEL`, `anthropic:MODEL`, …).

mod anthropic;
mod h1;
mod http;
mod local;
mod mock;
mod openai;
mod reasoning;
mod secrets;
mod sse;
mod timing;

use std::sync::Arc;

use podium_core::{Backend, ModelKind, ModelSpec, ResponseCache};

pub use anthropic::AnthropicBackend;
pub use http::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENT_BYTES, EndpointOptions, HttpClient, MAX_TOKEN_COUNT,
    redact_spec,
};
pub use local::{local_model_path, open_local, open_local_model};
pub use mock::{MockBackend, MockOptions, MockVerdicts};
pub use openai::{NO_PROMPT_LOGPROBS, OpenAiApi, OpenAiBackend};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Spec(#[from] podium_core::ModelSpecError),
    #[error("`{spec}`: {message}")]
    Invalid { spec: String, message: String },
}

/// Parse a model spec; an error shows it with any secret in it (a pasted key, a
/// URL's `user:password@`) blanked.
pub fn parse_spec(spec: &str) -> Result<ModelSpec, OpenError> {
    use podium_core::ModelSpecError;
    ModelSpec::parse(spec).map_err(|err| {
        OpenError::Spec(match err {
            ModelSpecError::UnknownKind { kind, spec } => ModelSpecError::UnknownKind {
                kind,
                spec: http::redact_spec(&spec),
            },
            ModelSpecError::MissingKind(spec) => {
                ModelSpecError::MissingKind(http::redact_spec(&spec))
            }
            ModelSpecError::Empty(spec) => ModelSpecError::Empty(http::redact_spec(&spec)),
        })
    })
}

/// Entry points for the fuzz harnesses of `podium-fuzz`: the narrowest wrappers
/// around internal parsers, not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::time::Instant;

    /// Decoded events as (event name, data), and how the stream ended.
    pub type SseOutcome = (Vec<(Option<String>, String)>, Result<(), String>);

    /// Decode `chunks` as one server-sent event stream (each chunk as if it arrived
    /// on its own); the events as (event name, data), and how the stream ended:
    /// `Ok(())`, or the error text (an event over `max_event_bytes`, a cut event).
    pub fn sse_events(chunks: &[&[u8]], max_event_bytes: usize) -> SseOutcome {
        let mut decoder = crate::sse::SseDecoder::new(max_event_bytes);
        let mut events = Vec::new();
        for chunk in chunks {
            let pushed = decoder.push(chunk, Instant::now(), &mut |event| {
                events.push((event.event.clone(), event.data.clone()));
                Ok::<bool, crate::sse::EventTooLarge>(false)
            });
            if let Err(err) = pushed {
                return (events, Err(err.to_string()));
            }
        }
        let end = decoder.finish().map_err(|cut| cut.partial);
        (events, end)
    }

    /// Read an HTTP/1.1 response from `data` with the built-in client's parser, as if
    /// it came in pieces of `piece` bytes: the status and body, or the error text.
    pub fn h1_response(data: &[u8], piece: usize) -> Result<(u16, Vec<u8>), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|err| err.to_string())?;
        runtime
            .block_on(crate::h1::read_response_from(data.to_vec(), piece))
            .map_err(|err| format!("{err:?}"))
    }

    /// Read one OpenAI-compatible stream event's `data` as the backend does.
    pub fn openai_event(data: &str) -> Result<(), String> {
        crate::openai::fuzz_event(data)
    }

    /// Score `prompt[context_len..]` from an echo+logprobs JSON body as the backend does.
    pub fn openai_logprobs(body: &str, prompt: &str, context_len: usize) -> Result<(), String> {
        crate::openai::fuzz_logprobs(body, prompt, context_len)
    }
}

/// Open the backend a model spec names.
pub fn open(spec: &str) -> Result<Arc<dyn Backend>, OpenError> {
    open_with_cache(spec, None)
}

/// Open the backend a model spec names; remote backends answer repeated
/// requests from `cache` (local and mock backends ignore it).
pub fn open_with_cache(
    spec: &str,
    cache: Option<Arc<dyn ResponseCache>>,
) -> Result<Arc<dyn Backend>, OpenError> {
    open_shared(
        spec,
        podium_core::Shared {
            cache,
            limits: None,
        },
    )
}

/// Open the backend a model spec names, with what this process shares:
/// remote backends answer repeated requests from `shared.cache`, and hold
/// their `rpm`, `tpm` and `concurrency` limits together with every other
/// process of `shared.limits` (local and mock backends use neither).
pub fn open_shared(spec: &str, shared: podium_core::Shared) -> Result<Arc<dyn Backend>, OpenError> {
    let parsed = parse_spec(spec)?;
    match parsed.kind {
        ModelKind::Mock => Ok(Arc::new(MockBackend::from_spec(spec, &parsed.rest)?)),
        ModelKind::OpenAiCompatible | ModelKind::OpenAi | ModelKind::Together => {
            Ok(Arc::new(OpenAiBackend::open_shared(spec, shared)?))
        }
        ModelKind::Anthropic => Ok(Arc::new(AnthropicBackend::open_shared(spec, shared)?)),
        ModelKind::Local | ModelKind::Gguf => Ok(Arc::new(local::open_local(
            parsed.kind.as_str(),
            &parsed.rest,
            spec,
        )?)),
    }
}
