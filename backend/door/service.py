"""The door: entry codes for holders, scanner devices for organizers, and the gate's answer.

No HTTP here. Every scan is decided from the database: the admission is one conditional INSERT
keyed on the ticket (``uq_door_admissions_ticket``), guarded by the ticket still being held by
the code's holder at the code's epoch, not refunded, and its event not cancelled. Two gates
scanning one ticket at the same moment both run it; the database lets one row in, and the other
gate's INSERT finds it and answers ``already-used``. The chain hears of admissions later, in
batches (backend.door.checkins).

Resale and transfers through fairtix must ask :func:`is_admitted` first: a ticket let in at
the door can't be listed, sold or moved from that moment, not only once the chain says so.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    Table,
    and_,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.catalog.errors import EventNotFound
from backend.catalog.models import Event
from backend.config import Settings
from backend.db.base import utcnow
from backend.door import codes
from backend.door.errors import (
    EntryCodesNotYetRevealed,
    ScannerNotAuthenticated,
    ScannerNotFound,
    ScannerRevoked,
    ScanTimeOutOfWindow,
    TicketNotEnterable,
    TicketNotFound,
)
from backend.door.models import (
    CHECKED_IN,
    PENDING,
    SENDING,
    SKIPPED,
    DoorAdmission,
    DoorConflict,
    DoorScan,
    DoorSettings,
    ScannerDevice,
)
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.door")

CREDENTIAL_PREFIX = "fts_"
"""Scanner credentials start so, wallet sessions with ``ftx_``: neither opens the other's routes."""
ADMITTED, REFUSED = "admitted", "refused"
# A device's last contact is written at most this often: not one more write per scan.
LAST_SEEN_RESOLUTION = timedelta(seconds=5)
MANIFEST_FORMAT = "fairtix-door-manifest/1"
SYNC_ADMISSIONS_MAX = 5000


class Refusal(StrEnum):
    """Why a gate turned a code away. Each admits nobody and changes nothing but the counts."""

    ALREADY_USED = "already-used"
    WRONG_EVENT = "wrong-event"
    CODE_EXPIRED = "code-expired"
    CODE_NOT_YET_VALID = "code-not-yet-valid"
    NOT_CURRENT_HOLDER = "not-current-holder"
    TICKET_VOID = "ticket-void"
    EVENT_CANCELLED = "event-cancelled"
    MALFORMED_CODE = "malformed-code"
    FORGED_CODE = "forged-code"
    UNVERIFIABLE_OFFLINE = "unverifiable-offline"
    """Only a device offline says this: a code of a holder newer than its manifest."""


@dataclass(frozen=True)
class DoorPolicy:
    """The door's knobs and key, from the settings."""

    key: bytes
    reveal: timedelta
    offline_window: timedelta
    future_tolerance: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> DoorPolicy:
        return cls(
            key=codes.door_key(settings.signing_secret),
            reveal=timedelta(seconds=settings.door_reveal_seconds),
            offline_window=timedelta(seconds=settings.door_offline_window_seconds),
            future_tolerance=timedelta(seconds=settings.door_future_tolerance_seconds),
        )

    def secret(self, event_id: int, token_id: int, holder: str, epoch: int) -> bytes:
        return codes.ticket_secret(self.key, event_id, token_id, holder, epoch)


@dataclass(frozen=True)
class ScanRequest:
    code: str
    gate: str
    scan_id: str
    scanned_at: datetime
    offline_admitted: bool | None = None
    """For an uploaded offline scan: what the device decided on its own (None: a live scan)."""


@dataclass(frozen=True)
class ScanAnswer:
    scan_id: str
    result: str
    reason: Refusal | None
    event_id: int
    gate: str
    token_id: int | None
    scanned_at: datetime
    seat: str | None = None
    used_at: datetime | None = None
    used_gate: str | None = None
    conflict: bool = False
    replayed: bool = False
    """The same scan_id again: this is the first answer, repeated."""


# -- scanner devices ---------------------------------------------------------------------------


def _hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def register_device(
    session: Session, event_id: int, gate: str, label: str, by: str
) -> tuple[ScannerDevice, str]:
    """A new device for ``event_id``'s ``gate`` and its credential, shown this once."""
    credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    device = ScannerDevice(
        event_id=event_id, gate=gate, label=label, token_hash=_hash(credential), created_by=by
    )
    session.add(device)
    session.flush()
    log.info("scanner registered", extra={"event_id": event_id, "device": device.id, "gate": gate})
    return device, credential


def devices_of(session: Session, event_id: int) -> list[ScannerDevice]:
    return list(
        session.scalars(
            select(ScannerDevice)
            .where(ScannerDevice.event_id == event_id)
            .order_by(ScannerDevice.id)
        )
    )


def revoke_device(
    session: Session, event_id: int, device_id: int, now: datetime | None = None
) -> ScannerDevice:
    """Revokes the device's credential at once (idempotent): from the next request on it is
    refused, and its manifest, if stolen, holds only secrets of holders as they were then."""
    device = session.get(ScannerDevice, device_id, with_for_update=True)
    if device is None or device.event_id != event_id:
        raise ScannerNotFound(event_id, device_id)
    if device.revoked_at is None:
        device.revoked_at = now or utcnow()
        log.warning("scanner revoked", extra={"event_id": event_id, "device": device_id})
    return device


def authenticate(session: Session, credential: str, now: datetime | None = None) -> ScannerDevice:
    """The live device behind a scanner credential."""
    if not credential.startswith(CREDENTIAL_PREFIX):
        raise ScannerNotAuthenticated(
            "this route takes a scanner device's credential (fts_...), not a wallet's session"
        )
    device = session.scalar(
        select(ScannerDevice).where(ScannerDevice.token_hash == _hash(credential))
    )
    if device is None:
        raise ScannerNotAuthenticated("unknown scanner credential")
    if device.revoked_at is not None:
        raise ScannerRevoked(device.id, device.revoked_at)
    now = now or utcnow()
    if device.last_seen_at is None or now - device.last_seen_at >= LAST_SEEN_RESOLUTION:
        device.last_seen_at = now
    return device


# -- door settings and entry codes -------------------------------------------------------------


def reveal_at(session: Session, policy: DoorPolicy, event: Event) -> datetime:
    row = session.get(DoorSettings, event.id)
    before = policy.reveal if row is None else timedelta(seconds=row.reveal_seconds_before_start)
    return event.starts_at - before


def set_reveal(session: Session, event_id: int, seconds_before_start: int, by: str) -> DoorSettings:
    row = session.get(DoorSettings, event_id, with_for_update=True)
    if row is None:
        row = DoorSettings(
            event_id=event_id, reveal_seconds_before_start=seconds_before_start, updated_by=by
        )
        session.add(row)
    else:
        row.reveal_seconds_before_start = seconds_before_start
        row.updated_by = by
        row.updated_at = utcnow()
    session.flush()
    return row


@dataclass(frozen=True)
class EntryCodeIssued:
    ticket: Ticket
    event: Event
    code: codes.EntryCode
    secret: bytes
    valid_from: datetime
    valid_until: datetime


def entry_code(
    session: Session, policy: DoorPolicy, wallet: str, token_id: int, now: datetime | None = None
) -> EntryCodeIssued:
    """The current entry code of ``wallet``'s ticket ``token_id``."""
    now = now or utcnow()
    row = session.execute(
        select(Ticket, Event)
        .join(Event, Event.id == Ticket.event_id)
        .where(Ticket.token_id == token_id, Ticket.owner_address == wallet.lower())
        .order_by(Ticket.id)
        .limit(1)
    ).first()
    if row is None:
        raise TicketNotFound(token_id)
    ticket, event = row
    if ticket.refund_tx_hash is not None:
        raise TicketNotEnterable(token_id, "it was refunded and burned")
    if event.cancelled_at is not None:
        raise TicketNotEnterable(token_id, "its event was cancelled")
    opens = reveal_at(session, policy, event)
    if now < opens:
        raise EntryCodesNotYetRevealed(token_id, opens)
    secret = policy.secret(event.id, ticket.token_id, ticket.owner_address, ticket.holder_epoch)
    code = codes.issue(secret, event.id, ticket.token_id, ticket.holder_epoch, now.timestamp())
    start = datetime.fromtimestamp(code.step * codes.STEP_SECONDS, tz=now.tzinfo)
    return EntryCodeIssued(
        ticket=ticket,
        event=event,
        code=code,
        secret=secret,
        valid_from=start,
        # The next step's code replaces it then; gates still take it one step longer (drift).
        valid_until=start + timedelta(seconds=codes.STEP_SECONDS),
    )


# -- the gate ----------------------------------------------------------------------------------


def check_time(policy: DoorPolicy, scanned_at: datetime, now: datetime) -> None:
    if not in_window(policy, scanned_at, now):
        earliest, latest = now - policy.offline_window, now + policy.future_tolerance
        raise ScanTimeOutOfWindow(scanned_at, earliest, latest)


def in_window(policy: DoorPolicy, scanned_at: datetime, now: datetime) -> bool:
    return now - policy.offline_window <= scanned_at <= now + policy.future_tolerance


def scan(
    session: Session,
    policy: DoorPolicy,
    device: ScannerDevice,
    request: ScanRequest,
    now: datetime | None = None,
) -> ScanAnswer:
    """Decides one scan, in the caller's transaction, and records it with its answer.

    A live scan's code is judged fresh or not at the service's clock; an uploaded offline scan's
    at its ``scanned_at`` (the gate saw it then). The same ``scan_id`` from the same device gets
    its first answer again. If a concurrent request with the same ``scan_id`` wins the record,
    :class:`DuplicateScan` is raised: the caller rolls back and asks :func:`recorded_answer`."""
    now = now or utcnow()
    check_time(policy, request.scanned_at, now)
    prior = recorded_answer(session, device.id, request.scan_id)
    if prior is not None:
        return prior
    offline = request.offline_admitted is not None
    if request.offline_admitted is False:
        # The device turned the fan away: nothing to decide, only to count.
        answer = ScanAnswer(
            request.scan_id,
            REFUSED,
            None,
            device.event_id,
            request.gate,
            _token_of(request.code),
            request.scanned_at,
        )
        _record(session, device, request, answer, None, now, offline=True)
        return answer
    judged_at = request.scanned_at if offline else now
    answer, admission_id = _decide(session, policy, device, request, judged_at, now, offline)
    if offline and answer.result == REFUSED:
        answer = _replace(answer, conflict=True)
    scan_row = _record(session, device, request, answer, admission_id, now, offline=offline)
    if answer.conflict:
        session.add(
            DoorConflict(
                event_id=device.event_id,
                token_id=answer.token_id,
                scan_row_id=scan_row,
                reason=str(answer.reason),
                admission_id=admission_id,
                detected_at=now,
            )
        )
        log.warning(
            "offline admission refused on upload",
            extra={
                "event_id": device.event_id,
                "token_id": answer.token_id,
                "reason": answer.reason,
            },
        )
    return answer


class DuplicateScan(Exception):
    """Raised when another request recorded the same device's ``scan_id`` first."""


def _replace(answer: ScanAnswer, **changes: Any) -> ScanAnswer:
    fields = {**answer.__dict__, **changes}
    return ScanAnswer(**fields)


def _token_of(text: str) -> int | None:
    parsed = codes.parse(text)
    return None if parsed is None else parsed.token_id


def _decide(
    session: Session,
    policy: DoorPolicy,
    device: ScannerDevice,
    request: ScanRequest,
    judged_at: datetime,
    now: datetime,
    offline: bool,
) -> tuple[ScanAnswer, int | None]:
    def refuse(
        reason: Refusal, token_id: int | None = None, **more: Any
    ) -> tuple[ScanAnswer, int | None]:
        admission_id = more.pop("admission_id", None)
        answer = ScanAnswer(
            request.scan_id,
            REFUSED,
            reason,
            device.event_id,
            request.gate,
            token_id,
            request.scanned_at,
            **more,
        )
        return answer, admission_id

    code = codes.parse(request.code)
    if code is None:
        return refuse(Refusal.MALFORMED_CODE)
    if code.event_id != device.event_id:
        return refuse(Refusal.WRONG_EVENT, code.token_id)
    row = session.execute(
        select(Ticket, Event.cancelled_at)
        .join(Event, Event.id == Ticket.event_id)
        .where(Ticket.event_id == code.event_id, Ticket.token_id == code.token_id)
    ).first()
    if row is None:
        # No such ticket: nothing this service issued can have named it.
        return refuse(Refusal.FORGED_CODE, code.token_id)
    ticket, cancelled_at = row
    if cancelled_at is not None:
        return refuse(Refusal.EVENT_CANCELLED, code.token_id)
    if code.epoch != ticket.holder_epoch:
        if code.epoch > ticket.holder_epoch:
            return refuse(Refusal.FORGED_CODE, code.token_id)
        previous = ticket.previous_owner_address
        if code.epoch == ticket.holder_epoch - 1 and previous is not None:
            secret = policy.secret(code.event_id, code.token_id, previous, code.epoch)
            if codes.check(code, secret, judged_at.timestamp()) == codes.CodeCheck.FORGED:
                return refuse(Refusal.FORGED_CODE, code.token_id)
        # Holders before the previous one are not kept: their codes are refused all the same.
        return refuse(Refusal.NOT_CURRENT_HOLDER, code.token_id)
    secret = policy.secret(code.event_id, code.token_id, ticket.owner_address, ticket.holder_epoch)
    verdict = codes.check(code, secret, judged_at.timestamp())
    if verdict == codes.CodeCheck.FORGED:
        return refuse(Refusal.FORGED_CODE, code.token_id)
    if ticket.refund_tx_hash is not None:
        return refuse(Refusal.TICKET_VOID, code.token_id)
    if verdict == codes.CodeCheck.EXPIRED:
        return refuse(Refusal.CODE_EXPIRED, code.token_id)
    if verdict == codes.CodeCheck.EARLY:
        return refuse(Refusal.CODE_NOT_YET_VALID, code.token_id)
    admission_id = _admit(session, device, request, ticket, now, offline)
    if admission_id is not None:
        # Imported here: resale asks the door whether a ticket was admitted (is_admitted).
        from backend.resale import service as resale

        resale.on_admitted(session, ticket.id)
        answer = ScanAnswer(
            request.scan_id,
            ADMITTED,
            None,
            device.event_id,
            request.gate,
            code.token_id,
            request.scanned_at,
            seat=ticket.seat,
        )
        return answer, admission_id
    first = session.scalar(
        select(DoorAdmission).where(
            DoorAdmission.event_id == code.event_id, DoorAdmission.token_id == code.token_id
        )
    )
    if first is not None:
        return refuse(
            Refusal.ALREADY_USED,
            code.token_id,
            seat=ticket.seat,
            used_at=first.admitted_at,
            used_gate=first.gate,
            admission_id=first.id,
        )
    # The ticket changed between the read and the insert (a transfer or refund just applied).
    session.expire(ticket)
    return _decide(session, policy, device, request, judged_at, now, offline)


def _admit(
    session: Session,
    device: ScannerDevice,
    request: ScanRequest,
    ticket: Ticket,
    now: datetime,
    offline: bool,
) -> int | None:
    """The one statement that lets a ticket in: an INSERT of its admission from a SELECT that
    finds it only while the holder and epoch are still the code's, it is not burned and its
    event not cancelled; a second admission of the ticket is skipped by the unique key. Returns
    the admission's id, or None if nothing was inserted."""
    tickets: Table = Ticket.__table__  # type: ignore[assignment]
    events: Table = Event.__table__  # type: ignore[assignment]
    source = (
        select(
            tickets.c.event_id,
            tickets.c.token_id,
            tickets.c.owner_address,
            tickets.c.holder_epoch,
            literal(device.id),
            literal(request.gate),
            literal(request.scanned_at, _ADMISSIONS.c.scanned_at.type),
            literal(now, _ADMISSIONS.c.admitted_at.type),
            literal(offline),
            literal(PENDING),
            literal(0),
        )
        .select_from(tickets.join(events, events.c.id == tickets.c.event_id))
        .where(
            tickets.c.event_id == ticket.event_id,
            tickets.c.token_id == ticket.token_id,
            tickets.c.owner_address == ticket.owner_address,
            tickets.c.holder_epoch == ticket.holder_epoch,
            tickets.c.refund_tx_hash.is_(None),
            events.c.cancelled_at.is_(None),
        )
    )
    statement = (
        _dialect_insert(session, _ADMISSIONS)
        .from_select(
            [
                "event_id",
                "token_id",
                "holder",
                "holder_epoch",
                "device_id",
                "gate",
                "scanned_at",
                "admitted_at",
                "offline",
                "chain_state",
                "chain_attempts",
            ],
            source,
        )
        .on_conflict_do_nothing(index_elements=["event_id", "token_id"])
        .returning(_ADMISSIONS.c.id)
    )
    inserted = session.execute(statement).scalar()
    return None if inserted is None else int(inserted)


_ADMISSIONS: Table = DoorAdmission.__table__  # type: ignore[assignment]
_SCANS: Table = DoorScan.__table__  # type: ignore[assignment]


def _dialect_insert(session: Session, table: Table) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _record(
    session: Session,
    device: ScannerDevice,
    request: ScanRequest,
    answer: ScanAnswer,
    admission_id: int | None,
    now: datetime,
    *,
    offline: bool,
) -> int:
    statement = (
        _dialect_insert(session, _SCANS)
        .values(
            event_id=device.event_id,
            device_id=device.id,
            scan_id=request.scan_id,
            gate=request.gate,
            token_id=answer.token_id,
            scanned_at=request.scanned_at,
            received_at=now,
            result=answer.result,
            reason=None if answer.reason is None else str(answer.reason),
            offline=offline,
            admission_id=admission_id,
        )
        .on_conflict_do_nothing(index_elements=["device_id", "scan_id"])
        .returning(_SCANS.c.id)
    )
    row_id = session.execute(statement).scalar()
    if row_id is None:
        raise DuplicateScan(request.scan_id)
    return int(row_id)


def recorded_answer(session: Session, device_id: int, scan_id: str) -> ScanAnswer | None:
    """The answer a device's ``scan_id`` already got, or None."""
    row = session.execute(
        select(DoorScan, DoorAdmission, Ticket.seat)
        .outerjoin(DoorAdmission, DoorAdmission.id == DoorScan.admission_id)
        .outerjoin(
            Ticket,
            and_(Ticket.event_id == DoorScan.event_id, Ticket.token_id == DoorScan.token_id),
        )
        .where(DoorScan.device_id == device_id, DoorScan.scan_id == scan_id)
    ).first()
    if row is None:
        return None
    scanned, admission, seat = row
    used = scanned.reason == Refusal.ALREADY_USED and admission is not None
    conflict = session.scalar(select(DoorConflict.id).where(DoorConflict.scan_row_id == scanned.id))
    return ScanAnswer(
        scan_id=scanned.scan_id,
        result=scanned.result,
        reason=None if scanned.reason is None else Refusal(scanned.reason),
        event_id=scanned.event_id,
        gate=scanned.gate,
        token_id=scanned.token_id,
        scanned_at=scanned.scanned_at,
        seat=seat,
        used_at=admission.admitted_at if used else None,
        used_gate=admission.gate if used else None,
        conflict=conflict is not None,
        replayed=True,
    )


def is_admitted(session: Session, event_id: int, token_id: int) -> bool:
    """Whether the ticket was let in at the door. Resale and transfers through fairtix refuse
    an admitted ticket from the moment of its admission, whatever the chain says yet."""
    return bool(session.scalar(select(admitted_clause(literal(event_id), literal(token_id)))))


def admitted_clause(
    event_id: SQLColumnExpression[int], token_id: SQLColumnExpression[int]
) -> ColumnElement[bool]:
    """SQL: the ticket was let in at the door (is_admitted), to read with other facts at once."""
    return exists().where(DoorAdmission.event_id == event_id, DoorAdmission.token_id == token_id)


# -- offline: manifest and sync ----------------------------------------------------------------


def manifest(
    session: Session, policy: DoorPolicy, device: ScannerDevice, now: datetime | None = None
) -> dict[str, Any]:
    """What ``device`` needs to verify its event's codes on its own: every live ticket's current
    secret and epoch, and the tickets already admitted. Secret material: served only to the
    event's own, unrevoked devices, and recorded (``manifest_at``)."""
    now = now or utcnow()
    event = session.get(Event, device.event_id)
    if event is None:  # pragma: no cover - devices reference their event
        raise EventNotFound(device.event_id)
    admitted = {
        token_id: (gate, at)
        for token_id, gate, at in session.execute(
            select(DoorAdmission.token_id, DoorAdmission.gate, DoorAdmission.admitted_at).where(
                DoorAdmission.event_id == event.id
            )
        )
    }
    tickets = []
    for token_id, holder, epoch, seat, refunded in session.execute(
        select(
            Ticket.token_id,
            Ticket.owner_address,
            Ticket.holder_epoch,
            Ticket.seat,
            Ticket.refund_tx_hash,
        )
        .where(Ticket.event_id == event.id)
        .order_by(Ticket.token_id)
    ):
        used = admitted.get(token_id)
        tickets.append(
            {
                "token_id": token_id,
                "epoch": epoch,
                "secret": codes.secret_text(policy.secret(event.id, token_id, holder, epoch)),
                "seat": seat,
                "void": refunded is not None,
                "used_gate": None if used is None else used[0],
                "used_at": None if used is None else used[1],
            }
        )
    device.manifest_at = now
    cursor = session.scalar(
        select(func.max(DoorAdmission.id)).where(DoorAdmission.event_id == event.id)
    )
    log.info("door manifest served", extra={"event_id": event.id, "device": device.id})
    return {
        "format": MANIFEST_FORMAT,
        "event_id": event.id,
        "device_id": device.id,
        "gate": device.gate,
        "generated_at": now,
        "event_cancelled": event.cancelled_at is not None,
        "code_prefix": codes.PREFIX,
        "step_seconds": codes.STEP_SECONDS,
        "digits": codes.DIGITS,
        "drift_steps": codes.DRIFT_STEPS,
        "offline_window_seconds": int(policy.offline_window.total_seconds()),
        "admissions_cursor": int(cursor or 0),
        "tickets": tickets,
    }


@dataclass
class SyncResult:
    answers: list[ScanAnswer] = field(default_factory=list)
    admissions: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0


def admissions_since(
    session: Session, event_id: int, since: int
) -> tuple[list[dict[str, Any]], int]:
    """Admissions of the event after ``since`` (an admission id), every gate's, oldest first."""
    rows = session.execute(
        select(
            DoorAdmission.id, DoorAdmission.token_id, DoorAdmission.gate, DoorAdmission.admitted_at
        )
        .where(DoorAdmission.event_id == event_id, DoorAdmission.id > since)
        .order_by(DoorAdmission.id)
        .limit(SYNC_ADMISSIONS_MAX)
    ).all()
    found = [
        {"id": row.id, "token_id": row.token_id, "gate": row.gate, "admitted_at": row.admitted_at}
        for row in rows
    ]
    return found, (rows[-1].id if rows else since)


# -- the organizer's view ----------------------------------------------------------------------


def door_report(session: Session, event_id: int) -> dict[str, Any]:
    by_minute: Counter[tuple[str, datetime]] = Counter()
    for gate, at in session.execute(
        select(DoorAdmission.gate, DoorAdmission.admitted_at).where(
            DoorAdmission.event_id == event_id
        )
    ):
        by_minute[(gate, at.replace(second=0, microsecond=0))] += 1
    refusals = dict(
        session.execute(
            select(DoorScan.reason, func.count())
            .where(DoorScan.event_id == event_id, DoorScan.result == REFUSED)
            .group_by(DoorScan.reason)
        ).all()
    )
    scans_by_device = dict(
        session.execute(
            select(DoorScan.device_id, func.count())
            .where(DoorScan.event_id == event_id)
            .group_by(DoorScan.device_id)
        ).all()
    )
    chain = dict(
        session.execute(
            select(DoorAdmission.chain_state, func.count())
            .where(DoorAdmission.event_id == event_id)
            .group_by(DoorAdmission.chain_state)
        ).all()
    )
    conflicts = session.execute(
        select(DoorConflict, DoorScan, DoorAdmission)
        .join(DoorScan, DoorScan.id == DoorConflict.scan_row_id)
        .outerjoin(DoorAdmission, DoorAdmission.id == DoorConflict.admission_id)
        .where(DoorConflict.event_id == event_id)
        .order_by(DoorConflict.id)
    ).all()
    return {
        "event_id": event_id,
        "admitted": sum(by_minute.values()),
        "admitted_by_gate_minute": [
            {"gate": gate, "minute": minute, "admitted": n}
            for (gate, minute), n in sorted(
                by_minute.items(), key=lambda item: (item[0][1], item[0][0])
            )
        ],
        "refusals_by_reason": {
            str(reason or "refused-offline"): n for reason, n in refusals.items()
        },
        "devices": [
            {
                "id": device.id,
                "event_id": device.event_id,
                "gate": device.gate,
                "label": device.label,
                "created_at": device.created_at,
                "revoked_at": device.revoked_at,
                "last_seen_at": device.last_seen_at,
                "manifest_at": device.manifest_at,
                "scans": scans_by_device.get(device.id, 0),
            }
            for device in devices_of(session, event_id)
        ],
        "conflicts": [
            {
                "token_id": conflict.token_id,
                "reason": conflict.reason,
                "gate": scanned.gate,
                "device_id": scanned.device_id,
                "scanned_at": scanned.scanned_at,
                "detected_at": conflict.detected_at,
                "first_gate": None if first is None else first.gate,
                "first_admitted_at": None if first is None else first.admitted_at,
            }
            for conflict, scanned, first in conflicts
        ],
        "chain": {state: chain.get(state, 0) for state in (PENDING, SENDING, CHECKED_IN, SKIPPED)},
    }


def event_for(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event_id)
    return event
