//! The subcommands: each resolves its settings, does the work and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use podium_eval::{EvalOptions, Progress};
use podium_store::Store;
use podium_tasks::results::{MetricResult, TaskResult};
use podium_tasks::{Registry, Selection, Task};

use crate::UserError;
use crate::args::{Args, Command, EvalArgs, Format};
use crate::board::Table;
use crate::paths;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(threads) = args.threads {
        podium_local::set_thread_count(threads);
    } else if let Some(threads) = std::env::var("PODIUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        podium_local::set_thread_count(threads);
    }
    let db = args.db.clone().unwrap_or_else(paths::default_db);
    let mut dirs = vec![paths::bundled_tasks_dir()];
    dirs.extend(args.tasks_dirs.iter().cloned());
    match args.command {
        Command::Tasks { tag, no_counts } => list_tasks(&dirs, tag.as_deref(), no_counts),
        Command::Eval(eval) => run_eval(&db, &dirs, &eval),
        Command::Runs => list_runs(&db),
        Command::Demo { models, limit } => {
            crate::local_cmd::demo(args.db.clone(), args.tasks_dirs.clone(), &models, limit)
        }
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
        Command::Board {
            format,
            speed,
            machine_price,
        } => {
            if speed {
                crate::bench_cmd::speed_board(&db, format)
            } else {
                board(&db, format, machine_price)
            }
        }
        Command::Serve(serve) => crate::serve_cmd::run(&db, &serve),
    }
}

pub(crate) fn open_store(db: &Path) -> anyhow::Result<Store> {
    Store::open(db).with_context(|| format!("cannot open the database {}", db.display()))
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
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} docs {elapsed} (eta {eta}) {msg}",
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
) -> anyhow::Result<(Vec<Task>, Vec<Selection>)> {
    let mut registry = registry(dirs);
    let n_discovery_warnings = registry.warnings.len();
    let selections = registry.resolve(requested)?;
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

fn run_eval(db: &Path, dirs: &[PathBuf], args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let (tasks, selections) = load_tasks(dirs, &args.tasks, "-t")?;
    podium_backends::parse_spec(&args.model)?;
    let mut store = open_store(db)?;
    // Remote backends answer repeated requests from the store's response
    // cache (its own connection), so a rerun costs nothing.
    let cache: std::sync::Arc<dyn podium_core::ResponseCache> =
        std::sync::Arc::new(podium_eval::StoreCache::new(open_store(db)?));
    let backend = podium_backends::open_with_cache(&args.model, Some(cache))?;
    let options = EvalOptions {
        limit: args.limit.map(|l| l as usize),
        num_fewshot: args.shots,
        seed: args.seed,
        apply_chat_template: args.apply_chat_template,
        batch_size: args.batch_size as usize,
        bootstrap_iters: args.bootstrap_iters,
    };
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
            eprintln!(
                "{}: resumed run {} ({} samples were already stored)",
                outcome.result.name, outcome.run_id, outcome.n_resumed
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
        eprintln!("wrote {} and per-sample JSONL", results_path.display());
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

fn list_runs(db: &Path) -> anyhow::Result<ExitCode> {
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

/// A run's cost from the catalogue's prices and its samples' token counts (METRICS.md:
/// `(N_in · P_in + N_out · P_out) / 1e6` summed over requests), and per 1,000 samples.
/// Empty for a model without a catalogue price; `≥` when some samples recorded no
/// token counts (a server that reports no usage), so the sum is a lower bound.
/// A local model (`local:`, `gguf:`) costs 0, or, given the machine's price per hour,
/// the hours the run was worked on (summed over its sessions) × it.
fn run_cost(
    store: &podium_store::Store,
    catalog: &podium_models::Catalog,
    latest: &podium_store::LatestResult,
    machine_price: Option<f64>,
) -> anyhow::Result<(String, String)> {
    let none = || Ok((String::new(), String::new()));
    let local = podium_core::ModelSpec::parse(&latest.model_spec).is_ok_and(|s| s.is_local());
    let totals = store.run_token_totals(latest.run_id)?;
    // The cost, and `≥` where it is a lower bound.
    let (cost, bound) = match machine_price {
        Some(per_hour) if local => {
            // The time the run was worked on; for runs recorded before Podium kept
            // it, start to finish (which counts a resumed run's pause too).
            let seconds = match latest.active_ms {
                Some(ms) => ms as f64 / 1000.0,
                None => {
                    let (Some(start), Some(end)) = (
                        podium_store::parse_rfc3339_utc(&latest.started_at),
                        podium_store::parse_rfc3339_utc(&latest.finished_at),
                    ) else {
                        return none();
                    };
                    end - start
                }
            };
            (seconds.max(0.0) / 3600.0 * per_hour, "")
        }
        _ => {
            let Some(entry) = catalog.entry_for_spec(&latest.model_spec) else {
                return none();
            };
            let price = entry.price;
            if price.input_per_mtok == 0.0 && price.output_per_mtok == 0.0 {
                return Ok(("0".into(), "0".into()));
            }
            let cost = podium_backends::speed::request_cost_usd(
                totals.input_tokens as usize,
                totals.output_tokens as usize,
                price.input_per_mtok,
                price.output_per_mtok,
            );
            let partial = totals.counted < totals.samples;
            (cost, if partial { "≥" } else { "" })
        }
    };
    let per_1k = if totals.samples > 0 {
        format!("{bound}{:.4}", cost / totals.samples as f64 * 1000.0)
    } else {
        String::new()
    };
    Ok((format!("{bound}{cost:.4}"), per_1k))
}

fn board(db: &Path, format: Format, machine_price: Option<f64>) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let mut table = Table::new(&[
        ("model", false),
        ("task", false),
        ("metric", false),
        ("value", true),
        ("stderr", true),
        ("95% CI", false),
        ("n", true),
        ("confidence", false),
        ("normalized", true),
        ("cost $", true),
        ("$ per 1k samples", true),
        ("finished", false),
    ]);
    let catalog = podium_models::Catalog::builtin();
    for latest in store.latest_results()? {
        let result: TaskResult = serde_json::from_str(&latest.results_json)
            .with_context(|| format!("run {} has unreadable results", latest.run_id))?;
        let (cost, cost_per_1k) = run_cost(&store, &catalog, &latest, machine_price)?;
        for (i, metric) in result.metrics.iter().enumerate() {
            // The normalized score applies to the task's primary metric.
            let normalized = if i == 0 && metric.higher_is_better && metric.value.is_finite() {
                podium_stats::normalized_score(metric.value, result.random_baseline)
                    .map(|n| format!("{n:.1}"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let mut row = metric_row(&latest.model_spec, &result.name, metric, result.n_samples);
            row.push(normalized);
            // Cost belongs to the run, shown once, on its primary metric's row.
            let first = i == 0;
            row.push(if first { cost.clone() } else { String::new() });
            row.push(if first {
                cost_per_1k.clone()
            } else {
                String::new()
            });
            row.push(latest.finished_at.clone());
            table.push(row);
        }
    }
    crate::emit(&table.render(format)?)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use podium_store::{LatestResult, ModelRecord, RunKey, SampleRecord, SampleStatus, Store};

    use super::run_cost;

    /// A finished-looking run of `spec` with samples of (input, output) token counts.
    fn run_with_samples(
        store: &mut Store,
        spec: &str,
        samples: &[Option<(u64, u64)>],
    ) -> LatestResult {
        let model_id = store
            .upsert_model(&ModelRecord {
                spec: spec.into(),
                fingerprint: spec.into(),
                chat_template_hash: None,
            })
            .unwrap();
        let task_id = store.upsert_task("gsm8k", "sha256:x", "{}").unwrap();
        let key = RunKey {
            model_id,
            task_id,
            n_shots: 0,
            chat_template: false,
            seed: 1,
            limit: None,
        };
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        for (doc_id, counts) in samples.iter().enumerate() {
            store
                .put_sample(
                    run_id,
                    &SampleRecord {
                        doc_id: doc_id as u64,
                        prompt_hash: format!("p{doc_id}"),
                        requests_json: "[]".into(),
                        responses_json: "[]".into(),
                        metrics_json: "{}".into(),
                        n_input_tokens: counts.map(|c| c.0),
                        n_output_tokens: counts.map(|c| c.1),
                        timing_json: "{}".into(),
                        status: SampleStatus::Ok,
                        error: None,
                    },
                )
                .unwrap();
        }
        LatestResult {
            model_spec: spec.into(),
            task_name: "gsm8k".into(),
            run_id,
            started_at: "2026-11-26T10:00:00.000000Z".into(),
            finished_at: "2026-11-26T10:30:00.000000Z".into(),
            results_json: "{}".into(),
            active_ms: None,
        }
    }

    #[test]
    fn run_cost_uses_catalogue_prices_and_token_counts() {
        let catalog = podium_models::Catalog::builtin();
        let mut store = Store::open_in_memory().unwrap();
        // gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens.
        let run = run_with_samples(
            &mut store,
            "openai:gpt-4o-mini",
            &[Some((1000, 100)), Some((3000, 300))],
        );
        // (4000 x 0.15 + 400 x 0.60) / 1e6 = 0.00084; per 1,000 samples 0.42.
        assert_eq!(
            run_cost(&store, &catalog, &run, None).unwrap(),
            ("0.0008".into(), "0.4200".into())
        );

        let mut store = Store::open_in_memory().unwrap();
        let run = run_with_samples(
            &mut store,
            "openai:gpt-4o-mini?rpm=60",
            &[Some((1000, 100)), None],
        );
        let (cost, per_1k) = run_cost(&store, &catalog, &run, None).unwrap();
        assert!(
            cost.starts_with('≥') && per_1k.starts_with('≥'),
            "{cost} {per_1k}"
        );

        let mut store = Store::open_in_memory().unwrap();
        let run = run_with_samples(
            &mut store,
            "local:smollm2-135m-instruct",
            &[Some((1000, 100))],
        );
        assert_eq!(
            run_cost(&store, &catalog, &run, None).unwrap(),
            ("0".into(), "0".into())
        );

        let mut store = Store::open_in_memory().unwrap();
        let run = run_with_samples(&mut store, "mock:a", &[Some((1000, 100))]);
        assert_eq!(
            run_cost(&store, &catalog, &run, None).unwrap(),
            (String::new(), String::new())
        );
    }

    #[test]
    fn local_runs_cost_their_hours_at_the_machine_price() {
        let catalog = podium_models::Catalog::builtin();
        // The test run took 30 minutes; at $1.20 per hour that is $0.60, over 4 samples
        // $150 per 1,000.
        for spec in ["local:smollm2-135m-instruct", "gguf:/models/x.gguf"] {
            let mut store = Store::open_in_memory().unwrap();
            let run = run_with_samples(&mut store, spec, &[Some((1, 1)), None, None, None]);
            assert_eq!(
                run_cost(&store, &catalog, &run, Some(1.2)).unwrap(),
                ("0.6000".into(), "150.0000".into()),
                "{spec}"
            );
        }
        // A remote model keeps its token prices.
        let mut store = Store::open_in_memory().unwrap();
        let run = run_with_samples(&mut store, "openai:gpt-4o-mini", &[Some((1000, 100))]);
        assert_eq!(
            run_cost(&store, &catalog, &run, Some(1.2)).unwrap(),
            run_cost(&store, &catalog, &run, None).unwrap()
        );
        // Where the store kept the time worked (20 of the 30 minutes), that is the time.
        let mut store = Store::open_in_memory().unwrap();
        let mut run = run_with_samples(&mut store, "local:smollm2-135m-instruct", &[None]);
        run.active_ms = Some(20 * 60 * 1000);
        assert_eq!(
            run_cost(&store, &catalog, &run, Some(1.2)).unwrap(),
            ("0.4000".into(), "400.0000".into())
        );
        // An unreadable timestamp leaves the cell empty rather than guessing.
        let mut store = Store::open_in_memory().unwrap();
        let mut run = run_with_samples(&mut store, "local:smollm2-135m-instruct", &[None]);
        run.started_at = "yesterday".into();
        assert_eq!(
            run_cost(&store, &catalog, &run, Some(1.2)).unwrap(),
            (String::new(), String::new())
        );
    }
}
