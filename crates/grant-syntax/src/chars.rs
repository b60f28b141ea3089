//! Characters: the one definition of a line, the characters that can hide
//! code from a reader, and how text is shown safely on a terminal.
//!
//! The lexer, the grammar (`grammar/grant.pest`), the diagnostic renderer
//! and the formatter all follow these definitions; docs/language.md
//! ("Lines and characters") states them for policy authors.
//!
//! - A line ends at LF (`\n`); CR is allowed only right before LF. Nothing
//!   else ends a line: a character that an editor or a terminal might show
//!   as a line break ([`is_hidden_line_break`]) is an error outside string
//!   literals, so that no text can look like code while being a comment.
//! - Bidirectional controls ([`is_bidi_control`]) reorder what a reader
//!   sees (Trojan Source, CVE-2021-42574): an error anywhere.
//! - Other control characters and zero-width characters are errors outside
//!   string literals; invisible characters inside them get a lint.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The byte-order mark: accepted (and ignored) only as the first character
/// of a file or a request.
pub const BYTE_ORDER_MARK: char = '\u{FEFF}';

/// Characters some editors, terminals or renderers show as a line break,
/// though Grant's lines end only at LF: lone CR, VT, FF, NEL, LS and PS.
pub fn is_hidden_line_break(c: char) -> bool {
    matches!(
        c,
        '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters that change the order in which text is displayed: the set
/// rustc denies (`text_direction_codepoint_in_literal`) and ALM.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters of no width: a reader cannot see them at all.
pub fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | BYTE_ORDER_MARK
    )
}

/// Characters a reader cannot see, or sees as nothing or as a blank: zero
/// width, soft hyphen, the combining grapheme joiner, Hangul fillers,
/// invisible mathematical operators, variation selectors, tags, and other
/// formatting characters. Every bidi control and zero-width character is
/// one of them.
pub fn is_invisible(c: char) -> bool {
    is_zero_width(c)
        || is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{2061}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Whether `c` is shown escaped on a terminal: control characters (C0 but
/// for tab handled by the caller, DEL, C1), hidden line breaks and
/// invisible characters. Showing them raw would let text rewrite the
/// terminal (escape sequences) or hide from the reader.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_hidden_line_break(c) || is_invisible(c)
}

/// `c` as an escape in the language's own syntax: `\n`, `\t`, `\u{1b}`.
pub fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `text` with every character that [`needs_escape`] escaped, so that
/// printing it can neither move the cursor, colour the terminal, nor hide
/// anything. Borrowed when there is nothing to escape. Use it on everything
/// a request or a file supplies before it reaches human output.
pub fn printable(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(needs_escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(text.get(..first).unwrap_or(""));
    for c in text.get(first..).unwrap_or("").chars() {
        if needs_escape(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as a message quotes it: its first `max_chars` characters made
/// [`printable`], and `…` where it was cut, so that neither the length nor
/// the characters of what a file or a request supplied reach the reader.
pub fn excerpt(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => printable(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", printable(text.get(..cut).unwrap_or("")))),
    }
}

/// `U+2028 LINE SEPARATOR`: a character as a diagnostic names it. Only the
/// characters this module flags have names here; others get the code point.
pub fn describe(c: char) -> String {
    let name = match c {
        '\0' => Some("NULL"),
        '\r' => Some("CARRIAGE RETURN"),
        '\u{0B}' => Some("LINE TABULATION"),
        '\u{0C}' => Some("FORM FEED"),
        '\u{1B}' => Some("ESCAPE"),
        '\u{7F}' => Some("DELETE"),
        '\u{85}' => Some("NEXT LINE"),
        '\u{AD}' => Some("SOFT HYPHEN"),
        '\u{061C}' => Some("ARABIC LETTER MARK"),
        '\u{200B}' => Some("ZERO WIDTH SPACE"),
        '\u{200C}' => Some("ZERO WIDTH NON-JOINER"),
        '\u{200D}' => Some("ZERO WIDTH JOINER"),
        '\u{200E}' => Some("LEFT-TO-RIGHT MARK"),
        '\u{200F}' => Some("RIGHT-TO-LEFT MARK"),
        '\u{2028}' => Some("LINE SEPARATOR"),
        '\u{2029}' => Some("PARAGRAPH SEPARATOR"),
        '\u{202A}' => Some("LEFT-TO-RIGHT EMBEDDING"),
        '\u{202B}' => Some("RIGHT-TO-LEFT EMBEDDING"),
        '\u{202C}' => Some("POP DIRECTIONAL FORMATTING"),
        '\u{202D}' => Some("LEFT-TO-RIGHT OVERRIDE"),
        '\u{202E}' => Some("RIGHT-TO-LEFT OVERRIDE"),
        '\u{2060}' => Some("WORD JOINER"),
        '\u{2066}' => Some("LEFT-TO-RIGHT ISOLATE"),
        '\u{2067}' => Some("RIGHT-TO-LEFT ISOLATE"),
        '\u{2068}' => Some("FIRST STRONG ISOLATE"),
        '\u{2069}' => Some("POP DIRECTIONAL ISOLATE"),
        BYTE_ORDER_MARK => Some("ZERO WIDTH NO-BREAK SPACE"),
        _ => None,
    };
    match name {
        Some(name) => format!("U+{:04X} {name}", c as u32),
        None if c.is_control() => format!("U+{:04X} (a control character)", c as u32),
        None => format!("U+{:04X}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_a_terminal_would_interpret_or_hide() {
        assert!(matches!(printable("db.read"), Cow::Borrowed("db.read")));
        assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(printable("x\ny\tz"), "x\\ny\\tz");
        assert_eq!(printable("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(printable("zw\u{200b}"), "zw\\u{200b}");
        assert_eq!(printable("\u{2028}\u{85}\r"), "\\u{2028}\\u{85}\\u{d}");
        // Visible non-ASCII text stays as it is.
        assert_eq!(printable("caf\u{e9} \u{1F600}"), "caf\u{e9} \u{1F600}");
    }

    #[test]
    fn excerpts_are_cut_and_escaped() {
        assert!(matches!(excerpt("db.read", 64), Cow::Borrowed("db.read")));
        assert_eq!(excerpt("a\u{1b}bc", 2), "a\\u{1b}…");
        let long = "\u{e9}".repeat(100);
        assert_eq!(excerpt(&long, 10).chars().count(), 11);
    }

    #[test]
    fn classes_nest() {
        for c in ['\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}'] {
            assert!(is_invisible(c) && needs_escape(c), "{c:?}");
        }
        assert!(!is_hidden_line_break('\n'));
        assert_eq!(describe('\u{2028}'), "U+2028 LINE SEPARATOR");
        assert_eq!(describe('\u{1}'), "U+0001 (a control character)");
    }
}
