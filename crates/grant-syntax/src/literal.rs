//! Literals: the shapes of integer and duration tokens, and their values.
//! The grammar fixes the shapes; range, unit order and escapes are checked
//! here, with typed errors the parser turns into diagnostics.

use std::fmt;
use std::ops::Range;

/// Whether `text` is an integer as the grammar writes it: `-`?, digits,
/// `_` only between two digits.
pub fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let mut after_digit = false;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => after_digit = true,
            b'_' if after_digit && digits.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                after_digit = false
            }
            _ => return false,
        }
    }
    after_digit
}

/// Whether `text` is a duration as the grammar writes it: groups of digits
/// and a unit (`s`, `m`, `h`, `d`). Unit order is checked by
/// [`parse_duration`].
pub fn is_duration(text: &str) -> bool {
    let mut digits = 0usize;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b's' | b'm' | b'h' | b'd' if digits > 0 => digits = 0,
            _ => return false,
        }
    }
    !text.is_empty() && digits == 0
}

/// The value of an integer literal ([`is_integer`] shape).
pub fn parse_integer(text: &str) -> Option<i64> {
    if !text.contains('_') {
        return text.parse().ok();
    }
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    digits.parse().ok()
}

/// What is wrong with a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    UnknownUnit(char),
    RepeatedUnit(char),
    /// A unit after a smaller one: `30m1h`.
    UnitOrder(char),
    /// The digits before one unit do not fit in 64 bits.
    AmountTooLarge,
    /// The total is over 2^63 - 1 seconds.
    TooLarge,
    /// Digits without a unit at the end, or nothing at all.
    MissingUnit,
}

impl DurationError {
    /// Whether the duration is well formed but too long.
    pub fn is_overflow(self) -> bool {
        matches!(
            self,
            DurationError::AmountTooLarge | DurationError::TooLarge
        )
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::UnknownUnit(c) => write!(f, "unknown unit `{c}`"),
            DurationError::RepeatedUnit(c) => write!(f, "unit `{c}` appears twice"),
            DurationError::UnitOrder(c) => write!(f, "unit `{c}` comes after a smaller unit"),
            DurationError::AmountTooLarge => f.write_str("amount too large"),
            DurationError::TooLarge => f.write_str("too large"),
            DurationError::MissingUnit => f.write_str("missing unit"),
        }
    }
}

impl std::error::Error for DurationError {}

/// A number of seconds as a duration literal: `5400` → `1h30m`, `0` → `0s`.
/// The inverse of [`parse_duration`].
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let mut rest = seconds;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Seconds of a duration literal such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let mut total: u64 = 0;
    let mut last_unit_rank = u8::MAX;
    let mut digits_start = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() {
            continue;
        }
        let (rank, seconds_per_unit) = match c {
            'd' => (3, 86_400),
            'h' => (2, 3_600),
            'm' => (1, 60),
            's' => (0, 1),
            _ => return Err(DurationError::UnknownUnit(c)),
        };
        if rank >= last_unit_rank {
            return Err(if rank == last_unit_rank {
                DurationError::RepeatedUnit(c)
            } else {
                DurationError::UnitOrder(c)
            });
        }
        last_unit_rank = rank;
        let digits = text.get(digits_start..i).unwrap_or("");
        let amount: u64 = digits.parse().map_err(|_| DurationError::AmountTooLarge)?;
        total = amount
            .checked_mul(seconds_per_unit)
            .and_then(|s| total.checked_add(s))
            .filter(|&s| s <= i64::MAX as u64)
            .ok_or(DurationError::TooLarge)?;
        digits_start = i + c.len_utf8();
    }
    if digits_start != text.len() || text.is_empty() {
        return Err(DurationError::MissingUnit);
    }
    Ok(total)
}

/// What is wrong with an escape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EscapeErrorKind {
    /// `\` as the last character of the string.
    TrailingBackslash,
    /// `\u` not followed by `{...}`.
    UnicodeWithoutBraces,
    /// `\u{...}` holding other than 1 to 6 hex digits.
    UnicodeNotHex(String),
    /// `\u{...}` naming a surrogate or a value above 10FFFF.
    UnicodeNotScalar(String),
    Unknown(char),
}

/// A bad escape, and where it stands in the string's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscapeError {
    /// Byte range in the body (the text between the quotes).
    pub range: Range<usize>,
    pub kind: EscapeErrorKind,
}

impl EscapeError {
    /// Whether it is a `\u` escape.
    pub fn is_unicode(&self) -> bool {
        matches!(
            self.kind,
            EscapeErrorKind::UnicodeWithoutBraces
                | EscapeErrorKind::UnicodeNotHex(_)
                | EscapeErrorKind::UnicodeNotScalar(_)
        )
    }
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EscapeErrorKind::TrailingBackslash => f.write_str("`\\` at the end of a string"),
            EscapeErrorKind::UnicodeWithoutBraces => {
                f.write_str("`\\u` needs a hex value in braces, like `\\u{e9}`")
            }
            EscapeErrorKind::UnicodeNotHex(hex) => {
                write!(f, "`\\u{{{hex}}}` is not 1 to 6 hex digits")
            }
            EscapeErrorKind::UnicodeNotScalar(hex) => write!(
                f,
                "`\\u{{{hex}}}` is not a Unicode scalar value (surrogate or above 10FFFF)"
            ),
            EscapeErrorKind::Unknown(c) => write!(f, "unknown escape `\\{c}`"),
        }
    }
}

impl std::error::Error for EscapeError {}

/// Decodes the escapes of a string literal's body (without its quotes).
pub fn decode_string(body: &str) -> Result<String, EscapeError> {
    if !body.contains('\\') {
        return Ok(body.to_string());
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, escaped)) = chars.next() else {
            return Err(EscapeError {
                range: i..i + 1,
                kind: EscapeErrorKind::TrailingBackslash,
            });
        };
        match escaped {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'u' => {
                let rest = body.get(i + 2..).unwrap_or("");
                let hex_end = rest.find('}');
                let (Some(hex_end), true) = (hex_end, rest.starts_with('{')) else {
                    return Err(EscapeError {
                        range: i..i + 2,
                        kind: EscapeErrorKind::UnicodeWithoutBraces,
                    });
                };
                let hex = rest.get(1..hex_end).unwrap_or("");
                let range = i..i + 2 + hex_end + 1;
                let value = if hex.is_empty() || hex.len() > 6 {
                    None
                } else {
                    u32::from_str_radix(hex, 16).ok()
                };
                let Some(value) = value else {
                    return Err(EscapeError {
                        range,
                        kind: EscapeErrorKind::UnicodeNotHex(hex.to_string()),
                    });
                };
                let Some(decoded) = char::from_u32(value) else {
                    return Err(EscapeError {
                        range,
                        kind: EscapeErrorKind::UnicodeNotScalar(hex.to_string()),
                    });
                };
                out.push(decoded);
                // Skip the consumed `{hex}`.
                while chars.next_if(|&(j, _)| j < range.end).is_some() {}
            }
            other => {
                return Err(EscapeError {
                    range: i..i + 1 + other.len_utf8(),
                    kind: EscapeErrorKind::Unknown(other),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for seconds in [0, 1, 59, 60, 90, 3_600, 5_400, 86_400, 90_061, 1_000_000] {
            assert_eq!(parse_duration(&format_duration(seconds)), Ok(seconds));
        }
        assert_eq!(format_duration(5_400), "1h30m");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("30m1h"), Err(DurationError::UnitOrder('h')));
        assert_eq!(
            parse_duration("1m1m"),
            Err(DurationError::RepeatedUnit('m'))
        );
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err(DurationError::AmountTooLarge)
        );
        assert_eq!(
            parse_duration("106751991167301d"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(parse_duration("5"), Err(DurationError::MissingUnit));
    }

    #[test]
    fn shapes() {
        for good in ["0", "-3", "10_000", "1_2_3"] {
            assert!(is_integer(good), "{good}");
        }
        for bad in ["", "-", "_1", "1_", "1__0", "1a", "--1"] {
            assert!(!is_integer(bad), "{bad}");
        }
        for good in ["0s", "1h30m", "1s2s", "30m1h"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["", "s", "1", "1_0s", "-1s", "1ms2", "1x"] {
            assert!(!is_duration(bad), "{bad}");
        }
        assert_eq!(parse_integer("-10_000"), Some(-10_000));
        assert_eq!(parse_integer("9223372036854775808"), None);
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            decode_string(r#"a\"b\\c\n\t\u{e9}\u{1F600}"#).ok(),
            Some("a\"b\\c\n\t\u{e9}\u{1F600}".to_string())
        );
        assert!(decode_string(r"\u{D800}").is_err_and(|e| e.is_unicode()));
        assert!(decode_string(r"\u{110000}").is_err_and(|e| e.is_unicode()));
        assert!(decode_string(r"\q").is_err_and(|e| !e.is_unicode()));
        assert!(decode_string(r"\u{}").is_err());
    }
}
