//! Choosing the engine from `--db`'s text, and PostgreSQL URLs' passwords kept
//! out of every message.

use std::error::Error;

use podium_store::{Location, Store};

/// The error and all its sources, as the CLI prints them (`{:#}`), and its Debug form.
fn everything_said(error: &dyn Error) -> String {
    let mut text = format!("{error:?} / {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause} / {cause:?}"));
        source = cause.source();
    }
    text
}

#[test]
fn a_path_or_sqlite_url_opens_an_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    for (url, file) in [
        (format!("sqlite:{}/a.db", dir.path().display()), "a.db"),
        (format!("{}/b.db", dir.path().display()), "b.db"),
    ] {
        let store = Store::open_url(&url).unwrap();
        assert!(!store.is_postgres());
        assert_eq!(store.journal_mode().unwrap(), "wal");
        assert!(dir.path().join(file).exists(), "{url}");
    }
}

#[test]
fn a_postgres_url_opens_postgresql_and_its_password_is_never_shown() {
    let Some(url) = podium_testkit::postgres::database() else {
        return;
    };
    // The test cluster trusts local connections, so any password is accepted
    // and it must still not appear anywhere.
    let secret = "s3cret-Pa55word";
    let with_password = url.replacen("postgres@", &format!("postgres:{secret}@"), 1);
    assert!(with_password.contains(secret));
    let store = Store::open_url(&with_password).unwrap();
    assert!(store.is_postgres());
    assert!(!store.name().contains(secret), "{}", store.name());
    assert!(store.name().starts_with("postgres://postgres@127.0.0.1:"));
    let location = Location::parse(with_password.as_ref()).unwrap();
    assert!(!format!("{location} {location:?}").contains(secret));

    // A database that does not exist, and a port nothing listens on.
    let (base, _) = with_password.rsplit_once('/').unwrap();
    let missing = format!("{base}/no_such_database");
    let closed = format!("postgres://podium:{secret}@127.0.0.1:1/podium?connect_timeout=5");
    for bad in [missing, closed] {
        let error = match Store::open_url(&bad) {
            Err(error) => error,
            Ok(_) => panic!("opened {bad}"),
        };
        let said = everything_said(&error);
        assert!(!said.contains(secret), "{said}");
        assert!(said.contains("127.0.0.1"), "the database is named: {said}");
    }
}

/// `sslmode=require` connects with TLS and verifies the server's certificate:
/// trusted through `sslrootcert=`, for the name or address in the URL; without
/// it (a self-signed certificate) the connection is refused. No `sslmode`
/// connects without TLS, as before.
#[test]
fn sslmode_require_uses_verified_tls() {
    let Some((url, cert)) = podium_testkit::postgres::database_with_tls_cert() else {
        return;
    };
    let plain = Store::open_url(&url).unwrap();
    assert!(!plain.connection_encrypted().unwrap());
    drop(plain);

    let cert_param = cert.display().to_string().replace('%', "%25");
    for host in ["127.0.0.1", "localhost"] {
        let tls_url = format!(
            "{}?sslmode=require&sslrootcert={cert_param}",
            url.replace("127.0.0.1", host)
        );
        let store = Store::open_url(&tls_url).unwrap();
        assert!(store.connection_encrypted().unwrap(), "{host}");
        store.upsert_task("t", "h", "{}").unwrap();
    }

    // Not trusted: Mozilla's roots do not hold the test cluster's certificate.
    let untrusted = Store::open_url(&format!("{url}?sslmode=verify-full"))
        .err()
        .unwrap();
    assert!(
        everything_said(&untrusted).contains("certificate"),
        "{}",
        everything_said(&untrusted)
    );

    let missing = Store::open_url(&format!(
        "{url}?sslmode=require&sslrootcert=/nonexistent.pem"
    ))
    .err()
    .unwrap();
    assert!(
        missing.to_string().contains("/nonexistent.pem"),
        "{missing}"
    );
    let bad_mode = Store::open_url(&format!("{url}?sslmode=sometimes"))
        .err()
        .unwrap();
    assert!(bad_mode.to_string().contains("sslmode"), "{bad_mode}");
    let cert_without_tls = Store::open_url(&format!("{url}?sslrootcert={cert_param}"))
        .err()
        .unwrap();
    assert!(
        cert_without_tls.to_string().contains("sslmode=require"),
        "{cert_without_tls}"
    );
}
