"""The waiting room: joining, status with a measured ETA, outflow, the pre-sale shuffle.

:class:`WaitingRoom` is what the routes, the SSE stream and the worker use; it runs each step on
the configured store (SQL or Redis, see backend.queue.store). The module-level functions
(:func:`join`, :func:`require_admission`, :func:`extend_admission`, :func:`finish`) are what
other domains call from inside their own database transaction: they find the runtime's store
through the session (``session.info``) and fall back to the SQL store on that session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from backend.auth import service as auth
from backend.auth.errors import NotAuthenticated
from backend.auth.session_cache import NoSessionCache, SessionCache, wallet_from_copy, wallet_of
from backend.catalog.models import Event, Tier
from backend.catalog.service import get_event
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.queue import shuffle, tokens
from backend.queue.errors import (
    ForeignQueueToken,
    NotAdmitted,
    NotInQueue,
    QueueClosed,
    QueueError,
    QueueNotOpen,
    QueueTokenExpired,
)
from backend.queue.redis_store import RedisQueueStore
from backend.queue.sql_store import SqlQueueStore
from backend.queue.store import (
    ADMITTED,
    AWAY,
    OUTFLOW_WINDOW,
    WAITING,
    AdmitResult,
    ControlChanges,
    Controls,
    Place,
    QueueConfig,
    QueueStats,
    QueueStore,
    QueueStores,
    ShuffleRecord,
)

log = logging.getLogger("fairtix.queue")

# Where a runtime's sessions carry its WaitingRoom (see backend.app.build_runtime).
SESSION_INFO_KEY = "fairtix.waiting_room"
# The measured rate is averaged over at least this long, so one early admission is no "rate".
MIN_OUTFLOW_SPAN = timedelta(seconds=10)
# How often one process advances one event's queue on its own initiative (polls, streams).
ADVANCE_EVERY_SECONDS = 1.0
MIN_POLL_SECONDS = 2
MAX_POLL_SECONDS = 30  # a client far back still sees its position move
# Event facts used by status polls are cached this long per process (events are not edited).
CONFIG_CACHE_SECONDS = 5.0
# A join is the busiest write at on-sale time. These two answers are cached per process for a
# moment so a join usually costs no database round trip at all:
# - who a bearer token belongs to (a sign-out or a session's expiry reaches queue joins up to
#   this much later; every other route still checks the database on each request);
# - that an event still has seats (a "sold out" answer is never cached; a join in the second
#   the last seat goes gets a place, and the order step says sold out).
BEARER_CACHE_SECONDS = 5.0
SEATS_LEFT_CACHE_SECONDS = 1.0
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class QueueDefaults:
    """Settings-wide values an event does not set itself."""

    admissions_per_minute: int = 600
    grace: timedelta = timedelta(seconds=60)
    token_ttl: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class QueueStatus:
    event_id: int
    wallet: str
    state: str
    presale: bool
    position: int | None
    eta_seconds: int | None
    admission_expires_at: datetime | None
    sale_opens_at: datetime
    paused: bool
    outflow_per_minute: float | None
    poll_after_seconds: int | None
    token: str


def config_for(event: Event, defaults: QueueDefaults) -> QueueConfig:
    return QueueConfig(
        event_id=event.id,
        queue_opens_at=event.queue_opens_at or event.created_at,
        sale_opens_at=event.sale_opens_at,
        closes_at=event.starts_at,
        max_admitted=event.max_admitted,
        admissions_per_minute=event.admissions_per_minute or defaults.admissions_per_minute,
        admission_ttl=timedelta(seconds=event.admission_ttl_seconds),
        grace=defaults.grace,
    )


def refusal_for(config: QueueConfig, sold_out: bool, now: datetime) -> QueueError | None:
    """Why a new place can't be given right now, or None."""
    if now < config.queue_opens_at:
        return QueueNotOpen(config.event_id, config.queue_opens_at)
    if now >= config.closes_at:
        return QueueClosed(config.event_id, "the event has started")
    if sold_out:
        return QueueClosed(config.event_id, "sold out")
    return None


def is_sold_out(session: Session, event_id: int) -> bool:
    """One indexed query, fresh on every join: sold out is decided now, not when cached."""
    return not session.scalar(
        select(exists().where(Tier.event_id == event_id, Tier.reserved < Tier.supply))
    )


def measured_outflow_per_second(
    place_or_stats: Place | QueueStats, config: QueueConfig, now: datetime
) -> float | None:
    """Admissions actually granted per second over the recent window (None before the sale)."""
    if now < config.sale_opens_at:
        return None
    span = min(max(now - config.sale_opens_at, MIN_OUTFLOW_SPAN), OUTFLOW_WINDOW)
    return place_or_stats.recent_admissions / span.total_seconds()


def eta_seconds(place: Place, config: QueueConfig, now: datetime) -> int | None:
    """Seconds until admission at the measured outflow; None when there is none to measure."""
    if place.state != WAITING or place.position is None or place.paused:
        return None
    if now >= config.sale_opens_at and slot_is_coming(place):
        # Admitted at the next steps, paced by the configured rate, not the measured one.
        return int(ADVANCE_EVERY_SECONDS + place.position * 60 / config.admissions_per_minute)
    per_second = measured_outflow_per_second(place, config, now)
    if not per_second:
        return None
    return int((place.position + 1) / per_second)


def ensure_shuffled(store: QueueStore, config: QueueConfig, now: datetime) -> bool:
    """Order the pre-sale arrivals unless someone has or is doing so. True if done here."""
    owner = uuid.uuid4().hex
    wallets = store.begin_shuffle(config.event_id, now, owner)
    if wallets is None:
        return False
    seed = shuffle.new_seed()  # drawn now, after the last pre-sale arrival: nobody knew it before
    order = shuffle.shuffled(seed, wallets)
    if not store.commit_shuffle(config.event_id, owner, seed, order, now):
        return False
    log.info(
        "pre-sale arrivals shuffled",
        extra={
            "event_id": config.event_id,
            "participants": len(order),
            "order_sha256": shuffle.order_digest(order),
        },
    )
    return True


def advance(store: QueueStore, config: QueueConfig, now: datetime) -> AdmitResult:
    """One outflow step: shuffle first if the sale just started, then expire and admit."""
    result = store.admit(config, now)
    if result.needs_shuffle:
        ensure_shuffled(store, config, now)
        result = store.admit(config, now)
    if result.admitted or result.expired or result.parked:
        log.info(
            "queue advanced",
            extra={
                "event_id": config.event_id,
                "admitted": result.admitted,
                "expired": result.expired,
                "set_aside": result.parked,
            },
        )
    return result


def to_status(
    place: Place, config: QueueConfig, secret: bytes, now: datetime, event_id: int
) -> QueueStatus:
    claims = tokens.QueueTokenClaims(event_id, place.wallet, place.seq, int(now.timestamp()))
    per_second = measured_outflow_per_second(place, config, now)
    eta = eta_seconds(place, config, now)
    return QueueStatus(
        event_id=event_id,
        wallet=place.wallet,
        state=place.state,
        presale=place.presale,
        position=place.position,
        eta_seconds=eta,
        admission_expires_at=place.admission_expires_at if place.state == ADMITTED else None,
        sale_opens_at=config.sale_opens_at,
        paused=place.paused,
        outflow_per_minute=None if per_second is None else round(per_second * 60, 2),
        poll_after_seconds=poll_after_seconds(place, config, eta, now),
        token=tokens.sign(claims, secret),
    )


def poll_after_seconds(
    place: Place, config: QueueConfig, eta: int | None, now: datetime
) -> int | None:
    """When a waiting client should ask again: a quarter of its ETA (a poll is not free, and
    thousands of tabs polling every second slow the sale they wait for), never less than
    MIN_POLL_SECONDS, at most MAX_POLL_SECONDS, and never so late that its grace period could
    run out in between. (When a free slot is there for it, its ETA is the configured pace's, so
    a fan at the front of an uncrowded room asks again within MIN_POLL_SECONDS.)
    None once there is nothing to wait for."""
    if place.state not in (WAITING, AWAY):
        return None
    longest = max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, int(config.grace.total_seconds() / 3)))
    if now < config.sale_opens_at:
        wait = int((config.sale_opens_at - now).total_seconds())
    elif eta is None or place.state == AWAY:
        wait = MIN_POLL_SECONDS
    else:
        wait = eta // 4
    return max(MIN_POLL_SECONDS, min(wait, longest))


def slot_is_coming(place: Place) -> bool:
    """Whether a free admission slot is there for this place at the next outflow step: the room
    has more free slots than wallets ahead of it. In an uncrowded room the measured outflow is
    near zero and its ETA far too long; this is the fact that says "any second now"."""
    return (
        place.state == WAITING
        and not place.paused
        and place.position is not None
        and place.free_slots is not None
        and place.position < place.free_slots
    )


def check_token(
    token: str, event_id: int, wallet: str | None, secret: bytes, ttl: timedelta, now: datetime
) -> str:
    """The wallet a queue token speaks for; raises if forged, expired or someone else's."""
    claims = tokens.verify(token, secret)
    if claims.event_id != event_id or (wallet is not None and claims.wallet != wallet.lower()):
        raise ForeignQueueToken()
    if now.timestamp() - claims.issued_at > ttl.total_seconds():
        raise QueueTokenExpired(claims.issued_at)
    return claims.wallet


@dataclass(frozen=True)
class Credentials:
    """What a queue request presented: a bearer session token, a queue token, or both."""

    bearer: str | None = None
    queue_token: str | None = None


@dataclass
class _CachedConfig:
    config: QueueConfig
    until: float


@dataclass
class WaitingRoom:
    """The waiting room of one process: a store, the signing secret, per-process caches."""

    stores: QueueStores
    sessions: sessionmaker[Session]
    secret: bytes
    defaults: QueueDefaults = field(default_factory=QueueDefaults)
    # Bearer sessions as Redis knows them (backend.auth.session_cache): with the Redis store a
    # new wallet's join then needs no database at all.
    session_cache: SessionCache = field(default_factory=NoSessionCache)
    _configs: dict[int, _CachedConfig] = field(default_factory=dict)
    _bearers: dict[str, tuple[str, float]] = field(default_factory=dict)
    _seats_left_until: dict[int, float] = field(default_factory=dict)
    _next_advance: dict[int, float] = field(default_factory=dict)
    _next_sweep: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def config(self, event_id: int) -> QueueConfig:
        """The event's queue facts (cached briefly); raises EventNotFound."""
        cached = self._configs.get(event_id)
        if cached is not None and cached.until > time.monotonic():
            return cached.config
        with transaction(self.sessions) as session:
            config = config_for(get_event(session, event_id), self.defaults)
        self._configs[event_id] = _CachedConfig(config, time.monotonic() + CONFIG_CACHE_SECONDS)
        return config

    def identify(
        self, event_id: int, credentials: Credentials, session: Session | None = None
    ) -> str:
        """The wallet asking: from the bearer session, the queue token, or both (they must agree).

        The queue token alone is enough to keep a place: a refreshed tab or another replica
        presents it and needs no database lookup.
        """
        wallet = None
        if credentials.bearer is not None:
            if session is None:
                with transaction(self.sessions) as own:
                    issued = auth.resolve_session(own, credentials.bearer)
            else:
                issued = auth.resolve_session(session, credentials.bearer)
            wallet = issued.address
            self._remember(self._bearers, credentials.bearer, BEARER_CACHE_SECONDS, wallet)
            self.session_cache.remember(credentials.bearer, wallet, issued.expires_at)
        if credentials.queue_token is not None:
            return self.wallet_for_token(credentials.queue_token, event_id, wallet)
        if wallet is None:
            raise NotAuthenticated(
                "sign in with Ethereum and send 'Authorization: Bearer <token>', "
                "or present your queue token as X-Queue-Token"
            )
        return wallet

    def _cached_identity(self, event_id: int, credentials: Credentials) -> str | None:
        """``identify`` from the per-process cache, or None when the database must be asked."""
        if credentials.bearer is None:
            return None
        cached = self._bearers.get(credentials.bearer)
        if cached is not None and cached[1] > time.monotonic():
            wallet = cached[0]
        else:
            shared = wallet_from_copy(self.session_cache, credentials.bearer)
            if shared is None:
                return None
            wallet = shared
            self._remember(self._bearers, credentials.bearer, BEARER_CACHE_SECONDS, wallet)
        if credentials.queue_token is not None:
            return self.wallet_for_token(credentials.queue_token, event_id, wallet)
        return wallet

    def _seats_left_recently(self, event_id: int) -> bool:
        return self._seats_left_until.get(event_id, 0.0) > time.monotonic()

    def _remember(self, cache: dict[Any, Any], key: Any, seconds: float, value: Any = None) -> None:
        with self._lock:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()  # crude but bounded: a burst of distinct tokens can't grow it
            until = time.monotonic() + seconds
            cache[key] = until if value is None else (value, until)

    def can_answer_inline(self, event_id: int, credentials: Credentials) -> bool:
        """True when a status read needs neither the database nor an outflow step right now.

        Then it is one Redis script and some hashing: cheaper on the event loop than the hop to
        a worker thread. Anything else (SQL store, bearer lookup, config to load, an admission
        step due) runs in the thread pool.
        """
        if self.stores.name != "redis" or credentials.bearer is not None:
            return False
        cached = self._configs.get(event_id)
        if cached is None or cached.until <= time.monotonic():
            return False
        return time.monotonic() < self._next_advance.get(event_id, 0.0) or (
            utcnow() < cached.config.sale_opens_at
        )

    def join_inline(
        self, event_id: int, credentials: Credentials, now: datetime | None = None
    ) -> QueueStatus | None:
        """``join`` when it is one or two Redis round trips and no database: the Redis store,
        the event's config and "seats left" fresh in this process, the bearer known here or to
        the session cache, and no outflow step due. None: take ``join`` in a worker thread.

        This is the on-sale's hot path; on the event loop it skips the thread-pool hop."""
        if self.stores.name != "redis":
            return None
        now = now or utcnow()
        config = self._fresh_config_for_join(event_id, now)
        if config is None:
            return None
        wallet = self._cached_identity(event_id, credentials)
        if wallet is None:
            return None
        with self.stores.unit() as store:
            place = store.join(config, wallet.lower(), now, refusal_for(config, False, now))
        return to_status(place, config, self.secret, now, event_id)

    # -- the fast lane's two requests, without blocking the event loop ---------------------------
    # backend/queue/fast_lane.py awaits these: the same answers as status() and join_inline(),
    # each Redis round trip on the non-blocking lane (backend/queue/redis_lane.py), so the loop
    # serves other requests meanwhile. None, or LaneUnavailable raised: take the ordinary route.

    async def status_on_lane(
        self, event_id: int, credentials: Credentials, now: datetime | None = None
    ) -> QueueStatus | None:
        """A queue-token poll's answer, or None (the route answers, e.g. 404 not in queue)."""
        store = self._lane_store()
        if store is None or not self.can_answer_inline(event_id, credentials):
            return None
        now = now or utcnow()
        config = self._configs[event_id].config  # fresh: can_answer_inline just said so
        wallet = self.identify(event_id, credentials).lower()  # the token: no I/O
        place = await store.place_on_lane(config, wallet, now, touch=True)
        if place is None:
            return None
        return to_status(place, config, self.secret, now, event_id)

    async def join_on_lane(
        self, event_id: int, credentials: Credentials, now: datetime | None = None
    ) -> QueueStatus | None:
        """``join_inline`` with its round trips awaited: the session copy's, then the join's."""
        store = self._lane_store()
        if store is None:
            return None
        now = now or utcnow()
        config = self._fresh_config_for_join(event_id, now)
        if config is None or credentials.bearer is None:
            return None
        cached = self._bearers.get(credentials.bearer)
        if cached is not None and cached[1] > time.monotonic():
            wallet = cached[0]
        else:
            shared = wallet_of(await self.session_cache.lookup_on_lane(credentials.bearer))
            if shared is None:
                return None  # only the database knows this session
            wallet = shared
            self._remember(self._bearers, credentials.bearer, BEARER_CACHE_SECONDS, wallet)
        if credentials.queue_token is not None:
            wallet = self.wallet_for_token(credentials.queue_token, event_id, wallet)
        # The awaits above may have let the config's moment pass; what was fresh then still
        # holds for this join, as it would for a join that started a moment earlier.
        place = await store.join_on_lane(
            config, wallet.lower(), now, refusal_for(config, False, now)
        )
        return to_status(place, config, self.secret, now, event_id)

    def _lane_store(self) -> RedisQueueStore | None:
        store = getattr(self.stores, "store", None)
        if isinstance(store, RedisQueueStore) and store.lane is not None:
            return store
        return None

    def _fresh_config_for_join(self, event_id: int, now: datetime) -> QueueConfig | None:
        """The event's config when a join needs no database and no outflow step right now."""
        cached = self._configs.get(event_id)
        if cached is None or cached.until <= time.monotonic():
            return None
        config = cached.config
        step_due = now >= config.sale_opens_at and time.monotonic() >= self._next_advance.get(
            event_id, 0.0
        )
        if step_due or not self._seats_left_recently(event_id):
            return None
        return config

    def join(
        self, event_id: int, who: str | Credentials, now: datetime | None = None
    ) -> QueueStatus:
        """Take or find the place of ``who`` (a wallet, or the credentials naming one)."""
        now = now or utcnow()
        config = self.config(event_id)
        wallet_known = who if isinstance(who, str) else self._cached_identity(event_id, who)
        if wallet_known is not None and self._seats_left_recently(event_id):
            wallet, sold_out = wallet_known.lower(), False
        else:
            # One transaction for who is asking and whether seats remain.
            with transaction(self.sessions) as session:
                if wallet_known is not None:
                    wallet = wallet_known
                elif isinstance(who, str):
                    wallet = who
                else:
                    wallet = self.identify(event_id, who, session)
                wallet = wallet.lower()
                sold_out = is_sold_out(session, event_id)
            if not sold_out:
                self._remember(self._seats_left_until, event_id, SEATS_LEFT_CACHE_SECONDS)
        refusal = refusal_for(config, sold_out, now)
        with self.stores.unit() as store:
            place = store.join(config, wallet, now, refusal)
        if place.state == WAITING and self.advance_if_due(config, now).admitted:
            with self.stores.unit() as store:
                place = store.place(config, wallet, now, touch=False) or place
        return to_status(place, config, self.secret, now, event_id)

    def status(
        self,
        event_id: int,
        wallet: str,
        now: datetime | None = None,
        *,
        advance_first: bool = True,
    ) -> QueueStatus:
        now = now or utcnow()
        wallet = wallet.lower()
        config = self.config(event_id)
        if advance_first:
            self.advance_if_due(config, now)
        with self.stores.unit() as store:
            place = store.place(config, wallet, now, touch=True)
        if place is None:
            raise NotInQueue(event_id, wallet)
        return to_status(place, config, self.secret, now, event_id)

    def wallet_for_token(
        self, token: str, event_id: int, wallet: str | None, now: datetime | None = None
    ) -> str:
        return check_token(
            token, event_id, wallet, self.secret, self.defaults.token_ttl, now or utcnow()
        )

    def advance_if_due(self, config: QueueConfig, now: datetime | None = None) -> AdmitResult:
        """Advance the event's queue unless this process did so in the last second."""
        if (now or utcnow()) < config.sale_opens_at:
            return AdmitResult()
        with self._lock:
            due = self._next_advance.get(config.event_id, 0.0)
            if time.monotonic() < due:
                return AdmitResult()
            self._next_advance[config.event_id] = time.monotonic() + ADVANCE_EVERY_SECONDS
        return self.advance(config, now)

    def advance(self, config: QueueConfig, now: datetime | None = None) -> AdmitResult:
        with self.stores.unit() as store:
            return advance(store, config, now or utcnow())

    def controls(self, event_id: int) -> Controls:
        with self.stores.unit() as store:
            return store.controls(event_id)

    def update_controls(self, event_id: int, changes: ControlChanges) -> Controls:
        with self.stores.unit() as store:
            controls = store.update_controls(event_id, changes)
        log.info(
            "queue controls changed",
            extra={
                "event_id": event_id,
                **{k: v for k, v in vars(changes).items() if v is not None},
            },
        )
        return controls

    def admin_stats(
        self, event_id: int, now: datetime | None = None
    ) -> tuple[QueueConfig, QueueStats, float | None]:
        """The event's config, its queue's numbers, and the measured outflow per minute."""
        now = now or utcnow()
        config = self.config(event_id)
        with self.stores.unit() as store:
            stats = store.stats(config, now)
        per_second = measured_outflow_per_second(stats, config, now)
        return config, stats, None if per_second is None else round(per_second * 60, 2)

    def shuffle_record(self, event_id: int) -> ShuffleRecord | None:
        with self.stores.unit() as store:
            return store.shuffle_record(event_id)

    def advance_open_queues(self, now: datetime | None = None) -> int:
        """Advance every queue whose sale is on (the worker's step); returns wallets admitted."""
        now = now or utcnow()
        with self._lock:
            if time.monotonic() < self._next_sweep:
                return 0
            self._next_sweep = time.monotonic() + ADVANCE_EVERY_SECONDS
        with transaction(self.sessions) as session:
            event_ids = list(
                session.scalars(
                    select(Event.id).where(Event.sale_opens_at <= now, Event.starts_at > now)
                )
            )
        return sum(
            self.advance_if_due(self.config(event_id), now).admitted for event_id in event_ids
        )

    def start_lane(self) -> None:
        """Let the fast lane use the non-blocking Redis lane on the running (the app's) loop."""
        store = self._lane_store()
        if store is not None and store.lane is not None:
            store.lane.bind(asyncio.get_running_loop())

    async def stop_lane(self) -> None:
        store = self._lane_store()
        if store is not None and store.lane is not None:
            await store.lane.aclose()

    def close(self) -> None:
        self.stores.close()


# -- called by other domains from inside their own transaction ------------------------------------


def _room_of(session: Session) -> WaitingRoom | None:
    room = session.info.get(SESSION_INFO_KEY)
    return room if isinstance(room, WaitingRoom) else None


def _store_of(session: Session) -> tuple[QueueStore, QueueDefaults]:
    room = _room_of(session)
    if room is None:
        return SqlQueueStore(session), QueueDefaults()
    return room.stores.within(session), room.defaults


def join(
    session: Session, event: Event, wallet: str, secret: bytes, now: datetime | None = None
) -> QueueStatus:
    """Take (or find) the wallet's place and advance the queue once, in the caller's transaction."""
    now = now or utcnow()
    store, defaults = _store_of(session)
    config = config_for(event, defaults)
    sold_out = all(tier.reserved >= tier.supply for tier in event.tiers)
    place = store.join(config, wallet.lower(), now, refusal_for(config, sold_out, now))
    advance(store, config, now)
    place = store.place(config, wallet.lower(), now, touch=False) or place
    return to_status(place, config, secret, now, event.id)


def require_admission(
    session: Session, event: Event, wallet: str, now: datetime | None = None
) -> Place:
    """The wallet's current admission, or NotAdmitted. The holder is present: it counts as seen."""
    now = now or utcnow()
    store, defaults = _store_of(session)
    config = config_for(event, defaults)
    place = store.place(config, wallet.lower(), now, touch=True)
    if not _admitted(place, now):
        # Its turn may have come since the queue last moved: move it once and look again.
        # Only then: an admitted buyer's hold, the on-sale's busiest request, costs one
        # store call, and polls and the worker keep the queue moving meanwhile.
        advance(store, config, now)
        place = store.place(config, wallet.lower(), now, touch=False)
    if place is None or not _admitted(place, now):
        raise NotAdmitted(event.id, wallet)
    return place


def _admitted(place: Place | None, now: datetime) -> bool:
    return (
        place is not None
        and place.state == ADMITTED
        and place.admission_expires_at is not None
        and place.admission_expires_at > now
    )


def extend_admission(session: Session, event_id: int, wallet: str, until: datetime) -> None:
    """Keep a wallet's admission alive while its payment is in flight (it is in checkout)."""
    store, _defaults = _store_of(session)
    store.extend_admission(event_id, wallet.lower(), until)


def finish(session: Session, event_id: int, wallet: str, now: datetime | None = None) -> None:
    """The wallet bought its tickets: its admission frees a slot for the next in line."""
    store, _defaults = _store_of(session)
    store.finish(event_id, wallet.lower(), now or utcnow())
