//! `grant.Engine` and `grant.Decision`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use grant_engine::{Decision, Engine, Explainer, PolicyError, Request, Verdict, format_duration};
use pyo3::exceptions::{PyFileNotFoundError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString};

use crate::convert::{Shape, read_request, to_python};
use crate::errors;

/// A loaded, compiled policy. Safe to share across threads: deciding holds
/// no lock, and releases the GIL.
#[pyclass(frozen, module = "grant._native", name = "Engine")]
pub struct PyEngine {
    pub(crate) engine: Engine,
    pub(crate) shape: Arc<Shape>,
}

impl PyEngine {
    pub(crate) fn new(engine: Engine) -> PyEngine {
        let shape = Arc::new(Shape::of(&engine));
        PyEngine { engine, shape }
    }
}

/// The `grant.PolicyError` of a policy that failed to load: the rendered
/// report as its message, and `.diagnostics`.
fn policy_error(py: Python<'_>, error: &PolicyError) -> PyErr {
    let err = errors::PolicyError::new_err(error.report(false).trim_end().to_string());
    let diagnostics = PyList::empty(py);
    if let PolicyError::Invalid {
        sources,
        diagnostics: found,
    } = error
    {
        for diagnostic in found {
            let span = diagnostic.primary.span;
            let file = sources.get(span.file);
            let (line, column) = file.map_or((0, 0), |f| f.line_col(span.start));
            let entry = PyDict::new(py);
            let filled = (|| -> PyResult<()> {
                entry.set_item("code", diagnostic.code.as_str())?;
                entry.set_item("severity", diagnostic.severity.as_str())?;
                entry.set_item("message", &diagnostic.message)?;
                entry.set_item("file", file.map(|f| f.display.as_str()))?;
                entry.set_item("line", line)?;
                entry.set_item("column", column)?;
                entry.set_item("help", diagnostic.help.as_deref())?;
                diagnostics.append(entry)
            })();
            if let Err(e) = filled {
                return e;
            }
        }
    }
    if let Err(e) = err.value(py).setattr("diagnostics", diagnostics) {
        return e;
    }
    err
}

#[pymethods]
impl PyEngine {
    /// Loads a policy: a `.grant` file, or a directory of them.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyEngine> {
        if !path.exists() {
            return Err(PyFileNotFoundError::new_err((
                2,
                format!("no policy at `{}`", path.display()),
                path.display().to_string(),
            )));
        }
        let loaded = py.detach(|| Engine::from_path(&path));
        loaded.map(PyEngine::new).map_err(|e| policy_error(py, &e))
    }

    /// Builds an engine from the text of a one-file policy named `name`.
    #[staticmethod]
    fn from_text(py: Python<'_>, name: &str, text: &str) -> PyResult<PyEngine> {
        Engine::from_text(name, text)
            .map(PyEngine::new)
            .map_err(|e| policy_error(py, &e))
    }

    #[getter]
    fn policy_hash(&self) -> &str {
        self.engine.policy_hash()
    }

    /// Every declared attribute's path, sorted.
    fn attr_paths(&self) -> Vec<String> {
        self.engine.attr_paths().map(str::to_string).collect()
    }

    /// Decides a call of `tool` with `attrs` (nested or dotted keys) and
    /// the asked `ttl`. Bad input denies, with errors; only arguments of
    /// the wrong type raise `TypeError`.
    #[pyo3(signature = (tool, attrs=None, ttl=None))]
    fn decide(
        &self,
        py: Python<'_>,
        tool: &Bound<'_, PyAny>,
        attrs: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let tool = tool
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("`tool` must be a str"))?
            .to_cow()?;
        let attrs = attrs_dict(attrs)?;
        let mut request = self.engine.request();
        read_request(
            &self.engine,
            &self.shape,
            &mut request,
            &tool,
            attrs.as_ref(),
            ttl,
        );
        let mut verdict = self.engine.verdict();
        let engine = &self.engine;
        // Deciding touches no Python object.
        py.detach(|| engine.decide_into(&request, &mut verdict));
        Ok(PyDecision::decided(self.engine.clone(), request, verdict))
    }

    /// Decides a request given as JSON text, by the engine's own JSON
    /// reader: the reference the binding's tests hold `decide` to.
    fn decide_json(&self, py: Python<'_>, json: &str) -> PyDecision {
        let mut request = self.engine.request();
        let engine = &self.engine;
        let mut verdict = engine.verdict();
        py.detach(|| {
            engine.read_json(json, &mut request);
            engine.decide_into(&request, &mut verdict);
        });
        PyDecision::decided(self.engine.clone(), request, verdict)
    }

    fn __repr__(&self) -> String {
        format!("Engine(policy_hash={:?})", self.engine.policy_hash())
    }
}

/// `attrs` as a dict: `None`, a dict, or another mapping; else `TypeError`.
pub(crate) fn attrs_dict<'py>(
    attrs: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(attrs) = attrs.filter(|a| !a.is_none()) else {
        return Ok(None);
    };
    if let Ok(dict) = attrs.cast::<PyDict>() {
        return Ok(Some(dict.clone()));
    }
    if let Ok(mapping) = attrs.cast::<PyMapping>() {
        let dict = PyDict::new(attrs.py());
        dict.update(mapping)?;
        return Ok(Some(dict));
    }
    Err(PyTypeError::new_err(format!(
        "`attrs` must be a mapping (a dict), not `{}`",
        attrs.get_type().name()?
    )))
}

/// What a decision was made from, kept for `explain()`.
struct Decided {
    engine: Engine,
    request: Request,
    verdict: Verdict,
    /// The full decision, built on first access.
    full: OnceLock<Decision>,
}

enum Source {
    Decided(Box<Decided>),
    /// A decision made elsewhere (the ledger's).
    Given(Box<Decision>),
}

/// A decision: `allowed`, `effect`, `ttl_seconds`, the deciding `rules`,
/// `reasons`, `missing` attributes, request `errors`, `obligations`,
/// `policy_hash`. Fields are built on first access.
#[pyclass(frozen, module = "grant._native", name = "Decision")]
pub struct PyDecision {
    allowed: bool,
    ttl_seconds: Option<u64>,
    decision_id: Option<String>,
    source: Source,
}

impl PyDecision {
    fn decided(engine: Engine, request: Request, verdict: Verdict) -> PyDecision {
        PyDecision {
            allowed: verdict.is_allow(),
            ttl_seconds: verdict.ttl_seconds(),
            decision_id: None,
            source: Source::Decided(Box::new(Decided {
                engine,
                request,
                verdict,
                full: OnceLock::new(),
            })),
        }
    }

    /// A decision made elsewhere (the ledger's), with its id.
    pub(crate) fn given(decision: Decision, decision_id: Option<String>) -> PyDecision {
        PyDecision {
            allowed: decision.is_allow(),
            ttl_seconds: decision.ttl_seconds,
            decision_id,
            source: Source::Given(Box::new(decision)),
        }
    }

    pub(crate) fn full(&self) -> &Decision {
        match &self.source {
            Source::Decided(decided) => decided.full.get_or_init(|| decided.verdict.to_decision()),
            Source::Given(decision) => decision,
        }
    }
}

#[pymethods]
impl PyDecision {
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }

    #[getter]
    fn effect(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    #[getter]
    fn ttl_seconds(&self) -> Option<u64> {
        self.ttl_seconds
    }

    /// The ledger's id of this decision; `None` for `Engine.decide`.
    #[getter]
    fn decision_id(&self) -> Option<&str> {
        self.decision_id.as_deref()
    }

    #[getter]
    fn rules<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.full().rules)
    }

    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.full().reasons.clone()
    }

    #[getter]
    fn missing(&self) -> Vec<String> {
        self.full().missing.clone()
    }

    #[getter]
    fn errors(&self) -> Vec<String> {
        self.full().errors.clone()
    }

    /// `None` on deny; else a dict with `uses` (None when unlimited) and
    /// `approvals` (groups).
    #[getter]
    fn obligations<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(obligations) = &self.full().obligations else {
            return Ok(None);
        };
        let dict = PyDict::new(py);
        dict.set_item("uses", obligations.uses)?;
        dict.set_item("approvals", obligations.approvals.clone())?;
        Ok(Some(dict))
    }

    #[getter]
    fn policy_hash(&self) -> &str {
        &self.full().policy_hash
    }

    /// The decision as `grant eval` prints it (the spec's decision JSON).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, self.full())
    }

    /// How the decision came out, rule by rule, as text for people.
    fn explain(&self, py: Python<'_>) -> String {
        match &self.source {
            Source::Decided(decided) => py.detach(|| {
                let explanation = decided.engine.explain(&decided.request);
                Explainer::of(&decided.engine, false).render(None, &explanation)
            }),
            Source::Given(decision) => render_decision(decision, self.decision_id.as_deref()),
        }
    }

    /// Refused: `if decision:` reading as "allowed" (or, by Python's
    /// default, always true) is the kind of slip a policy check must not
    /// allow. Test `decision.allowed`.
    fn __bool__(&self) -> PyResult<bool> {
        Err(PyTypeError::new_err(
            "a Decision has no truth value: test `decision.allowed`",
        ))
    }

    fn __repr__(&self) -> String {
        let decision = self.full();
        let mut text = format!("Decision(effect={:?}", self.effect());
        if let Some(ttl) = decision.ttl_seconds {
            let _ = write!(text, ", ttl_seconds={ttl}");
        }
        let rules: Vec<&str> = decision.rules.iter().map(|r| r.id.as_str()).collect();
        if !rules.is_empty() {
            let _ = write!(text, ", rules={rules:?}");
        }
        if !decision.errors.is_empty() {
            let _ = write!(text, ", errors={:?}", decision.errors);
        } else if !decision.missing.is_empty() {
            let _ = write!(text, ", missing={:?}", decision.missing);
        }
        text.push(')');
        text
    }
}

/// The decision's summary lines: effect, ttl, obligations, reasons, errors.
fn render_decision(decision: &Decision, decision_id: Option<&str>) -> String {
    let mut out = String::new();
    let effect = if decision.is_allow() { "ALLOW" } else { "DENY" };
    let _ = write!(out, "{effect}");
    if let Some(id) = decision_id {
        let _ = write!(out, " ({id})");
    }
    out.push('\n');
    if let Some(ttl) = decision.ttl_seconds {
        let _ = writeln!(out, "ttl       {}", format_duration(ttl));
    }
    if let Some(obligations) = &decision.obligations {
        if let Some(uses) = obligations.uses {
            let _ = writeln!(out, "uses      {uses}");
        }
        if !obligations.approvals.is_empty() {
            let _ = writeln!(out, "approval  {}", obligations.approvals.join(", "));
        }
    }
    for reason in &decision.reasons {
        let _ = writeln!(out, "reason    {reason}");
    }
    for error in &decision.errors {
        let _ = writeln!(out, "error     {error}");
    }
    if !decision.missing.is_empty() {
        let _ = writeln!(out, "missing   {}", decision.missing.join(", "));
    }
    let _ = writeln!(out, "policy    {}", decision.policy_hash);
    out
}
