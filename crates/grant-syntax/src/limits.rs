//! Explicit limits on policy source, so that hostile or broken input meets a
//! diagnostic instead of exhausting memory or the stack. Documented in
//! docs/language.md ("Limits").

/// Largest accepted source file, in bytes (G0107).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Deepest accepted nesting of parentheses, `not` and `set<..>` (G0106).
/// The parser and checker recurse once per level; 32 is far beyond any policy
/// a person writes, and parse+check at this depth fits in a 256 KiB stack.
pub const MAX_NESTING: usize = 32;

/// Most directory entries one walk of a directory tree looks at. Symbolic
/// links may reach one directory along many paths (each level linking
/// twice to the next makes 2^depth paths): the walk stops with an error
/// rather than follow them all. Real policy trees hold a few hundred.
pub const MAX_WALK_ENTRIES: usize = 100_000;

/// What the human diagnostic renderer prints at most, so that its output
/// and time stay proportional to what a person can read, whatever the
/// input (a 100 KB line, thousands of errors). `--format json` is not
/// capped. Documented in docs/language.md ("Limits").
pub mod shown {
    /// Characters of one source line shown around the labels on it; a
    /// longer line is cut, and `…` marks each cut.
    pub const LINE_CHARS: usize = 120;
    /// Characters shown before a label's start when its line is cut.
    pub const CONTEXT_CHARS: usize = 40;
    /// Labels shown for one diagnostic (the primary one included).
    pub const LABELS: usize = 8;
    /// Characters of a message, a label or a help text.
    pub const MESSAGE_CHARS: usize = 400;
    /// Diagnostics rendered in one run; the rest are counted in a note.
    pub const DIAGNOSTICS: usize = 200;
}
