//! Lints on the values a policy writes: tool patterns that can match
//! nothing, and ttls no JSON client can read exactly.

use grant_syntax::Span;
use grant_syntax::ast::Effect;
use grant_syntax::diagnostic::{Code, Diagnostic};
use grant_syntax::parser::format_duration;

use crate::Checker;
use crate::ir::{Policy, ToolPatterns};

/// The largest integer every JSON reader represents exactly: readers that
/// hold numbers as IEEE doubles (JavaScript, many JSON libraries) round
/// above it, so a `ttl_seconds` past it could be read as a longer grant.
const MAX_EXACT_SECONDS: u64 = 1 << 53;

impl Checker<'_> {
    /// G0908: a pattern `""` matches no tool, since tool names are never
    /// empty: the rule it stands in is dead (or, in a list, that pattern is).
    pub(crate) fn lint_empty_patterns(&mut self, policy: &Policy) {
        for rule in &policy.rules {
            let ToolPatterns::List(patterns) = &rule.patterns else {
                continue;
            };
            if !patterns.iter().any(String::is_empty) {
                continue;
            }
            let effect = match rule.effect {
                Effect::Allow => "allow",
                Effect::Deny => "deny",
            };
            let all_empty = patterns.iter().all(String::is_empty);
            let message = if all_empty {
                format!(
                    "{effect} rule `{}` matches no tool: its pattern is `\"\"`",
                    rule.id
                )
            } else {
                format!("the pattern `\"\"` of rule `{}` matches no tool", rule.id)
            };
            self.report(
                Diagnostic::new(Code::PatternMatchesNothing, rule.pattern_span, message)
                    .label("tool names are never empty")
                    .help(
                        "name the tool, or a glob such as `\"db.*\"`; `*` alone matches every tool",
                    ),
            );
        }
    }

    /// G0909: a ttl above 2^53 seconds, wherever it is written. (Under a
    /// `max ttl` of at most 2^53 such a ttl is already an error.)
    pub(crate) fn lint_inexact_ttls(&mut self, policy: &Policy) {
        let mut ttls: Vec<(u64, Span, &str)> = Vec::new();
        if let Some(max) = &self.scope.max_ttl {
            ttls.push((max.value, max.span, "`max ttl`"));
        }
        if let Some(default) = &self.scope.default_ttl {
            ttls.push((default.value, default.span, "`default ttl`"));
        }
        for rule in &policy.rules {
            if let (Some(ttl), Some(span)) = (rule.ttl, rule.ttl_span) {
                ttls.push((ttl, span, "this ttl"));
            }
        }
        for (seconds, span, what) in ttls {
            if seconds <= MAX_EXACT_SECONDS {
                continue;
            }
            self.report(
                Diagnostic::new(
                    Code::TtlNotExact,
                    span,
                    format!(
                        "{what} of {} ({seconds} seconds) is above 2^53 seconds, which JSON clients that read numbers as doubles cannot represent exactly",
                        format_duration(seconds)
                    ),
                )
                .label("above 2^53 seconds")
                .help("grants are meant to be short: write a smaller ttl, and bound every rule with `max ttl`"),
            );
        }
    }
}
