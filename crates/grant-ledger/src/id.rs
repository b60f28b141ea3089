//! Identifiers: 128 bits from the operating system's CSPRNG, as 32
//! lowercase hex digits after a prefix that says what they name
//! (`grant_`, `task_`, `evt_`, `dec_`), so an id pasted into the wrong
//! field reads as wrong.

use std::cell::RefCell;

use crate::error::LedgerError;

/// Random bytes each thread draws from the OS at once: one system call
/// per 256 ids instead of one per id (a service names every decision).
const POOL_BYTES: usize = 4096;

thread_local! {
    /// Bytes not yet handed out, and where the next id starts.
    static POOL: RefCell<([u8; POOL_BYTES], usize)> = const { RefCell::new(([0; POOL_BYTES], POOL_BYTES)) };
}

/// A fresh id: `prefix` and 32 hex digits.
pub fn new_id(prefix: &str) -> Result<String, LedgerError> {
    let mut bytes = [0u8; 16];
    POOL.with(|pool| -> Result<(), LedgerError> {
        let mut pool = pool.borrow_mut();
        let (buffer, next) = &mut *pool;
        if *next + bytes.len() > POOL_BYTES {
            random_bytes(buffer)?;
            *next = 0;
        }
        let taken = &mut buffer[*next..*next + bytes.len()];
        bytes.copy_from_slice(taken);
        // Handed-out bytes are wiped, so nothing left in memory says which
        // ids were given.
        taken.fill(0);
        *next += bytes.len();
        Ok(())
    })?;
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    crate::hex::push(&mut id, &bytes);
    Ok(id)
}

/// Fills `bytes` from the operating system's CSPRNG.
pub fn random_bytes(bytes: &mut [u8]) -> Result<(), LedgerError> {
    getrandom::fill(bytes).map_err(|e| {
        LedgerError::Internal(format!("the operating system's random source failed: {e}"))
    })
}

/// The longest id, task id or agent a caller may give, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Checks an id, task id or agent a caller gives: 1 to 256 bytes, no
/// control characters (they would corrupt timelines and logs).
pub(crate) fn check_name(what: &str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() {
        return Err(LedgerError::invalid(format!("{what} is empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(LedgerError::invalid(format!(
            "{what} is {} bytes long; the limit is {MAX_ID_BYTES}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(LedgerError::invalid(format!(
            "{what} `{}` holds a control character",
            value.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod pool_tests {
    use super::new_id;

    #[test]
    fn ids_from_the_pool_are_distinct_across_refills_and_threads() {
        let draw = || -> Vec<String> {
            (0..1000)
                .map(|_| new_id("dec_").unwrap_or_default())
                .collect()
        };
        let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(draw)).collect();
        let mut all = draw();
        for thread in threads {
            all.extend(thread.join().unwrap_or_default());
        }
        assert!(
            all.iter()
                .all(|id| id.len() == 36 && id.starts_with("dec_"))
        );
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "an id was drawn twice");
        assert_eq!(count, 5000);
    }
}
