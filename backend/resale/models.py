"""Listings: a holder's signed sell order for one ticket, and what became of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
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
        # A ticket's listings in a state: whether it was ever resold (every listing request
        # asks, for the card payout's source), the listing a Resold log filled.
        Index("ix_resale_listings_ticket", "ticket_id", "status"),
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
    # How the seller is paid (the order's payee): ``ether``, credited on chain to the seller
    # (payee zero); ``card``, back to the card that bought the ticket (payee = the backend's
    # treasury, which the contract credits or nets, and which refunds the card).
    payout_rail: Mapped[str] = mapped_column(String(8), default="ether", server_default="ether")
    payee_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    # A private sale: the only wallet the signed order lets receive the ticket (None: anyone).
    named_buyer: Mapped[str | None] = mapped_column(String(42), nullable=True)
    # The card payment a card payout partly refunds: the primary order that bought the ticket,
    # or the settled card resale purchase; and the most it may give back (the ticket's share).
    payout_order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payout_purchase_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payout_limit_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What a card payout gives back: the seller's proceeds (price - royalty) in cents, rounded
    # down at the rate of the day the order was signed (FAIRTIX_WEI_PER_CENT).
    payout_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # While ``reserved``: until when the card buyer's payment window holds it (None once paid:
    # it stays reserved until the settlement is decided).
    reserved_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# Payout rails (Listing.payout_rail, Payout.rail).
ETHER = "ether"
CARD = "card"
PAYOUT_RAILS = (ETHER, CARD)

# A card purchase's states (CardPurchase.status).
P_RESERVED = "reserved"  # listing held for the buyer, payment started, not paid yet
P_PAID = "paid"  # paid; settlement queued (or to be sent again)
P_SETTLING = "settling"  # buyResaleFor signed and stored (write-ahead), sent or being sent
P_SETTLED = "settled"  # the indexer saw its Resold log: the ticket is the buyer's
P_FAILED = "failed"  # can't settle any more; the payment is being refunded
P_REFUNDED = "refunded"  # the card payment was given back
P_EXPIRED = "expired"  # the reservation lapsed unpaid (a late payment still settles or refunds)
PURCHASE_STATUSES = (
    P_RESERVED,
    P_PAID,
    P_SETTLING,
    P_SETTLED,
    P_FAILED,
    P_REFUNDED,
    P_EXPIRED,
)
PURCHASE_OPEN = (P_RESERVED, P_PAID, P_SETTLING)


class CardPurchase(Base):
    """A card buyer's purchase of one listing: the reservation, the payment, the relayer's
    settlement on chain for the buyer's wallet, and a refund if it could not settle."""

    __tablename__ = "resale_card_purchases"
    __table_args__ = (
        Index("ix_resale_card_purchases_settling", "status", "settle_signer"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("resale_listings.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    token_id: Mapped[int] = mapped_column(BigInteger)
    buyer_address: Mapped[str] = mapped_column(String(42), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    payment_provider: Mapped[str] = mapped_column(String(20))
    payment_intent_id: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(12))
    settle_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reserved_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The write-ahead record of the settlement (as MintBatch/MintTx for mints): the signed
    # buyResaleFor, stored with its nonce before it is sent, so a crash never sends a second
    # one nor loses the first. The nonce counts as taken while the purchase is ``settling``.
    settle_chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settle_signer: Mapped[str | None] = mapped_column(String(42), nullable=True)
    settle_nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settle_raw_tx: Mapped[str | None] = mapped_column(Text, nullable=True)
    settle_gas: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settle_value_wei: Mapped[str | None] = mapped_column(String(78), nullable=True)


# A payout's states (Payout.status).
PAYOUT_CREDITED = "credited"  # ether rail: the contract credited the seller (who withdraws)
PAYOUT_PENDING = "pending"  # card rail: the partial refund is queued
PAYOUT_PAID = "paid"  # card rail: the provider took the refund
PAYOUT_FAILED = "failed"  # card rail: the provider refused it for good (an operator looks)
PAYOUT_REVERTED = "reverted"  # a reorg orphaned the sale before anything was paid
PAYOUT_REVERTED_PAID = "reverted_after_paid"  # ... after the card refund was made: flagged
PAYOUT_STATUSES = (
    PAYOUT_CREDITED,
    PAYOUT_PENDING,
    PAYOUT_PAID,
    PAYOUT_FAILED,
    PAYOUT_REVERTED,
    PAYOUT_REVERTED_PAID,
)


class Payout(Base):
    """What the seller of one of our listings was paid for its sale (one per listing: a sale
    orphaned by a reorg and mined again is the same payout)."""

    __tablename__ = "resale_payouts"
    # What card payouts of a ticket gave back already: a card listing request sums them.
    __table_args__ = (Index("ix_resale_payouts_ticket", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("resale_listings.id"), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    token_id: Mapped[int] = mapped_column(BigInteger)
    seller_address: Mapped[str] = mapped_column(String(42), index=True)
    rail: Mapped[str] = mapped_column(String(8))
    # Ether rail: price - royalty, decimal wei. Card rail: the same proceeds in cents (rounded
    # down at FAIRTIX_WEI_PER_CENT), refunded to the card payment named here.
    amount_wei: Mapped[str] = mapped_column(String(78))
    amount_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    payment_provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    sold_tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
