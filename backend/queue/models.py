"""Durable waiting-room places (SQL store)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class QueueEntry(Base):
    """One wallet's place in one event's queue.

    ``state`` is waiting -> admitted -> (done | expired). ``seq`` orders the queue and is unique per
    event, so two joins can never share a place.
    """

    __tablename__ = "queue_entries"
    __table_args__ = (
        UniqueConstraint("event_id", "wallet"),
        UniqueConstraint("event_id", "seq"),
        Index("ix_queue_entries_event_state_seq", "event_id", "state", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    wallet: Mapped[str] = mapped_column(String(42))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    admission_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
