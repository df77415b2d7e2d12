//! Times `Leaderboard::build` on a database (min and median of N builds):
//!
//! ```text
//! cargo run --release -p podium-testkit --example board_build -- \
//!     --db /tmp/seed.db [--catalog FILE] [--builds 5]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use podium_board::{BoardCatalog, BoardOptions, Leaderboard};
use podium_store::Store;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = None;
    let mut catalog = None;
    let mut builds = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--db" => db = Some(PathBuf::from(value)),
            "--catalog" => catalog = Some(PathBuf::from(value)),
            "--builds" => builds = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let db = db.ok_or("--db PATH is required")?;
    if !db.exists() {
        return Err(format!("{} does not exist", db.display()).into());
    }
    let store = Store::open(&db)?;
    let catalog = match &catalog {
        Some(path) => BoardCatalog::with_user_file(path)?,
        None => BoardCatalog::builtin(),
    };

    let started = Instant::now();
    let runs = store.board_runs(None)?;
    let board_runs_s = started.elapsed().as_secs_f64();
    println!(
        "store.board_runs: {} runs in {board_runs_s:.3} s",
        runs.len()
    );
    drop(runs);

    let mut times = Vec::with_capacity(builds);
    let mut shape = (0, 0);
    for _ in 0..builds.max(1) {
        let started = Instant::now();
        let board = Leaderboard::build(&store, &catalog, BoardOptions::default())?;
        times.push(started.elapsed().as_secs_f64());
        shape = (board.models.len(), board.columns.len());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "Leaderboard::build: {} models x {} columns; {} builds: min {:.3} s, median {:.3} s, max {:.3} s",
        shape.0,
        shape.1,
        times.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("board_build: {error}");
            ExitCode::FAILURE
        }
    }
}
