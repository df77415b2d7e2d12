//! What the `podium` binary's test files share: the binary, run hermetically.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// `podium` with no environment that could point it at a user's files or send
/// its requests elsewhere: no database, tasks folder, catalogue or data home from
/// the environment, no proxy, and no stdin.
pub(crate) fn podium() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .env_remove("PODIUM_DB")
        .env_remove("PODIUM_TASKS_DIR")
        .env_remove("PODIUM_CATALOG")
        .env_remove("XDG_DATA_HOME")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null());
    for proxy in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(proxy);
    }
    command
}

/// Runs `command`, fails the test with its stderr unless it succeeds, and
/// returns its stdout.
pub(crate) fn run_ok(command: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("podium runs");
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(status.success(), "{command:?} failed:\n{stderr}");
    String::from_utf8(stdout).expect("podium's output is UTF-8")
}
