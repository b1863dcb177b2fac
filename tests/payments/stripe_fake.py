"""A local HTTP server that answers the slice of Stripe's API the StripeProvider calls.

Stripe can't be reached from the test machines; this speaks its wire format (form-encoded
requests, bearer secret key, Idempotency-Key, PaymentIntent JSON, error envelopes) so the real
stripe library runs unchanged against it.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


class FakeStripe:
    def __init__(self, secret_key: str) -> None:
        self.secret_key = secret_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next: int | None = None  # status code to answer the next request with

    def create_intent(self, form: dict[str, str], idempotency_key: str | None) -> dict[str, Any]:
        if idempotency_key and idempotency_key in self.by_idempotency_key:
            return self.intents[self.by_idempotency_key[idempotency_key]]
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "metadata": {
                key[len("metadata[") : -1]: value
                for key, value in form.items()
                if key.startswith("metadata[")
            },
            "livemode": False,
        }
        self.intents[intent_id] = intent
        if idempotency_key:
            self.by_idempotency_key[idempotency_key] = intent_id
        return intent


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output clean
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_" + secrets.token_hex(6))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            fake.requests.append((self.path, self.headers.get("Idempotency-Key", ""), form))
            if self.headers.get("Authorization") != f"Bearer {fake.secret_key}":
                self._reply(
                    401,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "Invalid API Key provided",
                        }
                    },
                )
                return
            if fake.fail_next is not None:
                status, fake.fail_next = fake.fail_next, None
                self._reply(
                    status, {"error": {"type": "api_error", "message": "Something went wrong"}}
                )
                return
            if self.path == "/v1/payment_intents":
                self._reply(200, fake.create_intent(form, self.headers.get("Idempotency-Key")))
                return
            self._reply(
                404,
                {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}},
            )

    return Handler


@contextmanager
def running_fake_stripe(secret_key: str) -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe(secret_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
