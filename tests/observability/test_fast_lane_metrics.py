"""Answers the waiting room's fast lane gives before routing are counted under their route's
template, not as unmatched: they are the on-sale's most frequent requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.queue.fast_lane import QueueFastLane
from backend.queue.service import QueueStatus
from tests.helpers import make_event, signed_in
from tests.observability.metrics_text import value
from tests.queue.conftest import drop_prefix, redis_or_skip

pytestmark = pytest.mark.db


@pytest.fixture
def redis_app(settings: Settings, chain: ChainClient) -> Iterator[TestClient]:
    redis_client = redis_or_skip()
    prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    redis_settings = settings.model_copy(
        update={"queue_store": "redis", "queue_redis_prefix": prefix, "rate_limit_store": "redis"}
    )
    app = create_app(redis_settings, chain=chain)
    try:
        with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 50000)) as client:
            yield client
    finally:
        drop_prefix(redis_client, prefix)
        redis_client.close()


def test_fast_lane_polls_count_under_the_status_route(
    redis_app: TestClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[QueueStatus | None] = []
    original = QueueFastLane._inline

    async def recording(self: QueueFastLane, scope: Any) -> QueueStatus | None:
        decision = await original(self, scope)
        answered.append(decision)
        return decision

    monkeypatch.setattr(QueueFastLane, "_inline", recording)
    client = redis_app
    event = make_event(signed_in(client, admin), max_admitted=1)
    signed_in(client).join_queue(event["id"])
    token = signed_in(client).join_queue(event["id"])["token"]
    path = f"/events/{event['id']}/queue/me"

    def counted(route: str) -> float:
        text = client.get("/metrics").text
        return value(text, "fairtix_http_requests_total", route=route, status="200") or 0.0

    before, unmatched = counted("/events/{event_id}/queue/me"), counted("unmatched")
    answered.clear()
    for _ in range(4):
        poll = client.get(path, headers={"X-Queue-Token": token, "X-Request-ID": "fast-1"})
        assert poll.status_code == 200
        assert poll.headers["x-request-id"] == "fast-1"
    # The lane may hand a poll to the route now and then (an admission step due): both count
    # under the same template.
    assert any(decision is not None for decision in answered), "the lane never answered"
    assert counted("/events/{event_id}/queue/me") == before + 4
    assert counted("unmatched") == unmatched
