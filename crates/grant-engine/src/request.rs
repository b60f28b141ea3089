//! Requests: the tool, the attribute values and the ttl asked for, in
//! buffers that are reused from one request to the next.

use std::borrow::Cow;

use grant_check::ir::{Scalar, Type};
use grant_compile::program::SlotId;
use grant_syntax::parser::parse_duration;
use grant_vm::{Input, Slot, SlotRange, cmp_items};

use crate::Inner;
use crate::limits::{EXCERPT_CHARS, RequestLimits, excerpt, quoted};

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
            Value::Str(s) => format!("string {}", quoted(s)),
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
    /// Per attribute: whether it was given as `null` in JSON (missing, but
    /// given, so that a second value for the same path is an error like
    /// any other). Empty until a request gives a `null`.
    pub(crate) nulls: Vec<bool>,
    pub(crate) limits: RequestLimits,
    types: std::sync::Arc<[grant_check::ir::EnumType]>,
}

impl Request {
    pub(crate) fn new(inner: &Inner, program_key: usize, limits: RequestLimits) -> Request {
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
            limits,
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
        self.nulls.iter_mut().for_each(|n| *n = false);
        self
    }

    /// The tool the agent wants to call: any non-empty string of at most
    /// [`RequestLimits::tool_bytes`].
    pub fn tool(&mut self, tool: &str) -> &mut Request {
        self.tool.clear();
        self.tool_given = true;
        if tool.len() > self.limits.tool_bytes {
            self.errors.push(RequestError::new(format!(
                "`tool` has {} bytes, over the limit of {} (it begins `{}`)",
                tool.len(),
                self.limits.tool_bytes,
                excerpt(tool, EXCERPT_CHARS)
            )));
            return self;
        }
        self.tool.push_str(tool);
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

    /// Sets an attribute. A value of the wrong type, an unknown variant, or
    /// a value over the [`RequestLimits`] makes the request invalid (it is
    /// denied with the error).
    pub fn set(&mut self, attr: Attr, path: &str, value: Value<'_>) -> &mut Request {
        let Some(current) = self.values.get(attr.slot.0 as usize).copied() else {
            self.errors.push(RequestError::new(format!(
                "attribute `{}` does not belong to this policy",
                excerpt(path, EXCERPT_CHARS)
            )));
            return self;
        };
        if current != Slot::Missing || self.is_null(attr) {
            self.errors.push(given_twice(path));
            return self;
        }
        if let Value::Set(items) = value {
            if items.len() > self.limits.set_elements {
                self.errors
                    .push(too_many_elements(path, items.len(), self.limits));
                return self;
            }
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
    /// other value for its path is an error. False (and the error recorded)
    /// when the attribute was given already.
    pub(crate) fn set_null(&mut self, attr: Attr, path: &str) -> bool {
        let current = self.values.get(attr.slot.0 as usize).copied();
        if current.is_some_and(|v| v != Slot::Missing) || self.is_null(attr) {
            self.errors.push(given_twice(path));
            return false;
        }
        let slot = attr.slot.0 as usize;
        if self.nulls.len() <= slot {
            self.nulls.resize(self.values.len().max(slot + 1), false);
        }
        if let Some(null) = self.nulls.get_mut(slot) {
            *null = true;
        }
        true
    }

    fn is_null(&self, attr: Attr) -> bool {
        self.nulls.get(attr.slot.0 as usize) == Some(&true)
    }

    /// The limits this request is held to.
    pub fn limits(&self) -> &RequestLimits {
        &self.limits
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
        if let Value::Str(s) = value {
            if s.len() > self.limits.string_bytes {
                return Err(RequestError::new(format!(
                    "attribute `{}` has a string of {} bytes, over the limit of {} (it begins `{}`)",
                    excerpt(path, EXCERPT_CHARS),
                    s.len(),
                    self.limits.string_bytes,
                    excerpt(s, EXCERPT_CHARS)
                )));
            }
        }
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
                        "attribute `{}` is a duration, and `{i}` seconds is negative",
                        excerpt(path, EXCERPT_CHARS)
                    )));
                }
            },
            (Scalar::Duration, Value::Str(s)) => match parse_duration(s) {
                Ok(seconds) => Slot::Duration(seconds),
                Err(_) => {
                    return Err(RequestError::new(format!(
                        "attribute `{}` expects a duration such as \"90s\" or \"1h30m\", found {}",
                        excerpt(path, EXCERPT_CHARS),
                        quoted(s)
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
                            "attribute `{}` expects a variant of `{}` ({}), found {}",
                            excerpt(path, EXCERPT_CHARS),
                            enum_type.name,
                            variant_list(&enum_type.variants),
                            quoted(name)
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
    RequestError::new(format!(
        "attribute `{}` is given twice",
        excerpt(path, EXCERPT_CHARS)
    ))
}

pub(crate) fn too_many_elements(
    path: &str,
    elements: usize,
    limits: RequestLimits,
) -> RequestError {
    RequestError::new(format!(
        "attribute `{}` has a set of {elements} elements, over the limit of {}",
        excerpt(path, EXCERPT_CHARS),
        limits.set_elements
    ))
}

fn mismatch(path: &str, expected: &str, found: &Value<'_>) -> RequestError {
    RequestError::new(format!(
        "attribute `{}` expects `{expected}`, found {}",
        excerpt(path, EXCERPT_CHARS),
        found.describe()
    ))
}

/// An enum's variants for a message: the first few, then how many in all,
/// so that an enum of 100,000 variants does not make each error that long.
fn variant_list(variants: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut list = variants
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if variants.len() > SHOWN {
        list.push_str(&format!(", … ({} in all)", variants.len()));
    }
    list
}
