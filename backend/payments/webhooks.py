"""Acting on payment events, once per provider event id, the same way for every provider."""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.base import utcnow
from backend.db.engine import insert_if_new
from backend.notify import service as notify
from backend.payments.models import ProcessedWebhook
from backend.payments.paypal import CaptureResult
from backend.payments.provider import EventSource, PaymentEvent
from backend.resale import cards as resale_cards
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.service import token_ids_of

log = logging.getLogger("fairtix.payments")

Outcome = Literal["processed", "duplicate", "ignored"]
# Orders whose PayPal approval may still be turned into money. A failed or expired order is
# captured too: mark_paid takes its seats again if they are left and refunds the money if not.
CAPTURABLE = (sales.HELD, sales.AWAITING_PAYMENT, sales.FAILED, sales.EXPIRED)


def already_processed(session: Session, source: EventSource, event_id: str) -> bool:
    return (
        session.scalar(
            select(ProcessedWebhook.event_id).where(
                ProcessedWebhook.provider == source, ProcessedWebhook.event_id == event_id
            )
        )
        is not None
    )


def _first_delivery(session: Session, source: EventSource, event: PaymentEvent) -> bool:
    """Record the event id; False if it was recorded before (a replay, or a concurrent delivery
    of the same event, which waits here for the first one's commit). INSERT ... ON CONFLICT DO
    NOTHING."""
    values = {
        "provider": source,
        "event_id": event.id,
        "event_type": event.type,
        "received_at": utcnow(),
    }
    return insert_if_new(session, ProcessedWebhook, values)


def handle_payment_event(
    session: Session,
    provider: str,
    source: EventSource,
    event: PaymentEvent,
    capture: CaptureResult | None = None,
) -> Outcome:
    """Apply a verified event. A replayed event id changes nothing.

    ``provider`` is the name orders record their payment under; ``source`` is the namespace of
    the event ids (the sandbox and Stripe share Stripe's). For an approval, ``capture`` is what
    capturing the approved payment gave, done by the caller outside this transaction.
    """
    if not _first_delivery(session, source, event):
        log.info("duplicate webhook ignored", extra={"event_id": event.id})
        return "duplicate"
    if event.kind == "other" or event.payment_id is None:
        return "ignored"
    if event.kind == "approved":
        if capture is None:
            return "ignored"
        if apply_capture(session, provider, capture) is not None:
            return "processed"
        # A card buyer's resale purchase approved at PayPal.
        return "processed" if resale_cards.apply_capture(session, provider, capture) else "ignored"
    cause = f"{event.type} {event.id}"
    if event.kind == "succeeded" and event.amount is not None:
        paid = sales.pay_awaited_order(
            session, provider, event.payment_id, event.amount, event.currency or "", cause
        )
        if paid is not None:
            return "processed"
    found = sales.order_and_event_for_intent(session, provider, event.payment_id)
    if found is None:
        # A card buyer's resale purchase, paid through the same provider and webhook.
        resold = resale_cards.apply_payment_event(session, provider, event)
        if resold is not None:
            return "processed" if resold else "ignored"
        log.warning("webhook for an unknown payment", extra={"payment_id": event.payment_id})
        return "ignored"
    order, sale = found
    if event.kind == "succeeded":
        assert event.amount is not None
        sales.mark_paid(session, order, event.amount, event.currency or "", cause, event=sale)
    elif event.kind == "failed":
        sales.mark_payment_failed(session, order, event.reason or "declined")
    elif event.kind == "disputed":
        return "processed" if _dispute(session, order, event) else "ignored"
    elif not _refunded_in_full(session, order, event):
        return "ignored"
    return "processed"


def _dispute(session: Session, order: Order, event: PaymentEvent) -> bool:
    """Record a chargeback on the order and tell the organizer; False if it changes nothing
    (the same status again, or a late update of a decided dispute)."""
    assert event.status is not None
    reason = event.reason or "unspecified"
    if not sales.record_dispute(session, order, event.status, reason):
        return False
    notify.order_disputed(
        session, order, token_ids_of(session, order.id), event.amount, event.currency
    )
    return True


def apply_capture(session: Session, provider: str, capture: CaptureResult) -> Order | None:
    """What a capture's outcome does to its order: completed pays it, declined fails it (the
    hold is released), pending waits for PayPal's PAYMENT.CAPTURE.COMPLETED."""
    order = sales.order_for_intent(session, provider, capture.payment_id)
    if order is None:
        return None
    if capture.status == "COMPLETED":
        if capture.amount is None:
            # A completed capture without an amount can't be checked against the order; the
            # PAYMENT.CAPTURE.COMPLETED event carries it and pays the order instead.
            log.warning("capture without an amount", extra={"payment_id": capture.payment_id})
            return order
        sales.mark_paid(
            session,
            order,
            capture.amount,
            capture.currency or "",
            f"paypal capture {capture.capture_id}",
        )
    elif capture.status in ("DECLINED", "FAILED"):
        sales.mark_payment_failed(session, order, f"paypal: {capture.reason or capture.status}")
    return order


def _refunded_in_full(session: Session, order: Order, event: PaymentEvent) -> bool:
    """A refund made at the provider (its dashboard, or ours confirmed): the order shows it once
    the whole total is back. A partial refund is left to the operator who made it."""
    total = order.quantity * order.unit_price_cents
    if event.amount is not None and event.amount != total:
        log.warning("partial refund not applied", extra={"order_id": order.id})
        return False
    if sales.REFUNDED not in sales.TRANSITIONS[order.status]:
        if order.status != sales.REFUNDED:
            log.warning(
                "refund reported for an order that can't be refunded now",
                extra={"order_id": order.id, "status": order.status},
            )
        return False
    sales.mark_refunded(session, order.id)
    return True
