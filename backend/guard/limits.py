"""Rate limits per client and per wallet, and caps on concurrent live streams.

The counting is the ``limits`` library's (sliding-window counters), kept in Redis when the
deployment has one, so every API replica draws from the same budget, or in this process's
memory on the embedded profile (one process, nothing to share with). A limit reached is
:class:`RateLimited` with the seconds until the window lets the next request through.

If Redis is unreachable the limits fail open, logged: refusing every fan because the limiter
is down would turn a degraded limiter into an outage of the sale.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Protocol, cast

from limits import RateLimitItem, WindowStats, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from backend.config import Settings
from backend.guard.errors import RateLimited, TooManyStreams

log = logging.getLogger("fairtix.guard")

# Sign-in is the one anonymous route that writes a row (the nonce), so it has its own budget.
SIGN_IN_PATHS = frozenset({"/auth/nonce", "/auth/verify"})
# Probes and signed provider webhooks: never throttled by client (a provider's deliveries all
# come from a few addresses, and each is verified before it does anything).
# Scanner devices: a venue's gates usually reach us from one NAT address, ten gates or more at
# several scans a second each, so they draw from their own, larger budget
# (FAIRTIX_RATE_LIMIT_DOOR) instead of the client's; every door request needs a device credential.
DOOR_PATH_PREFIX = "/door/"
UNLIMITED_PATHS = frozenset(
    {"/livez", "/health", "/metrics", "/payments/stripe/webhook", "/payments/paypal/webhook"}
)


@lru_cache(maxsize=65_536)
def client_key(host: str | None) -> str:
    """The budget a client address draws from: the address itself for IPv4, its /64 for IPv6
    (one subscriber gets a whole /64, so single IPv6 addresses cost an attacker nothing).
    Remembered: parsing the address was half of what counting a request cost."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a test client's name, or a unix socket
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class _Rule:
    name: str  # for the problem's detail: what is limited
    items: tuple[RateLimitItem, ...]
    text: str


class StreamSlots(Protocol):
    """Counts live streams per key across every replica; a slot expires on its own after
    ``ttl`` seconds, so a replica that dies holding slots can't keep a fan out for long."""

    def acquire(self, key: str, cap: int, ttl: float) -> str | None: ...

    def release(self, key: str, slot: str) -> None: ...


class MemoryStreamSlots:
    def __init__(self) -> None:
        self._slots: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, cap: int, ttl: float) -> str | None:
        now = time.monotonic()
        with self._lock:
            held = {s: t for s, t in self._slots.get(key, {}).items() if t > now}
            if len(held) >= cap:
                self._slots[key] = held
                return None
            slot = uuid.uuid4().hex
            held[slot] = now + ttl
            self._slots[key] = held
            return slot

    def release(self, key: str, slot: str) -> None:
        with self._lock:
            held = self._slots.get(key)
            if held is not None:
                held.pop(slot, None)
                if not held:
                    del self._slots[key]


# One sorted set per key, members scored by their expiry: expired slots are dropped and the
# cap checked and taken in one atomic step, so two replicas can't both take the last slot.
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""


class RedisStreamSlots:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._prefix = prefix

    def acquire(self, key: str, cap: int, ttl: float) -> str | None:
        slot = uuid.uuid4().hex
        taken = self._acquire(keys=[self._prefix + key], args=[time.time(), cap, ttl, slot])
        return slot if taken else None

    def release(self, key: str, slot: str) -> None:
        self._redis.zrem(self._prefix + key, slot)


class StreamHold:
    """The slots one live stream holds; ``release`` gives them back (once, however often it is
    called)."""

    def __init__(self, limits: RateLimits) -> None:
        self._limits = limits
        self.held: list[tuple[str, str]] = []

    def release(self) -> None:
        held, self.held = self.held, []
        for key, slot in held:
            self._limits.release_slot(key, slot)


# Set in a request's scope by a fast lane that already counted the request against its wallet's
# budget and then left it to the route (backend/deps.py): counted once, not twice.
WALLET_COUNTED = "fairtix.wallet_counted"


class RateLimits:
    """The deployment's limits (``FAIRTIX_RATE_LIMIT_*``), checked by the request guard and the
    routes that know the signed-in wallet."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        self._client = _Rule("a client address", *_parse(settings.rate_limit_per_client))
        self._sign_in = _Rule("sign-in from one address", *_parse(settings.rate_limit_sign_in))
        self._wallet = _Rule("one wallet", *_parse(settings.rate_limit_per_wallet))
        self._door = _Rule("scanners at one address", *_parse(settings.rate_limit_door))
        self.max_streams_per_wallet = settings.max_streams_per_wallet
        self.max_streams_per_client = settings.max_streams_per_client
        self.stream_ttl = settings.queue_stream_max_seconds + 30
        prefix = f"{settings.queue_redis_prefix}:limits:"
        storage: Storage
        self._slots: StreamSlots
        if settings.rate_limit_store == "redis":
            storage = cast(Storage, storage_from_string(settings.redis_url, key_prefix=prefix))
            self._slots = RedisStreamSlots(settings.redis_url, prefix + "streams:")
        else:
            storage = MemoryStorage()
            self._slots = MemoryStreamSlots()
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._last_failure_log = 0.0
        # This process's share of the counts (see _hit): requests not yet sent to the store,
        # and refusals still in force, by (namespace, key, limit index).
        self._pending: dict[tuple[str, str, int], int] = {}
        self._blocked: dict[tuple[str, str, int], float] = {}

    def check_client(self, host: str | None, path: str) -> None:
        """Count one request from ``host``; raise RateLimited past the client's budget."""
        if not self.enabled or path in UNLIMITED_PATHS:
            return
        key = client_key(host)
        if path.startswith(DOOR_PATH_PREFIX):
            self._hit(self._door, "door", key)
            return
        if path in SIGN_IN_PATHS:
            self._hit(self._sign_in, "sign-in", key)
        self._hit(self._client, "client", key)

    def check_wallet(self, wallet: str) -> None:
        """Count one request of a signed-in wallet; raise RateLimited past its budget."""
        if self.enabled:
            self._hit(self._wallet, "wallet", wallet)

    def hold_stream(self, host: str | None, wallet: str) -> StreamHold:
        """Take one live-stream slot of the wallet and one of the client address, for as long
        as the stream runs (release the hold when it ends); raise TooManyStreams if either has
        none left."""
        hold = StreamHold(self)
        if not self.enabled:
            return hold
        for key, cap, what in (
            (f"wallet:{wallet}", self.max_streams_per_wallet, "one wallet"),
            (f"client:{client_key(host)}", self.max_streams_per_client, "a client address"),
        ):
            slot = self._store_call(partial(self._slots.acquire, key, cap, self.stream_ttl))
            if slot is _STORE_DOWN:
                continue
            if slot is None:
                hold.release()
                raise TooManyStreams(what, cap, retry_after=5)
            assert isinstance(slot, str)
            hold.held.append((key, slot))
        return hold

    def release_slot(self, key: str, slot: str) -> None:
        self._store_call(partial(self._slots.release, key, slot))

    def _hit(self, rule: _Rule, namespace: str, key: str) -> None:
        """Count one request against each of the rule's limits.

        Counts go to the shared store in batches: a client is counted here, in this process,
        and every ``_batch_size`` requests the batch is added to the store at once. A poll every
        few seconds then costs the store nothing most of the time, and the budget still holds
        across replicas, to within a batch per replica (at most 1/64 of the limit). A refusal
        is remembered here until its window lets requests through again, so a flood past its
        limit costs the store nothing either."""
        now = time.monotonic()
        for index, item in enumerate(rule.items):
            ident = (namespace, key, index)
            blocked = self._blocked.get(ident)
            if blocked is not None and blocked > now:
                raise RateLimited(rule.name, rule.text, math.ceil(blocked - now))
            batch = _batch_size(item)
            if batch > 1:
                pending = self._pending.get(ident, 0) + 1
                if pending < batch:
                    self._bounded(self._pending)[ident] = pending
                    continue
                self._pending.pop(ident, None)
            else:
                pending = 1
            hit = partial(self._limiter.hit, item, namespace, key, cost=pending)
            allowed = self._store_call(hit)
            if allowed is _STORE_DOWN or allowed:
                continue
            stats = self._store_call(partial(self._limiter.get_window_stats, item, namespace, key))
            retry_after = 1
            if isinstance(stats, WindowStats):
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            self._bounded(self._blocked)[ident] = now + retry_after
            raise RateLimited(rule.name, rule.text, retry_after)

    @staticmethod
    def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
        """The cache, emptied first when it has grown past its bound (a burst of distinct
        clients can't grow it without limit; what it forgets costs only exactness)."""
        if len(cache) >= _LOCAL_ENTRIES:
            cache.clear()
        return cache

    def _store_call(self, call: Callable[[], object]) -> object:
        """Run a call on the limits' store; on a store failure log it (at most every 10 s) and
        answer _STORE_DOWN, so the caller lets the request through."""
        try:
            return call()
        except Exception as exc:
            now = time.monotonic()
            if now - self._last_failure_log > 10:
                self._last_failure_log = now
                log.warning(
                    "rate limit store unavailable; limits fail open", extra={"error": repr(exc)}
                )
            return _STORE_DOWN


_STORE_DOWN = object()
_LOCAL_ENTRIES = 100_000


def _batch_size(item: RateLimitItem) -> int:
    """Requests counted locally before they go to the store: exact (1) for small budgets such
    as sign-in's, up to 16 for large ones, never more than 1/64 of the budget."""
    return max(1, min(16, item.amount // 64))


def _parse(text: str) -> tuple[tuple[RateLimitItem, ...], str]:
    return tuple(parse_many(text)), text
