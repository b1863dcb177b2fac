"""HTTP routes of the door: the holder's entry code, the organizer's scanners and report, and
the scanner devices' own routes (scan, manifest, sync), which take a device credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.catalog import service as catalog
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep, WalletDep
from backend.door import qr
from backend.door import service as door
from backend.door.codes import STEP_SECONDS, secret_text
from backend.door.errors import (
    EntryCodesNotYetRevealed,
    ScannerNotAuthenticated,
    ScannerNotFound,
    ScannerRevoked,
    ScanTimeOutOfWindow,
    TicketNotEnterable,
    TicketNotFound,
)
from backend.door.models import ScannerDevice
from backend.door.schemas import (
    AdmissionOut,
    DoorReport,
    DoorSettingsIn,
    DoorSettingsOut,
    EntryCodeOut,
    ManifestOut,
    ScanIn,
    ScannerCreated,
    ScannerIn,
    ScannerOut,
    ScanOut,
    SyncIn,
    SyncOut,
)
from backend.problems import problem_responses, register_problem
from backend.runtime import Runtime
from backend.schemas import IdPath

router = APIRouter(tags=["door"])

register_problem(
    ScannerNotAuthenticated, 401, "scanner-not-authenticated", "Scanner credential required"
)
register_problem(ScannerRevoked, 401, "scanner-revoked", "Scanner device revoked")
register_problem(ScannerNotFound, 404, "scanner-not-found", "Scanner device not found")
register_problem(ScanTimeOutOfWindow, 422, "scan-time-out-of-window", "Scan time not accepted")
register_problem(TicketNotFound, 404, "ticket-not-found", "Ticket not found")
register_problem(
    EntryCodesNotYetRevealed, 409, "entry-codes-not-yet-revealed", "Entry code not shown yet"
)
register_problem(TicketNotEnterable, 409, "ticket-not-enterable", "Ticket can't be used for entry")

# Token ids are order id * 256 + index: BIGINT, not the row ids' 32 bits.
TokenIdPath = Annotated[int, Path(ge=0, le=2**63 - 1)]

_scanner_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ScannerCredential",
    description="A scanner device's credential (fts_...) from POST /admin/events/{id}/scanners",
)


def _device(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scanner_bearer)],
) -> tuple[Runtime, str]:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ScannerNotAuthenticated(
            "send the scanner device's credential as 'Authorization: Bearer fts_...'"
        )
    return runtime, credentials.credentials


ScannerDep = Annotated[tuple[Runtime, str], Depends(_device)]


def _policy(runtime: Runtime) -> door.DoorPolicy:
    # One HMAC to derive: cheaper than a place to keep it.
    return door.DoorPolicy.from_settings(runtime.settings)


# -- the holder ------------------------------------------------------------------------------


@router.get(
    "/me/tickets/{token_id}/entry",
    response_model=EntryCodeOut,
    responses=problem_responses(401, 404, 409, 422, 429),
)
def entry_code(token_id: TokenIdPath, runtime: RuntimeDep, wallet: WalletDep) -> EntryCodeOut:
    """The ticket's current entry code and its QR, for its holder only. A new code every 15 s;
    shown from the organizer's reveal time (default 24 h before the event starts)."""
    with transaction(runtime.sessions) as session:
        issued = door.entry_code(session, _policy(runtime), wallet, token_id)
        text = issued.code.text()
        return EntryCodeOut(
            event_id=issued.event.id,
            token_id=issued.ticket.token_id,
            code=text,
            step_seconds=STEP_SECONDS,
            valid_from=issued.valid_from,
            valid_until=issued.valid_until,
            holder_epoch=issued.ticket.holder_epoch,
            secret=secret_text(issued.secret),
            qr_svg=qr.svg(text),
            qr_png_base64=qr.png_base64(text),
        )


# -- the organizer ---------------------------------------------------------------------------

ADMIN_PROBLEMS = problem_responses(401, 403, 404, 422, 429)


def _scanner_out(device: ScannerDevice) -> ScannerOut:
    return ScannerOut(
        id=device.id,
        event_id=device.event_id,
        gate=device.gate,
        label=device.label,
        created_at=device.created_at,
        revoked_at=device.revoked_at,
        last_seen_at=device.last_seen_at,
        manifest_at=device.manifest_at,
    )


@router.post(
    "/admin/events/{event_id}/scanners",
    response_model=ScannerCreated,
    status_code=201,
    responses=ADMIN_PROBLEMS,
)
def register_scanner(
    event_id: IdPath, body: ScannerIn, runtime: RuntimeDep, principal: PrincipalDep
) -> ScannerCreated:
    """The event's organizer or an admin: registers a scanner device for one gate. The answer
    carries its credential, shown this once."""
    with transaction(runtime.sessions) as session:
        catalog.managed_event(session, event_id, principal)
        device, credential = door.register_device(
            session, event_id, body.gate, body.label, principal.address
        )
        return ScannerCreated(**_scanner_out(device).model_dump(), credential=credential)


@router.get(
    "/admin/events/{event_id}/scanners",
    response_model=list[ScannerOut],
    responses=ADMIN_PROBLEMS,
)
def list_scanners(
    event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep
) -> list[ScannerOut]:
    with transaction(runtime.sessions) as session:
        catalog.managed_event(session, event_id, principal)
        return [_scanner_out(device) for device in door.devices_of(session, event_id)]


@router.post(
    "/admin/events/{event_id}/scanners/{scanner_id}/revoke",
    response_model=ScannerOut,
    responses=ADMIN_PROBLEMS,
)
def revoke_scanner(
    event_id: IdPath, scanner_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep
) -> ScannerOut:
    """Revokes a device at once: its next request is refused (401 scanner-revoked)."""
    with transaction(runtime.sessions) as session:
        catalog.managed_event(session, event_id, principal)
        return _scanner_out(door.revoke_device(session, event_id, scanner_id))


@router.put(
    "/admin/events/{event_id}/door/settings",
    response_model=DoorSettingsOut,
    responses=ADMIN_PROBLEMS,
)
def door_settings(
    event_id: IdPath, body: DoorSettingsIn, runtime: RuntimeDep, principal: PrincipalDep
) -> DoorSettingsOut:
    """When entry codes are shown, as a time before the event starts."""
    with transaction(runtime.sessions) as session:
        event = catalog.managed_event(session, event_id, principal)
        row = door.set_reveal(
            session, event_id, body.reveal_seconds_before_start, principal.address
        )
        return DoorSettingsOut(
            event_id=event_id,
            reveal_seconds_before_start=row.reveal_seconds_before_start,
            reveal_at=door.reveal_at(session, _policy(runtime), event),
        )


@router.get("/admin/events/{event_id}/door", response_model=DoorReport, responses=ADMIN_PROBLEMS)
def door_report(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> DoorReport:
    """Admitted by gate and minute, refusals by reason, devices and their last contact, and
    tickets admitted offline that the service refused on upload (conflicts)."""
    with transaction(runtime.sessions) as session:
        catalog.managed_event(session, event_id, principal)
        return DoorReport.model_validate(door.door_report(session, event_id))


# -- scanner devices -------------------------------------------------------------------------

SCANNER_PROBLEMS = problem_responses(401, 422, 429)


def _answer_out(answer: door.ScanAnswer) -> ScanOut:
    return ScanOut(
        scan_id=answer.scan_id,
        result="admitted" if answer.result == door.ADMITTED else "refused",
        reason=None if answer.reason is None else answer.reason.value,
        event_id=answer.event_id,
        gate=answer.gate,
        token_id=answer.token_id,
        scanned_at=answer.scanned_at,
        seat=answer.seat,
        used_at=answer.used_at,
        used_gate=answer.used_gate,
        conflict=answer.conflict,
        replayed=answer.replayed,
    )


def _scan_once(runtime: Runtime, credential: str, request: door.ScanRequest) -> door.ScanAnswer:
    """One scan in its own transaction; the same scan_id raced by another request gets the
    answer that request recorded."""
    policy = _policy(runtime)
    try:
        with transaction(runtime.sessions) as session:
            device = door.authenticate(session, credential)
            return door.scan(session, policy, device, request)
    except door.DuplicateScan:
        with transaction(runtime.sessions) as session:
            device = door.authenticate(session, credential)
            answer = door.recorded_answer(session, device.id, request.scan_id)
        assert answer is not None
        return answer


@router.post("/door/scans", response_model=ScanOut, responses=SCANNER_PROBLEMS)
def post_scan(body: ScanIn, scanner: ScannerDep) -> ScanOut:
    """A gate's scan, decided now: admitted, or refused with the reason (already used, when
    and where; wrong event; code expired; not the current holder's code; ticket refunded or
    burned; event cancelled; malformed or forged code). The same scan_id is answered once.
    On PostgreSQL the everyday scans are answered before this route (backend.door.fast_lane),
    in the same form."""
    runtime, credential = scanner
    answer = _scan_once(
        runtime,
        credential,
        door.ScanRequest(body.code, body.gate, body.scan_id, body.scanned_at),
    )
    return _answer_out(answer)


@router.get("/door/manifest", response_model=ManifestOut, responses=SCANNER_PROBLEMS)
def get_manifest(scanner: ScannerDep) -> ManifestOut:
    """The device's event's door manifest, for verifying codes while offline: every ticket's
    current code secret and epoch, and who is in already. Secret: for this device only."""
    runtime, credential = scanner
    with transaction(runtime.sessions) as session:
        device = door.authenticate(session, credential)
        return ManifestOut.model_validate(door.manifest(session, _policy(runtime), device))


@router.post("/door/sync", response_model=SyncOut, responses=SCANNER_PROBLEMS)
def sync(body: SyncIn, scanner: ScannerDep) -> SyncOut:
    """Uploads scans a device decided offline (each judged at its scanned_at; idempotent per
    scan_id; an offline admission refused here is a conflict) and pulls every gate's
    admissions after ``since``."""
    runtime, credential = scanner
    now = utcnow()
    with transaction(runtime.sessions) as session:
        # Checked before any scan: a revoked device uploads nothing.
        device = door.authenticate(session, credential, now)
        for item in body.scans:
            door.check_time(_policy(runtime), item.scanned_at, now)
    answers = [
        _answer_out(
            _scan_once(
                runtime,
                credential,
                door.ScanRequest(
                    item.code, item.gate, item.scan_id, item.scanned_at, item.admitted
                ),
            )
        )
        for item in body.scans
    ]
    with transaction(runtime.sessions) as session:
        admissions, cursor = door.admissions_since(session, device.event_id, body.since)
    return SyncOut(
        answers=answers,
        admissions=[AdmissionOut.model_validate(a) for a in admissions],
        cursor=cursor,
    )
