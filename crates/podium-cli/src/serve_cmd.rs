//! `podium serve`: the leaderboard as a website and JSON API (podium-web),
//! read-only over the database (but for the arena's votes with `--arena`),
//! until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use podium_board::BoardOptions;
use podium_store::Location;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  podium serve --addr 127.0.0.1:8080 --catalog our-models.toml --machine-price 1.20\n  then open http://127.0.0.1:8080/ (the JSON API is described at /api/v1/openapi.json)\n  podium serve --arena --contender local:smollm2-135m-instruct --contender local:gemma3-270m\n  then open http://127.0.0.1:8080/arena to vote"
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

    /// Let people vote in the arena (/arena): two anonymous --contender
    /// models answer a prompt, the vote is stored as a battle
    #[arg(long, requires = "contender")]
    pub(crate) arena: bool,

    /// A model that answers in the arena (a model spec; give it twice or more)
    #[arg(long, value_name = "SPEC", requires = "arena")]
    pub(crate) contender: Vec<String>,

    /// The prompt set "Draw a prompt" draws from: JSON lines of
    /// {"id", "category"?, "prompt"} (default: the bundled set of 30)
    #[arg(long, value_name = "FILE", requires = "arena")]
    pub(crate) arena_prompts: Option<PathBuf>,

    /// Words (one per line, `#` comments) that mark a vote non-anonymous when
    /// an answer contains one (default: model and company names)
    #[arg(long, value_name = "FILE", requires = "arena")]
    pub(crate) identity_words: Option<PathBuf>,

    /// Votes one client address may cast per rolling hour (new battles:
    /// twice as many)
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) votes_per_hour: u32,

    /// Votes one client address may cast per rolling day (new battles: twice
    /// as many)
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) votes_per_day: u32,
}

/// The arena's voting configuration from the flags: contenders opened,
/// prompt set and identity words read (errors name the file and line).
fn arena_config(args: &ServeArgs) -> anyhow::Result<Option<podium_web::ArenaConfig>> {
    if !args.arena {
        return Ok(None);
    }
    let prompts = match &args.arena_prompts {
        None => podium_arena::prompts::bundled(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the prompt set {}", path.display()))?;
            podium_arena::parse_prompts(&text)
                .map_err(|err| crate::UserError(format!("{}: {err}", path.display())))?
        }
    };
    let identity_words = match &args.identity_words {
        None => podium_arena::answer::DEFAULT_IDENTITY_WORDS
            .iter()
            .map(|w| (*w).to_string())
            .collect(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the identity words {}", path.display()))?;
            podium_arena::answer::parse_identity_words(&text)
        }
    };
    let source = crate::arena_source::BackendAnswers::open(&args.contender)?;
    Ok(Some(podium_web::ArenaConfig {
        source: std::sync::Arc::new(source),
        prompts,
        identity_words,
        votes_per_hour: args.votes_per_hour,
        votes_per_day: args.votes_per_day,
    }))
}

pub(crate) fn run(db: &Location, dirs: &[PathBuf], args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // Errors behind a 500 are logged (main's subscriber, PODIUM_LOG); the client
    // sees only that one happened.
    let catalog = crate::board_cmd::catalog(args.catalog.as_deref())?;
    let options = BoardOptions {
        bench_load: args.bench_load.clone(),
        machine_price: args.machine_price,
        groups: crate::board_cmd::groups(dirs),
        ..BoardOptions::default()
    };
    let arena = arena_config(args)?;
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
            db
        );
        let mut state = podium_web::AppState::new(store, catalog, options);
        if let Some(arena) = arena {
            eprintln!(
                "podium serve: arena voting is on at http://{local}/arena ({} contenders)",
                args.contender.len()
            );
            state = state.with_arena(arena);
        }
        podium_web::serve_listener(listener, state, shutdown_signal())
            .await
            .context("the web server failed")
    })?;
    crate::note!("podium serve: stopped");
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
