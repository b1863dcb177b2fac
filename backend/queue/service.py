"""The waiting room, SQL store: durable places, ordered admission once the sale opens.

This is the thin first version: first come first served, a cap on wallets admitted at once, and
admissions that expire. Its routes are stable; the full waiting room replaces these insides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.db.base import utcnow
from backend.queue import tokens
from backend.queue.errors import InvalidQueueToken, NotAdmitted, NotInQueue, QueueClosed
from backend.queue.models import QueueEntry

WAITING, ADMITTED, DONE, EXPIRED = "waiting", "admitted", "done", "expired"
OUTFLOW_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class QueueStatus:
    event_id: int
    wallet: str
    state: str
    position: int
    eta_seconds: int | None
    admission_expires_at: datetime | None
    sale_opens_at: datetime
    token: str


def join(
    session: Session, event: Event, wallet: str, secret: bytes, now: datetime | None = None
) -> QueueStatus:
    """Give the wallet a place, or return the place it already has.

    A wallet whose admission lapsed unused joins again at the back of the line: its place was
    spent, but it is never locked out of the sale.
    """
    now = now or utcnow()
    wallet = wallet.lower()
    advance(session, event, now)  # so a lapsed admission shows as expired right now
    entry = _entry(session, event.id, wallet)
    if entry is None or entry.state == EXPIRED:
        if now >= event.starts_at:
            raise QueueClosed(event.id, "the event has started")
        if all(tier.reserved >= tier.supply for tier in event.tiers):
            raise QueueClosed(event.id, "sold out")
        if entry is None:
            _insert_place(session, event.id, wallet, now)
        else:
            _requeue(session, entry, now)
    return status(session, event, wallet, secret, now)


def _insert_place(session: Session, event_id: int, wallet: str, now: datetime) -> QueueEntry:
    # seq = max + 1 under unique(event_id, seq): a concurrent join that takes the same number
    # fails its savepoint and tries the next one; no two wallets can share a place.
    for _attempt in range(50):
        entry = QueueEntry(
            event_id=event_id, wallet=wallet, seq=_next_seq(session, event_id), joined_at=now
        )
        try:
            with session.begin_nested():
                session.add(entry)
        except IntegrityError:
            existing = _entry(session, event_id, wallet)
            if existing is not None:
                return existing
            continue
        return entry
    raise QueueClosed(event_id, "the queue is too busy right now; try again")


def _requeue(session: Session, entry: QueueEntry, now: datetime) -> None:
    for _attempt in range(50):
        try:
            with session.begin_nested():
                entry.seq = _next_seq(session, entry.event_id)
                entry.state = WAITING
                entry.joined_at = now
                entry.admitted_at = None
                entry.admission_expires_at = None
                session.flush()
        except IntegrityError:
            session.refresh(entry)
            continue
        return
    raise QueueClosed(entry.event_id, "the queue is too busy right now; try again")


def _next_seq(session: Session, event_id: int) -> int:
    last = session.scalar(
        select(func.coalesce(func.max(QueueEntry.seq), 0)).where(QueueEntry.event_id == event_id)
    )
    return int(last or 0) + 1


def status(
    session: Session,
    event: Event,
    wallet: str,
    secret: bytes,
    now: datetime | None = None,
    token: str | None = None,
) -> QueueStatus:
    now = now or utcnow()
    wallet = wallet.lower()
    if token is not None:
        _check_token(token, event.id, wallet, secret)
    advance(session, event, now)
    entry = _entry(session, event.id, wallet)
    if entry is None:
        raise NotInQueue(event.id, wallet)
    position = 0
    if entry.state == WAITING:
        position = (
            session.scalar(
                select(func.count())
                .select_from(QueueEntry)
                .where(
                    QueueEntry.event_id == event.id,
                    QueueEntry.state == WAITING,
                    QueueEntry.seq < entry.seq,
                )
            )
            or 0
        )
    claims = tokens.QueueTokenClaims(event.id, wallet, entry.seq, int(now.timestamp()))
    return QueueStatus(
        event_id=event.id,
        wallet=wallet,
        state=entry.state,
        position=position,
        eta_seconds=_eta(session, event, position, now) if entry.state == WAITING else None,
        admission_expires_at=entry.admission_expires_at if entry.state == ADMITTED else None,
        sale_opens_at=event.sale_opens_at,
        token=tokens.sign(claims, secret),
    )


def _check_token(token: str, event_id: int, wallet: str, secret: bytes) -> None:
    claims = tokens.verify(token, secret)
    if claims.event_id != event_id or claims.wallet != wallet:
        raise InvalidQueueToken("the token was issued for another event or wallet")


def advance(session: Session, event: Event, now: datetime | None = None) -> int:
    """Expire lapsed admissions and admit the next waiting wallets up to the event's cap."""
    now = now or utcnow()
    if now < event.sale_opens_at:
        return 0
    # Serialise admission per event: on PostgreSQL by locking the event row; SQLite's
    # BEGIN IMMEDIATE already gives one writer at a time.
    session.execute(select(Event.id).where(Event.id == event.id).with_for_update())
    session.execute(
        update(QueueEntry)
        .where(
            QueueEntry.event_id == event.id,
            QueueEntry.state == ADMITTED,
            QueueEntry.admission_expires_at <= now,
        )
        .values(state=EXPIRED)
        .execution_options(synchronize_session=False)
    )
    active = (
        session.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.event_id == event.id, QueueEntry.state == ADMITTED)
        )
        or 0
    )
    room = event.max_admitted - active
    if room <= 0:
        return 0
    next_ids = list(
        session.scalars(
            select(QueueEntry.id)
            .where(QueueEntry.event_id == event.id, QueueEntry.state == WAITING)
            .order_by(QueueEntry.seq)
            .limit(room)
        )
    )
    if not next_ids:
        return 0
    session.execute(
        update(QueueEntry)
        .where(QueueEntry.id.in_(next_ids))
        .values(
            state=ADMITTED,
            admitted_at=now,
            admission_expires_at=now + timedelta(seconds=event.admission_ttl_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return len(next_ids)


def _eta(session: Session, event: Event, position: int, now: datetime) -> int | None:
    """Seconds until admission, from the admissions actually measured over the last minutes."""
    if now < event.sale_opens_at:
        return None
    admitted_recently = (
        session.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.event_id == event.id, QueueEntry.admitted_at > now - OUTFLOW_WINDOW)
        )
        or 0
    )
    if admitted_recently == 0:
        return None
    per_second = admitted_recently / OUTFLOW_WINDOW.total_seconds()
    return int((position + 1) / per_second)


def require_admission(
    session: Session, event: Event, wallet: str, now: datetime | None = None
) -> QueueEntry:
    now = now or utcnow()
    advance(session, event, now)
    entry = _entry(session, event.id, wallet.lower())
    if (
        entry is None
        or entry.state != ADMITTED
        or entry.admission_expires_at is None
        or entry.admission_expires_at <= now
    ):
        raise NotAdmitted(event.id, wallet)
    return entry


def extend_admission(session: Session, event_id: int, wallet: str, until: datetime) -> None:
    """Keep a wallet's admission alive while its payment is in flight."""
    entry = _entry(session, event_id, wallet.lower())
    if entry is not None and entry.state == ADMITTED and entry.admission_expires_at is not None:
        entry.admission_expires_at = max(entry.admission_expires_at, until)


def finish(session: Session, event_id: int, wallet: str) -> None:
    """The wallet bought its tickets: its admission frees a slot for the next in line."""
    session.execute(
        update(QueueEntry)
        .where(
            QueueEntry.event_id == event_id,
            QueueEntry.wallet == wallet.lower(),
            QueueEntry.state == ADMITTED,
        )
        .values(state=DONE)
        .execution_options(synchronize_session=False)
    )


def _entry(session: Session, event_id: int, wallet: str) -> QueueEntry | None:
    return session.scalar(
        select(QueueEntry).where(QueueEntry.event_id == event_id, QueueEntry.wallet == wallet)
    )
