"""Organizers' webhook deliveries are counted by result, failures for good included (those
complete their outbox message, so the outbox's failure counter never sees them)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from backend.db.engine import transaction
from backend.notify import service as notify
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import signed_in
from tests.notify.helpers import make_due, register, stored_event
from tests.notify.receiver import Receiver

pytestmark = pytest.mark.db

TRANSFER = {"token_id": 257, "from": "0x" + "1" * 40, "to": "0x" + "2" * 40, "tx_hash": "0xab"}


def counted() -> dict[str, float]:
    return {
        result: REGISTRY.get_sample_value("fairtix_webhook_deliveries_total", {"result": result})
        or 0.0
        for result in ("delivered", "retry", "failed")
    } | {
        "outbox": REGISTRY.get_sample_value(
            "fairtix_outbox_failures_total", {"kind": notify.DELIVER_WEBHOOK}
        )
        or 0.0
    }


def send_one(client: TestClient, admin: LocalAccount, receiver: Receiver, runtime: Runtime) -> None:
    organizer = signed_in(client, admin)
    register(organizer, receiver.url, ("ticket.transferred",))
    event_id = stored_event(runtime, organizer.wallet.address)
    with transaction(runtime.sessions) as session:
        notify.publish(session, notify.TICKET_TRANSFERRED, event_id, TRANSFER)


def test_retries_and_giving_up_are_counted(
    client: TestClient, admin: LocalAccount, receiver: Receiver, runtime: Runtime, worker: Worker
) -> None:
    runtime.settings.outbox_max_attempts = 3
    receiver.answer(502)
    send_one(client, admin, receiver, runtime)
    before = counted()
    for _ in range(4):
        make_due(runtime)
        worker.run_once()
    after = counted()
    assert {k: after[k] - before[k] for k in after} == {
        "delivered": 0,
        "retry": 2,
        "failed": 1,
        "outbox": 2,
    }


def test_a_4xx_is_counted_failed_for_good(
    client: TestClient, admin: LocalAccount, receiver: Receiver, runtime: Runtime, worker: Worker
) -> None:
    receiver.answer(410)
    send_one(client, admin, receiver, runtime)
    before = counted()
    worker.run_once()
    assert counted()["failed"] == before["failed"] + 1
    assert counted()["outbox"] == before["outbox"]
