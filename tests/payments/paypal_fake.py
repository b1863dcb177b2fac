"""A local HTTP server that answers the slice of PayPal's REST API the PayPalProvider calls.

PayPal can't be reached from the test machines. This speaks its wire format: OAuth2 client
credentials at /v1/oauth2/token, Orders v2 create/get/capture, Payments v2 capture refunds and
the webhook verify-webhook-signature API, with PayPal's response shapes, status codes and error
bodies (``name``, ``message``, ``details[].issue``, ``debug_id``). ``PayPal-Request-Id`` makes a
repeated write return the first response, as PayPal documents it.

What only PayPal's own web pages do (the buyer approving, a funding source being declined) and
what PayPal does to sign webhook deliveries are test hooks here: ``approve``, ``decline_next``,
``signed_headers``. Signatures are an HMAC over PayPal's signed string
``<transmission id>|<transmission time>|<webhook id>|<crc32 of the event>`` instead of PayPal's
RSA certificate, which only PayPal's verify endpoint ever checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIGNING_KEY = b"fake-paypal-signing-key"
UNPROCESSABLE = (
    "The requested action could not be performed, semantically incorrect, or failed business "
    "validation."
)


def _id(n: int = 17) -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def paypal_error(
    status: int, name: str, message: str, issue: str | None = None, description: str = ""
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {
        "name": name,
        "message": message,
        "debug_id": secrets.token_hex(6),
        "links": [
            {
                "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{issue or name}",
                "rel": "information_link",
                "method": "GET",
            }
        ],
    }
    if issue is not None:
        body["details"] = [{"issue": issue, "description": description}]
    return status, body


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(event: Any) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


class FakePayPal:
    def __init__(self, client_id: str, client_secret: str, webhook_id: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.base = ""  # set once the server listens
        self.token_lifetime = 32400
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.orders: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}  # capture id -> capture
        self.refunds: dict[str, dict[str, Any]] = {}
        self.by_request_id: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.transmissions: dict[str, str] = {}  # transmission id -> signature
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.fail_next: list[int] = []  # statuses to answer the next requests with
        self.declines: set[str] = set()  # orders whose next capture is declined
        self.lock = threading.Lock()
        self.clock = 0.0

    def tick(self) -> str:
        """PayPal's second-precision timestamps, never the same twice for one fake."""
        self.clock = max(time.time(), self.clock + 1)
        return datetime.fromtimestamp(self.clock, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- what happens on PayPal's pages ----------------------------------------------------

    def approve(self, order_id: str) -> None:
        order = self.orders[order_id]
        order["status"] = "APPROVED"
        order["update_time"] = self.tick()
        order["payer"] = {"payer_id": "BUYER" + _id(8), "email_address": "buyer@example.com"}

    def decline_next(self, order_id: str) -> None:
        self.declines.add(order_id)

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    # -- webhooks ---------------------------------------------------------------------------

    def event(self, event_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        event_id = "WH-" + _id(17) + "-" + _id(17)
        return {
            "id": event_id,
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": "checkout-order" if event_type.startswith("CHECKOUT") else "capture",
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": event_type.replace(".", " ").lower(),
            "resource": resource,
            "links": [
                {
                    "href": f"{self.base}/v1/notifications/webhooks-events/{event_id}",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        }

    def signed_headers(
        self, event: dict[str, Any], sent_at: datetime | None = None, webhook_id: str | None = None
    ) -> dict[str, str]:
        """The headers PayPal sends a webhook delivery with."""
        transmission_id = str(uuid.uuid4())
        when = (sent_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = self._sign(transmission_id, when, webhook_id or self.webhook_id, event)
        self.transmissions[transmission_id] = sig
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": when,
            "PAYPAL-TRANSMISSION-SIG": sig,
            "PAYPAL-CERT-URL": f"{self.base}/v1/notifications/certs/CERT-360caa42-fca2a594",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "Content-Type": "application/json",
        }

    def _sign(self, transmission_id: str, when: str, webhook_id: str, event: Any) -> str:
        crc = zlib.crc32(_canonical(event))
        message = f"{transmission_id}|{when}|{webhook_id}|{crc}".encode()
        return base64.b64encode(hmac.new(SIGNING_KEY, message, hashlib.sha256).digest()).decode()

    def verify(self, body: Any) -> tuple[int, dict[str, Any]]:
        required = (
            "auth_algo",
            "cert_url",
            "transmission_id",
            "transmission_sig",
            "transmission_time",
            "webhook_id",
            "webhook_event",
        )
        missing = [f for f in required if not isinstance(body, dict) or f not in body]
        if missing:
            return paypal_error(
                400,
                "VALIDATION_ERROR",
                "Invalid request - see details",
                "MISSING_REQUIRED_PARAMETER",
                f"{missing[0]} is required",
            )
        expected = self._sign(
            body["transmission_id"],
            body["transmission_time"],
            body["webhook_id"],
            body["webhook_event"],
        )
        ok = hmac.compare_digest(expected, str(body["transmission_sig"]))
        return 200, {"verification_status": "SUCCESS" if ok else "FAILURE"}

    # -- Orders v2 --------------------------------------------------------------------------

    def order_links(self, order: dict[str, Any]) -> list[dict[str, str]]:
        url = f"{self.base}/v2/checkout/orders/{order['id']}"
        links = [{"href": url, "rel": "self", "method": "GET"}]
        if order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
            rel = "payer-action" if order["status"] == "PAYER_ACTION_REQUIRED" else "approve"
            approve = f"https://www.sandbox.paypal.com/checkoutnow?token={order['id']}"
            links.append({"href": approve, "rel": rel, "method": "GET"})
        if order["status"] == "APPROVED":
            links.append({"href": url + "/capture", "rel": "capture", "method": "POST"})
        return links

    def view(self, order: dict[str, Any]) -> dict[str, Any]:
        return {**order, "links": self.order_links(order)}

    def create_order(self, body: Any) -> tuple[int, dict[str, Any]]:
        units = body.get("purchase_units") if isinstance(body, dict) else None
        if body.get("intent") not in ("CAPTURE", "AUTHORIZE") or not isinstance(units, list):
            return paypal_error(
                400,
                "INVALID_REQUEST",
                "Request is not well-formed, syntactically incorrect, or violates schema.",
                "MISSING_REQUIRED_PARAMETER",
                "A required field / parameter is missing.",
            )
        amount = units[0].get("amount", {})
        value = str(amount.get("value", ""))
        if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{2})?", value):
            return paypal_error(
                422, "UNPROCESSABLE_ENTITY", UNPROCESSABLE, "DECIMAL_PRECISION", "bad amount"
            )
        order_id = _id(17)
        wants_context = isinstance(body.get("payment_source"), dict)
        order = {
            "id": order_id,
            "intent": body["intent"],
            "status": "PAYER_ACTION_REQUIRED" if wants_context else "CREATED",
            "purchase_units": [{"reference_id": "default", **units[0]}],
            "create_time": self.tick(),
        }
        order["update_time"] = order["create_time"]
        self.orders[order_id] = order
        return 201, self.view(order)

    def capture_order(self, order_id: str) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(order_id)
        if order is None:
            return self.not_found("order_id", order_id)
        if order["status"] == "COMPLETED":
            return paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                UNPROCESSABLE,
                "ORDER_ALREADY_CAPTURED",
                "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
            )
        if order["status"] != "APPROVED":
            return paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                UNPROCESSABLE,
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment.",
            )
        if order_id in self.declines:
            self.declines.discard(order_id)
            order["status"] = "CREATED"  # the buyer has to approve again, with another source
            order["update_time"] = self.tick()
            return paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                UNPROCESSABLE,
                "INSTRUMENT_DECLINED",
                "The instrument presented was either declined by the processor or bank, or it "
                "can't be used for this payment.",
            )
        unit = order["purchase_units"][0]
        capture_id = _id(17)
        capture = {
            "id": capture_id,
            "status": "COMPLETED",
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE"},
            "custom_id": unit.get("custom_id"),
            "create_time": _now(),
            "update_time": _now(),
            "links": [
                {
                    "href": f"{self.base}/v2/payments/captures/{capture_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"{self.base}/v2/payments/captures/{capture_id}/refund",
                    "rel": "refund",
                    "method": "POST",
                },
                {
                    "href": f"{self.base}/v2/checkout/orders/{order_id}",
                    "rel": "up",
                    "method": "GET",
                },
            ],
        }
        self.captures[capture_id] = capture
        unit["payments"] = {"captures": [capture]}
        order["status"] = "COMPLETED"
        order["update_time"] = self.tick()
        return 201, self.view(order)

    def capture_resource(self, order_id: str) -> dict[str, Any]:
        """A capture as PAYMENT.CAPTURE.* webhooks carry it."""
        capture = dict(self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0])
        capture["supplementary_data"] = {"related_ids": {"order_id": order_id}}
        return capture

    def show_capture(self, capture_id: str) -> tuple[int, dict[str, Any]]:
        """GET /v2/payments/captures/{id}: the capture, with the order it belongs to."""
        for order_id, order in self.orders.items():
            payments = order["purchase_units"][0].get("payments", {})
            if any(c["id"] == capture_id for c in payments.get("captures", [])):
                return 200, {**self.captures[capture_id], **self.capture_resource(order_id)}
        return self.not_found("capture_id", capture_id)

    def dispute_resource(
        self, capture_id: str, status: str, outcome: str | None = None
    ) -> dict[str, Any]:
        """A dispute as CUSTOMER.DISPUTE.* webhooks carry it: it names the capture only."""
        capture = self.captures.get(capture_id, {"amount": {"currency_code": "EUR", "value": "1"}})
        dispute: dict[str, Any] = {
            "dispute_id": "PP-D-" + _id(5),
            "create_time": _now(),
            "update_time": _now(),
            "disputed_transactions": [
                {"seller_transaction_id": capture_id, "seller": {"merchant_id": "FAIRTIXTEST"}}
            ],
            "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
            "status": status,
            "dispute_amount": dict(capture["amount"]),
            "dispute_life_cycle_stage": "CHARGEBACK",
            "dispute_channel": "EXTERNAL",
        }
        if outcome is not None:
            dispute["dispute_outcome"] = {"outcome_code": outcome}
        return dispute

    def refund_capture(
        self, capture_id: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        capture = self.captures.get(capture_id)
        if capture is None:
            return self.not_found("capture_id", capture_id)
        if capture["status"] == "REFUNDED":
            return paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                UNPROCESSABLE,
                "CAPTURE_FULLY_REFUNDED",
                "The capture has already been fully refunded",
            )
        captured = Decimal(capture["amount"]["value"])
        refunded = sum(
            (
                Decimal(r["amount"]["value"])
                for r in self.refunds.values()
                if r["capture"] == capture_id
            ),
            Decimal(0),
        )
        asked = (body or {}).get("amount")
        amount = dict(capture["amount"])
        if isinstance(asked, dict):
            amount = {"value": asked["value"], "currency_code": asked["currency_code"]}
        else:
            amount["value"] = str(captured - refunded)
        if Decimal(amount["value"]) > captured - refunded:
            return paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                UNPROCESSABLE,
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has "
                "not yet been refunded.",
            )
        refund_id = _id(17)
        refund = {
            "id": refund_id,
            "capture": capture_id,
            "status": "COMPLETED",
            "amount": amount,
            "links": [
                {
                    "href": f"{self.base}/v2/payments/refunds/{refund_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"{self.base}/v2/payments/captures/{capture_id}",
                    "rel": "up",
                    "method": "GET",
                },
            ],
        }
        self.refunds[refund_id] = refund
        left = captured - refunded - Decimal(amount["value"])
        capture["status"] = "REFUNDED" if left == 0 else "PARTIALLY_REFUNDED"
        return 201, refund

    def not_found(self, field: str, value: str) -> tuple[int, dict[str, Any]]:
        status, body = paypal_error(
            404,
            "RESOURCE_NOT_FOUND",
            "The specified resource does not exist.",
            "INVALID_RESOURCE_ID",
            "Specified resource ID does not exist. Please check the resource ID and try again.",
        )
        body["details"][0].update({"field": field, "value": value, "location": "path"})
        return status, body

    # -- dispatch ---------------------------------------------------------------------------

    def route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "GET" and parts[:3] == ["v2", "checkout", "orders"] and len(parts) == 4:
            order = self.orders.get(parts[3])
            return (200, self.view(order)) if order else self.not_found("order_id", parts[3])
        if method == "GET" and parts[:3] == ["v2", "payments", "captures"] and len(parts) == 4:
            return self.show_capture(parts[3])
        if method != "POST":
            return paypal_error(405, "METHOD_NOT_SUPPORTED", "The method is not supported.")
        if path == "/v2/checkout/orders":
            return self.create_order(body if isinstance(body, dict) else {})
        if parts[:3] == ["v2", "checkout", "orders"] and parts[4:] == ["capture"]:
            return self.capture_order(parts[3])
        if parts[:3] == ["v2", "payments", "captures"] and parts[4:] == ["refund"]:
            return self.refund_capture(parts[3], body if isinstance(body, dict) else None)
        if path == "/v1/notifications/verify-webhook-signature":
            return self.verify(body)
        return paypal_error(404, "NOT_FOUND", "The specified resource does not exist.")

    def answer(
        self, method: str, path: str, request_id: str | None, body: Any
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if request_id is not None and method == "POST":
                saved = self.by_request_id.get(request_id)
                if saved is not None and saved[0] == path:
                    return saved[1], saved[2]
            status, response = self.route(method, path, body)
            if request_id is not None and method == "POST" and status < 500:
                self.by_request_id[request_id] = (path, status, response)
            return status, response


def _handler(fake: FakePayPal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output clean
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Paypal-Debug-Id", secrets.token_hex(6))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> tuple[bytes, Any]:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    return raw, json.loads(raw)
                except ValueError:
                    return raw, None
            return raw, raw.decode()

        def _token(self, raw: bytes) -> None:
            expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self._reply(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "Client Authentication failed",
                    },
                )
                return
            if raw.decode() != "grant_type=client_credentials":
                self._reply(
                    400,
                    {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"},
                )
                return
            token = "A21AA" + secrets.token_urlsafe(24)
            fake.tokens[token] = time.monotonic() + fake.token_lifetime
            self._reply(
                200,
                {
                    "scope": "https://uri.paypal.com/services/payments/payment",
                    "access_token": token,
                    "token_type": "Bearer",
                    "app_id": "APP-80W284485P519543T",
                    "expires_in": fake.token_lifetime,
                    "nonce": f"{_now()}{secrets.token_hex(8)}",
                },
            )

        def _handle(self, method: str) -> None:
            raw, body = self._body() if method == "POST" else (b"", None)
            request_id = self.headers.get("PayPal-Request-Id")
            fake.requests.append((method, self.path, dict(self.headers.items()), body))
            if fake.fail_next:
                status = fake.fail_next.pop(0)
                self._reply(
                    *paypal_error(
                        status, "INTERNAL_SERVER_ERROR", "An internal server error occurred."
                    )
                )
                return
            if self.path == "/v1/oauth2/token" and method == "POST":
                self._token(raw)
                return
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            if not auth.startswith("Bearer ") or fake.tokens.get(token, 0) < time.monotonic():
                self._reply(
                    401,
                    {
                        "name": "AUTHENTICATION_FAILURE",
                        "message": "Authentication failed due to invalid authentication "
                        "credentials or a missing Authorization header.",
                        "links": [
                            {
                                "href": "https://developer.paypal.com/docs/api/overview/#error",
                                "rel": "information_link",
                            }
                        ],
                    },
                )
                return
            if method == "POST" and body is None:
                self._reply(
                    *paypal_error(
                        400,
                        "INVALID_REQUEST",
                        "Request is not well-formed, syntactically incorrect, or violates schema.",
                        "MALFORMED_REQUEST_JSON",
                        "The request JSON is not well formed.",
                    )
                )
                return
            self._reply(*fake.answer(method, self.path, request_id, body))

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@contextmanager
def running_fake_paypal(
    client_id: str, client_secret: str, webhook_id: str
) -> Iterator[tuple[FakePayPal, str]]:
    fake = FakePayPal(client_id, client_secret, webhook_id)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, fake.base
    finally:
        server.shutdown()
        server.server_close()
