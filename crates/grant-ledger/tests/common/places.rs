//! Where a store lives in a test: a temporary SQLite file or a PostgreSQL
//! schema of its own on the test server (`GRANT_TEST_PG_URL`), removed when
//! dropped. Without the variable a PostgreSQL test prints a note and passes,
//! unless `CI` is set: then it fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use grant_ledger::store::{self, Store};

/// A place a store lives, as a URL `store::open` takes, removed when this
/// is dropped.
pub trait Place {
    fn url(&self) -> String;

    fn open(&self) -> Arc<dyn Store> {
        match store::open(&self.url()) {
            Ok(store) => store,
            Err(e) => panic!("cannot open `{}`: {e}", self.url()),
        }
    }
}

pub struct SqlitePlace {
    pub dir: tempfile::TempDir,
}

impl SqlitePlace {
    pub fn new() -> SqlitePlace {
        SqlitePlace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("ledger.db")
    }
}

impl Place for SqlitePlace {
    fn url(&self) -> String {
        format!("sqlite:{}", self.path().display())
    }
}

/// A fresh schema on the test server.
pub struct PgPlace {
    pub server: String,
    pub schema: String,
}

impl PgPlace {
    /// `None` (after a note) when no server is configured outside CI.
    pub fn new() -> Option<PgPlace> {
        let Ok(server) = std::env::var("GRANT_TEST_PG_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "GRANT_TEST_PG_URL is not set: CI must run the PostgreSQL store tests \
                     (.ci/run starts a server and sets it)"
                );
            }
            eprintln!("note: GRANT_TEST_PG_URL is not set; skipping a PostgreSQL store test");
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "grant_t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let place = PgPlace { server, schema };
        place
            .admin()
            .batch_execute(&format!("CREATE SCHEMA {}", place.schema))
            .unwrap();
        Some(place)
    }

    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.server, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to GRANT_TEST_PG_URL: {e}"))
    }

    /// The URL with `extra` parameters.
    pub fn url_with(&self, extra: &str) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-csearch_path%3D{}{extra}",
            self.server, self.schema
        )
    }
}

impl Place for PgPlace {
    fn url(&self) -> String {
        self.url_with("")
    }
}

impl Drop for PgPlace {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}
