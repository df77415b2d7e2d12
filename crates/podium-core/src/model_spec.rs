//! Model specs as users write them: `KIND:REST`.

use std::fmt;

/// What serves a model: the part of a spec before the first `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Deterministic fake answers, for tests (`mock:NAME`).
    Mock,
    /// A catalogued model run by Podium's own engine (`local:NAME`).
    Local,
    /// A GGUF file run by Podium's own engine (`gguf:PATH`).
    Gguf,
    /// Any OpenAI-compatible server (`openai-compatible:BASE_URL#MODEL`).
    OpenAiCompatible,
    OpenAi,
    Together,
    Anthropic,
}

impl ModelKind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Mock,
        ModelKind::Local,
        ModelKind::Gguf,
        ModelKind::OpenAiCompatible,
        ModelKind::OpenAi,
        ModelKind::Together,
        ModelKind::Anthropic,
    ];

    /// The kind as written in a spec.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Mock => "mock",
            ModelKind::Local => "local",
            ModelKind::Gguf => "gguf",
            ModelKind::OpenAiCompatible => "openai-compatible",
            ModelKind::OpenAi => "openai",
            ModelKind::Together => "together",
            ModelKind::Anthropic => "anthropic",
        }
    }

    pub fn parse(text: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Run by Podium's own engine on this machine (`local`, `gguf`).
    pub fn is_local(self) -> bool {
        matches!(self, ModelKind::Local | ModelKind::Gguf)
    }

    /// Reached over HTTP (`openai-compatible`, `openai`, `together`, `anthropic`).
    pub fn is_remote(self) -> bool {
        matches!(
            self,
            ModelKind::OpenAiCompatible
                | ModelKind::OpenAi
                | ModelKind::Together
                | ModelKind::Anthropic
        )
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds a model spec may name, in the order `--help` lists them.
pub const KNOWN_MODEL_KINDS: &[&str] = &[
    "mock",
    "local",
    "gguf",
    "openai-compatible",
    "openai",
    "together",
    "anthropic",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub rest: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelSpecError {
    #[error("model spec `{0}` has no kind: write KIND:NAME, where KIND is one of {kinds}", kinds = KNOWN_MODEL_KINDS.join(", "))]
    MissingKind(String),
    #[error("unknown model kind `{kind}` in `{spec}`: known kinds are {kinds}", kinds = KNOWN_MODEL_KINDS.join(", "))]
    UnknownKind { kind: String, spec: String },
    #[error("model spec `{0}` has nothing after the kind")]
    Empty(String),
}

impl ModelSpec {
    pub fn parse(spec: &str) -> Result<ModelSpec, ModelSpecError> {
        let Some((kind, rest)) = spec.split_once(':') else {
            return Err(ModelSpecError::MissingKind(spec.to_string()));
        };
        let Some(kind) = ModelKind::parse(kind) else {
            return Err(ModelSpecError::UnknownKind {
                kind: kind.to_string(),
                spec: spec.to_string(),
            });
        };
        if rest.is_empty() {
            return Err(ModelSpecError::Empty(spec.to_string()));
        }
        Ok(ModelSpec {
            kind,
            rest: rest.to_string(),
        })
    }

    /// Run by Podium's own engine on this machine (`local`, `gguf`).
    pub fn is_local(&self) -> bool {
        self.kind.is_local()
    }

    /// Reached over HTTP (`openai-compatible`, `openai`, `together`, `anthropic`).
    pub fn is_remote(&self) -> bool {
        self.kind.is_remote()
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.rest)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kinds_are_local_remote_or_neither() {
        let kinds = |spec: &str| {
            let spec = super::ModelSpec::parse(spec).unwrap();
            (spec.is_local(), spec.is_remote())
        };
        assert_eq!(kinds("local:smollm2-135m-instruct"), (true, false));
        assert_eq!(kinds("gguf:/m.gguf"), (true, false));
        assert_eq!(kinds("openai-compatible:http://h/v1#m"), (false, true));
        assert_eq!(kinds("openai:gpt"), (false, true));
        assert_eq!(kinds("together:m"), (false, true));
        assert_eq!(kinds("anthropic:claude"), (false, true));
        assert_eq!(kinds("mock:a"), (false, false));
    }

    use super::*;

    #[test]
    fn parses_kind_and_rest() {
        let spec = ModelSpec::parse("openai-compatible:http://127.0.0.1:8000/v1#m").unwrap();
        assert_eq!(spec.kind, ModelKind::OpenAiCompatible);
        assert_eq!(spec.rest, "http://127.0.0.1:8000/v1#m");
        assert_eq!(
            spec.to_string(),
            "openai-compatible:http://127.0.0.1:8000/v1#m"
        );
    }

    #[test]
    fn every_kind_round_trips_and_is_listed() {
        for kind in ModelKind::ALL {
            assert_eq!(ModelKind::parse(kind.as_str()), Some(kind));
        }
        let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, KNOWN_MODEL_KINDS);
    }

    #[test]
    fn unknown_kind_lists_known_ones() {
        let err = ModelSpec::parse("foo:bar").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown model kind `foo`"), "{message}");
        assert!(message.contains("mock, local, gguf"), "{message}");
        assert_eq!(
            ModelSpec::parse("mock").unwrap_err(),
            ModelSpecError::MissingKind("mock".into())
        );
        assert_eq!(
            ModelSpec::parse("mock:").unwrap_err(),
            ModelSpecError::Empty("mock:".into())
        );
    }
}
