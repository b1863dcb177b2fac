"""Gauges read from the database and the waiting rooms when Prometheus scrapes, not kept up to
date by the requests: the hot path (thousands of waiting-room polls a second in an on-sale) pays
nothing for them. A scrape within ``cache_seconds`` of the last one gets the same answer, so
several Prometheus servers, or a scrape retried, cost one round of queries.

Every series here is the whole deployment's state, so every API process reports the same
values: aggregate them with ``max``, never ``sum`` (ops/prometheus/alerts.yml does).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, not_, select

from backend.catalog.models import Event
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.notify import service as notify
from backend.outbox import OutboxMessage
from backend.payments.sandbox import DELIVER_WEBHOOK as SANDBOX_WEBHOOK
from backend.runtime import Runtime
from backend.sales import cancellation, holder_refunds
from backend.sales import service as sales
from backend.sales.models import (
    REFUND_FAILED,
    REFUND_HELD,
    REFUND_PAID,
    HolderRefund,
    Order,
    OrderTransition,
)

log = logging.getLogger("fairtix.metrics")

# Reported even when none are pending, so a dashboard shows 0, not "no data", and an alert's
# series exists before the first message of its kind.
OUTBOX_KINDS = (
    sales.MINT_ORDER,
    sales.REFUND_ORDER,
    cancellation.CANCEL_ON_CHAIN,
    holder_refunds.REFUND_HOLDERS,
    holder_refunds.PAY_HOLDER_REFUND,
    SANDBOX_WEBHOOK,
    notify.DELIVER_WEBHOOK,
    notify.SEND_RECEIPT,
)
ORDER_STATUSES = (
    sales.HELD,
    sales.AWAITING_PAYMENT,
    sales.PAID,
    sales.MINTING,
    sales.FULFILLED,
    sales.FAILED,
    sales.EXPIRED,
    sales.REFUNDED,
    sales.CANCELLED,
)
# Waiting rooms reported: upcoming events whose sale opened or opens within a day, the most
# recent sales first, at most this many (labels per event must stay few).
MAX_EVENTS = 20
SALE_HORIZON = timedelta(days=1)


class StateCollector(Collector):
    def __init__(
        self, runtime: Callable[[], Runtime | None], outbox_max_attempts: int, cache_seconds: float
    ) -> None:
        self._runtime = runtime
        self._max_attempts = outbox_max_attempts
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[GaugeMetricFamily] = []
        self._cached_at = -float("inf")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # One scrape queries at a time; the others wait for it and take its answer.
        with self._lock:
            if time.monotonic() - self._cached_at >= self._cache_seconds:
                self._cached = self._read()
                self._cached_at = time.monotonic()
            families = self._cached
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        runtime = self._runtime()
        if runtime is None:
            return []  # not started yet
        up = GaugeMetricFamily(
            "fairtix_state_up",
            "1 if the last read of the database's state for these gauges succeeded",
        )
        families: list[GaugeMetricFamily] = []
        start = time.perf_counter()
        try:
            families += self._database(runtime)
        except Exception:
            log.exception("metrics: reading the database's state failed")
            up.add_metric([], 0)
            return [up]
        try:
            families += self._waiting_rooms(runtime)
        except Exception:
            # The queue store (Redis) may be down while the database is not: keep the rest.
            log.exception("metrics: reading the waiting rooms failed")
        up.add_metric([], 1)
        took = GaugeMetricFamily(
            "fairtix_state_read_seconds", "How long the last read of these gauges took"
        )
        took.add_metric([], time.perf_counter() - start)
        return [up, took, *families]

    def _database(self, runtime: Runtime) -> list[GaugeMetricFamily]:
        now = utcnow()
        depth = GaugeMetricFamily(
            "fairtix_outbox_depth", "Outbox messages not yet done, by kind", labels=["kind"]
        )
        oldest = GaugeMetricFamily(
            "fairtix_outbox_oldest_age_seconds",
            "Age of the oldest outbox message not yet done, by kind (0: none pending)",
            labels=["kind"],
        )
        stuck = GaugeMetricFamily(
            "fairtix_outbox_stuck",
            "Outbox messages not done after FAIRTIX_OUTBOX_MAX_ATTEMPTS attempts, by kind",
            labels=["kind"],
        )
        orders = GaugeMetricFamily("fairtix_orders", "Orders by status", labels=["status"])
        refunds = GaugeMetricFamily(
            "fairtix_refunds_pending", "Card refunds queued with the provider and not confirmed"
        )
        holder = GaugeMetricFamily(
            "fairtix_holder_refunds",
            "A cancelled event's refunds to ticket holders not yet paid (pending) or that can't "
            "be (failed: an ether transfer the holder's wallet refused; an operator pays it), "
            "by rail",
            labels=["rail", "state"],
        )
        backlog = GaugeMetricFamily(
            "fairtix_mint_backlog_orders", "Paid card orders whose tickets are not minted yet"
        )
        backlog_age = GaugeMetricFamily(
            "fairtix_mint_backlog_oldest_seconds",
            "Time since the oldest paid card order still waiting for its tickets was paid "
            "(0: none waiting)",
        )
        outbox = OutboxMessage.__table__.c
        with transaction(runtime.sessions) as session:
            pending = {
                kind: (count, first, failing)
                for kind, count, first, failing in session.execute(
                    select(
                        outbox.kind,
                        func.count(),
                        func.min(outbox.created_at),
                        func.count().filter(outbox.attempts >= self._max_attempts),
                    )
                    .where(outbox.done_at.is_(None))
                    .group_by(outbox.kind)
                )
            }
            by_status = dict(
                session.execute(select(Order.status, func.count()).group_by(Order.status)).all()
            )
            # A refund held while the card's bank decides a chargeback is not with the provider
            # (it waits weeks, by design): the sales report counts those apart.
            refunds_pending = session.scalar(
                select(func.count()).where(
                    Order.refund_due_at.is_not(None),
                    Order.refunded_at.is_(None),
                    not_(sales.dispute_holds_refund_sql()),
                )
            )
            unpaid: Counter[tuple[str, str]] = Counter()
            for rail, status, count in session.execute(
                select(HolderRefund.rail, HolderRefund.status, func.count())
                .where(HolderRefund.status != REFUND_PAID)
                .group_by(HolderRefund.rail, HolderRefund.status)
            ):
                state = {REFUND_FAILED: "failed", REFUND_HELD: "held"}.get(status, "pending")
                unpaid[rail, state] += count
            waiting_count, first_paid = session.execute(
                select(func.count(func.distinct(Order.id)), func.min(OrderTransition.at))
                .join(OrderTransition, OrderTransition.order_id == Order.id)
                .where(
                    Order.status.in_((sales.PAID, sales.MINTING)),
                    OrderTransition.to_status == sales.PAID,
                )
            ).one()
        for kind in sorted({*OUTBOX_KINDS, *pending}):
            count, first, failing = pending.get(kind, (0, None, 0))
            depth.add_metric([kind], count)
            age = 0.0 if first is None else max((now - first).total_seconds(), 0.0)
            oldest.add_metric([kind], age)
            stuck.add_metric([kind], failing)
        for status in sorted({*ORDER_STATUSES, *by_status}):
            orders.add_metric([status], by_status.get(status, 0))
        refunds.add_metric([], refunds_pending or 0)
        for rail in ("card", "ether"):
            for state in ("pending", "held", "failed"):
                holder.add_metric([rail, state], unpaid[rail, state])
        backlog.add_metric([], waiting_count or 0)
        lag = 0.0 if first_paid is None else max((now - first_paid).total_seconds(), 0.0)
        backlog_age.add_metric([], lag)
        return [depth, oldest, stuck, orders, refunds, holder, backlog, backlog_age]

    def _waiting_rooms(self, runtime: Runtime) -> list[GaugeMetricFamily]:
        now = utcnow()
        label = ["event_id"]
        waiting = GaugeMetricFamily(
            "fairtix_queue_waiting", "Wallets waiting in the event's queue", labels=label
        )
        admitted = GaugeMetricFamily(
            "fairtix_queue_admitted", "Wallets admitted and not yet done or expired", labels=label
        )
        per_minute = GaugeMetricFamily(
            "fairtix_queue_admissions_per_minute",
            "Admissions actually granted per minute, measured over the last two minutes",
            labels=label,
        )
        abandonment = GaugeMetricFamily(
            "fairtix_queue_abandonment_ratio",
            "Share of the turns given (admitted, done, expired, set aside) that were lost: "
            "expired unused or set aside for not polling",
            labels=label,
        )
        with transaction(runtime.sessions) as session:
            event_ids = list(
                session.scalars(
                    select(Event.id)
                    .where(
                        Event.cancelled_at.is_(None),
                        Event.starts_at > now,
                        Event.sale_opens_at <= now + SALE_HORIZON,
                    )
                    .order_by(Event.sale_opens_at.desc())
                    .limit(MAX_EVENTS)
                )
            )
        for event_id in event_ids:
            _config, stats, measured = runtime.queue.admin_stats(event_id, now)
            labels = [str(event_id)]
            waiting.add_metric(labels, stats.waiting)
            admitted.add_metric(labels, stats.admitted)
            per_minute.add_metric(labels, measured or 0.0)
            turns = stats.admitted + stats.done + stats.expired + stats.away
            lost = stats.expired + stats.away
            abandonment.add_metric(labels, lost / turns if turns else 0.0)
        return [waiting, admitted, per_minute, abandonment]
