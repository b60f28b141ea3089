"""Drives `grant mcp --listen` with the official MCP Python SDK's Streamable
HTTP client: crates/grant-mcp/tests/http.rs runs it against the gateway in
front of @modelcontextprotocol/server-everything. One JSON object a line
on stdout, one per step; the session ends with the SDK's DELETE."""

import json
import sys

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def say(step, **fields):
    print(json.dumps({"step": step, **fields}, default=str), flush=True)


def outcome(result):
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {"is_error": bool(result.is_error), "text": "\n".join(texts), "meta": result.meta}


async def main(url):
    async with streamable_http_client(url) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            init = await session.initialize()
            say("initialize", server=init.server_info.name)
            tools = await session.list_tools()
            say("tools", names=[tool.name for tool in tools.tools])
            say("echo", **outcome(await session.call_tool("echo", {"message": "hello"})))
            say("secret", **outcome(await session.call_tool("echo", {"message": "a secret"})))
            say("sum", **outcome(await session.call_tool("get-sum", {"a": 1, "b": 2})))
            say("echo-again", **outcome(await session.call_tool("echo", {"message": "again"})))
    say("closed")


anyio.run(main, sys.argv[1])
