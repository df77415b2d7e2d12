//! A seeded store generator: [`fill`] writes models, multiple-choice tasks,
//! one finished run per model and task with its samples, bench results and a
//! user catalogue, all a function of [`SeedSpec::seed`] alone (no clock, no
//! global randomness), so two stores filled from equal specs are equal.
//!
//! Scores are realistic rather than uniform: each model has a skill, each task
//! a difficulty and each (model, category) a bent, and a sample is correct
//! with the probability they give; a run's results are aggregated from its own
//! samples, so the board's numbers agree with the samples it links to.
//! [`SeedSpec::hostile`] adds a generation task whose outputs try to run script
//! in a page ([`HOSTILE_OUTPUTS`]), for the web pages' escaping tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use podium_core::TokenCountSource;
use podium_core::{GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult};
use podium_store::{ImportedRun, ModelRecord, RunKey, SampleRecord, SampleStatus, Store};
use podium_tasks::metrics::SampleValue;
use podium_tasks::results::{MetricResult, TaskResult};
use podium_tasks::{InstanceRequest, Response, SampleScores, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    pub models: usize,
    /// Multiple-choice tasks (the hostile generation task comes on top).
    pub tasks: usize,
    pub samples_per_run: usize,
    pub seed: u64,
    /// Add [`HOSTILE_TASK`], whose outputs from [`Seeded::hostile_model`] are
    /// [`HOSTILE_OUTPUTS`] and one output of [`HUGE_OUTPUT_BYTES`], and give one
    /// model a catalogue name with markup in it.
    pub hostile: bool,
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec {
            models: 5,
            tasks: 3,
            samples_per_run: 10,
            seed: 1,
            hostile: false,
        }
    }
}

/// What [`fill`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Seeded {
    /// A user catalogue (the TOML of `--catalog FILE`) for every model.
    pub catalog_toml: String,
    /// Model specs in the order written (store ids 1, 2, …).
    pub model_specs: Vec<String>,
    /// Multiple-choice task names, then [`HOSTILE_TASK`] when hostile.
    pub task_names: Vec<String>,
    /// The categories (task tags) in use, sorted.
    pub categories: Vec<String>,
    pub n_runs: usize,
    pub n_samples: usize,
    /// Models with a bench result at [`BENCH_LOAD`].
    pub benched_models: Vec<String>,
    /// The model whose outputs on [`HOSTILE_TASK`] are hostile.
    pub hostile_model: Option<String>,
    /// The earliest and latest `finished_at` written.
    pub first_finished_at: String,
    pub last_finished_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("writing the seeded store")]
    Store(#[from] podium_store::StoreError),
    #[error("a seeded store needs at least one model, one task and one sample per run")]
    Empty,
}

/// The load level of the seeded bench results (the board's default).
pub const BENCH_LOAD: &str = "concurrency 1";

/// The generation task [`SeedSpec::hostile`] adds.
pub const HOSTILE_TASK: &str = "gen_hostile";

/// A global a hostile output sets when its script runs; a page that escapes
/// its text leaves it undefined (see `browser::Browser::script_effects`).
pub const XSS_GLOBAL: &str = "__podium_xss";

/// Outputs that run script, break out of attributes, or mislead a reader if a
/// page shows them unescaped or unisolated: the hostile model's first
/// answers on [`HOSTILE_TASK`], one per document, in this order.
pub const HOSTILE_OUTPUTS: &[&str] = &[
    "<script>alert(1)</script>",
    "<script>window.__podium_xss = 1; alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "\"><img src=x onerror=\"window.__podium_xss=2;alert(1)\">",
    "'><svg onload=\"window.__podium_xss=3\">",
    "**Bold** _and_ <b>html</b> mixed: [click](javascript:window.__podium_xss=4) \
     <a href=\"javascript:alert(1)\">link</a>\n\n| a | b |\n|---|---|\n| <svg/onload=alert(1)> | `code` |\n\n```html\n<script>alert(1)</script>\n```",
    "</textarea></pre></code></td></tr></table><iframe src=\"javascript:window.__podium_xss=5\"></iframe>",
    "'; window.__podium_xss = 6; //\" ; window.__podium_xss = 6; //",
    "The answer is \u{202E}24\u{202C}, really (a right-to-left override)",
    "4\u{200B}2\u{200D}\u{FEFF} (zero-width characters inside the number)",
    "{{7*7}} ${7*7} <style>body { display: none }</style> &lt;script&gt;alert(1)&lt;/script&gt; &amp;",
    "line one\r\nline two\u{0}with a NUL\u{7}and a bell",
];

/// The size of the one huge output on [`HOSTILE_TASK`] (1 MiB), which ends in a
/// script tag so that a page showing it whole must still escape it.
pub const HUGE_OUTPUT_BYTES: usize = 1 << 20;

const CATEGORIES: &[&str] = &["knowledge", "language", "math", "reasoning", "science"];
const PROVIDERS: &[&str] = &[
    "Acme AI",
    "Borealis Labs",
    "Cobalt Research",
    "Delta Models",
    "Ember",
    "Fjord Systems",
];
const OPEN_LICENCES: &[&str] = &["apache-2.0", "mit", "llama3.1", "gemma", "cc-by-nc-4.0"];
const CLOSED_LICENCES: &[&str] = &["proprietary", "commercial-tos"];
const WORDS: &[&str] = &[
    "river", "stone", "quickly", "mountain", "electron", "history", "garden", "theory", "silver",
    "engine", "winter", "pattern", "market", "signal", "forest", "number", "bridge", "planet",
    "colour", "machine", "harbour", "reason", "crystal", "measure", "village", "orbit", "letter",
    "current", "shadow", "window", "balance", "volume",
];
/// 2026-03-01T00:00:00Z: the seeded runs finish over the week after.
const FIRST_DAY_UNIX_S: u64 = 1_772_323_200;
const WEEK_S: u64 = 7 * 86_400;
const RANDOM_BASELINE: f64 = 0.25;
const PODIUM_VERSION: &str = "0.1.0";
const RUN_SEED: u64 = 1234;

/// Writes the seeded models, tasks, runs, samples and bench results into
/// `store`, one transaction per model (so 1,000 models × 50 tasks × 100
/// samples need 1,000 commits, not 5 million).
pub fn fill(store: &mut Store, spec: &SeedSpec) -> Result<Seeded, SeedError> {
    if spec.models == 0 || spec.tasks == 0 || spec.samples_per_run == 0 {
        return Err(SeedError::Empty);
    }
    let models: Vec<SeedModel> = (0..spec.models).map(|i| SeedModel::new(spec, i)).collect();
    let mut tasks: Vec<SeedTask> = (0..spec.tasks).map(|j| SeedTask::new(spec, j)).collect();
    if spec.hostile {
        tasks.push(SeedTask::hostile(spec));
    }
    let categories = {
        let mut all: Vec<String> = tasks.iter().flat_map(|t| t.tags.clone()).collect();
        all.sort();
        all.dedup();
        all
    };

    let mut model_ids = Vec::with_capacity(models.len());
    for model in &models {
        model_ids.push(store.upsert_model(&ModelRecord {
            spec: model.spec.clone(),
            fingerprint: model.fingerprint.clone(),
            chat_template_hash: None,
        })?);
    }
    let mut task_ids = Vec::with_capacity(tasks.len());
    for task in &tasks {
        task_ids.push(store.upsert_task(
            &task.name,
            &task.content_hash,
            &task.config.to_string(),
        )?);
    }

    let mut n_runs = 0;
    let mut n_samples = 0;
    let mut first_finished_at: Option<String> = None;
    let mut last_finished_at: Option<String> = None;
    for (model_index, model) in models.iter().enumerate() {
        let mut runs = Vec::with_capacity(tasks.len());
        for (task_index, task) in tasks.iter().enumerate() {
            let mut rng = rng_for(
                spec.seed,
                "run",
                (model_index * 1_000_003 + task_index) as u64,
            );
            let hostile = spec.hostile && task.generation && model_index == 0;
            let (samples, values) = if task.generation {
                generation_samples(task, model, hostile, &mut rng)
            } else {
                choice_samples(task, model, &mut rng)
            };
            let finished_s = FIRST_DAY_UNIX_S + rng.random_range(0..WEEK_S);
            let active_ms = samples.len() as i64 * rng.random_range(150..900);
            let started_s = finished_s.saturating_sub((active_ms / 1000) as u64 + 1);
            let finished_at = timestamp(finished_s);
            if first_finished_at.as_ref().is_none_or(|t| &finished_at < t) {
                first_finished_at = Some(finished_at.clone());
            }
            if last_finished_at.as_ref().is_none_or(|t| &finished_at > t) {
                last_finished_at = Some(finished_at.clone());
            }
            let results = task_result(task, &values);
            n_samples += samples.len();
            runs.push(ImportedRun {
                key: RunKey {
                    model_id: model_ids[model_index],
                    task_id: task_ids[task_index],
                    n_shots: 0,
                    chat_template: false,
                    seed: RUN_SEED,
                    limit: None,
                },
                manifest_json: json!({
                    "model": model.spec,
                    "task": task.name,
                    "seeded_by": "podium-testkit",
                    "seed": spec.seed,
                })
                .to_string(),
                podium_version: PODIUM_VERSION.into(),
                started_at: timestamp(started_s),
                finished_at,
                active_ms: Some(active_ms),
                results_json: serde_json::to_string(&results).unwrap_or_else(|_| "null".into()),
                samples,
            });
        }
        n_runs += runs.len();
        store.import_finished_runs(&runs)?;
    }

    let bench_time = timestamp(FIRST_DAY_UNIX_S + WEEK_S + 3600);
    let mut benched_models = Vec::new();
    for (model_index, model) in models.iter().enumerate() {
        // Every fifth model has never been benched: the board shows no speed.
        if model_index % 5 == 4 {
            continue;
        }
        let mut rng = rng_for(spec.seed, "bench", model_index as u64);
        let config =
            json!({"load": BENCH_LOAD, "concurrency": 1, "n_requests": 64, "seed": spec.seed});
        store.put_bench_result_at(
            &model.spec,
            BENCH_LOAD,
            &config.to_string(),
            &bench_summary(&mut rng).to_string(),
            &bench_time,
        )?;
        benched_models.push(model.spec.clone());
    }

    Ok(Seeded {
        catalog_toml: catalog_toml(&models),
        model_specs: models.iter().map(|m| m.spec.clone()).collect(),
        task_names: tasks.iter().map(|t| t.name.clone()).collect(),
        categories,
        n_runs,
        n_samples,
        benched_models,
        hostile_model: spec.hostile.then(|| models[0].spec.clone()),
        first_finished_at: first_finished_at.unwrap_or_default(),
        last_finished_at: last_finished_at.unwrap_or_default(),
    })
}

/// A model and its hidden abilities.
struct SeedModel {
    spec: String,
    fingerprint: String,
    local: bool,
    display_name: String,
    provider: &'static str,
    open: bool,
    licence: &'static str,
    parameters: Option<u64>,
    context_length: u64,
    /// `None`: the catalogue gives no price.
    price: Option<(f64, f64)>,
    /// Logit of its accuracy above chance on an average task.
    skill: f64,
    /// Per category, added to `skill`.
    bent: Vec<f64>,
}

impl SeedModel {
    fn new(spec: &SeedSpec, index: usize) -> SeedModel {
        let mut rng = rng_for(spec.seed, "model", index as u64);
        // One model in four is a local GGUF file, the rest endpoints.
        let local = index % 4 == 3;
        let (model_spec, fingerprint) = if local {
            let path = format!("/models/seed/model-{index:04}.Q4_K_M.gguf");
            let hash = podium_core::hex(&Sha256::digest(format!("{}:{path}", spec.seed)))[..64]
                .to_string();
            (format!("gguf:{path}"), format!("sha256:{hash}"))
        } else {
            let url = format!("http://127.0.0.1:8000/v1#model-{index:04}");
            (format!("openai-compatible:{url}"), url)
        };
        let open = index.is_multiple_of(2) || local;
        let provider = PROVIDERS[rng.random_range(0..PROVIDERS.len())];
        let licence = if open {
            OPEN_LICENCES[rng.random_range(0..OPEN_LICENCES.len())]
        } else {
            CLOSED_LICENCES[rng.random_range(0..CLOSED_LICENCES.len())]
        };
        // Parameter counts from 100M to 400B, spread on a log scale; closed
        // models mostly keep theirs secret.
        let parameters = (open || rng.random_bool(0.2))
            .then(|| (10f64.powf(rng.random_range(8.0..11.6)) / 1e6).round() as u64 * 1_000_000);
        let context_length = [4096, 8192, 32_768, 131_072][rng.random_range(0..4)];
        let price = (index % 7 != 5).then(|| {
            let input = (rng.random_range(0.02..15.0f64) * 100.0).round() / 100.0;
            let output = (input * rng.random_range(1.0..5.0f64) * 100.0).round() / 100.0;
            (input, output)
        });
        let skill = rng.random_range(-1.5..3.0);
        let bent = CATEGORIES
            .iter()
            .map(|_| rng.random_range(-0.8..0.8))
            .collect();
        let mut display_name = format!("{provider} Model {index:04}");
        if spec.hostile && index == 1 {
            display_name =
                "Evil <script>window.__podium_xss=7</script> & \"Model\" \u{202E}1000".into();
        }
        SeedModel {
            spec: model_spec,
            fingerprint,
            local,
            display_name,
            provider,
            open,
            licence,
            parameters,
            context_length,
            price,
            skill,
            bent,
        }
    }
}

/// A task's configuration and hidden difficulty.
struct SeedTask {
    name: String,
    content_hash: String,
    config: Json,
    tags: Vec<String>,
    /// Index into [`CATEGORIES`] of its first tag (`None` for the hostile task).
    category: Option<usize>,
    difficulty: f64,
    n_docs: usize,
    generation: bool,
}

impl SeedTask {
    fn new(spec: &SeedSpec, index: usize) -> SeedTask {
        let mut rng = rng_for(spec.seed, "task", index as u64);
        let name = format!("task_{index:03}");
        let category = index % CATEGORIES.len();
        let mut tags = vec![CATEGORIES[category].to_string()];
        // Every seventh task also counts in a second category.
        if index % 7 == 6 {
            tags.push(CATEGORIES[(category + 2) % CATEGORIES.len()].to_string());
        }
        // Half the tasks rank by length-normalized accuracy, as ARC and HellaSwag do.
        let board_metric = if index.is_multiple_of(2) {
            "acc,none"
        } else {
            "acc_norm,none"
        };
        let config = json!({
            "task": name,
            "tag": tags,
            "dataset_path": format!("seed/{name}"),
            "test_split": "test",
            "output_type": "multiple_choice",
            "doc_to_text": "{{question}}\nAnswer:",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{gold}}",
            "num_fewshot": 0,
            "metric_list": [
                {"metric": "acc", "aggregation": "mean", "higher_is_better": true},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": true},
            ],
            "metadata": {"version": 1.0, "board_metric": board_metric},
        });
        SeedTask {
            content_hash: content_hash(spec.seed, &config),
            name,
            config,
            tags,
            category: Some(category),
            difficulty: rng.random_range(-1.0..2.0),
            n_docs: spec.samples_per_run,
            generation: false,
        }
    }

    fn hostile(spec: &SeedSpec) -> SeedTask {
        let config = json!({
            "task": HOSTILE_TASK,
            "tag": ["generation"],
            "dataset_path": format!("seed/{HOSTILE_TASK}"),
            "test_split": "test",
            "output_type": "generate_until",
            "doc_to_text": "Question: {{question}}\nAnswer:",
            "doc_to_target": "{{answer}}",
            "generation_kwargs": {"until": ["\n\n"], "max_gen_toks": 256},
            "filter_list": [{"name": "strict-match", "filter": [{"function": "regex"}, {"function": "take_first"}]}],
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": true}],
            "metadata": {"version": 1.0, "board_metric": "exact_match,strict-match"},
        });
        SeedTask {
            name: HOSTILE_TASK.into(),
            content_hash: content_hash(spec.seed, &config),
            config,
            tags: vec!["generation".into()],
            category: None,
            difficulty: 0.0,
            n_docs: spec.samples_per_run.max(HOSTILE_OUTPUTS.len() + 1),
            generation: true,
        }
    }

    fn metric_keys(&self) -> &'static [&'static str] {
        if self.generation {
            &["exact_match,strict-match"]
        } else {
            &["acc,none", "acc_norm,none"]
        }
    }

    fn random_baseline(&self) -> f64 {
        if self.generation {
            0.0
        } else {
            RANDOM_BASELINE
        }
    }
}

/// Probability that `model` answers a document of `task` correctly.
fn p_correct(model: &SeedModel, task: &SeedTask) -> f64 {
    let bent = task.category.map_or(0.0, |c| model.bent[c]);
    let above_chance = 1.0 / (1.0 + (-(model.skill + bent - task.difficulty)).exp());
    let baseline = task.random_baseline();
    baseline + (1.0 - baseline) * above_chance
}

/// A run's samples, and per metric key of [`SeedTask::metric_keys`] its values.
type RunSamples = (Vec<SampleRecord>, Vec<Vec<f64>>);

fn choice_samples(task: &SeedTask, model: &SeedModel, rng: &mut ChaCha8Rng) -> RunSamples {
    let p = p_correct(model, task);
    let mut values = vec![
        Vec::with_capacity(task.n_docs),
        Vec::with_capacity(task.n_docs),
    ];
    let samples = (0..task.n_docs)
        .map(|doc_id| {
            // The document's text depends on the task alone, as real data would.
            let mut doc_rng = rng_for(hash_u64(&task.content_hash), "doc", doc_id as u64);
            let question = sentence(&mut doc_rng, 12, 28);
            let prompt = format!("Question {doc_id}: {question}?\nAnswer:");
            let choices: Vec<String> = (0..4).map(|_| sentence(&mut doc_rng, 1, 5)).collect();
            let gold = doc_rng.random_range(0..4);
            let continuations: Vec<String> = choices.iter().map(|c| format!(" {c}")).collect();

            // Log-probs whose best choice is the gold one with probability p.
            let mut logprobs: Vec<f64> = (0..4).map(|_| -rng.random_range(1.0..25.0f64)).collect();
            let best = argmax(&logprobs);
            let correct = rng.random_bool(p);
            let winner = if correct {
                gold
            } else {
                (gold + rng.random_range(1..4)) % 4
            };
            logprobs.swap(best, winner);
            let normalized: Vec<f64> = logprobs
                .iter()
                .zip(&continuations)
                .map(|(lp, c)| lp / c.len() as f64)
                .collect();
            let acc_norm = argmax(&normalized) == gold;
            values[0].push(f64::from(u8::from(correct)));
            values[1].push(f64::from(u8::from(acc_norm)));
            let results = logprobs
                .iter()
                .zip(&continuations)
                .enumerate()
                .map(|(i, (&logprob, c))| LoglikelihoodResult {
                    logprob: round4(logprob),
                    is_greedy: i == winner && c.len() < 12,
                    n_tokens: c.split(' ').count(),
                })
                .collect();
            let n_input_tokens = (prompt.len() / 4
                + continuations.iter().map(|c| c.len() / 4 + 1).sum::<usize>())
                as u64;
            let scores = SampleScores {
                metrics: BTreeMap::from([
                    (
                        "acc,none".to_string(),
                        SampleValue::Scalar(f64::from(u8::from(correct))),
                    ),
                    (
                        "acc_norm,none".to_string(),
                        SampleValue::Scalar(f64::from(u8::from(acc_norm))),
                    ),
                ]),
                ..SampleScores::default()
            };
            SampleRecord {
                doc_id: doc_id as u64,
                prompt_hash: podium_core::hex(&Sha256::digest(&prompt))[..16].to_string(),
                requests_json: json!({
                    "prompt": prompt,
                    "request": InstanceRequest::Loglikelihood(LoglikelihoodRequest {
                        context: prompt.clone(),
                        continuations,
                    }),
                    "target": Target::Choices { choices, golds: vec![gold], mc2_labels: None },
                })
                .to_string(),
                responses_json: serde_json::to_string(&Response::Loglikelihood { results })
                    .unwrap_or_else(|_| "null".into()),
                metrics_json: serde_json::to_string(&scores).unwrap_or_else(|_| "null".into()),
                n_input_tokens: Some(n_input_tokens),
                n_output_tokens: Some(0),
                timing_json: "null".into(),
                status: SampleStatus::Ok,
                error: None,
            }
        })
        .collect();
    (samples, values)
}

fn generation_samples(
    task: &SeedTask,
    model: &SeedModel,
    hostile: bool,
    rng: &mut ChaCha8Rng,
) -> RunSamples {
    let p = p_correct(model, task);
    let mut values = vec![Vec::with_capacity(task.n_docs)];
    let samples = (0..task.n_docs)
        .map(|doc_id| {
            let a = 6 + doc_id % 7;
            let b = 7;
            let answer = (a * b).to_string();
            let prompt = format!("Question: What is {a} times {b}?\nAnswer:");
            let text = if hostile && doc_id < HOSTILE_OUTPUTS.len() {
                HOSTILE_OUTPUTS[doc_id].to_string()
            } else if hostile && doc_id == HOSTILE_OUTPUTS.len() {
                huge_output()
            } else if rng.random_bool(p) {
                format!(" {answer}")
            } else {
                format!(" {}", a * b + rng.random_range(1..10))
            };
            let extracted = text.trim().to_string();
            let correct = extracted == answer;
            values[0].push(f64::from(u8::from(correct)));
            let filtered_answer = if extracted.len() > 4096 {
                "[invalid]".to_string()
            } else {
                extracted
            };
            let n_output_tokens = text.len() / 4 + 1;
            let n_input_tokens = prompt.len() / 4 + 1;
            let response = Response::Generate {
                results: vec![GenerateResult {
                    text,
                    reasoning: None,
                    n_input_tokens: Some(n_input_tokens),
                    n_output_tokens: Some(n_output_tokens),
                    token_count_source: TokenCountSource::Engine,
                    timing: None,
                }],
            };
            let scores = SampleScores {
                metrics: BTreeMap::from([(
                    "exact_match,strict-match".to_string(),
                    SampleValue::Scalar(f64::from(u8::from(correct))),
                )]),
                filtered: BTreeMap::from([("strict-match".to_string(), vec![filtered_answer])]),
                ..SampleScores::default()
            };
            SampleRecord {
                doc_id: doc_id as u64,
                prompt_hash: podium_core::hex(&Sha256::digest(&prompt))[..16].to_string(),
                requests_json: json!({
                    "prompt": prompt,
                    "request": InstanceRequest::Generate {
                        requests: vec![GenerateRequest {
                            messages: None,
                            context: prompt.clone(),
                            until: vec!["\n\n".into()],
                            max_tokens: 256,
                            temperature: 0.0,
                            top_p: 1.0,
                            do_sample: false,
                            seed: RUN_SEED,
                        }],
                    },
                    "target": Target::Texts {
                        golds: vec![answer],
                        fields: BTreeMap::new(),
                    },
                })
                .to_string(),
                responses_json: serde_json::to_string(&response).unwrap_or_else(|_| "null".into()),
                metrics_json: serde_json::to_string(&scores).unwrap_or_else(|_| "null".into()),
                n_input_tokens: Some(n_input_tokens as u64),
                n_output_tokens: Some(n_output_tokens as u64),
                timing_json: "[null]".into(),
                status: SampleStatus::Ok,
                error: None,
            }
        })
        .collect();
    (samples, values)
}

/// 1 MiB of words ending in a script tag.
fn huge_output() -> String {
    let tail = "<script>window.__podium_xss = 8; alert('end of the 1 MiB output')</script>";
    let mut text = String::with_capacity(HUGE_OUTPUT_BYTES);
    let mut i = 0;
    while text.len() + tail.len() + 16 < HUGE_OUTPUT_BYTES {
        text.push_str(WORDS[i % WORDS.len()]);
        text.push(if i % 16 == 15 { '\n' } else { ' ' });
        i += 1;
    }
    while text.len() + tail.len() < HUGE_OUTPUT_BYTES {
        text.push('.');
    }
    text.push_str(tail);
    text
}

/// The run's results aggregated from its samples' values, as podium-eval would.
fn task_result(task: &SeedTask, values: &[Vec<f64>]) -> TaskResult {
    let metrics = task
        .metric_keys()
        .iter()
        .zip(values)
        .map(|(&key, values)| {
            let value = podium_stats::mean(values).unwrap_or(f64::NAN);
            MetricResult {
                key: key.to_string(),
                value,
                stderr: podium_stats::stderr_of_mean(values).ok(),
                higher_is_better: true,
                n: values.len(),
                interval: podium_stats::wilson_interval(value, values.len()),
                unit_range: true,
                proportion: true,
            }
        })
        .collect();
    TaskResult {
        name: task.name.clone(),
        alias: None,
        metrics,
        n_samples: values.first().map_or(0, Vec::len),
        n_original: task.n_docs,
        n_shot: 0,
        random_baseline: task.random_baseline(),
        version: json!(1.0),
        config: task.config.clone(),
        content_hash: task.content_hash.clone(),
        judges: Vec::new(),
        categories: Vec::new(),
    }
}

/// A `podium bench` summary with the percentiles the board reads.
fn bench_summary(rng: &mut ChaCha8Rng) -> Json {
    let ttft_p50 = rng.random_range(0.05..2.5f64);
    let speed_p50 = rng.random_range(8.0..250.0f64);
    let tpot_p50 = 1.0 / speed_p50;
    // Spread around the median: (percentile, factor for a time; a speed divides).
    let spread = [
        ("p5", 0.6),
        ("p25", 0.85),
        ("p50", 1.0),
        ("p75", 1.2),
        ("p90", 1.5),
        ("p95", 1.8),
        ("p99", 2.6),
    ];
    let times = |median: f64| {
        Json::Object(
            spread
                .iter()
                .map(|(k, f)| (k.to_string(), json!(round4(median * f))))
                .collect(),
        )
    };
    let speeds = Json::Object(
        spread
            .iter()
            .rev()
            .zip(spread.iter())
            .map(|((_, f), (k, _))| (k.to_string(), json!(round4(speed_p50 / f))))
            .collect(),
    );
    json!({
        "n_requests": 64,
        "n_failed": 0,
        "ttft_s": times(ttft_p50),
        "output_speed": speeds,
        "tpot_s": times(tpot_p50),
    })
}

fn catalog_toml(models: &[SeedModel]) -> String {
    let mut out = String::from("# Seeded by podium-testkit: one entry per seeded model.\n");
    for model in models {
        let _ = writeln!(out, "\n[[model]]");
        let _ = writeln!(out, "spec = {}", toml_string(&model.spec));
        let _ = writeln!(out, "display_name = {}", toml_string(&model.display_name));
        let _ = writeln!(out, "provider = {}", toml_string(model.provider));
        let _ = writeln!(
            out,
            "access = \"{}\"",
            if model.open { "open" } else { "closed" }
        );
        let _ = writeln!(out, "licence = {}", toml_string(model.licence));
        if let Some(parameters) = model.parameters {
            let _ = writeln!(out, "parameters = {parameters}");
        }
        let _ = writeln!(out, "context_length = {}", model.context_length);
        // Local files are priced by machine hours, not tokens.
        if let (Some((input, output)), false) = (model.price, model.local) {
            let _ = writeln!(
                out,
                "price = {{ input_per_mtok = {input:?}, output_per_mtok = {output:?} }}"
            );
        }
    }
    out
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A generator for one purpose and index, independent of every other's draws,
/// so changing the number of samples does not change the models.
fn rng_for(seed: u64, purpose: &str, index: u64) -> ChaCha8Rng {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(purpose.as_bytes())
        .chain_update(index.to_le_bytes())
        .finalize();
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    ChaCha8Rng::from_seed(key)
}

fn hash_u64(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

fn content_hash(seed: u64, config: &Json) -> String {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(config.to_string().as_bytes())
        .finalize();
    format!("sha256:{}", podium_core::hex(&digest))
}

fn sentence(rng: &mut ChaCha8Rng, min_words: usize, max_words: usize) -> String {
    let n = rng.random_range(min_words..=max_words);
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    out
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn timestamp(unix_s: u64) -> String {
    podium_store::rfc3339_utc(UNIX_EPOCH + Duration::from_secs(unix_s))
}
