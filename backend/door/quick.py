"""A live scan on PostgreSQL in two statements and no transaction of ours.

The general path (:func:`backend.door.service.scan`) reads the device, the scan_id's prior answer
and the ticket through the ORM and writes the admission and the scan in a transaction: about
nine round trips (BEGIN and COMMIT included) and most of a scan's CPU. A gate's everyday scans
(the fan's own code, a screenshot, the code of a ticket's previous holder, a ticket shown again)
are decided here instead, each statement in autocommit, so atomic on its own:

1. ``_READ`` finds the device by its credential's hash, the code's ticket and its event;
   the code is then verified in Python (its secret derives from the holder read here).
2. ``_ADMIT`` (a code good now) or ``_REFUSE`` (a genuine code that is expired, early or the
   previous holder's) decides and records in one statement, guarded by the facts step 1 read:
   the device still unrevoked, the ticket still held by that holder at that epoch, not burned,
   its event not cancelled, and no scan recorded under this scan_id yet. An admission is the
   same INSERT ... ON CONFLICT (event, token) DO NOTHING the general path runs, so two gates
   admit a ticket once; the scan row goes in with it, in the same statement. A scan_id
   recorded meanwhile makes the statement fail on the scan's unique key, as a whole.

Whenever a fact moved between the two statements, or the scan is anything else (an unknown or
revoked device, another event's code, a forged or malformed one, a voided ticket, a cancelled
event, a ticket on the resale market, a scan_id seen before, an offline upload), this answers
None and writes nothing, and the caller takes the general path, which answers it as before.
SQLite has no data-modifying CTEs: there every scan takes the general path.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine

from backend.door import codes
from backend.door.models import PENDING
from backend.door.service import (
    ADMITTED,
    CREDENTIAL_PREFIX,
    LAST_SEEN_RESOLUTION,
    REFUSED,
    DoorPolicy,
    Refusal,
    ScanAnswer,
    ScanRequest,
)
from backend.resale.models import ON_MARKET

_READ = """
SELECT d.id, d.event_id, d.revoked_at IS NULL, d.last_seen_at,
       t.owner_address, t.holder_epoch, t.previous_owner_address,
       t.refund_tx_hash IS NULL, t.seat, e.cancelled_at IS NULL
FROM scanner_devices d
JOIN events e ON e.id = d.event_id
LEFT JOIN tickets t ON t.event_id = d.event_id AND t.token_id = %(token)s
WHERE d.token_hash = %(hash)s
"""

# The ticket as step 1 read it, still so now; the device unrevoked; the scan_id new.
_STILL = """
SELECT t.id AS ticket_id, t.event_id, t.token_id, t.owner_address, t.holder_epoch
FROM tickets t
JOIN events e ON e.id = t.event_id
JOIN scanner_devices d ON d.id = %(device)s AND d.event_id = t.event_id
WHERE t.event_id = %(event)s AND t.token_id = %(token)s
  AND t.owner_address = %(holder)s AND t.holder_epoch = %(epoch)s
  AND t.refund_tx_hash IS NULL AND e.cancelled_at IS NULL AND d.revoked_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM door_scans s WHERE s.device_id = %(device)s AND s.scan_id = %(scan_id)s)
"""

_LISTED = "', '".join(ON_MARKET)
# A ticket on the resale market is admitted by the general path, which takes it off the market
# (backend.resale.service.on_admitted) in the admission's transaction.
_ADMIT = f"""
WITH ok AS ({_STILL}),
a AS (
  INSERT INTO door_admissions (event_id, token_id, holder, holder_epoch, device_id, gate,
                               scanned_at, admitted_at, offline, chain_state, chain_attempts)
  SELECT ok.event_id, ok.token_id, ok.owner_address, ok.holder_epoch, %(device)s, %(gate)s,
         %(scanned_at)s, %(now)s, false, '{PENDING}', 0
  FROM ok
  WHERE NOT EXISTS (
    SELECT 1 FROM resale_listings l
    WHERE l.ticket_id = ok.ticket_id AND l.status IN ('{_LISTED}'))
  ON CONFLICT (event_id, token_id) DO NOTHING
  RETURNING id
),
f AS (
  SELECT id, gate, admitted_at FROM door_admissions
  WHERE event_id = %(event)s AND token_id = %(token)s
),
s AS (
  INSERT INTO door_scans (event_id, device_id, scan_id, gate, token_id, scanned_at, received_at,
                          result, reason, offline, admission_id)
  SELECT %(event)s, %(device)s, %(scan_id)s, %(gate)s, %(token)s, %(scanned_at)s, %(now)s,
         CASE WHEN a.id IS NULL THEN '{REFUSED}' ELSE '{ADMITTED}' END,
         CASE WHEN a.id IS NULL THEN '{Refusal.ALREADY_USED.value}' END,
         false, COALESCE(a.id, f.id)
  FROM ok LEFT JOIN a ON true LEFT JOIN f ON true
  WHERE a.id IS NOT NULL OR f.id IS NOT NULL
  RETURNING id
)
SELECT (SELECT id FROM a), (SELECT id FROM s), f.gate, f.admitted_at
FROM (SELECT 1) AS one LEFT JOIN f ON true
"""
# An already-used answer needs the first admission visible to this statement; one committed
# after it began is not, and a ticket admitted by a concurrent scan then records nothing here.

_REFUSE = f"""
WITH ok AS ({_STILL})
INSERT INTO door_scans (event_id, device_id, scan_id, gate, token_id, scanned_at, received_at,
                        result, reason, offline, admission_id)
SELECT %(event)s, %(device)s, %(scan_id)s, %(gate)s, %(token)s, %(scanned_at)s, %(now)s,
       '{REFUSED}', %(reason)s, false, NULL
FROM ok
RETURNING id
"""

_TOUCH = """
UPDATE scanner_devices SET last_seen_at = %(now)s
WHERE id = %(device)s AND (last_seen_at IS NULL OR last_seen_at <= %(stale)s)
"""

_REFUSALS = {
    codes.CodeCheck.EXPIRED: Refusal.CODE_EXPIRED,
    codes.CodeCheck.EARLY: Refusal.CODE_NOT_YET_VALID,
}


_TICKETS = """
SELECT token_id, owner_address, holder_epoch, previous_owner_address, seat,
       refund_tx_hash IS NULL
FROM tickets WHERE event_id = %(event)s
"""


@dataclass(frozen=True, slots=True)
class _Facts:
    """What step 1 reads: a device and, if found, the code's ticket."""

    device: int
    event_id: int
    holder: str | None
    epoch: int
    previous: str | None
    seat: str | None
    usable: bool  # device unrevoked, event not cancelled, ticket not burned (as far as known)


class DoorCache:
    """This process's copy of what step 1 reads, so that most scans need only step 2.

    Only hints: step 2 admits or refuses only if the device, ticket and event are still as
    the hint says, and writes nothing otherwise; a hint step 2 finds stale is dropped and the
    scan answered by the general path. Devices are remembered by their credential's hash (a
    device's id and event never change; its revocation is checked by step 2 every time), an
    event's tickets all at once on its first scan here (a doors-open night scans most of them;
    a ticket minted since is read by step 1 and reloaded with the rest after RELOAD_SECONDS)."""

    RELOAD_SECONDS = 60.0

    def __init__(self) -> None:
        self._devices: dict[str, tuple[int, int]] = {}
        self._events: dict[
            int, tuple[float, dict[int, tuple[str, int, str | None, str, bool]]]
        ] = {}
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()

    def facts(self, conn: psycopg.Connection[Any], token_hash: str, token_id: int) -> _Facts | None:
        device = self._devices.get(token_hash)
        if device is None:
            return None
        device_id, event_id = device
        tickets = self._tickets(conn, event_id)
        ticket = None if tickets is None else tickets.get(token_id)
        if ticket is None:
            return None
        holder, epoch, previous, seat, unburned = ticket
        return _Facts(device_id, event_id, holder, epoch, previous, seat, unburned)

    def _tickets(
        self, conn: psycopg.Connection[Any], event_id: int
    ) -> dict[int, tuple[str, int, str | None, str, bool]] | None:
        loaded = self._events.get(event_id)
        if loaded is not None and time.monotonic() - loaded[0] < self.RELOAD_SECONDS:
            return loaded[1]
        if not self._lock.acquire(blocking=False):
            return None if loaded is None else loaded[1]  # another scan is loading them
        try:
            rows = conn.execute(_TICKETS, {"event": event_id}).fetchall()
            tickets = {int(row[0]): (row[1], row[2], row[3], row[4], row[5]) for row in rows}
            self._events[event_id] = (time.monotonic(), tickets)
            return tickets
        finally:
            self._lock.release()

    def facts_known(self, credential: str, token_id: int) -> bool:
        """Whether a hint is held for this device's ticket (for tests and diagnostics)."""
        device = self._devices.get(hashlib.sha256(credential.encode()).hexdigest())
        loaded = None if device is None else self._events.get(device[1])
        return loaded is not None and token_id in loaded[1]

    def remember_device(self, token_hash: str, device_id: int, event_id: int) -> None:
        if len(self._devices) >= _DEVICES_LIMIT:
            self._devices.clear()
        self._devices[token_hash] = (device_id, event_id)

    def forget_ticket(self, event_id: int, token_id: int) -> None:
        loaded = self._events.get(event_id)
        if loaded is not None:
            loaded[1].pop(token_id, None)

    def touch_due(self, device_id: int) -> bool:
        """Whether this process should write the device's last contact now (every
        LAST_SEEN_RESOLUTION at most), and noted as written if so."""
        now = time.monotonic()
        if now - self._touched.get(device_id, -1e9) < LAST_SEEN_RESOLUTION.total_seconds():
            return False
        self._touched[device_id] = now
        return True


_DEVICES_LIMIT = 10_000


def quick_scan(
    engine: Engine,
    policy: DoorPolicy,
    credential: str,
    request: ScanRequest,
    now: datetime,
    cache: DoorCache | None = None,
) -> ScanAnswer | None:
    """The answer to a live scan, decided and recorded here; None: take the general path (this
    wrote nothing). ``request.scanned_at`` must already be within the accepted window."""
    if engine.dialect.name != "postgresql" or request.offline_admitted is not None:
        return None
    if not credential.startswith(CREDENTIAL_PREFIX):
        return None
    code = codes.parse(request.code)
    if code is None:
        return None
    cache = cache or DoorCache()
    token_hash = hashlib.sha256(credential.encode()).hexdigest()
    with _autocommit(engine) as conn:
        facts = cache.facts(conn, token_hash, code.token_id)
        hinted = facts is not None
        if facts is None:
            facts = _read(conn, token_hash, code.token_id)
            if facts is None:
                return None
            if facts.usable:
                cache.remember_device(token_hash, facts.device, facts.event_id)
        if not facts.usable or facts.holder is None or code.event_id != facts.event_id:
            return None
        answer = _decide(conn, policy, facts, code, request, now)
        if answer is None:
            if hinted:
                cache.forget_ticket(facts.event_id, code.token_id)
            return None
        if cache.touch_due(facts.device):
            # Its own statement, after the decision: never a lock held while admitting.
            conn.execute(_TOUCH, {"now": now, "device": facts.device, "stale": now - _RESOLUTION})
        return answer


def _read(conn: psycopg.Connection[Any], token_hash: str, token_id: int) -> _Facts | None:
    row = conn.execute(_READ, {"hash": token_hash, "token": token_id}, prepare=True).fetchone()
    if row is None:
        return None
    device, event_id, live, _last_seen, holder, epoch, previous, unburned, seat, held = row
    return _Facts(device, event_id, holder, epoch, previous, seat, bool(live and held and unburned))


def _decide(
    conn: psycopg.Connection[Any],
    policy: DoorPolicy,
    facts: _Facts,
    code: codes.EntryCode,
    request: ScanRequest,
    now: datetime,
) -> ScanAnswer | None:
    assert facts.holder is not None
    event_id, epoch = facts.event_id, facts.epoch
    params: dict[str, Any] = {
        "device": facts.device,
        "event": event_id,
        "token": code.token_id,
        "scan_id": request.scan_id,
        "gate": request.gate,
        "scanned_at": request.scanned_at,
        "now": now,
        "holder": facts.holder,
        "epoch": epoch,
    }
    at = now.timestamp()
    if code.epoch == epoch:
        secret = policy.secret(event_id, code.token_id, facts.holder, epoch)
        verdict = codes.check(code, secret, at)
        if verdict == codes.CodeCheck.VALID:
            return _admit(conn, params, request, event_id, code.token_id, facts.seat)
        if verdict in _REFUSALS:
            return _refuse(conn, params, request, event_id, code.token_id, _REFUSALS[verdict])
        return None
    if code.epoch == epoch - 1 and facts.previous is not None:
        secret = policy.secret(event_id, code.token_id, facts.previous, code.epoch)
        if codes.check(code, secret, at) == codes.CodeCheck.FORGED:
            return None
        return _refuse(conn, params, request, event_id, code.token_id, Refusal.NOT_CURRENT_HOLDER)
    return None


_RESOLUTION = LAST_SEEN_RESOLUTION - timedelta(microseconds=1)


def _admit(
    conn: psycopg.Connection[Any],
    params: dict[str, Any],
    request: ScanRequest,
    event_id: int,
    token_id: int,
    seat: str | None,
) -> ScanAnswer | None:
    try:
        row = conn.execute(_ADMIT, params, prepare=True).fetchone()
    except psycopg.errors.UniqueViolation:
        return None  # the scan_id was recorded meanwhile: its first answer is the answer
    assert row is not None
    admission, scan_row, first_gate, first_at = row
    if scan_row is None:
        return None
    if admission is not None:
        return ScanAnswer(
            request.scan_id, ADMITTED, None, event_id, request.gate, token_id,
            request.scanned_at, seat=seat,
        )  # fmt: skip
    return ScanAnswer(
        request.scan_id, REFUSED, Refusal.ALREADY_USED, event_id, request.gate, token_id,
        request.scanned_at, seat=seat, used_at=first_at, used_gate=first_gate,
    )  # fmt: skip


def _refuse(
    conn: psycopg.Connection[Any],
    params: dict[str, Any],
    request: ScanRequest,
    event_id: int,
    token_id: int,
    reason: Refusal,
) -> ScanAnswer | None:
    try:
        row = conn.execute(_REFUSE, {**params, "reason": reason.value}, prepare=True).fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    if row is None:
        return None
    return ScanAnswer(
        request.scan_id, REFUSED, reason, event_id, request.gate, token_id, request.scanned_at
    )


@contextmanager
def _autocommit(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection of the engine in autocommit for the duration: each statement is its
    own transaction, with no BEGIN or COMMIT round trip. Handed back as the pool lent it."""
    pooled = engine.raw_connection()
    try:
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.autocommit = True
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.autocommit = False
    finally:
        pooled.close()
