"""grant.guard: the request-or-reuse logic of grant_ledger::Guard, as a
decorator and a context manager, sync and async."""

from __future__ import annotations

import asyncio
import time

import pytest

import grant


def test_a_grant_is_reused_across_calls(ledger):
    task = ledger.open_task("agent-1")
    calls = []

    @grant.guard(ledger, task, "agent-1", tool="counted")
    def count(n: int, note: str = "x") -> int:
        calls.append(n)
        return n * 2

    assert count(1) == 2
    first = count.guard.last_admission
    assert first.issued
    assert count(n=2, note="y") == 4
    second = count.guard.last_admission
    assert not second.issued and second.grant_id == first.grant_id
    assert calls == [1, 2]
    uses = [e for e in ledger.timeline(task) if e["type"] == "grant.used"]
    assert len(uses) == 2


def test_a_deny_raises_and_the_function_is_not_called(ledger):
    task = ledger.open_task("agent-1")
    calls = []

    @grant.guard(ledger, task, "agent-1", tool="counted")
    def count(n: int) -> int:
        calls.append(n)
        return n

    count(1)
    with pytest.raises(grant.Denied) as raised:
        count(7)
    assert calls == [1]
    assert raised.value.decision is not None and raised.value.decision.effect == "deny"
    # The deny left the grant alone: the next allowed call reuses it.
    held = count.guard.last_admission.grant_id
    count(3)
    assert count.guard.last_admission.grant_id == held and not count.guard.last_admission.issued
    with pytest.raises(grant.Denied):
        count(50)  # no allow rule for n > 10
    assert calls == [1, 3]


def test_a_bad_argument_denies_not_raises_type_error(ledger):
    task = ledger.open_task("agent-1")

    @grant.guard(ledger, task, "agent-1", tool="counted")
    def count(n, other=None):
        return n

    with pytest.raises(grant.Denied) as raised:
        count(b"1", other=object())  # `other` is not read by the policy
    assert "found a Python `bytes`" in raised.value.decision.errors[0]
    with pytest.raises(grant.Denied) as raised:
        count("1")
    assert "expects `int`" in raised.value.decision.errors[0]


def test_an_expired_grant_is_requested_again(ledger):
    task = ledger.open_task("agent-1")

    @grant.guard(ledger, task, "agent-1", tool="quick")
    def quick():
        return "done"

    quick()
    first = quick.guard.last_admission
    time.sleep(1.1)
    quick()
    second = quick.guard.last_admission
    assert second.issued and second.grant_id != first.grant_id
    assert ledger.grant(first.grant_id).state == "expired"


def test_a_used_up_grant_is_requested_again(ledger):
    task = ledger.open_task("agent-1")
    once = grant.guard(ledger, task, "agent-1", tool="once")
    with once as first:
        assert first.uses_left == 0
    with once as second:
        assert second.issued and second.grant_id != first.grant_id


def test_pending_approval_then_approved(ledger):
    task = ledger.open_task("agent-1")
    calls = []

    @grant.guard(ledger, task, "agent-1", tool="approved")
    def deploy():
        calls.append(1)
        return "deployed"

    with pytest.raises(grant.ApprovalPending) as raised:
        deploy()
    pending = raised.value
    assert isinstance(pending, grant.Denied)
    assert pending.approvals == ["ops"] and pending.expires_at.endswith("Z")
    assert calls == []
    # Asking again while it waits points at the same grant.
    with pytest.raises(grant.ApprovalPending) as again:
        deploy()
    assert again.value.grant_id == pending.grant_id
    ledger.approve(pending.grant_id, "alice", "ops")
    assert deploy() == "deployed"
    assert deploy.guard.last_admission.grant_id == pending.grant_id


def test_fixed_attrs_and_nested_arguments(ledger):
    task = ledger.open_task("agent-1")

    @grant.guard(ledger, task, "agent-1", tool="fixed", attrs={"env": "staging"})
    def staging():
        return "ok"

    @grant.guard(ledger, task, "agent-1", tool="fixed", attrs={"env": "prod"})
    def prod():
        return "ok"

    assert staging() == "ok"
    with pytest.raises(grant.Denied):
        prod()

    @grant.guard(ledger, task.task_id, "agent-1", tool="nested")
    def lend(item: dict, reader: object = None):
        return item["kind"]

    assert lend({"kind": "book", "title": "x"}, reader=object()) == "book"
    # Only the paths the policy reads are converted: bytes beside `kind` do not matter.
    assert lend({"kind": "book", "cover": b"\x89PNG"}) == "book"
    with pytest.raises(grant.Denied):
        lend({"kind": "film"})


def test_the_tool_defaults_to_the_function_name(ledger):
    task = ledger.open_task("agent-1")

    @grant.guard(ledger, task, "agent-1")
    def quick():
        return 1

    assert quick() == 1 and quick.__name__ == "quick"


def test_as_a_context_manager(ledger):
    task = ledger.open_task("agent-1")
    with grant.guard(ledger, task, "agent-1", tool="counted", arguments={"n": 2}) as admission:
        assert admission.issued
    with pytest.raises(grant.Denied):
        with grant.guard(ledger, task, "agent-1", tool="counted", arguments={"n": 7}):
            pytest.fail("the block must not run")
    with pytest.raises(TypeError):
        with grant.guard(ledger, task, "agent-1"):
            pass


def test_async_functions_with_gather(ledger):
    task = ledger.open_task("agent-1")
    calls = []

    @grant.guard(ledger, task, "agent-1", tool="counted")
    async def count(n: int) -> int:
        await asyncio.sleep(0.01)
        calls.append(n)
        return n

    async def main():
        return await asyncio.gather(*(count(n) for n in range(1, 9)), return_exceptions=True)

    results = asyncio.run(main())
    assert [r for r in results if isinstance(r, grant.Denied)] and results[6].decision.effect == "deny"
    assert sorted(r for r in results if isinstance(r, int)) == [1, 2, 3, 4, 5, 6, 8]
    assert sorted(calls) == [1, 2, 3, 4, 5, 6, 8]
    # One grant served every allowed call.
    issued = [e for e in ledger.timeline(task) if e["type"] == "grant.issued"]
    assert len(issued) == 1


def test_async_context_manager(ledger):
    task = ledger.open_task("agent-1")

    async def main():
        async with grant.guard(ledger, task, "agent-1", tool="quick") as admission:
            return admission

    assert asyncio.run(main()).issued
