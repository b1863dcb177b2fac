"""one open order per buyer and event, enforced by the database

Two requests of one wallet at the same moment both passed the "no open order" check and both
held seats. A partial unique index over the open statuses makes the second insert fail.
Duplicates left by that race are expired first (newest kept), their seats given back.

Revision ID: 0009_one_open_order_per_buyer
Revises: 0008_order_disputes
Create Date: 2026-11-29 11:40:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from backend.db.base import UTCDateTime

revision: str = "0009_one_open_order_per_buyer"
down_revision: str | None = "0008_order_disputes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_orders_open_per_buyer"
OPEN = "status IN ('held', 'awaiting_payment')"


def upgrade() -> None:
    bind = op.get_bind()
    duplicates = bind.execute(
        sa.text(
            f"SELECT o.id, o.tier_id, o.quantity, o.status FROM orders o WHERE o.{OPEN} "
            "AND EXISTS (SELECT 1 FROM orders n WHERE n.event_id = o.event_id "
            f"AND n.buyer_address = o.buyer_address AND n.{OPEN} AND n.id > o.id)"
        )
    ).all()
    now = datetime.now(UTC)
    # Typed, so each database stores the time as the models do.
    stamp = sa.bindparam("now", type_=UTCDateTime())
    for order_id, tier_id, quantity, status in duplicates:
        bind.execute(
            sa.text(
                "UPDATE orders SET status = 'expired', updated_at = :now WHERE id = :id"
            ).bindparams(stamp),
            {"id": order_id, "now": now},
        )
        bind.execute(
            sa.text("UPDATE tiers SET reserved = reserved - :quantity WHERE id = :tier"),
            {"quantity": quantity, "tier": tier_id},
        )
        bind.execute(
            sa.text(
                "INSERT INTO order_transitions (order_id, from_status, to_status, cause, at) "
                "VALUES (:id, :status, 'expired', :cause, :now)"
            ).bindparams(stamp),
            {
                "id": order_id,
                "status": status,
                "cause": "a newer open order of the same buyer kept (migration 0009)",
                "now": now,
            },
        )
    op.create_index(
        INDEX,
        "orders",
        ["event_id", "buyer_address"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="orders")
