"""Entry codes: what a holder's phone shows and a gate verifies. Pure: no database, no HTTP.

A ticket's secret is derived, never stored::

    door_key = HMAC-SHA256(service secret, "fairtix door key v1")
    secret   = HMAC-SHA256(door_key, "<event id>:<token id>:<holder>:<holder epoch>")

``holder epoch`` counts the ticket's changes of holder (resale, transfer, a reorg taking one
back), so a new holder, or the same wallet getting the ticket back, always gets a new secret
and every code of the previous one stops verifying.

The code is RFC 6238 TOTP (HMAC-SHA-256, 8 digits, 15 s steps) over that secret, wrapped with
what a gate needs to find the ticket, in the QR alphanumeric alphabet::

    FTX1:<event id>:<token id>:<holder epoch>:<step>:<otp>

No personal data: event and token ids are public on chain; the holder appears only inside the
HMAC. The step is in the code so that a gate can tell an expired code (a screenshot) from a
forged one; the OTP is computed over it, so it can't be changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "FTX1"
STEP_SECONDS = 15
DIGITS = 8
DRIFT_STEPS = 1
"""Steps either side of the scan's step still accepted: a phone or gate clock a little off."""
MAX_CODE_LENGTH = 80

_CODE = re.compile(r"FTX1:([0-9]{1,10}):([0-9]{1,20}):([0-9]{1,10}):([0-9]{1,12}):([0-9]{8})")


class CodeCheck(StrEnum):
    """What a code says on its own, given the secret of the epoch it names."""

    VALID = "valid"
    FORGED = "forged"  # the OTP is not the one the secret gives for the step
    EXPIRED = "expired"  # genuine, but its step is older than the drift allows
    EARLY = "early"  # genuine, but from a step ahead of the scan (a clock far off)


@dataclass(frozen=True, slots=True)
class EntryCode:
    event_id: int
    token_id: int
    epoch: int
    step: int
    otp: str

    def text(self) -> str:
        return f"{PREFIX}:{self.event_id}:{self.token_id}:{self.epoch}:{self.step}:{self.otp}"


def door_key(service_secret: bytes) -> bytes:
    """The key every ticket secret derives from; one step away from the service secret, so a
    door secret never doubles as a queue token or webhook key."""
    return hmac.new(service_secret, b"fairtix door key v1", hashlib.sha256).digest()


def ticket_secret(key: bytes, event_id: int, token_id: int, holder: str, epoch: int) -> bytes:
    message = f"{event_id}:{token_id}:{holder.lower()}:{epoch}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def secret_text(secret: bytes) -> str:
    """The secret as authenticator apps take it (RFC 4648 base32, no padding)."""
    return base64.b32encode(secret).decode().rstrip("=")


def secret_from_text(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def step_at(unix_seconds: float) -> int:
    return int(unix_seconds // STEP_SECONDS)


def totp(secret: bytes, step: int, digits: int = DIGITS) -> str:
    """RFC 6238 (RFC 4226 truncation) with HMAC-SHA-256 at time step ``step``."""
    digest = hmac.new(secret, step.to_bytes(8, "big"), hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    binary = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def issue(secret: bytes, event_id: int, token_id: int, epoch: int, at: float) -> EntryCode:
    step = step_at(at)
    return EntryCode(event_id, token_id, epoch, step, totp(secret, step))


def parse(text: str) -> EntryCode | None:
    """The code in a scanned text, or None if it isn't one (any other QR, a truncated scan)."""
    if len(text) > MAX_CODE_LENGTH:
        return None
    match = _CODE.fullmatch(text.strip())
    if match is None:
        return None
    event_id, token_id, epoch, step, otp = match.groups()
    code = EntryCode(int(event_id), int(token_id), int(epoch), int(step), otp)
    # Ids no row can have (the columns are INTEGER and BIGINT): not a code of ours, and not a
    # value to hand the database, which refuses it (a 500 on PostgreSQL before this check).
    if code.event_id > _INT_MAX or code.token_id > _BIGINT_MAX or code.epoch > _INT_MAX:
        return None
    return code


_INT_MAX, _BIGINT_MAX = 2**31 - 1, 2**63 - 1


def check(code: EntryCode, secret: bytes, at: float) -> CodeCheck:
    """Whether ``code`` is genuine for ``secret`` and fresh at ``at`` (unix seconds)."""
    if not hmac.compare_digest(totp(secret, code.step), code.otp):
        return CodeCheck.FORGED
    now = step_at(at)
    if code.step < now - DRIFT_STEPS:
        return CodeCheck.EXPIRED
    if code.step > now + DRIFT_STEPS:
        return CodeCheck.EARLY
    return CodeCheck.VALID
