//! Running one case: its request is decided by the engine, and the decision
//! compared with what the case expects, row by row (effect, ttl, rules,
//! missing, errors, obligations). A failure is shown as a table of the rows the case
//! checks, expected beside actual.

use grant_engine::{Decision, DecisionEffect, Engine};

use super::file::Case;

/// One row of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    Effect,
    Ttl,
    Rules,
    Missing,
    Errors,
    Obligations,
}

impl Row {
    pub fn as_str(self) -> &'static str {
        match self {
            Row::Effect => "effect",
            Row::Ttl => "ttl",
            Row::Rules => "rules",
            Row::Missing => "missing",
            Row::Errors => "errors",
            Row::Obligations => "obligations",
        }
    }
}

/// A case and how it came out.
#[derive(Debug)]
pub struct Outcome<'c> {
    pub case: &'c Case,
    pub decision: Decision,
    /// The rows shown for this case: effect, each one the case checks, and
    /// errors when the request was invalid; in that order.
    pub shown: Vec<Row>,
    /// The rows whose actual value differs from the expected one.
    pub differ: Vec<Row>,
}

impl Outcome<'_> {
    pub fn passed(&self) -> bool {
        self.differ.is_empty()
    }

    /// The expected value of a row, as shown in the table.
    pub fn expected(&self, row: Row) -> String {
        let expect = &self.case.expect;
        match row {
            Row::Effect => effect(expect.effect).to_string(),
            Row::Ttl => expect.ttl.map_or_else(|| "-".to_string(), duration),
            Row::Rules => list(expect.rules.as_deref().unwrap_or_default()),
            Row::Missing => list(expect.missing.as_deref().unwrap_or_default()),
            Row::Errors => {
                if expect.errors.unwrap_or(false) {
                    "some (invalid request)".to_string()
                } else {
                    "none".to_string()
                }
            }
            Row::Obligations => expect
                .obligations
                .as_ref()
                .map_or_else(|| "-".to_string(), |o| obligations(o.uses, &o.approvals)),
        }
    }

    /// The actual value of a row, as shown in the table.
    pub fn actual(&self, row: Row) -> String {
        let decision = &self.decision;
        match row {
            Row::Effect => effect(decision.effect).to_string(),
            Row::Ttl => decision
                .ttl_seconds
                .map_or_else(|| "none (deny)".to_string(), duration),
            Row::Rules => list(&rule_ids(decision)),
            Row::Missing => list(&decision.missing),
            Row::Errors => {
                if decision.errors.is_empty() {
                    "none".to_string()
                } else {
                    decision.errors.join("; ")
                }
            }
            Row::Obligations => decision.obligations.as_ref().map_or_else(
                || "none (deny)".to_string(),
                |o| obligations(o.uses, &o.approvals),
            ),
        }
    }

    /// The side-by-side table of a failed case, each line indented by
    /// `indent`; rows that differ end in `<- differs`. For a terminal
    /// (`printable`), the cells are escaped before they are aligned: they
    /// quote the request and the test file.
    pub fn table(&self, indent: &str, printable: bool) -> Vec<String> {
        let cell = |text: String| {
            if printable {
                grant_syntax::chars::printable(&text).into_owned()
            } else {
                text
            }
        };
        let rows: Vec<(Row, String, String)> = self
            .shown
            .iter()
            .map(|&row| (row, cell(self.expected(row)), cell(self.actual(row))))
            .collect();
        let label_width = rows
            .iter()
            .map(|(row, _, _)| row.as_str().len())
            .max()
            .unwrap_or(0);
        let expected_width = rows
            .iter()
            .map(|(_, expected, _)| expected.chars().count())
            .chain(std::iter::once("expected".len()))
            .max()
            .unwrap_or(0);
        let actual_width = rows
            .iter()
            .map(|(_, _, actual)| actual.chars().count())
            .chain(std::iter::once("actual".len()))
            .max()
            .unwrap_or(0);
        let mut lines = vec![format!(
            "{indent}{:label_width$}   {:expected_width$}   actual",
            "", "expected"
        )];
        for (row, expected, actual) in rows {
            let line = if self.differ.contains(&row) {
                format!(
                    "{indent}{:label_width$}   {expected:expected_width$}   {actual:actual_width$}   <- differs",
                    row.as_str()
                )
            } else {
                format!(
                    "{indent}{:label_width$}   {expected:expected_width$}   {actual}",
                    row.as_str()
                )
            };
            lines.push(line);
        }
        lines
    }
}

/// Decides `case` under `engine` and compares.
pub fn run<'c>(engine: &Engine, case: &'c Case) -> Outcome<'c> {
    let decision = engine.decide_json(case.request.to_string());
    let expect = &case.expect;
    let mut shown = vec![Row::Effect];
    let mut differ = Vec::new();
    if expect.effect != decision.effect {
        differ.push(Row::Effect);
    }
    if let Some(ttl) = expect.ttl {
        shown.push(Row::Ttl);
        if decision.ttl_seconds != Some(ttl) {
            differ.push(Row::Ttl);
        }
    }
    if let Some(rules) = &expect.rules {
        shown.push(Row::Rules);
        if *rules != rule_ids(&decision) {
            differ.push(Row::Rules);
        }
    }
    if let Some(missing) = &expect.missing {
        shown.push(Row::Missing);
        let mut expected: Vec<&str> = missing.iter().map(String::as_str).collect();
        let mut actual: Vec<&str> = decision.missing.iter().map(String::as_str).collect();
        expected.sort_unstable();
        actual.sort_unstable();
        if expected != actual {
            differ.push(Row::Missing);
        }
    }
    if let Some(expected) = &expect.obligations {
        shown.push(Row::Obligations);
        // Both sides list groups sorted, each once: compared as they are.
        let matches = decision.obligations.as_ref().is_some_and(|actual| {
            actual.uses == expected.uses && actual.approvals == expected.approvals
        });
        if !matches {
            differ.push(Row::Obligations);
        }
    }
    // Without `expect.errors`, the request must be valid: a typo in `attrs`
    // must not pass a deny case by making the request invalid.
    let invalid = !decision.errors.is_empty();
    if expect.errors.is_some() || invalid {
        shown.push(Row::Errors);
        if expect.errors.unwrap_or(false) != invalid {
            differ.push(Row::Errors);
        }
    }
    Outcome {
        case,
        decision,
        shown,
        differ,
    }
}

pub fn rule_ids(decision: &Decision) -> Vec<String> {
    decision.rules.iter().map(|r| r.id.clone()).collect()
}

/// `"allow"` or `"deny"`.
pub fn effect(effect: DecisionEffect) -> &'static str {
    match effect {
        DecisionEffect::Allow => "allow",
        DecisionEffect::Deny => "deny",
    }
}

/// `none`, or the items joined by `, `.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// `uses 1, approvals dba, sre`; `none` for an allow without obligations.
fn obligations(uses: Option<u64>, approvals: &[String]) -> String {
    let parts: Vec<String> = uses
        .map(|n| format!("uses {n}"))
        .into_iter()
        .chain((!approvals.is_empty()).then(|| format!("approvals {}", approvals.join(", "))))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// `15m (900s)`; `20s` alone when under a minute.
pub fn duration(seconds: u64) -> String {
    if seconds < 60 {
        return format!("{seconds}s");
    }
    format!(
        "{} ({seconds}s)",
        grant_syntax::parser::format_duration(seconds)
    )
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(duration(20), "20s");
        assert_eq!(duration(60), "1m (60s)");
        assert_eq!(duration(900), "15m (900s)");
        assert_eq!(duration(5_400), "1h30m (5400s)");
        assert_eq!(duration(90_061), "1d1h1m1s (90061s)");
    }
}
