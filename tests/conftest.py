"""Shared fixtures: a database per test (SQLite, or PostgreSQL when FAIRTIX_TEST_DATABASE_URL is
set), one in-process eth-tester chain per session, and an API client wired to both."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import text

import backend.db.models  # noqa: F401  (every table on Base.metadata, emptied per test)
from backend.app import create_app
from backend.chain.client import ChainClient
from backend.chain.testing import eth_tester_web3
from backend.config import Settings
from backend.db.base import Base
from backend.db.engine import make_engine
from backend.db.migrate import upgrade_to_head
from backend.runtime import Runtime
from backend.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT.parent / "shared" / "vectors"
WEBHOOK_SECRET = "whsec_test_" + "0" * 32
TEST_SERVER = "http://testserver"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not VECTORS.is_dir():
        raise pytest.UsageError(f"test vectors missing at {VECTORS}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass (FAIRTIX_TEST_DATABASE_URL set) skips ``one_database`` tests: what
    they check happens before any database (a real API process refusing hostile bodies, the
    interpreter's recursion limit), and the SQLite pass of make test runs them."""
    if not os.environ.get("FAIRTIX_TEST_DATABASE_URL"):
        return
    once = pytest.mark.skip(reason="database-independent: checked in the SQLite pass")
    for item in items:
        if item.get_closest_marker("one_database") is not None:
            item.add_marker(once)


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrated once per session: PostgreSQL in place, SQLite as a template file to copy.

    Running every migration for each of a thousand tests was a large share of `make test`.
    """
    url = os.environ.get("FAIRTIX_TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'fairtix.db'}"
    _migrate(url)
    return url


@pytest.fixture
def database_url(tmp_path: Path, migrated_database: str) -> str:
    """A migrated database with no rows in it, for one test."""
    if migrated_database.startswith("postgresql"):
        engine = make_engine(migrated_database)
        # DELETE, children first, and the id sequences restarted: TRUNCATE gives every table new
        # files, about 0.2 s per test (a minute of the PostgreSQL pass); this takes 0.03 s.
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
            sequences = connection.scalars(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            )
            for sequence in list(sequences):
                connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        engine.dispose()
        return migrated_database
    path = tmp_path / "fairtix.db"
    shutil.copyfile(migrated_database.removeprefix("sqlite:///"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_database_url(tmp_path: Path, migrated_database: str) -> Iterator[str]:
    """A database with no schema at all, for tests of the migrations themselves."""
    if not migrated_database.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    _reset_postgres(migrated_database)
    yield migrated_database
    # The session's migrated schema lives in this database: leave it as the next test expects.
    _reset_postgres(migrated_database)
    _migrate(migrated_database)


@pytest.fixture(scope="session")
def session_chain() -> ChainClient:
    w3, signer = eth_tester_web3()
    return ChainClient(w3, signer)


@pytest.fixture
def chain(session_chain: ChainClient) -> ChainClient:
    # A fresh factory per test: each test's database restarts event ids at 1.
    session_chain.deploy_factory()
    return session_chain


@pytest.fixture
def admin() -> LocalAccount:
    return Account.create()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, admin: LocalAccount) -> Settings:
    return Settings(
        env="test",
        var_dir=tmp_path / "var",
        database_url=database_url,
        chain_backend="eth-tester",
        admin_addresses=admin.address,  # type: ignore[arg-type]
        secret_key="test-secret-key",  # type: ignore[arg-type]
        stripe_webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        public_base_url=TEST_SERVER,
        siwe_domain="testserver",
        run_worker=False,
        log_json=False,
    )


@pytest.fixture
def client(settings: Settings, chain: ChainClient) -> Iterator[TestClient]:
    app = create_app(settings, chain=chain)
    with TestClient(app, base_url=TEST_SERVER) as test_client:
        yield test_client


@pytest.fixture
def runtime(client: TestClient) -> Runtime:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return rt


@pytest.fixture
def worker(runtime: Runtime, client: TestClient) -> Worker:
    """The outbox worker, driven by the test (``run_once``) and delivering webhooks in-process."""
    return Worker(runtime, http=client)
