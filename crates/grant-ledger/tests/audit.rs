//! Reads of the audit trail: a task's timeline with its sub-tasks, pages of
//! the chain, and the timeline rendered for people (snapshotted).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use grant_ledger::{LedgerError, audit};
use support::{CHILD, DownStore, OTHER, ROOT, lifecycle, memory};

#[test]
fn a_timeline_holds_the_task_and_its_subtasks_in_order() {
    let store = memory();
    lifecycle(&store);
    let events = audit::timeline(&store, ROOT).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13]);
    assert!(events.iter().all(|e| e.task_id.as_deref() != Some(OTHER)));
    let child: Vec<u64> = audit::timeline(&store, CHILD)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(child, [4, 5, 6, 7, 9]);
}

#[test]
fn an_unknown_task_is_not_found() {
    let store = memory();
    lifecycle(&store);
    assert_eq!(
        audit::timeline(&store, "task_nope").unwrap_err(),
        LedgerError::NotFound {
            what: "task",
            id: "task_nope".to_string()
        }
    );
    assert!(matches!(
        audit::timeline(&DownStore, ROOT),
        Err(LedgerError::Store(_))
    ));
}

#[test]
fn pages_of_the_chain() {
    let store = memory();
    lifecycle(&store);
    let page = audit::events_after(&store, 3, 4).unwrap();
    let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
    assert!(audit::events_after(&store, 13, 10).unwrap().is_empty());
    let many = support::memory();
    support::chain_of(&many, 1500);
    assert_eq!(
        audit::events_after(&many, 0, 5000).unwrap().len(),
        audit::MAX_EVENTS_PAGE
    );
}

#[test]
fn rendered_timeline() {
    let store = memory();
    lifecycle(&store);
    let events = audit::timeline(&store, ROOT).unwrap();
    insta::assert_snapshot!(audit::render_timeline(&events));
}

#[test]
fn rendered_timeline_of_a_subtask() {
    let store = memory();
    lifecycle(&store);
    let events = audit::timeline(&store, CHILD).unwrap();
    insta::assert_snapshot!(audit::render_timeline(&events));
}

#[test]
fn rendering_nothing() {
    assert_eq!(audit::render_timeline(&[]), "");
}
