//! A model file's chat template renders in a child process with a memory limit
//! (`podium_tokenizer::sandbox`): a template that asks for gigabytes fails that one
//! request with an error that says so, and `serve-model` itself stays small and up.

mod common;

use common::{post, request, serve_model};

/// Doubles a string forty times (a terabyte) in a few hundred units of minijinja's
/// fuel, which bounds instructions, not memory.
const HOSTILE_TEMPLATE: &str = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";

const CHAT: &str = r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":1}"#;

fn model_file(dir: &std::path::Path, template: &str) -> String {
    let path = dir.join("model.gguf");
    let bytes =
        podium_local::fuzzing::tiny_gguf_with_chat_template("llama", "llama", template).unwrap();
    std::fs::write(&path, bytes).unwrap();
    format!("gguf:{}", path.display())
}

/// The most resident memory the process ever had (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_template_that_exhausts_memory_fails_its_request_and_the_server_stays_up() {
    let work = tempfile::tempdir().unwrap();
    let spec = model_file(work.path(), HOSTILE_TEMPLATE);
    let server = serve_model(&spec, &["--threads", "1"]);
    // Twice: the second request starts a new sandbox process after the first died.
    for _ in 0..2 {
        let (status, body) = post(&server.addr, "/v1/chat/completions", CHAT);
        assert!((400..600).contains(&status), "{status}: {body}");
        assert!(
            body.contains("needed more than the 512 MiB of memory a chat template may use")
                && body.contains("PODIUM_CHAT_TEMPLATE_MEMORY_MB"),
            "{body}"
        );
    }
    let (status, body) = request(&server.addr, "GET", "/v1/models", "");
    assert_eq!(status, 200, "{body}");
    // The server never held the template's strings: a tiny model and its buffers.
    let peak = peak_rss(server.child.id());
    assert!(peak < 256 << 20, "serve-model's peak RSS {peak} bytes");
}

#[test]
fn a_normal_template_renders_under_a_small_limit_and_a_bad_limit_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let spec = model_file(
        work.path(),
        "{% for m in messages %}<s>{{ m['content'] }}{% endfor %}",
    );
    let mut server = serve_model_with_env(&spec, "64");
    // The tiny model's vocabulary spells only `a` and `b`.
    let chat = r#"{"messages":[{"role":"user","content":"ab"}],"max_tokens":1,"logprobs":false}"#;
    let (status, body) = post(&server.addr, "/v1/chat/completions", chat);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"prompt_tokens\":"), "{body}");
    // It rendered in the sandbox: serve-model now has a child running
    // `podium __render-chat-templates 67108864`.
    let children = children_of(server.child.id());
    assert!(
        children
            .iter()
            .any(|c| c.contains("__render-chat-templates\x0067108864")),
        "{children:?}"
    );
    let _ = server.child.kill();

    let out = common::podium()
        .env("PODIUM_CHAT_TEMPLATE_MEMORY_MB", "lots")
        .args(["tokenize", "--text", "hi"])
        .arg(&spec)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("PODIUM_CHAT_TEMPLATE_MEMORY_MB=\"lots\": expected a whole number of MiB"),
        "{stderr}"
    );
}

/// The command lines (`/proc/PID/cmdline`, NUL-separated) of `pid`'s children.
fn children_of(pid: u32) -> Vec<String> {
    let mut lines = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace() {
            if let Ok(cmdline) = std::fs::read_to_string(format!("/proc/{child}/cmdline")) {
                lines.push(cmdline);
            }
        }
    }
    lines
}

/// `serve-model` with `PODIUM_CHAT_TEMPLATE_MEMORY_MB=limit_mb`.
fn serve_model_with_env(spec: &str, limit_mb: &str) -> common::ServeModel {
    common::serve_model_env(
        spec,
        &["--threads", "1"],
        &[("PODIUM_CHAT_TEMPLATE_MEMORY_MB", limit_mb)],
    )
}

#[test]
fn an_eval_whose_template_exhausts_memory_reports_it_and_keeps_nothing_wrong() {
    let work = tempfile::tempdir().unwrap();
    let spec = model_file(work.path(), HOSTILE_TEMPLATE);
    let data = work.path().join("mine.csv");
    std::fs::write(&data, "question,answer\nab,a\nba,b\n").unwrap();
    let out = common::podium()
        .args(["eval", "-m", &spec, "-t"])
        .arg(&data)
        .args(["--apply-chat-template", "--threads", "1", "--db"])
        .arg(work.path().join("podium.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("chat template failed on doc 0")
            && stderr.contains("needed more than the 512 MiB of memory"),
        "{stderr}"
    );
}
