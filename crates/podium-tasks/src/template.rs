//! Jinja evaluation of `doc_to_text` / `doc_to_target` / `doc_to_choice`,
//! with the Python-compatible methods lm-evaluation-harness templates use.

use minijinja::value::Value as MjValue;
use minijinja::{Environment, Error as MjError, ErrorKind, State, UndefinedBehavior};
use serde_json::Value as Json;

use crate::config::FieldSpec;

/// The most template instructions one rendering may run (minijinja's fuel). The
/// templates of lm-evaluation-harness's tasks use hundreds; a task file whose template
/// would loop for hours fails its doc with an error instead.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// Why a template or field spec gives no value for a doc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// minijinja's error, described (a missing field says so).
    #[error("{0}")]
    Jinja(String),
    #[error("`{0}` is undefined for this doc")]
    Undefined(String),
    /// The expression's value cannot be read as JSON.
    #[error("{0}")]
    Value(String),
    /// `metadata.doc_to_category` gave something other than a non-empty text.
    #[error("the category is {0}, expected a non-empty text")]
    NotACategory(String),
}

/// The compiled templates of one task.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        // lm-evaluation-harness renders with StrictUndefined and keeps a
        // trailing newline, so a missing field is an error, not "".
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_unknown_method_callback(python_methods);
        env.add_filter("regex_replace", regex_replace);
        env.set_fuel(Some(TEMPLATE_FUEL));
        Templates { env }
    }

    /// Render a template string against a doc.
    pub fn render(&self, source: &str, doc: &Json) -> Result<String, TemplateError> {
        let template = self.env.template_from_str(source).map_err(describe)?;
        template
            .render(MjValue::from_serialize(doc))
            .map_err(describe)
    }

    /// Evaluate a field spec: a column name gives the column, a single
    /// `{{ expression }}` gives the expression's value (lists stay lists), any
    /// other template gives its rendered text.
    pub fn eval_field(&self, spec: &FieldSpec, doc: &Json) -> Result<Json, TemplateError> {
        match spec {
            FieldSpec::Int(i) => Ok(Json::from(*i)),
            FieldSpec::List(items) => Ok(Json::Array(items.clone())),
            FieldSpec::Template(source) => {
                if let Some(value) = doc.get(source.as_str()) {
                    return Ok(value.clone());
                }
                if let Some(expr) = single_expression(source) {
                    let compiled = self.env.compile_expression(expr).map_err(describe)?;
                    let value = compiled
                        .eval(MjValue::from_serialize(doc))
                        .map_err(describe)?;
                    if value.is_undefined() {
                        return Err(TemplateError::Undefined(expr.trim().to_string()));
                    }
                    return serde_json::to_value(&value)
                        .map_err(|err| TemplateError::Value(err.to_string()));
                }
                self.render(source, doc).map(Json::String)
            }
        }
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

/// `"{{ expr }}"` → `Some("expr")` when the template is exactly one expression.
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    if source.trim() != source {
        // Surrounding whitespace is part of the rendered text.
        return None;
    }
    Some(inner)
}

fn describe(err: MjError) -> TemplateError {
    let mut message = match err.kind() {
        ErrorKind::UndefinedError => {
            "a field the template uses is missing from the doc".to_string()
        }
        _ => err.to_string(),
    };
    if let Some(detail) = err.detail()
        && !message.contains(detail)
    {
        message = format!("{message}: {detail}");
    }
    TemplateError::Jinja(message)
}

/// Python methods on values: pycompat's string and dict methods, plus
/// `list.index`, which ARC's `choices.label.index(answerKey)` needs.
fn python_methods(
    state: &State,
    value: &MjValue,
    method: &str,
    args: &[MjValue],
) -> Result<MjValue, MjError> {
    if method == "index"
        && let Ok(iter) = value.try_iter()
        && value.as_str().is_none()
    {
        let [needle] = args else {
            return Err(MjError::new(
                ErrorKind::InvalidOperation,
                "list.index takes one argument",
            ));
        };
        return iter
            .enumerate()
            .find(|(_, item)| item == needle)
            .map(|(i, _)| MjValue::from(i))
            .ok_or_else(|| {
                MjError::new(
                    ErrorKind::InvalidOperation,
                    format!("{needle} is not in list"),
                )
            });
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// lm-evaluation-harness's `regex_replace` Jinja filter.
fn regex_replace(text: &str, pattern: &str, replacement: &str) -> Result<String, MjError> {
    let regex = regex::Regex::new(pattern).map_err(|err| {
        MjError::new(
            ErrorKind::InvalidOperation,
            format!("bad regex `{pattern}`: {err}"),
        )
    })?;
    Ok(regex.replace_all(text, replacement).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A template that would loop for hours fails instead; real templates stay far
    /// below the budget.
    #[test]
    fn a_template_that_would_run_for_hours_fails() {
        let templates = Templates::new();
        let doc = json!({"q": "2+2?", "choices": ["3", "4"]});
        let endless =
            "{% for i in range(10000) %}{% for j in range(10000) %}.{% endfor %}{% endfor %}";
        let error = templates.render(endless, &doc).unwrap_err().to_string();
        assert!(error.contains("fuel"), "{error}");
        let typical = "Question: {{ q }}\n{% for c in choices %}{{ loop.index }}. {{ c }}\n{% endfor %}Answer:";
        assert!(templates.render(typical, &doc).is_ok());
    }

    fn check(spec: FieldSpec, doc: Json, expected: Json) {
        let got = Templates::new().eval_field(&spec, &doc).unwrap();
        assert_eq!(got, expected);
    }

    fn t(s: &str) -> FieldSpec {
        FieldSpec::Template(s.to_string())
    }

    #[test]
    fn columns_expressions_and_templates() {
        check(t("question"), json!({"question": "Why?"}), json!("Why?"));
        check(
            t("{{choices.text}}"),
            json!({"choices": {"text": ["a", "b"]}}),
            json!(["a", "b"]),
        );
        check(
            t("{{choices.label.index(answerKey)}}"),
            json!({"choices": {"label": ["A", "B", "C"]}, "answerKey": "C"}),
            json!(2),
        );
        check(
            t("Question: {{question}}\nAnswer:"),
            json!({"question": "Why?"}),
            json!("Question: Why?\nAnswer:"),
        );
        check(
            t("{{answer.split('####')[-1].strip()}}"),
            json!({"answer": "work\n#### 42"}),
            json!("42"),
        );
        check(
            t("{{answer.split('####')[-1].strip() if answer is defined else target}}"),
            json!({"target": "7"}),
            json!("7"),
        );
        check(
            t("{{question.strip()}}\n"),
            json!({"question": " q "}),
            json!("q\n"),
        );
        check(FieldSpec::Int(3), json!({}), json!(3));
        check(
            FieldSpec::List(vec![json!("A"), json!("B")]),
            json!({}),
            json!(["A", "B"]),
        );
        check(
            t("{{ text | regex_replace('[0-9]+', '#') }}"),
            json!({"text": "a1b22"}),
            json!("a#b#"),
        );
    }

    #[test]
    fn missing_field_is_an_error() {
        let err = Templates::new()
            .eval_field(&t("Q: {{questoin}}"), &json!({"question": "x"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
        let err = Templates::new()
            .eval_field(&t("{{questoin}}"), &json!({"question": "x"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("undefined") || err.contains("missing"),
            "{err}"
        );
    }
}
