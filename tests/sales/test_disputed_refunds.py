"""A cancelled event's card refund of a payment under chargeback: the bank has the money while it
decides, so no refund is asked of the provider (Stripe refuses one, ``charge_disputed``, and the
outbox would retry it for the weeks a chargeback takes). The bank's decision settles it: won,
the money is ours again and the refund goes out once; lost, the bank already gave it back, and
refunding too would pay the buyer twice."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.chain.client import ChainClient
from backend.db.engine import transaction
from backend.runtime import Runtime
from backend.sales import cancellation
from backend.sales.models import HolderRefund
from backend.sales.service import REFUND_HELD_FOR_DISPUTE, REFUNDED_BY_CHARGEBACK
from backend.worker import Worker
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import drain, make_event, post_webhook, signed_in, stripe_event
from tests.notify.helpers import make_due
from tests.sales.test_cancellation import cancel, card_order, paid_card_order, start_minting
from tests.sales.test_cancellation_follows_ticket import refunds_of, resell, settle

pytestmark = pytest.mark.db


def dispute(client: TestClient, order: dict[str, Any], event_id: str, status: str) -> str:
    body = {
        "id": f"dp_{order['id']}",
        "payment_intent": order["payment_intent_id"],
        "reason": "fraudulent",
        "status": status,
    }
    kind = "charge.dispute.closed" if status in ("won", "lost") else "charge.dispute.updated"
    outcome: str = post_webhook(client, stripe_event(event_id, kind, body), WEBHOOK_SECRET).json()[
        "outcome"
    ]
    return outcome


@pytest.mark.parametrize("decision", ["won", "lost"])
def test_a_refund_under_chargeback_waits_for_the_banks_decision(
    client: TestClient,
    worker: Worker,
    admin: LocalAccount,
    runtime: Runtime,
    provider_refunds: list[str],
    decision: str,
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=4)
    buyer, order = card_order(client, worker, event, quantity=1)
    undisputed_buyer, undisputed = card_order(client, worker, event, quantity=1)
    assert dispute(client, order, f"evt_open_{decision}", "needs_response") == "processed"

    assert cancel(organizer, event["id"]).status_code == 200
    drain(worker)

    # The undisputed order is refunded as always; the disputed one is held, and says why.
    assert provider_refunds == [undisputed["payment_intent_id"]]
    assert undisputed_buyer.order(undisputed["id"])["status"] == "refunded"
    held = buyer.order(order["id"])
    assert held["status"] == "fulfilled"
    assert held["refund"]["state"] == "pending"
    assert "chargeback" in held["refund"]["reason"]
    # Nothing is left retrying in the outbox for weeks: the message is done.
    drain(worker)
    assert provider_refunds == [undisputed["payment_intent_id"]]

    assert dispute(client, order, f"evt_closed_{decision}", decision) == "processed"
    drain(worker)
    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert final["refund"]["state"] == "refunded"
    if decision == "won":
        # The money came back to us with the decision: now it goes to the buyer, once.
        assert provider_refunds == [undisputed["payment_intent_id"], order["payment_intent_id"]]
    else:
        # The bank gave it back already: no second refund of ours.
        assert provider_refunds == [undisputed["payment_intent_id"]]
        assert "chargeback" in final["refund"]["reason"]
    # A late update of the decided dispute changes nothing.
    assert dispute(client, order, f"evt_late_{decision}", "under_review") == "ignored"
    drain(worker)
    assert len(provider_refunds) == (2 if decision == "won" else 1)


def test_an_inquiry_does_not_hold_the_refund(
    client: TestClient,
    worker: Worker,
    admin: LocalAccount,
    provider_refunds: list[str],
) -> None:
    """An inquiry (Stripe's warning_* statuses) withdraws no money; a refund closes it."""
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=2)
    buyer, order = card_order(client, worker, event, quantity=1)
    assert dispute(client, order, "evt_inquiry", "warning_needs_response") == "processed"
    assert cancel(organizer, event["id"]).status_code == 200
    drain(worker)
    assert provider_refunds == [order["payment_intent_id"]]
    assert buyer.order(order["id"])["status"] == "refunded"


def test_a_lost_chargeback_of_an_order_caught_minting_pays_nothing_more(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    provider_refunds: list[str],
) -> None:
    """The cancellation finds the order minting and its chargeback lost while the refund waits
    for the mint's outcome: the decision is read then, and nobody is paid twice."""
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order = paid_card_order(client, worker, event)
    start_minting(runtime, order["id"])
    assert cancel(organizer, event["id"]).status_code == 200
    paid = buyer.order(order["id"])
    # Minting: the decision doesn't settle the order yet (its mint may still land).
    assert dispute(client, paid, "evt_lost_minting", "lost") == "processed"
    assert buyer.order(order["id"])["status"] == "minting"
    cancellation.cancel_on_chain(runtime.sessions, chain, runtime.queue, event["id"])

    for _ in range(3):  # the mint keeps failing on chain until the refund settles the order
        drain(worker)
        make_due(runtime)

    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert [t["to_status"] for t in final["transitions"]][-3:] == ["minting", "paid", "refunded"]
    assert "chargeback" in final["refund"]["reason"]
    assert provider_refunds == []


@pytest.mark.parametrize("decision", ["won", "lost"])
def test_a_holders_card_refund_under_chargeback_waits_for_the_banks_decision(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    provider_refunds: list[str],
    decision: str,
) -> None:
    """Cancellation follows the ticket: A paid two tickets by card and sold one on, so A's card
    gets back the ticket A kept (a holder refund), not the whole order. Under an open chargeback
    of A's payment that refund is held like an order's; the bank's decision settles it."""
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=4)
    face_wei = int(event["tiers"][0]["price_wei"])
    fan_a, order = card_order(client, worker, event, quantity=2)
    kept, sold_on = order["token_ids"]
    resell(client, worker, chain, fan_a, event, sold_on, face_wei)
    assert dispute(client, order, f"evt_open_holder_{decision}", "needs_response") == "processed"

    assert cancel(organizer, event["id"]).status_code == 200
    settle(runtime, worker)

    # A's kept ticket's refund is held, nothing asked of the provider; the buyer of the other
    # ticket, who paid in ether, is refunded as always.
    assert provider_refunds == []
    assert _holder_refunds(runtime) == [
        (kept, "card", "held", REFUND_HELD_FOR_DISPUTE),
        (sold_on, "ether", "paid", None),
    ]
    assert [(r["method"], r["state"]) for r in refunds_of(fan_a, kept)] == [("card", "pending")]
    settle(runtime, worker)  # nothing retries meanwhile
    assert provider_refunds == []

    assert dispute(client, order, f"evt_closed_holder_{decision}", decision) == "processed"
    settle(runtime, worker)
    if decision == "won":
        # The money is ours again: the ticket's face value goes back to A's card, once.
        assert provider_refunds == [order["payment_intent_id"]]
        assert _holder_refunds(runtime)[0] == (kept, "card", "paid", None)
    else:
        # The bank gave A the whole payment back already: no refund of ours on top.
        assert provider_refunds == []
        assert _holder_refunds(runtime)[0] == (kept, "card", "paid", REFUNDED_BY_CHARGEBACK)
    assert [(r["method"], r["state"]) for r in refunds_of(fan_a, kept)] == [("card", "refunded")]


def _holder_refunds(runtime: Runtime) -> list[tuple[int, str, str, str | None]]:
    with transaction(runtime.sessions) as session:
        rows = session.scalars(select(HolderRefund).order_by(HolderRefund.token_id)).all()
        return [(r.token_id, r.rail, r.status, r.failure_reason) for r in rows]
