"""The waiting room's fast lane: the hottest requests answered before routing, with the same
answers as the ordinary routes, and everything it can't answer handed to them."""

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
from tests.conftest import TEST_SERVER
from tests.e2e.test_bad_input import assert_problem
from tests.helpers import make_event, signed_in
from tests.queue.conftest import drop_prefix, redis_or_skip

pytestmark = pytest.mark.db


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[QueueStatus | None]:
    """What the fast lane decided for each request: a status it answered, or None (routed)."""
    decisions: list[QueueStatus | None] = []
    original = QueueFastLane._inline

    async def recording(self: QueueFastLane, scope: Any) -> QueueStatus | None:
        decision = await original(self, scope)
        decisions.append(decision)
        return decision

    monkeypatch.setattr(QueueFastLane, "_inline", recording)
    return decisions


@pytest.fixture
def redis_client_app(settings: Settings, chain: ChainClient) -> Iterator[TestClient]:
    redis_client = redis_or_skip()
    settings.queue_store = "redis"
    settings.queue_redis_prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    settings.rate_limit_store = "redis"
    try:
        with TestClient(create_app(settings, chain=chain), base_url=TEST_SERVER) as client:
            yield client
    finally:
        drop_prefix(redis_client, settings.queue_redis_prefix)
        redis_client.close()


def test_status_polls_are_answered_in_the_fast_lane_as_the_route_answers(
    redis_client_app: TestClient, admin: Account, answered: list[QueueStatus | None]
) -> None:
    client = redis_client_app
    event = make_event(signed_in(client, admin), max_admitted=1)
    first, second = signed_in(client), signed_in(client)
    first.join_queue(event["id"])
    token = second.join_queue(event["id"])["token"]
    path = f"/events/{event['id']}/queue/me"
    # With a bearer the lane hands the poll to the route (a session may need the database).
    routed = client.get(path, headers={"Authorization": f"Bearer {second.token}"})
    assert routed.status_code == 200
    answered.clear()
    polls = [client.get(path, headers={"X-Queue-Token": token}) for _ in range(3)]
    assert any(decision is not None for decision in answered), "the lane never answered"
    for poll in polls:
        assert poll.status_code == 200
        assert poll.headers["content-type"] == "application/json"
        body = poll.json()
        assert body.keys() == routed.json().keys()
        assert (body["wallet"], body["state"], body["position"]) == (
            second.wallet.address.lower(),
            "waiting",
            0,
        )
    # The same through ?queue_token= (what EventSource clients send).
    by_query = client.get(f"{path}?queue_token={token}")
    assert by_query.status_code == 200 and by_query.json()["wallet"] == body["wallet"]


def test_what_the_lane_cannot_answer_gets_the_routes_problem(
    redis_client_app: TestClient, admin: Account, answered: list[QueueStatus | None]
) -> None:
    client = redis_client_app
    event = make_event(signed_in(client, admin))
    fan = signed_in(client)
    token = fan.join_queue(event["id"])["token"]
    path = f"/events/{event['id']}/queue/me"
    client.get(path, headers={"X-Queue-Token": token})  # the event's config is cached now
    answered.clear()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_problem(client.get(path, headers={"X-Queue-Token": forged}), 401, "invalid-queue-token")
    other = make_event(signed_in(client, admin))
    foreign = client.get(f"/events/{other['id']}/queue/me", headers={"X-Queue-Token": token})
    assert_problem(foreign, 403, "queue-token-foreign")
    assert_problem(client.get(path, headers={"Authorization": "Basic x"}), 401, "not-authenticated")
    assert answered and all(decision is None for decision in answered)


def test_joins_in_the_fast_lane_keep_one_place_per_wallet(
    redis_client_app: TestClient, admin: Account, answered: list[QueueStatus | None]
) -> None:
    client = redis_client_app
    event = make_event(signed_in(client, admin))
    fans = [signed_in(client) for _ in range(3)]
    for fan in fans:
        fan.join_queue(event["id"])
    answered.clear()
    again = [fan.join_queue(event["id"]) for fan in fans]
    assert any(decision is not None for decision in answered)
    assert [a["wallet"] for a in again] == [f.wallet.address.lower() for f in fans]
    assert sorted(a["position"] for a in again if a["state"] == "waiting") == list(
        range(len([a for a in again if a["state"] == "waiting"]))
    )


def test_the_client_limits_hold_in_the_fast_lane(
    settings: Settings, chain: ChainClient, admin: Account
) -> None:
    redis_client = redis_or_skip()
    settings.queue_store = "redis"
    settings.queue_redis_prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    settings.rate_limit_per_client = "3/minute"
    try:
        app = create_app(settings, chain=chain)
        with TestClient(app, base_url=TEST_SERVER, client=("198.51.100.1", 1)) as organizer:
            event = make_event(signed_in(organizer, admin))  # nonce, verify, create: 3
            fan_client = TestClient(app, base_url=TEST_SERVER, client=("198.51.100.2", 1))
            token = signed_in(fan_client).join_queue(event["id"])["token"]  # 3 again
            tab = TestClient(app, base_url=TEST_SERVER, client=("198.51.100.3", 1))
            path = f"/events/{event['id']}/queue/me"
            polls = [tab.get(path, headers={"X-Queue-Token": token}) for _ in range(5)]
            assert [p.status_code for p in polls] == [200, 200, 200, 429, 429]
            assert_problem(polls[-1], 429, "rate-limited")
            assert int(polls[-1].headers["Retry-After"]) >= 1
    finally:
        drop_prefix(redis_client, settings.queue_redis_prefix)
        redis_client.close()


def test_after_redis_loses_its_scripts_the_route_answers_and_the_lane_resumes(
    redis_client_app: TestClient, admin: Account, answered: list[QueueStatus | None]
) -> None:
    """What a Redis restart looks like to the lane: EVALSHA answers NOSCRIPT. The poll is then
    answered by the route (whose blocking client loads the script again), never an error."""
    client = redis_client_app
    event = make_event(signed_in(client, admin))
    fan = signed_in(client)
    token = fan.join_queue(event["id"])["token"]
    path = f"/events/{event['id']}/queue/me"
    assert client.get(path, headers={"X-Queue-Token": token}).status_code == 200
    redis_or_skip().script_flush()
    answered.clear()
    polls = [client.get(path, headers={"X-Queue-Token": token}) for _ in range(3)]
    assert [poll.status_code for poll in polls] == [200, 200, 200]
    assert {poll.json()["wallet"] for poll in polls} == {fan.wallet.address.lower()}
    # The first fell through to the route; once it reloaded the script, the lane answers again.
    assert answered[0] is None
    assert answered[-1] is not None
