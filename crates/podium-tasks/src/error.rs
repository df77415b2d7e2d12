//! Errors of task loading and prompt building. Every message names the file
//! (and line, row or doc) at fault.

use std::path::PathBuf;

use crate::yaml::Loc;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{loc}: {message}")]
    Yaml { loc: Loc, message: String },

    #[error("{loc}: key `{key}` must be {expected}, found {found}")]
    WrongType {
        loc: Loc,
        key: String,
        expected: &'static str,
        found: &'static str,
    },

    #[error("{loc}: `{key}`: {message}")]
    InvalidValue {
        loc: Loc,
        key: String,
        message: String,
    },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    /// A data file's row (1-based line for JSONL/text, 1-based record for CSV).
    #[error("{path}:{row}: {message}")]
    DataRow {
        path: PathBuf,
        row: usize,
        message: String,
    },

    #[error("{}", unknown_task_message(.name, .suggestions))]
    UnknownTask {
        name: String,
        suggestions: Vec<String>,
    },

    /// A template failed on one doc of a task.
    #[error("task `{task}`, doc {doc_id}: `{field}`: {message}")]
    Template {
        task: String,
        doc_id: usize,
        field: String,
        message: String,
    },

    #[error("task `{task}`: {message}")]
    Task { task: String, message: String },

    /// Two files define the same task or group name.
    #[error("{}", duplicate_name_message(.name, .files))]
    DuplicateName { name: String, files: Vec<PathBuf> },
}

fn duplicate_name_message(name: &str, files: &[PathBuf]) -> String {
    format!(
        "`{name}` is defined by more than one file: {}; rename one (its `task:` or `group:` key)",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    )
}

fn unknown_task_message(name: &str, suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        format!(
            "unknown task `{name}` (run `podium tasks` to list the tasks, or pass a path to a task YAML)"
        )
    } else {
        format!(
            "unknown task `{name}`: did you mean {}? (run `podium tasks` to list the tasks)",
            suggestions
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl TaskError {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> TaskError {
        TaskError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(loc: &Loc, key: &str, message: impl Into<String>) -> TaskError {
        TaskError::InvalidValue {
            loc: loc.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}
