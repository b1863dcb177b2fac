"""The gauges /metrics reads from the database when scraped, and a mint traced back to the
request that paid for it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.app import create_app
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.demo import SUCCESS_CARD
from backend.outbox import OutboxMessage
from backend.runtime import Runtime
from backend.sales.models import HolderRefund
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.observability.metrics_text import value

pytestmark = pytest.mark.db


@pytest.fixture
def local(settings: Settings, chain: ChainClient) -> Iterator[TestClient]:
    # No cache: each scrape reads the state as it is now.
    uncached = settings.model_copy(update={"metrics_cache_seconds": 0})
    app = create_app(uncached, chain=chain)
    with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 50000)) as client:
        yield client


def scrape(client: TestClient) -> str:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return answer.text


def test_a_card_sale_moves_the_gauges_and_its_mint_names_the_paying_request(
    local: TestClient, admin: object, caplog: pytest.LogCaptureFixture
) -> None:
    runtime: Runtime = local.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=local)
    organizer = signed_in(local, admin)  # type: ignore[arg-type]
    event = make_event(organizer, supply=5)
    buyer = admitted_buyer(local, event["id"])
    text = scrape(local)
    assert value(text, "fairtix_queue_admitted", event_id=str(event["id"])) == 1
    assert value(text, "fairtix_queue_waiting", event_id=str(event["id"])) == 0
    assert value(text, "fairtix_state_up") == 1

    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2, checkout="card")
    intent = order["checkout"]["payment_intent"]
    buyer._call(
        "POST",
        f"/sandbox/payment_intents/{intent['id']}/confirm",
        json={"client_secret": intent["client_secret"], "card_number": SUCCESS_CARD},
        headers={"X-Request-ID": "pay-trace-1"},
    )
    text = scrape(local)
    assert value(text, "fairtix_orders", status="awaiting_payment") == 1
    assert value(text, "fairtix_outbox_depth", kind="sandbox_webhook") == 1
    assert value(text, "fairtix_outbox_depth", kind="mint_order") == 0
    assert value(text, "fairtix_outbox_oldest_age_seconds", kind="mint_order") == 0
    lag_before = value(text, "fairtix_mint_lag_seconds_count") or 0
    webhooks_before = value(text, "fairtix_payment_webhook_lag_seconds_count") or 0

    # One pass claims mints (none yet), then delivers the webhook, which pays and queues one.
    worker.run_once()
    text = scrape(local)
    assert value(text, "fairtix_orders", status="paid") == 1
    assert value(text, "fairtix_mint_backlog_orders") == 1
    assert value(text, "fairtix_outbox_depth", kind="mint_order") == 1
    assert value(text, "fairtix_outbox_depth", kind="sandbox_webhook") == 0
    assert value(text, "fairtix_payment_webhook_lag_seconds_count") == webhooks_before + 1

    with caplog.at_level(logging.INFO, logger="fairtix.fulfilment"):
        drain(worker)
    assert buyer.order(order["id"])["status"] == "fulfilled"
    text = scrape(local)
    assert value(text, "fairtix_orders", status="fulfilled") == 1
    assert value(text, "fairtix_mint_backlog_orders") == 0
    assert value(text, "fairtix_mint_backlog_oldest_seconds") == 0
    assert value(text, "fairtix_mint_lag_seconds_count") == lag_before + 1
    assert value(text, "fairtix_refunds_pending") == 0

    # The trace: confirmation -> the sandbox's webhook (delivered with the confirmation's id)
    # -> the mint message it queued -> the batch's log line.
    with Session(runtime.engine) as session:
        rows = session.execute(select(OutboxMessage.kind, OutboxMessage.request_id)).all()
    by_kind = {kind: request_id for kind, request_id in rows}
    assert by_kind["sandbox_webhook"] == "pay-trace-1"
    assert by_kind["mint_order"] == "pay-trace-1"
    sent = [r for r in caplog.records if r.getMessage() == "mint batch sent"]
    assert [r.request_ids for r in sent] == [{order["id"]: "pay-trace-1"}]  # type: ignore[attr-defined]


def test_holder_refunds_unpaid_and_failed_are_gauged_by_rail(
    local: TestClient, admin: object
) -> None:
    runtime: Runtime = local.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=local)
    organizer = signed_in(local, admin)  # type: ignore[arg-type]
    event = make_event(organizer, supply=5)
    buyer = admitted_buyer(local, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 3, checkout="card")
    buyer.pay_in_sandbox(order["checkout"]["payment_intent"], SUCCESS_CARD)
    drain(worker)
    text = scrape(local)
    assert value(text, "fairtix_holder_refunds", rail="ether", state="failed") == 0
    with Session(runtime.engine) as session, session.begin():
        first, second, third = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        for ticket, rail, status in (
            (first, "card", "pending"),
            (first, "ether", "sent"),
            (second, "ether", "failed"),
            (second, "card", "paid"),
            (third, "card", "held"),  # a payment under an open chargeback
        ):
            session.add(
                HolderRefund(
                    event_id=event["id"],
                    ticket_id=ticket.id,
                    token_id=ticket.token_id,
                    holder_address=ticket.owner_address,
                    rail=rail,
                    status=status,
                )
            )
    text = scrape(local)
    assert value(text, "fairtix_holder_refunds", rail="card", state="pending") == 1
    assert value(text, "fairtix_holder_refunds", rail="ether", state="pending") == 1
    assert value(text, "fairtix_holder_refunds", rail="ether", state="failed") == 1
    assert value(text, "fairtix_holder_refunds", rail="card", state="failed") == 0
    assert value(text, "fairtix_holder_refunds", rail="card", state="held") == 1
