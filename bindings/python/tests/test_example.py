"""examples/triage-agent/agent.py runs, and shows what it is for."""

from __future__ import annotations

import subprocess
import sys

from conftest import EXAMPLES


def test_the_triage_agent_runs():
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "triage-agent" / "agent.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "DENY  logs.search      by rule no-confidential-logs" in out
    assert "grant re-issued (the previous one is expired)" in out
    assert "grant re-issued (the previous one is exhausted)" in out
    assert "ALLOW deploy.rollback" in out
    assert "audit timeline of task_" in out
    for event in ("task.opened", "grant.issued", "grant.used", "grant.use_refused", "task.ended"):
        assert event in out
    assert "audit chain intact" in out
