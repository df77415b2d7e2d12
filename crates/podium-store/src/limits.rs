//! Limits shared by every process that uses the database (`podium worker`s):
//! pacing clocks for request and token rates, and concurrency slots.
//!
//! - A pacing clock (`shared_limits`) is the earliest time the next unit of
//!   work may start (the generic cell rate algorithm): reserving `cost`
//!   seconds starts at `max(clock, now)` and moves the clock `cost` later.
//!   Whoever reserves sleeps until its start, so starts are spaced at least
//!   `cost` apart across all workers together.
//! - A slot (`shared_slots`) is held by one request at a time, until it is
//!   released or its hold lapses (a worker that died holding it).
//!
//! Times are seconds on the database's clock.

use std::time::Duration;

use crate::jobs::{lock, now_expr};
use crate::sql::{Begin, params};
use crate::{Store, StoreError};

impl Store {
    /// Reserves `cost_s` seconds of the pacing clock `key` and returns how long
    /// the caller must wait before it starts.
    pub fn pace(&self, key: &str, cost_s: f64) -> Result<Duration, StoreError> {
        let dialect = self.dialect();
        let now = now_expr(dialect);
        let cost_s = if cost_s.is_finite() {
            cost_s.max(0.0)
        } else {
            0.0
        };
        self.with(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                tx.execute(
                    &format!(
                        "INSERT INTO shared_limits (key, next_at) VALUES (?1, {now})
                         ON CONFLICT (key) DO NOTHING"
                    ),
                    params![key],
                )?;
                let row = tx.query_one(
                    &format!(
                        "SELECT next_at, {now} FROM shared_limits WHERE key = ?1{}",
                        lock(dialect, " FOR UPDATE")
                    ),
                    params![key],
                )?;
                let (next_at, now_s): (f64, f64) = (row.get(0)?, row.get(1)?);
                let start = next_at.max(now_s);
                tx.execute(
                    "UPDATE shared_limits SET next_at = ?2 WHERE key = ?1",
                    params![key, start + cost_s],
                )?;
                Ok(Duration::from_secs_f64((start - now_s).max(0.0)))
            })
        })
    }

    /// Moves the pacing clock `key` by `delta_s` seconds (negative: earlier),
    /// when a request's real cost turns out other than what was reserved. The
    /// clock never moves before now.
    pub fn pace_adjust(&self, key: &str, delta_s: f64) -> Result<(), StoreError> {
        if !delta_s.is_finite() || delta_s == 0.0 {
            return Ok(());
        }
        let now = now_expr(self.dialect());
        let max = match self.dialect() {
            crate::sql::Dialect::Sqlite => "max",
            crate::sql::Dialect::Postgres => "greatest",
        };
        self.with(|this| {
            this.connection.execute(
                &format!(
                    "UPDATE shared_limits SET next_at = {max}(next_at + ?2, {now}) WHERE key = ?1"
                ),
                params![key, delta_s],
            )?;
            Ok(())
        })
    }

    /// Takes a free slot among `key`'s first `cap` for `holder`, held for at
    /// most `hold` unless released; `None` when all are taken.
    pub fn acquire_slot(
        &self,
        key: &str,
        cap: u64,
        holder: &str,
        hold: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let dialect = self.dialect();
        let now = now_expr(dialect);
        self.with(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                let known: u64 = tx
                    .query_one(
                        "SELECT count(*) FROM shared_slots WHERE key = ?1 AND slot < ?2",
                        params![key, cap],
                    )?
                    .get(0)?;
                if known < cap {
                    for slot in 0..cap {
                        tx.execute(
                            "INSERT INTO shared_slots (key, slot) VALUES (?1, ?2)
                             ON CONFLICT (key, slot) DO NOTHING",
                            params![key, slot],
                        )?;
                    }
                }
                tx.query_opt(
                    &format!(
                        "UPDATE shared_slots SET holder = ?3, expires = {now} + ?4
                         WHERE key = ?1 AND slot = (
                             SELECT slot FROM shared_slots
                             WHERE key = ?1 AND slot < ?2
                               AND (holder IS NULL OR expires < {now})
                             ORDER BY slot LIMIT 1{})
                         RETURNING slot",
                        lock(dialect, " FOR UPDATE SKIP LOCKED")
                    ),
                    params![key, cap, holder, hold.as_secs_f64()],
                )?
                .map(|row| row.get(0))
                .transpose()
            })
        })
    }

    /// Gives back a slot taken by [`Store::acquire_slot`] (nothing if its hold
    /// lapsed and someone else took it).
    pub fn release_slot(&self, key: &str, slot: u64, holder: &str) -> Result<(), StoreError> {
        self.with(|this| {
            this.connection.execute(
                "UPDATE shared_slots SET holder = NULL, expires = NULL
                 WHERE key = ?1 AND slot = ?2 AND holder = ?3",
                params![key, slot, holder],
            )?;
            Ok(())
        })
    }
}
