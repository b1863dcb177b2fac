"""What the indexer remembers of the chain: how far it got, the blocks it can rewind to, and every
log whose effects it applied (so a reorg can take them back)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class ChainCursor(Base):
    """The last block the indexer processed on a chain, and its hash as it was then."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ChainCheckpoint(Base):
    """A block the cursor once stood at. After a reorg the indexer walks these back to the newest
    one still on the chain: everything after it is undone and read again."""

    __tablename__ = "chain_checkpoints"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_hash: Mapped[str] = mapped_column(String(66))


class AppliedLog(Base):
    """A log the indexer acted on. Unique per (block hash, log index): a log read twice is
    applied once; the same transaction mined again in another block is a new log."""

    __tablename__ = "chain_applied_logs"
    __table_args__ = (UniqueConstraint("block_hash", "log_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger, index=True)
    address: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(66))
    # What kind of log (backend.chain.types: purchase, refund, transfer).
    kind: Mapped[str] = mapped_column(String(20), default="purchase", server_default="purchase")
    # The permit nonce, i.e. our order id (the order itself may not exist: unknown nonces are
    # recorded too); for a refund or transfer, the order that issued the token.
    nonce: Mapped[int] = mapped_column(BigInteger, index=True)
    # Refunds and transfers: the token, and for a transfer who it moved from and to, so that a
    # reorg can give it back to its previous holder.
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    from_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    to_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
