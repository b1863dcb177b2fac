"""Request body limits, checked on the raw bytes before any parser sees them.

A JSON parser spends stack on every level of nesting and memory on every byte, so a small body
of nested arrays can cost far more than its size suggests (one of 200 KB once overflowed the C
stack of the API process). Each route therefore gets a byte limit and a nesting limit; the
scan that enforces the nesting limit is linear in the body and never recursive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.guard.errors import BodyTooDeep, NulCharacter


@dataclass(frozen=True)
class BodyLimit:
    """What one route accepts: bytes at most, and arrays/objects nested this deep at most."""

    max_bytes: int
    max_depth: int


# Every request body of this API is a small JSON object nested a few levels at most (an event
# with its tiers is three). Payment providers' webhooks are larger and deeper: a Stripe event
# embeds the whole object it reports, with metadata and charges, and is signed as sent, so it
# can't be trimmed; Stripe's own events stay well under 512 KB.
DEFAULT_LIMIT = BodyLimit(max_bytes=64 * 1024, max_depth=16)
ROUTE_LIMITS: dict[str, BodyLimit] = {
    "/admin/events": BodyLimit(max_bytes=256 * 1024, max_depth=16),
    # A scanner's offline scans, up to 500 of about 170 bytes each (backend.door.schemas).
    "/door/sync": BodyLimit(max_bytes=256 * 1024, max_depth=16),
    "/payments/stripe/webhook": BodyLimit(max_bytes=1024 * 1024, max_depth=64),
    "/payments/paypal/webhook": BodyLimit(max_bytes=1024 * 1024, max_depth=64),
}
# Signed by their provider and stored by our own ids, never as text columns: a NUL inside a
# customer's metadata must not make Stripe retry a verified event forever.
NUL_EXEMPT = frozenset({"/payments/stripe/webhook", "/payments/paypal/webhook"})


def limit_for(path: str) -> BodyLimit:
    return ROUTE_LIMITS.get(path, DEFAULT_LIMIT)


# A JSON string literal: what lies inside one is text, not structure, whatever brackets it holds.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
# \u0000 not itself escaped: an even run of backslashes before it (zero included).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def check_depth(body: bytes, max_depth: int) -> None:
    """Raise BodyTooDeep when arrays and objects nest deeper than ``max_depth``."""
    # Fast path, in C: a body with fewer brackets than the limit can't nest past it.
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise BodyTooDeep(max_depth)
        else:
            depth -= 1


def check_no_nul(body: bytes) -> None:
    """Raise NulCharacter when a JSON body carries a NUL, raw or as the ``\\u0000`` escape.

    PostgreSQL's text can't store one (SQLite can), so without this check the same request
    would be a 500 on one database and a stored row on the other."""
    if b"\x00" in body or (b"\\u0000" in body and _ESCAPED_NUL.search(body)):
        raise NulCharacter("request body")


def check_path_and_query(path: str, query_string: bytes) -> None:
    """Raise NulCharacter for a NUL in the (decoded) path or the (encoded) query string."""
    if "\x00" in path:
        raise NulCharacter("URL path")
    lowered = query_string.lower()
    if b"%00" in lowered or b"\x00" in lowered:
        raise NulCharacter("query string")
