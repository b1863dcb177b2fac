"""The one interface both waiting-room stores implement, and the values that cross it.

A store keeps places, admissions and the organizer's live controls for every event's queue. It
knows nothing about HTTP, tokens or the catalog: the service hands it a :class:`QueueConfig`
(what the catalog and settings say about the event) and the current time, and asks it to do one
atomic step. Two implementations pass one contract suite (tests/queue/test_store_contract.py):

* :class:`backend.queue.sql_store.SqlQueueStore`: tables in the service's database (embedded).
* :class:`backend.queue.redis_store.RedisQueueStore`: Lua scripts on Redis (scale-out).

Order in the queue is by ``rank``. Wallets that join before the sale starts get no rank until the
pre-sale shuffle gives them 1..N; wallets that join later get ``POST_START_RANK_BASE + seq``, so
they always come after every pre-sale arrival, first come first served.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from backend.queue.errors import QueueError

# Place states. "away" is a waiting place whose holder stopped polling for the grace period when
# its turn came: it keeps its rank and becomes "waiting" again, at the front, when they return.
WAITING, AWAY, ADMITTED, DONE, EXPIRED = "waiting", "away", "admitted", "done", "expired"
PLACE_STATES = (WAITING, AWAY, ADMITTED, DONE, EXPIRED)

# Ranks 1..N are the shuffled pre-sale arrivals; later arrivals are ranked after all of them.
POST_START_RANK_BASE = 2**40
# The measured outflow (and so the ETA) counts admissions granted over this recent window.
OUTFLOW_WINDOW = timedelta(minutes=2)
# A "last seen" write is skipped when the previous one is this recent: polls every second must
# not turn into a write every second.
TOUCH_EVERY = timedelta(seconds=5)
# How many absent wallets one admission step may set aside before it stops for this round.
MAX_PARKED_PER_STEP = 500
# A shuffle started by a process that died is taken over after this long.
SHUFFLE_LEASE = timedelta(seconds=60)
# Admissions per minute are paced by a token bucket holding this many seconds' worth.
BUCKET_SECONDS = 10


def bucket_size(admissions_per_minute: int) -> float:
    """How many admissions may be granted at once after a quiet spell (at least one)."""
    return max(1.0, admissions_per_minute * BUCKET_SECONDS / 60)


@dataclass(frozen=True)
class QueueConfig:
    """What the catalog and the settings say about one event's queue (the controls may override)."""

    event_id: int
    queue_opens_at: datetime
    sale_opens_at: datetime
    closes_at: datetime  # the event's start: nobody joins or is admitted after it
    max_admitted: int
    admissions_per_minute: int
    admission_ttl: timedelta
    grace: timedelta


@dataclass(frozen=True)
class Controls:
    """The organizer's live settings; ``None`` rates mean "as the event was created"."""

    paused: bool = False
    closed: bool = False
    admissions_per_minute: int | None = None
    max_admitted: int | None = None

    def rate(self, config: QueueConfig) -> int:
        return (
            self.admissions_per_minute
            if self.admissions_per_minute is not None
            else config.admissions_per_minute
        )

    def cap(self, config: QueueConfig) -> int:
        return self.max_admitted if self.max_admitted is not None else config.max_admitted


@dataclass(frozen=True)
class ControlChanges:
    """A partial update of :class:`Controls`; fields left ``None`` are unchanged."""

    paused: bool | None = None
    closed: bool | None = None
    admissions_per_minute: int | None = None
    max_admitted: int | None = None


@dataclass(frozen=True)
class Place:
    """One wallet's place and what it sees of the queue right now."""

    wallet: str
    seq: int  # join order, unique per event; a lapsed wallet that joins again gets a new one
    state: str
    presale: bool
    rank: int | None  # None while a pre-sale place waits for the shuffle
    joined_at: datetime
    last_seen_at: datetime
    admitted_at: datetime | None
    admission_expires_at: datetime | None
    position: int | None  # waiting wallets ahead; None before the shuffle, 0 unless waiting
    recent_admissions: int  # admissions granted over OUTFLOW_WINDOW (measured outflow)
    paused: bool
    # Admission slots free right now (the cap less the admitted), read for a waiting place only:
    # a place ahead of that many is admitted at the next outflow step, whatever the measured
    # outflow says (an uncrowded room measures almost none). None when not read.
    free_slots: int | None = None


@dataclass(frozen=True)
class AdmitResult:
    admitted: int = 0
    expired: int = 0
    parked: int = 0
    needs_shuffle: bool = False  # the sale has started but the pre-sale arrivals have no order


@dataclass(frozen=True)
class QueueStats:
    waiting: int
    away: int
    admitted: int
    done: int
    expired: int
    presale_unshuffled: int
    recent_admissions: int
    controls: Controls


@dataclass(frozen=True)
class ShuffleRecord:
    seed: str  # hex, published only once the order is fixed
    shuffled_at: datetime
    order: list[str]  # pre-sale wallets, first in line first


class QueueStore(Protocol):
    """Atomic steps on one event's queue. Every method is safe to call concurrently."""

    def join(
        self, config: QueueConfig, wallet: str, now: datetime, refusal: QueueError | None
    ) -> Place:
        """The wallet's place: the one it has, or a new one at the back.

        A wallet whose admission lapsed (``expired``) gets a new place at the back. A new place is
        refused by raising ``refusal`` when there is one (not open yet, sale over, sold out), or
        :class:`backend.queue.errors.QueueClosed` when the organizer closed the queue; an existing
        place is always returned.
        """
        ...

    def place(
        self, config: QueueConfig, wallet: str, now: datetime, *, touch: bool
    ) -> Place | None:
        """The wallet's place, or None. ``touch`` records that its holder is still here."""
        ...

    def admit(self, config: QueueConfig, now: datetime) -> AdmitResult:
        """Expire lapsed admissions, then admit present waiters in rank order.

        Admits at most the organizer's cap at once and at the configured rate (a token bucket
        holding ten seconds' worth). Waiters unseen for ``config.grace`` are set aside (``away``).
        Does nothing before the sale opens, while paused, or until the pre-sale shuffle is done.
        """
        ...

    def begin_shuffle(self, event_id: int, now: datetime, owner: str) -> list[str] | None:
        """Freeze the pre-sale arrivals and return them, if this caller is to shuffle them.

        None when the shuffle is done or another caller holds a live lease on it. After this,
        every join is ranked after the pre-sale arrivals.
        """
        ...

    def commit_shuffle(
        self, event_id: int, owner: str, seed: str, order: Sequence[str], now: datetime
    ) -> bool:
        """Give the frozen pre-sale arrivals ranks 1..N in ``order`` and publish ``seed``."""
        ...

    def shuffle_record(self, event_id: int) -> ShuffleRecord | None: ...

    def extend_admission(self, event_id: int, wallet: str, until: datetime) -> None:
        """Keep a current admission alive until at least ``until`` (payment in flight)."""
        ...

    def finish(self, event_id: int, wallet: str, now: datetime) -> None:
        """The wallet bought its tickets: its admission frees a slot."""
        ...

    def controls(self, event_id: int) -> Controls: ...

    def update_controls(self, event_id: int, changes: ControlChanges) -> Controls: ...

    def stats(self, config: QueueConfig, now: datetime) -> QueueStats: ...


class QueueStores(Protocol):
    """Hands out a store for one unit of work."""

    name: str

    def unit(self) -> AbstractContextManager[QueueStore]:
        """A store for a few steps that belong together (SQL: one database transaction)."""
        ...

    def within(self, session: Session) -> QueueStore:
        """The store as seen from inside the caller's database transaction.

        The SQL store then commits or rolls back with the caller (a sale and the admission it
        uses change together); the Redis store is the same store either way.
        """
        ...

    def close(self) -> None: ...
