"""Verifies one delivery with the Standard Webhooks reference library (PyPI standardwebhooks).

usage: standard_webhooks_verify.py SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE BODY_BASE64
Prints "verified"; exits 1 with the library's error otherwise.
"""

import base64
import sys

from standardwebhooks.webhooks import Webhook

secret, webhook_id, timestamp, signature, body = sys.argv[1:6]
headers = {"webhook-id": webhook_id, "webhook-timestamp": timestamp,
           "webhook-signature": signature}
try:
    Webhook(secret).verify(base64.b64decode(body), headers)
except Exception as e:  # the library raises its own WebhookVerificationError
    sys.exit(f"not verified: {type(e).__name__}: {e}")
print("verified")
