"""A ticket let in at the door can't be listed or sold through fairtix from that moment, before
the chain's check-in is seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.chain.client import ChainClient
from backend.worker import Worker
from tests.door.test_routes import _entry, _scan, _scanner
from tests.helpers import signed_in
from tests.resale.market import holding, list_ticket, problem, sell_order

pytestmark = pytest.mark.db


def test_an_admitted_ticket_is_refused_a_sell_order_at_once(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount
) -> None:
    starts_at = datetime.now(UTC) + timedelta(hours=2)
    held = holding(client, worker, chain, admin, quantity=2, starts_at=starts_at.isoformat())
    event_id, (admitted, other) = held.event["id"], held.token_ids
    credential = _scanner(client, held.organizer, event_id, "North")
    code = _entry(client, held.holder, admitted).json()["code"]
    assert _scan(client, credential, code, "in").json()["result"] == "admitted"

    # No worker pass: the chain has not heard of the admission yet.
    assert problem(sell_order, held.holder, event_id, admitted, 10**15) == (
        409,
        "ticket-not-resellable",
    )
    assert sell_order(held.holder, event_id, other, 10**15)["typed_data"]


def test_a_listed_ticket_admitted_at_the_door_comes_off_the_market_at_once(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount
) -> None:
    starts_at = datetime.now(UTC) + timedelta(hours=2)
    held = holding(client, worker, chain, admin, quantity=1, starts_at=starts_at.isoformat())
    event_id, (token_id,) = held.event["id"], held.token_ids
    listing = list_ticket(held.holder, event_id, token_id, 10**15)
    credential = _scanner(client, held.organizer, event_id, "North")
    code = _entry(client, held.holder, token_id).json()["code"]
    assert _scan(client, credential, code, "in").json()["result"] == "admitted"

    # Before any worker pass: no buyer is handed a transaction for a ticket already used.
    assert client.get(f"/listings/{listing['id']}").json()["status"] == "void"
    assert client.get(f"/events/{event_id}/listings").json()["listings"] == []
    buyer = signed_in(client)
    assert problem(
        buyer._call, "POST", f"/listings/{listing['id']}/buy", json={"method": "crypto"}
    ) == (409, "listing-not-live")
