"""The waiting room in SQL tables (embedded default; durable on SQLite and PostgreSQL).

Concurrency, by operation:

* join: takes ``seq`` from the event's ``queue_controls.next_seq`` with one UPDATE; that row lock
  (held to commit) orders joins without gaps and makes "has the shuffle begun?" a fresh read.
* admit: one admitter per event at a time: PostgreSQL's ``pg_try_advisory_xact_lock`` (a busy
  lock means someone else is admitting right now, so this caller just skips); on SQLite every
  transaction is ``BEGIN IMMEDIATE`` already.
* status polls read, and write only their own row (and only every ``TOUCH_EVERY``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from math import floor
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from backend.db.engine import transaction
from backend.queue.errors import QueueClosed, QueueError
from backend.queue.models import QueueControl, QueueEntry
from backend.queue.store import (
    ADMITTED,
    AWAY,
    DONE,
    EXPIRED,
    MAX_PARKED_PER_STEP,
    OUTFLOW_WINDOW,
    POST_START_RANK_BASE,
    SHUFFLE_LEASE,
    TOUCH_EVERY,
    WAITING,
    AdmitResult,
    ControlChanges,
    Controls,
    Place,
    QueueConfig,
    QueueStats,
    ShuffleRecord,
    bucket_size,
)

# First key of the two-key advisory lock: "fq" for fairtix queue; the second key is the event id.
_ADVISORY_LOCK_CLASS = 0x6671


class SqlQueueStore:
    """A QueueStore working inside one SQLAlchemy session (its caller commits)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- places ---------------------------------------------------------------------------------

    def join(
        self, config: QueueConfig, wallet: str, now: datetime, refusal: QueueError | None
    ) -> Place:
        entry = self._entry(config.event_id, wallet)
        if entry is not None and entry.state != EXPIRED:
            self._touch(entry, now)
            return self._view(config, entry, now)
        if refusal is not None:
            raise refusal
        self._ensure_control(config.event_id)
        try:
            # The savepoint covers the counter too: a lost race for the same wallet gives its
            # number back, so seqs stay gap-free.
            with self._session.begin_nested():
                seq, closed, shuffle_state = self._take_seq(config.event_id)
                if closed:
                    raise QueueClosed(config.event_id, "the organizer has closed this queue")
                presale = now < config.sale_opens_at and shuffle_state == "pending"
                if entry is None:
                    entry = QueueEntry(event_id=config.event_id, wallet=wallet)
                    self._session.add(entry)
                entry.seq = seq
                entry.state = WAITING
                entry.presale = presale
                entry.rank = None if presale else POST_START_RANK_BASE + seq
                entry.joined_at = now
                entry.last_seen_at = now
                entry.admitted_at = None
                entry.admission_expires_at = None
                self._session.flush()
        except IntegrityError:
            # The same wallet joined at the same moment elsewhere: that place is this place.
            self._session.expire_all()
            existing = self._entry(config.event_id, wallet)
            if existing is None:
                raise
            entry = existing
        return self._view(config, entry, now)

    def _take_seq(self, event_id: int) -> tuple[int, bool, str]:
        row = self._session.execute(
            update(QueueControl)
            .where(QueueControl.event_id == event_id)
            .values(next_seq=QueueControl.next_seq + 1)
            .returning(QueueControl.next_seq, QueueControl.closed, QueueControl.shuffle_state)
            .execution_options(synchronize_session=False)
        ).one()
        return int(row[0]), bool(row[1]), str(row[2])

    def place(
        self, config: QueueConfig, wallet: str, now: datetime, *, touch: bool
    ) -> Place | None:
        entry = self._entry(config.event_id, wallet)
        if entry is None:
            return None
        if touch:
            self._touch(entry, now)
        return self._view(config, entry, now)

    def _touch(self, entry: QueueEntry, now: datetime) -> None:
        if entry.state == AWAY:
            # Back after being set aside: first in line again, by the rank it always kept.
            entry.state = WAITING
            entry.last_seen_at = now
        elif entry.last_seen_at is None or entry.last_seen_at <= now - TOUCH_EVERY:
            entry.last_seen_at = now
        if (
            entry.state == ADMITTED
            and entry.admission_expires_at is not None
            and entry.admission_expires_at <= now
        ):
            entry.state = EXPIRED
        self._session.flush()

    def _view(self, config: QueueConfig, entry: QueueEntry, now: datetime) -> Place:
        state = entry.state
        if (
            state == ADMITTED
            and entry.admission_expires_at is not None
            and entry.admission_expires_at <= now
        ):
            state = EXPIRED
        position: int | None = 0
        if state in (WAITING, AWAY):
            position = None if entry.rank is None else self._ahead_of(config.event_id, entry.rank)
        control = self._session.get(QueueControl, config.event_id)
        free_slots = None
        if state == WAITING:
            cap = config.max_admitted
            if control is not None and control.max_admitted is not None:
                cap = control.max_admitted
            free_slots = cap - self._admitted_now(config.event_id, now)
        return Place(
            wallet=entry.wallet,
            seq=entry.seq,
            state=state,
            presale=entry.presale,
            rank=entry.rank,
            joined_at=entry.joined_at,
            last_seen_at=entry.last_seen_at or entry.joined_at,
            admitted_at=entry.admitted_at,
            admission_expires_at=entry.admission_expires_at,
            position=position,
            recent_admissions=self._recent_admissions(config.event_id, now),
            paused=bool(control is not None and control.paused),
            free_slots=free_slots,
        )

    def _ahead_of(self, event_id: int, rank: int) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(QueueEntry)
                .where(
                    QueueEntry.event_id == event_id,
                    QueueEntry.state == WAITING,
                    QueueEntry.rank < rank,
                )
            )
            or 0
        )

    def _admitted_now(self, event_id: int, now: datetime) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(QueueEntry)
                .where(
                    QueueEntry.event_id == event_id,
                    QueueEntry.state == ADMITTED,
                    QueueEntry.admission_expires_at > now,
                )
            )
            or 0
        )

    def _recent_admissions(self, event_id: int, now: datetime) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(QueueEntry)
                .where(
                    QueueEntry.event_id == event_id,
                    QueueEntry.admitted_at > now - OUTFLOW_WINDOW,
                )
            )
            or 0
        )

    # -- outflow --------------------------------------------------------------------------------

    def admit(self, config: QueueConfig, now: datetime) -> AdmitResult:
        event_id = config.event_id
        if now < config.sale_opens_at:
            return AdmitResult()
        if not self._try_admission_lock(event_id):
            return AdmitResult()  # another transaction is admitting for this event right now
        control = self._ensure_control(event_id)
        self._session.refresh(control)
        if control.shuffle_state != "done":
            return AdmitResult(needs_shuffle=True)
        expired = self._expire_lapsed(event_id, now)
        if control.paused or now >= config.closes_at:
            return AdmitResult(expired=expired)
        controls = _controls_of(control)
        rate = controls.rate(config)
        burst = bucket_size(rate)
        tokens = burst
        if control.bucket_tokens is not None and control.bucket_at is not None:
            elapsed = max((now - control.bucket_at).total_seconds(), 0.0)
            tokens = min(burst, control.bucket_tokens + elapsed * rate / 60)
        active = self._count(event_id, ADMITTED)
        room = min(controls.cap(config) - active, floor(tokens))
        admitted, parked = self._admit_head(config, now, room) if room > 0 else ([], [])
        control.bucket_tokens = tokens - len(admitted)
        control.bucket_at = now
        self._session.flush()
        return AdmitResult(admitted=len(admitted), expired=expired, parked=len(parked))

    def _try_admission_lock(self, event_id: int) -> bool:
        if self._session.get_bind().dialect.name != "postgresql":
            return True  # SQLite: BEGIN IMMEDIATE already made this the only writer
        return bool(
            self._session.scalar(
                select(func.pg_try_advisory_xact_lock(_ADVISORY_LOCK_CLASS, event_id))
            )
        )

    def _expire_lapsed(self, event_id: int, now: datetime) -> int:
        result = self._session.execute(
            update(QueueEntry)
            .where(
                QueueEntry.event_id == event_id,
                QueueEntry.state == ADMITTED,
                QueueEntry.admission_expires_at <= now,
            )
            .values(state=EXPIRED)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _admit_head(
        self, config: QueueConfig, now: datetime, room: int
    ) -> tuple[list[int], list[int]]:
        head = self._session.execute(
            select(QueueEntry.id, QueueEntry.last_seen_at, QueueEntry.joined_at)
            .where(
                QueueEntry.event_id == config.event_id,
                QueueEntry.state == WAITING,
                QueueEntry.rank.is_not(None),
            )
            .order_by(QueueEntry.rank)
            .limit(room + MAX_PARKED_PER_STEP)
        ).all()
        present_since = now - config.grace
        admitted: list[int] = []
        parked: list[int] = []
        for entry_id, last_seen_at, joined_at in head:
            if len(admitted) >= room:
                break
            if (last_seen_at or joined_at) >= present_since:
                admitted.append(entry_id)
            else:
                parked.append(entry_id)
        if admitted:
            self._session.execute(
                update(QueueEntry)
                .where(QueueEntry.id.in_(admitted))
                .values(
                    state=ADMITTED, admitted_at=now, admission_expires_at=now + config.admission_ttl
                )
                .execution_options(synchronize_session=False)
            )
        if parked:
            self._session.execute(
                update(QueueEntry)
                .where(QueueEntry.id.in_(parked))
                .values(state=AWAY)
                .execution_options(synchronize_session=False)
            )
        self._session.expire_all()
        return admitted, parked

    def extend_admission(self, event_id: int, wallet: str, until: datetime) -> None:
        self._session.execute(
            update(QueueEntry)
            .where(
                QueueEntry.event_id == event_id,
                QueueEntry.wallet == wallet,
                QueueEntry.state == ADMITTED,
                QueueEntry.admission_expires_at < until,
            )
            .values(admission_expires_at=until)
            .execution_options(synchronize_session=False)
        )
        self._session.expire_all()

    def finish(self, event_id: int, wallet: str, now: datetime) -> None:
        self._session.execute(
            update(QueueEntry)
            .where(
                QueueEntry.event_id == event_id,
                QueueEntry.wallet == wallet,
                QueueEntry.state == ADMITTED,
            )
            .values(state=DONE)
            .execution_options(synchronize_session=False)
        )
        self._session.expire_all()

    # -- the pre-sale shuffle -------------------------------------------------------------------

    def begin_shuffle(self, event_id: int, now: datetime, owner: str) -> list[str] | None:
        self._ensure_control(event_id)
        claimed = self._session.execute(
            update(QueueControl)
            .where(
                QueueControl.event_id == event_id,
                (QueueControl.shuffle_state == "pending")
                | (
                    (QueueControl.shuffle_state == "running")
                    & (QueueControl.shuffle_started_at < now - SHUFFLE_LEASE)
                ),
            )
            .values(shuffle_state="running", shuffle_owner=owner, shuffle_started_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return list(
            self._session.scalars(
                select(QueueEntry.wallet).where(
                    QueueEntry.event_id == event_id,
                    QueueEntry.presale.is_(True),
                    QueueEntry.rank.is_(None),
                )
            )
        )

    def commit_shuffle(
        self, event_id: int, owner: str, seed: str, order: Sequence[str], now: datetime
    ) -> bool:
        done = self._session.execute(
            update(QueueControl)
            .where(
                QueueControl.event_id == event_id,
                QueueControl.shuffle_state == "running",
                QueueControl.shuffle_owner == owner,
            )
            .values(shuffle_state="done", seed=seed, shuffled_at=now)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return False
        if order:
            table = cast(Table, QueueEntry.__table__)
            self._session.connection().execute(
                update(table)
                .where(table.c.event_id == event_id, table.c.wallet == bindparam("b_wallet"))
                .values(rank=bindparam("b_rank")),
                [{"b_wallet": wallet, "b_rank": rank} for rank, wallet in enumerate(order, 1)],
            )
        self._session.expire_all()
        return True

    def shuffle_record(self, event_id: int) -> ShuffleRecord | None:
        control = self._session.get(QueueControl, event_id)
        if control is None or control.seed is None or control.shuffled_at is None:
            return None
        order = self._session.scalars(
            select(QueueEntry.wallet)
            .where(QueueEntry.event_id == event_id, QueueEntry.presale.is_(True))
            .order_by(QueueEntry.rank)
        )
        return ShuffleRecord(seed=control.seed, shuffled_at=control.shuffled_at, order=list(order))

    # -- the organizer's controls ---------------------------------------------------------------

    def controls(self, event_id: int) -> Controls:
        control = self._session.get(QueueControl, event_id)
        return Controls() if control is None else _controls_of(control)

    def update_controls(self, event_id: int, changes: ControlChanges) -> Controls:
        control = self._ensure_control(event_id)
        for field in ("paused", "closed", "admissions_per_minute", "max_admitted"):
            value = getattr(changes, field)
            if value is not None:
                setattr(control, field, value)
        self._session.flush()
        return _controls_of(control)

    def stats(self, config: QueueConfig, now: datetime) -> QueueStats:
        counts = dict(
            self._session.execute(
                select(QueueEntry.state, func.count())
                .where(QueueEntry.event_id == config.event_id)
                .group_by(QueueEntry.state)
            ).all()
        )
        unshuffled = self._session.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(
                QueueEntry.event_id == config.event_id,
                QueueEntry.state.in_((WAITING, AWAY)),
                QueueEntry.rank.is_(None),
            )
        )
        return QueueStats(
            waiting=int(counts.get(WAITING, 0)),
            away=int(counts.get(AWAY, 0)),
            admitted=int(counts.get(ADMITTED, 0)),
            done=int(counts.get(DONE, 0)),
            expired=int(counts.get(EXPIRED, 0)),
            presale_unshuffled=int(unshuffled or 0),
            recent_admissions=self._recent_admissions(config.event_id, now),
            controls=self.controls(config.event_id),
        )

    # -- helpers --------------------------------------------------------------------------------

    def _entry(self, event_id: int, wallet: str) -> QueueEntry | None:
        return self._session.scalar(
            select(QueueEntry)
            .where(QueueEntry.event_id == event_id, QueueEntry.wallet == wallet)
            .execution_options(populate_existing=True)
        )

    def _count(self, event_id: int, state: str) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(QueueEntry)
                .where(QueueEntry.event_id == event_id, QueueEntry.state == state)
            )
            or 0
        )

    def _ensure_control(self, event_id: int) -> QueueControl:
        control = self._session.get(QueueControl, event_id)
        if control is not None:
            return control
        # Places taken before this table existed keep their numbers: the counter starts above them.
        last_seq = self._session.scalar(
            select(func.coalesce(func.max(QueueEntry.seq), 0)).where(
                QueueEntry.event_id == event_id
            )
        )
        try:
            with self._session.begin_nested():
                control = QueueControl(event_id=event_id, next_seq=int(last_seq or 0))
                self._session.add(control)
        except IntegrityError:
            pass  # created concurrently; use that one
        control = self._session.get(QueueControl, event_id, populate_existing=True)
        assert control is not None
        return control


def _controls_of(control: QueueControl) -> Controls:
    return Controls(
        paused=control.paused,
        closed=control.closed,
        admissions_per_minute=control.admissions_per_minute,
        max_admitted=control.max_admitted,
    )


class SqlQueueStores:
    """The SQL store for each unit of work, on the service's own database."""

    name = "sql"

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @contextmanager
    def unit(self) -> Iterator[SqlQueueStore]:
        with transaction(self._sessions) as session:
            yield SqlQueueStore(session)

    def within(self, session: Session) -> SqlQueueStore:
        return SqlQueueStore(session)

    def close(self) -> None:
        pass
