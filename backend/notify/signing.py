"""Webhook signatures, Stripe style: ``Fairtix-Signature: t=<unix ts>,v1=<hex>``.

``v1`` is HMAC-SHA256 over ``f"{t}.{body}"`` keyed with the endpoint's signing secret. The
timestamp is inside the MAC, so a receiver that checks it against its clock with a tolerance
also refuses replays of old deliveries. Receivers may use :func:`verify_signature` as is.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from backend.notify.errors import WebhookSignatureError

SIGNATURE_HEADER = "Fairtix-Signature"
TIMESTAMP_HEADER = "Fairtix-Timestamp"
EVENT_ID_HEADER = "Fairtix-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Fairtix-Signature`` header value for one delivery attempt."""
    return f"t={timestamp},v1={compute_signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes | str,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a ``Fairtix-Signature`` header against the raw request body; return its timestamp.

    Raises :class:`WebhookSignatureError` when the header is malformed, no ``v1`` signature
    matches (several are allowed, for secret rotation) or the timestamp is further than
    ``tolerance`` seconds from ``now``. Pass the body exactly as received, before JSON parsing.
    """
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("the header is not a list of key=value pairs")
        if key == "t":
            if not value.isdigit():
                raise WebhookSignatureError("the timestamp is not a number")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise WebhookSignatureError("the header has no timestamp (t=)")
    if not candidates:
        raise WebhookSignatureError("the header has no v1 signature")
    expected = compute_signature(secret, timestamp, raw)
    # Compare every candidate in constant time; stop early only on a match.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookSignatureError("no v1 signature matches the body")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"the timestamp is {int(current - timestamp)} s away from now "
            f"(tolerance {int(tolerance)} s)"
        )
    return timestamp
