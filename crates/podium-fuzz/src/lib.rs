//! Fuzz harnesses. Each target is a function `fn(&[u8])` that feeds arbitrary bytes to
//! one parser or decoder of Podium's and panics only on a bug: an error is a correct
//! answer to bad input, a panic, an abort or a hang is not.
//!
//! The same functions run in two places:
//! - `fuzz/fuzz_targets/<name>.rs`, the cargo-fuzz (libFuzzer) targets, for long runs
//!   (`scripts/fuzz NAME SECONDS`; nightly toolchain);
//! - `tests/replay.rs`, which replays every file of `fuzz/corpus/<name>/` and
//!   `fuzz/regressions/<name>/` on the stable toolchain, in the normal test suite.
//!
//! Each area adds its targets to its own module's `TARGETS`.

pub mod arena;
pub mod backends;
pub mod local;
pub mod server;
pub mod spec;
pub mod tasks;

/// A fuzz target: its name (the folder names under `fuzz/corpus/` and
/// `fuzz/regressions/`, and the cargo-fuzz target's name) and its harness.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target of every area.
pub fn targets() -> Vec<&'static Target> {
    [
        arena::TARGETS,
        backends::TARGETS,
        local::TARGETS,
        server::TARGETS,
        spec::TARGETS,
        tasks::TARGETS,
    ]
    .into_iter()
    .flatten()
    .collect()
}
