//! The audit chain: each event's `hash` is SHA-256 over the canonical JSON
//! (RFC 8785) of the event without `hash`, and its `prev_hash` is the
//! previous event's `hash` (64 zeros before the first), so changing,
//! dropping or reordering any event breaks every hash after it.

use sha2::{Digest, Sha256};

use crate::error::LedgerError;
use crate::event::Event;
use crate::store::{Head, StoredEvent};

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
