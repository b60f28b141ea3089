//! A decision told for the people who review policies (`grant eval
//! --explain`, the bindings' `explain()`), rendered from the engine's
//! [`Explanation`]. The decision, then
//! every rule whose pattern matches the tool: where it is, its condition as
//! written, the request values it reads, how it came out in three-valued
//! logic, and whether it applied. Rules whose pattern does not match are
//! counted, not listed.
//!
//! Everything a request or a policy file supplies (the tool, attribute
//! paths and values, errors quoting them, conditions and annotations) is
//! shown through [`printable`]: control characters and terminal escapes are
//! shown as escapes, never interpreted.

use grant_syntax::parser::format_duration;
use std::io::{self, Write};

use crate::{ConditionResult, DecisionEffect, Engine, ExplainedRule, Explanation, RuleStatus};
use grant_syntax::chars::printable;
use grant_syntax::render::{Paint, Style};

/// Width of the label column (`at`, `when`, `result`, ...) in a rule block.
const LABEL: usize = 9;
/// Indent of a rule block's lines under its header.
const INDENT: usize = 6;

/// Renders the explanations of decisions made under one policy.
#[derive(Debug)]
pub struct Explainer<'e> {
    engine: &'e Engine,
    policy: String,
    paint: Paint,
}

impl<'e> Explainer<'e> {
    /// An explainer of `engine`'s decisions; `policy` names where the
    /// policy came from (a path), `color` asks for ANSI colour.
    pub fn new(engine: &'e Engine, policy: &str, color: bool) -> Explainer<'e> {
        Explainer {
            engine,
            policy: printable(policy).into_owned(),
            paint: Paint(color),
        }
    }

    /// An explainer that names the policy by its files: the file of a
    /// one-file policy, else the directory holding them all (for embedders
    /// that did not keep the path they loaded).
    pub fn of(engine: &'e Engine, color: bool) -> Explainer<'e> {
        use std::path::{Path, PathBuf};
        let mut files = engine
            .sources()
            .files()
            .map(|(_, file)| Path::new(&file.display));
        let label = match (files.next(), files.len()) {
            (None, _) => PathBuf::from("policy"),
            (Some(only), 0) => only.to_path_buf(),
            (Some(first), _) => {
                // The deepest directory every file is under.
                let mut common = first.parent().unwrap_or(first).to_path_buf();
                for file in files {
                    while !file.starts_with(&common) && common.pop() {}
                }
                common
            }
        };
        Explainer::new(engine, &label.display().to_string(), color)
    }

    /// [`Explainer::write`] into a string.
    pub fn render(&self, label: Option<&str>, explanation: &Explanation) -> String {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write(&mut out, label, explanation);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes `explanation`, headed by `label`, where its request came from.
    pub fn write(
        &self,
        out: &mut dyn Write,
        label: Option<&str>,
        explanation: &Explanation,
    ) -> io::Result<()> {
        let decision = &explanation.decision;
        self.write_header(out, label, explanation)?;
        if decision.is_allow() {
            self.write_ttl(out, explanation)?;
            self.write_obligations(out, explanation)?;
        }
        writeln!(
            out,
            "policy    {} ({})",
            self.policy,
            self.engine.policy_hash()
        )?;
        let Some(tool) = &explanation.tool else {
            return Ok(());
        };
        writeln!(out)?;
        self.write_summary(out, tool, explanation)?;
        for rule in &explanation.rules {
            writeln!(out)?;
            self.write_rule(out, rule)?;
        }
        Ok(())
    }

    fn write_header(
        &self,
        out: &mut dyn Write,
        label: Option<&str>,
        explanation: &Explanation,
    ) -> io::Result<()> {
        let p = &self.paint;
        let decision = &explanation.decision;
        if let Some(label) = label {
            writeln!(out, "request   {}", printable(label))?;
        }
        let effect = if decision.is_allow() {
            let ttl = decision
                .ttl_seconds
                .map(|t| format!(" for {}", format_duration(t)))
                .unwrap_or_default();
            format!("{}{ttl}", p.paint(Style::Allowed, "ALLOW"))
        } else {
            p.paint(Style::Error, "DENY")
        };
        writeln!(out, "decision  {effect}")?;
        if let Some(tool) = &explanation.tool {
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
    fn write_ttl(&self, out: &mut dyn Write, explanation: &Explanation) -> io::Result<()> {
        let Some(granted) = explanation.decision.ttl_seconds else {
            return Ok(());
        };
        let mut parts: Vec<String> = applying_allows(explanation)
            .filter_map(|rule| {
                let ttl = format_duration(rule.rule.ttl?);
                Some(format!("`{}` {ttl}", printable(&rule.rule.id)))
            })
            .collect();
        if let Some(asked) = explanation.requested_ttl {
            parts.push(format!("the request's {}", format_duration(asked)));
        }
        let from = match parts.split_last() {
            Some((last, [])) => format!("from {last}"),
            Some((last, rest)) => format!("the least of {} and {last}", rest.join(", ")),
            None => return writeln!(out, "ttl       {}", format_duration(granted)),
        };
        writeln!(out, "ttl       {}: {from}", format_duration(granted))
    }

    /// What the allow binds its caller to, when anything: the least `uses`
    /// and every approval group, with the rules they come from.
    fn write_obligations(&self, out: &mut dyn Write, explanation: &Explanation) -> io::Result<()> {
        let Some(obligations) = &explanation.decision.obligations else {
            return Ok(());
        };
        if let Some(uses) = obligations.uses {
            let from: Vec<String> = applying_allows(explanation)
                .filter_map(|rule| {
                    Some(format!(
                        "`{}` {}",
                        printable(&rule.rule.id),
                        rule.rule.uses?
                    ))
                })
                .collect();
            let from = match from.as_slice() {
                [one] => format!("from {one}"),
                many => format!("the least of {}", many.join(", ")),
            };
            writeln!(out, "uses      {uses}: {from}")?;
        }
        for group in &obligations.approvals {
            let from: Vec<String> = applying_allows(explanation)
                .filter(|rule| rule.rule.approval.as_ref() == Some(group))
                .map(|rule| format!("`{}`", printable(&rule.rule.id)))
                .collect();
            writeln!(
                out,
                "approval  {} must approve (from {})",
                printable(group),
                from.join(", ")
            )?;
        }
        Ok(())
    }

    /// Which rules matched, and in what order they were evaluated.
    fn write_summary(
        &self,
        out: &mut dyn Write,
        tool: &str,
        explanation: &Explanation,
    ) -> io::Result<()> {
        let tool = printable(tool);
        let total = explanation.policy_rules;
        let matched = explanation.rules.len();
        if matched == 0 {
            return writeln!(
                out,
                "None of the policy's {} matches `{tool}`, so it is denied by default.",
                count(total, "rule", "rules")
            );
        }
        let denies = explanation
            .rules
            .iter()
            .filter(|r| r.rule.effect == DecisionEffect::Deny)
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
        let applied = explanation
            .rules
            .iter()
            .filter(|r| r.status == RuleStatus::Applies)
            .count();
        let is_allow = explanation.decision.is_allow();
        let sentence = if is_allow || applied == 0 {
            let allowed = if is_allow { applied } else { 0 };
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

    fn write_rule(&self, out: &mut dyn Write, explained: &ExplainedRule) -> io::Result<()> {
        let p = &self.paint;
        let rule = &explained.rule;
        let is_deny = rule.effect == DecisionEffect::Deny;
        let verdict_text = match explained.status {
            RuleStatus::Applies if is_deny => p.paint(Style::Error, "APPLIES"),
            RuleStatus::Applies => match rule.ttl {
                Some(ttl) => format!(
                    "{}, ttl {}",
                    p.paint(Style::Allowed, "APPLIES"),
                    format_duration(ttl)
                ),
                None => p.paint(Style::Allowed, "APPLIES"),
            },
            RuleStatus::DoesNotApply => p.paint(Style::Dim, "does not apply"),
            RuleStatus::NotEvaluated => p.paint(Style::Dim, "not evaluated: a deny rule applies"),
        };
        let effect = if is_deny { "deny" } else { "allow" };
        writeln!(
            out,
            "{effect:<INDENT$}{}  {verdict_text}",
            p.paint(Style::Bold, &printable(&rule.id))
        )?;
        // Labels and texts are escaped here; colour is added after.
        let line = |label: &str, text: &str| format!("{:INDENT$}{label:<LABEL$}{text}", "");
        let at = format!("{}:{}", rule.file, rule.line);
        writeln!(out, "{}", line("at", &printable(&at)))?;
        let tools = grant_compile::program::patterns_text(rule.tools.as_deref());
        writeln!(out, "{}", line("tool", &printable(&tools)))?;
        if let Some(uses) = rule.uses {
            writeln!(out, "{}", line("uses", &uses.to_string()))?;
        }
        if let Some(group) = &rule.approval {
            writeln!(
                out,
                "{}",
                line("approval", &printable(&format!("{group:?}")))
            )?;
        }
        for (name, value) in &rule.annotations {
            let label = format!("@{}", printable(name));
            writeln!(out, "{}", line(&label, &printable(value)))?;
        }
        let Some(condition) = &rule.condition else {
            writeln!(out, "{}", line("when", "(no condition: always true)"))?;
            return Ok(());
        };
        for (i, text) in condition.lines().enumerate() {
            let label = if i == 0 { "when" } else { "" };
            writeln!(out, "{}", line(label, &printable(text)))?;
        }
        let Some(result) = explained.result else {
            return Ok(());
        };
        for (i, given) in explained.given.iter().enumerate() {
            let path = printable(&given.path);
            let text = match &given.value {
                Some(value) => format!("{path} = {}", printable(value)),
                None => format!("{path} {}", p.paint(Style::Caution, "missing")),
            };
            writeln!(out, "{}", line(if i == 0 { "given" } else { "" }, &text))?;
        }
        let result = match result {
            ConditionResult::True => "true".to_string(),
            ConditionResult::False => "false".to_string(),
            ConditionResult::Unknown => {
                let names: Vec<String> = explained
                    .missing
                    .iter()
                    .map(|path| format!("`{}`", printable(path)))
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
                format!(
                    "{}{without}: {consequence}",
                    p.paint(Style::Caution, "unknown")
                )
            }
        };
        writeln!(out, "{}", line("result", &result))
    }
}

/// The allow rules that applied, in the order listed.
fn applying_allows(explanation: &Explanation) -> impl Iterator<Item = &ExplainedRule> {
    explanation
        .rules
        .iter()
        .filter(|r| r.rule.effect == DecisionEffect::Allow && r.status == RuleStatus::Applies)
}

/// `1 rule`, `2 rules`.
fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}
