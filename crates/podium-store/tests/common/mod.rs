//! One database per test on either engine, and `both_engines!`, which turns each
//! `fn NAME(db: &Db)` into the tests `NAME::sqlite` and `NAME::postgres`.

#![allow(dead_code)]

use podium_store::Store;

/// A fresh, empty database: an SQLite file in a temporary folder, or a new
/// database of this test process's throwaway PostgreSQL cluster.
pub(crate) struct Db {
    url: String,
    postgres: bool,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub(crate) fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        // Nested: opening also creates the parent folders.
        let path = dir.path().join("nested/deeper/podium.db");
        Db {
            url: format!("sqlite:{}", path.display()),
            postgres: false,
            _dir: Some(dir),
        }
    }

    /// `None` when PostgreSQL tests are skipped (`PODIUM_SKIP_PG_TESTS=1`).
    pub(crate) fn postgres() -> Option<Db> {
        Some(Db {
            url: podium_testkit::postgres::database()?,
            postgres: true,
            _dir: None,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// A new connection to the database (each call is another "process").
    pub(crate) fn open(&self) -> Store {
        Store::open_url(&self.url).unwrap()
    }

    /// Runs raw SQL behind the store's back (what an older Podium or a person
    /// wrote): `sqlite` on SQLite, `postgres` on PostgreSQL.
    pub(crate) fn raw_sql(&self, sqlite: &str, postgres: &str) {
        if self.postgres {
            let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
            client.batch_execute(postgres).unwrap();
        } else {
            let path = self.url.strip_prefix("sqlite:").unwrap();
            let connection = rusqlite::Connection::open(path).unwrap();
            connection.execute_batch(sqlite).unwrap();
        }
    }
}

#[macro_export]
macro_rules! both_engines {
    ($($(#[doc = $doc:literal])* fn $name:ident($db:ident: &Db) $body:block)*) => {$(
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($db: &Db) $body

            #[test]
            fn sqlite() {
                run(&Db::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = Db::postgres() {
                    run(&db);
                }
            }
        }
    )*};
}
