"""Grant: a policy engine and ledger for just-in-time access of AI agents.

The decision engine and the ledger run in-process (a Rust extension,
``grant._native``); every call that decides or touches the store releases
the GIL, and engines, ledgers and guards are safe to share across threads.

    import grant

    engine = grant.Engine.load("policy/")
    decision = engine.decide("db.read", {"sensitivity": "internal"})
    if decision.allowed: ...

    with grant.Ledger.open("sqlite:ledger.db", engine) as ledger:
        task = ledger.open_task("agent-7")

        @grant.guard(ledger, task, "agent-7", tool="logs.search", attrs={"env": "staging"})
        def search(service: str, sensitivity: str, limit: int = 100): ...

See bindings/python/README.md.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

from ._errors import (
    ApprovalPending,
    Conflict,
    Denied,
    Forbidden,
    GrantError,
    InvalidInput,
    LedgerClosed,
    LedgerError,
    NotFound,
    PolicyError,
    StoreUnavailable,
)
from ._native import Decision, Engine, __version__
from . import _native

__all__ = [
    "Admission",
    "ApprovalPending",
    "Conflict",
    "Decision",
    "Denied",
    "Engine",
    "Forbidden",
    "Grant",
    "GrantError",
    "InvalidInput",
    "Ledger",
    "LedgerClosed",
    "LedgerError",
    "NotFound",
    "PolicyError",
    "Record",
    "StoreUnavailable",
    "Task",
    "Use",
    "guard",
]

F = TypeVar("F", bound=Callable[..., Any])
Attrs = Optional[Mapping[str, Any]]
Ttl = Union[None, int, str, timedelta]


class Record(Mapping[str, Any]):
    """A ledger record: read-only, by attribute (``grant.grant_id``) or by
    key (``grant["grant_id"]``), with the ledger's field names. Times are
    RFC 3339 strings in UTC (``2026-01-02T03:04:05.000000Z``)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def to_dict(self) -> Dict[str, Any]:
        """The record as a plain dict (the ledger's JSON shape)."""
        return dict(self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._fields.items() if k in self._shown)
        return f"{type(self).__name__}({shown})"

    _shown: Tuple[str, ...] = ()


class Grant(Record):
    """A grant: ``grant_id``, ``task_id``, ``agent``, ``tool``, ``state``
    (pending, active, exhausted, expired, revoked), ``issued_at``,
    ``expires_at``, ``ttl_seconds``, ``uses_left`` (None when unlimited),
    ``approvals`` (``required`` groups and ``granted`` approvals),
    ``parent_grant_id``, ``renewals``, ``credentials``, ``decision_id``,
    ``policy_hash``."""

    _shown = ("grant_id", "tool", "state", "expires_at", "uses_left")


class Task(Record):
    """A task: ``task_id``, ``agent``, ``parent_task_id``, ``depth``,
    ``chain``, ``opened_at``, ``deadline``, ``state`` (open, ended),
    ``labels``, ``grants_issued``, ``ended_at``, ``end_reason``; from
    ``Ledger.task`` also ``grants`` (dicts) and ``subtasks`` (ids)."""

    _shown = ("task_id", "agent", "state")


class Use(Record):
    """An allowed use of a grant: ``ok`` (True), ``uses_left`` (None when
    unlimited), ``expires_at``, and ``decision`` when the use was decided
    again."""

    _shown = ("ok", "uses_left", "expires_at")


class Admission(Record):
    """A guarded call admitted: ``grant_id``, ``uses_left``, ``expires_at``,
    and ``issued`` (whether this call requested the grant, else it reused
    one)."""

    _shown = ("grant_id", "uses_left", "expires_at", "issued")


def _id(value: Any, field: str) -> str:
    """An id given as itself or as the record that holds it."""
    if isinstance(value, str):
        return value
    if isinstance(value, Record) and isinstance(value.get(field), str):
        found: str = value[field]
        return found
    raise TypeError(f"expected a {field} (str) or a record with one, not {type(value).__name__}")


def _time(value: Union[None, str, datetime], field: str) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"`{field}` must be a datetime or an RFC 3339 str, not {type(value).__name__}")


def _granted(answer: Any) -> "Grant":
    grant, decision = answer
    if grant is None:
        raise Denied(decision)
    return Grant(grant)


class Ledger:
    """Tasks, grants, uses, revocation and the audit chain, over a store.

    Open one with ``Ledger.open(store_url, engine)``; use it from any
    thread; close it (or use it as a context manager). Every call releases
    the GIL while the ledger works.
    """

    __slots__ = ("_native", "engine")

    def __init__(self, native: _native.Ledger, engine: Engine) -> None:
        self._native = native
        self.engine = engine

    @classmethod
    def open(cls, store_url: str, engine: Engine, *, actor: str = "python") -> "Ledger":
        """Opens the ledger in ``store_url`` (``memory``, ``sqlite:PATH``,
        ``postgres://...``), deciding with ``engine``; events name
        ``actor``."""
        return cls(_native.Ledger.open(store_url, engine, actor), engine)

    @property
    def actor(self) -> str:
        return self._native.actor

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Closes the ledger; later calls raise ``LedgerClosed``."""
        self._native.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._native)

    def open_task(
        self,
        agent: str,
        *,
        task_id: Optional[str] = None,
        parent_task_id: Optional[str] = None,
        deadline: Union[None, str, datetime] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> Task:
        """Opens a task for ``agent`` (a sub-task with ``parent_task_id``)."""
        return Task(
            self._native.open_task(
                agent,
                task_id,
                parent_task_id,
                _time(deadline, "deadline"),
                dict(labels) if labels is not None else None,
            )
        )

    def request_grant(
        self, task_id: Union[str, Task], agent: str, tool: str, attrs: Attrs = None, ttl: Ttl = None
    ) -> Grant:
        """Asks for a grant of ``tool``: the grant (``active``, or
        ``pending`` approvals); raises ``Denied`` on deny."""
        return _granted(self._native.request_grant(_id(task_id, "task_id"), agent, tool, attrs, ttl))

    def use_grant(
        self, grant_id: Union[str, Grant], agent: str, tool: str, attrs: Attrs = None
    ) -> Use:
        """Records one use; with ``attrs`` the policy decides it again.
        Raises ``Denied`` when refused (``reason``; ``decision`` if decided)."""
        grant_id = _id(grant_id, "grant_id")
        answer = self._native.use_grant(grant_id, agent, tool, attrs)
        if not answer["ok"]:
            raise Denied(answer.get("decision"), answer.get("reason"), grant_id)
        return Use(answer)

    def renew(
        self, grant_id: Union[str, Grant], agent: str, attrs: Attrs = None, ttl: Ttl = None
    ) -> Grant:
        """Renews an active grant, decided again; raises ``Denied`` on deny."""
        return _granted(self._native.renew(_id(grant_id, "grant_id"), agent, attrs, ttl))

    def approve(
        self, grant_id: Union[str, Grant], approver: str, group: str, reason: Optional[str] = None
    ) -> Grant:
        """Approves a pending grant for ``group``."""
        return Grant(self._native.approve(_id(grant_id, "grant_id"), approver, group, reason))

    def reject(
        self, grant_id: Union[str, Grant], approver: str, group: str, reason: Optional[str] = None
    ) -> Grant:
        """Rejects a pending grant for ``group``."""
        return Grant(self._native.reject(_id(grant_id, "grant_id"), approver, group, reason))

    def bind_credential(
        self,
        grant_id: Union[str, Grant],
        issuer: str,
        credential_ref: str,
        expires_at: Union[None, str, datetime] = None,
    ) -> Grant:
        """Records the credential an issuer minted for a grant (a reference,
        never the secret)."""
        return Grant(
            self._native.bind_credential(
                _id(grant_id, "grant_id"), issuer, credential_ref, _time(expires_at, "expires_at")
            )
        )

    def revoke(
        self,
        *,
        grant_id: Union[None, str, Grant] = None,
        task_id: Union[None, str, Task] = None,
        agent: Optional[str] = None,
        reason: str,
        block: bool = False,
    ) -> Dict[str, List[str]]:
        """Revokes one grant, a task (its grants and sub-tasks) or an agent
        (its open tasks; with ``block`` its new tasks too, until
        ``unblock``). Returns ``{"revoked": [...], "ended": [...]}``."""
        given = [value for value in (grant_id, task_id, agent) if value is not None]
        if len(given) != 1:
            raise TypeError("revoke names exactly one of grant_id, task_id or agent")
        if grant_id is not None:
            return self._native.revoke("grant", _id(grant_id, "grant_id"), reason, block)
        if task_id is not None:
            return self._native.revoke("task", _id(task_id, "task_id"), reason, block)
        return self._native.revoke("agent", _id(agent, "agent"), reason, block)

    def unblock(self, agent: str) -> bool:
        """Lets a blocked agent open tasks again; whether it was blocked."""
        return self._native.unblock(agent)

    def end_task(self, task_id: Union[str, Task]) -> Dict[str, List[str]]:
        """Ends a task, revoking its live grants and ending its sub-tasks."""
        return self._native.end_task(_id(task_id, "task_id"))

    def sweep(self) -> Dict[str, List[str]]:
        """Records expired grants and tasks past their deadline."""
        return self._native.sweep()

    def grant(self, grant_id: str) -> Grant:
        """A grant, its state as of now. Raises ``NotFound``."""
        return Grant(self._native.grant(grant_id))

    def task(self, task_id: str) -> Task:
        """A task with its ``grants`` and ``subtasks``. Raises ``NotFound``."""
        return Task(self._native.task(task_id))

    def timeline(self, task_id: Union[str, Task]) -> List[Dict[str, Any]]:
        """The audit events of a task and its sub-tasks, in order, as dicts
        (``seq``, ``type``, ``time``, ``actor``, ``task_id``, ``grant_id``,
        ``tool``, ``decision``, ...: the fields that apply)."""
        return self._native.timeline(_id(task_id, "task_id"))

    def verify(self) -> Dict[str, Any]:
        """Recomputes the audit chain's hashes: ``{"intact": bool,
        "events": int, "problem": None or {"seq", "what"}}``."""
        return self._native.verify()


class guard:
    """Guards tool calls of ``agent`` in ``task``: a decorator, and a
    context manager (sync and async).

    Each call is decided and recorded by the ledger: the first allowed call
    of the tool requests a grant and records its use; later calls reuse
    that grant while it is usable (each use decided again with the call's
    attributes); an expired or used-up grant gives way to a new request.
    As a decorator the call's arguments, bound by name with defaults
    applied, are read as the policy's ``args.*`` attributes, beside the
    fixed ``attrs``. A refused call raises ``Denied`` (the function is not
    called); a call waiting for approval raises ``ApprovalPending``.
    """

    def __init__(
        self,
        ledger: Ledger,
        task: Union[str, Task],
        agent: str,
        tool: Optional[str] = None,
        attrs: Attrs = None,
        *,
        arguments: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.ledger = ledger
        self.tool = tool
        self.arguments = arguments
        #: The admission of the most recent allowed call (on any thread), for logging.
        self.last_admission: Optional[Admission] = None
        self._native = ledger._native.guard(_id(task, "task_id"), agent, attrs)

    @property
    def task_id(self) -> str:
        return self._native.task_id

    @property
    def agent(self) -> str:
        return self._native.agent

    def admit(self, tool: Optional[str] = None, arguments: Optional[Mapping[str, Any]] = None) -> Admission:
        """Decides and records one call; raises ``Denied`` or
        ``ApprovalPending`` if it may not be made."""
        tool = tool or self.tool
        if tool is None:
            raise TypeError("guard needs a tool: guard(..., tool='name')")
        outcome = self._native.admit(tool, arguments)
        kind = outcome.pop("kind")
        if kind == "allowed":
            admission = Admission(outcome)
            self.last_admission = admission
            return admission
        if kind == "pending":
            raise ApprovalPending(outcome["grant_id"], outcome["approvals"], outcome["expires_at"])
        if kind == "use_refused":
            raise Denied(None, outcome["reason"], outcome["grant_id"])
        raise Denied(outcome["decision"], None, outcome.get("grant_id"))

    async def admit_async(
        self, tool: Optional[str] = None, arguments: Optional[Mapping[str, Any]] = None
    ) -> Admission:
        """``admit`` in a worker thread, so that a durable store does not
        block the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.admit, tool, arguments)
        )

    def forget(self) -> None:
        """Forgets the grants held: the next call requests a new one."""
        self._native.forget()

    def __call__(self, fn: F) -> F:
        tool = self.tool or fn.__name__
        signature = inspect.signature(fn)

        def arguments_of(args: Any, kwargs: Any) -> Dict[str, Any]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                await self.admit_async(tool, arguments_of(args, kwargs))
                return await fn(*args, **kwargs)

            guarded_async.guard = self  # type: ignore[attr-defined]
            return guarded_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.admit(tool, arguments_of(args, kwargs))
            return fn(*args, **kwargs)

        guarded.guard = self  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    def __enter__(self) -> Admission:
        return self.admit(self.tool, self.arguments)

    def __exit__(self, *exc: Any) -> None:
        return None

    async def __aenter__(self) -> Admission:
        return await self.admit_async(self.tool, self.arguments)

    async def __aexit__(self, *exc: Any) -> None:
        return None
