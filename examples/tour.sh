#!/usr/bin/env bash
# A five-minute tour of epr-gateway with curl: receivers, validated events, a group that
# completes, search, and the live stream. Needs a running gateway (see the README), curl and
# python3. Set EPR_URL (default http://127.0.0.1:8042) and EPR_ADMIN_TOKEN if you set one.
set -euo pipefail
cd "$(dirname "$0")"
URL=${EPR_URL:-http://127.0.0.1:8042}
AUTH=()
[ -n "${EPR_ADMIN_TOKEN:-}" ] && AUTH=(-H "Authorization: Bearer $EPR_ADMIN_TOKEN")
post() { curl -sS "${AUTH[@]}" -H 'content-type: application/json' -X POST "$URL$1" --data-binary "$2"; }
data() { python3 -c 'import json,sys; print(json.load(sys.stdin)["data"])'; }
step() { printf '\n== %s\n' "$*"; }

step "1. a receiver: what a build-finished event must look like (its JSON Schema)"
BUILD=$(post /api/v1/receivers @receivers/build-finished.json | data)
echo "receiver $BUILD"

step "2. an event for it: answered only once it is on disk"
EVENT=$(sed "s/RECEIVER_ID/$BUILD/" events/build-finished.json)
BUILT=$(post /api/v1/events "$EVENT" | data)
echo "event $BUILT"
curl -sS "$URL/api/v1/events/$BUILT" | python3 -c '
import json,sys
e = json.load(sys.stdin)["data"][0]; e["EventReceiver"] = "{...}"; print(json.dumps(e, indent=2))'

step "3. a payload that breaks the schema is refused, every violation listed"
post /api/v1/events "${EVENT/9f2c1e7/NOT-A-SHA}" ; echo

step "4. a second receiver and a group: 'release ready' = build and tests both green"
TESTS=$(post /api/v1/receivers '{"name":"ci-tests","type":"dev.cdevents.testsuiterun.finished","version":"1.0.0","description":"Test suites finished by CI","schema":{"type":"object"}}' | data)
GROUP=$(post /api/v1/groups "{\"name\":\"release-ready\",\"type\":\"dev.example.release.ready\",\"version\":\"1.0.0\",\"description\":\"build and tests passed\",\"enabled\":true,\"event_receiver_ids\":[\"$BUILD\",\"$TESTS\"]}" | data)
echo "group $GROUP"
TESTED=$(post /api/v1/events "$(sed "s/RECEIVER_ID/$TESTS/; s/build of/tests of/" events/build-finished.json)" | data)
echo "tests event $TESTED completes the group for checkout-service 2.4.1"

step "5. search, newest first"
curl -sS "$URL/api/v1/events?name=checkout-service&success=true&limit=10" | python3 -c '
import json,sys
for e in json.load(sys.stdin)["data"]: print(e["id"], e["event_receiver_id"], e["description"])'

step "6. the log, as Server-Sent Events (what watchers and the Kafka relay read)"
curl -s -N --max-time 1 "$URL/api/v1/stream?type=dev." | grep '^data:' | python3 -c '
import json,sys
for line in sys.stdin:
    m = json.loads(line[5:]); print(m["type"], m["id"], m["name"], m["version"])' || true
