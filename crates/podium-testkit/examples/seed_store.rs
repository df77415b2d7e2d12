//! Fills a new database with a seeded board and prints how long it took:
//!
//! ```text
//! cargo run --release -p podium-testkit --example seed_store -- \
//!     --db /tmp/seed.db --models 1000 --tasks 50 --samples 100 --seed 1 \
//!     [--catalog-out FILE] [--hostile]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use podium_store::Store;
use podium_testkit::seed::{self, SeedSpec};

struct Args {
    db: PathBuf,
    catalog_out: Option<PathBuf>,
    spec: SeedSpec,
}

fn parse_args() -> Result<Args, String> {
    let mut db = None;
    let mut catalog_out = None;
    let mut spec = SeedSpec::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--hostile" {
            spec.hostile = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--db" => db = Some(PathBuf::from(&value)),
            "--catalog-out" => catalog_out = Some(PathBuf::from(&value)),
            "--models" => spec.models = number()? as usize,
            "--tasks" => spec.tasks = number()? as usize,
            "--samples" => spec.samples_per_run = number()? as usize,
            "--seed" => spec.seed = number()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let db = db.ok_or("--db PATH is required")?;
    if db.exists() {
        return Err(format!("{} exists; seed a new database", db.display()));
    }
    Ok(Args {
        db,
        catalog_out,
        spec,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("seed_store: {message}");
            eprintln!(
                "usage: seed_store --db PATH [--models N] [--tasks N] [--samples N] [--seed N] [--catalog-out FILE] [--hostile]"
            );
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = (|| -> Result<seed::Seeded, Box<dyn std::error::Error>> {
        let mut store = Store::open(&args.db)?;
        let seeded = seed::fill(&mut store, &args.spec)?;
        if let Some(path) = &args.catalog_out {
            std::fs::write(path, &seeded.catalog_toml)?;
        }
        Ok(seeded)
    })();
    let seeded = match result {
        Ok(seeded) => seeded,
        Err(error) => {
            eprintln!("seed_store: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut path = args.db.clone().into_os_string();
            path.push(suffix);
            std::fs::metadata(path).ok().map(|m| m.len())
        })
        .sum();
    println!(
        "seeded {} models x {} tasks = {} runs, {} samples (seed {}{}) in {seconds:.1} s: {:.0} samples/s; database {:.1} MiB",
        seeded.model_specs.len(),
        seeded.task_names.len(),
        seeded.n_runs,
        seeded.n_samples,
        args.spec.seed,
        if args.spec.hostile { ", hostile" } else { "" },
        seeded.n_samples as f64 / seconds,
        bytes as f64 / (1 << 20) as f64,
    );
    ExitCode::SUCCESS
}
