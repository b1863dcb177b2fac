"""Cancellation follows the ticket: a cancelled event's face value goes back to whoever holds
each ticket when the cancellation is mined, never to a previous holder, and nobody twice.

Who holds a ticket is final only once the contract is cancelled (until then a signed sell order
can still be filled on chain), and the service knows it once the indexer has applied every log
up to that block. So the decision is the worker's (outbox ``REFUND_HOLDERS``, queued when the
cancellation is recorded), and it waits for the indexer to pass the cancellation's block.

For each ticket of the event, by how it was first paid:

- **Crypto-paid** (its face price is in the contract's escrow): its holder claims it with
  ``claimRefund``, which pays the current owner and burns the ticket. Nothing to do here.
- **Card-paid, held by its primary buyer**: that card is refunded the ticket's price. An order
  whose tickets all stayed with its buyer, unlisted, was refunded in full at the cancellation
  already (:func:`orders_following_tickets` leaves it out); the others get one refund per ticket.
- **Card-paid, held by someone else**: the primary buyer is not refunded (they sold it, and were
  paid). The holder gets the face value: back to the card they bought it with on fairtix's
  resale market, up to what that card paid (the rest, if they paid less than face, in ether),
  or, for a holder who paid in ether (or was given it), in ether from the backend's treasury.

Each refund is a :class:`HolderRefund` row, unique per ticket and rail, paid by its own outbox
message (``PAY_HOLDER_REFUND``): a card refund with an idempotency key, an ether transfer written
ahead before it is sent and then followed to its receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.catalog.models import Event, Tier
from backend.chain.client import ChainClient
from backend.chain.models import ChainCursor
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.fulfilment import nonces
from backend.payments.provider import PaymentProvider
from backend.resale.models import P_SETTLED, CardPurchase, Listing
from backend.sales import service as sales
from backend.sales.errors import HolderRefundNotYet
from backend.sales.models import (
    CARD_RAIL,
    ETHER_RAIL,
    REFUND_FAILED,
    REFUND_HELD,
    REFUND_PAID,
    REFUND_PENDING,
    REFUND_SENT,
    HolderRefund,
    Order,
)
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.sales.holder_refunds")

REFUND_HOLDERS = "refund_holders"
"""Outbox kind: decide the holder refunds of a cancelled event (payload ``{"event_id": ...}``)."""
PAY_HOLDER_REFUND = "pay_holder_refund"
"""Outbox kind: pay one holder refund (payload ``{"refund_id": ...}``)."""
GWEI = 10**9


# -- at the cancellation -------------------------------------------------------------------


def orders_following_tickets(session: Session, event_id: int, now: datetime) -> set[int]:
    """The event's orders whose card refund must wait for the chain to say who holds their
    tickets: one of them changed hands, or was listed under a sell order that can still be
    filled on chain (until its deadline, whatever fairtix's market shows). Any other paid order's
    buyer holds every ticket (or none exists yet) and can't lose them any more: it is refunded
    whole at once. Two set-based reads for the whole event, not two per order: a cancellation
    of a sold-out venue settles tens of thousands of orders in one request."""
    moved = (
        select(Ticket.order_id)
        .join(Order, Order.id == Ticket.order_id)
        .where(
            Ticket.event_id == event_id,
            (Ticket.owner_address != Order.buyer_address) | (Ticket.holder_epoch != 0),
        )
    )
    listed = (
        select(Ticket.order_id)
        .join(Listing, Listing.ticket_id == Ticket.id)
        .where(Listing.event_id == event_id, Listing.deadline > int(now.timestamp()))
    )
    return set(session.scalars(moved.distinct())) | set(session.scalars(listed.distinct()))


# -- the worker's decision -----------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    card: int = 0
    ether: int = 0


def decide(sessions: sessionmaker[Session], chain: ChainClient, event_id: int) -> Decided:
    """Outbox ``REFUND_HOLDERS``: once the indexer has passed the block that cancelled the
    event, one refund per card-paid ticket to its holder (see the module's text). Raises
    HolderRefundNotYet (the outbox retries) while the indexer is behind. Safe to run again."""
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        if event is None or event.chain_cancelled_at is None:
            return Decided()
        cancel_tx = event.chain_cancel_tx_hash
    # No transaction recorded: the contract was found cancelled and the node no longer serves
    # the EventCancelled log, so the cancellation is older than the node's log history, long
    # behind the indexer's cursor; there is no block to wait for.
    if cancel_tx is not None:
        mined = chain.transaction_receipt(cancel_tx)
        if mined is None:
            raise HolderRefundNotYet(
                f"event {event_id}'s cancellation {cancel_tx} is not mined yet"
            )
        with transaction(sessions) as session:
            cursor = session.get(ChainCursor, chain.chain_id)
            indexed = -1 if cursor is None else cursor.block_number
        if indexed < mined.block_number:
            raise HolderRefundNotYet(
                f"the indexer is at block {indexed}, before event {event_id}'s cancellation "
                f"in block {mined.block_number}: its tickets' holders are not final here yet",
            )
    with transaction(sessions) as session:
        decided = _decide_in(session, event_id)
    if decided.card or decided.ether:
        log.info("holder refunds decided", extra={"event_id": event_id, **vars(decided)})
    return decided


def _decide_in(session: Session, event_id: int) -> Decided:
    rows = session.execute(
        select(Ticket, Order, Tier)
        .join(Order, Order.id == Ticket.order_id)
        .join(Tier, Tier.id == Ticket.tier_id)
        .where(
            Ticket.event_id == event_id,
            Ticket.refund_tx_hash.is_(None),
            Order.payment_provider.is_not(None),
            Order.payment_provider != sales.CRYPTO,
        )
        .order_by(Ticket.id)
    ).all()
    done = set(
        session.execute(
            select(HolderRefund.ticket_id, HolderRefund.rail).where(
                HolderRefund.event_id == event_id
            )
        ).all()
    )
    card = ether = 0
    for ticket, order, tier in rows:
        if order.refund_due_at is not None:
            continue  # refunded in full at the cancellation: its buyer held every ticket
        for refund in _refunds_for(session, ticket, order, tier):
            if (ticket.id, refund.rail) in done:
                continue
            session.add(refund)
            session.flush()
            outbox.enqueue(session, PAY_HOLDER_REFUND, {"refund_id": refund.id})
            if refund.rail == CARD_RAIL:
                card += 1
            else:
                ether += 1
    return Decided(card, ether)


def _refunds_for(session: Session, ticket: Ticket, order: Order, tier: Tier) -> list[HolderRefund]:
    holder = ticket.owner_address
    face_wei = tier.price_gwei * GWEI
    base = {
        "event_id": ticket.event_id,
        "ticket_id": ticket.id,
        "token_id": ticket.token_id,
        "holder_address": holder,
        "status": REFUND_PENDING,
    }
    if holder == order.buyer_address:
        return [
            _card(
                base, order.payment_provider, order.payment_intent_id, order, order.unit_price_cents
            )
        ]
    purchase = card_purchase_of(session, ticket, holder)
    if purchase is None:
        return [HolderRefund(rail=ETHER_RAIL, amount_wei=str(face_wei), **base)]
    provider, intent_id, paid_cents, currency = purchase
    refunds = [
        _card(base, provider, intent_id, None, min(paid_cents, order.unit_price_cents), currency)
    ]
    if paid_cents < order.unit_price_cents:
        # Bought below face: the card gets all it paid, the rest of the face value in ether.
        short = face_wei * (order.unit_price_cents - paid_cents) // order.unit_price_cents
        if short > 0:
            refunds.append(HolderRefund(rail=ETHER_RAIL, amount_wei=str(short), **base))
    return refunds


def _card(
    base: dict[str, object],
    provider: str | None,
    intent_id: str | None,
    order: Order | None,
    cents: int,
    currency: str | None = None,
) -> HolderRefund:
    return HolderRefund(
        rail=CARD_RAIL,
        order_id=order.id if order is not None else None,
        payment_provider=provider,
        payment_intent_id=intent_id,
        amount_cents=cents,
        currency=currency or (order.currency if order is not None else None),
        **base,
    )


def card_purchase_of(
    session: Session, ticket: Ticket, holder: str
) -> tuple[str, str, int, str] | None:
    """The settled card resale purchase through which ``holder`` got ``ticket`` (provider,
    payment id, amount paid in cents, currency), if they bought it by card on fairtix: the
    ticket's last sale on our market was theirs, paid by card (backend.resale)."""
    last_sale = session.scalar(
        select(Listing)
        .where(Listing.ticket_id == ticket.id, Listing.status == "sold")
        .order_by(Listing.closed_at.desc(), Listing.id.desc())
        .limit(1)
    )
    if last_sale is None or last_sale.buyer_address != holder.lower():
        return None
    purchase = session.scalar(
        select(CardPurchase).where(
            CardPurchase.listing_id == last_sale.id,
            CardPurchase.status == P_SETTLED,
            CardPurchase.buyer_address == holder.lower(),
        )
    )
    if purchase is None or purchase.payment_intent_id is None:
        return None
    return (
        purchase.payment_provider,
        purchase.payment_intent_id,
        purchase.amount_cents,
        purchase.currency,
    )


# -- paying one refund ---------------------------------------------------------------------


def pay(
    sessions: sessionmaker[Session],
    chain: ChainClient,
    cards: PaymentProvider,
    refund_id: int,
) -> None:
    """Outbox ``PAY_HOLDER_REFUND``: pays the refund exactly once. Raises HolderRefundNotYet while
    an ether transfer waits for its receipt (the outbox retries)."""
    with transaction(sessions) as session:
        refund = session.get(HolderRefund, refund_id)
        if refund is None or refund.status in (REFUND_PAID, REFUND_FAILED, REFUND_HELD):
            return
        rail = refund.rail
    if rail == CARD_RAIL:
        _pay_card(sessions, cards, refund_id)
    else:
        _pay_ether(sessions, chain, refund_id)


def _pay_card(sessions: sessionmaker[Session], cards: PaymentProvider, refund_id: int) -> None:
    with transaction(sessions) as session:
        refund = session.get(HolderRefund, refund_id, with_for_update=True)
        assert refund is not None and refund.payment_intent_id is not None
        order = session.get(Order, refund.order_id) if refund.order_id is not None else None
        if order is not None and _settled_by_dispute(refund, order):
            return
        intent_id, cents = refund.payment_intent_id, refund.amount_cents
    # The key makes a retry after a crash (the provider answered, we never recorded it) a no-op.
    cards.refund(
        intent_id, idempotency_key=f"fairtix-holder-refund-{refund_id}", amount_cents=cents
    )
    with transaction(sessions) as session:
        refund = session.get(HolderRefund, refund_id, with_for_update=True)
        assert refund is not None
        refund.status, refund.paid_at = REFUND_PAID, utcnow()
    log.info("holder refunded to card", extra={"refund_id": refund_id, "amount_cents": cents})


def _settled_by_dispute(refund: HolderRefund, order: Order) -> bool:
    """A card refund of a primary order's payment that a chargeback decides instead (as
    sales.refunds does for a whole order's): while the bank has not decided, the provider
    refuses the refund, so it is held (``record_dispute`` queues it again when the bank
    decides); lost, the bank gave the cardholder the whole payment back already, so ours would
    pay them twice. Returns True when nothing is to be sent."""
    if sales.dispute_holds_refund(order.dispute_status):
        refund.status, refund.failure_reason = REFUND_HELD, sales.REFUND_HELD_FOR_DISPUTE
        log.warning(
            "holder refund held for a chargeback",
            extra={"refund_id": refund.id, "order_id": order.id},
        )
        return True
    if order.dispute_status == "lost":
        _paid_by_chargeback(refund)
        return True
    return False


def _paid_by_chargeback(refund: HolderRefund) -> None:
    refund.status, refund.paid_at = REFUND_PAID, utcnow()
    refund.failure_reason = sales.REFUNDED_BY_CHARGEBACK
    log.warning("holder refund paid by a chargeback", extra={"refund_id": refund.id})


def on_dispute_decided(session: Session, order: Order) -> int:
    """The bank decided a chargeback of ``order``'s payment: its held holder refunds are queued
    again (won: the money is ours to give back) or settled by the bank's (lost). Returns how
    many refunds moved."""
    held = session.scalars(
        select(HolderRefund)
        .where(HolderRefund.order_id == order.id, HolderRefund.status == REFUND_HELD)
        .with_for_update()
    ).all()
    for refund in held:
        if order.dispute_status == "lost":
            _paid_by_chargeback(refund)
        else:
            refund.status, refund.failure_reason = REFUND_PENDING, None
            outbox.enqueue(session, PAY_HOLDER_REFUND, {"refund_id": refund.id})
    return len(held)


def _pay_ether(sessions: sessionmaker[Session], chain: ChainClient, refund_id: int) -> None:
    with transaction(sessions) as session:
        refund = session.get(HolderRefund, refund_id)
        assert refund is not None
        tx_hash, nonce, raw = refund.tx_hash, refund.tx_nonce, refund.raw_tx
    if tx_hash is not None and raw is not None and nonce is not None:
        mined = chain.transaction_receipt(tx_hash)
        if mined is not None:
            _settle_ether(sessions, chain, refund_id, mined.succeeded, mined.block_number)
            return
        if chain.mined_nonce_count() <= nonce:
            # Not mined, and its nonce still free: this very transaction is the one to send
            # (again); a node that has it already just refuses the copy.
            chain.broadcast(raw)
            raise HolderRefundNotYet(f"holder refund {refund_id}'s transfer {tx_hash} is not mined")
        # Its nonce went to another of the signer's transactions while it was never mined: it
        # can't be mined any more, so signing a new one can't pay twice.
        log.warning("holder refund transfer superseded", extra={"refund_id": refund_id})
    signed_hash, signed_raw = _write_ahead(sessions, chain, refund_id)
    chain.broadcast(signed_raw)
    mined = chain.transaction_receipt(signed_hash)
    if mined is None:
        raise HolderRefundNotYet(f"holder refund {refund_id}'s transfer {signed_hash} is not mined")
    _settle_ether(sessions, chain, refund_id, mined.succeeded, mined.block_number)


def _write_ahead(
    sessions: sessionmaker[Session], chain: ChainClient, refund_id: int
) -> tuple[str, str]:
    """Signs the transfer with the signer's next free nonce and stores it, in one transaction
    holding the signer's nonce lock (as mint batches do), before anything is sent."""
    chain_id, signer = chain.chain_id, chain.signer_address.lower()
    with transaction(sessions) as session:
        refund = session.get(HolderRefund, refund_id, with_for_update=True)
        assert refund is not None and refund.amount_wei is not None
        nonces.lock_signer(session, chain_id, signer)
        floor = nonces.lowest_free(session, chain_id, signer)
        with chain.next_nonce(floor) as nonce:
            signed = chain.sign_ether_transfer(
                refund.holder_address,
                int(refund.amount_wei),
                nonce=nonce,
                fees=chain.suggested_fees(),
            )
            refund.tx_hash, refund.tx_nonce, refund.raw_tx = signed.tx_hash, nonce, signed.raw
            refund.tx_chain_id, refund.tx_signer = chain_id, signer
            refund.status = REFUND_SENT
    return signed.tx_hash, signed.raw


def _settle_ether(
    sessions: sessionmaker[Session],
    chain: ChainClient,
    refund_id: int,
    succeeded: bool,
    block_number: int,
) -> None:
    if chain.block_number() - block_number < chain.confirmations:
        raise HolderRefundNotYet(f"holder refund {refund_id}'s transfer awaits its confirmations")
    with transaction(sessions) as session:
        refund = session.get(HolderRefund, refund_id, with_for_update=True)
        assert refund is not None
        if succeeded:
            refund.status, refund.paid_at = REFUND_PAID, utcnow()
            log.info(
                "holder refunded in ether", extra={"refund_id": refund_id, "tx": refund.tx_hash}
            )
        else:
            refund.status = REFUND_FAILED
            refund.failure_reason = "the holder's wallet refused the ether transfer"
            log.error("holder refund transfer reverted", extra={"refund_id": refund_id})


# -- what a holder and an order see -----------------------------------------------------------


def refunds_of_tickets(
    session: Session, ticket_ids: Sequence[int]
) -> dict[int, list[HolderRefund]]:
    """The holder refunds decided for these tickets, by ticket id."""
    found: dict[int, list[HolderRefund]] = {}
    if not ticket_ids:
        return found
    for refund in session.scalars(
        select(HolderRefund).where(HolderRefund.ticket_id.in_(ticket_ids)).order_by(HolderRefund.id)
    ):
        found.setdefault(refund.ticket_id, []).append(refund)
    return found


@dataclass(frozen=True)
class TicketRefund:
    """What a cancelled event's ticket brings its holder back, as far as decided."""

    method: str
    """card, ether (from the treasury) or claim_on_chain (the holder's claimRefund)."""
    state: str
    """pending, claimable_on_chain, refunded or failed."""
    amount_cents: int | None = None
    currency: str | None = None
    amount_wei: str | None = None
    tx_hash: str | None = None


def ticket_refunds(session: Session, ticket: Ticket, event: Event) -> list[TicketRefund]:
    """For the holder's view of a ticket: nothing while the event stands; once cancelled, the
    refund(s) decided for the ticket, or the ones it will get once the cancellation is mined."""
    if event.cancelled_at is None or ticket.refund_tx_hash is not None:
        return []
    order = session.get(Order, ticket.order_id)
    tier = session.get(Tier, ticket.tier_id)
    assert order is not None and tier is not None
    if order.payment_provider == sales.CRYPTO:
        paid_wei = (order.permit_unit_price_gwei or tier.price_gwei) * GWEI
        state = "claimable_on_chain" if event.chain_cancelled_at is not None else "pending"
        return [TicketRefund("claim_on_chain", state, amount_wei=str(paid_wei))]
    decided = refunds_of_tickets(session, [ticket.id]).get(ticket.id)
    if decided:
        return [_shown(refund) for refund in decided]
    if order.refund_due_at is not None:  # the whole order's refund, queued at cancellation
        state = "refunded" if order.refunded_at is not None else "pending"
        return [TicketRefund("card", state, order.unit_price_cents, order.currency)]
    return [_shown(refund) for refund in _refunds_for(session, ticket, order, tier)]


def _shown(refund: HolderRefund) -> TicketRefund:
    state = {REFUND_PAID: "refunded", REFUND_FAILED: "failed"}.get(refund.status, "pending")
    return TicketRefund(
        refund.rail,
        state,
        refund.amount_cents,
        refund.currency,
        refund.amount_wei,
        refund.tx_hash,
    )


@dataclass(frozen=True)
class OrderFollowing:
    """A card order whose tickets' refunds follow the tickets (see orders_following_tickets)."""

    refunded_tickets: int
    """Its tickets refunded to this order's card (those its buyer held)."""
    all_paid: bool
    paid_at: datetime | None
    resold_token_ids: list[int]
    """Its tickets someone else held: refunded to them, not to this order's buyer."""


def order_following(session: Session, order: Order) -> OrderFollowing:
    mine = session.scalars(select(HolderRefund).where(HolderRefund.order_id == order.id)).all()
    held = session.execute(
        select(Ticket.token_id, Ticket.owner_address).where(Ticket.order_id == order.id)
    ).all()
    resold = sorted(token for token, owner in held if owner != order.buyer_address)
    if mine:
        paid = [refund.paid_at for refund in mine if refund.status == REFUND_PAID]
        all_paid = len(paid) == len(mine)
        last = max((at for at in paid if at is not None), default=None)
        return OrderFollowing(len(mine), all_paid, last if all_paid else None, resold)
    return OrderFollowing(len(held) - len(resold), False, None, resold)
