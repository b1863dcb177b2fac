"""Crypto payments: the purchase permit a checkout hands the buyer's wallet, and what a mined
``Purchased`` log does to its order (and what a reorg undoes).

The buyer's wallet sends ``purchase(permit, signature)`` with the exact price; the contract mints
the tickets and keeps the ether in escrow. We never see the transaction before the indexer reads
its log at the configured confirmation depth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.catalog.models import Event, Tier
from backend.chain.client import ChainClient
from backend.chain.models import AppliedLog
from backend.chain.protocol import PERMIT_TYPES, domain, token_ids
from backend.chain.types import PURCHASE, ChainLog, PurchaseLog, UnsignedTx
from backend.db.base import utcnow
from backend.sales import service as sales
from backend.sales.models import Order, OrderTransition
from backend.tickets import metadata
from backend.tickets import service as tickets
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.payments.crypto")

GWEI = 10**9
EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

# What applying a Purchased log came to (AppliedLog.outcome).
FULFILLED = "fulfilled"  # the order is paid and its tickets recorded
PAID_LATE = "paid_late"  # the order could no longer be served; the ether stays in escrow
DUPLICATE = "duplicate"  # the order was already paid
MISMATCH = "mismatch"  # the log doesn't match the order's permit
UNKNOWN = "unknown"  # no crypto order of ours has this nonce on this contract


@dataclass(frozen=True)
class CryptoCheckout:
    """What a wallet needs to pay: the permit as EIP-712 typed data, our signature over it, and
    the unsigned transaction that submits both with the exact price."""

    typed_data: dict[str, Any]
    signature: str
    transaction: UnsignedTx
    deadline: int
    # The order's move to awaiting payment, if this checkout made it (not on a repeat).
    started: OrderTransition | None = None


def checkout(
    session: Session, chain: ChainClient, order: Order, now: datetime | None = None
) -> CryptoCheckout:
    """Move an open order to awaiting payment by crypto and sign its permit. The permit's terms
    are kept on the order, so a repeated checkout returns the same permit (signing is
    deterministic) and never extends the hold again."""
    event = session.get(Event, order.event_id)
    tier = session.get(Tier, order.tier_id)
    assert event is not None and tier is not None
    started = None
    if order.permit_unit_price_gwei is None:
        started = sales.start_payment(session, order, sales.CRYPTO, f"permit-{order.id}", now)
        assert order.hold_expires_at is not None
        order.permit_unit_price_gwei = tier.price_gwei
        # The permit lapses with the hold: a purchase mined after it can't happen on chain.
        order.permit_deadline = int(order.hold_expires_at.timestamp())
    assert order.permit_deadline is not None
    unit_price_wei = order.permit_unit_price_gwei * GWEI
    message, signature = chain.sign_purchase_permit(
        event.contract_address,
        order.buyer_address,
        tier.chain_tier,
        order.quantity,
        unit_price_wei,
        order.id,
        order.permit_deadline,
    )
    transaction = chain.purchase_transaction(
        event.contract_address, message, signature, unit_price_wei * order.quantity
    )
    typed_data = {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **PERMIT_TYPES},
        "primaryType": "PurchasePermit",
        "domain": domain(chain.chain_id, transaction["to"]),
        "message": message,
    }
    return CryptoCheckout(typed_data, signature, transaction, order.permit_deadline, started)


class PurchaseApplier:
    """Applies ``Purchased`` logs to orders and takes them back (the indexer's effects)."""

    kinds = frozenset({PURCHASE})

    def watched(self, session: Session, chain_id: int) -> tuple[list[str], int | None]:
        """The event contracts on ``chain_id`` and the first block any of them existed in."""
        rows = session.execute(
            select(Event.contract_address, Event.deploy_block).where(
                Event.chain_id == chain_id, Event.contract_address != ""
            )
        ).all()
        if not rows:
            return [], None
        return [address for address, _ in rows], min(block for _, block in rows)

    def apply(self, session: Session, purchase: ChainLog) -> str:
        """Pay and fulfil the order the log's permit was for; returns the outcome."""
        if not isinstance(purchase, PurchaseLog):
            raise TypeError(f"PurchaseApplier applies purchases, not {purchase.kind} logs")
        order = self._order_of(session, purchase)
        if order is None:
            log.warning(
                "purchase with an unknown nonce",
                extra={"nonce": purchase.nonce, "contract": purchase.address},
            )
            return UNKNOWN
        tier = session.get(Tier, order.tier_id)
        assert tier is not None and order.permit_unit_price_gwei is not None
        expected = (
            order.buyer_address,
            tier.chain_tier,
            order.quantity,
            order.quantity * order.permit_unit_price_gwei * GWEI,
        )
        seen = (purchase.buyer.lower(), purchase.tier, purchase.quantity, purchase.paid)
        if seen != expected:
            # Only a permit we signed gets through the contract, so this means two permits
            # for one nonce: a bug or a reused database. Shout; change nothing.
            log.error(
                "purchase does not match its order",
                extra={"order_id": order.id, "seen": seen, "expected": expected},
            )
            return MISMATCH
        if order.status in (sales.PAID, sales.MINTING, sales.FULFILLED, sales.REFUNDED):
            log.warning("purchase for a paid order", extra={"order_id": order.id})
            return DUPLICATE
        cause = f"purchase {purchase.tx_hash} in block {purchase.block_number}"
        paid = sales.mark_paid(
            session,
            order,
            order.quantity * order.unit_price_cents,
            order.currency,
            cause,
            queue_mint=False,
        )
        if not paid:
            return PAID_LATE
        assert order.first_seat is not None
        seats = range(order.first_seat, order.first_seat + order.quantity)
        # Only applied at the configured confirmation depth: a webhook can't be unsent if a
        # deeper reorganisation later undoes this.
        tickets.record_fulfilment(
            session,
            order,
            list(token_ids(order.id, order.quantity)),
            [metadata.seat_label_text(tier.name, seat) for seat in seats],
            tier.metadata_cid,
            purchase.tx_hash,
            f"minted by {cause}",
        )
        log.info("crypto order fulfilled", extra={"order_id": order.id, "tx": purchase.tx_hash})
        return FULFILLED

    def rollback(self, session: Session, applied: AppliedLog, now: datetime | None = None) -> None:
        """Undo what ``apply`` did for a log whose block is no longer on the chain."""
        if applied.kind != PURCHASE or applied.outcome not in (FULFILLED, PAID_LATE):
            return
        order = session.get(Order, applied.nonce, with_for_update=True)
        if order is None:
            return
        cause = f"purchase {applied.tx_hash} orphaned by a reorg at block {applied.block_number}"
        log.warning("crypto payment rolled back", extra={"order_id": order.id, "cause": cause})
        if applied.outcome == PAID_LATE:
            order.failure_reason = None
            return
        session.execute(
            delete(Ticket).where(Ticket.order_id == order.id, Ticket.tx_hash == applied.tx_hash)
        )
        if order.status == sales.FULFILLED:
            sales.undo_payment(session, order, cause, now or utcnow())

    def _order_of(self, session: Session, purchase: PurchaseLog) -> Order | None:
        order = session.get(Order, purchase.nonce, with_for_update=True)
        if order is None or order.payment_provider != sales.CRYPTO:
            return None
        event = session.get(Event, order.event_id)
        assert event is not None
        if event.contract_address.lower() != purchase.address.lower():
            return None
        return order
