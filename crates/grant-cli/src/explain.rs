//! `grant eval --explain`: a decision told for the people who review
//! policies. The decision, then every rule whose pattern matches the tool:
//! where it is, its condition as written, the request values it reads, how
//! it came out in three-valued logic, and whether it applied. Rules whose
//! pattern does not match are counted, not listed.
//!
//! Everything a request or a policy file supplies (the tool, attribute
//! paths and values, errors quoting them, conditions and annotations) is
//! shown through [`printable`]: control characters and terminal escapes are
//! shown as escapes, never interpreted.

use grant_syntax::parser::format_duration;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use grant_check::ir::{Scalar, Type};
use grant_compile::program::{CompiledRule, Op, Operand, RuleId, SlotId, Tri};
use grant_engine::{Decision, Engine};
use grant_syntax::ast::Effect;
use grant_syntax::chars::printable;
use grant_vm::Outcome;
use serde_json::Value;

use crate::output::count;

/// Width of the label column (`at`, `when`, `result`, ...) in a rule block.
const LABEL: usize = 9;
/// Indent of a rule block's lines under its header.
const INDENT: usize = 6;

/// Explains decisions made under one policy.
#[derive(Debug)]
pub struct Explainer<'e> {
    engine: &'e Engine,
    policy: String,
    paint: Paint,
    /// The rules whose pattern matches the current tool (reused).
    candidates: Vec<RuleId>,
}

/// How one rule fared.
enum Verdict {
    Evaluated {
        result: Tri,
        applied: bool,
    },
    /// An allow rule, skipped because a deny rule already applied.
    Skipped,
}

impl<'e> Explainer<'e> {
    pub fn new(engine: &'e Engine, policy: &Path, color: bool) -> Explainer<'e> {
        Explainer {
            engine,
            policy: printable(&policy.display().to_string()).into_owned(),
            paint: Paint(color),
            candidates: Vec::new(),
        }
    }

    /// Explains `decision` on the request read from `text` (`None` when it
    /// was not text), headed by `label`, where it came from. `outcome` is the evaluator's account of it, `None`
    /// when the request was invalid and nothing was evaluated.
    pub fn write(
        &mut self,
        out: &mut dyn Write,
        label: Option<&str>,
        text: Option<&str>,
        decision: &Decision,
        outcome: Option<&Outcome>,
    ) -> io::Result<()> {
        // The request again, for display only: its tool, and the values the
        // conditions read. It was valid, or it would not have been evaluated.
        let request: Option<Value> = outcome.and(text).and_then(|text| {
            // As the engine reads it: a byte-order mark opening it is ignored.
            let text = text
                .strip_prefix(grant_syntax::chars::BYTE_ORDER_MARK)
                .unwrap_or(text);
            serde_json::from_str(text).ok()
        });
        let tool = request
            .as_ref()
            .and_then(|r| r.get("tool"))
            .and_then(Value::as_str);
        self.write_header(out, label, tool, decision)?;
        if let (Some(outcome), true) = (outcome, decision.is_allow()) {
            self.write_ttl(out, outcome, request.as_ref().and_then(|r| r.get("ttl")))?;
        }
        writeln!(
            out,
            "policy    {} ({})",
            self.policy,
            self.engine.policy_hash()
        )?;
        let (Some(outcome), Some(tool)) = (outcome, tool) else {
            return Ok(());
        };
        let mut values = HashMap::new();
        if let Some(attrs) = request.as_ref().and_then(|r| r.get("attrs")) {
            flatten(self.engine, attrs, &mut String::new(), &mut values);
        }
        let program = self.engine.program();
        program
            .index
            .candidates(tool, &program.globs, &mut self.candidates);
        writeln!(out)?;
        self.write_summary(out, tool, outcome)?;
        for considered in &outcome.considered {
            let Some(rule) = program.rule(considered.rule) else {
                continue;
            };
            let verdict = Verdict::Evaluated {
                result: considered.result,
                applied: outcome.deciding.contains(&considered.rule),
            };
            let missing = outcome.missing_of(considered);
            writeln!(out)?;
            self.write_rule(out, rule, &verdict, missing, &values)?;
        }
        for id in self.skipped(outcome) {
            if let Some(rule) = program.rule(id) {
                writeln!(out)?;
                self.write_rule(out, rule, &Verdict::Skipped, &[], &values)?;
            }
        }
        Ok(())
    }

    fn write_header(
        &self,
        out: &mut dyn Write,
        label: Option<&str>,
        tool: Option<&str>,
        decision: &Decision,
    ) -> io::Result<()> {
        let p = &self.paint;
        if let Some(label) = label {
            writeln!(out, "request   {}", printable(label))?;
        }
        let effect = if decision.is_allow() {
            let ttl = decision
                .ttl_seconds
                .map(|t| format!(" for {}", format_duration(t)))
                .unwrap_or_default();
            format!("{}{ttl}", p.green("ALLOW"))
        } else {
            p.red("DENY")
        };
        writeln!(out, "decision  {effect}")?;
        if let Some(tool) = tool {
            writeln!(out, "tool      {}", printable(tool))?;
        }
        for (i, reason) in decision.reasons.iter().enumerate() {
            let label = if i == 0 { "why" } else { "" };
            writeln!(out, "{label:<10}{}", printable(reason))?;
        }
        if !decision.missing.is_empty() {
            writeln!(out, "missing   {}", printable(&decision.missing.join(", ")))?;
        }
        for error in &decision.errors {
            writeln!(out, "error     {}", printable(error))?;
        }
        Ok(())
    }

    /// Where an allow's ttl comes from: the least of the applying allow
    /// rules' ttls and the one the request asked for.
    fn write_ttl(
        &self,
        out: &mut dyn Write,
        outcome: &Outcome,
        asked: Option<&Value>,
    ) -> io::Result<()> {
        let Some(granted) = outcome.ttl else {
            return Ok(());
        };
        let program = self.engine.program();
        let mut parts: Vec<String> = outcome
            .deciding
            .iter()
            .filter_map(|id| program.rule(*id))
            .filter_map(|rule| {
                let ttl = format_duration(rule.ttl?);
                Some(format!("`{}` {ttl}", printable(&rule.id)))
            })
            .collect();
        let asked = match asked {
            Some(Value::String(text)) => grant_syntax::parser::parse_duration(text).ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        if let Some(asked) = asked {
            parts.push(format!("the request's {}", format_duration(asked)));
        }
        let from = match parts.split_last() {
            Some((last, [])) => format!("from {last}"),
            Some((last, rest)) => format!("the least of {} and {last}", rest.join(", ")),
            None => return writeln!(out, "ttl       {}", format_duration(granted)),
        };
        writeln!(out, "ttl       {}: {from}", format_duration(granted))
    }

    /// Which rules matched, and in what order they were evaluated.
    fn write_summary(&self, out: &mut dyn Write, tool: &str, outcome: &Outcome) -> io::Result<()> {
        let tool = printable(tool);
        let program = self.engine.program();
        let total = program.rules.len();
        let matched = self.candidates.len();
        if matched == 0 {
            return writeln!(
                out,
                "None of the policy's {} matches `{tool}`, so it is denied by default.",
                count(total, "rule", "rules")
            );
        }
        let effect_of = |id: &RuleId| program.rule(*id).map(|r| r.effect);
        let denies = self
            .candidates
            .iter()
            .filter(|id| effect_of(id) == Some(Effect::Deny))
            .count();
        let allows = matched - denies;
        writeln!(
            out,
            "{matched} of the policy's {} {} `{tool}` ({} deny, {} allow); rules that do not match are not listed.",
            count(total, "rule", "rules"),
            if matched == 1 { "matches" } else { "match" },
            denies,
            allows,
        )?;
        let applied = outcome.deciding.len();
        let sentence = if outcome.is_allow() || applied == 0 {
            let allowed = if outcome.is_allow() { applied } else { 0 };
            let allow_part = match (allows, allowed) {
                (0, _) => "no allow rule matches, so it is denied by default".to_string(),
                (1, 1) => "the allow rule applies".to_string(),
                (1, _) => "the allow rule does not apply, so it is denied by default".to_string(),
                (n, 0) => {
                    format!("none of the {n} allow rules applies, so it is denied by default")
                }
                (n, k) if k == n => format!("all {n} allow rules apply"),
                (n, 1) => format!("1 of the {n} allow rules applies"),
                (n, k) => format!("{k} of the {n} allow rules apply"),
            };
            match denies {
                0 => format!("No deny rule matches; {allow_part}."),
                1 => format!(
                    "The deny rule is evaluated first and does not apply; then {allow_part}."
                ),
                n => format!(
                    "Deny rules are evaluated first, and none of the {n} applies; then {allow_part}."
                ),
            }
        } else {
            let deny_part = match (denies, applied) {
                (1, _) => "the deny rule applies".to_string(),
                (n, k) if k == n => format!("all {n} apply"),
                (n, 1) => format!("1 of the {n} applies"),
                (n, k) => format!("{k} of the {n} apply"),
            };
            let first = if denies == 1 {
                "The deny rule is evaluated first, and it applies".to_string()
            } else {
                format!("Deny rules are evaluated first, and {deny_part}")
            };
            let skipped = match allows {
                0 => String::new(),
                1 => ", so the allow rule is not evaluated".to_string(),
                n => format!(", so the {n} allow rules are not evaluated"),
            };
            format!("{first}{skipped}.")
        };
        writeln!(out, "{sentence}")
    }

    /// Matching allow rules that were not evaluated: a deny applied first.
    fn skipped(&self, outcome: &Outcome) -> Vec<RuleId> {
        let program = self.engine.program();
        self.candidates
            .iter()
            .copied()
            .filter(|id| {
                program.rule(*id).is_some_and(|r| r.effect == Effect::Allow)
                    && !outcome.considered.iter().any(|c| c.rule == *id)
            })
            .collect()
    }

    fn write_rule(
        &self,
        out: &mut dyn Write,
        rule: &CompiledRule,
        verdict: &Verdict,
        missing: &[SlotId],
        values: &HashMap<String, &Value>,
    ) -> io::Result<()> {
        let p = &self.paint;
        let program = self.engine.program();
        let sources = self.engine.sources();
        let is_deny = rule.effect == Effect::Deny;
        let verdict_text = match verdict {
            Verdict::Evaluated { applied: true, .. } if is_deny => p.red("APPLIES"),
            Verdict::Evaluated { applied: true, .. } => match rule.ttl {
                Some(ttl) => format!("{}, ttl {}", p.green("APPLIES"), format_duration(ttl)),
                None => p.green("APPLIES"),
            },
            Verdict::Evaluated { applied: false, .. } => p.dim("does not apply"),
            Verdict::Skipped => p.dim("not evaluated: a deny rule applies"),
        };
        writeln!(
            out,
            "{:<INDENT$}{}  {verdict_text}",
            rule.effect.as_str(),
            p.bold(&printable(&rule.id))
        )?;
        // Labels and texts are escaped here; colour is added after.
        let line = |label: &str, text: &str| format!("{:INDENT$}{label:<LABEL$}{text}", "");
        let at = sources
            .get(rule.span.file)
            .map(|file| format!("{}:{}", file.display, file.line_col(rule.span.start).0))
            .unwrap_or_default();
        writeln!(out, "{}", line("at", &printable(&at)))?;
        writeln!(out, "{}", line("tool", &printable(&rule.patterns_text())))?;
        for (name, value) in rule.annotations.iter() {
            if &**name != "id" {
                let label = format!("@{}", printable(name));
                writeln!(out, "{}", line(&label, &printable(value)))?;
            }
        }
        let Some(span) = rule.condition_span else {
            writeln!(out, "{}", line("when", "(no condition: always true)"))?;
            return Ok(());
        };
        for (i, text) in condition_lines(sources.snippet(span)).iter().enumerate() {
            let label = if i == 0 { "when" } else { "" };
            writeln!(out, "{}", line(label, &printable(text)))?;
        }
        let Verdict::Evaluated { result, .. } = verdict else {
            return Ok(());
        };
        for (i, slot) in slots_read(program.code_of(rule)).into_iter().enumerate() {
            let Some(attr) = program.attrs.get(slot.0 as usize) else {
                continue;
            };
            let path = printable(&attr.path);
            let given = match values.get(attr.path.as_str()) {
                Some(value) => format!("{path} = {}", printable(&show(attr.ty, value))),
                None => format!("{path} {}", p.yellow("missing")),
            };
            writeln!(out, "{}", line(if i == 0 { "given" } else { "" }, &given))?;
        }
        let result = match result {
            Tri::True => "true".to_string(),
            Tri::False => "false".to_string(),
            Tri::Unknown => {
                let names: Vec<String> = missing
                    .iter()
                    .filter_map(|slot| program.attrs.get(slot.0 as usize))
                    .map(|a| format!("`{}`", printable(&a.path)))
                    .collect();
                let without = if names.is_empty() {
                    String::new()
                } else {
                    format!(" without {}", names.join(", "))
                };
                let consequence = if is_deny {
                    "an unknown deny applies (fail closed)"
                } else {
                    "an unknown allow does not apply"
                };
                format!("{}{without}: {consequence}", p.yellow("unknown"))
            }
        };
        writeln!(out, "{}", line("result", &result))
    }
}

/// A condition as written, its continuation lines re-indented under the
/// first.
fn condition_lines(text: &str) -> Vec<String> {
    let mut lines = without_trailing_comments(text).lines();
    let first = lines.next().unwrap_or("").trim_end().to_string();
    let rest: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let margin = rest
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    std::iter::once(first)
        .chain(
            rest.iter()
                .map(|l| format!("  {}", l.get(margin..).unwrap_or(l).trim_end())),
        )
        .collect()
}

/// `text` without the comments and blank space at its end. A condition's
/// span can run on over the comments that follow it (the parser's spans for
/// `and`, `or` and `not` take in trailing trivia), and they are no part of
/// the condition.
fn without_trailing_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_end();
        let line_start = text.rfind('\n').map_or(0, |i| i + 1);
        let Some(comment) = text.get(line_start..).and_then(comment_start) else {
            return text;
        };
        text = text.get(..line_start + comment).unwrap_or("");
    }
}

/// Where a `#` comment starts in one line of source, outside strings
/// (which cannot span lines).
fn comment_start(line: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

/// The attributes a rule's code reads, in the order it reads them.
fn slots_read(code: &[Op]) -> Vec<SlotId> {
    let mut slots = Vec::new();
    let mut add = |operand: Operand| {
        if let Operand::Slot(slot) = operand {
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
    };
    for op in code {
        match *op {
            Op::LoadBool(slot) => add(Operand::Slot(slot)),
            Op::Compare { lhs, rhs, .. } | Op::CompareSet { lhs, rhs, .. } => {
                add(lhs);
                add(rhs);
            }
            Op::InList { needle, .. } => add(needle),
            Op::InSet { needle, set } => {
                add(needle);
                add(Operand::Slot(set));
            }
            Op::Matches { subject, .. } => add(subject),
            Op::Push(_) | Op::Not | Op::And | Op::Or | Op::JumpIfFalse(_) | Op::JumpIfTrue(_) => {}
        }
    }
    slots
}

/// The request's attribute values by dotted path, nested and dotted keys
/// alike; `null` values are left out (they are missing).
fn flatten<'v>(
    engine: &Engine,
    value: &'v Value,
    prefix: &mut String,
    out: &mut HashMap<String, &'v Value>,
) {
    let Value::Object(map) = value else {
        return;
    };
    for (key, value) in map {
        let outer = prefix.len();
        if outer > 0 {
            prefix.push('.');
        }
        prefix.push_str(key);
        if engine.attr(prefix).is_some() {
            if !value.is_null() {
                out.insert(prefix.clone(), value);
            }
        } else {
            flatten(engine, value, prefix, out);
        }
        prefix.truncate(outer);
    }
}

/// A request value as the policy language writes it: enum variants bare,
/// durations with units.
fn show(ty: Type, value: &Value) -> String {
    match (ty, value) {
        (Type::Set(scalar), Value::Array(items)) => format!(
            "[{}]",
            items
                .iter()
                .map(|item| show_scalar(scalar, item))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Type::Scalar(scalar), value) | (Type::Set(scalar), value) => show_scalar(scalar, value),
    }
}

fn show_scalar(scalar: Scalar, value: &Value) -> String {
    match (scalar, value) {
        (Scalar::Enum(_), Value::String(name)) => name.clone(),
        (Scalar::Duration, Value::String(text)) => text.clone(),
        (Scalar::Duration, Value::Number(n)) => match n.as_u64() {
            Some(seconds) if seconds >= 60 => format!("{seconds}s ({})", format_duration(seconds)),
            Some(seconds) => format!("{seconds}s"),
            None => n.to_string(),
        },
        // `-0` reaches serde_json as the float -0.0; the engine read zero.
        (Scalar::Int, Value::Number(n)) if n.as_f64() == Some(0.0) => "0".to_string(),
        (_, value) => value.to_string(),
    }
}

/// ANSI colour, or plain text.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn red(self, text: &str) -> String {
        self.wrap("1;31", text)
    }

    fn green(self, text: &str) -> String {
        self.wrap("1;32", text)
    }

    fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }
}

#[cfg(test)]
mod tests {
    use super::condition_lines;

    #[test]
    fn trailing_comments_are_no_part_of_a_condition() {
        let text = "a matches \"x#y\" # note\n# next rule\n\n";
        assert_eq!(condition_lines(text), ["a matches \"x#y\""]);
        let text = "a\n    # inside\n    and b  # after";
        assert_eq!(condition_lines(text), ["a", "  # inside", "  and b"]);
    }

    #[test]
    fn continuation_lines_are_reindented() {
        let text = "task.approved\n        and a == 1\n        and b";
        assert_eq!(
            condition_lines(text),
            ["task.approved", "  and a == 1", "  and b"]
        );
    }
}
