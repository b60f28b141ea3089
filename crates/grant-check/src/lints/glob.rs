//! Glob containment for tool patterns: whether one pattern matches every tool
//! another matches. Patterns have one wildcard, `*` (any run of characters,
//! empty or not), as in `grant_compile::glob`, whose matcher this mirrors.
//!
//! `cover` contains `covered` (every string `covered` matches, `cover`
//! matches too) exactly when `cover` matches `covered` read as a string in
//! which each `*` is a symbol that only a `*` of `cover` can absorb. If it
//! does, whatever a `*` of `covered` stands for is absorbed by the same `*`
//! of `cover`. If it does not, putting for each `*` of `covered` a character
//! that `cover` never names gives a tool that `covered` matches and `cover`
//! does not.

/// A symbol of the text being matched: a character, or a `*` of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Symbol {
    Char(char),
    Star,
}

/// Whether every string `covered` matches, `cover` matches too.
pub(crate) fn covers(cover: &str, covered: &str) -> bool {
    let text: Vec<Symbol> = covered
        .chars()
        .map(|c| {
            if c == '*' {
                Symbol::Star
            } else {
                Symbol::Char(c)
            }
        })
        .collect();
    glob_match(cover, &text)
}

/// Whether `pattern` matches the whole of `text` (whose `*`s are plain
/// characters): `s matches "glob"` on constants.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let text: Vec<Symbol> = text.chars().map(Symbol::Char).collect();
    glob_match(pattern, &text)
}

/// Wildcard matching by backtracking to the last `*`: the `*` retries with
/// one more symbol each time a later piece fails. O(pattern × text) at worst.
fn glob_match(pattern: &str, text: &[Symbol]) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut p, mut t) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and how much of the
    // text that `*` has absorbed so far.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&symbol) = text.get(t) {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if symbol == Symbol::Char(c) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((resume, absorbed)) => {
                    p = resume;
                    t = absorbed + 1;
                    star = Some((resume, absorbed + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::{covers, matches};

    #[test]
    fn matching_agrees_with_the_compiled_matcher() {
        assert!(matches("db.read", "db.read"));
        assert!(!matches("db.read", "db.reads"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything.at.all"));
        assert!(matches("db.*", "db."));
        assert!(!matches("db.*", "db"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "acb"));
        assert!(matches("**", "x"));
        assert!(!matches("ab*ba", "aba"));
        // A `*` in the text is a plain character.
        assert!(matches("a*", "a*"));
        assert!(!matches("a", "*"));
        assert!(matches("\u{e9}*", "\u{e9}t\u{e9}"));
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

    /// The containment answer agrees with brute force over short strings.
    #[test]
    fn agrees_with_enumeration() {
        let patterns = [
            "", "a", "b", "*", "a*", "*a", "*a*", "a*b", "ab*", "*ab", "a*a", "*b*a*", "ab*ba",
            "a**", "*a*b*", "aa*", "*aa*", "a*b*a",
        ];
        // Every string over {a, b, c} up to length 5; `c` is named by no
        // pattern, so it stands for the characters a `*` may take.
        let mut strings = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in ['a', 'b', 'c'] {
                    next.push(format!("{s}{c}"));
                }
            }
            strings.extend(next.iter().cloned());
            frontier = next;
        }
        for cover in patterns {
            for covered in patterns {
                // Short strings suffice for these short patterns.
                let brute = strings
                    .iter()
                    .filter(|s| matches(covered, s))
                    .all(|s| matches(cover, s));
                assert_eq!(covers(cover, covered), brute, "{cover} covers {covered}");
            }
        }
    }
}
