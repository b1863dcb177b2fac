"""What only the Redis store has to show: its state outlives the API process that wrote it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from backend.queue import service
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


def test_an_unreachable_redis_is_a_503_problem_not_a_crash() -> None:
    down = RedisQueueStores("redis://127.0.0.1:1/0", "nowhere")
    with pytest.raises(QueueUnavailable), down.unit() as store:
        store.join(CONFIG, wallet(1), T0, None)
    down.close()
