"""A GraphQL client written as EPR's Python client (epr-python, the workshop's `eprcli`) writes its
requests: the `$obj` query templates, and in `variables.obj` its whole dataclass, output-only
fields included (`id`, `fingerprint`, `created_at`... as empty strings, `event_receiver` as `{}`),
the schema and the payload as JSON objects.
Creates and finds a receiver, an event and a group on the gateway given as the first argument;
prints a JSON summary of what it found."""
import json
import sys
import urllib.request

BASE = sys.argv[1]

CREATE_RECEIVER = "mutation ($obj: CreateEventReceiverInput!){create_event_receiver(event_receiver: $obj)}"
CREATE_EVENT = "mutation ($obj: CreateEventInput!){create_event(event: $obj)}"
CREATE_GROUP = "mutation ($obj: CreateEventReceiverGroupInput!){create_event_receiver_group(event_receiver_group: $obj)}"
FIND_RECEIVERS = "query ($obj: FindEventReceiverInput!){event_receivers(event_receiver: $obj) {id,name,type,version,description,schema}}"
FIND_EVENTS = "query ($obj: FindEventInput!){events(event: $obj) {id,name,version,release,platform_id,package,success,payload}}"
FIND_GROUPS = "query ($obj: FindEventReceiverGroupInput!){event_receiver_groups(event_receiver_group: $obj) {id,name,type,enabled,event_receiver_ids}}"


def graphql(query, obj):
    body = json.dumps({"query": query, "variables": {"obj": obj}}).encode()
    request = urllib.request.Request(
        f"{BASE}/api/v1/graphql/query",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status
        answer = json.load(response)
    if answer.get("errors"):
        raise SystemExit(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
receiver = graphql(
    CREATE_RECEIVER,
    {"id": "", "name": "python-receiver", "type": "dev.python.graphql", "version": "1.0.0",
     "description": "made by the Python client", "schema": schema, "fingerprint": "",
     "created_at": ""},
)["create_event_receiver"]
event = graphql(
    CREATE_EVENT,
    {"id": "", "name": "python-app", "version": "1.0.0", "release": "2026.11",
     "platform_id": "linux", "package": "pypi", "description": "made by the Python client",
     "payload": {"name": "joe"}, "event_receiver_id": receiver, "event_receiver": {},
     "success": True, "created_at": ""},
)["create_event"]
group = graphql(
    CREATE_GROUP,
    {"id": "", "name": "python-group", "type": "dev.python.group", "version": "1.0.0",
     "description": "made by the Python client", "enabled": True, "event_receiver_ids": [receiver],
     "created_at": "", "updated_at": "", "fingerprint": ""},
)["create_event_receiver_group"]

print(json.dumps({
    "ids": {"receiver": receiver, "event": event, "group": group},
    "receivers": graphql(FIND_RECEIVERS, {"name": "python-receiver"})["event_receivers"],
    "events": graphql(FIND_EVENTS, {"name": "python-app", "event_receiver_id": receiver})["events"],
    "groups": graphql(FIND_GROUPS, {"type": "dev.python.group"})["event_receiver_groups"],
}))
