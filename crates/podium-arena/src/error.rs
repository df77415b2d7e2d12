use thiserror::Error;

/// What can go wrong turning battles into ratings or reading battle files.
#[derive(Debug, Error, PartialEq)]
pub enum ArenaError {
    /// A battle file's row is malformed: `line` is 1-based in the file.
    #[error("line {line}: field `{field}`: {message}")]
    Row {
        line: u64,
        field: String,
        message: String,
    },
    /// The battles cannot give ratings (no battles, a model battling itself…).
    #[error("{0}")]
    Input(String),
    /// `--anchor MODEL=RATING` names a model with no battles.
    #[error("anchor model `{0}` has no battles")]
    UnknownAnchor(String),
}
