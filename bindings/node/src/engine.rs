//! The engine as JavaScript sees it: load a policy, decide requests.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use grant_engine::{
    Engine, Explainer, PolicyError, Request, RequestError, RequestErrorKind, Verdict,
};
use grant_syntax::chars::excerpt;
use napi::JsString;
use napi::bindgen_prelude::{Either, Env, Object, Result, Unknown};
use napi_derive::napi;
use serde_json::{Value as Json, json};

use crate::request::{Scratch, read, read_encoded};

/// A loaded policy. The JS object owns it; decisions go through
/// [`decide`], a plain function that names the engine by its id: a class
/// method call costs napi-rs an unwrap and a borrow registration (a global
/// lock) each time, several times the cost of the call itself.
#[napi]
pub struct NativeEngine {
    pub(crate) engine: Engine,
    id: u32,
}

/// What deciding with one engine reuses: its request, its verdict, the
/// reader's buffers. Decisions are made on the JS thread only.
struct Decider {
    engine: Engine,
    scratch: RefCell<(Request, Verdict, Scratch)>,
    /// Which [`decide_fast`] call (index.js numbers them) the scratch's
    /// verdict is the decision of; 0 when none: a decision read right after
    /// its decide is serialized from it, not decided again.
    last: Cell<f64>,
}

thread_local! {
    /// The engines of this JS thread, by id; an engine's slot is emptied
    /// when its JS object is collected.
    static DECIDERS: RefCell<Vec<Option<Rc<Decider>>>> = const { RefCell::new(Vec::new()) };
}

impl NativeEngine {
    pub(crate) fn new(engine: Engine) -> NativeEngine {
        let decider = Rc::new(Decider {
            scratch: RefCell::new((engine.request(), engine.verdict(), Scratch::default())),
            engine: engine.clone(),
            last: Cell::new(0.0),
        });
        let id = DECIDERS.with_borrow_mut(|deciders| {
            let free = deciders.iter().position(Option::is_none);
            let at = free.unwrap_or(deciders.len());
            if free.is_none() {
                deciders.push(None);
            }
            if let Some(slot) = deciders.get_mut(at) {
                *slot = Some(decider);
            }
            at as u32
        });
        NativeEngine { engine, id }
    }
}

impl Drop for NativeEngine {
    fn drop(&mut self) {
        DECIDERS.with_borrow_mut(|deciders| {
            if let Some(slot) = deciders.get_mut(self.id as usize) {
                *slot = None;
            }
        });
    }
}

/// Why a policy did not load, for the JS layer to throw as its error class.
fn load_failure(path: Option<&str>, error: &PolicyError) -> Json {
    match error {
        PolicyError::Invalid {
            sources,
            diagnostics,
        } => {
            let diagnostics: Vec<Json> = diagnostics
                .iter()
                .map(|d| {
                    let span = d.primary.span;
                    let file = sources.get(span.file);
                    let (line, column) = file.map_or((0, 0), |f| f.line_col(span.start));
                    json!({
                        "code": d.code.as_str(),
                        "severity": d.severity.as_str(),
                        "message": d.message,
                        "file": file.map(|f| f.display.clone()),
                        "line": line,
                        "column": column,
                    })
                })
                .collect();
            json!({"kind": "policy", "message": error.report(false), "diagnostics": diagnostics, "path": path})
        }
        _ => {
            json!({"kind": "load", "message": error.report(false), "diagnostics": [], "path": path})
        }
    }
}

/// Loads a policy file or directory: the engine, or why not.
#[napi(
    ts_return_type = "NativeEngine | { kind: 'enoent' | 'load' | 'policy'; message: string; path: string | null; diagnostics?: Array<{ code: string; severity: 'error' | 'warning'; message: string; file: string | null; line: number; column: number }> }"
)]
pub fn load_engine(path: String) -> Either<NativeEngine, Json> {
    // The engine's load error keeps only a message; a missing path is told
    // apart here, so that JS sees the usual ENOENT.
    if let Err(error) = std::fs::metadata(Path::new(&path))
        && error.kind() == std::io::ErrorKind::NotFound
    {
        return Either::B(json!({
            "kind": "enoent",
            "message": format!("ENOENT: no such file or directory, load policy '{path}'"),
            "path": path,
        }));
    }
    match Engine::from_path(&path) {
        Ok(engine) => Either::A(NativeEngine::new(engine)),
        Err(error) => Either::B(load_failure(Some(&path), &error)),
    }
}

/// Builds an engine from the text of a one-file policy.
#[napi(
    ts_return_type = "NativeEngine | { kind: 'enoent' | 'load' | 'policy'; message: string; path: string | null; diagnostics?: Array<{ code: string; severity: 'error' | 'warning'; message: string; file: string | null; line: number; column: number }> }"
)]
pub fn engine_from_text(name: String, text: String) -> Either<NativeEngine, Json> {
    match Engine::from_text(&name, &text) {
        Ok(engine) => Either::A(NativeEngine::new(engine)),
        Err(error) => Either::B(load_failure(None, &error)),
    }
}

#[napi]
impl NativeEngine {
    #[napi(getter)]
    pub fn policy_hash(&self) -> String {
        self.engine.policy_hash().to_string()
    }

    /// The declared attribute paths, sorted.
    #[napi]
    pub fn attr_paths(&self) -> Vec<String> {
        self.engine.attr_paths().map(str::to_string).collect()
    }

    /// The id [`decide`] and [`explain`] take.
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }
}

fn decider(id: u32) -> Result<Rc<Decider>> {
    DECIDERS
        .with_borrow(|deciders| deciders.get(id as usize).cloned().flatten())
        .ok_or_else(|| napi::Error::from_reason(format!("no engine {id}: it was collected")))
}

/// Decides with engine `engine` (its id); the decision as the JSON
/// `grant eval` prints.
#[napi]
pub fn decide(
    env: Env,
    engine: u32,
    tool: String,
    attrs: Option<Unknown<'_>>,
    ttl: Option<Unknown<'_>>,
    unknown_field: Option<String>,
) -> Result<String> {
    let decider = decider(engine)?;
    let extra = unknown_field.as_deref();
    // A decide re-entered from a getter the reader ran would find the
    // scratch taken: it gets its own.
    let Ok(mut scratch) = decider.scratch.try_borrow_mut() else {
        return decider.decide_with(&env, &mut decider.fresh(), &tool, attrs, ttl, extra);
    };
    decider.last.set(0.0);
    decider.decide_with(&env, &mut scratch, &tool, attrs, ttl, extra)
}

/// What [`decide_fast`] answers for a deny.
const DENY: f64 = -1.0;
/// ... for an allow whose ttl the JS layer reads from the whole decision.
const ALLOW: f64 = -2.0;
/// ... for a request to read the slow way ([`decide`]).
const SLOW: f64 = -3.0;

/// Decides the encoding index.js makes of a request of plain values (see
/// `read_encoded`), in one crossing and without building the decision: a
/// deny is -1, an allow its ttl in seconds (-2 past 2^53), and -3 asks
/// for the request the slow way. The whole decision is
/// [`decision_of_encoded`]'s, when the caller reads it.
#[napi]
pub fn decide_fast(env: Env, engine: u32, encoded: JsString<'_>, call: f64) -> Result<f64> {
    let decider = decider(engine)?;
    let encoded = text_of(encoded)?;
    let mut fresh;
    let mut borrowed;
    let in_scratch = match decider.scratch.try_borrow_mut() {
        Ok(scratch) => {
            borrowed = Some(scratch);
            decider.last.set(0.0);
            true
        }
        Err(_) => {
            borrowed = None;
            false
        }
    };
    let (request, verdict, scratch) = match borrowed.as_deref_mut() {
        Some(scratch) => scratch,
        None => {
            fresh = decider.fresh();
            &mut fresh
        }
    };
    if !read_encoded(&env, &decider.engine, scratch, &encoded, None, request)? {
        return Ok(SLOW);
    }
    decider.engine.decide_into(request, verdict);
    if in_scratch {
        decider.last.set(call);
    }
    Ok(if !verdict.is_allow() {
        DENY
    } else {
        match verdict.ttl_seconds() {
            Some(ttl) if ttl <= 1 << 53 => ttl as f64,
            _ => ALLOW,
        }
    })
}

/// A JS string as Rust text, read as UTF-16 (a copy, where reading it as
/// UTF-8 walks it twice): an ASCII string byte for byte, another as
/// Node-API would write it in UTF-8 (an unpaired surrogate is U+FFFD).
fn text_of(string: JsString<'_>) -> Result<String> {
    let utf16 = string.into_utf16()?;
    // The copy ends with a NUL.
    let units = utf16.as_slice();
    let units = units.split_last().map_or(units, |(_, text)| text);
    if units.iter().all(|&unit| unit < 0x80) {
        let bytes: Vec<u8> = units.iter().map(|&unit| unit as u8).collect();
        String::from_utf8(bytes).map_err(|e| napi::Error::from_reason(e.to_string()))
    } else {
        Ok(String::from_utf16_lossy(units))
    }
}

/// The decision of an encoded request, as the JSON `grant eval` prints:
/// for a request whose encoding defers values to `extras` (read now, as
/// the slow path reads them), and for a decision of [`decide_fast`] when a
/// field is read (the request is decided again: the engine answers the
/// same request the same way, so that a decision holds only its encoding
/// until then). `null` asks for the request the slow way.
#[napi]
pub fn decision_of_encoded(
    env: Env,
    engine: u32,
    encoded: JsString<'_>,
    extras: Option<Object<'_>>,
    call: Option<f64>,
) -> Result<Option<String>> {
    let decider = decider(engine)?;
    let encoded = text_of(encoded)?;
    // A decide re-entered from the caller's code (a deferred value's
    // getter) finds the scratch taken: it gets its own.
    let mut fresh;
    let mut borrowed;
    let (request, verdict, scratch) = match decider.scratch.try_borrow_mut() {
        Ok(scratch) => {
            borrowed = scratch;
            let last = decider.last.replace(0.0);
            if call.is_some_and(|call| call == last && call > 0.0) {
                // The verdict of this very encoding, decided last.
                decider.last.set(last);
                return to_json(&borrowed.1).map(Some);
            }
            &mut *borrowed
        }
        Err(_) => {
            fresh = decider.fresh();
            &mut fresh
        }
    };
    let engine = &decider.engine;
    if !read_encoded(&env, engine, scratch, &encoded, extras.as_ref(), request)? {
        return Ok(None);
    }
    engine.decide_into(request, verdict);
    to_json(verdict).map(Some)
}

fn to_json(verdict: &Verdict) -> Result<String> {
    serde_json::to_string(&verdict.to_decision())
        .map_err(|e| napi::Error::from_reason(format!("the decision did not serialize: {e}")))
}

/// The deny of a request that could not be read: reading it threw (a
/// getter or a Proxy of the caller's, a Set whose iterator throws). index.js
/// asks for it when `decide` throws, so that a decision is still a deny
/// with the error, never an exception.
#[napi]
pub fn refused(engine: u32, tool: String, message: String) -> Result<String> {
    let decider = decider(engine)?;
    let mut request = decider.engine.request();
    request.set_tool(&tool);
    request.refuse(RequestError::new(RequestErrorKind::Malformed, message));
    serde_json::to_string(&decider.engine.decide(&request))
        .map_err(|e| napi::Error::from_reason(format!("the decision did not serialize: {e}")))
}

/// Explains a request to engine `engine`: its decision rule by rule, as
/// text.
#[napi]
pub fn explain(
    env: Env,
    engine: u32,
    tool: String,
    attrs: Option<Unknown<'_>>,
    ttl: Option<Unknown<'_>>,
    unknown_field: Option<String>,
) -> Result<String> {
    let decider = decider(engine)?;
    let engine = &decider.engine;
    let mut request = engine.request();
    read(
        &env,
        engine,
        &mut Scratch::default(),
        &tool,
        attrs,
        ttl,
        &mut request,
    )?;
    refuse_unknown(&mut request, unknown_field.as_deref());
    Ok(Explainer::of(engine, false).render(None, &engine.explain(&request)))
}

impl Decider {
    /// A request, verdict and reader's buffers of its own, for a decision
    /// that cannot use the engine's.
    fn fresh(&self) -> (Request, Verdict, Scratch) {
        (
            self.engine.request(),
            self.engine.verdict(),
            Scratch::default(),
        )
    }

    fn decide_with(
        &self,
        env: &Env,
        (request, verdict, scratch): &mut (Request, Verdict, Scratch),
        tool: &str,
        attrs: Option<Unknown<'_>>,
        ttl: Option<Unknown<'_>>,
        unknown_field: Option<&str>,
    ) -> Result<String> {
        read(env, &self.engine, scratch, tool, attrs, ttl, request)?;
        refuse_unknown(request, unknown_field);
        self.engine.decide_into(request, verdict);
        serde_json::to_string(&verdict.to_decision())
            .map_err(|e| napi::Error::from_reason(format!("the decision did not serialize: {e}")))
    }
}

/// A request object with a key other than `tool`, `attrs` and `ttl` is
/// malformed, as the same request in JSON is.
fn refuse_unknown(request: &mut Request, field: Option<&str>) {
    if let Some(field) = field {
        request.refuse(RequestError::new(
            RequestErrorKind::Malformed,
            format!(
                "unknown request field `{}` (a request has `tool`, `attrs` and `ttl`)",
                excerpt(field, 64)
            ),
        ));
    }
}

/// The baseline of the benchmark: a native call that takes the request
/// object and does nothing with it.
#[napi(js_name = "__noop")]
pub fn noop(_request: Object<'_>) {}
