"""The card rail of the resale market: a card buyer reserves a listing for the payment window and
pays in fiat through the configured provider; the payment's webhook marks the purchase paid and
queues the relayer's settlement on chain for the buyer's wallet (backend.resale.settlement).

A listing is ``reserved`` while a card buyer pays (409 listing-reserved to everyone else, on
both rails); unpaid at the window's end it is live again (the worker's sweep, and every read
before it). Paid, it stays reserved until the settlement is decided: the Resold log makes it
sold; a settlement that can't happen refunds the card. A payment that arrives after its
reservation lapsed still settles if the listing is free, else it is refunded. No HTTP here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import outbox
from backend.db.base import utcnow
from backend.payments.paypal import CaptureResult
from backend.payments.provider import PaymentEvent
from backend.resale import purchases
from backend.resale import service as resale
from backend.resale.errors import CardRailUnavailable
from backend.resale.models import (
    P_EXPIRED,
    P_FAILED,
    P_PAID,
    P_RESERVED,
    RESERVED,
    CardPurchase,
    Listing,
)

log = logging.getLogger("fairtix.resale.cards")

SETTLE = "resale_settle"
"""Outbox kind: settle a paid card purchase on chain (backend.resale.settlement)."""
# A paid order must still be fillable when the relayer's transaction is mined: a payment that
# arrives closer than this to the order's deadline (or the resale window's close) is refunded.
SETTLE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Reservation:
    purchase_id: int
    amount_cents: int
    currency: str
    reserved_until: datetime
    view: resale.ListingView


def reserve(
    session: Session,
    wallet: str,
    listing_id: int,
    *,
    provider: str,
    window: timedelta,
    wei_per_cent: int,
    now: datetime | None = None,
) -> Reservation:
    """Holds the listing for ``wallet``'s card payment, in the caller's transaction (the listing
    row locked): refused like an ether buy (not live, own listing, resale closed, a private sale
    to someone else) and with 409 listing-reserved while another card buyer holds it."""
    now = now or utcnow()
    view = resale.get_listing(session, listing_id, for_update=True)
    listing = view.listing
    if resale.reservation_lapsed(listing, now):
        _lapse_hold(session, listing, now)
    resale.require_buyable(view, wallet, now)
    amount = resale.price_cents(listing.price_gwei * resale.GWEI, wei_per_cent)
    if amount is None:
        raise CardRailUnavailable()
    until = now + window
    purchase = CardPurchase(
        listing_id=listing.id,
        event_id=listing.event_id,
        ticket_id=listing.ticket_id,
        token_id=listing.token_id,
        buyer_address=wallet.lower(),
        amount_cents=amount,
        currency=view.tier.currency,
        payment_provider=provider,
        status=P_RESERVED,
        reserved_until=until,
        created_at=now,
    )
    listing.status, listing.reserved_until = RESERVED, until
    session.add(purchase)
    session.flush()
    log.info(
        "listing reserved for a card buyer",
        extra={"listing_id": listing.id, "purchase_id": purchase.id, "until": until.isoformat()},
    )
    return Reservation(purchase.id, amount, purchase.currency, until, view)


def _lapse_hold(session: Session, listing: Listing, now: datetime) -> None:
    held = purchases.active_purchase(session, listing.id)
    if held is not None and held.status == P_RESERVED:
        purchases.lapse(session, held, now)
    else:
        purchases.release_listing(session, listing)


def record_intent(session: Session, purchase_id: int, intent_id: str) -> CardPurchase:
    """The provider's payment for the purchase, recorded whatever became of the reservation
    meanwhile: its webhook must find the purchase (to settle it, or refund it)."""
    purchase = session.get(CardPurchase, purchase_id, with_for_update=True)
    assert purchase is not None
    purchase.payment_intent_id = intent_id
    return purchase


def abandon(session: Session, purchase_id: int, reason: str) -> None:
    """No payment could be started: the reservation ends at once."""
    purchase = session.get(CardPurchase, purchase_id, with_for_update=True)
    if purchase is None or purchase.status != P_RESERVED:
        return
    purchase.status, purchase.failure_reason = P_FAILED, reason[:1000]
    listing = session.get(Listing, purchase.listing_id, with_for_update=True)
    if listing is not None:
        purchases.release_listing(session, listing)


# -- payment outcomes (backend.payments.webhooks routes a resale purchase's events here) ----


def purchase_for_intent(session: Session, provider: str, intent_id: str) -> CardPurchase | None:
    return session.scalar(
        select(CardPurchase)
        .where(
            CardPurchase.payment_provider == provider,
            CardPurchase.payment_intent_id == intent_id,
        )
        .with_for_update()
    )


def apply_payment_event(session: Session, provider: str, event: PaymentEvent) -> bool | None:
    """What a verified payment event does to the resale purchase it pays; None if the payment
    is no resale purchase's, else whether it changed anything."""
    if event.payment_id is None:
        return None
    purchase = purchase_for_intent(session, provider, event.payment_id)
    if purchase is None:
        return None
    if event.kind == "succeeded" and event.amount is not None:
        return pay(session, purchase, event.amount, event.currency or "")
    if event.kind == "failed":
        return decline(session, purchase, event.reason or "declined")
    log.info(
        "resale payment event not acted on",
        extra={"purchase_id": purchase.id, "kind": event.kind, "type": event.type},
    )
    return False


def capturable(purchase: CardPurchase) -> bool:
    """Whether an approved PayPal payment of the purchase may still be captured: not paid yet
    (a late one is captured too: pay settles it if the listing is free, else refunds it)."""
    return purchase.paid_at is None and purchase.status in (P_RESERVED, P_EXPIRED, P_FAILED)


def apply_capture(session: Session, provider: str, capture: CaptureResult) -> bool | None:
    """What a PayPal capture's outcome does to the resale purchase it pays; None if it pays
    none."""
    purchase = purchase_for_intent(session, provider, capture.payment_id)
    if purchase is None:
        return None
    if capture.status == "COMPLETED" and capture.amount is not None:
        return pay(session, purchase, capture.amount, capture.currency or "")
    if capture.status in ("DECLINED", "FAILED"):
        return decline(session, purchase, f"paypal: {capture.reason or capture.status}")
    return False


def pay(
    session: Session,
    purchase: CardPurchase,
    amount: int,
    currency: str,
    now: datetime | None = None,
) -> bool:
    """The card buyer paid: the purchase is paid and its settlement queued, in this transaction
    (the listing stays reserved for it until the chain decides). Money that can't become the
    ticket (wrong amount, the listing gone, resale closed, too late to settle) is refunded."""
    now = now or utcnow()
    if purchase.status not in (P_RESERVED, P_EXPIRED, P_FAILED) or purchase.paid_at is not None:
        return False  # paid before (a replay under another event id), settled or refunded
    listing = session.get(Listing, purchase.listing_id, with_for_update=True)
    assert listing is not None
    view = resale.get_listing(session, listing.id)
    if amount != purchase.amount_cents or currency.lower() != purchase.currency.lower():
        _release_if_held(session, purchase, listing)
        purchases.refund(
            session,
            purchase,
            f"paid {amount} {currency}, expected {purchase.amount_cents} {purchase.currency}",
        )
        return True
    refusal = _why_not_settleable(session, purchase, view, now)
    if refusal is not None:
        _release_if_held(session, purchase, listing)
        purchases.refund(session, purchase, refusal)
        return True
    purchase.status, purchase.paid_at, purchase.failure_reason = P_PAID, now, None
    # Held for this buyer until the settlement is decided: no end to the reservation now.
    listing.status, listing.reserved_until = RESERVED, None
    outbox.enqueue(session, SETTLE, {"purchase_id": purchase.id})
    log.info("card resale paid", extra={"purchase_id": purchase.id, "listing_id": listing.id})
    return True


def _why_not_settleable(
    session: Session, purchase: CardPurchase, view: resale.ListingView, now: datetime
) -> str | None:
    listing = view.listing
    if not resale.is_open(view.event, now):
        return "resale for the event is closed (or the event was cancelled)"
    if listing.deadline <= int((now + SETTLE_MARGIN).timestamp()):
        return "the seller's order expires before it could be settled"
    if purchase.status == P_RESERVED:
        return None if listing.status == RESERVED else f"the listing is {listing.status}"
    # A late payment (the reservation lapsed, or the card was declined first): settled if the
    # listing is free, never at the expense of a buyer holding it now.
    if resale.reservation_lapsed(listing, now):
        _lapse_hold(session, listing, now)
    if listing.status != "live":
        return f"paid after the reservation lapsed, and the listing is {listing.status} now"
    return None


def _release_if_held(session: Session, purchase: CardPurchase, listing: Listing) -> None:
    if purchase.status == P_RESERVED:
        purchases.release_listing(session, listing)


def decline(session: Session, purchase: CardPurchase, reason: str) -> bool:
    """A declined card frees the listing at once; the buyer may reserve it again."""
    if purchase.status != P_RESERVED:
        return False
    purchase.status, purchase.failure_reason = P_FAILED, f"payment failed: {reason}"[:1000]
    listing = session.get(Listing, purchase.listing_id, with_for_update=True)
    if listing is not None:
        purchases.release_listing(session, listing)
    return True
