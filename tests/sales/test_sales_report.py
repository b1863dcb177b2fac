"""The organizer's sales report: orders by status, tickets and money per tier, refunds and
chargebacks, read live from the orders; nobody else may read it."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.demo import SUCCESS_CARD, FairtixClient
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
    assert (queued["refunds_pending"], queued["refunds_done"]) == (2, 0)
    drain(worker)

    after = report(organizer, event["id"])
    assert after["orders_by_status"] == {"cancelled": 1, "refunded": 2}
    assert (after["refunds_pending"], after["refunds_done"]) == (0, 2)
    assert after["tickets_sold"] == 0  # refunded money is not taken
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
