//! `podium task new NAME --from FILE`: the lm-evaluation-harness YAML of a data
//! file, written for the user to edit and share. It is the very text
//! `podium eval -t FILE` runs, so the saved task scores the same.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use podium_tasks::Registry;
use podium_tasks::from_data::{self, DataTaskOptions};

use crate::UserError;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TaskCommand {
    /// Write the lm-eval YAML of a data file (CSV, JSONL, JSON, Parquet) as task NAME
    #[command(after_help = "Examples:
  podium task new tickets --from tickets.csv                 # writes ./tickets.yaml
  podium task new tickets --from data/tickets.csv --tasks-dir my-tasks
  podium eval -m local:smollm2-135m-instruct -t tickets --tasks-dir my-tasks

The YAML is what `podium eval -t FILE` runs: the same columns are recognized (see
`podium eval --help`), the same rows checked. Written next to the data file it is the
very same task (the same content hash, so the same board column). It runs unchanged
in lm-evaluation-harness (`lm_eval --include_path DIR --tasks NAME`) unless a key is
marked Podium-only in its comments. An existing file is kept unless --force.")]
    New(NewArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The task's name (letters, digits, `_` and `-`); the file is NAME.yaml
    pub(crate) name: String,
    /// The data file: .csv, .jsonl, .json or .parquet
    #[arg(long, value_name = "FILE")]
    pub(crate) from: PathBuf,
    /// Replace NAME.yaml if it exists
    #[arg(long)]
    pub(crate) force: bool,
    /// The column holding the prompt
    #[arg(long, value_name = "COLUMN")]
    pub(crate) input_col: Option<String>,
    /// The column holding the expected answer
    #[arg(long, value_name = "COLUMN")]
    pub(crate) target_col: Option<String>,
    /// The column holding the choices (a JSON list): multiple choice
    #[arg(long, value_name = "COLUMN")]
    pub(crate) choices_col: Option<String>,
    /// The metrics, comma-separated (default: exact_match for generation, acc for multiple choice)
    #[arg(long, value_delimiter = ',', value_name = "METRIC")]
    pub(crate) metric: Vec<String>,
}

pub(crate) fn run(tasks_dirs: &[PathBuf], command: &TaskCommand) -> anyhow::Result<ExitCode> {
    match command {
        TaskCommand::New(args) => new_task(tasks_dirs.first().map(PathBuf::as_path), args),
    }
}

fn new_task(tasks_dir: Option<&Path>, args: &NewArgs) -> anyhow::Result<ExitCode> {
    let valid_name = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(UserError(format!(
            "task name `{}`: use letters, digits, `_` and `-` only",
            args.name
        ))
        .into());
    }
    if !from_data::is_data_file(&args.from) {
        return Err(UserError(format!(
            "--from {}: not a data file (expected .csv, .jsonl, .json or .parquet)",
            args.from.display()
        ))
        .into());
    }
    let dir = tasks_dir.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let target = dir.join(format!("{}.yaml", args.name));
    if target.exists() && !args.force {
        return Err(UserError(format!(
            "{} exists: pass --force to replace it",
            target.display()
        ))
        .into());
    }
    let options = DataTaskOptions {
        name: Some(args.name.clone()),
        input_col: args.input_col.clone(),
        target_col: args.target_col.clone(),
        choices_col: args.choices_col.clone(),
        metrics: args.metric.clone(),
    };
    let task = from_data::data_task(&args.from, dir, &options)?;
    // The text must load as a task before it is written (an unknown --metric
    // is reported here, naming the key, and nothing is written).
    Registry::default().add_text(&task.yaml, &target)?;
    std::fs::write(&target, &task.yaml)
        .with_context(|| format!("cannot write {}", target.display()))?;
    crate::note!("{}", task.summary);
    let tasks_dir_flag = match tasks_dir {
        Some(dir) => format!(" --tasks-dir {}", dir.display()),
        None => " --tasks-dir .".to_string(),
    };
    crate::note!(
        "wrote {}; run it with: podium eval -m MODEL -t {}{tasks_dir_flag}",
        target.display(),
        args.name
    );
    Ok(ExitCode::SUCCESS)
}
