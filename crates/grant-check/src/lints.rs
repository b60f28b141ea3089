//! Warnings: things that are legal but likely mistakes. Each has its own
//! code and docs entry, and must be right on every example (no noise). They
//! run only on policies without errors: a rule with errors is missing from
//! the policy, and its absence would make others look wrong.

mod constant;
mod rules;
mod values;

use grant_syntax::diagnostic::{Code, Diagnostic};

use crate::Checker;
use crate::ir::Policy;

impl Checker<'_> {
    /// Every lint, on a policy without errors.
    pub(crate) fn lint(&mut self, policy: &Policy) {
        self.lint_unused(policy);
        self.lint_overridden_allows(policy);
        self.lint_duplicate_rules(policy);
        self.lint_constant_conditions(policy);
        self.lint_default_ttl(policy);
        self.lint_empty_patterns(policy);
        self.lint_inexact_ttls(policy);
    }

    /// Attributes no rule reads, and enums no attribute or rule names.
    fn lint_unused(&mut self, policy: &Policy) {
        for (attr, used) in policy.attrs.iter().zip(self.scope.used_attrs.clone()) {
            if !used {
                self.report(
                    Diagnostic::new(
                        Code::UnusedAttribute,
                        attr.span,
                        format!("attribute `{}` is declared but no rule uses it", attr.path),
                    )
                    .label("unused")
                    .help("remove the declaration, or use it in a rule's condition"),
                );
            }
        }
        for (ty, used) in policy.types.iter().zip(self.scope.used_types.clone()) {
            if !used {
                self.report(
                    Diagnostic::new(
                        Code::UnusedType,
                        ty.span,
                        format!("type `{}` is declared but nothing uses it", ty.name),
                    )
                    .label("unused")
                    .help("remove the declaration, or declare an attribute of this type"),
                );
            }
        }
    }
}
