//! Identifiers: 128 bits from the operating system's CSPRNG, as 32
//! lowercase hex digits after a prefix that says what they name
//! (`grant_`, `task_`, `evt_`, `dec_`), so an id pasted into the wrong
//! field reads as wrong.

use crate::error::LedgerError;

/// A fresh id: `prefix` and 32 hex digits.
pub fn new_id(prefix: &str) -> Result<String, LedgerError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
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
