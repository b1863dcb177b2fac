"""The gate's answers, decided by backend.door.service on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.engine import make_engine
from backend.door import service as door
from backend.door.errors import (
    EntryCodesNotYetRevealed,
    ScannerNotAuthenticated,
    ScannerRevoked,
    ScanTimeOutOfWindow,
    TicketNotFound,
)
from backend.door.models import DoorAdmission, DoorConflict, DoorScan
from backend.tickets.models import Ticket
from tests.door.helpers import NOW, POLICY, code_for, door_event, scan, token, transfer
from tests.helpers import wallet

pytestmark = pytest.mark.db
STEP = timedelta(seconds=15)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def _counts(session: Session) -> tuple[int, int]:
    admissions = session.scalar(select(func.count()).select_from(DoorAdmission)) or 0
    scans = session.scalar(select(func.count()).select_from(DoorScan)) or 0
    return int(admissions), int(scans)


def test_a_fresh_code_of_the_holder_is_admitted_once(session: Session) -> None:
    setup = door_event(session)
    code = code_for(session, setup.event.id, token(1), NOW)

    first = scan(session, setup, code, "s1")
    again = scan(session, setup, code, "s2", NOW + timedelta(seconds=3))

    assert (first.result, first.reason, first.token_id, first.seat) == (
        "admitted",
        None,
        token(1),
        "GA 1",
    )
    assert (again.result, again.reason) == ("refused", door.Refusal.ALREADY_USED)
    assert again.used_gate == "North" and again.used_at == NOW
    assert door.is_admitted(session, setup.event.id, token(1))
    assert not door.is_admitted(session, setup.event.id, token(2))


def test_the_same_scan_id_is_answered_once(session: Session) -> None:
    setup = door_event(session)
    code = code_for(session, setup.event.id, token(1), NOW)

    first = scan(session, setup, code, "same")
    again = scan(session, setup, code, "same", NOW + timedelta(seconds=1))

    assert first.result == again.result == "admitted"
    assert again.replayed and not first.replayed
    assert _counts(session) == (1, 1)


def test_one_step_of_drift_is_admitted_and_two_are_expired(session: Session) -> None:
    setup = door_event(session)
    late = scan(session, setup, code_for(session, setup.event.id, token(1), NOW - STEP), "a")
    expired = scan(session, setup, code_for(session, setup.event.id, token(2), NOW - 2 * STEP), "b")
    early = scan(session, setup, code_for(session, setup.event.id, token(3), NOW + 2 * STEP), "c")

    assert late.result == "admitted"
    assert expired.reason == door.Refusal.CODE_EXPIRED
    assert early.reason == door.Refusal.CODE_NOT_YET_VALID
    assert _counts(session) == (1, 3)


def test_a_screenshot_a_minute_old_is_refused(session: Session) -> None:
    setup = door_event(session)
    screenshot = code_for(session, setup.event.id, token(1), NOW - timedelta(minutes=1))
    assert scan(session, setup, screenshot, "s").reason == door.Refusal.CODE_EXPIRED
    assert not door.is_admitted(session, setup.event.id, token(1))


def test_a_re_keyed_ticket_refuses_the_previous_holders_code(session: Session) -> None:
    setup = door_event(session)
    old = code_for(session, setup.event.id, token(1), NOW)
    transfer(session, setup.event.id, token(1), wallet(999))
    new = code_for(session, setup.event.id, token(1), NOW)

    refused = scan(session, setup, old, "old")
    admitted = scan(session, setup, new, "new")

    assert refused.reason == door.Refusal.NOT_CURRENT_HOLDER
    assert admitted.result == "admitted"
    admission = session.scalars(select(DoorAdmission)).one()
    assert (admission.holder, admission.holder_epoch) == (wallet(999), 1)


def test_the_same_wallet_getting_the_ticket_back_gets_a_new_secret(session: Session) -> None:
    setup = door_event(session)
    first = code_for(session, setup.event.id, token(1), NOW)
    transfer(session, setup.event.id, token(1), wallet(999))
    transfer(session, setup.event.id, token(1), wallet(101))
    assert code_for(session, setup.event.id, token(1), NOW) != first
    assert scan(session, setup, first, "s").result == "refused"


def test_forged_malformed_and_foreign_codes_admit_nobody(session: Session) -> None:
    setup = door_event(session)
    other = door_event(session)
    genuine = code_for(session, setup.event.id, token(1), NOW)
    forged = genuine[:-8] + ("0" * 8 if not genuine.endswith("0" * 8) else "1" * 8)
    foreign = code_for(session, other.event.id, token(1), NOW)
    no_such_ticket = genuine.replace(f":{token(1)}:", f":{token(40)}:")
    future_epoch = genuine.replace(f":{token(1)}:0:", f":{token(1)}:5:")

    answers = {
        name: scan(session, setup, text, name)
        for name, text in {
            "forged": forged,
            "malformed": "https://example.com/not-a-ticket",
            "foreign": foreign,
            "no-such-ticket": no_such_ticket,
            "future-epoch": future_epoch,
        }.items()
    }

    assert {name: a.reason for name, a in answers.items()} == {
        "forged": door.Refusal.FORGED_CODE,
        "malformed": door.Refusal.MALFORMED_CODE,
        "foreign": door.Refusal.WRONG_EVENT,
        "no-such-ticket": door.Refusal.FORGED_CODE,
        "future-epoch": door.Refusal.FORGED_CODE,
    }
    assert _counts(session) == (0, 5)
    assert scan(session, setup, genuine, "then-the-real-one").result == "admitted"


def test_a_refunded_ticket_and_a_cancelled_event_are_refused(session: Session) -> None:
    setup = door_event(session)
    ticket = session.scalars(select(Ticket).filter_by(token_id=token(1))).one()
    ticket.refund_tx_hash = "0x" + "2" * 64
    session.flush()
    assert scan(session, setup, code_for(session, setup.event.id, token(1), NOW), "a").reason == (
        door.Refusal.TICKET_VOID
    )
    setup.event.cancelled_at = NOW - timedelta(hours=1)
    session.flush()
    assert scan(session, setup, code_for(session, setup.event.id, token(2), NOW), "b").reason == (
        door.Refusal.EVENT_CANCELLED
    )
    assert _counts(session) == (0, 2)


def test_scans_from_the_future_or_the_far_past_change_nothing(session: Session) -> None:
    setup = door_event(session)
    code = code_for(session, setup.event.id, token(1), NOW)
    for at in (NOW + timedelta(minutes=3), NOW - timedelta(hours=7)):
        with pytest.raises(ScanTimeOutOfWindow):
            scan(session, setup, code, "t", at, now=NOW)
    assert _counts(session) == (0, 0)


def test_a_revoked_or_unknown_device_is_refused(session: Session) -> None:
    setup = door_event(session)
    assert door.authenticate(session, setup.credential).id == setup.device.id
    door.revoke_device(session, setup.event.id, setup.device.id, NOW)
    with pytest.raises(ScannerRevoked):
        door.authenticate(session, setup.credential)
    with pytest.raises(ScannerNotAuthenticated):
        door.authenticate(session, "fts_" + "x" * 40)
    with pytest.raises(ScannerNotAuthenticated):
        door.authenticate(session, "ftx_a-wallet-session")


def test_an_offline_admission_of_a_ticket_let_in_elsewhere_is_a_conflict(
    session: Session,
) -> None:
    setup = door_event(session)
    south, _ = door.register_device(session, setup.event.id, "South", "", wallet(1))
    code = code_for(session, setup.event.id, token(1), NOW)
    assert scan(session, setup, code, "north-1").result == "admitted"

    # South was offline, let the same fan in 5 s later, and uploads it 10 minutes later: the
    # code is judged at the scan's time, so it is not "expired", it is "already used".
    upload = door.ScanRequest(code, "South", "south-1", NOW + timedelta(seconds=5), True)
    answer = door.scan(session, POLICY, south, upload, NOW + timedelta(minutes=10))

    assert (answer.result, answer.reason, answer.conflict) == (
        "refused",
        door.Refusal.ALREADY_USED,
        True,
    )
    conflict = session.scalars(select(DoorConflict)).one()
    assert (conflict.token_id, conflict.reason) == (token(1), "already-used")
    report = door.door_report(session, setup.event.id)
    assert [(c["gate"], c["first_gate"]) for c in report["conflicts"]] == [("South", "North")]


def test_an_offline_admission_uploaded_late_is_judged_at_its_scan_time(session: Session) -> None:
    setup = door_event(session)
    code = code_for(session, setup.event.id, token(1), NOW)
    upload = door.ScanRequest(code, "North", "offline-1", NOW, True)
    answer = door.scan(session, POLICY, setup.device, upload, NOW + timedelta(minutes=30))
    assert (answer.result, answer.conflict) == ("admitted", False)
    assert session.scalars(select(DoorAdmission)).one().offline


def test_entry_codes_are_shown_from_the_reveal_time_to_the_holder_only(session: Session) -> None:
    setup = door_event(session, starts_in=timedelta(hours=30))
    with pytest.raises(EntryCodesNotYetRevealed):
        door.entry_code(session, POLICY, wallet(101), token(1), NOW)
    door.set_reveal(session, setup.event.id, 48 * 3600, wallet(1))
    issued = door.entry_code(session, POLICY, wallet(101), token(1), NOW)
    assert issued.code.text() == code_for(session, setup.event.id, token(1), NOW)
    with pytest.raises(TicketNotFound):
        door.entry_code(session, POLICY, wallet(102), token(1), NOW)


def test_the_report_counts_admissions_by_gate_and_minute_and_refusals_by_reason(
    session: Session,
) -> None:
    setup = door_event(session)
    scan(session, setup, code_for(session, setup.event.id, token(1), NOW), "a")
    later = NOW + STEP * 5
    scan(session, setup, code_for(session, setup.event.id, token(2), later), "b", later)
    scan(session, setup, "junk", "c")
    report = door.door_report(session, setup.event.id)
    assert report["admitted"] == 2
    assert [
        (r["gate"], r["minute"].minute, r["admitted"]) for r in report["admitted_by_gate_minute"]
    ] == [
        ("North", 0, 1),
        ("North", 1, 1),
    ]
    assert report["refusals_by_reason"] == {"malformed-code": 1}
    assert report["chain"]["pending"] == 2
    assert report["devices"][0]["scans"] == 3
