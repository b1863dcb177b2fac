"""The worker's delivery threads: payment webhooks first, worked apart from the chain loop."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import anyio
import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend import outbox
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.demo import SUCCESS_CARD
from backend.notify import service as notify
from backend.payments import router as payments_router
from backend.payments.sandbox import DELIVER_WEBHOOK
from backend.runtime import Runtime
from backend.worker import Worker
from tests.payments.orders import held_order

pytestmark = pytest.mark.db


def test_payment_webhooks_are_claimed_before_older_receipts(runtime: Runtime) -> None:
    worker = Worker(runtime)
    with transaction(runtime.sessions) as session:
        for n in range(3):
            outbox.enqueue(session, notify.SEND_RECEIPT, {"receipt": n})
        for n in range(2):
            outbox.enqueue(session, DELIVER_WEBHOOK, {"webhook": n})
    with transaction(runtime.sessions) as session:
        claimed = worker._claim_deliveries(session, 3)
    # Both webhooks although queued last, then the oldest receipt.
    assert [m.kind for m in claimed] == [DELIVER_WEBHOOK, DELIVER_WEBHOOK, notify.SEND_RECEIPT]
    assert [m.payload for m in claimed] == [{"webhook": 0}, {"webhook": 1}, {"receipt": 0}]
    worker.stop()


def test_a_payment_webhook_a_dead_worker_claimed_is_claimed_again_within_a_minute(
    runtime: Runtime,
) -> None:
    with transaction(runtime.sessions) as session:
        outbox.enqueue(session, DELIVER_WEBHOOK, {"webhook": 0})
        outbox.enqueue(session, notify.SEND_RECEIPT, {"receipt": 0})
    dead = Worker(runtime)
    with transaction(runtime.sessions) as session:
        assert len(dead._claim_deliveries(session, 2)) == 2
    dead.stop()  # gone without completing either

    def claimable(after: timedelta) -> list[str]:
        with runtime.sessions() as session:
            claimed = outbox.claim(session, 10, utcnow() + after)
            session.rollback()  # only looking: the leases stay as they were
        return [m.kind for m in claimed]

    assert claimable(timedelta(seconds=50)) == []
    assert claimable(timedelta(seconds=61)) == [DELIVER_WEBHOOK]
    # A receipt keeps the outbox's longer lease: sent twice is worse than sent late.
    assert claimable(timedelta(minutes=5, seconds=1)) == [DELIVER_WEBHOOK, notify.SEND_RECEIPT]


def test_run_forever_pays_the_order_on_its_delivery_threads_and_stops(
    client: TestClient, runtime: Runtime
) -> None:
    buyer, order = held_order(client)
    intent = buyer.checkout_card(order["id"])["payment_intent"]
    buyer.pay_in_sandbox(intent, SUCCESS_CARD)
    before = {t.ident for t in threading.enumerate()}
    worker = Worker(runtime, http=client)
    worker.start_thread()
    try:
        # The sandbox's webhook goes from the outbox through the API; the held order's event
        # has no contract, so the order stops at paid (its mint fails and is retried).
        paid = buyer.wait_order(order["id"], {"paid", "minting", "fulfilled"}, timeout=30)
        assert paid["transitions"][-1]["cause"].startswith("payment_intent.succeeded")
    finally:
        started = time.monotonic()
        worker.stop()
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.name.startswith(("fairtix-out", "fairtix-worker"))
        ]
        if not left:
            break
        time.sleep(0.05)
    assert left == []


def test_payment_work_has_threads_of_its_own() -> None:
    """A webhook is applied even while every thread the buyers' requests share is taken."""

    async def main() -> str:
        buyers_pool = anyio.to_thread.current_default_thread_limiter()
        buyers_pool.total_tokens = 2
        release = threading.Event()

        async def occupy_a_thread() -> None:
            await anyio.to_thread.run_sync(release.wait)

        async with anyio.create_task_group() as tasks:
            for _ in range(2):
                tasks.start_soon(occupy_a_thread)
            await anyio.sleep(0.1)
            assert buyers_pool.borrowed_tokens == 2
            with anyio.fail_after(5):
                outcome = await payments_router._run_payment_work(lambda: "processed")
            release.set()
        return outcome

    assert anyio.run(main) == "processed"


def test_request_threads_bound_the_api_thread_pool(client: TestClient, runtime: Runtime) -> None:
    assert client.portal is not None

    async def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert client.portal.call(tokens) == runtime.settings.request_threads
    assert runtime.settings.request_threads == 8


@pytest.mark.parametrize(("in_flight", "fewest", "most"), [(0, 3, 9), (1, 15, 60)])
def test_an_idle_chain_loop_backs_off_unless_a_batch_awaits_its_receipt(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, in_flight: int, fewest: int, most: int
) -> None:
    runtime.settings.worker_poll_seconds = 0.05
    runtime.settings.worker_delivery_threads = 1
    worker = Worker(runtime)
    passes: list[float] = []

    def empty_pass(*, deliveries: bool = True) -> int:
        passes.append(time.monotonic())
        worker._batches.in_flight = in_flight
        return 0

    monkeypatch.setattr(worker, "run_once", empty_pass)
    loop = threading.Thread(target=worker.run_forever)
    loop.start()
    time.sleep(2.0)
    worker.stop()
    loop.join(5)
    worker._deliveries.shutdown(wait=True)  # its delivery thread holds a database connection
    assert not loop.is_alive()
    # Idle: 0.05, 0.1, 0.2, 0.4, 0.8, then 1 s apart (about 6 passes in 2 s). With a batch in
    # flight: every 0.05 s (about 40; the bound leaves room for a busy machine's late wake-ups).
    assert fewest <= len(passes) <= most


def test_stop_waits_for_a_delivery_in_progress_and_marks_it_done(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.settings.worker_delivery_threads = 1
    worker = Worker(runtime)
    monkeypatch.setattr(worker, "run_once", lambda *, deliveries=True: 0)
    started, finished = threading.Event(), threading.Event()

    def slow_receipt(payload: dict[str, object]) -> None:
        started.set()
        time.sleep(0.5)  # an SMTP server taking its time
        finished.set()

    worker._handlers[notify.SEND_RECEIPT] = slow_receipt
    with transaction(runtime.sessions) as session:
        outbox.enqueue(session, notify.SEND_RECEIPT, {"receipt": 1})
    worker.start_thread()
    assert started.wait(10)

    worker.stop()

    # Before stop returned, not cut off by it: the caller disposes of the engine next.
    assert finished.is_set()
    with transaction(runtime.sessions) as session:
        [message] = session.scalars(select(outbox.OutboxMessage)).all()
    assert message.done_at is not None


def test_a_settlement_sent_wakes_an_idle_chain_loop_at_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.settings.worker_poll_seconds = 0.05
    runtime.settings.worker_delivery_threads = 1
    worker = Worker(runtime)
    passes: list[float] = []

    def empty_pass(*, deliveries: bool = True) -> int:
        passes.append(time.monotonic())
        return 0

    monkeypatch.setattr(worker, "run_once", empty_pass)
    loop = threading.Thread(target=worker.run_forever)
    loop.start()
    time.sleep(1.6)  # backed off: its waits are now a second long
    before = len(passes)
    sent = time.monotonic()
    # What Settler.send calls once a settlement is stored and broadcast (on a delivery thread).
    assert worker._settler._on_sent is not None
    worker._settler._on_sent()
    time.sleep(0.3)
    worker.stop()
    loop.join(5)
    worker._deliveries.shutdown(wait=True)
    assert not loop.is_alive()
    woken = [moment for moment in passes[before:] if moment >= sent]
    # Without the wake-up the next pass would come up to a second later.
    assert woken and woken[0] - sent < 0.25
