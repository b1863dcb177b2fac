"""The sandbox card processor: the embedded default in place of Stripe.

It keeps its own PaymentIntents, takes Stripe's published test card numbers, and tells the shop
the outcome the way Stripe does: a ``payment_intent.succeeded`` or ``payment_intent.payment_failed``
event, signed with a ``Stripe-Signature`` header, POSTed to the shop's webhook URL. Deliveries go
through the outbox, so a webhook endpoint that is down is retried, as Stripe retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.db.base import utcnow
from backend.db.engine import insert_if_new, transaction
from backend.observability import requestid
from backend.payments.errors import CardRejected, PaymentIntentNotFound
from backend.payments.keepalive import KeepAlivePoster
from backend.payments.models import SandboxPaymentIntent, SandboxRefund
from backend.payments.provider import (
    EventSource,
    PaymentEvent,
    PaymentSession,
    lower_keys,
    parse_stripe_event,
    verify_stripe_signature,
)

DELIVER_WEBHOOK = "sandbox_webhook"
# How long a webhook delivery waits on the shop before the outbox tries it again later.
DELIVERY_TIMEOUT_SECONDS = 30.0
API_VERSION = "2024-06-20"

# Stripe's documented test cards (https://docs.stripe.com/testing).
SUCCEEDING_CARDS = frozenset({"4242424242424242", "5555555555554444", "4000056655665556"})
# Charged, then disputed by the cardholder (a chargeback), as Stripe's test card does.
DISPUTED_CARDS = {"4000000000000259": "fraudulent"}


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str


DECLINING_CARDS = {
    "4000000000000002": Decline("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": Decline(
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "4000000000009987": Decline("card_declined", "lost_card", "Your card was declined."),
    "4000000000000069": Decline("expired_card", None, "Your card has expired."),
    "4000000000000127": Decline("incorrect_cvc", None, "Your card's security code is incorrect."),
}


# Built once, and as Core statements: confirm runs for every card payment of an on-sale, and
# loading the intent and flushing it through the ORM cost more CPU than the statements.
_INTENTS: Table = SandboxPaymentIntent.__table__  # type: ignore[assignment]
_INTENT_FOR_UPDATE = (
    select(
        _INTENTS.c.id,
        _INTENTS.c.client_secret,
        _INTENTS.c.amount,
        _INTENTS.c.currency,
        _INTENTS.c.status,
        _INTENTS.c.intent_metadata,
    )
    .where(_INTENTS.c.id == bindparam("intent_id"))
    .with_for_update()
)
_SET_OUTCOME = (
    update(_INTENTS)
    .where(_INTENTS.c.id == bindparam("intent_id"))
    .values(status=bindparam("outcome"), last_payment_error=bindparam("error"))
)


@dataclass(frozen=True)
class _Intent:
    """What a confirmation tells the shop of its intent."""

    id: str
    amount: int
    currency: str
    status: str
    metadata: dict[str, Any]
    last_payment_error: dict[str, Any] | None


def sign_stripe_payload(payload: str, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value for a body: ``t=<ts>,v1=<hex HMAC-SHA256>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


class SandboxProvider:
    name = "sandbox"
    event_source: EventSource = "stripe"

    def __init__(
        self, sessions: sessionmaker[Session], webhook_secret: str, webhook_url: str
    ) -> None:
        self._sessions = sessions
        self._secret = webhook_secret
        self.webhook_url = webhook_url
        # Deliveries without a client handed in (the worker's) go over kept-alive connections.
        self._keepalive: KeepAlivePoster | None = None
        self._poster_lock = threading.Lock()

    def create_payment(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentSession:
        intent_id = "pi_sbx_" + secrets.token_hex(12)
        fresh = PaymentSession(
            id=intent_id,
            client_secret=f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
            amount=amount,
            currency=currency.lower(),
            status="requires_payment_method",
        )
        with transaction(self._sessions) as session:
            # Inserted unless the key has an intent already (a retried checkout), in one
            # statement: a lookup first cost every checkout a round trip for the rare retry.
            # A concurrent retry waits here on the key's unique index for the first to commit.
            values = {
                "id": fresh.id,
                "client_secret": fresh.client_secret,
                "amount": fresh.amount,
                "currency": fresh.currency,
                "status": fresh.status,
                "idempotency_key": idempotency_key,
                "intent_metadata": dict(metadata),
                "created_at": utcnow(),
            }
            if insert_if_new(session, SandboxPaymentIntent, values):
                return fresh
            existing = session.scalar(
                select(SandboxPaymentIntent).where(
                    SandboxPaymentIntent.idempotency_key == idempotency_key
                )
            )
            assert existing is not None
            return _view(existing)

    def confirm(self, intent_id: str, client_secret: str, card_number: str) -> PaymentSession:
        """Charge a test card; the outcome reaches the shop only by signed webhook."""
        number = card_number.replace(" ", "").replace("-", "")
        if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_valid(number)):
            raise CardRejected("the card number is not a valid card number")
        if not (
            number in SUCCEEDING_CARDS or number in DECLINING_CARDS or number in DISPUTED_CARDS
        ):
            raise CardRejected(
                "the sandbox takes Stripe test cards only: 4242 4242 4242 4242 succeeds, "
                "4000 0000 0000 0002 is declined, 4000 0000 0000 0259 is paid then disputed"
            )
        with transaction(self._sessions) as session:
            connection = session.connection()
            row = connection.execute(_INTENT_FOR_UPDATE, {"intent_id": intent_id}).one_or_none()
            # The same answer for an unknown id and a wrong secret: ids must not be probeable.
            if row is None or not hmac.compare_digest(
                row.client_secret.encode(), client_secret.encode()
            ):
                raise PaymentIntentNotFound(intent_id)
            if row.status in ("succeeded", "refunded"):
                # A retry whose first answer was lost: answer as the payment did (charged once,
                # no second webhook), never "failed" to a fan whose card was charged.
                return _view(row)
            if row.status != "requires_payment_method":
                raise CardRejected(f"payment intent {intent_id} is already {row.status}")
            decline = DECLINING_CARDS.get(number)
            error: dict[str, Any] | None = None
            if decline is None:
                status, event_type = "succeeded", "payment_intent.succeeded"
            else:
                status, event_type = "requires_payment_method", "payment_intent.payment_failed"
                error = {
                    "type": "card_error",
                    "code": decline.code,
                    "decline_code": decline.decline_code,
                    "message": decline.message,
                }
            connection.execute(
                _SET_OUTCOME,
                {"intent_id": intent_id, "outcome": status, "error": error},
            )
            intent = _Intent(
                row.id, row.amount, row.currency, status, dict(row.intent_metadata), error
            )
            outbox.enqueue(
                session, DELIVER_WEBHOOK, {"event": self._event(event_type, intent, card=number)}
            )
            if number in DISPUTED_CARDS:
                dispute = self._dispute(intent, DISPUTED_CARDS[number])
                outbox.enqueue(
                    session,
                    DELIVER_WEBHOOK,
                    {"event": self._envelope("charge.dispute.created", dispute)},
                )
            return _view(row, status)

    def verify_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        signature = lower_keys(headers).get("stripe-signature")
        return parse_stripe_event(verify_stripe_signature(payload, signature, self._secret))

    def refund(
        self, payment_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> None:
        """Refund a succeeded intent, ``amount_cents`` of it or all that is left. The sandbox
        marks the intent ``refunded`` once nothing is left (Stripe keeps it ``succeeded`` and
        refunds the charge; nothing here reads that difference)."""
        with transaction(self._sessions) as session:
            intent = session.get(SandboxPaymentIntent, payment_id, with_for_update=True)
            if intent is None:
                raise PaymentIntentNotFound(payment_id)
            if session.get(SandboxRefund, idempotency_key) is not None:
                return  # this refund was made already
            left = intent.amount - intent.amount_refunded
            if intent.status == "refunded" and amount_cents is None:
                return  # refunded in full under another key: the money is back
            if intent.status not in ("succeeded", "refunded"):
                raise CardRejected(
                    f"payment intent {payment_id} is {intent.status}: nothing to refund"
                )
            amount = left if amount_cents is None else amount_cents
            if amount <= 0 or amount > left:
                raise CardRejected(
                    f"payment intent {payment_id} has {left} left to refund, not {amount}"
                )
            session.add(
                SandboxRefund(idempotency_key=idempotency_key, intent_id=intent.id, amount=amount)
            )
            intent.amount_refunded += amount
            if intent.amount_refunded == intent.amount:
                intent.status = "refunded"

    def deliver(self, event: dict[str, Any], client: httpx.Client | None = None) -> None:
        """POST one event to the shop, signed now (Stripe re-signs every retry)."""
        body = json.dumps(event, separators=(",", ":"))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_stripe_payload(body, self._secret, int(time.time())),
            "User-Agent": "fairtix-sandbox/1.0 (+Stripe webhook format)",
        }
        # The confirmation's request id, from the outbox message being delivered: the webhook's
        # request takes it, and so does the mint it queues.
        request_id = requestid.current()
        if request_id is not None:
            headers[requestid.HEADER] = request_id
        if client is None:
            status, answer = self._poster().post(body.encode(), headers)
        else:
            response = client.post(self.webhook_url, content=body, headers=headers)
            status, answer = response.status_code, response.content
        if status >= 300:
            text = answer.decode("utf-8", errors="replace")[:300]
            raise RuntimeError(f"webhook endpoint answered {status}: {text}")

    def close(self) -> None:
        """Closes the kept-alive delivery connections, if any were opened."""
        if self._keepalive is not None:
            self._keepalive.close()

    def _poster(self) -> KeepAlivePoster:
        with self._poster_lock:
            if self._keepalive is None:
                self._keepalive = KeepAlivePoster(self.webhook_url, DELIVERY_TIMEOUT_SECONDS)
            return self._keepalive

    def _event(self, event_type: str, intent: _Intent, card: str) -> dict[str, Any]:
        intent_object = {
            "id": intent.id,
            "object": "payment_intent",
            "amount": intent.amount,
            "amount_received": intent.amount if intent.status == "succeeded" else 0,
            "currency": intent.currency,
            "status": intent.status,
            "metadata": intent.metadata,
            "last_payment_error": intent.last_payment_error,
            "livemode": False,
            "payment_method_types": ["card"],
            "payment_method_details": {"card": {"last4": card[-4:]}},
        }
        return self._envelope(event_type, intent_object)

    def _dispute(self, intent: _Intent, reason: str) -> dict[str, Any]:
        return {
            "id": "dp_sbx_" + secrets.token_hex(12),
            "object": "dispute",
            "amount": intent.amount,
            "currency": intent.currency,
            "payment_intent": intent.id,
            "reason": reason,
            "status": "needs_response",
            "created": int(utcnow().timestamp()),
            "livemode": False,
        }

    def _envelope(self, event_type: str, data_object: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "evt_sbx_" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(utcnow().timestamp()),
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": data_object},
        }


class _IntentFields(Protocol):
    """An intent as a stored row or as read by a Core statement."""

    id: str
    client_secret: str
    amount: int
    currency: str
    status: str


def _view(intent: _IntentFields, status: str | None = None) -> PaymentSession:
    return PaymentSession(
        id=intent.id,
        client_secret=intent.client_secret,
        amount=intent.amount,
        currency=intent.currency,
        status=status or intent.status,
    )
