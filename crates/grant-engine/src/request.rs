//! Requests: the tool, the attribute values and the ttl asked for, in
//! buffers that are reused from one request to the next.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use grant_check::ir::{Scalar, Type};
use grant_compile::program::SlotId;
use grant_syntax::parser::{format_duration, parse_duration};
use grant_vm::{Input, Slot, SlotRange, cmp_items};

use crate::Inner;
use crate::limits::{EXCERPT_CHARS, RequestLimits, excerpt, quoted};

/// A handle on a declared attribute, for setting its value without looking
/// its path up each time. Get one from [`crate::Engine::attr`].
///
/// A handle belongs to the engine that made it: a request of another engine
/// (after a hot reload, say, even of the same policy text) refuses it, and
/// is then denied with that error. Fetch handles again from each new engine.
///
/// ```
/// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m")?;
/// let env = engine.attr("env").expect("declared");
/// assert_eq!(env.path(&engine), Some("env"));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The engine that made the handle ([`Inner::id`]).
    pub(crate) engine: usize,
    pub(crate) slot: SlotId,
    pub(crate) ty: Type,
}

impl Attr {
    /// The attribute's path, if `engine` made this handle.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let env = engine.attr("env").expect("declared");
    /// assert_eq!(env.path(&engine), Some("env"));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn path<'e>(&self, engine: &'e crate::Engine) -> Option<&'e str> {
        if self.engine != engine.inner.id {
            return None;
        }
        engine.inner.attr_path(self.slot)
    }

    /// The kind of value the attribute holds: what a request must give
    /// for it (an enum's variant by name, a duration as a string or
    /// seconds).
    ///
    /// ```
    /// use grant_engine::AttrKind;
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr tags: set<string>\nallow tool \"t\" when \"a\" in tags ttl 1m")?;
    /// let tags = engine.attr("tags").expect("declared");
    /// assert_eq!((tags.kind(), tags.is_set()), (AttrKind::String, true));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn kind(&self) -> AttrKind {
        let (Type::Scalar(scalar) | Type::Set(scalar)) = self.ty;
        match scalar {
            Scalar::Bool => AttrKind::Bool,
            Scalar::Int => AttrKind::Int,
            Scalar::String => AttrKind::String,
            Scalar::Duration => AttrKind::Duration,
            Scalar::Enum(_) => AttrKind::Enum,
        }
    }

    /// Whether the attribute is a set of [`Attr::kind`] values.
    pub fn is_set(&self) -> bool {
        matches!(self.ty, Type::Set(_))
    }
}

/// The kind of value an attribute (or each element of a set attribute)
/// holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrKind {
    /// `true` or `false`.
    Bool,
    /// A 64-bit signed integer.
    Int,
    /// Any string.
    String,
    /// Whole seconds: a duration string (`5m`) or an integer.
    Duration,
    /// A declared enum: a variant, by its name.
    Enum,
}

/// A value given for an attribute, in the encodings requests use: an enum
/// variant by its name, a duration as seconds or as a duration string.
///
/// ```
/// use grant_engine::Value;
/// let labels = [Value::Str("pci"), Value::Str("sox")];
/// let value = Value::Set(&labels);
/// # let _ = value;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A `bool`.
    Bool(bool),
    /// An `int`, or a `duration` in seconds (not negative).
    Int(i64),
    /// A `string`, an enum variant by name, or a duration such as `"1h30m"`.
    Str(&'a str),
    /// A `duration`, in seconds.
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

/// What kind of problem a [`RequestError`] is, for callers that act on it
/// (a service answering 413 for [`RequestErrorKind::TooLarge`], say, or
/// fetching a new engine on [`RequestErrorKind::WrongEngine`]). Every kind
/// denies the request.
///
/// ```
/// use grant_engine::RequestErrorKind;
/// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
/// let decision = engine.decide_json("{\"tool\": \"t\", \"ttl\": 0}");
/// assert!(!decision.is_allow());
/// let mut request = engine.request();
/// engine.read_json("{\"tool\": \"t\", \"ttl\": 0}", &mut request);
/// assert_eq!(request.errors()[0].kind(), RequestErrorKind::Ttl);
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestErrorKind {
    /// Not UTF-8, not JSON, or not the shape of a request (an unknown
    /// field, `attrs` not an object).
    Malformed,
    /// Over one of the [`RequestLimits`].
    TooLarge,
    /// No `tool`, or an empty or `null` one.
    Tool,
    /// A `ttl` that is malformed, negative or zero.
    Ttl,
    /// An attribute the policy does not declare.
    Undeclared,
    /// A value of the wrong type, an unknown enum variant, a number out of
    /// range, an object where a value belongs.
    Value,
    /// A field or an attribute given twice.
    GivenTwice,
    /// A request, or an attribute handle, made by another engine (or an
    /// earlier version of this policy).
    WrongEngine,
    /// Refused by the embedder ([`Request::refuse`]).
    Refused,
}

/// A problem with a request: the request is then denied, unevaluated.
///
/// ```
/// use grant_engine::{RequestError, RequestErrorKind};
/// let error = RequestError::new(RequestErrorKind::Refused, "`ledger.depth` is set by the ledger");
/// assert_eq!(error.to_string(), "`ledger.depth` is set by the ledger");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    kind: RequestErrorKind,
    message: Cow<'static, str>,
}

impl RequestError {
    /// An error of `kind`. The message follows Grant's style: lowercase,
    /// no final period, request text in backticks and cut short.
    ///
    /// ```
    /// use grant_engine::{RequestError, RequestErrorKind};
    /// let error = RequestError::new(RequestErrorKind::Refused, "`ledger.depth` is set by the ledger");
    /// assert_eq!(error.kind(), RequestErrorKind::Refused);
    /// ```
    pub fn new(kind: RequestErrorKind, message: impl Into<Cow<'static, str>>) -> RequestError {
        RequestError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) const fn fixed(kind: RequestErrorKind, message: &'static str) -> RequestError {
        RequestError {
            kind,
            message: Cow::Borrowed(message),
        }
    }

    /// What kind of problem this is.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// request.set_ttl(0);
    /// assert_eq!(request.errors()[0].kind(), grant_engine::RequestErrorKind::Ttl);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn kind(&self) -> RequestErrorKind {
        self.kind
    }

    /// The message, as a decision's `errors` gives it.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// request.set_ttl(0);
    /// assert_eq!(request.errors()[0].message(), "`ttl` must be positive");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

pub(crate) static NO_TOOL: RequestError =
    RequestError::fixed(RequestErrorKind::Tool, "request has no `tool`");
pub(crate) static WRONG_ENGINE: RequestError = RequestError::fixed(
    RequestErrorKind::WrongEngine,
    "the request was made for another policy (or an earlier version of this one): make it with this engine's `request()`",
);

/// One request. Make one with [`crate::Engine::request`], fill it, decide,
/// [`Request::clear`] it and fill it again: its buffers are kept, so that
/// deciding allocates nothing once they have grown.
///
/// ```
/// use grant_engine::{Engine, Value};
/// let engine = Engine::from_text("p.grant", r#"
///     attr env: string
///     allow tool "db.read" when env == "dev" ttl 5m
/// "#)?;
/// let env = engine.attr("env").expect("declared");
/// let mut request = engine.request();
/// request.set_tool("db.read").set(env, Value::Str("dev")).set_ttl(60);
/// assert_eq!(request.tool(), Some("db.read"));
/// assert_eq!(request.ttl(), Some(60));
/// let given: Vec<String> = request.given().map(|(path, value)| format!("{path} = {value}")).collect();
/// assert_eq!(given, ["env = \"dev\""]);
/// assert_eq!(engine.decide(&request).ttl_seconds, Some(60));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Request {
    /// The engine's policy, whose attribute slots the values follow.
    pub(crate) inner: Arc<Inner>,
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
}

impl Request {
    pub(crate) fn new(inner: &Arc<Inner>, limits: RequestLimits) -> Request {
        Request {
            inner: Arc::clone(inner),
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
        }
    }

    /// Forgets every value, keeping the buffers.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// request.set_tool("t").set_ttl(0);
    /// assert!(request.clear().is_valid());
    /// assert_eq!(request.tool(), None);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
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
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// request.set_tool("");
    /// assert_eq!(request.errors()[0].message(), "`tool` is empty");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn set_tool(&mut self, tool: &str) -> &mut Request {
        self.tool.clear();
        self.tool_given = true;
        if tool.len() > self.limits.tool_bytes {
            self.errors.push(RequestError::new(
                RequestErrorKind::TooLarge,
                format!(
                    "`tool` has {} bytes, over the limit of {} (it begins `{}`)",
                    tool.len(),
                    self.limits.tool_bytes,
                    excerpt(tool, EXCERPT_CHARS)
                ),
            ));
            return self;
        }
        self.tool.push_str(tool);
        if tool.is_empty() {
            self.errors.push(RequestError::fixed(
                RequestErrorKind::Tool,
                "`tool` is empty",
            ));
        }
        self
    }

    /// The longest ttl the caller wants, in seconds; the grant never exceeds it.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// request.set_ttl(90);
    /// assert_eq!(request.ttl(), Some(90));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn set_ttl(&mut self, seconds: u64) -> &mut Request {
        if seconds == 0 {
            self.errors.push(RequestError::fixed(
                RequestErrorKind::Ttl,
                "`ttl` must be positive",
            ));
        }
        self.ttl = Some(seconds);
        self
    }

    /// Sets an attribute. A handle of another engine, a value of the wrong
    /// type, an unknown variant, a value over the [`RequestLimits`], or a
    /// second value for the attribute makes the request invalid: it is
    /// denied with the error. [`Request::try_set`] also returns it.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// use grant_engine::Value;
    /// let env = engine.attr("env").expect("declared");
    /// let mut request = engine.request();
    /// request.set(env, Value::Int(1));
    /// assert_eq!(request.errors()[0].message(), "attribute `env` expects `string`, found integer `1`");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn set(&mut self, attr: Attr, value: Value<'_>) -> &mut Request {
        if let Err(error) = self.put(attr, value) {
            self.errors.push(error);
        }
        self
    }

    /// [`Request::set`], telling at once whether the value was taken. An
    /// error is recorded in the request all the same (it will be denied):
    /// a caller that goes on regardless still fails closed.
    ///
    /// ```
    /// use grant_engine::{Engine, RequestErrorKind, Value};
    /// let text = "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m";
    /// let old = Engine::from_text("p.grant", text)?;
    /// let env = old.attr("env").expect("declared");
    /// // A hot reload: the same text, a new engine. Old handles are refused.
    /// let new = Engine::from_text("p.grant", text)?;
    /// let mut request = new.request();
    /// let error = request.set_tool("t").try_set(env, Value::Str("dev")).unwrap_err();
    /// assert_eq!(error.kind(), RequestErrorKind::WrongEngine);
    /// assert!(!new.decide(&request).is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn try_set(&mut self, attr: Attr, value: Value<'_>) -> Result<(), RequestError> {
        self.put(attr, value)
            .inspect_err(|error| self.errors.push(error.clone()))
    }

    /// Makes the request invalid with `error`, for what the embedder
    /// refuses itself (input it could not read, an attribute its callers
    /// may not give): the request is denied, unevaluated, with it.
    ///
    /// ```
    /// use grant_engine::{RequestError, RequestErrorKind};
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// let mut request = engine.request();
    /// request.set_tool("t").refuse(RequestError::new(RequestErrorKind::Refused, "the caller is blocked"));
    /// assert_eq!(engine.decide(&request).errors, ["the caller is blocked"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn refuse(&mut self, error: RequestError) -> &mut Request {
        self.errors.push(error);
        self
    }

    /// Checks and stores one value; the error, unrecorded, if it is refused.
    fn put(&mut self, attr: Attr, value: Value<'_>) -> Result<(), RequestError> {
        if attr.engine != self.inner.id {
            return Err(RequestError::fixed(
                RequestErrorKind::WrongEngine,
                "an attribute handle of another engine (or of an earlier version of this policy) was used: fetch handles again with this engine's `attr()`",
            ));
        }
        let index = attr.slot.0 as usize;
        let path = self.inner.attr_path(attr.slot).unwrap_or("");
        let Some(current) = self.values.get(index).copied() else {
            return Err(RequestError::new(
                RequestErrorKind::WrongEngine,
                format!(
                    "attribute `{}` does not belong to this policy",
                    excerpt(path, EXCERPT_CHARS)
                ),
            ));
        };
        if current != Slot::Missing || self.is_null(attr) {
            return Err(given_twice(path));
        }
        if let Value::Set(items) = value
            && items.len() > self.limits.set_elements
        {
            return Err(too_many_elements(path, items.len(), self.limits));
        }
        let slot = self.convert(attr.ty, attr.slot, value)?;
        if let Some(place) = self.values.get_mut(index) {
            *place = slot;
        }
        Ok(())
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

    /// The tool asked for; `None` until one is given.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// assert_eq!(request.tool(), None);
    /// request.set_tool("t");
    /// assert_eq!(request.tool(), Some("t"));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn tool(&self) -> Option<&str> {
        self.tool_given.then_some(self.tool.as_str())
    }

    /// The ttl asked for, in seconds; `None` when the request asks for no
    /// limit.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// engine.read_json(r#"{"tool": "t", "ttl": "2m"}"#, &mut request);
    /// assert_eq!(request.ttl(), Some(120));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn ttl(&self) -> Option<u64> {
        self.ttl
    }

    /// The value given for `attr`; `None` when it is missing, or when the
    /// handle belongs to another engine.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// use grant_engine::{Given, Value};
    /// let env = engine.attr("env").expect("declared");
    /// let mut request = engine.request();
    /// assert_eq!(request.get(env), None);
    /// request.set(env, Value::Str("dev"));
    /// assert_eq!(request.get(env), Some(Given::Str("dev")));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn get(&self, attr: Attr) -> Option<Given<'_>> {
        if attr.engine != self.inner.id {
            return None;
        }
        self.given_at(attr.slot)
    }

    /// Every attribute given a value, with it, in the order the policy
    /// declares them. Attributes given `null` are missing, and left out.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// engine.read_json(r#"{"tool": "t", "attrs": {"env": "dev"}}"#, &mut request);
    /// let given: Vec<_> = request.given().map(|(path, value)| format!("{path} = {value}")).collect();
    /// assert_eq!(given, ["env = \"dev\""]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn given(&self) -> impl Iterator<Item = (&str, Given<'_>)> {
        self.inner
            .program
            .attrs
            .iter()
            .enumerate()
            .filter_map(|(i, attr)| {
                let value = self.given_at(SlotId(i as u32))?;
                Some((attr.path.as_str(), value))
            })
    }

    pub(crate) fn given_at(&self, slot: SlotId) -> Option<Given<'_>> {
        let value = *self.values.get(slot.0 as usize)?;
        let ty = self.inner.program.attrs.get(slot.0 as usize)?.ty;
        let element = match ty {
            Type::Scalar(scalar) | Type::Set(scalar) => scalar,
        };
        self.read_back(element, value)
    }

    fn read_back(&self, scalar: Scalar, value: Slot) -> Option<Given<'_>> {
        let input = self.input();
        Some(match value {
            Slot::Missing => return None,
            Slot::Bool(b) => Given::Bool(b),
            Slot::Int(i) => Given::Int(i),
            Slot::Str(range) => Given::Str(input.str(range)),
            Slot::Duration(seconds) => Given::Duration(seconds),
            Slot::Enum(ordinal) => {
                let Scalar::Enum(id) = scalar else {
                    return None;
                };
                let variant = self
                    .inner
                    .program
                    .types
                    .get(id.0 as usize)?
                    .variants
                    .get(ordinal as usize)?;
                Given::Variant(variant)
            }
            Slot::Set(range) => Given::Set(GivenSet {
                request: self,
                element: scalar,
                items: input.set(range),
            }),
        })
    }

    /// The limits this request is held to.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// assert_eq!(engine.request().limits(), engine.limits());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// Whether the request has no errors so far. (A request with no tool
    /// has none, and is still denied.)
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// engine.read_json(r#"{"tool": "t", "attrs": {"user": "x"}}"#, &mut request);
    /// assert!(!request.is_valid());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems found so far, in the order found.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let mut request = engine.request();
    /// engine.read_json(r#"{"tool": "t", "attrs": {"user": "x"}}"#, &mut request);
    /// assert_eq!(request.errors()[0].message(), "attribute `user` is not declared by the policy");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
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

    fn convert(&mut self, ty: Type, slot: SlotId, value: Value<'_>) -> Result<Slot, RequestError> {
        match (ty, value) {
            (Type::Scalar(scalar), value) => self.scalar(scalar, slot, value),
            (Type::Set(element), Value::Set(items)) => {
                let start = self.set_items.len();
                for item in items {
                    let slot = self.scalar(element, slot, *item)?;
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
            (Type::Set(_), other) => Err(mismatch(self.path(slot), &self.type_name(ty), &other)),
        }
    }

    fn path(&self, slot: SlotId) -> &str {
        self.inner.attr_path(slot).unwrap_or("")
    }

    fn scalar(
        &mut self,
        scalar: Scalar,
        slot: SlotId,
        value: Value<'_>,
    ) -> Result<Slot, RequestError> {
        let path = || excerpt(self.path(slot), EXCERPT_CHARS);
        if let Value::Str(s) = value
            && s.len() > self.limits.string_bytes
        {
            return Err(RequestError::new(
                RequestErrorKind::TooLarge,
                format!(
                    "attribute `{}` has a string of {} bytes, over the limit of {} (it begins `{}`)",
                    path(),
                    s.len(),
                    self.limits.string_bytes,
                    excerpt(s, EXCERPT_CHARS)
                ),
            ));
        }
        let mismatched = || {
            mismatch(
                self.path(slot),
                &self.type_name(Type::Scalar(scalar)),
                &value,
            )
        };
        let slot = match (scalar, value) {
            (Scalar::Bool, Value::Bool(b)) => Slot::Bool(b),
            (Scalar::Int, Value::Int(i)) => Slot::Int(i),
            (Scalar::String, Value::Str(_)) => Slot::Missing, // stored below
            (Scalar::Duration, Value::Duration(d)) => Slot::Duration(d),
            (Scalar::Duration, Value::Int(i)) => match u64::try_from(i) {
                Ok(seconds) => Slot::Duration(seconds),
                Err(_) => {
                    return Err(RequestError::new(
                        RequestErrorKind::Value,
                        format!(
                            "attribute `{}` is a duration, and `{i}` seconds is negative",
                            path()
                        ),
                    ));
                }
            },
            (Scalar::Duration, Value::Str(s)) => match parse_duration(s) {
                Ok(seconds) => Slot::Duration(seconds),
                Err(_) => {
                    return Err(RequestError::new(
                        RequestErrorKind::Value,
                        format!(
                            "attribute `{}` expects a duration such as \"90s\" or \"1h30m\", found {}",
                            path(),
                            quoted(s)
                        ),
                    ));
                }
            },
            (Scalar::Enum(id), Value::Str(name)) => {
                let Some(enum_type) = self.inner.program.types.get(id.0 as usize) else {
                    return Err(mismatched());
                };
                match enum_type.ordinal(name) {
                    Some(ordinal) => Slot::Enum(ordinal),
                    None => {
                        return Err(RequestError::new(
                            RequestErrorKind::Value,
                            format!(
                                "attribute `{}` expects a variant of `{}` ({}), found {}",
                                path(),
                                enum_type.name,
                                variant_list(&enum_type.variants),
                                quoted(name)
                            ),
                        ));
                    }
                }
            }
            _ => return Err(mismatched()),
        };
        if let (Scalar::String, Value::Str(s)) = (scalar, value) {
            let start = self.text.len();
            self.text.push_str(s);
            return Ok(Slot::Str(SlotRange {
                start: start as u32,
                len: s.len() as u32,
            }));
        }
        Ok(slot)
    }

    fn type_name(&self, ty: Type) -> String {
        ty.name(|id| {
            self.inner
                .program
                .types
                .get(id.0 as usize)
                .map(|t| t.name.as_str())
        })
    }
}

/// A value a request holds, read back ([`Request::given`]): enum variants by
/// name, durations in seconds, sets sorted and without duplicates. Its
/// `Display` writes it as the policy language does: strings quoted,
/// variants bare, durations with units (`1h30m`), sets in brackets.
///
/// ```
/// use grant_engine::{Given, Value};
/// # let engine = grant_engine::Engine::from_text("p.grant", "attr age: duration\nallow tool \"t\" when age < 1h ttl 1m")?;
/// let age = engine.attr("age").expect("declared");
/// let mut request = engine.request();
/// request.set(age, Value::Str("90m"));
/// assert_eq!(request.get(age), Some(Given::Duration(5400)));
/// assert_eq!(request.get(age).map(|v| v.to_string()).as_deref(), Some("1h30m"));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Given<'r> {
    /// A `bool`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `string`.
    Str(&'r str),
    /// An enum variant, by name.
    Variant(&'r str),
    /// A `duration`, in seconds.
    Duration(u64),
    /// A `set`.
    Set(GivenSet<'r>),
}

/// The elements of a set a request holds ([`Given::Set`]), sorted, without
/// duplicates.
///
/// ```
/// use grant_engine::{Given, Value};
/// # let engine = grant_engine::Engine::from_text("p.grant", "attr labels: set<string>\nallow tool \"t\" when \"pci\" in labels ttl 1m")?;
/// let labels = engine.attr("labels").expect("declared");
/// let mut request = engine.request();
/// request.set(labels, Value::Set(&[Value::Str("sox"), Value::Str("pci"), Value::Str("sox")]));
/// let Some(Given::Set(set)) = request.get(labels) else { panic!("a set") };
/// assert_eq!(set.len(), 2);
/// assert_eq!(set.iter().collect::<Vec<_>>(), [Given::Str("pci"), Given::Str("sox")]);
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Copy)]
pub struct GivenSet<'r> {
    request: &'r Request,
    element: Scalar,
    items: &'r [Slot],
}

impl<'r> GivenSet<'r> {
    /// How many elements the set has.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr labels: set<string>\nallow tool \"t\" when \"pci\" in labels ttl 1m")?;
    /// # let labels = engine.attr("labels").expect("declared");
    /// # let mut request = engine.request();
    /// # request.set(labels, grant_engine::Value::Set(&[grant_engine::Value::Str("pci")]));
    /// let Some(grant_engine::Given::Set(set)) = request.get(labels) else { panic!("a set") };
    /// assert_eq!(set.len(), 1);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr labels: set<string>\nallow tool \"t\" when \"pci\" in labels ttl 1m")?;
    /// # let labels = engine.attr("labels").expect("declared");
    /// # let mut request = engine.request();
    /// # request.set(labels, grant_engine::Value::Set(&[grant_engine::Value::Str("pci")]));
    /// let Some(grant_engine::Given::Set(set)) = request.get(labels) else { panic!("a set") };
    /// assert!(!set.is_empty());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The elements, in order.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr labels: set<string>\nallow tool \"t\" when \"pci\" in labels ttl 1m")?;
    /// # let labels = engine.attr("labels").expect("declared");
    /// # let mut request = engine.request();
    /// # request.set(labels, grant_engine::Value::Set(&[grant_engine::Value::Str("pci")]));
    /// let Some(grant_engine::Given::Set(set)) = request.get(labels) else { panic!("a set") };
    /// assert_eq!(set.iter().next(), Some(grant_engine::Given::Str("pci")));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Given<'r>> + 'r {
        let (request, element) = (self.request, self.element);
        self.items
            .iter()
            .filter_map(move |item| request.read_back(element, *item))
    }
}

impl PartialEq for GivenSet<'_> {
    fn eq(&self, other: &GivenSet<'_>) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for GivenSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for Given<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Given::Bool(b) => write!(f, "{b}"),
            Given::Int(i) => write!(f, "{i}"),
            // JSON's escapes, which the policy language's strings share for
            // quotes, backslashes and control characters.
            Given::Str(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
            Given::Variant(name) => f.write_str(name),
            Given::Duration(seconds) => f.write_str(&format_duration(*seconds)),
            Given::Set(set) => {
                f.write_str("[")?;
                for (i, item) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn given_twice(path: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::GivenTwice,
        format!(
            "attribute `{}` is given twice",
            excerpt(path, EXCERPT_CHARS)
        ),
    )
}

pub(crate) fn too_many_elements(
    path: &str,
    elements: usize,
    limits: RequestLimits,
) -> RequestError {
    RequestError::new(
        RequestErrorKind::TooLarge,
        format!(
            "attribute `{}` has a set of {elements} elements, over the limit of {}",
            excerpt(path, EXCERPT_CHARS),
            limits.set_elements
        ),
    )
}

fn mismatch(path: &str, expected: &str, found: &Value<'_>) -> RequestError {
    RequestError::new(
        RequestErrorKind::Value,
        format!(
            "attribute `{}` expects `{expected}`, found {}",
            excerpt(path, EXCERPT_CHARS),
            found.describe()
        ),
    )
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
