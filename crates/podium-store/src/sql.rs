//! One connection to either engine, SQLite or PostgreSQL, and the few things the
//! store asks of it: run a statement, read rows, run a transaction. Statements
//! are written once in SQLite's spelling of parameters (`?1`, `?2`, …) and
//! rewritten to PostgreSQL's (`$1`, `$2`, …) here; where the dialects differ in
//! more than that, the query modules pick the text by [`Dialect`].
//!
//! Values cross this layer as [`Param`]s (in) and [`Value`]s (out), so a query
//! and the code that reads its rows are the same for both engines. A parameter
//! is converted to whatever type PostgreSQL inferred for its place (an integer
//! bound where a `BIGINT` or a `DOUBLE PRECISION` is expected, text where text
//! or `JSON` is), which keeps the typed engine as easy to call as SQLite.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error;

use postgres::types::{IsNull, Type};

use crate::{RunStatus, SampleStatus, StoreError};

/// Which SQL dialect a statement must be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// An open connection.
pub(crate) enum Connection {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConnection>),
}

/// A PostgreSQL client, its prepared statements, and the database's name
/// without its password (what errors say).
pub(crate) struct PgConnection {
    /// Taken only by `Drop` (the client's own drop blocks on its runtime, so it
    /// must run outside any async one).
    pub(crate) client: RefCell<Option<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    pub(crate) name: String,
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Takes SQLite's write lock before the first read (`BEGIN IMMEDIATE`), so a
    /// read-then-write decision cannot race another process. On PostgreSQL the
    /// statements that need it lock their rows (`FOR UPDATE`).
    Write,
    /// Reads from one snapshot of the database.
    Read,
}

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    /// Checked against `i64::MAX` when bound: both engines store signed integers.
    Unsigned(u64),
    Real(f64),
    Text(&'a str),
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One row of a result.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    values: Vec<Value>,
}

/// Conversion of a stored value into a Rust type.
pub(crate) trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, String>;
}

/// Builds a `&[Param]` from expressions of any type with a `From` conversion.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Param::from($value)),*] as &[$crate::sql::Param<'_>]
    };
}
pub(crate) use params;

impl Connection {
    pub(crate) fn postgres(client: postgres::Client, name: String) -> Connection {
        Connection::Postgres(Box::new(PgConnection {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            name,
        }))
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Connection::Sqlite(_) => Dialect::Sqlite,
            Connection::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        match self {
            Connection::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                Ok(statement.execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Connection::Postgres(pg) => pg.run(sql, |client, statement| {
                client.execute(statement, &pg_params(params))
            }),
        }
    }

    /// Runs several statements without parameters (schema changes).
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Connection::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Connection::Postgres(pg) => pg.batch_execute(sql),
        }
    }

    /// Every row of a query.
    pub(crate) fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        match self {
            Connection::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let n_columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..n_columns)
                        .map(|i| Ok(sqlite_value(row.get_ref(i)?)))
                        .collect::<Result<Vec<_>, rusqlite::Error>>()?;
                    out.push(Row { values });
                }
                Ok(out)
            }
            Connection::Postgres(pg) => {
                let rows = pg.run(sql, |client, statement| {
                    client.query(statement, &pg_params(params))
                })?;
                rows.iter()
                    .map(|row| {
                        let values = (0..row.len())
                            .map(|i| {
                                row.try_get::<_, PgValue>(i)
                                    .map(|v| v.0)
                                    .map_err(|source| pg.error(source))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(Row { values })
                    })
                    .collect()
            }
        }
    }

    /// The rows of a query, each converted by `convert`.
    pub(crate) fn query_map<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        convert: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql, params)?.iter().map(convert).collect()
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one.
    pub(crate) fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Value("a query that returns a row returned none".into()))
    }

    /// Runs `body` in a transaction: committed when it returns `Ok`, rolled back
    /// when it returns an error (or panics).
    pub(crate) fn transaction<T>(
        &self,
        begin: Begin,
        body: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.execute_batch(match (self.dialect(), begin) {
            (Dialect::Sqlite, Begin::Write) => "BEGIN IMMEDIATE",
            (Dialect::Sqlite, Begin::Read) => "BEGIN",
            (Dialect::Postgres, Begin::Write) => "BEGIN",
            (Dialect::Postgres, Begin::Read) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })?;
        let mut guard = RollbackGuard {
            connection: self,
            open: true,
        };
        let value = body(self)?;
        guard.open = false;
        self.execute_batch("COMMIT")?;
        Ok(value)
    }
}

/// Rolls back an open transaction when the body failed or panicked.
struct RollbackGuard<'a> {
    connection: &'a Connection,
    open: bool,
}

impl Drop for RollbackGuard<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to do with a failure here: the body's error is the one to
            // report, and a broken connection rolls back by itself.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

impl PgConnection {
    /// Runs `operation` with the prepared form of `sql` (prepared once per
    /// connection), naming the database in any error.
    fn run<T: Send>(
        &self,
        sql: &str,
        operation: impl FnOnce(
            &mut postgres::Client,
            &postgres::Statement,
        ) -> Result<T, postgres::Error>
        + Send,
    ) -> Result<T, StoreError> {
        let mut client = self.client.borrow_mut();
        let client: &mut postgres::Client = client.as_mut().ok_or_else(closed)?;
        let cached = self.statements.borrow().get(sql).cloned();
        let outcome = outside_async(move || {
            let (statement, new) = match cached {
                Some(statement) => (statement, false),
                None => (client.prepare(&to_postgres_placeholders(sql))?, true),
            };
            let value = operation(client, &statement)?;
            Ok::<_, postgres::Error>((value, new.then_some(statement)))
        });
        let (value, prepared) = outcome.map_err(|source| self.error(source))?;
        if let Some(statement) = prepared {
            self.statements
                .borrow_mut()
                .insert(sql.to_owned(), statement);
        }
        Ok(value)
    }

    fn batch_execute(&self, sql: &str) -> Result<(), StoreError> {
        let mut client = self.client.borrow_mut();
        let client: &mut postgres::Client = client.as_mut().ok_or_else(closed)?;
        outside_async(move || client.batch_execute(sql)).map_err(|source| self.error(source))
    }

    pub(crate) fn error(&self, source: postgres::Error) -> StoreError {
        StoreError::Postgres {
            database: self.name.clone(),
            source,
        }
    }
}

fn closed() -> StoreError {
    StoreError::Value("the PostgreSQL connection is closed".into())
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        // The prepared statements go first (they only queue a message), then
        // the client, whose drop waits for its connection to close: outside
        // any async runtime, where that wait would panic.
        self.statements.get_mut().clear();
        if let Some(client) = self.client.get_mut().take() {
            outside_async(move || drop(client));
        }
    }
}

/// Runs `f` where the synchronous PostgreSQL client can block: it drives its
/// connection on a small runtime of its own, which tokio refuses to start on a
/// thread that is running async tasks (podium-eval calls the store from its
/// runtime's threads, which SQLite allows). There `f` runs on a short-lived
/// thread of its own; the caller still waits for it, as it would for SQLite.
pub(crate) fn outside_async<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Text as both engines store it: PostgreSQL's text cannot hold the NUL
/// character, so it becomes U+FFFD (�) on either engine, and a value reads back
/// the same whichever engine stored it. (JSON written by serde escapes NUL as
/// `\u0000` and never contains a raw one; model output in error messages or a
/// judge's raw answer can.)
pub(crate) fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `?12` → `$12`. The store's statements hold no `?` inside string literals.
pub(crate) fn to_postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_params<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Value::Text(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

impl Row {
    /// Column `index` as a `T`; an error names the column and what it held.
    pub(crate) fn get<T: FromValue>(&self, index: usize) -> Result<T, StoreError> {
        let value = self.values.get(index).unwrap_or(&Value::Null);
        T::from_value(value)
            .map_err(|message| StoreError::Value(format!("column {index}: {message}")))
    }

    /// Column `index` as it was stored (for copying and checksums).
    pub(crate) fn value(&self, index: usize) -> &Value {
        self.values.get(index).unwrap_or(&Value::Null)
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Int(i) => format!("the integer {i}"),
        Value::Real(r) => format!("the number {r}"),
        Value::Text(_) => "text".into(),
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {}", describe(other))),
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        let i = i64::from_value(value)?;
        u64::try_from(i).map_err(|_| format!("expected a count, found {i}"))
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Result<Self, String> {
        let i = i64::from_value(value)?;
        u32::try_from(i).map_err(|_| format!("expected a small count, found {i}"))
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(r) => Ok(*r),
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("expected a number, found {}", describe(other))),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(text) => Ok(text.clone()),
            other => Err(format!("expected text, found {}", describe(other))),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for RunStatus {
    fn from_value(value: &Value) -> Result<Self, String> {
        let text = String::from_value(value)?;
        RunStatus::parse(&text).ok_or_else(|| format!("unknown status `{text}`"))
    }
}

impl FromValue for SampleStatus {
    fn from_value(value: &Value) -> Result<Self, String> {
        let text = String::from_value(value)?;
        SampleStatus::parse(&text).ok_or_else(|| format!("unknown status `{text}`"))
    }
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<u64> for Param<'_> {
    fn from(value: u64) -> Self {
        Param::Unsigned(value)
    }
}

impl From<u32> for Param<'_> {
    fn from(value: u32) -> Self {
        Param::Int(i64::from(value))
    }
}

impl From<bool> for Param<'_> {
    fn from(value: bool) -> Self {
        Param::Int(i64::from(value))
    }
}

impl From<f64> for Param<'_> {
    fn from(value: f64) -> Self {
        Param::Real(value)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(value)
    }
}

impl From<RunStatus> for Param<'_> {
    fn from(value: RunStatus) -> Self {
        Param::Text(value.as_str())
    }
}

impl From<SampleStatus> for Param<'_> {
    fn from(value: SampleStatus) -> Self {
        Param::Text(value.as_str())
    }
}

impl<'a, T: Copy + Into<Param<'a>>> From<&'a T> for Param<'a> {
    fn from(value: &'a T) -> Self {
        (*value).into()
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(value: &'a Option<String>) -> Self {
        value.as_deref().map_or(Param::Null, Param::Text)
    }
}

impl<'a> From<&'a Value> for Param<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Real(r) => Param::Real(*r),
            Value::Text(text) => Param::Text(text),
        }
    }
}

impl Param<'_> {
    fn signed(&self) -> Result<Option<i64>, String> {
        match *self {
            Param::Int(i) => Ok(Some(i)),
            Param::Unsigned(u) => i64::try_from(u)
                .map(Some)
                .map_err(|_| format!("{u} is too large to store (the largest is {})", i64::MAX)),
            _ => Ok(None),
        }
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
        Ok(match *self {
            Param::Null => ToSqlOutput::Owned(SqliteValue::Null),
            Param::Int(_) | Param::Unsigned(_) => {
                let i = self
                    .signed()
                    .map_err(|m| rusqlite::Error::ToSqlConversionFailure(m.into()))?
                    .unwrap_or_default();
                ToSqlOutput::Owned(SqliteValue::Integer(i))
            }
            Param::Real(r) => ToSqlOutput::Owned(SqliteValue::Real(r)),
            Param::Text(text) => match storable(text) {
                std::borrow::Cow::Borrowed(text) => {
                    ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
                }
                std::borrow::Cow::Owned(text) => ToSqlOutput::Owned(SqliteValue::Text(text)),
            },
        })
    }
}

impl postgres::types::ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if let Param::Null = self {
            return Ok(IsNull::Yes);
        }
        if let Some(i) = self.signed()? {
            return match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer where {ty} is expected").into()),
            };
        }
        match (self, ty) {
            (Param::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Param::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Param::Text(text), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                storable(text).as_ref().to_sql(ty, out)
            }
            (Param::Text(text), &Type::JSON) => {
                // JSON's binary form is its text.
                out.extend_from_slice(storable(text).as_bytes());
                Ok(IsNull::No)
            }
            _ => Err(format!("cannot bind {self:?} where {ty} is expected").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column of any type the store's schema uses, read as a [`Value`].
struct PgValue(Value);

impl<'a> postgres::types::FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::JSON => Value::Text(std::str::from_utf8(raw)?.to_owned()),
            _ => Value::Text(String::from_sql(ty, raw)?),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::BOOL
                | Type::FLOAT8
                | Type::FLOAT4
                | Type::JSON
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten() {
        assert_eq!(
            to_postgres_placeholders("SELECT ?1, ?12 WHERE a = ?2 AND b IS NOT NULL"),
            "SELECT $1, $12 WHERE a = $2 AND b IS NOT NULL"
        );
    }
}
