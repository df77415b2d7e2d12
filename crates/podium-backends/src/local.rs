//! `local:NAME` (a catalogued model already pulled into the cache) and
//! `gguf:PATH` (any GGUF file): the CPU engine of `podium-local`.
//!
//! Options after `?`: `threads=N` (default: `PODIUM_THREADS`, else candle's
//! default), `weights=q8|stored|f32` (by default Q4_1/Q5_x are re-quantized to
//! Q8_0 only on CPUs without AVX2, where podium-local has no kernels of its own for
//! them; see its `WeightFormat`), `max_context=N`.

use std::path::{Path, PathBuf};

use podium_local::{LocalBackend, LocalModel, LocalOptions, WeightFormat};

use crate::OpenError;

/// Where a local spec's GGUF file is.
pub fn local_model_path(kind: &str, rest: &str, spec: &str) -> Result<PathBuf, OpenError> {
    let invalid = |message: String| OpenError::Invalid {
        spec: spec.to_string(),
        message,
    };
    let name = rest.split_once('?').map_or(rest, |(n, _)| n);
    match kind {
        "gguf" => {
            let path = PathBuf::from(name);
            if !path.is_file() {
                return Err(invalid(format!("no such GGUF file `{}`", path.display())));
            }
            Ok(path)
        }
        _ => {
            let cache = podium_models::default_cache_dir().map_err(|e| invalid(e.to_string()))?;
            let catalog = podium_models::Catalog::builtin();
            if catalog.get(name).is_none() {
                // A path given as `local:` works too.
                if Path::new(name).is_file() {
                    return Ok(PathBuf::from(name));
                }
                return Err(invalid(format!(
                    "`{name}` is not in the model catalogue (known: {}); for a file use gguf:PATH",
                    catalog.names()
                )));
            }
            podium_models::resolve(name, &cache).ok_or_else(|| {
                invalid(format!(
                    "`{name}` is not in the cache {}: run `podium pull {name}` first",
                    cache.display()
                ))
            })
        }
    }
}

/// A local spec's model on a thread of its own: the `Backend` of `eval` and `bench`.
pub fn open_local(kind: &str, rest: &str, spec: &str) -> Result<LocalBackend, OpenError> {
    LocalBackend::start(open_local_model(kind, rest, spec)?).map_err(|err| OpenError::Invalid {
        spec: spec.to_string(),
        message: err.to_string(),
    })
}

/// A local spec's model, run on the thread that calls it (`serve-model`'s model thread).
pub fn open_local_model(kind: &str, rest: &str, spec: &str) -> Result<LocalModel, OpenError> {
    let invalid = |message: String| OpenError::Invalid {
        spec: spec.to_string(),
        message,
    };
    let path = local_model_path(kind, rest, spec)?;
    let mut options = LocalOptions::new(spec.split_once('?').map_or(spec, |(s, _)| s));
    options.threads = std::env::var("PODIUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "threads" => {
                    options.threads =
                        Some(value.parse().map_err(|_| {
                            invalid(format!("threads needs a number, got `{value}`"))
                        })?)
                }
                "max_context" => {
                    options.max_context = Some(value.parse().map_err(|_| {
                        invalid(format!("max_context needs a number, got `{value}`"))
                    })?)
                }
                "weights" => {
                    options.weight_format = match value {
                        "q8" => WeightFormat::Q8_0ForSlowTypes,
                        "stored" => WeightFormat::AsStored,
                        "f32" => WeightFormat::F32Reference,
                        other => {
                            return Err(invalid(format!(
                                "weights must be q8, stored or f32, got `{other}`"
                            )));
                        }
                    }
                }
                "batch_weights" => options
                    .set_batch_weights(value)
                    .map_err(|e| invalid(format!("batch_weights must be {e}")))?,
                other => {
                    return Err(invalid(format!(
                        "unknown option `{other}` (known: threads, weights, batch_weights, max_context)"
                    )));
                }
            }
        }
    }
    LocalModel::load(&path, options).map_err(|err| invalid(err.to_string()))
}

/// A token counter from the tokenizer of a local model (`tokenizer=` option of the
/// HTTP backends): a catalogue name that is in the cache, or a GGUF file.
pub(crate) fn token_counter(
    value: &str,
    spec: &str,
) -> Result<crate::timing::TokenCounter, OpenError> {
    let kind = if Path::new(value).is_file() {
        "gguf"
    } else {
        "local"
    };
    let path = local_model_path(kind, value, spec)?;
    let tokenizer =
        podium_local::GgufTokenizer::from_file(&path).map_err(|e| OpenError::Invalid {
            spec: spec.to_string(),
            message: format!("tokenizer={value}: {e}"),
        })?;
    Ok(crate::timing::TokenCounter(std::sync::Arc::new(
        move |text: &str| {
            use podium_local::TextTokenizer;
            tokenizer.encode(text, false).ok().map(|ids| ids.len())
        },
    )))
}
