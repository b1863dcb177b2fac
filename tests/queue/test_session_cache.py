"""The Redis copy of bearer sessions: a new wallet's join on the Redis store needs no database,
and a sign-out is final on every replica the moment it answers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event

from backend.app import create_app
from backend.auth.session_cache import RedisSessionCache
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.runtime import Runtime
from tests.conftest import TEST_SERVER
from tests.e2e.test_bad_input import assert_problem
from tests.helpers import make_event, signed_in
from tests.queue.conftest import drop_prefix, redis_or_skip

pytestmark = pytest.mark.db


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis_or_skip()
    yield client
    client.close()


@pytest.fixture
def redis_app(
    settings: Settings, chain: ChainClient, redis_client: redis.Redis
) -> Iterator[TestClient]:
    settings.queue_store = "redis"
    settings.queue_redis_prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    try:
        with TestClient(create_app(settings, chain=chain), base_url=TEST_SERVER) as client:
            yield client
    finally:
        drop_prefix(redis_client, settings.queue_redis_prefix)


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _key(settings: Settings, token: str) -> str:
    return f"{settings.queue_redis_prefix}:session:{hashlib.sha256(token.encode()).hexdigest()}"


def _database_statements(runtime: Runtime) -> tuple[list[str], object]:
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sa_event.listen(runtime.engine, "before_cursor_execute", record)
    return statements, record


def test_a_new_wallets_first_join_never_reaches_the_database(
    redis_app: TestClient, admin: LocalAccount, settings: Settings, redis_client: redis.Redis
) -> None:
    runtime = _runtime(redis_app)
    event = make_event(signed_in(redis_app, admin))
    signed_in(redis_app).join_queue(event["id"])  # loads the event's config and "seats left"
    newcomer = signed_in(redis_app)
    # Sign-in wrote the session through: only its hash is in Redis.
    stored = redis_client.get(_key(settings, newcomer.token))
    assert stored is not None and str(stored).startswith(newcomer.wallet.address.lower() + "|")
    assert redis_client.ttl(_key(settings, newcomer.token)) > 0

    statements, record = _database_statements(runtime)
    try:
        joined = newcomer.join_queue(event["id"])
    finally:
        sa_event.remove(runtime.engine, "before_cursor_execute", record)

    assert joined["wallet"] == newcomer.wallet.address.lower()
    assert statements == []


def test_sign_out_is_final_even_for_a_replica_that_only_asks_redis(
    redis_app: TestClient, admin: LocalAccount, settings: Settings, redis_client: redis.Redis
) -> None:
    runtime = _runtime(redis_app)
    event = make_event(signed_in(redis_app, admin))
    buyer = signed_in(redis_app)
    headers = {"Authorization": f"Bearer {buyer.token}"}

    assert redis_app.post("/auth/logout", headers=headers).status_code == 204
    assert redis_client.get(_key(settings, buyer.token)) == "revoked"
    runtime.queue._bearers.clear()  # another replica: nothing cached in its process

    assert_problem(
        redis_app.post(f"/events/{event['id']}/queue", headers=headers), 401, "not-authenticated"
    )


def test_a_miss_falls_back_to_the_database_and_refills_without_beating_a_tombstone(
    redis_app: TestClient, admin: LocalAccount, settings: Settings, redis_client: redis.Redis
) -> None:
    runtime = _runtime(redis_app)
    event = make_event(signed_in(redis_app, admin))
    buyer = signed_in(redis_app)
    redis_client.delete(_key(settings, buyer.token))  # e.g. Redis was flushed

    assert buyer.join_queue(event["id"])["wallet"] == buyer.wallet.address.lower()
    assert str(redis_client.get(_key(settings, buyer.token))).startswith(
        buyer.wallet.address.lower()
    )

    # A fill that raced a sign-out must not resurrect the session.
    cache = runtime.queue.session_cache
    cache.forget(buyer.token)
    later = datetime.now(UTC) + timedelta(hours=1)
    cache.remember(buyer.token, buyer.wallet.address.lower(), later)
    looked_up = cache.lookup(buyer.token)
    assert looked_up is not None and looked_up.revoked


def test_sign_out_refuses_when_redis_is_unreachable_and_the_session_survives(
    redis_app: TestClient, admin: LocalAccount, settings: Settings
) -> None:
    runtime = _runtime(redis_app)
    buyer = signed_in(redis_app)
    headers = {"Authorization": f"Bearer {buyer.token}"}
    working = runtime.queue.session_cache
    runtime.queue.session_cache = RedisSessionCache(
        redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
        settings.queue_redis_prefix,
    )
    try:
        assert_problem(
            redis_app.post("/auth/logout", headers=headers), 503, "session-store-unavailable"
        )
    finally:
        runtime.queue.session_cache = working
    assert redis_app.get("/auth/me", headers=headers).status_code == 200


def test_an_expired_session_in_the_copy_is_refused(
    redis_app: TestClient, admin: LocalAccount, settings: Settings, redis_client: redis.Redis
) -> None:
    runtime = _runtime(redis_app)
    event = make_event(signed_in(redis_app, admin))
    buyer = signed_in(redis_app)
    key = _key(settings, buyer.token)
    redis_client.set(key, f"{buyer.wallet.address.lower()}|{datetime.now(UTC).timestamp() - 1}")
    runtime.queue._bearers.clear()

    response = redis_app.post(
        f"/events/{event['id']}/queue", headers={"Authorization": f"Bearer {buyer.token}"}
    )

    assert_problem(response, 401, "not-authenticated")
    assert "expired" in response.json()["detail"]


def test_buyer_routes_read_the_copy_and_refuse_a_signed_out_session(
    redis_app: TestClient, admin: LocalAccount, settings: Settings, redis_client: redis.Redis
) -> None:
    runtime = _runtime(redis_app)
    buyer = signed_in(redis_app)
    headers = {"Authorization": f"Bearer {buyer.token}"}
    statements, record = _database_statements(runtime)
    try:
        assert redis_app.get("/me/tickets", headers=headers).status_code == 200
    finally:
        sa_event.remove(runtime.engine, "before_cursor_execute", record)
    # Who is asking came from Redis: the only query is the ticket list itself.
    assert not [s for s in statements if "auth_sessions" in s]

    assert redis_app.post("/auth/logout", headers=headers).status_code == 204
    assert_problem(redis_app.get("/me/tickets", headers=headers), 401, "not-authenticated")
    assert_problem(redis_app.get("/orders/1", headers=headers), 401, "not-authenticated")
