"""The engine's pool on PostgreSQL: a connection the server closed is never handed out."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from backend.db.engine import make_engine

pytestmark = pytest.mark.db


def test_a_pooled_connection_the_server_closed_is_replaced(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("server-side disconnects: PostgreSQL")
    engine = make_engine(database_url)
    other = make_engine(database_url)
    try:
        with engine.connect() as connection:
            pid = connection.scalar(text("SELECT pg_backend_pid()"))
        # The connection is back in the pool, idle; the server ends it (as a restart would).
        with other.begin() as admin:
            assert admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with other.connect() as admin:
                gone = not admin.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
            if gone:
                break
            time.sleep(0.05)

        with engine.begin() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
            assert connection.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        engine.dispose()
        other.dispose()
