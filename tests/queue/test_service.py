"""The thin waiting room: durable places, ordered admission under a cap, expiring admissions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.queue import service as queue
from backend.queue import tokens
from backend.queue.errors import InvalidQueueToken, NotAdmitted, NotInQueue, QueueClosed
from backend.queue.models import QueueEntry
from tests.helpers import insert_event, wallet

pytestmark = pytest.mark.db

SECRET = b"queue-test-secret"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def make_event(session: Session, *, max_admitted: int = 2, supply: int = 10) -> Event:
    event = insert_event(session, sale_opens_at=T0, max_admitted=max_admitted, supply=supply)
    session.commit()
    return event


def test_join_twice_returns_the_same_place(session: Session) -> None:
    event = make_event(session)
    before_open = T0 - timedelta(hours=1)
    first = queue.join(session, event, wallet(1), SECRET, before_open)
    queue.join(session, event, wallet(2), SECRET, before_open)
    again = queue.join(session, event, wallet(1), SECRET, before_open)
    assert first.state == again.state == "waiting"
    assert tokens.verify(first.token, SECRET).seq == tokens.verify(again.token, SECRET).seq == 1
    assert queue.status(session, event, wallet(2), SECRET, before_open).position == 1


def test_nobody_is_admitted_before_the_sale_opens(session: Session) -> None:
    event = make_event(session)
    status = queue.join(session, event, wallet(1), SECRET, T0 - timedelta(seconds=1))
    assert status.state == "waiting" and status.eta_seconds is None
    with pytest.raises(NotAdmitted):
        queue.require_admission(session, event, wallet(1), T0 - timedelta(seconds=1))


def test_admission_follows_arrival_order_under_the_cap(session: Session) -> None:
    event = make_event(session, max_admitted=2)
    for n in range(1, 5):
        queue.join(session, event, wallet(n), SECRET, T0 - timedelta(minutes=5 - n))
    states = [queue.status(session, event, wallet(n), SECRET, T0).state for n in range(1, 5)]
    assert states == ["admitted", "admitted", "waiting", "waiting"]
    assert queue.status(session, event, wallet(4), SECRET, T0).position == 1
    # Finishing frees a slot for the next in line, not for a later arrival.
    queue.finish(session, event.id, wallet(1))
    assert queue.status(session, event, wallet(3), SECRET, T0).state == "admitted"
    assert queue.status(session, event, wallet(4), SECRET, T0).state == "waiting"


def test_expired_admissions_free_their_slot(session: Session) -> None:
    event = make_event(session, max_admitted=1)
    queue.join(session, event, wallet(1), SECRET, T0)
    queue.join(session, event, wallet(2), SECRET, T0)
    later = T0 + timedelta(seconds=event.admission_ttl_seconds + 1)
    assert queue.status(session, event, wallet(1), SECRET, later).state == "expired"
    assert queue.status(session, event, wallet(2), SECRET, later).state == "admitted"
    with pytest.raises(NotAdmitted):
        queue.require_admission(session, event, wallet(1), later)


def test_eta_comes_from_measured_admissions(session: Session) -> None:
    event = make_event(session, max_admitted=1)
    for n in range(1, 4):
        queue.join(session, event, wallet(n), SECRET, T0)
    status = queue.status(session, event, wallet(3), SECRET, T0 + timedelta(seconds=1))
    assert status.position == 1
    # One admission in the 5-minute window: 1/300 per second, two places to go.
    assert status.eta_seconds == 600


def test_join_is_refused_after_sell_out_or_start(session: Session) -> None:
    event = make_event(session, supply=1)
    event.tiers[0].reserved = 1
    session.commit()
    with pytest.raises(QueueClosed, match="sold out"):
        queue.join(session, event, wallet(1), SECRET, T0)
    with pytest.raises(QueueClosed, match="started"):
        queue.join(session, event, wallet(2), SECRET, event.starts_at)


def test_status_of_a_stranger_is_not_in_queue(session: Session) -> None:
    event = make_event(session)
    with pytest.raises(NotInQueue):
        queue.status(session, event, wallet(9), SECRET, T0)


def test_queue_token_from_another_wallet_or_forged_is_rejected(session: Session) -> None:
    event = make_event(session)
    mine = queue.join(session, event, wallet(1), SECRET, T0).token
    queue.join(session, event, wallet(2), SECRET, T0)
    with pytest.raises(InvalidQueueToken, match="another event or wallet"):
        queue.status(session, event, wallet(2), SECRET, T0, token=mine)
    forged = mine[:-4] + ("AAAA" if not mine.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidQueueToken, match="signature"):
        queue.status(session, event, wallet(1), SECRET, T0, token=forged)
    with pytest.raises(InvalidQueueToken, match="malformed"):
        tokens.verify("q1.nope", SECRET)
    assert queue.status(session, event, wallet(1), SECRET, T0, token=mine).state == "admitted"


def test_concurrent_joins_get_unique_places_with_no_gaps(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    try:
        with transaction(sessions) as session:
            event_id = insert_event(session, sale_opens_at=T0, max_admitted=5, supply=10).id
        wallets = [wallet(n) for n in range(100, 130)]
        start = threading.Barrier(len(wallets))
        errors: list[BaseException] = []

        def join(address: str) -> None:
            start.wait()
            try:
                with transaction(sessions) as session:
                    event = session.get(Event, event_id)
                    assert event is not None
                    queue.join(session, event, address, SECRET, T0 - timedelta(minutes=1))
            except BaseException as exc:  # surfaced below; a thread can't fail the test itself
                errors.append(exc)

        threads = [threading.Thread(target=join, args=(address,)) for address in wallets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        with transaction(sessions) as session:
            seqs = sorted(session.scalars(select(QueueEntry.seq)))
            owners = list(session.scalars(select(QueueEntry.wallet)))
        assert seqs == list(range(1, len(wallets) + 1))
        assert sorted(owners) == sorted(wallets)
    finally:
        engine.dispose()


def test_lapsed_admission_can_join_again_at_the_back(session: Session) -> None:
    event = make_event(session, max_admitted=1)
    queue.join(session, event, wallet(1), SECRET, T0)
    queue.join(session, event, wallet(2), SECRET, T0)
    later = T0 + timedelta(seconds=event.admission_ttl_seconds + 1)
    assert queue.status(session, event, wallet(1), SECRET, later).state == "expired"
    again = queue.join(session, event, wallet(1), SECRET, later)
    assert again.state == "waiting" and again.position == 0
    assert tokens.verify(again.token, SECRET).seq == 3  # behind everyone who joined before
    assert queue.status(session, event, wallet(2), SECRET, later).state == "admitted"
