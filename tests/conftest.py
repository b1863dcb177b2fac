"""Shared fixtures: a database per test (SQLite, or PostgreSQL when FAIRTIX_TEST_DATABASE_URL is
set), one in-process eth-tester chain per session, and an API client wired to both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import text

from backend.app import create_app
from backend.chain.client import ChainClient
from backend.chain.testing import eth_tester_web3
from backend.config import Settings
from backend.db.engine import make_engine
from backend.runtime import Runtime
from backend.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT.parent / "shared" / "vectors"
WEBHOOK_SECRET = "whsec_test_" + "0" * 32
TEST_SERVER = "http://testserver"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not VECTORS.is_dir():
        raise pytest.UsageError(f"test vectors missing at {VECTORS}")


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh, empty database for one test."""
    url = os.environ.get("FAIRTIX_TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'fairtix.db'}"


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
