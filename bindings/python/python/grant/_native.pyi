"""Type stubs of ``grant._native``, the compiled half of ``grant``.

``Engine`` and ``Decision`` are public (re-exported by ``grant``); ``Ledger``
and ``Guard`` are wrapped by ``grant.Ledger`` and ``grant.guard``.
"""

import os
from datetime import timedelta
from typing import Any, Dict, FrozenSet, List, Literal, Mapping, Optional, Set, Tuple, Union

__version__: str

AttrValue = Union[
    bool,
    int,
    str,
    timedelta,
    None,
    Mapping[str, Any],
    List[Any],
    Tuple[Any, ...],
    Set[Any],
    FrozenSet[Any],
]
Ttl = Union[None, int, str, timedelta]

class Engine:
    """A loaded, compiled policy. Immutable; safe to share across threads.
    Deciding releases the GIL."""

    @staticmethod
    def load(path: Union[str, "os.PathLike[str]"]) -> "Engine":
        """Loads a policy: one ``.grant`` file, or a directory of them.

        Raises ``FileNotFoundError`` when ``path`` does not exist and
        ``grant.PolicyError`` when the policy has errors (or cannot be read).
        """
    @staticmethod
    def from_text(name: str, text: str) -> "Engine":
        """Builds an engine from the text of a one-file policy; ``name`` is
        the file name diagnostics and generated rule ids use. Raises
        ``grant.PolicyError``."""
    @property
    def policy_hash(self) -> str:
        """``sha256:<hex>`` over the policy's files: every decision names it."""
    def attr_paths(self) -> List[str]:
        """Every declared attribute's path, sorted."""
    def decide(
        self,
        tool: str,
        attrs: Optional[Mapping[str, AttrValue]] = None,
        ttl: Ttl = None,
    ) -> "Decision":
        """Decides a call of ``tool``.

        ``attrs`` nests groups (``{"task": {"approved": True}}``) or dots
        them (``{"task.approved": True}``). Values: ``bool``, ``int``,
        ``str`` (enum variants by name, durations such as ``"5m"``),
        ``timedelta`` (whole non-negative seconds) for durations, a list,
        tuple, set or frozenset for sets; ``None`` leaves the attribute
        missing, as JSON's ``null`` does. ``ttl``: seconds, a duration
        string or a timedelta.

        Bad input (a value of the wrong type, an undeclared attribute, a
        non-string key, a request over the size limits, nesting deeper than
        128 levels, a bad ttl) gives a deny decision whose ``errors`` say
        what and where. Only a ``tool`` that is not a ``str`` or ``attrs``
        that is not a mapping raises ``TypeError``.
        """
    def decide_json(self, json: str) -> "Decision":
        """Decides a request given as JSON text (``{"tool", "attrs",
        "ttl"}``) with the engine's own JSON reader."""

class Decision:
    """A decision, as ``grant eval`` prints it. Fields are built on first
    access; the object is immutable. It has no truth value: ``bool(decision)``
    raises ``TypeError`` (``if decision:`` would read as "allowed"); test
    ``allowed``."""

    def __bool__(self) -> bool:
        """Raises ``TypeError``: test ``allowed``."""

    @property
    def allowed(self) -> bool: ...
    @property
    def effect(self) -> Literal["allow", "deny"]: ...
    @property
    def ttl_seconds(self) -> Optional[int]:
        """The grant's ttl on allow; ``None`` on deny."""
    @property
    def rules(self) -> List[Dict[str, Any]]:
        """The deciding rules: ``{"id", "effect", "annotations"}``."""
    @property
    def reasons(self) -> List[str]: ...
    @property
    def missing(self) -> List[str]:
        """Attributes the decision needed and the request did not give."""
    @property
    def errors(self) -> List[str]:
        """What was wrong with the request (it was denied unevaluated)."""
    @property
    def obligations(self) -> Optional[Dict[str, Any]]:
        """``None`` on deny; else ``{"uses": int or None, "approvals": [group, ...]}``."""
    @property
    def policy_hash(self) -> str: ...
    @property
    def decision_id(self) -> Optional[str]:
        """The ledger's id of the decision; ``None`` for ``Engine.decide``."""
    def to_dict(self) -> Dict[str, Any]:
        """The decision as ``grant eval`` prints it (the spec's JSON)."""
    def explain(self) -> str:
        """How the decision came out, rule by rule, as ``grant eval
        --explain`` prints it (for ``Engine.decide`` decisions; a ledger's
        decision explains its summary)."""

class Ledger:
    @staticmethod
    def open(store_url: str, engine: Engine, actor: str = "python") -> "Ledger": ...
    @property
    def actor(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def open_task(
        self,
        agent: str,
        task_id: Optional[str] = None,
        parent_task_id: Optional[str] = None,
        deadline: Optional[str] = None,
        labels: Optional[Dict[str, str]] = None,
    ) -> Dict[str, Any]: ...
    def request_grant(
        self,
        task_id: str,
        agent: str,
        tool: str,
        attrs: Optional[Mapping[str, Any]] = None,
        ttl: Ttl = None,
    ) -> Tuple[Optional[Dict[str, Any]], Decision]: ...
    def use_grant(
        self, grant_id: str, agent: str, tool: str, attrs: Optional[Mapping[str, Any]] = None
    ) -> Dict[str, Any]: ...
    def renew(
        self, grant_id: str, agent: str, attrs: Optional[Mapping[str, Any]] = None, ttl: Ttl = None
    ) -> Tuple[Optional[Dict[str, Any]], Decision]: ...
    def approve(self, grant_id: str, approver: str, group: str, reason: Optional[str] = None) -> Dict[str, Any]: ...
    def reject(self, grant_id: str, approver: str, group: str, reason: Optional[str] = None) -> Dict[str, Any]: ...
    def bind_credential(
        self, grant_id: str, issuer: str, credential_ref: str, expires_at: Optional[str] = None
    ) -> Dict[str, Any]: ...
    def revoke(
        self, kind: Literal["grant", "task", "agent"], id: str, reason: str, block: bool = False
    ) -> Dict[str, List[str]]: ...
    def unblock(self, agent: str) -> bool: ...
    def end_task(self, task_id: str) -> Dict[str, List[str]]: ...
    def sweep(self) -> Dict[str, List[str]]: ...
    def grant(self, grant_id: str) -> Dict[str, Any]: ...
    def task(self, task_id: str) -> Dict[str, Any]: ...
    def timeline(self, task_id: str) -> List[Dict[str, Any]]: ...
    def verify(self) -> Dict[str, Any]: ...
    def guard(self, task_id: str, agent: str, attrs: Optional[Mapping[str, Any]] = None) -> "Guard": ...

class Guard:
    @property
    def task_id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    def admit(self, tool: str, arguments: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """``{"kind": "allowed" | "denied" | "pending" | "use_refused", ...}``."""
    def forget(self) -> None: ...
