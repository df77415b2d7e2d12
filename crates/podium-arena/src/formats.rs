//! Battle files: FastChat's battle JSONL and CSV (LLMFAO's `left,right,winner`
//! layout, or a plain `model_a,model_b,winner`) read from a reader handed in,
//! FastChat JSONL written back; and the Markdown style counts of an answer.
//!
//! Reading is all or nothing: the first malformed row is an
//! [`ArenaError::Row`] naming its 1-based line and field, and no battle is
//! returned. Everything whose size the input decides is bounded before it is
//! allocated ([`ReadLimits`]).

use std::borrow::Cow;
use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{ArenaError, Battle, Outcome, StyleCounts};

/// Bounds on a battle file; each breach is an [`ArenaError::Row`] naming the
/// line where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// One line of the file (a JSONL battle with its conversations, or one
    /// CSV record): 8 MiB. A longer line is refused before it is read whole.
    pub max_line_bytes: usize,
    /// Battles in one file: 10,000,000.
    pub max_battles: usize,
    /// A model name, category, judge or language: 256 bytes.
    pub max_name_bytes: usize,
    /// The whole file: 4 GiB.
    pub max_total_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            max_line_bytes: 8 << 20,
            max_battles: 10_000_000,
            max_name_bytes: 256,
            max_total_bytes: 4 << 30,
        }
    }
}

/// The layouts Podium reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BattleFormat {
    /// One FastChat battle object per line.
    Jsonl,
    /// A header line, then one battle per record: LLMFAO's `left`, `right`,
    /// `winner` (`left`, `right` or `tie`), or `model_a`, `model_b`, `winner`
    /// (FastChat's spellings) with optional `category`, `tstamp`, `judge`,
    /// `language`.
    Csv,
}

impl BattleFormat {
    /// The layout of a file named `file_name` whose first bytes are `head`:
    /// `.jsonl`, `.ndjson` and `.json` are JSONL, `.csv` and `.tsv`… are CSV
    /// (`.csv` only), and any other name is JSONL when its first non-blank
    /// byte is `{`, else CSV.
    pub fn detect(file_name: &str, head: &[u8]) -> BattleFormat {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
            return BattleFormat::Jsonl;
        }
        if lower.ends_with(".csv") {
            return BattleFormat::Csv;
        }
        let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => BattleFormat::Jsonl,
            _ => BattleFormat::Csv,
        }
    }
}

/// Reads every battle of `reader` in `format`, in file order.
pub fn read_battles(
    reader: impl BufRead,
    format: BattleFormat,
    limits: &ReadLimits,
) -> Result<Vec<Battle>, ArenaError> {
    let mut battles = Vec::new();
    for_each_battle(reader, format, limits, &mut |battle| {
        battles.push(battle);
        Ok(())
    })?;
    Ok(battles)
}

/// Hands every battle of `reader` in `format` to `sink`, in file order,
/// without keeping them: a caller that needs only part of each battle (the
/// ratings need two ids and an outcome) reads a file of any size in little
/// memory. The first malformed row (or error of `sink`) stops the reading.
pub fn for_each_battle(
    reader: impl BufRead,
    format: BattleFormat,
    limits: &ReadLimits,
    sink: &mut dyn FnMut(Battle) -> Result<(), ArenaError>,
) -> Result<(), ArenaError> {
    match format {
        BattleFormat::Jsonl => each_jsonl(reader, limits, sink),
        BattleFormat::Csv => each_csv(reader, limits, sink),
    }
}

/// Reads the battles of a text, for tests and small inputs.
pub fn parse_battles(text: &str, format: BattleFormat) -> Result<Vec<Battle>, ArenaError> {
    read_battles(text.as_bytes(), format, &ReadLimits::default())
}

// ---------------------------------------------------------------------------
// FastChat JSONL

/// One line as FastChat writes it. Strings are borrowed from the line when
/// they hold no escapes; fields Podium does not use (`question_id`,
/// `category_tag`, …) are skipped.
#[derive(Deserialize)]
struct FastChatLine<'a> {
    #[serde(borrow, default)]
    model_a: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model_b: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    winner: Option<Cow<'a, str>>,
    #[serde(default)]
    tstamp: Option<f64>,
    #[serde(default)]
    turn: Option<f64>,
    #[serde(default)]
    anony: Option<bool>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    judge: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    language: Option<Cow<'a, str>>,
    #[serde(default)]
    judge_output: Option<String>,
    #[serde(default)]
    conversation_a: Option<Json>,
    #[serde(default)]
    conversation_b: Option<Json>,
    #[serde(default)]
    conv_metadata: Option<Json>,
}

/// The expected JSON type of each field, to name the field at fault when a
/// line does not fit [`FastChatLine`].
const FIELD_TYPES: &[(&str, &str)] = &[
    ("model_a", "string"),
    ("model_b", "string"),
    ("winner", "string"),
    ("tstamp", "number"),
    ("turn", "number"),
    ("anony", "boolean"),
    ("category", "string"),
    ("judge", "string"),
    ("language", "string"),
    ("judge_output", "string"),
];

/// Reads FastChat battle JSONL: one object per line with `model_a`,
/// `model_b`, `winner` (`model_a`, `model_b`, `tie`, `tie (bothbad)`) and
/// optionally `tstamp` (Unix seconds; 0 when absent), `turn` (else the
/// conversation's user turns, else 1), `anony` (default true), `category`,
/// `judge`, `language`, `judge_output`, `conversation_a`/`conversation_b`
/// (OpenAI message lists, kept as JSON text) and `conv_metadata`. Blank lines
/// are skipped.
///
/// FastChat's cleaned battles name the voter in `judge` (`arena_user_…`):
/// such a judge is a person, so it is read as no judge (a person's vote).
///
/// Style counts come from `conv_metadata` (`sum_assistant_a_tokens`,
/// `header_count_a`, `list_count_a`, `bold_count_a` and the `_b` ones, each
/// a number or an object of numbers that is summed, as FastChat does) when it
/// has them all, else from both conversations by [`conversation_style`].
pub fn read_jsonl(reader: impl BufRead, limits: &ReadLimits) -> Result<Vec<Battle>, ArenaError> {
    read_battles(reader, BattleFormat::Jsonl, limits)
}

fn each_jsonl(
    mut reader: impl BufRead,
    limits: &ReadLimits,
    sink: &mut dyn FnMut(Battle) -> Result<(), ArenaError>,
) -> Result<(), ArenaError> {
    let mut count = 0usize;
    let mut line = Vec::new();
    let mut line_no: u64 = 0;
    let mut total: u64 = 0;
    loop {
        line.clear();
        line_no += 1;
        let n = (&mut reader)
            .take(limits.max_line_bytes as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|err| row_error(line_no, "(file)", format!("cannot read: {err}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limits.max_total_bytes {
            return Err(row_error(
                line_no,
                "(file)",
                format!("the file is longer than {} bytes", limits.max_total_bytes),
            ));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > limits.max_line_bytes {
            return Err(row_error(
                line_no,
                "(line)",
                format!("longer than {} bytes", limits.max_line_bytes),
            ));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = if line_no == 1 {
            line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&line)
        } else {
            &line[..]
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if count == limits.max_battles {
            return Err(row_error(
                line_no,
                "(file)",
                format!("more than {} battles in one file", limits.max_battles),
            ));
        }
        count += 1;
        sink(jsonl_battle(text, line_no, limits)?)?;
    }
    Ok(())
}

fn jsonl_battle(text: &[u8], line: u64, limits: &ReadLimits) -> Result<Battle, ArenaError> {
    // serde would also read a struct from a JSON array, field by position.
    if text.trim_ascii_start().first() != Some(&b'{') {
        return Err(match serde_json::from_slice::<Json>(text) {
            Ok(other) => row_error(
                line,
                "(line)",
                format!("expected a JSON object, found {}", json_kind(&other)),
            ),
            Err(err) => row_error(line, "(line)", format!("not JSON: {err}")),
        });
    }
    let raw: FastChatLine<'_> = match serde_json::from_slice(text) {
        Ok(raw) => raw,
        Err(err) => return Err(jsonl_field_error(text, line, err)),
    };
    let model_a = name(raw.model_a.as_deref(), "model_a", line, limits)?;
    let model_b = name(raw.model_b.as_deref(), "model_b", line, limits)?;
    if model_a == model_b {
        return Err(row_error(
            line,
            "model_b",
            format!("model `{model_b}` battles itself"),
        ));
    }
    let winner = raw
        .winner
        .as_deref()
        .ok_or_else(|| row_error(line, "winner", "missing".into()))?;
    let outcome = Outcome::parse(winner).ok_or_else(|| {
        row_error(
            line,
            "winner",
            format!("`{winner}` is not one of model_a, model_b, tie, tie (bothbad)"),
        )
    })?;
    let tstamp = match raw.tstamp {
        None => 0.0,
        Some(t) if t.is_finite() => t,
        Some(t) => return Err(row_error(line, "tstamp", format!("{t} is not a time"))),
    };
    let conversation_a = conversation(raw.conversation_a.as_ref(), "conversation_a", line)?;
    let conversation_b = conversation(raw.conversation_b.as_ref(), "conversation_b", line)?;
    let turns = match raw.turn {
        Some(t) if t.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&t) => t as u32,
        Some(t) => {
            return Err(row_error(
                line,
                "turn",
                format!("{t} is not a whole number of turns"),
            ));
        }
        None => raw
            .conversation_a
            .as_ref()
            .map(user_turns)
            .filter(|&n| n > 0)
            .unwrap_or(1),
    };
    let judge = optional_name(raw.judge.as_deref(), "judge", line, limits)?
        .filter(|judge| !judge.starts_with("arena_user"));
    let style = match metadata_style(raw.conv_metadata.as_ref(), line)? {
        Some(style) => Some(style),
        None => match (&raw.conversation_a, &raw.conversation_b) {
            (Some(a @ Json::Array(_)), Some(b @ Json::Array(_))) => {
                Some([conversation_style(a), conversation_style(b)])
            }
            _ => None,
        },
    };
    Ok(Battle {
        model_a,
        model_b,
        outcome,
        category: optional_name(raw.category.as_deref(), "category", line, limits)?,
        judge,
        language: optional_name(raw.language.as_deref(), "language", line, limits)?,
        tstamp,
        turns,
        anonymous: raw.anony.unwrap_or(true),
        conversation_a,
        conversation_b,
        style,
        judge_output: raw.judge_output,
    })
}

/// The error of a line that did not fit [`FastChatLine`]: its first field
/// of the wrong JSON type, else serde's own message (bad JSON, a duplicate key).
fn jsonl_field_error(text: &[u8], line: u64, err: serde_json::Error) -> ArenaError {
    if let Ok(Json::Object(object)) = serde_json::from_slice::<Json>(text) {
        for (field, expected) in FIELD_TYPES {
            let fits = match object.get(*field) {
                None | Some(Json::Null) => true,
                Some(Json::String(_)) => *expected == "string",
                Some(Json::Number(_)) => *expected == "number",
                Some(Json::Bool(_)) => *expected == "boolean",
                Some(_) => false,
            };
            if !fits {
                return row_error(line, field, format!("expected a {expected}"));
            }
        }
    }
    row_error(line, "(line)", format!("not a FastChat battle: {err}"))
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A conversation as stored: a message list as compact JSON text, or a
/// string kept as it is (how [`write_jsonl`] writes a stored conversation
/// that is not a list).
fn conversation(
    value: Option<&Json>,
    field: &str,
    line: u64,
) -> Result<Option<String>, ArenaError> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text.clone())),
        Some(list @ Json::Array(messages)) => {
            for (i, message) in messages.iter().enumerate() {
                let ok = message
                    .as_object()
                    .is_some_and(|m| m.get("role").is_some_and(Json::is_string));
                if !ok {
                    return Err(row_error(
                        line,
                        field,
                        format!("message {i} is not an object with a string `role`"),
                    ));
                }
            }
            Ok(Some(list.to_string()))
        }
        Some(other) => Err(row_error(
            line,
            field,
            format!("expected a list of messages, found {}", json_kind(other)),
        )),
    }
}

fn user_turns(conversation: &Json) -> u32 {
    conversation.as_array().map_or(0, |messages| {
        messages
            .iter()
            .filter(|m| m.get("role").and_then(Json::as_str) == Some("user"))
            .count() as u32
    })
}

/// Style counts from FastChat's `conv_metadata`, when it has all eight keys.
fn metadata_style(meta: Option<&Json>, line: u64) -> Result<Option<[StyleCounts; 2]>, ArenaError> {
    let Some(meta) = meta else { return Ok(None) };
    let Some(meta) = meta.as_object() else {
        if meta.is_null() {
            return Ok(None);
        }
        return Err(row_error(
            line,
            "conv_metadata",
            "expected an object".into(),
        ));
    };
    let mut sides = [StyleCounts::default(); 2];
    for (side, suffix) in sides.iter_mut().zip(["a", "b"]) {
        let keys = [
            format!("sum_assistant_{suffix}_tokens"),
            format!("header_count_{suffix}"),
            format!("list_count_{suffix}"),
            format!("bold_count_{suffix}"),
        ];
        let mut values = [0.0; 4];
        for (value, key) in values.iter_mut().zip(&keys) {
            let Some(field) = meta.get(key.as_str()) else {
                return Ok(None);
            };
            *value = metadata_count(field).ok_or_else(|| {
                row_error(
                    line,
                    &format!("conv_metadata.{key}"),
                    "expected a count of 0 or more, or an object of such counts".into(),
                )
            })?;
        }
        *side = StyleCounts {
            tokens: values[0],
            headers: values[1],
            lists: values[2],
            bold: values[3],
        };
    }
    Ok(Some(sides))
}

/// A count, or the sum of an object's counts (FastChat's `{"h1": 2, …}`).
fn metadata_count(value: &Json) -> Option<f64> {
    let count = |v: &Json| v.as_f64().filter(|x| x.is_finite() && *x >= 0.0);
    match value {
        Json::Object(parts) => parts.values().map(count).sum(),
        other => count(other),
    }
}

// ---------------------------------------------------------------------------
// CSV

/// Which CSV layout a header names, with each column's index.
struct CsvColumns {
    a: usize,
    b: usize,
    winner: usize,
    /// LLMFAO spells the winner `left`/`right`/`tie`.
    left_right: bool,
    category: Option<usize>,
    tstamp: Option<usize>,
    judge: Option<usize>,
    language: Option<usize>,
}

impl CsvColumns {
    fn of(header: &csv::StringRecord) -> Result<CsvColumns, ArenaError> {
        let find = |name: &str| header.iter().position(|h| h.trim() == name);
        let winner = find("winner")
            .ok_or_else(|| row_error(1, "winner", "the header has no `winner` column".into()))?;
        let (a, b, left_right) = match (
            find("left"),
            find("right"),
            find("model_a"),
            find("model_b"),
        ) {
            (Some(a), Some(b), _, _) => (a, b, true),
            (_, _, Some(a), Some(b)) => (a, b, false),
            _ => {
                return Err(row_error(
                    1,
                    "(header)",
                    "expected columns `left`, `right`, `winner` (LLMFAO) or `model_a`, `model_b`, `winner`".into(),
                ));
            }
        };
        Ok(CsvColumns {
            a,
            b,
            winner,
            left_right,
            category: find("category"),
            tstamp: find("tstamp"),
            judge: find("judge"),
            language: find("language"),
        })
    }

    fn outcome(&self, text: &str) -> Option<Outcome> {
        if self.left_right {
            match text {
                "left" => Some(Outcome::A),
                "right" => Some(Outcome::B),
                "tie" => Some(Outcome::Tie),
                _ => None,
            }
        } else {
            Outcome::parse(text)
        }
    }
}

/// Reads CSV battles (the layouts of [`BattleFormat::Csv`]); the first line
/// is the header, columns may come in any order and extra ones are ignored.
/// An empty optional cell is no value.
pub fn read_csv(reader: impl BufRead, limits: &ReadLimits) -> Result<Vec<Battle>, ArenaError> {
    read_battles(reader, BattleFormat::Csv, limits)
}

fn each_csv(
    reader: impl Read,
    limits: &ReadLimits,
    sink: &mut dyn FnMut(Battle) -> Result<(), ArenaError>,
) -> Result<(), ArenaError> {
    let mut count = 0usize;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(LineBound::new(reader, limits));
    let header = match csv.headers() {
        Ok(header) => header.clone(),
        Err(err) => return Err(csv_error(&csv, err)),
    };
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err(row_error(1, "(header)", "the file is empty".into()));
    }
    let columns = CsvColumns::of(&header)?;
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => return Err(csv_error(&csv, err)),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.as_byte_record().as_slice().len() > limits.max_line_bytes {
            return Err(row_error(
                line,
                "(line)",
                format!("longer than {} bytes", limits.max_line_bytes),
            ));
        }
        if count == limits.max_battles {
            return Err(row_error(
                line,
                "(file)",
                format!("more than {} battles in one file", limits.max_battles),
            ));
        }
        count += 1;
        sink(csv_battle(&record, &header, &columns, line, limits)?)?;
    }
    Ok(())
}

fn csv_battle(
    record: &csv::StringRecord,
    header: &csv::StringRecord,
    columns: &CsvColumns,
    line: u64,
    limits: &ReadLimits,
) -> Result<Battle, ArenaError> {
    let cell = |i: usize| record.get(i).unwrap_or("");
    let field = |i: usize| header.get(i).unwrap_or("").trim().to_owned();
    let optional = |i: Option<usize>| -> Result<Option<String>, ArenaError> {
        match i {
            Some(i) if !cell(i).is_empty() => optional_name(Some(cell(i)), &field(i), line, limits),
            _ => Ok(None),
        }
    };
    let model_a = name(Some(cell(columns.a)), &field(columns.a), line, limits)?;
    let model_b = name(Some(cell(columns.b)), &field(columns.b), line, limits)?;
    if model_a == model_b {
        return Err(row_error(
            line,
            &field(columns.b),
            format!("model `{model_b}` battles itself"),
        ));
    }
    let winner = cell(columns.winner);
    let outcome = columns.outcome(winner).ok_or_else(|| {
        let allowed = if columns.left_right {
            "left, right, tie"
        } else {
            "model_a, model_b, tie, tie (bothbad)"
        };
        row_error(
            line,
            "winner",
            format!("`{winner}` is not one of {allowed}"),
        )
    })?;
    let tstamp = match columns.tstamp.map(cell).filter(|t| !t.is_empty()) {
        None => 0.0,
        Some(text) => match text.trim().parse::<f64>() {
            Ok(t) if t.is_finite() => t,
            _ => {
                return Err(row_error(
                    line,
                    "tstamp",
                    format!("`{text}` is not a time in Unix seconds"),
                ));
            }
        },
    };
    let mut battle = Battle::new(&model_a, &model_b, outcome);
    battle.tstamp = tstamp;
    battle.category = optional(columns.category)?;
    battle.judge = optional(columns.judge)?;
    battle.language = optional(columns.language)?;
    Ok(battle)
}

fn csv_error<R: Read>(csv: &csv::Reader<LineBound<R>>, err: csv::Error) -> ArenaError {
    let line = err
        .position()
        .map_or_else(|| csv.get_ref().line, |p| p.line());
    match err.into_kind() {
        csv::ErrorKind::Io(io) => {
            if let Some(limit) = io.get_ref().and_then(|e| e.downcast_ref::<LimitBreached>()) {
                row_error(limit.line, limit.field, limit.message.clone())
            } else {
                row_error(line, "(file)", format!("cannot read: {io}"))
            }
        }
        csv::ErrorKind::Utf8 { err, .. } => row_error(
            line,
            "(line)",
            format!("field {} is not UTF-8", err.field() + 1),
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => row_error(
            line,
            "(line)",
            format!("{len} fields where the header has {expected_len}"),
        ),
        other => row_error(line, "(line)", format!("{other:?}")),
    }
}

/// A reader that refuses a physical line longer than the limit, or a file
/// longer than the limit, before the CSV reader buffers it. The bytes before
/// the breach are handed on first, so earlier rows are checked first.
struct LineBound<R> {
    inner: R,
    max_line: usize,
    max_total: u64,
    /// The 1-based line being read.
    line: u64,
    line_len: usize,
    total: u64,
    breached: Option<LimitBreached>,
}

#[derive(Debug, Clone)]
struct LimitBreached {
    line: u64,
    field: &'static str,
    message: String,
}

impl std::fmt::Display for LimitBreached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LimitBreached {}

impl<R> LineBound<R> {
    fn new(inner: R, limits: &ReadLimits) -> LineBound<R> {
        LineBound {
            inner,
            max_line: limits.max_line_bytes,
            max_total: limits.max_total_bytes,
            line: 1,
            line_len: 0,
            total: 0,
            breached: None,
        }
    }
}

impl<R: Read> Read for LineBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(breach) = &self.breached {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                breach.clone(),
            ));
        }
        let n = self.inner.read(buf)?;
        for (i, &byte) in buf[..n].iter().enumerate() {
            self.total += 1;
            if byte == b'\n' {
                self.line += 1;
                self.line_len = 0;
            } else {
                self.line_len += 1;
            }
            let breach = if self.total > self.max_total {
                Some((
                    "(file)",
                    format!("the file is longer than {} bytes", self.max_total),
                ))
            } else if self.line_len > self.max_line {
                Some(("(line)", format!("longer than {} bytes", self.max_line)))
            } else {
                None
            };
            if let Some((field, message)) = breach {
                let breach = LimitBreached {
                    line: self.line,
                    field,
                    message,
                };
                self.breached = Some(breach.clone());
                if i == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, breach));
                }
                return Ok(i);
            }
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Shared checks

fn row_error(line: u64, field: &str, message: String) -> ArenaError {
    ArenaError::Row {
        line,
        field: field.to_owned(),
        message,
    }
}

/// A model name: present, not blank, within the limit, no control characters.
fn name(
    value: Option<&str>,
    field: &str,
    line: u64,
    limits: &ReadLimits,
) -> Result<String, ArenaError> {
    let value = value.ok_or_else(|| row_error(line, field, "missing".into()))?;
    if value.trim().is_empty() {
        return Err(row_error(line, field, "empty".into()));
    }
    optional_name(Some(value), field, line, limits).map(Option::unwrap_or_default)
}

/// An optional short text (category, judge, language): within the name
/// limit and without control characters; empty is none.
fn optional_name(
    value: Option<&str>,
    field: &str,
    line: u64,
    limits: &ReadLimits,
) -> Result<Option<String>, ArenaError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.len() > limits.max_name_bytes {
        return Err(row_error(
            line,
            field,
            format!("longer than {} bytes", limits.max_name_bytes),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(row_error(
            line,
            field,
            "contains a control character".into(),
        ));
    }
    Ok(Some(value.to_owned()))
}

// ---------------------------------------------------------------------------
// Writing

/// One battle in FastChat's layout, as [`write_jsonl`] writes it.
#[derive(Serialize)]
struct FastChatOut<'a> {
    model_a: &'a str,
    model_b: &'a str,
    winner: &'static str,
    tstamp: f64,
    turn: u32,
    anony: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    judge: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    judge_output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_a: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_b: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conv_metadata: Option<serde_json::Map<String, Json>>,
}

/// Writes `battles` as FastChat battle JSONL, one object per line, with every
/// field a [`Battle`] holds, so [`read_jsonl`] gives the same battles back.
/// Style counts go in `conv_metadata` as plain numbers (FastChat's own
/// reader takes a number or an object for each count); a conversation that
/// is a stored message list is written as that list, any other stored text
/// as a string.
pub fn write_jsonl(mut writer: impl Write, battles: &[Battle]) -> std::io::Result<()> {
    for battle in battles {
        let out = FastChatOut {
            model_a: &battle.model_a,
            model_b: &battle.model_b,
            winner: battle.outcome.as_str(),
            tstamp: battle.tstamp,
            turn: battle.turns,
            anony: battle.anonymous,
            language: battle.language.as_deref(),
            category: battle.category.as_deref(),
            judge: battle.judge.as_deref(),
            judge_output: battle.judge_output.as_deref(),
            conversation_a: battle.conversation_a.as_deref().map(conversation_json),
            conversation_b: battle.conversation_b.as_deref().map(conversation_json),
            conv_metadata: battle.style.as_ref().map(metadata_json),
        };
        serde_json::to_writer(&mut writer, &out)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

fn conversation_json(text: &str) -> Json {
    match serde_json::from_str::<Json>(text) {
        Ok(list @ Json::Array(_)) => list,
        _ => Json::String(text.to_owned()),
    }
}

fn metadata_json(style: &[StyleCounts; 2]) -> serde_json::Map<String, Json> {
    let mut meta = serde_json::Map::new();
    for (side, suffix) in style.iter().zip(["a", "b"]) {
        for (key, value) in [
            (format!("sum_assistant_{suffix}_tokens"), side.tokens),
            (format!("header_count_{suffix}"), side.headers),
            (format!("list_count_{suffix}"), side.lists),
            (format!("bold_count_{suffix}"), side.bold),
        ] {
            meta.insert(key, count_json(value));
        }
    }
    meta
}

/// A whole count as a JSON integer (FastChat checks `isinstance(v, int)`),
/// any other value as a float.
fn count_json(value: f64) -> Json {
    if value.fract() == 0.0 && (0.0..9.0e15).contains(&value) {
        Json::from(value as u64)
    } else {
        Json::from(value)
    }
}

// ---------------------------------------------------------------------------
// Style counts

/// The style counts of one side of a conversation (an OpenAI message list):
/// its assistant messages joined by newlines, as FastChat does, then
/// [`style_counts`]. A message's `content` may be a string or a list of
/// parts, whose `text` parts are joined.
pub fn conversation_style(conversation: &Json) -> StyleCounts {
    let mut answer = String::new();
    for message in conversation.as_array().into_iter().flatten() {
        if message.get("role").and_then(Json::as_str) != Some("assistant") {
            continue;
        }
        if !answer.is_empty() {
            answer.push('\n');
        }
        match message.get("content") {
            Some(Json::String(text)) => answer.push_str(text),
            Some(Json::Array(parts)) => {
                for part in parts {
                    if let Some(text) = part.get("text").and_then(Json::as_str) {
                        answer.push_str(text);
                    }
                }
            }
            _ => {}
        }
    }
    style_counts(&answer)
}

/// The style counts of an assistant answer in Markdown, counted as FastChat's
/// `add_markdown_info.py` counts them:
///
/// - fenced code blocks (three backticks, no backtick inside, three
///   backticks) are taken out first, and the rest is counted;
/// - headers: lines starting with 1 to 6 `#` then a whitespace character
///   (the line's own end counts when a newline follows, as Python's `\s`
///   matches it);
/// - list items: lines starting with optional whitespace, then digits and
///   `.`, or one of `-`, `*`, `+`, then a whitespace character;
/// - bold: `**text**` and `__text__` spans on one line, the text at least one
///   character with no `*` (resp. `_`), counted left to right without overlap.
///
/// Where Podium differs: digits and whitespace are ASCII digits and Rust's
/// `char::is_whitespace` (Python's `\d` and `\s` also take other Unicode
/// digits and a few separator characters); matched code blocks are cut out
/// where they are, where FastChat deletes every copy of each block's text;
/// and tokens are [`approx_tokens`] of the whole answer, code included,
/// where FastChat counts tokens with OpenAI's `cl100k_base` tokenizer (tiktoken).
/// Style control uses `(a − b)/(a + b + 1)` of the token counts, so a
/// tokenizer that is off by a constant factor moves it very little.
pub fn style_counts(markdown: &str) -> StyleCounts {
    let prose = without_code_blocks(markdown);
    let mut headers = 0usize;
    let mut lists = 0usize;
    let mut lines = prose.split('\n').peekable();
    while let Some(line) = lines.next() {
        // A newline after the line is whitespace to Python's `\s`.
        let ends_in_newline = lines.peek().is_some();
        let followed_by_space = |rest: &str| {
            rest.chars()
                .next()
                .map_or(ends_in_newline, char::is_whitespace)
        };
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if (1..=6).contains(&hashes) && followed_by_space(&line[hashes..]) {
            headers += 1;
        }
        let item = line.trim_start();
        let digits = item.bytes().take_while(u8::is_ascii_digit).count();
        let is_item = if digits > 0 {
            item[digits..]
                .strip_prefix('.')
                .is_some_and(&followed_by_space)
        } else {
            item.strip_prefix(['-', '*', '+'])
                .is_some_and(&followed_by_space)
        };
        // FastChat's `^\s*` may also start on an earlier blank line, which
        // finds the same items.
        if is_item {
            lists += 1;
        }
    }
    let bold = delimited_spans(&prose, b'*') + delimited_spans(&prose, b'_');
    StyleCounts {
        tokens: approx_tokens(markdown) as f64,
        headers: headers as f64,
        lists: lists as f64,
        bold: bold as f64,
    }
}

/// The text with every ```` ``` ````…```` ``` ```` block (no backtick inside)
/// removed, leftmost first, as the regex ```` ```([^`]*)``` ```` finds them.
fn without_code_blocks(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !text.contains("```") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if &bytes[i..i + 3] == b"```" {
            let body = i + 3;
            let close = bytes[body..]
                .iter()
                .position(|&b| b == b'`')
                .map(|p| body + p);
            if let Some(close) = close
                && bytes[close..].starts_with(b"```")
            {
                out.push_str(&text[copied..i]);
                copied = close + 3;
                i = close + 3;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Spans `MM x MM` (`M` = `mark`, twice) on one line with at least one
/// character, none of them `mark`, found leftmost first without overlap: the
/// regex `\*\*[^*\n]+\*\*` (or its `_` twin).
fn delimited_spans(text: &str, mark: u8) -> usize {
    let bytes = text.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i + 2 <= bytes.len() {
        if bytes[i] == mark && bytes[i + 1] == mark {
            let body = i + 2;
            let stop = bytes[body..]
                .iter()
                .position(|&b| b == mark || b == b'\n')
                .map(|p| body + p);
            if let Some(stop) = stop
                && stop > body
                && bytes[stop] == mark
                && bytes.get(stop + 1) == Some(&mark)
            {
                count += 1;
                i = stop + 2;
                continue;
            }
        }
        i += 1;
    }
    count
}

/// An approximation of the `cl100k_base` token count of `text` (OpenAI's
/// GPT-4 tokenizer, which FastChat uses), with no vocabulary: each run of
/// letters is one token per 6 letters or part of it (common words are one
/// token), each run of digits one per 3 digits (cl100k splits numbers into
/// groups of at most three), every other visible character one token, and
/// each run of whitespace that holds a line break one token (spaces join the
/// following word). Within about 15% of cl100k on English prose; further
/// off for other scripts.
pub fn approx_tokens(text: &str) -> usize {
    #[derive(PartialEq)]
    enum Run {
        None,
        Letters(usize),
        Digits(usize),
        Space { newline: bool },
    }
    fn close(run: &Run) -> usize {
        match run {
            Run::None => 0,
            Run::Letters(n) => n.div_ceil(6),
            Run::Digits(n) => n.div_ceil(3),
            Run::Space { newline } => usize::from(*newline),
        }
    }
    let mut tokens = 0;
    let mut run = Run::None;
    for c in text.chars() {
        run = if c.is_alphabetic() {
            match run {
                Run::Letters(n) => Run::Letters(n + 1),
                other => {
                    tokens += close(&other);
                    Run::Letters(1)
                }
            }
        } else if c.is_ascii_digit() {
            match run {
                Run::Digits(n) => Run::Digits(n + 1),
                other => {
                    tokens += close(&other);
                    Run::Digits(1)
                }
            }
        } else if c.is_whitespace() {
            match run {
                Run::Space { newline } => Run::Space {
                    newline: newline || c == '\n',
                },
                other => {
                    tokens += close(&other);
                    Run::Space { newline: c == '\n' }
                }
            }
        } else {
            tokens += close(&run) + 1;
            Run::None
        };
    }
    tokens + close(&run)
}
