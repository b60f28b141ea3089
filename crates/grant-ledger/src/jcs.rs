//! RFC 8785 JSON Canonicalization Scheme: the one byte form of a JSON value
//! that the audit chain hashes. Object keys sorted by UTF-16 code units,
//! no whitespace, strings escaped as ECMAScript's `JSON.stringify` does,
//! numbers as ECMAScript writes doubles. RFC 8785 treats numbers as
//! doubles, so an integer outside ±2^53 (which a double cannot hold
//! exactly) is written as a string of its digits, as the lifecycle spec
//! says: a 64-bit integer, and a double whose value is one (so that the
//! canonical form, parsed again, gives itself back).

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// The largest integer magnitude a double holds exactly.
const MAX_EXACT: u64 = 1 << 53;

/// `value` in canonical form.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, number: &Number) {
    if let Some(u) = number.as_u64() {
        if u <= MAX_EXACT {
            let _ = write!(out, "{u}");
        } else {
            write_string(out, &u.to_string());
        }
    } else if let Some(i) = number.as_i64() {
        if i.unsigned_abs() <= MAX_EXACT {
            let _ = write!(out, "{i}");
        } else {
            write_string(out, &i.to_string());
        }
    } else if let Some(f) = number.as_f64() {
        if let Some(digits) = wide_integer(f) {
            write_string(out, &digits);
        } else {
            write_double(out, f);
        }
    }
}

/// The digits of a double that is an integer beyond ±2^53 inside the range
/// of 64-bit integers, which is written as a string like the integers of
/// that range: ECMAScript would write `1e16` as `10000000000000000`, which
/// a parser reads back as an integer, and written again it would become a
/// string, so the stored event would no longer hash to its own `hash`.
/// Beyond 64 bits a parser reads such digits as a double again, and they
/// stay numbers (RFC 8785 Appendix B's 2^68).
fn wide_integer(value: f64) -> Option<String> {
    // 2^64 and -2^63, exactly, as doubles.
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_63: f64 = -9_223_372_036_854_775_808.0;
    #[allow(clippy::cast_precision_loss)] // 2^53 is exact in a double
    let exact = MAX_EXACT as f64;
    if value.fract() != 0.0 || value.abs() <= exact || !(MINUS_TWO_63..TWO_64).contains(&value) {
        return None;
    }
    // In range and integral, so the casts are exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let digits = if value < 0.0 {
        (value as i64).to_string()
    } else {
        (value as u64).to_string()
    };
    Some(digits)
}

/// ECMAScript's Number::toString for a finite double (RFC 8785 §3.2.2.3).
fn write_double(out: &mut String, value: f64) {
    // JSON has no NaN or infinity (serde_json's `Value` cannot hold them);
    // -0 is written as 0.
    let Some(number) = Number::from_f64(value.abs()).filter(|_| value != 0.0) else {
        out.push('0');
        return;
    };
    if value < 0.0 {
        out.push('-');
    }
    // ECMAScript wants the shortest digits that round-trip and, of two
    // equally close, the even one (RFC 8785 Appendix B, 1424953923781206.2).
    // Rust's `{:e}` rounds such a tie up; serde_json's own formatter
    // (tests/jcs.rs pins it) breaks it to even. Only its layout differs
    // from ECMAScript's, so take the digits and the exponent and lay
    // them out again.
    let text = number.to_string();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().unwrap_or(0)),
        None => (text.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The value is 0.DIGITS × 10^n.
    let mut n = i32::try_from(int.len()).unwrap_or(0) + exponent;
    let all = format!("{int}{frac}");
    let trimmed = all.trim_start_matches('0');
    n -= i32::try_from(all.len() - trimmed.len()).unwrap_or(0);
    let digits = trimmed.trim_end_matches('0');
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if k <= n && n <= 21 {
        out.push_str(digits);
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        out.push_str(digits);
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        let _ = write!(
            out,
            "e{}{}",
            if e >= 0 { '+' } else { '-' },
            e.unsigned_abs()
        );
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    // Runs that need no escape are copied whole: most text is such a run.
    let mut run_start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(text.get(run_start..at).unwrap_or(""));
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        run_start = at + 1;
    }
    out.push_str(text.get(run_start..).unwrap_or(""));
    out.push('"');
}
