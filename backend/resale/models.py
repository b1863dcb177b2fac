"""Listings: a holder's signed sell order for one ticket, and what became of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

# A listing's states (Listing.status). Live and reserved are on the market; the rest are final,
# except that a reorg can take back what the indexer decided (sold, void).
LIVE = "live"
RESERVED = "reserved"  # held for a card buyer while the relayer settles it (card rail)
SOLD = "sold"  # a Resold log filled it
VOID = "void"  # the ticket moved, was checked in or refunded, its orders were cancelled on
# chain, the event was cancelled, or the organizer closed resale
EXPIRED = "expired"  # its deadline passed unfilled
DELISTED = "delisted"  # its seller took it off the market here (the signed order may still fill)
STATUSES = (LIVE, RESERVED, SOLD, VOID, EXPIRED, DELISTED)
ON_MARKET = (LIVE, RESERVED)
_ON_MARKET_SQL = "status IN ('live', 'reserved')"


class Listing(Base):
    __tablename__ = "resale_listings"
    __table_args__ = (
        # One listing on the market per ticket: a new one replaces the old in one transaction,
        # and two racing requests can't both add one.
        Index(
            "uq_resale_listings_on_market",
            "ticket_id",
            unique=True,
            postgresql_where=text(_ON_MARKET_SQL),
            sqlite_where=text(_ON_MARKET_SQL),
        ),
        # Browsing an event's market by price or by age, a page at a time.
        Index("ix_resale_listings_market", "event_id", "status", "price_gwei", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    token_id: Mapped[int] = mapped_column(BigInteger)
    seller_address: Mapped[str] = mapped_column(String(42), index=True)
    # The signed SellOrder (backend.chain.protocol.sell_order_message): price in whole gwei, as
    # face prices are, so it fits a BIGINT and sorts in SQL; nonce; deadline in unix seconds.
    price_gwei: Mapped[int] = mapped_column(BigInteger)
    sale_nonce: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(132))
    status: Mapped[str] = mapped_column(String(12))
    # Why it left the market, in words for its seller (void, expired, delisted, replaced).
    status_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The indexer's record of what closed it, so a reorg can reopen it: the transaction, and the
    # status it had before (a sale closes a listing its own Transfer log voided a moment before).
    closed_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    prior_status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    # The sale (Resold log): who bought, in which transaction, and the organizer's royalty.
    buyer_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    sold_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    royalty_wei: Mapped[str | None] = mapped_column(String(78), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
