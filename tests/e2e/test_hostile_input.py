"""Hostile input (issue 18): each request that once crashed the API or answered 500 now gets a
problem+json 4xx, changes nothing, and leaves the service healthy."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.auth.models import AuthNonce
from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.demo import FairtixClient
from backend.guard.body import limit_for
from backend.runtime import Runtime
from tests.e2e.test_bad_input import assert_problem
from tests.helpers import count, make_event, signed_in
from tests.live import ROOT, api_env, start_api, stop, wait_healthy

pytestmark = pytest.mark.db

NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def live_api(database_url: str, tmp_path: Path) -> Iterator[str]:
    # The embedded worker thread is part of what the crash took down: keep it running.
    env = api_env(database_url, tmp_path / "var", RUN_WORKER="true")
    log = tmp_path / "api.log"
    process, base = start_api(env, log)
    try:
        wait_healthy(base, process, log)
        yield base
        assert process.poll() is None, log.read_text()[-2000:]
    finally:
        stop(process)


@pytest.mark.slow
@pytest.mark.one_database
def test_deeply_nested_bodies_leave_a_real_api_process_healthy(live_api: str) -> None:
    # One process takes every route's hostile bodies in turn (a process each cost ~8 s of
    # `make test` a route): it must still be healthy after each.
    with httpx.Client(base_url=live_api, timeout=30) as http:
        for path in ("/auth/verify", "/orders", "/admin/events", "/payments/paypal/webhook"):
            # The body that crashed the process, and a deeper one: refused for their depth or,
            # past the route's byte limit, for their size, before anything parses them.
            for body in (NESTED, b"[" * 1_000_000 + b"]" * 1_000_000):
                response = http.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                if len(body) > limit_for(path).max_bytes:
                    assert_problem(response, 413, "body-too-large")
                else:
                    assert_problem(response, 400, "body-refused")
            # Within the byte limit, the depth alone is the problem: refused before parsing.
            response = http.post(path, content=b"[" * 30_000 + b"]" * 30_000)
            assert_problem(response, 400, "body-refused")
            assert http.get("/health").status_code == 200, path


@pytest.mark.one_database
def test_process_recursion_limit_is_capped_after_create_app(settings: Settings) -> None:
    # In a fresh interpreter: importing web3 and eth-tester raises the limit to 100,000 (py_ecc),
    # and a deep JSON document then overflowed the C stack instead of raising RecursionError.
    code = (
        "import json, sys\n"
        "import backend.app, backend.chain.testing\n"
        "assert sys.getrecursionlimit() >= 100000, sys.getrecursionlimit()\n"
        "from backend.guard.recursion import cap_recursion_limit\n"
        "cap_recursion_limit()\n"
        "import py_ecc, eth\n"
        "try:\n"
        "    json.loads('[' * 200000 + ']' * 200000)\n"
        "except RecursionError:\n"
        "    print('recursion error', sys.getrecursionlimit())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "recursion error 12288"


def test_create_app_caps_the_recursion_limit(settings: Settings, chain: ChainClient) -> None:
    sys.setrecursionlimit(100_000)
    try:
        create_app(settings, chain=chain)
        assert sys.getrecursionlimit() == 12_288
    finally:
        sys.setrecursionlimit(12_288)


ID_ROUTES = [
    ("GET", "/events/{id}"),
    ("GET", "/events/{id}/availability"),
    ("POST", "/events/{id}/queue"),
    ("GET", "/events/{id}/queue/me"),
    ("GET", "/events/{id}/queue/seed"),
    ("GET", "/orders/{id}"),
    ("POST", "/orders/{id}/cancel"),
    ("GET", "/admin/events/{id}/sales"),
    ("GET", "/admin/events/{id}/orders"),
    ("GET", "/admin/events/{id}/queue"),
    ("GET", "/admin/webhooks/{id}"),
]


@pytest.mark.parametrize("big", [2**31, 2**63 - 1])
def test_ids_past_the_columns_are_a_422_not_a_500(
    client: TestClient, admin: LocalAccount, big: int
) -> None:
    organizer = signed_in(client, admin)
    headers = {"Authorization": f"Bearer {organizer.token}"}
    for method, template in ID_ROUTES:
        response = client.request(method, template.format(id=big), headers=headers)
        assert_problem(response, 422, "validation-failed")
    response = client.get(f"/admin/events/1/orders?after_id={2**63 - 1}", headers=headers)
    assert_problem(response, 422, "validation-failed")
    response = client.post(
        "/orders", json={"event_id": big, "tier_id": 1, "quantity": 1}, headers=headers
    )
    assert_problem(response, 422, "validation-failed")


def test_largest_id_the_columns_hold_is_a_plain_404(client: TestClient) -> None:
    assert_problem(client.get(f"/events/{2**31 - 1}"), 404, "event-not-found")


def test_nul_in_a_path_is_refused_before_the_database(client: TestClient) -> None:
    response = client.post(
        "/sandbox/payment_intents/pi%00x/confirm",
        json={"client_secret": "x", "card_number": "4242424242424242"},
    )
    assert_problem(response, 400, "body-refused")


def test_event_name_with_nul_is_refused_and_nothing_is_deployed(
    client: TestClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    now = datetime.now(UTC)
    response = client.post(
        "/admin/events",
        json={
            "name": "Night\u0000Show",
            "starts_at": (now + timedelta(days=3)).isoformat(),
            "sale_opens_at": now.isoformat(),
            "tiers": [{"name": "GA", "price_cents": 100, "supply": 5}],
        },
        headers={"Authorization": f"Bearer {organizer.token}"},
    )
    assert_problem(response, 400, "body-refused")
    assert count(runtime, Event) == 0


def _schedule(**fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "name": "Schedule night",
        "starts_at": (now + timedelta(days=3)).isoformat(),
        "sale_opens_at": now.isoformat(),
        "tiers": [{"name": "GA", "price_cents": 100, "supply": 5}],
    }
    body.update(fields)
    return body


def test_sale_opening_before_1970_is_a_422_naming_the_field(
    client: TestClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    response = client.post(
        "/admin/events",
        json=_schedule(sale_opens_at="1969-12-31T00:00:00Z"),
        headers={"Authorization": f"Bearer {organizer.token}"},
    )
    body = assert_problem(response, 422, "invalid-event")
    assert "sale_opens_at" in str(body["detail"])
    assert count(runtime, Event) == 0


def test_sale_and_event_in_the_same_second_is_a_422_not_a_failed_deployment(
    client: TestClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    response = client.post(
        "/admin/events",
        json=_schedule(
            starts_at=(starts + timedelta(milliseconds=700)).isoformat(),
            sale_opens_at=(starts + timedelta(milliseconds=200)).isoformat(),
        ),
        headers={"Authorization": f"Bearer {organizer.token}"},
    )
    body = assert_problem(response, 422, "invalid-event")
    assert "sale_opens_at" in str(body["detail"])
    assert count(runtime, Event) == 0


@pytest.fixture
def limited_client(settings: Settings, chain: ChainClient) -> Iterator[tuple[TestClient, Settings]]:
    tight = settings.model_copy(
        update={
            "rate_limit_sign_in": "5/minute",
            "rate_limit_per_wallet": "8/minute",
        }
    )
    with TestClient(create_app(tight, chain=chain), base_url="http://testserver") as limited:
        yield limited, tight


def test_sign_in_is_limited_per_client_with_retry_after(
    limited_client: tuple[TestClient, Settings], runtime: Runtime
) -> None:
    client, _ = limited_client
    answers = [client.post("/auth/nonce") for _ in range(8)]
    assert [a.status_code for a in answers] == [201] * 5 + [429] * 3
    body = assert_problem(answers[-1], 429, "rate-limited")
    assert "sign-in" in str(body["detail"])
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    # Another client address has its own budget.
    other = TestClient(client.app, base_url="http://testserver", client=("203.0.113.9", 1))
    assert other.post("/auth/nonce").status_code == 201


def test_requests_of_one_wallet_are_limited(limited_client: tuple[TestClient, Settings]) -> None:
    client, _ = limited_client
    fan = FairtixClient(client, Account.create())
    fan.sign_in()
    headers = {"Authorization": f"Bearer {fan.token}"}
    statuses = [client.get("/auth/me", headers=headers).status_code for _ in range(10)]
    assert statuses == [200] * 8 + [429] * 2


@pytest.mark.slow
def test_a_wallet_holds_a_bounded_number_of_queue_streams(
    database_url: str, tmp_path: Path
) -> None:
    admin = Account.create()
    env = api_env(
        database_url,
        tmp_path / "var",
        ADMIN_ADDRESSES=admin.address.lower(),
        MAX_STREAMS_PER_WALLET="2",
        QUEUE_STREAM_INTERVAL_SECONDS="0.2",
    )
    log = tmp_path / "api.log"
    process, base = start_api(env, log)
    try:
        wait_healthy(base, process, log)
        with httpx.Client(base_url=base, timeout=30) as http:
            organizer = FairtixClient(http, admin)
            organizer.sign_in()
            event = make_event(organizer)
            fan = FairtixClient(http, Account.create())
            fan.sign_in()
            token = fan.join_queue(event["id"])["token"]
            url = f"/events/{event['id']}/queue/stream?queue_token={token}"
            with (
                httpx.Client(base_url=base, timeout=30) as tab1,
                httpx.Client(base_url=base, timeout=30) as tab2,
                tab1.stream("GET", url) as first,
                tab2.stream("GET", url) as second,
            ):
                assert first.status_code == second.status_code == 200
                third = http.get(url)
                assert_problem(third, 429, "rate-limited")
                assert int(third.headers["Retry-After"]) >= 1
            # Both tabs closed: the server sees the disconnects within a stream interval and
            # gives the slots back.
            deadline = time.monotonic() + 10
            while True:
                with (
                    httpx.Client(base_url=base, timeout=30) as tab3,
                    tab3.stream("GET", url) as again,
                ):
                    status = again.status_code
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert status == 200
    finally:
        stop(process)


def test_nonce_rows_stop_growing_when_the_limit_is_reached(
    limited_client: tuple[TestClient, Settings], runtime: Runtime
) -> None:
    client, _ = limited_client
    for _ in range(50):
        client.post("/auth/nonce")
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert count(rt, AuthNonce) == 5


def test_openapi_documents_the_guards_answers(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    verify = paths["/auth/verify"]["post"]["responses"]
    assert {"400", "413", "429"} <= set(verify)
    assert "Retry-After" in verify["429"]["headers"]
    assert "401" in paths["/payments/paypal/orders/{order_id}/capture"]["post"]["responses"]
    assert "400" in paths["/ipfs/{cid}"]["get"]["responses"]
    assert "429" not in paths["/livez"]["get"]["responses"]
