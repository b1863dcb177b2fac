"""Card providers behind one interface: the embedded sandbox and Stripe.

Only this package imports ``stripe``. Both providers verify webhooks with the stripe library's own
signature check, because the sandbox speaks Stripe's webhook format byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from backend.payments.errors import ProviderUnavailable, WebhookRejected

WEBHOOK_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class PaymentIntentView:
    id: str
    client_secret: str
    amount: int
    currency: str
    status: str


class CardProvider(Protocol):
    name: str

    def create_payment_intent(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntentView: ...

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]: ...

    def refund(self, intent_id: str, idempotency_key: str) -> None:
        """Give back everything captured on the intent; repeating with the same key is a no-op."""
        ...


def verify_stripe_signature(
    payload: bytes, signature_header: str | None, secret: str
) -> dict[str, Any]:
    """Check a Stripe-Signature header with stripe's own code, then parse the event."""
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


class StripeProvider:
    """Stripe PaymentIntents; the API base can point at a local server that speaks Stripe's API."""

    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        base: Any = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(secret_key, base_addresses=base, max_network_retries=2)
        self._webhook_secret = webhook_secret

    def create_payment_intent(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntentView:
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
            raise ProviderUnavailable(self.name, str(exc)) from exc
        return PaymentIntentView(
            id=intent.id,
            client_secret=intent.client_secret or "",
            amount=intent.amount,
            currency=intent.currency,
            status=intent.status,
        )

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        return verify_stripe_signature(payload, signature_header, self._webhook_secret)

    def refund(self, intent_id: str, idempotency_key: str) -> None:
        try:
            self._client.v1.refunds.create(
                params={"payment_intent": intent_id},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise ProviderUnavailable(self.name, str(exc)) from exc
