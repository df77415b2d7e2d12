//! Compares Podium's ids with llama.cpp's on many texts, for every vocabulary in a
//! folder of `ggml-vocab-*.gguf` files:
//! `cargo run -p podium-tokenizer --example llamacpp_crosscheck -- IDS.json VOCAB_DIR`,
//! where `IDS.json` is what `bench/tokenizer/llamacpp_ids.py` writes
//! (`{"texts": [...], "special": false, "ids": {"NAME": [[id, ...], ...]}}`, llama.cpp's
//! `llama_tokenize(add_special = false, parse_special = special)`). Prints one line per
//! vocabulary and the first differences; exits with 1 when any id differs.

use candle_core::quantized::gguf_file::Content;
use podium_tokenizer::{EncodeOptions, Tokenizer};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(ids_path), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: llamacpp_crosscheck IDS.json VOCAB_DIR".into());
    };
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ids_path)?)?;
    let texts: Vec<String> = serde_json::from_value(reference["texts"].clone())?;
    let options = EncodeOptions {
        add_special: false,
        parse_special: reference["special"].as_bool().unwrap_or(false),
    };
    let vocabularies = reference["ids"]
        .as_object()
        .ok_or("IDS.json has no `ids` object")?;
    let (mut all_agree, mut total, mut agreeing) = (true, 0, 0);
    for (name, ids) in vocabularies {
        let expected: Vec<Vec<u32>> = serde_json::from_value(ids.clone())?;
        if expected.len() != texts.len() {
            return Err(format!(
                "{name}: {} id lists for {} texts",
                expected.len(),
                texts.len()
            )
            .into());
        }
        let path = format!("{dir}/ggml-vocab-{name}.gguf");
        let content = Content::read(&mut std::io::BufReader::new(std::fs::File::open(&path)?))?;
        let tokenizer = match Tokenizer::from_gguf(&content) {
            Ok(tokenizer) => tokenizer,
            Err(e) => {
                println!("{name}: not loaded: {e}");
                continue;
            }
        };
        let mut differences = 0;
        for (text, want) in texts.iter().zip(&expected) {
            let got = tokenizer.encode(text, options)?;
            if &got != want {
                differences += 1;
                if differences <= 3 {
                    println!("  {name} {text:?}\n    llama.cpp {want:?}\n    Podium    {got:?}");
                }
            }
        }
        println!(
            "{name}: {} of {} texts agree",
            texts.len() - differences,
            texts.len()
        );
        all_agree &= differences == 0;
        total += texts.len();
        agreeing += texts.len() - differences;
    }
    println!("all loaded vocabularies: {agreeing} of {total}");
    if !all_agree {
        std::process::exit(1);
    }
    Ok(())
}
