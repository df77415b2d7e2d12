//! `podium bench`: run load levels against a model and print speed metrics.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use podium_bench::{BenchConfig, LiveCounts, Load, PromptSource, Stop, Summary, Workload};
use podium_core::Backend;
use podium_store::Location;

use crate::UserError;
use crate::args::{BenchArgs, Format, Preset};
use crate::board::Table;

pub(crate) fn run(db: &Location, dirs: &[PathBuf], args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let (preset_in, preset_out) = match args.preset {
        Preset::Short => (100, 300),
        Preset::Medium => (1000, 1000),
        Preset::Long => (10_000, 1500),
    };
    let source = match &args.prompts {
        Some(path) => PromptSource::List(
            podium_bench::prompts_from_jsonl(path).map_err(|e| UserError(e.to_string()))?,
        ),
        None if !args.task.is_empty() => PromptSource::List(task_prompts(dirs, args)?),
        None => PromptSource::Synthetic {
            input_tokens: args.input_tokens.unwrap_or(preset_in),
            seed: args.seed,
        },
    };
    let workload = Workload {
        source,
        output_tokens: args.output_tokens.unwrap_or(preset_out),
    };
    let stop = match &args.duration {
        Some(text) => Stop::Duration(
            podium_bench::parse_duration(text)
                .map_err(|e| UserError(format!("--duration: {e}")))?,
        ),
        None => Stop::Requests(args.requests.unwrap_or(50) as usize),
    };
    let slo = match &args.slo {
        Some(text) => {
            Some(podium_bench::parse_slo(text).map_err(|e| UserError(format!("--slo: {e}")))?)
        }
        None => None,
    };
    if args.concurrency.contains(&0) {
        return Err(UserError("--concurrency levels must be at least 1".into()).into());
    }
    // A remote endpoint's client-side concurrency limit (default 8) must not
    // quietly cap the load asked for: raise it to the highest level unless
    // the spec sets it.
    let top_level = if args.sweep {
        args.concurrency.iter().copied().max().unwrap_or(1).max(32)
    } else {
        args.concurrency.iter().copied().max().unwrap_or(1)
    };
    let remote = podium_core::ModelSpec::parse(&args.model).is_ok_and(|s| s.is_remote());
    let spec = if remote && !args.model.contains("concurrency=") {
        let separator = if args.model.contains('?') { '&' } else { '?' };
        // Open-loop runs can have many requests in flight; leave room for them.
        let limit = if args.rate.is_some() {
            top_level.max(1024)
        } else {
            top_level
        };
        format!("{}{separator}concurrency={limit}", args.model)
    } else {
        args.model.clone()
    };
    let backend = podium_backends::open(&spec)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = |load: Load| BenchConfig {
        load,
        stop,
        warmup: args.warmup,
        seed: args.seed,
        temperature: args.temperature,
    };
    let mut levels: Vec<(String, Summary)> = Vec::new();
    let label = |load: &Load| match load {
        Load::Closed { concurrency } => format!("concurrency {concurrency}"),
        Load::Open { rate, burstiness } => format!("rate {rate:.2}/s (burstiness {burstiness})"),
    };
    // Every level's per-request records, for --records.
    let kept = std::cell::RefCell::new(Vec::new());
    let measure = |load: Load, backend: Arc<dyn Backend>| -> anyhow::Result<Summary> {
        let counts = Arc::new(LiveCounts::default());
        let ticker = runtime.spawn(show_progress(label(&load), stop, counts.clone()));
        let records = runtime.block_on(podium_bench::run_counted(
            backend,
            &workload,
            &config(load),
            counts,
        ));
        ticker.abort();
        // Wait for the cancelled ticker to drop, which clears its line.
        let _ = runtime.block_on(ticker);
        let records = records.map_err(|e| UserError(e.to_string()))?;
        let summary = podium_bench::summarize(&records, slo.as_ref());
        if args.records.is_some() {
            kept.borrow_mut().push((label(&load), records));
        }
        Ok(summary)
    };
    let mut best_rate: Option<f64> = None;
    if args.sweep {
        // From one at a time to the highest concurrency asked (at least 32),
        // then open-loop rates spread evenly between the two throughputs.
        let low = measure(Load::Closed { concurrency: 1 }, backend.clone())?;
        let top_concurrency = args.concurrency.iter().copied().max().unwrap_or(1).max(32);
        let high = measure(
            Load::Closed {
                concurrency: top_concurrency,
            },
            backend.clone(),
        )?;
        let (r_min, r_max) = (
            low.request_throughput,
            high.request_throughput.max(low.request_throughput),
        );
        levels.push((label(&Load::Closed { concurrency: 1 }), low));
        levels.push((
            label(&Load::Closed {
                concurrency: top_concurrency,
            }),
            high,
        ));
        if r_min > 0.0 {
            let steps = 6;
            for i in 0..steps {
                let rate = r_min + (r_max - r_min) * (i as f64 + 1.0) / steps as f64;
                let load = Load::Open {
                    rate,
                    burstiness: args.burstiness,
                };
                let summary = measure(load, backend.clone())?;
                if summary.slo_met == Some(true) {
                    best_rate = Some(best_rate.map_or(rate, |b: f64| b.max(rate)));
                }
                levels.push((label(&load), summary));
            }
        }
    } else if let Some(rate) = args.rate {
        let load = Load::Open {
            rate,
            burstiness: args.burstiness,
        };
        levels.push((label(&load), measure(load, backend.clone())?));
    } else {
        for &concurrency in &args.concurrency {
            let load = Load::Closed { concurrency };
            levels.push((label(&load), measure(load, backend.clone())?));
        }
    }

    if let Some(path) = &args.records {
        write_records(path, &kept.borrow())?;
    }
    let store = crate::commands::open_store(db)?;
    let config_json = serde_json::json!({
        "requests": args.requests, "duration": args.duration, "preset": format!("{:?}", args.preset),
        "input_tokens": args.input_tokens, "output_tokens": workload.output_tokens,
        "prompts": args.prompts, "task": args.task, "warmup": args.warmup, "temperature": args.temperature,
        "seed": args.seed, "slo": args.slo, "burstiness": args.burstiness,
    })
    .to_string();
    for (load, summary) in &levels {
        store.put_bench_result(
            &args.model,
            load,
            &config_json,
            &serde_json::to_string(summary)?,
        )?;
    }

    if args.format == Format::Json {
        let json = serde_json::json!({
            "model": args.model,
            "levels": levels.iter().map(|(l, s)| serde_json::json!({"load": l, "summary": s})).collect::<Vec<_>>(),
            "best_rate_meeting_slo": best_rate,
        });
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
    } else {
        crate::emit(&table(&levels).render(args.format)?)?;
        if args.sweep {
            match best_rate {
                Some(rate) => crate::emit(&format!(
                    "highest rate meeting the SLO: {rate:.2} requests/s\n"
                ))?,
                None => crate::emit("no rate tried met the SLO\n")?,
            }
        }
    }
    let failed: usize = levels.iter().map(|(_, s)| s.n_failed).sum();
    if failed > 0 {
        let first = levels
            .iter()
            .find_map(|(_, s)| s.first_error.clone())
            .unwrap_or_default();
        eprintln!("warning: {failed} requests failed (first error: {first})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Every doc's prompt of the `--task` tasks, in order, as `podium eval` builds it
/// (the task's own number of few-shot examples, drawn with `--seed`).
fn task_prompts(dirs: &[PathBuf], args: &BenchArgs) -> anyhow::Result<Vec<String>> {
    let (tasks, _) = crate::commands::load_tasks(
        dirs,
        &args.task,
        "--task",
        &podium_tasks::from_data::DataTaskOptions::default(),
    )?;
    let options = podium_tasks::BuildOptions {
        limit: None,
        num_fewshot: None,
        seed: args.seed,
    };
    let mut prompts = Vec::new();
    for task in &tasks {
        let instances = task.build_instances(&options, None)?;
        prompts.extend(instances.into_iter().map(|instance| instance.prompt));
    }
    if prompts.is_empty() {
        return Err(UserError(format!(
            "--task {}: the tasks have no docs",
            args.task.join(",")
        ))
        .into());
    }
    Ok(prompts)
}

fn ms(value: Option<f64>) -> String {
    value
        .map(|v| format!("{:.1}", v * 1000.0))
        .unwrap_or_default()
}

fn table(levels: &[(String, Summary)]) -> Table {
    let mut table = Table::new(&[
        ("load", false),
        ("ok", true),
        ("failed", true),
        ("req/s", true),
        ("out tok/s", true),
        ("TTFT p50 ms", true),
        ("TTFT p99 ms", true),
        ("TPOT p50 ms", true),
        ("TPOT p99 ms", true),
        ("E2E p50 ms", true),
        ("E2E p99 ms", true),
        ("speed p50 tok/s", true),
        ("out tokens", true),
        ("goodput req/s", true),
        ("SLO met", false),
    ]);
    for (label, s) in levels {
        table.push(vec![
            label.clone(),
            s.n_ok.to_string(),
            s.n_failed.to_string(),
            format!("{:.2}", s.request_throughput),
            format!("{:.1}", s.output_throughput),
            ms(s.ttft_s.as_ref().map(|p| p.p50)),
            ms(s.ttft_s.as_ref().map(|p| p.p99)),
            ms(s.tpot_s.as_ref().map(|p| p.p50)),
            ms(s.tpot_s.as_ref().map(|p| p.p99)),
            ms(s.e2e_s.as_ref().map(|p| p.p50)),
            ms(s.e2e_s.as_ref().map(|p| p.p99)),
            s.output_speed
                .as_ref()
                .map(|p| format!("{:.1}", p.p50))
                .unwrap_or_default(),
            s.mean_output_tokens
                .map(|n| format!("{n:.0}"))
                .unwrap_or_default(),
            s.goodput.map(|g| format!("{g:.2}")).unwrap_or_default(),
            match s.slo_met {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => String::new(),
            },
        ]);
    }
    table
}

/// The speed board: the latest stored bench result per model and load level.
pub(crate) fn speed_board(db: &Location, format: Format) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open_store(db)?;
    let mut levels = Vec::new();
    let mut models = Vec::new();
    for result in store.latest_bench_results()? {
        let summary: Summary = serde_json::from_str(&result.summary_json)
            .with_context(|| format!("bench result {} is unreadable", result.id))?;
        models.push(result.model_spec.clone());
        levels.push((result.load, summary));
    }
    let mut table = table(&levels);
    table.headers.insert(0, "model".into());
    table.numeric.insert(0, false);
    // Price beside speed: the catalogue's blended $ per 1M tokens (3:1 input to
    // output, METRICS.md); 0 for local models, empty where the catalogue has no price.
    table.headers.push("blended $/1M".into());
    table.numeric.push(true);
    let catalog = podium_models::Catalog::builtin();
    for (row, model) in table.rows.iter_mut().zip(models) {
        let price = catalog.entry_for_spec(&model).map(|entry| {
            podium_stats::blended_price_per_million(
                entry.price.input_per_mtok,
                entry.price.output_per_mtok,
            )
        });
        row.insert(0, model);
        row.push(price.map(|p| format!("{p:.3}")).unwrap_or_default());
    }
    crate::emit(&table.render(format)?)?;
    Ok(ExitCode::SUCCESS)
}

/// `--records`: one JSON object per measured request, with its level's label.
fn write_records(
    path: &Path,
    levels: &[(String, Vec<podium_bench::RequestRecord>)],
) -> anyhow::Result<()> {
    use std::io::Write;
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (level, records) in levels {
            for record in records {
                let mut json = serde_json::to_value(record)?;
                json["level"] = serde_json::Value::String(level.clone());
                serde_json::to_writer(&mut out, &json)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    };
    write().map_err(|e| UserError(format!("--records {}: {e}", path.display())).into())
}

/// A live progress line on stderr for one load level (hidden when stderr is not a
/// terminal): requests finished (or time elapsed, for `--duration`), failures, and the
/// request and output-token rates so far. Runs until aborted.
async fn show_progress(level: String, stop: Stop, counts: Arc<LiveCounts>) {
    let (length, unit) = match stop {
        Stop::Requests(n) => (n as u64, "requests"),
        Stop::Duration(seconds) => ((seconds * 10.0).ceil() as u64, "x 0.1 s"),
    };
    let bar = crate::progress_bar(length);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{prefix:>16}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(level);
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    // Cleared when the level ends and this task is aborted.
    let _clear = ClearOnDrop(bar.clone());
    loop {
        tick.tick().await;
        let (ok, failed) = counts.finished();
        let seconds = start.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(match stop {
            Stop::Requests(_) => (ok + failed) as u64,
            Stop::Duration(_) => ((seconds * 10.0) as u64).min(length),
        });
        bar.set_message(format!(
            "{ok} ok, {failed} failed, {:.2} req/s, {:.0} out tok/s",
            (ok + failed) as f64 / seconds,
            counts.output_tokens() as f64 / seconds
        ));
    }
}

struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Args, Command};

    #[test]
    fn task_prompts_are_the_prompts_eval_builds() {
        let args = Args::parse_from([
            "podium",
            "bench",
            "-m",
            "mock:a",
            "--task",
            "lite_arc_easy,gsm8k",
        ]);
        let Command::Bench(bench) = args.command else {
            panic!("not bench: {:?}", args.command);
        };
        let dirs = [crate::paths::bundled_tasks_dir()];
        let prompts = task_prompts(&dirs, &bench).unwrap();
        assert_eq!(prompts.len(), 100 + 1319);
        assert!(prompts[0].starts_with("Question: "), "{}", prompts[0]);
        assert!(prompts[0].ends_with("\nAnswer:"), "{}", prompts[0]);
        // gsm8k's prompts carry its few-shot examples before the question.
        let gsm8k = &prompts[100];
        assert_eq!(gsm8k.matches("Q: ").count(), 9, "{gsm8k}");
    }
}
