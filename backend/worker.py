"""The background loop: releases expired holds and works the outbox (mints, webhook deliveries).

In the embedded profile it runs in a thread of the API process; ``fairtix worker`` runs it alone.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from backend import outbox
from backend.auth import service as auth
from backend.chain.indexer import Indexer
from backend.db.engine import transaction
from backend.door.checkins import CheckInSender
from backend.fulfilment.sender import BatchSender
from backend.fulfilment.tracker import BatchTracker
from backend.notify import service as notify
from backend.notify.delivery import Notifier
from backend.observability import instruments, requestid
from backend.payments.sandbox import DELIVER_WEBHOOK, DELIVERY_TIMEOUT_SECONDS, SandboxProvider
from backend.resale import cards as resale_cards
from backend.resale import payouts, purchases
from backend.resale import service as resale
from backend.resale.settlement import Settler
from backend.runtime import Runtime
from backend.sales import cancellation, holder_refunds, refunds
from backend.sales import service as sales
from backend.tickets.chain_logs import TicketLogApplier

log = logging.getLogger("fairtix.worker")
# Non-mint messages claimed per pass of run_once: a few rounds of the delivery threads.
BATCH = 64
# Claimed at a time by each delivery thread of run_forever: few, so one slow endpoint holds up
# little else, and a thread that is free claims again at once.
DELIVERY_CLAIM = 4
# Delivered before the rest: a payment's webhook is money that arrived and a fan waiting for the
# ticket; receipts and organizers' notifications can wait out an on-sale's burst.
URGENT_KINDS = (DELIVER_WEBHOOK,)
# An urgent message a dead worker had claimed is claimed again after this, not after the
# outbox's 5-minute lease: a fan who paid waits a minute for the ticket after a worker crash,
# not five. Twice a delivery's timeout; should a slow delivery outlive it, the second delivery of
# the same event id changes nothing in the API.
URGENT_LEASE = timedelta(seconds=2 * DELIVERY_TIMEOUT_SECONDS)
# How long an idle delivery thread other than the scout sleeps before looking for itself.
HELPER_IDLE_SECONDS = 2.0
# Mint messages claimed per pass, in batches' worth: enough to keep several transactions in flight.
MINT_BATCHES_PER_PASS = 4
HOUSEKEEPING_SECONDS = 300
# An idle chain loop waits twice as long after each empty pass, up to this: at the poll interval
# (0.2 s) an idle worker spent a tenth of a core on passes that found nothing. Work found, or a
# mint batch waiting for its receipt, brings it back to the poll interval; payment webhooks don't
# wait for it (they are the delivery threads').
IDLE_BACKOFF_MAX_SECONDS = 1.0


class Worker:
    def __init__(self, runtime: Runtime, http: httpx.Client | None = None) -> None:
        self._runtime = runtime
        # Webhook deliveries go over real HTTP, on the sandbox's kept-alive connections; tests
        # hand in their in-process client instead.
        self._http = http
        self._stop = threading.Event()
        self._backlog = threading.Event()  # set: the outbox has more than the scout can take
        self._next_housekeeping = 0.0
        self._thread: threading.Thread | None = None
        self._delivery_loops: list[futures.Future[None]] = []  # run_forever's delivery threads
        self._deliveries = ThreadPoolExecutor(
            max_workers=runtime.settings.worker_delivery_threads, thread_name_prefix="fairtix-out"
        )
        self.indexer = Indexer(
            runtime.sessions,
            runtime.chain,
            TicketLogApplier(),
            max_blocks=runtime.settings.indexer_max_blocks,
        )
        self._notifier = Notifier(runtime.sessions, runtime.settings)
        # Mint messages skip _handlers: they are claimed many at a time and minted in batches.
        self._mints = BatchSender(
            runtime.sessions, runtime.chain, runtime.blockstore, runtime.settings
        )
        self._batches = BatchTracker(runtime.sessions, runtime.chain, runtime.settings)
        self._check_ins = CheckInSender(runtime.sessions, runtime.chain, runtime.settings)
        # Set when work for the chain loop arrives from elsewhere (a delivery thread broadcast a
        # card resale's settlement): the loop runs its next pass now, not after its idle wait.
        self._wake = threading.Event()
        self._settler = Settler(
            runtime.sessions, runtime.chain, runtime.settings, on_sent=self._wake.set
        )
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            sales.REFUND_ORDER: self._refund,
            cancellation.CANCEL_ON_CHAIN: self._cancel_on_chain,
            holder_refunds.REFUND_HOLDERS: self._refund_holders,
            holder_refunds.PAY_HOLDER_REFUND: self._pay_holder_refund,
            DELIVER_WEBHOOK: self._deliver_webhook,
            notify.DELIVER_WEBHOOK: self._notifier.deliver_webhook,
            notify.SEND_RECEIPT: self._notifier.send_receipt,
            resale_cards.SETTLE: self._settle_resale,
            purchases.REFUND_PURCHASE: self._refund_resale,
            payouts.PAY_OUT: self._pay_out,
        }

    def run_once(self, *, deliveries: bool = True) -> int:
        """One pass; returns how many outbox messages and mint batches it completed.
        ``deliveries=False``: the non-mint messages are left to run_forever's delivery threads."""
        # Each step stands alone: a failing sweep must not stop mints and deliveries.
        # Crypto payments first, so a purchase mined in time is seen before its hold expires.
        self._step("follow the chain", self.indexer.run_once)
        self._step("release expired holds", self._release_expired)
        self._step("expire listings", self._expire_listings)
        self._step("advance waiting rooms", self._runtime.queue.advance_open_queues)
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
            self._step("purge expired sign-ins", self._purge)
        # Batches already under way (a restart's leftovers first of all) before new ones start.
        ended = self._step("advance mint batches", self._batches.advance) or 0
        outbox_pass = functools.partial(self._work_outbox, deliveries)
        worked = self._step("work the outbox", outbox_pass) or 0
        settled = self._step("follow resale settlements", self._settler.advance) or 0
        # After the mints: a ticket can't be checked in on chain before it exists there.
        return (
            ended
            + worked
            + settled
            + (self._step("check in admitted tickets", self._check_ins.run_once) or 0)
        )

    def _step(self, name: str, step: Callable[[], int]) -> int | None:
        try:
            return step()
        except Exception:
            log.exception("worker step failed", extra={"step": name})
            return None

    def _release_expired(self) -> int:
        with transaction(self._runtime.sessions) as session:
            released = sales.release_expired_holds(session)
        if released:
            log.info("expired holds released", extra={"orders": released})
        return released

    def _expire_listings(self) -> int:
        with transaction(self._runtime.sessions) as session:
            # Lapsed card reservations first: a listing they free may be past its deadline too.
            lapsed = purchases.expire_reservations(session)
            expired = resale.expire_listings(session)
        if lapsed:
            log.info("unpaid card reservations lapsed", extra={"purchases": lapsed})
        if expired:
            log.info("listings past their deadline expired", extra={"listings": expired})
        return expired + lapsed

    def _purge(self) -> int:
        with transaction(self._runtime.sessions) as session:
            purged = auth.purge_expired(session)
        if purged:
            log.info("expired nonces and sessions purged", extra={"rows": purged})
        return purged

    def _work_outbox(self, deliveries: bool = True) -> int:
        sessions = self._runtime.sessions
        mint_claim = self._runtime.settings.mint_batch_max_recipients * MINT_BATCHES_PER_PASS
        with transaction(sessions) as session:
            mints = outbox.claim(
                session,
                mint_claim,
                kinds=[sales.MINT_ORDER],
                lease=timedelta(seconds=self._runtime.settings.mint_lease_seconds),
            )
            claimed = self._claim_deliveries(session, BATCH) if deliveries else []
        done = self._mint(mints) if mints else 0
        # The rest wait on other systems (payment webhooks into the API, organizers' endpoints,
        # SMTP, the payment provider): worked side by side, an on-sale's burst of card payments
        # is not delivered one round trip at a time. Each handler is idempotent and separate.
        worked = list(self._deliveries.map(self._work, claimed))
        return done + self._complete([m.id for m, ok in zip(claimed, worked, strict=True) if ok])

    def _claim_deliveries(self, session: Session, limit: int) -> list[outbox.Claimed]:
        claimed = outbox.claim(session, limit, kinds=URGENT_KINDS, lease=URGENT_LEASE)
        if len(claimed) < limit:
            claimed += outbox.claim(
                session, limit - len(claimed), other_than=[sales.MINT_ORDER, *URGENT_KINDS]
            )
        return claimed

    def _deliver_forever(self, scout: bool) -> None:
        """One of run_forever's delivery threads: claims a few non-mint messages, payment
        webhooks first, and works them; again at once while there are more. Apart from the
        chain loop, deliveries neither wait for a pass's mints and receipts nor hold them up:
        in one loop, an on-sale's payments reached the API at one pass's worth a second.

        Only the ``scout`` polls an idle outbox every poll interval; the others sleep until a
        full claim shows a backlog, so a quiet worker doesn't query the outbox from every thread."""
        interval = self._runtime.settings.worker_poll_seconds
        while not self._stop.is_set():
            try:
                with transaction(self._runtime.sessions) as session:
                    claimed = self._claim_deliveries(session, DELIVERY_CLAIM)
                if len(claimed) == DELIVERY_CLAIM:
                    self._backlog.set()
                self._complete([message.id for message in claimed if self._work(message)])
            except Exception:
                log.exception("outbox delivery failed")
                claimed = []
            if claimed:
                continue
            if scout:
                self._stop.wait(interval)
            else:
                self._backlog.clear()
                # Checked after the clear: request_stop sets the stop flag, then the backlog
                # event, so a stop that this clear undid is seen here, not slept through.
                if not self._stop.is_set():
                    self._backlog.wait(HELPER_IDLE_SECONDS)

    def _complete(self, message_ids: list[int]) -> int:
        """Marks delivered messages done together: one UPDATE in one transaction, not a
        transaction each. A crash in between delivers them again, which every handler already
        has to take (a lease can run out the same way)."""
        if message_ids:
            with transaction(self._runtime.sessions) as session:
                outbox.complete_all(session, message_ids)
        return len(message_ids)

    def _work(self, message: outbox.Claimed) -> bool:
        """Runs the message's handler; False (and a retry scheduled) if it failed."""
        handler = self._handlers.get(message.kind)
        # The request that wrote the message: in this work's log lines, in the outbox rows it
        # writes, and sent on with the sandbox's payment webhook.
        requestid.use(message.request_id)
        try:
            if handler is None:
                raise LookupError(f"no handler for outbox kind {message.kind!r}")
            handler(message.payload)
        except Exception as exc:
            self._retry(message, exc)
            return False
        finally:
            requestid.use(None)
        instruments.OUTBOX_DONE.labels(message.kind).inc()
        return True

    def _retry(self, message: outbox.Claimed, exc: Exception) -> None:
        # Never give up on a paid order; past the threshold, shout so an operator looks.
        stuck = message.attempts >= self._runtime.settings.outbox_max_attempts
        instruments.OUTBOX_FAILURES.labels(message.kind).inc()
        log.log(
            logging.ERROR if stuck else logging.WARNING,
            "outbox message failed; will retry",
            extra={
                "id": message.id,
                "kind": message.kind,
                "attempts": message.attempts,
                "error": f"{type(exc).__name__}: {exc}",
                "needs_attention": stuck,
            },
        )
        with transaction(self._runtime.sessions) as session:
            outbox.retry_later(session, message.id, f"{type(exc).__name__}: {exc}")

    def _mint(self, messages: list[outbox.Claimed]) -> int:
        """Starts mint batches for claimed ``mint_order`` messages; returns how many messages
        are done (their orders taken by a batch, or needing no mint)."""
        try:
            report = self._mints.send(messages)
        except Exception as exc:
            log.exception("mint batches not started")
            for message in messages:
                self._retry(message, exc)
            return 0
        instruments.OUTBOX_DONE.labels(sales.MINT_ORDER).inc(len(report.completed))
        for message in messages:
            if message.id not in report.completed:
                self._retry(message, report.failed.get(message.id) or LookupError("not minted"))
        if report.batches:
            # On an instant-mining chain the receipts are already there: record them now.
            self._step("advance mint batches", self._batches.advance)
        return len(report.completed)

    def _refund(self, payload: dict[str, Any]) -> None:
        rt = self._runtime
        refunds.refund_card_payment(rt.sessions, rt.chain, rt.cards, int(payload["order_id"]))

    def _settle_resale(self, payload: dict[str, Any]) -> None:
        self._settler.send(int(payload["purchase_id"]))

    def _refund_resale(self, payload: dict[str, Any]) -> None:
        rt = self._runtime
        purchases.refund_payment(rt.sessions, rt.cards, int(payload["purchase_id"]))

    def _pay_out(self, payload: dict[str, Any]) -> None:
        rt = self._runtime
        payouts.pay_by_card(rt.sessions, rt.cards, int(payload["payout_id"]))

    def _cancel_on_chain(self, payload: dict[str, Any]) -> None:
        rt = self._runtime
        cancellation.cancel_on_chain(rt.sessions, rt.chain, rt.queue, int(payload["event_id"]))

    def _refund_holders(self, payload: dict[str, Any]) -> None:
        rt = self._runtime
        holder_refunds.decide(rt.sessions, rt.chain, int(payload["event_id"]))

    def _pay_holder_refund(self, payload: dict[str, Any]) -> None:
        rt = self._runtime
        holder_refunds.pay(rt.sessions, rt.chain, rt.cards, int(payload["refund_id"]))

    def _deliver_webhook(self, payload: dict[str, Any]) -> None:
        cards = self._runtime.cards
        if not isinstance(cards, SandboxProvider):
            raise LookupError("sandbox webhook queued but the sandbox provider is not configured")
        cards.deliver(payload["event"], self._http)

    def run_forever(self) -> None:
        interval = self._runtime.settings.worker_poll_seconds
        threads = self._runtime.settings.worker_delivery_threads
        log.info("worker started", extra={"poll_seconds": interval, "delivery_threads": threads})
        self._delivery_loops = [
            self._deliveries.submit(self._deliver_forever, number == 0) for number in range(threads)
        ]
        wait = interval
        while not self._stop.is_set():
            # Cleared before the pass: a wake-up during it makes the next pass start at once.
            self._wake.clear()
            try:
                did = self.run_once(deliveries=False)
            except Exception:
                log.exception("worker pass failed")
                did = 0
            if did:
                wait = interval
                continue
            if self._batches.in_flight or self._settler.in_flight:
                wait = interval  # receipts to wait for: look again at the poll interval
            if self._wake.wait(wait):
                wait = interval  # a settlement just sent: its receipt and log come next
                continue
            wait = min(wait * 2, max(interval, IDLE_BACKOFF_MAX_SECONDS))

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="fairtix-worker", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Asks the loops to end after what they are doing; returns at once (signal handlers)."""
        self._stop.set()
        self._backlog.set()
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        """Ends the chain loop and the delivery threads, waiting up to ``timeout`` seconds for
        the deliveries in progress: the caller disposes of the database engine next, and a
        delivery cut off there is only sent again later. One still running then (an endpoint
        slower than that) is left to finish on its own, with its HTTP client."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        _done, running = futures.wait(
            self._delivery_loops, timeout=max(deadline - time.monotonic(), 0)
        )
        self._deliveries.shutdown(wait=False, cancel_futures=True)
        if running:
            log.warning(
                "worker stopped with deliveries in progress", extra={"threads": len(running)}
            )
        elif self._http is None and isinstance(self._runtime.cards, SandboxProvider):
            self._runtime.cards.close()
