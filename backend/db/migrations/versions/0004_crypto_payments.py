"""crypto payments: permit terms on orders; the indexer's cursor, checkpoints and applied logs

Revision ID: 0004_crypto_payments
Revises: 0003_ticket_protocol
Create Date: 2026-11-27 22:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0004_crypto_payments"
down_revision: str | None = "0003_ticket_protocol"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_cursors",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_checkpoints",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "block_number", name=op.f("pk_chain_checkpoints")),
    )
    op.create_table(
        "chain_applied_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("applied_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_applied_logs")),
        sa.UniqueConstraint(
            "block_hash", "log_index", name=op.f("uq_chain_applied_logs_block_hash_log_index")
        ),
    )
    with op.batch_alter_table("chain_applied_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chain_applied_logs_block_number"), ["block_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_chain_applied_logs_chain_id"), ["chain_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_chain_applied_logs_nonce"), ["nonce"], unique=False)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("permit_unit_price_gwei", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("permit_deadline", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("permit_deadline")
        batch_op.drop_column("permit_unit_price_gwei")

    with op.batch_alter_table("chain_applied_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_applied_logs_nonce"))
        batch_op.drop_index(batch_op.f("ix_chain_applied_logs_chain_id"))
        batch_op.drop_index(batch_op.f("ix_chain_applied_logs_block_number"))
    op.drop_table("chain_applied_logs")
    op.drop_table("chain_checkpoints")
    op.drop_table("chain_cursors")
