"""Posts one structured and one binary CloudEvent with the CloudEvents Python SDK (PyPI
`cloudevents`) to the gateway given as the first argument; prints the stored ids."""
import json
import sys
import urllib.request

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

base = sys.argv[1]
for mode, encode in (("structured", to_structured), ("binary", to_binary)):
    event = CloudEvent(
        {
            "type": "dev.sdk.python",
            "source": "/sdk/python",
            "datacontenttype": "application/json",
            "eprname": "python-app",
        },
        {"mode": mode, "ok": True},
    )
    headers, body = encode(event)
    request = urllib.request.Request(f"{base}/api/v1/cloudevents", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201, response.status
        print(json.load(response)["data"])
