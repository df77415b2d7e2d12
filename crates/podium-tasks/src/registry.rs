//! Finds task YAMLs in folders, indexes tasks, tags and groups by name, and
//! resolves what a user asks for (`-t hellaswag,mmlu,my_task.yaml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{self, AggregateSpec, GroupConfig, GroupMember, TaskConfig};
use crate::error::TaskError;
use crate::yaml::{Node, Value};

#[derive(Debug, Clone)]
enum Entry {
    Task(Box<TaskConfig>, Node),
    Group(GroupConfig),
}

/// What a user selected: tasks, and groups over them.
#[derive(Debug, Clone)]
pub enum Selection {
    Task(String),
    Group {
        name: String,
        members: Vec<Selection>,
        aggregate: Vec<AggregateSpec>,
    },
}

impl Selection {
    /// Every task under this selection, in order, without duplicates.
    pub fn task_names(&self, out: &mut Vec<String>) {
        match self {
            Selection::Task(name) => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            Selection::Group { members, .. } => members.iter().for_each(|m| m.task_names(out)),
        }
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
    tags: BTreeMap<String, Vec<String>>,
    /// Unknown-key warnings and files that failed to load during discovery.
    pub warnings: Vec<String>,
    /// Files that failed to load, by file stem: asking for that name gives
    /// the file's own error instead of "unknown task".
    broken: Vec<(String, TaskError)>,
}

/// One row of `podium tasks`.
#[derive(Debug, Clone)]
pub struct TaskListing {
    pub name: String,
    pub kind: &'static str,
    pub tags: Vec<String>,
    pub output_type: Option<&'static str>,
    pub num_fewshot: Option<usize>,
    pub file: PathBuf,
    pub n_members: usize,
}

impl Registry {
    /// Index every `*.yaml` / `*.yml` under `dirs`. A file that fails to load
    /// becomes a warning here and an error only if its task is asked for.
    pub fn discover(dirs: &[PathBuf]) -> Registry {
        let mut registry = Registry::default();
        for dir in dirs {
            let mut files = Vec::new();
            collect_yaml_files(dir, &mut files, &mut registry.warnings);
            files.sort();
            for file in files {
                if let Err(err) = registry.add_file(&file) {
                    let stem = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    registry.broken.push((stem, err));
                }
            }
        }
        registry
    }

    /// Add one task or group file; returns the name it defines.
    pub fn add_file(&mut self, path: &Path) -> Result<String, TaskError> {
        let node = config::load_merged(path, 0)?;
        self.add_node(node)
    }

    fn add_node(&mut self, node: Node) -> Result<String, TaskError> {
        let mut warnings = Vec::new();
        let name = if config::is_group(&node) {
            let group = config::group_from_node(&node, &mut warnings)?;
            let name = group.name.clone();
            self.entries.insert(name.clone(), Entry::Group(group));
            name
        } else {
            let task = config::task_from_node(&node, &mut warnings)?;
            let name = task.name.clone();
            for tag in &task.tags {
                let members = self.tags.entry(tag.clone()).or_default();
                if !members.contains(&name) {
                    members.push(name.clone());
                }
            }
            self.entries
                .insert(name.clone(), Entry::Task(Box::new(task), node));
            name
        };
        self.warnings.extend(warnings);
        Ok(name)
    }

    pub fn task_config(&self, name: &str) -> Option<&TaskConfig> {
        match self.entries.get(name)? {
            Entry::Task(config, _) => Some(config),
            Entry::Group(_) => None,
        }
    }

    /// Resolve names (tasks, tags, groups) or paths to YAML files.
    pub fn resolve(&mut self, requested: &[String]) -> Result<Vec<Selection>, TaskError> {
        let mut selections = Vec::new();
        for item in requested {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let path = Path::new(item);
            let name = if item.ends_with(".yaml") || item.ends_with(".yml") || path.is_file() {
                if !path.is_file() {
                    return Err(TaskError::file(path, "task file not found"));
                }
                self.add_file(path)?
            } else {
                item.to_string()
            };
            selections.push(self.select(&name, 0)?);
        }
        Ok(selections)
    }

    fn select(&mut self, name: &str, depth: usize) -> Result<Selection, TaskError> {
        if depth > 16 {
            return Err(TaskError::Task {
                task: name.to_string(),
                message: "groups nest deeper than 16 levels (a cycle?)".into(),
            });
        }
        match self.entries.get(name).cloned() {
            Some(Entry::Task(..)) => Ok(Selection::Task(name.to_string())),
            Some(Entry::Group(group)) => {
                let mut members = Vec::new();
                for member in &group.members {
                    match member {
                        GroupMember::Name(member_name, loc) => {
                            if self.entries.contains_key(member_name) {
                                members.push(self.select(member_name, depth + 1)?);
                            } else if let Some(tasks) = self.tags.get(member_name).cloned() {
                                members.extend(tasks.into_iter().map(Selection::Task));
                            } else {
                                return Err(TaskError::invalid(
                                    loc,
                                    "task",
                                    format!(
                                        "group `{}` names `{member_name}`, which is not a known task, tag or group",
                                        group.name
                                    ),
                                ));
                            }
                        }
                        GroupMember::Inline(node) => {
                            let member_name = self.add_inline(node)?;
                            members.push(self.select(&member_name, depth + 1)?);
                        }
                    }
                }
                Ok(Selection::Group {
                    name: name.to_string(),
                    members,
                    aggregate: group.aggregate.clone(),
                })
            }
            None => match self.tags.get(name) {
                // A tag selects its tasks without aggregating them.
                Some(tasks) => Ok(Selection::Group {
                    name: name.to_string(),
                    members: tasks.iter().cloned().map(Selection::Task).collect(),
                    aggregate: Vec::new(),
                }),
                None => match self.broken.iter().position(|(stem, _)| stem == name) {
                    Some(index) => Err(self.broken.remove(index).1),
                    None => Err(TaskError::UnknownTask {
                        name: name.to_string(),
                        suggestions: self.suggest(name),
                    }),
                },
            },
        }
    }

    /// An inline group member: a new task, or overrides of a known task's keys.
    fn add_inline(&mut self, node: &Node) -> Result<String, TaskError> {
        if config::is_group(node) {
            return self.add_node(node.clone());
        }
        let base_name = match node.get("task").map(|n| &n.value) {
            Some(Value::Str(s)) => s.clone(),
            _ => {
                return Err(TaskError::Yaml {
                    loc: node.loc.clone(),
                    message: "an inline group member needs `task`".into(),
                });
            }
        };
        let merged = match self.entries.get(&base_name) {
            Some(Entry::Task(_, base)) if node.get("dataset_path").is_none() => {
                let (Value::Map(mut entries), Value::Map(overrides)) =
                    (base.value.clone(), &node.value)
                else {
                    unreachable!("task nodes are mappings")
                };
                for (key, loc, value) in overrides {
                    match entries.iter_mut().find(|(k, _, _)| k == key) {
                        Some(slot) => *slot = (key.clone(), loc.clone(), value.clone()),
                        None => entries.push((key.clone(), loc.clone(), value.clone())),
                    }
                }
                Node {
                    value: Value::Map(entries),
                    loc: base.loc.clone(),
                    tag: None,
                }
            }
            _ => node.clone(),
        };
        self.add_node(merged)
    }

    fn suggest(&self, name: &str) -> Vec<String> {
        let mut candidates: Vec<(usize, &String)> = self
            .entries
            .keys()
            .chain(self.tags.keys())
            .map(|candidate| (edit_distance(name, candidate), candidate))
            .filter(|(d, c)| *d <= 2 || c.contains(name))
            .collect();
        candidates.sort();
        candidates
            .into_iter()
            .take(3)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Everything indexed, for `podium tasks`.
    pub fn listing(&self) -> Vec<TaskListing> {
        let mut rows: Vec<TaskListing> = self
            .entries
            .iter()
            .map(|(name, entry)| match entry {
                Entry::Task(config, _) => TaskListing {
                    name: name.clone(),
                    kind: "task",
                    tags: config.tags.clone(),
                    output_type: Some(config.output_type.as_str()),
                    num_fewshot: Some(config.num_fewshot),
                    file: config.file.clone(),
                    n_members: 1,
                },
                Entry::Group(group) => TaskListing {
                    name: name.clone(),
                    kind: "group",
                    tags: Vec::new(),
                    output_type: None,
                    num_fewshot: None,
                    file: group.file.clone(),
                    n_members: group.members.len(),
                },
            })
            .collect();
        for (tag, members) in &self.tags {
            if !self.entries.contains_key(tag) {
                rows.push(TaskListing {
                    name: tag.clone(),
                    kind: "tag",
                    tags: Vec::new(),
                    output_type: None,
                    num_fewshot: None,
                    file: PathBuf::new(),
                    n_members: members.len(),
                });
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    /// Files that failed to load during discovery, with their errors.
    pub fn broken_files(&self) -> impl Iterator<Item = &TaskError> {
        self.broken.iter().map(|(_, err)| err)
    }

    pub fn tag_members(&self, tag: &str) -> Option<&[String]> {
        self.tags.get(tag).map(Vec::as_slice)
    }
}

/// Every YAML file under `dir`; a folder that cannot be read is a warning, not silence.
fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>, warnings: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            warnings.push(format!("cannot read task folder {}: {err}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                warnings.push(format!("cannot list task folder {}: {err}", dir.display()));
                continue;
            }
        };
        let path = entry.path();
        if path.is_dir() {
            collect_yaml_files(&path, out, warnings);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(path);
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
