"""Issuing tickets for paid orders (the mint) and listing a wallet's tickets."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event, Tier
from backend.chain.client import ChainClient
from backend.chain.errors import OrderAlreadyMinted
from backend.chain.protocol import CardMint
from backend.chain.types import MintResult
from backend.db.engine import transaction
from backend.ipfs.blockstore import Blockstore
from backend.notify import service as notify
from backend.queue import service as queue
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets import metadata
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.tickets")


def fulfil_order(
    sessions: sessionmaker[Session], chain: ChainClient, blockstore: Blockstore, order_id: int
) -> None:
    """Mint a paid order's tickets and record them. Safe to run again after a crash at any point:
    the contract refuses a second mint for the same order id, and we then read the first one back.
    """
    with transaction(sessions) as session:
        order = session.get(Order, order_id, with_for_update=True)
        if order is None or order.status == sales.FULFILLED:
            return
        if order.status == sales.PAID:
            sales.transition(session, order, sales.MINTING, "mint started")
        elif order.status != sales.MINTING:
            log.warning("mint skipped", extra={"order_id": order_id, "status": order.status})
            return
        event = session.get(Event, order.event_id)
        tier = session.get(Tier, order.tier_id)
        assert event is not None and tier is not None and order.first_seat is not None
        seats = [order.first_seat + offset for offset in range(order.quantity)]
        # The tier's metadata was pinned when the event was created; make sure this node's
        # blockstore still serves it before the chain points wallets at it.
        cid = tier.metadata_cid
        if not blockstore.has(cid):
            cid = blockstore.put(metadata.encode(metadata.tier_metadata(event, tier)))
        contract, since = event.contract_address, event.deploy_block
        mint = CardMint(
            order_id=order_id,
            tier=tier.chain_tier,
            recipients=(order.buyer_address,) * order.quantity,
        )

    try:
        result = chain.mint_batch(contract, [mint])
    except OrderAlreadyMinted:
        # Search from the event's deployment only: public RPCs refuse whole-chain log queries.
        recovered = chain.find_order_mint(contract, order_id, len(seats), from_block=since)
        if recovered is None:
            raise
        log.info("mint recovered from chain", extra={"order_id": order_id})
        result = recovered
    _record(sessions, order_id, result, seats, cid, tier.name)


def _record(
    sessions: sessionmaker[Session],
    order_id: int,
    result: MintResult,
    seats: list[int],
    cid: str,
    tier_name: str,
) -> None:
    with transaction(sessions) as session:
        order = session.get(Order, order_id, with_for_update=True)
        assert order is not None
        if order.status == sales.FULFILLED:
            return
        record_fulfilment(
            session,
            order,
            list(result.token_ids),
            [metadata.seat_label_text(tier_name, seat) for seat in seats],
            cid,
            result.tx_hash,
            f"minted in {result.tx_hash}",
        )
    log.info(
        "order fulfilled",
        extra={"order_id": order_id, "token_ids": list(result.token_ids), "tx": result.tx_hash},
    )


def record_fulfilment(
    session: Session,
    order: Order,
    token_ids: list[int],
    seat_labels: list[str],
    metadata_cid: str,
    tx_hash: str,
    cause: str,
) -> None:
    """Records an order's tickets and marks it fulfilled, in the caller's transaction: the one
    ending of both a card mint and a crypto purchase, with the queue slot freed and the
    organizers' webhooks and the buyer's receipt queued alongside."""
    for token_id, seat in zip(token_ids, seat_labels, strict=True):
        session.add(
            Ticket(
                event_id=order.event_id,
                tier_id=order.tier_id,
                order_id=order.id,
                token_id=token_id,
                owner_address=order.buyer_address,
                seat=seat,
                metadata_cid=metadata_cid,
                tx_hash=tx_hash,
            )
        )
    order.mint_tx_hash = tx_hash
    sales.transition(session, order, sales.FULFILLED, cause)
    queue.finish(session, order.event_id, order.buyer_address)
    notify.order_fulfilled(
        session,
        order_id=order.id,
        event_id=order.event_id,
        tier_id=order.tier_id,
        buyer_address=order.buyer_address,
        token_ids=token_ids,
        tx_hash=tx_hash,
    )


def tickets_of(session: Session, wallet: str) -> list[tuple[Ticket, Event]]:
    rows = session.execute(
        select(Ticket, Event)
        .join(Event, Event.id == Ticket.event_id)
        .where(Ticket.owner_address == wallet.lower())
        .order_by(Ticket.id)
    )
    return [(ticket, event) for ticket, event in rows]


def token_ids_of(session: Session, order_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Ticket.token_id).where(Ticket.order_id == order_id).order_by(Ticket.token_id)
        )
    )
