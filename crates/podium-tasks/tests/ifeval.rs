//! IFEval: every checker against lm-eval's own verdicts on hand-written
//! responses (tests/data/ifeval_cases.jsonl, written by
//! bench/ifeval/make_cases.py from lm_eval/tasks/ifeval), the bundled task's
//! docs, scoring and the four metrics' aggregation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value as Json, json};

use podium_core::{GenerateResult, TokenCountSource};
use podium_tasks::ifeval::{INSTRUCTION_IDS, Instructions, METRICS};
use podium_tasks::metrics::SampleValue;
use podium_tasks::results::aggregate_task;
use podium_tasks::{BuildOptions, Registry, Response, Target, Task};

fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// `check(response, kwargs, expected)` for one instruction, strict and loose.
fn check(id: &str, kwargs: &Json, response: &str, strict: bool, loose: bool) {
    let instructions = Instructions::parse(&[id.to_string()], std::slice::from_ref(kwargs))
        .unwrap_or_else(|err| panic!("{id} {kwargs}: {err}"));
    let verdict = &instructions.verdicts(response)[0];
    assert_eq!(
        (verdict.strict, verdict.loose),
        (strict, loose),
        "{id} {kwargs} on {response:?}: (strict, loose) differ from lm-eval's"
    );
}

/// Cases where Podium knowingly answers otherwise than lm-eval, with the cause
/// (docs/CROSSCHECK.md lists them).
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[(
    "change_case:english_capital",
    "CECI EST UNE PHRASE EN FRANÇAIS SUR LA MÉTÉO D'AUJOURD'HUI.",
    "langdetect's profiles hold few capitalized n-grams, so on all-caps French it answers \
     `en`; whatlang answers `fr`",
)];

#[test]
fn ifeval_checkers_match_lm_eval_cases() {
    let text = std::fs::read_to_string(crate_dir().join("tests/data/ifeval_cases.jsonl")).unwrap();
    let mut covered = std::collections::BTreeSet::new();
    let mut n = 0;
    let mut differ = Vec::new();
    for line in text.lines() {
        let case: Json = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap();
        let response = case["response"].as_str().unwrap();
        let expected = (
            case["strict"].as_bool().unwrap(),
            case["loose"].as_bool().unwrap(),
        );
        let instructions =
            Instructions::parse(&[id.to_string()], std::slice::from_ref(&case["kwargs"])).unwrap();
        let verdict = &instructions.verdicts(response)[0];
        let known = KNOWN_DIFFERENCES
            .iter()
            .find(|(kid, kresponse, _)| *kid == id && *kresponse == response);
        if let Some((_, _, cause)) = known {
            assert_ne!(
                (verdict.strict, verdict.loose),
                expected,
                "{id} on {response:?} now agrees ({cause})"
            );
        } else if (verdict.strict, verdict.loose) != expected {
            differ.push(format!(
                "{id} {} on {response:?}: Podium {:?}, lm-eval {expected:?}",
                case["kwargs"],
                (verdict.strict, verdict.loose)
            ));
        }
        covered.insert(id.to_string());
        n += 1;
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(n >= 150, "{n} cases");
    for id in INSTRUCTION_IDS {
        assert!(covered.contains(id), "no case for {id}");
    }
}

#[test]
fn edge_cases_of_the_checkers() {
    // Empty and blank responses follow nothing (lm-eval's `response.strip() and ...`).
    for id in ["punctuation:no_comma", "detectable_format:json_format"] {
        check(id, &json!({}), "", false, false);
        check(id, &json!({}), "\u{3000}\n", false, false);
    }
    // Loose drops a chatty first line and the asterisks of bold text.
    check(
        "startend:quotation",
        &json!({}),
        "Sure:\n\"Done\"",
        false,
        true,
    );
    check(
        "detectable_format:title",
        &json!({}),
        "**<<Title>>**",
        true,
        true,
    );
    // Unicode: `str.lower()` and `\w` as Python has them.
    check(
        "keywords:letter_frequency",
        &json!({"letter": "i", "let_frequency": 1, "let_relation": "at least"}),
        "İ",
        true,
        true,
    );
    check(
        "length_constraints:number_words",
        &json!({"num_words": 3, "relation": "at least"}),
        "naïve café 東京",
        true,
        true,
    );
}

#[test]
fn huge_responses_are_checked_in_bounded_time() {
    // 100 KB responses of the shapes that make naive tokenizers quadratic: no
    // whitespace with sentence ends, and one long line with many periods.
    let all: Vec<(String, Json)> = INSTRUCTION_IDS
        .iter()
        .map(|id| (id.to_string(), example_kwargs(id)))
        .collect();
    let ids: Vec<String> = all.iter().map(|(id, _)| id.clone()).collect();
    let kwargs: Vec<Json> = all.into_iter().map(|(_, k)| k).collect();
    let instructions = Instructions::parse(&ids, &kwargs).unwrap();
    for response in [
        "x.\"".repeat(35_000),
        "A. b. ".repeat(17_000),
        "*".repeat(100_000),
        format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
        "Section 1 ***\n\n******".repeat(5_000),
    ] {
        let verdicts = instructions.verdicts(&response);
        assert_eq!(verdicts.len(), INSTRUCTION_IDS.len());
    }
}

/// Valid arguments for each instruction.
fn example_kwargs(id: &str) -> Json {
    match id {
        "keywords:existence" => json!({"keywords": ["a"]}),
        "keywords:frequency" => json!({"keyword": "a", "frequency": 2, "relation": "at least"}),
        "keywords:forbidden_words" => json!({"forbidden_words": ["b"]}),
        "keywords:letter_frequency" => {
            json!({"letter": "a", "let_frequency": 2, "let_relation": "less than"})
        }
        "language:response_language" => json!({"language": "en"}),
        "length_constraints:number_sentences" => {
            json!({"num_sentences": 2, "relation": "at least"})
        }
        "length_constraints:number_paragraphs" => json!({"num_paragraphs": 2}),
        "length_constraints:number_words" => json!({"num_words": 2, "relation": "less than"}),
        "length_constraints:nth_paragraph_first_word" => {
            json!({"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "a"})
        }
        "detectable_content:number_placeholders" => json!({"num_placeholders": 1}),
        "detectable_content:postscript" => json!({"postscript_marker": "P.S."}),
        "detectable_format:number_bullet_lists" => json!({"num_bullets": 1}),
        "detectable_format:number_highlighted_sections" => json!({"num_highlights": 1}),
        "detectable_format:multiple_sections" => {
            json!({"section_spliter": "Section", "num_sections": 1})
        }
        "combination:repeat_prompt" => json!({"prompt_to_repeat": "x"}),
        "startend:end_checker" => json!({"end_phrase": "bye"}),
        "change_case:capital_word_frequency" => {
            json!({"capital_frequency": 1, "capital_relation": "at least"})
        }
        _ => json!({}),
    }
}

fn ifeval_task() -> Task {
    let registry = Registry::discover(&[crate_dir().join("../../tasks")]);
    assert_eq!(registry.warnings, Vec::<String>::new());
    Task::load(registry.task_config("ifeval").unwrap().clone()).unwrap()
}

fn generated(text: &str) -> Response {
    Response::Generate {
        results: vec![GenerateResult {
            text: text.to_string(),
            reasoning: None,
            n_input_tokens: None,
            n_output_tokens: None,
            token_count_source: TokenCountSource::Engine,
            timing: None,
        }],
    }
}

#[test]
fn bundled_task_builds_every_doc_as_lm_eval_does() {
    let task = ifeval_task();
    assert_eq!(task.n_docs(), 541);
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap();
    assert_eq!(instances.len(), 541);
    let mut n_instructions = 0;
    for instance in &instances {
        let doc = task.doc(instance.doc_id).unwrap();
        // The prompt is the doc's prompt as is; greedy, 1280 tokens, no stop string.
        assert_eq!(instance.prompt, doc["prompt"].as_str().unwrap());
        let podium_tasks::InstanceRequest::Generate { requests } = &instance.request else {
            panic!("doc {}: not a generation", instance.doc_id);
        };
        assert_eq!(requests.len(), 1);
        assert_eq!(
            (requests[0].max_tokens, requests[0].temperature),
            (1280, 0.0)
        );
        assert!(requests[0].until.is_empty());
        let Target::Instructions {
            instruction_id_list,
            ..
        } = &instance.target
        else {
            panic!("doc {}: no instructions", instance.doc_id);
        };
        n_instructions += instruction_id_list.len();
    }
    // The official IFEval counts: 541 prompts, 834 instructions.
    assert_eq!(n_instructions, 834);
    let keys: Vec<String> = task.metric_keys().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(
        keys,
        METRICS
            .iter()
            .map(|m| format!("{m},none"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn scores_and_aggregates_the_four_metrics() {
    let task = ifeval_task();
    let instances = task
        .build_instances(
            &BuildOptions {
                limit: Some(3),
                ..BuildOptions::default()
            },
            None,
        )
        .unwrap();
    let mut samples: Vec<BTreeMap<String, SampleValue>> = Vec::new();
    let mut flat: Vec<(bool, bool)> = Vec::new();
    let mut prompt_level: Vec<(bool, bool)> = Vec::new();
    for instance in &instances {
        let scores = task
            .score(instance, &generated("A short answer, with a comma."))
            .unwrap();
        let verdicts = &scores.instructions;
        assert!(!verdicts.is_empty());
        flat.extend(verdicts.iter().map(|v| (v.strict, v.loose)));
        prompt_level.push((
            verdicts.iter().all(|v| v.strict),
            verdicts.iter().all(|v| v.loose),
        ));
        // Verdicts travel with the stored sample; samples stored before them still read.
        let stored = serde_json::to_string(&scores).unwrap();
        let back: podium_tasks::SampleScores = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, scores);
        samples.push(scores.metrics);
    }
    let old: podium_tasks::SampleScores =
        serde_json::from_str(r#"{"metrics": {"acc,none": 1.0}, "filtered": {}}"#).unwrap();
    assert!(old.instructions.is_empty());

    let result = aggregate_task(&task, &samples, 0, 0.0, 100, 1);
    let value = |key: &str| {
        result
            .metrics
            .iter()
            .find(|m| m.key == key)
            .unwrap_or_else(|| panic!("no {key}"))
    };
    let share = |xs: &[bool]| xs.iter().filter(|&&x| x).count() as f64 / xs.len() as f64;
    let strict: Vec<bool> = flat.iter().map(|v| v.0).collect();
    let loose: Vec<bool> = flat.iter().map(|v| v.1).collect();
    let p_strict: Vec<bool> = prompt_level.iter().map(|v| v.0).collect();
    let p_loose: Vec<bool> = prompt_level.iter().map(|v| v.1).collect();
    for (key, expected) in [
        ("prompt_level_strict_acc,none", share(&p_strict)),
        ("inst_level_strict_acc,none", share(&strict)),
        ("prompt_level_loose_acc,none", share(&p_loose)),
        ("inst_level_loose_acc,none", share(&loose)),
    ] {
        let metric = value(key);
        assert!(
            (metric.value - expected).abs() < 1e-12,
            "{key}: {} vs {expected}",
            metric.value
        );
        assert_eq!(metric.n, 3, "{key}");
        let (lo, hi) = metric.ci95().unwrap();
        assert!(
            lo <= metric.value && metric.value <= hi && hi - lo > 0.0,
            "{key}: {lo}..{hi}"
        );
        assert!(metric.unit_range, "{key}");
    }
}
