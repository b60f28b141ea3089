//! The audit chain: each event's `hash` is SHA-256 over the canonical JSON
//! (RFC 8785) of the event without `hash`, and its `prev_hash` is the
//! previous event's `hash` (64 zeros before the first), so changing,
//! dropping or reordering any event breaks every hash after it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::error::LedgerError;
use crate::event::Event;
use crate::store::{Head, Store, StoreError, StoredEvent};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash an event must carry: over its JSON object without `hash`.
pub fn event_hash(event: &serde_json::Value) -> String {
    let mut without = event.clone();
    if let Some(map) = without.as_object_mut() {
        map.remove("hash");
    }
    crate::hex::encode(&Sha256::digest(crate::jcs::to_string(&without).as_bytes()))
}

/// Places `event` after `head`: sets `seq`, `prev_hash` and `hash`, and
/// returns the stored form (canonical JSON, hash included).
pub fn seal(event: &mut Event, head: Option<&Head>) -> Result<StoredEvent, LedgerError> {
    event.seq = head.map_or(1, |h| h.seq + 1);
    event.prev_hash = head.map_or_else(|| GENESIS.to_string(), |h| h.hash.clone());
    event.hash.clear();
    let mut value = serde_json::to_value(&*event)
        .map_err(|e| LedgerError::Internal(format!("cannot encode an event: {e}")))?;
    if let Some(map) = value.as_object_mut() {
        map.remove("hash");
    }
    event.hash = crate::hex::encode(&Sha256::digest(crate::jcs::to_string(&value).as_bytes()));
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "hash".to_string(),
            serde_json::Value::String(event.hash.clone()),
        );
    }
    Ok(StoredEvent {
        seq: event.seq,
        hash: event.hash.clone(),
        kind: event.kind.as_str().to_string(),
        task_id: event.task_id.clone(),
        grant_id: event.grant_id.clone(),
        json: crate::jcs::to_string(&value),
    })
}

/// How many events [`verify`] reads at a time: its memory stays bounded
/// whatever the length of the chain.
pub const VERIFY_PAGE: usize = 1000;

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Events found intact, from seq 1.
    pub events: u64,
    /// The last intact event: the head of an intact chain.
    pub head: Option<Head>,
    /// Checkpoints given.
    pub checkpoints: usize,
    /// Whether their signatures were checked against a pinned key; when
    /// not, [`Verification::checkpoint_keys`] lists the keys they name,
    /// which prove only that whoever holds them signed.
    pub key_pinned: bool,
    /// The distinct public keys (hex) the checkpoints name, sorted.
    pub checkpoint_keys: Vec<String>,
    /// The first problem, by seq; `None` when everything checked out.
    pub problem: Option<Problem>,
}

impl Verification {
    /// Whether the chain (and every checkpoint) checked out.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Where verification failed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The first event (or checkpoint) that does not check out.
    pub seq: u64,
    /// Why, in a sentence for people.
    pub what: String,
}

/// Recomputes the chain: each event's JSON is a canonical JSON object
/// whose `seq` is its place (gapless from 1), whose `prev_hash` is the
/// previous event's `hash` ([`GENESIS`] first), whose `hash` is
/// [`event_hash`] of its content, and which agrees with the columns it is
/// stored and looked up by. Then every checkpoint must carry a valid
/// signature (by `key` when given) and name an event the chain holds with
/// that hash: a missing one means the chain was truncated, another hash
/// that it was rewritten.
///
/// Reads [`VERIFY_PAGE`] events at a time, each page in its own read: the
/// chain is append-only, so the pages of a growing chain still join up.
/// Stops at the first broken event. `Err` only when the store cannot be
/// read; a broken chain is an `Ok` with a [`Problem`].
pub fn verify(
    store: &dyn Store,
    checkpoints: &[Checkpoint],
    key: Option<&VerifyingKey>,
) -> Result<Verification, StoreError> {
    let mut problems: Vec<Problem> = Vec::new();
    // Checkpoints to compare, by seq; those whose signature fails are
    // problems themselves and prove nothing about the chain.
    let mut expected: BTreeMap<u64, Vec<&Checkpoint>> = BTreeMap::new();
    for checkpoint in checkpoints {
        match checkpoint.verify(key) {
            Ok(()) => expected.entry(checkpoint.seq).or_default().push(checkpoint),
            Err(error) => problems.push(Problem {
                seq: checkpoint.seq,
                what: error.to_string(),
            }),
        }
    }
    let mut checkpoint_keys: Vec<String> =
        checkpoints.iter().map(|c| c.public_key.clone()).collect();
    checkpoint_keys.sort();
    checkpoint_keys.dedup();
    if let Some(genesis) = expected.remove(&0) {
        // A checkpoint of the empty chain.
        if let Some(checkpoint) = genesis.iter().find(|c| c.hash != GENESIS) {
            problems.push(rewritten(checkpoint.seq));
        }
    }

    let mut walk = Walk {
        events: 0,
        head: None,
        expected,
    };
    loop {
        let after = walk.head.as_ref().map_or(0, |h| h.seq);
        let mut page = Vec::new();
        store.read(&mut |tx| {
            page = tx.events_after(after, VERIFY_PAGE)?;
            Ok(())
        })?;
        let full = page.len() >= VERIFY_PAGE;
        if let Some(problem) = page.iter().find_map(|stored| walk.check(stored).err()) {
            problems.push(problem);
            break;
        }
        if !full {
            // The end of the chain: a checkpoint past it names an event
            // the store no longer holds.
            if let Some((&seq, _)) = walk.expected.iter().next() {
                problems.push(Problem {
                    seq,
                    what: format!(
                        "truncated: the checkpoint at seq {seq} is missing from the store"
                    ),
                });
            }
            break;
        }
    }
    problems.sort_by_key(|p| p.seq);
    Ok(Verification {
        events: walk.events,
        head: walk.head,
        checkpoints: checkpoints.len(),
        key_pinned: key.is_some(),
        checkpoint_keys,
        problem: problems.into_iter().next(),
    })
}

fn rewritten(seq: u64) -> Problem {
    Problem {
        seq,
        what: format!("rewritten: event {seq} differs from the signed checkpoint"),
    }
}

/// The state of [`verify`] between events.
struct Walk<'c> {
    events: u64,
    head: Option<Head>,
    expected: BTreeMap<u64, Vec<&'c Checkpoint>>,
}

impl Walk<'_> {
    /// Checks the next stored event; on success it becomes the head.
    fn check(&mut self, stored: &StoredEvent) -> Result<(), Problem> {
        let seq = self.head.as_ref().map_or(1, |h| h.seq + 1);
        let problem = |what: String| Problem { seq, what };
        if stored.seq != seq {
            return Err(Problem {
                seq: stored.seq.min(seq),
                what: match &self.head {
                    Some(head) if stored.seq > seq => format!(
                        "event {seq} is missing: seq {} follows {}",
                        stored.seq, head.seq
                    ),
                    Some(head) => format!("seq {} follows {}", stored.seq, head.seq),
                    None => format!("the chain starts at seq {}, not 1", stored.seq),
                },
            });
        }
        let value: serde_json::Value = serde_json::from_str(&stored.json)
            .map_err(|e| problem(format!("the stored event is not JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(problem("the stored event is not a JSON object".to_string()));
        };
        if crate::jcs::to_string(&value) != stored.json {
            return Err(problem(
                "the stored event is not in canonical JSON form".to_string(),
            ));
        }
        let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str);
        match object.get("seq").and_then(serde_json::Value::as_u64) {
            Some(n) if n == seq => {}
            Some(n) => {
                return Err(problem(format!(
                    "the event says seq {n}, but it is stored as {seq}"
                )));
            }
            None => return Err(problem("the event has no `seq`".to_string())),
        }
        let prev = self.head.as_ref().map_or(GENESIS, |h| h.hash.as_str());
        match text("prev_hash") {
            Some(p) if p == prev => {}
            Some(_) if seq == 1 => {
                return Err(problem(
                    "prev_hash of the first event is not 64 zeros".to_string(),
                ));
            }
            Some(_) => {
                return Err(problem(format!(
                    "prev_hash does not link to event {}",
                    seq - 1
                )));
            }
            None => return Err(problem("the event has no `prev_hash`".to_string())),
        }
        let Some(hash) = text("hash") else {
            return Err(problem("the event has no `hash`".to_string()));
        };
        if event_hash(&value) != hash {
            return Err(problem(
                "hash does not match the event's content".to_string(),
            ));
        }
        if stored.hash != hash {
            return Err(problem(
                "the store's hash column differs from the event's hash".to_string(),
            ));
        }
        // The columns reads look events up by: a changed one would move an
        // event out of its task's timeline without touching its hash.
        let columns = [
            ("type", Some(stored.kind.as_str())),
            ("task_id", stored.task_id.as_deref()),
            ("grant_id", stored.grant_id.as_deref()),
        ];
        for (key, column) in columns {
            if text(key) != column {
                return Err(problem(format!(
                    "the store's `{key}` column differs from the event's"
                )));
            }
        }
        if let Some(checkpoints) = self.expected.remove(&seq)
            && checkpoints.iter().any(|c| c.hash != hash)
        {
            return Err(rewritten(seq));
        }
        self.events += 1;
        self.head = Some(Head {
            seq,
            hash: hash.to_string(),
        });
        Ok(())
    }
}
