//! What the board shows about a model: the built-in catalogue, overlaid by a
//! user catalogue file in the same TOML layout (`--catalog FILE`,
//! `PODIUM_CATALOG`), which adds models (an in-house endpoint, a fine-tune) or
//! overrides fields of built-in ones. A field nobody gave stays unknown.

use std::path::Path;

use podium_models::{Access, Catalog, ModelEntry};
use serde::{Deserialize, Serialize};

use crate::BoardError;

/// The facts of one model; `None` is "unknown", shown as such, never guessed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The catalogue name (`smollm2-135m-instruct`), when the model has an entry.
    pub catalog_name: Option<String>,
    pub display_name: Option<String>,
    pub provider: Option<String>,
    /// Open weights or closed.
    pub access: Option<Access>,
    pub licence: Option<String>,
    pub parameters: Option<u64>,
    pub context_length: Option<u64>,
    /// US dollars per million input tokens.
    pub price_in: Option<f64>,
    /// US dollars per million output tokens.
    pub price_out: Option<f64>,
}

impl ModelInfo {
    /// (3 · in + out) / 4 per million tokens, when both prices are known.
    pub fn blended_price(&self) -> Option<f64> {
        Some(podium_stats::blended_price_per_million(
            self.price_in?,
            self.price_out?,
        ))
    }

    fn from_entry(entry: &ModelEntry) -> ModelInfo {
        ModelInfo {
            catalog_name: Some(entry.name.clone()),
            display_name: Some(entry.display_name.clone()),
            provider: Some(entry.provider.clone()),
            access: Some(entry.access),
            licence: Some(entry.licence.clone()),
            parameters: entry.parameters,
            context_length: entry.context_length,
            price_in: Some(entry.price.input_per_mtok),
            price_out: Some(entry.price.output_per_mtok),
        }
    }
}

/// One `[[model]]` of a user catalogue: every field optional. `name` names a
/// built-in entry to override (or a new name); `spec` ties the entry to the
/// model specs it describes (options after `?` ignored), e.g.
/// `openai-compatible:http://10.0.0.5:8000/v1#our-ft`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: Option<String>,
    spec: Option<String>,
    display_name: Option<String>,
    provider: Option<String>,
    access: Option<Access>,
    licence: Option<String>,
    parameters: Option<u64>,
    context_length: Option<u64>,
    price: Option<UserPrice>,
    // Fields of the built-in layout that the board does not use; accepted so
    // a copy of a built-in entry is a valid user entry.
    #[allow(dead_code)]
    architecture: Option<String>,
    #[allow(dead_code)]
    file: Option<String>,
    #[allow(dead_code)]
    size_bytes: Option<u64>,
    #[allow(dead_code)]
    sha256: Option<String>,
    #[allow(dead_code)]
    source: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPrice {
    input_per_mtok: Option<f64>,
    output_per_mtok: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserCatalog {
    #[serde(default, rename = "model")]
    models: Vec<UserEntry>,
}

/// The built-in catalogue and the user's overlay.
/// What is wrong with a user catalogue; the message names the line or the model and
/// field at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("line {line}: {message}")]
    TomlAt { line: usize, message: String },
    #[error("{0}")]
    Toml(String),
    #[error(
        "model {model} has neither `name` (a catalogue name) nor `spec` (the model spec it describes)"
    )]
    NoName { model: usize },
    #[error("model {model}: price.{field} must be a finite number ≥ 0")]
    Price { model: usize, field: &'static str },
}

#[derive(Debug, Clone)]
pub struct BoardCatalog {
    builtin: Catalog,
    user: Vec<UserEntry>,
}

impl BoardCatalog {
    pub fn builtin() -> BoardCatalog {
        BoardCatalog {
            builtin: Catalog::builtin(),
            user: Vec::new(),
        }
    }

    /// The built-in catalogue overlaid by the TOML file at `path`.
    pub fn with_user_file(path: &Path) -> Result<BoardCatalog, BoardError> {
        let in_file = |error| BoardError::Catalog {
            path: path.to_path_buf(),
            error,
        };
        let text = std::fs::read_to_string(path).map_err(|err| in_file(CatalogError::Read(err)))?;
        Self::with_user_toml(&text).map_err(in_file)
    }

    /// The built-in catalogue overlaid by user catalogue `text`; the error
    /// names the line and field at fault.
    pub fn with_user_toml(text: &str) -> Result<BoardCatalog, CatalogError> {
        let user: UserCatalog = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => CatalogError::TomlAt {
                    line,
                    message: err.message().to_string(),
                },
                None => CatalogError::Toml(err.message().to_string()),
            }
        })?;
        for (i, entry) in user.models.iter().enumerate() {
            if entry.name.is_none() && entry.spec.is_none() {
                return Err(CatalogError::NoName { model: i + 1 });
            }
            if let Some(price) = &entry.price {
                for (field, value) in [
                    ("input_per_mtok", price.input_per_mtok),
                    ("output_per_mtok", price.output_per_mtok),
                ] {
                    if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                        return Err(CatalogError::Price {
                            model: i + 1,
                            field,
                        });
                    }
                }
            }
        }
        Ok(BoardCatalog {
            builtin: Catalog::builtin(),
            user: user.models,
        })
    }

    /// What is known about the model of `spec`.
    pub fn info(&self, spec: &str) -> ModelInfo {
        let bare = spec.split('?').next().unwrap_or(spec);
        let builtin = self.builtin.entry_for_spec(spec);
        let mut info = builtin.map(ModelInfo::from_entry).unwrap_or_default();
        let builtin_name = builtin.map(|e| e.name.as_str());
        for entry in &self.user {
            let by_spec = entry
                .spec
                .as_deref()
                .is_some_and(|s| s.split('?').next().unwrap_or(s) == bare);
            let by_name = entry.name.is_some() && entry.name.as_deref() == builtin_name;
            if !(by_spec || by_name) {
                continue;
            }
            if let Some(name) = &entry.name {
                info.catalog_name = Some(name.clone());
            }
            let text = |field: &Option<String>, into: &mut Option<String>| {
                if let Some(value) = field {
                    *into = Some(value.clone());
                }
            };
            text(&entry.display_name, &mut info.display_name);
            text(&entry.provider, &mut info.provider);
            text(&entry.licence, &mut info.licence);
            info.access = entry.access.or(info.access);
            info.parameters = entry.parameters.or(info.parameters);
            info.context_length = entry.context_length.or(info.context_length);
            if let Some(price) = &entry.price {
                info.price_in = price.input_per_mtok.or(info.price_in);
                info.price_out = price.output_per_mtok.or(info.price_out);
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_models_are_known_and_others_unknown() {
        let catalog = BoardCatalog::builtin();
        let info = catalog.info("openai:gpt-4o-mini");
        assert_eq!(info.display_name.as_deref(), Some("GPT-4o mini"));
        assert_eq!(info.access, Some(Access::Closed));
        assert!((info.blended_price().unwrap() - 0.2625).abs() < 1e-12);
        let unknown = catalog.info("openai-compatible:http://127.0.0.1:9/v1#x");
        assert_eq!(unknown, ModelInfo::default());
        assert_eq!(unknown.blended_price(), None);
    }

    #[test]
    fn a_user_file_adds_models_and_overrides_fields() {
        let catalog = BoardCatalog::with_user_toml(
            r#"
            [[model]]
            spec = "openai-compatible:http://10.0.0.5:8000/v1#our-ft"
            display_name = "Our fine-tune"
            licence = "internal"
            access = "closed"
            price = { input_per_mtok = 0.5, output_per_mtok = 1.5 }

            [[model]]
            name = "gpt-4o-mini"
            price = { output_per_mtok = 0.7 }
            "#,
        )
        .unwrap();
        let ft = catalog.info("openai-compatible:http://10.0.0.5:8000/v1#our-ft?max_tokens=5");
        assert_eq!(ft.display_name.as_deref(), Some("Our fine-tune"));
        assert_eq!(ft.provider, None);
        assert_eq!(ft.blended_price(), Some(0.75));
        let mini = catalog.info("openai:gpt-4o-mini");
        assert_eq!((mini.price_in, mini.price_out), (Some(0.15), Some(0.7)));
        assert_eq!(mini.provider.as_deref(), Some("OpenAI"));
    }

    #[test]
    fn bad_user_files_name_the_line_and_field() {
        let err = BoardCatalog::with_user_toml("[[model]]\nname = \"x\"\nprise = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 3:") && err.contains("prise"), "{err}");
        let err = BoardCatalog::with_user_toml("[[model]]\ndisplay_name = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither `name`"), "{err}");
        let err = BoardCatalog::with_user_toml(
            "[[model]]\nname = \"x\"\nprice = { input_per_mtok = -1.0 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("price.input_per_mtok"), "{err}");
    }
}
