"""Python `Engine.decide` against `json.dumps` of the same 3-attribute dict.

The target: deciding costs at most 3x serializing the request's attributes
to JSON, measured in the same process, interleaved, several repeats.

    python benches/bindings/python_decide.py [--repeats 15] [--number 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import timeit

import grant

REPO = pathlib.Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "triage-agent"
TOOL = "logs.search"
ATTRS = {"env": "staging", "args.sensitivity": "internal", "args.limit": 100}
# The same request with its group nested, as most callers write it.
NESTED = {"env": "staging", "args": {"sensitivity": "internal", "limit": 100}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    engine = grant.Engine.load(POLICY)
    decision = engine.decide(TOOL, ATTRS)
    assert decision.allowed, decision.to_dict()

    decide = timeit.Timer(lambda: engine.decide(TOOL, ATTRS))
    dumps = timeit.Timer(lambda: json.dumps(ATTRS))
    empty = timeit.Timer(lambda: None)
    nested = timeit.Timer(lambda: engine.decide(TOOL, NESTED))
    full = timeit.Timer(lambda: engine.decide(TOOL, ATTRS).to_dict())
    decide_us, dumps_us, empty_us, nested_us, full_us = [], [], [], [], []
    for _ in range(args.repeats):
        # Interleaved, so that a change of machine load hits both alike.
        decide_us.append(decide.timeit(args.number) / args.number * 1e6)
        dumps_us.append(dumps.timeit(args.number) / args.number * 1e6)
        empty_us.append(empty.timeit(args.number) / args.number * 1e6)
        nested_us.append(nested.timeit(args.number) / args.number * 1e6)
        full_us.append(full.timeit(args.number // 4) / (args.number // 4) * 1e6)

    decide_median = statistics.median(decide_us)
    dumps_median = statistics.median(dumps_us)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"repeats {args.repeats} x {args.number} calls; lambda call overhead {statistics.median(empty_us):.3f} us")
    print(f"engine.decide (3 attrs)  median {decide_median:.3f} us  (min {min(decide_us):.3f})")
    print(f"json.dumps (same dict)   median {dumps_median:.3f} us  (min {min(dumps_us):.3f})")
    print(f"engine.decide (nested)   median {statistics.median(nested_us):.3f} us")
    print(f"decide + to_dict()       median {statistics.median(full_us):.3f} us  (every field built)")
    ratio = decide_median / dumps_median
    print(f"ratio decide / dumps     {ratio:.2f}  (target <= 3.00: {'met' if ratio <= 3 else 'MISSED'})")


if __name__ == "__main__":
    main()
