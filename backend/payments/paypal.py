"""PayPal Checkout on the Orders v2 REST API, over httpx (PayPal's SDKs are not used).

The flow: checkout creates a PayPal order (intent CAPTURE) and hands the buyer its approve link;
the buyer approves at PayPal; the shop captures the order (when the buyer's client comes back,
or when the ``CHECKOUT.ORDER.APPROVED`` webhook arrives, whichever is first); the capture, or
the ``PAYMENT.CAPTURE.COMPLETED`` webhook, pays the order. Every write carries a
``PayPal-Request-Id``, so a retried create, capture or refund returns the first answer instead
of doing it twice. Webhooks are verified by PayPal's own verify-webhook-signature API.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from backend.payments.errors import (
    PaymentNotApproved,
    ProviderRejected,
    ProviderUnavailable,
    WebhookRejected,
)
from backend.payments.provider import (
    WEBHOOK_TOLERANCE_SECONDS,
    EventKind,
    EventSource,
    PaymentEvent,
    PaymentSession,
    event_id_and_type,
    lower_keys,
)

LIVE_API = "https://api-m.paypal.com"
SANDBOX_API = "https://api-m.sandbox.paypal.com"

# PayPal's currency codes reference: these take no decimals; every other supported one takes two.
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Refresh a token this long before PayPal says it expires, so no request carries a dying one.
TOKEN_EXPIRY_MARGIN = 60.0
ORDER_ID = re.compile(r"^[A-Z0-9]{1,36}$")

# The headers PayPal signs a webhook delivery with, and the field each becomes in the
# verify-webhook-signature request (with PayPal's documented length limits).
TRANSMISSION_HEADERS = {
    "paypal-auth-algo": ("auth_algo", 100),
    "paypal-cert-url": ("cert_url", 500),
    "paypal-transmission-id": ("transmission_id", 50),
    "paypal-transmission-sig": ("transmission_sig", 500),
    "paypal-transmission-time": ("transmission_time", 100),
}

PAYPAL_KINDS: dict[str, EventKind] = {
    "CHECKOUT.ORDER.APPROVED": "approved",
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.DECLINED": "failed",
    "PAYMENT.CAPTURE.REFUNDED": "refunded",
    # A buyer's case or chargeback against a capture, and what became of it.
    "CUSTOMER.DISPUTE.CREATED": "disputed",
    "CUSTOMER.DISPUTE.UPDATED": "disputed",
    "CUSTOMER.DISPUTE.RESOLVED": "disputed",
}
DECLINE_ISSUES = frozenset({"INSTRUMENT_DECLINED", "TRANSACTION_REFUSED"})


class PayPalApiError(Exception):
    """Raised inside this module when PayPal answers a request with a 4xx error body."""

    def __init__(self, status: int, name: str, issue: str | None, message: str) -> None:
        super().__init__(f"{status} {name}{f' {issue}' if issue else ''}: {message}")
        self.status = status
        self.name = name
        self.issue = issue
        self.message = message

    @classmethod
    def from_response(cls, response: httpx.Response) -> PayPalApiError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        details = body.get("details")
        issue = None
        if isinstance(details, list) and details and isinstance(details[0], dict):
            issue = str(details[0].get("issue") or "") or None
        name = str(body.get("name") or body.get("error") or "ERROR")
        message = str(body.get("message") or body.get("error_description") or response.text[:200])
        return cls(response.status_code, name, issue, message)


class _Transient(Exception):
    """Raised inside this module for a failure worth retrying (network, PayPal 5xx)."""


@dataclass(frozen=True)
class CaptureResult:
    """How a capture ended: COMPLETED (paid), PENDING (PayPal will say later), DECLINED."""

    payment_id: str
    status: str
    capture_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    reason: str | None = None


def to_paypal_value(amount: int, currency: str) -> str:
    """Minor units as PayPal's decimal string: 2500 EUR -> "25.00", 2500 JPY -> "2500"."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        return str(amount)
    return f"{amount // 100}.{amount % 100:02d}"


def from_paypal_value(value: object, currency: str) -> int:
    """PayPal's decimal string back to minor units; anything inexact is refused."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    scale = 1 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 100
    minor = amount * scale
    if not minor.is_finite() or minor != minor.to_integral_value() or minor < 0:
        raise ValueError(f"not an amount in {currency}: {value!r}")
    return int(minor)


def _money(value: object) -> tuple[int, str] | None:
    if not isinstance(value, dict):
        return None
    currency = value.get("currency_code")
    if not isinstance(currency, str) or len(currency) != 3:
        return None
    try:
        return from_paypal_value(value.get("value"), currency), currency.lower()
    except ValueError:
        return None


def _link(resource: Mapping[str, Any], *rels: str) -> str | None:
    links = resource.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") in rels and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


def _order_id_of_capture(resource: Mapping[str, Any]) -> str | None:
    """The PayPal order a capture (or refund) resource belongs to, if it says."""
    extra = resource.get("supplementary_data")
    related = extra.get("related_ids") if isinstance(extra, dict) else None
    order_id = related.get("order_id") if isinstance(related, dict) else None
    if isinstance(order_id, str):
        return order_id
    up = _link(resource, "up")
    if up and "/v2/checkout/orders/" in up:
        return up.rsplit("/", 1)[-1]
    return None


# A resolved dispute as the shop sees it: "won" keeps the money, "lost" gives it up. The outcome
# codes of PayPal's Disputes API; any other resolution counts as lost, the cautious reading.
_WON_OUTCOMES = frozenset({"RESOLVED_SELLER_FAVOUR", "CANCELED_BY_BUYER", "DENIED"})


def _paypal_dispute(event_id: str, event_type: str, dispute: Mapping[str, Any]) -> PaymentEvent:
    """A dispute event names the capture it disputes, not the order: ``transaction_id``."""
    disputed = dispute.get("disputed_transactions")
    first = disputed[0] if isinstance(disputed, list) and disputed else None
    capture_id = first.get("seller_transaction_id") if isinstance(first, dict) else None
    if not (isinstance(capture_id, str) and ORDER_ID.match(capture_id)):
        raise WebhookRejected("the dispute names no valid PayPal capture")
    status = dispute.get("status")
    if not isinstance(status, str) or not status:
        raise WebhookRejected("the dispute has no status")
    if status == "RESOLVED":
        outcome = dispute.get("dispute_outcome")
        code = outcome.get("outcome_code") if isinstance(outcome, dict) else None
        status = "won" if code in _WON_OUTCOMES else "lost"
    money = _money(dispute.get("dispute_amount"))
    return PaymentEvent(
        id=event_id,
        type=event_type,
        kind="disputed",
        transaction_id=capture_id,
        amount=money[0] if money else None,
        currency=money[1] if money else None,
        reason=str(dispute.get("reason") or "unspecified").lower()[:200],
        status=status.lower()[:40],
    )


def parse_paypal_event(event: dict[str, Any]) -> PaymentEvent:
    """A verified PayPal webhook event as a PaymentEvent; a handled type must name its order
    (a dispute, its capture)."""
    parsed = _parse_paypal_event(event)
    try:
        created = datetime.fromisoformat(str(event["create_time"]))
    except (KeyError, ValueError):
        return parsed
    if created.tzinfo is None:
        return parsed
    return replace(parsed, created=created.timestamp())


def _parse_paypal_event(event: dict[str, Any]) -> PaymentEvent:
    event_id, event_type = event_id_and_type(event, "event_type")
    kind = PAYPAL_KINDS.get(event_type, "other")
    if kind == "other":
        return PaymentEvent(id=event_id, type=event_type, kind="other")
    resource = event.get("resource")
    if not isinstance(resource, dict):
        raise WebhookRejected("the event carries no resource")
    if kind == "disputed":
        return _paypal_dispute(event_id, event_type, resource)
    order_id = resource.get("id") if kind == "approved" else _order_id_of_capture(resource)
    if order_id is not None and not (isinstance(order_id, str) and ORDER_ID.match(order_id)):
        raise WebhookRejected("the event names no valid PayPal order id")
    if order_id is None and kind != "refunded":
        raise WebhookRejected("the event names no PayPal order")
    money = _money(resource.get("amount"))
    if kind == "succeeded" and money is None:
        raise WebhookRejected("the capture has no readable amount")
    details = resource.get("status_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return PaymentEvent(
        id=event_id,
        type=event_type,
        kind=kind,
        payment_id=order_id,
        amount=money[0] if money else None,
        currency=money[1] if money else None,
        reason=str(reason or event.get("summary") or event_type)[:500],
    )


def _capture_result(payment_id: str, order: Mapping[str, Any]) -> CaptureResult:
    captures: list[Any] = []
    units = order.get("purchase_units")
    if isinstance(units, list):
        for unit in units:
            payments = unit.get("payments") if isinstance(unit, dict) else None
            found = payments.get("captures") if isinstance(payments, dict) else None
            if isinstance(found, list):
                captures.extend(c for c in found if isinstance(c, dict))
    if not captures:
        return CaptureResult(payment_id, "PENDING", reason=f"order is {order.get('status')}")
    capture = captures[-1]
    money = _money(capture.get("amount"))
    details = capture.get("status_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return CaptureResult(
        payment_id=payment_id,
        status=str(capture.get("status") or "PENDING"),
        capture_id=str(capture["id"]) if isinstance(capture.get("id"), str) else None,
        amount=money[0] if money else None,
        currency=money[1] if money else None,
        reason=str(reason) if reason else None,
    )


class PayPalProvider:
    """PayPal Orders v2. ``api_base`` points at PayPal (live or sandbox) or a local server that
    answers as PayPal's API does."""

    name = "paypal"
    event_source: EventSource = "paypal"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        webhook_id: str,
        api_base: str = SANDBOX_API,
        *,
        return_url: str | None = None,
        cancel_url: str | None = None,
        http: httpx.Client | None = None,
        retries: int = 2,
        backoff_seconds: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._webhook_id = webhook_id
        self._return_url = return_url
        self._cancel_url = cancel_url
        self._http = http or httpx.Client(
            base_url=api_base.rstrip("/"), timeout=httpx.Timeout(20.0, connect=5.0)
        )
        self._retries = retries
        self._backoff = backoff_seconds
        self._clock = clock
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    def close(self) -> None:
        self._http.close()

    # -- transport --------------------------------------------------------------------------

    def _access_token(self) -> str:
        """OAuth2 client credentials, cached until shortly before PayPal's expiry."""
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            try:
                response = self._http.post(
                    "/v1/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self._client_id, self._client_secret),
                    headers={"Accept": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise _Transient(f"token request failed: {type(exc).__name__}: {exc}") from exc
            if response.status_code in (400, 401, 403):
                raise ProviderUnavailable(
                    self.name, f"PayPal refused the client credentials ({response.status_code})"
                )
            if not response.is_success:
                raise _Transient(f"token request answered {response.status_code}")
            try:
                body = response.json()
                token = str(body["access_token"])
                lifetime = float(body.get("expires_in", 0))
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderRejected(self.name, "unreadable token response") from exc
            self._token = token
            self._token_expires = time.monotonic() + max(lifetime - TOKEN_EXPIRY_MARGIN, 0.0)
            return token

    def _forget_token(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:
                self._token = None

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """One API call, retried on outages. Only idempotent calls come here (GETs, and writes
        with a PayPal-Request-Id), so a retry can't do anything twice."""
        last_error = "no attempt made"
        renewed = False
        attempt = 0
        while attempt <= self._retries:
            try:
                token = self._access_token()
            except _Transient as exc:
                last_error = str(exc)
                attempt += 1
                if attempt <= self._retries:
                    time.sleep(self._backoff * 2 ** (attempt - 1))
                continue
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Prefer": "return=representation",
            }
            if body is not None:
                headers["Content-Type"] = "application/json"
            if request_id is not None:
                headers["PayPal-Request-Id"] = request_id
            try:
                response = self._http.request(method, path, content=body, headers=headers)
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 401 and not renewed:
                    # Tokens can be revoked before they expire: get a new one once, then retry.
                    self._forget_token(token)
                    renewed = True
                    continue
                if response.status_code == 401:
                    raise ProviderUnavailable(self.name, "PayPal refused our access token")
                if response.is_success:
                    try:
                        parsed = response.json()
                    except ValueError as exc:
                        raise ProviderRejected(self.name, "PayPal's answer is not JSON") from exc
                    if not isinstance(parsed, dict):
                        raise ProviderRejected(self.name, "PayPal's answer is not an object")
                    return parsed
                if response.status_code not in RETRYABLE_STATUSES:
                    raise PayPalApiError.from_response(response)
                last_error = str(PayPalApiError.from_response(response))
            attempt += 1
            if attempt <= self._retries:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        raise ProviderUnavailable(self.name, last_error)

    # -- PaymentProvider ----------------------------------------------------------------------

    def create_payment(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentSession:
        experience: dict[str, str] = {
            "shipping_preference": "NO_SHIPPING",
            "user_action": "PAY_NOW",
        }
        if self._return_url:
            experience["return_url"] = self._return_url
        if self._cancel_url:
            experience["cancel_url"] = self._cancel_url
        unit: dict[str, Any] = {
            "amount": {
                "currency_code": currency.upper(),
                "value": to_paypal_value(amount, currency),
            }
        }
        if "order_id" in metadata:
            unit["custom_id"] = metadata["order_id"][:127]
            unit["description"] = f"fairtix order {metadata['order_id']}"[:127]
        request = {
            "intent": "CAPTURE",
            "purchase_units": [unit],
            "payment_source": {"paypal": {"experience_context": experience}},
        }
        try:
            order = self._call(
                "POST",
                "/v2/checkout/orders",
                body=json.dumps(request).encode(),
                request_id=idempotency_key,
            )
        except PayPalApiError as exc:
            raise ProviderRejected(self.name, str(exc)) from exc
        order_id = order.get("id")
        approve = _link(order, "payer-action", "approve")
        if not isinstance(order_id, str) or approve is None:
            raise ProviderRejected(self.name, "the created order has no id or approve link")
        return PaymentSession(
            id=order_id,
            amount=amount,
            currency=currency.lower(),
            status=str(order.get("status", "CREATED")),
            approve_url=approve,
        )

    def capture(self, payment_id: str, idempotency_key: str) -> CaptureResult:
        """Capture an approved order. A declined funding source is a DECLINED result, not an
        error: the buyer may approve the same order again with another one.

        The order is read first. A captured order answers from its capture; an unapproved one
        is refused without calling capture, and the request id carries the approval's time, so
        that neither an early attempt nor a declined one leaves PayPal a stored error under the
        id the real capture will use. Two callers capturing one approval share the id: PayPal
        captures once.
        """
        if not ORDER_ID.match(payment_id):
            raise ProviderRejected(self.name, f"not a PayPal order id: {payment_id!r}")
        current = self._get_order(payment_id)
        if current.get("status") == "COMPLETED":
            return _capture_result(payment_id, current)
        if current.get("status") != "APPROVED":
            raise PaymentNotApproved(payment_id)
        approved_at = current.get("update_time") or current.get("create_time")
        request_id = f"{idempotency_key}-{approved_at}" if approved_at else idempotency_key
        try:
            order = self._call(
                "POST",
                f"/v2/checkout/orders/{payment_id}/capture",
                body=b"{}",
                request_id=request_id,
            )
        except PayPalApiError as exc:
            if exc.issue == "ORDER_NOT_APPROVED":
                raise PaymentNotApproved(payment_id) from exc
            if exc.issue in DECLINE_ISSUES:
                return CaptureResult(payment_id, "DECLINED", reason=exc.issue)
            if exc.issue != "ORDER_ALREADY_CAPTURED":
                raise ProviderRejected(self.name, str(exc)) from exc
            # Captured already under another request id: read the capture it made.
            order = self._get_order(payment_id)
        return _capture_result(payment_id, order)

    def order_of_capture(self, capture_id: str) -> str | None:
        """The PayPal order a capture belongs to (a dispute names only the capture); None if
        PayPal knows no such capture."""
        try:
            capture = self._call("GET", f"/v2/payments/captures/{capture_id}")
        except PayPalApiError as exc:
            if exc.status == 404:
                return None
            raise ProviderRejected(self.name, str(exc)) from exc
        order_id = _order_id_of_capture(capture)
        return order_id if order_id is not None and ORDER_ID.match(order_id) else None

    def _get_order(self, payment_id: str) -> dict[str, Any]:
        try:
            return self._call("GET", f"/v2/checkout/orders/{payment_id}")
        except PayPalApiError as exc:
            raise ProviderRejected(self.name, str(exc)) from exc

    def refund(
        self, payment_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> None:
        if not ORDER_ID.match(payment_id):
            raise ProviderRejected(self.name, f"not a PayPal order id: {payment_id!r}")
        result = _capture_result(payment_id, self._get_order(payment_id))
        if result.capture_id is None or result.status not in (
            "COMPLETED",
            "PARTIALLY_REFUNDED",
            "REFUNDED",
        ):
            raise ProviderRejected(
                self.name, f"PayPal order {payment_id} has no completed capture to refund"
            )
        if result.status == "REFUNDED" and amount_cents is None:
            return
        body = b"{}"  # an empty refund gives back the whole capture
        if amount_cents is not None:
            if result.currency is None:
                raise ProviderRejected(
                    self.name, f"PayPal order {payment_id}'s capture names no currency"
                )
            amount = {
                "value": to_paypal_value(amount_cents, result.currency),
                "currency_code": result.currency.upper(),
            }
            body = json.dumps({"amount": amount}).encode()
        try:
            self._call(
                "POST",
                f"/v2/payments/captures/{result.capture_id}/refund",
                body=body,
                request_id=idempotency_key,
            )
        except PayPalApiError as exc:
            if exc.issue == "CAPTURE_FULLY_REFUNDED" and amount_cents is None:
                return
            raise ProviderRejected(self.name, str(exc)) from exc

    def verify_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """PayPal's documented check: the transmission headers, our webhook id and the event go
        to verify-webhook-signature, which must answer SUCCESS. A transmission older (or newer)
        than the tolerance is refused before asking, so a captured delivery can't be replayed
        later even though PayPal would still vouch for its signature."""
        given = lower_keys(headers)
        fields: dict[str, str] = {}
        for header, (field, limit) in TRANSMISSION_HEADERS.items():
            value = given.get(header)
            if not value:
                raise WebhookRejected(f"the {header.upper()} header is missing")
            if len(value) > limit:
                raise WebhookRejected(f"the {header.upper()} header is too long")
            fields[field] = value
        try:
            sent_at = datetime.fromisoformat(fields["transmission_time"])
        except ValueError as exc:
            raise WebhookRejected("PAYPAL-TRANSMISSION-TIME is not a date-time") from exc
        if sent_at.tzinfo is None:
            raise WebhookRejected("PAYPAL-TRANSMISSION-TIME has no time zone")
        if abs(self._clock() - sent_at.timestamp()) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected("the transmission is stale (outside the time tolerance)")
        try:
            text = payload.decode("utf-8")
            event = json.loads(text)
        except UnicodeDecodeError as exc:
            raise WebhookRejected("the body is not UTF-8") from exc
        except ValueError as exc:
            raise WebhookRejected("the body is not JSON") from exc
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise WebhookRejected("the body is not a PayPal event")
        fields["webhook_id"] = self._webhook_id
        # The event goes back byte for byte: PayPal's signature covers the body as it was sent,
        # and a re-serialised copy (other key order, other spacing) would not verify.
        request = json.dumps(fields)[:-1] + ', "webhook_event": ' + text + "}"
        try:
            answer = self._call(
                "POST", "/v1/notifications/verify-webhook-signature", body=request.encode()
            )
        except PayPalApiError as exc:
            raise WebhookRejected(f"PayPal could not verify it: {exc.message}") from exc
        if answer.get("verification_status") != "SUCCESS":
            raise WebhookRejected("the signature does not verify")
        return parse_paypal_event(event)
