"""Two real API processes sharing PostgreSQL and Redis: 1,000 concurrent joins, one queue.

Runs where FAIRTIX_TEST_DATABASE_URL names a PostgreSQL database (``make test``'s PostgreSQL pass,
and so CI) and Redis is up; under CI=true a missing Redis fails instead of skipping.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import insert

from backend.auth.models import AuthSession
from backend.db.base import utcnow
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.queue import tokens
from backend.queue.redis_store import RedisQueueStores
from backend.queue.store import ADMITTED, WAITING
from tests.helpers import insert_event
from tests.live import start_api, wait_healthy
from tests.queue.conftest import REDIS_URL, drop_prefix, make_config, redis_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.db]

JOINS = 1000
CAP = 40
SECRET = "multi-replica-test-secret"


def sessions_for(database_url: str, wallets: list[str]) -> list[str]:
    """Bearer tokens for these wallets, stored exactly as POST /auth/verify stores them.

    Signing 1,000 SIWE messages would test sign-in, not the queue; the session rows are the same.
    """
    tokens_ = ["ftx_" + secrets.token_urlsafe(32) for _ in wallets]
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        session.execute(
            insert(AuthSession),
            [
                {
                    "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                    "address": address,
                    "created_at": utcnow(),
                    "expires_at": utcnow() + timedelta(hours=1),
                }
                for address, token in zip(wallets, tokens_, strict=True)
            ],
        )
    engine.dispose()
    return tokens_


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs FAIRTIX_TEST_DATABASE_URL (PostgreSQL) shared by two processes")
    return database_url


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    redis_client = redis_or_skip()
    prefix = f"fairtix-replicas-{secrets.token_hex(6)}"
    engine = make_engine(postgres_url)
    upgrade_to_head(engine)  # before the replicas start, so they don't race to migrate
    with transaction(make_session_factory(engine)) as session:
        event = insert_event(
            session, sale_opens_at=utcnow() - timedelta(minutes=1), max_admitted=CAP, supply=10_000
        )
        event.admissions_per_minute = 60_000
        event_id = event.id
    engine.dispose()
    organizer = Account.create().address.lower()
    env = {
        **os.environ,
        "FAIRTIX_ENV": "test",
        "FAIRTIX_DATABASE_URL": postgres_url,
        "FAIRTIX_QUEUE_STORE": "redis",
        "FAIRTIX_REDIS_URL": REDIS_URL,
        "FAIRTIX_QUEUE_REDIS_PREFIX": prefix,
        "FAIRTIX_CHAIN_BACKEND": "eth-tester",
        "FAIRTIX_SECRET_KEY": SECRET,
        "FAIRTIX_RUN_WORKER": "false",
        "FAIRTIX_ADMIN_ADDRESSES": organizer,
        "FAIRTIX_VAR_DIR": str(tmp_path / "var"),
        "FAIRTIX_LOG_LEVEL": "WARNING",
        # Every simulated fan comes from 127.0.0.1: one client address, as the limits see it.
        "FAIRTIX_RATE_LIMIT_PER_CLIENT": "1000000/minute",
    }
    started = [start_api(env, tmp_path / f"replica{n}.log") for n in range(2)]
    try:
        for n, (process, base) in enumerate(started):
            wait_healthy(base, process, tmp_path / f"replica{n}.log")
        yield {
            "bases": [base for _process, base in started],
            "event_id": event_id,
            "prefix": prefix,
            "organizer": organizer,
        }
    finally:
        for process, _base in started:
            process.terminate()
        for process, _base in started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        drop_prefix(redis_client, prefix)
        redis_client.close()


def test_two_replicas_keep_one_queue(replicas: dict[str, Any], postgres_url: str) -> None:
    event_id, prefix = replicas["event_id"], replicas["prefix"]
    wallets = [f"0x{n + 0x1000:040x}" for n in range(JOINS)]
    number = {w: n for n, w in enumerate(wallets)}
    bearer = {
        w: {"Authorization": f"Bearer {t}"}
        for w, t in zip(wallets, sessions_for(postgres_url, wallets), strict=True)
    }
    [organizer_token] = sessions_for(postgres_url, [replicas["organizer"]])
    organizer = {"Authorization": f"Bearer {organizer_token}"}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    clients = [httpx.Client(base_url=b, timeout=30, limits=limits) for b in replicas["bases"]]
    direct = RedisQueueStores(REDIS_URL, prefix)
    admitted_key = direct.store.keys(event_id)[4]
    watcher_redis = redis_or_skip()
    try:
        # 1,000 joins at once, alternating between the replicas.
        def join(n: int) -> httpx.Response:
            return clients[n % 2].post(f"/events/{event_id}/queue", headers=bearer[wallets[n]])

        with ThreadPoolExecutor(max_workers=48) as pool:
            joined = list(pool.map(join, range(JOINS)))
        assert [r.status_code for r in joined] == [200] * JOINS, joined[0].text
        seq = {
            r.json()["wallet"]: tokens.verify(r.json()["token"], SECRET.encode()).seq
            for r in joined
        }
        assert sorted(seq) == sorted(wallets)  # no wallet lost, none twice
        assert sorted(seq.values()) == list(range(1, JOINS + 1))  # no duplicates, no gaps

        # Frozen (paused), every wallet sees its place in one order, whichever replica it asks.
        assert (
            clients[0]
            .post(f"/admin/events/{event_id}/queue/pause", headers=organizer)
            .json()["paused"]
        )
        time.sleep(0.5)  # an admission step already under way finishes

        def view(n: int, client: httpx.Client | None = None) -> tuple[str, int | None]:
            body = (
                (client or clients[n % 2])
                .get(f"/events/{event_id}/queue/me", headers=bearer[wallets[n]])
                .json()
            )
            return body["state"], body["position"]

        with ThreadPoolExecutor(max_workers=32) as pool:
            views = dict(zip(wallets, pool.map(view, range(JOINS)), strict=True))
            sample = range(0, JOINS, 10)
            assert list(pool.map(lambda n: view(n, clients[(n + 1) % 2]), sample)) == [
                views[wallets[n]] for n in sample
            ]
        admitted = sorted((w for w in wallets if views[w][0] == ADMITTED), key=seq.__getitem__)
        waiting = sorted((w for w in wallets if views[w][0] == WAITING), key=seq.__getitem__)
        assert 0 < len(admitted) <= CAP
        assert len(admitted) + len(waiting) == JOINS
        assert [views[w][1] for w in waiting] == list(range(len(waiting)))  # one FIFO order
        assert max(seq[w] for w in admitted) < min(seq[w] for w in waiting)

        # Outflow through both replicas at once never admits more than the cap.
        clients[1].post(f"/admin/events/{event_id}/queue/resume", headers=organizer)
        peak = 0
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, int(watcher_redis.zcard(admitted_key)))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            deadline = time.monotonic() + 4
            with ThreadPoolExecutor(max_workers=32) as pool:
                while time.monotonic() < deadline:
                    with direct.unit() as store:
                        for w in wallets:
                            store.finish(event_id, w, utcnow())  # buyers who bought
                    list(pool.map(view, [number[w] for w in waiting[:64]]))  # polls advance
                    waiting = waiting[64:] + waiting[:64]
        finally:
            stop.set()
            watcher.join()
        config = make_config(event_id)
        with direct.unit() as store:
            stats = store.stats(config, utcnow())
        assert peak <= CAP
        assert stats.done > CAP  # slots were freed and refilled, more than once
        assert stats.waiting + stats.admitted + stats.done + stats.away + stats.expired == JOINS
    finally:
        direct.close()
        watcher_redis.close()
        for client in clients:
            client.close()
