"""a ticket's resale listings and payouts found by index: every listing request asks whether
the ticket was resold and what card payouts of it gave back, which scanned every sold listing
and every payout

Revision ID: 0016_resale_ticket_indexes
Revises: 0015_resale_card
Create Date: 2026-12-08 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_resale_ticket_indexes"
down_revision: str | None = "0015_resale_card"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resale_listings", schema=None) as batch_op:
        batch_op.create_index("ix_resale_listings_ticket", ["ticket_id", "status"], unique=False)
    with op.batch_alter_table("resale_payouts", schema=None) as batch_op:
        batch_op.create_index("ix_resale_payouts_ticket", ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resale_payouts", schema=None) as batch_op:
        batch_op.drop_index("ix_resale_payouts_ticket")
    with op.batch_alter_table("resale_listings", schema=None) as batch_op:
        batch_op.drop_index("ix_resale_listings_ticket")
