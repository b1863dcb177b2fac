"""The two-statement scan (backend.door.quick) on PostgreSQL: the same answers and rows as the
general path, None (and nothing written) whenever the general path must decide, and two gates
at the same instant admitting a ticket once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.door import fast_lane
from backend.door import service as door
from backend.door.models import DoorAdmission, DoorScan, ScannerDevice
from backend.door.quick import DoorCache, quick_scan
from backend.runtime import Runtime
from tests.door.helpers import NOW, POLICY, Door, code_for, door_event, token, transfer
from tests.helpers import wallet

pytestmark = pytest.mark.db


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the two-statement scan is PostgreSQL's (SQLite takes the general path)")
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def _setup(sessions: sessionmaker[Session], tickets: int = 3) -> Door:
    with transaction(sessions) as session:
        setup = door_event(session, tickets=tickets)
        session.expunge_all()
    return setup


def _code(
    sessions: sessionmaker[Session],
    setup: Door,
    i: int,
    at: datetime = NOW,
    policy: door.DoorPolicy = POLICY,
) -> str:
    with transaction(sessions) as session:
        return code_for(session, setup.event.id, token(i), at, policy)


def _quick(engine: Engine, setup: Door, code: str, scan_id: str) -> door.ScanAnswer | None:
    return quick_scan(
        engine, POLICY, setup.credential, door.ScanRequest(code, "North", scan_id, NOW), NOW
    )


def _general(
    sessions: sessionmaker[Session], setup: Door, code: str, scan_id: str
) -> door.ScanAnswer:
    with transaction(sessions) as session:
        device = door.authenticate(session, setup.credential, NOW)
        return door.scan(
            session, POLICY, device, door.ScanRequest(code, "North", scan_id, NOW), NOW
        )


def _count(sessions: sessionmaker[Session], table: type) -> int:
    with transaction(sessions) as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_everyday_scans_get_the_general_paths_answers_and_rows(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    setup = _setup(sessions)
    fan = _code(sessions, setup, 1)
    admitted = _quick(engine, setup, fan, "s1")
    again = _quick(engine, setup, fan, "s2")
    screenshot = _quick(engine, setup, _code(sessions, setup, 2, NOW - timedelta(minutes=5)), "s3")
    with transaction(sessions) as session:
        old = code_for(session, setup.event.id, token(3), NOW)
        transfer(session, setup.event.id, token(3), wallet(300))
    previous = _quick(engine, setup, old, "s4")

    assert admitted is not None and admitted.result == door.ADMITTED and admitted.seat == "GA 1"
    assert again is not None and (again.result, again.reason) == (
        door.REFUSED,
        door.Refusal.ALREADY_USED,
    )
    assert again.used_gate == "North" and again.used_at is not None
    assert screenshot is not None and screenshot.reason == door.Refusal.CODE_EXPIRED
    assert previous is not None and previous.reason == door.Refusal.NOT_CURRENT_HOLDER
    # Each is recorded as the general path records it: replaying a scan_id there gives it back.
    for answer in (admitted, again, screenshot, previous):
        replayed = _general(sessions, setup, fan, answer.scan_id)
        assert replayed.replayed
        assert (replayed.result, replayed.reason, replayed.token_id, replayed.used_gate) == (
            answer.result,
            answer.reason,
            answer.token_id,
            answer.used_gate,
        )
    with transaction(sessions) as session:
        assert door.is_admitted(session, setup.event.id, token(1))
        row = session.scalars(select(DoorAdmission)).one()
        assert (row.holder, row.holder_epoch, row.chain_state) == (wallet(101), 0, "pending")
        device = session.get(ScannerDevice, setup.device.id)
        assert device is not None and device.last_seen_at == NOW
    assert _count(sessions, DoorScan) == 4


def test_anything_else_is_left_to_the_general_path_with_nothing_written(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    setup = _setup(sessions)
    fan = _code(sessions, setup, 1)
    assert _quick(engine, setup, fan, "s1") is not None
    assert _quick(engine, setup, fan, "s1") is None  # a scan_id seen before
    assert _quick(engine, setup, "not a code", "s2") is None
    assert _quick(engine, setup, fan.replace(fan[-8:], "00000000"), "s3") is None  # forged
    unknown = Door(setup.event, setup.device, "fts_unknown")
    assert _quick(engine, unknown, _code(sessions, setup, 2), "s4") is None
    with transaction(sessions) as session:
        session.execute(update(Event).values(cancelled_at=NOW))
    assert _quick(engine, setup, _code(sessions, setup, 2), "s5") is None
    with transaction(sessions) as session:
        session.execute(update(Event).values(cancelled_at=None))
        door.revoke_device(session, setup.event.id, setup.device.id, NOW)
    assert _quick(engine, setup, _code(sessions, setup, 2), "s6") is None
    assert _count(sessions, DoorScan) == 1 and _count(sessions, DoorAdmission) == 1


TICKETS = 40


def test_two_gates_scanning_one_ticket_at_once_admit_it_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    setup = _setup(sessions, tickets=TICKETS)
    with transaction(sessions) as session:
        _south, south_credential = door.register_device(
            session, setup.event.id, "South", "", wallet(1)
        )
    codes = [_code(sessions, setup, i) for i in range(1, TICKETS + 1)]
    gates = {"North": setup.credential, "South": south_credential}
    answers: list[tuple[str, str | None, bool]] = []
    lock = threading.Lock()

    def gate(name: str, credential: str, barrier: threading.Barrier) -> None:
        for index, code in enumerate(codes):
            barrier.wait()
            request = door.ScanRequest(code, name, f"{name}-{index}", NOW)
            answer = quick_scan(engine, POLICY, credential, request, NOW)
            quick = answer is not None
            if answer is None:  # as the fast lane does: the general path decides
                with transaction(sessions) as session:
                    device = door.authenticate(session, credential, NOW)
                    answer = door.scan(session, POLICY, device, request, NOW)
            with lock:
                answers.append((answer.result, answer.reason, quick))

    barrier = threading.Barrier(len(gates))
    threads = [threading.Thread(target=gate, args=(n, c, barrier)) for n, c in gates.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    results = Counter((result, reason) for result, reason, _quick in answers)
    assert results == {("admitted", None): TICKETS, ("refused", "already-used"): TICKETS}
    assert sum(quick for *_rest, quick in answers) >= TICKETS  # most took the quick path
    with transaction(sessions) as session:
        per_ticket = session.execute(
            select(DoorAdmission.token_id, func.count()).group_by(DoorAdmission.token_id)
        ).all()
    assert len(per_ticket) == TICKETS and {count for _token, count in per_ticket} == {1}
    assert _count(sessions, DoorScan) == 2 * TICKETS


def test_the_fast_lane_answers_a_live_scan_and_leaves_the_rest_to_the_route(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the fast lane answers on PostgreSQL only")
    decided: list[door.ScanAnswer | None] = []

    def counted(*args: Any) -> door.ScanAnswer | None:
        answer = quick_scan(*args)
        decided.append(answer)
        return answer

    monkeypatch.setattr(fast_lane, "quick_scan", counted)
    setup = _setup(runtime.sessions)
    now = datetime.now(UTC)
    code = _code(runtime.sessions, setup, 1, now, door.DoorPolicy.from_settings(runtime.settings))
    headers = {"Authorization": f"Bearer {setup.credential}"}

    def post(scan_id: str, text: str = code) -> Any:
        body = {"code": text, "gate": "North", "scan_id": scan_id, "scanned_at": now.isoformat()}
        return client.post("/door/scans", json=body, headers=headers)

    admitted, replayed, malformed = post("a"), post("a"), post("b", "hello")
    invalid = client.post("/door/scans", json={"code": code}, headers=headers)

    assert admitted.status_code == 200 and admitted.json()["result"] == "admitted"
    assert admitted.json() == {
        "scan_id": "a", "result": "admitted", "reason": None, "event_id": setup.event.id,
        "gate": "North", "token_id": token(1), "scanned_at": admitted.json()["scanned_at"],
        "seat": "GA 1", "used_at": None, "used_gate": None, "conflict": False, "replayed": False,
    }  # fmt: skip
    assert datetime.fromisoformat(admitted.json()["scanned_at"]) == now
    # The same scan_id again, and a text that is no code: answered by the route.
    assert replayed.json() == {**admitted.json(), "replayed": True}
    assert malformed.json()["reason"] == "malformed-code"
    assert invalid.status_code == 422
    assert [answer is not None for answer in decided] == [True, False, False]


def test_hints_cached_in_the_process_admit_nothing_once_stale(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    setup = _setup(sessions, tickets=4)
    cache = DoorCache()

    def quick(code: str, scan_id: str) -> door.ScanAnswer | None:
        request = door.ScanRequest(code, "North", scan_id, NOW)
        return quick_scan(engine, POLICY, setup.credential, request, NOW, cache)

    first = quick(_code(sessions, setup, 1), "s1")  # read by step 1; the device remembered
    assert first is not None and first.result == door.ADMITTED
    assert not cache.facts_known(setup.credential, token(2))
    second = quick(_code(sessions, setup, 4), "s0")  # the event's tickets loaded: from them
    assert second is not None and second.result == door.ADMITTED
    assert cache.facts_known(setup.credential, token(2))
    # Resold after the hint was taken: the previous holder's code no longer admits, and the
    # new holder's is left to the general path, which admits it.
    with transaction(sessions) as session:
        old = code_for(session, setup.event.id, token(2), NOW)
        transfer(session, setup.event.id, token(2), wallet(200))
        new = code_for(session, setup.event.id, token(2), NOW)
    assert quick(old, "s2") is None
    assert not cache.facts_known(setup.credential, token(2))
    assert _general(sessions, setup, old, "s2").reason == door.Refusal.NOT_CURRENT_HOLDER
    assert quick(new, "s3") is not None  # read afresh: admitted
    # Revoked: the hint still names the device, the statement refuses to use it.
    with transaction(sessions) as session:
        door.revoke_device(session, setup.event.id, setup.device.id, NOW)
    assert quick(_code(sessions, setup, 3), "s4") is None
    with transaction(sessions) as session:
        admitted = set(session.scalars(select(DoorAdmission.token_id)))
    assert admitted == {token(1), token(2), token(4)}
    assert _count(sessions, DoorScan) == 4  # s0, s1, s3 and the general path's s2


def test_ids_beyond_the_columns_ranges_are_malformed_codes_not_a_database_error(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    setup = _setup(sessions)
    huge = f"FTX1:{setup.event.id}:{2**64}:0:1:12345678"
    assert _quick(engine, setup, huge, "s1") is None
    assert _general(sessions, setup, huge, "s1").reason == door.Refusal.MALFORMED_CODE
