"""ticket protocol: on-chain event terms and tier index, price, limit, metadata

Revision ID: 0003_ticket_protocol
Revises: 0002_waiting_room
Create Date: 2026-11-27 21:59:21.617305

Events created before this revision were deployed with the skeleton's contract (full deployment,
per-ticket CIDs); the backend can no longer mint on those. The columns get defaults so the upgrade
runs on a database that has them, but such events should be recreated.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0003_ticket_protocol"
down_revision: str | None = "0002_waiting_room"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ends_at", backend.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("resale_cap_bps", sa.Integer(), nullable=False, server_default="11000")
        )
        batch_op.add_column(
            sa.Column("royalty_bps", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("transfers_locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE events SET ends_at = starts_at")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("ends_at", nullable=False)
        for column in ("resale_cap_bps", "royalty_bps", "transfers_locked"):
            batch_op.alter_column(column, server_default=None)

    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain_tier", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("price_gwei", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("per_wallet_limit", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("metadata_cid", sa.String(length=100), nullable=False, server_default="")
        )
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        for column in ("chain_tier", "price_gwei", "per_wallet_limit", "metadata_cid"):
            batch_op.alter_column(column, server_default=None)

    # Token ids are order id * 256 + index now, past 32 bits once order ids pass ~8.4 million.
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.alter_column(
            "token_id", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.alter_column(
            "token_id", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.drop_column("metadata_cid")
        batch_op.drop_column("per_wallet_limit")
        batch_op.drop_column("price_gwei")
        batch_op.drop_column("chain_tier")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("transfers_locked")
        batch_op.drop_column("royalty_bps")
        batch_op.drop_column("resale_cap_bps")
        batch_op.drop_column("ends_at")
