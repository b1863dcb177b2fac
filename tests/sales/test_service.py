"""Orders: holds never exceed supply, the state machine refuses illegal moves, holds expire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event, Tier
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.outbox import OutboxMessage
from backend.queue import service as queue
from backend.sales import service as sales
from backend.sales.errors import (
    IllegalTransition,
    OrderInProgress,
    QuantityNotAllowed,
    SaleNotOpen,
    SoldOut,
    TierNotFound,
)
from backend.sales.models import Order
from tests.helpers import insert_event, wallet

pytestmark = pytest.mark.db

SECRET = b"sales-test-secret"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


def now() -> datetime:
    return datetime.now(UTC)


def make_event(sessions: sessionmaker[Session], supply: int = 5, max_admitted: int = 1000) -> int:
    with transaction(sessions) as session:
        opened = now() - timedelta(minutes=1)
        return insert_event(
            session, sale_opens_at=opened, max_admitted=max_admitted, supply=supply
        ).id


def admit(sessions: sessionmaker[Session], event_id: int, wallet: str) -> None:
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        queue.join(session, event, wallet, SECRET)


def tier_id(sessions: sessionmaker[Session], event_id: int) -> int:
    with transaction(sessions) as session:
        return int(session.scalar(select(Tier.id).where(Tier.event_id == event_id)) or 0)


def reserved(sessions: sessionmaker[Session], event_id: int) -> int:
    with transaction(sessions) as session:
        return int(session.scalar(select(Tier.reserved).where(Tier.event_id == event_id)) or 0)


def place(sessions: sessionmaker[Session], event_id: int, wallet: str, quantity: int = 1) -> int:
    with transaction(sessions) as session:
        order, _held = sales.place_order(
            session, event_id, tier_id(sessions, event_id), quantity, wallet
        )
        return order.id


def test_concurrent_buyers_never_oversell(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions, supply=5)
    buyers = [wallet(n) for n in range(1, 25)]
    for buyer in buyers:
        admit(sessions, event_id, buyer)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(buyers))

    def buy(buyer: str) -> None:
        start.wait()
        try:
            place(sessions, event_id, buyer)
            result = "held"
        except SoldOut:
            result = "sold-out"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count("held") == 5
    assert outcomes.count("sold-out") == len(buyers) - 5
    assert reserved(sessions, event_id) == 5
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 5


def test_order_rules_are_enforced(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions)
    buyer = wallet(1)
    admit(sessions, event_id, buyer)
    with pytest.raises(QuantityNotAllowed):
        place(sessions, event_id, buyer, quantity=5)
    with transaction(sessions) as session, pytest.raises(TierNotFound):
        sales.place_order(session, event_id, 999_999, 1, buyer)
    place(sessions, event_id, buyer)
    with pytest.raises(OrderInProgress):
        place(sessions, event_id, buyer)
    assert reserved(sessions, event_id) == 1


def test_orders_are_refused_before_the_sale_opens(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions)
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        event.sale_opens_at = now() + timedelta(hours=1)
    with pytest.raises(SaleNotOpen):
        place(sessions, event_id, wallet(1))


def test_illegal_transitions_are_refused_and_not_recorded(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions)
    admit(sessions, event_id, wallet(1))
    order_id = place(sessions, event_id, wallet(1))
    with transaction(sessions) as session:
        order = sales.get_order(session, order_id)
        with pytest.raises(IllegalTransition):
            sales.transition(session, order, sales.FULFILLED, "skipping payment")
        assert order.status == sales.HELD
        assert [t.to_status for t in sales.transitions_of(session, order_id)] == [sales.HELD]


def test_expired_holds_give_seats_back(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions, supply=2)
    admit(sessions, event_id, wallet(1))
    order_id = place(sessions, event_id, wallet(1), quantity=2)
    assert reserved(sessions, event_id) == 2
    with transaction(sessions) as session:
        assert sales.release_expired_holds(session, now()) == 0
        assert sales.release_expired_holds(session, now() + timedelta(minutes=11)) == 1
    assert reserved(sessions, event_id) == 0
    with transaction(sessions) as session:
        assert sales.get_order(session, order_id).status == sales.EXPIRED


def test_payment_after_expiry_is_honoured_while_seats_remain(
    sessions: sessionmaker[Session],
) -> None:
    event_id = make_event(sessions, supply=1)
    admit(sessions, event_id, wallet(1))
    order_id = place(sessions, event_id, wallet(1))
    with transaction(sessions) as session:
        order = sales.get_order(session, order_id)
        sales.start_payment(session, order, "sandbox", "pi_late")
    with transaction(sessions) as session:
        sales.release_expired_holds(session, now() + timedelta(hours=1))
    assert reserved(sessions, event_id) == 0
    with transaction(sessions) as session:
        order = sales.get_order(session, order_id)
        assert sales.mark_paid(session, order, 1000, "eur", "late webhook")
        # Its seats are numbered when the worker batches its mint.
        assert order.status == sales.PAID and order.first_seat is None
    assert reserved(sessions, event_id) == 1
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_seats_are_numbered_in_order_once_per_order(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions, supply=10)
    order_ids = []
    for n, quantity in ((1, 2), (2, 3), (3, 1)):
        admit(sessions, event_id, wallet(n))
        order_ids.append(place(sessions, event_id, wallet(n), quantity))
    with transaction(sessions) as session:
        first, second, third = (sales.get_order(session, i) for i in order_ids)
        sales.number_seats(session, [second, first])
        assert (first.first_seat, second.first_seat) == (1, 3)
    with transaction(sessions) as session:
        first, second, third = (sales.get_order(session, i) for i in order_ids)
        # Numbered orders keep their seats; the next continues after the last seat given.
        sales.number_seats(session, [first, second, third])
        assert (first.first_seat, second.first_seat, third.first_seat) == (1, 3, 6)
        assert session.get(Tier, first.tier_id).seats_assigned == 6  # type: ignore[union-attr]


def test_late_payment_for_a_sold_out_tier_is_flagged_not_oversold(
    sessions: sessionmaker[Session],
) -> None:
    event_id = make_event(sessions, supply=1)
    admit(sessions, event_id, wallet(1))
    admit(sessions, event_id, wallet(2))
    first = place(sessions, event_id, wallet(1))
    with transaction(sessions) as session:
        sales.start_payment(session, sales.get_order(session, first), "sandbox", "pi_first")
    with transaction(sessions) as session:
        sales.release_expired_holds(session, now() + timedelta(hours=1))
    place(sessions, event_id, wallet(2))  # takes the seat the first buyer let lapse
    with transaction(sessions) as session:
        order = sales.get_order(session, first)
        assert not sales.mark_paid(session, order, 1000, "eur", "late webhook")
        assert order.status == sales.EXPIRED
        assert "refund queued" in (order.failure_reason or "")
    assert reserved(sessions, event_id) == 1


def test_cancel_releases_the_hold(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions)
    admit(sessions, event_id, wallet(1))
    order_id = place(sessions, event_id, wallet(1), quantity=3)
    with transaction(sessions) as session:
        sales.cancel_order(session, sales.get_order(session, order_id))
    assert reserved(sessions, event_id) == 0
    with transaction(sessions) as session, pytest.raises(IllegalTransition):
        sales.cancel_order(session, sales.get_order(session, order_id))


def test_repeated_checkout_does_not_extend_the_hold(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions)
    admit(sessions, event_id, wallet(1))
    order_id = place(sessions, event_id, wallet(1))
    with transaction(sessions) as session:
        order = sales.get_order(session, order_id, for_update=True)
        sales.start_payment(session, order, "sandbox", "pi_1")
        first_expiry = order.hold_expires_at
    with transaction(sessions) as session:
        order = sales.get_order(session, order_id, for_update=True)
        sales.start_payment(session, order, "sandbox", "pi_1", now=now() + timedelta(minutes=14))
        assert order.hold_expires_at == first_expiry


def test_cancel_after_expiry_is_refused_and_releases_nothing(
    sessions: sessionmaker[Session],
) -> None:
    event_id = make_event(sessions, supply=2)
    admit(sessions, event_id, wallet(1))
    admit(sessions, event_id, wallet(2))
    first = place(sessions, event_id, wallet(1))
    with transaction(sessions) as session:
        sales.release_expired_holds(session, now() + timedelta(hours=1))
    place(sessions, event_id, wallet(2))
    with transaction(sessions) as session, pytest.raises(IllegalTransition):
        sales.cancel_order(session, sales.get_order(session, first, for_update=True))
    assert reserved(sessions, event_id) == 1  # the second buyer's seat is still held


def test_a_reorged_purchase_expires_if_its_buyer_has_opened_another_order(
    sessions: sessionmaker[Session],
) -> None:
    """A reorg takes a crypto payment back while its hold lasts: the order would wait for
    payment again, but its buyer already holds a newer order, and only one may be open."""
    event_id = make_event(sessions, supply=5)
    admit(sessions, event_id, wallet(1))
    first = place(sessions, event_id, wallet(1), quantity=2)
    with transaction(sessions) as session:
        order = sales.get_order(session, first)
        sales.start_payment(session, order, sales.CRYPTO, "permit-1")
        assert sales.mark_paid(session, order, 2000, "eur", "purchase mined", queue_mint=False)
        sales.transition(session, order, sales.FULFILLED, "purchase mined")
    place(sessions, event_id, wallet(1), quantity=1)
    assert reserved(sessions, event_id) == 3

    with transaction(sessions) as session:
        order = sales.get_order(session, first)
        sales.undo_payment(session, order, "block orphaned by a reorg")
        assert order.status == sales.EXPIRED
    assert reserved(sessions, event_id) == 1


def _payment_record(sessions: sessionmaker[Session], order_id: int) -> tuple[object, ...]:
    with transaction(sessions) as session:
        order = sales.get_order(session, order_id)
        steps = [
            (t.from_status, t.to_status, t.cause) for t in sales.transitions_of(session, order_id)
        ]
        return (
            order.status,
            order.payment_provider,
            order.payment_intent_id,
            order.hold_expires_at,
            steps,
        )


def test_start_held_payment_records_what_start_payment_records(
    sessions: sessionmaker[Session],
) -> None:
    """The checkout's two-statement path and the general one leave the same order behind:
    status, payment, the hold extended by PAYMENT_GRACE, the transition, and the admission."""
    event_id = make_event(sessions)
    for buyer in (wallet(1), wallet(2)):
        admit(sessions, event_id, buyer)
    general, fast = place(sessions, event_id, wallet(1)), place(sessions, event_id, wallet(2))
    at = now()
    with transaction(sessions) as session:
        sales.start_payment(session, sales.get_order(session, general), "sandbox", "pi_x", at)
    with transaction(sessions) as session:
        started = sales.start_held_payment(session, fast, wallet(2).upper(), "sandbox", "pi_x", at)
    assert started is not None
    assert started.hold_expires_at == at + sales.PAYMENT_GRACE
    assert (started.event_id, started.at) == (event_id, at)
    assert _payment_record(sessions, fast) == _payment_record(sessions, general)
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        # The admission lasts as long as the hold, so the buyer's hold is not swept early.
        for buyer in (wallet(1), wallet(2)):
            place_now = queue.require_admission(session, event, buyer, at)
            assert place_now.admission_expires_at == at + sales.PAYMENT_GRACE


def test_start_held_payment_leaves_every_other_order_unchanged(
    sessions: sessionmaker[Session],
) -> None:
    """Another buyer's order, an order already awaiting payment, an expired one, and one of a
    cancelled event: None, nothing written; the general path says what is wrong."""
    event_id = make_event(sessions)
    for buyer in (wallet(1), wallet(2), wallet(3)):
        admit(sessions, event_id, buyer)
    paying, expired, cancelled = (place(sessions, event_id, wallet(n)) for n in (1, 2, 3))
    with transaction(sessions) as session:
        sales.start_payment(session, sales.get_order(session, paying), "sandbox", "pi_1")
    with transaction(sessions) as session:
        sales.transition(session, sales.get_order(session, expired), sales.EXPIRED, "test")
    before = {n: _payment_record(sessions, n) for n in (paying, expired, cancelled)}

    cases = [(paying, wallet(1)), (expired, wallet(2)), (cancelled, wallet(1))]
    for order_id, buyer in cases:
        with transaction(sessions) as session:
            assert sales.start_held_payment(session, order_id, buyer, "sandbox", "pi_2") is None
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        event.cancelled_at = now()
    with transaction(sessions) as session:
        assert sales.start_held_payment(session, cancelled, wallet(3), "sandbox", "pi_3") is None
    assert {n: _payment_record(sessions, n) for n in before} == before


def _mint_messages(sessions: sessionmaker[Session]) -> list[dict[str, object]]:
    with transaction(sessions) as session:
        return [
            m.payload
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == sales.MINT_ORDER)
            )
        ]


def test_pay_awaited_order_records_what_mark_paid_records(
    sessions: sessionmaker[Session],
) -> None:
    """The payment webhook's three-statement path and mark_paid leave the same order behind,
    with the same transition, and queue the same mint."""
    event_id = make_event(sessions)
    for buyer in (wallet(1), wallet(2)):
        admit(sessions, event_id, buyer)
    general, fast = place(sessions, event_id, wallet(1), 2), place(sessions, event_id, wallet(2), 2)
    for order_id in (general, fast):
        with transaction(sessions) as session:
            order = sales.get_order(session, order_id)
            sales.start_payment(session, order, "sandbox", f"pi_{order_id}")
    with transaction(sessions) as session:
        order = sales.get_order(session, general, for_update=True)
        assert sales.mark_paid(session, order, 2000, "EUR", "payment_intent.succeeded evt_1")
    with transaction(sessions) as session:
        paid = sales.pay_awaited_order(
            session, "sandbox", f"pi_{fast}", 2000, "EUR", "payment_intent.succeeded evt_1"
        )
    assert paid == fast
    general_record, fast_record = (
        _payment_record(sessions, general),
        _payment_record(sessions, fast),
    )
    assert fast_record[0] == sales.PAID
    # Status and transitions; the payment fields are each order's own.
    assert (fast_record[0], fast_record[4]) == (general_record[0], general_record[4])
    assert _mint_messages(sessions) == [{"order_id": general}, {"order_id": fast}]


def test_pay_awaited_order_leaves_every_other_payment_to_mark_paid(
    sessions: sessionmaker[Session],
) -> None:
    """A wrong total or currency, another provider, an unknown intent, an order not awaiting
    payment, and an order of a cancelled event: None, nothing written."""
    event_id = make_event(sessions)
    for buyer in (wallet(1), wallet(2)):
        admit(sessions, event_id, buyer)
    awaiting, held = place(sessions, event_id, wallet(1), 2), place(sessions, event_id, wallet(2))
    with transaction(sessions) as session:
        sales.start_payment(session, sales.get_order(session, awaiting), "sandbox", "pi_a")
    before = {n: _payment_record(sessions, n) for n in (awaiting, held)}

    def pay(provider: str, intent: str, amount: int, currency: str) -> int | None:
        with transaction(sessions) as session:
            return sales.pay_awaited_order(session, provider, intent, amount, currency, "test")

    assert pay("sandbox", "pi_a", 1999, "eur") is None
    assert pay("sandbox", "pi_a", 2000, "usd") is None
    assert pay("stripe", "pi_a", 2000, "eur") is None
    assert pay("sandbox", "pi_unknown", 2000, "eur") is None
    with transaction(sessions) as session:
        order = sales.get_order(session, held)
        order.payment_provider, order.payment_intent_id = "sandbox", "pi_h"
    assert pay("sandbox", "pi_h", 1000, "eur") is None  # held: checkout never moved it
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        event.cancelled_at = now()
    assert pay("sandbox", "pi_a", 2000, "eur") is None
    after = {n: _payment_record(sessions, n) for n in before}
    assert after[awaiting] == before[awaiting]
    assert after[held][0] == sales.HELD and after[held][4] == before[held][4]
    assert _mint_messages(sessions) == []


def test_transition_all_moves_every_order_or_none(sessions: sessionmaker[Session]) -> None:
    """One UPDATE and one INSERT for many orders: each gets its move recorded and the extra
    column, the loaded objects show it without a dirty change left; one illegal move among
    them stops all of them."""
    event_id = make_event(sessions)
    buyers = [wallet(n) for n in (1, 2, 3)]
    for buyer in buyers:
        admit(sessions, event_id, buyer)
    ids = [place(sessions, event_id, buyer) for buyer in buyers]
    with transaction(sessions) as session:
        orders = [sales.get_order(session, order_id) for order_id in ids]
        sales.transition(session, orders[2], sales.CANCELLED, "test")
    with transaction(sessions) as session:
        orders = [sales.get_order(session, order_id) for order_id in ids]
        with pytest.raises(IllegalTransition):
            sales.transition_all(session, orders, sales.EXPIRED, "swept")
    assert [_payment_record(sessions, n)[0] for n in ids] == ["held", "held", "cancelled"]

    with transaction(sessions) as session:
        orders = [sales.get_order(session, order_id) for order_id in ids[:2]]
        sales.transition_all(session, orders, sales.EXPIRED, "swept", failure_reason="late")
        assert [o.status for o in orders] == [sales.EXPIRED, sales.EXPIRED]
        assert not session.dirty
    for order_id in ids[:2]:
        status, *_rest, steps = _payment_record(sessions, order_id)
        assert status == sales.EXPIRED
        assert steps[-1] == (sales.HELD, sales.EXPIRED, "swept")
    with transaction(sessions) as session:
        assert sales.get_order(session, ids[0]).failure_reason == "late"
