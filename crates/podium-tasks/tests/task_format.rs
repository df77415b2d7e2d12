//! lm-evaluation-harness task YAMLs written for local files (not the bundled
//! tasks) load through the `Registry`, build exactly lm-eval's prompts and
//! requests, score hand-made responses to hand-computed values, aggregate into
//! lm-eval's results JSON, and fail on bad input with messages that name the
//! file, line (or row) and key at fault.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use podium_core::{GenerateRequest, GenerateResult, LoglikelihoodResult, RollingResult};
use podium_tasks::config::AggregateSpec;
use podium_tasks::metrics::SampleValue;
use podium_tasks::results::{self, GroupResult, MetricResult, TaskResult};
use podium_tasks::{
    BuildOptions, Instance, InstanceRequest, Registry, Response, SampleScores, Selection, Target,
    Task,
};

// ---------------------------------------------------------------------------
// The task folder: lm-eval-style YAMLs and their local data.
// ---------------------------------------------------------------------------

const BASE_YAML: &str = r#"# Shared settings, `include`d by the capitals tasks; like lm-eval's _default_template_yaml, no .yaml suffix so discovery skips it.
dataset_path: json
dataset_kwargs:
  data_files:
    train: data/capitals_train.jsonl
    test: data/capitals_test.jsonl
training_split: train
test_split: test
fewshot_split: train
fewshot_config:
  sampler: first_n
output_type: multiple_choice
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: "{{label}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"#;

const MC_YAML: &str = r#"include: _capitals_template_yaml
task: capitals_mc
tag:
  - geo
description: "The following are questions about capitals.\n\n"
num_fewshot: 2
target_delimiter: " "
fewshot_delimiter: "\n\n"
"#;

const MC_ALT_YAML: &str = r#"include: _capitals_template_yaml
task: capitals_mc_alt
task_alias: capitals (alt delimiters)
tag: geo
num_fewshot: 1
doc_to_choice: choices
doc_to_target: "{{choices[label]}}"
target_delimiter: "="
fewshot_delimiter: "\n---\n"
metadata:
  version: 2.5
"#;

const CSV_YAML: &str = r#"task: capitals_csv
dataset_path: csv
dataset_kwargs:
  data_files:
    test: data/capitals.csv
test_split: test
output_type: multiple_choice
doc_to_text: "{{question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nAnswer:"
doc_to_choice: ["A", "B", "C"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"#;

const GROUP_YAML: &str = r#"group: capitals
task:
  - capitals_mc
  - capitals_csv
aggregate_metric_list:
  - metric: acc
    aggregation: mean
    weight_by_size: true
metadata:
  version: 1
"#;

const GEN_YAML: &str = r#"task: arith_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/arith_test.jsonl
    shots: data/arith_shots.jsonl
test_split: test
fewshot_split: shots
fewshot_config:
  sampler: first_n
num_fewshot: 2
output_type: generate_until
doc_to_text: "Q: {{question}}\nA:"
doc_to_target: "{{answer}}"
target_delimiter: " "
fewshot_delimiter: "\n\n"
generation_kwargs:
  until:
    - "\n\n"
    - "Q:"
  max_gen_toks: 32
  do_sample: false
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "The answer is (\\w+)\\."
      - function: take_first
  - name: raw
    filter:
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
"#;

// lambada_openai's templates: the last word is the continuation, with its space.
const LL_YAML: &str = r#"task: last_word
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/last_word.jsonl
test_split: test
output_type: loglikelihood
doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}"
doc_to_target: "{{' '+text.split(' ')[-1]}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
"#;

// wikitext-style: the whole page is scored; default rolling metrics.
const ROLLING_YAML: &str = r#"task: pages_ppl
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: data/pages.parquet
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{page}}"
"#;

const CAPITALS_TRAIN: &str = r#"{"question": "What is the capital of France?", "choices": ["Paris", "Lyon", "Nice"], "label": 0}
{"question": "What is the capital of Italy?", "choices": ["Milan", "Rome", "Turin"], "label": 1}
{"question": "What is the capital of Japan?", "choices": ["Osaka", "Kyoto", "Tokyo"], "label": 2}
"#;

const CAPITALS_TEST: &str = r#"{"question": "What is the capital of Spain?", "choices": ["Madrid", "Barcelona", "Seville"], "label": 0}
{"question": "What is the capital of Germany?", "choices": ["Bonn", "Berlin", "Hamburg"], "label": 1}

{"question": "What is the capital of Canada?", "choices": ["Toronto", "Ottawa", "Vancouver"], "label": 1}
"#;

const CAPITALS_CSV: &str = "question,A,B,C,answer\n\
\" What is the capital of Peru? \",Lima,Cusco,Arequipa,A\n\
\"Which city, on the Nile,\nis Egypt's capital?\",Alexandria,Cairo,Luxor,B\n";

const ARITH_SHOTS: &str = r#"{"question": "What is 2 + 2?", "answer": "four"}
{"question": "What is 1 + 2?", "answer": "three"}
{"question": "What is 9 + 9?", "answer": "eighteen"}
"#;

const ARITH_TEST: &str = r#"{"question": "What is 3 + 4?", "answer": "seven"}
{"question": "What is 5 + 1?", "answer": "six"}
{"question": "What is 0 + 0?", "answer": "zero"}
"#;

const LAST_WORD: &str = r#"{"text": "The cat sat on the mat"}
{"text": "Rain falls in spring"}
"#;

const PAGES: [&str; 2] = ["hello world", "a b c"];

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A parquet file with one UTF-8 column `page`.
fn write_pages_parquet(path: &Path, pages: &[&str]) {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema =
        Arc::new(parse_message_type("message doc { REQUIRED BYTE_ARRAY page (UTF8); }").unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    let values: Vec<ByteArray> = pages.iter().map(|p| ByteArray::from(*p)).collect();
    column
        .typed::<ByteArrayType>()
        .write_batch(&values, None, None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

fn task_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "_capitals_template_yaml", BASE_YAML);
    write(d, "capitals_mc.yaml", MC_YAML);
    write(d, "capitals_mc_alt.yaml", MC_ALT_YAML);
    write(d, "capitals_csv.yaml", CSV_YAML);
    write(d, "_capitals.yaml", GROUP_YAML);
    write(d, "arith/arith_gen.yaml", GEN_YAML);
    write(d, "last_word.yml", LL_YAML);
    write(d, "pages_ppl.yaml", ROLLING_YAML);
    write(d, "data/capitals_train.jsonl", CAPITALS_TRAIN);
    write(d, "data/capitals_test.jsonl", CAPITALS_TEST);
    write(d, "data/capitals.csv", CAPITALS_CSV);
    write(d, "arith/data/arith_shots.jsonl", ARITH_SHOTS);
    write(d, "arith/data/arith_test.jsonl", ARITH_TEST);
    write(d, "data/last_word.jsonl", LAST_WORD);
    write_pages_parquet(&d.join("data/pages.parquet"), &PAGES);
    dir
}

fn discover(dir: &Path) -> Registry {
    let registry = Registry::discover(&[dir.to_path_buf()]);
    assert_eq!(registry.warnings, Vec::<String>::new());
    registry
}

fn load(registry: &Registry, name: &str) -> Task {
    let config = registry
        .task_config(name)
        .unwrap_or_else(|| panic!("task {name} not indexed"))
        .clone();
    Task::load(config).unwrap_or_else(|err| panic!("task {name}: {err}"))
}

fn build(task: &Task) -> Vec<Instance> {
    task.build_instances(&BuildOptions::default(), None)
        .unwrap_or_else(|err| panic!("task {}: {err}", task.name()))
}

fn ll(logprob: f64, is_greedy: bool) -> LoglikelihoodResult {
    LoglikelihoodResult {
        logprob,
        is_greedy,
        n_tokens: 1,
    }
}

fn choices_response(logprobs: &[f64]) -> Response {
    Response::Loglikelihood {
        results: logprobs.iter().map(|&lp| ll(lp, false)).collect(),
    }
}

fn generated(text: &str) -> Response {
    Response::Generate {
        results: vec![GenerateResult {
            text: text.to_string(),
            reasoning: None,
            n_input_tokens: None,
            n_output_tokens: None,
            token_count_source: podium_core::TokenCountSource::Engine,
            timing: None,
        }],
    }
}

fn assert_close(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() < 1e-9,
        "{what}: got {got}, expected {expected}"
    );
}

/// Check the scalar metrics of one doc: (`metric,filter`, value) pairs.
fn check_scores(scores: &SampleScores, expected: &[(&str, f64)]) {
    let got: Vec<(String, f64)> = scores
        .metrics
        .iter()
        .map(|(k, v)| (k.clone(), v.scalar()))
        .collect();
    let mut expected: Vec<(String, f64)> =
        expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, expected);
}

fn score_all(task: &Task, instances: &[Instance], responses: &[Response]) -> Vec<SampleScores> {
    assert_eq!(instances.len(), responses.len());
    instances
        .iter()
        .zip(responses)
        .map(|(i, r)| task.score(i, r).unwrap())
        .collect()
}

fn aggregate(task: &Task, scores: &[SampleScores], n_shot: usize) -> TaskResult {
    let samples: Vec<BTreeMap<String, SampleValue>> =
        scores.iter().map(|s| s.metrics.clone()).collect();
    results::aggregate_task(task, &samples, n_shot, 0.0, 100, 1234)
}

/// (key, value, stderr) of every metric of a result.
fn check_metrics(result: &TaskResult, expected: &[(&str, f64, Option<f64>)]) {
    let keys: Vec<&str> = result.metrics.iter().map(|m| m.key.as_str()).collect();
    let expected_keys: Vec<&str> = expected.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(keys, expected_keys, "task {}", result.name);
    for (metric, (key, value, stderr)) in result.metrics.iter().zip(expected) {
        assert_close(metric.value, *value, key);
        match (metric.stderr, stderr) {
            (Some(got), Some(want)) => assert_close(got, *want, &format!("{key} stderr")),
            (got, want) => assert_eq!(got, *want, "{key} stderr"),
        }
    }
}

// ---------------------------------------------------------------------------
// Loading, prompts and requests.
// ---------------------------------------------------------------------------

#[test]
fn registry_indexes_tasks_tags_and_groups() {
    let dir = task_folder();
    let mut registry = discover(dir.path());
    let listing: Vec<(String, &str)> = registry
        .listing()
        .into_iter()
        .map(|row| (row.name, row.kind))
        .collect();
    assert_eq!(
        listing,
        [
            ("arith_gen", "task"),
            ("capitals", "group"),
            ("capitals_csv", "task"),
            ("capitals_mc", "task"),
            ("capitals_mc_alt", "task"),
            ("geo", "tag"),
            ("last_word", "task"),
            ("pages_ppl", "task"),
        ]
        .map(|(n, k)| (n.to_string(), k))
    );
    assert_eq!(
        registry.tag_members("geo").unwrap(),
        ["capitals_mc", "capitals_mc_alt"]
    );

    // The group keeps its members and aggregation; a tag selects without aggregating.
    let selections = registry
        .resolve(&["capitals".to_string(), " geo ".to_string(), String::new()])
        .unwrap();
    assert_eq!(selections.len(), 2);
    match &selections[0] {
        Selection::Group {
            name,
            members,
            aggregate,
        } => {
            assert_eq!(name, "capitals");
            assert_eq!(members.len(), 2);
            assert_eq!(
                aggregate,
                &[AggregateSpec {
                    metric: "acc".into(),
                    weight_by_size: true,
                    filter_list: vec!["none".into()],
                }]
            );
        }
        other => panic!("expected a group, got {other:?}"),
    }
    let mut names = Vec::new();
    for selection in &selections {
        selection.task_names(&mut names);
    }
    assert_eq!(names, ["capitals_mc", "capitals_csv", "capitals_mc_alt"]);

    // A YAML path works too, and `include` merged the base file's keys.
    let by_path = dir.path().join("capitals_mc.yaml");
    let selections = registry.resolve(&[by_path.display().to_string()]).unwrap();
    assert!(matches!(&selections[0], Selection::Task(n) if n == "capitals_mc"));
    let config = registry.task_config("capitals_mc").unwrap();
    assert_eq!(config.num_fewshot, 2);
    assert_eq!(config.tags, ["geo"]);
    assert_eq!(config.version, json!(1.0));
    assert_eq!(config.dataset.data_files["train"].len(), 1);
    assert_eq!(
        registry.task_config("capitals_mc_alt").unwrap().version,
        json!(2.5),
        "the including file's keys win"
    );
}

#[test]
fn multiple_choice_two_shot_prompts_are_exact() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "capitals_mc");
    assert_eq!(task.n_docs(), 3, "the blank line in the JSONL is skipped");
    assert_eq!(task.eval_split(), "test");
    let instances = build(&task);
    let shots = "The following are questions about capitals.\n\n\
                 Question: What is the capital of France?\nAnswer: Paris\n\n\
                 Question: What is the capital of Italy?\nAnswer: Rome\n\n";
    let expected = [
        ("Spain", ["Madrid", "Barcelona", "Seville"], 0),
        ("Germany", ["Bonn", "Berlin", "Hamburg"], 1),
        ("Canada", ["Toronto", "Ottawa", "Vancouver"], 1),
    ];
    assert_eq!(instances.len(), expected.len());
    for (doc_id, (instance, (country, choices, gold))) in instances.iter().zip(expected).enumerate()
    {
        let prompt = format!("{shots}Question: What is the capital of {country}?\nAnswer:");
        assert_eq!(instance.doc_id, doc_id);
        assert_eq!(instance.prompt, prompt);
        assert_eq!(
            instance.request,
            InstanceRequest::Loglikelihood(podium_core::LoglikelihoodRequest {
                context: prompt.clone(),
                continuations: choices.iter().map(|c| format!(" {c}")).collect(),
            })
        );
        assert_eq!(
            instance.target,
            Target::Choices {
                choices: choices.iter().map(|c| c.to_string()).collect(),
                golds: vec![gold],
                mc2_labels: None,
            }
        );
        assert_eq!(instance.prompt_hash.len(), 64);
    }

    // --shots overrides num_fewshot; --limit takes the first docs.
    let zero_shot = task
        .build_instances(
            &BuildOptions {
                limit: Some(1),
                num_fewshot: Some(0),
                seed: 7,
            },
            None,
        )
        .unwrap();
    assert_eq!(zero_shot.len(), 1);
    assert_eq!(
        zero_shot[0].prompt,
        "The following are questions about capitals.\n\n\
         Question: What is the capital of Spain?\nAnswer:"
    );
}

#[test]
fn target_and_fewshot_delimiters_are_honoured() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "capitals_mc_alt");
    let instances = build(&task);
    assert_eq!(
        instances[1].prompt,
        "Question: What is the capital of France?\nAnswer:=Paris\n---\n\
         Question: What is the capital of Germany?\nAnswer:"
    );
    match &instances[1].request {
        InstanceRequest::Loglikelihood(request) => {
            assert_eq!(request.continuations, ["=Bonn", "=Berlin", "=Hamburg"])
        }
        other => panic!("expected loglikelihood, got {other:?}"),
    }
    // A text target resolves to its position among the choices.
    assert!(matches!(&instances[1].target, Target::Choices { golds, .. } if golds == &[1]));
}

#[test]
fn csv_with_header_and_letter_targets() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "capitals_csv");
    let instances = build(&task);
    let prompts: Vec<&str> = instances.iter().map(|i| i.prompt.as_str()).collect();
    assert_eq!(
        prompts,
        [
            "What is the capital of Peru?\nA. Lima\nB. Cusco\nC. Arequipa\nAnswer:",
            "Which city, on the Nile,\nis Egypt's capital?\nA. Alexandria\nB. Cairo\nC. Luxor\nAnswer:",
        ]
    );
    let golds: Vec<Vec<usize>> = instances
        .iter()
        .map(|i| match &i.target {
            Target::Choices { golds, .. } => golds.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(golds, [[0], [1]]);
    assert!(matches!(&instances[0].request,
        InstanceRequest::Loglikelihood(r) if r.continuations == [" A", " B", " C"]));
}

#[test]
fn generate_until_requests_follow_generation_kwargs() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "arith_gen");
    let instances = task
        .build_instances(
            &BuildOptions {
                limit: None,
                num_fewshot: None,
                seed: 42,
            },
            None,
        )
        .unwrap();
    let prompt = "Q: What is 2 + 2?\nA: four\n\nQ: What is 1 + 2?\nA: three\n\n\
                  Q: What is 3 + 4?\nA:";
    assert_eq!(instances[0].prompt, prompt);
    assert_eq!(
        instances[0].request,
        InstanceRequest::Generate {
            requests: vec![GenerateRequest {
                messages: None,
                context: prompt.to_string(),
                until: vec!["\n\n".into(), "Q:".into()],
                max_tokens: 32,
                temperature: 0.0,
                top_p: 1.0,
                do_sample: false,
                seed: 42,
            }]
        }
    );
    assert_eq!(
        instances[2].target,
        Target::Texts {
            golds: vec!["zero".into()],
            fields: Default::default()
        }
    );
}

#[test]
fn loglikelihood_and_rolling_requests() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "last_word");
    let instances = build(&task);
    assert_eq!(
        instances[0].request,
        InstanceRequest::Loglikelihood(podium_core::LoglikelihoodRequest {
            context: "The cat sat on the".into(),
            continuations: vec![" mat".into()],
        })
    );
    assert_eq!(instances[1].prompt, "Rain falls in");

    let task = load(&registry, "pages_ppl");
    let instances = build(&task);
    let requests: Vec<&InstanceRequest> = instances.iter().map(|i| &i.request).collect();
    assert_eq!(
        requests,
        [
            &InstanceRequest::Rolling(podium_core::RollingRequest {
                text: "hello world".into()
            }),
            &InstanceRequest::Rolling(podium_core::RollingRequest {
                text: "a b c".into()
            }),
        ]
    );
    assert_eq!(
        instances[0].target,
        Target::Rolling {
            n_words: 2,
            n_bytes: 11
        }
    );
}

// ---------------------------------------------------------------------------
// Scoring and aggregation, against values computed by hand.
// ---------------------------------------------------------------------------

#[test]
fn multiple_choice_acc_and_acc_norm() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "capitals_mc");
    let instances = build(&task);
    // Doc 0 gold Madrid(6): acc picks Madrid (-6.0); acc_norm -1.0, -0.8, -1.2 picks Barcelona.
    // Doc 1 gold Berlin(6): acc picks Bonn (-4.0); acc_norm -1.0, -0.7, -1.29 picks Berlin.
    // Doc 2 gold Ottawa: both pick Ottawa.
    let responses = [
        choices_response(&[-6.0, -7.2, -8.4]),
        choices_response(&[-4.0, -4.2, -9.0]),
        choices_response(&[-9.0, -3.0, -9.0]),
    ];
    let scores = score_all(&task, &instances, &responses);
    check_scores(&scores[0], &[("acc,none", 1.0), ("acc_norm,none", 0.0)]);
    check_scores(&scores[1], &[("acc,none", 0.0), ("acc_norm,none", 1.0)]);
    check_scores(&scores[2], &[("acc,none", 1.0), ("acc_norm,none", 1.0)]);
    // Mean 2/3; sample std sqrt(1/3); stderr sqrt(1/3)/sqrt(3) = 1/3.
    let result = aggregate(&task, &scores, 2);
    check_metrics(
        &result,
        &[
            ("acc,none", 2.0 / 3.0, Some(1.0 / 3.0)),
            ("acc_norm,none", 2.0 / 3.0, Some(1.0 / 3.0)),
        ],
    );
    assert_eq!(
        (result.n_samples, result.n_original, result.n_shot),
        (3, 3, 2)
    );
    // 1/3 chance on three choices.
    assert_close(task.random_baseline(&instances), 1.0 / 3.0, "baseline");

    // A response that does not fit the request is an error, not a score.
    let err = task
        .score(&instances[0], &choices_response(&[-1.0]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "task `capitals_mc`: doc 0: the response does not fit the request"
    );
}

#[test]
fn exact_match_after_regex_and_take_first_filters() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "arith_gen");
    let instances = build(&task);
    let responses = [
        // strict: "Seven" = "seven" ignoring case; raw: the whole text is not.
        generated(" The answer is Seven."),
        // strict: no match gives "[invalid]"; raw: "six".
        generated("six"),
        // strict: "[invalid]"; raw: "ZERO" = "zero" ignoring case.
        generated("ZERO"),
    ];
    let scores = score_all(&task, &instances, &responses);
    check_scores(
        &scores[0],
        &[("exact_match,strict-match", 1.0), ("exact_match,raw", 0.0)],
    );
    check_scores(
        &scores[1],
        &[("exact_match,strict-match", 0.0), ("exact_match,raw", 1.0)],
    );
    check_scores(
        &scores[2],
        &[("exact_match,strict-match", 0.0), ("exact_match,raw", 1.0)],
    );
    assert_eq!(scores[0].filtered["strict-match"], ["Seven"]);
    assert_eq!(scores[1].filtered["strict-match"], ["[invalid]"]);
    assert_eq!(scores[0].filtered["raw"], [" The answer is Seven."]);

    // strict [1,0,0]: mean 1/3, stderr 1/3; raw [0,1,1]: mean 2/3, stderr 1/3.
    let result = aggregate(&task, &scores, 2);
    check_metrics(
        &result,
        &[
            ("exact_match,strict-match", 1.0 / 3.0, Some(1.0 / 3.0)),
            ("exact_match,raw", 2.0 / 3.0, Some(1.0 / 3.0)),
        ],
    );
    assert_close(task.random_baseline(&instances), 0.0, "generation baseline");
}

#[test]
fn loglikelihood_perplexity_and_greedy_acc() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "last_word");
    let instances = build(&task);
    let responses = [
        Response::Loglikelihood {
            results: vec![ll(-2.0, true)],
        },
        Response::Loglikelihood {
            results: vec![ll(-4.0, false)],
        },
    ];
    let scores = score_all(&task, &instances, &responses);
    check_scores(&scores[0], &[("perplexity,none", -2.0), ("acc,none", 1.0)]);
    let result = aggregate(&task, &scores, 0);
    // perplexity = exp(-mean(ll)) = exp(3); acc = 1/2 with stderr 1/2.
    assert_eq!(result.metrics[0].key, "perplexity,none");
    assert_close(result.metrics[0].value, 3f64.exp(), "perplexity");
    assert!(!result.metrics[0].higher_is_better);
    let se = result.metrics[0].stderr.expect("bootstrap stderr");
    assert!(se.is_finite() && se >= 0.0, "{se}");
    check_metrics(
        &TaskResult {
            metrics: result.metrics[1..].to_vec(),
            ..result.clone()
        },
        &[("acc,none", 0.5, Some(0.5))],
    );
}

#[test]
fn rolling_word_and_byte_perplexities() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "pages_ppl");
    let instances = build(&task);
    let rolling = |logprob: f64| Response::Rolling {
        result: RollingResult {
            logprob,
            n_tokens: 3,
        },
    };
    let scores = score_all(&task, &instances, &[rolling(-6.0), rolling(-4.0)]);
    assert_eq!(
        scores[0].metrics["word_perplexity,none"],
        SampleValue::Weighted(-6.0, 2.0)
    );
    assert_eq!(
        scores[1].metrics["byte_perplexity,none"],
        SampleValue::Weighted(-4.0, 5.0)
    );
    let result = aggregate(&task, &scores, 0);
    let values: Vec<(&str, f64)> = result
        .metrics
        .iter()
        .map(|m| (m.key.as_str(), m.value))
        .collect();
    // Σll = -10 over 5 words and 16 bytes.
    let expected = [
        ("word_perplexity,none", 2f64.exp()),
        ("byte_perplexity,none", (10.0f64 / 16.0).exp()),
        ("bits_per_byte,none", 10.0 / 16.0 / std::f64::consts::LN_2),
    ];
    assert_eq!(values.len(), expected.len());
    for ((key, value), (want_key, want)) in values.into_iter().zip(expected) {
        assert_eq!(key, want_key);
        assert_close(value, want, key);
    }
    assert!(result.metrics.iter().all(|m| !m.higher_is_better));
}

#[test]
fn group_from_yaml_is_size_weighted_with_pooled_stderr() {
    let dir = task_folder();
    let mut registry = discover(dir.path());
    let selections = registry.resolve(&["capitals".to_string()]).unwrap();
    let mc = load(&registry, "capitals_mc");
    let csv = load(&registry, "capitals_csv");
    let mc_scores = score_all(
        &mc,
        &build(&mc),
        &[
            choices_response(&[-6.0, -7.2, -8.4]),
            choices_response(&[-4.0, -4.2, -9.0]),
            choices_response(&[-9.0, -3.0, -9.0]),
        ],
    );
    // CSV: doc 0 (gold A) right, doc 1 (gold B) wrong: acc 1/2, stderr 1/2.
    let csv_scores = score_all(
        &csv,
        &build(&csv),
        &[
            choices_response(&[-1.0, -2.0, -3.0]),
            choices_response(&[-1.0, -2.0, -3.0]),
        ],
    );
    let tasks: BTreeMap<String, TaskResult> = [
        aggregate(&mc, &mc_scores, 2),
        aggregate(&csv, &csv_scores, 0),
    ]
    .into_iter()
    .map(|r| (r.name.clone(), r))
    .collect();
    let groups = results::aggregate_groups(&selections, &tasks);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "capitals");
    assert_eq!(groups[0].subtasks, ["capitals_mc", "capitals_csv"]);
    assert_eq!(groups[0].n_samples, 5);
    // (2/3·3 + 1/2·2) / 5 = 3/5; pooled: (2·(1/9)·3 + 1·(1/4)·2) / (5 − 2) / 5 = 7/90.
    assert_eq!(groups[0].metrics.len(), 1);
    assert_eq!(groups[0].metrics[0].key, "acc,none");
    assert_close(groups[0].metrics[0].value, 0.6, "group acc");
    assert_close(
        groups[0].metrics[0].stderr.unwrap(),
        (7.0f64 / 90.0).sqrt(),
        "group stderr",
    );
}

// ---------------------------------------------------------------------------
// Every path of `podium_tasks::results`, on hand-made task results.
// ---------------------------------------------------------------------------

fn metric(key: &str, value: f64, stderr: Option<f64>) -> MetricResult {
    MetricResult {
        key: key.into(),
        value,
        stderr,
        higher_is_better: true,
        n: 0,
        interval: None,
        unit_range: false,
        proportion: false,
    }
}

fn task_result(name: &str, n_samples: usize, metrics: Vec<MetricResult>) -> TaskResult {
    TaskResult {
        name: name.into(),
        alias: None,
        metrics,
        n_samples,
        n_original: n_samples * 10,
        n_shot: 5,
        random_baseline: 0.25,
        version: json!(1.0),
        config: json!({"task": name}),
        content_hash: "h".into(),
        judges: Vec::new(),
        categories: Vec::new(),
    }
}

fn group(name: &str, members: Vec<Selection>, aggregate: Vec<AggregateSpec>) -> Selection {
    Selection::Group {
        name: name.into(),
        members,
        aggregate,
    }
}

fn task_sel(name: &str) -> Selection {
    Selection::Task(name.into())
}

fn acc_spec(weight_by_size: bool) -> AggregateSpec {
    AggregateSpec {
        metric: "acc".into(),
        weight_by_size,
        filter_list: vec!["none".into()],
    }
}

fn task_map(results: Vec<TaskResult>) -> BTreeMap<String, TaskResult> {
    results.into_iter().map(|r| (r.name.clone(), r)).collect()
}

/// (group name, metric key, value, stderr) of each group result, in order.
fn check_groups(groups: &[GroupResult], expected: &[(&str, &str, f64, Option<f64>)]) {
    let flat: Vec<(&str, &MetricResult)> = groups
        .iter()
        .flat_map(|g| g.metrics.iter().map(move |m| (g.name.as_str(), m)))
        .collect();
    assert_eq!(flat.len(), expected.len(), "{groups:#?}");
    for ((name, m), (want_name, want_key, value, stderr)) in flat.into_iter().zip(expected) {
        assert_eq!((name, m.key.as_str()), (*want_name, *want_key));
        assert_close(m.value, *value, &format!("{name} {want_key}"));
        match (m.stderr, stderr) {
            (Some(got), Some(want)) => assert_close(got, *want, &format!("{name} stderr")),
            (got, want) => assert_eq!(got, *want, "{name} {want_key} stderr"),
        }
    }
}

#[test]
fn groups_weight_by_size_or_equally_and_nest() {
    // a: 0.75 over 4 (stderr 0.25); b: 0.5 over 2 (stderr 0.5); c: 0.1 over 4 (stderr 0.2).
    let tasks = task_map(vec![
        task_result("a", 4, vec![metric("acc,none", 0.75, Some(0.25))]),
        task_result("b", 2, vec![metric("acc,none", 0.5, Some(0.5))]),
        task_result("c", 4, vec![metric("acc,none", 0.1, Some(0.2))]),
    ]);
    // Pooled over a and b: (3·0.0625·4 + 1·0.25·2) / (6 − 2) / 6.
    let pooled_ab = (1.25f64 / 4.0 / 6.0).sqrt();
    // lm-eval pools a group over its leaf tasks (lm_eval/api/group.py, Group.aggregate), not over the
    // inner group's aggregate: over a, b and c, (3·0.0625·4 + 1·0.25·2 + 3·0.04·4) / (10 − 3) / 10.
    let pooled_abc = ((3.0f64 * 0.0625 * 4.0 + 0.25 * 2.0 + 3.0 * 0.04 * 4.0) / 7.0 / 10.0).sqrt();
    let selections = [
        group(
            "by_size",
            vec![task_sel("a"), task_sel("b")],
            vec![acc_spec(true)],
        ),
        group(
            "equal",
            vec![task_sel("a"), task_sel("b")],
            vec![acc_spec(false)],
        ),
        group(
            "outer",
            vec![
                group(
                    "inner",
                    vec![task_sel("a"), task_sel("b")],
                    vec![acc_spec(true)],
                ),
                task_sel("c"),
            ],
            vec![acc_spec(true)],
        ),
    ];
    let groups = results::aggregate_groups(&selections, &tasks);
    check_groups(
        &groups,
        &[
            ("by_size", "acc,none", 4.0 / 6.0, Some(pooled_ab)),
            // Unweighted: sqrt(0.25² + 0.5²) / 2 (lm-eval's unweighted_mean_stderr).
            (
                "equal",
                "acc,none",
                0.625,
                Some((0.0625f64 + 0.25).sqrt() / 2.0),
            ),
            // Inner groups come out before their parent.
            ("inner", "acc,none", 4.0 / 6.0, Some(pooled_ab)),
            ("outer", "acc,none", (4.0 + 0.4) / 10.0, Some(pooled_abc)),
        ],
    );
    assert_eq!(groups[3].subtasks, ["inner", "c"]);
    assert_eq!(groups[3].n_samples, 10);
}

#[test]
fn groups_skip_missing_metrics_and_degrade_stderr() {
    let tasks = task_map(vec![
        task_result(
            "gen",
            3,
            vec![
                metric("exact_match,strict-match", 0.2, Some(0.1)),
                metric("exact_match,flexible-extract", 0.4, Some(0.1)),
            ],
        ),
        task_result("mc", 3, vec![metric("acc,none", 0.6, None)]),
        task_result("one_a", 1, vec![metric("acc,none", 1.0, None)]),
        task_result("one_b", 1, vec![metric("acc,none", 0.0, Some(0.0))]),
        task_result("single", 5, vec![metric("acc,none", 0.3, Some(0.1))]),
    ]);
    let selections = [
        // A filter list picks `metric,filter` keys; a member without the key is left out.
        group(
            "mixed",
            vec![task_sel("gen"), task_sel("mc"), task_sel("absent")],
            vec![
                AggregateSpec {
                    metric: "exact_match".into(),
                    weight_by_size: true,
                    filter_list: vec!["strict-match".into(), "flexible-extract".into()],
                },
                acc_spec(true),
                // No member has it: no entry at all.
                AggregateSpec {
                    metric: "f1".into(),
                    weight_by_size: true,
                    filter_list: vec!["none".into()],
                },
            ],
        ),
        // One sample per member: no pooled stderr, but still a value.
        group(
            "tiny",
            vec![task_sel("one_a"), task_sel("one_b")],
            vec![acc_spec(true)],
        ),
        // A tag-like selection (no aggregate_metric_list) yields no group result.
        group("a_tag", vec![task_sel("single")], Vec::new()),
        // A group of one is that member (pooled stderr over one member = its stderr).
        group("solo", vec![task_sel("single")], vec![acc_spec(false)]),
    ];
    let groups = results::aggregate_groups(&selections, &tasks);
    check_groups(
        &groups,
        &[
            ("mixed", "exact_match,strict-match", 0.2, Some(0.1)),
            ("mixed", "exact_match,flexible-extract", 0.4, Some(0.1)),
            // mc's stderr is unknown, so the group's is too (lm-eval prints N/A).
            ("mixed", "acc,none", 0.6, None),
            ("tiny", "acc,none", 0.5, None),
            ("solo", "acc,none", 0.3, Some(0.1)),
        ],
    );
    assert_eq!(groups[0].n_samples, 6, "the absent member adds nothing");
}

#[test]
fn task_aggregation_of_empty_and_single_samples() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "capitals_csv");
    // No samples (every doc failed): NaN and no stderr.
    let empty = results::aggregate_task(&task, &[], 0, 0.25, 100, 1);
    assert!(empty.metrics[0].value.is_nan());
    assert_eq!(empty.metrics[0].stderr, None);
    assert_eq!((empty.n_samples, empty.n_original), (0, 2));
    // One sample: a value but no spread.
    let one = BTreeMap::from([("acc,none".to_string(), SampleValue::Scalar(1.0))]);
    let single = results::aggregate_task(&task, std::slice::from_ref(&one), 0, 0.25, 100, 1);
    check_metrics(&single, &[("acc,none", 1.0, None)]);
    // A sample lacking the key does not count toward it (n stays the doc count).
    let partial = results::aggregate_task(&task, &[one, BTreeMap::new()], 0, 0.25, 100, 1);
    check_metrics(&partial, &[("acc,none", 1.0, None)]);
    assert_eq!(partial.n_samples, 2);
    assert_eq!(partial.primary().unwrap().key, "acc,none");
    assert_eq!(partial.primary().unwrap().metric(), "acc");
    assert_eq!(partial.primary().unwrap().filter(), "none");
    // A result stored before Podium formed intervals at aggregation: mean ± 1.96·stderr.
    let ci = metric("acc,none", 0.5, Some(0.1)).ci95().unwrap();
    assert_close(ci.0, 0.5 - 0.196, "ci low");
    assert_close(ci.1, 0.5 + 0.196, "ci high");
    assert_eq!(metric("acc,none", 0.5, None).ci95(), None);
}

/// METRICS.md: a mean of 0/1 values gets the Wilson interval (inside [0, 1], never of zero
/// width); another mean of values in [0, 1] gets mean ± 1.96·stderr clipped to [0, 1].
#[test]
fn task_intervals_are_wilson_for_proportions() {
    let dir = task_folder();
    let registry = discover(dir.path());
    let task = load(&registry, "capitals_csv");
    let samples = |values: &[f64]| -> Vec<BTreeMap<String, SampleValue>> {
        values
            .iter()
            .map(|&v| BTreeMap::from([("acc,none".to_string(), SampleValue::Scalar(v))]))
            .collect()
    };
    // (values, Wilson interval by hand: see podium-stats' closed-form test)
    let one_of_four = [0.0, 1.0, 0.0, 0.0];
    let none_of_ten = [0.0; 10];
    // (values, Wilson interval, half-width over 15 points)
    for (values, low, high, low_confidence) in [
        (
            &one_of_four[..],
            0.045586062644636216,
            0.6993639475573634,
            true,
        ),
        (&none_of_ten[..], 0.0, 0.2775401687666166, false),
    ] {
        let result = results::aggregate_task(&task, &samples(values), 0, 0.25, 100, 1);
        let acc = result.primary().unwrap();
        assert!(acc.proportion && acc.unit_range);
        assert_eq!(acc.n, values.len());
        let (lo, hi) = acc.ci95().unwrap();
        assert_close(lo, low, "wilson low");
        assert_close(hi, high, "wilson high");
        assert_eq!(
            acc.low_confidence(),
            low_confidence,
            "±{:?}",
            acc.half_width()
        );
    }
    // Failed docs (no value) do not count toward n.
    let mut partial = samples(&one_of_four);
    partial.push(BTreeMap::new());
    let result = results::aggregate_task(&task, &partial, 0, 0.25, 100, 1);
    assert_eq!((result.n_samples, result.primary().unwrap().n), (5, 4));
    // 400 docs at 50%: ±4.9 points, not low-confidence.
    let half: Vec<f64> = (0..400).map(|i| (i % 2) as f64).collect();
    let acc = results::aggregate_task(&task, &samples(&half), 0, 0.25, 100, 1).metrics[0].clone();
    let (lo, hi) = acc.ci95().unwrap();
    assert_close(lo, 0.4512336165999552, "wilson low");
    assert_close(hi, 0.5487663834000448, "wilson high");
    assert!(!acc.low_confidence());
    // Probabilities (not 0/1): mean ± 1.96·stderr, clipped to [0, 1].
    let probabilities = [0.99, 0.97, 1.0, 0.6];
    let acc = results::aggregate_task(&task, &samples(&probabilities), 0, 0.25, 100, 1).metrics[0]
        .clone();
    assert!(acc.unit_range && !acc.proportion);
    let (lo, hi) = acc.ci95().unwrap();
    assert_close(lo, acc.value - 1.96 * acc.stderr.unwrap(), "normal low");
    assert_eq!(hi, 1.0, "clipped");
    // Values outside [0, 1]: the plain normal interval, never judged on the 100-point scale.
    let wide = [2.0, 5.0, 3.0];
    let m = results::aggregate_task(&task, &samples(&wide), 0, 0.25, 100, 1).metrics[0].clone();
    assert!(!m.unit_range && !m.low_confidence());
    assert_close(
        m.ci95().unwrap().1,
        m.value + 1.96 * m.stderr.unwrap(),
        "normal high",
    );

    // Groups: a size-weighted mean of proportions is the proportion of all docs, with
    // Wilson's interval over their total (1 of 4 and 0 of 10: 1 of 14); an equally
    // weighted one gets value ± 1.96·pooled stderr, clipped to [0, 1].
    let mut a = results::aggregate_task(&task, &samples(&one_of_four), 0, 0.25, 100, 1);
    a.name = "a".into();
    let mut b = results::aggregate_task(&task, &samples(&none_of_ten), 0, 0.25, 100, 1);
    b.name = "b".into();
    let tasks = task_map(vec![a, b]);
    let selections = [
        group(
            "sized",
            vec![task_sel("a"), task_sel("b")],
            vec![acc_spec(true)],
        ),
        group(
            "equal",
            vec![task_sel("a"), task_sel("b")],
            vec![acc_spec(false)],
        ),
    ];
    let groups = results::aggregate_groups(&selections, &tasks);
    let sized = &groups[0].metrics[0];
    assert_close(sized.value, 1.0 / 14.0, "sized value");
    assert_eq!((sized.n, sized.proportion), (14, true));
    let (lo, hi) = podium_stats::wilson_interval(1.0 / 14.0, 14).unwrap();
    assert_eq!(sized.ci95(), Some((lo, hi)));
    let equal = &groups[1].metrics[0];
    assert!(!equal.proportion && equal.unit_range);
    let (lo, hi) = equal.ci95().unwrap();
    assert_eq!(lo, 0.0, "clipped: {:?}", equal.ci95());
    assert_close(hi, equal.value + 1.96 * equal.stderr.unwrap(), "equal high");

    // The results JSON keeps lm-eval's keys and gives the intervals in `podium.intervals`.
    let out = results::lm_eval_json(&[tasks["a"].clone()], &groups, "mock:a", json!({"seed": 1}));
    let a = &out["podium"]["intervals"]["a"]["acc,none"];
    assert_eq!(a["method"], "wilson");
    assert_eq!(a["n"], 4);
    assert_eq!(a["low_confidence"], true);
    assert_close(
        a["ci95"][0].as_f64().unwrap(),
        0.045586062644636216,
        "json low",
    );
    assert_eq!(
        out["podium"]["intervals"]["equal"]["acc,none"]["method"],
        "normal, clipped to [0, 1]"
    );
    assert!(out["results"]["a"].get("acc_ci95,none").is_none());
}

#[test]
fn results_json_has_lm_eval_keys() {
    let mut alias = task_result(
        "gen",
        3,
        vec![
            metric("exact_match,strict-match", 0.2, Some(0.1)),
            MetricResult {
                higher_is_better: false,
                ..metric("perplexity,none", 12.5, None)
            },
        ],
    );
    alias.alias = Some("Generation".into());
    let tasks = vec![
        task_result("a", 4, vec![metric("acc,none", 0.75, Some(0.25))]),
        task_result("b", 2, vec![metric("acc,none", 0.5, Some(0.5))]),
        alias,
    ];
    let selections = [group(
        "ab",
        vec![task_sel("a"), task_sel("b")],
        vec![acc_spec(true)],
    )];
    let by_name = task_map(tasks.clone());
    let groups = results::aggregate_groups(&selections, &by_name);
    let out = results::lm_eval_json(&tasks, &groups, "mock:a", json!({"seed": 1}));

    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "results",
            "groups",
            "group_subtasks",
            "configs",
            "versions",
            "n-shot",
            "higher_is_better",
            "n-samples",
            "config",
            "podium"
        ]
    );
    assert_eq!(
        out["results"]["a"],
        json!({"alias": "a", "acc,none": 0.75, "acc_stderr,none": 0.25})
    );
    assert_eq!(
        out["results"]["gen"],
        json!({
            "alias": "Generation",
            "exact_match,strict-match": 0.2,
            "exact_match_stderr,strict-match": 0.1,
            "perplexity,none": 12.5,
            "perplexity_stderr,none": "N/A",
        })
    );
    let pooled = (1.25f64 / 4.0 / 6.0).sqrt();
    assert_eq!(out["results"]["ab"]["alias"], "ab");
    assert_close(
        out["results"]["ab"]["acc,none"].as_f64().unwrap(),
        4.0 / 6.0,
        "group in results",
    );
    assert_close(
        out["groups"]["ab"]["acc_stderr,none"].as_f64().unwrap(),
        pooled,
        "group stderr",
    );
    assert_eq!(out["group_subtasks"], json!({"ab": ["a", "b"]}));
    assert_eq!(out["versions"]["a"], json!(1.0));
    assert_eq!(out["n-shot"], json!({"a": 5, "b": 5, "gen": 5}));
    assert_eq!(
        out["n-samples"]["b"],
        json!({"original": 20, "effective": 2})
    );
    assert_eq!(out["configs"]["gen"], json!({"task": "gen"}));
    assert_eq!(
        out["higher_is_better"]["gen"],
        json!({"exact_match": true, "perplexity": false})
    );
    assert_eq!(out["config"], json!({"model": "mock:a"}));
    // Podium's section keeps what the caller gave and adds every metric's interval
    // (these hand-made results have none stored: mean ± 1.96 · stderr).
    assert_eq!(out["podium"]["seed"], 1);
    assert_eq!(
        out["podium"]["intervals"]["a"]["acc,none"]["ci95"],
        json!([0.75 - 1.96 * 0.25, 0.75 + 1.96 * 0.25])
    );
    assert_eq!(
        out["podium"]["intervals"]["gen"]["perplexity,none"]["ci95"],
        json!(null)
    );
}

// ---------------------------------------------------------------------------
// Bad input: each a clear error naming the file, line (or row) and key.
// ---------------------------------------------------------------------------

/// Load `entry` of a folder made of `files` as far as building every prompt;
/// returns the first error's message.
fn load_error(files: &[(&str, &str)], entry: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        write(dir.path(), name, content);
    }
    let mut registry = Registry::default();
    let path = dir.path().join(entry);
    let outcome = (|| {
        let name = registry.add_file(&path)?;
        let task = Task::load(registry.task_config(&name).unwrap().clone())?;
        task.build_instances(&BuildOptions::default(), None)
    })();
    let message = match outcome {
        Ok(_) => panic!("{entry} loaded without error"),
        Err(err) => err.to_string(),
    };
    // Paths in messages are the temporary folder's; tests compare the rest.
    message.replace(&format!("{}/", dir.path().display()), "")
}

fn check_error(files: &[(&str, &str)], entry: &str, expected: &str) {
    let message = load_error(files, entry);
    assert_eq!(message, expected);
}

fn check_error_contains(files: &[(&str, &str)], entry: &str, expected: &[&str]) {
    let message = load_error(files, entry);
    for part in expected {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

const TINY_DATA: &str = "{\"question\": \"Why?\", \"answer\": \"Because.\"}\n";

/// A valid generation task, with `extra` appended (later keys win in the map).
fn tiny_task(extra: &str) -> String {
    format!(
        "task: tiny\n\
         dataset_path: json\n\
         dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
         test_split: test\n\
         output_type: generate_until\n\
         doc_to_text: \"Q: {{{{question}}}}\\nA:\"\n\
         doc_to_target: answer\n\
         {extra}"
    )
}

#[test]
fn tiny_task_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.yaml", &tiny_task(""));
    write(dir.path(), "data.jsonl", TINY_DATA);
    let mut registry = Registry::default();
    registry.add_file(&dir.path().join("tiny.yaml")).unwrap();
    let task = load(&registry, "tiny");
    assert_eq!(build(&task)[0].prompt, "Q: Why?\nA:");
}

#[test]
fn malformed_yaml_names_file_and_line() {
    check_error(
        &[(
            "bad.yaml",
            "task: bad\noutput_type: multiple_choice\ndoc_to_choice: [A, B\ndoc_to_target: 0\n",
        )],
        "bad.yaml",
        "bad.yaml:4: illegal placement of ':' indicator",
    );
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let yaml = tiny_task("num_fewshot: five\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:10: key `num_fewshot` must be a non-negative integer, found a string",
    );
    let yaml = tiny_task("generation_kwargs:\n  until: 3\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:11: key `until` must be a string or a list of strings, found an integer",
    );
}

#[test]
fn unknown_key_is_a_warning_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tiny.yaml",
        &tiny_task("doc_to_txt: \"typo\"\ngeneration_kwargs:\n  untill: [\"\\n\"]\n"),
    );
    write(dir.path(), "data.jsonl", TINY_DATA);
    let registry = Registry::discover(&[dir.path().to_path_buf()]);
    let prefix = format!("{}/", dir.path().display());
    let warnings: Vec<String> = registry
        .warnings
        .iter()
        .map(|w| w.replace(&prefix, ""))
        .collect();
    assert_eq!(
        warnings,
        [
            "tiny.yaml:10: unknown key `doc_to_txt` (ignored)",
            "tiny.yaml:12: unknown key `untill` in `generation_kwargs` (ignored)",
        ]
    );
    // The task still loads and runs.
    assert_eq!(build(&load(&registry, "tiny")).len(), 1);
}

#[test]
fn function_tags_are_errors_listing_built_ins() {
    let yaml = tiny_task("process_results: !function utils.process_results\n")
        .replace("generate_until", "multiple_choice")
        + "doc_to_choice: [\"a\", \"b\"]\n";
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:10: `process_results`: `!function utils.process_results` runs Python code, \
         which Podium does not; use a built-in name instead (truthfulqa_mc2, ifeval)",
    );
    let yaml = tiny_task("process_docs: !function utils.process_docs\n");
    check_error_contains(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        &["tiny.yaml:10: `process_docs`", "(hellaswag)"],
    );
    let yaml = tiny_task("").replace("doc_to_target: answer", "doc_to_target: !function utils.t");
    check_error_contains(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        &["tiny.yaml:9: `doc_to_target`", "!function utils.t"],
    );
}

#[test]
fn missing_data_file_names_the_file_and_split() {
    check_error_contains(
        &[("tiny.yaml", &tiny_task(""))],
        "tiny.yaml",
        &["data.jsonl: cannot read data file of split `test`"],
    );
}

#[test]
fn ragged_csv_row_names_file_and_row() {
    let yaml = tiny_task("")
        .replace("dataset_path: json", "dataset_path: csv")
        .replace("data.jsonl", "data.csv");
    check_error(
        &[
            ("tiny.yaml", &yaml),
            ("data.csv", "question,answer\nWhy?,Because.\nHow?\n"),
        ],
        "tiny.yaml",
        "data.csv:3: row has 1 fields, expected 2 (ragged CSV)",
    );
}

#[test]
fn jsonl_line_that_is_not_json_names_file_and_line() {
    check_error_contains(
        &[
            ("tiny.yaml", &tiny_task("")),
            (
                "data.jsonl",
                &format!("{TINY_DATA}{TINY_DATA}{{question: oops}}\n"),
            ),
        ],
        "tiny.yaml",
        &["data.jsonl:3: not a JSON object: "],
    );
    check_error(
        &[
            ("tiny.yaml", &tiny_task("")),
            ("data.jsonl", &format!("{TINY_DATA}[1, 2]\n")),
        ],
        "tiny.yaml",
        "data.jsonl:2: is an array, expected a JSON object",
    );
}

#[test]
fn template_with_missing_field_names_task_doc_and_field() {
    let data = format!("{TINY_DATA}{{\"questoin\": \"typo\", \"answer\": \"x\"}}\n");
    check_error_contains(
        &[("tiny.yaml", &tiny_task("")), ("data.jsonl", &data)],
        "tiny.yaml",
        &[
            "task `tiny`, doc 1: `doc_to_text`: ",
            "a field the template uses is missing from the doc",
        ],
    );
}

#[test]
fn unknown_task_suggests_near_names() {
    let dir = task_folder();
    let mut registry = discover(dir.path());
    let err = registry
        .resolve(&["capitals_mx".to_string()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown task `capitals_mx`: did you mean `capitals_mc`? (run `podium tasks` to list the tasks)"
    );
    let err = registry
        .resolve(&["zzz".to_string()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown task `zzz` (run `podium tasks` to list the tasks, or pass a path to a task YAML)"
    );
    let missing = dir.path().join("nope.yaml");
    let err = registry
        .resolve(&[missing.display().to_string()])
        .unwrap_err()
        .to_string();
    assert_eq!(err, format!("{}: task file not found", missing.display()));
}

#[test]
fn unknown_metric_names_file_line_and_lists_metrics() {
    let yaml = tiny_task("metric_list:\n  - metric: accuracy\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:11: `metric`: unknown metric `accuracy`; the metrics are: acc, acc_norm, \
         acc_bytes, acc_norm_tokens, exact_match, perplexity, word_perplexity, byte_perplexity, \
         bits_per_byte, contains, contains_any, contains_all, regex, starts_with, json_valid, \
         json_schema, numeric, similarity, length, rules, bleu, chrf, rouge1, rouge2, rougeL, \
         prompt_level_strict_acc, inst_level_strict_acc, prompt_level_loose_acc, inst_level_loose_acc",
    );
    // A known metric that does not fit the output type.
    let yaml = tiny_task("metric_list:\n  - metric: acc_norm\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:11: `metric`: metric `acc_norm` does not apply to `output_type: generate_until`",
    );
}

#[test]
fn unknown_filter_names_file_line_and_lists_filters() {
    let yaml = tiny_task("filter_list:\n  - name: x\n    filter:\n      - function: regexp\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:13: `function`: unknown filter `regexp`; the filters are: regex, take_first, \
         take_first_k, majority_vote, remove_whitespace, lowercase, uppercase",
    );
}

#[test]
fn split_not_in_data_files_names_file_line_and_splits() {
    let yaml = tiny_task("fewshot_split: train\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "tiny.yaml:10: `fewshot_split`: split `train` is not in `dataset_kwargs.data_files` (it has: test)",
    );
}

#[test]
fn too_few_fewshot_docs_is_an_error() {
    let yaml = tiny_task("num_fewshot: 3\n");
    check_error(
        &[("tiny.yaml", &yaml), ("data.jsonl", TINY_DATA)],
        "tiny.yaml",
        "task `tiny`: 3 few-shot examples asked, but the few-shot source has only 0 docs",
    );
}

#[test]
fn ifeval_config_errors_name_file_line_and_key() {
    let data = TINY_DATA;
    let cases = [
        (
            "metric_list:\n  - metric: inst_level_strict_acc\n",
            "tiny.yaml:10: `metric_list`: metric `inst_level_strict_acc` needs `process_results: ifeval`",
        ),
        (
            "process_results: ifeval\nmetric_list:\n  - metric: exact_match\n",
            "tiny.yaml:11: `metric_list`: `process_results: ifeval` computes prompt_level_strict_acc, \
             inst_level_strict_acc, prompt_level_loose_acc, inst_level_loose_acc, not `exact_match`",
        ),
    ];
    for (extra, expected) in cases {
        let yaml = tiny_task(extra);
        check_error(
            &[("tiny.yaml", &yaml), ("data.jsonl", data)],
            "tiny.yaml",
            expected,
        );
    }
    // A doc without instructions fails before anything runs, naming the doc.
    let yaml = tiny_task("process_results: ifeval\n");
    check_error_contains(
        &[("tiny.yaml", &yaml), ("data.jsonl", data)],
        "tiny.yaml",
        &["doc 0", "ifeval: the doc needs `instruction_id_list`"],
    );
}
