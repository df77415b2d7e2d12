//! Prompt-processing and generation speed, measured the way llama.cpp's `llama-bench`
//! measures `pp512` and `tg128`: a 512-token prompt in one batch, then 128 tokens
//! decoded one at a time from an empty context; mean and spread over repetitions.
//!
//! cargo run --release -p podium-local --example speed -- MODEL.gguf [--threads 2]
//!     [--prompt 512] [--generate 128] [--reps 3] [--batch-weights f16|f32|quantized]

use std::path::PathBuf;

use podium_local::{LocalBackend, LocalOptions};

fn parse_args() -> Result<(PathBuf, LocalOptions, usize, usize, usize), String> {
    let mut model = None;
    let mut options = LocalOptions::new("speed");
    let (mut prompt, mut generate, mut reps) = (512, 128, 3);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            args.next()
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--threads" => options.threads = Some(number("--threads")?),
            "--prompt" => prompt = number("--prompt")?,
            "--generate" => generate = number("--generate")?,
            "--reps" => reps = number("--reps")?.max(1),
            "--batch-weights" => {
                let name = args.next().ok_or("--batch-weights needs a value")?;
                options
                    .set_batch_weights(&name)
                    .map_err(|e| format!("--batch-weights: {e}"))?;
            }
            _ if model.is_none() => model = Some(PathBuf::from(arg)),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    let model = model.ok_or("usage: speed MODEL.gguf [--threads N] [--prompt N] [--generate N] [--reps N] [--batch-weights f16|f32|quantized]")?;
    Ok((model, options, prompt, generate, reps))
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let (model, options, prompt, generate, reps) = parse_args()?;
    let threads = options.threads;
    let backend = LocalBackend::load(&model, options).map_err(|e| e.to_string())?;
    // One warm-up run, as llama-bench does.
    backend
        .speed_test(prompt.min(32), generate.min(4))
        .await
        .map_err(|e| e.to_string())?;
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let report = backend
            .speed_test(prompt, generate)
            .await
            .map_err(|e| e.to_string())?;
        pp.push(report.n_prompt as f64 / report.prompt_s);
        tg.push(report.n_generated as f64 / report.generate_s);
    }
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let threads = threads.map_or("default".to_string(), |t| t.to_string());
    for (test, values) in [(format!("pp{prompt}"), &pp), (format!("tg{generate}"), &tg)] {
        let (mean, sd) = mean_sd(values);
        println!("podium  {name}  threads {threads}  {test:>6}  {mean:>9.2} ± {sd:.2} t/s");
    }
    Ok(())
}
