"""Random requests (of values JSON can hold) decide through the binding
exactly as their JSON text does through the engine's own reader: nesting,
dotted keys, nulls, values given twice, wrong types, numbers out of
range."""

from __future__ import annotations

import json
import random

import pytest

import grant

from conftest import EXAMPLES

EXAMPLE_DIRS = sorted(p.parent for p in EXAMPLES.glob("*/requests") if p.is_dir())
SCALARS = [
    None, True, False, 0, 1, -1, 7, 100, 501, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**64),
    0.5, 1.0, -0.0, 1e300, "", "x", "staging", "prod", "internal", "confidential", "5m", "90s",
    "public", "main", "a.b",
]


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if roll < 0.6 or depth > 2:
        return rng.choice(SCALARS)
    if roll < 0.8:
        return [rng.choice(SCALARS) for _ in range(rng.randrange(4))]
    return {rng.choice(["a", "b", "approved", "x"]): random_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def random_attrs(rng: random.Random, paths):
    attrs: dict = {}
    for _ in range(rng.randrange(6)):
        path = rng.choice(paths + ["undeclared", "args", "task"])
        value = random_value(rng)
        if "." in path and rng.random() < 0.5:
            # Nested form, sometimes beside a dotted key of the same group.
            head, *rest = path.split(".")
            at = attrs.setdefault(head, {}) if isinstance(attrs.get(head, {}), dict) else {}
            for key in rest[:-1]:
                nxt = at.setdefault(key, {})
                at = nxt if isinstance(nxt, dict) else {}
            at[rest[-1]] = value
        else:
            attrs[path] = value
    return attrs


@pytest.mark.parametrize("directory", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_random_requests_decide_as_json(directory):
    engine = grant.Engine.load(directory)
    paths = engine.attr_paths()
    examples = [json.loads(p.read_text()) for p in sorted((directory / "requests").glob("*.json"))]
    rng = random.Random(f"grant-{directory.name}")
    effects = set()
    for _ in range(1000):
        example = rng.choice(examples)
        tool = example["tool"]
        if rng.random() < 0.5:
            # An example's request, changed a little (or not at all).
            attrs = json.loads(json.dumps(example.get("attrs") or {}))
            for _ in range(rng.randrange(3)):
                attrs.update(random_attrs(rng, paths) if rng.random() < 0.5 else {})
            ttl = rng.choice([example.get("ttl"), example.get("ttl"), 30, "2m"])
        else:
            attrs = random_attrs(rng, paths)
            ttl = rng.choice([None, None, 30, "2m", 0, -5, "soon", 1.5, True])
        ours = engine.decide(tool, attrs, ttl)
        request = {"tool": tool, "attrs": attrs}
        if ttl is not None:
            request["ttl"] = ttl
        reference = engine.decide_json(json.dumps(request))
        assert ours.to_dict() == reference.to_dict(), request
        effects.add("errors" if ours.errors else ours.effect)
    assert effects == {"allow", "deny", "errors"}
