"""The EPR workshop's MCP server (session 4), written from its description as a test fixture: a
FastMCP server (PyPI `mcp<2`) on stdio with nine tools that call an EPR's REST and GraphQL APIs.
`fetch_*` GET `/api/v1/<kind>s/<id>`; `search_*` POST a GraphQL search of the fields in `data`;
`create_*` POST the JSON body to `/api/v1/<kind>s` and, like the original, count only a 201 as
success. Every tool takes `epr_url` (EPR_URL when empty); no token is sent (the original's flaw)."""
import os

import httpx
from mcp.server.fastmcp import FastMCP

server = FastMCP("epr-workshop")

SEARCHES = {
    # tool: (GraphQL field, its argument, the argument's input type, fields read back)
    "events": ("events", "event", "FindEventInput",
               "id name version release platform_id package description success event_receiver_id"),
    "receivers": ("event_receivers", "event_receiver", "FindEventReceiverInput",
                  "id name type version description"),
    "groups": ("event_receiver_groups", "event_receiver_group", "FindEventReceiverGroupInput",
               "id name type version description"),
}


def base(epr_url: str) -> str:
    return (epr_url or os.environ["EPR_URL"]).rstrip("/")


async def fetch(epr_url: str, kind: str, id: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{base(epr_url)}/api/v1/{kind}/{id}")).text


async def search(epr_url: str, kind: str, data: dict) -> str:
    field, argument, input_type, fields = SEARCHES[kind]
    query = f"query ($obj: {input_type}!) {{ {field}({argument}: $obj) {{ {fields} }} }}"
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{base(epr_url)}/api/v1/graphql/query",
                                 json={"query": query, "variables": {"obj": data}})
    return answer.text if answer.status_code == 200 else f"Failed to search {kind}: {answer.text}"


async def create(epr_url: str, kind: str, body: dict, what: str) -> str:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{base(epr_url)}/api/v1/{kind}", json=body)
    return f"{what} created successfully" if answer.status_code == 201 else f"Failed to create {what.lower()}: {answer.text}"


@server.tool(title="Fetch Event", description="Fetch an event from EPR")
async def fetch_event(epr_url: str, id: str) -> str:
    return await fetch(epr_url, "events", id)


@server.tool(title="Fetch Event Receiver", description="Fetch an event receiver from EPR")
async def fetch_receiver(epr_url: str, id: str) -> str:
    return await fetch(epr_url, "receivers", id)


@server.tool(title="Fetch Event Receiver Group", description="Fetch an event receiver group from EPR")
async def fetch_group(epr_url: str, id: str) -> str:
    return await fetch(epr_url, "groups", id)


@server.tool(title="Search Events", description="Search for events in EPR")
async def search_events(epr_url: str, data: dict) -> str:
    return await search(epr_url, "events", data)


@server.tool(title="Search Event Receivers", description="Search for event receivers in EPR")
async def search_receivers(epr_url: str, data: dict) -> str:
    return await search(epr_url, "receivers", data)


@server.tool(title="Search Event Receiver Groups", description="Search for event receiver groups in EPR")
async def search_groups(epr_url: str, data: dict) -> str:
    return await search(epr_url, "groups", data)


@server.tool(title="Create Event", description="Create a new event in EPR")
async def create_event(epr_url: str, event_data: dict) -> str:
    return await create(epr_url, "events", event_data, "Event")


@server.tool(title="Create Event Receiver", description="Create a new event receiver in EPR")
async def create_receiver(epr_url: str, receiver_data: dict) -> str:
    return await create(epr_url, "receivers", receiver_data, "Event receiver")


@server.tool(title="Create Event Receiver Group", description="Create a new event receiver group in EPR")
async def create_group(epr_url: str, group_data: dict) -> str:
    return await create(epr_url, "groups", group_data, "Event receiver group")


if __name__ == "__main__":
    server.run()
