"""Issued tickets: one row per minted token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("event_id", "token_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    # order id * 256 + index: past 32 bits once order ids pass about 8.4 million.
    token_id: Mapped[int] = mapped_column(BigInteger)
    owner_address: Mapped[str] = mapped_column(String(42), index=True)
    seat: Mapped[str] = mapped_column(String(100))
    metadata_cid: Mapped[str] = mapped_column(String(100))
    tx_hash: Mapped[str] = mapped_column(String(66))
    # The claimRefund that burned it (crypto tickets of a cancelled event); None while it exists.
    refund_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    # The CheckedIn log that marked it used at the door (the indexer); None while unused.
    checkin_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    # Changes of holder so far, and the holder before the last one: the door derives each
    # holder's entry-code secret from the epoch, so a change re-keys the ticket (backend.door).
    holder_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    previous_owner_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
