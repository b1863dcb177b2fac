"""resale market: listings, each event's resale policy, check-ins seen on chain

Listings hold a holder's signed sell order and its state; one may be on the market per ticket
(a partial unique index). Events gain their organizer's resale policy; tickets, the CheckedIn
log that used them. Existing events keep their transfer policy; new ones lock transfers.

Revision ID: 0010_resale_market
Revises: 0009_one_open_order_per_buyer
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0010_resale_market"
down_revision: str | None = "0009_one_open_order_per_buyer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ON_MARKET = "status IN ('live', 'reserved')"


def upgrade() -> None:
    # Plain ADD COLUMNs, which SQLite does in place: a batch copy of events would drop a table
    # that tiers and orders reference.
    op.add_column(
        "events",
        sa.Column("resale_enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "events",
        sa.Column("resale_closes_before_seconds", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("tickets", sa.Column("checkin_tx_hash", sa.String(length=66), nullable=True))
    op.create_table(
        "resale_listings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("seller_address", sa.String(length=42), nullable=False),
        sa.Column("price_gwei", sa.BigInteger(), nullable=False),
        sa.Column("sale_nonce", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("closed_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("prior_status", sa.String(length=12), nullable=True),
        sa.Column("buyer_address", sa.String(length=42), nullable=True),
        sa.Column("sold_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("royalty_wei", sa.String(length=78), nullable=True),
        sa.Column("created_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", backend.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"]),
        sa.ForeignKeyConstraint(["tier_id"], ["tiers.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_resale_listings_seller_address", "resale_listings", ["seller_address"], unique=False
    )
    op.create_index(
        "ix_resale_listings_market",
        "resale_listings",
        ["event_id", "status", "price_gwei", "id"],
        unique=False,
    )
    op.create_index(
        "uq_resale_listings_on_market",
        "resale_listings",
        ["ticket_id"],
        unique=True,
        postgresql_where=sa.text(ON_MARKET),
        sqlite_where=sa.text(ON_MARKET),
    )


def downgrade() -> None:
    op.drop_index("uq_resale_listings_on_market", table_name="resale_listings")
    op.drop_index("ix_resale_listings_market", table_name="resale_listings")
    op.drop_index("ix_resale_listings_seller_address", table_name="resale_listings")
    op.drop_table("resale_listings")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("checkin_tx_hash")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("resale_closes_before_seconds")
        batch_op.drop_column("resale_enabled")
