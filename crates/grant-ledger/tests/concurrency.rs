//! Concurrency on the memory store (tests/conformance.rs runs the same
//! scenarios on SQLite and PostgreSQL).

mod common;

use std::sync::Arc;

use grant_ledger::store::memory::MemoryStore;

#[test]
fn last_use_is_won_once() {
    common::concurrency::last_use_is_won_once(Arc::new(MemoryStore::new()));
}

#[test]
fn no_use_after_revocation() {
    common::concurrency::no_use_after_revocation(Arc::new(MemoryStore::new()));
}
