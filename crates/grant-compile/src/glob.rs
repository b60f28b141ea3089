//! Globs with one wildcard, `*`: any run of characters, empty or not, dots
//! included. Tool patterns and `matches` share this one matcher.

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

    /// Whether the whole of `text` matches. Linear in `text` for each middle
    /// piece: the leftmost match of each piece is always the best choice.
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

#[cfg(test)]
mod tests {
    use super::Glob;

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
    }
}
