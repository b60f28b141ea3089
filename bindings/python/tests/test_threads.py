"""One engine and one ledger shared by 8 threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grant

THREADS = 8


def test_eight_threads_decide_and_use_grants(ledger, guard_engine):
    cases = [
        ("counted", {"args": {"n": n}}) for n in range(15)
    ] + [("fixed", {"env": "staging"}), ("fixed", {"env": "prod"}), ("nope", None)]
    expected = [guard_engine.decide(tool, attrs).to_dict() for tool, attrs in cases]
    barrier = threading.Barrier(THREADS)

    def work(worker: int):
        barrier.wait()
        task = ledger.open_task(f"agent-{worker}")
        used = 0
        for round_ in range(20):
            for (tool, attrs), want in zip(cases, expected):
                assert guard_engine.decide(tool, attrs).to_dict() == want
            g = ledger.request_grant(task, f"agent-{worker}", "counted", {"args.n": [1, 2, 3, 4, 5, 6, 8, 9, 10, 0][round_ % 10]})
            ledger.use_grant(g, f"agent-{worker}", "counted", {"args.n": 1})
            used += 1
        return used

    with ThreadPoolExecutor(THREADS) as pool:
        assert list(pool.map(work, range(THREADS))) == [20] * THREADS
    verification = ledger.verify()
    assert verification["intact"], verification
    assert verification["events"] >= THREADS * (1 + 2 * 20)


def test_a_single_use_grant_used_by_eight_threads_succeeds_once(ledger):
    task = ledger.open_task("agent-1")
    once = ledger.request_grant(task, "agent-1", "once")
    barrier = threading.Barrier(THREADS)

    def use(_):
        barrier.wait()
        try:
            ledger.use_grant(once, "agent-1", "once")
            return True
        except grant.Denied:
            return False

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(use, range(THREADS)))
    assert outcomes.count(True) == 1
    assert ledger.verify()["intact"]


def test_a_guard_shared_by_threads(ledger):
    task = ledger.open_task("agent-1")

    @grant.guard(ledger, task, "agent-1", tool="counted")
    def count(n):
        return n

    with ThreadPoolExecutor(THREADS) as pool:
        assert sorted(pool.map(count, [1, 2, 3, 4, 5, 6, 8, 9] * 4)) == sorted([1, 2, 3, 4, 5, 6, 8, 9] * 4)
    issued = [e for e in ledger.timeline(task) if e["type"] == "grant.issued"]
    assert len(issued) == 1
