"""Request ids: every request has one (the caller's ``X-Request-ID`` if it is sane, else a new
one), and so has the work it causes. It rides a context variable: logs read it
(``backend.logs``), outbox rows written while it is set keep it (``backend.outbox``), and the
worker sets it again while it works such a row, so a mint can be followed back to the request
that paid for it.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

HEADER = "X-Request-ID"
HEADER_KEY = b"x-request-id"  # as ASGI hands header names over: lower case bytes
SCOPE_KEY = "fairtix.request_id"
MAX_LENGTH = 64  # the outbox column's width

_current: ContextVar[str | None] = ContextVar("fairtix_request_id", default=None)
# What a caller's id may look like: it ends up in logs, headers and a database column, so no
# spaces, quotes or control characters (log injection), and short.
_SANE = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,64}")


def current() -> str | None:
    """The id of the request (or outbox message) this code runs for, if any."""
    return _current.get()


def use(request_id: str | None) -> None:
    """Makes ``request_id`` current for the rest of this context (a request's task, a thread's
    outbox message); worker threads set it per message and clear it with None."""
    _current.set(request_id)


def new() -> str:
    """128 random bits in hex, as uuid4().hex but without building a UUID (2 us less a request)."""
    return os.urandom(16).hex()


def accept(raw: bytes | None) -> str:
    """The caller's id if it is sane, else a fresh one."""
    if raw is not None and _SANE.fullmatch(raw):
        return raw.decode("ascii")
    return new()
