//! What the `podium` binary's test files share: the binary, run hermetically.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

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

/// A `podium serve-model` process, killed when dropped.
pub(crate) struct ServeModel {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Drop for ServeModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `podium serve-model SPEC EXTRA…` on a free port and waits for its
/// "serving … on http://ADDR/v1" line.
pub(crate) fn serve_model(spec: &str, extra: &[&str]) -> ServeModel {
    serve_model_env(spec, extra, &[])
}

/// [`serve_model`] with environment variables `env` set.
pub(crate) fn serve_model_env(spec: &str, extra: &[&str], env: &[(&str, &str)]) -> ServeModel {
    let mut child = podium()
        .envs(env.iter().copied())
        .arg("serve-model")
        .arg(spec)
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .expect("podium starts");
    // Its standard error is not read further (closed here), as before.
    let (addr, _) = startup_address(&mut child);
    ServeModel { child, addr }
}

/// The address in the first line `child` writes to its piped standard error ("serving
/// `NAME` on http://ADDR/v1 …", "the board of DB is at http://ADDR/ …"), and that
/// standard error, to keep open or drop.
pub(crate) fn startup_address(child: &mut Child) -> (String, BufReader<ChildStderr>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a startup line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (addr, stderr)
}

/// A minimal HTTP/1.1 POST; returns (status, body).
pub(crate) fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    request(addr, "POST", path, body)
}

/// A minimal HTTP/1.1 request; returns (status, body).
pub(crate) fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // A server may answer (413) and close before reading all of a large body: a
    // failed write or a reset after the answer is not an error here.
    let _ = write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let response = String::from_utf8_lossy(&bytes).into_owned();
    assert!(
        response.len() >= 12,
        "no answer to {method} {path}: {response:?}"
    );
    let status: u16 = response[9..12].parse().expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
