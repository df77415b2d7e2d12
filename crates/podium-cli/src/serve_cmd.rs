//! `podium serve`: the leaderboard as a website and JSON API (podium-web),
//! read-only over the database, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use podium_board::BoardOptions;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  podium serve --addr 127.0.0.1:8080 --catalog our-models.toml --machine-price 1.20\n  then open http://127.0.0.1:8080/ (the JSON API is described at /api/v1/openapi.json)"
)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,

    /// A catalogue file (TOML, the built-in layout) that adds models or overrides
    /// fields: display name, provider, access, licence, parameters, prices
    #[arg(long, value_name = "FILE", env = "PODIUM_CATALOG")]
    pub(crate) catalog: Option<PathBuf>,

    /// The `podium bench` load level whose speed the board shows
    #[arg(long, value_name = "LOAD", default_value = "concurrency 1")]
    pub(crate) bench_load: String,

    /// Hourly price of the machine that runs local models, in $ per hour (their
    /// runs then cost hours worked × this price; without it local runs cost 0)
    #[arg(long, value_name = "USD_PER_HOUR", value_parser = crate::args::parse_machine_price)]
    pub(crate) machine_price: Option<f64>,
}

pub(crate) fn run(db: &Path, dirs: &[PathBuf], args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // Errors behind a 500 are logged (main's subscriber, PODIUM_LOG); the client
    // sees only that one happened.
    let catalog = crate::board_cmd::catalog(args.catalog.as_deref())?;
    let options = BoardOptions {
        bench_load: args.bench_load.clone(),
        machine_price: args.machine_price,
        groups: crate::board_cmd::groups(dirs),
        ..BoardOptions::default()
    };
    let store = crate::commands::open_store(db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = podium_web::bind(args.addr).await?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        eprintln!(
            "podium serve: the board of {} is at http://{local}/ (Ctrl-C to stop)",
            db.display()
        );
        let state = podium_web::AppState::new(store, catalog, options);
        podium_web::serve_listener(listener, state, shutdown_signal())
            .await
            .context("the web server failed")
    })?;
    eprintln!("podium serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM where there is one.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
