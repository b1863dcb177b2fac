"""Signed queue tokens: a client that refreshes or switches replica keeps its place with one."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from backend.queue.errors import InvalidQueueToken

VERSION = "q1"


@dataclass(frozen=True)
class QueueTokenClaims:
    event_id: int
    wallet: str
    seq: int
    issued_at: int  # unix seconds


def sign(claims: QueueTokenClaims, secret: bytes) -> str:
    body = f"{VERSION}.{claims.event_id}.{claims.wallet.lower()}.{claims.seq}.{claims.issued_at}"
    return f"{body}.{_mac(body, secret)}"


def verify(token: str, secret: bytes) -> QueueTokenClaims:
    parts = token.split(".")
    if len(parts) != 6 or parts[0] != VERSION:
        raise InvalidQueueToken("malformed token")
    body, mac = ".".join(parts[:5]), parts[5]
    # Constant-time comparison so the MAC can't be guessed byte by byte.
    # Bytes, not str: compare_digest raises on non-ASCII text, which a client controls.
    if not hmac.compare_digest(mac.encode(), _mac(body, secret).encode()):
        raise InvalidQueueToken("signature does not match")
    try:
        return QueueTokenClaims(int(parts[1]), parts[2], int(parts[3]), int(parts[4]))
    except ValueError as exc:
        raise InvalidQueueToken("malformed token") from exc


def _mac(body: str, secret: bytes) -> str:
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
