//! `chain::verify`: an intact chain checks out; every kind of tampering is
//! named at the first broken seq; signed checkpoints catch a rewritten or
//! truncated chain.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use grant_ledger::chain::{self, GENESIS, Problem, VERIFY_PAGE};
use grant_ledger::checkpoint::{self, Checkpoint, Signer};
use grant_ledger::store::Head;
use grant_ledger::{Event, EventType, StoreErrorKind};
use support::{DownStore, RawStore, append, at, chain_of, memory};

fn problem(seq: u64, what: &str) -> Option<Problem> {
    Some(Problem {
        seq,
        what: what.to_string(),
    })
}

fn signer() -> Signer {
    let (private, _) = checkpoint::generate_key_pair().unwrap();
    Signer::from_pem(&private).unwrap()
}

#[test]
fn an_empty_chain_is_intact() {
    let v = chain::verify(&memory(), &[], None).unwrap();
    assert!(v.is_intact());
    assert_eq!((v.events, v.head), (0, None));
}

#[test]
fn an_intact_chain_across_pages() {
    let store = memory();
    let n = u64::try_from(VERIFY_PAGE).unwrap() * 2 + 1;
    let events = chain_of(&store, n);
    let v = chain::verify(&store, &[], None).unwrap();
    assert_eq!(v.problem, None);
    assert_eq!(v.events, n);
    let last = events.last().unwrap();
    assert_eq!(
        v.head,
        Some(Head {
            seq: n,
            hash: last.hash.clone()
        })
    );
    assert!(events[0].json.contains(GENESIS));
}

/// Exactly one page: the empty read after it ends the walk.
#[test]
fn a_chain_of_exactly_one_page() {
    let store = memory();
    let n = u64::try_from(VERIFY_PAGE).unwrap();
    chain_of(&store, n);
    let v = chain::verify(&store, &[], None).unwrap();
    assert!(v.is_intact());
    assert_eq!(v.events, n);
}

fn tampered(change: impl FnOnce(&RawStore)) -> chain::Verification {
    let store = memory();
    chain_of(&store, 5);
    let raw = RawStore::copy_of(&store);
    assert!(chain::verify(&raw, &[], None).unwrap().is_intact());
    change(&raw);
    chain::verify(&raw, &[], None).unwrap()
}

#[test]
fn a_changed_field_breaks_the_hash() {
    let v = tampered(|raw| raw.edit(3, |e| e["agent"] = "mallory".into()));
    assert_eq!(
        v.problem,
        problem(3, "hash does not match the event's content")
    );
    assert_eq!(v.events, 2);
    assert_eq!(v.head.unwrap().seq, 2);
}

#[test]
fn a_recomputed_hash_breaks_the_next_link() {
    let v = tampered(|raw| {
        raw.edit(3, |e| {
            e["agent"] = "mallory".into();
            let hash = chain::event_hash(e);
            e["hash"] = hash.into();
        });
        let json = raw.events.lock().unwrap()[2].json.clone();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        raw.tamper(3, |row| {
            row.hash = value["hash"].as_str().unwrap().to_string()
        });
    });
    assert_eq!(v.problem, problem(4, "prev_hash does not link to event 3"));
}

#[test]
fn a_removed_event_is_a_gap() {
    let v = tampered(|raw| {
        raw.events.lock().unwrap().remove(2);
    });
    assert_eq!(v.problem, problem(3, "event 3 is missing: seq 4 follows 2"));
}

#[test]
fn reordered_events() {
    let v = tampered(|raw| raw.events.lock().unwrap().swap(1, 2));
    assert_eq!(v.problem, problem(2, "event 2 is missing: seq 3 follows 1"));
}

#[test]
fn a_chain_that_does_not_start_at_1() {
    let v = tampered(|raw| {
        raw.events.lock().unwrap().remove(0);
    });
    assert_eq!(v.problem, problem(1, "the chain starts at seq 2, not 1"));
}

#[test]
fn a_json_seq_other_than_its_place() {
    let v = tampered(|raw| raw.edit(2, |e| e["seq"] = 7.into()));
    assert_eq!(
        v.problem,
        problem(2, "the event says seq 7, but it is stored as 2")
    );
}

#[test]
fn a_first_event_that_does_not_start_from_genesis() {
    let v = tampered(|raw| raw.edit(1, |e| e["prev_hash"] = "ab".repeat(32).into()));
    assert_eq!(
        v.problem,
        problem(1, "prev_hash of the first event is not 64 zeros")
    );
}

#[test]
fn columns_must_agree_with_the_json() {
    let v = tampered(|raw| raw.tamper(4, |row| row.hash = "00".repeat(32)));
    assert_eq!(
        v.problem,
        problem(4, "the store's hash column differs from the event's hash")
    );
    let v = tampered(|raw| raw.tamper(2, |row| row.task_id = Some("task_x".into())));
    assert_eq!(
        v.problem,
        problem(2, "the store's `task_id` column differs from the event's")
    );
    let v = tampered(|raw| raw.tamper(2, |row| row.kind = "grant.used".into()));
    assert_eq!(
        v.problem,
        problem(2, "the store's `type` column differs from the event's")
    );
    let v = tampered(|raw| raw.tamper(2, |row| row.grant_id = Some("grant_x".into())));
    assert_eq!(
        v.problem,
        problem(2, "the store's `grant_id` column differs from the event's")
    );
}

#[test]
fn malformed_rows() {
    let v = tampered(|raw| raw.tamper(2, |row| row.json = "[1]".into()));
    assert_eq!(
        v.problem,
        problem(2, "the stored event is not a JSON object")
    );
    let v = tampered(|raw| raw.tamper(2, |row| row.json = "{".into()));
    assert!(
        v.problem
            .as_ref()
            .unwrap()
            .what
            .starts_with("the stored event is not JSON: "),
        "{v:?}"
    );
    // The same content, not in canonical form.
    let v = tampered(|raw| raw.tamper(2, |row| row.json = row.json.replacen('{', "{ ", 1)));
    assert_eq!(
        v.problem,
        problem(2, "the stored event is not in canonical JSON form")
    );
    let v = tampered(|raw| {
        raw.edit(2, |e| {
            e.as_object_mut().unwrap().remove("hash");
        });
    });
    assert_eq!(v.problem, problem(2, "the event has no `hash`"));
}

#[test]
fn a_store_that_cannot_be_read_is_an_error() {
    let error = chain::verify(&DownStore, &[], None).unwrap_err();
    assert_eq!(error.kind, StoreErrorKind::Unavailable);
}

/// The chain, one checkpoint per event, and the signer.
fn signed(n: u64) -> (RawStore, Vec<Checkpoint>, Signer) {
    let store = memory();
    let events = chain_of(&store, n);
    let signer = signer();
    let checkpoints = events
        .iter()
        .map(|e| signer.sign(e.seq, &e.hash, at(1000)))
        .collect();
    (RawStore::copy_of(&store), checkpoints, signer)
}

#[test]
fn checkpoints_of_an_intact_chain() {
    let (raw, checkpoints, signer) = signed(4);
    let key = signer.verifying_key();
    let v = chain::verify(&raw, &checkpoints, Some(&key)).unwrap();
    assert_eq!(v.problem, None);
    assert_eq!((v.checkpoints, v.key_pinned), (4, true));
    assert_eq!(v.checkpoint_keys, [checkpoint::key_hex(&key)]);
    let v = chain::verify(&raw, &checkpoints, None).unwrap();
    assert!(v.is_intact());
    assert!(!v.key_pinned);
}

#[test]
fn a_truncated_chain_is_caught_by_a_checkpoint() {
    let (raw, checkpoints, signer) = signed(5);
    raw.events.lock().unwrap().truncate(3);
    // The remaining chain is self-consistent.
    assert!(chain::verify(&raw, &[], None).unwrap().is_intact());
    let v = chain::verify(&raw, &checkpoints, Some(&signer.verifying_key())).unwrap();
    assert_eq!(
        v.problem,
        problem(
            4,
            "truncated: the checkpoint at seq 4 is missing from the store"
        )
    );
    assert_eq!(v.events, 3);
}

#[test]
fn a_rewritten_chain_is_caught_by_a_checkpoint() {
    let (raw, checkpoints, signer) = signed(5);
    // Rewrite from event 3 on, recomputing every hash: a consistent chain.
    let mut head = {
        let events = raw.events.lock().unwrap();
        Head {
            seq: 2,
            hash: events[1].hash.clone(),
        }
    };
    for seq in 3..=5 {
        let mut event = Event::new(EventType::TaskOpened, "mallory", support::POLICY, at(0));
        event.event_id = format!("evt_forged_{seq}");
        let stored = chain::seal(&mut event, Some(&head)).unwrap();
        head = Head {
            seq: stored.seq,
            hash: stored.hash.clone(),
        };
        raw.tamper(usize::try_from(seq).unwrap(), |row| *row = stored);
    }
    assert!(chain::verify(&raw, &[], None).unwrap().is_intact());
    let v = chain::verify(&raw, &checkpoints, Some(&signer.verifying_key())).unwrap();
    assert_eq!(
        v.problem,
        problem(3, "rewritten: event 3 differs from the signed checkpoint")
    );
    // Only the last checkpoint kept: still caught, at its seq.
    let v = chain::verify(&raw, &checkpoints[4..], None).unwrap();
    assert_eq!(
        v.problem,
        problem(5, "rewritten: event 5 differs from the signed checkpoint")
    );
}

#[test]
fn checkpoints_must_be_signed_by_the_pinned_key() {
    let (raw, mut checkpoints, signer) = signed(3);
    let mallory = self::signer();
    checkpoints[1] = mallory.sign(2, &checkpoints[1].hash, at(1000));
    // Unpinned, Mallory's checkpoint verifies with the key it names.
    let v = chain::verify(&raw, &checkpoints, None).unwrap();
    assert!(v.is_intact());
    assert_eq!(v.checkpoint_keys.len(), 2);
    let v = chain::verify(&raw, &checkpoints, Some(&signer.verifying_key())).unwrap();
    let p = v.problem.unwrap();
    assert_eq!(p.seq, 2);
    assert!(p.what.contains("not by the pinned key"), "{}", p.what);
    // A forged signature never verifies.
    checkpoints[1] = signer.sign(2, &checkpoints[1].hash, at(1000));
    checkpoints[1].hash = "ff".repeat(32);
    let v = chain::verify(&raw, &checkpoints, None).unwrap();
    assert_eq!(
        v.problem,
        problem(
            2,
            "the signature of the checkpoint at seq 2 does not verify"
        )
    );
}

#[test]
fn the_first_problem_by_seq_wins() {
    let (raw, checkpoints, signer) = signed(5);
    raw.edit(4, |e| e["agent"] = "mallory".into());
    let v = chain::verify(&raw, &checkpoints, Some(&signer.verifying_key())).unwrap();
    assert_eq!(
        v.problem,
        problem(4, "hash does not match the event's content")
    );
}

#[test]
fn a_checkpoint_of_the_empty_chain() {
    let signer = signer();
    let empty = memory();
    let ok = signer.sign(0, GENESIS, at(0));
    assert!(chain::verify(&empty, &[ok], None).unwrap().is_intact());
    let bad = signer.sign(0, &"ab".repeat(32), at(0));
    assert_eq!(
        chain::verify(&empty, &[bad], None).unwrap().problem,
        problem(0, "rewritten: event 0 differs from the signed checkpoint")
    );
    let later = signer.sign(1, &"ab".repeat(32), at(0));
    assert_eq!(
        chain::verify(&empty, &[later], None).unwrap().problem,
        problem(
            1,
            "truncated: the checkpoint at seq 1 is missing from the store"
        )
    );
    let store = memory();
    append(
        &store,
        Event::new(EventType::PolicyActivated, "ledger", support::POLICY, at(0)),
    );
    assert!(chain::verify(&store, &[], None).unwrap().is_intact());
}
