//! Explicit limits on policy source, so that hostile or broken input meets a
//! diagnostic instead of exhausting memory or the stack. Documented in
//! docs/language.md ("Limits").

/// Largest accepted source file, in bytes (G0107).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Deepest accepted nesting of parentheses, `not` and `set<..>` (G0106).
/// The parser and checker recurse once per level; 32 is far beyond any policy
/// a person writes, and parse+check at this depth fits in a 256 KiB stack.
pub const MAX_NESTING: usize = 32;
