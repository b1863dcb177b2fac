"""outbox messages keep the id of the request that wrote them

Nullable: rows written before, and by the worker outside any request, have none. So a mint (a
``mint_order`` message) can be traced back to the payment webhook, and through the sandbox's
delivery to the card confirmation, that caused it.

Revision ID: 0011_outbox_request_id
Revises: 0010_resale_market
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_outbox_request_id"
down_revision: str | None = "0010_resale_market"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("request_id")
