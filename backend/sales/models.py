"""Orders and their recorded transitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

OPEN_ORDER_INDEX = "uq_orders_open_per_buyer"


class Order(Base):
    __tablename__ = "orders"
    # Order ids tag mints on chain. AUTOINCREMENT stops SQLite from handing out the id of a
    # deleted row again; a rolled-back insert can't have minted, so its id is free to reuse.
    __table_args__ = (
        # One open order per buyer and event, whatever the requests race (migration 0009).
        Index(
            OPEN_ORDER_INDEX,
            "event_id",
            "buyer_address",
            unique=True,
            postgresql_where=text("status IN ('held', 'awaiting_payment')"),
            sqlite_where=text("status IN ('held', 'awaiting_payment')"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    buyer_address: Mapped[str] = mapped_column(String(42), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), index=True)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    payment_provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    first_seat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mint_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    # Crypto checkout: the signed permit's terms (its nonce is the order id), so a repeated
    # checkout returns the same permit. Gwei, as the contract prices tiers in whole gwei.
    permit_unit_price_gwei: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    permit_deadline: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Card money going back through the provider: queued at refund_due_at, confirmed at
    # refunded_at. A crypto order's refund is claimed on chain (see backend.sales.refunds).
    refund_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A chargeback: the cardholder disputed the payment with their bank. Recorded and told to
    # the organizer (order.disputed); the tickets stay valid, as a resale buyer may hold them.
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispute_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    dispute_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OrderTransition(Base):
    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    cause: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# A holder refund's states (HolderRefund.status).
REFUND_PENDING = "pending"  # decided, not yet paid
REFUND_SENT = "sent"  # ether: the signed transfer is stored and sent, its receipt awaited
REFUND_PAID = "paid"  # card: the provider took the refund; ether: the transfer is confirmed
REFUND_FAILED = "failed"  # ether: the transfer reverted (a wallet that refuses ether)
# card: the payment is under a chargeback the bank has not decided; the provider refuses its
# refund meanwhile. The decision (sales.service.record_dispute) queues it again or settles it.
REFUND_HELD = "held"
CARD_RAIL = "card"
ETHER_RAIL = "ether"


class HolderRefund(Base):
    """The face value of one card-paid ticket of a cancelled event, going back to the wallet
    that held it when the cancellation was mined: to the card that bought it (its primary
    buyer's, or a card resale buyer's) or, for a holder who paid otherwise, in ether from the
    backend's treasury. Crypto-paid tickets need none: their holder claims from the contract's
    escrow. One row per ticket and rail, so nobody is refunded a ticket twice."""

    __tablename__ = "holder_refunds"
    __table_args__ = (UniqueConstraint("ticket_id", "rail"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    token_id: Mapped[int] = mapped_column(BigInteger)
    holder_address: Mapped[str] = mapped_column(String(42), index=True)
    rail: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    # Card: the payment refunded (the primary order's, or the card resale purchase's).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    payment_provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    amount_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    # Ether: decimal wei, and the transfer written ahead before it is sent, so a crash between
    # signing and sending neither loses it nor sends a second one.
    amount_wei: Mapped[str | None] = mapped_column(String(78), nullable=True)
    # The signer's nonce counts as taken while the refund is ``sent`` (fulfilment.nonces).
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    tx_chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tx_signer: Mapped[str | None] = mapped_column(String(42), nullable=True)
    tx_nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    raw_tx: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
