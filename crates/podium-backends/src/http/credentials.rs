//! Secrets kept out of every string we print or store: key-like spec options and URL
//! credentials blanked in specs, `user:password@` taken out of base URLs, the API key
//! and the header it travels in.

use reqwest::header::HeaderValue;

use crate::secrets;

use super::EndpointError;

/// The spec with any value of a key-like option blanked, for error messages:
/// a user who pasted a key into the spec must not see it echoed into logs.
/// The credentials of any URL in it (`scheme://user:password@host`) are blanked too.
pub fn redact_spec(spec: &str) -> String {
    // Key-like options first, on the spec as written: blanking URL credentials first
    // could eat the `=` of an option whose value then showed whole (found by the
    // model_spec fuzz target).
    redact_url_credentials(&redact_secret_options(spec))
}

/// The spec with the value of every key-like option blanked.
pub(super) fn redact_secret_options(spec: &str) -> String {
    let Some((head, query)) = spec.split_once('?') else {
        return spec.to_string();
    };
    // A malformed spec may hold a second `?` (found by the model_spec fuzz target:
    // `…?x=y?api_key=SECRET`): both `?` and `&` end a pair.
    let redact = |pair: &str| match pair.split_once('=') {
        Some((key, _)) if is_secret_option(key) => format!("{key}=***"),
        _ => pair.to_string(),
    };
    let mut out = format!("{head}?");
    let mut start = 0;
    for (at, separator) in query.match_indices(['&', '?']) {
        out.push_str(&redact(&query[start..at]));
        out.push_str(separator);
        start = at + separator.len();
    }
    out.push_str(&redact(&query[start..]));
    out
}

/// `text` with the `user:password@` part of every URL in it replaced by `***@`.
pub(super) fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after.find(['/', '?', '#', '&', ' ']).unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                rest = &after[userinfo_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The credentials a base URL carries (`http://user:password@host/…`), taken out
/// of it: they travel as an `Authorization: Basic` header marked sensitive, and
/// never in the URL that is stored, shown or logged.
#[derive(Clone)]
pub(crate) struct UrlCredentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlCredentials(***)")
    }
}

impl UrlCredentials {
    /// The header value `Basic base64(user:password)`, marked sensitive.
    pub(super) fn header_value(&self) -> Result<HeaderValue, EndpointError> {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        // A server may echo the header back in an error.
        secrets::register(&token);
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| EndpointError::CredentialsNotAHeader)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Split `scheme://user:password@host/path` into the URL without its credentials
/// and the credentials (percent-decoded); a URL without them comes back unchanged.
/// Every form of the credentials is registered as a secret, to be scrubbed from
/// anything a server sends back.
pub(crate) fn take_url_credentials(url: &str) -> (String, Option<UrlCredentials>) {
    let Some(at) = url.find("://") else {
        return (url.to_string(), None);
    };
    let after = &url[at + 3..];
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let Some(userinfo_end) = after[..authority_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = &after[..userinfo_end];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    for raw in [userinfo, user, password] {
        secrets::register(raw);
    }
    let credentials = UrlCredentials {
        user: percent_decode(user),
        password: percent_decode(password),
    };
    secrets::register(&credentials.user);
    secrets::register(&credentials.password);
    let bare = format!("{}{}", &url[..at + 3], &after[userinfo_end + 1..]);
    (bare, Some(credentials))
}

/// `%XX` escapes decoded (as UTF-8, lossily); anything else kept.
pub(super) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Option names that look like they carry a secret rather than name one.
pub(crate) fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key != "api_key_env"
        && key != "tokenizer"
        && (key.contains("key") || key.contains("token") || key == "secret")
}

/// An API key. It has no `Display`, and its `Debug` prints nothing of it.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl ApiKey {
    /// Read the key from `env_name`. Errors name the variable, never its value.
    pub(crate) fn from_env(env_name: &str) -> Result<ApiKey, EndpointError> {
        match std::env::var(env_name) {
            Ok(key) if !key.trim().is_empty() => {
                secrets::register(key.trim());
                Ok(ApiKey(key.trim().to_string()))
            }
            Ok(_) => Err(EndpointError::KeyEmpty(env_name.to_string())),
            Err(std::env::VarError::NotPresent) => {
                Err(EndpointError::KeyNotSet(env_name.to_string()))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(EndpointError::KeyNotUnicode(env_name.to_string()))
            }
        }
    }

    /// The key itself, for the endpoint to remove it from text (never to show it).
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// A header value carrying the key, marked sensitive so HTTP debug output hides it.
    pub(super) fn header_value(&self, prefix: &str) -> Result<HeaderValue, EndpointError> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .map_err(|_| EndpointError::KeyNotAHeader)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// How the key travels: `Authorization: Bearer KEY` (OpenAI) or `x-api-key: KEY` (Anthropic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyHeader {
    Bearer,
    XApiKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 9): `http://user:PASS@host` went into `models.spec` and
    /// onto the board; the credentials now leave the URL (to travel as a header).
    #[test]
    fn url_credentials_are_taken_out_of_the_url() {
        let (bare, credentials) =
            take_url_credentials("http://alice:s3cr%40t-Passw0rd@127.0.0.1:8000/v1");
        assert_eq!(bare, "http://127.0.0.1:8000/v1");
        let credentials = credentials.unwrap();
        assert_eq!(credentials.user, "alice");
        assert_eq!(credentials.password, "s3cr@t-Passw0rd");
        assert_eq!(format!("{credentials:?}"), "UrlCredentials(***)");
        let header = credentials.header_value().unwrap();
        assert!(header.is_sensitive());
        // base64("alice:s3cr@t-Passw0rd")
        assert_eq!(
            header.to_str().unwrap(),
            "Basic YWxpY2U6czNjckB0LVBhc3N3MHJk"
        );
        // A URL without credentials is left exactly as it was; an `@` past the host is not one.
        for url in ["http://h:1/v1", "https://h/a@b", "http://h?x=a@b", "h"] {
            let (same, none) = take_url_credentials(url);
            assert_eq!((same.as_str(), none.is_none()), (url, true));
        }
        // Scrubbed from anything a server sends back, in every form.
        assert_eq!(secrets::redact("echo s3cr%40t-Passw0rd"), "echo ***");
        assert_eq!(secrets::redact("echo s3cr@t-Passw0rd"), "echo ***");
    }

    #[test]
    fn url_credentials_are_blanked_in_specs() {
        assert_eq!(
            redact_spec("openai-compatible:http://bob:hunter2-long@h:8/v1#m?api=chat"),
            "openai-compatible:http://***@h:8/v1#m?api=chat"
        );
        assert_eq!(
            redact_spec("anthropic:c?base_url=https://u:pw@proxy/x&api_key=sk-1"),
            "anthropic:c?base_url=https://***@proxy/x&api_key=***"
        );
        assert_eq!(redact_spec("mock:a@b"), "mock:a@b");
    }

    #[test]
    fn secrets_in_specs_are_blanked() {
        assert_eq!(
            redact_spec("openai:gpt?api_key=sk-123&api_key_env=X&concurrency=2"),
            "openai:gpt?api_key=***&api_key_env=X&concurrency=2"
        );
        assert_eq!(redact_spec("openai:gpt"), "openai:gpt");
        // A second `?` ends a pair too (a malformed spec the fuzzer wrote).
        assert_eq!(
            redact_spec("openai-compatible:http://1?=x?api_key=sk-0123456789&a=b"),
            "openai-compatible:http://1?=x?api_key=***&a=b"
        );
        assert_eq!(format!("{:?}", ApiKey("sk-123".into())), "ApiKey(***)");
    }
}
