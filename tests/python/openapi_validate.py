"""Fetches the gateway's OpenAPI document and validates it with openapi-spec-validator.

Usage: openapi_validate.py BASE_URL. Prints the document's OpenAPI version; fails on an invalid
document.
"""

import json
import sys
import urllib.request

from openapi_spec_validator import validate

with urllib.request.urlopen(sys.argv[1] + "/api/v1/openapi") as response:
    document = json.load(response)
validate(document)
print(document["openapi"])
