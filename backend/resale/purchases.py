"""A card purchase's moves that more than one path makes (the webhook, the worker's settlement,
the indexer, the sweeps): settled by the chain, failed and refunded, reservation given up.
Model-level only (no HTTP, no chain calls), so backend.resale.service can use it too.

Refunds of a card buyer's payment go through the outbox (``resale_refund``, idempotency key
``fairtix-resale-refund-{purchase_id}``), queued in the transaction that decides them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.payments.provider import PaymentProvider
from backend.resale.models import (
    LIVE,
    P_EXPIRED,
    P_FAILED,
    P_PAID,
    P_REFUNDED,
    P_RESERVED,
    P_SETTLED,
    P_SETTLING,
    RESERVED,
    CardPurchase,
    Listing,
)

log = logging.getLogger("fairtix.resale.cards")

REFUND_PURCHASE = "resale_refund"
"""Outbox kind: give a card resale buyer's payment back."""


def active_purchase(session: Session, listing_id: int) -> CardPurchase | None:
    """The purchase holding the listing's reservation (reserved unpaid, paid, settling)."""
    return session.scalar(
        select(CardPurchase)
        .where(
            CardPurchase.listing_id == listing_id,
            CardPurchase.status.in_((P_RESERVED, P_PAID, P_SETTLING)),
        )
        .order_by(CardPurchase.id.desc())
        .limit(1)
        .with_for_update()
    )


def release_listing(session: Session, listing: Listing) -> None:
    """The card buyer's hold on the listing ends without a sale: back on the market (the
    expiry sweep takes it off if its deadline passed meanwhile)."""
    if listing.status == RESERVED:
        listing.status, listing.reserved_until = LIVE, None


def refund(session: Session, purchase: CardPurchase, reason: str) -> None:
    """Money a card buyer paid can't become their ticket: queue its refund, once."""
    if purchase.status in (P_REFUNDED, P_SETTLED) or (
        purchase.status == P_FAILED and purchase.paid_at is not None
    ):
        return
    log.warning("card resale payment will be refunded", extra=_ids(purchase, reason))
    purchase.status = P_FAILED
    purchase.failure_reason = reason[:1000]
    purchase.paid_at = purchase.paid_at or utcnow()
    outbox.enqueue(session, REFUND_PURCHASE, {"purchase_id": purchase.id})


def on_settled(session: Session, listing_id: int, buyer: str, tx_hash: str) -> CardPurchase | None:
    """A Resold log filled the listing for ``buyer``: the card purchase that paid for it is
    settled (whichever of our transactions carried it)."""
    purchase = session.scalar(
        select(CardPurchase)
        .where(
            CardPurchase.listing_id == listing_id,
            CardPurchase.buyer_address == buyer.lower(),
            CardPurchase.status.in_((P_PAID, P_SETTLING, P_FAILED)),
        )
        .order_by(CardPurchase.id.desc())
        .limit(1)
        .with_for_update()
    )
    if purchase is None:
        return None
    if purchase.status == P_FAILED:
        # The buyer got the ticket after all: a refund queued for it must not go out. The
        # worker's refund reads the status first; a refund already made is for an operator.
        log.error(
            "a card purchase thought failed was settled on chain",
            extra={**_ids(purchase, purchase.failure_reason or ""), "needs_attention": True},
        )
    purchase.status = P_SETTLED
    purchase.settle_tx_hash = tx_hash
    purchase.settled_at = utcnow()
    purchase.failure_reason = None
    return purchase


def on_settlement_orphaned(session: Session, listing_id: int, tx_hash: str) -> None:
    """A reorg orphaned the Resold log that settled a card purchase: it is settling again; the
    settlement tracker follows its transaction (mined again, or sent again)."""
    purchase = session.scalar(
        select(CardPurchase)
        .where(
            CardPurchase.listing_id == listing_id,
            CardPurchase.status == P_SETTLED,
            CardPurchase.settle_tx_hash == tx_hash,
        )
        .with_for_update()
    )
    if purchase is None:
        return
    purchase.status, purchase.settled_at = P_SETTLING, None
    if purchase.settle_raw_tx is None:
        # Not our transaction (the order filled by another path): nothing to follow; settle again.
        purchase.status = P_PAID
        outbox.enqueue(session, "resale_settle", {"purchase_id": purchase.id})


def expire_reservations(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Unpaid reservations past their window lapse: the purchase is expired (a late payment
    still settles if the listing is free, else is refunded) and the listing is live again."""
    now = now or utcnow()
    due = session.scalars(
        select(CardPurchase)
        .where(CardPurchase.status == P_RESERVED, CardPurchase.reserved_until <= now)
        .order_by(CardPurchase.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for purchase in due:
        lapse(session, purchase, now)
    return len(due)


def lapse(session: Session, purchase: CardPurchase, now: datetime) -> None:
    purchase.status = P_EXPIRED
    purchase.failure_reason = "the payment window lapsed unpaid"
    listing = session.get(Listing, purchase.listing_id, with_for_update=True)
    if (
        listing is not None
        and listing.status == RESERVED
        and listing.reserved_until is not None
        and listing.reserved_until <= now
    ):
        release_listing(session, listing)


def refund_payment(
    sessions: sessionmaker[Session], cards: PaymentProvider, purchase_id: int
) -> None:
    """Outbox ``resale_refund``: the whole card payment back to the buyer, with the idempotency
    key ``fairtix-resale-refund-{id}`` so a retry never refunds twice."""
    with transaction(sessions) as session:
        purchase = session.get(CardPurchase, purchase_id)
        if purchase is None or purchase.status != P_FAILED or purchase.payment_intent_id is None:
            return
        intent = purchase.payment_intent_id
    cards.refund(intent, idempotency_key=f"fairtix-resale-refund-{purchase_id}")
    with transaction(sessions) as session:
        purchase = session.get(CardPurchase, purchase_id, with_for_update=True)
        assert purchase is not None
        if purchase.status == P_SETTLED:
            log.error(
                "a card purchase was refunded while its settlement landed",
                extra={**_ids(purchase, "refunded and settled"), "needs_attention": True},
            )
            return
        purchase.status = P_REFUNDED
        purchase.refunded_at = utcnow()
    log.info("card resale payment refunded", extra={"purchase_id": purchase_id})


def _ids(purchase: CardPurchase, reason: str) -> dict[str, object]:
    return {
        "purchase_id": purchase.id,
        "listing_id": purchase.listing_id,
        "token_id": purchase.token_id,
        "reason": reason,
    }
