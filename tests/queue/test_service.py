"""The waiting room's own rules: measured ETA, token checks, the calls other domains make."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event
from backend.db.engine import transaction
from backend.queue import service, tokens
from backend.queue.errors import (
    ForeignQueueToken,
    InvalidQueueToken,
    NotAdmitted,
    QueueClosed,
    QueueTokenExpired,
)
from backend.queue.store import Place
from tests.helpers import insert_event, wallet
from tests.queue.conftest import T0, make_config

SECRET = b"queue-service-secret"
CONFIG = make_config(event_id=7)
WAITING_PLACE = Place(
    wallet=wallet(1),
    seq=5,
    state="waiting",
    presale=False,
    rank=2**40 + 5,
    joined_at=T0,
    last_seen_at=T0,
    admitted_at=None,
    admission_expires_at=None,
    position=4,
    recent_admissions=12,
    paused=False,
)


def test_eta_comes_from_the_measured_outflow_not_the_configured_rate() -> None:
    now = T0 + timedelta(minutes=10)
    # 12 admissions in the last 2 minutes: 0.1 a second, so 5 places take 50 s, although the
    # event is configured for 600 a minute.
    assert service.eta_seconds(WAITING_PLACE, CONFIG, now) == 50
    # Shortly after the start the window is the time since the start (at least 10 s).
    assert service.eta_seconds(WAITING_PLACE, CONFIG, T0 + timedelta(seconds=30)) == 12
    assert service.eta_seconds(replace(WAITING_PLACE, recent_admissions=0), CONFIG, now) is None
    assert service.eta_seconds(replace(WAITING_PLACE, paused=True), CONFIG, now) is None
    assert service.eta_seconds(replace(WAITING_PLACE, position=None), CONFIG, now) is None
    assert service.eta_seconds(WAITING_PLACE, CONFIG, T0 - timedelta(seconds=1)) is None


def test_clients_are_told_to_poll_by_their_eta_and_always_within_the_grace_period() -> None:
    now = T0 + timedelta(minutes=10)
    # ETA 50 s: ask again in 12 s.
    assert service.poll_after_seconds(WAITING_PLACE, CONFIG, 50, now) == 12
    # Far back: at most every 30 s, so the position shown still moves.
    assert service.poll_after_seconds(WAITING_PLACE, CONFIG, 3600, now) == 30
    # A short grace period caps it lower: a third of it, so a turn is never missed in between.
    short_grace = replace(CONFIG, grace=timedelta(seconds=15))
    assert service.poll_after_seconds(WAITING_PLACE, short_grace, 50, now) == 5
    # Close to the front, no outflow measured yet, or away: the minimum.
    assert service.poll_after_seconds(WAITING_PLACE, CONFIG, 3, now) == service.MIN_POLL_SECONDS
    assert service.poll_after_seconds(WAITING_PLACE, CONFIG, None, now) == 2
    away = replace(WAITING_PLACE, state="away")
    assert service.poll_after_seconds(away, CONFIG, 50, now) == 2
    # Before the sale: when it opens.
    assert service.poll_after_seconds(WAITING_PLACE, CONFIG, None, T0 - timedelta(seconds=5)) == 5
    admitted = replace(WAITING_PLACE, state="admitted", position=0)
    assert service.poll_after_seconds(admitted, CONFIG, None, now) is None


def test_a_fan_a_free_slot_waits_for_is_told_to_ask_again_soon() -> None:
    # An uncrowded room: one admission in the last two minutes measures an ETA of minutes, but
    # a slot is free for this fan at the next outflow step (they were admitted 0.9 s after
    # joining and told to come back in 15 s).
    now = T0 + timedelta(minutes=10)
    front = replace(WAITING_PLACE, position=0, recent_admissions=1, free_slots=5)
    eta = service.eta_seconds(front, CONFIG, now)
    assert eta is not None and eta <= 1
    assert service.poll_after_seconds(front, CONFIG, eta, now) == service.MIN_POLL_SECONDS
    # No free slot (a full room): the measured outflow is the truth.
    full = replace(front, free_slots=0)
    assert service.eta_seconds(full, CONFIG, now) == 120
    assert service.poll_after_seconds(full, CONFIG, 120, now) == 30
    # More wallets ahead than free slots: the same.
    behind = replace(front, position=5)
    assert not service.slot_is_coming(behind)


def test_tokens_are_checked_for_forgery_owner_event_and_age() -> None:
    claims = tokens.QueueTokenClaims(7, wallet(1), 5, int(T0.timestamp()))
    token = tokens.sign(claims, SECRET)
    ttl = timedelta(hours=1)
    assert service.check_token(token, 7, None, SECRET, ttl, T0) == wallet(1)
    assert service.check_token(token, 7, wallet(1).upper(), SECRET, ttl, T0) == wallet(1)
    with pytest.raises(ForeignQueueToken):
        service.check_token(token, 7, wallet(2), SECRET, ttl, T0)
    with pytest.raises(ForeignQueueToken):
        service.check_token(token, 8, None, SECRET, ttl, T0)
    with pytest.raises(QueueTokenExpired):
        service.check_token(token, 7, None, SECRET, ttl, T0 + timedelta(hours=2))
    with pytest.raises(InvalidQueueToken, match="signature"):
        service.check_token(token, 7, None, b"another secret", ttl, T0)
    with pytest.raises(InvalidQueueToken, match="malformed"):
        service.check_token("q1.nope", 7, None, SECRET, ttl, T0)


@pytest.mark.db
def test_sales_calls_admit_extend_and_finish_in_their_transaction(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        event_id = insert_event(session, sale_opens_at=T0, max_admitted=1, supply=5).id

    def event(session: Session) -> Event:
        found = session.get(Event, event_id)
        assert found is not None
        return found

    now = T0 + timedelta(seconds=1)
    with transaction(sessions) as session:
        first = service.join(session, event(session), wallet(1), SECRET, now)
        second = service.join(session, event(session), wallet(2), SECRET, now)
    assert (first.state, second.state, second.position) == ("admitted", "waiting", 0)
    with transaction(sessions) as session, pytest.raises(NotAdmitted):
        service.require_admission(session, event(session), wallet(2), now)
    until = now + timedelta(hours=1)
    with transaction(sessions) as session:
        admission = service.require_admission(session, event(session), wallet(1), now)
        assert admission.admission_expires_at == now + timedelta(seconds=600)
        service.extend_admission(session, event_id, wallet(1), until)
    later = now + timedelta(minutes=30)  # past the 10-minute session, inside the extension
    with transaction(sessions) as session:
        assert (
            service.require_admission(session, event(session), wallet(1), later).state == "admitted"
        )
        service.finish(session, event_id, wallet(1), later)
    with transaction(sessions) as session:
        assert (
            service.require_admission(session, event(session), wallet(2), later).state == "admitted"
        )
        event(session).tiers[0].reserved = 5
    with transaction(sessions) as session, pytest.raises(QueueClosed, match="sold out"):
        service.join(session, event(session), wallet(3), SECRET, later)
