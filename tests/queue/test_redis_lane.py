"""The fast lane's non-blocking Redis connection: replies paired with their requests under
concurrency, the same places as the blocking store, and every failure (refused, silent, a script
Redis lost, a URL it does not speak) turned into "take the blocking path", never a hang."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import uvloop

from backend.auth.session_cache import RedisSessionCache
from backend.queue import redis_scripts
from backend.queue.breaker import RedisBreaker
from backend.queue.redis_lane import LaneReplyError, LaneUnavailable, RedisLane, lane_address
from backend.queue.redis_store import RedisQueueStores
from backend.queue.store import QueueConfig
from tests.queue.conftest import REDIS_URL, T0, drop_prefix, redis_or_skip
from tests.queue.test_redis_store import hung_redis


@pytest.fixture
def prefix() -> Iterator[str]:
    client = redis_or_skip()
    name = f"fairtix-lane-{uuid.uuid4().hex[:12]}"
    yield name
    drop_prefix(client, name)
    client.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    """Both loops: the standard one (tests) and uvloop (what uvicorn serves with)."""
    return str(request.param)


def _run_on_lane(lane: RedisLane, scenario: object, loop_kind: str = "uvloop") -> object:
    """Run ``scenario(lane)`` on a fresh loop the lane is bound to, closing it after."""

    async def main() -> object:
        lane.bind(asyncio.get_running_loop())
        try:
            return await scenario(lane)  # type: ignore[operator]
        finally:
            await lane.aclose()

    if loop_kind == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


def test_lane_addresses() -> None:
    plain = lane_address("redis://127.0.0.1:6380/2")
    assert plain is not None and (plain.host, plain.port, plain.db) == ("127.0.0.1", 6380, 2)
    secret = lane_address("redis://fan:p%40ss@redis.internal/0")
    assert secret is not None
    assert (secret.username, secret.password, secret.port) == ("fan", "p@ss", 6379)
    # What the lane doesn't speak stays on the blocking client, which does.
    assert lane_address("rediss://redis.internal:6380/0") is None
    assert lane_address("unix:///run/redis.sock") is None
    assert lane_address("redis://127.0.0.1:6379/0?protocol=3") is None
    assert lane_address("redis://127.0.0.1:99999/0") is None


def test_concurrent_commands_each_get_their_own_reply(prefix: str, loop_kind: str) -> None:
    client = redis_or_skip()
    values = {f"{prefix}:k{i}": f"v{i}" for i in range(500)}
    client.mset(values)
    lane = RedisLane.from_url(REDIS_URL, RedisBreaker())
    assert lane is not None

    async def scenario(lane: RedisLane) -> dict[str, object]:
        keys = list(values)
        replies = await asyncio.gather(*(lane.call("GET", key) for key in keys))
        return dict(zip(keys, replies, strict=True))

    assert _run_on_lane(lane, scenario, loop_kind) == values


def test_the_lane_selects_the_urls_database(prefix: str) -> None:
    other_db = redis.Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + "/3", decode_responses=True)
    other_db.set(f"{prefix}:where", "db3", ex=60)
    try:
        lane = RedisLane.from_url(REDIS_URL.rsplit("/", 1)[0] + "/3", RedisBreaker())
        assert lane is not None

        async def scenario(lane: RedisLane) -> object:
            return await lane.call("GET", f"{prefix}:where")

        assert _run_on_lane(lane, scenario) == "db3"
    finally:
        other_db.delete(f"{prefix}:where")
        other_db.close()


def test_places_on_the_lane_match_the_blocking_store(prefix: str, loop_kind: str) -> None:
    redis_or_skip()
    stores = RedisQueueStores(REDIS_URL, prefix)
    store = stores.store
    config = QueueConfig(
        event_id=7,
        queue_opens_at=T0 - timedelta(hours=1),
        sale_opens_at=T0 - timedelta(minutes=1),
        closes_at=T0 + timedelta(days=1),
        max_admitted=10,
        admissions_per_minute=60,
        admission_ttl=timedelta(minutes=10),
        grace=timedelta(seconds=60),
    )
    first = store.join(config, "0x" + "a" * 40, T0, None)  # loads the scripts too
    assert stores.lane is not None

    async def scenario(lane: RedisLane) -> object:
        joined = await store.join_on_lane(config, "0x" + "b" * 40, T0, None)
        again = await store.join_on_lane(config, "0x" + "a" * 40, T0, None)
        seen = await store.place_on_lane(config, "0x" + "b" * 40, T0, touch=True)
        missing = await store.place_on_lane(config, "0x" + "c" * 40, T0, touch=True)
        return joined, again, seen, missing

    joined, again, seen, missing = _run_on_lane(stores.lane, scenario, loop_kind)  # type: ignore[misc]
    assert again == first
    assert joined.seq == first.seq + 1 and joined.position == 1
    assert seen == store.place(config, "0x" + "b" * 40, T0, touch=False)
    assert missing is None
    stores.close()


def test_a_script_redis_lost_is_a_reply_error_not_a_hang(prefix: str) -> None:
    client = redis_or_skip()
    lane = RedisLane.from_url(REDIS_URL, RedisBreaker())
    assert lane is not None
    sha = client.script_load(redis_scripts.FINISH)
    unknown = "0" * 40  # what EVALSHA meets after a Redis restart: no such script

    async def scenario(lane: RedisLane) -> object:
        with pytest.raises(LaneReplyError, match="NOSCRIPT"):
            await lane.evalsha(unknown, [f"{prefix}:k"] * 7, ["w"])
        # The connection is still good: the next command is answered.
        return await lane.evalsha(sha, [f"{prefix}:k{i}" for i in range(7)], ["w"])

    assert _run_on_lane(lane, scenario) == 1


def test_a_refused_connection_trips_the_breaker() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    breaker = RedisBreaker()
    lane = RedisLane.from_url(f"redis://127.0.0.1:{port}/0", breaker, timeout=1.0)
    assert lane is not None

    async def scenario(lane: RedisLane) -> object:
        with pytest.raises(LaneUnavailable):
            await lane.call("PING")
        assert breaker.is_open()
        # While it is open the lane doesn't even try.
        with pytest.raises(LaneUnavailable, match="a moment ago"):
            await lane.call("PING")
        return None

    _run_on_lane(lane, scenario)


def test_a_silent_redis_fails_every_waiting_command_after_the_timeout(loop_kind: str) -> None:
    """A server that takes the connection and never answers (a hung Redis)."""
    breaker = RedisBreaker()

    async def scenario(lane: RedisLane) -> object:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcomes = await asyncio.gather(
            *(lane.call("GET", f"k{i}") for i in range(20)), return_exceptions=True
        )
        return loop.time() - started, outcomes

    with hung_redis() as url:
        lane = RedisLane.from_url(url, breaker, timeout=0.3)
        assert lane is not None
        waited, outcomes = _run_on_lane(lane, scenario, loop_kind)  # type: ignore[misc]
    assert all(isinstance(outcome, LaneUnavailable) for outcome in outcomes)
    assert 0.3 <= waited < 2.0
    assert breaker.is_open()


def test_the_lane_refuses_a_loop_it_was_not_bound_to() -> None:
    lane = RedisLane.from_url(REDIS_URL, RedisBreaker())
    assert lane is not None

    async def unbound() -> None:
        with pytest.raises(LaneUnavailable, match="own event loop"):
            await lane.call("PING")

    asyncio.run(unbound())


def test_a_refused_handshake_turns_the_lane_off() -> None:
    """A password Redis doesn't take is a setting to fix, not an outage: the lane stays off
    (no reconnecting on every request) and the blocking client reports it on the route."""
    redis_or_skip()
    breaker = RedisBreaker()
    lane = RedisLane.from_url(REDIS_URL.replace("redis://", "redis://:wrong-password@"), breaker)
    assert lane is not None

    async def scenario(lane: RedisLane) -> object:
        for _ in range(2):
            with pytest.raises(LaneUnavailable, match="handshake"):
                await lane.call("PING")
        return None

    _run_on_lane(lane, scenario)
    assert not breaker.is_open()


def test_a_silent_redis_during_the_handshake_is_given_up_on() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    breaker = RedisBreaker()
    lane = RedisLane.from_url(f"redis://127.0.0.1:{listener.getsockname()[1]}/3", breaker, 0.3)
    assert lane is not None

    async def scenario(lane: RedisLane) -> object:
        with pytest.raises(LaneUnavailable):
            await lane.call("PING")
        return None

    try:
        _run_on_lane(lane, scenario)
    finally:
        listener.close()
    assert breaker.is_open()


def test_a_session_copy_value_it_did_not_write_is_a_miss(prefix: str) -> None:
    client = redis_or_skip()
    cache = RedisSessionCache(client, prefix)
    client.set(cache._key("token"), "not-a-session", ex=60)
    assert cache.lookup("token") is None  # the database answers instead
