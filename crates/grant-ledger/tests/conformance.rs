//! The ledger's scenarios on every store: memory, SQLite (a temporary
//! file) and PostgreSQL (a schema of its own on `GRANT_TEST_PG_URL`).
//! tests/store_conformance.rs holds the stores' own suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::places::{PgPlace, Place, SqlitePlace};
use common::scenarios;

macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        mod on_memory {
            $(#[test]
            fn $scenario() {
                super::scenarios::$scenario(std::sync::Arc::new(grant_ledger::store::memory::MemoryStore::new()));
            })*
        }
        mod on_sqlite {
            use super::Place;
            $(#[test]
            fn $scenario() {
                let place = super::SqlitePlace::new();
                super::scenarios::$scenario(place.open());
            })*
        }
        mod on_postgres {
            use super::Place;
            $(#[test]
            fn $scenario() {
                let Some(place) = super::PgPlace::new() else { return };
                super::scenarios::$scenario(place.open());
            })*
        }
    };
}

on_every_store!(
    replay_rebuilds_everything,
    last_use_is_won_once,
    no_use_after_revocation
);

#[test]
fn sqlite_replicas_share_revocations_and_sweeps() {
    let place = SqlitePlace::new();
    scenarios::replicas_share_revocations_and_sweeps(place.open(), place.open());
}

#[test]
fn postgres_replicas_share_revocations_and_sweeps() {
    let Some(place) = PgPlace::new() else { return };
    scenarios::replicas_share_revocations_and_sweeps(place.open(), place.open());
}

#[test]
fn memory_replicas_share_revocations_and_sweeps() {
    let store: Arc<dyn grant_ledger::Store> =
        Arc::new(grant_ledger::store::memory::MemoryStore::new());
    scenarios::replicas_share_revocations_and_sweeps(Arc::clone(&store), store);
}
