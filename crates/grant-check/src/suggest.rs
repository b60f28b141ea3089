//! "Did you mean" suggestions for near-miss names, within a budget of work
//! per check: a policy of many unknown names and many declared ones gets
//! suggestions for its first mistakes, instead of comparing every name with
//! every other (quadratic in the policy). Which names get one depends only
//! on the policy, never on timing.

use std::cell::Cell;

/// Character comparisons all the suggestions of one check may cost: tens
/// of milliseconds: twenty typos among a thousand declared names of ten
/// characters, a hundred among two hundred.
const BUDGET: u64 = 2_000_000;

#[derive(Debug)]
pub(crate) struct Suggester {
    budget: Cell<u64>,
}

impl Default for Suggester {
    fn default() -> Suggester {
        Suggester {
            budget: Cell::new(BUDGET),
        }
    }
}

impl Suggester {
    /// The candidate closest to `name` by edit distance, if it is close
    /// enough to be a likely typo (at most one edit per three characters,
    /// at least one). The first of equally close candidates wins.
    pub fn closest<'a>(
        &self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let name_len = name.chars().count();
        let limit = (name_len / 3).max(1);
        let mut best: Option<(usize, &'a str)> = None;
        for candidate in candidates {
            // Looking at a candidate costs its length; comparing, the
            // product of the lengths.
            if !self.spend(1 + candidate.len() as u64) {
                break;
            }
            let candidate_len = candidate.chars().count();
            if candidate == name || candidate_len.abs_diff(name_len) > limit {
                continue;
            }
            if !self.spend((name_len * candidate_len) as u64) {
                break;
            }
            let distance = edit_distance(name, candidate);
            if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, candidate));
            }
        }
        best.map(|(_, candidate)| candidate)
    }

    /// Takes `cost` from the budget; false (and the budget spent) when it
    /// does not cover it.
    fn spend(&self, cost: u64) -> bool {
        match self.budget.get().checked_sub(cost) {
            Some(rest) => {
                self.budget.set(rest);
                true
            }
            None => {
                self.budget.set(0);
                false
            }
        }
    }
}

/// Levenshtein distance over characters, with adjacent transpositions
/// counted as one edit (`tsak` → `task`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1)
                .min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = best;
        }
    }
    d[at(a.len(), b.len())]
}

/// At most `shown` names, backticked and joined by `separator`, and how
/// many more there are: help lines stay short however large an enum is.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a str>, separator: &str) -> String {
    const SHOWN: usize = 8;
    let mut names = names.into_iter();
    let mut out: Vec<String> = names
        .by_ref()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect();
    let more = names.count();
    if more > 0 {
        out.push(format!("and {more} more"));
    }
    out.join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["task.approved", "task.labels", "env"];
        let suggester = Suggester::default();
        assert_eq!(
            suggester.closest("task.aproved", names),
            Some("task.approved")
        );
        assert_eq!(
            suggester.closest("tsak.approved", names),
            Some("task.approved")
        );
        assert_eq!(suggester.closest("enx", names), Some("env"));
        assert_eq!(suggester.closest("sensitivity", names), None);
    }

    #[test]
    fn the_budget_ends_suggestions_for_good() {
        let names: Vec<String> = (0..100_000).map(|i| format!("name_{i:06}")).collect();
        let suggester = Suggester::default();
        let mut suggested = 0;
        for i in 0..1_000 {
            let typo = format!("name_{i:06}x");
            if suggester
                .closest(&typo, names.iter().map(String::as_str))
                .is_some()
            {
                suggested += 1;
            }
        }
        // The first typos get one; then the budget is spent.
        assert!(suggested > 0 && suggested < 1_000, "{suggested}");
        assert_eq!(suggester.budget.get(), 0);
    }

    #[test]
    fn lists_are_cut() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        assert_eq!(
            list(names, ", "),
            "`a`, `b`, `c`, `d`, `e`, `f`, `g`, `h`, and 2 more"
        );
        assert_eq!(list(["x", "y"], " < "), "`x` < `y`");
    }
}
