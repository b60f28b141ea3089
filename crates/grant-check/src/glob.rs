//! Globs with one wildcard, `*`: any run of characters, empty or not, dots
//! included. This is the one matcher of Grant: tool patterns, `matches`
//! conditions (at decision time, and folded on constants by the lints) and
//! glob containment (lint G0903) all use [`Glob::matches`].

/// A pattern split at its `*`s, so that matching is a prefix test, a suffix
/// test and an in-order search for the pieces between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    /// The literal text before the first `*` (all of it when there is none).
    pub prefix: Box<str>,
    /// The literal text after the last `*`; empty without a `*`.
    pub suffix: Box<str>,
    /// The literal pieces between `*`s, in order, empty ones dropped.
    pub middle: Box<[Box<str>]>,
    /// Whether the pattern has a `*` at all.
    pub has_star: bool,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let mut pieces = pattern.split('*');
        let prefix: Box<str> = pieces.next().unwrap_or("").into();
        let rest: Vec<&str> = pieces.collect();
        match rest.split_last() {
            None => Glob {
                prefix,
                suffix: "".into(),
                middle: Box::new([]),
                has_star: false,
            },
            Some((suffix, middle)) => Glob {
                prefix,
                suffix: (*suffix).into(),
                middle: middle
                    .iter()
                    .filter(|m| !m.is_empty())
                    .map(|m| (*m).into())
                    .collect(),
                has_star: true,
            },
        }
    }

    /// `*` alone: matches everything.
    pub fn is_any(&self) -> bool {
        self.has_star && self.prefix.is_empty() && self.suffix.is_empty() && self.middle.is_empty()
    }

    /// Whether the whole of `text` matches, in O(pattern + text): once the
    /// prefix and suffix are cut off, the leftmost match of each middle
    /// piece is always the best choice (it leaves the most text for the
    /// pieces after it), so no backtracking is ever needed.
    pub fn matches(&self, text: &str) -> bool {
        if !self.has_star {
            return text == &*self.prefix;
        }
        if text.len() < self.prefix.len() + self.suffix.len()
            || !text.starts_with(&*self.prefix)
            || !text.ends_with(&*self.suffix)
        {
            return false;
        }
        let mut rest = text
            .get(self.prefix.len()..text.len() - self.suffix.len())
            .unwrap_or("");
        for piece in self.middle.iter() {
            match rest.find(&**piece) {
                Some(at) => rest = rest.get(at + piece.len()..).unwrap_or(""),
                None => return false,
            }
        }
        true
    }

    /// Bytes of literal text: the glob's share of a rule's cost.
    pub fn literal_len(&self) -> usize {
        self.prefix.len() + self.suffix.len() + self.middle.iter().map(|m| m.len()).sum::<usize>()
    }
}

/// Whether every string `covered` matches, `cover` matches too: glob
/// containment, for lints.
///
/// `cover` contains `covered` exactly when `cover` matches `covered` read as
/// a string in which each `*` is a symbol that only a `*` of `cover` can
/// absorb. If it does, whatever a `*` of `covered` stands for is absorbed by
/// the same `*` of `cover`. If it does not, putting for each `*` of
/// `covered` a character that `cover` never names gives a tool that
/// `covered` matches and `cover` does not. A literal piece of `cover` never
/// holds a `*`, so it can never match onto or across a `*` of `covered`:
/// matching `covered`'s text, its `*`s taken as plain characters, is that
/// very test, and linear like any match.
pub fn covers(cover: &str, covered: &str) -> bool {
    Glob::new(cover).matches(covered)
}

#[cfg(test)]
mod tests {
    use super::{Glob, covers};

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn exact_and_star() {
        assert!(m("db.read", "db.read"));
        assert!(!m("db.read", "db.reads"));
        assert!(!m("db.read", "DB.READ"));
        assert!(m("*", ""));
        assert!(m("*", "anything.at.all"));
        assert!(m("db.*", "db."));
        assert!(m("db.*", "db.read.replica"));
        assert!(!m("db.*", "db"));
        assert!(m("*.read", "db.read"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("**", "x"));
        assert!(!m("ab*ba", "aba"), "prefix and suffix may not overlap");
        assert!(m("spiffe://prod/*", "spiffe://prod/billing"));
        // A `*` in the text is a plain character.
        assert!(m("a*", "a*"));
        assert!(!m("a", "*"));
        assert!(m("\u{e9}*", "\u{e9}t\u{e9}"));
    }

    #[test]
    fn matching_is_linear() {
        // The backtracking matcher this replaced took O(pattern × text) on
        // these; here each is one pass.
        let text = "a".repeat(200_000);
        assert!(!m(&format!("*{}b*", "a".repeat(1000)), &text));
        assert!(m(&format!("*{}*", "a".repeat(1000)), &text));
        assert!(!m("*a*a*a*a*a*b", &text));
    }

    #[test]
    fn exact_patterns_cover_only_themselves() {
        assert!(covers("db.read", "db.read"));
        assert!(!covers("db.read", "db.write"));
        assert!(!covers("db.read", "db.*"));
    }

    #[test]
    fn star_covers_everything() {
        for covered in ["", "*", "db.read", "db.*", "*.read", "a*b*c", "**"] {
            assert!(covers("*", covered), "{covered}");
            assert!(covers("**", covered), "{covered}");
        }
        assert!(!covers("db.*", "*"));
    }

    #[test]
    fn prefixes_and_suffixes() {
        assert!(covers("db.*", "db.read"));
        assert!(covers("db.*", "db.schema.*"));
        assert!(covers("db.*", "db.*"));
        assert!(covers("db.*", "db.*.x"));
        assert!(!covers("db.schema.*", "db.*"));
        assert!(!covers("db.*", "dbx*"));
        assert!(covers("*.read", "db.read"));
        assert!(covers("*.read", "*.read"));
        assert!(covers("*read", "*.read"));
        assert!(!covers("*.read", "*read"));
        assert!(covers("github.*", "github.*_collaborator"));
        assert!(!covers("github.delete_*", "github.get_*"));
    }

    #[test]
    fn middle_pieces() {
        assert!(covers("a*b*c", "ab*c"));
        assert!(covers("a*b*c", "axbyc"));
        assert!(covers("a*c", "a*b*c"));
        assert!(covers("*a*", "a*"));
        assert!(covers("*a*", "*a"));
        assert!(covers("*a*", "x*a*y"));
        // `*a*b*` matches `ab` but not `aXb`... both are in `a*b`.
        assert!(covers("*a*b*", "a*b"));
        // `*ab*` does not match `aXb`, which `*a*b*` does.
        assert!(!covers("*ab*", "*a*b*"));
        assert!(!covers("*a*", "*"));
        assert!(!covers("a*b*c", "a*c"));
        assert!(!covers("ab*ba", "ab*a"));
    }

    const PATTERNS: [&str; 22] = [
        "",
        "a",
        "b",
        "*",
        "a*",
        "*a",
        "*a*",
        "a*b",
        "ab*",
        "*ab",
        "a*a",
        "*b*a*",
        "ab*ba",
        "a**",
        "*a*b*",
        "aa*",
        "*aa*",
        "a*b*a",
        "*ab*ab*",
        "b*aa*b",
        "*ba*a*ab*",
        "aba",
    ];

    /// Every string over {a, b, c} up to length `n`; `c` is named by no
    /// pattern, so it stands for the characters a `*` may take.
    fn strings(n: usize) -> Vec<String> {
        let mut strings = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..n {
            let mut next = Vec::new();
            for s in &frontier {
                for c in ['a', 'b', 'c'] {
                    next.push(format!("{s}{c}"));
                }
            }
            strings.extend(next.iter().cloned());
            frontier = next;
        }
        strings
    }

    /// The containment answer agrees with brute force over short strings.
    #[test]
    fn covers_agrees_with_enumeration() {
        let strings = strings(7);
        for cover in PATTERNS {
            for covered in PATTERNS {
                // Strings two longer than a pattern's literal text suffice.
                let brute = strings
                    .iter()
                    .filter(|s| m(covered, s))
                    .all(|s| m(cover, s));
                assert_eq!(covers(cover, covered), brute, "{cover} covers {covered}");
            }
        }
    }
}
