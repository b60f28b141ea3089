//! The rule index: from a tool name to the rules whose pattern can match it,
//! without scanning every pattern. Exact names are found by hash; globs by
//! their literal prefix (or, for `*x` globs, suffix) looked up at each
//! length some glob's prefix has; `*` rules are always candidates.

use crate::glob::Glob;
use crate::program::{GlobId, RuleId};

pub use grant_check::fnv::{Fnv, FnvMap};

/// A glob pattern of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobEntry {
    pub rule: RuleId,
    pub glob: GlobId,
}

/// Globs keyed by a literal piece (prefix or suffix) and the distinct
/// lengths of those pieces.
#[derive(Clone, Debug, Default)]
pub struct PieceTable {
    pub lengths: Vec<usize>,
    pub entries: FnvMap<Box<str>, Vec<GlobEntry>>,
}

impl PieceTable {
    fn insert(&mut self, piece: &str, entry: GlobEntry) {
        if !self.lengths.contains(&piece.len()) {
            self.lengths.push(piece.len());
            self.lengths.sort_unstable();
        }
        self.entries.entry(piece.into()).or_default().push(entry);
    }

    pub fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Clone, Debug, Default)]
pub struct RuleIndex {
    pub exact: FnvMap<Box<str>, Vec<RuleId>>,
    pub by_prefix: PieceTable,
    pub by_suffix: PieceTable,
    /// Globs with no literal prefix or suffix (`*x*`): checked on every lookup.
    pub scan: Vec<GlobEntry>,
    /// `tool *` and `"*"`: every tool.
    pub any: Vec<RuleId>,
}

impl RuleIndex {
    pub(crate) fn add_any(&mut self, rule: RuleId) {
        self.any.push(rule);
    }

    pub(crate) fn add_pattern(&mut self, rule: RuleId, glob_id: GlobId, glob: &Glob) {
        let entry = GlobEntry {
            rule,
            glob: glob_id,
        };
        if !glob.has_star {
            self.exact
                .entry(glob.prefix.clone())
                .or_default()
                .push(rule);
        } else if glob.is_any() {
            self.any.push(rule);
        } else if !glob.prefix.is_empty() {
            self.by_prefix.insert(&glob.prefix, entry);
        } else if !glob.suffix.is_empty() {
            self.by_suffix.insert(&glob.suffix, entry);
        } else {
            self.scan.push(entry);
        }
    }

    /// The rules whose patterns match `tool`, ascending, without duplicates,
    /// into `out` (cleared first; its capacity is reused).
    pub fn candidates(&self, tool: &str, globs: &[Glob], out: &mut Vec<RuleId>) {
        out.clear();
        if let Some(rules) = self.exact.get(tool) {
            out.extend_from_slice(rules);
        }
        let exact_only = out.len();
        let matches = |entry: &GlobEntry| {
            globs
                .get(entry.glob.0 as usize)
                .is_some_and(|g| g.matches(tool))
        };
        for &length in &self.by_prefix.lengths {
            if length > tool.len() {
                break;
            }
            let Some(prefix) = tool.get(..length) else {
                continue;
            };
            if let Some(entries) = self.by_prefix.entries.get(prefix) {
                out.extend(entries.iter().filter(|e| matches(e)).map(|e| e.rule));
            }
        }
        for &length in &self.by_suffix.lengths {
            let Some(start) = tool.len().checked_sub(length) else {
                break;
            };
            let Some(suffix) = tool.get(start..) else {
                continue;
            };
            if let Some(entries) = self.by_suffix.entries.get(suffix) {
                out.extend(entries.iter().filter(|e| matches(e)).map(|e| e.rule));
            }
        }
        out.extend(self.scan.iter().filter(|e| matches(e)).map(|e| e.rule));
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
