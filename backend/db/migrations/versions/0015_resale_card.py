"""resale on the card rail: card purchases (reservation, payment, the relayer's write-ahead
settlement, refund), sellers' payouts, and each listing's payout rail, payee and named buyer

Revision ID: 0015_resale_card
Revises: 0014_holder_refunds
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0015_resale_card"
down_revision: str | None = "0014_holder_refunds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resale_card_purchases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer_address", sa.String(length=42), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_provider", sa.String(length=20), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("settle_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("reserved_until", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", backend.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settled_at", backend.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", backend.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("settle_chain_id", sa.BigInteger(), nullable=True),
        sa.Column("settle_signer", sa.String(length=42), nullable=True),
        sa.Column("settle_nonce", sa.BigInteger(), nullable=True),
        sa.Column("settle_raw_tx", sa.Text(), nullable=True),
        sa.Column("settle_gas", sa.BigInteger(), nullable=True),
        sa.Column("settle_value_wei", sa.String(length=78), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_resale_card_purchases_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["resale_listings.id"],
            name=op.f("fk_resale_card_purchases_listing_id_resale_listings"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_resale_card_purchases_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resale_card_purchases")),
        sa.UniqueConstraint(
            "payment_intent_id", name=op.f("uq_resale_card_purchases_payment_intent_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("resale_card_purchases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resale_card_purchases_buyer_address"), ["buyer_address"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_resale_card_purchases_listing_id"), ["listing_id"], unique=False
        )
        batch_op.create_index(
            "ix_resale_card_purchases_settling", ["status", "settle_signer"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_resale_card_purchases_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "resale_payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("seller_address", sa.String(length=42), nullable=False),
        sa.Column("rail", sa.String(length=8), nullable=False),
        sa.Column("amount_wei", sa.String(length=78), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("payment_provider", sa.String(length=20), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("sold_tx_hash", sa.String(length=66), nullable=False),
        sa.Column("created_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", backend.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_resale_payouts_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["resale_listings.id"],
            name=op.f("fk_resale_payouts_listing_id_resale_listings"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_resale_payouts_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resale_payouts")),
        sa.UniqueConstraint("listing_id", name=op.f("uq_resale_payouts_listing_id")),
    )
    with op.batch_alter_table("resale_payouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resale_payouts_seller_address"), ["seller_address"], unique=False
        )

    with op.batch_alter_table("resale_listings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("payout_rail", sa.String(length=8), server_default="ether", nullable=False)
        )
        batch_op.add_column(sa.Column("payee_address", sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column("named_buyer", sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column("payout_order_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payout_purchase_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payout_limit_cents", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payout_cents", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("reserved_until", backend.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("resale_listings", schema=None) as batch_op:
        batch_op.drop_column("reserved_until")
        batch_op.drop_column("payout_cents")
        batch_op.drop_column("payout_limit_cents")
        batch_op.drop_column("payout_purchase_id")
        batch_op.drop_column("payout_order_id")
        batch_op.drop_column("named_buyer")
        batch_op.drop_column("payee_address")
        batch_op.drop_column("payout_rail")

    with op.batch_alter_table("resale_payouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resale_payouts_seller_address"))

    op.drop_table("resale_payouts")
    with op.batch_alter_table("resale_card_purchases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resale_card_purchases_ticket_id"))
        batch_op.drop_index("ix_resale_card_purchases_settling")
        batch_op.drop_index(batch_op.f("ix_resale_card_purchases_listing_id"))
        batch_op.drop_index(batch_op.f("ix_resale_card_purchases_buyer_address"))

    op.drop_table("resale_card_purchases")
