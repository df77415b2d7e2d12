//! Rendering chat templates in a child process whose memory is limited.
//!
//! A chat template comes from the model file, so it may be hostile. minijinja's fuel
//! bounds the instructions a rendering runs, not the memory it takes: one `~` costs the
//! same fuel whether it joins two bytes or two gigabytes, so a template that doubles a
//! string thirty times fits in a few hundred units of fuel and asks for gigabytes
//! (measurements in `docs/FUZZING.md`). No setting of minijinja bounds that, so a
//! program that [`install`]s the sandbox (`podium` does, first thing in `main`) renders
//! every chat template in a child process: the same executable, started with
//! [`SANDBOX_ARG`], which limits its own data segment (`RLIMIT_DATA`: heap and private
//! mappings) before it reads anything. A template that needs more memory than the limit
//! kills only the child, and the rendering fails with an error that says so; one that
//! runs past the time limit is killed. The next rendering starts a new child.
//!
//! The child lives as long as the parent uses it: it renders one request after another
//! (one JSON line in, one JSON line out, the last few compiled templates cached) and
//! exits when its standard input closes, which is when the parent exits. Renderings
//! through one sandbox take turns; a normal one takes well under a millisecond.

use crate::chat_template::{ChatTemplate, ChatTemplateError};
use podium_core::ChatMessage;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The first argument that makes the executable serve as the sandbox ([`serve`]).
pub const SANDBOX_ARG: &str = "__render-chat-templates";

/// The environment variable that sets the sandbox's memory limit, in MiB.
pub const MEMORY_ENV: &str = "PODIUM_CHAT_TEMPLATE_MEMORY_MB";

/// The default memory limit of the sandbox: real chat templates need a few MB.
pub const DEFAULT_MEMORY_MB: u64 = 512;

/// How long one rendering may take before the sandbox is killed. Fuel (10^7
/// instructions) ends a long rendering first on any machine; this catches the rest.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The longest reply line the parent reads: a rendered prompt (at most
/// [`crate::chat_template::MAX_RENDERED_BYTES`]) escaped as JSON, which at most
/// sextuples it (`\u0001`).
const MAX_REPLY_BYTES: u64 = 6 * crate::chat_template::MAX_RENDERED_BYTES as u64 + 1024;

/// How much of the child's standard error is kept for the error message.
const STDERR_TAIL_BYTES: usize = 4096;

/// How many compiled templates the child keeps (one per model, usually).
const CACHED_TEMPLATES: usize = 4;

/// Where the sandbox's executable is and what it may use.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The executable to start with [`SANDBOX_ARG`]; its `main` must call [`serve`].
    pub program: PathBuf,
    /// The limit of the child's data segment, in bytes.
    pub memory_limit_bytes: u64,
    /// How long one rendering may take.
    pub timeout: Duration,
}

impl SandboxSettings {
    /// `program` with the memory limit from [`MEMORY_ENV`] (default
    /// [`DEFAULT_MEMORY_MB`]) and [`TIMEOUT`]; an error names the variable and its value.
    pub fn from_env(program: PathBuf) -> Result<SandboxSettings, ChatTemplateError> {
        let value = std::env::var(MEMORY_ENV).ok();
        Ok(SandboxSettings {
            program,
            memory_limit_bytes: memory_limit_bytes(value.as_deref())?,
            timeout: TIMEOUT,
        })
    }
}

/// The memory limit [`MEMORY_ENV`]'s `value` sets, in bytes.
fn memory_limit_bytes(value: Option<&str>) -> Result<u64, ChatTemplateError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MEMORY_MB << 20);
    };
    match value.trim().parse::<u64>() {
        Ok(mb) if (64..=1 << 20).contains(&mb) => Ok(mb << 20),
        _ => Err(ChatTemplateError::MemoryLimit(value.to_owned())),
    }
}

static SANDBOX: OnceLock<Sandbox> = OnceLock::new();

/// Makes every later [`ChatTemplate::render`] in this process run in the sandbox
/// `settings` describe. The child starts at the first rendering. Returns `false`, and
/// changes nothing, when a sandbox is already installed.
pub fn install(settings: SandboxSettings) -> bool {
    SANDBOX
        .set(Sandbox {
            settings,
            child: Mutex::new(None),
        })
        .is_ok()
}

/// The installed sandbox, if any.
pub(crate) fn installed() -> Option<&'static Sandbox> {
    SANDBOX.get()
}

/// What the parent sends for one rendering.
#[derive(Serialize, Deserialize)]
struct RenderRequest<'a> {
    #[serde(borrow)]
    source: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    bos_token: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    eos_token: std::borrow::Cow<'a, str>,
    messages: Vec<ChatMessage>,
    add_generation_prompt: bool,
}

/// What the child answers.
#[derive(Serialize, Deserialize)]
enum RenderReply {
    Rendered(String),
    /// The error's message, as the parent would have printed it.
    Failed(String),
}

/// The parent's side: one child at a time, started when needed.
pub(crate) struct Sandbox {
    settings: SandboxSettings,
    child: Mutex<Option<Running>>,
}

struct Running {
    process: Child,
    stdin: ChildStdin,
    replies: Receiver<Result<String, String>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Renders in the child, starting one if none runs.
    pub(crate) fn render(
        &self,
        template: &ChatTemplate,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let mut request = serde_json::to_vec(&RenderRequest {
            source: template.source().into(),
            bos_token: template.bos_token().into(),
            eos_token: template.eos_token().into(),
            messages: messages.to_vec(),
            add_generation_prompt,
        })
        .map_err(|e| ChatTemplateError::Sandbox(format!("cannot encode the request: {e}")))?;
        request.push(b'\n');

        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(self.start()?);
        }
        let Some(running) = slot.as_mut() else {
            return Err(ChatTemplateError::Sandbox("no sandbox process".into()));
        };
        let sent = running
            .stdin
            .write_all(&request)
            .and_then(|()| running.stdin.flush());
        let stop = match sent {
            Err(_) => Stop::Died,
            Ok(()) => match running.replies.recv_timeout(self.settings.timeout) {
                Ok(Ok(line)) => match serde_json::from_str::<RenderReply>(&line) {
                    Ok(RenderReply::Rendered(text)) => return Ok(text),
                    Ok(RenderReply::Failed(message)) => {
                        return Err(ChatTemplateError::Sandboxed(message));
                    }
                    Err(e) => Stop::Garbled(format!("an unreadable reply ({e})")),
                },
                Ok(Err(why)) => Stop::Garbled(why),
                Err(RecvTimeoutError::Timeout) => Stop::Timeout,
                Err(RecvTimeoutError::Disconnected) => Stop::Died,
            },
        };
        // The child is of no further use: it died, hung or spoke nonsense.
        let Some(running) = slot.take() else {
            return Err(ChatTemplateError::Sandbox("no sandbox process".into()));
        };
        Err(self.stopped(running, stop))
    }

    fn start(&self) -> Result<Running, ChatTemplateError> {
        let mut process = Command::new(&self.settings.program)
            .arg(SANDBOX_ARG)
            .arg(self.settings.memory_limit_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ChatTemplateError::Sandbox(format!(
                    "cannot start {} {SANDBOX_ARG}: {e}",
                    self.settings.program.display()
                ))
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) else {
            let _ = process.kill();
            let _ = process.wait();
            return Err(ChatTemplateError::Sandbox(
                "the sandbox process has no pipes".into(),
            ));
        };
        let (sender, replies) = mpsc::channel();
        std::thread::Builder::new()
            .name("chat-template-replies".into())
            .spawn(move || read_replies(stdout, sender))
            .map_err(|e| ChatTemplateError::Sandbox(format!("cannot start a thread: {e}")))?;
        let tail = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&tail);
        let stderr_reader = std::thread::Builder::new()
            .name("chat-template-stderr".into())
            .spawn(move || keep_tail(stderr, &kept))
            .ok();
        Ok(Running {
            process,
            stdin,
            replies,
            stderr: tail,
            stderr_reader,
        })
    }

    /// Ends `running` and says why the rendering failed.
    fn stopped(&self, mut running: Running, stop: Stop) -> ChatTemplateError {
        // A child that died is only reaped by this; one that hangs or garbles is ended.
        let _ = running.process.kill();
        let status = running.process.wait();
        drop(running.stdin);
        if let Some(reader) = running.stderr_reader.take() {
            let _ = reader.join();
        }
        let stderr = {
            let tail = running.stderr.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&tail).trim().to_owned()
        };
        let limit_mb = self.settings.memory_limit_bytes >> 20;
        match stop {
            Stop::Timeout => ChatTemplateError::Limit(format!(
                "rendering took longer than {} s and was stopped",
                self.settings.timeout.as_secs()
            )),
            Stop::Garbled(what) => ChatTemplateError::Sandbox(format!(
                "the sandbox process sent {what} and was stopped"
            )),
            Stop::Died if stderr.contains("memory allocation of") => {
                ChatTemplateError::Limit(format!(
                    "rendering needed more than the {limit_mb} MiB of memory a chat template may use \
                     (set {MEMORY_ENV} to change the limit)"
                ))
            }
            Stop::Died => {
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("status unknown: {e}"),
                };
                let said = if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                };
                ChatTemplateError::Sandbox(format!(
                    "the sandbox process rendering the chat template stopped ({status}){said}"
                ))
            }
        }
    }
}

/// Why a child was given up.
enum Stop {
    Died,
    Timeout,
    Garbled(String),
}

/// Sends each line the child writes, until it closes its output or a line is too long.
fn read_replies(stdout: impl Read, sender: mpsc::Sender<Result<String, String>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = Vec::new();
        match (&mut reader)
            .take(MAX_REPLY_BYTES + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(n) if n as u64 > MAX_REPLY_BYTES => {
                let _ = sender.send(Err(format!("a reply over {MAX_REPLY_BYTES} bytes")));
                return;
            }
            Ok(_) => {
                let reply = String::from_utf8(line).map_err(|_| "a reply that is not UTF-8".into());
                if sender.send(reply).is_err() {
                    return;
                }
            }
        }
    }
}

/// Keeps the last [`STDERR_TAIL_BYTES`] the child writes to its standard error.
fn keep_tail(mut stderr: impl Read, tail: &Mutex<Vec<u8>>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buffer) {
        let Some(read) = buffer.get(..n).filter(|read| !read.is_empty()) else {
            return;
        };
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.extend_from_slice(read);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }
}

/// The child's side: limits its own memory to `args[0]` bytes, then renders the
/// requests on standard input until it closes. `args` are the arguments after
/// [`SANDBOX_ARG`].
pub fn serve(args: &[std::ffi::OsString]) -> ExitCode {
    let limit = args
        .first()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse::<u64>().ok());
    let Some(limit) = limit else {
        eprintln!("usage: {SANDBOX_ARG} MEMORY_LIMIT_BYTES (started by podium, not by hand)");
        return ExitCode::from(2);
    };
    if let Err(e) = limit_memory(limit) {
        eprintln!("{SANDBOX_ARG}: cannot limit memory to {limit} bytes: {e}");
        return ExitCode::from(1);
    }
    match serve_requests(std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{SANDBOX_ARG}: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(unix)]
fn limit_memory(bytes: u64) -> nix::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    // No core file of a process that ran out of memory on purpose.
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    setrlimit(Resource::RLIMIT_DATA, bytes, bytes)
}

#[cfg(not(unix))]
fn limit_memory(_bytes: u64) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "memory limits need a Unix system; unset the sandbox",
    ))
}

/// One request per line in, one reply per line out, until `input` ends.
fn serve_requests(mut input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    // Compiled templates, the newest last, keyed by (source, bos, eos).
    let mut cache: Vec<((String, String, String), ChatTemplate)> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let reply = match serde_json::from_slice::<RenderRequest>(&line) {
            Err(e) => RenderReply::Failed(format!("unreadable request: {e}")),
            Ok(request) => {
                let key = (
                    request.source.into_owned(),
                    request.bos_token.into_owned(),
                    request.eos_token.into_owned(),
                );
                let index = match cache.iter().position(|(k, _)| *k == key) {
                    Some(index) => Ok(index),
                    None => ChatTemplate::new(&key.0, &key.1, &key.2).map(|template| {
                        if cache.len() == CACHED_TEMPLATES {
                            cache.remove(0);
                        }
                        cache.push((key, template));
                        cache.len() - 1
                    }),
                };
                let rendered = index.and_then(|index| match cache.get(index) {
                    Some((_, template)) => {
                        template.render_in_process(&request.messages, request.add_generation_prompt)
                    }
                    None => Err(ChatTemplateError::Sandbox("template cache".into())),
                });
                match rendered {
                    Ok(text) => RenderReply::Rendered(text),
                    Err(e) => RenderReply::Failed(e.to_string()),
                }
            }
        };
        serde_json::to_writer(&mut output, &reply)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(source: &str, content: &str) -> String {
        let mut line = serde_json::to_string(&RenderRequest {
            source: source.into(),
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
            messages: vec![ChatMessage {
                role: "user".into(),
                content: content.into(),
            }],
            add_generation_prompt: true,
        })
        .unwrap();
        line.push('\n');
        line
    }

    fn replies(input: &str) -> Vec<RenderReply> {
        let mut output = Vec::new();
        serve_requests(input.as_bytes(), &mut output).unwrap();
        String::from_utf8(output)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn the_child_renders_each_request_and_reports_errors_as_replies() {
        let good = "{{ bos_token }}{% for m in messages %}{{ m.content }}\n{% endfor %}";
        let input = [
            request(good, "hi"),
            "not json\n".to_owned(),
            request("{{ raise_exception('no') }}", "x"),
            request(good, "line one\nline two \u{1}"),
        ]
        .concat();
        let replies = replies(&input);
        assert_eq!(replies.len(), 4);
        assert!(matches!(&replies[0], RenderReply::Rendered(t) if t == "<s>hi\n"));
        assert!(matches!(&replies[1], RenderReply::Failed(e) if e.contains("unreadable request")));
        assert!(matches!(&replies[2], RenderReply::Failed(e) if e.contains("no")));
        assert!(
            matches!(&replies[3], RenderReply::Rendered(t) if t == "<s>line one\nline two \u{1}\n")
        );
    }

    #[test]
    fn the_memory_limit_is_the_default_or_a_checked_number_of_mib() {
        assert_eq!(memory_limit_bytes(None).unwrap(), 512 << 20);
        assert_eq!(memory_limit_bytes(Some(" 100 ")).unwrap(), 100 << 20);
        for bad in ["", "63", "lots", "-1", "1048577"] {
            let error = memory_limit_bytes(Some(bad)).unwrap_err().to_string();
            assert!(error.contains(MEMORY_ENV), "{error}");
        }
    }
}
