"""Transactional outbox: work written in the same transaction as the state change that causes it.

Workers claim due messages with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one
writer at a time anyway), act, and mark them done. A message whose worker dies is claimed again
when its lease runs out, so every handler must be idempotent.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Index,
    Integer,
    String,
    Table,
    Text,
    Update,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow
from backend.observability import requestid

# Longer than the slowest handler (a webhook delivery or a refund call, bounded by their
# timeouts; a mint only stores and sends its batch, and backend.fulfilment follows it from
# there), so a second worker never takes a message the first is still working on.
LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(seconds=60)
# A failed message waits FIRST_BACKOFF_SECONDS * 2**attempts (at most MAX_BACKOFF) to be retried.
FIRST_BACKOFF_SECONDS = 0.5


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "done_at", "available_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The request that wrote the message (X-Request-ID), so its work can be traced back to it.
    request_id: Mapped[str | None] = mapped_column(String(requestid.MAX_LENGTH), nullable=True)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    request_id: str | None = None


def enqueue(session: Session, kind: str, payload: dict[str, Any]) -> None:
    """Write a message in the session's transaction: it is sent only if the transaction
    commits."""
    # One INSERT built once, on the session's connection, rather than an object for the next
    # flush: a card payment's confirmation and its webhook each write one (make bench-paired).
    # The current request's id, or the one of the message whose work writes this one.
    session.connection().execute(
        _ENQUEUE, {"kind": kind, "payload": payload, "request_id": requestid.current()}
    )


def claim(
    session: Session,
    limit: int,
    now: datetime | None = None,
    *,
    kinds: Collection[str] | None = None,
    other_than: Collection[str] = (),
    lease: timedelta = LEASE,
) -> list[Claimed]:
    """Lease up to ``limit`` due messages to the caller for ``lease``: of ``kinds`` only if
    given, and none of ``other_than`` (mints are claimed apart, many at once, to be batched)."""
    now = now or utcnow()
    statement = _claim_statement(
        None if kinds is None else tuple(sorted(kinds)), tuple(sorted(other_than))
    )
    # Core, on the session's connection: whatever the session holds is written first.
    session.flush()
    leased = session.connection().execute(
        statement, {"now": now, "limit": limit, "leased_until": now + lease}
    )
    rows = sorted(leased, key=lambda row: row.id)
    return [
        Claimed(row.id, row.kind, dict(row.payload), row.attempts, row.request_id) for row in rows
    ]


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_ENQUEUE = insert(_OUTBOX).values(
    kind=bindparam("kind"), payload=bindparam("payload"), request_id=bindparam("request_id")
)


@functools.cache
def _claim_statement(kinds: tuple[str, ...] | None, other_than: tuple[str, ...]) -> Update:
    """The claim for one set of kinds, built once: the worker claims several times a second
    in an on-sale, and building the statement cost more CPU than running it."""
    due = select(_OUTBOX.c.id).where(
        _OUTBOX.c.done_at.is_(None), _OUTBOX.c.available_at <= bindparam("now")
    )
    if kinds is not None:
        due = due.where(_OUTBOX.c.kind.in_(kinds))
    if other_than:
        due = due.where(_OUTBOX.c.kind.not_in(other_than))
    due = (
        due.order_by(_OUTBOX.c.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    # One UPDATE ... RETURNING over the locked ids: the ORM loaded the rows and wrote each back
    # on its own, a statement per message on every claim of an on-sale's stream of them.
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(due.scalar_subquery()))
        .values(attempts=_OUTBOX.c.attempts + 1, available_at=bindparam("leased_until"))
        .returning(
            _OUTBOX.c.id,
            _OUTBOX.c.kind,
            _OUTBOX.c.payload,
            _OUTBOX.c.attempts,
            _OUTBOX.c.request_id,
        )
    )


_COMPLETE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(done_at=bindparam("done_at"), last_error=None)
)


def complete_all(
    session: Session, message_ids: Collection[int], now: datetime | None = None
) -> None:
    # One UPDATE for all, not a load and a flush each: a mint batch completes a hundred.
    if not message_ids:
        return
    session.flush()
    session.connection().execute(_COMPLETE, {"ids": list(message_ids), "done_at": now or utcnow()})


def retry_later(session: Session, message_id: int, error: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return
    row.last_error = error[:2000]
    backoff = timedelta(seconds=FIRST_BACKOFF_SECONDS * 2 ** min(row.attempts, 10))
    backoff = min(backoff, MAX_BACKOFF)
    row.available_at = now + backoff
