//! `podium board`: the [`Leaderboard`] value of `podium-board` as a terminal
//! table, Markdown, CSV or JSON (the value itself, as the web API serves it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use podium_board::{
    BoardCatalog, BoardOptions, GroupSpec, Leaderboard, access_label, average_text,
    parameters_text, score_text,
};
use podium_store::Location;

use crate::UserError;
use crate::args::{BoardArgs, Format};
use crate::board::Table;

/// The catalogue: built-in, overlaid by `--catalog` / `PODIUM_CATALOG` when
/// given. A bad file is the user's error (exit code 2), naming its line.
pub(crate) fn catalog(path: Option<&Path>) -> anyhow::Result<BoardCatalog> {
    match path {
        Some(path) => {
            BoardCatalog::with_user_file(path).map_err(|err| UserError(err.to_string()).into())
        }
        None => Ok(BoardCatalog::builtin()),
    }
}

pub(crate) fn options(args: &BoardArgs, dirs: &[PathBuf]) -> BoardOptions {
    BoardOptions {
        as_of: args.as_of.clone(),
        average_over: args.average_over.clone(),
        bench_load: args.bench_load.clone(),
        machine_price: args.machine_price,
        groups: groups(dirs),
    }
}

/// The groups of the task folders that report an aggregate score (an
/// `aggregate_metric_list`: `mmlu`, its four categories, `lite_mmlu`), each
/// with its leaf tasks: every one gets an aggregated column on the board. A
/// collection without one (`lite`) gets none. A group that does not resolve
/// (a broken file) is left out; `podium tasks` reports it.
pub(crate) fn groups(dirs: &[PathBuf]) -> Vec<GroupSpec> {
    use podium_tasks::registry::Selection;
    let mut registry = podium_tasks::Registry::discover(dirs);
    let names: Vec<String> = registry
        .listing()
        .into_iter()
        .filter(|row| row.kind == "group")
        .map(|row| row.name)
        .collect();
    let mut groups = Vec::new();
    for name in names {
        let Ok(selection) = registry.resolve(std::slice::from_ref(&name)) else {
            continue;
        };
        if let [group @ Selection::Group { aggregate, .. }] = selection.as_slice()
            && !aggregate.is_empty()
        {
            let mut members = Vec::new();
            group.task_names(&mut members);
            groups.push(GroupSpec { name, members });
        }
    }
    groups
}

pub(crate) fn run(db: &Location, dirs: &[PathBuf], args: &BoardArgs) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open_store(db)?;
    let catalog = catalog(args.catalog.as_deref())?;
    let board = Leaderboard::build(&store, &catalog, options(args, dirs))
        .with_context(|| format!("cannot build the board from {}", db))?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&board)? + "\n",
        Format::Csv => podium_board::to_csv(&board)?,
        format => table(&board).render(format)?,
    };
    crate::emit(&text)?;
    for problem in &board.skipped {
        eprintln!("warning: {problem}");
    }
    if board.models.is_empty() {
        eprintln!(
            "The board is empty: no finished run in {}. Evaluate a model first, e.g.\n  podium eval -m mock:a -t lite_arc_easy",
            db
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One row per model: rank, facts, each column's score ± half-width of its 95%
/// interval with its rank, the average, speed, price and cost.
pub(crate) fn table(board: &Leaderboard) -> Table {
    let mut headers: Vec<(String, bool)> = vec![
        ("rank".into(), true),
        ("model".into(), false),
        (
            format!("average ({} tasks)", board.average_columns.len()),
            true,
        ),
        ("access".into(), false),
        ("licence".into(), false),
        ("params".into(), true),
    ];
    for (i, column) in board.columns.iter().enumerate() {
        let averaged = if board.average_columns.contains(&i) {
            ""
        } else {
            " (not averaged)"
        };
        headers.push((
            format!("{}{averaged}", podium_board::visible(&column.label)),
            true,
        ));
    }
    headers.extend([
        ("tok/s".into(), true),
        ("TTFT s".into(), true),
        ("$/1M blended".into(), true),
        ("cost $".into(), true),
        ("$/1k samples".into(), true),
        ("last run".into(), false),
    ]);
    let mut table = Table::with_headers(headers);
    for model in &board.models {
        let mut row = vec![
            model
                .average
                .as_ref()
                .map_or_else(|| "—".into(), |a| a.rank.to_string()),
            podium_board::visible(&model.name),
            match &model.average {
                Some(average) => average_text(average),
                None => "no average".into(),
            },
            access_label(model.info.access).into(),
            podium_board::visible(model.info.licence.as_deref().unwrap_or("unknown")),
            parameters_text(model.info.parameters),
        ];
        for (column, cell) in board.columns.iter().zip(&model.cells) {
            row.push(match cell {
                Some(cell) => {
                    let low = if cell.low_confidence { " low-n" } else { "" };
                    format!("{} #{}{low}", score_text(column, cell), cell.rank)
                }
                None => "—".into(),
            });
        }
        let speed = model.speed.as_ref();
        row.push(
            speed
                .and_then(|s| s.output_speed)
                .map_or_else(|| "—".into(), |v| format!("{v:.1}")),
        );
        row.push(
            speed
                .and_then(|s| s.ttft_s)
                .map_or_else(|| "—".into(), |v| format!("{v:.3}")),
        );
        row.push(
            model
                .info
                .blended_price()
                .map_or_else(|| "unknown".into(), |p| format!("{p:.3}")),
        );
        match &model.cost {
            Some(cost) => {
                let bound = if cost.lower_bound { "≥" } else { "" };
                row.push(format!("{bound}{:.4}", cost.usd));
                row.push(
                    cost.per_1k_samples
                        .map_or_else(|| "—".into(), |c| format!("{bound}{c:.4}")),
                );
            }
            None => {
                row.push("unknown".into());
                row.push("unknown".into());
            }
        }
        row.push(
            model
                .last_run
                .get(..10)
                .unwrap_or(&model.last_run)
                .to_string(),
        );
        table.push(row);
    }
    table
}
