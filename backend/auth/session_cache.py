"""A write-through copy of bearer sessions in Redis, so the waiting room's hot path (a wallet's
first join) can tell who is asking without a database round trip.

The database stays the record: every session is written there first and this copy only ever
answers for sessions the database issued. Sign-in writes the copy after its transaction commits;
sign-out writes a tombstone *before* revoking in the database, so once a logout has answered, no
replica can accept the token from the copy. A miss (Redis flushed, a session older than the copy)
falls back to the database, which refills the copy with SET NX: a fill can never overwrite a
tombstone, so a sign-out that races a fill still wins.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import redis

from backend.auth.errors import NotAuthenticated
from backend.queue.breaker import RedisBreaker
from backend.queue.redis_lane import LaneUnavailable, RedisLane

log = logging.getLogger("fairtix.auth")

_REVOKED = "revoked"
# A tombstone outlives any session it could shadow (sessions last hours, not days).
TOMBSTONE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class CachedSession:
    address: str
    expires_at: float  # unix seconds
    revoked: bool = False


_TOMBSTONE = CachedSession(address="", expires_at=0.0, revoked=True)


class SessionCache(Protocol):
    def remember(self, token: str, address: str, expires_at: datetime) -> None:
        """A session the database just issued (or was asked about and confirmed)."""

    def forget(self, token: str) -> None:
        """A session about to be revoked. Raises if the copy can't be updated, so the caller
        refuses the sign-out rather than leave the copy accepting a dead token."""

    def lookup(self, token: str) -> CachedSession | None:
        """The session (``revoked`` if signed out), or None when only the database knows."""

    async def lookup_on_lane(self, token: str) -> CachedSession | None:
        """``lookup`` without blocking the event loop (backend/queue/redis_lane.py); raises
        LaneUnavailable when it can't, and the caller takes the blocking path."""


class NoSessionCache:
    """The embedded profile: the SQL waiting room asks the database anyway."""

    def remember(self, token: str, address: str, expires_at: datetime) -> None:
        return None

    def forget(self, token: str) -> None:
        return None

    def lookup(self, token: str) -> CachedSession | None:
        return None

    async def lookup_on_lane(self, token: str) -> CachedSession | None:
        return None


class RedisSessionCache:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        breaker: RedisBreaker | None = None,
        lane: RedisLane | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._breaker = breaker or RedisBreaker()
        self._lane = lane

    def _key(self, token: str) -> str:
        # Only the token's hash is stored, as in the database: a Redis dump leaks no session.
        return f"{self._prefix}:session:{hashlib.sha256(token.encode()).hexdigest()}"

    def remember(self, token: str, address: str, expires_at: datetime) -> None:
        ttl = int(expires_at.timestamp() - datetime.now(expires_at.tzinfo).timestamp())
        if ttl <= 0:
            return
        try:
            # NX: a tombstone written by a sign-out is never overwritten.
            value = f"{address}|{expires_at.timestamp()}"
            key = self._key(token)
            self._breaker.call(lambda: self._client.set(key, value, ex=ttl, nx=True))
        except redis.RedisError as exc:
            # The copy is an optimisation: a miss falls back to the database.
            log.warning("session cache write failed", extra={"error": str(exc)})

    def forget(self, token: str) -> None:
        key = self._key(token)
        self._breaker.call(lambda: self._client.set(key, _REVOKED, ex=TOMBSTONE_SECONDS))

    def lookup(self, token: str) -> CachedSession | None:
        try:
            key = self._key(token)
            value = self._breaker.call(lambda: self._client.get(key))
        except redis.RedisError as exc:
            log.warning("session cache read failed", extra={"error": str(exc)})
            return None
        return _parsed(value)

    async def lookup_on_lane(self, token: str) -> CachedSession | None:
        if self._lane is None:
            raise LaneUnavailable("no lane for this Redis URL")
        return _parsed(await self._lane.call("GET", self._key(token)))


def _parsed(value: object) -> CachedSession | None:
    if value is None:
        return None
    if value == _REVOKED:
        return _TOMBSTONE
    address, _, expires = str(value).partition("|")
    try:
        return CachedSession(address=address, expires_at=float(expires))
    except ValueError:
        # Not a value this module wrote: a miss, and the database answers.
        log.warning("session cache value not understood; asking the database")
        return None


def wallet_from_copy(cache: SessionCache, token: str) -> str | None:
    """The wallet of a bearer session the copy knows (None: ask the database). A session the
    copy holds as signed out or expired is refused here, as the database would refuse it."""
    return wallet_of(cache.lookup(token))


def wallet_of(shared: CachedSession | None) -> str | None:
    """The wallet of a session the copy returned; raises for one signed out or expired."""
    if shared is None:
        return None
    if shared.revoked:
        raise NotAuthenticated("the session is unknown or was signed out")
    if shared.expires_at <= time.time():
        raise NotAuthenticated("the session has expired; sign in again")
    return shared.address
