//! The subcommands: each resolves its settings, does the work and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use podium_eval::{EvalOptions, Progress};
use podium_store::{Location, Store};
use podium_tasks::from_data::{self, DataTaskOptions};
use podium_tasks::results::{MetricResult, TaskResult};
use podium_tasks::{Registry, Selection, Task};

use crate::UserError;
use crate::args::{Args, Command, EvalArgs, Format};
use crate::board::Table;
use crate::paths;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args.threads.or_else(|| {
        std::env::var("PODIUM_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
    });
    if let Some(threads) = threads {
        podium_local::set_thread_count(threads);
    }
    // Threads for CPU work outside the local engine (the arena's bootstrap).
    let threads = threads
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let db = database_location(args.db.as_deref())?;
    let mut dirs = vec![paths::bundled_tasks_dir()];
    dirs.extend(args.tasks_dirs.iter().cloned());
    match args.command {
        Command::Tasks { tag, no_counts } => list_tasks(&dirs, tag.as_deref(), no_counts),
        Command::Eval(eval) => run_eval(&db, &dirs, &eval),
        Command::Runs => list_runs(&db),
        Command::Demo(ref demo) => crate::demo_cmd::run(&args, demo),
        Command::Pull { model } => crate::local_cmd::pull(&model),
        Command::Tokenize {
            model,
            text,
            file,
            format,
        } => crate::local_cmd::tokenize(&model, text.as_deref(), file.as_deref(), format),
        Command::ServeModel { model, addr, queue } => {
            crate::local_cmd::serve_model(&model, &addr, queue)
        }
        Command::Bench(bench) => crate::bench_cmd::run(&db, &dirs, &bench),
        Command::Board(board) => {
            if board.speed {
                crate::bench_cmd::speed_board(&db, board.format)
            } else {
                crate::board_cmd::run(&db, &dirs, &board)
            }
        }
        Command::Serve(serve) => crate::serve_cmd::run(&db, &dirs, &serve),
        Command::Arena(arena) => crate::arena_cmd::run(&db, threads, &arena),
        Command::Task(task) => crate::task_cmd::run(&args.tasks_dirs, &task),
        Command::Store(store) => crate::store_cmd::run(&store),
        Command::Worker(worker) => crate::worker_cmd::run_worker(&db, &dirs, &worker),
        Command::Jobs(jobs) => crate::worker_cmd::run_jobs(&db, &jobs),
    }
}

/// The database `--db` / `PODIUM_DB` names (a path, `sqlite:PATH` or a
/// `postgres://` URL), or the default SQLite file.
pub(crate) fn database_location(db: Option<&Path>) -> anyhow::Result<Location> {
    match db {
        Some(db) => Ok(Location::parse(db.as_os_str())?),
        None => Ok(Location::Sqlite(paths::default_db())),
    }
}

pub(crate) fn open_store(db: &Location) -> anyhow::Result<Store> {
    Store::open_location(db).with_context(|| format!("cannot open the database {db}"))
}

fn registry(dirs: &[PathBuf]) -> Registry {
    let registry = Registry::discover(dirs);
    for warning in &registry.warnings {
        eprintln!("warning: {warning}");
    }
    registry
}

fn list_tasks(dirs: &[PathBuf], tag: Option<&str>, no_counts: bool) -> anyhow::Result<ExitCode> {
    let mut registry = registry(dirs);
    for err in registry.broken_files() {
        eprintln!("warning: skipped: {err}");
    }
    let listing = registry.listing();
    let members: Option<Vec<String>> = match tag {
        None => None,
        Some(tag) => {
            let selections = registry.resolve(&[tag.to_string()])?;
            let mut names = Vec::new();
            for selection in &selections {
                selection.task_names(&mut names);
            }
            Some(names)
        }
    };
    let mut table = Table::new(&[
        ("name", false),
        ("kind", false),
        ("output type", false),
        ("shots", true),
        ("docs", true),
        ("tags / members", false),
    ]);
    for row in listing {
        if let Some(members) = &members
            && !members.contains(&row.name)
        {
            continue;
        }
        let docs = if row.kind == "task" && !no_counts {
            match registry.task_config(&row.name).cloned().map(Task::load) {
                Some(Ok(task)) => task.n_docs().to_string(),
                Some(Err(err)) => {
                    eprintln!("warning: task `{}`: {err}", row.name);
                    "error".to_string()
                }
                None => String::new(),
            }
        } else {
            String::new()
        };
        table.push(vec![
            row.name.clone(),
            row.kind.to_string(),
            row.output_type.unwrap_or("").to_string(),
            row.num_fewshot.map(|n| n.to_string()).unwrap_or_default(),
            docs,
            if row.kind == "task" {
                row.tags.join(", ")
            } else {
                format!("{} members", row.n_members)
            },
        ]);
    }
    crate::emit(&table.render(Format::Table)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Progress bars on stderr, one per task (hidden when stderr is not a terminal).
struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn task_started(&self, task: &str, total: usize, done: usize) {
        let bar = crate::progress_bar(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} docs {per_sec} {elapsed} (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(task.to_string());
        bar.set_position(done as u64);
        if done > 0 {
            bar.set_message(format!("resumed: {done} stored"));
        }
        if let Ok(mut current) = self.current.lock() {
            *current = Some(bar);
        }
    }

    fn docs_done(&self, n: usize) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref()
        {
            bar.inc(n as u64);
        }
    }

    fn task_finished(&self, _task: &str) {
        if let Ok(mut current) = self.current.lock()
            && let Some(bar) = current.take()
        {
            bar.finish();
        }
    }
}

/// The tasks that `requested` (names, tags, groups or YAML paths) selects, loaded
/// with their data; `flag` names the option in the error for an empty selection.
pub(crate) fn load_tasks(
    dirs: &[PathBuf],
    requested: &[String],
    flag: &str,
    data_options: &DataTaskOptions,
) -> anyhow::Result<(Vec<Task>, Vec<Selection>)> {
    let mut registry = registry(dirs);
    let n_discovery_warnings = registry.warnings.len();
    // A data file is a task of its own: its YAML is built from the columns and
    // added as if it lay beside the file, then selected by name.
    let mut requested = requested.to_vec();
    for item in &mut requested {
        let path = Path::new(item.trim());
        if !from_data::is_data_file(path) {
            continue;
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let task = from_data::data_task(path, &dir, data_options)?;
        crate::note!("{}", task.summary);
        registry.add_text(&task.yaml, &dir.join(format!("{}.yaml", task.name)))?;
        *item = task.name;
    }
    let selections = registry.resolve(&requested)?;
    // A task YAML given by path is read only now, so its unknown-key warnings
    // come after discovery's.
    for warning in &registry.warnings[n_discovery_warnings..] {
        eprintln!("warning: {warning}");
    }
    let mut names = Vec::new();
    for selection in &selections {
        selection.task_names(&mut names);
    }
    if names.is_empty() {
        return Err(UserError(format!(
            "no tasks selected: pass {flag} with task names or YAML paths"
        ))
        .into());
    }
    let tasks = names
        .iter()
        .map(|name| {
            let config = registry
                .task_config(name)
                .cloned()
                .ok_or_else(|| UserError(format!("task `{name}` is not loaded")))?;
            Ok(Task::load(config)?)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((tasks, selections))
}

fn run_eval(db: &Location, dirs: &[PathBuf], args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let data_options = DataTaskOptions {
        name: None,
        input_col: args.input_col.clone(),
        target_col: args.target_col.clone(),
        choices_col: args.choices_col.clone(),
        metrics: args.metric.clone(),
    };
    let (tasks, selections) = load_tasks(dirs, &args.tasks, "-t", &data_options)?;
    podium_backends::parse_spec(&args.model)?;
    if args.queue {
        return crate::worker_cmd::queue(db, dirs, args, &tasks);
    }
    let mut store = open_store(db)?;
    // Remote backends answer repeated requests from the store's response
    // cache (its own connection), so a rerun costs nothing.
    let cache: std::sync::Arc<dyn podium_core::ResponseCache> =
        std::sync::Arc::new(podium_eval::StoreCache::new(open_store(db)?));
    let backend = podium_backends::open_with_cache(&args.model, Some(cache.clone()))?;
    let judges = open_judges(&tasks, args.judge.as_deref(), &cache)?;
    let options = eval_options(args, judges);
    let progress = Bars {
        current: Mutex::new(None),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(podium_eval::evaluate(
        &mut store,
        backend.as_ref(),
        &tasks,
        &selections,
        &options,
        &progress,
    ))?;

    for outcome in &report.tasks {
        if outcome.n_resumed > 0 {
            crate::note!(
                "{}: resumed run {} ({} samples were already stored)",
                outcome.result.name,
                outcome.run_id,
                outcome.n_resumed
            );
        }
    }
    let mut table = results_table();
    for outcome in &report.tasks {
        push_result_rows(&mut table, &report.model, &outcome.result);
    }
    for group in &report.groups {
        for metric in &group.metrics {
            table.push(metric_row(
                &report.model,
                &format!("{} (group)", group.name),
                metric,
                group.n_samples,
            ));
        }
    }
    crate::emit(&table.render(Format::Table)?)?;
    for outcome in &report.tasks {
        for judge in &outcome.result.judges {
            crate::note!("{}", judge_line(&outcome.result.name, judge));
        }
    }

    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let results_path = dir.join("results.json");
        std::fs::write(
            &results_path,
            serde_json::to_string_pretty(&report.results_json)? + "\n",
        )
        .with_context(|| format!("cannot write {}", results_path.display()))?;
        for (outcome, task) in report.tasks.iter().zip(&tasks) {
            let path = dir.join(format!("samples_{}.jsonl", task.name()));
            std::fs::write(
                &path,
                podium_eval::samples_jsonl(&store, outcome.run_id, task)?,
            )
            .with_context(|| format!("cannot write {}", path.display()))?;
        }
        crate::note!("wrote {} and per-sample JSONL", results_path.display());
    }

    let n_failed = report.n_failed();
    if n_failed > 0 {
        for outcome in report.tasks.iter().filter(|o| o.n_failed > 0) {
            eprintln!(
                "{}: {} samples failed (first error: {})",
                outcome.result.name,
                outcome.n_failed,
                outcome.first_error.as_deref().unwrap_or("unknown")
            );
        }
        eprintln!(
            "error: {n_failed} samples failed and were recorded; run the same command again to retry them"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The evaluation settings `podium eval`'s flags give (run here or queued).
pub(crate) fn eval_options(args: &EvalArgs, judges: podium_eval::Judges) -> EvalOptions {
    EvalOptions {
        limit: args.limit.map(|l| l as usize),
        num_fewshot: args.shots,
        seed: args.seed,
        apply_chat_template: args.apply_chat_template,
        batch_size: args.batch_size as usize,
        bootstrap_iters: args.bootstrap_iters,
        judges,
    }
}

/// The judge models of the selected tasks' `metric: judge` entries: `--judge`
/// for all of them, else each entry's own `model:`. Every spec is checked
/// before anything runs; a judge entry with neither is an error of the run.
pub(crate) fn open_judges(
    tasks: &[Task],
    chosen: Option<&str>,
    cache: &std::sync::Arc<dyn podium_core::ResponseCache>,
) -> anyhow::Result<podium_eval::Judges> {
    let mut judges = podium_eval::Judges::default();
    let has_judges = tasks.iter().any(|t| !t.config.judges.is_empty());
    if let Some(spec) = chosen {
        podium_backends::parse_spec(spec)?;
        if !has_judges {
            eprintln!("warning: --judge is ignored: no selected task has a `metric: judge` entry");
            return Ok(judges);
        }
        let backend = podium_backends::open_with_cache(spec, Some(cache.clone()))?;
        judges.chosen = Some(backend);
        return Ok(judges);
    }
    for task in tasks {
        for metric in &task.config.judges {
            let Some(spec) = &metric.model else {
                return Err(UserError(format!(
                    "task `{}`: metric `{}` needs a judge model: pass --judge SPEC (e.g. --judge openai:gpt-4o-mini) or set `model:` in its metric_list entry",
                    task.name(),
                    metric.name
                ))
                .into());
            };
            if judges.by_spec.contains_key(spec) {
                continue;
            }
            podium_backends::parse_spec(spec).with_context(|| {
                format!(
                    "task `{}`, metric `{}`: judge model",
                    task.name(),
                    metric.name
                )
            })?;
            let backend = podium_backends::open_with_cache(spec, Some(cache.clone()))?;
            judges.by_spec.insert(spec.clone(), backend);
        }
    }
    Ok(judges)
}

/// One line on a judge's work: its verdicts, the unparseable ones, and its
/// tokens and cost, apart from the candidate's.
fn judge_line(task: &str, judge: &podium_tasks::judge::JudgeSummary) -> String {
    let mut line = format!(
        "{task}: judge {} ({}): {} verdicts, {} unparseable; {} input + {} output tokens",
        judge.judge,
        judge.metric,
        judge.n_verdicts,
        judge.n_unparseable,
        judge.n_input_tokens,
        judge.n_output_tokens
    );
    if judge.n_uncounted > 0 {
        line.push_str(&format!(" ({} answers uncounted)", judge.n_uncounted));
    }
    if let Some(entry) = podium_models::Catalog::builtin().entry_for_spec(&judge.judge) {
        let cost = podium_stats::request_cost_usd(
            judge.n_input_tokens as usize,
            judge.n_output_tokens as usize,
            entry.price.input_per_mtok,
            entry.price.output_per_mtok,
        );
        line.push_str(&format!(", ${cost:.4}"));
    }
    line.push_str(" (not in the model's cost)");
    line
}

fn results_table() -> Table {
    Table::new(&[
        ("model", false),
        ("task", false),
        ("metric", false),
        ("value", true),
        ("stderr", true),
        ("95% CI", false),
        ("n", true),
        ("confidence", false),
    ])
}

fn push_result_rows(table: &mut Table, model: &str, result: &TaskResult) {
    for metric in &result.metrics {
        table.push(metric_row(model, &result.name, metric, result.n_samples));
    }
    // Per-category scores (a `category` column), one row per category and metric.
    for category in &result.categories {
        for metric in &category.metrics {
            table.push(metric_row(
                model,
                &format!("{} · {}", result.name, category.name),
                metric,
                category.n_samples,
            ));
        }
    }
}

/// model, task, metric, value, stderr, 95% CI, n, confidence — the cells every results
/// table shares. `n` counts the samples that have the metric (failed docs have none);
/// an interval wider than ±15 points on the [0, 1] scale is marked low-confidence.
fn metric_row(model: &str, task: &str, metric: &MetricResult, n_samples: usize) -> Vec<String> {
    vec![
        model.to_string(),
        task.to_string(),
        metric.key.clone(),
        if metric.value.is_finite() {
            format!("{:.4}", metric.value)
        } else {
            "—".to_string()
        },
        metric.stderr.map(|s| format!("{s:.4}")).unwrap_or_default(),
        metric
            .ci95()
            .map(|(lo, hi)| format!("{lo:.4}–{hi:.4}"))
            .unwrap_or_default(),
        // Results stored before Podium counted per metric show the run's doc count.
        if metric.n > 0 { metric.n } else { n_samples }.to_string(),
        match metric.half_width() {
            Some(half) if metric.low_confidence() => {
                format!("low (±{:.0} pts)", half * 100.0)
            }
            _ => String::new(),
        },
    ]
}

fn list_runs(db: &Location) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let mut table = Table::new(&[
        ("run", true),
        ("model", false),
        ("task", false),
        ("status", false),
        ("samples", true),
        ("failed", true),
        ("shots", true),
        ("seed", true),
        ("limit", true),
        ("started", false),
        ("finished", false),
    ]);
    for run in store.list_runs()? {
        table.push(vec![
            run.run_id.to_string(),
            run.model_spec,
            run.task_name,
            run.status.to_string(),
            run.n_samples.to_string(),
            run.n_failed.to_string(),
            run.n_shots.to_string(),
            run.seed.to_string(),
            run.limit
                .map(|l| l.to_string())
                .unwrap_or_else(|| "all".into()),
            run.started_at,
            run.finished_at.unwrap_or_default(),
        ]);
    }
    crate::emit(&table.render(Format::Table)?)?;
    Ok(ExitCode::SUCCESS)
}
