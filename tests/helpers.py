"""Plain factory functions the tests share (no fixtures hidden in here)."""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.catalog.models import Event, Tier
from backend.demo import FairtixClient
from backend.payments.sandbox import sign_stripe_payload
from backend.runtime import Runtime
from backend.worker import Worker


def signed_in(client: TestClient, wallet: LocalAccount | None = None) -> FairtixClient:
    api = FairtixClient(client, wallet or Account.create())
    api.sign_in()
    return api


def make_event(
    organizer: FairtixClient, supply: int = 3, price_cents: int = 2500, **fields: Any
) -> dict[str, Any]:
    return organizer.create_event(
        "Test night", [{"name": "GA", "price_cents": price_cents, "supply": supply}], **fields
    )


def admitted_buyer(client: TestClient, event_id: int) -> FairtixClient:
    buyer = signed_in(client)
    buyer.join_queue(event_id)
    status = buyer.wait_admitted(event_id, timeout=5)
    assert status["state"] == "admitted"
    return buyer


def drain(worker: Worker, passes: int = 10) -> None:
    """Run the worker until it has nothing left to do."""
    for _ in range(passes):
        if worker.run_once() == 0:
            return
        time.sleep(0)


def count(runtime: Runtime, model: type[Any]) -> int:
    with Session(runtime.engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def stripe_event(event_id: str, event_type: str, intent: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": intent},
    }


def post_webhook(
    client: TestClient, event: dict[str, Any], secret: str, timestamp: int | None = None
) -> Any:
    body = json.dumps(event)
    header = sign_stripe_payload(body, secret, timestamp or int(time.time()))
    return client.post(
        "/payments/stripe/webhook",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def wallet(n: int) -> str:
    """A distinct, valid, lowercase address per number."""
    return f"0x{n:040x}"


def insert_event(
    session: Session,
    *,
    sale_opens_at: datetime,
    max_admitted: int,
    supply: int,
    price_cents: int = 1000,
) -> Event:
    """An event row with one GA tier, for service tests that need no contract behind it."""
    event = Event(
        name="Service test",
        symbol="ST",
        starts_at=sale_opens_at + timedelta(days=1),
        sale_opens_at=sale_opens_at,
        organizer_address=wallet(1),
        chain_id=1,
        chain_event_id=secrets.randbits(63),
        contract_address=wallet(2),
        deploy_block=0,
        deploy_tx_hash="0x" + "3" * 64,
        image_cid="Qm",
        max_admitted=max_admitted,
        admission_ttl_seconds=600,
        max_tickets_per_order=4,
        ends_at=sale_opens_at + timedelta(days=1, hours=4),
        resale_cap_bps=11_000,
        royalty_bps=500,
    )
    event.tiers = [
        Tier(
            name="GA",
            price_cents=price_cents,
            currency="eur",
            supply=supply,
            reserved=0,
            chain_tier=0,
            price_gwei=price_cents * 3_000,
        )
    ]
    session.add(event)
    session.flush()
    return event
