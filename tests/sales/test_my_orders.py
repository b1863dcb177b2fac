"""GET /me/orders: a buyer's own orders, newest first, a page at a time."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.demo import SUCCESS_CARD
from backend.worker import Worker
from tests.helpers import drain, make_event, signed_in

pytestmark = pytest.mark.db


def test_my_orders_lists_only_mine_newest_first_in_pages(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    organizer = signed_in(client, admin)
    first, second = make_event(organizer), make_event(organizer)
    buyer = signed_in(client)
    paid = []
    for event in (first, second):
        buyer.join_queue(event["id"])
        assert buyer.wait_admitted(event["id"], timeout=5)["state"] == "admitted"
        order = buyer.place_order(event["id"], event["tiers"][0]["id"], 1)
        buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
        paid.append(order["id"])
    drain(worker)

    page = buyer._call("GET", "/me/orders", params={"limit": 1})
    assert [o["id"] for o in page["orders"]] == [paid[1]]
    assert page["orders"][0]["status"] == "fulfilled" and page["orders"][0]["token_ids"]
    rest = buyer._call("GET", "/me/orders", params={"before_id": page["next_before_id"]})
    assert [o["id"] for o in rest["orders"]] == [paid[0]]
    assert rest["next_before_id"] is None
    assert signed_in(client)._call("GET", "/me/orders")["orders"] == []
    assert client.get("/me/orders").status_code == 401
    assert client.get("/me/orders", params={"before_id": 0}).status_code in (401, 422)
