#!/usr/bin/env python3
"""An on-call triage agent, without a model: a scripted plan of tool calls
whose tools are Python functions guarded by Grant (the Python binding's
`grant.guard`). Each call is decided against policy.grant and recorded in a
ledger: the first allowed call of a tool requests a grant, later calls
reuse it while it lasts. At the end the task's audit timeline is printed.

    python examples/triage-agent/agent.py [--store URL]

URL is `memory`, `sqlite:PATH` or `postgres://...`; by default a SQLite
file in a fresh temp directory. Install the binding first:
`pip install ./bindings/python`.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import grant

HERE = pathlib.Path(__file__).resolve().parent
AGENT = "triage-agent"


def short(grant_id):
    return f"{grant_id[:14]}…" if grant_id else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description="a scripted triage agent guarded by Grant")
    parser.add_argument("--store", help="ledger store URL (default: a temp SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triage-agent-") as scratch:
        store = args.store or f"sqlite:{pathlib.Path(scratch) / 'ledger.db'}"
        run(store)


def run(store: str) -> None:
    engine = grant.Engine.load(HERE / "policy.grant")
    with grant.Ledger.open(store, engine, actor="triage-runtime") as ledger:
        task = ledger.open_task(AGENT, labels={"incident": "INC-4711"})
        print(f"policy {engine.policy_hash[:19]}…  store {store}")
        print(f"task {task.task_id} opened for {AGENT}\n")

        # The agent's tools. The runtime fixes `env` for the whole task; each
        # call's arguments are read as the policy's `args.*` attributes.
        def tool(name):
            return grant.guard(ledger, task, AGENT, tool=name, attrs={"env": "staging"})

        @tool("logs.search")
        def search_logs(service: str, sensitivity: str, limit: int = 100) -> str:
            return f'{min(limit, 3)} {sensitivity} log lines of {service}: "upstream timeout" x3'

        @tool("metrics.query")
        def query_metrics(service: str) -> str:
            return f"{service} p99 latency 840 ms (baseline 120 ms)"

        @tool("tickets.comment")
        def comment(text: str) -> str:
            return f"commented: {text}"

        @tool("deploy.rollback")
        def rollback(service: str) -> str:
            return f"rolled {service} back to the previous release"

        plan = [
            ("logs.search", search_logs, {"service": "checkout", "sensitivity": "internal", "limit": 100}),
            ("metrics.query", query_metrics, {"service": "checkout"}),
            ("logs.search", search_logs, {"service": "checkout", "sensitivity": "internal", "limit": 50}),
            ("logs.search", search_logs, {"service": "payments", "sensitivity": "confidential", "limit": 20}),
            ("tickets.comment", comment, {"text": "p99 latency of checkout up 7x since 14:02"}),
            ("tickets.comment", comment, {"text": "upstream timeouts in the checkout logs"}),
            (2.2, "the 2 s log-search grant expires meanwhile"),
            ("logs.search", search_logs, {"service": "checkout", "sensitivity": "public", "limit": 200}),
            ("tickets.comment", comment, {"text": "rolling back checkout on staging"}),
            ("deploy.rollback", rollback, {"service": "checkout"}),
            ("tickets.comment", comment, {"text": "rollback done; latency back to baseline"}),
        ]

        held = {}  # tool -> the grant its last allowed call used
        step = 0
        for entry in plan:
            if len(entry) == 2:
                seconds, why = entry
                print(f"   … waiting {seconds} s: {why}")
                time.sleep(seconds)
                continue
            name, fn, call = entry
            step += 1
            try:
                result = fn(**call)
            except grant.Denied as denied:
                rules = denied.decision.rules if denied.decision is not None else []
                rule = rules[0] if rules else None
                why = f" ({rule['annotations']['reason']})" if rule and "reason" in rule["annotations"] else ""
                by = f"by rule {rule['id']}" if rule else "(no rule)"
                print(f"{step:2} DENY  {name:<16} {by}{why}: {denied.reason}")
                continue
            admission = fn.guard.last_admission
            previous = held.get(name)
            how = "new grant" if admission.issued else "reused grant"
            if admission.issued and previous:
                how = f"grant re-issued (the previous one is {ledger.grant(previous).state})"
            held[name] = admission.grant_id
            uses = "" if admission.uses_left is None else f", {admission.uses_left} use(s) left"
            print(f"{step:2} ALLOW {name:<16} {how} {short(admission.grant_id)}{uses}")
            print(f"         -> {result}")

        ledger.end_task(task)
        events = ledger.timeline(task)
        print(f"\naudit timeline of {task.task_id} ({len(events)} events)")
        print(f"{'seq':>4}  {'event':<18} {'tool':<16} {'grant':<16} effect")
        for event in events:
            decision = event.get("decision") or {}
            print(
                f"{event['seq']:>4}  {event['type']:<18} {event.get('tool') or '-':<16} "
                f"{short(event.get('grant_id')):<16} {decision.get('effect', '-')}"
            )
        verification = ledger.verify()
        state = "intact" if verification["intact"] else "BROKEN"
        print(f"\naudit chain {state}: {verification['events']} events")


if __name__ == "__main__":
    main()
