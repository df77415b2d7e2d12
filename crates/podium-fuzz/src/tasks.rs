//! Fuzz targets of `podium-tasks`: task YAML folders (includes, groups, tags,
//! then every selected task's data and prompts) and each dataset loader.

use std::path::Path;

use podium_tasks::{BuildOptions, Registry, Task, dataset};

use crate::Target;

pub const TARGETS: &[Target] = &[
    Target {
        name: "task_yaml",
        run: task_yaml,
    },
    Target {
        name: "dataset_json",
        run: dataset_json,
    },
    Target {
        name: "dataset_csv",
        run: dataset_csv,
    },
    Target {
        name: "dataset_parquet",
        run: dataset_parquet,
    },
    Target {
        name: "dataset_llama_cpp_hellaswag",
        run: dataset_llama_cpp_hellaswag,
    },
    Target {
        name: "ifeval_checkers",
        run: ifeval_checkers,
    },
];

/// IFEval's instruction checkers on arbitrary responses, and its argument parser on
/// arbitrary arguments. The input's first line is a JSON object of arguments given
/// to the instruction the first byte picks (any error is fine); the rest is the
/// response, checked strict and loose by all 25 instructions with fixed arguments
/// whose keywords, phrases and markers are the first line's words, so that patterns
/// built from user text are exercised too.
pub fn ifeval_checkers(data: &[u8]) {
    use podium_tasks::ifeval::{INSTRUCTION_IDS, Instructions};
    use serde_json::json;

    let text = String::from_utf8_lossy(data);
    let (head, response) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(kwargs) = serde_json::from_str::<serde_json::Value>(head) {
        let id = INSTRUCTION_IDS
            [usize::from(data.first().copied().unwrap_or(0)) % INSTRUCTION_IDS.len()];
        if let Ok(instructions) = Instructions::parse(&[id.to_string()], &[kwargs]) {
            instructions.verdicts(response);
        }
    }
    let word = head.split_whitespace().next().unwrap_or("word");
    let ids: Vec<String> = INSTRUCTION_IDS.iter().map(|id| id.to_string()).collect();
    let kwargs: Vec<serde_json::Value> = INSTRUCTION_IDS
        .iter()
        .map(|id| match *id {
            "keywords:existence" => json!({"keywords": [word]}),
            "keywords:frequency" => {
                json!({"keyword": word, "frequency": 2, "relation": "at least"})
            }
            "keywords:forbidden_words" => json!({"forbidden_words": [word]}),
            "keywords:letter_frequency" => {
                json!({"letter": "e", "let_frequency": 3, "let_relation": "less than"})
            }
            "language:response_language" => json!({"language": "de"}),
            "length_constraints:number_sentences" => {
                json!({"num_sentences": 3, "relation": "less than"})
            }
            "length_constraints:number_paragraphs" => json!({"num_paragraphs": 2}),
            "length_constraints:number_words" => json!({"num_words": 5, "relation": "at least"}),
            "length_constraints:nth_paragraph_first_word" => {
                json!({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": word})
            }
            "detectable_content:number_placeholders" => json!({"num_placeholders": 1}),
            "detectable_content:postscript" => json!({"postscript_marker": word}),
            "detectable_format:number_bullet_lists" => json!({"num_bullets": 2}),
            "detectable_format:number_highlighted_sections" => json!({"num_highlights": 1}),
            "detectable_format:multiple_sections" => {
                json!({"section_spliter": word, "num_sections": 2})
            }
            "combination:repeat_prompt" => json!({"prompt_to_repeat": word}),
            "startend:end_checker" => json!({"end_phrase": word}),
            "change_case:capital_word_frequency" => {
                json!({"capital_frequency": 2, "capital_relation": "at least"})
            }
            _ => json!({}),
        })
        .collect();
    // A word that is not a valid pattern makes the set fail to parse: an error, fine.
    if let Ok(instructions) = Instructions::parse(&ids, &kwargs) {
        instructions.verdicts(response);
    }
}

/// The line that starts a new file in a `task_yaml` input; the rest of the
/// line names the file (`%% data.jsonl`). The first file is `task.yaml`.
pub const FILE_MARKER: &str = "%% ";

/// Files, tasks and docs one `task_yaml` input may make, so each input runs fast.
const MAX_FILES: usize = 8;
const MAX_SELECTED: usize = 4;
const MAX_DOCS: usize = 4;

/// A folder of up to [`MAX_FILES`] files (task YAMLs, `include`d bases, groups,
/// data) read the way `--tasks-dir` is: discovery, then for a few of the
/// names found, selection (groups and tags expand), loading the data and
/// building the first prompts. Any error is a fine answer; a panic is not.
pub fn task_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    for (i, (name, content)) in split_files(&text).into_iter().enumerate() {
        if i >= MAX_FILES {
            break;
        }
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(path, content);
    }
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let names: Vec<String> = registry
        .listing()
        .into_iter()
        .map(|row| row.name)
        .take(MAX_SELECTED)
        .collect();
    for name in names {
        let Ok(selections) = registry.resolve(std::slice::from_ref(&name)) else {
            continue;
        };
        let mut tasks = Vec::new();
        for selection in &selections {
            selection.task_names(&mut tasks);
        }
        for task_name in tasks.iter().take(MAX_SELECTED) {
            let Some(config) = registry.task_config(task_name) else {
                continue;
            };
            let Ok(task) = Task::load(config.clone()) else {
                continue;
            };
            let options = BuildOptions {
                limit: Some(MAX_DOCS),
                ..BuildOptions::default()
            };
            let _ = task.build_instances(&options, None);
        }
    }
}

/// `(file name, content)` pairs of a `task_yaml` input. Names are kept to
/// safe relative paths inside the folder (letters, digits, `_`, `-`, `.`, up to two
/// levels of sub-folder); anything else becomes `fN.yaml`.
pub fn split_files(text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = vec![("task.yaml".into(), String::new())];
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(FILE_MARKER) {
            let n = files.len();
            files.push((safe_name(rest.trim(), n), String::new()));
        } else if let Some((_, content)) = files.last_mut() {
            content.push_str(line);
        }
    }
    files
}

fn safe_name(name: &str, n: usize) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = !name.is_empty()
        && name.len() <= 40
        && parts.len() <= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    if ok {
        name.to_string()
    } else {
        format!("f{n}.yaml")
    }
}

fn load(loader: &str, data: &[u8], column_names: Option<&[String]>) {
    let _ = dataset::parse_data_file(loader, Path::new("fuzz"), data.to_vec(), column_names);
}

/// The `json` loader: a JSON array of objects, or JSON Lines.
pub fn dataset_json(data: &[u8]) {
    load("json", data, None);
}

/// The `csv` loader, with a header row, or (when the input starts with `!`)
/// with `dataset_kwargs.column_names`.
pub fn dataset_csv(data: &[u8]) {
    match data.strip_prefix(b"!") {
        Some(rest) => {
            let names = ["question".to_string(), "answer".to_string()];
            load("csv", rest, Some(&names));
        }
        None => load("csv", data, None),
    }
}

/// The `parquet` loader (the parquet crate's own panics are caught by the
/// loader; see fuzz/fuzz_targets/dataset_parquet.rs).
pub fn dataset_parquet(data: &[u8]) {
    load("parquet", data, None);
}

/// The `llama_cpp_hellaswag` loader: six lines per task.
pub fn dataset_llama_cpp_hellaswag(data: &[u8]) {
    load("llama_cpp_hellaswag", data, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_split_into_safe_file_names() {
        let files = split_files("task: a\n%% data.jsonl\n{}\n%% ../../etc/x\nb\n%% sub/c.yaml\n");
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["task.yaml", "data.jsonl", "f2.yaml", "sub/c.yaml"]);
        assert_eq!(files[0].1, "task: a\n");
        assert_eq!(files[1].1, "{}\n");
    }
}
