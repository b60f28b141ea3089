//! RFC 8785 (JSON Canonicalization Scheme): the RFC's own test vectors,
//! and the round trip the audit chain relies on (a stored event, parsed
//! again, must canonicalize to the same bytes, or an intact chain would
//! verify as broken).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_ledger::jcs;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Canonical form of a JSON text.
fn canonical(text: &str) -> String {
    let value: Value = serde_json::from_str(text).unwrap();
    jcs::to_string(&value)
}

/// RFC 8785 Appendix B: IEEE-754 bit patterns and their canonical text,
/// the finite ones (NaN and Infinity are not JSON).
const APPENDIX_B: &[(u64, &str)] = &[
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7fefffffffffffff, "1.7976931348623157e+308"),
    (0xffefffffffffffff, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xc340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44b52d02c7e14af5, "9.999999999999997e+22"),
    (0x44b52d02c7e14af6, "1e+23"),
    (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
    (0x444b1ae4d6e2ef4e, "999999999999999700000"),
    (0x444b1ae4d6e2ef4f, "999999999999999900000"),
    (0x444b1ae4d6e2ef50, "1e+21"),
    (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
    (0x3eb0c6f7a0b5ed8d, "0.000001"),
    (0x41b3de4355555553, "333333333.3333332"),
    (0x41b3de4355555554, "333333333.33333325"),
    (0x41b3de4355555555, "333333333.3333333"),
    (0x41b3de4355555556, "333333333.3333334"),
    (0x41b3de4355555557, "333333333.33333343"),
    (0xbecbf647612f3696, "-0.0000033333333333333333"),
    (0x43143ff3c1cb0959, "1424953923781206.2"),
];

#[test]
fn appendix_b_number_serialization() {
    for &(bits, expected) in APPENDIX_B {
        let double = f64::from_bits(bits);
        let number = serde_json::Number::from_f64(double).unwrap();
        assert_eq!(
            jcs::to_string(&Value::Number(number)),
            expected,
            "{bits:016x}"
        );
    }
}

#[test]
fn appendix_b_texts_parse_back_to_their_doubles() {
    for &(bits, text) in APPENDIX_B {
        let value: Value = serde_json::from_str(text).unwrap();
        let parsed = value.as_f64().unwrap();
        // Both zeros are written `0`; the sign is all that may differ.
        if bits & 0x7fff_ffff_ffff_ffff == 0 {
            assert_eq!(parsed, 0.0, "{text}");
        } else {
            assert_eq!(parsed.to_bits(), bits, "{text}");
        }
        assert_eq!(jcs::to_string(&value), text, "{text}");
    }
}

/// RFC 8785 §3.2.2: the sample object, with numbers, escapes and literals.
#[test]
fn section_3_2_2_sample() {
    let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
    let expected = "{\"literals\":[null,true,false],\
\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(canonical(input), expected);
    // 333333333.33333329 keeps its double: the closest one, 0x41b3de4355555555.
    let value: Value = serde_json::from_str(input).unwrap();
    assert_eq!(
        value["numbers"][0].as_f64().unwrap().to_bits(),
        0x41b3de4355555555
    );
}

/// RFC 8785 §3.2.3: keys sorted by their UTF-16 code units, so the emoji
/// (a surrogate pair, 0xd83d...) sorts before U+FB33.
#[test]
fn section_3_2_3_sorting() {
    let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
    let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(canonical(input), expected);
}

#[test]
fn strings_are_escaped_as_json_stringify_does() {
    let all_controls: String = (0u8..0x20).map(char::from).collect();
    assert_eq!(
        jcs::to_string(&Value::String(all_controls)),
        "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\
\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\
\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\""
    );
    // DEL, U+2028 and U+2029 and the slash are not escaped.
    assert_eq!(
        jcs::to_string(&json!("\u{7f}\u{2028}\u{2029}/")),
        "\"\u{7f}\u{2028}\u{2029}/\""
    );
}

#[test]
fn nested_values_have_no_whitespace_and_sorted_keys_at_every_level() {
    assert_eq!(
        canonical(r#"{ "b": [ 1, { "z": null, "a": [] } ], "a": { } }"#),
        r#"{"a":{},"b":[1,{"a":[],"z":null}]}"#
    );
}

/// The lifecycle spec: RFC 8785 treats numbers as doubles, so an integer
/// a double cannot hold exactly (outside ±2^53) is written as a string.
#[test]
fn integers_beyond_2_pow_53_are_strings() {
    assert_eq!(canonical("9007199254740992"), "9007199254740992");
    assert_eq!(canonical("-9007199254740992"), "-9007199254740992");
    assert_eq!(canonical("9007199254740993"), "\"9007199254740993\"");
    assert_eq!(canonical("-9007199254740993"), "\"-9007199254740993\"");
    assert_eq!(
        canonical("18446744073709551615"),
        "\"18446744073709551615\""
    );
    assert_eq!(
        canonical("-9223372036854775808"),
        "\"-9223372036854775808\""
    );
    assert_eq!(
        canonical(r#"{"uses": 9007199254740993}"#),
        r#"{"uses":"9007199254740993"}"#
    );
    // A string stays a string: canonicalizing twice changes nothing.
    let once = canonical("[9007199254740993]");
    assert_eq!(canonical(&once), once);
}

/// A double whose value is such an integer is written the same way, so
/// that canonical text parsed again is its own canonical form (`1e16` as
/// `10000000000000000` would come back as an integer, then a string).
#[test]
fn integral_doubles_beyond_2_pow_53_are_strings_up_to_64_bits() {
    for (text, expected) in [
        ("1e16", "\"10000000000000000\""),
        ("-9007199254740994.0", "\"-9007199254740994\""),
        ("1.8446744073709550e19", "\"18446744073709549568\""),
        ("-9.223372036854775808e18", "\"-9223372036854775808\""),
        // Beyond 64 bits a parser reads the digits as a double again.
        ("1.8446744073709552e19", "18446744073709552000"),
        ("-9.223372036854778e18", "-9223372036854778000"),
        ("1e21", "1e+21"),
        // Up to 2^53 and with a fraction, doubles stay numbers.
        ("9007199254740992.0", "9007199254740992"),
        ("4503599627370495.5", "4503599627370495.5"),
    ] {
        let once = canonical(text);
        assert_eq!(once, expected, "{text}");
        assert_eq!(canonical(&once), once, "{text}");
    }
    // The double and the integer of one value are written alike.
    assert_eq!(canonical("1e16"), canonical("10000000000000000"));
}

#[test]
fn integers_and_integral_doubles_are_written_alike() {
    assert_eq!(
        canonical("[0, -0, 0.0, -0.0, 1, 1.0, 100, 1e2, -7]"),
        "[0,0,0,0,1,1,100,100,-7]"
    );
}

proptest! {
    /// Any finite double survives canonical text -> parse -> canonical text
    /// with the same value: stored events re-hash to the hash they carry.
    #[test]
    fn doubles_round_trip(bits in any::<u64>()) {
        let double = f64::from_bits(bits);
        prop_assume!(double.is_finite());
        let text = jcs::to_string(&Value::Number(serde_json::Number::from_f64(double).unwrap()));
        let value: Value = serde_json::from_str(&text).unwrap();
        match &value {
            // An integer beyond 2^53 within 64 bits: its exact digits.
            Value::String(digits) => {
                prop_assert_eq!(digits.parse::<f64>().unwrap().to_bits(), bits);
                prop_assert!(double.fract() == 0.0 && double.abs() > 9007199254740992.0);
            }
            _ if double == 0.0 => prop_assert_eq!(value.as_f64(), Some(0.0)),
            _ => prop_assert_eq!(value.as_f64().unwrap().to_bits(), bits, "{}", text),
        }
        prop_assert_eq!(jcs::to_string(&value), text);
    }

    /// Integral doubles around and beyond 2^53 (random bits seldom are).
    #[test]
    fn integral_doubles_round_trip(x in -4e19f64..4e19) {
        let value = json!(x.trunc());
        let once = jcs::to_string(&value);
        let again: Value = serde_json::from_str(&once).unwrap();
        prop_assert_eq!(jcs::to_string(&again), once);
    }

    /// Any JSON value: its canonical form is a fixed point.
    #[test]
    fn values_round_trip(value in json_value()) {
        let once = jcs::to_string(&value);
        let again: Value = serde_json::from_str(&once).unwrap();
        prop_assert_eq!(jcs::to_string(&again), once);
    }

    /// Canonical form is a fixed point, whatever the integers.
    #[test]
    fn integers_round_trip(n in any::<i64>(), u in any::<u64>()) {
        for value in [json!(n), json!(u), json!({"n": n, "u": u})] {
            let once = jcs::to_string(&value);
            let again: Value = serde_json::from_str(&once).unwrap();
            prop_assert_eq!(jcs::to_string(&again), once);
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
