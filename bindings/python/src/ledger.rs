//! `grant._native.Ledger` and `grant._native.Guard`: the ledger's
//! operations, each run with the GIL released. The Python package wraps
//! them (python/grant/__init__.py) into `grant.Ledger` and `grant.guard`,
//! which raise `Denied` where these return a deny.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use grant_engine::{Engine, RequestError};
use grant_ledger::api::{
    Approve, BindCredential, OpenTask, Renew, RequestGrant, Revoke, RevokeTarget, UseGrant,
};
use grant_ledger::{Admission, Guard, Ledger, LedgerError, StoreError, StoreErrorKind, Timestamp};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{map_to_json, to_json, to_python};
use crate::engine::{PyDecision, PyEngine, attrs_dict};
use crate::errors;

/// A ledger error as the typed Python exception.
pub(crate) fn ledger_error(error: LedgerError) -> PyErr {
    let message = error.to_string();
    match error {
        LedgerError::NotFound { .. } => errors::NotFound::new_err(message),
        LedgerError::Conflict(_) => errors::Conflict::new_err(message),
        LedgerError::Forbidden(_) => errors::Forbidden::new_err(message),
        LedgerError::Invalid(_) => errors::InvalidInput::new_err(message),
        LedgerError::Store(store) => store_error(store),
        _ => errors::LedgerError::new_err(message),
    }
}

fn store_error(error: StoreError) -> PyErr {
    match error.kind {
        StoreErrorKind::BadUrl => errors::InvalidInput::new_err(error.to_string()),
        _ => errors::StoreUnavailable::new_err(format!("ledger store unavailable: {error}")),
    }
}

fn timestamp(text: Option<&str>, what: &str) -> PyResult<Option<Timestamp>> {
    text.map(|t| {
        Timestamp::parse(t).map_err(|e| {
            errors::InvalidInput::new_err(format!("`{what}` is not an RFC 3339 time: {e}"))
        })
    })
    .transpose()
}

/// The deny of a request refused before it reached the ledger (a value
/// JSON cannot hold), as the engine would decide it.
fn refused(engine: &Engine, tool: &str, error: RequestError) -> PyDecision {
    let mut request = engine.request();
    request.set_tool(tool).refuse(error);
    PyDecision::given(engine.decide(&request), None)
}

/// `attrs` as the ledger's JSON object; the deny when it cannot be one.
fn json_attrs(
    engine: &Engine,
    tool: &str,
    attrs: Option<&Bound<'_, PyAny>>,
) -> PyResult<Result<serde_json::Map<String, serde_json::Value>, PyDecision>> {
    let Some(attrs) = attrs_dict(attrs)? else {
        return Ok(Ok(serde_json::Map::new()));
    };
    Ok(map_to_json(&attrs, &mut String::new(), 2).map_err(|e| refused(engine, tool, e)))
}

/// The asked ttl as JSON: seconds, a duration string, or what the engine
/// will refuse.
fn json_ttl(
    engine: &Engine,
    tool: &str,
    ttl: Option<&Bound<'_, PyAny>>,
) -> Result<Option<serde_json::Value>, PyDecision> {
    let Some(ttl) = ttl.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    to_json(ttl, &mut "ttl".to_string(), 2)
        .map(Some)
        .map_err(|e| refused(engine, tool, e))
}

/// A grant answer as `(grant dict or None, Decision)`.
fn grant_answer<'py>(
    py: Python<'py>,
    answer: grant_ledger::GrantAnswer,
) -> PyResult<(Bound<'py, PyAny>, PyDecision)> {
    let grant = match &answer.grant {
        Some(grant) => to_python(py, grant)?,
        None => py.None().into_bound(py),
    };
    let decision = PyDecision::given(answer.decision.decision, Some(answer.decision.decision_id));
    Ok((grant, decision))
}

/// The ledger's handle: shared by every thread; `close()` drops it.
#[pyclass(frozen, module = "grant._native", name = "Ledger")]
pub struct PyLedger {
    ledger: RwLock<Option<Ledger>>,
    engine: Engine,
    actor: String,
}

impl PyLedger {
    pub(crate) fn ledger(&self) -> PyResult<Ledger> {
        let held = self
            .ledger
            .read()
            .map_err(|_| errors::LedgerError::new_err("the ledger's lock is poisoned"))?;
        held.clone().ok_or_else(|| {
            errors::LedgerClosed::new_err(
                "the ledger is closed: open another with grant.Ledger.open",
            )
        })
    }
}

impl PyLedger {
    /// Approves or rejects (`settle`) a pending grant for one group.
    fn settle_approval<'py>(
        &self,
        py: Python<'py>,
        input: Approve,
        settle: fn(&Ledger, &str, Approve) -> Result<grant_ledger::Grant, LedgerError>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let grant = py
            .detach(|| settle(&ledger, &self.actor, input))
            .map_err(ledger_error)?;
        to_python(py, &grant)
    }
}

#[pymethods]
impl PyLedger {
    #[staticmethod]
    #[pyo3(signature = (store_url, engine, actor = "python"))]
    fn open(
        py: Python<'_>,
        store_url: &str,
        engine: &Bound<'_, PyEngine>,
        actor: &str,
    ) -> PyResult<PyLedger> {
        let engine = engine.get().engine.clone();
        let opened = py.detach(|| -> Result<Ledger, PyErr> {
            let store = grant_ledger::store::open(store_url).map_err(store_error)?;
            Ledger::open(store, engine.clone()).map_err(ledger_error)
        })?;
        Ok(PyLedger {
            ledger: RwLock::new(Some(opened)),
            engine,
            actor: actor.to_string(),
        })
    }

    #[getter]
    fn actor(&self) -> &str {
        &self.actor
    }

    #[getter]
    fn closed(&self) -> bool {
        self.ledger.read().map_or(true, |held| held.is_none())
    }

    /// Closes the ledger: later calls raise `LedgerClosed`. Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self.ledger.write().ok().and_then(|mut held| held.take());
        // Dropping may wait for the store (a commit in flight).
        py.detach(move || drop(taken));
    }

    #[pyo3(signature = (agent, task_id = None, parent_task_id = None, deadline = None, labels = None))]
    fn open_task<'py>(
        &self,
        py: Python<'py>,
        agent: String,
        task_id: Option<String>,
        parent_task_id: Option<String>,
        deadline: Option<&str>,
        labels: Option<BTreeMap<String, String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let open = OpenTask {
            agent,
            task_id,
            parent_task_id,
            deadline: timestamp(deadline, "deadline")?,
            labels: labels.unwrap_or_default(),
        };
        let task = py
            .detach(|| ledger.open_task(&self.actor, open))
            .map_err(ledger_error)?;
        to_python(py, &task)
    }

    /// `(grant or None, decision)`.
    #[pyo3(signature = (task_id, agent, tool, attrs = None, ttl = None))]
    fn request_grant<'py>(
        &self,
        py: Python<'py>,
        task_id: String,
        agent: String,
        tool: String,
        attrs: Option<&Bound<'py, PyAny>>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, PyDecision)> {
        let ledger = self.ledger()?;
        let attrs = match json_attrs(&self.engine, &tool, attrs)? {
            Ok(attrs) => attrs,
            Err(decision) => return Ok((py.None().into_bound(py), decision)),
        };
        let ttl = match json_ttl(&self.engine, &tool, ttl) {
            Ok(ttl) => ttl,
            Err(decision) => return Ok((py.None().into_bound(py), decision)),
        };
        let request = RequestGrant {
            task_id,
            agent,
            tool,
            attrs,
            ttl,
        };
        let answer = py
            .detach(|| ledger.request_grant(&self.actor, request))
            .map_err(ledger_error)?;
        grant_answer(py, answer)
    }

    /// `{ok, uses_left, expires_at, reason, decision}`.
    #[pyo3(signature = (grant_id, agent, tool, attrs = None))]
    fn use_grant<'py>(
        &self,
        py: Python<'py>,
        grant_id: String,
        agent: String,
        tool: String,
        attrs: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ledger = self.ledger()?;
        let result = PyDict::new(py);
        let attrs = match attrs.filter(|a| !a.is_none()) {
            None => None,
            Some(attrs) => match json_attrs(&self.engine, &tool, Some(attrs))? {
                Ok(attrs) => Some(attrs),
                Err(decision) => {
                    let reason = decision.full().errors.join("; ");
                    result.set_item("ok", false)?;
                    result.set_item("uses_left", py.None())?;
                    result.set_item("expires_at", py.None())?;
                    result.set_item("reason", reason)?;
                    result.set_item("decision", decision)?;
                    return Ok(result);
                }
            },
        };
        let use_ = UseGrant {
            grant_id,
            agent,
            tool,
            attrs,
        };
        let answer = py
            .detach(|| ledger.use_grant(&self.actor, use_))
            .map_err(ledger_error)?;
        result.set_item("ok", answer.ok)?;
        result.set_item("uses_left", answer.uses_left)?;
        result.set_item("expires_at", answer.expires_at.map(|t| t.to_string()))?;
        result.set_item("reason", answer.reason)?;
        let decision = answer
            .decision
            .map(|d| PyDecision::given(d.decision, Some(d.decision_id)));
        result.set_item("decision", decision)?;
        Ok(result)
    }

    /// `(grant or None, decision)`.
    #[pyo3(signature = (grant_id, agent, attrs = None, ttl = None))]
    fn renew<'py>(
        &self,
        py: Python<'py>,
        grant_id: String,
        agent: String,
        attrs: Option<&Bound<'py, PyAny>>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, PyDecision)> {
        let ledger = self.ledger()?;
        let attrs = match json_attrs(&self.engine, "", attrs)? {
            Ok(attrs) => attrs,
            Err(decision) => return Ok((py.None().into_bound(py), decision)),
        };
        let ttl = match json_ttl(&self.engine, "", ttl) {
            Ok(ttl) => ttl,
            Err(decision) => return Ok((py.None().into_bound(py), decision)),
        };
        let renew = Renew {
            grant_id,
            agent,
            attrs,
            ttl,
        };
        let answer = py
            .detach(|| ledger.renew(&self.actor, renew))
            .map_err(ledger_error)?;
        grant_answer(py, answer)
    }

    #[pyo3(signature = (grant_id, approver, group, reason = None))]
    fn approve<'py>(
        &self,
        py: Python<'py>,
        grant_id: String,
        approver: String,
        group: String,
        reason: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let approve = Approve {
            grant_id,
            approver,
            group,
            reason,
        };
        self.settle_approval(py, approve, Ledger::approve)
    }

    #[pyo3(signature = (grant_id, approver, group, reason = None))]
    fn reject<'py>(
        &self,
        py: Python<'py>,
        grant_id: String,
        approver: String,
        group: String,
        reason: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reject = Approve {
            grant_id,
            approver,
            group,
            reason,
        };
        self.settle_approval(py, reject, Ledger::reject)
    }

    #[pyo3(signature = (grant_id, issuer, credential_ref, expires_at = None))]
    fn bind_credential<'py>(
        &self,
        py: Python<'py>,
        grant_id: String,
        issuer: String,
        credential_ref: String,
        expires_at: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let bind = BindCredential {
            grant_id,
            issuer,
            credential_ref,
            expires_at: timestamp(expires_at, "expires_at")?,
        };
        let grant = py
            .detach(|| ledger.bind_credential(&self.actor, bind))
            .map_err(ledger_error)?;
        to_python(py, &grant)
    }

    /// Revokes what `kind` ("grant", "task" or "agent") and `id` name.
    #[pyo3(signature = (kind, id, reason, block = false))]
    fn revoke<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        id: String,
        reason: String,
        block: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let target = match kind {
            "grant" => RevokeTarget::Grant(id),
            "task" => RevokeTarget::Task(id),
            "agent" => RevokeTarget::Agent(id),
            other => {
                return Err(PyValueError::new_err(format!(
                    "a revocation names a grant, a task or an agent, not `{other}`"
                )));
            }
        };
        let revoke = Revoke {
            target,
            reason,
            block,
        };
        let revoked = py
            .detach(|| ledger.revoke(&self.actor, revoke))
            .map_err(ledger_error)?;
        to_python(py, &revoked)
    }

    /// Lets a blocked agent open tasks again; whether it was blocked.
    fn unblock(&self, py: Python<'_>, agent: String) -> PyResult<bool> {
        let ledger = self.ledger()?;
        py.detach(|| ledger.unblock(&self.actor, &agent))
            .map_err(ledger_error)
    }

    fn end_task<'py>(&self, py: Python<'py>, task_id: String) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let ended = py
            .detach(|| ledger.end_task(&self.actor, &task_id))
            .map_err(ledger_error)?;
        to_python(py, &ended)
    }

    /// Records the expiry of grants past their time, and ends tasks past
    /// their deadline.
    fn sweep<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let swept = py.detach(|| ledger.sweep()).map_err(ledger_error)?;
        to_python(py, &swept)
    }

    fn grant<'py>(&self, py: Python<'py>, grant_id: String) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let grant = py
            .detach(|| ledger.grant(&grant_id))
            .map_err(ledger_error)?;
        to_python(py, &grant)
    }

    fn task<'py>(&self, py: Python<'py>, task_id: String) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger()?;
        let task = py.detach(|| ledger.task(&task_id)).map_err(ledger_error)?;
        to_python(py, &task)
    }

    /// The events of a task and its sub-tasks, in order.
    fn timeline<'py>(&self, py: Python<'py>, task_id: String) -> PyResult<Bound<'py, PyList>> {
        let ledger = self.ledger()?;
        let events = py
            .detach(|| ledger.timeline(&task_id))
            .map_err(ledger_error)?;
        let list = PyList::empty(py);
        for event in &events {
            list.append(to_python(py, event)?)?;
        }
        Ok(list)
    }

    /// Recomputes the audit chain: `{intact, events, problem}`.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let ledger = self.ledger()?;
        let verification = py
            .detach(|| grant_ledger::chain::verify(ledger.store().as_ref(), &[], None))
            .map_err(store_error)?;
        let result = PyDict::new(py);
        result.set_item("intact", verification.is_intact())?;
        result.set_item("events", verification.events)?;
        match &verification.problem {
            Some(problem) => {
                let entry = PyDict::new(py);
                entry.set_item("seq", problem.seq)?;
                entry.set_item("what", &problem.what)?;
                result.set_item("problem", entry)?;
            }
            None => result.set_item("problem", py.None())?,
        }
        Ok(result)
    }

    /// A guard of `agent`'s calls in task `task_id`, every call carrying
    /// `attrs`.
    #[pyo3(signature = (task_id, agent, attrs = None))]
    fn guard(
        slf: &Bound<'_, PyLedger>,
        task_id: &str,
        agent: &str,
        attrs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyGuard> {
        let this = slf.get();
        let ledger = this.ledger()?;
        let engine = this.engine.clone();
        let fixed = match attrs_dict(attrs)? {
            None => Ok(serde_json::Map::new()),
            Some(attrs) => map_to_json(&attrs, &mut String::new(), 2),
        };
        let arg_paths = engine
            .attr_paths()
            .filter_map(|path| path.strip_prefix("args."))
            .map(|rest| rest.split('.').map(str::to_string).collect())
            .collect();
        let (guard, fixed_error) = match fixed {
            Ok(fixed) => (
                Guard::new(ledger, task_id, agent, &this.actor).with_attrs(fixed),
                None,
            ),
            Err(error) => (Guard::new(ledger, task_id, agent, &this.actor), Some(error)),
        };
        Ok(PyGuard {
            guard: Arc::new(guard),
            ledger: slf.clone().unbind(),
            engine,
            arg_paths,
            fixed_error,
        })
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("Ledger({state}, actor={:?})", self.actor)
    }
}

/// The request-or-reuse logic of one agent's calls in one task
/// (`grant_ledger::Guard`), for `grant.guard`.
#[pyclass(frozen, module = "grant._native", name = "Guard")]
pub struct PyGuard {
    guard: Arc<Guard>,
    ledger: Py<PyLedger>,
    engine: Engine,
    /// The keys of the `args.*` attributes the policy declares (`item`,
    /// `kind` for `args.item.kind`): only the values at those paths are
    /// converted, so that arguments the policy does not read (a client
    /// object, bytes) never matter.
    arg_paths: Vec<Vec<String>>,
    /// Why the guard's fixed attributes could not be read: every call is
    /// denied with it.
    fixed_error: Option<RequestError>,
}

#[pymethods]
impl PyGuard {
    #[getter]
    fn task_id(&self) -> &str {
        self.guard.task_id()
    }

    #[getter]
    fn agent(&self) -> &str {
        self.guard.agent()
    }

    /// Decides and records one call of `tool` with `arguments` (a dict of
    /// the call's arguments by name): a dict with `kind` (`allowed`,
    /// `denied`, `pending`, `use_refused`) and its details.
    #[pyo3(signature = (tool, arguments = None))]
    fn admit<'py>(
        &self,
        py: Python<'py>,
        tool: String,
        arguments: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        // A closed ledger refuses, even though the guard holds a handle.
        self.ledger.get().ledger()?;
        let result = PyDict::new(py);
        let denied = |decision: PyDecision| -> PyResult<Bound<'py, PyDict>> {
            result.set_item("kind", "denied")?;
            result.set_item("decision", decision)?;
            result.set_item("grant_id", py.None())?;
            Ok(result.clone())
        };
        if let Some(error) = &self.fixed_error {
            return denied(refused(&self.engine, &tool, error.clone()));
        }
        let mut read = serde_json::Map::new();
        if let Some(arguments) = attrs_dict(arguments)? {
            for keys in &self.arg_paths {
                let Some(value) = value_at(&arguments, keys)? else {
                    continue;
                };
                let mut path = format!("args.{}", keys.join("."));
                match to_json(&value, &mut path, 2 + keys.len()) {
                    Ok(json) => insert_at(&mut read, keys, json),
                    Err(error) => return denied(refused(&self.engine, &tool, error)),
                }
            }
        }
        let guard = Arc::clone(&self.guard);
        let admission = py
            .detach(|| guard.admit_call(&tool, Some(&read)))
            .map_err(ledger_error)?;
        match admission {
            Admission::Allowed {
                grant_id,
                uses_left,
                expires_at,
                issued,
            } => {
                result.set_item("kind", "allowed")?;
                result.set_item("grant_id", grant_id)?;
                result.set_item("uses_left", uses_left)?;
                result.set_item("expires_at", expires_at.to_string())?;
                result.set_item("issued", issued)?;
            }
            Admission::Denied { decision, grant_id } => {
                result.set_item("kind", "denied")?;
                let decision = PyDecision::given(decision.decision, Some(decision.decision_id));
                result.set_item("decision", decision)?;
                result.set_item("grant_id", grant_id)?;
            }
            Admission::Pending {
                grant_id,
                approvals,
                expires_at,
            } => {
                result.set_item("kind", "pending")?;
                result.set_item("grant_id", grant_id)?;
                result.set_item("approvals", approvals)?;
                result.set_item("expires_at", expires_at.to_string())?;
            }
            Admission::UseRefused { grant_id, reason } => {
                result.set_item("kind", "use_refused")?;
                result.set_item("grant_id", grant_id)?;
                result.set_item("reason", reason)?;
            }
        }
        Ok(result)
    }

    /// Forgets the grants held: the next call requests anew.
    fn forget(&self) {
        self.guard.forget();
    }
}

/// The value at `keys` under a call's arguments, through nested mappings;
/// `None` where the path is absent.
fn value_at<'py>(
    arguments: &Bound<'py, PyDict>,
    keys: &[String],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some((last, through)) = keys.split_last() else {
        return Ok(None);
    };
    let mut at = arguments.clone();
    for key in through {
        let Some(inner) = at.get_item(key)? else {
            return Ok(None);
        };
        // A value that is not a mapping holds no deeper path: the guard
        // reads nothing there (as grant_ledger::Guard::call_attrs does).
        let Ok(Some(inner)) = attrs_dict(Some(&inner)) else {
            return Ok(None);
        };
        at = inner;
    }
    at.get_item(last)
}

/// Puts `value` at `keys` in `map`, making the objects on the way.
fn insert_at(
    map: &mut serde_json::Map<String, serde_json::Value>,
    keys: &[String],
    value: serde_json::Value,
) {
    let Some((last, through)) = keys.split_last() else {
        return;
    };
    let mut at = map;
    for key in through {
        let entry = at
            .entry(key.clone())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if !entry.is_object() {
            *entry = serde_json::Value::Object(serde_json::Map::new());
        }
        let serde_json::Value::Object(inner) = entry else {
            return;
        };
        at = inner;
    }
    at.insert(last.clone(), value);
}
