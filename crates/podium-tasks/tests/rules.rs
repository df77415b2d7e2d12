//! Rule metrics end to end through a task YAML: each case is a `metric_list` entry, a doc,
//! an answer, and the value and reason the sample must get. Also the YAML errors a rule
//! entry can cause (file:line and key), and the aggregation of pass rates.

use std::collections::BTreeMap;
use std::path::Path;

use podium_core::GenerateResult;
use podium_tasks::metrics::SampleValue;
use podium_tasks::{BuildOptions, Registry, Response, SampleScores, Task, results};
use serde_json::{Value as Json, json};

fn task_yaml(entries: &str) -> String {
    format!(
        "task: t\n\
         dataset_path: json\n\
         dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
         test_split: test\n\
         output_type: generate_until\n\
         doc_to_text: \"{{{{question}}}}\"\n\
         doc_to_target: answer\n\
         metric_list:\n{entries}"
    )
}

fn load_task(dir: &Path, entries: &str, docs: &[Json]) -> Result<Task, podium_tasks::TaskError> {
    std::fs::write(dir.join("t.yaml"), task_yaml(entries)).unwrap();
    let data: String = docs.iter().map(|d| format!("{d}\n")).collect();
    std::fs::write(dir.join("data.jsonl"), data).unwrap();
    let mut registry = Registry::default();
    let name = registry.add_file(&dir.join("t.yaml"))?;
    Task::load(registry.task_config(&name).unwrap().clone())
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

/// Scores `answers` (one per doc) with the task of `entries`.
fn score(entries: &str, docs: &[Json], answers: &[&str]) -> Vec<SampleScores> {
    let dir = tempfile::tempdir().unwrap();
    let task = load_task(dir.path(), entries, docs).unwrap_or_else(|e| panic!("{e}"));
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    instances
        .iter()
        .zip(answers)
        .map(|(instance, answer)| task.score(instance, &generated(answer)).unwrap())
        .collect()
}

/// One rule case: `entry` is the YAML of one `metric_list` item (its lines after `- `),
/// the doc has `answer` as target plus `extra` fields.
struct Case<'a> {
    entry: &'a str,
    target: Json,
    extra: Json,
    answer: &'a str,
    value: f64,
    reason: &'a str,
}

fn check(case: Case<'_>) {
    let mut doc = json!({"question": "q", "answer": case.target});
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), case.extra.as_object()) {
        doc.extend(extra.clone());
    }
    let entry = format!("  - {}\n", case.entry.replace('\n', "\n    "));
    let scores = score(&entry, &[doc], &[case.answer]);
    let key = scores[0]
        .metrics
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| panic!("no metric for {}", case.entry));
    let value = scores[0].metrics[&key].scalar();
    let reason = &scores[0].reasons[&key];
    assert!(
        (value - case.value).abs() < 1e-9,
        "{}: answer {:?}: value {value}, expected {} ({reason})",
        case.entry,
        case.answer,
        case.value
    );
    assert!(
        reason.contains(case.reason),
        "{}: answer {:?}: reason `{reason}` lacks `{}`",
        case.entry,
        case.answer,
        case.reason
    );
}

fn case<'a>(
    entry: &'a str,
    target: &str,
    answer: &'a str,
    value: f64,
    reason: &'a str,
) -> Case<'a> {
    Case {
        entry,
        target: json!(target),
        extra: json!({}),
        answer,
        value,
        reason,
    }
}

#[test]
fn contains_family() {
    for c in [
        case(
            "metric: contains\nvalue: refund",
            "x",
            "We will refund you.",
            1.0,
            "pass: contains `refund`",
        ),
        case(
            "metric: contains\nvalue: refund",
            "x",
            "No money back.",
            0.0,
            "fail: missing `refund`",
        ),
        case(
            "metric: contains\nvalue: Refund\nignore_case: true",
            "x",
            "REFUND now",
            1.0,
            "pass",
        ),
        // From the target by default.
        case(
            "metric: contains",
            "Paris",
            "It is Paris.",
            1.0,
            "contains `Paris`",
        ),
        case(
            "metric: contains\nnegate: true\nvalue: sorry",
            "x",
            "I am sorry",
            0.0,
            "fail: negated, contains `sorry`",
        ),
        case(
            "metric: contains\nnegate: true\nvalue: sorry",
            "x",
            "Done.",
            1.0,
            "pass: negated, missing `sorry`",
        ),
        case(
            "metric: contains_any\nvalues: [cat, dog]",
            "x",
            "a dog",
            1.0,
            "contains `dog`",
        ),
        case(
            "metric: contains_any\nvalues: [cat, dog]",
            "x",
            "a cow",
            0.0,
            "contains none of `cat`, `dog`",
        ),
        case(
            "metric: contains_all\nvalues: [cat, dog]",
            "x",
            "cat and dog",
            1.0,
            "contains all of `cat`, `dog`",
        ),
        case(
            "metric: contains_all\nvalues: [cat, dog, eel]",
            "x",
            "cat only",
            0.0,
            "missing `dog`, `eel`",
        ),
        case(
            "metric: contains_all\nvalues: [\"a.b\"]\nignore_punctuation: true",
            "x",
            "ab",
            1.0,
            "pass",
        ),
        case(
            "metric: starts_with\nvalue: \"Yes\"",
            "x",
            "  Yes, indeed",
            1.0,
            "starts with `Yes`",
        ),
        case(
            "metric: starts_with\nvalue: \"Yes\"",
            "x",
            "No.",
            0.0,
            "starts with `No.`, not `Yes`",
        ),
    ] {
        check(c);
    }
    // A list target: contains_all needs every text, contains any one.
    let list = |entry, answer, value, reason| Case {
        entry,
        target: json!(["red", "blue"]),
        extra: json!({}),
        answer,
        value,
        reason,
    };
    check(list("metric: contains_all", "red and blue", 1.0, "pass"));
    check(list("metric: contains_all", "red", 0.0, "missing `blue`"));
    check(list("metric: contains", "blue", 1.0, "contains `blue`"));
}

#[test]
fn regex_match_and_extract() {
    for c in [
        case(
            "metric: regex\npattern: '\\d{3}-\\d{4}'",
            "x",
            "call 555-1234",
            1.0,
            "matches `555-1234`",
        ),
        case(
            "metric: regex\npattern: '\\d{3}-\\d{4}'",
            "x",
            "no phone",
            0.0,
            "fail: no match for",
        ),
        case(
            "metric: regex\npattern: '^yes'\nignore_case: true",
            "x",
            "YES",
            1.0,
            "pass",
        ),
        // The target as the pattern.
        case("metric: regex", "^[A-D]$", "C", 1.0, "pass"),
        case(
            "metric: regex\nmode: extract\npattern: 'answer is (\\w+)'",
            "B",
            "The answer is B.",
            1.0,
            "extracted `B`",
        ),
        case(
            "metric: regex\nmode: extract\npattern: 'answer is (\\w+)'",
            "B",
            "The answer is C.",
            0.0,
            "extracted `C`, expected `B`",
        ),
        case(
            "metric: regex\nmode: extract\npattern: 'answer is (\\w+)'\nvalue: c\nignore_case: true",
            "B",
            "The ANSWER IS C",
            1.0,
            "extracted `c`",
        ),
        case(
            "metric: regex\nmode: extract\npattern: 'answer is (\\w+)'",
            "B",
            "dunno",
            0.0,
            "no match for",
        ),
    ] {
        check(c);
    }
}

#[test]
fn json_rules() {
    let schema = "metric: json_schema\nschema:\n  type: object\n  required: [name]\n  properties:\n    name: {type: string}";
    for c in [
        case(
            "metric: json_valid",
            "x",
            "{\"a\": 1}",
            1.0,
            "pass: valid JSON",
        ),
        case(
            "metric: json_valid",
            "x",
            "```json\n[1, 2]\n```",
            1.0,
            "pass",
        ),
        case(
            "metric: json_valid",
            "x",
            "{\"a\": }",
            0.0,
            "fail: not valid JSON: expected value at line 1 column 7",
        ),
        case(
            schema,
            "x",
            "{\"name\": \"Ann\"}",
            1.0,
            "valid against the schema",
        ),
        case(
            schema,
            "x",
            "{\"name\": 3}",
            0.0,
            "does not match the schema at `/name`",
        ),
        case(schema, "x", "{}", 0.0, "\"name\" is a required property"),
        case(schema, "x", "nope", 0.0, "not valid JSON"),
        // A schema given as JSON text.
        case(
            "metric: json_schema\nschema: '{\"type\": \"array\"}'",
            "x",
            "[]",
            1.0,
            "pass",
        ),
    ] {
        check(c);
    }
    // Per row: the schema from a doc field, as an object or as JSON text.
    for schema in [json!({"type": "integer"}), json!("{\"type\": \"integer\"}")] {
        for (answer, value) in [("42", 1.0), ("4.5", 0.0)] {
            check(Case {
                entry: "metric: json_schema\nfield: schema",
                target: json!("x"),
                extra: json!({"schema": schema}),
                answer,
                value,
                reason: if value == 1.0 { "pass" } else { "fail" },
            });
        }
    }
}

#[test]
fn numeric_similarity_length() {
    for c in [
        case(
            "metric: numeric",
            "1,000",
            "The total is $1000.",
            1.0,
            "1000 is within tolerance of 1000",
        ),
        case(
            "metric: numeric",
            "42",
            "41 or maybe 43",
            0.0,
            "43, expected 42",
        ),
        case(
            "metric: numeric\npick: first",
            "41",
            "41 or maybe 43",
            1.0,
            "pass",
        ),
        case(
            "metric: numeric\nabs_tol: 0.5",
            "3.14",
            "about 3.5",
            1.0,
            "pass",
        ),
        case(
            "metric: numeric\nrel_tol: 0.01",
            "200",
            "201.9",
            1.0,
            "pass",
        ),
        case(
            "metric: numeric\nrel_tol: 0.01",
            "200",
            "203",
            0.0,
            "203, expected 200",
        ),
        case(
            "metric: numeric\nvalue: -2.5",
            "x",
            "it is -2.5e0",
            1.0,
            "pass",
        ),
        case(
            "metric: numeric",
            "7",
            "seven",
            0.0,
            "fail: no number in the answer",
        ),
        // Levenshtein.ratio("kitten", "sitting") = 1 - 5/13
        case(
            "metric: similarity",
            "sitting",
            "kitten",
            8.0 / 13.0,
            "0.615: similarity 0.615 to `sitting`",
        ),
        case(
            "metric: similarity\nmethod: levenshtein",
            "sitting",
            "kitten",
            4.0 / 7.0,
            "similarity 0.571",
        ),
        case(
            "metric: similarity\nthreshold: 0.6",
            "sitting",
            "kitten",
            1.0,
            "pass: similarity 0.615 ≥ 0.6",
        ),
        case(
            "metric: similarity\nthreshold: 0.7",
            "sitting",
            "kitten",
            0.0,
            "fail: similarity 0.615 < 0.7",
        ),
        case(
            "metric: similarity\nignore_case: true",
            "ABC",
            "abc",
            1.0,
            "similarity 1.000",
        ),
        case(
            "metric: similarity\nnegate: true",
            "sitting",
            "kitten",
            5.0 / 13.0,
            "0.385: negated",
        ),
        case(
            "metric: length\nmax: 5",
            "x",
            "short",
            1.0,
            "pass: 5 characters",
        ),
        case(
            "metric: length\nmax: 4",
            "x",
            "short",
            0.0,
            "fail: 5 characters, more than 4",
        ),
        case(
            "metric: length\nmin: 3\nunit: words",
            "x",
            "two words",
            0.0,
            "2 words, fewer than 3",
        ),
        case(
            "metric: length\nmax: 3\nunit: words\nregexes_to_ignore: ['(?s)<think>.*</think>']",
            "x",
            "<think>a b c d e</think> one two",
            1.0,
            "pass: 2 words",
        ),
    ] {
        check(c);
    }
}

#[test]
fn per_row_arguments_come_from_doc_fields() {
    for (keyword, answer, value) in [("refund", "a refund", 1.0), ("refund", "no", 0.0)] {
        check(Case {
            entry: "metric: contains\nfield: keyword",
            target: json!("ignored"),
            extra: json!({"keyword": keyword}),
            answer,
            value,
            reason: keyword,
        });
    }
    check(Case {
        entry: "metric: contains_all\nfield: keywords",
        target: json!("ignored"),
        extra: json!({"keywords": ["a", "b"]}),
        answer: "a",
        value: 0.0,
        reason: "missing `b`",
    });
    check(Case {
        entry: "metric: regex\nfield: pattern",
        target: json!("ignored"),
        extra: json!({"pattern": "^\\d+$"}),
        answer: "123",
        value: 1.0,
        reason: "pass",
    });
    check(Case {
        entry: "metric: numeric\nfield: amount",
        target: json!("ignored"),
        extra: json!({"amount": 12.5}),
        answer: "12.50 dollars",
        value: 1.0,
        reason: "pass",
    });
}

#[test]
fn rules_combine_by_weight_all_or_any() {
    let rules = "metric: rules\nname: ticket\nrules:\n  - {metric: contains, value: refund, weight: 3}\n  - {metric: length, max: 10}\n  - {metric: regex, pattern: '#\\d+', negate: true}";
    check(case(
        rules,
        "x",
        "refund now",
        1.0,
        "weighted mean: contains ×3 pass: contains `refund`; length pass",
    ));
    // 3 + 0 + 1 of weight 5.
    check(case(
        rules,
        "x",
        "a refund for you, sir",
        0.8,
        "0.800: weighted mean",
    ));
    check(case(
        rules,
        "x",
        "#12",
        0.2,
        "regex fail: negated, `#\\d+` matches `#12`",
    ));
    let all = "metric: rules\ncombine: all\nrules:\n  - {metric: contains, value: a}\n  - {metric: contains, value: b}";
    check(case(all, "x", "a b", 1.0, "pass: all must pass"));
    check(case(all, "x", "a", 0.0, "fail: all must pass"));
    let any = "metric: rules\ncombine: any\nrules:\n  - {metric: contains, value: a}\n  - {metric: contains, value: b}";
    check(case(any, "x", "b", 1.0, "pass: any may pass"));
    check(case(any, "x", "c", 0.0, "fail"));
}

#[test]
fn two_entries_of_one_metric_get_their_own_keys_and_pass_rates() {
    let entries = "  - metric: contains\n    value: refund\n  - metric: contains\n    name: polite\n    value: please\n  - metric: exact_match\n";
    let docs = [
        json!({"question": "q", "answer": "a"}),
        json!({"question": "q", "answer": "b"}),
        json!({"question": "q", "answer": "c"}),
        json!({"question": "q", "answer": "d"}),
    ];
    let answers = ["refund please", "refund", "please", "d"];
    let dir = tempfile::tempdir().unwrap();
    let task = load_task(dir.path(), entries, &docs).unwrap();
    let keys: Vec<String> = task.metric_keys().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, ["contains,none", "polite,none", "exact_match,none"]);
    let scores = score(entries, &docs, &answers);
    let samples: Vec<BTreeMap<String, SampleValue>> =
        scores.iter().map(|s| s.metrics.clone()).collect();
    let result = results::aggregate_task(&task, &samples, 0, 0.0, 100, 1);
    let contains = &result.metrics[0];
    assert_eq!(contains.value, 0.5);
    // A pass rate is a proportion: Wilson's interval.
    assert!(contains.proportion);
    assert_eq!(contains.interval, podium_stats::wilson_interval(0.5, 4));
    assert_eq!(result.metrics[1].key, "polite,none");
    assert_eq!(result.metrics[1].value, 0.5);
    assert_eq!(result.metrics[2].value, 0.25);
    // exact_match has no reason; the rules do.
    assert!(!scores[0].reasons.contains_key("exact_match,none"));
    assert_eq!(scores[1].reasons["polite,none"], "fail: missing `please`");
}

#[test]
fn samples_stored_before_reasons_still_read() {
    let old = r#"{"metrics":{"exact_match,none":1.0},"filtered":{"none":["a"]}}"#;
    let scores: SampleScores = serde_json::from_str(old).unwrap();
    assert!(scores.reasons.is_empty());
    // And a sample without reasons writes none.
    assert_eq!(serde_json::to_string(&scores).unwrap(), old);
}

fn load_error(entries: &str, docs: &[Json]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let outcome = load_task(dir.path(), entries, docs).and_then(|task| {
        task.build_instances(&BuildOptions::default(), None)
            .map(drop)
    });
    match outcome {
        Ok(()) => panic!("{entries} loaded without error"),
        Err(err) => err
            .to_string()
            .replace(&format!("{}/", dir.path().display()), ""),
    }
}

#[test]
fn yaml_errors_name_file_line_and_key() {
    let doc = [json!({"question": "q", "answer": "a"})];
    // The entries start on line 11.
    for (entries, expected) in [
        (
            "  - metric: contains\n    valu: x\n",
            "t.yaml:12: `valu`: unknown option for metric `contains`; its options are: negate, regexes_to_ignore, value, field, ignore_case, ignore_punctuation, ignore_numbers, name",
        ),
        (
            "  - metric: regex\n    pattern: '(unclosed'\n",
            "t.yaml:12: `pattern`: cannot compile regex `(unclosed`",
        ),
        (
            "  - metric: regex\n    pattern: 'a{100000}{100000}'\n",
            "t.yaml:12: `pattern`: cannot compile regex",
        ),
        (
            "  - metric: contains\n    negate: maybe\n",
            "t.yaml:12: key `negate` must be true or false, found a string",
        ),
        (
            "  - metric: length\n    max: many\n",
            "t.yaml:12: key `max` must be a non-negative integer, found a string",
        ),
        (
            "  - metric: contains\n    weight: 2\n",
            "t.yaml:12: `weight`: unknown option for metric `contains` (`weight` applies to a rule inside a `rules:` list)",
        ),
        (
            "  - metric: json_schema\n    schema: {type: 12}\n",
            "t.yaml:12: `schema`: invalid JSON Schema",
        ),
        (
            "  - metric: contains\n    value: a\n  - metric: contains\n    value: b\n",
            "t.yaml:13: `metric`: the result key `contains` is already used by the entry at line 11; give one of them a different `name:`",
        ),
        (
            "  - metric: contains\n    name: 'a,b'\n",
            "t.yaml:12: `name`: `a,b` cannot name a result key",
        ),
        (
            "  - metric: contains\n    value: a\n    field: b\n",
            "t.yaml:13: `field`: give `value` or `field`, not both",
        ),
        (
            "  - metric: rules\n    combine: all\n    rules:\n      - {metric: similarity}\n",
            "t.yaml:14: `metric`: `combine: all` and `combine: any` need pass/fail rules",
        ),
        (
            "  - metric: rules\n    rules:\n      - {metric: bleu}\n",
            "t.yaml:13: `metric`: `bleu` is not a rule",
        ),
        (
            "  - metric: rouge1\n    use_stemmer: true\n",
            "t.yaml:12: `use_stemmer`: unknown option for metric `rouge1` (Podium has no port of NLTK's Porter stemmer",
        ),
        (
            "  - metric: regex\n    mode: extract\n    pattern: 'x'\n    group: 1\n",
            "t.yaml:14: `group`: the pattern has 0 group(s)",
        ),
    ] {
        let message = load_error(entries, &doc);
        assert!(
            message.starts_with(expected),
            "entries:\n{entries}\nmessage:  {message}\nexpected: {expected}"
        );
    }
}

#[test]
fn bad_row_arguments_fail_before_the_run() {
    let docs = [
        json!({"question": "q", "answer": "a", "pattern": "ok"}),
        json!({"question": "q", "answer": "a", "pattern": "(bad"}),
    ];
    let message = load_error("  - metric: regex\n    field: pattern\n", &docs);
    assert!(
        message.starts_with("task `t`, doc 1: `metric_list: regex`: cannot compile regex `(bad`"),
        "{message}"
    );
    let message = load_error("  - metric: contains\n    field: missing\n", &docs);
    assert_eq!(
        message,
        "task `t`, doc 0: `metric_list: contains`: the doc has no field `missing`"
    );
    let message = load_error("  - metric: numeric\n", &docs);
    assert_eq!(
        message,
        "task `t`, doc 0: `metric_list: numeric`: `numeric` expects a number, and `a` has none"
    );
}
