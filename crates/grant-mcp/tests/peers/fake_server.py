#!/usr/bin/env python3
"""A scripted MCP server for the gateway's robustness tests: it misbehaves
on demand, which a real server cannot. Every line it receives is appended
to $FAKE_LOG (so a test can prove a denied call never reached it).

Tools: echo (answers its arguments), write (records `path`), slow (never
answers), crash (exits 3 at once), huge (answers `size` bytes of text),
garbage (writes a line that is not JSON, then answers), forbidden
(no rule of the test policy allows it). `ping` answers {}.
An unknown method gets JSON-RPC's method-not-found error. A batch gets a
batch of answers. The first argument, if any, is the protocol version to
claim in `initialize` (default: echo the client's)."""

import json
import os
import sys
import time

LOG = os.environ.get("FAKE_LOG")
CLAIMED = sys.argv[1] if len(sys.argv) > 1 else None
TOOLS = ["echo", "write", "slow", "crash", "huge", "garbage", "forbidden"]


def log(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def text(value):
    return {"content": [{"type": "text", "text": value}], "isError": False}


def answer(message):
    """The answer to one message, or None (notifications, no answer)."""
    method, mid = message.get("method"), message.get("id")
    if method is None or mid is None:
        return None
    params = message.get("params") or {}
    if method == "initialize":
        version = CLAIMED or params.get("protocolVersion")
        return {"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": version, "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake", "version": "1"}}}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": mid, "result": {}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": mid, "result": {"tools": [
            {"name": n, "inputSchema": {"type": "object"}} for n in TOOLS]}}
    if method == "tools/call":
        name, args = params.get("name"), params.get("arguments") or {}
        if name == "slow":
            return "never"
        if name == "crash":
            sys.exit(3)
        if name == "huge":
            return {"jsonrpc": "2.0", "id": mid, "result": text("x" * int(args.get("size", 0)))}
        if name == "garbage":
            sys.stdout.write("this is not json\n")
            sys.stdout.flush()
        if name == "write":
            return {"jsonrpc": "2.0", "id": mid, "result": text("wrote " + str(args.get("path")))}
        return {"jsonrpc": "2.0", "id": mid, "result": text(json.dumps(args, sort_keys=True))}
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found: " + method}}


for raw in sys.stdin:
    raw = raw.strip()
    if not raw:
        continue
    log(raw)
    try:
        message = json.loads(raw)
    except ValueError:
        continue
    if isinstance(message, list):
        answers = [a for a in (answer(m) for m in message) if a not in (None, "never")]
        if answers:
            send(answers)
        continue
    reply = answer(message)
    if reply not in (None, "never"):
        send(reply)
# stdin closed: exit, as MCP servers do.
