"""Plain factory functions the tests share (no fixtures hidden in here)."""

from __future__ import annotations

import json
import time
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
