"""Events and their ticket tiers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db.base import Base, UTCDateTime, utcnow


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    symbol: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    venue: Mapped[str] = mapped_column(String(200), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sale_opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    organizer_address: Mapped[str] = mapped_column(String(42), index=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    # The id the factory records the event under. Random, not the row id: a row id can come
    # back after a rolled-back insert (SQLite) or a reset database, an on-chain id never can.
    chain_event_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    contract_address: Mapped[str] = mapped_column(String(42))
    deploy_block: Mapped[int] = mapped_column(BigInteger)
    deploy_tx_hash: Mapped[str] = mapped_column(String(66))
    image_cid: Mapped[str] = mapped_column(String(100))
    max_admitted: Mapped[int] = mapped_column(Integer)
    admission_ttl_seconds: Mapped[int] = mapped_column(Integer)
    # Waiting room: when joining opens (None: at once), outflow (None: the settings' default).
    queue_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    admissions_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_tickets_per_order: Mapped[int] = mapped_column(Integer)
    # On-chain terms (TicketEvent): resale closes and escrow settles at ends_at.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resale_cap_bps: Mapped[int] = mapped_column(Integer)
    royalty_bps: Mapped[int] = mapped_column(Integer)
    # New events lock direct transfers (a transfer with a side payment dodges cap and royalty):
    # tickets then move only through capped resale. The organizer may unlock at creation.
    transfers_locked: Mapped[bool] = mapped_column(Boolean, default=True)
    # Resale policy (backend.resale): whether listing is open, and until how long before the
    # start; signed orders carry a deadline no later than that, so the chain enforces it too.
    resale_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    resale_closes_before_seconds: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Cancellation (backend.sales.cancellation): decided here at cancelled_at; the contract is
    # cancelled afterwards by the worker, which records when and in which transaction.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(42), nullable=True)
    chain_cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    chain_cancel_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)

    # Loaded when read (one SELECT), not with every event: the order, checkout and payment paths
    # read the event for its dates and cancellation only, and selectin cost them a query each.
    tiers: Mapped[list[Tier]] = relationship(back_populates="event", order_by="Tier.id")


class Tier(Base):
    """A price level of an event. ``reserved`` counts held, paid and issued seats together."""

    __tablename__ = "tiers"
    __table_args__ = (
        UniqueConstraint("event_id", "name"),
        CheckConstraint("reserved >= 0 AND reserved <= supply", name="reserved_within_supply"),
        CheckConstraint("supply > 0", name="supply_positive"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    supply: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    # Next seat number to hand out; seats are assigned when an order is paid, so they are stable
    # across mint retries and the metadata CIDs do not change.
    seats_assigned: Mapped[int] = mapped_column(Integer, default=0)
    # The contract's view of the tier: its index there (0-15), face price in gwei (wei can
    # exceed BIGINT; the contract takes whole gwei only), per-wallet limit, metadata CID.
    chain_tier: Mapped[int] = mapped_column(Integer)
    price_gwei: Mapped[int] = mapped_column(BigInteger)
    per_wallet_limit: Mapped[int] = mapped_column(Integer, default=0)
    metadata_cid: Mapped[str] = mapped_column(String(100), default="")

    event: Mapped[Event] = relationship(back_populates="tiers")
