"""Bad input where a decision is asked for denies, with errors that say
what and where; only arguments of the wrong type raise."""

from __future__ import annotations

import collections
import json
import pathlib
from datetime import timedelta

import pytest

import grant

from conftest import POLICIES

POLICY = """
type sensitivity = public < internal < confidential
attr sensitivity: sensitivity
attr task.approved: bool
attr task.budget: int
attr labels: set<string>
attr wait: duration
allow tool "db.read" when sensitivity <= internal and task.approved ttl 5m
allow tool "db.wait" when wait <= 10m ttl 5m
allow tool "db.tag" when "pci" in labels ttl 5m
"""


@pytest.fixture(scope="module")
def engine():
    return grant.Engine.from_text("bad.grant", POLICY)


def denied(decision) -> list:
    assert not decision.allowed
    assert decision.effect == "deny"
    assert decision.obligations is None
    assert decision.errors
    return decision.errors


def test_nested_and_dotted_keys_decide_alike(engine):
    nested = engine.decide("db.read", {"sensitivity": "public", "task": {"approved": True}})
    dotted = engine.decide("db.read", {"sensitivity": "public", "task.approved": True})
    assert nested.allowed and dotted.allowed
    assert nested.to_dict() == dotted.to_dict()
    assert nested.ttl_seconds == 300


@pytest.mark.parametrize(
    "value, message",
    [
        (1.5, "attribute `task.approved`: 1.5 is not an integer (Grant has no fractional numbers)"),
        (b"yes", "attribute `task.approved`: Grant takes a bool, an int, a str, a timedelta or a set of them, found a Python `bytes`"),
        (object(), "found a Python `object`"),
        ("true", "attribute `task.approved` expects `bool`, found string \"true\""),
        (1, "attribute `task.approved` expects `bool`, found integer `1`"),
        ({"x": 1}, "attribute `task.approved` expects a value, found an object"),
    ],
    ids=["float", "bytes", "object", "str-for-bool", "int-for-bool", "dict-for-scalar"],
)
def test_a_value_of_the_wrong_type_denies(engine, value, message):
    errors = denied(engine.decide("db.read", {"sensitivity": "public", "task.approved": value}))
    assert any(message in e for e in errors), errors


def test_errors_match_the_engines_json_reader(engine):
    # Values JSON can hold: the binding's errors are the engine's, word for word.
    for attrs in [
        {"sensitivity": "secret"},
        {"task": {"approved": 1.0}},
        {"task.budget": 2**63},
        {"task.budget": 2**64},
        {"task.budget": -(2**64)},
        {"labels": ["a", 1.5]},
        {"labels": "pci"},
        {"nope": 1},
        {"task": {"nope": True}},
        {"sensitivity": {"a": 1}},
        {"task": {"approved": None}, "task.approved": True},
        {"task": None, "task.budget": 3},
        {"task": {"approved": True}, "task.approved": True},
        {"sensitivity": ["public"]},
        {"labels": [None]},
        {"labels": [["a"]]},
        {"labels": [{"a": 1}]},
        {"labels": [2**64]},
        {"labels": [1.0]},
        {"task.budget": -0.0},
        {"task.budget": 1e300},
        {"nothing": {"here": None}},
        {"task": 5},
    ]:
        ours = engine.decide("db.read", attrs)
        # The reference: the same request as JSON text, read by the engine's
        # own JSON reader.
        reference = engine.decide_json(json.dumps({"tool": "db.read", "attrs": attrs}))
        assert ours.to_dict() == reference.to_dict(), attrs
        assert not ours.allowed


def test_ttl_errors_match_the_engines_json_reader(engine):
    attrs = {"sensitivity": "public", "task.approved": True}
    for ttl in (-1, 0, "soon", 1.5, 2.0, True, 2**64, "1h30m", 10):
        ours = engine.decide("db.read", attrs, ttl)
        reference = engine.decide_json(json.dumps({"tool": "db.read", "attrs": attrs, "ttl": ttl}))
        assert ours.to_dict() == reference.to_dict(), ttl


def test_none_leaves_an_attribute_missing_like_json_null(engine):
    decision = engine.decide("db.read", {"sensitivity": "public", "task.approved": None})
    assert not decision.allowed
    assert decision.errors == []
    assert decision.missing == ["task.approved"]
    # Given twice, once as None: an error, as in JSON.
    twice = engine.decide("db.read", {"task": {"approved": None}, "task.approved": True})
    assert twice.errors == ["attribute `task.approved` is given twice"]


def test_a_non_string_key_denies(engine):
    errors = denied(engine.decide("db.read", {"sensitivity": "public", 7: True}))
    assert errors == ["the keys of `attrs` must be strings, found a Python `int` (7)"]
    errors = denied(engine.decide("db.read", {"task": {("a",): True}}))
    assert errors[0].startswith("the keys of `task` must be strings")


def test_an_undeclared_attribute_denies(engine):
    errors = denied(engine.decide("db.read", {"sensitivity": "public", "task.approved": True, "who": "me"}))
    assert errors == ["attribute `who` is not declared by the policy"]
    errors = denied(engine.decide("db.read", {"nothing": {"here": 1}}))
    assert "no declared attribute starts with `nothing.`" in errors


def test_a_huge_dict_denies_for_its_size(engine):
    huge = {f"key{i}": "x" * 100 for i in range(20_000)}
    errors = denied(engine.decide("db.read", huge))
    assert len(errors) == 1
    assert "bytes of JSON, over the limit of 1048576" in errors[0]


def test_a_huge_set_denies(engine):
    errors = denied(engine.decide("db.tag", {"labels": [str(i) for i in range(10_001)]}))
    assert errors == ["attribute `labels` has a set of 10001 elements, over the limit of 10000"]


def test_deep_nesting_denies_without_overflowing(engine):
    deep: dict = {}
    at = deep
    for _ in range(1000):
        at["a"] = {}
        at = at["a"]
    errors = denied(engine.decide("db.read", deep))
    assert len(errors) == 1
    assert errors[0].startswith("`attrs` nests deeper than 128 levels")
    # A list nested in itself is bounded too.
    nested: list = []
    nested.append(nested)
    denied(engine.decide("db.tag", {"labels": nested}))


def test_sets_from_any_python_collection(engine):
    for labels in (["pci"], ("pci", "x"), {"pci"}, frozenset({"pci", "sox"})):
        assert engine.decide("db.tag", {"labels": labels}).allowed, labels
    assert not engine.decide("db.tag", {"labels": ["sox"]}).allowed


def test_durations_as_strings_ints_and_timedeltas(engine):
    for wait in ("5m", 300, timedelta(minutes=5)):
        decision = engine.decide("db.wait", {"wait": wait})
        assert decision.allowed, (wait, decision.errors)
    assert not engine.decide("db.wait", {"wait": timedelta(hours=1)}).allowed


@pytest.mark.parametrize(
    "wait, message",
    [
        (timedelta(seconds=-5), "is negative"),
        (timedelta(seconds=1.5), "is not whole seconds"),
    ],
)
def test_a_negative_or_fractional_timedelta_denies(engine, wait, message):
    errors = denied(engine.decide("db.wait", {"wait": wait}))
    assert message in errors[0] and "`wait`" in errors[0]


def test_ttls(engine):
    attrs = {"sensitivity": "public", "task.approved": True}
    assert engine.decide("db.read", attrs, ttl=60).ttl_seconds == 60
    assert engine.decide("db.read", attrs, ttl="90s").ttl_seconds == 90
    assert engine.decide("db.read", attrs, ttl=timedelta(minutes=2)).ttl_seconds == 120
    assert engine.decide("db.read", attrs, ttl=None).ttl_seconds == 300
    for ttl, message in [
        (-1, "`ttl` of -1 seconds is negative"),
        (0, "`ttl` must be positive"),
        ("soon", '`ttl` expects a duration such as "90s" or "1h30m", found "soon"'),
        (1.5, "`ttl` expects a duration string or integer seconds, found a fractional number"),
        (True, "`ttl` expects a duration string or integer seconds, found `true`"),
        (timedelta(seconds=-3), "is negative"),
        (b"5m", "found a Python `bytes`"),
    ]:
        errors = denied(engine.decide("db.read", attrs, ttl=ttl))
        assert any(message in e for e in errors), (ttl, errors)


def test_tool_problems_deny(engine):
    assert denied(engine.decide("")) == ["`tool` is empty"]
    assert "over the limit" in denied(engine.decide("t" * 5000))[0]


def test_wrong_argument_types_raise_type_error(engine):
    with pytest.raises(TypeError):
        engine.decide(42)
    with pytest.raises(TypeError):
        engine.decide(None)
    with pytest.raises(TypeError):
        engine.decide("db.read", ["sensitivity"])
    with pytest.raises(TypeError):
        engine.decide("db.read", "sensitivity=public")


def test_other_mappings_are_read_as_dicts(engine):
    attrs = collections.OrderedDict(sensitivity="public")
    attrs["task"] = collections.ChainMap({"approved": True})
    assert engine.decide("db.read", attrs).allowed


def test_a_missing_policy_raises_file_not_found():
    with pytest.raises(FileNotFoundError):
        grant.Engine.load("/no/such/policy")
    with pytest.raises(FileNotFoundError):
        grant.Engine.load(pathlib.Path("/no/such/policy.grant"))


def test_a_policy_with_errors_raises_policy_error_with_diagnostics():
    with pytest.raises(grant.PolicyError) as raised:
        grant.Engine.load(POLICIES / "broken.grant")
    error = raised.value
    assert "unknown name `nope`" in str(error)
    assert "broken.grant:4:21" in str(error)
    [diagnostic] = [d for d in error.diagnostics if d["severity"] == "error"]
    assert diagnostic["code"] == "G0206"
    assert diagnostic["line"] == 4
    assert diagnostic["column"] == 21
    assert diagnostic["file"].endswith("broken.grant")
    assert isinstance(error, grant.GrantError)


def test_from_text_raises_policy_error_too():
    with pytest.raises(grant.PolicyError) as raised:
        grant.Engine.from_text("p.grant", 'allow tool "t" when nope ttl 1m')
    assert [(d["code"], d["line"], d["column"]) for d in raised.value.diagnostics] == [("G0206", 1, 21)]


def test_decision_fields_and_explain(engine):
    decision = engine.decide("db.read", {"sensitivity": "internal", "task": {"approved": True}})
    assert decision.allowed and bool(decision.rules)
    with pytest.raises(TypeError, match="test `decision.allowed`"):
        bool(decision)
    assert decision.rules[0]["effect"] == "allow"
    assert decision.obligations == {"uses": None, "approvals": []}
    assert decision.decision_id is None
    assert "Decision(effect=\"allow\"" in repr(decision)
    # The text `grant eval --explain` prints (grant_engine::Explainer).
    text = decision.explain()
    assert text.startswith("decision  ALLOW for 5m\n")
    assert "when     sensitivity <= internal and task.approved\n" in text
    assert "given    sensitivity = internal\n" in text
    assert "result   true" in text
    denied_text = engine.decide("db.read", {"sensitivity": "confidential"}).explain()
    assert denied_text.startswith("decision  DENY\n")
    assert "task.approved missing" in denied_text
    assert "so it is denied by default" in denied_text
