"""the door: scanner devices, scans, admissions, offline conflicts, door settings

Tickets count their changes of holder (and remember the previous holder): entry-code secrets
are derived from the holder and that count, so a resale or transfer re-keys the ticket.

Revision ID: 0012_door
Revises: 0011_outbox_request_id
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.db.base import UTCDateTime

revision: str = "0012_door"
down_revision: str | None = "0011_outbox_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holder_epoch", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("previous_owner_address", sa.String(length=42), nullable=True)
        )

    op.create_table(
        "door_settings",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("reveal_seconds_before_start", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=42), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_door_settings_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_door_settings")),
    )
    op.create_table(
        "scanner_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("gate", sa.String(length=60), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=42), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("manifest_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_scanner_devices_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scanner_devices")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scanner_devices_token_hash")),
    )
    op.create_index(
        op.f("ix_scanner_devices_event_id"), "scanner_devices", ["event_id"], unique=False
    )
    op.create_table(
        "door_admissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("holder_epoch", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("gate", sa.String(length=60), nullable=False),
        sa.Column("scanned_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("admitted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("chain_state", sa.String(length=16), nullable=False),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("chain_attempts", sa.Integer(), nullable=False),
        sa.Column("chain_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("chain_note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["scanner_devices.id"],
            name=op.f("fk_door_admissions_device_id_scanner_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_door_admissions_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_door_admissions")),
        sa.UniqueConstraint("event_id", "token_id", name="uq_door_admissions_ticket"),
    )
    op.create_index(
        "ix_door_admissions_chain",
        "door_admissions",
        ["chain_state", "lease_until"],
        unique=False,
    )
    op.create_table(
        "door_scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.String(length=64), nullable=False),
        sa.Column("gate", sa.String(length=60), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("scanned_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["admission_id"],
            ["door_admissions.id"],
            name=op.f("fk_door_scans_admission_id_door_admissions"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["scanner_devices.id"],
            name=op.f("fk_door_scans_device_id_scanner_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_door_scans_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_door_scans")),
        sa.UniqueConstraint("device_id", "scan_id", name="uq_door_scans_device_scan"),
    )
    op.create_index(
        "ix_door_scans_event_result", "door_scans", ["event_id", "result"], unique=False
    )
    op.create_table(
        "door_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("scan_row_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.Column("detected_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["admission_id"],
            ["door_admissions.id"],
            name=op.f("fk_door_conflicts_admission_id_door_admissions"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_door_conflicts_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["scan_row_id"],
            ["door_scans.id"],
            name=op.f("fk_door_conflicts_scan_row_id_door_scans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_door_conflicts")),
        sa.UniqueConstraint("scan_row_id", name=op.f("uq_door_conflicts_scan_row_id")),
    )
    op.create_index(
        op.f("ix_door_conflicts_event_id"), "door_conflicts", ["event_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_door_conflicts_event_id"), table_name="door_conflicts")
    op.drop_table("door_conflicts")
    op.drop_index("ix_door_scans_event_result", table_name="door_scans")
    op.drop_table("door_scans")
    op.drop_index("ix_door_admissions_chain", table_name="door_admissions")
    op.drop_table("door_admissions")
    op.drop_index(op.f("ix_scanner_devices_event_id"), table_name="scanner_devices")
    op.drop_table("scanner_devices")
    op.drop_table("door_settings")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("previous_owner_address")
        batch_op.drop_column("holder_epoch")
