"""The waiting room on Redis (scale-out): every step is one Lua script, atomic across replicas.

All of an event's keys share the hash tag ``{<event id>}``, so the scripts also run on a Redis
Cluster. State lives only in Redis: API processes can restart or be added at any time. Redis
must persist (AOF or RDB) for places to survive a Redis restart; that is Redis's configuration,
not ours.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from redis.commands.core import Script
from redis.typing import EncodableT, FieldT
from sqlalchemy.orm import Session

from backend.queue import redis_scripts
from backend.queue.breaker import RedisBreaker
from backend.queue.errors import QueueClosed, QueueError, QueueUnavailable
from backend.queue.redis_lane import LaneUnavailable, RedisLane
from backend.queue.store import (
    BUCKET_SECONDS,
    MAX_PARKED_PER_STEP,
    OUTFLOW_WINDOW,
    POST_START_RANK_BASE,
    SHUFFLE_LEASE,
    TOUCH_EVERY,
    AdmitResult,
    ControlChanges,
    Controls,
    Place,
    QueueConfig,
    QueueStats,
    ShuffleRecord,
)

log = logging.getLogger("fairtix.queue.redis")
T = TypeVar("T")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class RedisQueueStore:
    """A QueueStore on one Redis database; ``prefix`` namespaces every key it touches."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "fairtix",
        breaker: RedisBreaker | None = None,
        lane: RedisLane | None = None,
    ) -> None:
        self._redis = client
        self._breaker = breaker or RedisBreaker()
        self._lane = lane
        self._prefix = prefix
        self._keys: dict[int, list[str]] = {}  # every call names the event's keys: built once
        self._join = client.register_script(redis_scripts.JOIN)
        self._place = client.register_script(redis_scripts.PLACE)
        self._admit = client.register_script(redis_scripts.ADMIT)
        self._begin_shuffle = client.register_script(redis_scripts.BEGIN_SHUFFLE)
        self._commit_shuffle = client.register_script(redis_scripts.COMMIT_SHUFFLE)
        self._extend = client.register_script(redis_scripts.EXTEND)
        self._finish = client.register_script(redis_scripts.FINISH)

    def keys(self, event_id: int) -> list[str]:
        keys = self._keys.get(event_id)
        if keys is None:
            base = f"{self._prefix}:q:{{{event_id}}}"
            keys = [f"{base}:{name}" for name in redis_scripts.KEY_NAMES]
            if len(self._keys) >= 10_000:
                self._keys.clear()
            self._keys[event_id] = keys
        return list(keys)  # a copy: callers may unpack or pass it on, never change ours

    def _run(self, script: Script, event_id: int, args: Sequence[Any]) -> Any:
        return self._guard(lambda: script(keys=self.keys(event_id), args=list(args)))

    def _guard(self, call: Callable[[], T]) -> T:
        try:
            return self._breaker.call(call)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("redis unreachable", extra={"error": f"{type(exc).__name__}: {exc}"})
            raise QueueUnavailable("the queue store did not answer") from exc

    # -- places ---------------------------------------------------------------------------------

    def join(
        self, config: QueueConfig, wallet: str, now: datetime, refusal: QueueError | None
    ) -> Place:
        args = _join_args(config, wallet, now, refusal)
        outcome, body = self._run(self._join, config.event_id, args)
        return _joined(config, wallet, outcome, body, refusal)

    def place(
        self, config: QueueConfig, wallet: str, now: datetime, *, touch: bool
    ) -> Place | None:
        body = self._run(self._place, config.event_id, _place_args(wallet, now, touch))
        return None if body is None else _place(wallet, body, config.max_admitted)

    # -- the same two steps on the non-blocking lane (backend/queue/redis_lane.py) ---------------

    @property
    def lane(self) -> RedisLane | None:
        return self._lane

    async def join_on_lane(
        self, config: QueueConfig, wallet: str, now: datetime, refusal: QueueError | None
    ) -> Place:
        """``join`` without blocking the loop; raises LaneUnavailable when the lane can't."""
        lane = self._require_lane()
        args = _join_args(config, wallet, now, refusal)
        outcome, body = await lane.evalsha(self._join.sha, self.keys(config.event_id), args)
        return _joined(config, wallet, outcome, body, refusal)

    async def place_on_lane(
        self, config: QueueConfig, wallet: str, now: datetime, *, touch: bool
    ) -> Place | None:
        """``place`` without blocking the loop; raises LaneUnavailable when the lane can't."""
        lane = self._require_lane()
        args = _place_args(wallet, now, touch)
        body = await lane.evalsha(self._place.sha, self.keys(config.event_id), args)
        return None if body is None else _place(wallet, body, config.max_admitted)

    def _require_lane(self) -> RedisLane:
        if self._lane is None:
            raise LaneUnavailable("no lane for this Redis URL")
        return self._lane

    # -- outflow --------------------------------------------------------------------------------

    def admit(self, config: QueueConfig, now: datetime) -> AdmitResult:
        body = self._run(
            self._admit,
            config.event_id,
            [
                _ms(now),
                _ms(config.sale_opens_at),
                _ms(config.closes_at),
                config.max_admitted,
                config.admissions_per_minute,
                int(config.admission_ttl.total_seconds() * 1000),
                int(config.grace.total_seconds() * 1000),
                MAX_PARKED_PER_STEP,
                int(OUTFLOW_WINDOW.total_seconds() * 1000),
                BUCKET_SECONDS,
            ],
        )
        result = json.loads(body)
        return AdmitResult(
            admitted=int(result.get("admitted", 0)),
            expired=int(result.get("expired", 0)),
            parked=int(result.get("parked", 0)),
            needs_shuffle=bool(result.get("needs_shuffle", 0)),
        )

    def extend_admission(self, event_id: int, wallet: str, until: datetime) -> None:
        self._run(self._extend, event_id, [wallet, _ms(until)])

    def finish(self, event_id: int, wallet: str, now: datetime) -> None:
        self._run(self._finish, event_id, [wallet])

    # -- the pre-sale shuffle -------------------------------------------------------------------

    def begin_shuffle(self, event_id: int, now: datetime, owner: str) -> list[str] | None:
        outcome, wallets = self._run(
            self._begin_shuffle,
            event_id,
            [_ms(now), owner, int(SHUFFLE_LEASE.total_seconds() * 1000)],
        )
        return list(wallets) if outcome == "go" else None

    def commit_shuffle(
        self, event_id: int, owner: str, seed: str, order: Sequence[str], now: datetime
    ) -> bool:
        done = self._run(self._commit_shuffle, event_id, [owner, seed, _ms(now), *order])
        return bool(done)

    def shuffle_record(self, event_id: int) -> ShuffleRecord | None:
        ctl, _entries, _pre, _wait, _adm, _out, order = self.keys(event_id)
        seed, shuffled_at = self._guard(lambda: self._redis.hmget(ctl, "seed", "shuffled_at"))
        if seed is None or shuffled_at is None:
            return None
        wallets = self._guard(lambda: self._redis.lrange(order, 0, -1))
        return ShuffleRecord(
            seed=str(seed), shuffled_at=_at(float(shuffled_at)), order=[str(w) for w in wallets]
        )

    # -- the organizer's controls ---------------------------------------------------------------

    def controls(self, event_id: int) -> Controls:
        ctl = self.keys(event_id)[0]
        paused, closed, rate, cap = self._guard(
            lambda: self._redis.hmget(ctl, "paused", "closed", "rate", "cap")
        )
        return Controls(
            paused=paused == "1",
            closed=closed == "1",
            admissions_per_minute=None if rate is None else int(rate),
            max_admitted=None if cap is None else int(cap),
        )

    def update_controls(self, event_id: int, changes: ControlChanges) -> Controls:
        fields: dict[FieldT, EncodableT] = {}
        if changes.paused is not None:
            fields["paused"] = "1" if changes.paused else "0"
        if changes.closed is not None:
            fields["closed"] = "1" if changes.closed else "0"
        if changes.admissions_per_minute is not None:
            fields["rate"] = str(changes.admissions_per_minute)
        if changes.max_admitted is not None:
            fields["cap"] = str(changes.max_admitted)
        if fields:
            ctl = self.keys(event_id)[0]
            self._guard(lambda: self._redis.hset(ctl, mapping=fields))
        return self.controls(event_id)

    def stats(self, config: QueueConfig, now: datetime) -> QueueStats:
        ctl, _entries, pre, wait, adm, out, _order = self.keys(config.event_id)
        since = _ms(now - OUTFLOW_WINDOW)

        def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zcard(wait)
            pipe.zcard(pre)
            pipe.hmget(ctl, "away", "done", "expired")
            pipe.zcount(adm, f"({_ms(now)}", "+inf")
            pipe.zcount(out, f"({since}", "+inf")
            return pipe.execute()

        waiting, presale, (away, done, expired), admitted, recent = self._guard(read)
        return QueueStats(
            waiting=int(waiting) + int(presale),
            away=int(away or 0),
            admitted=int(admitted),
            done=int(done or 0),
            expired=int(expired or 0),
            presale_unshuffled=int(presale),
            recent_admissions=int(recent),
            controls=self.controls(config.event_id),
        )

    def forget(self, event_id: int) -> None:
        """Delete every key of the event's queue (tests and benchmarks clean up with this)."""
        self._guard(lambda: self._redis.delete(*self.keys(event_id)))


def _join_args(
    config: QueueConfig, wallet: str, now: datetime, refusal: QueueError | None
) -> list[Any]:
    return [
        wallet,
        _ms(now),
        _ms(config.sale_opens_at),
        "1" if refusal is not None else "0",
        int(TOUCH_EVERY.total_seconds() * 1000),
        int(OUTFLOW_WINDOW.total_seconds() * 1000),
        POST_START_RANK_BASE,
    ]


def _joined(
    config: QueueConfig, wallet: str, outcome: str, body: str, refusal: QueueError | None
) -> Place:
    if outcome == "refused" and refusal is not None:
        raise refusal
    if outcome == "closed":
        raise QueueClosed(config.event_id, "the organizer has closed this queue")
    return _place(wallet, body, config.max_admitted)


def _place_args(wallet: str, now: datetime, touch: bool) -> list[Any]:
    return [
        wallet,
        _ms(now),
        "1" if touch else "0",
        int(TOUCH_EVERY.total_seconds() * 1000),
        int(OUTFLOW_WINDOW.total_seconds() * 1000),
    ]


def _place(wallet: str, body: str, default_cap: int) -> Place:
    e = json.loads(body)
    rank = int(e["r"])
    position = int(e["pos"])
    admitted, cap = int(e.get("adm", -1)), int(e.get("cap", -1))
    free_slots = None if admitted < 0 else (cap if cap >= 0 else default_cap) - admitted
    return Place(
        wallet=wallet,
        seq=int(e["q"]),
        state=str(e["s"]),
        presale=bool(e["p"]),
        rank=rank or None,
        joined_at=_at(e["j"]),
        last_seen_at=_at(e["l"]),
        admitted_at=_at(e["a"]) if e["a"] else None,
        admission_expires_at=_at(e["x"]) if e["x"] else None,
        position=None if position < 0 else position,
        recent_admissions=int(e["recent"]),
        paused=bool(e["paused"]),
        free_slots=free_slots,
    )


class RedisQueueStores:
    """One Redis store shared by every unit of work (Redis needs no transaction of ours)."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "fairtix", socket_timeout: float = 5) -> None:
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
        # One for everything this process asks Redis, the session copy and the lane included.
        self.breaker = RedisBreaker()
        # The fast lane's non-blocking connection (None: the URL asks for TLS or a socket).
        self.lane = RedisLane.from_url(url, self.breaker, socket_timeout)
        self.store = RedisQueueStore(self._client, prefix, self.breaker, self.lane)

    @property
    def client(self) -> redis.Redis:
        return self._client

    @contextmanager
    def unit(self) -> Iterator[RedisQueueStore]:
        yield self.store

    def within(self, session: Session) -> RedisQueueStore:
        return self.store

    def close(self) -> None:
        self._client.close()
