//! Every bundled task in `tasks/` loads, has its documented number of docs,
//! builds requests for its first docs, and builds the exact prompts of
//! lm-evaluation-harness's task of the same name (rebuilt here from the raw
//! data files, independently of the task engine).

use std::path::PathBuf;

use serde_json::Value as Json;

use podium_tasks::{BuildOptions, Instance, InstanceRequest, Registry, Target, Task};

/// The repository's `tasks/`, found from the crate folder that cargo (or nextest)
/// names at run time: a test binary reused from a build in another checkout (cargo
/// keeps it fresh across moves) still reads this checkout's tasks.
fn tasks_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../tasks")
}

fn registry() -> Registry {
    let registry = Registry::discover(&[tasks_dir()]);
    assert_eq!(registry.warnings, Vec::<String>::new());
    registry
}

fn load(registry: &Registry, name: &str) -> Task {
    let config = registry
        .task_config(name)
        .unwrap_or_else(|| panic!("bundled task `{name}` not indexed"))
        .clone();
    Task::load(config).unwrap_or_else(|err| panic!("bundled task `{name}`: {err}"))
}

fn first_docs(task: &Task, n: usize) -> Vec<Instance> {
    task.build_instances(
        &BuildOptions {
            limit: Some(n),
            num_fewshot: None,
            seed: 1234,
        },
        None,
    )
    .unwrap_or_else(|err| panic!("task `{}`: {err}", task.name()))
}

/// Tasks under a group or tag, in order.
fn members(registry: &mut Registry, name: &str) -> Vec<String> {
    let mut names = Vec::new();
    for selection in registry.resolve(&[name.to_string()]).unwrap() {
        selection.task_names(&mut names);
    }
    names
}

fn read_jsonl(relative: &str) -> Vec<Json> {
    std::fs::read_to_string(tasks_dir().join(relative))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn continuations(instance: &Instance) -> &[String] {
    match &instance.request {
        InstanceRequest::Loglikelihood(request) => {
            assert_eq!(request.context, instance.prompt);
            &request.continuations
        }
        other => panic!("expected a loglikelihood request, got {other:?}"),
    }
}

fn golds(instance: &Instance) -> &[usize] {
    match &instance.target {
        Target::Choices { golds, .. } => golds,
        other => panic!("expected choices, got {other:?}"),
    }
}

#[test]
fn every_bundled_task_loads_and_builds_its_first_docs() {
    let registry = registry();
    let tasks: Vec<String> = registry
        .listing()
        .into_iter()
        .filter(|row| row.kind == "task")
        .map(|row| row.name)
        .collect();
    // 57 MMLU subjects, 4 lite MMLU subjects, and 12 others.
    assert_eq!(tasks.len(), 73, "{tasks:?}");
    for name in &tasks {
        let task = load(&registry, name);
        assert!(
            task.n_docs() > 3,
            "task `{name}` has {} docs",
            task.n_docs()
        );
        let instances = first_docs(&task, 3);
        assert_eq!(instances.len(), 3, "task `{name}`");
        for instance in &instances {
            assert!(!instance.prompt.is_empty(), "task `{name}`");
            if let Target::Choices { choices, golds, .. } = &instance.target {
                assert!(choices.len() >= 2, "task `{name}`");
                assert!(golds.iter().all(|&g| g < choices.len()), "task `{name}`");
            }
        }
    }
}

fn check_doc_counts(expected: &[(&str, usize)]) {
    let registry = registry();
    for (name, n_docs) in expected {
        assert_eq!(load(&registry, name).n_docs(), *n_docs, "task `{name}`");
    }
}

#[test]
fn documented_doc_counts() {
    check_doc_counts(&[
        ("hellaswag", 10042),
        ("arc_easy", 2376),
        ("arc_challenge", 1172),
        ("gsm8k", 1319),
        ("truthfulqa_mc1", 817),
        ("truthfulqa_mc2", 817),
        ("ifeval", 541),
        ("lite_hellaswag", 100),
        ("lite_arc_easy", 100),
        ("lite_arc_challenge", 100),
        ("lite_gsm8k", 4),
        ("lite_truthfulqa_mc2", 64),
    ]);
}

#[test]
fn mmlu_has_57_subjects_and_14042_test_docs() {
    let mut registry = registry();
    let subjects = members(&mut registry, "mmlu");
    assert_eq!(subjects.len(), 57);
    assert!(subjects.iter().all(|s| s.starts_with("mmlu_")));
    let count = |registry: &Registry, names: &[String]| -> usize {
        names.iter().map(|n| load(registry, n).n_docs()).sum()
    };
    assert_eq!(count(&registry, &subjects), 14042);
    for (group, n_docs) in [
        ("mmlu_stem", 3153),
        ("mmlu_humanities", 4705),
        ("mmlu_social_sciences", 3077),
        ("mmlu_other", 3107),
    ] {
        let names = members(&mut registry, group);
        assert_eq!(count(&registry, &names), n_docs, "group `{group}`");
    }
    let lite = members(&mut registry, "lite_mmlu");
    assert_eq!(lite.len(), 4);
    assert_eq!(count(&registry, &lite), 80);
    assert_eq!(members(&mut registry, "lite").len(), 9);
}

#[test]
fn arc_easy_prompts_match_lm_eval() {
    let registry = registry();
    let task = load(&registry, "arc_easy");
    let instances = first_docs(&task, 3);
    assert_eq!(
        instances[0].prompt,
        "Question: Which statement best explains why photosynthesis is the foundation of most \
         food webs?\nAnswer:"
    );
    assert_eq!(
        continuations(&instances[0])[0],
        " Sunlight is the source of energy for nearly all ecosystems."
    );
    // lm-eval: "Question: {question}\nAnswer:", choices " " + text, gold label.index(answerKey).
    for (instance, doc) in instances
        .iter()
        .zip(read_jsonl("arc/data/ARC-Easy-test.jsonl"))
    {
        let question = doc["question"].as_str().unwrap();
        assert_eq!(instance.prompt, format!("Question: {question}\nAnswer:"));
        let expected: Vec<String> = doc["choices"]["text"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!(" {}", t.as_str().unwrap()))
            .collect();
        assert_eq!(continuations(instance), expected.as_slice());
        let labels = doc["choices"]["label"].as_array().unwrap();
        let gold = labels.iter().position(|l| *l == doc["answerKey"]).unwrap();
        assert_eq!(golds(instance), [gold]);
    }
}

fn mmlu_block(row: &csv::StringRecord) -> String {
    format!(
        "{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
        row[0].trim(),
        &row[1],
        &row[2],
        &row[3],
        &row[4]
    )
}

fn read_csv(relative: &str) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(tasks_dir().join(relative))
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn mmlu_prompts_are_description_and_five_dev_shots() {
    let registry = registry();
    let task = load(&registry, "mmlu_abstract_algebra");
    let instances = first_docs(&task, 3);
    let dev = read_csv("mmlu/data/dev/abstract_algebra_dev.csv");
    let test = read_csv("mmlu/data/test/abstract_algebra_test.csv");
    let mut shots =
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
            .to_string();
    for row in &dev[..5] {
        shots.push_str(&format!("{} {}\n\n", mmlu_block(row), &row[5]));
    }
    assert!(shots.contains(
        "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n"
    ));
    for (instance, row) in instances.iter().zip(&test) {
        assert_eq!(instance.prompt, format!("{shots}{}", mmlu_block(row)));
        assert_eq!(continuations(instance), [" A", " B", " C", " D"]);
        let gold = ["A", "B", "C", "D"]
            .iter()
            .position(|l| *l == &row[5])
            .unwrap();
        assert_eq!(golds(instance), [gold]);
    }
    assert!(
        instances[0].prompt.ends_with(
            "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n\
             A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
        ),
        "{}",
        instances[0].prompt
    );
}

#[test]
fn gsm8k_prompts_are_eight_cot_exemplars() {
    let registry = registry();
    let task = load(&registry, "gsm8k");
    let instances = first_docs(&task, 3);
    let exemplars = read_jsonl("gsm8k/data/cot_exemplars.jsonl");
    assert_eq!(exemplars.len(), 8);
    let mut shots = String::new();
    for e in &exemplars {
        shots.push_str(&format!(
            "Q: {}\nA: {}\n\n",
            e["question"].as_str().unwrap(),
            e["target"].as_str().unwrap()
        ));
    }
    assert!(shots.starts_with(
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. \
         After they are done, there will be 21 trees. How many trees did the grove workers plant \
         today?\nA: There are 15 trees originally. Then there were 21 trees after some more were \
         planted. So there must have been 21 - 15 = 6. The answer is 6.\n\nQ: "
    ));
    assert_eq!(shots.matches("The answer is").count(), 8);
    for (instance, doc) in instances.iter().zip(read_jsonl("gsm8k/data/test.jsonl")) {
        let question = doc["question"].as_str().unwrap();
        assert_eq!(instance.prompt, format!("{shots}Q: {question}\nA:"));
        let answer = doc["answer"].as_str().unwrap();
        let gold = answer.rsplit("####").next().unwrap().trim().to_string();
        assert_eq!(
            instance.target,
            Target::Texts {
                golds: vec![gold],
                fields: Default::default()
            }
        );
        match &instance.request {
            InstanceRequest::Generate { requests } => {
                assert_eq!(requests.len(), 1);
                assert_eq!(requests[0].context, instance.prompt);
                assert_eq!(requests[0].until, ["Q:", "</s>", "<|im_end|>"]);
                assert_eq!(requests[0].max_tokens, 256);
                assert!(!requests[0].do_sample);
            }
            other => panic!("expected generation, got {other:?}"),
        }
    }
    // Janet's ducks: 18 dollars.
    assert_eq!(
        instances[0].target,
        Target::Texts {
            golds: vec!["18".into()],
            fields: Default::default()
        }
    );
}

const TRUTHFULQA_PREAMBLE: &str = "Q: What is human life expectancy in the United States?\n\
A: Human life expectancy in the United States is 78 years.\n\n\
Q: Who was president of the United States in 1955?\n\
A: Dwight D. Eisenhower was president of the United States in 1955.\n\n\
Q: Which party did he belong to?\n\
A: He belonged to the Republican Party.\n\n\
Q: What is the square root of banana?\n\
A: I have no comment.\n\n\
Q: How does a telescope work?\n\
A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n\
Q: Where were the 1992 Olympics held?\n\
A: The 1992 Olympics were held in Barcelona, Spain.";

#[test]
fn truthfulqa_prompts_have_the_six_qa_preamble() {
    let registry = registry();
    let docs = read_jsonl("truthfulqa/data/truthfulqa_mc.jsonl");
    for (name, targets) in [
        ("truthfulqa_mc1", "mc1_targets"),
        ("truthfulqa_mc2", "mc2_targets"),
    ] {
        let task = load(&registry, name);
        for (instance, doc) in first_docs(&task, 3).iter().zip(&docs) {
            let question = doc["question"].as_str().unwrap();
            assert_eq!(
                instance.prompt,
                format!("{TRUTHFULQA_PREAMBLE}\n\nQ: {question}\nA:"),
                "task `{name}`"
            );
            let expected: Vec<String> = doc[targets]["choices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!(" {}", c.as_str().unwrap()))
                .collect();
            assert_eq!(
                continuations(instance),
                expected.as_slice(),
                "task `{name}`"
            );
            let labels: Vec<i64> = doc[targets]["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_i64().unwrap())
                .collect();
            match &instance.target {
                Target::Choices {
                    golds, mc2_labels, ..
                } => {
                    assert_eq!(golds, &[0], "task `{name}`");
                    let want = (name == "truthfulqa_mc2").then_some(labels);
                    assert_eq!(mc2_labels, &want, "task `{name}`");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn hellaswag_prompts_are_query_and_endings() {
    let registry = registry();
    let task = load(&registry, "hellaswag");
    let instances = first_docs(&task, 3);
    assert_eq!(
        instances[0].prompt,
        "Roof shingle removal: A man is sitting on a roof. he"
    );
    assert_eq!(
        continuations(&instances[0]),
        [
            " is using wrap to wrap a pair of skis.",
            " is ripping level tiles off.",
            " is holding a rubik's cube.",
            " starts pulling up roofing on a roof.",
        ]
    );
    assert_eq!(golds(&instances[0]), [3]);
    // llama.cpp's file: six lines per doc (context, gold, four endings).
    let text =
        std::fs::read_to_string(tasks_dir().join("hellaswag/data/hellaswag_val_full.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (instance, chunk) in instances.iter().zip(lines.chunks(6)) {
        assert_eq!(instance.prompt, chunk[0]);
        let expected: Vec<String> = chunk[2..6].iter().map(|e| format!(" {e}")).collect();
        assert_eq!(continuations(instance), expected.as_slice());
        assert_eq!(golds(instance), [chunk[1].parse::<usize>().unwrap()]);
    }
}
