//! Python values into the engine's typed request, and JSON values into
//! Python objects.
//!
//! A request's attributes go straight from Python objects to
//! [`Request::try_set`] through attribute handles: no JSON text, no
//! `serde_json` tree. The walk mirrors the engine's JSON reader
//! (crates/grant-engine/src/json.rs) rule for rule, so that a dict decides
//! exactly as the same request in JSON would: nested objects and dotted keys
//! name the same paths, `None` is JSON's `null` (the attribute stays
//! missing, but counts as given), the size limit counts the length the
//! request would have as JSON, and nesting deeper than serde_json's
//! recursion limit is refused as malformed. What the engine checks itself
//! (types, enum variants, string and set sizes, a value given twice) is left
//! to it, so the messages are the engine's.

use std::borrow::Cow;
use std::collections::HashSet;

use grant_engine::{Attr, Engine, Request, RequestError, RequestErrorKind, Value, parse_duration};
use grant_syntax::chars::excerpt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping, PyNone, PySet, PyString,
    PyTuple, PyType,
};

/// How many characters of request text a message quotes (the engine's).
const EXCERPT_CHARS: usize = 64;

/// serde_json's recursion limit, which a JSON request meets first: the
/// request object and `attrs` are two levels, each nested dict or set one
/// more. Bounding the walk here also bounds its stack.
const MAX_DEPTH: usize = 128;

/// What the engine tells of an integer outside 64 bits.
const RANGE: &str = "out of range (Grant's integers are 64-bit)";
const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;

/// What the walk needs of a policy beyond its attribute handles: the
/// groups a request may nest (`task` for `task.approved`) and the paths in
/// byte order, for a `None` given to a whole group.
#[derive(Debug)]
pub(crate) struct Shape {
    groups: HashSet<String>,
    paths: Vec<String>,
}

impl Shape {
    pub(crate) fn of(engine: &Engine) -> Shape {
        let paths: Vec<String> = engine.attr_paths().map(str::to_string).collect();
        let mut groups = HashSet::new();
        for path in &paths {
            for (i, byte) in path.bytes().enumerate() {
                if byte == b'.' {
                    groups.insert(path[..i].to_string());
                }
            }
        }
        Shape { groups, paths }
    }

    fn is_group(&self, path: &str) -> bool {
        self.groups.contains(path)
    }

    fn under<'s>(&'s self, group: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.paths.iter().map(String::as_str).filter(move |path| {
            path.strip_prefix(group)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// `datetime.timedelta`, looked up once (the limited API has no C access
/// to it).
fn timedelta_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TIMEDELTA.import(py, "datetime", "timedelta")
}

/// Whole non-negative seconds of a timedelta, or why not.
pub(crate) fn timedelta_seconds(value: &Bound<'_, PyAny>) -> PyResult<Result<u64, String>> {
    let days: i64 = value.getattr("days")?.extract()?;
    let seconds: i64 = value.getattr("seconds")?.extract()?;
    let micros: i64 = value.getattr("microseconds")?.extract()?;
    let total = days.saturating_mul(86_400).saturating_add(seconds);
    Ok(if micros != 0 {
        Err(format!(
            "a timedelta of {} is not whole seconds",
            value.str()?
        ))
    } else if total < 0 {
        Err(format!("a timedelta of {} is negative", value.str()?))
    } else {
        Ok(total as u64)
    })
}

fn is_timedelta(value: &Bound<'_, PyAny>) -> bool {
    timedelta_type(value.py()).is_ok_and(|ty| value.is_instance(ty).unwrap_or(false))
}

/// The name of a Python value's type, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "object".to_string(), |name| name.to_string())
}

/// A Python `int` by range, as the engine's JSON reader classifies it.
enum Int {
    I64(i64),
    /// 2^63 to 2^64 - 1: a JSON reader gets it exactly, as an unsigned.
    U64(u64),
    /// Beyond: a JSON reader gets a float.
    Above,
    Below,
}

fn int_of(value: &Bound<'_, PyAny>) -> Int {
    if let Ok(i) = value.extract::<i64>() {
        return Int::I64(i);
    }
    if let Ok(u) = value.extract::<u64>() {
        return Int::U64(u);
    }
    if value.gt(0i64).unwrap_or(false) {
        Int::Above
    } else {
        Int::Below
    }
}

/// The engine's words for a number that is not a 64-bit integer
/// (json.rs `Number::describe`).
fn describe_float(v: f64) -> String {
    if v <= -TWO_TO_63 {
        describe_below()
    } else if v >= TWO_TO_63 {
        describe_above()
    } else if v.fract() != 0.0 || v.is_nan() {
        format!("{v} is not an integer (Grant has no fractional numbers)")
    } else {
        format!(
            "{v:?} is a fraction (Grant has no fractional numbers: write {})",
            v as i64
        )
    }
}

fn describe_above() -> String {
    format!("the number is above {}: {RANGE}", i64::MAX)
}

fn describe_below() -> String {
    format!("the number is below {}: {RANGE}", i64::MIN)
}

/// A request string in a message, in quotes, cut short (the engine's
/// `quoted`).
fn quoted(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", text.get(..cut).unwrap_or("")),
    }
}

fn is_sequence(value: &Bound<'_, PyAny>) -> bool {
    value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>()
        || value.is_instance_of::<PySet>()
        || value.is_instance_of::<PyFrozenSet>()
}

/// One set element, read.
enum Element<'a> {
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Duration(u64),
}

/// Fills `request` (cleared first) for `tool`, `attrs` and `ttl`, as
/// `Engine::read_parts` would from the same request in JSON.
pub(crate) fn read_request(
    engine: &Engine,
    shape: &Shape,
    request: &mut Request,
    tool: &str,
    attrs: Option<&Bound<'_, PyDict>>,
    ttl: Option<&Bound<'_, PyAny>>,
) {
    request.clear();
    request.set_tool(tool);
    let limit = engine.limits().json_bytes;
    let mut reader = Reader {
        engine,
        shape,
        request,
        nulls: Vec::new(),
        // What read_parts counts besides `attrs` and the ttl: the tool and 32.
        size: tool.len() + 32,
        limit,
        too_deep: None,
    };
    match attrs {
        Some(attrs) => {
            let mut prefix = String::new();
            reader.read_map(attrs, &mut prefix, 2);
        }
        // `attrs` absent: read_parts still counts an empty object.
        None => reader.size += 2,
    }
    let (mut size, too_deep) = (reader.size, reader.too_deep.take());
    // The ttl after `attrs`, in the order of the spec's request shape
    // (`tool`, `attrs`, `ttl`): its errors follow theirs, as `grant eval`
    // reports a request file written in that order.
    if let Some(ttl) = ttl.filter(|t| !t.is_none()) {
        size += read_ttl(ttl, request);
    }
    if size > limit {
        request.clear();
        if let Some(error) = engine.limits().json_too_large(size) {
            request.refuse(error);
        }
    } else if let Some(path) = too_deep {
        // A JSON reader stops at the limit and keeps only that error.
        request.clear();
        request.refuse(RequestError::new(
            RequestErrorKind::Malformed,
            format!(
                "`attrs` nests deeper than {MAX_DEPTH} levels (at `{}`)",
                excerpt(&path, EXCERPT_CHARS)
            ),
        ));
    }
}

/// Reads the asked ttl into `request`; returns its length as JSON.
fn read_ttl(ttl: &Bound<'_, PyAny>, request: &mut Request) -> usize {
    let mut refuse = |message: String| {
        request.refuse(RequestError::new(RequestErrorKind::Ttl, message));
    };
    if ttl.is_instance_of::<PyBool>() {
        let b = ttl.is_truthy().unwrap_or(false);
        refuse(format!(
            "`ttl` expects a duration string or integer seconds, found `{b}`"
        ));
        return 5;
    }
    if ttl.is_instance_of::<PyInt>() {
        match int_of(ttl) {
            Int::I64(i) => match u64::try_from(i) {
                Ok(seconds) => {
                    request.set_ttl(seconds);
                }
                Err(_) => refuse(format!("`ttl` of {i} seconds is negative")),
            },
            Int::U64(u) => {
                request.set_ttl(u);
            }
            Int::Above => refuse(format!("`ttl`: {}", describe_above())),
            Int::Below => refuse(format!("`ttl`: {}", describe_below())),
        }
        return 20;
    }
    if let Ok(text) = ttl.cast::<PyString>() {
        let Ok(text) = text.to_cow() else {
            refuse("`ttl` is not valid Unicode".to_string());
            return 2;
        };
        match parse_duration(&text) {
            Ok(seconds) => {
                request.set_ttl(seconds);
            }
            Err(_) => refuse(format!(
                "`ttl` expects a duration such as \"90s\" or \"1h30m\", found {}",
                quoted(&text)
            )),
        }
        return text.len() + 2;
    }
    if let Ok(float) = ttl.cast::<PyFloat>() {
        let v = float.value();
        let message = if v.fract() != 0.0 && v > -TWO_TO_63 && v < TWO_TO_63 {
            "`ttl` expects a duration string or integer seconds, found a fractional number"
                .to_string()
        } else {
            format!("`ttl`: {}", describe_float(v))
        };
        refuse(message);
        return 20;
    }
    if is_timedelta(ttl) {
        match timedelta_seconds(ttl) {
            Ok(Ok(seconds)) => {
                request.set_ttl(seconds);
            }
            Ok(Err(why)) => refuse(format!("`ttl`: {why}")),
            Err(_) => refuse("`ttl`: the timedelta could not be read".to_string()),
        }
        return 20;
    }
    refuse(format!(
        "`ttl` expects a duration string, integer seconds or a timedelta, found a Python `{}`",
        type_name(ttl)
    ));
    4
}

struct Reader<'r> {
    engine: &'r Engine,
    shape: &'r Shape,
    request: &'r mut Request,
    /// Attributes given `None`: missing, but given, so that a value for
    /// the same path again is an error (the engine keeps this for JSON).
    nulls: Vec<Attr>,
    /// The length the request would have as JSON, as read_parts counts it.
    size: usize,
    limit: usize,
    /// The path where nesting went past [`MAX_DEPTH`].
    too_deep: Option<String>,
}

impl Reader<'_> {
    /// Past the size limit only the size is counted: the request is
    /// denied for its size whatever else it holds.
    fn over(&self) -> bool {
        self.size > self.limit || self.too_deep.is_some()
    }

    fn error(&mut self, kind: RequestErrorKind, message: String) {
        if !self.over() {
            self.request.refuse(RequestError::new(kind, message));
        }
    }

    /// A dict of attributes at nesting level `depth`; its keys extend
    /// `prefix`.
    fn read_map(&mut self, map: &Bound<'_, PyDict>, prefix: &mut String, depth: usize) {
        self.size += 2;
        let outer = prefix.len();
        // Walk a copy: reading a value may run Python code (a mapping's
        // `isinstance` check) that lets another thread change the caller's
        // dict, and iterating a dict that changes size panics.
        let map = match map.copy() {
            Ok(map) => map,
            Err(error) => {
                self.error(
                    RequestErrorKind::Malformed,
                    format!("`{}` could not be read: {error}", shown(prefix)),
                );
                return;
            }
        };
        for (key, value) in map.iter() {
            prefix.truncate(outer);
            let key_text = match key.cast::<PyString>() {
                Ok(key) => match key.to_cow() {
                    Ok(text) => text,
                    Err(_) => {
                        self.error(
                            RequestErrorKind::Malformed,
                            format!("a key under `{}` is not valid Unicode", shown(prefix)),
                        );
                        continue;
                    }
                },
                Err(_) => {
                    self.size += 4 + value_len(&value, depth + 1);
                    let where_ = if prefix.is_empty() {
                        "`attrs`".to_string()
                    } else {
                        format!("`{}`", shown(prefix))
                    };
                    let key_repr = key
                        .repr()
                        .map_or_else(|_| "?".to_string(), |r| r.to_string());
                    self.error(
                        RequestErrorKind::Malformed,
                        format!(
                            "the keys of {where_} must be strings, found a Python `{}` ({})",
                            type_name(&key),
                            excerpt(&key_repr, EXCERPT_CHARS)
                        ),
                    );
                    continue;
                }
            };
            self.size += key_text.len() + 4;
            if outer > 0 {
                prefix.push('.');
            }
            prefix.push_str(&key_text);
            self.read_value(&value, prefix, depth);
        }
        prefix.truncate(outer);
    }

    /// The value at `path`, held by a dict at level `depth`.
    fn read_value(&mut self, value: &Bound<'_, PyAny>, path: &mut String, depth: usize) {
        if self.over() {
            self.size += value_len(value, depth + 1);
            return;
        }
        if value.is_none() {
            self.size += 4;
            self.null(path);
        } else if let Ok(b) = value.cast_exact::<PyBool>() {
            self.size += 5;
            self.assign(path, Value::Bool(b.is_true()));
        } else if value.is_instance_of::<PyInt>() {
            self.size += 20;
            match int_of(value) {
                Int::I64(i) => self.assign(path, Value::Int(i)),
                Int::U64(u) => self.value_error(path, format!("{u} is {RANGE}")),
                Int::Above => self.value_error(path, describe_above()),
                Int::Below => self.value_error(path, describe_below()),
            }
        } else if let Ok(text) = value.cast::<PyString>() {
            match text.to_cow() {
                Ok(text) => {
                    self.size += text.len() + 2;
                    self.assign(path, Value::Str(&text));
                }
                Err(_) => self.value_error(path, "the string is not valid Unicode".to_string()),
            }
        } else if let Ok(float) = value.cast::<PyFloat>() {
            self.size += 20;
            self.value_error(path, describe_float(float.value()));
        } else if let Ok(map) = value.cast::<PyDict>() {
            self.read_group(map, path, depth);
        } else if is_sequence(value) {
            if depth + 1 > MAX_DEPTH {
                self.too_deep.get_or_insert_with(|| path.clone());
                return;
            }
            self.read_set(value, path);
        } else if is_timedelta(value) {
            // JSON would give seconds, an int: at an undeclared path the
            // path is the error.
            self.size += 20;
            if self.engine.attr(path).is_none() {
                self.undeclared(path);
                return;
            }
            match timedelta_seconds(value) {
                Ok(Ok(seconds)) => self.assign(path, Value::Duration(seconds)),
                Ok(Err(why)) => self.value_error(path, why),
                Err(_) => self.value_error(path, "the timedelta could not be read".to_string()),
            }
        } else if let Ok(mapping) = value.cast::<PyMapping>() {
            // Another mapping type reads as the dict of its items.
            let map = PyDict::new(value.py());
            match map.update(mapping) {
                Ok(()) => self.read_group(&map, path, depth),
                Err(_) => self.value_error(path, "the mapping could not be read".to_string()),
            }
        } else {
            self.size += 4;
            if self.engine.attr(path).is_none() {
                self.undeclared(path);
            } else {
                self.value_error(
                    path,
                    format!(
                        "Grant takes a bool, an int, a str, a timedelta or a set of them, found a Python `{}`",
                        type_name(value)
                    ),
                );
            }
        }
    }

    /// A dict at `path`: a group of attributes, or an error, and read
    /// all the same (as json.rs does).
    fn read_group(&mut self, map: &Bound<'_, PyDict>, path: &mut String, depth: usize) {
        if depth + 1 > MAX_DEPTH {
            self.too_deep.get_or_insert_with(|| path.clone());
            return;
        }
        let declared = self.engine.attr(path).is_some();
        if declared {
            let message = format!(
                "attribute `{}` expects a value, found an object",
                shown(path)
            );
            self.error(RequestErrorKind::Value, message);
        } else if !self.shape.is_group(path) {
            let message = format!("no declared attribute starts with `{}.`", shown(path));
            self.error(RequestErrorKind::Undeclared, message);
        }
        self.read_map(map, path, depth + 1);
    }

    /// A list, tuple, set or frozenset at `path`: a set value.
    fn read_set(&mut self, value: &Bound<'_, PyAny>, path: &str) {
        let items: Vec<Bound<'_, PyAny>> = match value.try_iter() {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        };
        self.size += 2 + items.iter().map(|item| scalar_len(item) + 1).sum::<usize>();
        let limit = self.request.limits().set_elements;
        if items.len() > limit {
            let message = format!(
                "attribute `{}` has a set of {} elements, over the limit of {limit}",
                shown(path),
                items.len()
            );
            self.error(RequestErrorKind::TooLarge, message);
            return;
        }
        let mut elements = Vec::with_capacity(items.len());
        for item in &items {
            match element(item) {
                Ok(element) => elements.push(element),
                Err(found) => {
                    self.value_error(
                        path,
                        format!("a set holds strings, integers and booleans, found {found}"),
                    );
                    return;
                }
            }
        }
        let values: Vec<Value<'_>> = elements
            .iter()
            .map(|element| match element {
                Element::Bool(b) => Value::Bool(*b),
                Element::Int(i) => Value::Int(*i),
                Element::Str(s) => Value::Str(s),
                Element::Duration(d) => Value::Duration(*d),
            })
            .collect();
        self.assign(path, Value::Set(&values));
    }

    fn assign(&mut self, path: &str, value: Value<'_>) {
        match self.engine.attr(path) {
            Some(attr) => {
                if self.nulls.contains(&attr) {
                    self.given_twice(path);
                } else {
                    // The engine records its own error in the request.
                    let _ = self.request.try_set(attr, value);
                }
            }
            None => self.undeclared(path),
        }
    }

    /// `None` at `path`: the attribute (every attribute of a group) stays
    /// missing, but is given.
    fn null(&mut self, path: &str) {
        if let Some(attr) = self.engine.attr(path) {
            self.null_attr(attr, path);
            return;
        }
        let shape = self.shape;
        let mut any = false;
        for under in shape.under(path) {
            any = true;
            let Some(attr) = self.engine.attr(under) else {
                continue;
            };
            // One error is enough for a group given twice.
            if !self.null_attr(attr, under) {
                break;
            }
        }
        if !any {
            self.undeclared(path);
        }
    }

    fn null_attr(&mut self, attr: Attr, path: &str) -> bool {
        if self.request.get(attr).is_some() || self.nulls.contains(&attr) {
            self.given_twice(path);
            return false;
        }
        self.nulls.push(attr);
        true
    }

    fn given_twice(&mut self, path: &str) {
        let message = format!("attribute `{}` is given twice", shown(path));
        self.error(RequestErrorKind::GivenTwice, message);
    }

    fn undeclared(&mut self, path: &str) {
        let message = format!("attribute `{}` is not declared by the policy", shown(path));
        self.error(RequestErrorKind::Undeclared, message);
    }

    /// A value the engine cannot be given, told as the engine tells it of
    /// JSON (which tells it whether or not the path is declared).
    fn value_error(&mut self, path: &str, what: String) {
        let message = format!("attribute `{}`: {what}", shown(path));
        self.error(RequestErrorKind::Value, message);
    }
}

fn shown(path: &str) -> Cow<'_, str> {
    excerpt(path, EXCERPT_CHARS)
}

/// A set element, or how the engine would describe what it is instead
/// (json.rs `Scalar::describe`).
fn element<'a>(item: &'a Bound<'_, PyAny>) -> Result<Element<'a>, String> {
    if item.is_none() {
        return Err("`null`".to_string());
    }
    if let Ok(b) = item.cast_exact::<PyBool>() {
        return Ok(Element::Bool(b.is_true()));
    }
    if item.is_instance_of::<PyInt>() {
        return match int_of(item) {
            Int::I64(i) => Ok(Element::Int(i)),
            Int::U64(_) | Int::Above => Err(describe_above()),
            Int::Below => Err(describe_below()),
        };
    }
    if let Ok(text) = item.cast::<PyString>() {
        return text
            .to_cow()
            .map(Element::Str)
            .map_err(|_| "a string that is not valid Unicode".to_string());
    }
    if let Ok(float) = item.cast::<PyFloat>() {
        let v = float.value();
        return Err(if v.fract() != 0.0 && v > -TWO_TO_63 && v < TWO_TO_63 {
            "a fractional number".to_string()
        } else {
            describe_float(v)
        });
    }
    if is_timedelta(item) {
        return match timedelta_seconds(item) {
            Ok(Ok(seconds)) => Ok(Element::Duration(seconds)),
            Ok(Err(why)) => Err(why),
            Err(_) => Err("a timedelta that could not be read".to_string()),
        };
    }
    if is_sequence(item) {
        return Err("a list".to_string());
    }
    if item.is_instance_of::<PyDict>() || item.cast::<PyMapping>().is_ok() {
        return Err("an object".to_string());
    }
    Err(format!("a Python `{}`", type_name(item)))
}

/// The length of a set element as JSON (json.rs `value_len`).
fn scalar_len(item: &Bound<'_, PyAny>) -> usize {
    if item.is_none() {
        4
    } else if item.is_instance_of::<PyBool>() {
        5
    } else if let Ok(text) = item.cast::<PyString>() {
        text.to_cow().map_or(2, |t| t.len() + 2)
    } else {
        20
    }
}

/// The length of any value as JSON, bounded in depth like the walk.
fn value_len(value: &Bound<'_, PyAny>, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        return 0;
    }
    if let Ok(map) = value.cast::<PyDict>() {
        // A copy, for the reason `read_map` gives.
        let Ok(map) = map.copy() else {
            return 0;
        };
        return 2 + map
            .iter()
            .map(|(k, v)| scalar_len(&k) - 2 + 4 + value_len(&v, depth + 1))
            .sum::<usize>();
    }
    if is_sequence(value) {
        return match value.try_iter() {
            Ok(iter) => {
                2 + iter
                    .filter_map(Result::ok)
                    .map(|item| value_len(&item, depth + 1) + 1)
                    .sum::<usize>()
            }
            Err(_) => 2,
        };
    }
    scalar_len(value)
}

/// A Python value as JSON for the ledger, whose operations take
/// `serde_json` attributes; `Err` names what JSON cannot hold (the request
/// is then refused before it reaches the ledger).
pub(crate) fn to_json(
    value: &Bound<'_, PyAny>,
    path: &mut String,
    depth: usize,
) -> Result<serde_json::Value, RequestError> {
    use serde_json::Value as Json;
    let value_error = |path: &str, what: String| {
        RequestError::new(
            RequestErrorKind::Value,
            format!("attribute `{}`: {what}", shown(path)),
        )
    };
    if depth > MAX_DEPTH {
        return Err(RequestError::new(
            RequestErrorKind::Malformed,
            format!(
                "`attrs` nests deeper than {MAX_DEPTH} levels (at `{}`)",
                shown(path)
            ),
        ));
    }
    if value.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(b) = value.cast_exact::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(match int_of(value) {
            Int::I64(i) => Json::from(i),
            Int::U64(u) => Json::from(u),
            // As a JSON reader would get it: a float, which the engine refuses.
            Int::Above => Json::from(2f64.powi(64)),
            Int::Below => Json::from(-(2f64.powi(64))),
        });
    }
    if let Ok(text) = value.cast::<PyString>() {
        return text
            .to_cow()
            .map(|t| Json::String(t.into_owned()))
            .map_err(|_| value_error(path, "the string is not valid Unicode".to_string()));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let v = float.value();
        return serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| value_error(path, describe_float(v)));
    }
    if is_timedelta(value) {
        return match timedelta_seconds(value) {
            Ok(Ok(seconds)) => Ok(Json::from(seconds)),
            Ok(Err(why)) => Err(value_error(path, why)),
            Err(_) => Err(value_error(
                path,
                "the timedelta could not be read".to_string(),
            )),
        };
    }
    if let Ok(map) = value.cast::<PyDict>() {
        return map_to_json(map, path, depth).map(Json::Object);
    }
    if is_sequence(value) {
        let mut items = Vec::new();
        if let Ok(iter) = value.try_iter() {
            for item in iter.filter_map(Result::ok) {
                items.push(to_json(&item, path, depth + 1)?);
            }
        }
        return Ok(Json::Array(items));
    }
    if let Ok(mapping) = value.cast::<PyMapping>() {
        let map = PyDict::new(value.py());
        if map.update(mapping).is_ok() {
            return map_to_json(&map, path, depth).map(Json::Object);
        }
    }
    Err(value_error(
        path,
        format!(
            "Grant takes a bool, an int, a str, a timedelta or a set of them, found a Python `{}`",
            type_name(value)
        ),
    ))
}

/// A dict as a JSON object (see [`to_json`]); `path` is where it is.
pub(crate) fn map_to_json(
    map: &Bound<'_, PyDict>,
    path: &mut String,
    depth: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, RequestError> {
    let mut object = serde_json::Map::new();
    let outer = path.len();
    // A copy, for the reason `read_map` gives.
    let map = map
        .copy()
        .map_err(|e| RequestError::new(RequestErrorKind::Malformed, e.to_string()))?;
    for (key, value) in map.iter() {
        let Ok(key) = key.cast::<PyString>().map(|k| k.to_cow()) else {
            let where_ = if path.is_empty() {
                "`attrs`".to_string()
            } else {
                format!("`{}`", shown(path))
            };
            return Err(RequestError::new(
                RequestErrorKind::Malformed,
                format!(
                    "the keys of {where_} must be strings, found a Python `{}`",
                    type_name(&key)
                ),
            ));
        };
        let Ok(key) = key else {
            return Err(RequestError::new(
                RequestErrorKind::Malformed,
                "a key is not valid Unicode",
            ));
        };
        path.truncate(outer);
        if outer > 0 {
            path.push('.');
        }
        path.push_str(&key);
        let json = to_json(&value, path, depth + 1)?;
        object.insert(key.into_owned(), json);
    }
    path.truncate(outer);
    Ok(object)
}

/// A JSON value as Python objects: dicts, lists, str, int, float, bool,
/// None.
pub(crate) fn from_json<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    use serde_json::Value as Json;
    Ok(match value {
        Json::Null => PyNone::get(py).to_owned().into_any(),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)?
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)?
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?
            }
        }
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(from_json(py, item)?)?;
            }
            list.into_any()
        }
        Json::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, from_json(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// A serializable value as Python objects (via a `serde_json` tree).
pub(crate) fn to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    from_json(py, &json)
}
