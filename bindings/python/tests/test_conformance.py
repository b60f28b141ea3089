"""Every example request decided through the binding equals what
`grant eval` prints for it: the binding never decides differently from
the engine."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta

import pytest

import grant

from conftest import EXAMPLES, grant_bin

REQUESTS = sorted(EXAMPLES.glob("*/requests/*.json"))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def test_the_examples_have_requests():
    assert len(REQUESTS) >= 35


_engines: dict = {}


def engine_for(directory) -> grant.Engine:
    if directory not in _engines:
        _engines[directory] = grant.Engine.load(str(directory))
    return _engines[directory]


def cli_decision(request_file) -> dict:
    policy = request_file.parent.parent
    run = subprocess.run(
        [str(grant_bin()), "eval", "--policy", str(policy), "--request", str(request_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout, run.stderr
    return json.loads(run.stdout)


def dotted(attrs: dict, prefix: str = "") -> dict:
    """Nested groups written as dotted keys."""
    flat = {}
    for key, value in attrs.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flat.update(dotted(value, path))
        else:
            flat[path] = value
    return flat


def as_timedelta(ttl):
    """A duration string such as "1h30m" as a timedelta; other ttls as given."""
    if not isinstance(ttl, str) or not re.fullmatch(r"(\d+[smhd])+", ttl):
        return ttl
    seconds = sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", ttl))
    return timedelta(seconds=seconds)


@pytest.mark.parametrize("request_file", REQUESTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_binding_decides_as_grant_eval(request_file):
    expected = cli_decision(request_file)
    request = json.loads(request_file.read_text())
    engine = engine_for(request_file.parent.parent)
    attrs, ttl = request.get("attrs"), request.get("ttl")

    decision = engine.decide(request["tool"], attrs, ttl)
    assert decision.to_dict() == expected
    assert decision.allowed == (expected["effect"] == "allow")
    assert decision.effect == expected["effect"]
    assert decision.ttl_seconds == expected["ttl_seconds"]
    assert decision.rules == expected["rules"]
    assert decision.reasons == expected["reasons"]
    assert decision.missing == expected["missing"]
    assert decision.errors == expected["errors"]
    assert decision.policy_hash == expected["policy_hash"]
    assert decision.policy_hash == engine.policy_hash

    # The same request with dotted keys and a timedelta ttl.
    again = engine.decide(request["tool"], dotted(attrs or {}), as_timedelta(ttl))
    assert again.to_dict() == expected
