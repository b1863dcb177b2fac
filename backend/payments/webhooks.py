"""Acting on card-payment events, once per provider event id."""

from __future__ import annotations

import logging
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.payments.errors import WebhookRejected
from backend.payments.models import ProcessedWebhook
from backend.sales import service as sales

log = logging.getLogger("fairtix.payments")

Outcome = Literal["processed", "duplicate", "ignored"]
HANDLED_TYPES = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed"})


def handle_card_event(session: Session, provider: str, event: dict[str, Any]) -> Outcome:
    """Apply a verified Stripe-format event. A replayed event id changes nothing."""
    event_id = event["id"]
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise WebhookRejected("the event has no type")
    # The idempotency record's columns are bounded; an oversized id or type is not an event.
    if len(event_id) > 100 or len(event_type) > 100:
        raise WebhookRejected("the event id or type is too long")
    try:
        with session.begin_nested():
            session.add(
                ProcessedWebhook(provider="stripe", event_id=event_id, event_type=event_type)
            )
    except IntegrityError:
        log.info("duplicate webhook ignored", extra={"event_id": event_id})
        return "duplicate"
    if event_type not in HANDLED_TYPES:
        return "ignored"
    data = event.get("data")
    intent = data.get("object") if isinstance(data, dict) else None
    if not isinstance(intent, dict) or not isinstance(intent.get("id"), str):
        raise WebhookRejected("the event carries no payment intent")
    intent_id: str = intent["id"]
    order = sales.order_for_intent(session, provider, intent_id)
    if order is None:
        log.warning("webhook for an unknown payment intent", extra={"intent_id": intent_id})
        return "ignored"
    if event_type == "payment_intent.succeeded":
        amount = intent.get("amount_received") or intent.get("amount")
        if not isinstance(amount, int):
            raise WebhookRejected("the payment intent has no amount")
        sales.mark_paid(
            session, order, amount, str(intent.get("currency", "")), f"{event_type} {event_id}"
        )
    else:
        error = intent.get("last_payment_error")
        reason = error.get("message") if isinstance(error, dict) else None
        sales.mark_payment_failed(session, order, str(reason or "declined")[:500])
    return "processed"
