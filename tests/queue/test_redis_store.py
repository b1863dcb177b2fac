"""What only the Redis store has to show: its state outlives the API process that wrote it, and
a Redis that stops answering costs one timeout, not one per call."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis

from backend.auth.session_cache import RedisSessionCache
from backend.queue import service
from backend.queue.breaker import RedisBreaker, RedisNotAnswering
from backend.queue.errors import QueueUnavailable
from backend.queue.redis_store import RedisQueueStores
from tests.helpers import wallet
from tests.queue.conftest import REDIS_URL, T0, drop_prefix, make_config, redis_or_skip

CONFIG = make_config(event_id=1)


def test_places_survive_an_api_restart() -> None:
    client = redis_or_skip()
    prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    try:
        first = RedisQueueStores(REDIS_URL, prefix)
        with first.unit() as store:
            store.join(CONFIG, wallet(1), T0, None)
            store.join(CONFIG, wallet(2), T0, None)
            service.advance(store, CONFIG, T0)
        first.close()  # the process is gone
        restarted = RedisQueueStores(REDIS_URL, prefix)
        with restarted.unit() as store:
            place = store.place(CONFIG, wallet(2), T0 + timedelta(seconds=1), touch=True)
            again = store.join(CONFIG, wallet(1), T0 + timedelta(seconds=1), None)
        restarted.close()
        assert place is not None and place.state == "admitted"
        assert again.seq == 1
    finally:
        drop_prefix(client, prefix)
        client.close()


@contextmanager
def hung_redis() -> Iterator[str]:
    """A Redis URL whose server takes connections and never answers (a hung or wedged Redis,
    the case a refused connection doesn't show)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_hung_redis_costs_one_timeout_then_calls_fail_at_once() -> None:
    with hung_redis() as url:
        stores = RedisQueueStores(url, "hung", socket_timeout=0.5)
        cache = RedisSessionCache(stores.client, "hung", stores.breaker)

        def timed(call: Callable[[], object]) -> float:
            started = time.monotonic()
            with contextlib.suppress(QueueUnavailable):
                call()
            return time.monotonic() - started

        with stores.unit() as store:
            first = timed(lambda: store.join(CONFIG, wallet(1), T0, None))
            # The calls of the cool-down are answered without Redis, the session copy's too
            # (a miss: the caller asks the database instead).
            rest = [
                timed(lambda: store.place(CONFIG, wallet(2), T0, touch=True)) for _ in range(20)
            ]
            started = time.monotonic()
            assert cache.lookup("some-token") is None
            rest.append(time.monotonic() - started)
        stores.close()
    assert first >= 0.5
    assert sum(rest) < 0.5  # 21 calls, where each used to wait out the timeout


def test_the_breaker_asks_redis_again_after_its_cool_down() -> None:
    now = [0.0]
    breaker = RedisBreaker(cool_down=2.0, clock=lambda: now[0])
    asked: list[str] = []

    def hung() -> str:
        asked.append("hung")
        raise redis.TimeoutError("Timeout reading from socket")

    with pytest.raises(redis.TimeoutError):
        breaker.call(hung)
    now[0] = 1.9
    with pytest.raises(RedisNotAnswering):
        breaker.call(lambda: asked.append("skipped") or "")
    now[0] = 2.1
    assert breaker.call(lambda: "back") == "back"
    assert asked == ["hung"]


def test_an_unreachable_redis_is_a_503_problem_not_a_crash() -> None:
    down = RedisQueueStores("redis://127.0.0.1:1/0", "nowhere")
    with pytest.raises(QueueUnavailable), down.unit() as store:
        store.join(CONFIG, wallet(1), T0, None)
    down.close()
