"""Drives an MCP server with the official MCP Python SDK (PyPI `mcp`) and prints what it answered.

    mcp_client.py <server> <mode> <steps>

<server>: `http://host:port/mcp` (Streamable HTTP; EPR_TOKEN, when set, goes in an Authorization
header), or `stdio:<command> <args...>` (the command is launched with this environment, e.g.
EPR_URL and EPR_TOKEN for `epr-gateway mcp`). <mode>: `auto` (the SDK's default: the current
revision, discovered) or `legacy` (the 2025 revisions' `initialize` handshake). <steps>: a JSON
list of `["tools"]`, `["resources"]`, `["templates"]`, `["resource", uri]` or
`["call", tool, arguments]`.

Prints one JSON object: the negotiated protocol version and one result per step
(`{"error": ...}` for a protocol error)."""
import asyncio
import json
import os
import shlex
import sys

import mcp.types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def server_of(spec):
    if spec.startswith("stdio:"):
        command, *args = shlex.split(spec[len("stdio:"):])
        return StdioServerParameters(command=command, args=args, env=dict(os.environ))
    token = os.environ.get("EPR_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return streamable_http_client(spec, http_client=create_mcp_http_client(headers=headers))


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def step(client, kind, *rest):
    if kind == "tools":
        return dump(await client.list_tools())
    if kind == "resources":
        return dump(await client.list_resources())
    if kind == "templates":
        return dump(await client.list_resource_templates())
    if kind == "resource":
        return dump(await client.read_resource(rest[0]))
    if kind == "call":
        result = await client.call_tool(rest[0], rest[1])
        return {
            "is_error": bool(result.is_error),
            "text": [c.text for c in result.content if isinstance(c, types.TextContent)],
            "structured": result.structured_content,
        }
    raise SystemExit(f"unknown step {kind}")


async def main(spec, mode, steps):
    results = []
    async with Client(server_of(spec), mode=mode, raise_exceptions=True) as client:
        for s in steps:
            try:
                results.append(await step(client, *s))
            except Exception as e:  # a protocol error: reported, the next step still runs
                results.append({"error": f"{type(e).__name__}: {e}"})
        version = getattr(client, "protocol_version", None)
    print(json.dumps({"protocol_version": version, "results": results}))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
