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
    /// Exact names (70%), prefix and suffix globs (10% each), lists of two
    /// names (10%) and at most five `*` rules, mixed.
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
            7 => format!("\"svc{i}.*\""),
            8 => format!("\"*.op{i}\""),
            // A policy has a few catch-all rules, not a tenth of its rules:
            // every `*` rule is evaluated for every request.
            _ if i < MIXED_ANY_BELOW => "*".to_string(),
            _ => format!("[\"svc{}.op9\", \"svc{}.alt\"]", i / 10, i / 10),
        },
    }
}

/// In [`Patterns::Mixed`], rules `9, 19, ...` below this index are `*`
/// rules: at most five of them, whatever the policy's size.
pub const MIXED_ANY_BELOW: usize = 50;

/// The number of `*` rules in a [`Patterns::Mixed`] policy of `rules` rules.
pub fn mixed_any_rules(rules: usize) -> usize {
    (0..rules.min(MIXED_ANY_BELOW))
        .filter(|i| i % 10 == 9)
        .count()
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

/// One tool pattern of a rule, in a form every language can express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolPattern {
    /// `"svc1.op2"`.
    Exact(String),
    /// `"svc7.*"`: the tool starts with the text.
    Prefix(String),
    /// `"*.op8"`: the tool ends with the text.
    Suffix(String),
    /// `*`: every tool.
    Any,
}

impl ToolPattern {
    /// The pattern as Grant writes it inside a list or alone.
    fn grant(&self) -> String {
        match self {
            ToolPattern::Exact(name) => format!("\"{name}\""),
            ToolPattern::Prefix(prefix) => format!("\"{prefix}*\""),
            ToolPattern::Suffix(suffix) => format!("\"*{suffix}\""),
            ToolPattern::Any => "*".to_string(),
        }
    }

    /// Whether the pattern matches `tool`, by Grant's glob semantics.
    pub fn matches(&self, tool: &str) -> bool {
        match self {
            ToolPattern::Exact(name) => tool == name,
            ToolPattern::Prefix(prefix) => tool.starts_with(prefix.as_str()),
            ToolPattern::Suffix(suffix) => tool.ends_with(suffix.as_str()),
            ToolPattern::Any => true,
        }
    }
}

/// The tool patterns of rule `i` (what [`pattern`] writes), structured.
pub fn tool_patterns(patterns: Patterns, i: usize) -> Vec<ToolPattern> {
    match patterns {
        Patterns::Exact => vec![ToolPattern::Exact(format!("svc{}.op{}", i / 10, i % 10))],
        Patterns::Glob => {
            if i.is_multiple_of(2) {
                vec![ToolPattern::Prefix(format!("svc{i}."))]
            } else {
                vec![ToolPattern::Suffix(format!(".op{i}"))]
            }
        }
        Patterns::Mixed => match i % 10 {
            0..=6 => vec![ToolPattern::Exact(format!("svc{}.op{}", i / 10, i % 10))],
            7 => vec![ToolPattern::Prefix(format!("svc{i}."))],
            8 => vec![ToolPattern::Suffix(format!(".op{i}"))],
            _ if i < MIXED_ANY_BELOW => vec![ToolPattern::Any],
            _ => vec![
                ToolPattern::Exact(format!("svc{}.op9", i / 10)),
                ToolPattern::Exact(format!("svc{}.alt", i / 10)),
            ],
        },
    }
}

/// A rule of a [`simple_policy`]: allow its tools when
/// `sensitivity <= max_sensitivity and agent.delegation_depth < max_depth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleRule {
    pub tools: Vec<ToolPattern>,
    /// Ordinal in [`SENSITIVITY`].
    pub max_sensitivity: usize,
    pub max_depth: i64,
}

/// The variants of the `sensitivity` type of [`DECLARATIONS`], in order.
pub const SENSITIVITY: [&str; 4] = ["public", "internal", "confidential", "restricted"];

/// Rule `i` of a [`simple_policy`].
pub fn simple_rule(patterns: Patterns, i: usize) -> SimpleRule {
    SimpleRule {
        tools: tool_patterns(patterns, i),
        max_sensitivity: 1 + i % 2,
        max_depth: (i % 3) as i64 + 2,
    }
}

/// A policy of `rules` allow rules, each with the same simple two-clause
/// condition shape (thresholds vary), which Cedar and Rego express directly:
///
/// ```text
/// allow tool "svc1.op2" when sensitivity <= internal and agent.delegation_depth < 3 ttl 5m
/// ```
///
/// A request with `sensitivity = internal` and `agent.delegation_depth = 1`
/// satisfies every rule's condition; see [`cedar_policy`], [`rego_policy`].
pub fn simple_policy(rules: usize, patterns: Patterns) -> String {
    let mut text = String::with_capacity(rules * 100 + DECLARATIONS.len());
    text.push_str(DECLARATIONS);
    for i in 0..rules {
        let rule = simple_rule(patterns, i);
        let tools: Vec<String> = rule.tools.iter().map(ToolPattern::grant).collect();
        let tool = match tools.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let _ = writeln!(
            text,
            "allow tool {tool} when sensitivity <= {} and agent.delegation_depth < {} ttl 5m",
            SENSITIVITY
                .get(rule.max_sensitivity)
                .copied()
                .unwrap_or("public"),
            rule.max_depth,
        );
    }
    text
}

/// [`simple_policy`] in Cedar: one `permit` per tool pattern, the tool as the
/// resource `Tool::"<name>"` (and, for globs, `context.tool like`), the
/// sensitivity as its ordinal in `context.sensitivity`.
pub fn cedar_policy(rules: usize, patterns: Patterns) -> String {
    let mut text = String::with_capacity(rules * 150);
    for i in 0..rules {
        let rule = simple_rule(patterns, i);
        for tool in &rule.tools {
            let (resource, glob) = match tool {
                ToolPattern::Exact(name) => (format!("resource == Tool::\"{name}\""), None),
                ToolPattern::Prefix(prefix) => ("resource".to_string(), Some(format!("{prefix}*"))),
                ToolPattern::Suffix(suffix) => ("resource".to_string(), Some(format!("*{suffix}"))),
                ToolPattern::Any => ("resource".to_string(), None),
            };
            let glob = glob.map_or_else(String::new, |g| format!("context.tool like \"{g}\" && "));
            let _ = writeln!(
                text,
                "permit(principal, action == Action::\"call\", {resource}) when {{ {glob}context.sensitivity <= {} && context.delegation_depth < {} }};",
                rule.max_sensitivity, rule.max_depth,
            );
        }
    }
    text
}

/// Rules per Rego module: regorus refuses files over 20,000 lines or 1 MiB.
pub const REGO_RULES_PER_MODULE: usize = 1_000;

/// [`simple_policy`] in Rego (v1 syntax): `data.grant.allow`, one body per
/// tool pattern, the sensitivity as its ordinal, split into modules of
/// [`REGO_RULES_PER_MODULE`] rules of the one package `grant`.
pub fn rego_policy(rules: usize, patterns: Patterns) -> Vec<String> {
    let mut modules = Vec::new();
    let mut start = 0;
    while start < rules.max(1) {
        let end = (start + REGO_RULES_PER_MODULE).min(rules);
        let mut text = String::with_capacity((end - start) * 120 + 64);
        text.push_str("package grant\n\nimport rego.v1\n");
        if start == 0 {
            text.push_str("\ndefault allow := false\n");
        }
        for i in start..end {
            let rule = simple_rule(patterns, i);
            for tool in &rule.tools {
                let test = match tool {
                    ToolPattern::Exact(name) => format!("\n\tinput.tool == \"{name}\""),
                    ToolPattern::Prefix(prefix) => {
                        format!("\n\tstartswith(input.tool, \"{prefix}\")")
                    }
                    ToolPattern::Suffix(suffix) => {
                        format!("\n\tendswith(input.tool, \"{suffix}\")")
                    }
                    ToolPattern::Any => String::new(),
                };
                let _ = writeln!(
                    text,
                    "\nallow if {{{test}\n\tinput.sensitivity <= {}\n\tinput.delegation_depth < {}\n}}",
                    rule.max_sensitivity, rule.max_depth,
                );
            }
        }
        modules.push(text);
        start = end.max(start + 1);
    }
    modules
}

/// A tool that rule `i` of a policy with these patterns matches. For
/// [`Patterns::Mixed`] rules `9, 19, ...` below [`MIXED_ANY_BELOW`] (`*`)
/// match any tool; this names the tool of a neighbouring exact rule.
pub fn tool_of_rule(patterns: Patterns, i: usize) -> String {
    match tool_patterns(patterns, i).first() {
        Some(ToolPattern::Exact(name)) => name.clone(),
        Some(ToolPattern::Prefix(prefix)) => format!("{prefix}read"),
        Some(ToolPattern::Suffix(suffix)) => format!("tools{suffix}"),
        Some(ToolPattern::Any) | None => format!("svc{}.op0", i / 10),
    }
}

/// A tool no rule of any generated policy names (only `*` rules match it).
pub const UNMATCHED_TOOL: &str = "unlisted.tool";

/// A policy of `rules` `tool *` rules with the condition of
/// [`simple_policy`] (`sensitivity <= L and agent.delegation_depth < D`),
/// all evaluated for every request: the difference between two sizes is
/// the cost of evaluating a rule.
pub fn any_policy(rules: usize) -> String {
    let mut text = String::with_capacity(rules * 90 + DECLARATIONS.len());
    text.push_str(DECLARATIONS);
    for i in 0..rules {
        let rule = simple_rule(Patterns::Exact, i);
        let _ = writeln!(
            text,
            "allow tool * when sensitivity <= {} and agent.delegation_depth < {} ttl 5m",
            SENSITIVITY.get(rule.max_sensitivity).unwrap_or(&"public"),
            rule.max_depth,
        );
    }
    text
}
