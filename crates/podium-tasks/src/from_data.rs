//! A task from a plain data file (CSV, JSON Lines, a JSON array, Parquet) with no
//! YAML written by hand: the common column layouts are recognized (`input` /
//! `prompt` / `question` with `target` / `expected` / `answer`; a `choices`
//! column or `A`–`D` columns for multiple choice; `messages`, `system`, `id`,
//! `category`), every row is checked, and the equivalent lm-evaluation-harness
//! YAML is written as text. That text is the task: `podium eval -t FILE` loads
//! it through the normal YAML path and `podium task new` saves it, so the two
//! are the same task (the same content hash when saved next to the data file).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::dataset::{self, Doc};
use crate::error::TaskError;

/// The largest data file a task may be built from directly: 256 MiB.
pub const MAX_DATA_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The most columns a data file may have: 10,000.
pub const MAX_COLUMNS: usize = 10_000;

/// Row problems listed in one error; the rest are counted.
pub const MAX_ROW_ERRORS: usize = 50;

/// The extensions read as data files, with their loader.
const DATA_EXTENSIONS: &[(&str, &str)] = &[
    ("csv", "csv"),
    ("jsonl", "json"),
    ("json", "json"),
    ("parquet", "parquet"),
];

const INPUT_NAMES: &[&str] = &["input", "prompt", "question"];
const TARGET_NAMES: &[&str] = &["target", "expected", "answer"];

/// What the user told us about the file's columns (`--input-col` and friends).
#[derive(Debug, Clone, Default)]
pub struct DataTaskOptions {
    /// The task's name; by default the file's stem.
    pub name: Option<String>,
    pub input_col: Option<String>,
    pub target_col: Option<String>,
    pub choices_col: Option<String>,
    /// Metric names for `metric_list` (passed through as given); by default
    /// `exact_match` for generation, `acc` (and `acc_norm` for choice texts)
    /// for multiple choice.
    pub metrics: Vec<String>,
}

/// A recognized data file and its task.
#[derive(Debug, Clone)]
pub struct DataTask {
    pub name: String,
    /// The lm-evaluation-harness YAML of the task.
    pub yaml: String,
    /// One line saying what was recognized, for stderr.
    pub summary: String,
    pub n_rows: usize,
}

/// Whether `path` names a data file (by its extension) rather than a task YAML.
pub fn is_data_file(path: &Path) -> bool {
    loader_of(path).is_some()
}

fn loader_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    DATA_EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, loader)| *loader)
}

/// The task name a data file gets by default: its stem, with every character
/// outside letters, digits and `_` replaced by `_`.
pub fn default_task_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "task_");
    }
    name
}

/// Read `path`, recognize its layout, check every row and write the task's
/// YAML as it will live in `yaml_dir` (the data file's path is written relative
/// to it where the file lies inside it, else absolute).
pub fn data_task(
    path: &Path,
    yaml_dir: &Path,
    options: &DataTaskOptions,
) -> Result<DataTask, TaskError> {
    let loader = loader_of(path).ok_or_else(|| {
        TaskError::file(
            path,
            "not a data file: expected .csv, .jsonl, .json or .parquet",
        )
    })?;
    let meta = std::fs::metadata(path)
        .map_err(|err| TaskError::file(path, format!("cannot read: {err}")))?;
    if !meta.is_file() {
        return Err(TaskError::file(path, "not a regular file"));
    }
    if meta.len() > MAX_DATA_FILE_BYTES {
        return Err(TaskError::file(
            path,
            format!(
                "{} bytes, more than the {MAX_DATA_FILE_BYTES} a data file may have",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|err| TaskError::file(path, format!("cannot read: {err}")))?;
    let docs = dataset::parse_data_file(loader, path, bytes, None)?;
    if docs.is_empty() {
        return Err(TaskError::file(path, "has no rows"));
    }
    let name = match &options.name {
        Some(name) => name.clone(),
        None => default_task_name(path),
    };
    let layout = recognize(path, &docs, options)?;
    check_rows(path, &docs, &layout)?;
    let data_ref = data_file_reference(path, yaml_dir);
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let yaml = write_yaml(&name, loader, &data_ref, &file_name, docs.len(), &layout);
    Ok(DataTask {
        summary: summary(&file_name, docs.len(), &layout),
        name,
        yaml,
        n_rows: docs.len(),
    })
}

/// How the file's columns are read.
#[derive(Debug, Clone)]
struct Layout {
    kind: Kind,
    /// The prompt column (absent for a messages task).
    input: Option<String>,
    messages: Option<String>,
    target: String,
    system: Option<String>,
    id: Option<String>,
    category: Option<String>,
    metrics: Vec<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Generation,
    /// A column holding a list of choice texts.
    ChoicesColumn {
        column: String,
        target: TargetForm,
        max_choices: usize,
    },
    /// One column per choice, `A`, `B`, …
    LetterColumns {
        letters: Vec<String>,
        target: TargetForm,
    },
}

/// How a multiple-choice target names the gold choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetForm {
    Letter,
    Index,
    Text,
}

impl TargetForm {
    fn as_str(self) -> &'static str {
        match self {
            TargetForm::Letter => "a letter",
            TargetForm::Index => "an index",
            TargetForm::Text => "the choice's text",
        }
    }
}

/// Every column name, in order of first appearance.
fn columns_of(path: &Path, docs: &[Doc]) -> Result<Vec<String>, TaskError> {
    let mut columns: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for doc in docs {
        if let Json::Object(map) = doc {
            for key in map.keys() {
                if seen.insert(key.clone()) {
                    columns.push(key.clone());
                    if columns.len() > MAX_COLUMNS {
                        return Err(TaskError::file(
                            path,
                            format!("more than {MAX_COLUMNS} columns"),
                        ));
                    }
                }
            }
        }
    }
    Ok(columns)
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one column (matched without regard to case) among `names`, `None` when
/// there is none, an error naming `flag` when there are several.
fn find_one(
    path: &Path,
    columns: &[String],
    names: &[&str],
    role: &str,
    flag: &str,
) -> Result<Option<String>, TaskError> {
    let found: Vec<&String> = columns
        .iter()
        .filter(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        several => Err(TaskError::file(
            path,
            format!(
                "cannot tell which column is the {role}: {} could each be; pass {flag} COLUMN (columns found: {})",
                several
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                column_list(columns)
            ),
        )),
    }
}

fn given_column(
    path: &Path,
    columns: &[String],
    given: &Option<String>,
    flag: &str,
) -> Result<Option<String>, TaskError> {
    match given {
        None => Ok(None),
        Some(column) if columns.contains(column) => Ok(Some(column.clone())),
        Some(column) => Err(TaskError::file(
            path,
            format!(
                "{flag} `{column}`: no such column (columns found: {})",
                column_list(columns)
            ),
        )),
    }
}

fn recognize(path: &Path, docs: &[Doc], options: &DataTaskOptions) -> Result<Layout, TaskError> {
    let columns = columns_of(path, docs)?;
    let messages = find_one(
        path,
        &columns,
        &["messages"],
        "chat messages",
        "--input-col",
    )?;
    let input = match given_column(path, &columns, &options.input_col, "--input-col")? {
        Some(column) => Some(column),
        None => find_one(path, &columns, INPUT_NAMES, "prompt", "--input-col")?,
    };
    // An explicitly named input column wins over a `messages` column.
    let messages = if options.input_col.is_some() {
        None
    } else {
        messages
    };
    let input = if messages.is_some() { None } else { input };
    if input.is_none() && messages.is_none() {
        return Err(TaskError::file(
            path,
            format!(
                "cannot tell which column is the prompt: no column is named input, prompt, question or messages; pass --input-col COLUMN (columns found: {})",
                column_list(&columns)
            ),
        ));
    }
    let target = match given_column(path, &columns, &options.target_col, "--target-col")? {
        Some(column) => column,
        None => find_one(path, &columns, TARGET_NAMES, "target", "--target-col")?.ok_or_else(
            || {
                TaskError::file(
                    path,
                    format!(
                        "cannot tell which column is the expected answer: no column is named target, expected or answer; pass --target-col COLUMN (columns found: {})",
                        column_list(&columns)
                    ),
                )
            },
        )?,
    };
    let choices = match given_column(path, &columns, &options.choices_col, "--choices-col")? {
        Some(column) => Some(column),
        None => find_one(path, &columns, &["choices"], "choices", "--choices-col")?,
    };
    let letters: Vec<String> = ('A'..='Z')
        .map(|c| c.to_string())
        .take_while(|l| columns.contains(l))
        .collect();
    let system = find_one(
        path,
        &columns,
        &["system", "system_prompt"],
        "system prompt",
        "a single system column",
    )?;
    let id = find_one(path, &columns, &["id"], "id", "a single id column")?;
    let category = find_one(
        path,
        &columns,
        &["category"],
        "category",
        "a single category column",
    )?;
    let kind = if let Some(column) = choices {
        let max_choices = docs
            .iter()
            .filter_map(|d| choice_list(d.get(&column)?).ok())
            .map(|c| c.len())
            .max()
            .unwrap_or(0);
        Kind::ChoicesColumn {
            target: target_form(docs, &target, max_choices),
            column,
            max_choices,
        }
    } else if letters.len() >= 2 && messages.is_none() {
        Kind::LetterColumns {
            target: target_form(docs, &target, letters.len()),
            letters,
        }
    } else {
        Kind::Generation
    };
    let metrics = if options.metrics.is_empty() {
        match &kind {
            Kind::Generation => vec!["exact_match".to_string()],
            Kind::LetterColumns { .. } => vec!["acc".to_string()],
            Kind::ChoicesColumn { .. } => vec!["acc".to_string(), "acc_norm".to_string()],
        }
    } else {
        options.metrics.clone()
    };
    let layout = Layout {
        kind,
        input,
        messages,
        target,
        system,
        id,
        category,
        metrics,
    };
    for column in layout.template_columns() {
        if !is_identifier(column) {
            return Err(TaskError::file(
                path,
                format!(
                    "column `{column}` is used in a prompt template, so its name must be letters, digits and `_` (not starting with a digit): rename it in the file"
                ),
            ));
        }
    }
    Ok(layout)
}

impl Layout {
    /// Columns that appear inside Jinja expressions of the YAML.
    fn template_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![self.target.as_str()];
        out.extend(self.input.as_deref());
        out.extend(self.messages.as_deref());
        out.extend(self.system.as_deref());
        match &self.kind {
            Kind::Generation => {}
            Kind::ChoicesColumn { column, .. } => out.push(column),
            Kind::LetterColumns { letters, .. } => out.extend(letters.iter().map(String::as_str)),
        }
        out
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !["true", "false", "none", "True", "False", "None", "loop"].contains(&name)
}

/// A cell as text: strings as they are, numbers printed; `None` for anything else.
fn text_of(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How the targets of a multiple-choice file name the gold choice: letters when
/// every target is one letter within range, indices when every target is a
/// whole number, else choice texts.
fn target_form(docs: &[Doc], target: &str, n_choices: usize) -> TargetForm {
    let targets: Vec<String> = docs
        .iter()
        .filter_map(|d| text_of(d.get(target)?))
        .collect();
    let is_letter = |t: &String| {
        let t = t.trim();
        t.len() == 1
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() && ((c as u8 - b'A') as usize) < n_choices)
    };
    if !targets.is_empty() && targets.iter().all(is_letter) {
        TargetForm::Letter
    } else if !targets.is_empty()
        && targets
            .iter()
            .all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
    {
        TargetForm::Index
    } else {
        TargetForm::Text
    }
}

/// What is wrong with a choices or messages cell; the message follows the column's
/// name ("column `choices` is not a list of choices").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    #[error("is not a JSON list of choices, e.g. [\"yes\", \"no\"]")]
    ChoicesNotJson,
    #[error("is not a list of choices")]
    NotChoices,
    #[error("holds {0}, which is not text")]
    ChoiceNotText(String),
    #[error(
        "is not a JSON list of messages ({0}), e.g. [{{\"role\": \"user\", \"content\": \"…\"}}]"
    )]
    MessagesNotJson(String),
    #[error("is not a JSON list of messages")]
    MessagesNotAList,
    #[error("is not a list of messages")]
    NotMessages,
    #[error("is an empty list of messages")]
    NoMessages,
    #[error("message {index}: role `{role}` is not system, user or assistant")]
    Role { index: usize, role: String },
    #[error("message {0} needs a `role` and a text `content`")]
    NoRoleOrContent(usize),
    #[error("the last message must be the user's (the model answers it)")]
    LastNotUser,
}

/// A choices cell: a list of texts, or (CSV) a JSON list written as text.
fn choice_list(value: &Json) -> Result<Vec<String>, CellError> {
    let parsed;
    let items = match value {
        Json::Array(items) => items,
        Json::String(s) => {
            parsed = serde_json::from_str::<Json>(s).map_err(|_| CellError::ChoicesNotJson)?;
            match &parsed {
                Json::Array(items) => items,
                _ => return Err(CellError::ChoicesNotJson),
            }
        }
        _ => return Err(CellError::NotChoices),
    };
    items
        .iter()
        .map(|item| text_of(item).ok_or_else(|| CellError::ChoiceNotText(item.to_string())))
        .collect()
}

/// A messages cell: an OpenAI message list, or (CSV) one written as JSON text.
/// Public for the task loader, which reads the column the same way.
pub fn message_list(value: &Json) -> Result<Vec<podium_core::ChatMessage>, CellError> {
    let parsed;
    let items = match value {
        Json::Array(items) => items,
        Json::String(s) => {
            parsed = serde_json::from_str::<Json>(s)
                .map_err(|err| CellError::MessagesNotJson(err.to_string()))?;
            match &parsed {
                Json::Array(items) => items,
                _ => return Err(CellError::MessagesNotAList),
            }
        }
        _ => return Err(CellError::NotMessages),
    };
    if items.is_empty() {
        return Err(CellError::NoMessages);
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let role = item.get("role").and_then(Json::as_str);
        let content = item.get("content").and_then(Json::as_str);
        match (role, content) {
            (Some(role @ ("system" | "user" | "assistant")), Some(content)) => {
                messages.push(podium_core::ChatMessage {
                    role: role.to_string(),
                    content: content.to_string(),
                })
            }
            (Some(role), Some(_)) => {
                return Err(CellError::Role {
                    index: i + 1,
                    role: role.to_string(),
                });
            }
            _ => {
                return Err(CellError::NoRoleOrContent(i + 1));
            }
        }
    }
    if messages.last().is_some_and(|m| m.role != "user") {
        return Err(CellError::LastNotUser);
    }
    Ok(messages)
}

/// Row problems, bounded: the first [`MAX_ROW_ERRORS`] listed, the rest counted.
struct RowErrors {
    listed: Vec<String>,
    n_more: usize,
}

impl RowErrors {
    fn push(&mut self, row: usize, column: &str, message: impl Into<String>) {
        if self.listed.len() < MAX_ROW_ERRORS {
            self.listed
                .push(format!("row {row}, column `{column}`: {}", message.into()));
        } else {
            self.n_more += 1;
        }
    }
}

fn check_rows(path: &Path, docs: &[Doc], layout: &Layout) -> Result<(), TaskError> {
    let mut errors = RowErrors {
        listed: Vec::new(),
        n_more: 0,
    };
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let row = i + 1;
        let required_text = |column: &str, errors: &mut RowErrors| -> Option<String> {
            match doc.get(column) {
                None | Some(Json::Null) => {
                    errors.push(row, column, "missing");
                    None
                }
                Some(value) => match text_of(value) {
                    Some(text) if text.trim().is_empty() => {
                        errors.push(row, column, "empty");
                        None
                    }
                    Some(text) => Some(text),
                    None => {
                        errors.push(row, column, format!("is {value}, expected text"));
                        None
                    }
                },
            }
        };
        if let Some(input) = &layout.input {
            required_text(input, &mut errors);
        }
        if let Some(column) = &layout.messages {
            match doc.get(column) {
                None | Some(Json::Null) => errors.push(row, column, "missing"),
                Some(value) => {
                    if let Err(why) = message_list(value) {
                        errors.push(row, column, why.to_string());
                    }
                }
            }
        }
        let target = required_text(&layout.target, &mut errors);
        match &layout.kind {
            Kind::Generation => {}
            Kind::ChoicesColumn {
                column,
                target: form,
                ..
            } => {
                let choices = match doc.get(column) {
                    None | Some(Json::Null) => {
                        errors.push(row, column, "missing");
                        None
                    }
                    Some(value) => match choice_list(value) {
                        Ok(choices) if choices.len() < 2 => {
                            errors.push(row, column, "needs at least two choices");
                            None
                        }
                        Ok(choices) => Some(choices),
                        Err(why) => {
                            errors.push(row, column, why.to_string());
                            None
                        }
                    },
                };
                if let (Some(choices), Some(target)) = (choices, target) {
                    check_target(row, &layout.target, &target, *form, &choices, &mut errors);
                }
            }
            Kind::LetterColumns {
                letters,
                target: form,
            } => {
                let choices: Vec<String> = letters
                    .iter()
                    .map(|l| required_text(l, &mut errors).unwrap_or_default())
                    .collect();
                if let Some(target) = target {
                    check_target(row, &layout.target, &target, *form, &choices, &mut errors);
                }
            }
        }
        if let Some(column) = &layout.system {
            match doc.get(column) {
                None | Some(Json::Null) | Some(Json::String(_)) => {}
                Some(value) => errors.push(row, column, format!("is {value}, expected text")),
            }
        }
        if let Some(column) = &layout.category {
            required_text(column, &mut errors);
        }
        if let Some(column) = &layout.id
            && let Some(id) = required_text(column, &mut errors)
        {
            if let Some(first) = ids.get(&id) {
                errors.push(
                    row,
                    column,
                    format!("id `{id}` is also the id of row {first}"),
                );
            } else {
                ids.insert(id, row);
            }
        }
    }
    if errors.listed.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "{} problem{} in the rows (row 1 is the first data row); nothing was run:",
        errors.listed.len() + errors.n_more,
        if errors.listed.len() + errors.n_more == 1 {
            ""
        } else {
            "s"
        }
    );
    for line in &errors.listed {
        let _ = write!(message, "\n  {line}");
    }
    if errors.n_more > 0 {
        let _ = write!(message, "\n  … and {} more", errors.n_more);
    }
    Err(TaskError::file(path, message))
}

fn check_target(
    row: usize,
    column: &str,
    target: &str,
    form: TargetForm,
    choices: &[String],
    errors: &mut RowErrors,
) {
    let ok = match form {
        TargetForm::Letter => {
            let t = target.trim();
            t.len() == 1
                && t.chars().next().is_some_and(|c| {
                    c.is_ascii_uppercase() && ((c as u8 - b'A') as usize) < choices.len()
                })
        }
        TargetForm::Index => target.parse::<usize>().is_ok_and(|i| i < choices.len()),
        TargetForm::Text => choices.iter().any(|c| c == target),
    };
    if !ok {
        errors.push(
            row,
            column,
            format!(
                "`{target}` does not name one of the {} choices (targets are {} here)",
                choices.len(),
                form.as_str()
            ),
        );
    }
}

/// The data file as the YAML in `yaml_dir` names it: relative when it lies
/// inside that folder, else absolute.
fn data_file_reference(path: &Path, yaml_dir: &Path) -> String {
    let absolute = |p: &Path| -> PathBuf { std::fs::canonicalize(p).unwrap_or_else(|_| p.into()) };
    let file = absolute(path);
    let dir = absolute(yaml_dir);
    match file.strip_prefix(&dir) {
        Ok(relative) => relative.to_string_lossy().into_owned(),
        Err(_) => file.to_string_lossy().into_owned(),
    }
}

/// A YAML scalar: JSON's double-quoted strings are valid YAML.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn letters_list(n: usize) -> String {
    let letters: Vec<String> = ('A'..='Z').take(n).map(|c| format!("'{c}'")).collect();
    format!("[{}]", letters.join(", "))
}

fn write_yaml(
    name: &str,
    loader: &str,
    data_ref: &str,
    file_name: &str,
    n_rows: usize,
    layout: &Layout,
) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by Podium from {file_name} ({n_rows} rows): {}.",
        describe(layout)
    );
    y.push_str(
        "# Runs in Podium (`podium eval -m MODEL -t TASK --tasks-dir DIR`) and in lm-evaluation-harness\n\
         # (`lm_eval --include_path DIR --tasks TASK`; lm-eval reads a relative `data_files` path from\n\
         # the folder it runs in). Keys marked Podium-only are ignored by lm-eval.\n",
    );
    let _ = writeln!(y, "task: {}", quoted(name));
    let _ = writeln!(y, "dataset_path: {loader}");
    y.push_str("dataset_kwargs:\n  data_files:\n");
    let _ = writeln!(y, "    test: {}", quoted(data_ref));
    y.push_str("test_split: test\n");
    if let Some(system) = &layout.system {
        // lm-eval renders `description` per doc; under a chat template it is the
        // system message, else it precedes the prompt.
        let _ = writeln!(
            y,
            "description: {}",
            quoted(&format!(
                "{{% if {system} %}}{{{{{system}}}}}\n\n{{% endif %}}"
            ))
        );
    }
    let text = match (&layout.input, &layout.messages) {
        (_, Some(messages)) => format!(
            "{{% for m in {messages} %}}{{{{m.role}}}}: {{{{m.content}}}}\n\n{{% endfor %}}assistant:"
        ),
        (Some(input), None) => match &layout.kind {
            Kind::LetterColumns { letters, .. } => {
                let mut t = format!("{{{{{input}}}}}");
                for l in letters {
                    let _ = write!(t, "\n{l}. {{{{{l}}}}}");
                }
                t.push_str("\nAnswer:");
                t
            }
            Kind::ChoicesColumn { .. } => format!("Question: {{{{{input}}}}}\nAnswer:"),
            Kind::Generation if input.eq_ignore_ascii_case("question") => {
                format!("Question: {{{{{input}}}}}\nAnswer:")
            }
            Kind::Generation => format!("{{{{{input}}}}}"),
        },
        (None, None) => String::new(),
    };
    let target = &layout.target;
    match &layout.kind {
        Kind::Generation => {
            y.push_str("output_type: generate_until\n");
            let _ = writeln!(y, "doc_to_text: {}", quoted(&text));
            let _ = writeln!(y, "doc_to_target: {}", quoted(&format!("{{{{{target}}}}}")));
            y.push_str(
                "generation_kwargs:\n  until: [\"\\n\\n\"]\n  max_gen_toks: 256\n  do_sample: false\n  temperature: 0.0\n",
            );
        }
        Kind::ChoicesColumn {
            column,
            target: form,
            max_choices,
        } => {
            y.push_str("output_type: multiple_choice\n");
            let _ = writeln!(y, "doc_to_text: {}", quoted(&text));
            let doc_to_target = match form {
                TargetForm::Letter => format!(
                    "{{{{{}.index({target}.strip())}}}}",
                    letters_list(*max_choices)
                ),
                TargetForm::Index | TargetForm::Text => format!("{{{{{target}}}}}"),
            };
            let _ = writeln!(y, "doc_to_target: {}", quoted(&doc_to_target));
            let _ = writeln!(y, "doc_to_choice: {}", quoted(&format!("{{{{{column}}}}}")));
        }
        Kind::LetterColumns {
            letters,
            target: form,
        } => {
            y.push_str("output_type: multiple_choice\n");
            let _ = writeln!(y, "doc_to_text: {}", quoted(&text));
            let doc_to_target = match form {
                TargetForm::Letter => format!(
                    "{{{{{}.index({target}.strip())}}}}",
                    letters_list(letters.len())
                ),
                TargetForm::Index => format!("{{{{{target}}}}}"),
                TargetForm::Text => {
                    format!("{{{{[{}].index({target})}}}}", letters.join(", "))
                }
            };
            let _ = writeln!(y, "doc_to_target: {}", quoted(&doc_to_target));
            let _ = writeln!(
                y,
                "doc_to_choice: [{}]",
                letters
                    .iter()
                    .map(|l| quoted(l))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    y.push_str("metric_list:\n");
    for metric in &layout.metrics {
        let _ = writeln!(y, "  - metric: {}", quoted(metric));
        if metric == "exact_match" {
            // Answers are compared ignoring case, punctuation and surrounding
            // white space: a model's " Billing." is the target `billing`.
            y.push_str(
                "    aggregation: mean\n    higher_is_better: true\n    ignore_case: true\n    ignore_punctuation: true\n    regexes_to_ignore: [\"^\\\\s+\", \"\\\\s+$\"]\n",
            );
        }
    }
    y.push_str("metadata:\n  version: 1.0\n");
    if let Some(category) = &layout.category {
        y.push_str(
            "  # Podium-only: per-category scores (lm-eval has no such feature and ignores it).\n",
        );
        let _ = writeln!(y, "  doc_to_category: {}", quoted(category));
    }
    if let Some(messages) = &layout.messages {
        y.push_str(
            "  # Podium-only: the prompt is this column's chat messages (an OpenAI message list):\n  # rendered with the model's chat template under --apply-chat-template, sent as native\n  # chat messages to chat APIs. lm-eval reads only `doc_to_text` (a list column only).\n",
        );
        let _ = writeln!(y, "  doc_to_messages: {}", quoted(messages));
    } else if layout.system.is_some() {
        y.push_str(
            "  # Podium-only: chat APIs get the system prompt and the question as chat messages.\n",
        );
        y.push_str("  native_chat: true\n");
    }
    y
}

fn describe(layout: &Layout) -> String {
    let mut parts = Vec::new();
    match &layout.kind {
        Kind::Generation => parts.push("generation task".to_string()),
        Kind::ChoicesColumn { column, target, .. } => parts.push(format!(
            "multiple-choice task: choices `{column}`, target as {}",
            target.as_str()
        )),
        Kind::LetterColumns { letters, target } => parts.push(format!(
            "multiple-choice task: choices in columns {}, target as {}",
            letters.join("/"),
            target.as_str()
        )),
    }
    match (&layout.input, &layout.messages) {
        (_, Some(m)) => parts.push(format!("messages `{m}`")),
        (Some(i), None) => parts.push(format!("input `{i}`")),
        (None, None) => {}
    }
    parts.push(format!("target `{}`", layout.target));
    if let Some(s) = &layout.system {
        parts.push(format!("system `{s}`"));
    }
    if let Some(c) = &layout.category {
        parts.push(format!("category `{c}`"));
    }
    if let Some(i) = &layout.id {
        parts.push(format!("id `{i}` (unique)"));
    }
    parts.push(format!(
        "metric{} {}",
        if layout.metrics.len() == 1 { "" } else { "s" },
        layout.metrics.join(", ")
    ));
    parts.join(", ")
}

fn summary(file_name: &str, n_rows: usize, layout: &Layout) -> String {
    format!("{file_name}: {n_rows} rows, {}", describe(layout))
}
