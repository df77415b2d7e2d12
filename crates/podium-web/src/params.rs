//! Query parameters: every page's state is in its URL, so a view can be
//! shared. A parameter given empty (an untouched form field) counts as
//! absent; a parameter that does not parse is a 400 naming it.

use crate::AppError;

/// The query string of one request, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Result<Params, AppError> {
        let pairs = match raw {
            None | Some("") => Vec::new(),
            Some(raw) => {
                serde_urlencoded::from_str::<Vec<(String, String)>>(raw).map_err(|err| {
                    AppError::bad_request(format!("the query string cannot be read: {err}"))
                })?
            }
        };
        Ok(Params { pairs })
    }

    /// The last non-empty value of `key`, trimmed.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>, AppError> {
        self.get(key)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        AppError::bad_request(format!(
                            "query parameter `{key}` must be a number, got `{v}`"
                        ))
                    })
            })
            .transpose()
    }

    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>, AppError> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    AppError::bad_request(format!(
                        "query parameter `{key}` must be a whole number, got `{v}`"
                    ))
                })
            })
            .transpose()
    }

    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>, AppError> {
        self.get(key).map(|v| parse_id(key, v)).transpose()
    }

    /// A comma-separated list (`avg=arc_easy,gsm8k`), also given as repeated
    /// keys (`avg=a&avg=b`, as checkboxes send it); empty items dropped.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        let mut items: Vec<String> = Vec::new();
        for (_, value) in self.pairs.iter().filter(|(k, _)| k == key) {
            for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !items.iter().any(|i| i == item) {
                    items.push(item.to_string());
                }
            }
        }
        items
    }

    pub(crate) fn id_list(&self, key: &str) -> Result<Vec<i64>, AppError> {
        self.list(key).iter().map(|v| parse_id(key, v)).collect()
    }

    /// A flag: `1`, `true`, `on` or `yes`.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, AppError> {
        match self.get(key) {
            None | Some("0" | "false" | "off" | "no") => Ok(false),
            Some("1" | "true" | "on" | "yes") => Ok(true),
            Some(other) => Err(AppError::bad_request(format!(
                "query parameter `{key}` must be 1 or 0, got `{other}`"
            ))),
        }
    }

    /// This query string with `key` set to `value` (or removed when `None`),
    /// and every key of `drop` removed; `?` included unless empty.
    pub(crate) fn with(&self, key: &str, value: Option<&str>, drop: &[&str]) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .filter(|(k, v)| k != key && !drop.contains(&k.as_str()) && !v.trim().is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(value) = value {
            pairs.push((key, value));
        }
        if pairs.is_empty() {
            return String::new();
        }
        format!(
            "?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }

    /// The whole query string (`?…`), or empty.
    pub(crate) fn query_string(&self) -> String {
        self.with("", None, &[])
    }
}

/// A path or query id.
pub(crate) fn parse_id(what: &str, value: &str) -> Result<i64, AppError> {
    value.trim().parse::<i64>().map_err(|_| {
        AppError::bad_request(format!("`{what}` must be a whole number, got `{value}`"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_bad_numbers_are_named() {
        let params = Params::parse(Some("page=&q=+x+&per_page=abc&sort=name&sort=price")).unwrap();
        assert_eq!(params.get("page"), None);
        assert_eq!(params.get("q"), Some("x"));
        assert_eq!(params.get("sort"), Some("price"));
        let err = params.u64("per_page").unwrap_err();
        assert!(err.message().contains("`per_page`") && err.message().contains("abc"));
        assert_eq!(
            params.with("sort", Some("ttft"), &["page"]),
            "?q=+x+&per_page=abc&sort=ttft"
        );
        assert!(params.f64("q").is_err());
        assert_eq!(
            Params::parse(Some("x=1")).unwrap().f64("x").unwrap(),
            Some(1.0)
        );
        assert!(Params::parse(Some("x=inf")).unwrap().f64("x").is_err());
    }
}
