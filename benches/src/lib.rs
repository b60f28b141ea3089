//! Generated policies for benchmarks: realistic shapes at any size, the same
//! text every run (no randomness), so figures compare across runs.

use std::fmt::Write;

/// Declarations shared by every generated policy.
pub const DECLARATIONS: &str = "\
type sensitivity = public < internal < confidential < restricted
type env = dev | staging | prod
attr sensitivity: sensitivity
attr env: env
attr task.approved: bool
attr task.labels: set<string>
attr task.elapsed: duration
attr agent.delegation_depth: int
attr agent.workload: string
default ttl 5m
max ttl 1h
";

/// How the generated rules name their tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patterns {
    /// `"svc17.op3"`: distinct exact names.
    Exact,
    /// `"svc17.*"`, `"*.op3"`: globs.
    Glob,
    /// Exact names, globs and a few `*` rules, mixed.
    Mixed,
}

/// The tool pattern of rule `i`.
pub fn pattern(patterns: Patterns, i: usize) -> String {
    match patterns {
        Patterns::Exact => format!("\"svc{}.op{}\"", i / 10, i % 10),
        Patterns::Glob => {
            if i.is_multiple_of(2) {
                format!("\"svc{i}.*\"")
            } else {
                format!("\"*.op{i}\"")
            }
        }
        Patterns::Mixed => match i % 10 {
            0..=6 => format!("\"svc{}.op{}\"", i / 10, i % 10),
            7 | 8 => format!("\"svc{i}.*\""),
            _ => "*".to_string(),
        },
    }
}

/// A policy of `rules` rules with conditions of the usual shapes.
pub fn policy(rules: usize, patterns: Patterns) -> String {
    let mut text = String::with_capacity(rules * 110 + DECLARATIONS.len());
    text.push_str(DECLARATIONS);
    for i in 0..rules {
        let tool = pattern(patterns, i);
        let _ = match i % 5 {
            0 => writeln!(
                text,
                "allow tool {tool} when sensitivity <= internal and env != prod ttl 5m"
            ),
            1 => writeln!(
                text,
                "deny tool {tool} when agent.delegation_depth > {}",
                i % 4 + 1
            ),
            2 => writeln!(
                text,
                "@id(\"r{i}\")\nallow tool {tool} when \"pci\" in task.labels and task.approved ttl 2m"
            ),
            3 => writeln!(
                text,
                "allow tool {tool}\n    when agent.workload matches \"spiffe://prod/*\" and env in [dev, staging]\n    ttl 10m"
            ),
            _ => writeln!(
                text,
                "deny tool {tool} when task.elapsed > 1h or not task.approved"
            ),
        };
    }
    text
}
