//! `podium arena`: battle files into the store and back out (FastChat JSONL,
//! LLMFAO-style CSV), and the arena board (Bradley–Terry ratings with 95%
//! intervals, rank (UB), online Elo, average win rate) from a file or the store.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use podium_arena::formats::{for_each_battle, write_jsonl};
use podium_arena::{
    ArenaError, Battle, BattleFormat, BattleSet, CiMethod, RatingOptions, Ratings, ReadLimits,
};
use podium_store::{BattleFilter, Location};

use crate::UserError;
use crate::args::Format;
use crate::board::Table;

#[derive(Debug, Subcommand)]
pub(crate) enum ArenaCommand {
    /// Store the battles of a file (FastChat JSONL or CSV) in one transaction: all or none
    #[command(after_help = "Examples:\n  \
  podium arena import clean_battle.jsonl            # FastChat battle JSONL\n  \
  podium arena import llmfao.csv --source llmfao    # CSV: left,right,winner or model_a,model_b,winner\n\n\
The layout is chosen by extension (.jsonl/.ndjson/.json, .csv), else by the first\n\
byte (`{` is JSONL). A malformed row is an error naming FILE:LINE and the field,\n\
and nothing is stored. Limits: a line 8 MiB, 10,000,000 battles, names 256 bytes,\n\
a file 4 GiB.")]
    Import {
        /// The battle file
        file: PathBuf,
        /// Where the battles came from, stored with each (default: import:FILE)
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
    /// Write every stored battle to a FastChat JSONL file (`-` for stdout)
    #[command(after_help = "Examples:\n  \
  podium arena export battles.jsonl\n  \
  podium arena export - | head                       # to stdout\n\n\
Each line holds every field a battle has (conversations, style counts as\n\
FastChat's conv_metadata, judge output), so `podium arena import` reads it back\n\
unchanged.")]
    Export {
        /// The JSONL file to write, replaced if it exists
        file: PathBuf,
    },
    /// The arena board: Bradley–Terry ratings, 95% intervals, rank (UB), online Elo, win rates
    Ratings(RatingsArgs),
    /// Judge the answers of two or more models on a prompt set with a judge model, both orders per pair; stores the battles
    Judge(crate::arena_judge_cmd::JudgeArgs),
}

/// `podium arena ratings`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
  podium arena ratings                                   # the stored battles\n  \
  podium arena ratings --battles llmfao.csv              # a file, the store untouched\n  \
  podium arena ratings --ci sandwich --format json       # CLT interval, the Ratings value\n  \
  podium arena ratings --anchor mixtral-8x7b-instruct-v0.1=1114   # FastChat's anchor\n  \
  podium arena ratings --style-control --category coding --people\n  \
  podium arena ratings --bootstrap 100 --seed 7 --threads 2 --format csv\n\n\
Ratings are 400 points per factor of 10 in the odds of winning (ties count half a\n\
win each), shifted so their mean is 1000 or the --anchor model has its rating.\n\
rank (UB) is 1 + the number of models whose lower bound is above this model's\n\
upper bound. Elo is online (K = 4, from 1000) in time order; the average win rate\n\
is the mean over the opponents met of the share of points against each.\n\
Votes marked non-anonymous are left out unless --include-non-anonymous.")]
pub(crate) struct RatingsArgs {
    /// Rate the battles of this file (FastChat JSONL or CSV) instead of the store's
    #[arg(long, value_name = "FILE")]
    pub(crate) battles: Option<PathBuf>,
    /// Bootstrap rounds for the intervals (--ci bootstrap)
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub(crate) bootstrap: usize,
    /// How the 95% intervals are computed
    #[arg(long, value_enum, default_value_t = CiArg::Bootstrap)]
    pub(crate) ci: CiArg,
    /// Shift the ratings so MODEL has RATING (default: mean 1000)
    #[arg(long, value_name = "MODEL=RATING", value_parser = parse_anchor)]
    pub(crate) anchor: Option<(String, f64)>,
    /// Weigh each battle 1 / max(battles of its pair, 50) (LMArena, 2025)
    #[arg(long)]
    pub(crate) reweight: bool,
    /// Fit answer length and Markdown headers, lists and bold beside the ratings
    /// (needs style counts on every battle: conv_metadata or conversations)
    #[arg(long)]
    pub(crate) style_control: bool,
    /// Only battles of this category
    #[arg(long, value_name = "C")]
    pub(crate) category: Option<String>,
    /// Only this judge model's battles
    #[arg(long, value_name = "NAME", conflicts_with = "people")]
    pub(crate) judge: Option<String>,
    /// Only people's votes (no judge model)
    #[arg(long)]
    pub(crate) people: bool,
    /// Keep votes marked non-anonymous (an answer revealed a model's identity)
    #[arg(long)]
    pub(crate) include_non_anonymous: bool,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 1234)]
    pub(crate) seed: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CiArg {
    /// Percentile bootstrap over the battles (seeded)
    Bootstrap,
    /// The sandwich (robust, CLT) covariance of the fit
    Sandwich,
}

fn parse_anchor(text: &str) -> Result<(String, f64), String> {
    let (model, rating) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}` is not MODEL=RATING"))?;
    if model.is_empty() {
        return Err(format!("`{text}` names no model (MODEL=RATING)"));
    }
    match rating.trim().parse::<f64>() {
        Ok(rating) if rating.is_finite() => Ok((model.to_owned(), rating)),
        _ => Err(format!("`{rating}` is not a rating (a number)")),
    }
}

pub(crate) fn run(
    db: &Location,
    threads: usize,
    command: &ArenaCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ArenaCommand::Import { file, source } => import(db, file, source.as_deref()),
        ArenaCommand::Export { file } => export(db, file),
        ArenaCommand::Ratings(args) => ratings(db, threads, args),
        ArenaCommand::Judge(judge) => crate::arena_judge_cmd::run(db, judge),
    }
}

/// The battles of `path`, its layout detected from its name and first bytes.
/// Every problem with the file is the user's (exit code 2), named
/// `FILE:LINE: field `F`: …`.
pub(crate) fn read_battle_file(path: &Path) -> anyhow::Result<Vec<Battle>> {
    let mut battles = Vec::new();
    each_battle_of_file(path, &mut |battle| {
        battles.push(battle);
        Ok(())
    })?;
    Ok(battles)
}

/// Hands each battle of the file at `path` to `sink`, in file order, keeping none.
fn each_battle_of_file(
    path: &Path,
    sink: &mut dyn FnMut(Battle) -> Result<(), ArenaError>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|err| UserError(format!("cannot read {}: {err}", path.display())))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader
        .fill_buf()
        .map_err(|err| UserError(format!("cannot read {}: {err}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let format = BattleFormat::detect(&name, head);
    for_each_battle(reader, format, &ReadLimits::default(), sink).map_err(|err| {
        let message = match err {
            ArenaError::Row {
                line,
                field,
                message,
            } => format!("{}:{line}: field `{field}`: {message}", path.display()),
            other => format!("{}: {other}", path.display()),
        };
        UserError(message).into()
    })
}

/// The selected battles of a file as the fits read them, in time order
/// (stable, as the store orders them), and how many lack style counts. Only
/// two ids, an outcome and the style of each battle are kept, so a file of
/// millions of battles with their conversations is rated in little memory.
fn battle_set_of_file(path: &Path, filter: &BattleFilter) -> anyhow::Result<(BattleSet, usize)> {
    // 24 bytes a battle; style counts (72 bytes) apart, kept only while
    // every battle so far has them (style control needs all or none).
    struct Row {
        tstamp: f64,
        a: u32,
        b: u32,
        index: u32,
        outcome: podium_arena::Outcome,
    }
    let mut set = BattleSet::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut styles: Vec<[podium_arena::StyleCounts; 2]> = Vec::new();
    let mut without_style = 0usize;
    each_battle_of_file(path, &mut |battle| {
        if selected(&battle, filter) {
            match battle.style {
                Some(style) if without_style == 0 => styles.push(style),
                Some(_) => {}
                None => {
                    without_style += 1;
                    styles = Vec::new();
                }
            }
            rows.push(Row {
                tstamp: battle.tstamp,
                a: set.intern(&battle.model_a),
                b: set.intern(&battle.model_b),
                // The reader stops at 10,000,000 battles, far below u32::MAX.
                index: rows.len() as u32,
                outcome: battle.outcome,
            });
        }
        Ok(())
    })?;
    // Online Elo takes battles in time order, as the store gives them.
    rows.sort_by(|x, y| x.tstamp.total_cmp(&y.tstamp));
    for row in rows {
        let style = styles.get(row.index as usize).copied();
        set.push_ids_styled(row.a, row.b, row.outcome, style)
            .map_err(|err| UserError(format!("{}: {err}", path.display())))?;
    }
    Ok((set, without_style))
}

fn model_count(battles: &[Battle]) -> usize {
    let mut models: Vec<&str> = battles
        .iter()
        .flat_map(|b| [b.model_a.as_str(), b.model_b.as_str()])
        .collect();
    models.sort_unstable();
    models.dedup();
    models.len()
}

fn import(db: &Location, file: &Path, source: Option<&str>) -> anyhow::Result<ExitCode> {
    let battles = read_battle_file(file)?;
    if battles.is_empty() {
        return Err(UserError(format!("{}: no battles in the file", file.display())).into());
    }
    let source = match source {
        Some(source) => source.to_owned(),
        None => format!(
            "import:{}",
            file.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
    };
    let store = crate::commands::open_store(db)?;
    podium_board::arena::save_battles(&store, &battles, &source)
        .with_context(|| format!("cannot store the battles of {}", file.display()))?;
    crate::emit(&format!(
        "imported {} battles among {} models from {} (source `{source}`)\n",
        battles.len(),
        model_count(&battles),
        file.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn export(db: &Location, file: &Path) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open_store(db)?;
    let battles = podium_board::arena::load_battles(&store, &BattleFilter::default())
        .with_context(|| format!("cannot read the battles of {}", db))?;
    if file == Path::new("-") {
        let mut text = Vec::new();
        write_jsonl(&mut text, &battles)?;
        crate::emit(&String::from_utf8_lossy(&text))?;
    } else {
        let out = std::fs::File::create(file)
            .map_err(|err| UserError(format!("cannot write {}: {err}", file.display())))?;
        let mut out = std::io::BufWriter::new(out);
        write_jsonl(&mut out, &battles)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", file.display()))?;
        crate::note!(
            "exported {} battles among {} models to {}",
            battles.len(),
            model_count(&battles),
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The store's filter for these flags; a file's battles are filtered alike.
fn battle_filter(args: &RatingsArgs) -> BattleFilter {
    BattleFilter {
        category: args.category.clone(),
        judge: if args.people {
            Some(None)
        } else {
            args.judge.clone().map(Some)
        },
        anonymous_only: !args.include_non_anonymous,
    }
}

fn selected(battle: &Battle, filter: &BattleFilter) -> bool {
    filter
        .category
        .as_ref()
        .is_none_or(|c| battle.category.as_ref() == Some(c))
        && filter.judge.as_ref().is_none_or(|j| &battle.judge == j)
        && (battle.anonymous || !filter.anonymous_only)
}

fn ratings(db: &Location, threads: usize, args: &RatingsArgs) -> anyhow::Result<ExitCode> {
    let filter = battle_filter(args);
    let mut store_is_empty = false;
    let ((set, without_style), origin) = match &args.battles {
        Some(file) => (
            battle_set_of_file(file, &filter)?,
            file.display().to_string(),
        ),
        None => {
            let store = crate::commands::open_store(db)?;
            let battles = podium_board::arena::load_battles(&store, &filter)
                .with_context(|| format!("cannot read the battles of {}", db))?;
            store_is_empty = battles.is_empty() && store.battle_count()? == 0;
            let selected: Vec<&Battle> = battles.iter().filter(|b| selected(b, &filter)).collect();
            let set = BattleSet::from_battles(selected.iter().copied())
                .map_err(|err| UserError(err.to_string()))?;
            let without_style = selected.iter().filter(|b| b.style.is_none()).count();
            ((set, without_style), format!("the store {}", db))
        }
    };
    if set.is_empty() {
        let message = if store_is_empty {
            format!("no battles in {origin}; store some first: podium arena import FILE")
        } else {
            format!("no battles to rate in {origin}{}", describe(&filter))
        };
        return Err(UserError(message).into());
    }
    if args.style_control && !set.has_style() {
        return Err(UserError(format!(
            "--style-control needs style counts on every battle (FastChat's conv_metadata, or both conversations); {without_style} of {} battles have none",
            set.len()
        ))
        .into());
    }
    let options = RatingOptions {
        ci: match args.ci {
            CiArg::Bootstrap => CiMethod::Bootstrap,
            CiArg::Sandwich => CiMethod::Sandwich,
        },
        bootstrap_rounds: args.bootstrap,
        seed: args.seed,
        anchor: args.anchor.clone(),
        reweight: args.reweight,
        style_control: args.style_control,
        threads: threads.max(1),
    };
    let ratings = podium_arena::rate(&set, &options).map_err(|err| UserError(err.to_string()))?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&ratings)? + "\n",
        Format::Csv => csv_table(&ratings).render(Format::Csv)?,
        format => {
            let mut text = table(&ratings).render(format)?;
            text.push_str(&footnote(&ratings, args));
            text
        }
    };
    crate::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The filter in words, for an empty selection.
fn describe(filter: &BattleFilter) -> String {
    let mut parts = Vec::new();
    if let Some(category) = &filter.category {
        parts.push(format!("category `{category}`"));
    }
    match &filter.judge {
        None => {}
        Some(None) => parts.push("people's votes".to_owned()),
        Some(Some(judge)) => parts.push(format!("judge `{judge}`")),
    }
    if filter.anonymous_only {
        parts.push("anonymous votes (--include-non-anonymous for all)".to_owned());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (selected: {})", parts.join(", "))
    }
}

/// rank (UB), model, rating, 95% interval (−/+), Elo, average win rate, battles.
fn table(ratings: &Ratings) -> Table {
    let mut table = Table::new(&[
        ("rank (UB)", true),
        ("model", false),
        ("rating", true),
        ("95% interval", true),
        ("Elo", true),
        ("avg win rate", true),
        ("battles", true),
    ]);
    for model in &ratings.models {
        table.push(vec![
            model.rank_ub.to_string(),
            podium_board::visible(&model.model),
            format!("{:.1}", model.rating),
            format!(
                "−{:.1}/+{:.1}",
                model.rating - model.lower,
                model.upper - model.rating
            ),
            format!("{:.1}", model.elo),
            format!("{:.1}%", model.average_win_rate * 100.0),
            model.battles.to_string(),
        ]);
    }
    table
}

/// The same rows as plain numbers, for spreadsheets.
fn csv_table(ratings: &Ratings) -> Table {
    let mut table = Table::new(&[
        ("rank_ub", true),
        ("model", false),
        ("rating", true),
        ("lower", true),
        ("upper", true),
        ("elo", true),
        ("average_win_rate", true),
        ("battles", true),
        ("wins", true),
        ("losses", true),
        ("ties", true),
    ]);
    for model in &ratings.models {
        table.push(vec![
            model.rank_ub.to_string(),
            model.model.clone(),
            model.rating.to_string(),
            model.lower.to_string(),
            model.upper.to_string(),
            model.elo.to_string(),
            model.average_win_rate.to_string(),
            model.battles.to_string(),
            model.wins.to_string(),
            model.losses.to_string(),
            model.ties.to_string(),
        ]);
    }
    table
}

fn footnote(ratings: &Ratings, args: &RatingsArgs) -> String {
    let interval = match ratings.ci {
        CiMethod::Bootstrap => format!(
            "percentile bootstrap, {} rounds, seed {}",
            ratings.bootstrap_rounds, args.seed
        ),
        CiMethod::Sandwich => "sandwich (CLT)".to_owned(),
    };
    let mut text = format!(
        "\n{} battles, {} models; 95% intervals: {interval}",
        ratings.n_battles,
        ratings.models.len()
    );
    if args.reweight {
        text.push_str("; pairs reweighted");
    }
    if let Some(coefficients) = &ratings.style_coefficients {
        let list: Vec<String> = coefficients
            .iter()
            .map(|(name, value)| format!("{name} {value:+.3}"))
            .collect();
        text.push_str(&format!("; style coefficients: {}", list.join(", ")));
    }
    text.push('\n');
    text
}
