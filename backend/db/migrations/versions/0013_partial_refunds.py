"""partial refunds: the sandbox card processor keeps each refund and what was given back

A resale seller paid back to their card, and a cancellation refunding only the tickets their
buyer still holds, refund part of a payment; the sandbox now records every refund by its
idempotency key, as Stripe does, and the total refunded on the intent.

Revision ID: 0013_partial_refunds
Revises: 0012_door
Create Date: 2026-12-07 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.db.base import UTCDateTime

revision: str = "0013_partial_refunds"
down_revision: str | None = "0012_door"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sandbox_payment_intents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("amount_refunded", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "sandbox_refunds",
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("intent_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["intent_id"], ["sandbox_payment_intents.id"]),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )
    op.create_index("ix_sandbox_refunds_intent_id", "sandbox_refunds", ["intent_id"])


def downgrade() -> None:
    op.drop_index("ix_sandbox_refunds_intent_id", table_name="sandbox_refunds")
    op.drop_table("sandbox_refunds")
    with op.batch_alter_table("sandbox_payment_intents", schema=None) as batch_op:
        batch_op.drop_column("amount_refunded")
