//! The rule index: from a tool name to the rules whose pattern can match it,
//! without trying every pattern. Exact names are found by hash; globs
//! through a [`GlobSet`], in which one pass over the tool name finds the
//! globs whose literal pieces it has, however many globs there are (see
//! `grant_check::glob`); `*` rules are always candidates.

use grant_check::glob::{Glob, GlobScratch, GlobSet, GlobSetBuilder, GlobSetStats, Member};

pub use grant_check::fnv::{Fnv, FnvMap};

use crate::program::{GlobId, RuleId};

#[derive(Clone, Debug, Default)]
pub struct RuleIndex {
    pub exact: FnvMap<Box<str>, Vec<RuleId>>,
    /// Tool patterns with a `*` (but `*` alone), each distinct glob once.
    globs: GlobSet,
    /// Per member of `globs`: its glob, and the rules that have it.
    members: Vec<(GlobId, Vec<RuleId>)>,
    /// `tool *` and `"*"`: every tool.
    pub any: Vec<RuleId>,
}

/// Builds a [`RuleIndex`], pattern by pattern.
#[derive(Debug, Default)]
pub(crate) struct RuleIndexBuilder {
    exact: FnvMap<Box<str>, Vec<RuleId>>,
    globs: GlobSetBuilder,
    members: Vec<(GlobId, Vec<RuleId>)>,
    member_of: FnvMap<GlobId, Member>,
    any: Vec<RuleId>,
}

impl RuleIndexBuilder {
    pub(crate) fn add_any(&mut self, rule: RuleId) {
        self.any.push(rule);
    }

    pub(crate) fn add_pattern(&mut self, rule: RuleId, glob_id: GlobId, glob: &Glob) {
        if !glob.has_star {
            self.exact
                .entry(glob.prefix.clone())
                .or_default()
                .push(rule);
        } else if glob.is_any() {
            self.any.push(rule);
        } else {
            let member = *self
                .member_of
                .entry(glob_id)
                .or_insert_with(|| self.globs.insert(glob));
            match self.members.get_mut(member as usize) {
                Some((_, rules)) => rules.push(rule),
                None => self.members.push((glob_id, vec![rule])),
            }
        }
    }

    pub(crate) fn build(self) -> RuleIndex {
        RuleIndex {
            exact: self.exact,
            globs: self.globs.build(),
            members: self.members,
            any: self.any,
        }
    }
}

/// Buffers of index lookups, reused from one to the next.
#[derive(Clone, Debug, Default)]
pub struct IndexScratch {
    globs: GlobScratch,
    members: Vec<Member>,
}

impl RuleIndex {
    /// How many glob patterns the index holds, by how it finds them (a
    /// glob that several rules have counts once per rule).
    pub fn glob_stats(&self) -> GlobSetStats {
        self.globs.stats(|member| {
            self.members
                .get(member as usize)
                .map_or(0, |(_, rules)| rules.len())
        })
    }

    /// The rules whose patterns match `tool`, ascending, without duplicates,
    /// into `out` (cleared first; its capacity is reused). Allocates a
    /// scratch: repeated lookups should use [`RuleIndex::candidates_with`].
    pub fn candidates(&self, tool: &str, globs: &[Glob], out: &mut Vec<RuleId>) {
        self.candidates_with(tool, globs, &mut IndexScratch::default(), out);
    }

    /// [`RuleIndex::candidates`] with reused buffers: allocates nothing once
    /// they have grown. Costs O(tool) hashing and one pass of the glob
    /// set's automaton, plus confirming each glob the tool has the pieces
    /// of.
    pub fn candidates_with(
        &self,
        tool: &str,
        globs: &[Glob],
        scratch: &mut IndexScratch,
        out: &mut Vec<RuleId>,
    ) {
        out.clear();
        if let Some(rules) = self.exact.get(tool) {
            out.extend_from_slice(rules);
        }
        let exact_only = out.len();
        if !self.members.is_empty() {
            scratch.members.clear();
            self.globs
                .candidates(tool, &mut scratch.globs, &mut scratch.members);
            for &member in &scratch.members {
                let Some((glob, rules)) = self.members.get(member as usize) else {
                    continue;
                };
                if globs.get(glob.0 as usize).is_some_and(|g| g.matches(tool)) {
                    out.extend_from_slice(rules);
                }
            }
        }
        out.extend_from_slice(&self.any);
        if out.len() == exact_only {
            // Exact names alone: one list, built in rule order, no repeats
            // but those of a rule listing a name twice.
            out.dedup();
            return;
        }
        // Rules with several patterns may have been found more than once.
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use grant_syntax::SourceMap;

    use super::IndexScratch;
    use crate::program::RuleId;

    /// The index finds exactly the rules a scan of every pattern finds.
    #[test]
    fn candidates_are_the_rules_whose_patterns_match() {
        let patterns = [
            "\"db.read\"",
            "\"db.*\"",
            "\"*.read\"",
            "\"*ea*\"",
            "\"*e*d*\"",
            "\"d*a*d\"",
            "[\"*x*\", \"db.*\"]",
            "\"*\"",
            "\"**\"",
            "\"ab*ba\"",
            "*",
        ];
        let text: String = patterns
            .iter()
            .map(|p| format!("allow tool {p} ttl 5m\n"))
            .collect();
        let mut sources = SourceMap::new();
        sources.add("policy.grant", text);
        let program = crate::build(&sources).program.unwrap();
        let mut scratch = IndexScratch::default();
        let mut found = Vec::new();
        let tools = [
            "db.read", "db.", "db", "x.read", "read", "ea", "xdxaxd", "dad", "aba", "abba", "zzz",
            "d.e.a.d", "",
        ];
        // Twice: a scratch that saw other tools must not change answers.
        for tool in tools.iter().chain(tools.iter()) {
            program
                .index
                .candidates_with(tool, &program.globs, &mut scratch, &mut found);
            let expected: Vec<RuleId> = program
                .rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| match &rule.patterns {
                    None => true,
                    Some(patterns) => patterns
                        .iter()
                        .any(|p| crate::glob::Glob::new(p).matches(tool)),
                })
                .map(|(i, _)| RuleId(i as u32))
                .collect();
            assert_eq!(found, expected, "{tool:?}");
        }
    }
}
