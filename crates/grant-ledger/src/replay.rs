//! Rebuilding a ledger from its events: every stored event, verbatim (same
//! JSON, same hash), appended to an empty store and projected into state.
//! That the rebuilt tasks and grants equal the originals is what makes the
//! chain the record of truth (tests/replay.rs).

use crate::error::LedgerError;
use crate::store::Store;

/// Events copied per transaction.
const PAGE: usize = 1000;

/// Copies every event of `from` into the empty store `into`, rebuilding
/// its state. Returns how many events were copied.
pub fn replay(from: &dyn Store, into: &dyn Store) -> Result<u64, LedgerError> {
    let mut empty = false;
    into.read(&mut |tx| {
        empty = tx.head()?.is_none();
        Ok(())
    })?;
    if !empty {
        return Err(LedgerError::Conflict(format!(
            "{} is not empty; replay only into an empty store",
            into.describe()
        )));
    }
    let mut after = 0;
    loop {
        let mut page = Vec::new();
        from.read(&mut |tx| {
            page = tx.events_after(after, PAGE)?;
            Ok(())
        })?;
        let Some(last) = page.last() else {
            return Ok(after);
        };
        let last_seq = last.seq;
        let events = page
            .iter()
            .map(crate::audit::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut failure = None;
        let written = into.write(&mut |tx| {
            for (stored, event) in page.iter().zip(&events) {
                tx.append(stored)?;
                if let Err(error) = crate::project::apply(tx, event) {
                    let message = error.to_string();
                    failure = Some(error);
                    return Err(crate::store::StoreError::corrupt(message));
                }
            }
            Ok(())
        });
        if let Some(error) = failure {
            return Err(error);
        }
        written?;
        after = last_seq;
    }
}
