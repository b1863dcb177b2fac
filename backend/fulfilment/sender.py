"""Starting mint batches: claimed ``mint_order`` messages become signed transactions that are
stored before they are sent (write-ahead), then broadcast.

The one database transaction that stores a batch also moves its orders to minting and completes
their outbox messages: from then on the batch, not the outbox, answers for those orders, and the
tracker carries it to its end even if this process dies right after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.catalog.models import Event, Tier
from backend.chain.client import ChainClient
from backend.chain.errors import ChainUnavailable, ContractRevert, OrderAlreadyMinted
from backend.chain.types import Fees, SignedTx, Wei
from backend.config import Settings
from backend.db.engine import transaction
from backend.fulfilment import nonces
from backend.fulfilment.errors import MintNotFound
from backend.fulfilment.models import SENT, MintBatch, MintTx
from backend.fulfilment.planning import PendingMint, pack
from backend.fulfilment.recording import MINTABLE, open_batch_orders, record_recovered
from backend.ipfs.blockstore import Blockstore
from backend.outbox import Claimed
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets import metadata

log = logging.getLogger("fairtix.fulfilment")


@dataclass
class SendReport:
    """What became of each claimed message: ``completed`` (a batch took its order, or it needs
    nothing) or ``failed`` (retry later, with the error)."""

    completed: set[int] = field(default_factory=set)
    failed: dict[int, Exception] = field(default_factory=dict)
    batches: int = 0
    """Transactions stored and sent."""
    request_ids: dict[int, str] = field(default_factory=dict)
    """Message id -> the request that queued the mint (the payment webhook's), for the log."""

    def complete(self, mints: Iterable[PendingMint]) -> None:
        for mint in mints:
            self.completed.update(mint.message_ids)

    def fail(self, mints: Iterable[PendingMint], error: Exception) -> None:
        for mint in mints:
            for message_id in mint.message_ids:
                if message_id not in self.completed:
                    self.failed[message_id] = error


class BatchSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainClient,
        blockstore: Blockstore,
        settings: Settings,
    ) -> None:
        self._sessions = sessions
        self._chain = chain
        self._blockstore = blockstore
        self._max_recipients = settings.mint_batch_max_recipients
        self._fee_ceiling = Wei(settings.mint_fee_ceiling_wei)

    def send(self, messages: Sequence[Claimed]) -> SendReport:
        """Mints the orders of ``messages``: one transaction per event contract and up to the
        configured number of tickets."""
        report = SendReport(
            request_ids={m.id: m.request_id for m in messages if m.request_id is not None}
        )
        chunks = pack(self._pending(messages, report), self._max_recipients)
        for index, chunk in enumerate(chunks):
            try:
                self._send_chunk(chunk, report)
            except ChainUnavailable as exc:
                # Every batch left would meet the same silent node.
                for rest in chunks[index:]:
                    report.fail(rest, exc)
                break
            except Exception as exc:
                log.exception("mint batch not started", extra={"orders": _ids(chunk)})
                report.fail(chunk, exc)
        return report

    def _pending(self, messages: Sequence[Claimed], report: SendReport) -> list[PendingMint]:
        """The orders to mint; messages with nothing (left) to mint are completed here."""
        wanted: dict[int, list[int]] = {}
        for message in messages:
            try:
                wanted.setdefault(int(message.payload["order_id"]), []).append(message.id)
            except (KeyError, TypeError, ValueError) as exc:
                report.failed[message.id] = exc
        pending: list[PendingMint] = []
        settled: list[int] = []
        with transaction(self._sessions) as session:
            held = open_batch_orders(session)
            rows = session.execute(
                select(Order, Event, Tier)
                .join(Event, Event.id == Order.event_id)
                .join(Tier, Tier.id == Order.tier_id)
                .where(Order.id.in_(list(wanted)))
            )
            found = {order.id: (order, event, tier) for order, event, tier in rows}
            for order_id, message_ids in wanted.items():
                row = found.get(order_id)
                if row is None or row[0].status not in MINTABLE or order_id in held:
                    if row is not None and row[0].status not in (sales.MINTING, sales.FULFILLED):
                        log.warning(
                            "mint skipped", extra={"order_id": order_id, "status": row[0].status}
                        )
                    outbox.complete_all(session, message_ids)
                    settled += message_ids
                    continue
                order, event, tier = row
                # The tier's metadata was pinned when the event was created; make sure this
                # node's blockstore still serves it before the chain points wallets at it.
                if not self._blockstore.has(tier.metadata_cid):
                    self._blockstore.put(metadata.encode(metadata.tier_metadata(event, tier)))
                pending.append(
                    PendingMint(
                        order_id=order.id,
                        event_id=event.id,
                        contract=event.contract_address,
                        deploy_block=event.deploy_block,
                        tier=tier.chain_tier,
                        buyer=order.buyer_address,
                        quantity=order.quantity,
                        message_ids=tuple(message_ids),
                    )
                )
        report.completed.update(settled)
        return pending

    def _send_chunk(self, chunk: list[PendingMint], report: SendReport) -> None:
        mints, gas = self._estimate(chunk, report)
        if not mints:
            return
        # Never more than the operator's ceiling: in a spike the batch waits for the market.
        fees = self._chain.suggested_fees().capped(self._fee_ceiling)
        written = self._write_ahead(mints, gas, fees, report)
        if written is None:
            return
        batch_id, signed, taken = written
        report.batches += 1
        try:
            refusal = self._chain.broadcast(signed.raw)
        except ChainUnavailable as exc:
            refusal = str(exc)  # stored: the tracker sends it again
        log.info(
            "mint batch sent",
            extra={
                "batch": batch_id,
                "nonce": signed.nonce,
                "tx": signed.tx_hash,
                "contract": taken[0].contract,
                "orders": _ids(taken),
                "tickets": sum(m.quantity for m in taken),
                "gas_limit": gas,
                "refused": refusal,
                # Each order's paying request: grep the API's logs for it.
                "request_ids": {
                    m.order_id: report.request_ids.get(m.message_ids[0]) for m in taken
                },
            },
        )

    def _estimate(
        self, chunk: list[PendingMint], report: SendReport
    ) -> tuple[list[PendingMint], int]:
        """The orders of ``chunk`` that can be minted together now, and their gas limit.

        Gas estimation runs the batch without sending it, so an order the contract has minted
        already (a worker that died between its mint and the record) is found here, and read
        back from the chain instead of breaking the batch."""
        mints = list(chunk)
        contract = chunk[0].contract
        while mints:
            try:
                return mints, self._chain.estimate_mint_batch(
                    contract, [m.card_mint() for m in mints]
                )
            except OrderAlreadyMinted as exc:
                minted = next((m for m in mints if m.order_id == exc.order_id), None)
                if minted is None:
                    raise
                mints.remove(minted)
                self._recover(minted, report)
            except ContractRevert as exc:
                if len(mints) == 1:
                    report.fail(mints, exc)
                    return [], 0
                # One order the contract refuses (its buyer at the tier's wallet limit, say)
                # must not hold back the others: each goes alone, and only it is retried.
                log.warning(
                    "mint batch refused; minting its orders one by one",
                    extra={"orders": _ids(mints), "error": str(exc)},
                )
                for mint in mints:
                    self._send_chunk([mint], report)
                return [], 0
        return [], 0

    def _recover(self, mint: PendingMint, report: SendReport) -> None:
        found = self._chain.find_order_mint(
            mint.contract, mint.order_id, mint.quantity, from_block=mint.deploy_block
        )
        if found is None:
            report.fail([mint], MintNotFound(mint.order_id, mint.contract))
            return
        record_recovered(self._sessions, mint.order_id, found, mint.message_ids)
        report.complete([mint])

    def _write_ahead(
        self, mints: list[PendingMint], gas: int, fees: Fees, report: SendReport
    ) -> tuple[int, SignedTx, list[PendingMint]] | None:
        """Stores the batch, its signed transaction and the orders' move to minting in one
        database transaction, choosing the nonce under the signer's lock. Returns the batch id,
        the transaction and the orders it took (those still waiting once locked)."""
        chain_id, signer = self._chain.chain_id, self._chain.signer_address.lower()
        contract = mints[0].contract
        session = self._sessions()
        try:
            locked = {
                order.id: order
                for order in session.scalars(
                    select(Order)
                    .where(Order.id.in_([m.order_id for m in mints]))
                    .order_by(Order.id)
                    .with_for_update()
                )
            }
            held = open_batch_orders(session)
            taken = [
                m
                for m in mints
                if m.order_id in locked
                and locked[m.order_id].status in MINTABLE
                and m.order_id not in held
            ]
            # Another worker took or finished the rest since they were read.
            outbox.complete_all(
                session, [m for mint in mints if mint not in taken for m in mint.message_ids]
            )
            if not taken:
                session.commit()
                report.complete(mints)
                return None
            nonces.lock_signer(session, chain_id, signer)
            floor = nonces.lowest_free(session, chain_id, signer)
            with self._chain.next_nonce(floor) as nonce:
                signed = self._chain.sign_mint_batch(
                    contract, [m.card_mint() for m in taken], nonce=nonce, gas=gas, fees=fees
                )
                batch = MintBatch(
                    chain_id=chain_id,
                    signer=signer,
                    nonce=nonce,
                    event_id=taken[0].event_id,
                    contract_address=contract,
                    order_ids=[m.order_id for m in taken],
                    tickets=sum(m.quantity for m in taken),
                    gas_limit=gas,
                    status=SENT,
                )
                session.add(batch)
                session.flush()
                session.add(stored_tx(batch.id, signed))
                paid = [
                    locked[m.order_id] for m in taken if locked[m.order_id].status == sales.PAID
                ]
                sales.transition_all(session, paid, sales.MINTING, f"mint batch {batch.id} signed")
                outbox.complete_all(session, [m for mint in taken for m in mint.message_ids])
                # Last, as it takes the tiers' row locks the on-sale's holds queue for: held
                # for the commit only, once per batch instead of once per payment.
                sales.number_seats(session, [locked[mint.order_id] for mint in taken])
                batch_id = batch.id
                # Inside next_nonce: the client's counter moves past the nonce only once the
                # batch holding it is stored.
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        report.complete(mints)
        return batch_id, signed, taken


def stored_tx(batch_id: int, signed: SignedTx) -> MintTx:
    return MintTx(
        batch_id=batch_id,
        tx_hash=signed.tx_hash,
        raw_tx=signed.raw,
        max_fee_per_gas=signed.fees.max_fee_per_gas,
        max_priority_fee_per_gas=signed.fees.max_priority_fee_per_gas,
        gas_price=signed.fees.gas_price,
    )


def _ids(mints: Iterable[PendingMint]) -> list[int]:
    return [m.order_id for m in mints]
