"""The ledger's operations through the binding, its typed errors, and a
closed ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import grant


def test_a_grant_is_requested_used_and_used_up(ledger):
    task = ledger.open_task("agent-1", labels={"incident": "INC-1"})
    assert task.state == "open" and task.labels == {"incident": "INC-1"}
    grant_ = ledger.request_grant(task, "agent-1", "once")
    assert grant_.state == "active" and grant_.uses_left == 1
    assert grant_.decision_id.startswith("dec_")
    use = ledger.use_grant(grant_, "agent-1", "once")
    assert use.ok and use.uses_left == 0
    with pytest.raises(grant.Denied) as refused:
        ledger.use_grant(grant_.grant_id, "agent-1", "once")
    assert refused.value.decision is None
    assert refused.value.grant_id == grant_.grant_id
    assert ledger.grant(grant_.grant_id).state == "exhausted"


def test_a_denied_request_raises_denied_with_the_decision(ledger):
    task = ledger.open_task("agent-1")
    with pytest.raises(grant.Denied) as raised:
        ledger.request_grant(task.task_id, "agent-1", "counted", {"args": {"n": 7}})
    denied = raised.value
    assert denied.decision.effect == "deny"
    assert denied.decision_id and denied.decision_id.startswith("dec_")
    assert denied.rules == ["guard.grant:18"]  # the deny rule decided
    assert "deny rule" in denied.reason


def test_bad_attrs_are_denied_before_the_ledger(ledger):
    task = ledger.open_task("agent-1")
    with pytest.raises(grant.Denied) as raised:
        ledger.request_grant(task, "agent-1", "counted", {"args.n": b"7"})
    assert "found a Python `bytes`" in raised.value.decision.errors[0]
    with pytest.raises(grant.Denied) as raised:
        ledger.request_grant(task, "agent-1", "counted", {"args.n": 1.5})
    assert raised.value.decision.errors == [
        "attribute `args.n`: 1.5 is not an integer (Grant has no fractional numbers)"
    ]


def test_a_use_decided_again_is_refused_with_its_decision(ledger):
    task = ledger.open_task("agent-1")
    grant_ = ledger.request_grant(task, "agent-1", "counted", {"args.n": 1}, ttl="30s")
    assert grant_.ttl_seconds == 30
    assert ledger.use_grant(grant_, "agent-1", "counted", {"args.n": 2}).ok
    with pytest.raises(grant.Denied) as raised:
        ledger.use_grant(grant_, "agent-1", "counted", {"args.n": 7})
    assert raised.value.decision is not None and not raised.value.decision.allowed


def test_renew_approve_reject_and_bind(ledger):
    task = ledger.open_task("agent-1")
    pending = ledger.request_grant(task, "agent-1", "approved")
    assert pending.state == "pending"
    assert pending.approvals["required"] == ["ops"]
    approved = ledger.approve(pending, "alice", "ops", reason="looks fine")
    assert approved.state == "active"
    renewed = ledger.renew(approved, "agent-1", ttl=timedelta(seconds=20))
    assert renewed.renewals == 1 and renewed.ttl_seconds == 20
    other = ledger.request_grant(task, "agent-1", "approved")
    assert ledger.reject(other.grant_id, "bob", "ops").state == "revoked"
    bound = ledger.bind_credential(renewed, "issuer-1", "cred-ref-1", expires_at=datetime.now(timezone.utc) + timedelta(seconds=10))
    assert bound.credentials[0]["credential_ref"] == "cred-ref-1"


def test_revoke_end_task_and_timeline(ledger):
    task = ledger.open_task("agent-1", task_id="task-revoke")
    a = ledger.request_grant(task, "agent-1", "quick")
    revoked = ledger.revoke(grant_id=a, reason="done with it")
    assert revoked["revoked"] == [a.grant_id]
    ledger.request_grant(task, "agent-1", "once")
    ended = ledger.end_task(task)
    assert ended["ended"] == ["task-revoke"]
    assert ledger.task("task-revoke").state == "ended"
    events = ledger.timeline("task-revoke")
    types = [e["type"] for e in events]
    assert types[0] == "task.opened" and types[-1] == "task.ended"
    assert "grant.revoked" in types
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert ledger.verify() == {"intact": True, "events": ledger.verify()["events"], "problem": None}
    with pytest.raises(TypeError):
        ledger.revoke(reason="which?")


def test_blocking_an_agent(ledger):
    ledger.open_task("agent-9")
    ledger.revoke(agent="agent-9", reason="misbehaved", block=True)
    with pytest.raises(grant.Forbidden) as raised:
        ledger.open_task("agent-9")
    assert isinstance(raised.value, PermissionError)
    assert ledger.unblock("agent-9")
    ledger.open_task("agent-9")


def test_typed_errors(ledger, guard_engine):
    with pytest.raises(grant.NotFound) as raised:
        ledger.grant("grant_nope")
    assert isinstance(raised.value, LookupError) and isinstance(raised.value, grant.LedgerError)
    with pytest.raises(grant.NotFound):
        ledger.task("task_nope")
    ledger.open_task("agent-1", task_id="task-twice")
    with pytest.raises(grant.Conflict):
        ledger.open_task("agent-1", task_id="task-twice")
    with pytest.raises(grant.InvalidInput) as invalid:
        grant.Ledger.open("nosuch://store", guard_engine)
    assert isinstance(invalid.value, ValueError)
    with pytest.raises(grant.InvalidInput):
        ledger.open_task("agent-1", deadline="tomorrow")


def test_a_closed_ledger_raises_ledger_closed(tmp_path, guard_engine):
    with grant.Ledger.open(f"sqlite:{tmp_path / 'l.db'}", guard_engine) as ledger:
        task = ledger.open_task("agent-1")
        tool = grant.guard(ledger, task, "agent-1", tool="quick")
    assert ledger.closed
    with pytest.raises(grant.LedgerClosed, match="the ledger is closed"):
        ledger.open_task("agent-1")
    with pytest.raises(grant.LedgerClosed):
        ledger.timeline(task)
    with pytest.raises(grant.LedgerClosed):
        tool.admit()
    ledger.close()  # idempotent
    # The store keeps what was written: another ledger reads it.
    with grant.Ledger.open(f"sqlite:{tmp_path / 'l.db'}", guard_engine) as again:
        assert again.task(task.task_id).agent == "agent-1"


def test_a_guarded_function_is_not_called_when_its_call_cannot_be_recorded(tmp_path, guard_engine):
    calls = []
    with grant.Ledger.open(f"sqlite:{tmp_path / 'l.db'}", guard_engine) as ledger:
        task = ledger.open_task("agent-1")

        @grant.guard(ledger, task, "agent-1", tool="quick")
        def quick() -> None:
            calls.append(1)

        quick()
    # Closed: the call can be neither decided nor recorded, so it fails closed.
    with pytest.raises(grant.LedgerClosed):
        quick()
    assert calls == [1]


def test_records(memory_ledger):
    task = memory_ledger.open_task("agent-1", deadline=datetime.now(timezone.utc) + timedelta(hours=1))
    assert task["agent"] == task.agent == "agent-1"
    assert task.deadline.endswith("Z")
    assert task.to_dict()["task_id"] == task.task_id
    assert "Task(" in repr(task)
    with pytest.raises(AttributeError):
        task.agent = "other"
