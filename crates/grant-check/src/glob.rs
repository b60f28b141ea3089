//! Globs with one wildcard, `*`: any run of characters, empty or not, dots
//! included. This is the one matcher of Grant: tool patterns, `matches`
//! conditions (at decision time, and folded on constants by the lints) and
//! glob containment (lint G0903) all use [`Glob::matches`]. [`GlobSet`]
//! finds, among many globs, the few that can match a text, in one pass over
//! the text.

use std::hash::{BuildHasherDefault, Hasher};

use aho_corasick::{AhoCorasick, MatchKind};

use crate::fnv::{self, FnvMap, FnvSet};

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

/// A glob's number in a [`GlobSet`], in the order they were inserted.
pub type Member = u32;

/// Many globs, indexed by their literal pieces, so that the globs that can
/// match a text are found without trying each one.
///
/// A glob that matches a text has its prefix at the text's start, its
/// suffix at the end, and every middle piece somewhere in it. The set keys
/// prefixes (and suffixes) by length and FNV-1a hash, so that one pass over
/// the text's first (last) bytes hashes each of its prefixes (suffixes) of
/// a length some glob has; and it finds every occurrence of every middle
/// piece in one pass of an Aho-Corasick automaton. A glob is a candidate
/// once all of its pieces were found. For a text of `t` bytes, a query
/// costs O(t + o + h): `o` occurrences of middle pieces (at most `t` times
/// the number of distinct middle pieces that end with one another, a
/// property of the policy), and `h` the globs listed under the pieces
/// found. The number of globs does not enter, except through the ones that
/// the text makes candidates; callers confirm those with [`Glob::matches`],
/// which also checks that the pieces come in order without overlapping.
#[derive(Clone, Debug, Default)]
pub struct GlobSet {
    /// Per member: how many distinct pieces it needs found (its prefix, its
    /// suffix, each distinct middle piece).
    required: Vec<u32>,
    /// Per member: whether it has a prefix, and a suffix (for listings).
    anchors: Vec<(bool, bool)>,
    /// Members that need nothing (`*`): candidates for every text.
    always: Vec<Member>,
    prefixes: AnchorTable,
    suffixes: AnchorTable,
    middles: Middles,
}

/// Prefixes (or suffixes) by length and hash.
#[derive(Clone, Debug, Default)]
struct AnchorTable {
    /// The distinct lengths of the pieces, ascending.
    lengths: Vec<usize>,
    /// [`piece_key`] → the members with that piece. Suffixes are hashed
    /// from their last byte back, as a text's suffixes are walked.
    members: KeyMap<Vec<Member>>,
    /// Members with a piece here.
    len: usize,
}

impl AnchorTable {
    fn insert(&mut self, bytes: impl Iterator<Item = u8>, len: usize, member: Member) {
        let hash = bytes.fold(fnv::START, fnv::step);
        if let Err(at) = self.lengths.binary_search(&len) {
            self.lengths.insert(at, len);
        }
        self.members
            .entry(piece_key(len, hash))
            .or_default()
            .push(member);
        self.len += 1;
    }

    /// Calls `found` with the members of each piece that `text` starts
    /// with, as far as hashes tell: one pass over at most the longest
    /// piece's length, a lookup at each length.
    #[inline]
    fn scan_prefixes(&self, text: &[u8], mut found: impl FnMut(&[Member])) {
        let (mut hash, mut hashed) = (fnv::START, 0);
        for &len in &self.lengths {
            let Some(more) = text.get(hashed..len) else {
                break;
            };
            for &byte in more {
                hash = fnv::step(hash, byte);
            }
            hashed = len;
            if let Some(members) = self.members.get(&piece_key(len, hash)) {
                found(members);
            }
        }
    }

    /// The same for the pieces `text` ends with, read from its end back.
    #[inline]
    fn scan_suffixes(&self, text: &[u8], mut found: impl FnMut(&[Member])) {
        let (mut hash, mut hashed) = (fnv::START, 0);
        for &len in &self.lengths {
            let Some(more) = text
                .len()
                .checked_sub(len)
                .and_then(|start| text.get(start..text.len() - hashed))
            else {
                break;
            };
            for &byte in more.iter().rev() {
                hash = fnv::step(hash, byte);
            }
            hashed = len;
            if let Some(members) = self.members.get(&piece_key(len, hash)) {
                found(members);
            }
        }
    }
}

/// A piece's key: its FNV-1a hash with its length mixed in, so that a
/// list is visited at most once per query (but for a 64-bit collision,
/// which only costs a candidate that matching then turns down).
fn piece_key(len: usize, hash: u64) -> u64 {
    hash ^ (len as u64).rotate_left(32)
}

/// Maps keyed by [`piece_key`]s: already hashes, so the map only mixes
/// their bits (a multiply and a shift, where FNV would take 8 steps).
type KeyMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

#[derive(Default, Clone, Copy, Debug)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = fnv::step(self.0, *byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        // The finalizer of splitmix64: every input bit moves the low bits
        // the table indexes by and the high bits it tags with.
        let mut x = key ^ (key >> 30);
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = x ^ (x >> 31);
    }
}

/// The distinct middle pieces of all members.
#[derive(Clone, Debug, Default)]
struct Middles {
    /// Finds every occurrence of every piece (pattern id = piece number).
    /// `None` with pieces only if the automaton could not be built: every
    /// piece is then taken as found, which costs time, never a match.
    automaton: Option<AhoCorasick>,
    /// Per piece: the members that need it.
    members: Vec<Vec<Member>>,
}

/// Builds a [`GlobSet`].
#[derive(Debug, Default)]
pub struct GlobSetBuilder {
    set: GlobSet,
    /// Middle pieces, numbered in the order first seen.
    pieces: FnvMap<Box<str>, u32>,
}

impl GlobSetBuilder {
    /// Adds a glob; its member number is the number of globs added before.
    pub fn insert(&mut self, glob: &Glob) -> Member {
        let member = self.set.required.len() as Member;
        let mut required = 0u32;
        if !glob.has_star {
            // An exact name is its own prefix; matching checks the length.
            let prefix = glob.prefix.as_bytes();
            self.set
                .prefixes
                .insert(prefix.iter().copied(), prefix.len(), member);
            required += 1;
        } else {
            if !glob.prefix.is_empty() {
                let prefix = glob.prefix.as_bytes();
                self.set
                    .prefixes
                    .insert(prefix.iter().copied(), prefix.len(), member);
                required += 1;
            }
            if !glob.suffix.is_empty() {
                let suffix = glob.suffix.as_bytes();
                self.set
                    .suffixes
                    .insert(suffix.iter().rev().copied(), suffix.len(), member);
                required += 1;
            }
            let mut pieces: Vec<u32> = glob.middle.iter().map(|p| self.piece(p)).collect();
            pieces.sort_unstable();
            pieces.dedup();
            for piece in pieces {
                if let Some(members) = self.set.middles.members.get_mut(piece as usize) {
                    members.push(member);
                    required += 1;
                }
            }
        }
        if required == 0 {
            self.set.always.push(member);
        }
        self.set.required.push(required);
        self.set.anchors.push((
            !glob.has_star || !glob.prefix.is_empty(),
            glob.has_star && !glob.suffix.is_empty(),
        ));
        member
    }

    fn piece(&mut self, piece: &str) -> u32 {
        if let Some(&id) = self.pieces.get(piece) {
            return id;
        }
        let id = self.set.middles.members.len() as u32;
        self.pieces.insert(piece.into(), id);
        self.set.middles.members.push(Vec::new());
        id
    }

    pub fn build(mut self) -> GlobSet {
        if !self.pieces.is_empty() {
            let mut pieces: Vec<(Box<str>, u32)> = self.pieces.into_iter().collect();
            pieces.sort_unstable_by_key(|&(_, id)| id);
            // Standard semantics: an overlapping search reports every
            // occurrence of every piece, which is what a glob needs.
            self.set.middles.automaton = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(pieces.iter().map(|(piece, _)| piece.as_bytes()))
                .ok();
        }
        self.set
    }
}

/// Per-query buffers of a [`GlobSet`], reused from one query to the next
/// (they grow once, then never allocate). They hold only what a query
/// touched, not an entry per glob: a fresh scratch, as each
/// `Engine::decide` makes, costs nothing for a policy of many globs.
#[derive(Clone, Debug, Default)]
pub struct GlobScratch {
    /// The middle pieces this query found.
    found: FnvSet<u32>,
    /// Per member with more than one piece: how many this query found.
    counts: FnvMap<Member, u32>,
}

/// What a [`GlobSet`] holds, for listings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobSetStats {
    /// Members keyed by a prefix (an exact name is its own), and how many
    /// distinct lengths those have.
    pub prefixed: usize,
    pub prefix_lengths: usize,
    /// Members keyed by a suffix (a glob may have both).
    pub suffixed: usize,
    pub suffix_lengths: usize,
    /// Members with neither, found only by their middle pieces (`*x*`).
    pub infix: usize,
    /// Distinct middle pieces in the automaton.
    pub middle_pieces: usize,
}

impl GlobSet {
    pub fn len(&self) -> usize {
        self.required.len()
    }

    pub fn is_empty(&self) -> bool {
        self.required.is_empty()
    }

    /// What the set holds, each member counted `weight(member)` times (a
    /// caller may count the patterns that share a glob).
    pub fn stats(&self, weight: impl Fn(Member) -> usize) -> GlobSetStats {
        let mut stats = GlobSetStats {
            prefix_lengths: self.prefixes.lengths.len(),
            suffix_lengths: self.suffixes.lengths.len(),
            middle_pieces: self.middles.members.len(),
            ..GlobSetStats::default()
        };
        for (member, (&(prefix, suffix), &required)) in
            self.anchors.iter().zip(&self.required).enumerate()
        {
            let weight = weight(member as Member);
            stats.prefixed += usize::from(prefix) * weight;
            stats.suffixed += usize::from(suffix) * weight;
            if !prefix && !suffix && required > 0 {
                stats.infix += weight;
            }
        }
        stats
    }

    /// Appends to `out`, each once and in no particular order, the members
    /// all of whose pieces `text` has where they must be: every member whose
    /// glob matches `text` is among them. Confirm each with
    /// [`Glob::matches`].
    pub fn candidates(&self, text: &str, scratch: &mut GlobScratch, out: &mut Vec<Member>) {
        out.extend_from_slice(&self.always);
        if self.required.len() == self.always.len() {
            return;
        }
        // Clearing a map that held entries costs its capacity: only then.
        if !scratch.found.is_empty() {
            scratch.found.clear();
        }
        if !scratch.counts.is_empty() {
            scratch.counts.clear();
        }
        let counts = &mut scratch.counts;
        let mut found = |members: &[Member]| self.found(members, counts, out);
        if !self.prefixes.lengths.is_empty() {
            self.prefixes.scan_prefixes(text.as_bytes(), &mut found);
        }
        if !self.suffixes.lengths.is_empty() {
            self.suffixes.scan_suffixes(text.as_bytes(), &mut found);
        }
        if self.middles.members.is_empty() {
            return;
        }
        let search = self
            .middles
            .automaton
            .as_ref()
            .and_then(|automaton| automaton.try_find_overlapping_iter(text).ok());
        match search {
            Some(occurrences) => {
                for occurrence in occurrences {
                    let piece = occurrence.pattern().as_u32();
                    if scratch.found.insert(piece)
                        && let Some(members) = self.middles.members.get(piece as usize)
                    {
                        found(members);
                    }
                }
            }
            // No automaton: take every piece as found (slow, still right).
            None => {
                for members in &self.middles.members {
                    found(members);
                }
            }
        }
    }

    /// Counts one found piece for each of `members`; a member becomes a
    /// candidate when its last piece is found.
    #[inline]
    fn found(&self, members: &[Member], counts: &mut FnvMap<Member, u32>, out: &mut Vec<Member>) {
        for &member in members {
            match self.required.get(member as usize) {
                Some(1) => out.push(member),
                Some(&required) => {
                    let count = counts.entry(member).or_insert(0);
                    *count += 1;
                    if *count == required {
                        out.push(member);
                    }
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Glob, GlobScratch, GlobSetBuilder, covers};

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

    /// A glob set's candidates hold every glob that matches, for texts and
    /// for patterns (the lint queries patterns), whatever the scratch saw
    /// before.
    #[test]
    fn candidates_hold_every_match() {
        let mut builder = GlobSetBuilder::default();
        let globs: Vec<Glob> = PATTERNS.iter().map(|p| Glob::new(p)).collect();
        for glob in &globs {
            builder.insert(glob);
        }
        let set = builder.build();
        assert_eq!(set.len(), PATTERNS.len());
        let mut scratch = GlobScratch::default();
        let mut texts = strings(5);
        texts.extend(PATTERNS.iter().map(|p| p.to_string()));
        let mut out = Vec::new();
        for text in &texts {
            out.clear();
            set.candidates(text, &mut scratch, &mut out);
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), out.len(), "each candidate once, for {text:?}");
            for (member, glob) in globs.iter().enumerate() {
                if glob.matches(text) {
                    assert!(
                        out.contains(&(member as u32)),
                        "{:?} matches {text:?}",
                        PATTERNS[member]
                    );
                }
            }
        }
    }

    #[test]
    fn candidates_need_every_piece() {
        let mut builder = GlobSetBuilder::default();
        for pattern in ["*x*", "*y*z*", "pre*", "*suf", "pre*mid*suf", "eq", "*"] {
            builder.insert(&Glob::new(pattern));
        }
        let set = builder.build();
        let stats = set.stats(|_| 1);
        assert_eq!((stats.prefixed, stats.suffixed, stats.infix), (3, 2, 2));
        let mut scratch = GlobScratch::default();
        let mut query = |text: &str| {
            let mut out = Vec::new();
            set.candidates(text, &mut scratch, &mut out);
            out.sort_unstable();
            out
        };
        assert_eq!(query("nothing"), [6]);
        assert_eq!(query("_x_"), [0, 6]);
        assert_eq!(
            query("z y"),
            [1, 6],
            "pieces out of order still need confirming"
        );
        assert_eq!(query("y"), [6]);
        assert_eq!(query("pre-suf"), [2, 3, 6]);
        assert_eq!(query("pre-mid-suf"), [2, 3, 4, 6]);
        assert_eq!(query("eq"), [5, 6]);
        assert_eq!(
            query("eqq"),
            [5, 6],
            "an exact name is confirmed by matching"
        );
    }
}
