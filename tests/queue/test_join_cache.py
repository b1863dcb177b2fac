"""The per-process caches that let a join skip the database, and their limits."""

from __future__ import annotations

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import update
from sqlalchemy.orm import Session

from backend.catalog.models import Tier
from backend.queue import service as queue_service
from backend.runtime import Runtime
from tests.helpers import make_event, signed_in

pytestmark = pytest.mark.db


def test_repeated_join_answers_without_a_database_round_trip(
    client: TestClient, admin: Account, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What is cached, not for how long: with the 1-second seat cache, a machine slow enough
    # (the PostgreSQL pass beside the SQLite suite) let it lapse between the two joins.
    for ttl in ("SEATS_LEFT_CACHE_SECONDS", "BEARER_CACHE_SECONDS", "CONFIG_CACHE_SECONDS"):
        monkeypatch.setattr(queue_service, ttl, 60.0)
    event = make_event(signed_in(client, admin))
    buyer = signed_in(client)
    first = buyer.join_queue(event["id"])
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sa_event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        again = buyer.join_queue(event["id"])
    finally:
        sa_event.remove(runtime.engine, "before_cursor_execute", record)

    assert again["position"] == first["position"]
    # Only principal-free work remained: no session lookup, no seat check.
    assert not [s for s in statements if "auth_sessions" in s or "tiers" in s]


def test_sold_out_is_never_served_from_the_cache(
    client: TestClient, admin: Account, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = make_event(signed_in(client, admin), supply=1)
    signed_in(client).join_queue(event["id"])  # caches "seats left" for this event
    monkeypatch.setattr(queue_service, "SEATS_LEFT_CACHE_SECONDS", 0.0)
    runtime.queue._seats_left_until.clear()
    with Session(runtime.engine) as session, session.begin():
        session.execute(update(Tier).where(Tier.event_id == event["id"]).values(reserved=1))

    late = signed_in(client)
    response = client.post(
        f"/events/{event['id']}/queue", headers={"Authorization": f"Bearer {late.token}"}
    )

    assert response.status_code == 409, response.text
    assert "sold out" in response.json()["detail"]
