"""Refunds: card payments given back through their provider (the worker's ``REFUND_ORDER``), and
what an order's refund looks like to its buyer, card or crypto (``GET /orders/{id}``).

Card: the refund is queued in the transaction that decides it (a payment that can't become
tickets, or the event's cancellation) and carried out by :func:`refund_card_payment`, with an
idempotency key, so a retry never refunds twice. An order whose tickets are being minted waits:
its mint may still land (then it is refunded once fulfilled), or the contract was cancelled
first and the mint can never happen (then it is refunded at once).

Crypto: the ether is in the contract's escrow and only the ticket's holder can take it back,
with ``claimRefund`` once the contract is cancelled. The indexer applies each ``RefundClaimed``
log (backend.tickets.chain_logs); the order is ``refunded`` when every ticket was claimed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.chain.models import AppliedLog
from backend.chain.protocol import token_ids
from backend.chain.types import PURCHASE, REFUND
from backend.db.engine import transaction
from backend.payments.provider import PaymentProvider
from backend.sales import holder_refunds
from backend.sales import service as sales
from backend.sales.errors import RefundNotYet
from backend.sales.models import Order
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.sales.refunds")

RefundState = Literal["none", "pending", "refunded", "claimable_on_chain", "claimed"]
RefundMethod = Literal["card", "crypto"]
# Refund states, as GET /orders/{id} reports them.
NONE: RefundState = "none"
PENDING: RefundState = "pending"
REFUNDED: RefundState = "refunded"
CLAIMABLE: RefundState = "claimable_on_chain"
CLAIMED: RefundState = "claimed"
CARD: RefundMethod = "card"
CRYPTO: RefundMethod = "crypto"
# What a Purchased log came to when its tickets exist on chain (backend.payments.crypto).
_ISSUED_OUTCOMES = ("fulfilled", "paid_late")
# ... and a RefundClaimed log when it refunded a ticket of ours (backend.tickets.chain_logs).
_CLAIM_OUTCOMES = ("claimed", "refunded")


def refund_card_payment(
    sessions: sessionmaker[Session], chain: ChainClient, cards: PaymentProvider, order_id: int
) -> None:
    """Give a card order's payment back (outbox ``REFUND_ORDER``). Raises RefundNotYet while
    its tickets are being minted; the outbox retries later."""
    with transaction(sessions) as session:
        order = session.get(Order, order_id)
        if (
            order is None
            or order.status == sales.REFUNDED
            or order.payment_intent_id is None
            or order.payment_provider == sales.CRYPTO
        ):
            return
        intent_id, status, dispute = order.payment_intent_id, order.status, order.dispute_status
        event = session.get(Event, order.event_id)
        assert event is not None
        contract, chain_cancelled = event.contract_address, event.chain_cancelled_at is not None
    mint_void = False
    if status == sales.MINTING:
        # Refunding now and recording the mint afterwards would issue tickets for money given
        # back. Once the cancellation is confirmed on chain, a mint not mined by then never
        # will be (the contract refuses it), so the order can't get its tickets any more.
        if not chain_cancelled or chain.order_minted(contract, order_id):
            raise RefundNotYet(order_id, "its tickets are being minted; refunded once recorded")
        mint_void = True
    if dispute == "lost" or sales.dispute_holds_refund(dispute):
        _settle_disputed(sessions, order_id, mint_void)
        return
    # The idempotency key makes a retried refund (crash after the provider answered) a no-op.
    cards.refund(intent_id, idempotency_key=f"fairtix-refund-{order_id}")
    with transaction(sessions) as session:
        order = _out_of_minting(session, order_id, mint_void)
        sales.mark_refunded(session, order_id)
    log.info("order refunded", extra={"order_id": order_id, "payment_id": intent_id})


def _out_of_minting(session: Session, order_id: int, mint_void: bool) -> Order:
    """The order, locked; one whose mint the cancelled contract refuses leaves ``minting``."""
    order = session.get(Order, order_id, with_for_update=True)
    assert order is not None
    if order.status == sales.MINTING:
        if not mint_void:
            # The mint started after we looked: decide again on the next attempt.
            raise RefundNotYet(order_id, "its mint started; refunded once it is recorded")
        sales.transition(session, order, sales.PAID, "mint void: the contract was cancelled")
    return order


def _settle_disputed(sessions: sessionmaker[Session], order_id: int, mint_void: bool) -> None:
    """A refund owed on a payment under chargeback: the provider is not asked. Lost, the bank
    has already given the money back; open, the refund waits for the decision, not on a timer
    (a chargeback takes weeks): ``sales.record_dispute`` queues it again or settles it."""
    with transaction(sessions) as session:
        order = _out_of_minting(session, order_id, mint_void)
        if order.dispute_status == "lost":
            sales.mark_refunded_by_chargeback(session, order)
            return
        order.failure_reason = sales.REFUND_HELD_FOR_DISPUTE
        log.warning(
            "refund held for a chargeback",
            extra={"order_id": order_id, "dispute_status": order.dispute_status},
        )


@dataclass(frozen=True)
class Claim:
    """A crypto ticket whose holder can still claim its refund on chain."""

    token_id: int
    holder: str
    """As far as we know: its last recorded holder (the buyer, unless it moved)."""


@dataclass(frozen=True)
class RefundView:
    state: RefundState
    method: RefundMethod | None = None
    reason: str | None = None
    due_at: datetime | None = None
    refunded_at: datetime | None = None
    tickets: int = 0
    """Tickets whose money can come back (crypto: issued on chain)."""
    claimed_token_ids: list[int] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    resold_token_ids: list[int] = field(default_factory=list)
    """Card: tickets of the order someone else held, refunded to them instead."""


def method_of(order: Order) -> RefundMethod | None:
    """How the order's money would come back: through the card provider, claimed on chain, or
    not at all (no payment started)."""
    if order.payment_provider is None:
        return None
    return CRYPTO if order.payment_provider == sales.CRYPTO else CARD


def refund_view(session: Session, order: Order) -> RefundView:
    """Where the order's money stands: none, pending, refunded (card); claimable_on_chain,
    claimed (crypto; pending until the cancellation is confirmed on chain)."""
    event = session.get(Event, order.event_id)
    assert event is not None
    if order.payment_provider == sales.CRYPTO:
        return _crypto_view(session, order, event)
    if order.payment_provider is None:
        return RefundView(NONE)
    reason = _reason(order, event)
    if order.status == sales.REFUNDED:
        return RefundView(
            REFUNDED, CARD, reason, order.refund_due_at, order.refunded_at, order.quantity
        )
    if order.refund_due_at is not None:
        return RefundView(PENDING, CARD, reason, order.refund_due_at, None, order.quantity)
    if event.cancelled_at is not None and order.status == sales.FULFILLED:
        return _following_view(session, order, event)
    return RefundView(NONE, CARD)


def _following_view(session: Session, order: Order, event: Event) -> RefundView:
    """A card order of a cancelled event whose tickets changed hands (or could still): this
    card gets back the tickets its buyer held when the cancellation was mined; the others'
    face value goes to their holders (backend.sales.holder_refunds)."""
    following = holder_refunds.order_following(session, order)
    reason = _reason(order, event)
    if following.resold_token_ids:
        reason = (
            f"{reason}; {len(following.resold_token_ids)} of its tickets changed hands: each "
            "is refunded to whoever held it when the cancellation was mined"
        )
    if following.refunded_tickets == 0:
        return RefundView(NONE, CARD, reason, resold_token_ids=following.resold_token_ids)
    state = REFUNDED if following.all_paid else PENDING
    return RefundView(
        state,
        CARD,
        reason,
        event.cancelled_at,
        following.paid_at,
        following.refunded_tickets,
        resold_token_ids=following.resold_token_ids,
    )


def _crypto_view(session: Session, order: Order, event: Event) -> RefundView:
    logs = session.execute(
        select(AppliedLog.kind, AppliedLog.outcome, AppliedLog.token_id).where(
            AppliedLog.nonce == order.id, AppliedLog.address == event.contract_address
        )
    ).all()
    issued = any(kind == PURCHASE and outcome in _ISSUED_OUTCOMES for kind, outcome, _ in logs)
    if not issued:
        return RefundView(NONE, CRYPTO)
    claimed = sorted(
        token
        for kind, outcome, token in logs
        if kind == REFUND and outcome in _CLAIM_OUTCOMES and token is not None
    )
    reason = _reason(order, event)
    if len(claimed) >= order.quantity:
        return RefundView(
            CLAIMED, CRYPTO, reason, tickets=order.quantity, claimed_token_ids=claimed
        )
    if event.cancelled_at is None:
        return RefundView(NONE, CRYPTO, tickets=order.quantity)
    holders = dict(
        session.execute(
            select(Ticket.token_id, Ticket.owner_address).where(Ticket.order_id == order.id)
        ).all()
    )
    claims = [
        # Tickets of a purchase seen too late to fulfil its order have no row: still the buyer's.
        Claim(token_id, holders.get(token_id, order.buyer_address))
        for token_id in token_ids(order.id, order.quantity)
        if token_id not in claimed
    ]
    state = CLAIMABLE if event.chain_cancelled_at is not None else PENDING
    return RefundView(
        state,
        CRYPTO,
        reason,
        event.chain_cancelled_at,
        tickets=order.quantity,
        claimed_token_ids=claimed,
        claims=claims,
    )


def _reason(order: Order, event: Event) -> str | None:
    if event.cancelled_at is not None:
        if order.failure_reason in (sales.REFUND_HELD_FOR_DISPUTE, sales.REFUNDED_BY_CHARGEBACK):
            return f"event cancelled: {event.cancel_reason}; {order.failure_reason}"
        return f"event cancelled: {event.cancel_reason}"
    return order.failure_reason
