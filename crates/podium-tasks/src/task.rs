//! A loaded task: its docs, few-shot examples and templates; turns docs into
//! requests (`Instance`s) and scores the responses.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use podium_core::{
    ChatMessage, GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult,
    RollingRequest, RollingResult,
};

use crate::config::{FieldSpec, OutputType, ProcessDocs, ProcessResults, Sampler, TaskConfig};
use crate::dataset::{self, Doc};
use crate::error::TaskError;
use crate::ifeval;
use crate::metrics::{self, MetricName, SampleValue};
use crate::reference;
use crate::rules::RowArgs;
use crate::template::{TemplateError, Templates};

pub struct Task {
    pub config: TaskConfig,
    /// sha256 of the merged config and the bytes of every data file.
    pub content_hash: String,
    /// Docs in the evaluation split before `doc_subset`.
    pub n_original_docs: usize,
    /// (doc id, doc): the id is the doc's index in the evaluation split.
    eval_docs: Vec<(usize, Doc)>,
    eval_split: String,
    fewshot_docs: Vec<Doc>,
    /// Whether few-shot docs come from the evaluation split itself (then a doc
    /// is never its own example).
    fewshot_is_eval_split: bool,
    templates: Templates,
}

/// How to build the prompts of a run.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub limit: Option<usize>,
    /// Overrides the task's `num_fewshot`.
    pub num_fewshot: Option<usize>,
    pub seed: u64,
}

/// Renders chat messages into a prompt (the model's chat template).
pub type ChatRenderer<'a> =
    &'a dyn Fn(&[ChatMessage], bool) -> Result<String, podium_core::BackendError>;

/// A NaN or infinite log-prob in a response ([`Response::check_finite`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the backend returned a log-prob of {logprob} for {what}; a log-prob must be a finite number"
)]
pub struct NonFiniteLogprob {
    pub logprob: f64,
    /// `continuation N` or `the text`.
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InstanceRequest {
    Loglikelihood(LoglikelihoodRequest),
    Rolling(RollingRequest),
    /// One request per repeat.
    Generate {
        requests: Vec<GenerateRequest>,
    },
}

/// What a doc's responses are scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    Choices {
        choices: Vec<String>,
        golds: Vec<usize>,
        /// TruthfulQA MC2 labels (1 = true answer).
        mc2_labels: Option<Vec<i64>>,
    },
    Texts {
        golds: Vec<String>,
        /// The doc fields rule metrics read their arguments from (`field:`), so a
        /// stored sample shows what it was scored against.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, Json>,
    },
    Continuation,
    Rolling {
        n_words: usize,
        n_bytes: usize,
    },
    /// IFEval (`process_results: ifeval`): the doc's instructions and their arguments.
    Instructions {
        instruction_id_list: Vec<String>,
        kwargs: Vec<Json>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub doc_id: usize,
    pub prompt: String,
    pub prompt_hash: String,
    pub request: InstanceRequest,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Loglikelihood { results: Vec<LoglikelihoodResult> },
    Rolling { result: RollingResult },
    Generate { results: Vec<GenerateResult> },
}

impl Response {
    /// Whether every log-prob is a finite number. A NaN or infinite log-prob
    /// (a broken model file, a lying server) must fail its sample: scored, a
    /// NaN loses every comparison and the first choice wins (`acc` 1.0 when
    /// the gold is choice 0), and one infinity poisons a perplexity.
    pub fn check_finite(&self) -> Result<(), NonFiniteLogprob> {
        let bad = match self {
            Response::Loglikelihood { results } => results
                .iter()
                .position(|r| !r.logprob.is_finite())
                .map(|i| (results[i].logprob, format!("continuation {i}"))),
            Response::Rolling { result } => {
                (!result.logprob.is_finite()).then(|| (result.logprob, "the text".to_string()))
            }
            Response::Generate { .. } => None,
        };
        match bad {
            None => Ok(()),
            Some((logprob, what)) => Err(NonFiniteLogprob { logprob, what }),
        }
    }
}

/// The scores of one doc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleScores {
    /// `metric,filter` → value.
    pub metrics: BTreeMap<String, SampleValue>,
    /// `filter` → the answers after that filter (generation tasks).
    pub filtered: BTreeMap<String, Vec<String>>,
    /// Judge metric name → what the judge model said (filled by the runner).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judgements: BTreeMap<String, crate::judge::Judgement>,
    /// `metric,filter` → why the sample got its value (rule metrics: `pass: …` or
    /// `fail: …`). Absent from samples stored before Podium kept reasons.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, String>,
    /// IFEval: each instruction's strict and loose verdict on the answer of the
    /// first filter. Absent from samples stored before Podium kept it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<ifeval::InstructionVerdict>,
}

impl SampleScores {
    /// Records one metric's value with the reason for it. Metrics computed outside this
    /// crate (a judge model's verdict) are added this way by the runner.
    pub fn insert_with_reason(&mut self, key: String, value: SampleValue, reason: String) {
        self.reasons.insert(key.clone(), reason);
        self.metrics.insert(key, value);
    }
}

pub use podium_core::sha256_hex;

impl Task {
    /// Load the task's data and check its templates on the first docs.
    pub fn load(config: TaskConfig) -> Result<Task, TaskError> {
        let mut hasher = Sha256::new();
        hasher.update(
            serde_json::to_string(&config.raw)
                .unwrap_or_default()
                .as_bytes(),
        );
        for (split, files) in &config.dataset.data_files {
            for file in files {
                // Not a regular file (a device such as /dev/zero, a FIFO): never
                // read it, it may not end.
                if file.exists() && !file.is_file() {
                    return Err(TaskError::file(
                        file,
                        format!("data file of split `{split}` is not a regular file"),
                    ));
                }
                let bytes = std::fs::read(file).map_err(|err| {
                    TaskError::file(
                        file,
                        format!("cannot read data file of split `{split}`: {err}"),
                    )
                })?;
                hasher.update(split.as_bytes());
                hasher.update(Sha256::digest(&bytes));
            }
        }
        let content_hash = podium_core::hex(&hasher.finalize());

        let eval_split = config
            .test_split
            .clone()
            .or_else(|| config.validation_split.clone())
            .expect("config checks that an evaluation split exists");
        let process = |docs: Vec<Doc>, split: &str| -> Result<Vec<Doc>, TaskError> {
            match config.process_docs {
                None => Ok(docs),
                Some(ProcessDocs::Hellaswag) => docs
                    .iter()
                    .enumerate()
                    .map(|(i, doc)| {
                        dataset::hellaswag_process_doc(doc).ok_or_else(|| TaskError::Task {
                            task: config.name.clone(),
                            message: format!(
                                "split `{split}`, doc {i}: `process_docs: hellaswag` needs ctx_a, ctx_b, activity_label, endings and label"
                            ),
                        })
                    })
                    .collect(),
            }
        };
        let all_eval = process(
            dataset::load_split(&config.dataset, &eval_split)?,
            &eval_split,
        )?;
        let n_original_docs = all_eval.len();
        if n_original_docs == 0 {
            // Running it would report a score over n = 0 and succeed.
            return Err(TaskError::Task {
                task: config.name.clone(),
                message: format!(
                    "the evaluation split `{eval_split}` has no docs ({})",
                    split_files(&config, &eval_split)
                ),
            });
        }
        let all_eval = chat_messages_column(&config, &eval_split, all_eval)?;
        let mut eval_docs: Vec<(usize, Doc)> = all_eval.into_iter().enumerate().collect();
        if let Some(subset) = &config.doc_subset {
            if subset.size == 0 {
                return Err(TaskError::Task {
                    task: config.name.clone(),
                    message: "`doc_subset.size` is 0: no doc would be evaluated".into(),
                });
            }
            let mut rng = ChaCha8Rng::seed_from_u64(subset.seed);
            eval_docs.shuffle(&mut rng);
            eval_docs.truncate(subset.size);
            eval_docs.sort_by_key(|(id, _)| *id);
        }

        let fewshot_split = config
            .fewshot_split
            .clone()
            .or_else(|| config.training_split.clone())
            .or_else(|| config.validation_split.clone())
            .or_else(|| config.test_split.clone());
        let (fewshot_docs, fewshot_is_eval_split) =
            match (&config.fewshot_config.samples, &fewshot_split) {
                (Some(samples), _) => (samples.clone(), false),
                (None, Some(split)) if *split == eval_split => (Vec::new(), true),
                (None, Some(split)) => (
                    process(dataset::load_split(&config.dataset, split)?, split)?,
                    false,
                ),
                (None, None) => (Vec::new(), false),
            };

        let templates = Templates::new();
        if let Some(spec) = &config.doc_to_category {
            for (doc_id, doc) in &eval_docs {
                category_of(&templates, spec, doc).map_err(|error| TaskError::Template {
                    task: config.name.clone(),
                    doc_id: *doc_id,
                    field: "metadata.doc_to_category".into(),
                    message: error.to_string(),
                })?;
            }
        }

        Ok(Task {
            config,
            content_hash,
            n_original_docs,
            eval_docs,
            eval_split,
            fewshot_docs,
            fewshot_is_eval_split,
            templates,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Docs evaluated without `--limit` (after `doc_subset`).
    pub fn n_docs(&self) -> usize {
        self.eval_docs.len()
    }

    pub fn eval_split(&self) -> &str {
        &self.eval_split
    }

    pub fn doc(&self, doc_id: usize) -> Option<&Doc> {
        self.eval_docs
            .iter()
            .find(|(id, _)| *id == doc_id)
            .map(|(_, doc)| doc)
    }

    /// A doc's question as a judge reads it: its `doc_to_text` alone, without
    /// the description, few-shot examples or chat template of the prompt.
    pub fn question(&self, doc_id: usize) -> Result<String, TaskError> {
        let doc = self.doc(doc_id).ok_or_else(|| TaskError::Task {
            task: self.config.name.clone(),
            message: format!("no doc {doc_id}"),
        })?;
        self.text(doc_id, "doc_to_text", &self.config.doc_to_text, doc)
    }

    /// The filter whose answer a judge grades: the task's first.
    pub fn judged_filter(&self) -> &str {
        self.config
            .filters
            .first()
            .map_or("none", |f| f.name.as_str())
    }

    /// The doc's category (`metadata.doc_to_category`), when the task has one.
    pub fn category(&self, doc_id: usize) -> Option<String> {
        let spec = self.config.doc_to_category.as_ref()?;
        category_of(&self.templates, spec, self.doc(doc_id)?).ok()
    }

    pub fn num_fewshot(&self, options: &BuildOptions) -> usize {
        options.num_fewshot.unwrap_or(self.config.num_fewshot)
    }

    /// Build the request of every doc (up to `limit`). Fails on the first doc
    /// whose templates fail, before anything is sent or stored.
    pub fn build_instances(
        &self,
        options: &BuildOptions,
        chat: Option<ChatRenderer<'_>>,
    ) -> Result<Vec<Instance>, TaskError> {
        let n_shots = self.num_fewshot(options);
        if n_shots > 0 {
            let available = if self.fewshot_is_eval_split {
                self.eval_docs.len().saturating_sub(1)
            } else {
                self.fewshot_docs.len()
            };
            if available < n_shots {
                return Err(TaskError::Task {
                    task: self.config.name.clone(),
                    message: format!(
                        "{n_shots} few-shot examples asked, but the few-shot source has only {available} docs"
                    ),
                });
            }
        }
        if n_shots > 0 && self.config.doc_to_messages.is_some() {
            return Err(TaskError::Task {
                task: self.config.name.clone(),
                message: "a task whose prompts are chat messages (`metadata.doc_to_messages`) takes no few-shot examples".into(),
            });
        }
        let limit = options.limit.unwrap_or(usize::MAX);
        self.eval_docs
            .iter()
            .take(limit)
            .map(|(doc_id, doc)| self.build_instance(*doc_id, doc, n_shots, options.seed, chat))
            .collect()
    }

    fn field(
        &self,
        doc_id: usize,
        name: &str,
        spec: &FieldSpec,
        doc: &Doc,
    ) -> Result<Json, TaskError> {
        self.templates
            .eval_field(spec, doc)
            .map_err(|error| TaskError::Template {
                task: self.config.name.clone(),
                doc_id,
                field: name.to_string(),
                message: error.to_string(),
            })
    }

    fn text(
        &self,
        doc_id: usize,
        name: &str,
        spec: &FieldSpec,
        doc: &Doc,
    ) -> Result<String, TaskError> {
        match self.field(doc_id, name, spec, doc)? {
            Json::String(s) => Ok(s),
            Json::Number(n) => Ok(n.to_string()),
            Json::Bool(b) => Ok(if b { "True".into() } else { "False".into() }),
            other => Err(TaskError::Template {
                task: self.config.name.clone(),
                doc_id,
                field: name.to_string(),
                message: format!("expected text, got {other}"),
            }),
        }
    }

    fn choices(&self, doc_id: usize, doc: &Doc) -> Result<Option<Vec<String>>, TaskError> {
        let Some(spec) = &self.config.doc_to_choice else {
            return Ok(None);
        };
        let value = self.field(doc_id, "doc_to_choice", spec, doc)?;
        let value = match value {
            // A rendered template that prints a list: parse it back.
            Json::String(s) if s.trim_start().starts_with('[') => serde_json::from_str(&s)
                .map_err(|err| TaskError::Template {
                    task: self.config.name.clone(),
                    doc_id,
                    field: "doc_to_choice".into(),
                    message: format!("rendered `{s}`, which is not a list: {err}"),
                })?,
            other => other,
        };
        let Json::Array(items) = value else {
            return Err(TaskError::Template {
                task: self.config.name.clone(),
                doc_id,
                field: "doc_to_choice".into(),
                message: format!("expected a list of choices, got {value}"),
            });
        };
        items
            .into_iter()
            .map(|item| match item {
                Json::String(s) => Ok(s),
                Json::Number(n) => Ok(n.to_string()),
                other => Err(TaskError::Template {
                    task: self.config.name.clone(),
                    doc_id,
                    field: "doc_to_choice".into(),
                    message: format!("choice {other} is not text"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The target as lm-evaluation-harness reads it: a digit string becomes
    /// an int when the task has choices, a rendered `[...]` becomes a list.
    /// An empty list is an error: no answer could ever be right.
    fn target(&self, doc_id: usize, doc: &Doc, has_choices: bool) -> Result<Json, TaskError> {
        let value = self.field(doc_id, "doc_to_target", &self.config.doc_to_target, doc)?;
        let value = match value {
            Json::String(s)
                if has_choices && !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) =>
            {
                s.parse::<i64>().map(Json::from).unwrap_or(Json::String(s))
            }
            Json::String(s) if s.len() >= 2 && s.starts_with('[') && s.ends_with(']') => {
                serde_json::from_str(&s).unwrap_or(Json::String(s))
            }
            other => other,
        };
        if value.as_array().is_some_and(Vec::is_empty) {
            return Err(TaskError::Template {
                task: self.config.name.clone(),
                doc_id,
                field: "doc_to_target".into(),
                message: "the target is an empty list: the doc has no gold answer".into(),
            });
        }
        Ok(value)
    }

    /// Gold choice indices for a multiple-choice doc.
    fn golds(
        &self,
        doc_id: usize,
        target: &Json,
        choices: &[String],
    ) -> Result<Vec<usize>, TaskError> {
        let resolve = |t: &Json| -> Result<usize, TaskError> {
            let index = match t {
                Json::Number(n) => n.as_u64().map(|i| i as usize),
                Json::String(s) => choices.iter().position(|c| c == s),
                _ => None,
            };
            index
                .filter(|&i| i < choices.len())
                .ok_or_else(|| TaskError::Template {
                    task: self.config.name.clone(),
                    doc_id,
                    field: "doc_to_target".into(),
                    message: format!(
                        "target {t} is neither a choice index nor one of the choices {choices:?}"
                    ),
                })
        };
        match target {
            Json::Array(items) => items.iter().map(resolve).collect(),
            other => Ok(vec![resolve(other)?]),
        }
    }

    /// The answer text of a few-shot example.
    fn answer_text(&self, doc_id: usize, doc: &Doc) -> Result<String, TaskError> {
        let choices = self.choices(doc_id, doc)?;
        let target = self.target(doc_id, doc, choices.is_some())?;
        let first = match target {
            Json::Array(items) => items.into_iter().next().unwrap_or(Json::Null),
            other => other,
        };
        Ok(match (first, &choices) {
            (Json::Number(n), Some(choices)) => n
                .as_u64()
                .and_then(|i| choices.get(i as usize))
                .cloned()
                .ok_or_else(|| TaskError::Template {
                    task: self.config.name.clone(),
                    doc_id,
                    field: "doc_to_target".into(),
                    message: format!("few-shot target {n} is out of range of {choices:?}"),
                })?,
            (Json::String(s), _) => s,
            (other, _) => other.to_string(),
        })
    }

    fn fewshot_examples(&self, doc_id: usize, n_shots: usize, seed: u64) -> Vec<&Doc> {
        if n_shots == 0 {
            return Vec::new();
        }
        let pool: Vec<&Doc> = if self.fewshot_is_eval_split {
            self.eval_docs
                .iter()
                .filter(|(id, _)| *id != doc_id)
                .map(|(_, d)| d)
                .collect()
        } else {
            self.fewshot_docs.iter().collect()
        };
        match self.config.fewshot_config.sampler {
            Sampler::FirstN => pool.into_iter().take(n_shots).collect(),
            Sampler::Random => {
                // Seeded per doc, so a doc's examples do not depend on --limit
                // or on which docs a resumed run still has to do.
                let mut rng = ChaCha8Rng::seed_from_u64(
                    seed ^ (doc_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let mut pool = pool;
                pool.shuffle(&mut rng);
                pool.truncate(n_shots);
                pool
            }
        }
    }

    fn build_instance(
        &self,
        doc_id: usize,
        doc: &Doc,
        n_shots: usize,
        seed: u64,
        chat: Option<ChatRenderer<'_>>,
    ) -> Result<Instance, TaskError> {
        let config = &self.config;
        let description = match &config.description {
            Some(source) => {
                self.templates
                    .render(source, doc)
                    .map_err(|error| TaskError::Template {
                        task: config.name.clone(),
                        doc_id,
                        field: "description".into(),
                        message: error.to_string(),
                    })?
            }
            None => String::new(),
        };
        let gen_prefix =
            match &config.gen_prefix {
                Some(source) => Some(self.templates.render(source, doc).map_err(|error| {
                    TaskError::Template {
                        task: config.name.clone(),
                        doc_id,
                        field: "gen_prefix".into(),
                        message: error.to_string(),
                    }
                })?),
                None => None,
            };
        let tgt = &config.target_delimiter;

        // (user, assistant) turns of the few-shot examples, with delimiters.
        let mut turns: Vec<(String, String)> = Vec::new();
        for example in self.fewshot_examples(doc_id, n_shots, seed) {
            let q = self.text(
                doc_id,
                "doc_to_text (few-shot example)",
                &config.doc_to_text,
                example,
            )?;
            let a = self.answer_text(doc_id, example)?;
            let (user, answer) = match &gen_prefix {
                Some(prefix) => (
                    format!(
                        "{q}{}",
                        if requires_delimiter(&q, prefix) {
                            tgt.as_str()
                        } else {
                            ""
                        }
                    ),
                    maybe_delimit(prefix, &a, " "),
                ),
                None => (format!("{q}{tgt}"), a),
            };
            turns.push((user, format!("{answer}{}", config.fewshot_delimiter)));
        }
        let question = self.text(doc_id, "doc_to_text", &config.doc_to_text, doc)?;
        let question_turn = match &gen_prefix {
            Some(prefix) if requires_delimiter(&question, prefix) => format!("{question}{tgt}"),
            _ => question,
        };

        // The prompt as chat messages, for chat-shaped tasks: the doc's own
        // messages, or the description as the system message and the rest as
        // the user's (without a gen_prefix, which a chat API cannot continue).
        let chat_messages: Option<Vec<ChatMessage>> = match &config.doc_to_messages {
            Some(column) => {
                let mut messages = doc
                    .get(column)
                    .ok_or_else(|| TaskError::Template {
                        task: config.name.clone(),
                        doc_id,
                        field: "metadata.doc_to_messages".into(),
                        message: format!("the doc has no column `{column}`"),
                    })
                    .and_then(|value| {
                        crate::from_data::message_list(value).map_err(|message| {
                            TaskError::Template {
                                task: config.name.clone(),
                                doc_id,
                                field: "metadata.doc_to_messages".into(),
                                message: format!("column `{column}` {message}"),
                            }
                        })
                    })?;
                let system = description.trim_end();
                if !system.is_empty() && messages.first().is_none_or(|m| m.role != "system") {
                    messages.insert(
                        0,
                        ChatMessage {
                            role: "system".into(),
                            content: system.to_string(),
                        },
                    );
                }
                Some(messages)
            }
            None if config.native_chat && gen_prefix.is_none() => Some(single_turn_messages(
                description.trim_end(),
                &turns,
                &question_turn,
            )),
            None => None,
        };

        let prompt = match chat {
            Some(render) if config.doc_to_messages.is_some() => {
                let messages = chat_messages.as_deref().unwrap_or_default();
                render(messages, true).map_err(|message| TaskError::Task {
                    task: config.name.clone(),
                    message: format!("chat template failed on doc {doc_id}: {message}"),
                })?
            }
            None => {
                let mut prompt = description.clone();
                for (user, assistant) in &turns {
                    prompt.push_str(user);
                    prompt.push_str(assistant);
                }
                prompt.push_str(&question_turn);
                if let Some(prefix) = &gen_prefix {
                    prompt.push_str(prefix);
                }
                prompt
            }
            Some(render) => {
                // lm-evaluation-harness's default single-turn layout: the
                // description as the system message, the few-shot examples and
                // the question in one user message.
                let mut messages = single_turn_messages(&description, &turns, &question_turn);
                if let Some(prefix) = &gen_prefix {
                    messages.push(ChatMessage {
                        role: "assistant".into(),
                        content: prefix.clone(),
                    });
                }
                render(&messages, gen_prefix.is_none()).map_err(|message| TaskError::Task {
                    task: config.name.clone(),
                    message: format!("chat template failed on doc {doc_id}: {message}"),
                })?
            }
        };

        let (request, target) = match config.output_type {
            OutputType::MultipleChoice => {
                let choices = self.choices(doc_id, doc)?.unwrap_or_default();
                if choices.is_empty() {
                    return Err(TaskError::Template {
                        task: config.name.clone(),
                        doc_id,
                        field: "doc_to_choice".into(),
                        message: "no choices".into(),
                    });
                }
                let target = self.target(doc_id, doc, true)?;
                let golds = self.golds(doc_id, &target, &choices)?;
                // Under a chat template the answer follows the assistant turn
                // directly, unless a gen_prefix without trailing space precedes it.
                let delimiter = if chat.is_some() {
                    match &gen_prefix {
                        Some(prefix) if !prefix.ends_with(char::is_whitespace) => tgt.clone(),
                        _ => String::new(),
                    }
                } else {
                    tgt.clone()
                };
                let mc2_labels = match config.process_results {
                    Some(ProcessResults::TruthfulqaMc2) => Some(mc2_labels(doc).ok_or_else(|| TaskError::Template {
                        task: config.name.clone(),
                        doc_id,
                        field: "process_results".into(),
                        message: "truthfulqa_mc2 needs `mc2_targets.labels` (a list of 0/1) in the doc".into(),
                    })?),
                    // Config checks that ifeval is a generation task.
                    Some(ProcessResults::Ifeval) | None => None,
                };
                (
                    InstanceRequest::Loglikelihood(LoglikelihoodRequest {
                        context: prompt.clone(),
                        continuations: choices.iter().map(|c| format!("{delimiter}{c}")).collect(),
                    }),
                    Target::Choices {
                        choices,
                        golds,
                        mc2_labels,
                    },
                )
            }
            OutputType::Loglikelihood => {
                let continuation =
                    self.text(doc_id, "doc_to_target", &config.doc_to_target, doc)?;
                (
                    InstanceRequest::Loglikelihood(LoglikelihoodRequest {
                        context: prompt.clone(),
                        continuations: vec![continuation],
                    }),
                    Target::Continuation,
                )
            }
            OutputType::LoglikelihoodRolling => {
                let text = self.text(doc_id, "doc_to_target", &config.doc_to_target, doc)?;
                let target = Target::Rolling {
                    n_words: metrics::count_words(&text),
                    n_bytes: text.len(),
                };
                (InstanceRequest::Rolling(RollingRequest { text }), target)
            }
            OutputType::GenerateUntil => {
                let choices = self.choices(doc_id, doc)?;
                let target = self.target(doc_id, doc, choices.is_some())?;
                let as_text = |t: &Json| -> String {
                    match (t, &choices) {
                        (Json::Number(n), Some(choices)) => n
                            .as_u64()
                            .and_then(|i| choices.get(i as usize).cloned())
                            .unwrap_or_else(|| n.to_string()),
                        (Json::String(s), _) => s.clone(),
                        (other, _) => other.to_string(),
                    }
                };
                let golds: Vec<String> = match &target {
                    Json::Array(items) => items.iter().map(as_text).collect(),
                    other => vec![as_text(other)],
                };
                let target = match config.process_results {
                    Some(ProcessResults::Ifeval) => self.instructions_target(doc_id, doc)?,
                    _ => {
                        let fields = self.rule_fields(doc_id, doc, &golds)?;
                        Target::Texts { golds, fields }
                    }
                };
                let kwargs = &config.generation_kwargs;
                let until = kwargs.until.clone().unwrap_or_else(|| {
                    if config.fewshot_delimiter.is_empty() {
                        Vec::new()
                    } else {
                        vec![config.fewshot_delimiter.clone()]
                    }
                });
                let requests = (0..config.repeats)
                    .map(|repeat| GenerateRequest {
                        // Under a chat template the prompt is already rendered.
                        messages: if chat.is_some() {
                            None
                        } else {
                            chat_messages.clone()
                        },
                        context: prompt.clone(),
                        until: until.clone(),
                        max_tokens: kwargs.max_gen_toks,
                        temperature: if kwargs.do_sample {
                            kwargs.temperature
                        } else {
                            0.0
                        },
                        top_p: kwargs.top_p,
                        do_sample: kwargs.do_sample,
                        seed: seed.wrapping_add(repeat as u64),
                    })
                    .collect();
                (InstanceRequest::Generate { requests }, target)
            }
        };
        let request_json = serde_json::to_string(&request).unwrap_or_default();
        Ok(Instance {
            doc_id,
            prompt_hash: sha256_hex(request_json.as_bytes()),
            prompt,
            request,
            target,
        })
    }

    /// The doc fields the task's rule metrics read (`field:`), after checking every rule's
    /// arguments for this doc, so a bad row fails the run before anything is sent.
    fn rule_fields(
        &self,
        doc_id: usize,
        doc: &Doc,
        golds: &[String],
    ) -> Result<BTreeMap<String, Json>, TaskError> {
        let fields: BTreeMap<String, Json> = self
            .config
            .metrics
            .iter()
            .flat_map(|spec| spec.row_fields())
            .filter_map(|name| Some((name.to_string(), doc.get(name)?.clone())))
            .collect();
        let row = RowArgs {
            golds,
            fields: &fields,
        };
        for spec in &self.config.metrics {
            if let Some(rule) = &spec.rule {
                rule.check_row(row).map_err(|error| TaskError::Template {
                    task: self.config.name.clone(),
                    doc_id,
                    field: format!("metric_list: {}", spec.key),
                    message: error.to_string(),
                })?;
            }
        }
        Ok(fields)
    }

    /// Score one doc's responses with every metric and filter of the task.
    pub fn score(
        &self,
        instance: &Instance,
        response: &Response,
    ) -> Result<SampleScores, TaskError> {
        let mismatch = || TaskError::Task {
            task: self.config.name.clone(),
            message: format!(
                "doc {}: the response does not fit the request",
                instance.doc_id
            ),
        };
        response.check_finite().map_err(|error| TaskError::Task {
            task: self.config.name.clone(),
            message: format!("doc {}: {error}", instance.doc_id),
        })?;
        let mut scores = SampleScores::default();
        match (&instance.target, response) {
            (
                Target::Choices {
                    choices,
                    golds,
                    mc2_labels,
                },
                Response::Loglikelihood { results },
            ) => {
                if results.len() != choices.len() {
                    return Err(mismatch());
                }
                if let Some(labels) = mc2_labels {
                    let mass = metrics::truthfulqa_mc2(results, labels).ok_or_else(mismatch)?;
                    scores
                        .metrics
                        .insert("acc,none".into(), SampleValue::Scalar(mass));
                    return Ok(scores);
                }
                for spec in &self.config.metrics {
                    let value = metrics::multiple_choice_value(spec.name, results, choices, golds);
                    scores
                        .metrics
                        .insert(format!("{},none", spec.key), SampleValue::Scalar(value));
                }
            }
            (Target::Continuation, Response::Loglikelihood { results }) => {
                let result = results.first().ok_or_else(mismatch)?;
                for spec in &self.config.metrics {
                    let value = match spec.name {
                        MetricName::Perplexity => result.logprob,
                        _ => f64::from(u8::from(result.is_greedy)),
                    };
                    scores
                        .metrics
                        .insert(format!("{},none", spec.key), SampleValue::Scalar(value));
                }
            }
            (Target::Rolling { n_words, n_bytes }, Response::Rolling { result }) => {
                for spec in &self.config.metrics {
                    let weight = match spec.name {
                        MetricName::WordPerplexity => *n_words,
                        _ => *n_bytes,
                    };
                    scores.metrics.insert(
                        format!("{},none", spec.key),
                        SampleValue::Weighted(result.logprob, weight as f64),
                    );
                }
            }
            (Target::Texts { golds, fields }, Response::Generate { results }) => {
                let texts: Vec<String> = results.iter().map(|r| r.text.clone()).collect();
                let row = RowArgs { golds, fields };
                for pipeline in &self.config.filters {
                    let filtered = pipeline.apply(&texts);
                    let answer = filtered.first().cloned().unwrap_or_default();
                    for spec in &self.config.metrics {
                        let key = format!("{},{}", spec.key, pipeline.name);
                        match (&spec.rule, &spec.reference) {
                            (Some(rule), _) => {
                                let verdict = rule.evaluate(&answer, row);
                                scores.insert_with_reason(
                                    key,
                                    SampleValue::Scalar(verdict.value),
                                    verdict.reason,
                                );
                            }
                            (None, Some(reference)) => {
                                let value =
                                    reference::sample_value(spec.name, reference, &answer, golds);
                                scores.metrics.insert(key, value);
                            }
                            (None, None) => {
                                let value = golds
                                    .iter()
                                    .map(|gold| metrics::exact_match(spec, &answer, gold))
                                    .fold(0.0, f64::max);
                                scores.metrics.insert(key, SampleValue::Scalar(value));
                            }
                        }
                    }
                    scores.filtered.insert(pipeline.name.clone(), filtered);
                }
            }
            (
                Target::Instructions {
                    instruction_id_list,
                    kwargs,
                },
                Response::Generate { results },
            ) => {
                let instructions = ifeval::Instructions::parse(instruction_id_list, kwargs)
                    .map_err(|error| TaskError::Task {
                        task: self.config.name.clone(),
                        message: format!("doc {}: {error}", instance.doc_id),
                    })?;
                let texts: Vec<String> = results.iter().map(|r| r.text.clone()).collect();
                for (index, pipeline) in self.config.filters.iter().enumerate() {
                    let filtered = pipeline.apply(&texts);
                    let answer = filtered.first().map(String::as_str).unwrap_or_default();
                    let verdicts = instructions.verdicts(answer);
                    let values = ifeval::doc_metrics(&verdicts);
                    for spec in &self.config.metrics {
                        let Some(position) = ifeval::METRICS
                            .iter()
                            .position(|m| *m == spec.name.as_str())
                        else {
                            continue;
                        };
                        let (value, weight) = values[position];
                        let value = match spec.name.aggregation() {
                            metrics::Aggregation::RatioOfSums => {
                                SampleValue::Weighted(value, weight)
                            }
                            _ => SampleValue::Scalar(value),
                        };
                        scores
                            .metrics
                            .insert(format!("{},{}", spec.name.as_str(), pipeline.name), value);
                    }
                    if index == 0 {
                        scores.instructions = verdicts;
                    }
                    scores.filtered.insert(pipeline.name.clone(), filtered);
                }
            }
            _ => return Err(mismatch()),
        }
        Ok(scores)
    }

    /// IFEval's target: the doc's `instruction_id_list` and `kwargs`, checked
    /// now so that a bad doc fails before anything runs.
    fn instructions_target(&self, doc_id: usize, doc: &Doc) -> Result<Target, TaskError> {
        let error = |message: String| TaskError::Template {
            task: self.config.name.clone(),
            doc_id,
            field: "process_results".into(),
            message: format!("ifeval: {message}"),
        };
        let instruction_id_list: Vec<String> = doc
            .get("instruction_id_list")
            .and_then(Json::as_array)
            .and_then(|ids| ids.iter().map(|id| id.as_str().map(String::from)).collect())
            .ok_or_else(|| error("the doc needs `instruction_id_list`, a list of text".into()))?;
        let kwargs: Vec<Json> = doc
            .get("kwargs")
            .and_then(Json::as_array)
            .cloned()
            .ok_or_else(|| error("the doc needs `kwargs`, a list of objects".into()))?;
        ifeval::Instructions::parse(&instruction_id_list, &kwargs)
            .map_err(|e| error(e.to_string()))?;
        Ok(Target::Instructions {
            instruction_id_list,
            kwargs,
        })
    }

    /// How each `metric,filter` key aggregates, and whether higher is better.
    pub fn metric_keys(&self) -> Vec<(String, MetricName, bool)> {
        let mut keys = Vec::new();
        if self.config.process_results == Some(ProcessResults::TruthfulqaMc2) {
            keys.push(("acc,none".to_string(), MetricName::Acc, true));
            return keys;
        }
        let filters: Vec<&str> = if self.config.output_type == OutputType::GenerateUntil {
            self.config
                .filters
                .iter()
                .map(|f| f.name.as_str())
                .collect()
        } else {
            vec!["none"]
        };
        for filter in filters {
            for spec in &self.config.metrics {
                keys.push((
                    format!("{},{filter}", spec.key),
                    spec.name,
                    spec.higher_is_better,
                ));
            }
        }
        // A judge grades one answer per doc: the first filter's. Its verdicts
        // aggregate by their mean, as exact_match's do.
        for judge in &self.config.judges {
            keys.push((
                format!("{},{}", judge.name, self.judged_filter()),
                MetricName::ExactMatch,
                true,
            ));
        }
        keys
    }

    /// Chance level of the primary metric, for the normalized score:
    /// 1 / number of choices for multiple choice, 0 otherwise.
    pub fn random_baseline(&self, instances: &[Instance]) -> f64 {
        if self.config.process_results.is_some() {
            return 0.0;
        }
        let n_choices: Vec<usize> = instances
            .iter()
            .filter_map(|i| match &i.target {
                Target::Choices { choices, .. } => Some(choices.len()),
                _ => None,
            })
            .collect();
        if n_choices.is_empty() {
            return 0.0;
        }
        n_choices.iter().map(|&n| 1.0 / n as f64).sum::<f64>() / n_choices.len() as f64
    }
}

/// lm-evaluation-harness's single-turn chat layout: `system` (when not
/// empty) as the system message, the few-shot turns and the question in one
/// user message.
fn single_turn_messages(
    system: &str,
    turns: &[(String, String)],
    question_turn: &str,
) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(ChatMessage {
            role: "system".into(),
            content: system.to_string(),
        });
    }
    let mut user = String::new();
    for (u, a) in turns {
        user.push_str(u);
        user.push_str(a);
    }
    user.push_str(question_turn);
    messages.push(ChatMessage {
        role: "user".into(),
        content: user,
    });
    messages
}

/// The data files of a split, for messages.
fn split_files(config: &TaskConfig, split: &str) -> String {
    config
        .dataset
        .data_files
        .get(split)
        .map(|files| {
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn mc2_labels(doc: &Doc) -> Option<Vec<i64>> {
    doc.get("mc2_targets")?
        .get("labels")?
        .as_array()?
        .iter()
        .map(|l| l.as_i64().or_else(|| l.as_str()?.parse().ok()))
        .collect()
}

/// Whether `a` and `b` need a delimiter between them (neither side has whitespace).
/// A doc's category as text (a column's value or a rendered template).
fn category_of(
    templates: &Templates,
    spec: &FieldSpec,
    doc: &Doc,
) -> Result<String, TemplateError> {
    match templates.eval_field(spec, doc)? {
        Json::String(s) if !s.trim().is_empty() => Ok(s),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(TemplateError::NotACategory(other.to_string())),
    }
}

/// With `metadata.doc_to_messages`, every doc's messages column read as a list
/// of messages (a CSV cell holds it as JSON text), so templates and requests see
/// a list; a doc whose messages are malformed is an error naming its row.
fn chat_messages_column(
    config: &TaskConfig,
    split: &str,
    docs: Vec<Doc>,
) -> Result<Vec<Doc>, TaskError> {
    let Some(column) = &config.doc_to_messages else {
        return Ok(docs);
    };
    let file = config
        .dataset
        .data_files
        .get(split)
        .and_then(|files| files.first())
        .cloned()
        .unwrap_or_default();
    docs.into_iter()
        .enumerate()
        .map(|(i, mut doc)| {
            let messages = doc
                .get(column)
                .ok_or_else(|| "missing".to_string())
                .and_then(|value| crate::from_data::message_list(value).map_err(|e| e.to_string()))
                .map_err(|message| TaskError::DataRow {
                    path: file.clone(),
                    row: i + 1,
                    message: format!("column `{column}` {message}"),
                })?;
            if let Some(object) = doc.as_object_mut() {
                object.insert(
                    column.clone(),
                    serde_json::to_value(&messages).unwrap_or(Json::Null),
                );
            }
            Ok(doc)
        })
        .collect()
}

fn requires_delimiter(a: &str, b: &str) -> bool {
    !a.ends_with(char::is_whitespace) && !b.starts_with(char::is_whitespace)
}

fn maybe_delimit(prefix: &str, text: &str, delimiter: &str) -> String {
    if prefix.is_empty() {
        return text.to_string();
    }
    if text.is_empty() {
        return prefix.to_string();
    }
    if requires_delimiter(prefix, text) {
        format!("{prefix}{delimiter}{text}")
    } else {
        format!("{prefix}{text}")
    }
}
