//! What a ledger operation answers when it cannot answer with a decision.
//! A policy deny, or a refusal of the ledger's rules, is not an error: it is
//! a deny decision, recorded as an event. Errors write nothing.

use crate::store::StoreError;

/// A ledger operation failed, and wrote nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// No task or grant has this id (404 in the service).
    #[error("no {what} `{id}`")]
    NotFound { what: &'static str, id: String },
    /// The id is taken, or the object is not in a state that allows the
    /// operation (409 in the service).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (403 in the service): a blocked agent, an
    /// approver who may not approve.
    #[error("{0}")]
    Forbidden(String),
    /// The input is malformed or out of bounds (400 in the service).
    #[error("{0}")]
    Invalid(String),
    /// The store failed; nothing was kept (503 in the service).
    #[error("ledger store unavailable: {0}")]
    Store(#[from] StoreError),
    /// A state the ledger's own rules rule out; reported, never papered over.
    #[error("internal ledger error: {0}")]
    Internal(String),
}

impl LedgerError {
    pub(crate) fn invalid(message: impl Into<String>) -> LedgerError {
        LedgerError::Invalid(message.into())
    }

    pub(crate) fn not_found(what: &'static str, id: &str) -> LedgerError {
        LedgerError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}
