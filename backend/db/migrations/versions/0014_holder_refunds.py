"""holder refunds: a cancelled event's card-paid tickets refunded to whoever holds them

Revision ID: 0014_holder_refunds
Revises: 0013_partial_refunds
Create Date: 2026-12-07 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.db.base import UTCDateTime

revision: str = "0014_holder_refunds"
down_revision: str | None = "0013_partial_refunds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "holder_refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("holder_address", sa.String(length=42), nullable=False),
        sa.Column("rail", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("payment_provider", sa.String(length=20), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=100), nullable=True),
        sa.Column("amount_cents", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("amount_wei", sa.String(length=78), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("tx_chain_id", sa.BigInteger(), nullable=True),
        sa.Column("tx_signer", sa.String(length=42), nullable=True),
        sa.Column("tx_nonce", sa.BigInteger(), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.String(length=300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "rail"),
    )
    op.create_index("ix_holder_refunds_event_id", "holder_refunds", ["event_id"])
    op.create_index("ix_holder_refunds_holder_address", "holder_refunds", ["holder_address"])


def downgrade() -> None:
    op.drop_index("ix_holder_refunds_holder_address", table_name="holder_refunds")
    op.drop_index("ix_holder_refunds_event_id", table_name="holder_refunds")
    op.drop_table("holder_refunds")
