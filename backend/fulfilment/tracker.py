"""Carrying every unfinished mint batch to its end, one step each worker pass (and first thing
after a restart, so a batch a killed worker left behind is resumed before anything new starts).

A batch ends when one of its transactions has a receipt at the configured depth: success
fulfils its orders, a revert sends each back to the chain's word on it. A batch whose nonce was
spent without a receipt of ours (another transaction with the key took it) ends the same way.
Until then: a batch the node does not know is sent again as stored; one not mined in time while
its nonce is next gets a replacement with higher fees, stored before it is sent.

Batches signed with another key (the minter key was rotated, or another worker holds another
key) are carried too, as far as their stored transactions go: sent again as stored and recorded
when mined, or ended and their orders queued again when their nonce went to another
transaction. Only a replacement needs the key, so only the signer's own batches get one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.chain.errors import ChainUnavailable
from backend.chain.protocol import CardMint
from backend.chain.types import Fees, MinedTx, MintResult, Wei
from backend.config import Settings
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.fulfilment.errors import MintNotFound
from backend.fulfilment.models import SENT, MintBatch, MintTx
from backend.fulfilment.recording import card_mints, record_each, record_mined
from backend.fulfilment.sender import stored_tx

log = logging.getLogger("fairtix.fulfilment")


@dataclass(frozen=True)
class StoredTx:
    tx_hash: str
    raw: str
    fees: Fees
    signed_at: datetime


@dataclass(frozen=True)
class OpenBatch:
    """An unfinished batch as the tracker needs it, read in one database transaction."""

    id: int
    signer: str
    """Lower-case address of the key that signed the batch's transactions."""
    nonce: int
    contract: str
    deploy_block: int
    gas: int
    mints: list[CardMint]
    txs: list[StoredTx]
    """Oldest first; the last is the one with the highest fees."""


class ChainView:
    """What the node says about each signer, read at most once per pass, when first needed."""

    def __init__(self, chain: ChainClient) -> None:
        self._chain = chain
        self._confirmed: dict[str, int] = {}
        self._latest: dict[str, int] = {}
        self._head: int | None = None

    def confirmed_count(self, signer: str) -> int:
        if signer not in self._confirmed:
            count = self._chain.mined_nonce_count(confirmed=True, account=signer)
            self._confirmed[signer] = count
        return self._confirmed[signer]

    def latest_count(self, signer: str) -> int:
        if signer not in self._latest:
            self._latest[signer] = self._chain.mined_nonce_count(account=signer)
        return self._latest[signer]

    def head(self) -> int:
        if self._head is None:
            self._head = self._chain.block_number()
        return self._head


class BatchTracker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainClient,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._chain = chain
        self._settings = settings  # read when used: smtp_host may change while running
        self._replace_after = timedelta(seconds=settings.mint_replace_after_seconds)
        self._bump_percent = settings.mint_fee_bump_percent
        self._fee_ceiling = Wei(settings.mint_fee_ceiling_wei)
        # Batches already reported as priced at the ceiling, or as stuck under a key this
        # worker doesn't hold: said once, not every pass.
        self._at_ceiling: set[int] = set()
        self._not_replaceable: set[int] = set()
        # What the node last answered each batch sent again as stored: a node that refuses an
        # underpriced transaction (anvil) is asked every pass through a fee spike, and only a
        # change in its answer is news.
        self._last_refusal: dict[int, str | None] = {}
        self._clock = clock
        # Unfinished batches seen by the last advance: while there are some, the worker keeps
        # looking for their receipts at its poll interval instead of backing off.
        self.in_flight = 0

    def advance(self) -> int:
        """One step for every unfinished batch on this chain, each signer's lowest nonce first;
        returns how many batches ended."""
        batches = self._open_batches()
        self.in_flight = len(batches)
        self._forget_ended({batch.id for batch in batches})
        if not batches:
            return 0
        view = ChainView(self._chain)
        ended = 0
        for batch in batches:
            try:
                ended += self._advance(batch, view)
            except ChainUnavailable:
                raise
            except Exception:
                log.exception("mint batch not advanced; will retry", extra={"batch": batch.id})
        return ended

    def _advance(self, batch: OpenBatch, view: ChainView) -> int:
        # The count first, the receipts after: a transaction of ours mined before the count was
        # read is then certain to show its receipt, so "spent, no receipt" means someone else's.
        spent = view.confirmed_count(batch.signer) > batch.nonce
        mined = self._receipt(batch)
        if mined is not None:
            return self._finish(batch, mined, view)
        if spent:
            self._end_without_mint(batch, f"nonce {batch.nonce} was used by another transaction")
            return 1
        if not self._resend(batch, view):
            return 0
        # An instant-mining node has it in a block already: no need to wait for the next pass.
        mined = self._receipt(batch)
        return 0 if mined is None else self._finish(batch, mined, view)

    def _finish(self, batch: OpenBatch, mined: MinedTx, view: ChainView) -> int:
        if not self._deep_enough(mined, view):
            return 0
        if mined.succeeded:
            smtp = self._settings.smtp_host is not None
            record_mined(self._sessions, batch.id, mined, smtp_configured=smtp)
            return 1
        why = self._chain.explain_mint_failure(batch.contract, batch.mints, mined, batch.gas)
        self._end_without_mint(batch, f"transaction {mined.tx_hash} reverted: {why}")
        return 1

    def _resend(self, batch: OpenBatch, view: ChainView) -> bool:
        """Replaces the batch's transaction if it is stuck, or sends it again if the node does
        not know it; returns whether anything was sent."""
        newest = batch.txs[-1]
        # Only the next nonce to be mined can be stuck; a later one waits for it.
        if (
            self._clock() - newest.signed_at >= self._replace_after
            and view.latest_count(batch.signer) == batch.nonce
        ):
            if batch.signer != self._chain.signer_address.lower():
                self._say_not_replaceable(batch, newest)
            elif self._replace(batch, newest):
                return True
        if any(self._chain.knows_transaction(tx.tx_hash) for tx in reversed(batch.txs)):
            return False
        # Stored but never sent (a crash right after the commit), or dropped by the node.
        refusal = self._chain.broadcast(newest.raw)
        said = self._last_refusal.get(batch.id, "")  # "": never sent again by this tracker
        self._last_refusal[batch.id] = refusal
        log.log(
            logging.DEBUG if refusal is not None and refusal == said else logging.INFO,
            "mint transaction sent again",
            extra={
                "batch": batch.id,
                "nonce": batch.nonce,
                "tx": newest.tx_hash,
                "refused": refusal,
            },
        )
        return True

    def _forget_ended(self, open_ids: set[int]) -> None:
        self._at_ceiling &= open_ids
        self._not_replaceable &= open_ids
        for batch_id in set(self._last_refusal) - open_ids:
            del self._last_refusal[batch_id]

    def _say_not_replaceable(self, batch: OpenBatch, newest: StoredTx) -> None:
        if batch.id in self._not_replaceable:
            return
        self._not_replaceable.add(batch.id)
        log.warning(
            "mint transaction not mined in time, signed with a key this worker does not hold: "
            "it can only be sent again as stored, not replaced with higher fees",
            extra={
                "batch": batch.id,
                "signer": batch.signer,
                "nonce": batch.nonce,
                "tx": newest.tx_hash,
            },
        )

    def _receipt(self, batch: OpenBatch) -> MinedTx | None:
        for tx in reversed(batch.txs):
            mined = self._chain.transaction_receipt(tx.tx_hash)
            if mined is not None:
                return mined
        return None

    def _deep_enough(self, mined: MinedTx, view: ChainView) -> bool:
        depth = self._chain.confirmations
        return depth <= 0 or view.head() >= mined.block_number + depth

    def _end_without_mint(self, batch: OpenBatch, reason: str) -> None:
        """Whatever ended the batch, the contract's ``orderMinted`` is the truth per order: an
        order minted by an earlier transaction is read back, never minted again."""
        minted: dict[int, MintResult] = {}
        for mint in batch.mints:
            if self._chain.order_minted(batch.contract, mint.order_id):
                found = self._chain.find_order_mint(
                    batch.contract,
                    mint.order_id,
                    len(mint.recipients),
                    from_block=batch.deploy_block,
                )
                if found is None:
                    raise MintNotFound(mint.order_id, batch.contract)
                minted[mint.order_id] = found
        record_each(self._sessions, batch.id, minted, reason)

    def _replace(self, batch: OpenBatch, newest: StoredTx) -> bool:
        """Signs, stores and sends the batch again with higher fees; False if the fee ceiling
        leaves nothing higher to offer (the batch then waits for the market to come down)."""
        fees = newest.fees.bumped(self._bump_percent, floor=self._chain.suggested_fees()).capped(
            self._fee_ceiling
        )
        if not fees.outbids(newest.fees):
            if batch.id not in self._at_ceiling:
                self._at_ceiling.add(batch.id)
                log.warning(
                    "mint transaction not mined in time and already at the fee ceiling; "
                    "waiting for fees to fall (FAIRTIX_MINT_MAX_FEE_PER_GAS_GWEI)",
                    extra={"batch": batch.id, "nonce": batch.nonce, "tx": newest.tx_hash},
                )
            return False
        signed = self._chain.sign_mint_batch(
            batch.contract, batch.mints, nonce=batch.nonce, gas=batch.gas, fees=fees
        )
        # Stored before it is sent: after a crash, its hash is one to look for too.
        with transaction(self._sessions) as session:
            row = session.get(MintBatch, batch.id, with_for_update=True)
            if row is None or row.status != SENT:
                return False
            session.add(stored_tx(batch.id, signed))
        refusal = self._chain.broadcast(signed.raw)
        log.warning(
            "mint transaction not mined in time; replaced with higher fees",
            extra={
                "batch": batch.id,
                "nonce": batch.nonce,
                "replaced_tx": newest.tx_hash,
                "tx": signed.tx_hash,
                "max_fee_per_gas": fees.max_fee_per_gas,
                "max_priority_fee_per_gas": fees.max_priority_fee_per_gas,
                "gas_price": fees.gas_price,
                "refused": refusal,
            },
        )
        return True

    def _open_batches(self) -> list[OpenBatch]:
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(MintBatch, Event.deploy_block)
                .join(Event, Event.id == MintBatch.event_id)
                .where(MintBatch.status == SENT, MintBatch.chain_id == self._chain.chain_id)
                .order_by(MintBatch.signer, MintBatch.nonce)
            )
            batches = list(rows)
            if not batches:
                return []
            txs: dict[int, list[StoredTx]] = {}
            for tx in session.scalars(
                select(MintTx)
                .where(MintTx.batch_id.in_([b.id for b, _ in batches]))
                .order_by(MintTx.id)
            ):
                txs.setdefault(tx.batch_id, []).append(_stored(tx))
            return [
                OpenBatch(
                    id=batch.id,
                    signer=batch.signer,
                    nonce=batch.nonce,
                    contract=batch.contract_address,
                    deploy_block=deploy_block,
                    gas=batch.gas_limit,
                    mints=card_mints(session, batch.order_ids),
                    txs=txs[batch.id],
                )
                for batch, deploy_block in batches
            ]


def _stored(tx: MintTx) -> StoredTx:
    def wei(value: int | None) -> Wei | None:
        return None if value is None else Wei(value)

    return StoredTx(
        tx_hash=tx.tx_hash,
        raw=tx.raw_tx,
        fees=Fees(
            max_fee_per_gas=wei(tx.max_fee_per_gas),
            max_priority_fee_per_gas=wei(tx.max_priority_fee_per_gas),
            gas_price=wei(tx.gas_price),
        ),
        signed_at=tx.signed_at,
    )
