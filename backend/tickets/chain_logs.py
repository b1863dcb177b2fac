"""What the indexer's logs do to tickets and orders (backend.chain.indexer's applier): purchases
pay and fulfil crypto orders (backend.payments.crypto), refund claims burn tickets and refund
their orders, transfers between wallets change a ticket's holder, check-ins mark tickets used,
and a change of the transfer policy sent straight to the contract updates the event's.
Each of those also voids the ticket's resale listing (its signed order can't fill any more), as
does a SellOrdersCancelled log; a Resold log marks the listing it filled sold (backend.resale).
Each is applied at the configured confirmation depth, once, and taken back if a reorg orphans
its block.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.chain.indexer import ApplyLater
from backend.chain.models import AppliedLog
from backend.chain.protocol import order_of
from backend.chain.types import (
    CHECK_IN,
    LOG_KINDS,
    ORDERS_CANCELLED,
    PURCHASE,
    REFUND,
    RESALE,
    TRANSFER,
    TRANSFER_POLICY,
    ChainLog,
    CheckInLog,
    PurchaseLog,
    RefundLog,
    ResaleLog,
    SellOrdersCancelledLog,
    TransferLog,
    TransferPolicyLog,
)
from backend.db.base import utcnow
from backend.notify import service as notify
from backend.payments.crypto import PurchaseApplier
from backend.resale import service as resale
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.tickets.chain")

# What applying a RefundClaimed log came to (AppliedLog.outcome).
CLAIMED = "claimed"  # a ticket of a crypto order was refunded; others of the order remain
REFUNDED = "refunded"  # the order's last ticket was refunded: the order is refunded
# ... and a Transfer log.
TRANSFERRED = "transferred"  # the ticket's holder is recorded
UNTRACKED = "untracked"  # no ticket of ours has that token id (e.g. a purchase paid too late)
UNKNOWN = "unknown"  # a refund claim for a token of no crypto order of ours
# ... and the resale market's logs.
SOLD = "sold"  # a Resold log filled one of our listings
UNLISTED = "unlisted"  # a Resold log of an order we never listed (the ticket's holder is moved
# by the transfer log of the same transaction)
ORDERS_VOIDED = "orders_voided"  # SellOrdersCancelled: the ticket's listing is void
CHECKED_IN = "checked_in"  # CheckedIn: the ticket is used, its listing void
# A TransferPolicyChanged log: the policy it set, and the one it replaced (which a reorg that
# orphans the log puts back).
POLICY_OUTCOMES = {
    (True, False): "locked_was_open",
    (False, True): "open_was_locked",
    (True, True): "locked_unchanged",
    (False, False): "open_unchanged",
}
# A card order whose tickets may be on chain before the fulfilment records them.
MINT_PENDING = (sales.PAID, sales.MINTING)


class TicketLogApplier:
    """Applies every log kind the indexer follows."""

    kinds = LOG_KINDS

    def __init__(self) -> None:
        self._purchases = PurchaseApplier()

    def watched(self, session: Session, chain_id: int) -> tuple[list[str], int | None]:
        return self._purchases.watched(session, chain_id)

    def apply(self, session: Session, entry: ChainLog) -> str:
        if isinstance(entry, RefundLog):
            return self._apply_refund(session, entry)
        if isinstance(entry, TransferLog):
            return self._apply_transfer(session, entry)
        if isinstance(entry, ResaleLog):
            return self._apply_resale(session, entry)
        if isinstance(entry, SellOrdersCancelledLog):
            return self._apply_orders_cancelled(session, entry)
        if isinstance(entry, CheckInLog):
            return self._apply_check_in(session, entry)
        if isinstance(entry, TransferPolicyLog):
            return self._apply_transfer_policy(session, entry)
        assert isinstance(entry, PurchaseLog)
        return self._purchases.apply(session, entry)

    def rollback(self, session: Session, applied: AppliedLog) -> None:
        if applied.kind == PURCHASE:
            self._purchases.rollback(session, applied)
        elif applied.kind == REFUND:
            self._rollback_refund(session, applied)
        elif applied.kind == TRANSFER:
            self._rollback_transfer(session, applied)
        elif applied.kind == RESALE:
            self._rollback_resale(session, applied)
        elif applied.kind in (ORDERS_CANCELLED, CHECK_IN):
            self._rollback_ticket_log(session, applied)
        elif applied.kind == TRANSFER_POLICY:
            self._rollback_transfer_policy(session, applied)

    # -- the transfer policy ----------------------------------------------------------------

    def _apply_transfer_policy(self, session: Session, change: TransferPolicyLog) -> str:
        """The organizer's ``setTransfersLocked``, sent straight to the contract: the API's
        ``transfers_locked`` follows the chain, which enforces it."""
        event = session.scalar(
            select(Event).where(Event.contract_address == change.address).with_for_update()
        )
        if event is None:
            return UNTRACKED
        was = event.transfers_locked
        event.transfers_locked = change.locked
        log.info(
            "transfer policy changed on chain",
            extra={"event_id": event.id, "locked": change.locked, "tx": change.tx_hash},
        )
        return POLICY_OUTCOMES[change.locked, was]

    def _rollback_transfer_policy(self, session: Session, applied: AppliedLog) -> None:
        previous = {outcome: was for (_, was), outcome in POLICY_OUTCOMES.items()}
        if applied.outcome not in previous:
            return
        event = session.scalar(
            select(Event).where(Event.contract_address == applied.address).with_for_update()
        )
        if event is not None:
            # Logs are taken back newest first: this restores what the orphaned one replaced.
            event.transfers_locked = previous[applied.outcome]

    # -- refund claims --------------------------------------------------------------------

    def _apply_refund(self, session: Session, claim: RefundLog) -> str:
        order = session.get(Order, order_of(claim.token_id), with_for_update=True)
        event = None if order is None else session.get(Event, order.event_id)
        if (
            order is None
            or event is None
            or order.payment_provider != sales.CRYPTO
            or event.contract_address != claim.address
        ):
            log.warning(
                "refund claim for a token of no crypto order",
                extra={"token_id": claim.token_id, "contract": claim.address},
            )
            return UNKNOWN
        ticket = _ticket(session, event.id, claim.token_id)
        if ticket is not None:
            ticket.refund_tx_hash = claim.tx_hash
            resale.on_ticket_moved(session, ticket, claim.tx_hash, "the ticket was refunded")
        # This log is not recorded yet: the earlier claims of the order, plus this one.
        claimed = 1 + _claims(session, order.id, claim.address)
        log.info(
            "refund claimed on chain",
            extra={"order_id": order.id, "token_id": claim.token_id, "tx": claim.tx_hash},
        )
        if claimed < order.quantity or order.status != sales.FULFILLED:
            # An order whose purchase came too late keeps its status; its view says claimed.
            return CLAIMED
        sales.transition(
            session, order, sales.REFUNDED, f"refunds claimed on chain, last in {claim.tx_hash}"
        )
        order.refunded_at = utcnow()
        return REFUNDED

    def _rollback_refund(self, session: Session, applied: AppliedLog) -> None:
        if applied.outcome not in (CLAIMED, REFUNDED) or applied.token_id is None:
            return
        order = session.get(Order, applied.nonce, with_for_update=True)
        if order is None:
            return
        cause = (
            f"refund claim {applied.tx_hash} orphaned by a reorg at block {applied.block_number}"
        )
        log.warning("refund claim rolled back", extra={"order_id": order.id, "cause": cause})
        ticket = _ticket(session, order.event_id, applied.token_id)
        if ticket is not None and ticket.refund_tx_hash == applied.tx_hash:
            ticket.refund_tx_hash = None
            resale.rollback_ticket_moved(session, ticket, applied.tx_hash)
        if applied.outcome == REFUNDED and order.status == sales.REFUNDED:
            sales.transition(session, order, sales.FULFILLED, cause)
            order.refunded_at = None

    # -- transfers ------------------------------------------------------------------------

    def _apply_transfer(self, session: Session, transfer: TransferLog) -> str:
        event_id = _event_at(session, transfer.address)
        ticket = None if event_id is None else _ticket(session, event_id, transfer.token_id)
        if event_id is not None and ticket is None:
            order = session.get(Order, order_of(transfer.token_id))
            if order is not None and order.event_id == event_id and order.status in MINT_PENDING:
                # Minted on chain (it is moving) but its batch is not recorded yet: applying
                # the transfer first would leave the buyer recorded as its holder.
                raise ApplyLater(f"order {order.id}'s mint is not recorded yet")
        if event_id is None or ticket is None:
            log.info(
                "transfer of an untracked token",
                extra={"token_id": transfer.token_id, "contract": transfer.address},
            )
            return UNTRACKED
        sender, recipient = transfer.sender.lower(), transfer.recipient.lower()
        if ticket.owner_address != sender:
            log.warning(
                "transfer from a wallet we did not know held the ticket",
                extra={"token_id": ticket.token_id, "recorded": ticket.owner_address},
            )
        ticket.previous_owner_address = ticket.owner_address
        ticket.owner_address = recipient
        # Every move bumps the ticket's sale nonce: the seller's signed order is void.
        resale.on_ticket_moved(session, ticket, transfer.tx_hash, "the ticket moved on chain")
        # A new holder, a new entry-code secret: the previous holder's codes stop at once.
        ticket.holder_epoch += 1
        notify.ticket_transferred(
            session,
            event_id=event_id,
            token_id=ticket.token_id,
            order_id=ticket.order_id,
            sender=sender,
            recipient=recipient,
            tx_hash=transfer.tx_hash,
            block_number=transfer.block_number,
        )
        return TRANSFERRED

    def _rollback_transfer(self, session: Session, applied: AppliedLog) -> None:
        if applied.outcome != TRANSFERRED or applied.token_id is None:
            return
        assert applied.from_address is not None and applied.to_address is not None
        event_id = _event_at(session, applied.address)
        ticket = None if event_id is None else _ticket(session, event_id, applied.token_id)
        if event_id is None or ticket is None:
            return
        previous, undone = applied.from_address.lower(), applied.to_address.lower()
        log.warning(
            "transfer rolled back",
            extra={
                "token_id": ticket.token_id,
                "tx": applied.tx_hash,
                "block": applied.block_number,
            },
        )
        # Logs are undone newest first, so a later transfer of this ticket was undone already.
        ticket.previous_owner_address = ticket.owner_address
        ticket.owner_address = previous
        resale.rollback_ticket_moved(session, ticket, applied.tx_hash)
        # Never back to an old epoch: the codes issued meanwhile must not come back to life.
        ticket.holder_epoch += 1
        # Receivers were told of the transfer; tell them it no longer holds.
        notify.ticket_transferred(
            session,
            event_id=event_id,
            token_id=ticket.token_id,
            order_id=ticket.order_id,
            sender=undone,
            recipient=previous,
            tx_hash=applied.tx_hash,
            block_number=applied.block_number,
            reverted=True,
        )

    # -- the resale market -----------------------------------------------------------------

    def _apply_resale(self, session: Session, sale: ResaleLog) -> str:
        ticket = _tracked(session, sale.address, sale.token_id)
        if ticket is None:
            return UNTRACKED
        listing = resale.on_resold(
            session,
            ticket,
            seller=sale.seller,
            buyer=sale.buyer,
            price_wei=sale.price,
            royalty_wei=sale.royalty,
            tx_hash=sale.tx_hash,
            block_number=sale.block_number,
            payee=sale.payee,
        )
        log.info(
            "ticket resold on chain",
            extra={
                "token_id": sale.token_id,
                "listing_id": None if listing is None else listing.id,
                "tx": sale.tx_hash,
            },
        )
        return SOLD if listing is not None else UNLISTED

    def _rollback_resale(self, session: Session, applied: AppliedLog) -> None:
        ticket = self._ticket_of_applied(session, applied)
        if ticket is None or applied.outcome not in (SOLD, UNLISTED):
            return
        log.warning(
            "resale rolled back", extra={"token_id": ticket.token_id, "tx": applied.tx_hash}
        )
        resale.rollback_resold(
            session, ticket, tx_hash=applied.tx_hash, block_number=applied.block_number
        )

    def _apply_orders_cancelled(self, session: Session, entry: SellOrdersCancelledLog) -> str:
        ticket = _tracked(session, entry.address, entry.token_id)
        if ticket is None:
            return UNTRACKED
        reason = "its seller cancelled the ticket's sell orders on chain"
        resale.on_ticket_moved(session, ticket, entry.tx_hash, reason)
        return ORDERS_VOIDED

    def _apply_check_in(self, session: Session, entry: CheckInLog) -> str:
        ticket = _tracked(session, entry.address, entry.token_id)
        if ticket is None:
            return UNTRACKED
        ticket.checkin_tx_hash = entry.tx_hash
        resale.on_ticket_moved(session, ticket, entry.tx_hash, "the ticket was checked in")
        return CHECKED_IN

    def _rollback_ticket_log(self, session: Session, applied: AppliedLog) -> None:
        ticket = self._ticket_of_applied(session, applied)
        if ticket is None or applied.outcome == UNTRACKED:
            return
        if applied.kind == CHECK_IN and ticket.checkin_tx_hash == applied.tx_hash:
            ticket.checkin_tx_hash = None
        resale.rollback_ticket_moved(session, ticket, applied.tx_hash)

    @staticmethod
    def _ticket_of_applied(session: Session, applied: AppliedLog) -> Ticket | None:
        if applied.token_id is None:
            return None
        return _tracked(session, applied.address, applied.token_id)


def _tracked(session: Session, contract: str, token_id: int) -> Ticket | None:
    """Our ticket of that contract's token, or None (a log of a token we never issued)."""
    event_id = _event_at(session, contract)
    return None if event_id is None else _ticket(session, event_id, token_id)


def _event_at(session: Session, contract: str) -> int | None:
    return session.scalar(select(Event.id).where(Event.contract_address == contract))


def _ticket(session: Session, event_id: int, token_id: int) -> Ticket | None:
    return session.scalar(
        select(Ticket).where(Ticket.event_id == event_id, Ticket.token_id == token_id)
    )


def _claims(session: Session, order_id: int, contract: str) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                AppliedLog.kind == REFUND,
                AppliedLog.nonce == order_id,
                AppliedLog.address == contract,
                AppliedLog.outcome.in_((CLAIMED, REFUNDED)),
            )
        )
        or 0
    )
