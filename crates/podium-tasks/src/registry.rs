//! Finds task YAMLs in folders, indexes tasks, tags and groups by name, and
//! resolves what a user asks for (`-t hellaswag,mmlu,my_task.yaml`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::config::{self, AggregateSpec, GroupConfig, GroupMember, TaskConfig};
use crate::error::TaskError;
use crate::yaml::{Node, Value};

/// The most tasks and groups one selection may expand to, counting every
/// appearance (a group listed twice counts twice). Groups of groups multiply:
/// 16 levels of a group listing the next one 10 times would otherwise build
/// 10^16 entries.
pub const MAX_SELECTED_MEMBERS: usize = 100_000;

/// How deep discovery descends into a tasks folder.
pub const MAX_FOLDER_DEPTH: usize = 32;

#[derive(Debug, Clone)]
enum Entry {
    Task(Box<TaskConfig>, Node),
    Group(GroupConfig),
}

impl Entry {
    fn file(&self) -> &Path {
        match self {
            Entry::Task(config, _) => &config.file,
            Entry::Group(group) => &group.file,
        }
    }
}

/// What adding a definition does to an existing one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnDuplicate {
    /// Another file defining the name is an error naming both files.
    Reject,
    /// An inline group member overrides the task it names.
    Replace,
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
    /// Names that two or more discovered files define, with those files:
    /// asking for one is an error naming them all.
    duplicates: BTreeMap<String, Vec<PathBuf>>,
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
    /// becomes a warning here and an error only if its task is asked for; so
    /// does a name that two files define.
    pub fn discover(dirs: &[PathBuf]) -> Registry {
        let mut registry = Registry::default();
        let mut visited = HashSet::new();
        for dir in dirs {
            let mut files = Vec::new();
            collect_yaml_files(dir, 0, &mut visited, &mut files, &mut registry.warnings);
            files.sort();
            for file in files {
                if let Err(err) = registry.add_file(&file) {
                    if let TaskError::DuplicateName { name, files } = &err {
                        registry.warnings.push(err.to_string());
                        registry
                            .duplicates
                            .entry(name.clone())
                            .or_default()
                            .extend(files.iter().cloned());
                        continue;
                    }
                    let stem = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    registry.broken.push((stem, err));
                }
            }
        }
        for files in registry.duplicates.values_mut() {
            files.dedup();
        }
        registry
    }

    /// Add one task or group file; returns the name it defines. A name that
    /// another file already defines is an error naming both files.
    pub fn add_file(&mut self, path: &Path) -> Result<String, TaskError> {
        let node = config::load_merged(path, 0)?;
        self.add_node(node, OnDuplicate::Reject)
    }

    /// Add a task given as YAML text, as if read from `path` (which need not
    /// exist); returns its name.
    pub fn add_text(&mut self, text: &str, path: &Path) -> Result<String, TaskError> {
        let node = config::load_text(text, path)?;
        self.add_node(node, OnDuplicate::Reject)
    }

    fn add_node(&mut self, node: Node, on_duplicate: OnDuplicate) -> Result<String, TaskError> {
        let mut warnings = Vec::new();
        let entry = if config::is_group(&node) {
            Entry::Group(config::group_from_node(&node, &mut warnings)?)
        } else {
            Entry::Task(
                Box::new(config::task_from_node(&node, &mut warnings)?),
                node,
            )
        };
        let name = match &entry {
            Entry::Task(task, _) => task.name.clone(),
            Entry::Group(group) => group.name.clone(),
        };
        if on_duplicate == OnDuplicate::Reject
            && let Some(existing) = self.entries.get(&name)
            && !same_file(existing.file(), entry.file())
        {
            return Err(TaskError::DuplicateName {
                name,
                files: vec![existing.file().to_path_buf(), entry.file().to_path_buf()],
            });
        }
        if let Entry::Task(task, _) = &entry {
            for tag in &task.tags {
                let members = self.tags.entry(tag.clone()).or_default();
                if !members.contains(&name) {
                    members.push(name.clone());
                }
            }
        }
        self.entries.insert(name.clone(), entry);
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
            let mut budget = MAX_SELECTED_MEMBERS;
            selections.push(self.select(&name, 0, &mut budget)?);
        }
        Ok(selections)
    }

    /// `budget` is how many more tasks and groups the selection may expand to.
    fn select(
        &mut self,
        name: &str,
        depth: usize,
        budget: &mut usize,
    ) -> Result<Selection, TaskError> {
        if depth > 16 {
            return Err(TaskError::Task {
                task: name.to_string(),
                message: "groups nest deeper than 16 levels (a cycle?)".into(),
            });
        }
        if let Some(files) = self.duplicates.get(name) {
            return Err(TaskError::DuplicateName {
                name: name.to_string(),
                files: files.clone(),
            });
        }
        spend(budget, 1, name)?;
        match self.entries.get(name).cloned() {
            Some(Entry::Task(..)) => Ok(Selection::Task(name.to_string())),
            Some(Entry::Group(group)) => {
                let mut members = Vec::new();
                for member in &group.members {
                    match member {
                        GroupMember::Name(member_name, loc) => {
                            if self.entries.contains_key(member_name)
                                || self.duplicates.contains_key(member_name)
                            {
                                members.push(self.select(member_name, depth + 1, budget)?);
                            } else if let Some(tasks) = self.tags.get(member_name).cloned() {
                                spend(budget, tasks.len(), name)?;
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
                            members.push(self.select(&member_name, depth + 1, budget)?);
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
            return self.add_node(node.clone(), OnDuplicate::Replace);
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
        self.add_node(merged, OnDuplicate::Replace)
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

/// Take `n` from a selection's budget of members; `name` is the group at fault.
fn spend(budget: &mut usize, n: usize, name: &str) -> Result<(), TaskError> {
    *budget = budget.checked_sub(n).ok_or_else(|| TaskError::Task {
        task: name.to_string(),
        message: format!(
            "the selection expands to more than {MAX_SELECTED_MEMBERS} tasks and groups (groups listing groups many times?)"
        ),
    })?;
    Ok(())
}

/// Whether two paths name the same file (after resolving links).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Every YAML file under `dir`; a folder that cannot be read is a warning, not
/// silence. Folders are visited once each by their canonical path, so a
/// symbolic link back up the tree ends instead of looping for ever.
fn collect_yaml_files(
    dir: &Path,
    depth: usize,
    visited: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
    warnings: &mut Vec<String>,
) {
    let canonical = match dir.canonicalize() {
        Ok(canonical) => canonical,
        Err(err) => {
            warnings.push(format!("cannot read task folder {}: {err}", dir.display()));
            return;
        }
    };
    if !visited.insert(canonical) {
        // Reached again through a link: already indexed.
        return;
    }
    if depth > MAX_FOLDER_DEPTH {
        warnings.push(format!(
            "task folder {} is nested deeper than {MAX_FOLDER_DEPTH} folders: skipped",
            dir.display()
        ));
        return;
    }
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
            collect_yaml_files(&path, depth + 1, visited, out, warnings);
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
