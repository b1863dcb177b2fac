"""mint batches: the worker's write-ahead record of each mint transaction

Revision ID: 0006_mint_batches
Revises: 0005_notifications
Create Date: 2026-11-29 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.base

revision: str = "0006_mint_batches"
down_revision: str | None = "0005_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mint_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("contract_address", sa.String(length=42), nullable=False),
        sa.Column("order_ids", sa.JSON(), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", backend.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_mint_batches_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mint_batches")),
        sa.UniqueConstraint(
            "chain_id", "signer", "nonce", name=op.f("uq_mint_batches_chain_id_signer_nonce")
        ),
    )
    with op.batch_alter_table("mint_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mint_batches_unfinished", ["status", "chain_id", "signer"], unique=False
        )

    op.create_table(
        "mint_txs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("max_fee_per_gas", sa.BigInteger(), nullable=True),
        sa.Column("max_priority_fee_per_gas", sa.BigInteger(), nullable=True),
        sa.Column("gas_price", sa.BigInteger(), nullable=True),
        sa.Column("signed_at", backend.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["mint_batches.id"], name=op.f("fk_mint_txs_batch_id_mint_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mint_txs")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_mint_txs_tx_hash")),
    )
    with op.batch_alter_table("mint_txs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mint_txs_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mint_txs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mint_txs_batch_id"))
    op.drop_table("mint_txs")
    with op.batch_alter_table("mint_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_mint_batches_unfinished")
    op.drop_table("mint_batches")
