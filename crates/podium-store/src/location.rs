//! Where a store lives: an SQLite file or a PostgreSQL database, chosen from
//! one string (`--db`, `PODIUM_DB`). A PostgreSQL URL may hold a password; it
//! is kept only inside the parsed connection settings and never shown: every
//! message names the database by [`Location`]'s `Display`, which leaves it out.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::StoreError;

/// A database to open with [`Store::open_location`](crate::Store::open_location).
#[derive(Clone)]
pub enum Location {
    /// An SQLite file (`sqlite:PATH`, `sqlite://PATH` or a plain path).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`).
    Postgres(PostgresUrl),
}

/// A parsed `postgres://` URL and its name without the password.
#[derive(Clone)]
pub struct PostgresUrl {
    pub(crate) config: Box<postgres::Config>,
    name: String,
    /// `Some` when the URL asks for TLS (`sslmode=require`, `verify-ca` or
    /// `verify-full`): the server's certificate is then always verified,
    /// against Mozilla's roots and the `sslrootcert=FILE` certificates.
    pub(crate) tls: Option<TlsSettings>,
}

/// How a TLS connection to PostgreSQL checks the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// Extra trusted certificates (PEM), e.g. a private CA or the server's own.
    pub(crate) root_cert: Option<PathBuf>,
}

impl Location {
    /// Picks the engine from `text`: `postgres://` and `postgresql://` are
    /// PostgreSQL; `sqlite:PATH` and anything else is the SQLite file at that path.
    pub fn parse(text: &OsStr) -> Result<Location, StoreError> {
        let Some(utf8) = text.to_str() else {
            return Ok(Location::Sqlite(PathBuf::from(text)));
        };
        if utf8.starts_with("postgres://") || utf8.starts_with("postgresql://") {
            return PostgresUrl::parse(utf8).map(Location::Postgres);
        }
        let path = utf8
            .strip_prefix("sqlite://")
            .or_else(|| utf8.strip_prefix("sqlite:"))
            .unwrap_or(utf8);
        Ok(Location::Sqlite(PathBuf::from(path)))
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl PostgresUrl {
    fn parse(url: &str) -> Result<PostgresUrl, StoreError> {
        let (url, tls) = take_tls_options(url)?;
        // The parser's own message could quote the text it stumbled on, password
        // included, so only its kind of mistake is reported, with the safe prefix.
        let mut config = postgres::Config::from_str(&url).map_err(|_| StoreError::BadUrl {
            scheme: url.split("://").next().unwrap_or("postgres").to_owned(),
        })?;
        config.ssl_mode(if tls.is_some() {
            postgres::config::SslMode::Require
        } else {
            postgres::config::SslMode::Disable
        });
        let name = display_name(&config);
        Ok(PostgresUrl {
            config: Box::new(config),
            name,
            tls,
        })
    }

    /// `postgres://user@host:port/database`, never with the password.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Takes libpq's `sslmode` and `sslrootcert` out of the URL's query (the
/// client library knows only part of them) and says whether to use TLS.
/// `disable`, `allow` and `prefer` (and no `sslmode`) connect without TLS;
/// `require`, `verify-ca` and `verify-full` connect with TLS and, stricter
/// than libpq's `require`, always verify the server's certificate and name.
fn take_tls_options(url: &str) -> Result<(String, Option<TlsSettings>), StoreError> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(value.to_string()),
            "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value))),
            _ => kept.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => None,
        Some("require" | "verify-ca" | "verify-full") => Some(TlsSettings {
            root_cert: root_cert.clone(),
        }),
        Some(other) => {
            return Err(StoreError::UrlOption {
                option: "sslmode",
                message: format!(
                    "`{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ),
            });
        }
    };
    if tls.is_none() && root_cert.is_some() {
        return Err(StoreError::UrlOption {
            option: "sslrootcert",
            message: "it needs sslmode=require (or verify-ca, verify-full)".into(),
        });
    }
    let url = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

/// `%XX` escapes decoded (a path in a URL query); anything malformed kept as it is.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The URL rebuilt from its settings, with everything but the password.
fn display_name(config: &postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{database}", hosts.join(","))
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(url.name()),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(&url.name).finish(),
        }
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        let location = Location::parse(OsStr::new(text)).unwrap();
        let shown = match &location {
            Location::Sqlite(path) => format!("sqlite {}", path.display()),
            Location::Postgres(url) => format!("postgres {}", url.name()),
        };
        assert_eq!(shown, expected, "{text}");
        assert!(
            !format!("{location} {location:?}").contains("s3cret"),
            "{text}"
        );
    }

    #[test]
    fn the_engine_is_chosen_by_the_url() {
        check("podium.db", "sqlite podium.db");
        check(
            "/var/lib/podium/podium.db",
            "sqlite /var/lib/podium/podium.db",
        );
        check("sqlite:runs.db", "sqlite runs.db");
        check("sqlite:///abs/runs.db", "sqlite /abs/runs.db");
        check(
            "postgres://podium:s3cret@db.example:5433/board",
            "postgres postgres://podium@db.example:5433/board",
        );
        check(
            "postgresql://podium:s3cret@localhost/board?connect_timeout=5",
            "postgres postgres://podium@localhost:5432/board",
        );
        // A folder named like a scheme without `//` is still a path.
        check("postgres/podium.db", "sqlite postgres/podium.db");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let error =
            Location::parse(OsStr::new("postgres://u:s3cret@host:notaport/db")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("postgres"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
