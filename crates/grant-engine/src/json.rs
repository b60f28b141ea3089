//! Requests in JSON, in the shape of the language spec, read straight into a
//! [`Request`] (no intermediate JSON tree):
//!
//! ```json
//! { "tool": "db.read", "attrs": { "env": "prod", "task": { "approved": true } }, "ttl": "10m" }
//! ```

use std::borrow::Cow;
use std::fmt;

use grant_syntax::chars::BYTE_ORDER_MARK;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::limits::{EXCERPT_CHARS, excerpt, quoted};
use crate::request::{Request, RequestError, RequestErrorKind, Value, too_many_elements};
use crate::{Attr, Inner};

/// Fills `request` (cleared first) from JSON text. Problems are recorded in
/// the request, which is then denied with them.
pub(crate) fn read(json: &[u8], request: &mut Request) {
    request.clear();
    if let Some(error) = request.limits.json_too_large(json.len()) {
        request.errors.push(error);
        return;
    }
    let text = match std::str::from_utf8(json) {
        Ok(text) => text,
        Err(error) => {
            request.errors.push(RequestError::new(
                RequestErrorKind::Malformed,
                format!(
                    "the request is not valid UTF-8 (first invalid byte at offset {})",
                    error.valid_up_to()
                ),
            ));
            return;
        }
    };
    // The seeds write into the request while they read the policy: a second
    // handle on it (a reference count, not a copy) keeps the two apart.
    let inner = std::sync::Arc::clone(&request.inner);
    let inner = &*inner;
    // A byte-order mark that an editor put first is not part of the JSON.
    let text = text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text);
    parse(inner, text, request);
    // `-0` is an integer, zero, but serde_json reads it as the float -0.0,
    // which `-0.0` also gives, and which every reader here refuses. So only
    // a request with errors can hold a `-0`: such a request is read again
    // with each `-0` written ` 0` (the same length, so that errors keep
    // their columns). Valid requests pay nothing for it.
    if !request.errors.is_empty()
        && text.as_bytes().contains(&b'-')
        && let Some(zeros) = negative_zeros(text)
    {
        request.clear();
        parse(inner, &zeros, request);
    }
}

/// Fills `request` (cleared first) from a request already parsed into its
/// parts, by the same rules as [`read`]: the same seeds read `attrs` and
/// `ttl`. The size limit applies to the length the parts would have as
/// JSON text, counted without writing it.
pub(crate) fn read_parts(
    tool: &str,
    attrs: &serde_json::Map<String, serde_json::Value>,
    ttl: Option<&serde_json::Value>,
    request: &mut Request,
) {
    request.clear();
    let size = tool.len() + object_len(attrs) + ttl.map_or(0, value_len) + 32;
    if let Some(error) = request.limits.json_too_large(size) {
        request.errors.push(error);
        return;
    }
    let inner = std::sync::Arc::clone(&request.inner);
    let inner = &*inner;
    request.set_tool(tool);
    match ttl.map(<Scalar<'_> as serde::Deserialize>::deserialize) {
        None | Some(Ok(Scalar::Null)) => {}
        Some(Ok(value)) => match ttl_seconds(&value) {
            Ok(seconds) => {
                request.set_ttl(seconds);
            }
            Err(message) => request
                .errors
                .push(RequestError::new(RequestErrorKind::Ttl, message)),
        },
        Some(Err(error)) => request.errors.push(RequestError::new(
            RequestErrorKind::Ttl,
            format!("`ttl` expects a duration string or integer seconds: {error}"),
        )),
    }
    let mut prefix = std::mem::take(&mut request.path_buffer);
    prefix.clear();
    let read = Attrs {
        inner,
        request: &mut *request,
        prefix: &mut prefix,
    }
    .deserialize(attrs);
    request.path_buffer = prefix;
    if let Err(error) = read {
        request.errors.clear();
        request.errors.push(malformed(&error));
    }
}

/// The length of `value` written as compact JSON, near enough for a size
/// limit (escapes are not counted).
fn value_len(value: &serde_json::Value) -> usize {
    use serde_json::Value as Json;
    match value {
        Json::Null => 4,
        Json::Bool(_) => 5,
        Json::Number(_) => 20,
        Json::String(s) => s.len() + 2,
        Json::Array(items) => 2 + items.iter().map(|v| value_len(v) + 1).sum::<usize>(),
        Json::Object(map) => object_len(map),
    }
}

fn object_len(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    2 + map
        .iter()
        .map(|(k, v)| k.len() + 4 + value_len(v))
        .sum::<usize>()
}

fn parse(inner: &Inner, text: &str, request: &mut Request) {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let result = RequestSeed {
        inner,
        request: &mut *request,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    if let Err(error) = result {
        // What was read before the JSON broke off (errors of values read
        // so far, a hundred nested groups) would only bury the one error
        // that matters.
        request.errors.clear();
        request.errors.push(malformed(&error));
        return;
    }
    if !request.tool_given {
        request.errors.push(crate::request::NO_TOOL.clone());
    }
}

/// The malformed-JSON error, its position kept, what it quotes of the
/// request shortened.
fn malformed(error: &serde_json::Error) -> RequestError {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let head = message.strip_suffix(&position).unwrap_or(&message);
    let tail = if head.len() < message.len() {
        position.as_str()
    } else {
        ""
    };
    RequestError::new(
        RequestErrorKind::Malformed,
        format!(
            "malformed request JSON: {}{tail}",
            excerpt(head, 4 * EXCERPT_CHARS)
        ),
    )
}

/// `text` with every `-0` number (not `-0.5`, not `-0e1`, not in a string)
/// written ` 0`; `None` when there is none.
fn negative_zeros(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut zeros = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (i, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            // Outside strings, `-` only starts a number.
            b'-' if bytes.get(i + 1) == Some(&b'0')
                && !matches!(bytes.get(i + 2), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) =>
            {
                zeros.push(i);
            }
            _ => {}
        }
    }
    if zeros.is_empty() {
        return None;
    }
    let mut copy = text.as_bytes().to_vec();
    for i in zeros {
        if let Some(sign) = copy.get_mut(i) {
            *sign = b' ';
        }
    }
    String::from_utf8(copy).ok()
}

/// A string, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

struct RequestSeed<'a> {
    inner: &'a Inner,
    request: &'a mut Request,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request object with `tool`, `attrs` and `ttl`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen_attrs = false;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match &*key {
                "tool" => match map.next_value::<Option<Text<'de>>>()? {
                    Some(Text(tool)) if !self.request.tool_given => {
                        self.request.set_tool(&tool);
                    }
                    Some(_) => self.request.errors.push(RequestError::fixed(
                        RequestErrorKind::GivenTwice,
                        "`tool` is given twice",
                    )),
                    None => self.request.errors.push(RequestError::fixed(
                        RequestErrorKind::Tool,
                        "`tool` is null",
                    )),
                },
                "ttl" => {
                    let value = map.next_value::<Scalar<'de>>()?;
                    if self.request.ttl.is_some() {
                        self.request.errors.push(RequestError::fixed(
                            RequestErrorKind::GivenTwice,
                            "`ttl` is given twice",
                        ));
                        continue;
                    }
                    if matches!(value, Scalar::Null) {
                        // `"ttl": null`, like no `ttl`, asks for no limit.
                        continue;
                    }
                    match ttl_seconds(&value) {
                        Ok(seconds) => {
                            self.request.set_ttl(seconds);
                        }
                        Err(message) => self
                            .request
                            .errors
                            .push(RequestError::new(RequestErrorKind::Ttl, message)),
                    }
                }
                "attrs" => {
                    if seen_attrs {
                        self.request.errors.push(RequestError::fixed(
                            RequestErrorKind::GivenTwice,
                            "`attrs` is given twice",
                        ));
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    seen_attrs = true;
                    // The path buffer lives in the request, so that reading
                    // JSON into a reused request allocates no path.
                    let mut prefix = std::mem::take(&mut self.request.path_buffer);
                    prefix.clear();
                    let read = map.next_value_seed(Attrs {
                        inner: self.inner,
                        request: &mut *self.request,
                        prefix: &mut prefix,
                    });
                    self.request.path_buffer = prefix;
                    read?;
                }
                other => {
                    self.request.errors.push(RequestError::new(
                        RequestErrorKind::Malformed,
                        format!(
                            "unknown request field `{}` (a request has `tool`, `attrs` and `ttl`)",
                            excerpt(other, EXCERPT_CHARS)
                        ),
                    ));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

fn ttl_seconds(value: &Scalar<'_>) -> Result<u64, String> {
    match value {
        Scalar::Int(i) => {
            u64::try_from(*i).map_err(|_| format!("`ttl` of {i} seconds is negative"))
        }
        Scalar::Str(s) => grant_syntax::parser::parse_duration(s).map_err(|_| {
            format!(
                "`ttl` expects a duration such as \"90s\" or \"1h30m\", found {}",
                quoted(s)
            )
        }),
        Scalar::Number(number @ (Number::Integral(_) | Number::Below | Number::Above)) => {
            Err(format!("`ttl`: {}", number.describe()))
        }
        other => Err(format!(
            "`ttl` expects a duration string or integer seconds, found {}",
            other.describe()
        )),
    }
}

/// A JSON number that is not a 64-bit integer, classified from what
/// serde_json makes of it. Integers in range arrive as integers, and those
/// from 2^63 to 2^64 - 1 as unsigned integers (exact, see [`Number::Above`]);
/// the rest arrive as floats: numbers written with a fraction or an
/// exponent, and integers beyond those ranges, rounded. A float at or
/// beyond ±2^63 is therefore out of range whatever its text (the integer
/// `-9223372036854775809` arrives as exactly -2^63, so `<=`); a float
/// nearer zero came from a fraction or an exponent: a fraction if it has
/// one, else an integer written as one (`1.0`, `1e3`, `-0.0`). `-0` never
/// arrives as a float: [`read`] rewrites it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Number {
    Fraction(f64),
    Integral(f64),
    Below,
    Above,
}

/// What an out-of-range number is told.
const RANGE: &str = "out of range (Grant's integers are 64-bit)";

/// 2^63, exactly, as a float.
const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;

impl Number {
    fn of(v: f64) -> Number {
        if v <= -TWO_TO_63 {
            Number::Below
        } else if v >= TWO_TO_63 {
            Number::Above
        } else if v.fract() != 0.0 {
            Number::Fraction(v)
        } else {
            Number::Integral(v)
        }
    }

    fn describe(self) -> String {
        match self {
            Number::Fraction(v) => {
                format!("{v} is not an integer (Grant has no fractional numbers)")
            }
            // In range, so the cast is exact.
            Number::Integral(v) => format!(
                "{v:?} is a fraction (Grant has no fractional numbers: write {})",
                v as i64
            ),
            Number::Below => format!("the number is below {}: {RANGE}", i64::MIN),
            Number::Above => format!("the number is above {}: {RANGE}", i64::MAX),
        }
    }
}

/// The `attrs` object, or an object nested in it: keys extend `prefix`.
struct Attrs<'a> {
    inner: &'a Inner,
    request: &'a mut Request,
    prefix: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for Attrs<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Attrs<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of attribute values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // `"attrs": null` gives no attributes.
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let outer_len = self.prefix.len();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            self.prefix.truncate(outer_len);
            if outer_len > 0 {
                self.prefix.push('.');
            }
            self.prefix.push_str(&key);
            map.next_value_seed(AttrValue {
                inner: self.inner,
                request: &mut *self.request,
                path: &mut *self.prefix,
            })?;
        }
        self.prefix.truncate(outer_len);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object();
        Ok(())
    }
}

impl Attrs<'_> {
    fn not_an_object(self) {
        self.request.errors.push(RequestError::fixed(
            RequestErrorKind::Malformed,
            "`attrs` must be an object",
        ));
    }
}

/// The value at one path: a value for a declared attribute, or an object of
/// deeper paths.
struct AttrValue<'a> {
    inner: &'a Inner,
    request: &'a mut Request,
    path: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for AttrValue<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl AttrValue<'_> {
    fn assign(self, value: Value<'_>) {
        match self.inner.attrs.get(self.path.as_str()) {
            Some(attr) => {
                self.request.set(*attr, value);
            }
            None => self.request.errors.push(undeclared(self.path)),
        }
    }
}

fn undeclared(path: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::Undeclared,
        format!(
            "attribute `{}` is not declared by the policy",
            excerpt(path, EXCERPT_CHARS)
        ),
    )
}

impl<'de> Visitor<'de> for AttrValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // `null`, like an absent key, leaves the attribute missing (every
        // attribute of a group, for a group). It still gives the path: a
        // value for it in the other form, or again, is an error, so that no
        // reader of the request can take it for a value that Grant ignored.
        let path = self.path.as_str();
        if let Some(attr) = self.inner.attrs.get(path) {
            self.request.set_null(*attr, path);
            return Ok(());
        }
        let under = self.inner.under(path);
        if under.is_empty() {
            self.request.errors.push(undeclared(self.path));
        }
        for &slot in under {
            let Some(declared) = self.inner.program.attrs.get(slot.0 as usize) else {
                continue;
            };
            let attr = Attr {
                engine: self.inner.id,
                slot,
                ty: declared.ty,
            };
            // One error is enough: a group given twice is not then walked
            // again for every attribute in it.
            if !self.request.set_null(attr, &declared.path) {
                break;
            }
        }
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.assign(Value::Bool(v));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.assign(Value::Int(v));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.assign(Value::Int(v)),
            Err(_) => self.request.errors.push(RequestError::new(
                RequestErrorKind::Value,
                format!(
                    "attribute `{}`: {v} is {RANGE}",
                    excerpt(self.path, EXCERPT_CHARS),
                ),
            )),
        }
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.request.errors.push(RequestError::new(
            RequestErrorKind::Value,
            format!(
                "attribute `{}`: {}",
                excerpt(self.path, EXCERPT_CHARS),
                Number::of(v).describe()
            ),
        ));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.assign(Value::Str(v));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let limits = self.request.limits;
        let mut items: Vec<Scalar<'de>> = Vec::new();
        let mut count = 0usize;
        while let Some(item) = seq.next_element::<Scalar<'de>>()? {
            // Past the limit, count the rest without keeping it.
            count += 1;
            if count <= limits.set_elements {
                items.push(item);
            }
        }
        if count > limits.set_elements {
            self.request
                .errors
                .push(too_many_elements(self.path, count, limits));
            return Ok(());
        }
        let mut values = Vec::with_capacity(items.len());
        for item in &items {
            match item.as_value() {
                Some(value) => values.push(value),
                None => {
                    self.request.errors.push(RequestError::new(
                        RequestErrorKind::Value,
                        format!(
                            "attribute `{}`: a set holds strings, integers and booleans, found {}",
                            excerpt(self.path, EXCERPT_CHARS),
                            item.describe()
                        ),
                    ));
                    return Ok(());
                }
            }
        }
        self.assign(Value::Set(&values));
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let path = self.path.as_str();
        if self.inner.attrs.contains_key(path) || !self.inner.is_group(path) {
            // Not a group of attributes: report, then still read the object.
            let shown = excerpt(path, EXCERPT_CHARS);
            let error = if self.inner.attrs.contains_key(path) {
                RequestError::new(
                    RequestErrorKind::Value,
                    format!("attribute `{shown}` expects a value, found an object"),
                )
            } else {
                RequestError::new(
                    RequestErrorKind::Undeclared,
                    format!("no declared attribute starts with `{shown}.`"),
                )
            };
            self.request.errors.push(error);
        }
        Attrs {
            inner: self.inner,
            request: self.request,
            prefix: self.path,
        }
        .visit_map(map)
    }
}

/// One JSON scalar: a set element or a ttl.
enum Scalar<'de> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'de, str>),
    Number(Number),
    Other(&'static str),
}

impl Scalar<'_> {
    fn as_value(&self) -> Option<Value<'_>> {
        Some(match self {
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::Int(*i),
            Scalar::Str(s) => Value::Str(s),
            Scalar::Null | Scalar::Number(_) | Scalar::Other(_) => return None,
        })
    }

    fn describe(&self) -> String {
        match self {
            Scalar::Null => "`null`".to_string(),
            Scalar::Bool(b) => format!("`{b}`"),
            Scalar::Int(i) => format!("`{i}`"),
            Scalar::Str(s) => quoted(s),
            // Kept as it was worded before fractions were told apart.
            Scalar::Number(Number::Fraction(_)) => "a fractional number".to_string(),
            Scalar::Number(number) => number.describe(),
            Scalar::Other(what) => what.to_string(),
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(i64::try_from(v).map_or(Scalar::Number(Number::Above), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(Number::of(v)))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}
