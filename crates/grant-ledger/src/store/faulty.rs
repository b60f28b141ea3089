//! A store wrapper that fails on demand, for fault tests: a write that
//! fails before its commit (nothing is kept), a write whose commit
//! succeeded but whose answer is lost (the change is durable, the caller
//! sees an error), and a store that is down (every call fails).
//!
//! ```
//! use std::sync::Arc;
//! use grant_ledger::store::{Store, faulty::FaultyStore, memory::MemoryStore};
//!
//! let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
//! let faults = store.faults();
//! faults.fail_before_commit(1);
//! assert!(store.write(&mut |tx| tx.set_meta("k", "v")).is_err());
//! assert!(store.write(&mut |tx| tx.set_meta("k", "v")).is_ok());
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::store::{Store, StoreError, Work};

/// Wraps a store, failing the calls its [`Faults`] ask for.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Faults,
}

/// The switches of a [`FaultyStore`]; clones share them, so a test keeps
/// one while the ledger owns the store.
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<State>);

#[derive(Debug, Default)]
struct State {
    before_commit: AtomicU64,
    after_commit: AtomicU64,
    down: AtomicBool,
}

impl Faults {
    /// The next `n` writes run their closure, then fail before committing:
    /// nothing of them is kept.
    pub fn fail_before_commit(&self, n: u64) {
        self.0.before_commit.store(n, Ordering::SeqCst);
    }

    /// The next `n` writes commit, then report
    /// [`Unavailable`](crate::store::StoreErrorKind::Unavailable): the
    /// change is durable but the caller sees an error.
    pub fn fail_after_commit(&self, n: u64) {
        self.0.after_commit.store(n, Ordering::SeqCst);
    }

    /// While down, every write and read fails with `Unavailable` without
    /// reaching the store.
    pub fn set_down(&self, down: bool) {
        self.0.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.0.down.load(Ordering::SeqCst)
    }

    /// Takes one from `counter` if it is above zero; whether it did.
    fn take(counter: &AtomicU64) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl FaultyStore {
    /// `inner`, failing nothing until told to.
    pub fn new(inner: Arc<dyn Store>) -> FaultyStore {
        FaultyStore {
            inner,
            faults: Faults::default(),
        }
    }

    /// The switches that make this store fail.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn down(&self) -> Result<(), StoreError> {
        if self.faults.is_down() {
            Err(StoreError::unavailable(format!(
                "store `{}` is down (injected fault)",
                self.inner.describe()
            )))
        } else {
            Ok(())
        }
    }
}

impl Store for FaultyStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        self.down()?;
        if Faults::take(&self.faults.0.before_commit) {
            // The closure runs, so the inner store really has to roll back
            // what it wrote.
            return self.inner.write(&mut |tx| {
                work(tx)?;
                Err(StoreError::unavailable(format!(
                    "store `{}` failed before commit (injected fault)",
                    self.inner.describe()
                )))
            });
        }
        let lose_answer = Faults::take(&self.faults.0.after_commit);
        self.inner.write(work)?;
        if lose_answer {
            return Err(StoreError::unavailable(format!(
                "store `{}` committed, but the answer was lost (injected fault)",
                self.inner.describe()
            )));
        }
        Ok(())
    }

    fn read(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        self.down()?;
        self.inner.read(work)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
