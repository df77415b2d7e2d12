//! Local dataset loaders: JSON / JSON Lines, CSV, Parquet, and llama.cpp's
//! six-lines-per-task HellaSwag text. Every doc is a JSON object.

use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::config::DatasetSpec;
use crate::error::TaskError;

pub type Doc = Json;

/// Load every file of one split, in order.
pub fn load_split(spec: &DatasetSpec, split: &str) -> Result<Vec<Doc>, TaskError> {
    let files = spec.data_files.get(split).ok_or_else(|| TaskError::Task {
        task: spec.name.clone().unwrap_or_default(),
        message: format!("no data files for split `{split}`"),
    })?;
    let mut docs = Vec::new();
    for path in files {
        if !path.is_file() {
            return Err(TaskError::file(
                path,
                format!("data file of split `{split}` not found"),
            ));
        }
        let bytes = std::fs::read(path)
            .map_err(|err| TaskError::file(path, format!("cannot read: {err}")))?;
        let mut loaded = parse_data_file(&spec.loader, path, bytes, spec.column_names.as_deref())?;
        docs.append(&mut loaded);
    }
    Ok(docs)
}

/// The docs of one data file's bytes; `path` names the file in errors. Public
/// for the fuzz targets (crates/podium-fuzz), which feed it arbitrary bytes.
#[doc(hidden)]
pub fn parse_data_file(
    loader: &str,
    path: &Path,
    bytes: Vec<u8>,
    column_names: Option<&[String]>,
) -> Result<Vec<Doc>, TaskError> {
    match loader {
        "json" => load_json(path, bytes),
        "csv" => load_csv(path, bytes, column_names),
        "parquet" => load_parquet(path, bytes),
        "llama_cpp_hellaswag" => load_llama_cpp_hellaswag(path, bytes),
        other => Err(TaskError::file(path, format!("unknown loader `{other}`"))),
    }
}

fn read_text(path: &Path, bytes: Vec<u8>) -> Result<String, TaskError> {
    let text = String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        let line = err.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        TaskError::DataRow {
            path: path.to_path_buf(),
            row: line,
            message: "not valid UTF-8".into(),
        }
    })?;
    // A UTF-8 byte-order mark is not part of the first field.
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// A JSON array of objects, or JSON Lines (one object per line; blank lines skipped).
fn load_json(path: &Path, bytes: Vec<u8>) -> Result<Vec<Doc>, TaskError> {
    let text = read_text(path, bytes)?;
    if text.trim_start().starts_with('[') {
        let value: Json = serde_json::from_str(&text).map_err(|err| TaskError::DataRow {
            path: path.to_path_buf(),
            row: err.line(),
            message: format!("invalid JSON: {err}"),
        })?;
        let Json::Array(items) = value else {
            unreachable!("text starting with `[` parses to an array")
        };
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Object(_) => Ok(item),
                other => Err(TaskError::file(
                    path,
                    format!(
                        "item {} of the array is {}, expected an object",
                        i + 1,
                        json_type(&other)
                    ),
                )),
            })
            .collect();
    }
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Json = serde_json::from_str(line).map_err(|err| TaskError::DataRow {
            path: path.to_path_buf(),
            row: i + 1,
            message: format!("not a JSON object: {err}"),
        })?;
        if !value.is_object() {
            return Err(TaskError::DataRow {
                path: path.to_path_buf(),
                row: i + 1,
                message: format!("is {}, expected a JSON object", json_type(&value)),
            });
        }
        docs.push(value);
    }
    Ok(docs)
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// CSV with a header row, or without one when `column_names` is given. All
/// values are strings; ragged rows are errors.
fn load_csv(
    path: &Path,
    bytes: Vec<u8>,
    column_names: Option<&[String]>,
) -> Result<Vec<Doc>, TaskError> {
    let text = read_text(path, bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(column_names.is_none())
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match column_names {
        Some(names) => names.to_vec(),
        None => reader
            .headers()
            .map_err(|err| csv_error(path, &err))?
            .iter()
            .map(str::to_string)
            .collect(),
    };
    let mut docs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| csv_error(path, &err))?;
        if record.len() != header.len() {
            let line = record.position().map_or(0, |p| p.line() as usize);
            return Err(TaskError::DataRow {
                path: path.to_path_buf(),
                row: line,
                message: format!(
                    "row has {} fields, expected {} ({})",
                    record.len(),
                    header.len(),
                    header.join(", ")
                ),
            });
        }
        let object: Map<String, Json> = header
            .iter()
            .zip(record.iter())
            .map(|(k, v)| (k.clone(), Json::String(v.to_string())))
            .collect();
        docs.push(Json::Object(object));
    }
    Ok(docs)
}

fn csv_error(path: &Path, err: &csv::Error) -> TaskError {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => TaskError::DataRow {
            path: path.to_path_buf(),
            row: pos.as_ref().map_or(0, |p| p.line() as usize),
            message: format!("row has {len} fields, expected {expected_len} (ragged CSV)"),
        },
        _ => TaskError::DataRow {
            path: path.to_path_buf(),
            row: err.position().map_or(0, |p| p.line() as usize),
            message: format!("invalid CSV: {err}"),
        },
    }
}

std::thread_local! {
    static CATCHING_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside a section whose panics are caught and turned
/// into an error naming the file (the parquet reader): a binary's panic hook
/// stays quiet for those, so the user sees the error and not a panic message
/// before it.
pub fn catching_panics() -> bool {
    CATCHING_PANICS.with(|catching| catching.get())
}

/// Parquet through the `parquet` crate, which panics on some corrupted files
/// (3 of 400 bit-flipped files did, inside its decoders). The panic is caught
/// here and becomes an error naming the file; nothing read is kept.
fn load_parquet(path: &Path, bytes: Vec<u8>) -> Result<Vec<Doc>, TaskError> {
    CATCHING_PANICS.with(|catching| catching.set(true));
    let outcome = std::panic::catch_unwind(|| read_parquet(path, bytes));
    CATCHING_PANICS.with(|catching| catching.set(false));
    outcome.unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no detail".into());
        Err(TaskError::file(
            path,
            format!("invalid Parquet file (the reader failed: {detail})"),
        ))
    })
}

fn read_parquet(path: &Path, bytes: Vec<u8>) -> Result<Vec<Doc>, TaskError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    crate::parquet_guard::check_footer(&bytes)
        .map_err(|why| TaskError::file(path, format!("invalid Parquet file: {why}")))?;
    let data = bytes::Bytes::from(bytes);
    let reader = SerializedFileReader::new(data.clone())
        .map_err(|err| TaskError::file(path, format!("invalid Parquet file: {err}")))?;
    crate::parquet_guard::check_page_headers(&data, reader.metadata())
        .and_then(|()| crate::parquet_guard::check_dictionaries(&reader))
        .map_err(|why| TaskError::file(path, format!("invalid Parquet file: {why}")))?;
    let rows = reader
        .get_row_iter(None)
        .map_err(|err| TaskError::file(path, format!("cannot read Parquet rows: {err}")))?;
    let mut docs = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|err| TaskError::DataRow {
            path: path.to_path_buf(),
            row: i + 1,
            message: format!("cannot decode Parquet row: {err}"),
        })?;
        docs.push(row.to_json_value());
    }
    Ok(docs)
}

/// llama.cpp's HellaSwag text: six lines per task — context, gold index, four
/// endings. Docs get `query`, `label` and `endings`.
fn load_llama_cpp_hellaswag(path: &Path, bytes: Vec<u8>) -> Result<Vec<Doc>, TaskError> {
    let text = read_text(path, bytes)?;
    let lines: Vec<&str> = text.lines().collect();
    if !lines.len().is_multiple_of(6) {
        return Err(TaskError::file(
            path,
            format!(
                "has {} lines, not a multiple of 6 (context, label, four endings per task)",
                lines.len()
            ),
        ));
    }
    lines
        .chunks(6)
        .enumerate()
        .map(|(i, chunk)| {
            let label: i64 = chunk[1]
                .trim()
                .parse()
                .ok()
                .filter(|l| (0..4).contains(l))
                .ok_or_else(|| TaskError::DataRow {
                    path: path.to_path_buf(),
                    row: i * 6 + 2,
                    message: format!("gold label `{}` is not 0, 1, 2 or 3", chunk[1]),
                })?;
            Ok(serde_json::json!({
                "query": chunk[0],
                "label": label,
                "endings": chunk[2..6],
            }))
        })
        .collect()
}

/// lm-evaluation-harness's HellaSwag `preprocess`.
pub fn hellaswag_preprocess(text: &str) -> String {
    static TAG: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let tag = TAG.get_or_init(|| regex::Regex::new(r"\[.*?\]").expect("valid regex"));
    let text = text.trim().replace(" [title]", ". ");
    let text = tag.replace_all(&text, "");
    text.replace("  ", " ")
}

/// Python's `str.capitalize()`: the first character in title case, the rest
/// lower-cased (`"he Saw NASA"` → `"He saw nasa"`). lm-eval applies it to
/// `ctx_b`. Title case differs from upper case only for a few characters; the
/// Latin digraphs are mapped here, other rare ones (Greek with ypogegrammeni)
/// fall back to upper case.
pub fn python_capitalize(text: &str) -> String {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let title = match first {
        '\u{01C4}'..='\u{01C6}' => "\u{01C5}".to_string(),
        '\u{01C7}'..='\u{01C9}' => "\u{01C8}".to_string(),
        '\u{01CA}'..='\u{01CC}' => "\u{01CB}".to_string(),
        '\u{01F1}'..='\u{01F3}' => "\u{01F2}".to_string(),
        other => other.to_uppercase().collect(),
    };
    title + &chars.as_str().to_lowercase()
}

/// lm-evaluation-harness's HellaSwag `process_docs` on the raw JSONL.
pub fn hellaswag_process_doc(doc: &Doc) -> Option<Doc> {
    let get = |key: &str| doc.get(key).and_then(Json::as_str);
    let ctx = format!("{} {}", get("ctx_a")?, python_capitalize(get("ctx_b")?));
    let endings: Vec<String> = doc
        .get("endings")?
        .as_array()?
        .iter()
        .map(|e| e.as_str().map(hellaswag_preprocess))
        .collect::<Option<_>>()?;
    let label = match doc.get("label")? {
        Json::String(s) => s.parse::<i64>().ok()?,
        Json::Number(n) => n.as_i64()?,
        _ => return None,
    };
    let mut out = doc.as_object()?.clone();
    out.insert(
        "query".into(),
        Json::String(hellaswag_preprocess(&format!(
            "{}: {}",
            get("activity_label")?,
            ctx
        ))),
    );
    out.insert("choices".into(), serde_json::json!(endings));
    out.insert("gold".into(), serde_json::json!(label));
    Some(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    #[test]
    fn capitalize_matches_python() {
        // Expected values from Python 3's str.capitalize().
        for (input, expected) in [
            ("he", "He"),
            (
                "she takes bread from a bag labeled USA Bread.",
                "She takes bread from a bag labeled usa bread.",
            ),
            ("iOS apps", "Ios apps"),
            ("", ""),
            ("\u{01C6}emal", "\u{01C5}emal"),
            ("ÉCOLE Σ", "École σ"),
            ("1st Place", "1st place"),
        ] {
            assert_eq!(python_capitalize(input), expected, "{input:?}");
        }
    }

    fn spec(loader: &str, file: &Path, column_names: Option<Vec<String>>) -> DatasetSpec {
        DatasetSpec {
            loader: loader.into(),
            name: None,
            data_files: BTreeMap::from([("test".to_string(), vec![file.to_path_buf()])]),
            column_names,
        }
    }

    fn write(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        path
    }

    #[test]
    fn jsonl_and_json_array() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.jsonl", b"{\"q\": 1}\n\n{\"q\": 2}\n");
        let docs = load_split(&spec("json", &path, None), "test").unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"q": 1}), serde_json::json!({"q": 2})]
        );
        let path = write(dir.path(), "b.json", b"[{\"q\": 1}]");
        assert_eq!(
            load_split(&spec("json", &path, None), "test")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bad_jsonl_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.jsonl", b"{\"q\": 1}\n{oops\n");
        let err = load_split(&spec("json", &path, None), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.jsonl:2: not a JSON object"), "{err}");
        let path = write(dir.path(), "b.jsonl", b"[1]\n");
        let err = load_split(&spec("json", &path, None), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.jsonl"), "{err}");
    }

    #[test]
    fn csv_with_bom_quotes_and_column_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.csv",
            "\u{feff}q,a\n\"multi\nline\",x\n".as_bytes(),
        );
        let docs = load_split(&spec("csv", &path, None), "test").unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"q": "multi\nline", "a": "x"})]
        );
        let path = write(dir.path(), "b.csv", b"what,A,B,C,D,A\n");
        let names: Vec<String> = ["question", "A", "B", "C", "D", "answer"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let docs = load_split(&spec("csv", &path, Some(names)), "test").unwrap();
        assert_eq!(docs[0]["answer"], "A");
        assert_eq!(docs[0]["question"], "what");
    }

    #[test]
    fn ragged_csv_names_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.csv", b"q,a\n1,2\n3\n4,5\n");
        let err = load_split(&spec("csv", &path, None), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.csv:3:"), "{err}");
        assert!(err.contains("expected 2"), "{err}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = load_split(
            &spec("json", Path::new("/nonexistent/x.jsonl"), None),
            "test",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/x.jsonl"), "{err}");
    }

    #[test]
    fn hellaswag_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "h.txt", b"Ctx: a man\n2\ne0\ne1\ne2\ne3\n");
        let docs = load_split(&spec("llama_cpp_hellaswag", &path, None), "test").unwrap();
        assert_eq!(
            docs[0],
            serde_json::json!({"query": "Ctx: a man", "label": 2, "endings": ["e0", "e1", "e2", "e3"]})
        );
        let path = write(dir.path(), "bad.txt", b"Ctx\n7\na\nb\nc\nd\n");
        let err = load_split(&spec("llama_cpp_hellaswag", &path, None), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.txt:2:"), "{err}");
    }

    #[test]
    fn parquet_rows_become_objects() {
        use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let schema = Arc::new(
            parse_message_type(
                "message doc { REQUIRED BYTE_ARRAY q (UTF8); REQUIRED INT64 label; }",
            )
            .unwrap(),
        );
        let file = std::fs::File::create(&path).unwrap();
        let mut writer =
            SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
                .unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(&[ByteArray::from("hi"), ByteArray::from("yo")], None, None)
            .unwrap();
        col.close().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<Int64Type>()
            .write_batch(&[1, 2], None, None)
            .unwrap();
        col.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
        let docs = load_split(&spec("parquet", &path, None), "test").unwrap();
        assert_eq!(
            docs,
            vec![
                serde_json::json!({"q": "hi", "label": 1}),
                serde_json::json!({"q": "yo", "label": 2})
            ]
        );
    }

    #[test]
    fn hellaswag_preprocess_matches_lm_eval() {
        assert_eq!(
            hellaswag_preprocess(" Step one [title] Do it [step] now  "),
            "Step one. Do it now"
        );
        let doc = serde_json::json!({"activity_label": "Roof", "ctx_a": "A man", "ctx_b": "is up.", "endings": ["a [header]b"], "label": "0"});
        let out = hellaswag_process_doc(&doc).unwrap();
        assert_eq!(out["query"], "Roof: A man Is up.");
        assert_eq!(out["choices"], serde_json::json!(["a b"]));
        assert_eq!(out["gold"], 0);
    }
}
