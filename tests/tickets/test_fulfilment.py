"""Fulfilment is exactly once: a crash between the mint and its record, or a retried outbox
message, never issues a ticket twice and never loses one."""

from __future__ import annotations

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend import outbox
from backend.catalog.models import Event, Tier
from backend.chain.client import ChainClient
from backend.chain.protocol import CardMint
from backend.db.engine import transaction
from backend.demo import SUCCESS_CARD
from backend.outbox import OutboxMessage
from backend.payments.models import SandboxPaymentIntent
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.helpers import admitted_buyer, count, drain, make_event, signed_in

pytestmark = pytest.mark.db


def paid_order(client: TestClient, admin: LocalAccount, worker: Worker, quantity: int = 2) -> int:
    event = make_event(signed_in(client, admin), supply=5)
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], quantity)
    intent = buyer.checkout_card(order["id"])["payment_intent"]
    buyer.pay_in_sandbox(intent, SUCCESS_CARD)
    worker.run_once()  # delivers the webhook: the order is paid and its mint queued
    return int(order["id"])


def test_mint_that_landed_before_a_crash_is_recovered_not_repeated(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime, chain: ChainClient
) -> None:
    order_id = paid_order(client, admin, worker)
    # Simulate a worker that minted and then died before recording anything.
    with Session(runtime.engine) as session:
        order = session.get(Order, order_id)
        assert order is not None and order.status == "paid"
        event = session.get(Event, order.event_id)
        tier = session.get(Tier, order.tier_id)
        assert event is not None and tier is not None
        landed = chain.mint_batch(
            event.contract_address,
            [CardMint(order_id, tier.chain_tier, (order.buyer_address,) * order.quantity)],
        )
    drain(worker)

    with Session(runtime.engine) as session:
        order = session.get(Order, order_id)
        assert order is not None and order.status == "fulfilled"
        assert order.mint_tx_hash == landed.tx_hash
    assert count(runtime, Ticket) == 2
    assert chain.order_minted(event.contract_address, order_id)


def test_fulfilling_twice_records_tickets_once(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime
) -> None:
    order_id = paid_order(client, admin, worker, quantity=3)
    drain(worker)
    with transaction(runtime.sessions) as session:  # a duplicate message, as a retry leaves
        outbox.enqueue(session, sales.MINT_ORDER, {"order_id": order_id})
    drain(worker)
    assert count(runtime, Ticket) == 3


def test_webhook_delivery_is_retried_until_the_shop_answers(
    client: TestClient, admin: LocalAccount, runtime: Runtime
) -> None:
    event = make_event(signed_in(client, admin))
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 1)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)

    down = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(502)))
    assert Worker(runtime, http=down).run_once() == 0
    with Session(runtime.engine) as session:
        [message] = session.query(OutboxMessage).all()
        assert message.attempts == 1 and message.done_at is None
        assert "502" in (message.last_error or "")
        message.available_at = message.created_at  # skip the backoff
        session.commit()
    drain(Worker(runtime, http=client))
    assert buyer.order(order["id"])["status"] == "fulfilled"


def test_payment_after_cancel_is_refunded_not_kept(
    client: TestClient, admin: LocalAccount, runtime: Runtime, worker: Worker
) -> None:
    event = make_event(signed_in(client, admin))
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 1)
    intent = buyer.checkout_card(order["id"])["payment_intent"]
    cancel = client.post(
        f"/orders/{order['id']}/cancel", headers={"Authorization": f"Bearer {buyer.token}"}
    )
    assert cancel.json()["status"] == "cancelled"
    buyer.pay_in_sandbox(intent, SUCCESS_CARD)  # the card form was still open
    drain(worker)

    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert final["failure_reason"] == "paid after the buyer cancelled: refunded"
    assert final["token_ids"] == []
    with Session(runtime.engine) as session:
        assert session.get(SandboxPaymentIntent, intent["id"]).status == "refunded"  # type: ignore[union-attr]
    assert count(runtime, Ticket) == 0
