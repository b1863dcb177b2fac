"""The organizer's view of an event's sales: the report (orders by status, tickets and money per
tier, refunds and chargebacks) and the orders themselves, found by wallet, status or dispute;
nobody else may read either."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.demo import SUCCESS_CARD, FairtixClient
from backend.sales import service as sales
from backend.sales.router import OrderStatus
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.notify.helpers import call
from tests.payments.orders import assert_problem

pytestmark = pytest.mark.db

DISPUTED_CARD = "4000 0000 0000 0259"


def bought(client: TestClient, event: dict[str, Any], quantity: int, card: str | None) -> None:
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], quantity)
    if card is not None:
        buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], card)


def report(organizer: FairtixClient, event_id: int) -> dict[str, Any]:
    response = call(organizer, "GET", f"/admin/events/{event_id}/sales")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_report_counts_sales_refunds_and_chargebacks(
    client: TestClient, admin: LocalAccount, worker: Worker
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=5, price_cents=2500)
    bought(client, event, 2, SUCCESS_CARD)
    bought(client, event, 1, DISPUTED_CARD)
    bought(client, event, 1, None)  # holds its seat, never pays
    drain(worker)

    during = report(organizer, event["id"])

    [tier] = during["tiers"]
    assert (tier["supply"], tier["reserved"], tier["tickets_sold"]) == (5, 4, 3)
    assert (tier["gross_cents"], tier["currency"]) == (3 * 2500, "eur")
    assert during["tickets_sold"] == 3
    assert during["orders_by_status"] == {"fulfilled": 2, "held": 1}
    assert during["disputes_by_status"] == {"needs_response": 1}
    assert (during["refunds_pending"], during["refunds_done"]) == (0, 0)

    cancelled = call(organizer, "POST", f"/events/{event['id']}/cancel", json={"reason": "Storm"})
    assert cancelled.status_code == 200
    queued = report(organizer, event["id"])
    # The disputed payment's refund waits for the bank (tests/sales/test_disputed_refunds.py).
    assert (queued["refunds_pending"], queued["refunds_done"]) == (1, 0)
    assert queued["refunds_held_for_disputes"] == 1
    drain(worker)

    after = report(organizer, event["id"])
    assert after["orders_by_status"] == {"cancelled": 1, "fulfilled": 1, "refunded": 1}
    assert (after["refunds_pending"], after["refunds_done"]) == (0, 1)
    assert after["refunds_held_for_disputes"] == 1
    assert after["tickets_sold"] == 1  # the disputed one: its money is with the bank
    assert after["disputes_by_status"] == {"needs_response": 1}


def test_only_the_organizer_or_an_admin_reads_the_report(
    client: TestClient, admin: LocalAccount
) -> None:
    event = make_event(signed_in(client, admin))
    stranger = signed_in(client)

    denied = call(stranger, "GET", f"/admin/events/{event['id']}/sales")

    assert_problem(denied, 403, "not-event-organizer")
    assert_problem(call(stranger, "GET", "/admin/events/999/sales"), 404, "event-not-found")
    assert client.get(f"/admin/events/{event['id']}/sales").status_code == 401


def test_the_organizer_finds_a_fans_orders_and_the_disputed_ones_page_by_page(
    client: TestClient, admin: LocalAccount, worker: Worker
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=10)
    fan = admitted_buyer(client, event["id"])
    held = fan.place_order(event["id"], event["tiers"][0]["id"], 1)
    bought(client, event, 2, DISPUTED_CARD)
    bought(client, event, 1, SUCCESS_CARD)
    drain(worker)
    path = f"/admin/events/{event['id']}/orders"

    def listed(**query: object) -> dict[str, Any]:
        response = call(organizer, "GET", path, params=query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    by_wallet = listed(buyer=fan.wallet.address)  # checksummed: matched case-blind
    assert [o["id"] for o in by_wallet["orders"]] == [held["id"]]
    assert by_wallet["orders"][0]["status"] == "held"
    [disputed] = listed(disputed="true")["orders"]
    assert (disputed["quantity"], disputed["dispute"]["reason"]) == (2, "fraudulent")
    assert len(disputed["token_ids"]) == 2  # as its buyer sees it
    assert [o["status"] for o in listed(status="fulfilled")["orders"]] == ["fulfilled"] * 2

    first = listed(limit=2)
    rest = listed(limit=2, after_id=first["next_after_id"])
    ids = [o["id"] for o in first["orders"] + rest["orders"]]
    assert len(ids) == 3 and ids == sorted(ids)
    assert rest["next_after_id"] is None


@pytest.mark.parametrize(
    "query",
    [{"buyer": "0x123"}, {"status": "shipped"}, {"limit": 0}, {"limit": 101}, {"after_id": -1}],
)
def test_a_bad_order_query_is_a_422_problem(
    client: TestClient, admin: LocalAccount, query: dict[str, object]
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer)

    response = call(organizer, "GET", f"/admin/events/{event['id']}/orders", params=query)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_the_order_filter_knows_every_order_status() -> None:
    assert set(get_args(OrderStatus)) == set(sales.TRANSITIONS)


def test_a_stranger_cannot_list_an_events_orders(client: TestClient, admin: LocalAccount) -> None:
    event = make_event(signed_in(client, admin))

    denied = call(signed_in(client), "GET", f"/admin/events/{event['id']}/orders")

    assert_problem(denied, 403, "not-event-organizer")
