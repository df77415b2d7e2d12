//! The model catalogue: names Podium knows, where their files come from, and the
//! facts the board shows (provider, size, licence, open or closed, price).

use serde::{Deserialize, Serialize};

use crate::error::PullError;

/// The catalogue shipped with Podium.
const BUILTIN_CATALOG: &str = include_str!("../../../models/catalog.toml");

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Catalog {
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

/// One model of the catalogue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name `podium pull` takes, e.g. `smollm2-135m-instruct`.
    pub name: String,
    pub display_name: String,
    pub provider: String,
    /// GGUF `general.architecture`, for local models.
    pub architecture: Option<String>,
    /// Parameter count, when published.
    pub parameters: Option<u64>,
    /// The longest context the model accepts, in tokens, when published.
    pub context_length: Option<u64>,
    pub licence: String,
    pub access: Access,
    /// File name in the cache, for local models.
    pub file: Option<String>,
    /// Size of the complete file, to tell a truncated file from a corrupt one.
    pub size_bytes: Option<u64>,
    /// Lower-case hex sha256 of the complete file.
    pub sha256: Option<String>,
    pub price: Price,
    pub source: Source,
}

/// Whether a model's weights are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Open,
    Closed,
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// Wheels on the package index pip uses; the file is the concatenation of
    /// `path` from each package, in order.
    Pypi {
        /// A package that depends on all of `packages`, for reference only.
        parent: Option<String>,
        packages: Vec<PackageFile>,
    },
    /// A hosted API; `api` names the backend (`openai`, `anthropic`) and
    /// `model` the provider's model id.
    Api { api: String, model: String },
}

/// One wheel and the file (or chunk) inside it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    pub name: String,
    pub version: String,
    /// Path of the file inside the wheel.
    pub path: String,
}

impl Catalog {
    /// The catalogue compiled into Podium.
    pub fn builtin() -> Catalog {
        Catalog::from_toml(BUILTIN_CATALOG).expect("models/catalog.toml is checked by a test")
    }

    pub fn from_toml(text: &str) -> Result<Catalog, PullError> {
        Ok(toml::from_str(text)?)
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// All names, comma-separated, for error messages.
    /// The catalogue entry a model spec refers to, for its price and facts:
    /// `local:NAME` by name; `openai:M`, `together:M` and `anthropic:M` by the API model
    /// (or the catalogue name) among that API's entries. Options after `?` are ignored. Other specs (a GGUF path, an
    /// OpenAI-compatible URL, mock) have no entry.
    pub fn entry_for_spec(&self, spec: &str) -> Option<&ModelEntry> {
        let spec = spec.split('?').next().unwrap_or(spec);
        let (kind, rest) = spec.split_once(':')?;
        match kind {
            "local" => self.get(rest),
            "openai" | "together" | "anthropic" => self.models.iter().find(|m| {
                matches!(&m.source, Source::Api { api, model }
                    if api == kind && (model == rest || m.name == rest))
            }),
            _ => None,
        }
    }

    pub fn names(&self) -> String {
        self.models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn specs_find_their_catalogue_entry() {
        let catalog = Catalog::builtin();
        let name = |spec: &str| catalog.entry_for_spec(spec).map(|e| e.name.as_str());
        assert_eq!(
            name("local:smollm2-135m-instruct?threads=2"),
            Some("smollm2-135m-instruct")
        );
        assert_eq!(name("openai:gpt-4o-mini"), Some("gpt-4o-mini"));
        assert_eq!(
            name("anthropic:claude-3-5-haiku-latest"),
            Some("claude-3-5-haiku")
        );
        assert_eq!(name("anthropic:claude-3-5-haiku"), Some("claude-3-5-haiku"));
        // The API must match too: an OpenAI model name under `together:` is not it.
        assert_eq!(name("together:gpt-4o"), None);
        assert_eq!(name("together:some-other-model"), None);
        assert_eq!(name("gguf:/tmp/x.gguf"), None);
        assert_eq!(
            name("openai-compatible:http://127.0.0.1:8000/v1#gpt-4o"),
            None
        );
        assert_eq!(name("mock:a"), None);
    }
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_has_the_local_models() {
        let catalog = Catalog::builtin();
        let smol = catalog.get("smollm2-135m-instruct").unwrap();
        assert_eq!(
            smol.sha256.as_deref(),
            Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
        );
        assert_eq!(smol.access, Access::Open);
        assert_eq!(smol.price.input_per_mtok, 0.0);
        let gemma = catalog.get("gemma3-270m").unwrap();
        let Source::Pypi { packages, .. } = &gemma.source else {
            panic!("gemma is pulled from wheels")
        };
        assert_eq!(packages.len(), 4);
        assert!(packages[3].path.ends_with(".part03"));
        let mini = catalog.get("gpt-4o-mini").unwrap();
        assert_eq!(mini.access, Access::Closed);
        assert_eq!(
            (mini.price.input_per_mtok, mini.price.output_per_mtok),
            (0.15, 0.60)
        );
        let haiku = catalog.get("claude-3-5-haiku").unwrap();
        assert_eq!(
            (haiku.price.input_per_mtok, haiku.price.output_per_mtok),
            (0.80, 4.00)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = r#"
            [[model]]
            name = "x"
            display_name = "X"
            provider = "p"
            licence = "l"
            access = "open"
            price = { input_per_mtok = 0.0, output_per_mtok = 0.0 }
            source = { kind = "api", api = "openai", model = "x" }
            colour = "blue"
        "#;
        let err = Catalog::from_toml(text).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
