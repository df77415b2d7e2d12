//! ARCHITECTURE.md's dependency rules, checked against the crate graph that
//! `cargo metadata` reports: a change that breaks one fails here with the
//! rule it broke.

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate's layer: a crate may depend (normally, not as a
/// dev-dependency) only on crates of lower layers. Keep in step with the
/// "Dependencies" invariant of ARCHITECTURE.md.
const LAYERS: &[(&str, u32)] = &[
    ("podium-core", 0),
    ("podium-stats", 0),
    ("podium-store", 0),
    ("podium-tokenizer", 1),
    ("podium-tasks", 1),
    ("podium-arena", 1),
    ("podium-models", 1),
    ("podium-local", 2),
    ("podium-backends", 3),
    ("podium-eval", 4),
    ("podium-bench", 4),
    ("podium-server", 4),
    ("podium-board", 4),
    ("podium-web", 5),
    ("podium-testkit", 5),
    ("podium-fuzz", 6),
    ("podium-cli", 6),
];

/// Crates that must never depend on these (directly or through others).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "podium-core",
        &["podium-store", "podium-backends", "podium-local"],
        "core, stats and tasks do no network IO and know nothing of storage",
    ),
    (
        "podium-stats",
        &["podium-store", "podium-backends", "podium-local"],
        "core, stats and tasks do no network IO and know nothing of storage",
    ),
    (
        "podium-tasks",
        &["podium-store", "podium-backends", "podium-local"],
        "core, stats and tasks do no network IO and know nothing of storage",
    ),
    (
        "podium-arena",
        &["podium-store", "podium-backends", "podium-local"],
        "the arena's ratings are pure: battles in, ratings out",
    ),
    (
        "podium-board",
        &["podium-backends", "podium-local"],
        "the board is computed from the store alone, without a model engine",
    ),
    (
        "podium-web",
        &["podium-backends", "podium-local"],
        "the web board serves the store, without a model engine",
    ),
];

fn graph() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|name| name.starts_with("podium-"))
                .map(String::from)
                .collect();
            (package["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn dependencies_point_one_way() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let graph = graph();
    let mut broken = Vec::new();
    for (name, deps) in &graph {
        let Some(&layer) = layers.get(name.as_str()) else {
            broken.push(format!(
                "{name} has no layer: add it to ARCHITECTURE.md and to LAYERS here"
            ));
            continue;
        };
        for dep in deps {
            let dep_layer = layers.get(dep.as_str()).copied().unwrap_or(u32::MAX);
            if dep_layer >= layer {
                broken.push(format!(
                    "{name} (layer {layer}) depends on {dep} (layer {dep_layer})"
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn forbidden_dependencies_are_absent_even_indirectly() {
    let graph = graph();
    for (name, forbidden, rule) in FORBIDDEN {
        if !graph.contains_key(*name) {
            continue;
        }
        // Everything `name` reaches.
        let mut reached = vec![name.to_string()];
        let mut i = 0;
        while i < reached.len() {
            for dep in graph.get(&reached[i]).into_iter().flatten() {
                if !reached.contains(dep) {
                    reached.push(dep.clone());
                }
            }
            i += 1;
        }
        for bad in *forbidden {
            assert!(
                !reached.iter().any(|r| r == bad),
                "{name} reaches {bad}: {rule}"
            );
        }
    }
}
