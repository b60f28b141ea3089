//! Requests: the tool, the attribute values and the ttl asked for, in
//! buffers that are reused from one request to the next.

use std::borrow::Cow;

use grant_check::ir::{Scalar, Type};
use grant_compile::program::SlotId;
use grant_syntax::parser::parse_duration;
use grant_vm::{Input, Slot, SlotRange, cmp_items};

use crate::Inner;

/// A handle on a declared attribute, for setting its value without looking
/// its path up each time. Get one from [`crate::Engine::attr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub(crate) slot: SlotId,
    pub(crate) ty: Type,
}

/// A value given for an attribute, in the encodings requests use: an enum
/// variant by its name, a duration as seconds or as a duration string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Bool(bool),
    Int(i64),
    Str(&'a str),
    /// Seconds.
    Duration(u64),
    /// The elements of a set.
    Set(&'a [Value<'a>]),
}

impl Value<'_> {
    fn describe(&self) -> String {
        match self {
            Value::Bool(b) => format!("`{b}`"),
            Value::Int(i) => format!("integer `{i}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Duration(d) => format!("duration of {d}s"),
            Value::Set(_) => "a list".to_string(),
        }
    }
}

/// A problem with a request: the request is then denied, unevaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub message: Cow<'static, str>,
}

impl RequestError {
    pub(crate) fn new(message: impl Into<Cow<'static, str>>) -> RequestError {
        RequestError {
            message: message.into(),
        }
    }

    pub(crate) const fn fixed(message: &'static str) -> RequestError {
        RequestError {
            message: Cow::Borrowed(message),
        }
    }
}

/// One request. Make one with [`crate::Engine::request`], fill it, decide,
/// [`Request::clear`] it and fill it again: its buffers are kept, so that
/// deciding allocates nothing once they have grown.
#[derive(Clone, Debug)]
pub struct Request {
    /// Identifies the program the slots were laid out for.
    pub(crate) program_key: usize,
    pub(crate) tool: String,
    pub(crate) tool_given: bool,
    pub(crate) ttl: Option<u64>,
    pub(crate) values: Vec<Slot>,
    pub(crate) text: String,
    pub(crate) set_items: Vec<Slot>,
    pub(crate) errors: Vec<RequestError>,
    /// Scratch for the attribute paths of a JSON request being read.
    pub(crate) path_buffer: String,
    /// Attributes given as `null` in JSON: missing, but given, so that a
    /// second value for the same path is an error like any other.
    pub(crate) nulls: Vec<SlotId>,
    types: std::sync::Arc<[grant_check::ir::EnumType]>,
}

impl Request {
    pub(crate) fn new(inner: &Inner, program_key: usize) -> Request {
        Request {
            program_key,
            tool: String::new(),
            tool_given: false,
            ttl: None,
            values: vec![Slot::Missing; inner.program.attrs.len()],
            text: String::new(),
            set_items: Vec::new(),
            errors: Vec::new(),
            path_buffer: String::new(),
            nulls: Vec::new(),
            types: inner.types.clone(),
        }
    }

    /// Forgets every value, keeping the buffers.
    pub fn clear(&mut self) -> &mut Request {
        self.tool.clear();
        self.tool_given = false;
        self.ttl = None;
        self.values.iter_mut().for_each(|v| *v = Slot::Missing);
        self.text.clear();
        self.set_items.clear();
        self.errors.clear();
        self.nulls.clear();
        self
    }

    /// The tool the agent wants to call: any non-empty string.
    pub fn tool(&mut self, tool: &str) -> &mut Request {
        self.tool.clear();
        self.tool.push_str(tool);
        self.tool_given = true;
        if tool.is_empty() {
            self.errors.push(RequestError::new("`tool` is empty"));
        }
        self
    }

    /// The longest ttl the caller wants, in seconds; the grant never exceeds it.
    pub fn ttl(&mut self, seconds: u64) -> &mut Request {
        if seconds == 0 {
            self.errors
                .push(RequestError::new("`ttl` must be positive"));
        }
        self.ttl = Some(seconds);
        self
    }

    /// Sets an attribute. A value of the wrong type, or an unknown variant,
    /// makes the request invalid (it is denied with the error).
    pub fn set(&mut self, attr: Attr, path: &str, value: Value<'_>) -> &mut Request {
        let Some(current) = self.values.get(attr.slot.0 as usize).copied() else {
            self.errors.push(RequestError::new(format!(
                "attribute `{path}` does not belong to this policy"
            )));
            return self;
        };
        if current != Slot::Missing || self.nulls.contains(&attr.slot) {
            self.errors.push(given_twice(path));
            return self;
        }
        match self.convert(attr.ty, path, value) {
            Ok(slot) => {
                if let Some(place) = self.values.get_mut(attr.slot.0 as usize) {
                    *place = slot;
                }
            }
            Err(error) => self.errors.push(error),
        }
        self
    }

    /// Records a `null` given for an attribute: it stays missing, and any
    /// other value for its path is an error.
    pub(crate) fn set_null(&mut self, attr: Attr, path: &str) {
        let current = self.values.get(attr.slot.0 as usize).copied();
        if current.is_some_and(|v| v != Slot::Missing) || self.nulls.contains(&attr.slot) {
            self.errors.push(given_twice(path));
            return;
        }
        self.nulls.push(attr.slot);
    }

    /// Whether the request has errors (it will be denied unevaluated).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn errors(&self) -> &[RequestError] {
        &self.errors
    }

    pub(crate) fn input(&self) -> Input<'_> {
        Input {
            values: &self.values,
            text: &self.text,
            set_items: &self.set_items,
        }
    }

    fn convert(&mut self, ty: Type, path: &str, value: Value<'_>) -> Result<Slot, RequestError> {
        match (ty, value) {
            (Type::Scalar(scalar), value) => self.scalar(scalar, path, value),
            (Type::Set(element), Value::Set(items)) => {
                let start = self.set_items.len();
                for item in items {
                    let slot = self.scalar(element, path, *item)?;
                    self.set_items.push(slot);
                }
                let input = Input {
                    values: &[],
                    text: &self.text,
                    set_items: &[],
                };
                let items = self.set_items.get_mut(start..).unwrap_or(&mut []);
                items.sort_unstable_by(|a, b| cmp_items(a, b, &input));
                // Sets have no duplicates: compact the sorted run in place.
                let mut kept = 0usize;
                for i in 0..items.len() {
                    let item = items[i];
                    if kept == 0 || cmp_items(&items[kept - 1], &item, &input).is_ne() {
                        items[kept] = item;
                        kept += 1;
                    }
                }
                self.set_items.truncate(start + kept);
                Ok(Slot::Set(SlotRange {
                    start: start as u32,
                    len: kept as u32,
                }))
            }
            (Type::Set(_), other) => Err(mismatch(path, &self.type_name(ty), &other)),
        }
    }

    fn scalar(
        &mut self,
        scalar: Scalar,
        path: &str,
        value: Value<'_>,
    ) -> Result<Slot, RequestError> {
        let expected = || self.type_name(Type::Scalar(scalar));
        Ok(match (scalar, value) {
            (Scalar::Bool, Value::Bool(b)) => Slot::Bool(b),
            (Scalar::Int, Value::Int(i)) => Slot::Int(i),
            (Scalar::String, Value::Str(s)) => {
                let start = self.text.len();
                self.text.push_str(s);
                Slot::Str(SlotRange {
                    start: start as u32,
                    len: s.len() as u32,
                })
            }
            (Scalar::Duration, Value::Duration(d)) => Slot::Duration(d),
            (Scalar::Duration, Value::Int(i)) => match u64::try_from(i) {
                Ok(seconds) => Slot::Duration(seconds),
                Err(_) => {
                    return Err(RequestError::new(format!(
                        "attribute `{path}` is a duration, and `{i}` seconds is negative"
                    )));
                }
            },
            (Scalar::Duration, Value::Str(s)) => match parse_duration(s) {
                Ok(seconds) => Slot::Duration(seconds),
                Err(_) => {
                    return Err(RequestError::new(format!(
                        "attribute `{path}` expects a duration such as \"90s\" or \"1h30m\", found {s:?}"
                    )));
                }
            },
            (Scalar::Enum(id), Value::Str(name)) => {
                let Some(enum_type) = self.types.get(id.0 as usize) else {
                    return Err(mismatch(path, &expected(), &value));
                };
                match enum_type.ordinal(name) {
                    Some(ordinal) => Slot::Enum(ordinal),
                    None => {
                        return Err(RequestError::new(format!(
                            "attribute `{path}` expects a variant of `{}` ({}), found {name:?}",
                            enum_type.name,
                            enum_type.variants.join(", ")
                        )));
                    }
                }
            }
            (_, value) => return Err(mismatch(path, &expected(), &value)),
        })
    }

    fn type_name(&self, ty: Type) -> String {
        ty.name(|id| self.types.get(id.0 as usize).map(|t| t.name.as_str()))
    }
}

fn given_twice(path: &str) -> RequestError {
    RequestError::new(format!("attribute `{path}` is given twice"))
}

fn mismatch(path: &str, expected: &str, found: &Value<'_>) -> RequestError {
    RequestError::new(format!(
        "attribute `{path}` expects `{expected}`, found {}",
        found.describe()
    ))
}
