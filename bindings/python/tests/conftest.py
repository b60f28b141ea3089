"""Shared fixtures: the repository's paths, the `grant` CLI for comparing
decisions, and ledgers over a temporary SQLite file."""

from __future__ import annotations

import os
import pathlib

import pytest

import grant

TESTS = pathlib.Path(__file__).resolve().parent
REPO = TESTS.parents[2]
POLICIES = TESTS / "policies"
EXAMPLES = REPO / "examples"


def grant_bin() -> pathlib.Path:
    """The `grant` binary: $GRANT_BIN, else the workspace's debug build."""
    path = pathlib.Path(os.environ.get("GRANT_BIN") or REPO / "target" / "debug" / "grant")
    if not path.exists():
        pytest.fail(
            f"the grant CLI is not at {path}: run `cargo build -p grant-cli` at the "
            "repository root (or set GRANT_BIN)"
        )
    return path


@pytest.fixture(scope="session")
def guard_engine() -> grant.Engine:
    return grant.Engine.load(POLICIES / "guard.grant")


@pytest.fixture
def ledger(tmp_path, guard_engine):
    with grant.Ledger.open(f"sqlite:{tmp_path / 'ledger.db'}", guard_engine, actor="tests") as ledger:
        yield ledger


@pytest.fixture
def memory_ledger(guard_engine):
    with grant.Ledger.open("memory", guard_engine) as ledger:
        yield ledger
