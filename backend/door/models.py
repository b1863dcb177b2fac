"""The door's tables: scanner devices, the scans they send, the admissions those decide, the
conflicts offline gates cause, and each event's door settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

# DoorAdmission.chain_state: waiting for a check-in batch; in one (claimed until lease_until);
# marked used on chain; not marked, and never will be (the ticket is gone or the event
# cancelled: ``chain_note`` says which).
PENDING, SENDING, CHECKED_IN, SKIPPED = "pending", "sending", "checked_in", "skipped"


class DoorSettings(Base):
    """An event's door settings; an event without a row has the defaults."""

    __tablename__ = "door_settings"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    reveal_seconds_before_start: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(42))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScannerDevice(Base):
    """A gate's scanner, registered by the organizer for one event. Only its credential's
    SHA-256 is stored: a leaked table opens no gate."""

    __tablename__ = "scanner_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    gate: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(42))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    manifest_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the device last downloaded the door manifest (the event's ticket secrets)."""


class DoorAdmission(Base):
    """A ticket let in. At most one per ticket (the unique key is what makes two gates
    scanning it at once admit it once); also the check-in's outbox row for the chain."""

    __tablename__ = "door_admissions"
    __table_args__ = (
        UniqueConstraint("event_id", "token_id", name="uq_door_admissions_ticket"),
        Index("ix_door_admissions_chain", "chain_state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    token_id: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(String(42))
    """The wallet whose code was admitted: the chain's check-in is for it alone."""
    holder_epoch: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int] = mapped_column(ForeignKey("scanner_devices.id"))
    gate: Mapped[str] = mapped_column(String(60))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    chain_state: Mapped[str] = mapped_column(String(16), default=PENDING)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    chain_attempts: Mapped[int] = mapped_column(Integer, default=0)
    chain_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    chain_note: Mapped[str | None] = mapped_column(String(200), nullable=True)


class DoorScan(Base):
    """Every scan a device sent and the answer it got, kept so that the same ``scan_id`` from
    the same device is answered the same way again, and for the organizer's counts."""

    __tablename__ = "door_scans"
    __table_args__ = (
        UniqueConstraint("device_id", "scan_id", name="uq_door_scans_device_scan"),
        Index("ix_door_scans_event_result", "event_id", "result"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    device_id: Mapped[int] = mapped_column(ForeignKey("scanner_devices.id"))
    scan_id: Mapped[str] = mapped_column(String(64))
    gate: Mapped[str] = mapped_column(String(60))
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    admission_id: Mapped[int | None] = mapped_column(
        ForeignKey("door_admissions.id"), nullable=True
    )
    """The admission this scan made, or, for ``already-used``, the one that came first."""


class DoorConflict(Base):
    """A ticket a device admitted offline that the service refuses on upload: most often let in
    at two gates while one of them was cut off."""

    __tablename__ = "door_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    scan_row_id: Mapped[int] = mapped_column(ForeignKey("door_scans.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(40))
    admission_id: Mapped[int | None] = mapped_column(
        ForeignKey("door_admissions.id"), nullable=True
    )
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
