"""Sellers' payouts: exactly one per sale of our listings, by the rail the seller chose when
listing.

* ``ether``: the contract credited the seller ``price - royalty`` in the sale's transaction; the
  seller withdraws it (``withdraw``). The payout only records it (``credited``).
* ``card``: the order named the backend's treasury as payee (the contract credited or netted the
  proceeds to it); the seller is paid back on the card that bought the ticket, a partial refund
  of that payment through the provider (outbox ``resale_payout``, idempotency key
  ``fairtix-payout-{id}``): ``pending``, then ``paid`` (or ``failed``, for an operator).

The organizer's royalty is credited on chain in every case. A payout is created by the indexer's
Resold log (in its transaction); a reorg that orphans that log takes back a payout not paid yet
(``reverted``) and flags one already refunded to a card (``reverted_after_paid``: nobody is paid
twice, and an operator is told). No HTTP here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    exists,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.payments.errors import CardRejected, PaymentIntentNotFound, ProviderRejected
from backend.payments.provider import PaymentProvider
from backend.resale.models import (
    CARD,
    ETHER,
    P_SETTLED,
    PAYOUT_CREDITED,
    PAYOUT_FAILED,
    PAYOUT_PAID,
    PAYOUT_PENDING,
    PAYOUT_REVERTED,
    PAYOUT_REVERTED_PAID,
    CardPurchase,
    Listing,
    Payout,
)
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.resale.payouts")

PAY_OUT = "resale_payout"
"""Outbox kind: refund a card-rail seller's payout to their card."""
# Payouts that count against what a card may still give back.
_ACTIVE = (PAYOUT_PENDING, PAYOUT_PAID, PAYOUT_FAILED, PAYOUT_REVERTED_PAID)


@dataclass(frozen=True)
class CardSource:
    """The card payment through which a seller holds a ticket, and what it may still give back
    for this ticket."""

    order_id: int | None
    purchase_id: int | None
    provider: str
    intent_id: str
    limit_cents: int


@dataclass(frozen=True)
class KnownFacts:
    """What :func:`card_source` reads, read already with the ticket (one statement for a
    listing request's every check): whether it was ever resold on our market, its primary
    order, and the card payouts already given back to that order's payment for it."""

    resold: bool
    order: Order | None
    given_back_cents: int


def card_source(
    session: Session, ticket: Ticket, wallet: str, known: KnownFacts | None = None
) -> CardSource | str:
    """How ``wallet`` came to hold ``ticket`` by card, or why it didn't (a sentence). The last
    sale of the ticket on our market decides: bought there by card and settled (a card resale
    purchase), else never resold here and bought from the primary card order by this wallet."""
    wallet = wallet.lower()
    if known is not None and not known.resold:
        return _primary_source(known.order, wallet, lambda _intent: known.given_back_cents)
    last_sale = session.scalar(
        select(Listing)
        .where(Listing.ticket_id == ticket.id, Listing.status == "sold")
        .order_by(Listing.closed_at.desc(), Listing.id.desc())
        .limit(1)
    )
    if last_sale is not None:
        purchase = session.scalar(
            select(CardPurchase).where(
                CardPurchase.listing_id == last_sale.id,
                CardPurchase.status == P_SETTLED,
                CardPurchase.buyer_address == wallet,
            )
        )
        if last_sale.buyer_address != wallet or purchase is None:
            return "you did not buy it by card (it was bought with ether or moved to you)"
        assert purchase.payment_intent_id is not None
        limit = purchase.amount_cents - _given_back(session, ticket.id, purchase.payment_intent_id)
        return CardSource(
            None, purchase.id, purchase.payment_provider, purchase.payment_intent_id, limit
        )
    order = session.get(Order, ticket.order_id)
    return _primary_source(order, wallet, lambda intent: _given_back(session, ticket.id, intent))


def _primary_source(
    order: Order | None, wallet: str, given_back: Callable[[str], int]
) -> CardSource | str:
    if order is None or order.buyer_address != wallet:
        return "you did not buy it from the sale (it moved to you)"
    if order.payment_provider in (None, sales.CRYPTO) or order.payment_intent_id is None:
        return "it was bought with ether"
    if order.status != sales.FULFILLED or order.refund_due_at is not None:
        return f"its card payment is being given back (order {order.status})"
    # The ticket's share of its order's total.
    limit = order.unit_price_cents - given_back(order.payment_intent_id)
    return CardSource(order.id, None, order.payment_provider, order.payment_intent_id, limit)


def resold_clause(ticket_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
    """SQL: the ticket was sold on our market at least once (KnownFacts.resold)."""
    return exists().where(Listing.ticket_id == ticket_id, Listing.status == "sold")


def given_back_clause(
    ticket_id: SQLColumnExpression[int], intent_id: SQLColumnExpression[str | None]
) -> ColumnElement[int]:
    """SQL: what card payouts of the ticket gave back to that payment (KnownFacts.given_back);
    the sum :func:`_given_back` reads."""
    return (
        select(func.coalesce(func.sum(Payout.amount_cents), 0))
        .where(
            Payout.ticket_id == ticket_id,
            Payout.payment_intent_id == intent_id,
            # Written into the SQL: a bound IN list is expanded again on every execution.
            Payout.status.in_([literal_column(f"'{status}'") for status in _ACTIVE]),
        )
        .scalar_subquery()
    )


def _given_back(session: Session, ticket_id: int, intent_id: str) -> int:
    """What card payouts of this ticket have refunded (or will) to that payment already: a
    ticket sold by a card-payout seller, bought back and sold again."""
    total = session.scalar(select(given_back_clause(literal(ticket_id), literal(intent_id))))
    return int(total or 0)


def on_sold(
    session: Session, listing: Listing, *, payee: str | None, price_wei: int, royalty_wei: int
) -> Payout | None:
    """The listing was sold (a Resold log): its seller's payout, once. A sale mined again after
    a reorg takes up the payout it had; ``payee`` (the log's) says where the proceeds went."""
    proceeds = price_wei - royalty_wei
    card = (
        listing.payout_rail == CARD
        and payee is not None
        and listing.payee_address is not None
        and payee.lower() == listing.payee_address
    )
    existing = session.scalar(
        select(Payout).where(Payout.listing_id == listing.id).with_for_update()
    )
    assert listing.sold_tx_hash is not None
    if existing is not None:
        existing.sold_tx_hash = listing.sold_tx_hash
        if existing.status == PAYOUT_REVERTED:
            existing.status = PAYOUT_PENDING if existing.rail == CARD else PAYOUT_CREDITED
            if existing.rail == CARD:
                outbox.enqueue(session, PAY_OUT, {"payout_id": existing.id})
        elif existing.status == PAYOUT_REVERTED_PAID:
            # The refund made before the reorg is this sale's payout again: nothing to pay.
            existing.status = PAYOUT_PAID
            log.warning("resold again after a reorg; its card payout stands", extra=_ids(existing))
        return existing
    payout = Payout(
        listing_id=listing.id,
        event_id=listing.event_id,
        ticket_id=listing.ticket_id,
        token_id=listing.token_id,
        seller_address=listing.seller_address,
        rail=CARD if card else ETHER,
        amount_wei=str(proceeds),
        status=PAYOUT_PENDING if card else PAYOUT_CREDITED,
        sold_tx_hash=listing.sold_tx_hash,
        paid_at=None if card else utcnow(),
    )
    if card:
        source = _source_payment(session, listing)
        if source is None:
            payout.status = PAYOUT_FAILED
            payout.failure_reason = "the card payment to pay back was not found"
            log.error("card payout has no card payment", extra={"listing_id": listing.id})
        else:
            payout.payment_provider, payout.payment_intent_id, payout.currency = source
        payout.amount_cents = listing.payout_cents or 0
    session.add(payout)
    session.flush()
    if payout.status == PAYOUT_PENDING:
        outbox.enqueue(session, PAY_OUT, {"payout_id": payout.id})
    return payout


def _source_payment(session: Session, listing: Listing) -> tuple[str, str, str] | None:
    """The card payment (provider, intent, currency) a card-rail listing's payout refunds."""
    if listing.payout_order_id is not None:
        order = session.get(Order, listing.payout_order_id)
        if order is not None and order.payment_provider and order.payment_intent_id:
            return order.payment_provider, order.payment_intent_id, order.currency
    if listing.payout_purchase_id is not None:
        purchase = session.get(CardPurchase, listing.payout_purchase_id)
        if purchase is not None and purchase.payment_intent_id:
            return purchase.payment_provider, purchase.payment_intent_id, purchase.currency
    return None


def on_sale_orphaned(session: Session, listing: Listing, tx_hash: str) -> None:
    """A reorg orphaned the Resold log that created the listing's payout."""
    payout = session.scalar(
        select(Payout)
        .where(Payout.listing_id == listing.id, Payout.sold_tx_hash == tx_hash)
        .with_for_update()
    )
    if payout is None:
        return
    if payout.status in (PAYOUT_CREDITED, PAYOUT_PENDING, PAYOUT_FAILED):
        payout.status = PAYOUT_REVERTED  # the worker refunds only a pending payout
    elif payout.status == PAYOUT_PAID:
        # The seller's card was refunded for a sale that no longer happened on chain. It is not
        # paid again if the sale is mined again (see on_sold); if it isn't, an operator decides.
        payout.status = PAYOUT_REVERTED_PAID
        log.error(
            "a reorg orphaned a resale whose card payout was already refunded",
            extra={**_ids(payout), "needs_attention": True},
        )


def pay_by_card(sessions: sessionmaker[Session], cards: PaymentProvider, payout_id: int) -> None:
    """Outbox ``resale_payout``: the partial refund of a card-rail seller's payout. The
    idempotency key makes a retry (a crash after the provider answered) refund once. Provider
    outages raise (the outbox retries); a refusal fails the payout for an operator."""
    with transaction(sessions) as session:
        payout = session.get(Payout, payout_id)
        if payout is None or payout.status != PAYOUT_PENDING:
            return
        intent, amount, provider = (
            payout.payment_intent_id,
            payout.amount_cents,
            payout.payment_provider,
        )
    if intent is None or not amount:
        _finish(sessions, payout_id, PAYOUT_FAILED, "nothing to refund to")
        return
    if provider != cards.name:
        raise LookupError(f"payout {payout_id} is to a {provider} payment; {cards.name} is set")
    try:
        cards.refund(intent, idempotency_key=f"fairtix-payout-{payout_id}", amount_cents=amount)
    except (CardRejected, PaymentIntentNotFound, ProviderRejected) as exc:
        log.error(
            "card payout refused by the provider",
            extra={"payout_id": payout_id, "error": str(exc), "needs_attention": True},
        )
        _finish(sessions, payout_id, PAYOUT_FAILED, str(exc)[:500])
        return
    _finish(sessions, payout_id, PAYOUT_PAID, None)
    log.info("card payout refunded", extra={"payout_id": payout_id, "amount_cents": amount})


def _finish(
    sessions: sessionmaker[Session], payout_id: int, status: str, reason: str | None
) -> None:
    with transaction(sessions) as session:
        payout = session.get(Payout, payout_id, with_for_update=True)
        assert payout is not None
        if payout.status == PAYOUT_REVERTED and status == PAYOUT_PAID:
            # The sale was orphaned while the refund was under way: the money went out.
            payout.status = PAYOUT_REVERTED_PAID
            log.error(
                "a card payout was refunded for a resale a reorg orphaned meanwhile",
                extra={**_ids(payout), "needs_attention": True},
            )
        elif payout.status == PAYOUT_PENDING:
            payout.status = status
        payout.failure_reason = reason
        if status == PAYOUT_PAID:
            payout.paid_at = utcnow()


def payouts_of(
    session: Session, wallet: str, *, before_id: int | None = None, limit: int = 50
) -> Sequence[Payout]:
    """A seller's payouts, newest first."""
    query = select(Payout).where(Payout.seller_address == wallet.lower())
    if before_id is not None:
        query = query.where(Payout.id < before_id)
    return session.scalars(query.order_by(Payout.id.desc()).limit(limit)).all()


def _ids(payout: Payout) -> dict[str, object]:
    return {"payout_id": payout.id, "listing_id": payout.listing_id, "tx": payout.sold_tx_hash}
