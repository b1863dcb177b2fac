"""The indexer: follows the ticket contracts' logs (purchases, refund claims, transfers between
wallets, resales, sell-order cancellations, check-ins) at a confirmation depth and hands each
one, once, to an applier; after a reorg it takes back what it applied from orphaned blocks.

Each pass reads the head, then processes blocks up to ``head - confirmations`` in ranges of at
most ``max_blocks``, one database transaction per range: the applied logs, their effects and the
advanced cursor commit together, so a crash anywhere leaves either all of a range or none of it.

Before a range, the cursor's stored block hash is compared with the chain's. If they differ, the
blocks it stood on were replaced: the indexer walks its checkpoints (the blocks earlier ranges
ended at) back to the newest one still on the chain, rolls back every log applied after it, newest
first, and reads forward again from there.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from backend.chain.client import ChainClient
from backend.chain.models import AppliedLog, ChainCheckpoint, ChainCursor
from backend.chain.protocol import order_of
from backend.chain.types import ChainLog, PurchaseLog, ResaleLog, TransferLog, TransferPolicyLog
from backend.db.engine import transaction
from backend.observability import instruments

log = logging.getLogger("fairtix.indexer")

MAX_BLOCKS = 1_000
"""Blocks per range: public RPCs cap eth_getLogs ranges (often at 1,000 to 10,000)."""
MAX_RANGES_PER_PASS = 20
"""A pass stops after this many ranges, so catching up on a long chain doesn't hold up the rest
of the worker's loop; the next pass carries on."""
KEEP_CHECKPOINTS = 128
"""How many range ends are kept to rewind to; a reorg deeper than all of them rewinds to the
first watched contract's deployment."""


class ApplyLater(Exception):
    """Raised by an applier when a log refers to something another part of the backend is
    still recording (a card mint's tickets): the indexer stops the pass without applying the
    range and reads it again on the next one."""


class Applier(Protocol):
    """What the indexer's logs do (backend.tickets.chain_logs.TicketLogApplier; its purchase
    part alone is backend.payments.crypto.PurchaseApplier)."""

    kinds: frozenset[str]
    """The log kinds (backend.chain.types) it acts on; the indexer reads only these."""

    def watched(self, session: Session, chain_id: int) -> tuple[list[str], int | None]:
        """The contracts to read and the first block any of them exists in (None: none yet)."""
        ...

    def apply(self, session: Session, log: ChainLog) -> str:
        """Act on one log; returns the outcome to record."""
        ...

    def rollback(self, session: Session, applied: AppliedLog) -> None:
        """Undo what ``apply`` did for a log whose block was orphaned."""
        ...


class Indexer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainClient,
        applier: Applier,
        *,
        max_blocks: int = MAX_BLOCKS,
    ) -> None:
        self._sessions = sessions
        self._chain = chain
        self._applier = applier
        self._max_blocks = max_blocks
        self._position: int | None = None  # the cursor's block, as last committed
        self._pending_position: int | None = None  # as the range in progress leaves it

    def run_once(self) -> int:
        """Process confirmed blocks not yet processed (up to ``MAX_RANGES_PER_PASS`` ranges);
        returns the number of logs applied (rolled-back ones not counted)."""
        safe = self._chain.block_number() - self._chain.confirmations
        applied = 0
        try:
            for _ in range(MAX_RANGES_PER_PASS):
                try:
                    with transaction(self._sessions) as session:
                        progress = self._advance(session, safe)
                except ApplyLater as exc:
                    # The range's transaction rolled back whole; it is read again next pass.
                    log.info(
                        "log not applicable yet; retrying next pass", extra={"reason": str(exc)}
                    )
                    break
                self._position = self._pending_position
                if progress is None:
                    break
                applied += progress
        finally:
            self._report(safe)
        return applied

    def _report(self, safe: int) -> None:
        instruments.CHAIN_SAFE_HEAD.set(safe)
        if self._position is not None:
            instruments.INDEXER_BLOCK.set(self._position)
            instruments.INDEXER_LAG.set(max(safe - self._position, 0))
        else:
            # Nothing deployed yet: nothing to read, so nothing is behind.
            instruments.INDEXER_LAG.set(0)

    def _advance(self, session: Session, safe: int) -> int | None:
        """One range in one transaction; None when there is nothing (left) to do."""
        chain_id = self._chain.chain_id
        addresses, first_block = self._applier.watched(session, chain_id)
        cursor = session.get(ChainCursor, chain_id, with_for_update=True)
        if cursor is None:
            if first_block is None:
                return None  # nothing deployed yet: nothing can have been bought
            cursor = self._start(session, chain_id, max(first_block - 1, 0))
        self._pending_position = cursor.block_number
        if self._chain.block_hash(cursor.block_number) != cursor.block_hash:
            self._rewind(session, cursor, first_block or 0)
            self._pending_position = cursor.block_number
            return 0
        if cursor.block_number >= safe:
            return None
        start = cursor.block_number + 1
        end = min(safe, cursor.block_number + self._max_blocks)
        # The end's hash is read before the logs: if a reorg lands in between, the logs may come
        # from the new branch while the hash is the old one's, and the next pass rewinds; the
        # other order could bind old-branch logs to a new-branch hash and never notice.
        end_hash = self._chain.block_hash(end)
        logs = self._chain.ticket_logs(addresses, start, end, self._applier.kinds)
        if end_hash is None or any(
            entry.block_number == end and entry.block_hash != end_hash for entry in logs
        ):
            log.info("chain moved while reading; retrying", extra={"block": end})
            return None
        applied = 0
        for entry in logs:
            applied += self._apply(session, chain_id, entry)
        cursor.block_number, cursor.block_hash = end, end_hash
        self._pending_position = end
        session.merge(ChainCheckpoint(chain_id=chain_id, block_number=end, block_hash=end_hash))
        self._prune(session, chain_id)
        return applied

    def _start(self, session: Session, chain_id: int, number: int) -> ChainCursor:
        block_hash = self._chain.block_hash(number)
        assert block_hash is not None, "the first watched block is above the head"
        cursor = ChainCursor(chain_id=chain_id, block_number=number, block_hash=block_hash)
        session.add(cursor)
        session.merge(
            ChainCheckpoint(chain_id=chain_id, block_number=number, block_hash=block_hash)
        )
        session.flush()
        return cursor

    def _apply(self, session: Session, chain_id: int, entry: ChainLog) -> int:
        seen = session.scalar(
            select(AppliedLog.id).where(
                AppliedLog.block_hash == entry.block_hash,
                AppliedLog.log_index == entry.log_index,
            )
        )
        if seen is not None:
            return 0
        outcome = self._applier.apply(session, entry)
        record = AppliedLog(
            chain_id=chain_id,
            address=entry.address,
            block_number=entry.block_number,
            block_hash=entry.block_hash,
            log_index=entry.log_index,
            tx_hash=entry.tx_hash,
            kind=entry.kind,
            outcome=outcome,
        )
        if isinstance(entry, PurchaseLog):
            record.nonce = entry.nonce
        elif isinstance(entry, TransferPolicyLog):
            record.nonce = 0  # the event's, no order's or ticket's
        else:
            record.nonce, record.token_id = order_of(entry.token_id), entry.token_id
        if isinstance(entry, TransferLog):
            record.from_address, record.to_address = entry.sender, entry.recipient
        elif isinstance(entry, ResaleLog):
            record.from_address, record.to_address = entry.seller, entry.buyer
        session.add(record)
        return 1

    def _rewind(self, session: Session, cursor: ChainCursor, first_block: int) -> None:
        """Move the cursor back to the newest checkpoint still on the chain, undoing every log
        applied after it."""
        chain_id = cursor.chain_id
        checkpoints = session.scalars(
            select(ChainCheckpoint)
            .where(ChainCheckpoint.chain_id == chain_id)
            .order_by(ChainCheckpoint.block_number.desc())
        ).all()
        base: tuple[int, str] | None = None
        for checkpoint in checkpoints:
            if self._chain.block_hash(checkpoint.block_number) == checkpoint.block_hash:
                base = (checkpoint.block_number, checkpoint.block_hash)
                break
            session.delete(checkpoint)
        session.flush()
        if base is None:
            number = max(first_block - 1, 0)
            block_hash = self._chain.block_hash(number)
            assert block_hash is not None
            base = (number, block_hash)
            session.merge(
                ChainCheckpoint(chain_id=chain_id, block_number=number, block_hash=block_hash)
            )
        orphaned = session.scalars(
            select(AppliedLog)
            .where(AppliedLog.chain_id == chain_id, AppliedLog.block_number > base[0])
            .order_by(AppliedLog.block_number.desc(), AppliedLog.log_index.desc())
        ).all()
        for applied in orphaned:
            self._applier.rollback(session, applied)
            session.delete(applied)
        log.warning(
            "chain reorganised: rewound",
            extra={
                "from_block": cursor.block_number,
                "to_block": base[0],
                "rolled_back": len(orphaned),
            },
        )
        cursor.block_number, cursor.block_hash = base
        session.flush()

    def _prune(self, session: Session, chain_id: int) -> None:
        oldest_kept = session.scalar(
            select(ChainCheckpoint.block_number)
            .where(ChainCheckpoint.chain_id == chain_id)
            .order_by(ChainCheckpoint.block_number.desc())
            .offset(KEEP_CHECKPOINTS - 1)
            .limit(1)
        )
        if oldest_kept is not None:
            session.execute(
                delete(ChainCheckpoint).where(
                    ChainCheckpoint.chain_id == chain_id,
                    ChainCheckpoint.block_number < oldest_kept,
                )
            )
