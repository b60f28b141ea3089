#!/usr/bin/env python3
"""A scripted MCP client for the `grant mcp` end-to-end tests.

It is a real client, the official Python SDK (`mcp`, pinned in
requirements.txt), so the gateway is tested against what agents run, not
against our own idea of the protocol.

    python3 tests/mcp/drive.py PLAN.json [--timeout S] [--keep-open S] -- COMMAND [ARGS...]

COMMAND is started as an MCP stdio server (the whole environment passed
through, its stderr on ours): the gateway, or a server directly. drive.py
initializes, lists the tools, runs the plan, optionally holds the session
open, disconnects, and prints ONE JSON report on stdout.

PLAN.json (`-` reads stdin) is a list of steps, run in order:

    {"call": "NAME", "arguments": {...}}    tools/call; optional "timeout": S
                                            (default --timeout, 30) and
                                            "progress": true (send a progress
                                            token, record the notifications)
    {"sleep": S}                            wait S seconds
    {"list_tools": true}                    tools/list again

The report has one entry in "steps" per plan step, in order:

    {"server": {"name", "version", "protocolVersion"},
     "tools": [names from the first tools/list],
     "steps": [
       {"call": NAME, "isError": bool, "text": "text blocks joined by newlines",
        "structured": structuredContent or null, "contentTypes": ["text", ...],
        "error": null},
       {"call": NAME, "isError": null, "text": null, "structured": null,
        "contentTypes": [], "error": "message", "code": -32602},  # the call raised:
                                            # a JSON-RPC error, a timeout (code
                                            # -32001), a lost connection (-32000);
                                            # "code" null if the SDK refused the result
       {"call": NAME, ..., "progress": [[progress, total, message], ...]},
       {"sleep": S},
       {"list_tools": [names]}],
     "sampling": [texts of the sampling requests the server sent us]}

Sampling requests (server -> client, e.g. server-everything's
trigger-sampling-request) are answered with the text "sampled: " plus the
request's last text, so a test sees a server request cross the gateway both
ways. Roots are not offered (the filesystem server would replace its
directory with our roots), nor elicitation.

Exit status: 0 when the session ran, whatever the calls answered (denied
calls are the point of many tests); 1 when the server could not be started
or initialized (the reason on stderr); 2 on bad arguments or a bad plan.
With --keep-open, "plan done" is written to stderr when the plan has run, so
a test can look at the open session (grants still active) before
disconnecting. Disconnecting is the SDK's: it closes the server's stdin,
waits 2 s for it to exit, then SIGTERMs its process group (the reference
servers do not exit on EOF, so a run takes about 2 s more than its plan).

Example, against the filesystem server directly (`npm ci --prefix tests/mcp`):

    mkdir -p /tmp/ws && echo hello > /tmp/ws/a.txt
    python3 tests/mcp/drive.py tests/mcp/plans/fs-read.json -- \\
        node tests/mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /tmp/ws

(tests/mcp/plans/fs-read.json reads /tmp/ws/a.txt; server-everything is
`node .../server-everything/dist/index.js stdio`.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
import mcp.types as types

DEFAULT_TIMEOUT = 30.0


class Unready(Exception):
    """The server could not be started or initialized: exit 1."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    if "--" not in argv:
        usage("missing `-- COMMAND [ARGS...]`")
    split = argv.index("--")
    ours, command = argv[:split], argv[split + 1 :]
    if not command:
        usage("missing COMMAND after `--`")
    parser = argparse.ArgumentParser(prog="drive.py", add_help=True)
    parser.add_argument("plan", help="the plan: a JSON list of steps, `-` for stdin")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="read timeout of each request, seconds (default 30)")
    parser.add_argument("--keep-open", type=float, default=0.0, metavar="SECONDS",
                        help="hold the session open this long after the plan")
    args = parser.parse_args(ours)
    args.command = command
    return args


def usage(message: str) -> None:
    print(f"drive.py: {message}\nusage: drive.py PLAN.json [--timeout S] [--keep-open S] -- COMMAND [ARGS...]",
          file=sys.stderr)
    sys.exit(2)


def load_plan(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        plan = json.loads(text)
    except (OSError, ValueError) as err:
        usage(f"cannot read the plan `{path}`: {err}")
    if not isinstance(plan, list):
        usage("the plan must be a JSON list of steps")
    for i, step in enumerate(plan):
        ok = isinstance(step, dict) and (
            (isinstance(step.get("call"), str) and isinstance(step.get("arguments", {}), dict))
            or isinstance(step.get("sleep"), (int, float))
            or step.get("list_tools") is True
        )
        if not ok:
            usage(f"plan step {i} is not a call, a sleep or a list_tools: {json.dumps(step)}")
    return plan


async def all_tools(session: ClientSession) -> list[str]:
    names: list[str] = []
    cursor = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        listing = await session.list_tools(params=params)
        names.extend(tool.name for tool in listing.tools)
        cursor = listing.next_cursor
        if not cursor:
            return names


async def call(session: ClientSession, step: dict[str, Any], timeout: float) -> dict[str, Any]:
    name = step["call"]
    progress: list[list[Any]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append([done, total, message])

    entry: dict[str, Any] = {"call": name}
    try:
        result = await session.call_tool(
            name,
            step.get("arguments", {}),
            read_timeout_seconds=float(step.get("timeout", timeout)),
            progress_callback=on_progress if step.get("progress") else None,
        )
        if not isinstance(result, types.CallToolResult):
            raise MCPError(-32603, f"not a tool result: {type(result).__name__}")
        entry.update(
            isError=bool(result.is_error),
            text="\n".join(b.text for b in result.content if isinstance(b, types.TextContent)),
            structured=result.structured_content,
            contentTypes=[b.type for b in result.content],
            error=None,
        )
    except MCPError as err:
        # A JSON-RPC error answer, a timeout or a closed connection: the
        # step records it and the plan goes on.
        entry.update(isError=None, text=None, structured=None, contentTypes=[],
                     error=err.message, code=err.code)
    except Exception as err:  # noqa: BLE001 - anything else a call raises is the step's result too
        entry.update(isError=None, text=None, structured=None, contentTypes=[],
                     error=f"{type(err).__name__}: {err}", code=None)
    if step.get("progress"):
        entry["progress"] = progress
    return entry


async def drive(args: argparse.Namespace, plan: list[dict[str, Any]]) -> dict[str, Any]:
    sampled: list[str] = []

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked = ""
        for message in params.messages:
            if isinstance(message.content, types.TextContent):
                asked = message.content.text
        sampled.append(asked)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled: {asked}"),
            model="drive.py",
            stop_reason="endTurn",
        )

    server = StdioServerParameters(command=args.command[0], args=args.command[1:], env=dict(os.environ))
    report: dict[str, Any] = {}
    ran = False
    try:
        async with stdio_client(server, errlog=sys.stderr) as streams:
            async with ClientSession(*streams, read_timeout_seconds=args.timeout, sampling_callback=sample) as session:
                try:
                    init = await session.initialize()
                    tools = await all_tools(session)
                except Exception as err:
                    raise Unready(f"the server did not initialize: {describe(err)}") from err
                report["server"] = {
                    "name": init.server_info.name,
                    "version": init.server_info.version,
                    "protocolVersion": init.protocol_version,
                }
                report["tools"] = tools
                steps: list[dict[str, Any]] = []
                report["steps"] = steps
                report["sampling"] = sampled
                for step in plan:
                    if "call" in step:
                        steps.append(await call(session, step, args.timeout))
                    elif "sleep" in step:
                        await anyio.sleep(float(step["sleep"]))
                        steps.append({"sleep": step["sleep"]})
                    else:
                        try:
                            steps.append({"list_tools": await all_tools(session)})
                        except Exception as err:  # noqa: BLE001
                            steps.append({"list_tools": None, "error": describe(err)})
                ran = True
                if args.keep_open > 0:
                    print(f"drive.py: plan done, keeping the session open {args.keep_open:g}s",
                          file=sys.stderr, flush=True)
                    await anyio.sleep(args.keep_open)
            # Leaving the transport closes the server's stdin: the disconnect.
    except Exception as err:
        if not ran:
            raise Unready(describe(err)) from err
        # A server that misbehaves on the way out does not undo a session
        # that ran: noted, and the report stands.
        print(f"drive.py: while disconnecting: {describe(err)}", file=sys.stderr)
    return report


def describe(err: BaseException) -> str:
    """One line for an exception, looking inside anyio's exception groups."""
    if isinstance(err, BaseExceptionGroup) and err.exceptions:
        return describe(err.exceptions[0])
    if isinstance(err, Unready):
        return str(err)
    if isinstance(err, MCPError):
        return f"{err.message} (code {err.code})"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def main() -> None:
    args = parse_args(sys.argv[1:])
    plan = load_plan(args.plan)
    try:
        report = anyio.run(drive, args, plan)
    except Exception as err:  # Unready, or an exception group around it
        print(f"drive.py: {describe(err)}", file=sys.stderr)
        sys.exit(1)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
