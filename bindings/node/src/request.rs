//! A decision request read straight from JavaScript values into the
//! engine's typed [`Request`], by the rules grant-engine's JSON reader
//! (crates/grant-engine/src/json.rs) reads request JSON: nested or dotted
//! attribute paths, `null` for a missing attribute, arrays (and Sets) for
//! sets, the same size limit and the same messages. What JSON cannot hold
//! (undefined, BigInt, Symbol, functions) is an error of the attribute.
//! Type checks are the engine's: values go to `Request::try_set`.

use grant_engine::{Attr, Engine, Request, RequestError, RequestErrorKind, Value};
use grant_syntax::chars::excerpt;
use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Object, Result, Unknown};

use crate::js::{Js, MAX_DEPTH, classify, classify_value, keys};
use crate::quoted;

/// How many characters of request text a message quotes (the engine's).
const EXCERPT_CHARS: usize = 64;

/// What [`Reader`] keeps between requests, so that reading allocates
/// nothing once grown.
#[derive(Default)]
pub struct Scratch {
    path: String,
    /// Attributes given as `null`: missing, but given.
    nulls: Vec<Attr>,
}

/// Fills `request` (cleared first) from `tool`, `attrs` and `ttl`.
pub fn read(
    env: &Env,
    engine: &Engine,
    scratch: &mut Scratch,
    tool: &str,
    attrs: Option<Unknown<'_>>,
    ttl: Option<Unknown<'_>>,
    request: &mut Request,
) -> Result<()> {
    let mut reader = Reader::start(env, engine, scratch, tool, request);
    if let Some(attrs) = attrs {
        match classify(env, attrs)? {
            Js::Undefined | Js::Null => {}
            Js::Object(object) => reader.object(&object, 1)?,
            _ => reader.error(RequestError::new(
                RequestErrorKind::Malformed,
                "`attrs` must be an object",
            )),
        }
    }
    // After `attrs`: errors come in the order of a request written
    // `{tool, attrs, ttl}`, as `grant eval` reports that request's.
    if let Some(ttl) = ttl {
        reader.ttl(ttl)?;
    }
    reader.finish(tool);
    Ok(())
}

/// What separates the fields of the fast path's encoding (index.js
/// `encode`): no key or string it encodes holds it.
const SEP: u8 = 1;

/// The fields of an encoding, split at [`SEP`] (a byte loop: fields are
/// short, where `str::split` sets up a `memchr` for each).
struct Fields<'s> {
    rest: Option<&'s str>,
}

impl<'s> Iterator for Fields<'s> {
    type Item = &'s str;

    fn next(&mut self) -> Option<&'s str> {
        let rest = self.rest?;
        match rest.bytes().position(|byte| byte == SEP) {
            Some(at) => {
                // SEP is ASCII: both sides of it are on char boundaries.
                self.rest = rest.get(at + 1..);
                rest.get(..at)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Fills `request` (cleared first) from the encoding index.js makes of a
/// request (`encode` there), by the rules [`read`] reads JS values by; a
/// value the encoding defers (`x`) is the next of `extras`, read as
/// [`read`] reads it. `false` for an encoding this does not know (the
/// caller then reads the request the slow way).
pub fn read_encoded(
    env: &Env,
    engine: &Engine,
    scratch: &mut Scratch,
    encoded: &str,
    extras: Option<&Object<'_>>,
    request: &mut Request,
) -> Result<bool> {
    let mut fields = Fields {
        rest: Some(encoded),
    };
    let (Some(tool), Some(ttl), Some(attrs)) = (fields.next(), fields.next(), fields.next()) else {
        return Ok(false);
    };
    let mut reader = Reader::start(env, engine, scratch, tool, request);
    let mut encoded = Encoded {
        fields,
        extras,
        next_extra: 0,
    };
    match attrs {
        "-" => {}
        "{" => {
            if reader.encoded_object(&mut encoded, 1)?.is_none() {
                return Ok(false);
            }
        }
        _ => return Ok(false),
    }
    // After `attrs`, as [`read`] does.
    let ttl = match (ttl.as_bytes().first(), ttl.get(1..)) {
        (Some(b'-'), Some("")) => None,
        (Some(b'i'), Some(digits)) => match digits.parse::<i64>() {
            Ok(i) => Some(Js::Number(i as f64)),
            Err(_) => return Ok(false),
        },
        (Some(b's'), Some(text)) => Some(Js::Str(text.to_string())),
        _ => return Ok(false),
    };
    if let Some(ttl) = ttl {
        reader.ttl_js(ttl);
    }
    reader.finish(tool);
    Ok(true)
}

/// The fields of an encoding being read, and the values it defers.
struct Encoded<'s, 'o, 'e> {
    fields: Fields<'s>,
    extras: Option<&'o Object<'e>>,
    next_extra: u32,
}

impl<'e> Encoded<'_, '_, 'e> {
    fn extra(&mut self) -> Result<Option<Unknown<'e>>> {
        let Some(extras) = self.extras else {
            return Ok(None);
        };
        let value: Unknown<'e> = extras.get_element(self.next_extra)?;
        self.next_extra += 1;
        Ok(Some(value))
    }

    /// A list element.
    fn item(&mut self, env: &Env) -> Result<Option<Js<'e>>> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        let (Some(tag), Some(rest)) = (field.as_bytes().first(), field.get(1..)) else {
            return Ok(None);
        };
        Ok(Some(match (tag, rest) {
            (b's', text) => Js::Str(text.to_string()),
            (b'i', digits) => match digits.parse::<i64>() {
                Ok(i) => Js::Number(i as f64),
                Err(_) => return Ok(None),
            },
            (b't', "") => Js::Bool(true),
            (b'f', "") => Js::Bool(false),
            (b'x', "") => match self.extra()? {
                Some(value) => classify(env, value)?,
                None => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }
}

struct Reader<'a> {
    env: &'a Env,
    engine: &'a Engine,
    request: &'a mut Request,
    path: &'a mut String,
    nulls: &'a mut Vec<Attr>,
    /// The length the request would have as JSON text, near enough.
    size: usize,
    over: bool,
    too_deep: bool,
}

impl<'a> Reader<'a> {
    /// A reader of a request for `tool`: `request` and the scratch
    /// buffers cleared, the tool set.
    fn start(
        env: &'a Env,
        engine: &'a Engine,
        scratch: &'a mut Scratch,
        tool: &str,
        request: &'a mut Request,
    ) -> Reader<'a> {
        request.clear();
        scratch.path.clear();
        scratch.nulls.clear();
        request.set_tool(tool);
        Reader {
            env,
            engine,
            request,
            path: &mut scratch.path,
            nulls: &mut scratch.nulls,
            size: tool.len() + 32,
            over: false,
            too_deep: false,
        }
    }

    /// As the engine does for JSON: a request over the size limit, or
    /// nested too deep, is denied with that one error.
    fn finish(self, tool: &str) {
        if self.over {
            let error = self.engine.limits().json_too_large(self.size);
            self.request.clear();
            self.request.set_tool(tool);
            if let Some(error) = error {
                self.request.refuse(error);
            }
        } else if self.too_deep {
            self.request.clear();
            self.request.set_tool(tool);
            self.request.refuse(RequestError::new(
                RequestErrorKind::Malformed,
                format!("malformed request: `attrs` nests objects more than {MAX_DEPTH} deep"),
            ));
        }
    }

    fn error(&mut self, error: RequestError) {
        self.request.refuse(error);
    }

    fn stop(&self) -> bool {
        self.over || self.too_deep
    }

    fn grow(&mut self, bytes: usize) {
        self.size += bytes;
        if self.size > self.engine.limits().json_bytes {
            self.over = true;
        }
    }

    fn ttl(&mut self, ttl: Unknown<'_>) -> Result<()> {
        let ttl = classify(self.env, ttl)?;
        self.ttl_js(ttl);
        Ok(())
    }

    fn ttl_js(&mut self, ttl: Js<'_>) {
        let error = match ttl {
            Js::Undefined | Js::Null => return,
            Js::Number(n) => match number(n) {
                Ok(i) => match u64::try_from(i) {
                    Ok(seconds) => {
                        self.request.set_ttl(seconds);
                        return;
                    }
                    Err(_) => format!("`ttl` of {i} seconds is negative"),
                },
                Err(Number::Fraction(_)) => format!(
                    "`ttl` expects a duration string or integer seconds, found {}",
                    "a fractional number"
                ),
                Err(other) => format!("`ttl`: {}", other.describe()),
            },
            Js::Str(s) => match grant_engine::parse_duration(&s) {
                Ok(seconds) => {
                    self.request.set_ttl(seconds);
                    return;
                }
                Err(_) => format!(
                    "`ttl` expects a duration such as \"90s\" or \"1h30m\", found {}",
                    quoted(&s)
                ),
            },
            other => format!(
                "`ttl` expects a duration string or integer seconds, found {}",
                other.describe()
            ),
        };
        self.error(RequestError::new(RequestErrorKind::Ttl, error));
    }

    /// The `attrs` object, or an object nested in it, at `depth`.
    fn object(&mut self, object: &Object<'_>, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            self.too_deep = true;
            return Ok(());
        }
        self.object_from(object, depth, 0)
    }

    /// The members of an object from its `start`th key on (the keys
    /// before it were read by index.js: see [`Reader::encoded_object`]).
    fn object_from(&mut self, object: &Object<'_>, depth: usize, start: u32) -> Result<()> {
        let outer = self.path.len();
        let (names, len) = keys(object)?;
        for i in start..len {
            if self.stop() {
                break;
            }
            // A key read as a string fails only for a Symbol, which JSON
            // has not: skipped. The key is then fetched again as a JS
            // value to read the property by (one call, where making a
            // JS string of the text again costs an internalization).
            let Ok(key_text) = names.get_element::<String>(i) else {
                continue;
            };
            let key: Unknown<'_> = names.get_element(i)?;
            self.path.truncate(outer);
            if outer > 0 {
                self.path.push('.');
            }
            self.grow(key_text.len() + 4);
            self.path.push_str(&key_text);
            let value: Unknown<'_> = object.get_property(key)?;
            self.value(value, depth)?;
        }
        self.path.truncate(outer);
        Ok(())
    }

    fn value(&mut self, value: Unknown<'_>, depth: usize) -> Result<()> {
        // Only a declared attribute's value may be a Set: a group's
        // object is not asked whether it is one.
        let attr = self.engine.attr(self.path);
        let js = if attr.is_some() {
            classify_value(self.env, value)?
        } else {
            classify(self.env, value)?
        };
        match js {
            Js::List(list) => {
                let len = list.get_array_length()? as usize;
                let env = self.env;
                self.list(attr, len, |i| classify(env, list.get_element(i as u32)?))?;
            }
            Js::Object(object) => {
                self.object_given(attr);
                self.object(&object, depth + 1)?;
            }
            other => self.scalar(attr, other),
        }
        Ok(())
    }

    /// A value that is neither a list nor an object, at the current path
    /// (`attr`, looked up by the caller).
    fn scalar(&mut self, attr: Option<Attr>, js: Js<'_>) {
        match js {
            Js::Null => {
                self.grow(4);
                self.null();
            }
            Js::Bool(b) => {
                self.grow(5);
                self.assign(attr, Value::Bool(b));
            }
            Js::Number(n) => self.int(attr, number(n)),
            Js::Str(s) => self.str(attr, &s),
            other => {
                self.grow(4);
                if attr.is_none() {
                    self.undeclared();
                } else {
                    let message = format!(
                        "attribute `{}`: {} is not a value Grant reads (booleans, integer numbers, strings, and arrays or Sets of them)",
                        self.shown(),
                        other.describe()
                    );
                    self.error(RequestError::new(RequestErrorKind::Value, message));
                }
            }
        }
    }

    fn int(&mut self, attr: Option<Attr>, n: std::result::Result<i64, Number>) {
        self.grow(20);
        match n {
            Ok(i) => self.assign(attr, Value::Int(i)),
            Err(number) => {
                let message = format!("attribute `{}`: {}", self.shown(), number.describe());
                self.error(RequestError::new(RequestErrorKind::Value, message));
            }
        }
    }

    fn str(&mut self, attr: Option<Attr>, s: &str) {
        self.grow(s.len() + 2);
        if !self.stop() {
            self.assign(attr, Value::Str(s));
        }
    }

    /// An object at the current path: an error unless the path is a group
    /// (its members are read next).
    fn object_given(&mut self, attr: Option<Attr>) {
        self.grow(2);
        let path = self.path.as_str();
        let declared = attr.is_some();
        if declared || !self.is_group(path) {
            let shown = self.shown();
            let error = if declared {
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
            self.error(error);
        }
    }

    /// A list of `len` elements at the current path, element `i` being
    /// `item(i)`; elements after the first bad one are not asked for.
    fn list<'e>(
        &mut self,
        attr: Option<Attr>,
        len: usize,
        mut item: impl FnMut(usize) -> Result<Js<'e>>,
    ) -> Result<()> {
        let limits = *self.engine.limits();
        self.grow(2 + len);
        if len > limits.set_elements {
            let message = format!(
                "attribute `{}` has a set of {len} elements, over the limit of {}",
                self.shown(),
                limits.set_elements
            );
            self.error(RequestError::new(RequestErrorKind::TooLarge, message));
            return Ok(());
        }
        let mut items: Vec<Item> = Vec::with_capacity(len);
        for i in 0..len {
            if self.stop() {
                return Ok(());
            }
            let item = match item(i)? {
                Js::Bool(b) => {
                    self.grow(5);
                    Item::Bool(b)
                }
                Js::Number(n) => {
                    self.grow(20);
                    match number(n) {
                        Ok(i) => Item::Int(i),
                        Err(number) => {
                            let found = match number {
                                Number::Fraction(_) => "a fractional number".to_string(),
                                other => other.describe(),
                            };
                            self.not_in_set(&found);
                            return Ok(());
                        }
                    }
                }
                Js::Str(s) => {
                    self.grow(s.len() + 2);
                    Item::Str(s)
                }
                other => {
                    self.not_in_set(&other.describe());
                    return Ok(());
                }
            };
            items.push(item);
        }
        if self.stop() {
            return Ok(());
        }
        let values: Vec<Value<'_>> = items
            .iter()
            .map(|item| match item {
                Item::Bool(b) => Value::Bool(*b),
                Item::Int(i) => Value::Int(*i),
                Item::Str(s) => Value::Str(s),
            })
            .collect();
        self.assign(attr, Value::Set(&values));
        Ok(())
    }

    /// The members of an object of the encoding at `depth`, up to its
    /// `}`, as [`Reader::object`] reads an object's. `None` for what the
    /// encoding does not hold.
    fn encoded_object(
        &mut self,
        encoded: &mut Encoded<'_, '_, '_>,
        depth: usize,
    ) -> Result<Option<()>> {
        let outer = self.path.len();
        loop {
            if self.stop() {
                break;
            }
            let Some(key) = encoded.fields.next() else {
                return Ok(None);
            };
            if key == "}" {
                break;
            }
            if let Some(start) = key.strip_prefix('r') {
                // The rest of the object, from key `start` on, read here:
                // index.js stopped at a value it hands over that may run
                // the caller's code, so that values are read in order.
                let (Ok(start), Some(object)) = (start.parse::<u32>(), encoded.extra()?) else {
                    return Ok(None);
                };
                self.path.truncate(outer);
                self.object_from(&object.coerce_to_object()?, depth, start)?;
                break;
            }
            let Some(key) = key.strip_prefix('k') else {
                return Ok(None);
            };
            self.path.truncate(outer);
            if outer > 0 {
                self.path.push('.');
            }
            self.grow(key.len() + 4);
            self.path.push_str(key);
            let Some(value) = encoded.fields.next() else {
                return Ok(None);
            };
            let (Some(tag), Some(rest)) = (value.as_bytes().first(), value.get(1..)) else {
                return Ok(None);
            };
            match (tag, rest) {
                (b'x', "") => match encoded.extra()? {
                    Some(value) => self.value(value, depth)?,
                    None => return Ok(None),
                },
                (b'{', "") => {
                    let attr = self.engine.attr(self.path);
                    self.object_given(attr);
                    if self.encoded_object(encoded, depth + 1)?.is_none() {
                        return Ok(None);
                    }
                }
                (b'[', len) => {
                    let Ok(len) = len.parse::<usize>() else {
                        return Ok(None);
                    };
                    let attr = self.engine.attr(self.path);
                    let (env, mut bad) = (self.env, false);
                    self.list(attr, len, |_| {
                        Ok(encoded.item(env)?.unwrap_or_else(|| {
                            bad = true;
                            Js::Undefined
                        }))
                    })?;
                    // index.js wrote the elements up to the first bad one,
                    // where this stops asking too.
                    if bad {
                        return Ok(None);
                    }
                }
                _ => {
                    let attr = self.engine.attr(self.path);
                    match (tag, rest) {
                        (b's', text) => self.str(attr, text),
                        (b'i', digits) => match digits.parse::<i64>() {
                            Ok(i) => self.int(attr, Ok(i)),
                            Err(_) => return Ok(None),
                        },
                        (b't', "") => self.scalar(attr, Js::Bool(true)),
                        (b'f', "") => self.scalar(attr, Js::Bool(false)),
                        (b'n', "") => self.scalar(attr, Js::Null),
                        _ => return Ok(None),
                    }
                }
            }
        }
        self.path.truncate(outer);
        Ok(Some(()))
    }

    fn not_in_set(&mut self, found: &str) {
        let message = format!(
            "attribute `{}`: a set holds strings, integers and booleans, found {found}",
            self.shown()
        );
        self.error(RequestError::new(RequestErrorKind::Value, message));
    }

    fn shown(&self) -> String {
        excerpt(self.path, EXCERPT_CHARS).into_owned()
    }

    fn undeclared(&mut self) {
        let message = format!("attribute `{}` is not declared by the policy", self.shown());
        self.error(RequestError::new(RequestErrorKind::Undeclared, message));
    }

    fn given_twice(&mut self, path: &str) {
        let message = format!(
            "attribute `{}` is given twice",
            excerpt(path, EXCERPT_CHARS)
        );
        self.error(RequestError::new(RequestErrorKind::GivenTwice, message));
    }

    /// Sets the attribute at the current path (`attr`, looked up by the
    /// caller) to `value`.
    fn assign(&mut self, attr: Option<Attr>, value: Value<'_>) {
        let Some(attr) = attr else {
            self.undeclared();
            return;
        };
        if self.nulls.contains(&attr) {
            let path = self.path.clone();
            self.given_twice(&path);
            return;
        }
        // The engine records the error itself (a wrong type, a second
        // value, a value over a limit): the request is then denied with it.
        let _ = self.request.try_set(attr, value);
    }

    /// `null`, like an absent key, leaves the attribute missing (every
    /// attribute of a group, for a group), and still counts as given.
    fn null(&mut self) {
        if let Some(attr) = self.engine.attr(self.path) {
            let path = self.path.clone();
            self.null_of(attr, &path);
            return;
        }
        let group = format!("{}.", self.path);
        let under: Vec<String> = self
            .engine
            .attr_paths()
            .filter(|p| p.starts_with(&group))
            .map(str::to_string)
            .collect();
        if under.is_empty() {
            self.undeclared();
        }
        for path in under {
            if let Some(attr) = self.engine.attr(&path)
                && !self.null_of(attr, &path)
            {
                break;
            }
        }
    }

    fn null_of(&mut self, attr: Attr, path: &str) -> bool {
        if self.request.get(attr).is_some() || self.nulls.contains(&attr) {
            self.given_twice(path);
            return false;
        }
        self.nulls.push(attr);
        true
    }

    fn is_group(&self, path: &str) -> bool {
        let mut paths = self.engine.attr_paths();
        paths.any(|p| {
            p.len() > path.len() && p.starts_with(path) && p.as_bytes()[path.len()] == b'.'
        })
    }
}

enum Item {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// A JavaScript number that is not a 64-bit integer, told as the engine
/// tells a JSON number (json.rs `Number`).
#[derive(Clone, Copy)]
pub enum Number {
    Fraction(f64),
    Below,
    Above,
}

const RANGE: &str = "out of range (Grant's integers are 64-bit)";
const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;

impl Number {
    pub fn describe(self) -> String {
        match self {
            Number::Fraction(v) => {
                format!("{v} is not an integer (Grant has no fractional numbers)")
            }
            Number::Below => format!("the number is below {}: {RANGE}", i64::MIN),
            Number::Above => format!("the number is above {}: {RANGE}", i64::MAX),
        }
    }
}

/// A number as a 64-bit integer, or why it is not one.
pub fn number(v: f64) -> std::result::Result<i64, Number> {
    if v <= -TWO_TO_63 {
        Err(Number::Below)
    } else if v >= TWO_TO_63 {
        Err(Number::Above)
    } else if v.fract() != 0.0 || v.is_nan() {
        Err(Number::Fraction(v))
    } else {
        // In range and whole, so the cast is exact.
        Ok(v as i64)
    }
}
