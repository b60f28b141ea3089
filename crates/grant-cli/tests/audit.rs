//! `grant audit verify | show | export` on SQLite ledgers: an intact
//! chain, a tampered event, a truncated or rewritten chain caught by signed
//! checkpoints, timelines, exports, and the exit codes.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};

use grant_cli::Exit;
use grant_ledger::checkpoint::{self, Signer};
use grant_ledger::store::StoredEvent;
use support::{binary, grant, ledger_from, scratch, seal_into, tamper};

const LIFECYCLE: &str = "tests/inputs/audit/lifecycle.ndjson";
const ROOT: &str = "task_7c1e4a2b9d3f4e5a8b6c0d1e2f3a4b5c";

/// A scratch directory holding `ledger.db` with the lifecycle fixture.
fn ledger(name: &str) -> (PathBuf, String, Vec<StoredEvent>) {
    let dir = scratch(name);
    let db = dir.join("ledger.db");
    let events = ledger_from(LIFECYCLE, &db);
    (dir, format!("sqlite:{}", db.display()), events)
}

/// A key pair written as `grant keygen` writes it, and checkpoints of
/// `events` (at the seqs given) appended to `checkpoints.ndjson`.
fn checkpoints(dir: &Path, events: &[StoredEvent], seqs: &[u64]) -> (String, String) {
    let run = grant(&["keygen", "--out", dir.join("audit").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let signer = Signer::load(&dir.join("audit.key")).unwrap();
    let file = dir.join("checkpoints.ndjson");
    for &seq in seqs {
        let event = &events[usize::try_from(seq).unwrap() - 1];
        let signed = signer.sign(seq, &event.hash, grant_ledger::Timestamp::from_secs(0));
        checkpoint::append(&file, &signed).unwrap();
    }
    (
        file.to_str().unwrap().to_string(),
        dir.join("audit.pub").to_str().unwrap().to_string(),
    )
}

#[test]
fn an_intact_chain() {
    let (dir, store, events) = ledger("intact");
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("13 events, head seq 13 hash {}\n", events[12].hash)
    );
    assert_eq!(run.stderr, "");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_tampered_event_is_named() {
    let (dir, store, _) = ledger("tampered");
    let db = dir.join("ledger.db");
    // Event 5 now grants another tool; its hash was left as it was.
    tamper(
        &db,
        "UPDATE events SET json = replace(json, 'payments.refund', 'payments.payout') WHERE seq = 5",
    );
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert_eq!(
        run.stdout,
        "broken at seq 5: hash does not match the event's content (4 events intact before it)\n"
    );
    let run = grant(&["audit", "verify", "--store", &store, "--format", "json"]);
    assert_eq!(run.exit, Exit::BROKEN);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["intact"], false);
    assert_eq!(json["events"], 4);
    assert_eq!(json["head"]["seq"], 4);
    assert_eq!(
        json["problem"],
        serde_json::json!({"seq": 5, "what": "hash does not match the event's content"})
    );
    // The real process exits 1.
    let (code, stdout, _) = binary(&["audit", "verify", "--store", &store]);
    assert_eq!(code, Some(1));
    assert!(stdout.starts_with("broken at seq 5: "), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_deleted_event_is_a_gap() {
    let (dir, store, _) = ledger("gap");
    tamper(&dir.join("ledger.db"), "DELETE FROM events WHERE seq = 8");
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert_eq!(
        run.stdout,
        "broken at seq 8: event 8 is missing: seq 9 follows 7 (7 events intact before it)\n"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_moved_event_is_caught_by_its_index_column() {
    let (dir, store, _) = ledger("column");
    // Hiding event 6 from its task's timeline, without touching its JSON.
    tamper(
        &dir.join("ledger.db"),
        "UPDATE events SET task_id = 'task_elsewhere' WHERE seq = 6",
    );
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert!(
        run.stdout
            .starts_with("broken at seq 6: the store's `task_id` column differs"),
        "{}",
        run.stdout
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_truncated_chain_is_caught_by_a_checkpoint() {
    let (dir, store, events) = ledger("truncated");
    let (file, key) = checkpoints(&dir, &events, &[5, 10, 13]);
    let run = grant(&[
        "audit",
        "verify",
        "--store",
        &store,
        "--checkpoint",
        &file,
        "--key",
        &key,
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "13 events, head seq 13 hash {}, 3 checkpoints signed by the pinned key\n",
            events[12].hash
        )
    );
    tamper(&dir.join("ledger.db"), "DELETE FROM events WHERE seq > 11");
    // The chain alone cannot tell.
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::Ok);
    assert!(run.stdout.starts_with("11 events, head seq 11 hash "));
    let run = grant(&[
        "audit",
        "verify",
        "--store",
        &store,
        "--checkpoint",
        &file,
        "--key",
        &key,
    ]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert_eq!(
        run.stdout,
        "broken at seq 13: truncated: the checkpoint at seq 13 is missing from the store \
(11 events intact before it)\n"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_rewritten_chain_is_caught_by_a_checkpoint() {
    let (dir, store, events) = ledger("rewritten");
    let (file, key) = checkpoints(&dir, &events, &[13]);
    // Rebuild the whole ledger with event 12 (the revocation) left out:
    // every hash recomputed, a consistent chain of 12 events; then forge
    // a 13th so that the length matches too.
    let db = dir.join("ledger.db");
    std::fs::remove_file(&db).unwrap();
    let mut forged: Vec<grant_ledger::Event> = std::fs::read_to_string(LIFECYCLE)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    forged.remove(11);
    forged.push(forged[10].clone());
    seal_into(&db, forged);
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stdout);
    let run = grant(&[
        "audit",
        "verify",
        "--store",
        &store,
        "--checkpoint",
        &file,
        "--key",
        &key,
    ]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert_eq!(
        run.stdout,
        "broken at seq 13: rewritten: event 13 differs from the signed checkpoint \
(12 events intact before it)\n"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn checkpoints_without_a_pinned_key_say_so() {
    let (dir, store, events) = ledger("unpinned");
    let (file, key) = checkpoints(&dir, &events, &[13]);
    let public = checkpoint::key_hex(&checkpoint::load_public_key(Path::new(&key)).unwrap());
    let run = grant(&["audit", "verify", "--store", &store, "--checkpoint", &file]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(
        run.stdout.ends_with(&format!(
            ", 1 checkpoint signed by key {public} (not pinned: pass --key to pin it)\n"
        )),
        "{}",
        run.stdout
    );
    // Pinned to another key, the same checkpoint fails.
    let other = scratch("unpinned-other");
    let run = grant(&["keygen", "--out", other.join("k").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok);
    let other_key = other.join("k.pub");
    let run = grant(&[
        "audit",
        "verify",
        "--store",
        &store,
        "--checkpoint",
        &file,
        "--key",
        other_key.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.exit, Exit::BROKEN);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["key_pinned"], true);
    assert!(
        json["problem"]["what"]
            .as_str()
            .unwrap()
            .contains("not by the pinned key"),
        "{json}"
    );
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(other).unwrap();
}

#[test]
fn what_cannot_be_read_exits_2() {
    let dir = scratch("unreadable");
    let missing = dir.join("missing.db");
    let url = format!("sqlite:{}", missing.display());
    let run = grant(&["audit", "verify", "--store", &url]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        format!(
            "error: no ledger at `{}`: no such file\n",
            missing.display()
        )
    );
    assert!(!missing.exists(), "verify must not create a ledger");

    let run = grant(&["audit", "export", "--store", "memory"]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr
            .starts_with("error: the `memory` store lives inside one process"),
        "{}",
        run.stderr
    );

    let run = grant(&["audit", "verify", "--store", "mysql://x"]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr.starts_with("error: `mysql://x` names no store"),
        "{}",
        run.stderr
    );

    let not_a_ledger = dir.join("notes.txt");
    std::fs::write(&not_a_ledger, "hello").unwrap();
    let run = grant(&[
        "audit",
        "verify",
        "--store",
        &format!("sqlite:{}", not_a_ledger.display()),
    ]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);

    let (ledger_dir, store, _) = ledger("unreadable-ledger");
    let bad = dir.join("bad.ndjson");
    std::fs::write(&bad, "\n{\"seq\": 1}\n").unwrap();
    let run = grant(&[
        "audit",
        "verify",
        "--store",
        &store,
        "--checkpoint",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr
            .starts_with(&format!("error: {}:2: not a checkpoint: ", bad.display())),
        "{}",
        run.stderr
    );
    // A key needs checkpoints to check.
    let run = grant(&["audit", "verify", "--store", &store, "--key", "k.pub"]);
    assert_eq!(run.exit, Exit::Usage);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(ledger_dir).unwrap();
}

#[test]
fn show_renders_the_timeline() {
    let (dir, store, _) = ledger("show");
    let run = grant(&["audit", "show", "--store", &store, "--task", ROOT]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);

    let run = grant(&[
        "audit", "show", "--store", &store, "--task", ROOT, "--format", "json",
    ]);
    assert_eq!(run.exit, Exit::Ok);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let seqs: Vec<u64> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13]);

    let run = grant(&["audit", "show", "--store", &store, "--task", "task_nope"]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        format!("error: no task `task_nope` in `{}`\n", store)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn export_writes_the_stored_events() {
    let (dir, store, _) = ledger("export");
    let run = grant(&["audit", "export", "--store", &store]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(run.stdout, std::fs::read_to_string(LIFECYCLE).unwrap());
    let run = grant(&["audit", "export", "--store", &store, "--after", "10"]);
    let seqs: Vec<u64> = run
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [11, 12, 13]);
    let run = grant(&["audit", "export", "--store", &store, "--after", "13"]);
    assert_eq!((run.exit, run.stdout.as_str()), (Exit::Ok, ""));
    std::fs::remove_dir_all(dir).unwrap();
}

/// More than two pages: export and verify read the chain page by page.
#[test]
fn long_chains_are_read_in_pages() {
    let dir = scratch("pages");
    let db = dir.join("ledger.db");
    let n = grant_ledger::audit::MAX_EVENTS_PAGE * 2 + 7;
    let events: Vec<grant_ledger::Event> = (0..n)
        .map(|i| {
            let mut e = grant_ledger::Event::new(
                grant_ledger::EventType::PolicyActivated,
                "ledger",
                "sha256:00",
                grant_ledger::Timestamp::from_secs(i64::try_from(i).unwrap()),
            );
            e.event_id = format!("evt_{i:032x}");
            e
        })
        .collect();
    let stored = seal_into(&db, events);
    let store = format!("sqlite:{}", db.display());
    let run = grant(&["audit", "export", "--store", &store]);
    assert_eq!(run.stdout.lines().count(), n);
    assert_eq!(run.stdout.lines().last().unwrap(), stored[n - 1].json);
    let run = grant(&["audit", "verify", "--store", &store]);
    assert_eq!(run.exit, Exit::Ok);
    assert!(
        run.stdout
            .starts_with(&format!("{n} events, head seq {n} "))
    );
    std::fs::remove_dir_all(dir).unwrap();
}
