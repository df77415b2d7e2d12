//! Fuzz targets of model specs (`podium-core`'s parser and `podium-backends`' `open`).

use crate::Target;

pub const TARGETS: &[Target] = &[Target {
    name: "model_spec",
    run: model_spec,
}];

/// Parses a spec and opens the kinds that need no file, network or key (`mock:`,
/// `openai-compatible:`): any input is an error or a backend, never a panic, and a
/// secret pasted into an endpoint's spec (`api_key=…`, 8 characters or more) appears
/// neither in the error nor in the identity that would be stored.
pub fn model_spec(data: &[u8]) {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    let _ = podium_core::ModelSpec::parse(spec);
    if !(spec.starts_with("mock:") || spec.starts_with("openai-compatible:")) {
        return;
    }
    // A tokenizer= option would look files up on disk: not what this target is for.
    if spec.contains("tokenizer") {
        return;
    }
    // The secret check is for endpoints; the mock (a test backend) names its options
    // as given.
    let secrets = if spec.starts_with("openai-compatible:") {
        pasted_secrets(spec)
    } else {
        Vec::new()
    };
    let shown = match podium_backends::open(spec) {
        Ok(backend) => {
            let identity = backend.identity();
            format!("{} {}", identity.spec, identity.fingerprint)
        }
        Err(error) => error.to_string(),
    };
    for secret in secrets {
        assert!(
            !shown.contains(secret),
            "the secret `{secret}` of `{spec}` is shown: {shown}"
        );
    }
}

/// Values of key-like options (`api_key=`, `token=`, `secret=`…) of 8 characters or more
/// that appear once in the spec.
fn pasted_secrets(spec: &str) -> Vec<&str> {
    let Some((_, query)) = spec.rsplit_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, value)| {
            let key = key.to_ascii_lowercase();
            value.len() >= 8
                && key != "api_key_env"
                && (key.contains("key") || key.contains("token") || key == "secret")
        })
        .map(|(_, value)| value)
        // A value that also appears elsewhere in the spec (outside `key=`) cannot be told
        // from the rest of the spec by any redactor.
        .filter(|value| spec.matches(*value).count() == 1)
        .collect()
}
