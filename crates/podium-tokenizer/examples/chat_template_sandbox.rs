//! What the chat-template sandbox costs per rendering: the same conversations rendered
//! in this process and through the sandbox (this example is its own sandbox
//! executable), interleaved in rounds, with the SmolLM2 template.
//!
//! ```sh
//! cargo run --release -p podium-tokenizer --example chat_template_sandbox -- 2000 5
//! ```
//! (renderings per round, rounds). Prints each round's microseconds per rendering for
//! both and their ratio.

use podium_core::ChatMessage;
use podium_tokenizer::ChatTemplate;
use podium_tokenizer::sandbox;
use std::process::ExitCode;
use std::time::Instant;

const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == sandbox::SANDBOX_ARG) {
        return sandbox::serve(args.get(1..).unwrap_or_default());
    }
    let number = |i: usize, default: usize| {
        args.get(i)
            .and_then(|a| a.to_str())
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (renders, rounds) = (number(0, 2000), number(1, 5));
    let template = match ChatTemplate::new(SMOLLM2_TEMPLATE, "<|im_start|>", "<|im_end|>") {
        Ok(template) => template,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // A 5-shot multiple-choice prompt as turns: about 3 KB.
    let conversations: Vec<Vec<ChatMessage>> = (0..16)
        .map(|c| {
            (0..11)
                .map(|turn| ChatMessage {
                    role: if turn % 2 == 0 { "user" } else { "assistant" }.into(),
                    content: format!(
                        "Question {c}.{turn}: which of the following best explains why {} \
                         A. one B. two C. three D. four\nAnswer:",
                        "the sky looks blue at noon and red at dusk ".repeat(4)
                    ),
                })
                .collect()
        })
        .collect();

    let time = |sandboxed: bool| -> Result<f64, String> {
        let start = Instant::now();
        let mut bytes = 0;
        for i in 0..renders {
            let messages = &conversations[i % conversations.len()];
            let rendered = if sandboxed {
                template.render(messages, true)
            } else {
                template.render_in_process(messages, true)
            };
            bytes += rendered.map_err(|e| e.to_string())?.len();
        }
        std::hint::black_box(bytes);
        Ok(start.elapsed().as_secs_f64() * 1e6 / renders as f64)
    };

    let settings = std::env::current_exe()
        .map_err(|e| e.to_string())
        .and_then(|program| sandbox::SandboxSettings::from_env(program).map_err(|e| e.to_string()));
    match settings {
        Ok(settings) => sandbox::install(settings),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let bytes = template
        .render_in_process(&conversations[0], true)
        .map(|t| t.len())
        .unwrap_or(0);
    println!("prompt of {bytes} bytes, {renders} renderings per round, one warm-up of each");
    println!("round  in-process µs  sandbox µs  ratio");
    let round = |_| -> Result<(f64, f64), String> { Ok((time(false)?, time(true)?)) };
    if let Err(e) = round(0) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    for r in 1..=rounds {
        match round(r) {
            Ok((here, there)) => {
                println!("{r:>5}  {here:>13.1}  {there:>10.1}  {:>5.2}", there / here)
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
