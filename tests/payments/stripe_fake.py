"""A local HTTP server that answers the slice of Stripe's API the StripeProvider calls.

Stripe can't be reached from the test machines; this speaks its wire format (form-encoded
requests, bearer secret key, PaymentIntent and Refund JSON, error envelopes) so the real stripe
library runs unchanged against it. Idempotency-Key behaves as Stripe documents it: a key seen
before with the same request replays the first response (with ``Idempotent-Replayed: true``),
the same key with other parameters is a 400 ``idempotency_error``, and a request that never
ran (refused credentials, an injected outage) saves nothing under its key.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Saved:
    path: str
    form: dict[str, str]
    status: int
    body: dict[str, Any]


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code is not None:
        error["code"] = code
    return {"error": error}


class FakeStripe:
    def __init__(self, secret_key: str) -> None:
        self.secret_key = secret_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.saved: dict[str, Saved] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next: int | None = None  # status code to answer the next request with
        self.lock = threading.Lock()

    def succeed(self, intent_id: str) -> None:
        """What confirming with a good card does at Stripe."""
        intent = self.intents[intent_id]
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]

    def create_intent(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "amount_received": 0,
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
        return 200, intent

    def create_refund(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return 404, _error(
                "invalid_request_error",
                f"No such payment_intent: '{form.get('payment_intent')}'",
                "resource_missing",
            )
        if intent["status"] != "succeeded":
            return 400, _error(
                "invalid_request_error",
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
            )
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        left = intent["amount"] - refunded
        if left == 0:
            return 400, _error(
                "invalid_request_error",
                f"Charge ch_{intent['id'][3:]} has already been refunded.",
                "charge_already_refunded",
            )
        amount = int(form["amount"]) if "amount" in form else left
        if amount > left:
            return 400, _error(
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "amount_too_large",
            )
        refund_id = "re_" + secrets.token_hex(12)
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        self.refunds[refund_id] = refund
        return 200, refund

    def answer(
        self, path: str, form: dict[str, str], key: str | None
    ) -> tuple[int, dict[str, Any], bool]:
        """(status, body, replayed) for an authenticated POST."""
        with self.lock:
            if key:
                saved = self.saved.get(key)
                if saved is not None:
                    if saved.path != path or saved.form != form:
                        return (
                            400,
                            _error(
                                "idempotency_error",
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{key}' if you meant to execute a different request.",
                            ),
                            False,
                        )
                    return saved.status, saved.body, True
            if path == "/v1/payment_intents":
                status, body = self.create_intent(form)
            elif path == "/v1/refunds":
                status, body = self.create_refund(form)
            else:
                return 404, _error("invalid_request_error", "Unrecognized request URL"), False
            if key:
                self.saved[key] = Saved(path, form, status, body)
            return status, body, False


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output clean
            return

        def _reply(self, status: int, body: dict[str, Any], replayed: bool = False) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_" + secrets.token_hex(6))
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            key = self.headers.get("Idempotency-Key")
            fake.requests.append((self.path, key or "", form))
            if self.headers.get("Authorization") != f"Bearer {fake.secret_key}":
                self._reply(401, _error("invalid_request_error", "Invalid API Key provided"))
                return
            if fake.fail_next is not None:
                status, fake.fail_next = fake.fail_next, None
                self._reply(status, _error("api_error", "Something went wrong"))
                return
            self._reply(*fake.answer(self.path, form, key))

    return Handler


@contextmanager
def running_fake_stripe(secret_key: str) -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe(secret_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
