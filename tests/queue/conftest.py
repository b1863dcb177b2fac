"""Fixtures for the waiting room: each store, on a fresh database (and a fresh Redis key prefix)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.queue import service
from backend.queue.errors import QueueError
from backend.queue.redis_store import RedisQueueStores
from backend.queue.sql_store import SqlQueueStores
from backend.queue.store import AdmitResult, Place, QueueConfig, QueueStores
from tests.helpers import insert_event

REDIS_URL = os.environ.get("FAIRTIX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # the sale opens


def redis_or_skip() -> redis.Redis:
    """A client of the test Redis; skip without one, except under CI where it must be there."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@dataclass
class Queue:
    """One event's queue on one store, driven with explicit times."""

    stores: QueueStores
    sessions: sessionmaker[Session]
    config: QueueConfig

    def join(self, wallet: str, now: datetime, refusal: QueueError | None = None) -> Place:
        with self.stores.unit() as store:
            return store.join(self.config, wallet, now, refusal)

    def place(self, wallet: str, now: datetime, *, touch: bool = True) -> Place | None:
        with self.stores.unit() as store:
            return store.place(self.config, wallet, now, touch=touch)

    def state(self, wallet: str, now: datetime) -> str:
        place = self.place(wallet, now, touch=False)
        assert place is not None
        return place.state

    def advance(self, now: datetime) -> AdmitResult:
        with self.stores.unit() as store:
            return service.advance(store, self.config, now)

    def with_config(self, **changes: object) -> Queue:
        return replace(self, config=replace(self.config, **changes))  # type: ignore[arg-type]


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["sql", "redis"])
def stores(
    request: pytest.FixtureRequest, sessions: sessionmaker[Session]
) -> Iterator[QueueStores]:
    if request.param == "sql":
        yield SqlQueueStores(sessions)
        return
    client = redis_or_skip()
    prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    redis_stores = RedisQueueStores(REDIS_URL, prefix)
    try:
        yield redis_stores
    finally:
        redis_stores.close()
        drop_prefix(client, prefix)
        client.close()


@pytest.fixture
def queue(stores: QueueStores, sessions: sessionmaker[Session]) -> Queue:
    """An event whose sale opens at T0: cap 2, 600 a minute, 10-minute admissions, 1 h grace."""
    with transaction(sessions) as session:
        event_id = insert_event(session, sale_opens_at=T0, max_admitted=2, supply=100).id
    return Queue(stores, sessions, make_config(event_id))


def make_config(event_id: int) -> QueueConfig:
    return QueueConfig(
        event_id=event_id,
        queue_opens_at=T0 - timedelta(days=1),
        sale_opens_at=T0,
        closes_at=T0 + timedelta(days=1),
        max_admitted=2,
        admissions_per_minute=600,
        admission_ttl=timedelta(minutes=10),
        grace=timedelta(hours=1),
    )
