//! The `podium` binary: parses flags, runs the command, and turns errors into
//! exit codes (2 for bad input, 1 for everything else), printing the whole
//! error chain.

mod arena_cmd;
mod arena_judge_cmd;
mod arena_source;
/// `--quiet`: only results, warnings and errors; no notes, no progress bars.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A note on stderr (what is happening, where things went), left out with `--quiet`.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use note;

/// A progress bar of `len` steps that draws nothing with `--quiet`.
pub(crate) fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if quiet() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    }
}

mod args;
mod bench_cmd;
mod board;
mod board_cmd;
mod commands;
mod demo_cmd;
mod local_cmd;
mod paths;
mod serve_cmd;
mod store_cmd;
mod task_cmd;
mod worker_cmd;

use std::process::ExitCode;

use clap::Parser;

/// An error caused by what the user gave us (flags, files, task configs):
/// exit code 2.
#[derive(Debug)]
pub(crate) struct UserError(pub(crate) String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Write to stdout; a reader that went away (`podium board | head`) ends the
/// program quietly instead of panicking.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(err) => Err(anyhow::Error::new(err).context("cannot write to stdout")),
    }
}

fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<UserError>()
            || cause.is::<podium_tasks::TaskError>()
            || cause.is::<podium_core::ModelSpecError>()
            || cause.is::<podium_backends::OpenError>()
            || matches!(
                cause.downcast_ref::<podium_eval::EvalError>(),
                Some(podium_eval::EvalError::Task(_))
            )
    })
}

/// Warnings (a request retried, with why) and `podium serve`'s log go to
/// stderr; `PODIUM_LOG` (tracing's filter syntax, e.g. `debug` or
/// `podium_backends=debug`) changes what is shown.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PODIUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,podium_web=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Makes every chat template render in a child process with a memory limit: a
/// template comes from a model file, and minijinja cannot bound its memory.
fn install_chat_template_sandbox() -> anyhow::Result<()> {
    use anyhow::Context;
    use podium_tokenizer::sandbox;
    // On Linux, `/proc/self/exe` (resolved in the child between fork and exec) still
    // starts this very program after its file was replaced or deleted, e.g. by an
    // upgrade while `serve-model` runs.
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let program = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe()
            .context("cannot find this program's executable (for the chat-template sandbox)")?
    };
    sandbox::install(sandbox::SandboxSettings::from_env(program)?);
    Ok(())
}

fn main() -> ExitCode {
    // The chat-template sandbox is this executable started with one argument; see
    // `podium_tokenizer::sandbox`.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if raw
        .first()
        .is_some_and(|a| a == podium_tokenizer::sandbox::SANDBOX_ARG)
    {
        return podium_tokenizer::sandbox::serve(raw.get(1..).unwrap_or_default());
    }
    let args = args::Args::parse();
    QUIET.store(args.quiet, std::sync::atomic::Ordering::Relaxed);
    init_logging();
    // A panic the program catches and reports as an error (inside the parquet
    // reader) prints nothing of its own; every other panic prints as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !podium_tasks::dataset::catching_panics() {
            default_hook(info);
        }
    }));
    if let Err(err) = install_chat_template_sandbox() {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    match commands::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if is_user_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
