"""Request and response bodies of the door's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field

GATE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$"
SCAN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Gate = Annotated[str, Field(pattern=GATE_PATTERN, description="The gate's name, e.g. 'North 3'")]
ScanId = Annotated[
    str,
    Field(
        pattern=SCAN_ID_PATTERN,
        description="The device's id for this scan (a UUID, say): the same id is answered once",
    ),
]
Reason = Literal[
    "already-used",
    "wrong-event",
    "code-expired",
    "code-not-yet-valid",
    "not-current-holder",
    "ticket-void",
    "event-cancelled",
    "malformed-code",
    "forged-code",
    "unverifiable-offline",
]
MAX_SYNC_SCANS = 500
MAX_SCANNED_TEXT = 300


class EntryCodeOut(BaseModel):
    event_id: int
    token_id: int
    code: str = Field(description="What the QR encodes; a new one every step_seconds")
    step_seconds: int
    valid_from: datetime
    valid_until: datetime = Field(
        description="When the next code replaces it (gates accept it one step longer)"
    )
    holder_epoch: int = Field(description="Changes of holder so far: a new holder, a new secret")
    secret: str = Field(
        description="The ticket's code secret for its current holder (RFC 4648 base32), so an "
        "app can show codes offline: RFC 6238 TOTP, HMAC-SHA-256, 8 digits, 15 s steps. Keep "
        "it private; it changes when the ticket changes holder"
    )
    qr_svg: str = Field(description="The code as an SVG image")
    qr_png_base64: str = Field(description="The code as a PNG image, base64")


class DoorSettingsIn(BaseModel):
    reveal_seconds_before_start: int = Field(
        ge=0, le=30 * 24 * 3600, description="Entry codes are shown from this long before doors"
    )


class DoorSettingsOut(BaseModel):
    event_id: int
    reveal_seconds_before_start: int
    reveal_at: datetime


class ScannerIn(BaseModel):
    gate: Gate
    label: str = Field(default="", max_length=100)


class ScannerOut(BaseModel):
    id: int
    event_id: int
    gate: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None
    manifest_at: datetime | None


class ScannerCreated(ScannerOut):
    credential: str = Field(
        description="The device's bearer credential (fts_...): shown once, stored hashed"
    )


class ScanIn(BaseModel):
    # Any QR a fan holds up (a URL, another venue's ticket) is answered malformed-code, counted
    # with the refusals, rather than refused as a request: only absurd lengths are.
    code: str = Field(max_length=MAX_SCANNED_TEXT, description="The text the QR holds")
    gate: Gate
    scan_id: ScanId
    scanned_at: AwareDatetime


class OfflineScanIn(ScanIn):
    admitted: bool = Field(description="What the device decided while offline")


class ScanOut(BaseModel):
    scan_id: str
    result: Literal["admitted", "refused"]
    reason: Reason | None = None
    event_id: int
    gate: str
    token_id: int | None = None
    scanned_at: datetime
    seat: str | None = None
    used_at: datetime | None = Field(default=None, description="already-used: when it was let in")
    used_gate: str | None = Field(default=None, description="already-used: at which gate")
    conflict: bool = Field(
        default=False, description="Admitted offline by the device, refused here: see the report"
    )
    replayed: bool = Field(default=False, description="This scan_id was answered before")


class SyncIn(BaseModel):
    scans: list[OfflineScanIn] = Field(default_factory=list, max_length=MAX_SYNC_SCANS)
    since: int = Field(default=0, ge=0, le=2**31 - 1, description="admissions cursor")


class AdmissionOut(BaseModel):
    id: int
    token_id: int
    gate: str
    admitted_at: datetime


class SyncOut(BaseModel):
    answers: list[ScanOut]
    admissions: list[AdmissionOut] = Field(description="Every gate's admissions after `since`")
    cursor: int


class ManifestTicket(BaseModel):
    token_id: int
    epoch: int
    secret: str
    seat: str
    void: bool
    used_gate: str | None
    used_at: datetime | None


class ManifestOut(BaseModel):
    format: str
    event_id: int
    device_id: int
    gate: str
    generated_at: datetime
    event_cancelled: bool
    code_prefix: str
    step_seconds: int
    digits: int
    drift_steps: int
    offline_window_seconds: int
    admissions_cursor: int
    tickets: list[ManifestTicket]


class GateMinute(BaseModel):
    gate: str
    minute: datetime
    admitted: int


class DeviceReport(ScannerOut):
    scans: int


class ConflictOut(BaseModel):
    token_id: int | None
    reason: str
    gate: str
    device_id: int
    scanned_at: datetime
    detected_at: datetime
    first_gate: str | None
    first_admitted_at: datetime | None


class DoorReport(BaseModel):
    event_id: int
    admitted: int
    admitted_by_gate_minute: list[GateMinute]
    refusals_by_reason: dict[str, int]
    devices: list[DeviceReport]
    conflicts: list[ConflictOut]
    chain: dict[str, int] = Field(description="Admissions by check-in state on chain")
