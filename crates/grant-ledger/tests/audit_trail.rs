//! The ledger's audit trail end to end: signed checkpoints written as the
//! chain grows verify against it (and catch a truncation), and configured
//! attribute paths reach the events only as keyed hashes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::Fixture;
use grant_ledger::store::Store;
use grant_ledger::store::memory::MemoryStore;
use grant_ledger::{CheckpointConfig, LedgerConfig, Redactor, Signer};
use serde_json::json;

#[test]
fn checkpoints_are_signed_stored_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = grant_ledger::checkpoint::generate_key_pair().unwrap();
    let signer = Arc::new(Signer::from_pem(&private).unwrap());
    let key = grant_ledger::checkpoint::public_key_from_pem(&public).unwrap();
    let file = dir.path().join("checkpoints.ndjson");
    let config = LedgerConfig {
        checkpoints: Some(CheckpointConfig {
            signer,
            file: file.clone(),
            every: 4,
        }),
        ..LedgerConfig::default()
    };
    let store: Arc<dyn grant_ledger::Store> = Arc::new(MemoryStore::new());
    let f = Fixture::with(Arc::clone(&store), "lifecycle.grant", config);
    let task = f.open("agent", None);
    for _ in 0..6 {
        f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    }
    let checkpoints = grant_ledger::checkpoint::read_file(&file).unwrap();
    assert!(checkpoints.len() >= 2, "{checkpoints:?}");
    let verification =
        grant_ledger::chain::verify(store.as_ref(), &checkpoints, Some(&key)).unwrap();
    assert!(verification.is_intact(), "{verification:?}");
    assert!(verification.key_pinned);
    // The latest is kept in the store too.
    let mut stored = None;
    store
        .read(&mut |tx| {
            stored = tx.meta("checkpoint")?;
            Ok(())
        })
        .unwrap();
    let stored: grant_ledger::Checkpoint = serde_json::from_str(&stored.unwrap()).unwrap();
    assert_eq!(&stored, checkpoints.last().unwrap());

    // A copy of the chain cut before the last checkpoint is caught.
    let copy = MemoryStore::new();
    let events = f.ledger.events_after(0, (stored.seq - 1) as usize).unwrap();
    copy.write(&mut |tx| {
        for event in &events {
            tx.append(event)?;
        }
        Ok(())
    })
    .unwrap();
    let truncated = grant_ledger::chain::verify(&copy, &checkpoints, Some(&key)).unwrap();
    let problem = truncated.problem.unwrap();
    assert_eq!(problem.seq, stored.seq);
    assert!(problem.what.contains("truncated"), "{}", problem.what);
}

#[test]
fn redacted_paths_reach_events_as_keyed_hashes() {
    let redactor = Redactor::new([7; 32], vec!["amount_cents".into()]).unwrap();
    let expected = redactor.hash(&json!(1200));
    let config = LedgerConfig {
        redactor: Some(redactor),
        ..LedgerConfig::default()
    };
    let f = Fixture::with(Arc::new(MemoryStore::new()), "lifecycle.grant", config);
    let task = f.open("agent", None);
    let grant = f.issue(&task, "payments.refund", json!({"amount_cents": 1200}));
    // Decided on the real value (an allow under 50,000), recorded hashed.
    assert_eq!(grant.uses_left, Some(1));
    let events = f.ledger.timeline(&task.task_id).unwrap();
    let issued = events
        .iter()
        .find(|e| e.kind == grant_ledger::EventType::GrantIssued)
        .unwrap();
    assert_eq!(issued.attrs, Some(json!({"amount_cents": expected})));
    let all: String = f
        .ledger
        .events_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.json)
        .collect();
    assert!(
        !all.contains("1200"),
        "the value appears nowhere in the chain"
    );
}
