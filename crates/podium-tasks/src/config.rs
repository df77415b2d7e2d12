//! Typed task and group configs, read from lm-evaluation-harness YAML nodes.
//!
//! Unknown keys give a warning naming file and line; a wrong type gives an
//! error naming file, line and key. `include` is merged before typing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::TaskError;
use crate::filters::{FilterPipeline, FilterStep};
use crate::judge::{self, JudgeMetric, JudgeScale};
use crate::metrics::{MetricFamily, MetricName, MetricSpec, TextNormalization};
use crate::yaml::{Loc, Node, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    MultipleChoice,
    GenerateUntil,
    Loglikelihood,
    LoglikelihoodRolling,
}

impl OutputType {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::MultipleChoice => "multiple_choice",
            OutputType::GenerateUntil => "generate_until",
            OutputType::Loglikelihood => "loglikelihood",
            OutputType::LoglikelihoodRolling => "loglikelihood_rolling",
        }
    }
}

/// A `doc_to_*` field: a Jinja template or column name, a literal list, or an int.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldSpec {
    Template(String),
    List(Vec<serde_json::Value>),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    /// `json`, `csv`, `parquet` or `llama_cpp_hellaswag`.
    pub loader: String,
    pub name: Option<String>,
    /// Split name → files, already resolved against the YAML's folder.
    pub data_files: BTreeMap<String, Vec<PathBuf>>,
    /// For CSV without a header row.
    pub column_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    FirstN,
    /// Seeded random sample (lm-evaluation-harness's `default`).
    Random,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FewshotConfig {
    pub sampler: Sampler,
    /// Inline few-shot docs (lm-evaluation-harness's `fewshot_config.samples`).
    pub samples: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationKwargs {
    pub until: Option<Vec<String>>,
    pub max_gen_toks: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub do_sample: bool,
}

impl Default for GenerationKwargs {
    fn default() -> Self {
        GenerationKwargs {
            until: None,
            max_gen_toks: 256,
            temperature: 0.0,
            top_p: 1.0,
            do_sample: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessDocs {
    /// lm-evaluation-harness's HellaSwag `process_docs` for the raw JSONL.
    Hellaswag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessResults {
    /// lm-evaluation-harness's `process_results_mc2`.
    TruthfulqaMc2,
    /// lm-evaluation-harness's IFEval `process_results` (crate::ifeval): the
    /// doc's `instruction_id_list` and `kwargs` checked on the response.
    Ifeval,
}

pub const PROCESS_DOCS_BUILTINS: &[&str] = &["hellaswag"];
pub const PROCESS_RESULTS_BUILTINS: &[&str] = &["truthfulqa_mc2", "ifeval"];

#[derive(Debug, Clone, PartialEq)]
pub struct DocSubset {
    pub size: usize,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub name: String,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    /// The YAML file the task was defined in.
    pub file: PathBuf,
    pub dataset: DatasetSpec,
    pub training_split: Option<String>,
    pub validation_split: Option<String>,
    pub test_split: Option<String>,
    pub fewshot_split: Option<String>,
    pub fewshot_config: FewshotConfig,
    pub num_fewshot: usize,
    pub description: Option<String>,
    pub doc_to_text: FieldSpec,
    pub doc_to_target: FieldSpec,
    pub doc_to_choice: Option<FieldSpec>,
    pub target_delimiter: String,
    pub fewshot_delimiter: String,
    pub gen_prefix: Option<String>,
    pub output_type: OutputType,
    pub generation_kwargs: GenerationKwargs,
    pub repeats: usize,
    pub filters: Vec<FilterPipeline>,
    pub metrics: Vec<MetricSpec>,
    /// `metric: judge` entries: scored by a judge model in the runner.
    pub judges: Vec<JudgeMetric>,
    pub process_docs: Option<ProcessDocs>,
    pub process_results: Option<ProcessResults>,
    pub doc_subset: Option<DocSubset>,
    pub version: serde_json::Value,
    /// Podium-only (`metadata.doc_to_category`): the column or template that
    /// gives each doc's category, for per-category scores.
    pub doc_to_category: Option<FieldSpec>,
    /// Podium-only (`metadata.doc_to_messages`): the column holding each doc's
    /// chat messages (an OpenAI message list, or one written as JSON text).
    pub doc_to_messages: Option<String>,
    /// Podium-only (`metadata.native_chat`): chat APIs get the description as
    /// the system message and the prompt as the user's, instead of one text.
    pub native_chat: bool,
    /// The merged config as JSON: hashed into the task's identity and written
    /// to the results' `configs`.
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggregateSpec {
    pub metric: String,
    pub weight_by_size: bool,
    pub filter_list: Vec<String>,
}

/// A member of a group's `task:` list.
#[derive(Debug, Clone)]
pub enum GroupMember {
    /// A task, tag or group name.
    Name(String, Loc),
    /// A task or group written inline as a mapping.
    Inline(Node),
}

#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub name: String,
    pub alias: Option<String>,
    pub file: PathBuf,
    pub members: Vec<GroupMember>,
    pub aggregate: Vec<AggregateSpec>,
    pub version: serde_json::Value,
}

/// Keys lm-evaluation-harness defines that Podium reads without using: they
/// do not change the score.
const KNOWN_IGNORED_KEYS: &[&str] = &[
    "should_decontaminate",
    "doc_to_decontamination_query",
    "unsafe_code",
    "group_alias",
    "use_prompt",
    "fewshot_as_multiturn",
];

/// Read a YAML file, following `include` chains; the including file's keys win.
pub fn load_merged(path: &Path, depth: usize) -> Result<Node, TaskError> {
    if depth > 16 {
        return Err(TaskError::file(
            path,
            "`include` nests deeper than 16 files (a cycle?)",
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|err| TaskError::file(path, format!("cannot read task file: {err}")))?;
    let node = crate::yaml::parse(&text, path)?;
    merge_include(node, path, depth)
}

/// Read a task YAML given as text (a task built from a data file), as if it
/// were the file `path`: relative paths in it resolve against `path`'s folder.
pub fn load_text(text: &str, path: &Path) -> Result<Node, TaskError> {
    let node = crate::yaml::parse(text, path)?;
    merge_include(node, path, 0)
}

fn merge_include(node: Node, path: &Path, depth: usize) -> Result<Node, TaskError> {
    let Value::Map(entries) = &node.value else {
        return Err(TaskError::Yaml {
            loc: node.loc.clone(),
            message: format!("a task file must be a mapping, found {}", node.type_name()),
        });
    };
    let Some((_, include_loc, include)) = entries.iter().find(|(k, _, _)| k == "include") else {
        return Ok(node);
    };
    let Value::Str(include_path) = &include.value else {
        return Err(TaskError::WrongType {
            loc: include_loc.clone(),
            key: "include".into(),
            expected: "a path string",
            found: include.type_name(),
        });
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let base_path = base_dir.join(include_path);
    if !base_path.is_file() {
        return Err(TaskError::invalid(
            include_loc,
            "include",
            format!("no such file `{}`", base_path.display()),
        ));
    }
    let base = load_merged(&base_path, depth + 1)?;
    let Value::Map(mut merged) = base.value else {
        unreachable!("load_merged returns mappings only")
    };
    for (key, loc, value) in entries.iter().filter(|(k, _, _)| k != "include") {
        if let Some(slot) = merged.iter_mut().find(|(k, _, _)| k == key) {
            *slot = (key.clone(), loc.clone(), value.clone());
        } else {
            merged.push((key.clone(), loc.clone(), value.clone()));
        }
    }
    Ok(Node {
        value: Value::Map(merged),
        loc: node.loc,
        tag: None,
    })
}

/// Whether a merged node describes a group (has `group` and a `task` list).
pub fn is_group(node: &Node) -> bool {
    node.get("group").is_some()
        && node
            .get("task")
            .is_some_and(|t| matches!(t.value, Value::Seq(_)))
}

/// Typed access to one mapping, recording which keys were read.
pub(crate) struct Fields<'a> {
    pub(crate) entries: &'a [(String, Loc, Node)],
    pub(crate) map_loc: &'a Loc,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(node: &'a Node) -> Result<Fields<'a>, TaskError> {
        match &node.value {
            Value::Map(entries) => Ok(Fields {
                entries,
                map_loc: &node.loc,
            }),
            _ => Err(TaskError::Yaml {
                loc: node.loc.clone(),
                message: format!("expected a mapping, found {}", node.type_name()),
            }),
        }
    }

    /// Where `key`'s value is, for an error about it (the mapping itself when
    /// the key is absent).
    pub(crate) fn loc_of(&self, key: &str) -> &'a Loc {
        self.get(key).map_or(self.map_loc, |(loc, _)| loc)
    }

    /// A string `key` that must name one of `choices` (a built-in, an output
    /// type): its value, `None` when absent, or an error at the key listing them.
    pub(crate) fn one_of<T: Copy>(
        &self,
        key: &str,
        choices: &[(&str, T)],
        what: &str,
    ) -> Result<Option<T>, TaskError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        match choices.iter().find(|(name, _)| *name == value) {
            Some((_, choice)) => Ok(Some(*choice)),
            None => Err(TaskError::invalid(
                self.loc_of(key),
                key,
                format!(
                    "unknown {what} `{value}`; expected {}",
                    choices
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<(&'a Loc, &'a Node)> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, loc, node)| (loc, node))
            .filter(|(_, node)| node.value != Value::Null)
    }

    pub(crate) fn reject_function_tag(
        &self,
        key: &str,
        builtins: &[&str],
    ) -> Result<(), TaskError> {
        if let Some((loc, node)) = self.get(key)
            && node.tag.as_deref() == Some("function")
        {
            let target = match &node.value {
                Value::Str(s) => s.as_str(),
                _ => "?",
            };
            return Err(TaskError::invalid(
                loc,
                key,
                format!(
                    "`!function {target}` runs Python code, which Podium does not; use a built-in name instead ({})",
                    if builtins.is_empty() {
                        "none for this key".to_string()
                    } else {
                        builtins.join(", ")
                    }
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, TaskError> {
        self.reject_function_tag(key, &[])?;
        match self.get(key) {
            None => Ok(None),
            Some((_, node)) => match &node.value {
                Value::Str(s) => Ok(Some(s.clone())),
                Value::Int(i) => Ok(Some(i.to_string())),
                Value::Float(x) => Ok(Some(x.to_string())),
                Value::Bool(b) => Ok(Some(b.to_string())),
                _ => Err(self.wrong_type(key, "a string", node)),
            },
        }
    }

    pub(crate) fn usize(&self, key: &str) -> Result<Option<usize>, TaskError> {
        match self.get(key) {
            None => Ok(None),
            Some((_, node)) => match node.value {
                Value::Int(i) if i >= 0 => Ok(Some(i as usize)),
                _ => Err(self.wrong_type(key, "a non-negative integer", node)),
            },
        }
    }

    pub(crate) fn float(&self, key: &str) -> Result<Option<f64>, TaskError> {
        match self.get(key) {
            None => Ok(None),
            Some((_, node)) => match node.value {
                Value::Int(i) => Ok(Some(i as f64)),
                Value::Float(x) => Ok(Some(x)),
                _ => Err(self.wrong_type(key, "a number", node)),
            },
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, TaskError> {
        match self.get(key) {
            None => Ok(None),
            Some((_, node)) => match node.value {
                Value::Bool(b) => Ok(Some(b)),
                _ => Err(self.wrong_type(key, "true or false", node)),
            },
        }
    }

    /// A string or a list of strings.
    pub(crate) fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, TaskError> {
        match self.get(key) {
            None => Ok(None),
            Some((_, node)) => match &node.value {
                Value::Str(s) => Ok(Some(vec![s.clone()])),
                Value::Seq(items) => items
                    .iter()
                    .map(|item| match &item.value {
                        Value::Str(s) => Ok(s.clone()),
                        _ => Err(TaskError::WrongType {
                            loc: item.loc.clone(),
                            key: key.to_string(),
                            expected: "a list of strings",
                            found: item.type_name(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                _ => Err(self.wrong_type(key, "a string or a list of strings", node)),
            },
        }
    }

    pub(crate) fn field_spec(&self, key: &str) -> Result<Option<FieldSpec>, TaskError> {
        self.reject_function_tag(key, &[])?;
        match self.get(key) {
            None => Ok(None),
            Some((_, node)) => match &node.value {
                Value::Str(s) => Ok(Some(FieldSpec::Template(s.clone()))),
                Value::Int(i) => Ok(Some(FieldSpec::Int(*i))),
                Value::Seq(_) => match node.to_json() {
                    serde_json::Value::Array(items) => Ok(Some(FieldSpec::List(items))),
                    _ => unreachable!("a sequence converts to an array"),
                },
                _ => Err(self.wrong_type(key, "a template string, a column name or a list", node)),
            },
        }
    }

    pub(crate) fn wrong_type(&self, key: &str, expected: &'static str, node: &Node) -> TaskError {
        let loc = self
            .get(key)
            .map(|(loc, _)| loc.clone())
            .unwrap_or_else(|| node.loc.clone());
        TaskError::WrongType {
            loc,
            key: key.to_string(),
            expected,
            found: node.type_name(),
        }
    }

    /// Warn about every key outside `known`.
    pub(crate) fn warn_unknown(&self, known: &[&str], context: &str, warnings: &mut Vec<String>) {
        for (key, loc, _) in self.entries {
            if !known.contains(&key.as_str()) && !KNOWN_IGNORED_KEYS.contains(&key.as_str()) {
                warnings.push(format!("{loc}: unknown key `{key}`{context} (ignored)"));
            }
        }
    }
}

const TASK_KEYS: &[&str] = &[
    "task",
    "task_alias",
    "tag",
    "include",
    "dataset_path",
    "dataset_name",
    "dataset_kwargs",
    "training_split",
    "validation_split",
    "test_split",
    "fewshot_split",
    "fewshot_config",
    "num_fewshot",
    "description",
    "doc_to_text",
    "doc_to_target",
    "doc_to_choice",
    "target_delimiter",
    "fewshot_delimiter",
    "gen_prefix",
    "output_type",
    "generation_kwargs",
    "repeats",
    "filter_list",
    "metric_list",
    "process_docs",
    "process_results",
    "doc_subset",
    "metadata",
];

const LOADERS: &[&str] = &["json", "csv", "parquet", "llama_cpp_hellaswag"];

/// Type a merged task node. `warnings` collects unknown-key warnings.
pub fn task_from_node(node: &Node, warnings: &mut Vec<String>) -> Result<TaskConfig, TaskError> {
    let fields = Fields::new(node)?;
    fields.warn_unknown(TASK_KEYS, "", warnings);
    let file = node.loc.file.as_ref().clone();
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();

    let name = fields.string("task")?.ok_or_else(|| TaskError::Yaml {
        loc: fields.map_loc.clone(),
        message: "missing key `task` (the task's name)".into(),
    })?;

    let output_type = fields
        .one_of(
            "output_type",
            &[
                ("multiple_choice", OutputType::MultipleChoice),
                ("generate_until", OutputType::GenerateUntil),
                ("loglikelihood", OutputType::Loglikelihood),
                ("loglikelihood_rolling", OutputType::LoglikelihoodRolling),
            ],
            "output type",
        )?
        .unwrap_or(OutputType::GenerateUntil);

    let dataset = dataset_spec(&fields, &dir)?;
    let doc_to_text = fields
        .field_spec("doc_to_text")?
        .unwrap_or(FieldSpec::Template(String::new()));
    let doc_to_target = fields
        .field_spec("doc_to_target")?
        .ok_or_else(|| TaskError::Yaml {
            loc: fields.map_loc.clone(),
            message: format!("task `{name}`: missing key `doc_to_target`"),
        })?;
    let doc_to_choice = fields.field_spec("doc_to_choice")?;
    if output_type == OutputType::MultipleChoice && doc_to_choice.is_none() {
        return Err(TaskError::Yaml {
            loc: fields.map_loc.clone(),
            message: format!("task `{name}`: `output_type: multiple_choice` needs `doc_to_choice`"),
        });
    }

    let fewshot_config = fewshot_config(&fields)?;
    let generation_kwargs = generation_kwargs(&fields, warnings)?;
    let filters = filter_list(&fields)?;
    let mut metrics = metric_list(&fields, output_type)?;
    let judges = judge_metrics(&fields, output_type)?;

    fields.reject_function_tag("process_docs", PROCESS_DOCS_BUILTINS)?;
    let process_docs = fields.one_of(
        "process_docs",
        &[("hellaswag", ProcessDocs::Hellaswag)],
        "built-in",
    )?;
    fields.reject_function_tag("process_results", PROCESS_RESULTS_BUILTINS)?;
    let process_results = fields.one_of(
        "process_results",
        &[
            ("truthfulqa_mc2", ProcessResults::TruthfulqaMc2),
            ("ifeval", ProcessResults::Ifeval),
        ],
        "built-in",
    )?;
    let needed_output = match process_results {
        Some(ProcessResults::TruthfulqaMc2) => Some(("truthfulqa_mc2", OutputType::MultipleChoice)),
        Some(ProcessResults::Ifeval) => Some(("ifeval", OutputType::GenerateUntil)),
        None => None,
    };
    if let Some((builtin, needed)) = needed_output
        && output_type != needed
    {
        let loc = fields.loc_of("process_results");
        return Err(TaskError::invalid(
            loc,
            "process_results",
            format!("{builtin} needs `output_type: {}`", needed.as_str()),
        ));
    }
    if process_results == Some(ProcessResults::Ifeval) && fields.get("metric_list").is_none() {
        metrics = crate::ifeval::METRICS
            .iter()
            .filter_map(|name| MetricName::parse(name))
            .map(MetricSpec::plain)
            .collect();
    }
    // IFEval's metrics come only from its checkers, and its checkers give only them.
    let ifeval_metric = |m: &MetricSpec| crate::ifeval::METRICS.contains(&m.name.as_str());
    if let Some(spec) = metrics
        .iter()
        .find(|m| ifeval_metric(m) != (process_results == Some(ProcessResults::Ifeval)))
    {
        let loc = fields.loc_of("metric_list");
        let message = if process_results == Some(ProcessResults::Ifeval) {
            format!(
                "`process_results: ifeval` computes {}, not `{}`",
                crate::ifeval::METRICS.join(", "),
                spec.name.as_str()
            )
        } else {
            format!(
                "metric `{}` needs `process_results: ifeval`",
                spec.name.as_str()
            )
        };
        return Err(TaskError::invalid(loc, "metric_list", message));
    }

    let doc_subset = match fields.get("doc_subset") {
        None => None,
        Some((_, node)) => {
            let sub = Fields::new(node)?;
            sub.warn_unknown(&["size", "seed"], " in `doc_subset`", warnings);
            let size = sub.usize("size")?.ok_or_else(|| TaskError::Yaml {
                loc: node.loc.clone(),
                message: "`doc_subset` needs `size`".into(),
            })?;
            Some(DocSubset {
                size,
                seed: sub.usize("seed")?.unwrap_or(1234) as u64,
            })
        }
    };

    let version = fields
        .get("metadata")
        .and_then(|(_, node)| node.get("version"))
        .map(Node::to_json)
        .unwrap_or(serde_json::Value::Null);

    let (doc_to_category, doc_to_messages, native_chat) = podium_metadata(&fields, output_type)?;
    let config = TaskConfig {
        doc_to_category,
        doc_to_messages,
        native_chat,
        alias: fields.string("task_alias")?,
        tags: fields.string_list("tag")?.unwrap_or_default(),
        file,
        dataset,
        training_split: fields.string("training_split")?,
        validation_split: fields.string("validation_split")?,
        test_split: fields.string("test_split")?,
        fewshot_split: fields.string("fewshot_split")?,
        fewshot_config,
        num_fewshot: fields.usize("num_fewshot")?.unwrap_or(0),
        description: fields.string("description")?,
        doc_to_text,
        doc_to_target,
        doc_to_choice,
        target_delimiter: fields
            .string("target_delimiter")?
            .unwrap_or_else(|| " ".into()),
        fewshot_delimiter: fields
            .string("fewshot_delimiter")?
            .unwrap_or_else(|| "\n\n".into()),
        gen_prefix: fields.string("gen_prefix")?,
        output_type,
        generation_kwargs,
        repeats: repeats(&fields)?,
        filters,
        metrics,
        judges,
        process_docs,
        process_results,
        doc_subset,
        version,
        raw: node.to_json(),
        name,
    };
    if config.test_split.is_none() && config.validation_split.is_none() {
        return Err(TaskError::Yaml {
            loc: fields.map_loc.clone(),
            message: format!(
                "task `{}`: set `test_split` or `validation_split` (the split to evaluate on)",
                config.name
            ),
        });
    }
    for (key, split) in [
        ("training_split", &config.training_split),
        ("validation_split", &config.validation_split),
        ("test_split", &config.test_split),
        ("fewshot_split", &config.fewshot_split),
    ] {
        if let Some(split) = split
            && !config.dataset.data_files.contains_key(split)
        {
            let loc = fields.loc_of(key);
            return Err(TaskError::invalid(
                loc,
                key,
                format!(
                    "split `{split}` is not in `dataset_kwargs.data_files` (it has: {})",
                    config
                        .dataset
                        .data_files
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(config)
}

/// Podium-only keys kept under `metadata` (which lm-evaluation-harness passes
/// through without reading): `doc_to_category`, `doc_to_messages`, `native_chat`.
fn podium_metadata(
    fields: &Fields<'_>,
    output_type: OutputType,
) -> Result<(Option<FieldSpec>, Option<String>, bool), TaskError> {
    let Some((_, node)) = fields.get("metadata") else {
        return Ok((None, None, false));
    };
    let Ok(meta) = Fields::new(node) else {
        return Ok((None, None, false));
    };
    let category = meta.field_spec("doc_to_category")?;
    let messages = meta.string("doc_to_messages")?;
    let native_chat = meta.bool("native_chat")?.unwrap_or(false);
    if (messages.is_some() || native_chat) && output_type != OutputType::GenerateUntil {
        let key = if messages.is_some() {
            "doc_to_messages"
        } else {
            "native_chat"
        };
        return Err(TaskError::invalid(
            meta.loc_of(key),
            key,
            "chat messages apply to `output_type: generate_until` only",
        ));
    }
    Ok((category, messages, native_chat))
}

/// The most generations per doc a task may ask for with `repeats`
/// (lm-evaluation-harness's self-consistency tasks use 64).
pub const MAX_REPEATS: usize = 1024;

fn repeats(fields: &Fields<'_>) -> Result<usize, TaskError> {
    match fields.usize("repeats")? {
        None => Ok(1),
        Some(n) if (1..=MAX_REPEATS).contains(&n) => Ok(n),
        Some(n) => {
            let loc = fields.loc_of("repeats");
            Err(TaskError::invalid(
                loc,
                "repeats",
                format!("{n} generations per doc: expected 1 to {MAX_REPEATS}"),
            ))
        }
    }
}

fn dataset_spec(fields: &Fields<'_>, dir: &Path) -> Result<DatasetSpec, TaskError> {
    let loader = fields.string("dataset_path")?.ok_or_else(|| TaskError::Yaml {
        loc: fields.map_loc.clone(),
        message: "missing key `dataset_path` (json, csv, parquet or llama_cpp_hellaswag with `dataset_kwargs.data_files`)".into(),
    })?;
    let path_loc = fields.loc_of("dataset_path");
    let mut data_files = BTreeMap::new();
    let mut column_names = None;
    if let Some((_, kwargs)) = fields.get("dataset_kwargs") {
        let kw = Fields::new(kwargs)?;
        if let Some((files_loc, files)) = kw.get("data_files") {
            // Paths resolve against the folder of the file that wrote them,
            // so an `include`d base file keeps its own relative paths.
            let dir = files.loc.file.parent().unwrap_or(dir).to_path_buf();
            let resolve = |node: &Node| -> Result<Vec<PathBuf>, TaskError> {
                let paths = match &node.value {
                    Value::Str(s) => vec![s.clone()],
                    Value::Seq(items) => items
                        .iter()
                        .map(|item| match &item.value {
                            Value::Str(s) => Ok(s.clone()),
                            _ => Err(TaskError::WrongType {
                                loc: item.loc.clone(),
                                key: "data_files".into(),
                                expected: "a path",
                                found: item.type_name(),
                            }),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(TaskError::WrongType {
                            loc: node.loc.clone(),
                            key: "data_files".into(),
                            expected: "a path or a list of paths",
                            found: node.type_name(),
                        });
                    }
                };
                Ok(paths.iter().map(|p| dir.join(p)).collect())
            };
            match &files.value {
                Value::Map(entries) => {
                    for (split, _, node) in entries {
                        data_files.insert(split.clone(), resolve(node)?);
                    }
                }
                // A bare path or list is the `train` split, as in `datasets`.
                Value::Str(_) | Value::Seq(_) => {
                    data_files.insert("train".to_string(), resolve(files)?);
                }
                _ => {
                    return Err(TaskError::WrongType {
                        loc: files_loc.clone(),
                        key: "data_files".into(),
                        expected: "a mapping of split names to paths",
                        found: files.type_name(),
                    });
                }
            }
        }
        column_names = kw.string_list("column_names")?;
        for (key, loc, _) in kw.entries {
            if !["data_files", "column_names"].contains(&key.as_str()) {
                // `trust_remote_code` and friends concern the Hub; harmless here.
                if key != "trust_remote_code" {
                    return Err(TaskError::invalid(
                        loc,
                        key,
                        "unsupported `dataset_kwargs` key: Podium reads `data_files` and `column_names`",
                    ));
                }
            }
        }
    }
    if !LOADERS.contains(&loader.as_str()) {
        return Err(TaskError::invalid(
            path_loc,
            "dataset_path",
            format!(
                "`{loader}` is not a local loader: Podium reads local data only; set `dataset_path` to one of {} and list the files in `dataset_kwargs.data_files`",
                LOADERS.join(", ")
            ),
        ));
    }
    if data_files.is_empty() {
        return Err(TaskError::invalid(
            path_loc,
            "dataset_path",
            "`dataset_kwargs.data_files` is missing: list the local data file of each split",
        ));
    }
    Ok(DatasetSpec {
        loader,
        name: fields.string("dataset_name")?,
        data_files,
        column_names,
    })
}

fn fewshot_config(fields: &Fields<'_>) -> Result<FewshotConfig, TaskError> {
    let Some((_, node)) = fields.get("fewshot_config") else {
        return Ok(FewshotConfig {
            sampler: Sampler::Random,
            samples: None,
        });
    };
    let fc = Fields::new(node)?;
    let sampler = match fc.string("sampler")?.as_deref() {
        None | Some("default") | Some("random") => Sampler::Random,
        Some("first_n") => Sampler::FirstN,
        Some(other) => {
            let loc = fc.loc_of("sampler");
            return Err(TaskError::invalid(
                loc,
                "sampler",
                format!("unknown sampler `{other}`: expected first_n or default"),
            ));
        }
    };
    fc.reject_function_tag("samples", &[])?;
    let samples = match fc.get("samples") {
        None => None,
        Some((loc, node)) => match node.to_json() {
            serde_json::Value::Array(items) => Some(items),
            _ => {
                return Err(TaskError::WrongType {
                    loc: loc.clone(),
                    key: "samples".into(),
                    expected: "a list of docs",
                    found: node.type_name(),
                });
            }
        },
    };
    for (key, loc, _) in fc.entries {
        if !["sampler", "samples"].contains(&key.as_str()) {
            return Err(TaskError::invalid(
                loc,
                key,
                "unsupported `fewshot_config` key: Podium reads `sampler` and `samples`",
            ));
        }
    }
    Ok(FewshotConfig { sampler, samples })
}

fn generation_kwargs(
    fields: &Fields<'_>,
    warnings: &mut Vec<String>,
) -> Result<GenerationKwargs, TaskError> {
    let mut kwargs = GenerationKwargs::default();
    let Some((_, node)) = fields.get("generation_kwargs") else {
        return Ok(kwargs);
    };
    let gk = Fields::new(node)?;
    gk.warn_unknown(
        &[
            "until",
            "max_gen_toks",
            "max_new_tokens",
            "temperature",
            "top_p",
            "do_sample",
        ],
        " in `generation_kwargs`",
        warnings,
    );
    kwargs.until = gk.string_list("until")?;
    if let Some(n) = gk.usize("max_gen_toks")?.or(gk.usize("max_new_tokens")?) {
        kwargs.max_gen_toks = n;
    }
    if let Some(t) = gk.float("temperature")? {
        kwargs.temperature = t;
    }
    if let Some(p) = gk.float("top_p")? {
        kwargs.top_p = p;
    }
    if let Some(b) = gk.bool("do_sample")? {
        kwargs.do_sample = b;
    }
    Ok(kwargs)
}

fn filter_list(fields: &Fields<'_>) -> Result<Vec<FilterPipeline>, TaskError> {
    let Some((loc, node)) = fields.get("filter_list") else {
        return Ok(vec![FilterPipeline::none()]);
    };
    let Value::Seq(items) = &node.value else {
        return Err(TaskError::WrongType {
            loc: loc.clone(),
            key: "filter_list".into(),
            expected: "a list of {name, filter}",
            found: node.type_name(),
        });
    };
    let mut pipelines = Vec::new();
    for item in items {
        let f = Fields::new(item)?;
        let name = f.string("name")?.ok_or_else(|| TaskError::Yaml {
            loc: item.loc.clone(),
            message: "a `filter_list` entry needs `name`".into(),
        })?;
        let Some((steps_loc, steps_node)) = f.get("filter") else {
            return Err(TaskError::Yaml {
                loc: item.loc.clone(),
                message: format!("filter `{name}` needs a `filter` list"),
            });
        };
        let Value::Seq(step_nodes) = &steps_node.value else {
            return Err(TaskError::WrongType {
                loc: steps_loc.clone(),
                key: "filter".into(),
                expected: "a list of steps",
                found: steps_node.type_name(),
            });
        };
        let mut steps = Vec::new();
        for step_node in step_nodes {
            let s = Fields::new(step_node)?;
            s.reject_function_tag("function", &crate::filters::FILTER_NAMES)?;
            let function = s.string("function")?.ok_or_else(|| TaskError::Yaml {
                loc: step_node.loc.clone(),
                message: "a filter step needs `function`".into(),
            })?;
            let function_loc = s.loc_of("function");
            let step = match function.as_str() {
                "regex" => {
                    let pattern = s.string("regex_pattern")?.unwrap_or_else(|| {
                        // lm-evaluation-harness's default pattern.
                        r"#### (\-?[0-9\.\,]+)".to_string()
                    });
                    let regex = crate::filters::compile_python_regex(&pattern).map_err(|err| {
                        TaskError::invalid(
                            s.get("regex_pattern")
                                .map(|(l, _)| l)
                                .unwrap_or(function_loc),
                            "regex_pattern",
                            err.to_string(),
                        )
                    })?;
                    let group_select = match s.get("group_select") {
                        None => 0,
                        Some((loc, node)) => match node.value {
                            Value::Int(i) => i,
                            _ => {
                                return Err(TaskError::WrongType {
                                    loc: loc.clone(),
                                    key: "group_select".into(),
                                    expected: "an integer",
                                    found: node.type_name(),
                                });
                            }
                        },
                    };
                    FilterStep::Regex {
                        regex,
                        group_select,
                        fallback: s.string("fallback")?.unwrap_or_else(|| "[invalid]".into()),
                    }
                }
                "take_first" => FilterStep::TakeFirst,
                "majority_vote" => FilterStep::MajorityVote,
                "remove_whitespace" => FilterStep::RemoveWhitespace,
                "lowercase" => FilterStep::Lowercase,
                "uppercase" => FilterStep::Uppercase,
                "take_first_k" => FilterStep::TakeFirstK(s.usize("k")?.unwrap_or(1)),
                other => {
                    return Err(TaskError::invalid(
                        function_loc,
                        "function",
                        format!(
                            "unknown filter `{other}`; the filters are: {}",
                            crate::filters::FILTER_NAMES.join(", ")
                        ),
                    ));
                }
            };
            steps.push(step);
        }
        pipelines.push(FilterPipeline { name, steps });
    }
    Ok(pipelines)
}

fn metric_list(fields: &Fields<'_>, output_type: OutputType) -> Result<Vec<MetricSpec>, TaskError> {
    let Some((loc, node)) = fields.get("metric_list") else {
        let defaults: &[MetricName] = match output_type {
            OutputType::MultipleChoice => &[MetricName::Acc, MetricName::AccNorm],
            OutputType::GenerateUntil => &[MetricName::ExactMatch],
            OutputType::Loglikelihood => &[MetricName::Perplexity, MetricName::Acc],
            OutputType::LoglikelihoodRolling => &[
                MetricName::WordPerplexity,
                MetricName::BytePerplexity,
                MetricName::BitsPerByte,
            ],
        };
        return Ok(defaults.iter().map(|m| MetricSpec::plain(*m)).collect());
    };
    let Value::Seq(items) = &node.value else {
        return Err(TaskError::WrongType {
            loc: loc.clone(),
            key: "metric_list".into(),
            expected: "a list of {metric, ...}",
            found: node.type_name(),
        });
    };
    let mut metrics: Vec<MetricSpec> = Vec::new();
    // Result key → the line of the entry that uses it.
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for item in items {
        let m = Fields::new(item)?;
        m.reject_function_tag("metric", &[])?;
        let name = m.string("metric")?.ok_or_else(|| TaskError::Yaml {
            loc: item.loc.clone(),
            message: "a `metric_list` entry needs `metric`".into(),
        })?;
        if name == JUDGE_METRIC {
            // Read by `judge_metrics`.
            continue;
        }
        let metric_loc = m.loc_of("metric");
        let metric = MetricName::parse(&name).ok_or_else(|| {
            TaskError::invalid(
                metric_loc,
                "metric",
                format!(
                    "unknown metric `{name}`; the metrics are: {}",
                    MetricName::ALL
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if !metric.fits(output_type) {
            return Err(TaskError::invalid(
                metric_loc,
                "metric",
                format!(
                    "metric `{name}` does not apply to `output_type: {}`",
                    output_type.as_str()
                ),
            ));
        }
        let mut spec = match metric.family() {
            MetricFamily::Builtin => builtin_metric(&m, metric, metric_loc)?,
            MetricFamily::Rule => MetricSpec {
                rule: Some(crate::rules::parse_rule(&m, metric, metric_loc, false)?),
                ..MetricSpec::plain(metric)
            },
            MetricFamily::Reference => MetricSpec {
                reference: Some(crate::reference::parse_reference(&m, metric)?),
                ..MetricSpec::plain(metric)
            },
        };
        if let Some(key) = m.string("name")? {
            check_metric_key_name(&key, m.loc_of("name"))?;
            spec.key = key;
        }
        if let Some(line) = keys.get(&spec.key) {
            return Err(TaskError::invalid(
                metric_loc,
                "metric",
                format!(
                    "the result key `{}` is already used by the entry at line {line}; give one of them a different `name:`",
                    spec.key
                ),
            ));
        }
        keys.insert(spec.key.clone(), metric_loc.line);
        metrics.push(spec);
    }
    Ok(metrics)
}

/// A `name:` for a metric entry's result keys: letters, digits, `_`, `-` and `.`, not
/// ending in `_stderr` (lm-evaluation-harness's stderr keys are `NAME_stderr,filter`).
fn check_metric_key_name(name: &str, loc: &Loc) -> Result<(), TaskError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.ends_with("_stderr");
    if valid {
        Ok(())
    } else {
        Err(TaskError::invalid(
            loc,
            "name",
            format!(
                "`{name}` cannot name a result key: use 1 to 100 letters, digits, `_`, `-` or `.`, not ending in `_stderr`"
            ),
        ))
    }
}

/// An entry of one of lm-evaluation-harness's own metrics.
fn builtin_metric(
    m: &Fields<'_>,
    metric: MetricName,
    metric_loc: &Loc,
) -> Result<MetricSpec, TaskError> {
    let name = metric.as_str();
    let regexes_to_ignore = m
        .string_list("regexes_to_ignore")?
        .unwrap_or_default()
        .iter()
        .map(|pattern| {
            crate::filters::compile_python_regex(pattern).map_err(|err| {
                TaskError::invalid(
                    m.get("regexes_to_ignore")
                        .map(|(l, _)| l)
                        .unwrap_or(metric_loc),
                    "regexes_to_ignore",
                    err.to_string(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(aggregation) = m.string("aggregation")?
        && ![
            "mean",
            "perplexity",
            "weighted_perplexity",
            "bits_per_byte",
            "agg_inst_level_acc",
        ]
        .contains(&aggregation.as_str())
    {
        let loc = m.loc_of("aggregation");
        return Err(TaskError::invalid(
            loc,
            "aggregation",
            format!(
                "unsupported aggregation `{aggregation}`: Podium uses each metric's standard aggregation (mean for acc and exact_match)"
            ),
        ));
    }
    for (key, loc, _) in m.entries {
        if ![
            "metric",
            "name",
            "aggregation",
            "higher_is_better",
            "ignore_case",
            "ignore_punctuation",
            "ignore_numbers",
            "regexes_to_ignore",
        ]
        .contains(&key.as_str())
        {
            return Err(TaskError::invalid(
                loc,
                key,
                format!("unsupported option for metric `{name}`"),
            ));
        }
    }
    Ok(MetricSpec {
        higher_is_better: m
            .bool("higher_is_better")?
            .unwrap_or(metric.higher_is_better()),
        normalization: TextNormalization {
            ignore_case: m.bool("ignore_case")?.unwrap_or(false),
            ignore_punctuation: m.bool("ignore_punctuation")?.unwrap_or(false),
            ignore_numbers: m.bool("ignore_numbers")?.unwrap_or(false),
            regexes_to_ignore,
        },
        ..MetricSpec::plain(metric)
    })
}

/// The metric name of a judge model's verdict.
pub const JUDGE_METRIC: &str = "judge";

/// The `metric: judge` entries of `metric_list`.
fn judge_metrics(
    fields: &Fields<'_>,
    output_type: OutputType,
) -> Result<Vec<JudgeMetric>, TaskError> {
    let Some((_, node)) = fields.get("metric_list") else {
        return Ok(Vec::new());
    };
    let Value::Seq(items) = &node.value else {
        return Ok(Vec::new());
    };
    let mut judges: Vec<JudgeMetric> = Vec::new();
    for item in items {
        let m = Fields::new(item)?;
        if m.string("metric")?.as_deref() != Some(JUDGE_METRIC) {
            continue;
        }
        let metric_loc = m.loc_of("metric");
        if output_type != OutputType::GenerateUntil {
            return Err(TaskError::invalid(
                metric_loc,
                "metric",
                format!(
                    "metric `judge` grades generated answers: it needs `output_type: generate_until`, not `{}`",
                    output_type.as_str()
                ),
            ));
        }
        for (key, loc, _) in m.entries {
            if ![
                "metric",
                "name",
                "scale",
                "rubric",
                "template",
                "reference",
                "model",
                "max_tokens",
                "higher_is_better",
                "aggregation",
            ]
            .contains(&key.as_str())
            {
                return Err(TaskError::invalid(
                    loc,
                    key,
                    "unsupported option for metric `judge` (its options: name, scale, rubric, template, reference, model, max_tokens)",
                ));
            }
        }
        if let Some(aggregation) = m.string("aggregation")?
            && aggregation != "mean"
        {
            return Err(TaskError::invalid(
                m.loc_of("aggregation"),
                "aggregation",
                "a judge's verdicts aggregate by their mean",
            ));
        }
        if m.bool("higher_is_better")? == Some(false) {
            return Err(TaskError::invalid(
                m.loc_of("higher_is_better"),
                "higher_is_better",
                "a judge's verdicts are better when higher",
            ));
        }
        let scale = m
            .one_of(
                "scale",
                &[
                    ("pass_fail", JudgeScale::PassFail),
                    ("score_1_10", JudgeScale::Score10),
                ],
                "judge scale",
            )?
            .unwrap_or(JudgeScale::PassFail);
        let name = m
            .string("name")?
            .unwrap_or_else(|| JUDGE_METRIC.to_string());
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(TaskError::invalid(
                m.loc_of("name"),
                "name",
                "a judge metric's name is letters, digits, `_` and `-`",
            ));
        }
        if judges.iter().any(|j| j.name == name) {
            return Err(TaskError::invalid(
                m.loc_of("name"),
                "name",
                format!("two judge metrics are named `{name}`: give each its own `name`"),
            ));
        }
        let rubric = m
            .string("rubric")?
            .unwrap_or_else(|| judge::DEFAULT_RUBRIC.to_string());
        if rubric.len() > judge::MAX_TEMPLATE_BYTES {
            return Err(TaskError::invalid(
                m.loc_of("rubric"),
                "rubric",
                format!(
                    "the rubric is longer than {} bytes",
                    judge::MAX_TEMPLATE_BYTES
                ),
            ));
        }
        let template = m
            .string("template")?
            .unwrap_or_else(|| judge::default_template(scale).to_string());
        judge::check_template(&template).map_err(|error| {
            TaskError::invalid(m.loc_of("template"), "template", error.to_string())
        })?;
        let max_tokens = m
            .usize("max_tokens")?
            .unwrap_or(judge::DEFAULT_JUDGE_MAX_TOKENS);
        if max_tokens == 0 || max_tokens > 32_768 {
            return Err(TaskError::invalid(
                m.loc_of("max_tokens"),
                "max_tokens",
                "a judge's `max_tokens` is between 1 and 32768",
            ));
        }
        judges.push(JudgeMetric {
            name,
            scale,
            rubric,
            template,
            use_reference: m.bool("reference")?.unwrap_or(true),
            model: m.string("model")?,
            max_tokens,
        });
    }
    Ok(judges)
}

const GROUP_KEYS: &[&str] = &[
    "group",
    "group_alias",
    "task",
    "aggregate_metric_list",
    "metadata",
    "tag",
];

pub fn group_from_node(node: &Node, warnings: &mut Vec<String>) -> Result<GroupConfig, TaskError> {
    let fields = Fields::new(node)?;
    fields.warn_unknown(GROUP_KEYS, " in a group", warnings);
    let name = fields.string("group")?.ok_or_else(|| TaskError::Yaml {
        loc: node.loc.clone(),
        message: "missing key `group`".into(),
    })?;
    let Some((
        _,
        Node {
            value: Value::Seq(items),
            ..
        },
    )) = fields.get("task")
    else {
        return Err(TaskError::Yaml {
            loc: node.loc.clone(),
            message: format!("group `{name}` needs a `task:` list"),
        });
    };
    let mut members = Vec::new();
    for item in items {
        match &item.value {
            Value::Str(s) => members.push(GroupMember::Name(s.clone(), item.loc.clone())),
            Value::Map(_) => members.push(GroupMember::Inline(item.clone())),
            _ => {
                return Err(TaskError::WrongType {
                    loc: item.loc.clone(),
                    key: "task".into(),
                    expected: "a task name or an inline task mapping",
                    found: item.type_name(),
                });
            }
        }
    }
    let mut aggregate = Vec::new();
    if let Some((loc, agg_node)) = fields.get("aggregate_metric_list") {
        let items: Vec<&Node> = match &agg_node.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Map(_) => vec![agg_node],
            _ => {
                return Err(TaskError::WrongType {
                    loc: loc.clone(),
                    key: "aggregate_metric_list".into(),
                    expected: "a list of {metric, aggregation, weight_by_size}",
                    found: agg_node.type_name(),
                });
            }
        };
        for item in items {
            let a = Fields::new(item)?;
            a.warn_unknown(
                &["metric", "aggregation", "weight_by_size", "filter_list"],
                " in `aggregate_metric_list`",
                warnings,
            );
            let metric = a.string("metric")?.ok_or_else(|| TaskError::Yaml {
                loc: item.loc.clone(),
                message: "an `aggregate_metric_list` entry needs `metric`".into(),
            })?;
            if let Some(aggregation) = a.string("aggregation")?
                && aggregation != "mean"
            {
                let loc = a.loc_of("aggregation");
                return Err(TaskError::invalid(
                    loc,
                    "aggregation",
                    format!("group aggregation `{aggregation}` is not supported: use mean"),
                ));
            }
            aggregate.push(AggregateSpec {
                metric,
                weight_by_size: a.bool("weight_by_size")?.unwrap_or(true),
                filter_list: a
                    .string_list("filter_list")?
                    .unwrap_or_else(|| vec!["none".to_string()]),
            });
        }
    }
    Ok(GroupConfig {
        alias: fields.string("group_alias")?,
        file: node.loc.file.as_ref().clone(),
        members,
        aggregate,
        version: fields
            .get("metadata")
            .and_then(|(_, n)| n.get("version"))
            .map(Node::to_json)
            .unwrap_or(serde_json::Value::Null),
        name,
    })
}
