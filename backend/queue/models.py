"""Durable waiting-room state (SQL store): places, and each event's live controls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class QueueEntry(Base):
    """One wallet's place in one event's queue.

    ``state`` is waiting (<-> away) -> admitted -> (done | expired). ``seq`` is the join order,
    unique per event, so two joins can never share a place; ``rank`` is the place in line (see
    backend.queue.store), None while a pre-sale arrival waits for the shuffle.
    """

    __tablename__ = "queue_entries"
    __table_args__ = (
        UniqueConstraint("event_id", "wallet"),
        UniqueConstraint("event_id", "seq"),
        Index("ix_queue_entries_event_state_seq", "event_id", "state", "seq"),
        Index("ix_queue_entries_event_state_rank", "event_id", "state", "rank"),
        Index("ix_queue_entries_event_admitted_at", "event_id", "admitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    wallet: Mapped[str] = mapped_column(String(42))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    presale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    rank: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    admission_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class QueueControl(Base):
    """Per event: the join counter, the organizer's live controls, outflow and shuffle state.

    Joins take their ``seq`` from ``next_seq`` with one UPDATE, so the counter's row lock orders
    them without gaps. Status polls never lock this row.
    """

    __tablename__ = "queue_controls"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    next_seq: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    admissions_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_admitted: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Token bucket for admissions per minute: tokens left as of bucket_at.
    bucket_tokens: Mapped[float | None] = mapped_column(Float, nullable=True)
    bucket_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    shuffle_state: Mapped[str] = mapped_column(String(16), default="pending")
    shuffle_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shuffle_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    seed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shuffled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
