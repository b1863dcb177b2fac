"""event cancellation: when and why an event was called off, refunds, transfers on chain

Events record the cancellation and the transaction that cancelled the contract; orders record
when a card refund was queued and confirmed; tickets record the refund claim that burned them;
the indexer's applied logs record refund claims and transfers, with what a reorg must undo.

Revision ID: 0007_event_cancellation
Revises: 0006_mint_batches
Create Date: 2026-11-29 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0007_event_cancellation"
down_revision: str | None = "0006_mint_batches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cancelled_at", backend.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_by", sa.String(length=42), nullable=True))
        batch_op.add_column(
            sa.Column(
                "chain_cancelled_at", backend.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("chain_cancel_tx_hash", sa.String(length=66), nullable=True))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refund_due_at", backend.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("refunded_at", backend.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    # Refunds queued before this revision said so only in failure_reason; give them the column
    # that GET /orders/{id} now reads. The exact time is lost; the order's last change is close.
    op.execute(
        "UPDATE orders SET refund_due_at = updated_at "
        "WHERE payment_provider IS NOT NULL AND payment_provider <> 'crypto' "
        "AND (failure_reason LIKE '%refund queued%' OR failure_reason LIKE '%refunded%' "
        "OR status = 'refunded')"
    )
    op.execute("UPDATE orders SET refunded_at = updated_at WHERE status = 'refunded'")

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_tx_hash", sa.String(length=66), nullable=True))

    with op.batch_alter_table("chain_applied_logs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), server_default="purchase", nullable=False)
        )
        batch_op.add_column(sa.Column("token_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("from_address", sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column("to_address", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chain_applied_logs", schema=None) as batch_op:
        batch_op.drop_column("to_address")
        batch_op.drop_column("from_address")
        batch_op.drop_column("token_id")
        batch_op.drop_column("kind")

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("refund_tx_hash")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("refunded_at")
        batch_op.drop_column("refund_due_at")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("chain_cancel_tx_hash")
        batch_op.drop_column("chain_cancelled_at")
        batch_op.drop_column("cancelled_by")
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("cancelled_at")
