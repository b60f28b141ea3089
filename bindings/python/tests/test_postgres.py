"""The binding over the PostgreSQL store: the same ledger, guard and audit
chain as over SQLite, in a schema of its own on `GRANT_TEST_PG_URL` (which
.ci/run starts and sets). Without it the test skips, unless `CI` is set."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid

import pytest

import grant


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True)


@pytest.fixture
def pg_url():
    server = os.environ.get("GRANT_TEST_PG_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("GRANT_TEST_PG_URL is not set: CI must run the PostgreSQL store tests")
        pytest.skip("GRANT_TEST_PG_URL is not set")
    if shutil.which("psql") is None:
        pytest.fail("psql is needed to create the test's schema")
    schema = f"grant_py_{uuid.uuid4().hex[:12]}"
    psql(server, f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    yield f"{server}{separator}options=-csearch_path%3D{schema}"
    psql(server, f"DROP SCHEMA {schema} CASCADE")


def test_a_guarded_task_on_postgres_reads_as_one_lifecycle(pg_url, guard_engine):
    with grant.Ledger.open(pg_url, guard_engine, actor="tests") as ledger:
        task = ledger.open_task("agent-pg")
        calls = []

        @grant.guard(ledger, task, "agent-pg", tool="counted")
        def counted(n: int) -> int:
            calls.append(n)
            return n

        assert counted(1) == 1
        first = counted.guard.last_admission.grant_id
        assert counted(2) == 2
        assert counted.guard.last_admission.grant_id == first
        with pytest.raises(grant.Denied) as denied:
            counted(7)
        assert denied.value.decision.rules[0]["effect"] == "deny"
        assert calls == [1, 2]

        # 8 threads race for one `uses 1` grant: one use goes through.
        once = ledger.request_grant(task, "agent-pg", "once")
        outcomes: list = []

        def use() -> None:
            try:
                ledger.use_grant(once, "agent-pg", "once")
                outcomes.append("ok")
            except grant.Denied:
                outcomes.append("refused")

        threads = [threading.Thread(target=use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["ok"] + ["refused"] * 7

        ledger.end_task(task)
        kinds = [event["type"] for event in ledger.timeline(task)]
        assert kinds[0] == "task.opened" and kinds[-1] == "task.ended"
        assert kinds.count("grant.used") == 3
        assert kinds.count("grant.use_refused") == 8
        assert ledger.verify()["intact"]
