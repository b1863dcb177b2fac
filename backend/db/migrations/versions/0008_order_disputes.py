"""order disputes: chargebacks a card provider reported, and their outcome

Revision ID: 0008_order_disputes
Revises: 0007_event_cancellation
Create Date: 2026-11-29 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0008_order_disputes"
down_revision: str | None = "0007_event_cancellation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disputed_at", backend.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("dispute_status", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("dispute_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("dispute_reason")
        batch_op.drop_column("dispute_status")
        batch_op.drop_column("disputed_at")
