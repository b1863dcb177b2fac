"""Payment providers behind one interface: the embedded sandbox, Stripe and PayPal.

Only this package imports ``stripe``. The sandbox and Stripe verify webhooks with the stripe
library's own signature check, because the sandbox speaks Stripe's webhook format byte for byte.
PayPal (``backend.payments.paypal``) verifies through PayPal's own verification API.

A provider turns a verified webhook body into a :class:`PaymentEvent`, so what an event does to
an order (``backend.payments.webhooks``) is written once for every provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import stripe

from backend.payments.errors import ProviderRejected, ProviderUnavailable, WebhookRejected

WEBHOOK_TOLERANCE_SECONDS = 300

# Which webhook route a provider's events arrive at; also the namespace of their event ids.
EventSource = Literal["stripe", "paypal"]
EventKind = Literal["approved", "succeeded", "failed", "refunded", "disputed", "other"]


@dataclass(frozen=True)
class PaymentSession:
    """What checkout hands the buyer's client: a Stripe PaymentIntent or a PayPal order.

    ``id`` is what the order records as its payment id. Stripe-style providers give a
    ``client_secret`` for the card form; PayPal gives an ``approve_url`` to send the buyer to.
    """

    id: str
    amount: int
    currency: str
    status: str
    client_secret: str | None = None
    approve_url: str | None = None


@dataclass(frozen=True)
class PaymentEvent:
    """A verified provider event, reduced to what the shop acts on.

    ``payment_id`` names the same thing as ``PaymentSession.id`` (the Stripe PaymentIntent, the
    PayPal order). ``amount`` is in the currency's minor unit, as orders store prices.
    """

    id: str
    type: str
    kind: EventKind
    payment_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    reason: str | None = None
    transaction_id: str | None = None
    """For a PayPal dispute: the capture it disputes (the event names no order; the caller
    looks the capture's order up, then sets ``payment_id``)."""
    status: str | None = None
    """For ``disputed``: the dispute's status at the provider (``needs_response``, ``won``,
    ``lost``, ...)."""
    created: float | None = None
    """When the provider created the event (Unix seconds), if it says: the payment webhook lag
    metric is measured from it."""


class PaymentProvider(Protocol):
    """A card-like payment provider: checkout creates a payment, a signed webhook says how it
    ended, and a refund gives the money back. Every call that moves money takes an idempotency
    key, so a retry (after a crash or a timeout) never does it twice."""

    name: str
    event_source: EventSource

    def create_payment(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentSession:
        """Start a payment; the same key returns the same payment instead of a second one."""
        ...

    def verify_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """Authenticate a webhook (signature and freshness) and parse it; raises WebhookRejected."""
        ...

    def refund(
        self, payment_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> None:
        """Give money back on the payment: ``amount_cents`` (minor units) of it, or, without
        an amount, everything captured. Repeating with the same key is a no-op; a partial
        refund under a new key refunds again, and one larger than what is left is refused."""
        ...


# The name this interface had while it only served cards; backend.runtime still imports it.
CardProvider = PaymentProvider


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """HTTP header names are case-insensitive; a plain dict is not."""
    return {key.lower(): value for key, value in headers.items()}


def verify_stripe_signature(
    payload: bytes, signature_header: str | None, secret: str
) -> dict[str, Any]:
    """Check a Stripe-Signature header (HMAC and timestamp tolerance) with stripe's own code,
    then parse the event."""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), signature_header, secret, WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(str(exc).split(".")[0]) from exc
    except UnicodeDecodeError as exc:
        raise WebhookRejected("the body is not UTF-8") from exc
    except (TypeError, ValueError) as exc:
        # stripe compares header text with compare_digest, which raises on non-ASCII input.
        raise WebhookRejected("the Stripe-Signature header is malformed") from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise WebhookRejected("the body is not JSON") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise WebhookRejected("the body is not a Stripe event")
    return event


STRIPE_KINDS: dict[str, EventKind] = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    # A cardholder disputed the charge with their bank (a chargeback), and what became of it.
    "charge.dispute.created": "disputed",
    "charge.dispute.updated": "disputed",
    "charge.dispute.closed": "disputed",
}


def event_id_and_type(event: dict[str, Any], type_field: str) -> tuple[str, str]:
    """The id and type of a verified provider event, or WebhookRejected: a signature vouches for
    who sent a body, not that its fields have the shape the idempotency record needs."""
    event_id, event_type = event.get("id"), event.get(type_field)
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise WebhookRejected(f"the event has no id or no {type_field}")
    # The idempotency record's columns are bounded; an oversized id or type is not an event.
    if len(event_id) > 100 or len(event_type) > 100:
        raise WebhookRejected("the event id or type is too long")
    return event_id, event_type


def parse_stripe_event(event: dict[str, Any]) -> PaymentEvent:
    """A verified Stripe-format event as a PaymentEvent; a handled type must carry its intent."""
    parsed = _parse_stripe_event(event)
    created = event.get("created")
    if isinstance(created, int | float) and not isinstance(created, bool):
        return replace(parsed, created=float(created))
    return parsed


def _parse_stripe_event(event: dict[str, Any]) -> PaymentEvent:
    event_id, event_type = event_id_and_type(event, "type")
    kind = STRIPE_KINDS.get(event_type, "other")
    if kind == "other":
        return PaymentEvent(id=event_id, type=event_type, kind="other")
    data = event.get("data")
    intent = data.get("object") if isinstance(data, dict) else None
    if kind == "disputed":
        return _stripe_dispute(event_id, event_type, intent)
    if not isinstance(intent, dict) or not isinstance(intent.get("id"), str):
        raise WebhookRejected("the event carries no payment intent")
    if kind == "succeeded":
        amount = intent.get("amount_received") or intent.get("amount")
        if not isinstance(amount, int):
            raise WebhookRejected("the payment intent has no amount")
        return PaymentEvent(
            id=event_id,
            type=event_type,
            kind=kind,
            payment_id=intent["id"],
            amount=amount,
            currency=str(intent.get("currency", "")),
        )
    error = intent.get("last_payment_error")
    reason = error.get("message") if isinstance(error, dict) else None
    return PaymentEvent(
        id=event_id,
        type=event_type,
        kind=kind,
        payment_id=intent["id"],
        reason=str(reason or "declined")[:500],
    )


def _stripe_dispute(event_id: str, event_type: str, dispute: object) -> PaymentEvent:
    """A dispute event names the PaymentIntent it disputes (None for a charge made without one,
    which no order of ours is: the event is then ignored)."""
    if not isinstance(dispute, dict) or not isinstance(dispute.get("status"), str):
        raise WebhookRejected("the event carries no dispute")
    intent_id = dispute.get("payment_intent")
    amount = dispute.get("amount")
    return PaymentEvent(
        id=event_id,
        type=event_type,
        kind="disputed",
        payment_id=intent_id if isinstance(intent_id, str) else None,
        amount=amount if isinstance(amount, int) else None,
        currency=str(dispute.get("currency") or "") or None,
        reason=str(dispute.get("reason") or "unspecified")[:200],
        status=dispute["status"][:40],
    )


def _stripe_failure(provider: str, exc: stripe.StripeError) -> Exception:
    # Stripe down, slow or refusing our key: nothing the buyer did; try again later.
    if isinstance(
        exc,
        stripe.APIConnectionError
        | stripe.APIError
        | stripe.RateLimitError
        | stripe.AuthenticationError
        | stripe.PermissionError,
    ):
        return ProviderUnavailable(provider, str(exc))
    return ProviderRejected(provider, str(exc))


class StripeProvider:
    """Stripe PaymentIntents; the API base can point at a local server that speaks Stripe's API."""

    name = "stripe"
    event_source: EventSource = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        base: Any = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(secret_key, base_addresses=base, max_network_retries=2)
        self._webhook_secret = webhook_secret

    def create_payment(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentSession:
        try:
            intent = self._client.v1.payment_intents.create(
                params={
                    "amount": amount,
                    "currency": currency,
                    "metadata": metadata,
                    "automatic_payment_methods": {"enabled": True},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _stripe_failure(self.name, exc) from exc
        return PaymentSession(
            id=intent.id,
            client_secret=intent.client_secret or "",
            amount=intent.amount,
            currency=intent.currency,
            status=intent.status,
        )

    def verify_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        signature = lower_keys(headers).get("stripe-signature")
        event = verify_stripe_signature(payload, signature, self._webhook_secret)
        return parse_stripe_event(event)

    def refund(
        self, payment_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> None:
        params: dict[str, Any] = {"payment_intent": payment_id}
        if amount_cents is not None:
            params["amount"] = amount_cents
        try:
            self._client.v1.refunds.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            # Refunded already in full (by an earlier attempt under another key, or from the
            # dashboard): for a whole refund the money is back, which is all it promises. A
            # partial refund asked of a fully refunded charge is a real refusal.
            if exc.code == "charge_already_refunded" and amount_cents is None:
                return
            raise _stripe_failure(self.name, exc) from exc
        except stripe.StripeError as exc:
            raise _stripe_failure(self.name, exc) from exc
