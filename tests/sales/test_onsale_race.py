"""The on-sale race on PostgreSQL: 500 admitted buyers go for 100 seats at the same moment.

Exactly 100 get seats and pay, each paid seat is numbered once, and a seat given back by a
declined payment goes to exactly one of the buyers still trying. Runs in CI's PostgreSQL pass
(``make test-postgres``); SQLite serialises writers, so the race would prove nothing there.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event, Tier
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.outbox import OutboxMessage
from backend.queue import service as queue
from backend.sales import service as sales
from backend.sales.errors import OrderInProgress, SoldOut
from backend.sales.models import Order
from tests.helpers import wallet
from tests.sales.test_service import SECRET, make_event, tier_id

pytestmark = pytest.mark.db

BUYERS, SEATS, DECLINED = 500, 100, 20


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the race needs concurrent writers: runs on PostgreSQL")
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def race(buyers: list[str], attempt: Callable[[str], str]) -> Counter[str]:
    """Every buyer calls ``attempt`` at once (a barrier releases them together)."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(buyers))
    # What an API process does with 500 requests at once: uvicorn's thread pool works 40 of
    # them at a time and the rest wait their turn (they don't time out on the database pool).
    server_threads = threading.BoundedSemaphore(40)

    def run(buyer: str) -> None:
        start.wait()
        try:
            with server_threads:
                result = attempt(buyer)
        except Exception as exc:  # counted, so the assertion below shows what went wrong
            result = f"{type(exc).__name__}: {exc}"[:200]
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_500_buyers_for_100_seats_sell_exactly_100(sessions: sessionmaker[Session]) -> None:
    event_id = make_event(sessions, supply=SEATS)
    with transaction(sessions) as session:
        # Everyone is admitted before the race: the waiting room is not what is under test.
        session.execute(
            update(Event).where(Event.id == event_id).values(admissions_per_minute=10**6)
        )
    tier = tier_id(sessions, event_id)
    buyers = [wallet(n) for n in range(1, BUYERS + 1)]
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        for buyer in buyers:  # one transaction: the set-up, not the race, is slow otherwise
            queue.join(session, event, buyer, SECRET)
    order_of: dict[str, int] = {}

    def hold(buyer: str) -> str:
        try:
            with transaction(sessions) as session:
                order_of[buyer] = sales.place_order(session, event_id, tier, 1, buyer)[0].id
        except SoldOut:
            return "sold-out"
        return "held"

    assert race(buyers, hold) == Counter({"held": SEATS, "sold-out": BUYERS - SEATS})

    holders = sorted(order_of, key=order_of.__getitem__)
    decliners = holders[:DECLINED]

    def pay(buyer: str) -> str:
        with transaction(sessions) as session:
            order = sales.get_order(session, order_of[buyer], for_update=True)
            sales.start_payment(session, order, "sandbox", f"pi_{order.id}")
            if buyer in decliners:
                sales.mark_payment_failed(session, order, "card_declined")
                return "declined"
            total = order.quantity * order.unit_price_cents
            return "paid" if sales.mark_paid(session, order, total, order.currency, "t") else "no"

    # The payments land while the buyers who were turned away try again: the 20 seats that
    # declined cards give back go to 20 of them, and no more.
    losers = [buyer for buyer in buyers if buyer not in order_of]

    def pay_or_retry(buyer: str) -> str:
        return pay(buyer) if buyer in order_of else "retry-" + hold(buyer)

    outcomes = race(holders + losers, pay_or_retry)

    assert outcomes["paid"] == SEATS - DECLINED
    assert outcomes["declined"] == DECLINED
    # A retrying buyer can be turned away before a declined seat comes back: at most 20 win.
    assert outcomes["retry-held"] <= DECLINED
    assert outcomes["retry-held"] + outcomes["retry-sold-out"] == len(losers)
    with transaction(sessions) as session:
        tier_row = session.get(Tier, tier)
        assert tier_row is not None
        live = session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.event_id == event_id, Order.status.in_(["paid", "held"]))
        )
        assert tier_row.reserved == live == SEATS - DECLINED + outcomes["retry-held"]
        assert tier_row.reserved <= tier_row.supply
        paid = list(
            session.scalars(select(Order).where(Order.event_id == event_id, Order.status == "paid"))
        )
        # Seats are numbered when the mints are batched, not at payment: none yet, then every
        # paid order gets its own, 1..80.
        assert tier_row.seats_assigned == 0 and {o.first_seat for o in paid} == {None}
        sales.number_seats(session, paid)
        assert sorted(o.first_seat or 0 for o in paid) == list(range(1, SEATS - DECLINED + 1))
        numbered = session.scalar(select(Tier.seats_assigned).where(Tier.id == tier))
        assert numbered == SEATS - DECLINED
    # Whoever is still trying gets the rest of the given-back seats; then it is sold out again.
    late_holds = sum(hold(buyer) == "held" for buyer in losers if buyer not in order_of)
    assert outcomes["retry-held"] + late_holds == DECLINED
    with transaction(sessions) as session:
        tier_row = session.get(Tier, tier)
        assert tier_row is not None and tier_row.reserved == SEATS
        mints = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == sales.MINT_ORDER)
        )
        assert mints == SEATS - DECLINED


def test_one_wallet_racing_itself_gets_one_open_order(sessions: sessionmaker[Session]) -> None:
    """Ten tabs of one fan press "buy" at once: one hold, the rest told an order is open. The
    one-open-order rule is what keeps a card buyer to one order of the per-order maximum."""
    event_id = make_event(sessions, supply=SEATS)
    tier = tier_id(sessions, event_id)
    buyer = wallet(1)
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        assert event is not None
        queue.join(session, event, buyer, SECRET)

    def hold(_tab: str) -> str:
        try:
            with transaction(sessions) as session:
                sales.place_order(session, event_id, tier, 4, buyer)
        except OrderInProgress:
            return "order-in-progress"
        return "held"

    outcomes = race([f"tab {n}" for n in range(10)], hold)

    assert outcomes == Counter({"held": 1, "order-in-progress": 9})
    with transaction(sessions) as session:
        held = session.scalar(select(func.sum(Tier.reserved)).where(Tier.event_id == event_id))
        assert held == 4
