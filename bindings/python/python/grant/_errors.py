"""Grant's exceptions. Pure Python, so that the native module and the
package share them, and so that some can also be a built-in kind of error
(``NotFound`` is a ``LookupError``, ``InvalidInput`` a ``ValueError``)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class GrantError(Exception):
    """The base of every error Grant raises."""


class PolicyError(GrantError):
    """A policy could not be loaded: it has errors, or could not be read.

    The message is the diagnostics rendered as ``grant check`` shows them;
    ``diagnostics`` lists them as dicts with ``code``, ``severity``,
    ``message``, ``file``, ``line`` and ``column`` (1-based) and ``help``.
    """

    diagnostics: List[Dict[str, Any]]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.diagnostics = []


class LedgerError(GrantError):
    """A ledger operation failed, and wrote nothing."""


class LedgerClosed(LedgerError):
    """The ledger was closed (``Ledger.close()`` or the end of its ``with``)."""


class NotFound(LedgerError, LookupError):
    """No task or grant has this id."""


class Conflict(LedgerError):
    """The id is taken, or the task or grant is not in a state that allows it."""


class Forbidden(LedgerError, PermissionError):
    """The caller may not do this: a blocked agent, an approver who may not approve."""


class InvalidInput(LedgerError, ValueError):
    """The input is malformed or out of bounds (also a store URL naming no store)."""


class StoreUnavailable(LedgerError, ConnectionError):
    """The ledger's store failed or cannot be reached; nothing was kept."""


class Denied(GrantError):
    """A tool call, grant request or use was refused.

    ``decision`` is the deny decision when there was one (a use refused
    because the grant expired or was used up has none); ``reason`` says
    why in one line; ``grant_id`` names the grant concerned, if any.
    """

    def __init__(
        self,
        decision: Optional[Any] = None,
        reason: Optional[str] = None,
        grant_id: Optional[str] = None,
    ) -> None:
        if reason is None and decision is not None:
            found = list(decision.errors) or list(decision.reasons)
            reason = found[0] if found else "denied"
        self.decision = decision
        self.reason = reason or "denied"
        self.grant_id = grant_id
        super().__init__(self.reason)

    @property
    def decision_id(self) -> Optional[str]:
        """The ledger's id of the deny decision, if it recorded one."""
        return getattr(self.decision, "decision_id", None)

    @property
    def rules(self) -> List[str]:
        """The ids of the rules that decided."""
        if self.decision is None:
            return []
        return [rule["id"] for rule in self.decision.rules]


class ApprovalPending(Denied):
    """The call needs approvals: grant ``grant_id`` waits for the groups in
    ``approvals`` until ``expires_at``. Call again once they approved."""

    def __init__(self, grant_id: str, approvals: List[str], expires_at: str) -> None:
        self.approvals = list(approvals)
        self.expires_at = expires_at
        super().__init__(
            None,
            f"grant {grant_id} waits for approval by {', '.join(approvals)}",
            grant_id,
        )
