//! `LocalBackend`: the `Backend` trait over a model that runs on its own thread, fed
//! by a channel; async callers send a job and await a oneshot reply.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Instant;

use async_trait::async_trait;
use podium_core::{
    Backend, BackendError, ChatMessage, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, RequestTiming, RollingRequest, RollingResult,
    TokenCountSource,
};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use crate::config::ModelConfig;
use crate::engine::{Engine, EngineSettings, FinishReason};
use crate::error::{LocalError, Result};
use crate::gguf_tokenizer::GgufTokenizer;
use crate::load::{GgufFile, WeightFormat};
use crate::model::Model;
use crate::sampling::SamplingParams;
use crate::threads::set_thread_count;
use crate::tokenizer::{TextTokenizer, encode_pair};

/// How to load and run a local model.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The spec the user gave without its options (e.g. `local:smollm2-135m-instruct`); the
    /// identity adds the options that change numbers.
    pub spec: String,
    /// Compute threads. `None` leaves candle's default (physical cores, or
    /// `RAYON_NUM_THREADS`). Takes effect only before the first tensor operation of the
    /// process; see [`set_thread_count`].
    pub threads: Option<usize>,
    pub weight_format: WeightFormat,
    /// Keep f16 copies of the matrices candle multiplies slowly in batches, for prefill and
    /// scoring (about twice as fast there, and closer to f32: the products are computed in
    /// f32; costs ~2 bytes per weight of those matrices). Single-row decoding always uses
    /// the quantized weights.
    pub dense_batches: bool,
    /// Make those copies f32 instead of f16: the same arithmetic without widening the
    /// weights on every product, at twice their memory.
    pub dense_f32: bool,
    /// Cap on the sequence length the model runs on; `None` uses the model's training
    /// context length. Memory for keys and values grows linearly with it.
    pub max_context: Option<usize>,
    /// Most tokens (batch x length) in one forward call; bounds activation memory.
    pub max_batch_tokens: usize,
}

impl LocalOptions {
    pub fn new(spec: impl Into<String>) -> LocalOptions {
        LocalOptions {
            spec: spec.into(),
            threads: None,
            weight_format: WeightFormat::default(),
            dense_batches: true,
            dense_f32: false,
            max_context: None,
            max_batch_tokens: 512,
        }
    }

    /// Set the batch weights by name, as specs and flags give them: `f16`, `f32` (dense
    /// copies of that type) or `quantized` (no copies).
    pub fn set_batch_weights(&mut self, name: &str) -> Result<()> {
        (self.dense_batches, self.dense_f32) = match name {
            "f16" => (true, false),
            "f32" => (true, true),
            "quantized" => (false, false),
            other => return Err(LocalError::BatchWeights(other.to_string())),
        };
        Ok(())
    }

    /// The name of the batch weights (`f16`, `f32` or `quantized`), as
    /// [`LocalOptions::set_batch_weights`] takes it.
    pub fn batch_weights(&self) -> &'static str {
        match (self.dense_batches, self.dense_f32) {
            (true, false) => "f16",
            (true, true) => "f32",
            (false, _) => "quantized",
        }
    }

    /// How batched rows are multiplied, as the fingerprint names it: the batch weights,
    /// and for f16 copies that their products are computed in f32 (since 2026-11-28;
    /// before, candle's f16 products rounded activations and products to f16), so that a
    /// run computed the old way is not resumed with the new numbers.
    fn batch_computation(&self) -> &'static str {
        match self.batch_weights() {
            "f16" => "f16-in-f32",
            other => other,
        }
    }

    /// The model's identity: the spec with the options that can change a number
    /// written out (those left at their default are not), and a fingerprint of the
    /// file's sha256 with every such option's effective value, so a run can only
    /// resume a run of the same weights computed the same way. Options that change
    /// only speed (threads, batch size) are in neither.
    fn identity(
        &self,
        sha256: String,
        max_context: usize,
        chat_template_hash: Option<String>,
    ) -> ModelIdentity {
        let defaults = LocalOptions::new("");
        let mut given = Vec::new();
        if self.weight_format != defaults.weight_format {
            given.push(format!("weights={}", self.weight_format.name()));
        }
        if self.batch_weights() != defaults.batch_weights() {
            given.push(format!("batch_weights={}", self.batch_weights()));
        }
        if let Some(n) = self.max_context {
            given.push(format!("max_context={n}"));
        }
        let spec = if given.is_empty() {
            self.spec.clone()
        } else {
            format!("{}?{}", self.spec, given.join("&"))
        };
        ModelIdentity {
            spec,
            fingerprint: format!(
                "{sha256};weights={};batch_weights={};max_context={max_context}",
                self.weight_format.name(),
                self.batch_computation()
            ),
            chat_template_hash,
        }
    }
}

/// One piece of a streamed generation.
#[derive(Debug)]
pub enum StreamEvent {
    /// New answer text (never includes a stop string or part of one).
    Text(String),
    /// The generation ended; the whole result.
    Done(GenerateResult),
    Error(BackendError),
}

type Reply<T> = oneshot::Sender<Vec<std::result::Result<T, BackendError>>>;

enum Job {
    Speed(usize, usize, oneshot::Sender<Result<crate::SpeedReport>>),
    Loglikelihood(Vec<LoglikelihoodRequest>, Reply<Vec<LoglikelihoodResult>>),
    Rolling(Vec<RollingRequest>, Reply<RollingResult>),
    Generate(Vec<GenerateRequest>, Reply<GenerateResult>, Instant),
    Stream(
        GenerateRequest,
        tokio_mpsc::UnboundedSender<StreamEvent>,
        Instant,
    ),
    TokenScores(
        Vec<(Vec<u32>, Vec<Vec<u32>>)>,
        oneshot::Sender<Vec<Result<Vec<crate::SequenceScore>>>>,
    ),
}

/// A GGUF model loaded on this machine's CPU, run on the thread that calls it: the
/// blocking core of [`LocalBackend`] (which moves one onto a thread of its own) and of
/// `serve-model` (whose one model thread calls it directly). Its methods block for as
/// long as the model computes; keep them off async runtime threads.
pub struct LocalModel {
    engine: Engine,
    identity: ModelIdentity,
    tokenizer: Arc<dyn TextTokenizer>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("identity", &self.identity)
            .field("config", &self.engine.model.config)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads the GGUF model at `path` with the tokenizer and chat template stored in the
    /// file. Blocking (reads and hashes the file).
    pub fn load(path: &Path, options: LocalOptions) -> Result<LocalModel> {
        let gguf = GgufFile::open(path)?;
        // The whole header is checked before the tokenizer is built and the weights read.
        let (_, vocab_size) =
            crate::load::inspect(&gguf.content, path).map_err(|e| e.in_file(path))?;
        let tokenizer = GgufTokenizer::from_gguf(&gguf.content).map_err(|e| e.in_file(path))?;
        let n_tokens = tokenizer.inner().vocab_size();
        if n_tokens > vocab_size {
            return Err(LocalError::InvalidMetadata {
                key: "tokenizer.ggml.tokens".into(),
                message: format!(
                    "{n_tokens} tokens, more than the {vocab_size} rows of `token_embd.weight`"
                ),
            }
            .in_file(path));
        }
        drop(gguf);
        LocalModel::load_with_tokenizer(path, options, Arc::new(tokenizer))
    }

    /// Loads the GGUF model at `path` with `tokenizer` for text. Blocking (reads and
    /// hashes the file).
    pub fn load_with_tokenizer(
        path: &Path,
        options: LocalOptions,
        tokenizer: Arc<dyn TextTokenizer>,
    ) -> Result<LocalModel> {
        if let Some(threads) = options.threads {
            set_thread_count(threads);
        }
        let fingerprint = sha256_file(path)?;
        let engine = load_engine(path, &options)?;
        let identity = options.identity(
            fingerprint,
            engine.settings.max_context,
            tokenizer.chat_template_hash(),
        );
        Ok(LocalModel {
            engine,
            identity,
            tokenizer,
        })
    }

    /// The model's identity (spec with the options that change numbers, fingerprint).
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.engine.model.config
    }

    /// The sequence length the model runs on (after `LocalOptions::max_context`).
    pub fn max_context(&self) -> usize {
        self.engine.settings.max_context
    }

    pub fn tokenizer(&self) -> &Arc<dyn TextTokenizer> {
        &self.tokenizer
    }

    /// `messages` rendered with the model's chat template, the generation prompt added.
    pub fn chat_prompt(
        &self,
        messages: &[ChatMessage],
    ) -> std::result::Result<String, BackendError> {
        chat_template(self.tokenizer.as_ref(), &self.identity.spec, messages, true)
    }

    /// Generates for one request, passing answer text to `emit` as soon as it cannot be
    /// part of a stop string (`request.until`); `emit` breaking stops the generation.
    /// The result counts every generated token, text after a stop string excluded.
    pub fn generate(
        &self,
        request: &GenerateRequest,
        emit: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerateResult> {
        generate_one(
            &self.engine,
            self.tokenizer.as_ref(),
            request,
            Instant::now(),
            emit,
        )
    }

    /// Scores many `(context, continuations)` requests of token ids, packing several into
    /// each forward call; each request gets its own result.
    pub fn score_token_batch(
        &self,
        items: &[(Vec<u32>, Vec<Vec<u32>>)],
    ) -> Vec<Result<Vec<crate::SequenceScore>>> {
        self.engine.score_many(items)
    }
}

/// A GGUF model on this machine's CPU, on a thread of its own fed by a channel: the
/// [`Backend`] of `podium eval` and `podium bench`.
pub struct LocalBackend {
    identity: ModelIdentity,
    config: ModelConfig,
    max_context: usize,
    tokenizer: Arc<dyn TextTokenizer>,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("identity", &self.identity)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LocalBackend {
    /// Loads the GGUF model at `path` onto a new model thread, with the tokenizer and chat
    /// template stored in the file. Blocking (reads and hashes the file); call it from a
    /// blocking context.
    pub fn load(path: &Path, options: LocalOptions) -> Result<LocalBackend> {
        LocalBackend::start(LocalModel::load(path, options)?)
    }

    /// Loads the GGUF model at `path` onto a new model thread, with `tokenizer` for text.
    /// Blocking (reads and hashes the file); call it from a blocking context.
    pub fn load_with_tokenizer(
        path: &Path,
        options: LocalOptions,
        tokenizer: Arc<dyn TextTokenizer>,
    ) -> Result<LocalBackend> {
        LocalBackend::start(LocalModel::load_with_tokenizer(path, options, tokenizer)?)
    }

    /// Moves `model` onto a new model thread.
    pub fn start(model: LocalModel) -> Result<LocalBackend> {
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let backend = LocalBackend {
            identity: model.identity.clone(),
            config: model.config().clone(),
            max_context: model.max_context(),
            tokenizer: model.tokenizer.clone(),
            jobs: jobs_tx,
        };
        thread::Builder::new()
            .name("podium-local-model".into())
            .spawn(move || worker_loop(&model, &jobs_rx))
            .map_err(LocalError::SpawnThread)?;
        Ok(backend)
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The sequence length the model runs on (after `LocalOptions::max_context`).
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    pub fn tokenizer(&self) -> &Arc<dyn TextTokenizer> {
        &self.tokenizer
    }

    /// Generates for one request, sending the answer text out as it is made, then
    /// `Done` with the whole result. Dropping the receiver stops the generation.
    pub fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> tokio_mpsc::UnboundedReceiver<StreamEvent> {
        let (tx, rx) = tokio_mpsc::unbounded_channel();
        if let Err(mpsc::SendError(Job::Stream(_, tx, _))) =
            self.jobs.send(Job::Stream(request, tx, Instant::now()))
        {
            let _ = tx.send(StreamEvent::Error(stopped()));
        }
        rx
    }

    /// Scores token-id continuations after a token-id context, sharing the context's
    /// computation: the engine's core, without a tokenizer in the way.
    pub async fn score_token_continuations(
        &self,
        context: Vec<u32>,
        continuations: Vec<Vec<u32>>,
    ) -> Result<Vec<crate::SequenceScore>> {
        let mut scores = self
            .score_token_batch(vec![(context, continuations)])
            .await?;
        scores.pop().unwrap_or(Err(LocalError::EngineStopped))
    }

    /// Times the engine the way llama.cpp's `llama-bench` does: one prompt of `n_prompt`
    /// token ids in a single batch (`ppN`), then `n_generate` tokens decoded one at a time
    /// from an empty context (`tgN`), each with its logits computed.
    pub async fn speed_test(
        &self,
        n_prompt: usize,
        n_generate: usize,
    ) -> Result<crate::SpeedReport> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Speed(n_prompt, n_generate, tx))
            .map_err(|_| LocalError::EngineStopped)?;
        rx.await.map_err(|_| LocalError::EngineStopped)?
    }

    /// Scores many `(context, continuations)` requests of token ids, packing several into
    /// each forward call; each request gets its own result.
    pub async fn score_token_batch(
        &self,
        items: Vec<(Vec<u32>, Vec<Vec<u32>>)>,
    ) -> Result<Vec<Result<Vec<crate::SequenceScore>>>> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::TokenScores(items, tx))
            .map_err(|_| LocalError::EngineStopped)?;
        rx.await.map_err(|_| LocalError::EngineStopped)
    }

    async fn submit<T>(
        &self,
        make_job: impl FnOnce(Reply<T>) -> Job,
    ) -> std::result::Result<Vec<std::result::Result<T, BackendError>>, BackendError> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(make_job(tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }
}

fn stopped() -> BackendError {
    BackendError::Fatal(LocalError::EngineStopped.to_string())
}

#[async_trait]
impl Backend for LocalBackend {
    fn identity(&self) -> ModelIdentity {
        self.identity.clone()
    }

    async fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> std::result::Result<
        Vec<std::result::Result<Vec<LoglikelihoodResult>, BackendError>>,
        BackendError,
    > {
        let requests = requests.to_vec();
        self.submit(|tx| Job::Loglikelihood(requests, tx)).await
    }

    async fn loglikelihood_rolling(
        &self,
        requests: &[RollingRequest],
    ) -> std::result::Result<Vec<std::result::Result<RollingResult, BackendError>>, BackendError>
    {
        let requests = requests.to_vec();
        self.submit(|tx| Job::Rolling(requests, tx)).await
    }

    async fn generate_until(
        &self,
        requests: &[GenerateRequest],
    ) -> std::result::Result<Vec<std::result::Result<GenerateResult, BackendError>>, BackendError>
    {
        let requests = requests.to_vec();
        let queued = Instant::now();
        self.submit(|tx| Job::Generate(requests, tx, queued)).await
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> std::result::Result<String, BackendError> {
        chat_template(
            self.tokenizer.as_ref(),
            &self.identity.spec,
            messages,
            add_generation_prompt,
        )
    }
}

fn chat_template(
    tokenizer: &dyn TextTokenizer,
    spec: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
) -> std::result::Result<String, BackendError> {
    match tokenizer.apply_chat_template(messages, add_generation_prompt) {
        Some(Ok(prompt)) => Ok(prompt),
        Some(Err(e)) => Err(BackendError::Request(e.to_string())),
        None => Err(BackendError::Unsupported(format!(
            "model `{spec}` has no chat template"
        ))),
    }
}

fn load_engine(path: &Path, options: &LocalOptions) -> Result<Engine> {
    let mut gguf = GgufFile::open(path)?;
    let model = Model::load(
        &mut gguf,
        path,
        options.weight_format,
        options.dense_batches.then_some(if options.dense_f32 {
            candle_core::DType::F32
        } else {
            candle_core::DType::F16
        }),
    )?;
    let max_context = options
        .max_context
        .unwrap_or(model.config.context_length)
        .clamp(1, model.config.context_length.max(1));
    Ok(Engine {
        model: model.with_context(max_context),
        settings: EngineSettings {
            max_context,
            max_batch_tokens: options.max_batch_tokens.max(1),
            max_logit_rows: 64,
        },
    })
}

fn sha256_file(path: &Path) -> Result<String> {
    let io_error = |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    podium_core::sha256_hex_reader(file).map_err(io_error)
}

fn worker_loop(model: &LocalModel, jobs: &mpsc::Receiver<Job>) {
    let (engine, tokenizer) = (&model.engine, model.tokenizer.as_ref());
    // Runs until every `LocalBackend` handle (the only senders) is dropped. A job that
    // panics (a bug, or an input no check foresaw) fails with an error and the thread
    // goes on: the engine holds no state that a job leaves half-changed, and callers must
    // never wait on a reply that cannot come.
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Loglikelihood(requests, reply) => {
                let results = guarded(|| loglikelihood_many(engine, tokenizer, &requests))
                    .unwrap_or_else(|e| each_failed(requests.len(), &e));
                let _ = reply.send(results);
            }
            Job::Rolling(requests, reply) => {
                let results = guarded(|| {
                    requests
                        .iter()
                        .map(|r| rolling_one(engine, tokenizer, r).map_err(request_error))
                        .collect()
                })
                .unwrap_or_else(|e| each_failed(requests.len(), &e));
                let _ = reply.send(results);
            }
            Job::Generate(requests, reply, queued) => {
                let results =
                    guarded(|| {
                        requests
                            .iter()
                            .map(|r| {
                                generate_one(engine, tokenizer, r, queued, |_| {
                                    ControlFlow::Continue(())
                                })
                                .map_err(request_error)
                            })
                            .collect()
                    })
                    .unwrap_or_else(|e| each_failed(requests.len(), &e));
                let _ = reply.send(results);
            }
            Job::Speed(n_prompt, n_generate, reply) => {
                let result = guarded(|| engine.speed(n_prompt, n_generate)).unwrap_or_else(Err);
                let _ = reply.send(result);
            }
            Job::Stream(request, events, queued) => {
                let result = guarded(|| {
                    generate_one(engine, tokenizer, &request, queued, |text| {
                        match events.send(StreamEvent::Text(text.to_string())) {
                            Ok(()) => ControlFlow::Continue(()),
                            Err(_) => ControlFlow::Break(()),
                        }
                    })
                })
                .unwrap_or_else(Err);
                let _ = events.send(match result {
                    Ok(result) => StreamEvent::Done(result),
                    Err(e) => StreamEvent::Error(request_error(e)),
                });
            }
            Job::TokenScores(items, reply) => {
                let results = guarded(|| engine.score_many(&items)).unwrap_or_else(|e| {
                    items
                        .iter()
                        .map(|_| Err(LocalError::Panicked(panic_text(&e))))
                        .collect()
                });
                let _ = reply.send(results);
            }
        }
    }
}

/// Runs `job`, turning a panic into [`LocalError::Panicked`].
fn guarded<T>(job: impl FnOnce() -> T) -> std::result::Result<T, LocalError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
        .map_err(|payload| LocalError::Panicked(panic_message(payload.as_ref())))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// The message of a [`LocalError::Panicked`], to repeat it once per request.
fn panic_text(error: &LocalError) -> String {
    match error {
        LocalError::Panicked(message) => message.clone(),
        other => other.to_string(),
    }
}

/// The same failure for each of `n` requests.
fn each_failed<T>(n: usize, error: &LocalError) -> Vec<std::result::Result<T, BackendError>> {
    (0..n)
        .map(|_| Err(BackendError::Request(error.to_string())))
        .collect()
}

fn request_error(error: LocalError) -> BackendError {
    BackendError::Request(error.to_string())
}

fn tokenizer_error(error: crate::tokenizer::TokenizerError) -> LocalError {
    LocalError::Tokenizer(error.to_string())
}

/// The token that stands for "no text before this" (lm-evaluation-harness's prefix token).
fn prefix_token(tokenizer: &dyn TextTokenizer) -> Result<u32> {
    tokenizer
        .bos_id()
        .or_else(|| tokenizer.eos_id())
        .ok_or_else(|| LocalError::Tokenizer("the model has neither a BOS nor an EOS token".into()))
}

/// How one request maps onto engine items: (item index, the request's continuation
/// indices in that item's order) per distinct context.
type Plan = Vec<(usize, Vec<usize>)>;

/// Scores every request, packing several into each forward call (see
/// [`Engine::score_many`]); a request that fails gets its own error.
fn loglikelihood_many(
    engine: &Engine,
    tokenizer: &dyn TextTokenizer,
    requests: &[LoglikelihoodRequest],
) -> Vec<std::result::Result<Vec<LoglikelihoodResult>, BackendError>> {
    // Per request: the engine items it became, as (item index, continuation indices).
    let mut items: Vec<(Vec<u32>, Vec<Vec<u32>>)> = Vec::new();
    let mut plans: Vec<Result<Plan>> = Vec::with_capacity(requests.len());
    for request in requests {
        plans.push(plan_request(tokenizer, request).map(|groups| {
            groups
                .into_iter()
                .map(|(context, members)| {
                    items.push((context, members.iter().map(|m| m.1.clone()).collect()));
                    (items.len() - 1, members.into_iter().map(|m| m.0).collect())
                })
                .collect()
        }));
    }
    let scores = engine.score_many(&items);
    plans
        .into_iter()
        .zip(requests)
        .map(|(plan, request)| {
            let mut results = vec![None; request.continuations.len()];
            for (item, members) in plan.map_err(request_error)? {
                let item_scores = scores[item]
                    .as_ref()
                    .map_err(|e| BackendError::Request(e.to_string()))?;
                for (&j, score) in members.iter().zip(item_scores) {
                    results[j] = Some(LoglikelihoodResult {
                        logprob: score.logprob,
                        is_greedy: score.is_greedy,
                        n_tokens: score.n_tokens,
                    });
                }
            }
            results
                .into_iter()
                .map(|r| r.ok_or_else(|| BackendError::Request("continuation not scored".into())))
                .collect()
        })
        .collect()
}

/// Tokenizes a request into groups sharing one context: `(context ids, [(continuation
/// index, continuation ids)])`.
#[allow(clippy::type_complexity)]
fn plan_request(
    tokenizer: &dyn TextTokenizer,
    request: &LoglikelihoodRequest,
) -> Result<Vec<(Vec<u32>, Vec<(usize, Vec<u32>)>)>> {
    let prefix = prefix_token(tokenizer)?;
    let mut groups: Vec<(Vec<u32>, Vec<(usize, Vec<u32>)>)> = Vec::new();
    for (j, continuation) in request.continuations.iter().enumerate() {
        let (context, ids) = encode_pair(tokenizer, &request.context, continuation, prefix)
            .map_err(tokenizer_error)?;
        // Every pair of one request normally has the same context ids, but group by them
        // anyway so a tokenizer surprise cannot mix contexts.
        match groups.iter_mut().find(|g| g.0 == context) {
            Some(group) => group.1.push((j, ids)),
            None => groups.push((context, vec![(j, ids)])),
        }
    }
    Ok(groups)
}

fn rolling_one(
    engine: &Engine,
    tokenizer: &dyn TextTokenizer,
    request: &RollingRequest,
) -> Result<RollingResult> {
    let tokens = tokenizer
        .encode(&request.text, false)
        .map_err(tokenizer_error)?;
    let score = engine.score_rolling(&tokens, prefix_token(tokenizer)?)?;
    Ok(RollingResult {
        logprob: score.logprob,
        n_tokens: score.n_tokens,
    })
}

/// Generates for one request, passing answer text to `emit` as soon as it cannot be
/// part of a stop string; `emit` breaking stops the generation.
fn generate_one(
    engine: &Engine,
    tokenizer: &dyn TextTokenizer,
    request: &GenerateRequest,
    queued: Instant,
    mut emit: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<GenerateResult> {
    let started = Instant::now();
    let prompt = tokenizer
        .encode(&request.context, true)
        .map_err(tokenizer_error)?;
    let sampling = SamplingParams {
        temperature: request.temperature,
        top_p: request.top_p,
        do_sample: request.do_sample,
        seed: request.seed,
    };
    let stops: Vec<&str> = request
        .until
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let mut end_tokens = tokenizer.end_of_generation_ids();
    end_tokens.extend(tokenizer.eos_id());

    let mut generated: Vec<u32> = Vec::new();
    let mut text = String::new();
    let mut sent = 0;
    let mut first_token_at = None;
    let mut last_emit_at: Option<Instant> = None;
    let mut inter_chunk = Vec::new();
    let mut failure = None;
    let mut emit_timed = |piece: &str, now: Instant| {
        if let Some(last) = last_emit_at {
            inter_chunk.push((now - last).as_secs_f64());
        }
        last_emit_at = Some(now);
        emit(piece)
    };
    let finish = engine.generate(
        &prompt,
        request.max_tokens,
        &sampling,
        &end_tokens,
        |token| {
            let now = Instant::now();
            first_token_at.get_or_insert(now);
            generated.push(token);
            text = match tokenizer.decode(&generated) {
                Ok(text) => text,
                Err(e) => {
                    failure = Some(tokenizer_error(e));
                    return ControlFlow::Break(());
                }
            };
            if let Some(cut) = podium_core::first_stop(&text, &stops) {
                text.truncate(cut);
                if cut > sent {
                    let _ = emit_timed(&text[sent..cut], now);
                    sent = cut;
                }
                return ControlFlow::Break(());
            }
            let safe = safe_prefix_len(&text, &stops);
            if safe > sent {
                let flow = emit_timed(&text[sent..safe], now);
                sent = safe;
                return flow;
            }
            ControlFlow::Continue(())
        },
    )?;
    if let Some(error) = failure {
        return Err(error);
    }
    if finish != FinishReason::Stopped && text.len() > sent {
        let _ = emit_timed(&text[sent..], Instant::now());
    }
    let done = Instant::now();
    Ok(GenerateResult {
        text,
        reasoning: None,
        n_input_tokens: Some(prompt.len()),
        n_output_tokens: Some(generated.len()),
        token_count_source: TokenCountSource::Engine,
        timing: Some(RequestTiming {
            queue_s: (started - queued).as_secs_f64(),
            ttft_s: first_token_at.map(|t| (t - started).as_secs_f64()),
            ttfat_s: first_token_at.map(|t| (t - started).as_secs_f64()),
            e2e_s: (done - started).as_secs_f64(),
            inter_chunk_s: inter_chunk,
            started: Some(started),
            ..RequestTiming::default()
        }),
    })
}

/// How much of `text` can be shown: not a trailing piece that could still grow into a stop
/// string (`podium_core::shown_len`), nor a trailing replacement character from a token
/// that splits a UTF-8 sequence.
fn safe_prefix_len(text: &str, stops: &[&str]) -> usize {
    let end = text.strip_suffix('\u{FFFD}').map_or(text.len(), str::len);
    podium_core::shown_len(&text[..end], stops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_text_could_grow_into_a_stop_string() {
        assert_eq!(safe_prefix_len("hello\n", &["\n\n"]), 5);
        assert_eq!(safe_prefix_len("hello", &["\n\n"]), 5);
        assert_eq!(safe_prefix_len("say Q", &["Question:"]), 4);
        assert_eq!(safe_prefix_len("ab\u{FFFD}", &["\n\n"]), 2);
    }
}
