"""Failing fast while Redis does not answer.

The waiting room's Redis calls (and the bearer-session copy's) run on the API's event loop:
a Redis that hangs instead of refusing would hold every request of the process for the
client's socket timeout, call after call. After one call fails to get an answer, the breaker
answers the calls of the next ``cool_down`` seconds itself, with the same error at once; then
one call is let through to find out whether Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("fairtix.queue")

T = TypeVar("T")
COOL_DOWN_SECONDS = 2.0


class RedisNotAnswering(redis.ConnectionError):
    """Raised without asking Redis: it failed to answer moments ago. A ``ConnectionError``, so
    every caller already handles it as Redis being unreachable."""


class RedisBreaker:
    def __init__(
        self, cool_down: float = COOL_DOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cool_down = cool_down
        self._clock = clock
        self._open_until = 0.0

    def call(self, command: Callable[[], T]) -> T:
        if self.is_open():
            raise RedisNotAnswering("Redis did not answer a moment ago; not asked again yet")
        try:
            return command()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.trip(exc)
            raise

    def is_open(self) -> bool:
        """True while calls are answered here, without asking Redis."""
        return self._clock() < self._open_until

    def trip(self, error: BaseException) -> None:
        """Redis failed to answer: fail fast for the next ``cool_down`` seconds. Also called by
        the non-blocking lane (backend/queue/redis_lane.py), so both paths share one view."""
        # A float store is atomic: threads tripping it together only agree on the time.
        self._open_until = self._clock() + self._cool_down
        log.warning(
            "redis not answering; failing fast",
            extra={"error": f"{type(error).__name__}: {error}", "seconds": self._cool_down},
        )
