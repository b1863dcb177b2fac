"""The write-ahead record of the worker's mint transactions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

SENT, MINED, FAILED = "sent", "mined", "failed"
"""``MintBatch.status``: signed and stored (maybe not yet on the node); its transaction mined
and its orders fulfilled; over without minting (reverted, or the nonce went to another
transaction), its orders recovered from the chain or queued again."""


class MintBatch(Base):
    """One ``mintBatch`` transaction for several paid orders of one event, recorded in the same
    database transaction that moves the orders to ``minting``, before anything is sent."""

    __tablename__ = "mint_batches"
    # A nonce is spent once: mined, reverted, or taken by another transaction. Two batches with
    # one nonce would mean two workers chose it; the database refuses the second.
    __table_args__ = (
        UniqueConstraint("chain_id", "signer", "nonce"),
        Index("ix_mint_batches_unfinished", "status", "chain_id", "signer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    signer: Mapped[str] = mapped_column(String(42))
    """Lower-case address of the key that signed it."""
    nonce: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    contract_address: Mapped[str] = mapped_column(String(42))
    order_ids: Mapped[list[int]] = mapped_column(JSON)
    """In the order the packed argument lists them."""
    tickets: Mapped[int] = mapped_column(Integer)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    """The version that was mined (one of its MintTx)."""
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MintTx(Base):
    """A signed version of a batch's transaction: the first, then each replacement with higher
    fees. All share the batch's nonce, so at most one of them is ever mined."""

    __tablename__ = "mint_txs"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id"), index=True)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[str] = mapped_column(Text)
    """0x hex, as eth_sendRawTransaction takes it: sent again as is after a crash."""
    # Wei per gas: EIP-1559 caps, or gas_price on chains without a base fee.
    max_fee_per_gas: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
