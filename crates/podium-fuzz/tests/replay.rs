//! Replays every stored fuzz input (the minimized corpora in `fuzz/corpus/<target>/` and
//! the inputs that once crashed, in `fuzz/regressions/<target>/`) through its harness:
//! a crash found once stays fixed, and a change that breaks a parser on a known input
//! fails here, on the stable toolchain, without a fuzzer.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    // The run-time CARGO_MANIFEST_DIR first: cargo may reuse a test binary built in
    // another checkout that shares the target folder.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_stored_input_runs_without_a_crash() {
    let fuzz = fuzz_dir();
    let targets = podium_fuzz::targets();
    let mut names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), targets.len(), "two targets share a name");
    for target in &targets {
        let cargo_fuzz_target = fuzz
            .join("fuzz_targets")
            .join(format!("{}.rs", target.name));
        assert!(
            cargo_fuzz_target.is_file(),
            "{} has no cargo-fuzz target at {}",
            target.name,
            cargo_fuzz_target.display()
        );
        for kind in ["corpus", "regressions"] {
            for path in inputs(&fuzz.join(kind).join(target.name)) {
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(
                    outcome.is_ok(),
                    "{} crashed on {}",
                    target.name,
                    path.display()
                );
            }
        }
    }
    // Every folder of stored inputs belongs to a target (a renamed target keeps its inputs).
    for kind in ["corpus", "regressions"] {
        for entry in std::fs::read_dir(fuzz.join(kind))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                assert!(
                    names.contains(&name.as_str()),
                    "fuzz/{kind}/{name} belongs to no target"
                );
            }
        }
    }
}
