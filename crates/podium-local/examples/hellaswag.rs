//! HellaSwag accuracy the way llama.cpp's `llama-perplexity --hellaswag` computes it
//! (acc_norm by tokens: mean log-prob per token of the ending after the tokens all four
//! endings share), on the first N tasks of a llama.cpp-format file, with wall time.
//!
//! cargo run --release -p podium-local --example hellaswag -- MODEL.gguf \
//!     hellaswag_val_full.txt [--tasks 400] [--threads 2] [--weights q8|stored|f32]
//!     [--batch-weights f16|f32|quantized] [--batch N (tasks per engine call, default 16)]
//!     [--max-batch-tokens N (tokens per forward call, default 512)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use podium_local::{LocalBackend, LocalOptions, TextTokenizer, WeightFormat};

struct Args {
    model: PathBuf,
    data: PathBuf,
    tasks: usize,
    threads: Option<usize>,
    weights: WeightFormat,
    /// `f16`, `f32` or `quantized` (checked by `LocalOptions::set_batch_weights`).
    batch_weights: String,
    batch: usize,
    max_batch_tokens: Option<usize>,
}

fn number(text: String, name: &str) -> Result<usize, String> {
    text.parse().map_err(|e| format!("{name}: {e}"))
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut tasks = 400;
    let mut threads = None;
    let mut weights = WeightFormat::default();
    let mut batch_weights = "f16".to_string();
    let mut batch = 16;
    let mut max_batch_tokens = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--tasks" => tasks = number(value("--tasks")?, "--tasks")?,
            "--threads" => threads = Some(number(value("--threads")?, "--threads")?),
            "--weights" => {
                weights = match value("--weights")?.as_str() {
                    "q8" => WeightFormat::Q8_0ForSlowTypes,
                    "stored" => WeightFormat::AsStored,
                    "f32" => WeightFormat::F32Reference,
                    other => return Err(format!("--weights: unknown format `{other}`")),
                }
            }
            "--batch" => batch = number(value("--batch")?, "--batch")?,
            "--max-batch-tokens" => {
                max_batch_tokens = Some(number(value("--max-batch-tokens")?, "--max-batch-tokens")?)
            }
            "--batch-weights" => batch_weights = value("--batch-weights")?,
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [model, data] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| "usage: hellaswag MODEL.gguf DATA.txt [--tasks N] [--threads N] [--weights q8|stored|f32] [--batch-weights f16|f32|quantized] [--batch N] [--max-batch-tokens N]")?;
    Ok(Args {
        model,
        data,
        tasks,
        threads,
        weights,
        batch_weights,
        batch,
        max_batch_tokens,
    })
}

struct Task {
    context: String,
    gold: usize,
    endings: [String; 4],
}

fn read_tasks(args: &Args) -> Result<Vec<Task>, String> {
    let text =
        std::fs::read_to_string(&args.data).map_err(|e| format!("{}: {e}", args.data.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut tasks = Vec::new();
    for chunk in lines.chunks_exact(6).take(args.tasks) {
        let gold = chunk[1]
            .trim()
            .parse()
            .map_err(|e| format!("gold index `{}`: {e}", chunk[1]))?;
        tasks.push(Task {
            context: chunk[0].to_string(),
            gold,
            endings: [2, 3, 4, 5].map(|i| chunk[i].to_string()),
        });
    }
    Ok(tasks)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let tasks = read_tasks(&args)?;
    let mut options = LocalOptions::new(format!("gguf:{}", args.model.display()));
    options.threads = args.threads;
    options.weight_format = args.weights;
    options
        .set_batch_weights(&args.batch_weights)
        .map_err(|e| format!("--batch-weights: {e}"))?;
    if let Some(tokens) = args.max_batch_tokens {
        options.max_batch_tokens = tokens;
    }
    let load_start = Instant::now();
    let backend = LocalBackend::load(&args.model, options).map_err(|e| e.to_string())?;
    eprintln!("loaded in {:.2} s", load_start.elapsed().as_secs_f64());
    let tokenizer: Arc<dyn TextTokenizer> = backend.tokenizer().clone();

    let start = Instant::now();
    let mut correct = 0;
    let (mut correct_sum, mut correct_bytes) = (0, 0);
    // Token counts: shared contexts, endings, and endings as run (padded to the longest).
    let (mut n_context, mut n_endings, mut n_padded) = (0usize, 0usize, 0usize);
    // Tasks go to the engine `--batch` at a time (16, as `podium eval` sends them); the
    // engine packs as many as fit in one forward call.
    let mut done = 0;
    for chunk in tasks.chunks(args.batch.max(1)) {
        let mut items = Vec::with_capacity(chunk.len());
        for task in chunk {
            // llama.cpp tokenizes "context ending" whole for each ending (with BOS when the
            // model adds one) and scores what follows the tokens all four share.
            let sequences: Vec<Vec<u32>> = task
                .endings
                .iter()
                .map(|ending| tokenizer.encode(&format!("{} {ending}", task.context), true))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let shared = (0..sequences[0].len())
                .take_while(|&k| sequences.iter().all(|s| s.get(k) == sequences[0].get(k)))
                .count();
            let context = sequences[0][..shared].to_vec();
            let endings: Vec<Vec<u32>> = sequences.iter().map(|s| s[shared..].to_vec()).collect();
            n_context += context.len();
            n_endings += endings.iter().map(Vec::len).sum::<usize>();
            n_padded += 4 * endings.iter().map(Vec::len).max().unwrap_or(0);
            items.push((context, endings));
        }
        let results = backend
            .score_token_batch(items)
            .await
            .map_err(|e| e.to_string())?;
        for (task, scores) in chunk.iter().zip(results) {
            let scores = scores.map_err(|e| e.to_string())?;
            let pick = |score_of: &dyn Fn(usize) -> f64| {
                (0..scores.len()).max_by(|&a, &b| score_of(a).total_cmp(&score_of(b)))
            };
            // acc_norm_tokens (llama.cpp): mean log-prob per scored token.
            let best = pick(&|j| scores[j].logprob / scores[j].n_tokens.max(1) as f64);
            if best == Some(task.gold) {
                correct += 1;
            }
            // lm-evaluation-harness's acc (sum) and acc_norm (per character of " ending").
            if pick(&|j| scores[j].logprob) == Some(task.gold) {
                correct_sum += 1;
            }
            if pick(&|j| scores[j].logprob / (1 + task.endings[j].chars().count()) as f64)
                == Some(task.gold)
            {
                correct_bytes += 1;
            }
            done += 1;
            if done % 50 == 0 {
                eprintln!(
                    "{done:>5} tasks  acc_norm_tokens {:.2}%  {:.1} s",
                    100.0 * correct as f64 / done as f64,
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    eprintln!("tokens: {n_context} context, {n_endings} endings ({n_padded} padded)");
    let n = tasks.len().max(1) as f64;
    let accuracy = 100.0 * correct as f64 / n;
    let stderr = 100.0 * ((accuracy / 100.0) * (1.0 - accuracy / 100.0) / n).sqrt();
    println!(
        "tasks {}  acc_norm_tokens {accuracy:.2}% (+/- {stderr:.2})  acc {:.2}%  acc_norm {:.2}%  wall {:.1} s",
        tasks.len(),
        100.0 * correct_sum as f64 / n,
        100.0 * correct_bytes as f64 / n,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
