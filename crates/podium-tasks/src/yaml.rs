//! A YAML tree that remembers where each node came from (file and line), so
//! every config error can name the file, line and key at fault.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::TaskError;

/// Where a node was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<PathBuf>,
    pub line: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys keep their order and their own location.
    Map(Vec<(String, Loc, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
    /// A local tag such as `!function`, without the `!`.
    pub tag: Option<String>,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Loc, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, node)| node)
    }

    /// The node as plain JSON (tags dropped), for docs, kwargs and configs.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// The deepest nesting of lists and mappings a task file may use. Task
/// configs nest a few levels; the bound keeps a hostile file from exhausting
/// the stack of every recursive walk over the tree.
pub const MAX_DEPTH: usize = 64;

/// How much aliases (`*name`) may add to a document, counted in nodes plus
/// bytes of keys and scalars. Each alias is a copy of its anchor, so without a
/// budget a 1 KB file of nested aliases ("billion laughs") expands to gigabytes.
pub const MAX_ALIAS_EXPANSION: usize = 1_000_000;

/// Parse one YAML document from `text`, attributing nodes to `file`.
///
/// The parser's events are consumed in a loop (not yaml-rust2's recursive
/// `load`), so nesting is bounded by [`MAX_DEPTH`] before it can overflow the
/// stack; a second document, an unsupported tag or aliases that expand beyond
/// [`MAX_ALIAS_EXPANSION`] are located errors.
pub fn parse(text: &str, file: &Path) -> Result<Node, TaskError> {
    let file = Arc::new(file.to_path_buf());
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        error: None,
        alias_expansion: 0,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|err| TaskError::Yaml {
            loc: Loc {
                file: file.clone(),
                line: err.marker().line(),
            },
            message: err.info().to_string(),
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.on_event(event, mark);
        if let Some(err) = builder.error.take() {
            return Err(err);
        }
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        loc: Loc { file, line: 1 },
        tag: None,
    }))
}

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
    },
    Map {
        node: Node,
        anchor: usize,
        pending_key: Option<(String, Loc)>,
    },
}

struct Builder {
    file: Arc<PathBuf>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<TaskError>,
    /// Nodes and bytes added by aliases so far.
    alias_expansion: usize,
    documents: usize,
}

impl Builder {
    fn loc(&self, mark: Marker) -> Loc {
        Loc {
            file: self.file.clone(),
            line: mark.line(),
        }
    }

    fn fail(&mut self, loc: Loc, message: String) {
        if self.error.is_none() {
            self.error = Some(TaskError::Yaml { loc, message });
        }
    }

    /// Attach a finished node to its parent (or make it the root).
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { node: parent, .. }) => {
                if let Value::Seq(items) = &mut parent.value {
                    items.push(node);
                }
            }
            Some(Frame::Map {
                node: parent,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = match &node.value {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(x) => x.to_string(),
                        Value::Null => "null".to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            let loc = node.loc.clone();
                            self.fail(loc, "a mapping key must be a plain scalar".into());
                            return;
                        }
                    };
                    *pending_key = Some((key, node.loc));
                }
                Some((key, key_loc)) => {
                    if let Value::Map(entries) = &mut parent.value {
                        if entries.iter().any(|(k, _, _)| *k == key) {
                            let message = format!("duplicate key `{key}`");
                            self.fail(key_loc, message);
                            return;
                        }
                        entries.push((key, key_loc, node));
                    }
                }
            },
        }
    }
}

/// The YAML core schema's tag prefix (what `!!` stands for).
const CORE_SCHEMA: &str = "tag:yaml.org,2002:";

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Scalar,
    Seq,
    Map,
}

/// What a node's tag means here.
#[derive(Default)]
struct TagMeaning {
    /// The one local tag lm-evaluation-harness defines, `function` (the
    /// config layer reads it).
    local: Option<String>,
    /// `!!str`: the scalar is text even when it looks like a number.
    as_text: bool,
}

/// A YAML tag Podium does not read (it is written back as `!!suffix` or `!handle…`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported tag `{0}`: task files use plain YAML values, `!!str` and lm-evaluation-harness's `!function`"
)]
struct UnsupportedTag(String);

/// Accepts no tag, `!function`, and the core-schema tags that only restate
/// the node's kind (`!!str`, `!!seq`, `!!map`). Anything else would be
/// silently misread (`!!binary` data as text, a custom tag's meaning
/// dropped), so it is an error.
fn check_tag(
    tag: Option<yaml_rust2::parser::Tag>,
    kind: NodeKind,
) -> Result<TagMeaning, UnsupportedTag> {
    let Some(tag) = tag else {
        return Ok(TagMeaning::default());
    };
    if tag.handle == "!" && tag.suffix == "function" {
        return Ok(TagMeaning {
            local: Some(tag.suffix),
            as_text: false,
        });
    }
    if tag.handle == CORE_SCHEMA {
        match (tag.suffix.as_str(), kind) {
            ("str", NodeKind::Scalar) => {
                return Ok(TagMeaning {
                    local: None,
                    as_text: true,
                });
            }
            ("seq", NodeKind::Seq) | ("map", NodeKind::Map) => {
                return Ok(TagMeaning::default());
            }
            _ => {}
        }
    }
    let written = if tag.handle == CORE_SCHEMA {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    };
    Err(UnsupportedTag(written))
}

/// The size of a node for the alias budget: nodes plus bytes of keys and text.
fn expansion_weight(node: &Node) -> usize {
    1 + match &node.value {
        Value::Str(s) => s.len(),
        Value::Seq(items) => items.iter().map(expansion_weight).sum(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, _, v)| k.len() + expansion_weight(v))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 0,
    }
}

fn resolve_plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && text.chars().any(|c| c.is_ascii_digit());
    if looks_numeric && let Ok(x) = text.parse::<f64>() {
        return Value::Float(x);
    }
    Value::Str(text.to_string())
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let loc = self.loc(mark);
        let kind = match &event {
            Event::SequenceStart(..) => Some(NodeKind::Seq),
            Event::MappingStart(..) => Some(NodeKind::Map),
            _ => None,
        };
        if kind.is_some() && self.stack.len() >= MAX_DEPTH {
            self.fail(
                loc,
                format!("lists and mappings nest deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let (tag, as_text) = match check_tag(tag, NodeKind::Scalar) {
                    Ok(meaning) => (meaning.local, meaning.as_text),
                    Err(unsupported) => return self.fail(loc, unsupported.to_string()),
                };
                let value = if style == TScalarStyle::Plain && !as_text {
                    resolve_plain_scalar(&text)
                } else {
                    // Quoted, block and `!!str` scalars are text as written.
                    Value::Str(text)
                };
                self.push_value(Node { value, loc, tag }, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                let tag = match check_tag(tag, NodeKind::Seq) {
                    Ok(meaning) => meaning.local,
                    Err(unsupported) => return self.fail(loc, unsupported.to_string()),
                };
                self.stack.push(Frame::Seq {
                    node: Node {
                        value: Value::Seq(Vec::new()),
                        loc,
                        tag,
                    },
                    anchor,
                });
            }
            Event::MappingStart(anchor, tag) => {
                let tag = match check_tag(tag, NodeKind::Map) {
                    Ok(meaning) => meaning.local,
                    Err(unsupported) => return self.fail(loc, unsupported.to_string()),
                };
                self.stack.push(Frame::Map {
                    node: Node {
                        value: Value::Map(Vec::new()),
                        loc,
                        tag,
                    },
                    anchor,
                    pending_key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Frame::Seq { node, anchor } | Frame::Map { node, anchor, .. }) =
                    self.stack.pop()
                {
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(anchor) => {
                let Some(node) = self.anchors.get(&anchor) else {
                    return self.fail(loc, "alias to an unknown anchor".into());
                };
                self.alias_expansion = self.alias_expansion.saturating_add(expansion_weight(node));
                if self.alias_expansion > MAX_ALIAS_EXPANSION {
                    return self.fail(
                        loc,
                        format!(
                            "aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and bytes (nested aliases that multiply?)"
                        ),
                    );
                }
                let node = node.clone();
                self.push_value(node, 0);
            }
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        loc,
                        "a second YAML document (after `---`): a task file holds one document"
                            .into(),
                    );
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Node, TaskError> {
        parse(text, Path::new("t.yaml"))
    }

    #[test]
    fn keeps_lines_types_and_tags() {
        let node = parse_str(
            "task: demo\nnum_fewshot: 5\nratio: 0.5\nflag: true\nlist:\n  - a\n  - 'b'\nfn: !function utils.f\nempty:\n",
        )
        .unwrap();
        let entries = node.as_map().unwrap();
        assert_eq!(entries[0].0, "task");
        assert_eq!(entries[0].1.line, 1);
        assert_eq!(node.get("num_fewshot").unwrap().value, Value::Int(5));
        assert_eq!(node.get("ratio").unwrap().value, Value::Float(0.5));
        assert_eq!(node.get("flag").unwrap().value, Value::Bool(true));
        assert_eq!(
            node.get("list").unwrap().to_json(),
            serde_json::json!(["a", "b"])
        );
        let tagged = node.get("fn").unwrap();
        assert_eq!(tagged.tag.as_deref(), Some("function"));
        assert_eq!(tagged.loc.line, 8);
        assert_eq!(node.get("empty").unwrap().value, Value::Null);
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let node = parse_str("a: '5'\nb: \"true\"\nc: 1e3\nd: 1.2.3\n").unwrap();
        assert_eq!(node.get("a").unwrap().value, Value::Str("5".into()));
        assert_eq!(node.get("b").unwrap().value, Value::Str("true".into()));
        assert_eq!(node.get("c").unwrap().value, Value::Float(1000.0));
        assert_eq!(node.get("d").unwrap().value, Value::Str("1.2.3".into()));
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let node = parse_str("base: &b\n  x: 1\ncopy: *b\n").unwrap();
        assert_eq!(
            node.get("copy").unwrap().to_json(),
            serde_json::json!({"x": 1})
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let err = parse_str("task: a\nlist: [1, 2\nother: 3\n").unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("t.yaml:"), "{message}");
        let err = parse_str("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.to_string(), "t.yaml:2: duplicate key `a`");
    }

    /// Regression: yaml-rust2's recursive `load` overflowed the stack (an
    /// abort, not an error) on deeply nested input.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep_list = format!("a:\n  {}x\n", "- ".repeat(200_000));
        let err = parse_str(&deep_list).unwrap_err().to_string();
        assert!(err.starts_with("t.yaml:2: "), "{err}");
        assert!(err.contains("deeper than 64 levels"), "{err}");

        let mut nested_maps = String::new();
        for level in 0..100 {
            nested_maps.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        let err = parse_str(&nested_maps).unwrap_err().to_string();
        assert!(err.contains("deeper than 64 levels"), "{err}");

        let at_the_limit = format!("{}x{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_str(&at_the_limit).is_ok());
    }

    /// Regression: a 1 KB "billion laughs" file expanded its aliases without
    /// bound and exhausted memory.
    #[test]
    fn alias_expansion_has_a_budget() {
        let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let prev = format!("*l{}", level - 1);
            text.push_str(&format!(
                "l{level}: &l{level} [{}]\n",
                vec![prev; 10].join(", ")
            ));
        }
        assert!(text.len() < 1024, "{}", text.len());
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("aliases expand to more than"), "{err}");
        assert!(err.starts_with("t.yaml:"), "{err}");
    }

    /// Regression: `!!binary`, other core tags and custom tags were dropped
    /// silently, and a second document was ignored.
    #[test]
    fn unsupported_tags_and_second_documents_are_located_errors() {
        let check = |text: &str, expected: &str| {
            let err = parse_str(text).unwrap_err().to_string();
            assert_eq!(err, expected, "{text}");
        };
        check(
            "task: a\ndata: !!binary aGVsbG8=\n",
            "t.yaml:2: unsupported tag `!!binary`: task files use plain YAML values, `!!str` and lm-evaluation-harness's `!function`",
        );
        check(
            "task: a\nx: !custom 3\n",
            "t.yaml:2: unsupported tag `!custom`: task files use plain YAML values, `!!str` and lm-evaluation-harness's `!function`",
        );
        check(
            "task: a\nx: !!int 3\n",
            "t.yaml:2: unsupported tag `!!int`: task files use plain YAML values, `!!str` and lm-evaluation-harness's `!function`",
        );
        check(
            "task: a\n---\ntask: b\n",
            "t.yaml:2: a second YAML document (after `---`): a task file holds one document",
        );
        // What is supported keeps working.
        let node = parse_str(
            "--- !!map\na: !!str 5\nb: !!str true\nc: !!seq [1]\nd: !function m.f\n...\n",
        )
        .unwrap();
        assert_eq!(node.get("a").unwrap().value, Value::Str("5".into()));
        assert_eq!(node.get("b").unwrap().value, Value::Str("true".into()));
        assert_eq!(node.get("c").unwrap().to_json(), serde_json::json!([1]));
        assert_eq!(node.get("d").unwrap().tag.as_deref(), Some("function"));
    }
}
