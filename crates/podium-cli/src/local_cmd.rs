//! Commands for local models: `pull`, `tokenize` and `serve-model`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use podium_server::LocalEngine;
use podium_tokenizer::{EncodeOptions, TokenizeReport, Tokenizer};

use crate::UserError;
use crate::args::Format;

pub(crate) fn pull(spec: &str) -> anyhow::Result<ExitCode> {
    let cache = podium_models::default_cache_dir()?;
    crate::note!("pulling {spec} into {} …", cache.display());
    let path = podium_models::pull(spec, &cache).map_err(|e| UserError(e.to_string()))?;
    crate::emit(&format!("{}\n", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The GGUF file a model spec or name points at (`local:NAME`, `gguf:PATH`, NAME, PATH).
pub(crate) fn model_file(model: &str) -> anyhow::Result<PathBuf> {
    let (kind, rest) = match model.split_once(':') {
        Some((kind @ ("local" | "gguf"), rest)) => (kind, rest),
        _ if Path::new(model).is_file() => ("gguf", model),
        _ => ("local", model),
    };
    Ok(podium_backends::local_model_path(kind, rest, model)?)
}

pub(crate) fn tokenize(
    model: &str,
    text: Option<&str>,
    file: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let text = match (text, file) {
        (Some(t), None) => t.to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        _ => return Err(UserError("give exactly one of --text or --file".into()).into()),
    };
    let path = model_file(model)?;
    let content = podium_local::read_gguf_header(&path).map_err(|e| UserError(e.to_string()))?;
    let tokenizer = Tokenizer::from_gguf(&content)
        .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
    let ids = tokenizer.encode(
        &text,
        EncodeOptions {
            add_special: false,
            parse_special: true,
        },
    )?;
    let report = TokenizeReport::new(&tokenizer, &ids)?;
    match format {
        Format::Json => crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report.to_json())?
        ))?,
        _ => crate::emit(&report.to_text())?,
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn serve_model(model: &str, addr: &str, queue: usize) -> anyhow::Result<ExitCode> {
    let spec = if model.contains(':') {
        model.to_string()
    } else {
        format!("local:{model}")
    };
    let model = match spec.split_once(':') {
        Some((kind @ ("local" | "gguf"), rest)) => {
            podium_backends::open_local_model(kind, rest, &spec)?
        }
        _ => {
            return Err(UserError(format!(
                "serve-model serves local models (local:NAME or gguf:PATH), not `{spec}`"
            ))
            .into());
        }
    };
    let name = spec
        .split_once(':')
        .map_or(spec.as_str(), |(_, r)| r)
        .split('?')
        .next()
        .unwrap_or("model");
    let name = Path::new(name)
        .file_stem()
        .map_or(name.to_string(), |s| s.to_string_lossy().into_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The worker's thread is the one thread that runs the model.
    let engine = LocalEngine::new(model, name.clone());
    let worker = podium_server::Worker::start(Arc::new(engine), queue);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        eprintln!(
            "serving `{name}` on http://{}/v1 (Ctrl-C to stop)",
            listener.local_addr()?
        );
        podium_server::serve(listener, worker, podium_server::Limits::default(), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("server failed")
    })?;
    Ok(ExitCode::SUCCESS)
}
