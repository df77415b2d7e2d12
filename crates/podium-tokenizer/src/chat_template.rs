//! Rendering a model's chat template (`tokenizer.chat_template`, a Jinja
//! template written for Hugging Face `transformers`) into a prompt string, with
//! the same environment settings and helpers `transformers` provides.

use candle_core::quantized::gguf_file::{Content, Value};
use minijinja::{Environment, ErrorKind, context};
use podium_core::ChatMessage;

/// Why a chat template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    #[error("chat template does not compile: {0:#}")]
    Syntax(#[source] minijinja::Error),
    #[error("chat template failed to render: {0:#}")]
    Render(#[source] minijinja::Error),
    /// A rendering error reported by the sandbox process, as it printed it.
    #[error("{0}")]
    Sandboxed(String),
    /// The rendering ran into a limit: memory, time or the rendered prompt's size.
    #[error("chat template failed to render: {0}")]
    Limit(String),
    /// `PODIUM_CHAT_TEMPLATE_MEMORY_MB` holds this, not a number of MiB in range.
    #[error(
        "PODIUM_CHAT_TEMPLATE_MEMORY_MB={0:?}: expected a whole number of MiB from 64 to 1048576"
    )]
    MemoryLimit(String),
    /// The sandbox process could not be used.
    #[error("chat template could not be rendered: {0}")]
    Sandbox(String),
}

/// A compiled chat template and the BOS / EOS texts it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

const TEMPLATE_NAME: &str = "chat_template";

/// The most template instructions one rendering may run (minijinja's fuel): real chat
/// templates use a few hundred per message.
pub(crate) const CHAT_TEMPLATE_FUEL: u64 = 10_000_000;

/// The longest prompt a rendering may produce: far above any model's context (a
/// million tokens are about 4 MB of text).
pub(crate) const MAX_RENDERED_BYTES: usize = 64 << 20;

impl ChatTemplate {
    /// The template stored in a GGUF file, or `None` when it has none (base
    /// models such as Gemma 3 270M).
    pub fn from_gguf(content: &Content) -> Result<Option<ChatTemplate>, ChatTemplateError> {
        let md = &content.metadata;
        let Some(Value::String(source)) = md.get("tokenizer.chat_template") else {
            return Ok(None);
        };
        let token_text = |key: &str| -> String {
            let id = md.get(key).and_then(|v| v.to_u32().ok());
            let tokens = md
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok());
            match (id, tokens) {
                (Some(id), Some(tokens)) => tokens
                    .get(id as usize)
                    .and_then(|t| t.to_string().ok())
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            }
        };
        let bos = token_text("tokenizer.ggml.bos_token_id");
        let eos = token_text("tokenizer.ggml.eos_token_id");
        ChatTemplate::new(source, &bos, &eos).map(Some)
    }

    /// Compiles `source`; `bos_token` and `eos_token` are the texts the template
    /// sees under those names.
    pub fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, ChatTemplateError> {
        let mut env = Environment::new();
        // `transformers` renders with trim_blocks and lstrip_blocks on, and
        // Python-style string and dict methods (`.strip()`, `.items()`).
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        // A template comes from the model file: bound its work so that a hostile one
        // (nested loops over large ranges) fails instead of hanging its caller.
        env.set_fuel(Some(CHAT_TEMPLATE_FUEL));
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(ChatTemplateError::Syntax)?;
        Ok(ChatTemplate {
            env,
            source: source.to_owned(),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The template's Jinja source, e.g. to fingerprint it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text the template sees as `bos_token`.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The text the template sees as `eos_token`.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders `messages`; with `add_generation_prompt` the prompt ends where
    /// the assistant's reply starts. When the program installed the sandbox
    /// ([`crate::sandbox::install`]) the rendering runs there, under its memory and time
    /// limits; otherwise in this process, where only the instructions (fuel) and the
    /// rendered prompt's size are bounded.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        match crate::sandbox::installed() {
            Some(sandbox) => sandbox.render(self, messages, add_generation_prompt),
            None => self.render_in_process(messages, add_generation_prompt),
        }
    }

    /// Renders in this process whether or not a sandbox is installed (what the
    /// sandbox process itself does): memory is not bounded here, so use [`Self::render`]
    /// for a template from an untrusted file.
    pub fn render_in_process(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(ChatTemplateError::Render)?;
        let mut out = CappedOutput {
            bytes: Vec::new(),
            over: false,
        };
        let rendered = template.render_captured_to(
            context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            },
            &mut out,
        );
        match rendered {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| ChatTemplateError::Sandbox("the rendered prompt is not UTF-8".into())),
            Err(_) if out.over => Err(ChatTemplateError::Limit(format!(
                "the rendered prompt is longer than {} MiB",
                MAX_RENDERED_BYTES >> 20
            ))),
            Err(e) => Err(ChatTemplateError::Render(e)),
        }
    }
}

/// The rendered prompt, refusing to grow past [`MAX_RENDERED_BYTES`].
struct CappedOutput {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > MAX_RENDERED_BYTES {
            self.over = true;
            return Err(std::io::Error::other("rendered prompt too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `raise_exception(message)`: templates call it to reject a conversation
/// (e.g. "roles must alternate"); the message becomes the render error.
fn raise_exception(message: String) -> Result<minijinja::Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// `strftime_now(format)`: the local time formatted with C `strftime` codes,
/// which some templates put in the system prompt (Llama 3.x).
fn strftime_now(format: String) -> Result<String, minijinja::Error> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", chrono::Local::now().format(&format)).map_err(|_| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: invalid format {format:?}"),
        )
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_owned(),
            content: content.to_owned(),
        }
    }

    #[test]
    fn smollm2_template_adds_default_system_prompt_and_generation_prompt() {
        let template = ChatTemplate::new(SMOLLM2_TEMPLATE, "<|im_start|>", "<|im_end|>").unwrap();
        let rendered = template.render(&[message("user", "hi")], true).unwrap();
        assert_eq!(
            rendered,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_template_keeps_a_given_system_prompt() {
        let template = ChatTemplate::new(SMOLLM2_TEMPLATE, "", "").unwrap();
        let rendered = template
            .render(
                &[message("system", "Be brief."), message("user", "hi")],
                false,
            )
            .unwrap();
        assert_eq!(
            rendered,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        );
    }

    #[test]
    fn trim_and_lstrip_blocks_match_transformers() {
        let source = "{% for m in messages %}\n    {{ m.content }}\n{% endfor %}";
        let template = ChatTemplate::new(source, "", "").unwrap();
        let rendered = template
            .render(&[message("user", "a"), message("user", "b")], false)
            .unwrap();
        assert_eq!(rendered, "    a\n    b\n");
    }

    #[test]
    fn python_methods_and_helpers_are_available() {
        let source = "{{ bos_token }}{% for m in messages %}{{ m.content.strip().upper() }}{% endfor %}{% if strftime_now('%Y')|length != 4 %}bad{% endif %}";
        let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let rendered = template
            .render(&[message("user", "  hi  ")], false)
            .unwrap();
        assert_eq!(rendered, "<s>HI");
    }

    #[test]
    fn raise_exception_becomes_a_render_error() {
        let source = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}";
        let template = ChatTemplate::new(source, "", "").unwrap();
        let err = template
            .render(&[message("assistant", "x")], false)
            .unwrap_err();
        assert!(matches!(err, ChatTemplateError::Render(_)));
        assert!(
            err.to_string()
                .contains("first message must be from the user"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_are_reported_at_construction() {
        let err = ChatTemplate::new("{% for %}", "", "").unwrap_err();
        assert!(matches!(err, ChatTemplateError::Syntax(_)));
    }

    #[test]
    fn a_template_that_would_run_for_hours_fails_instead() {
        // Regression: 10^10 loop iterations from a model file's template held the
        // caller (and serve-model's only worker) for hours.
        let source =
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let template = ChatTemplate::new(source, "", "").unwrap();
        let error = template.render(&[message("user", "hi")], true).unwrap_err();
        assert!(error.to_string().contains("fuel"), "{error}");
    }
}
