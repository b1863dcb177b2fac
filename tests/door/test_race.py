"""Two gates scanning the same ticket at the same instant admit it once: real concurrent
transactions on PostgreSQL (SQLite runs one writer at a time, so the race proves nothing there)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.db.engine import make_engine, make_session_factory, transaction
from backend.door import service as door
from backend.door.models import DoorAdmission
from tests.door.helpers import NOW, POLICY, code_for, door_event, token
from tests.helpers import wallet

pytestmark = pytest.mark.db

TICKETS = 40


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the race needs concurrent writers: runs on PostgreSQL")
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_two_gates_scanning_one_ticket_at_once_admit_it_once(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        setup = door_event(session, tickets=TICKETS)
        south, south_credential = door.register_device(
            session, setup.event.id, "South", "", wallet(1)
        )
        event_id = setup.event.id
        codes = [code_for(session, event_id, token(i), NOW) for i in range(1, TICKETS + 1)]
    gates = {"North": setup.credential, "South": south_credential}
    answers: list[tuple[str, str, str | None]] = []
    lock = threading.Lock()

    def gate(name: str, credential: str, barrier: threading.Barrier) -> None:
        for index, code in enumerate(codes):
            barrier.wait()
            try:
                with transaction(sessions) as session:
                    device = door.authenticate(session, credential, NOW)
                    request = door.ScanRequest(code, name, f"{name}-{index}", NOW)
                    answer = door.scan(session, POLICY, device, request, NOW)
            except Exception as exc:  # pragma: no cover - reported below
                with lock:
                    answers.append((name, "error", repr(exc)))
                continue
            with lock:
                answers.append((name, answer.result, answer.reason))

    barrier = threading.Barrier(len(gates))
    threads = [threading.Thread(target=gate, args=(n, c, barrier)) for n, c in gates.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    results = Counter((result, reason) for _gate, result, reason in answers)
    assert results == {("admitted", None): TICKETS, ("refused", "already-used"): TICKETS}
    with Session(sessions.kw["bind"]) as session:
        admitted = session.scalar(select(func.count()).select_from(DoorAdmission))
        per_ticket = session.execute(
            select(DoorAdmission.token_id, func.count()).group_by(DoorAdmission.token_id)
        ).all()
    assert admitted == TICKETS
    assert {count for _token, count in per_ticket} == {1}
    assert south.gate == "South"


def test_one_scan_sent_twice_at_once_is_answered_once(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        setup = door_event(session, tickets=1)
        code = code_for(session, setup.event.id, token(1), NOW)
    answers: list[tuple[str, bool]] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        request = door.ScanRequest(code, "North", "the-same-scan", NOW)
        barrier.wait()
        try:
            with transaction(sessions) as session:
                device = door.authenticate(session, setup.credential, NOW)
                answer = door.scan(session, POLICY, device, request, NOW)
        except door.DuplicateScan:
            # What the route does: the first request's answer, from its record.
            with transaction(sessions) as session:
                found = door.recorded_answer(session, setup.device.id, "the-same-scan")
            assert found is not None
            answer = found
        answers.append((answer.result, answer.replayed))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(answers) == [("admitted", False), ("admitted", True)]
    with Session(sessions.kw["bind"]) as session:
        assert session.scalar(select(func.count()).select_from(DoorAdmission)) == 1
