"""The listing lane (backend/resale/fast_lane.py, backend/resale/quick.py): a listing's two
requests answered before routing on PostgreSQL, Redis and anvil, with the answers and the rows
the routes give; everything it does not decide handed to the routes, nothing written twice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from backend.app import create_app
from backend.chain.devnet import Devnet, devnet_account
from backend.db.engine import transaction
from backend.resale import service as resale
from backend.resale.fast_lane import ListingFastLane
from backend.resale.models import Listing
from backend.runtime import Runtime
from backend.worker import Worker
from tests.chain.test_indexer_reorg import anvil_app_settings, devnet  # noqa: F401
from tests.conftest import TEST_SERVER
from tests.helpers import signed_in
from tests.queue.conftest import drop_prefix, redis_or_skip
from tests.resale.market import (
    Holding,
    holding,
    listing_body,
    notifications,
    problem,
    sell_order,
    sign_typed,
    subscribe,
)

pytestmark = [pytest.mark.anvil, pytest.mark.db]

DEADLINE_DAYS = 3


@contextmanager
def _lane_app(
    tmp_path: Path, database_url: str, rpc_url: str, **overrides: Any
) -> Iterator[TestClient]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the listing lane is PostgreSQL's (SQLite takes the routes)")
    redis_client = redis_or_skip()
    prefix = f"fairtix-test-{uuid.uuid4().hex[:12]}"
    settings = anvil_app_settings(
        tmp_path,
        database_url,
        rpc_url,
        queue_store="redis",
        queue_redis_prefix=prefix,
        rate_limit_store="redis",
        **overrides,
    )
    try:
        with TestClient(create_app(settings), base_url=TEST_SERVER) as client:
            assert client.app.state.quick_listings is not None  # type: ignore[attr-defined]
            yield client
    finally:
        drop_prefix(redis_client, prefix)
        redis_client.close()


@pytest.fixture
def lane_client(tmp_path: Path, database_url: str, devnet: Devnet) -> Iterator[TestClient]:  # noqa: F811
    with _lane_app(tmp_path, database_url, devnet.rpc_url) as client:
        yield client


@pytest.fixture
def lane_answered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Each listing request the lane saw: its path, and whether the lane answered it."""
    seen: list[tuple[str, bool]] = []
    original = ListingFastLane._answer

    async def recording(self: ListingFastLane, scope: Any, *args: Any) -> bytes | None:
        payload = await original(self, scope, *args)
        seen.append((scope["path"], payload is not None))
        return payload

    monkeypatch.setattr(ListingFastLane, "_answer", recording)
    return seen


def _routes_only(client: TestClient) -> Any:
    """Turns the lane off for the requests that follow (the app's routes answer them)."""
    state = client.app.state  # type: ignore[attr-defined]
    quick, state.quick_listings = state.quick_listings, None
    return quick


def _row(runtime: Runtime, listing_id: int) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        listing = session.get(Listing, listing_id)
        assert listing is not None
        return {attr.key: getattr(listing, attr.key) for attr in inspect(Listing).column_attrs}


@pytest.fixture
def two_held(lane_client: TestClient) -> Holding:
    """A fan holding two tickets bought with ether, on the lane's app."""
    runtime: Runtime = lane_client.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=lane_client)
    return holding(lane_client, worker, runtime.chain, devnet_account(1), quantity=2)


def test_the_lane_answers_both_requests_as_the_routes_do_and_stores_the_same_row(
    lane_client: TestClient, two_held: Holding, lane_answered: list[tuple[str, bool]]
) -> None:
    client, market = lane_client, two_held
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    event, holder, price = market.event, market.holder, market.face_wei
    first, second = market.token_ids

    # Through the lane: both requests answered there.
    lane_draft = sell_order(holder, event["id"], first, price, deadline=_deadline())
    lane_listing = holder._call(
        "POST", "/listings", json=listing_body(lane_draft["typed_data"], _sig(holder, lane_draft),
                                                event["id"]),
    )  # fmt: skip
    assert lane_answered == [("/listings/sell-order", True), ("/listings", True)]

    # The same through the routes, for the other ticket.
    quick = _routes_only(client)
    route_draft = sell_order(holder, event["id"], second, price, deadline=_deadline())
    route_listing = holder._call(
        "POST", "/listings", json=listing_body(route_draft["typed_data"],
                                                _sig(holder, route_draft), event["id"]),
    )  # fmt: skip
    client.app.state.quick_listings = quick  # type: ignore[attr-defined]
    assert len(lane_answered) == 2  # the lane left both to the routes

    # Same answers but for the ticket and what follows from it.
    def same_but_ticket(answer: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v for k, v in answer.items() if k not in {"id", "token_id", "seat", "created_at"}
        }

    assert same_but_ticket(lane_listing) == same_but_ticket(route_listing)
    assert same_but_ticket(lane_draft["listing"]) == same_but_ticket(route_draft["listing"])
    lane_typed, route_typed = lane_draft["typed_data"], route_draft["typed_data"]
    assert lane_typed["domain"] == route_typed["domain"]
    assert {**lane_typed["message"], "tokenId": "0"} == {**route_typed["message"], "tokenId": "0"}
    assert client.get(f"/listings/{lane_listing['id']}").json() == lane_listing

    # And the same row, column for column.
    lane_row, route_row = _row(runtime, lane_listing["id"]), _row(runtime, route_listing["id"])
    differs = {"id", "ticket_id", "token_id", "signature", "created_at"}
    assert {k: v for k, v in lane_row.items() if k not in differs} == {
        k: v for k, v in route_row.items() if k not in differs
    }
    assert lane_row["created_at"].tzinfo is not None


def test_the_lane_reads_the_facts_the_orm_reads(lane_client: TestClient) -> None:
    client = lane_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    quick = client.app.state.quick_listings  # type: ignore[attr-defined]
    worker = Worker(runtime, http=client)
    market = holding(client, worker, runtime.chain, devnet_account(1))
    terms = resale.SellOrderTerms(market.event["id"], market.token_ids[0], market.face_wei)

    async def read() -> resale.TicketFacts:
        async with quick.pool.connection() as connection:
            facts: resale.TicketFacts = await quick._read_facts(connection.cursor(), terms)
            return facts

    lane = client.portal.call(read)  # type: ignore[union-attr]
    with transaction(runtime.sessions) as session:
        orm = resale._ticket_row(session, terms.event_id, terms.token_id, False)
        pairs = [(getattr(lane, name), getattr(orm, name)) for name in ("event", "ticket", "tier")]
        pairs.append((lane.card.order, orm.card.order))  # the crypto order that bought it
        for ours, theirs in pairs:
            assert theirs is not None
            for attr in inspect(type(theirs)).column_attrs:
                mine, orms = getattr(ours, attr.key), getattr(theirs, attr.key)
                assert (mine, type(mine)) == (orms, type(orms)), attr
        for flag in ("admitted", "on_market", "endpoints"):
            assert getattr(lane, flag) == getattr(orm, flag)
        assert (lane.card.resold, lane.card.given_back_cents) == (
            orm.card.resold,
            orm.card.given_back_cents,
        )


def test_refusals_replacements_and_notifications_are_the_routes_and_nothing_is_written_twice(
    lane_client: TestClient, two_held: Holding, lane_answered: list[tuple[str, bool]]
) -> None:
    client, market = lane_client, two_held
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    event, holder, price = market.event, market.holder, market.face_wei
    first, second = market.token_ids

    # Refused: above the cap (the sell order), not the holder. Answered by the routes.
    cap = int(market.event["resale_cap_bps"]) * price // 10_000
    assert problem(sell_order, holder, event["id"], first, cap + 10**9) == (422, "price-above-cap")
    stranger = signed_in(client)
    assert problem(sell_order, stranger, event["id"], first, price) == (403, "not-ticket-holder")
    assert lane_answered == [("/listings/sell-order", False)] * 2

    # Listed in the lane, then listed again: the route replaces the first listing.
    listed = _list(holder, event["id"], first, price)
    again = _list(holder, event["id"], first, price - 10**9)
    assert lane_answered[2:] == [
        ("/listings/sell-order", True),
        ("/listings", True),
        ("/listings/sell-order", True),
        ("/listings", False),
    ]
    assert client.get(f"/listings/{listed['id']}").json()["status"] == "delisted"
    assert client.get(f"/listings/{again['id']}").json()["status"] == "live"

    # A signature over another price: refused by the route, nothing stored.
    draft = sell_order(holder, event["id"], second, price)
    body = listing_body(draft["typed_data"], _sig(holder, draft), event["id"])
    body["price_wei"] = str(price - 10**9)
    assert problem(holder._call, "POST", "/listings", json=body) == (
        422,
        "signature-not-by-holder",
    )
    with transaction(runtime.sessions) as session:
        rows = session.scalars(select(Listing.token_id).order_by(Listing.id)).all()
    assert list(rows) == [first, first]

    # Someone listens: the route lists, and listing.created is queued.
    subscribe(runtime, market.organizer.wallet.address, ["listing.created"])
    third = _list(holder, event["id"], second, price)
    assert lane_answered[-1] == ("/listings", False)
    assert [n["listing_id"] for n in notifications(runtime, "listing.created")] == [third["id"]]


def _deadline() -> int:
    return int(time.time()) + DEADLINE_DAYS * 86_400


def _sig(holder: Any, draft: dict[str, Any]) -> str:
    return sign_typed(holder.wallet, draft["typed_data"])


def _list(holder: Any, event_id: int, token_id: int, price: int) -> dict[str, Any]:
    draft = sell_order(holder, event_id, token_id, price)
    body = listing_body(draft["typed_data"], _sig(holder, draft), event_id)
    listed: dict[str, Any] = holder._call("POST", "/listings", json=body)
    return listed


def test_a_request_the_lane_leaves_to_the_route_counts_once_against_the_wallets_limit(
    tmp_path: Path,
    database_url: str,
    devnet: Devnet,  # noqa: F811
    lane_answered: list[tuple[str, bool]],
) -> None:
    with _lane_app(
        tmp_path, database_url, devnet.rpc_url, rate_limit_per_wallet="4/minute"
    ) as client:
        stranger = signed_in(client)
        body = {"event_id": 999, "token_id": 1, "price_wei": str(10**15)}
        for _ in range(4):  # counted by the lane, answered by the route: once each
            assert problem(stranger._call, "POST", "/listings/sell-order", json=body)[0] == 404
        refused = client.post(
            "/listings/sell-order",
            json=body,
            headers={"Authorization": f"Bearer {stranger.token}"},
        )
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert lane_answered == [("/listings/sell-order", False)] * 5
