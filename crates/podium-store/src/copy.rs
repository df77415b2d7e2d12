//! `podium store copy`: every table of one store into another, empty one, in
//! either direction between SQLite and PostgreSQL, ids kept; verified by each
//! table's row count and a checksum over its rows, computed from the source
//! while copying and again from the target afterwards.

use sha2::{Digest, Sha256};

use crate::sql::{Begin, Connection, Dialect, Param, Row, Value};
use crate::{Store, StoreError};

/// One table's columns and the key its rows are read in order of.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    /// Columns of the primary key, a prefix of `columns`.
    key: &'static [&'static str],
    /// Whether `id` is an identity column whose sequence must follow the copied ids.
    identity: bool,
}

/// Every table, parents before children (foreign keys hold at each insert).
const TABLES: &[Table] = &[
    Table {
        name: "models",
        columns: &["id", "spec", "fingerprint", "chat_template_hash"],
        key: &["id"],
        identity: true,
    },
    Table {
        name: "tasks",
        columns: &["id", "name", "content_hash", "config_json"],
        key: &["id"],
        identity: true,
    },
    Table {
        name: "runs",
        columns: &[
            "id",
            "model_id",
            "task_id",
            "manifest_json",
            "podium_version",
            "n_shots",
            "chat_template",
            "seed",
            "limit_n",
            "status",
            "error",
            "started_at",
            "finished_at",
            "results_json",
            "active_ms",
            "session_started_at",
        ],
        key: &["id"],
        identity: true,
    },
    Table {
        name: "samples",
        columns: &[
            "run_id",
            "doc_id",
            "prompt_hash",
            "requests_json",
            "responses_json",
            "metrics_json",
            "n_input_tokens",
            "n_output_tokens",
            "timing_json",
            "status",
            "error",
            "created_at",
            "attempts",
        ],
        key: &["run_id", "doc_id"],
        identity: false,
    },
    Table {
        name: "cache",
        columns: &["key", "response_json", "created_at"],
        key: &["key"],
        identity: false,
    },
    Table {
        name: "bench_results",
        columns: &[
            "id",
            "model_spec",
            "load",
            "config_json",
            "summary_json",
            "created_at",
        ],
        key: &["id"],
        identity: true,
    },
    Table {
        name: "battles",
        columns: &[
            "id",
            "model_a",
            "model_b",
            "winner",
            "category",
            "judge",
            "language",
            "tstamp",
            "turns",
            "anonymous",
            "conversation_a",
            "conversation_b",
            "style_json",
            "judge_output",
            "source",
            "created_at",
        ],
        key: &["id"],
        identity: true,
    },
    Table {
        name: "judgements",
        columns: &[
            "id",
            "battle_id",
            "judge",
            "prompt_id",
            "prompt_hash",
            "category",
            "model_a",
            "model_b",
            "a_first",
            "output",
            "verdict",
            "reason",
            "created_at",
        ],
        key: &["id"],
        identity: true,
    },
    // Jobs come along with their runs (`podium jobs` shows the same history);
    // the shared limits' clocks and slots are live state and are not copied.
    Table {
        name: "jobs",
        columns: &[
            "id",
            "run_id",
            "model_spec",
            "task_name",
            "spec_json",
            "doc_ids_json",
            "n_docs",
            "state",
            "worker",
            "lease_token",
            "lease_expires",
            "claims",
            "n_stored",
            "n_failed",
            "error",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ],
        key: &["id"],
        identity: true,
    },
];

/// Rows read per query while copying.
const CHUNK_ROWS: i64 = 500;

/// One table of a store: how many rows it has and a checksum over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub table: &'static str,
    pub rows: u64,
    /// The sum (mod 2^128) of each row's SHA-256 (first 16 bytes) over a
    /// canonical encoding of its values: independent of row order and engine.
    pub checksum: String,
}

/// Order-independent checksum of a table's rows.
#[derive(Default)]
struct Checksum {
    rows: u64,
    sum: u128,
}

impl Checksum {
    fn add(&mut self, row: &Row) {
        let mut hasher = Sha256::new();
        for i in 0..row.len() {
            match row.value(i) {
                Value::Null => hasher.update(b"N"),
                Value::Int(v) => {
                    hasher.update(b"I");
                    hasher.update(v.to_le_bytes());
                }
                Value::Real(v) => {
                    hasher.update(b"R");
                    hasher.update(v.to_bits().to_le_bytes());
                }
                Value::Text(text) => {
                    hasher.update(b"T");
                    hasher.update((text.len() as u64).to_le_bytes());
                    hasher.update(text.as_bytes());
                }
            }
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
    }

    fn summary(&self, table: &'static str) -> TableSummary {
        TableSummary {
            table,
            rows: self.rows,
            checksum: format!("{:032x}", self.sum),
        }
    }
}

impl Store {
    /// Each table's row count and checksum (see [`TableSummary`]).
    pub fn table_checksums(&self) -> Result<Vec<TableSummary>, StoreError> {
        self.with(|this| {
            this.connection.transaction(Begin::Read, |tx| {
                TABLES
                    .iter()
                    .map(|table| {
                        let mut checksum = Checksum::default();
                        for_each_chunk(tx, table, |rows| {
                            rows.iter().for_each(|row| checksum.add(row));
                            Ok(())
                        })?;
                        Ok(checksum.summary(table.name))
                    })
                    .collect()
            })
        })
    }

    /// Copies every table of this store into `target`, which must be empty, in
    /// one transaction of the target (all or nothing), reading this store from
    /// one snapshot. Returns the tables as copied; the target's own counts and
    /// checksums are compared with them before returning.
    pub fn copy_into(&self, target: &mut Store) -> Result<Vec<TableSummary>, StoreError> {
        let target_name = target.name();
        for table in TABLES {
            let rows: i64 = target
                .connection
                .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])?
                .get(0)?;
            if rows > 0 {
                return Err(StoreError::TargetNotEmpty {
                    database: target_name,
                    table: table.name,
                    rows,
                });
            }
        }
        let target_dialect = target.dialect();
        let copied = self.with(|this| {
            this.connection.transaction(Begin::Read, |source| {
                target.connection.transaction(Begin::Write, |tx| {
                    let mut summaries = Vec::with_capacity(TABLES.len());
                    for table in TABLES {
                        let placeholders: Vec<String> =
                            (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
                        let insert = format!(
                            "INSERT INTO {} ({}) VALUES ({})",
                            table.name,
                            table.columns.join(", "),
                            placeholders.join(", ")
                        );
                        let mut checksum = Checksum::default();
                        for_each_chunk(source, table, |rows| {
                            for row in rows {
                                let params: Vec<Param<'_>> =
                                    (0..row.len()).map(|i| Param::from(row.value(i))).collect();
                                tx.execute(&insert, &params)?;
                                checksum.add(row);
                            }
                            Ok(())
                        })?;
                        if table.identity && target_dialect == Dialect::Postgres {
                            // The next id the target hands out follows the copied ones.
                            tx.execute(
                                &format!(
                                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'),
                                                   coalesce(max(id), 0) + 1, false)
                                     FROM {0}",
                                    table.name
                                ),
                                &[],
                            )?;
                        }
                        summaries.push(checksum.summary(table.name));
                    }
                    Ok(summaries)
                })
            })
        })?;
        let verified = target.table_checksums()?;
        if let Some((want, got)) = copied.iter().zip(&verified).find(|(a, b)| a != b) {
            return Err(StoreError::CopyMismatch {
                table: want.table,
                detail: format!(
                    "copied {} rows (checksum {}), the target holds {} (checksum {})",
                    want.rows, want.checksum, got.rows, got.checksum
                ),
            });
        }
        Ok(copied)
    }
}

/// Reads `table` in key order, `CHUNK_ROWS` at a time, handing each chunk to `each`.
fn for_each_chunk(
    connection: &Connection,
    table: &Table,
    mut each: impl FnMut(&[Row]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let columns = table.columns.join(", ");
    let key = table.key.join(", ");
    let first = format!(
        "SELECT {columns} FROM {} ORDER BY {key} LIMIT {CHUNK_ROWS}",
        table.name
    );
    // Row values compare lexicographically in both engines: `(a, b) > (?1, ?2)`.
    let after_placeholders: Vec<String> = (1..=table.key.len()).map(|i| format!("?{i}")).collect();
    let next = format!(
        "SELECT {columns} FROM {} WHERE ({key}) > ({}) ORDER BY {key} LIMIT {CHUNK_ROWS}",
        table.name,
        after_placeholders.join(", ")
    );
    let mut rows = connection.query(&first, &[])?;
    while !rows.is_empty() {
        each(&rows)?;
        if (rows.len() as i64) < CHUNK_ROWS {
            break;
        }
        let Some(last) = rows.last() else { break };
        let last_key: Vec<Value> = (0..table.key.len())
            .map(|i| last.value(i).clone())
            .collect();
        let params: Vec<Param<'_>> = last_key.iter().map(Param::from).collect();
        rows = connection.query(&next, &params)?;
    }
    Ok(())
}
