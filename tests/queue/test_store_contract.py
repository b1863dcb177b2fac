"""The contract every queue store keeps: the same tests run on the SQL store and the Redis store."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from backend.queue import shuffle
from backend.queue.errors import QueueClosed, QueueNotOpen
from backend.queue.store import POST_START_RANK_BASE, ControlChanges
from tests.helpers import wallet
from tests.queue.conftest import T0, Queue

pytestmark = pytest.mark.db

BEFORE = T0 - timedelta(minutes=5)


def test_joining_twice_returns_the_same_place(queue: Queue) -> None:
    first = queue.join(wallet(1), T0)
    queue.join(wallet(2), T0)
    again = queue.join(wallet(1), T0 + timedelta(seconds=3))
    assert (first.seq, again.seq) == (1, 1)
    assert again.rank == first.rank == POST_START_RANK_BASE + 1
    place = queue.place(wallet(2), T0)
    assert place is not None and place.seq == 2 and place.position == 1


def test_after_the_start_it_is_first_come_first_served(queue: Queue) -> None:
    queue.advance(T0)  # the (empty) shuffle
    for n in range(1, 6):
        queue.join(wallet(n), T0 + timedelta(seconds=n))
    positions = [queue.place(wallet(n), T0 + timedelta(seconds=9)) for n in range(1, 6)]
    assert [p.position for p in positions if p is not None] == [0, 1, 2, 3, 4]
    queue.advance(T0 + timedelta(seconds=10))
    states = [queue.state(wallet(n), T0 + timedelta(seconds=10)) for n in range(1, 6)]
    assert states == ["admitted", "admitted", "waiting", "waiting", "waiting"]


def test_pre_sale_arrivals_are_shuffled_by_the_published_seed(queue: Queue) -> None:
    early = [wallet(n) for n in range(10, 30)]
    for n, address in enumerate(early):
        place = queue.join(address, BEFORE + timedelta(seconds=n))
        assert place.presale and place.rank is None and place.position is None
    with queue.stores.unit() as store:
        assert store.shuffle_record(queue.config.event_id) is None  # no seed before the start
    late = wallet(99)
    queue.join(late, T0 + timedelta(seconds=1))  # after the start, before anyone advanced

    queue.advance(T0 + timedelta(seconds=2))

    with queue.stores.unit() as store:
        record = store.shuffle_record(queue.config.event_id)
    assert record is not None
    assert record.order == shuffle.shuffled(record.seed, early)
    assert record.order != sorted(early)  # 20! orders; this one is not the arrival order
    ranks = {address: queue.place(address, T0, touch=False) for address in early}
    assert sorted(early, key=lambda a: ranks[a].rank or 0) == record.order  # type: ignore[union-attr]
    # Everyone who came early is ahead of everyone who came after the start.
    late_place = queue.place(late, T0 + timedelta(seconds=2))
    assert late_place is not None and late_place.position == len(early) - 2
    admitted = [a for a in record.order if queue.state(a, T0 + timedelta(seconds=2)) == "admitted"]
    assert admitted == record.order[:2]


def test_the_shuffle_happens_once_and_a_dead_shuffler_is_taken_over(queue: Queue) -> None:
    queue.join(wallet(1), BEFORE)
    with queue.stores.unit() as store:
        assert store.begin_shuffle(queue.config.event_id, T0, "first") == [wallet(1)]
        assert store.begin_shuffle(queue.config.event_id, T0, "second") is None
        later = T0 + timedelta(minutes=5)
        assert store.begin_shuffle(queue.config.event_id, later, "third") == [wallet(1)]
        assert not store.commit_shuffle(queue.config.event_id, "first", "00" * 32, [], later)
        assert store.commit_shuffle(queue.config.event_id, "third", "11" * 32, [wallet(1)], later)
        assert store.begin_shuffle(queue.config.event_id, later, "fourth") is None
        record = store.shuffle_record(queue.config.event_id)
    assert record is not None and record.seed == "11" * 32 and record.order == [wallet(1)]


def test_admissions_never_exceed_the_cap_and_finishing_frees_a_slot(queue: Queue) -> None:
    for n in range(1, 5):
        queue.join(wallet(n), T0)
    queue.advance(T0)
    assert [queue.state(wallet(n), T0) for n in range(1, 5)] == [
        "admitted",
        "admitted",
        "waiting",
        "waiting",
    ]
    with queue.stores.unit() as store:
        store.finish(queue.config.event_id, wallet(1), T0)
    queue.advance(T0 + timedelta(seconds=1))
    now = T0 + timedelta(seconds=1)
    assert [queue.state(wallet(n), now) for n in range(1, 5)] == [
        "done",
        "admitted",
        "admitted",
        "waiting",
    ]


def test_lapsed_admissions_expire_free_their_slot_and_may_join_at_the_back(queue: Queue) -> None:
    q = queue.with_config(max_admitted=1)
    q.join(wallet(1), T0)
    q.join(wallet(2), T0)
    q.advance(T0)
    later = T0 + q.config.admission_ttl + timedelta(seconds=1)
    assert q.state(wallet(1), later) == "expired"
    q.place(wallet(2), later)  # still here
    assert q.advance(later).admitted == 1
    assert q.state(wallet(2), later) == "admitted"
    again = q.join(wallet(1), later)
    assert again.state == "waiting" and again.seq == 3 and again.position == 0


def test_extending_an_admission_keeps_it_past_the_session_duration(queue: Queue) -> None:
    queue.join(wallet(1), T0)
    queue.advance(T0)
    until = T0 + timedelta(minutes=25)
    with queue.stores.unit() as store:
        store.extend_admission(queue.config.event_id, wallet(1), until)
    queue.advance(T0 + timedelta(minutes=20))
    place = queue.place(wallet(1), T0 + timedelta(minutes=20))
    assert place is not None and place.state == "admitted"
    assert place.admission_expires_at == until


def test_outflow_is_paced_per_minute(queue: Queue) -> None:
    q = queue.with_config(admissions_per_minute=6, max_admitted=100)  # bucket: one at a time
    for n in range(1, 6):
        q.join(wallet(n), T0)
    assert q.advance(T0).admitted == 1
    assert q.advance(T0 + timedelta(seconds=5)).admitted == 0
    assert q.advance(T0 + timedelta(seconds=10)).admitted == 1
    place = q.place(wallet(5), T0 + timedelta(seconds=10))
    assert place is not None and place.position == 2 and place.recent_admissions == 2


def test_a_waiting_place_sees_the_free_slots_the_cap_leaves(queue: Queue) -> None:
    q = queue.with_config(max_admitted=3)
    for n in range(1, 6):
        q.join(wallet(n), T0)
    q.advance(T0)  # three admitted, two waiting
    now = T0 + timedelta(seconds=1)
    waiting = q.place(wallet(4), now)
    assert waiting is not None and waiting.state == "waiting" and waiting.free_slots == 0
    with q.stores.unit() as store:
        store.finish(q.config.event_id, wallet(1), now)
        store.update_controls(q.config.event_id, ControlChanges(max_admitted=4))
    waiting = q.place(wallet(4), now)
    # One finished (3 - 1 admitted) under a cap the organizer raised to 4.
    assert waiting is not None and waiting.position == 0 and waiting.free_slots == 2
    admitted = q.place(wallet(2), now)
    assert admitted is not None and admitted.free_slots is None  # only read for the waiting


def test_pause_keeps_places_and_rates_change_live(queue: Queue) -> None:
    for n in range(1, 6):
        queue.join(wallet(n), T0)
    with queue.stores.unit() as store:
        controls = store.update_controls(queue.config.event_id, ControlChanges(paused=True))
    assert controls.paused
    assert queue.advance(T0).admitted == 0
    paused = queue.place(wallet(3), T0)
    assert paused is not None and paused.paused and paused.position == 2
    with queue.stores.unit() as store:
        store.update_controls(queue.config.event_id, ControlChanges(paused=False, max_admitted=4))
        assert store.controls(queue.config.event_id).max_admitted == 4
    assert queue.advance(T0 + timedelta(seconds=1)).admitted == 4
    assert queue.state(wallet(5), T0 + timedelta(seconds=1)) == "waiting"


def test_a_closed_queue_takes_no_new_places_but_keeps_the_old_ones(queue: Queue) -> None:
    queue.join(wallet(1), T0)
    with queue.stores.unit() as store:
        store.update_controls(queue.config.event_id, ControlChanges(closed=True))
    with pytest.raises(QueueClosed, match="closed"):
        queue.join(wallet(2), T0)
    assert queue.join(wallet(1), T0).seq == 1
    assert queue.place(wallet(2), T0) is None


def test_a_refusal_applies_to_new_places_only(queue: Queue) -> None:
    queue.join(wallet(1), T0)
    refusal = QueueNotOpen(queue.config.event_id, T0)
    assert queue.join(wallet(1), T0, refusal).seq == 1
    with pytest.raises(QueueNotOpen):
        queue.join(wallet(2), T0, refusal)
    again = queue.join(wallet(2), T0)
    assert again.seq == 2  # the refused attempt used up no number


def test_an_absent_waiter_loses_the_slot_and_gets_the_next_on_return(queue: Queue) -> None:
    q = queue.with_config(grace=timedelta(seconds=60), max_admitted=1)
    q.advance(T0)
    q.join(wallet(1), T0)
    q.join(wallet(2), T0)
    q.join(wallet(3), T0)
    now = T0 + timedelta(seconds=90)  # nobody polled for 90 s
    q.place(wallet(2), now)  # wallet 2 is still here; 1 and 3 are not
    result = q.advance(now)
    assert (result.admitted, result.parked) == (1, 1)
    assert [q.state(wallet(n), now) for n in (1, 2, 3)] == ["away", "admitted", "waiting"]
    back = q.place(wallet(1), now + timedelta(seconds=1))  # wallet 1 returns
    assert back is not None and back.state == "waiting" and back.position == 0
    with q.stores.unit() as store:
        store.finish(q.config.event_id, wallet(2), now)
    q.advance(now + timedelta(seconds=2))
    assert q.state(wallet(1), now + timedelta(seconds=2)) == "admitted"
    with q.stores.unit() as store:
        stats = store.stats(q.config, now + timedelta(seconds=2))
    assert (stats.admitted, stats.done, stats.waiting) == (1, 1, 1)


def test_stats_count_each_state(queue: Queue) -> None:
    queue.join(wallet(1), BEFORE)
    with queue.stores.unit() as store:
        before = store.stats(queue.config, BEFORE)
    assert (before.waiting, before.presale_unshuffled, before.admitted) == (1, 1, 0)
    for n in range(2, 6):
        queue.join(wallet(n), T0)
    queue.advance(T0)
    with queue.stores.unit() as store:
        store.finish(queue.config.event_id, wallet(1), T0)
        stats = store.stats(queue.config, T0)
    assert (stats.waiting, stats.admitted, stats.done, stats.expired) == (3, 1, 1, 0)
    assert stats.presale_unshuffled == 0 and stats.recent_admissions == 2
    later = T0 + queue.config.admission_ttl + timedelta(seconds=1)
    queue.advance(later)
    with queue.stores.unit() as store:
        lapsed = store.stats(queue.config, later)
    assert lapsed.expired >= 1


def test_concurrent_joins_get_unique_places_with_no_gaps(queue: Queue) -> None:
    wallets = [wallet(n) for n in range(100, 130)]
    start = threading.Barrier(len(wallets))
    errors: list[BaseException] = []
    seqs: dict[str, int] = {}

    def join(address: str) -> None:
        start.wait()
        try:
            seqs[address] = queue.join(address, T0 + timedelta(seconds=1)).seq
            seqs[address] = queue.join(address, T0 + timedelta(seconds=2)).seq  # a double click
        except BaseException as exc:  # surfaced below; a thread can't fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(address,)) for address in wallets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(seqs.values()) == list(range(1, len(wallets) + 1))
    positions = [queue.place(address, T0 + timedelta(seconds=3)) for address in wallets]
    assert sorted(p.position for p in positions if p is not None) == list(range(len(wallets)))
