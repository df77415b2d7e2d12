//! `podium store copy FROM TO`: a whole store between SQLite and PostgreSQL.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use podium_store::Location;

use crate::UserError;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy every table of a store into an empty one (SQLite ↔ PostgreSQL), verified by row counts and checksums
    #[command(after_help = "Examples:
  podium store copy ~/.local/share/podium/podium.db postgres://podium@db.example/podium
  podium store copy postgres://podium@db.example/podium backup.db

FROM and TO are paths, sqlite:PATH or postgres:// URLs (a password in a URL is never
printed). TO must be empty: a new file, or a database without Podium's tables or with
them empty. The copy is one transaction of TO: on any error TO is left as it was.")]
    Copy {
        /// The store to copy
        from: PathBuf,
        /// The empty store to copy it into
        to: PathBuf,
    },
}

pub(crate) fn run(command: &StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Copy { from, to } => copy(from, to),
    }
}

fn copy(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<ExitCode> {
    let from = Location::parse(from.as_os_str()).map_err(|e| UserError(e.to_string()))?;
    let to = Location::parse(to.as_os_str()).map_err(|e| UserError(e.to_string()))?;
    if let Location::Sqlite(path) = &from
        && !path.exists()
    {
        return Err(UserError(format!("{}: no such database", path.display())).into());
    }
    let source = crate::commands::open_store(&from)?;
    let mut target = crate::commands::open_store(&to)?;
    let tables = match source.copy_into(&mut target) {
        Err(error @ podium_store::StoreError::TargetNotEmpty { .. }) => {
            return Err(UserError(error.to_string()).into());
        }
        other => other.with_context(|| format!("copying {from} into {to}"))?,
    };
    println!("{:<14} {:>10}  checksum", "table", "rows");
    for table in &tables {
        println!("{:<14} {:>10}  {}", table.table, table.rows, table.checksum);
    }
    let total: u64 = tables.iter().map(|t| t.rows).sum();
    crate::note!(
        "copied {total} rows from {from} to {to}; the target's counts and checksums match"
    );
    Ok(ExitCode::SUCCESS)
}
