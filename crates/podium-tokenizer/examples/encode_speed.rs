//! Measures encoding throughput on a GGUF file's tokenizer:
//! `cargo run --release -p podium-tokenizer --example encode_speed -- MODEL.gguf`.

use std::time::Instant;

use candle_core::quantized::gguf_file::Content;
use podium_tokenizer::{EncodeOptions, Tokenizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: encode_speed MODEL.gguf")?;
    let mut reader = std::io::BufReader::new(std::fs::File::open(&path)?);
    let started = Instant::now();
    let content = Content::read(&mut reader)?;
    let tokenizer = Tokenizer::from_gguf(&content)?;
    println!("loaded in {:.2?}", started.elapsed());

    let text = "Question: The capital of France is Paris, and 1492 was the year Columbus sailed.\n\
                Answer: A) first B) second C) third D) fourth. Ünïcödé 日本語 🙂 <|im_end|>";
    let n_texts = 20_000;
    let started = Instant::now();
    let mut n_tokens = 0;
    for _ in 0..n_texts {
        n_tokens += tokenizer
            .encode(
                text,
                EncodeOptions {
                    add_special: true,
                    parse_special: true,
                },
            )?
            .len();
    }
    let elapsed = started.elapsed();
    println!(
        "{n_texts} texts of {} bytes: {:.2?} ({:.1} µs/text, {:.2} M tokens/s)",
        text.len(),
        elapsed,
        elapsed.as_secs_f64() * 1e6 / n_texts as f64,
        n_tokens as f64 / elapsed.as_secs_f64() / 1e6
    );
    Ok(())
}
