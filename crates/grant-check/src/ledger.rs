//! The reserved `ledger.*` attributes (language 0.2): the ledger sets them
//! on every decision it makes, so a policy may read them but not give them
//! another type, and no other name under `ledger` exists. One table, read by
//! the checker here and by every layer that sets or refuses them.

use crate::ir::{Scalar, Type};

/// A reserved attribute: its path, its fixed type, and what the ledger puts
/// in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerAttribute {
    pub path: &'static str,
    pub ty: Type,
    pub meaning: &'static str,
}

/// The group every reserved attribute is under.
pub const GROUP: &str = "ledger";

/// True while the ledger decides without its store. In such a degraded
/// decision an allow rule applies only if its condition reads this
/// attribute (docs/language.md, "Ledger attributes"), so the compiler marks
/// the rules that do.
pub const DEGRADED: &str = "ledger.degraded";

/// Every ledger attribute, in the order of the spec's table.
pub const ATTRIBUTES: [LedgerAttribute; 7] = [
    LedgerAttribute {
        path: "ledger.agent",
        ty: Type::Scalar(Scalar::String),
        meaning: "the agent of the task",
    },
    LedgerAttribute {
        path: "ledger.depth",
        ty: Type::Scalar(Scalar::Int),
        meaning: "0 for a root task; a sub-task's is its parent's + 1",
    },
    LedgerAttribute {
        path: "ledger.chain",
        ty: Type::Set(Scalar::String),
        meaning: "the agents of all ancestor tasks",
    },
    LedgerAttribute {
        path: "ledger.task_age",
        ty: Type::Scalar(Scalar::Duration),
        meaning: "time since the task was opened",
    },
    LedgerAttribute {
        path: "ledger.task_grants",
        ty: Type::Scalar(Scalar::Int),
        meaning: "grants already issued in this task, pending ones included",
    },
    LedgerAttribute {
        path: "ledger.renewals",
        ty: Type::Scalar(Scalar::Int),
        meaning: "0 when issuing; n on the n-th renewal",
    },
    LedgerAttribute {
        path: DEGRADED,
        ty: Type::Scalar(Scalar::Bool),
        meaning: "true while the ledger works without its store",
    },
];

/// Whether `path` is in the reserved namespace: `ledger` itself or any
/// path under it.
pub fn is_reserved(path: &str) -> bool {
    path.strip_prefix(GROUP)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The reserved attribute at `path`, if there is one.
pub fn attribute(path: &str) -> Option<&'static LedgerAttribute> {
    ATTRIBUTES.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_ledger_and_below() {
        assert!(is_reserved("ledger"));
        assert!(is_reserved("ledger.depth"));
        assert!(is_reserved("ledger.x.y"));
        assert!(!is_reserved("ledgers.depth"));
        assert!(!is_reserved("task.ledger"));
    }

    #[test]
    fn every_attribute_is_reserved_and_found_by_path() {
        for a in &ATTRIBUTES {
            assert!(is_reserved(a.path), "{}", a.path);
            assert_eq!(attribute(a.path), Some(a));
        }
        assert_eq!(attribute("ledger.age"), None);
    }
}
