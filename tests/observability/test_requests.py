"""Every request's id (made or taken), carried to the answer, the problem's ``instance``, the logs;
counted by route template and status; and who may read /metrics."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.app import create_app
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.logs import JsonFormatter
from backend.observability.exposition import Access
from backend.observability.install import serve_worker_metrics
from tests.observability.metrics_text import value

pytestmark = pytest.mark.db

LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture
def local(settings: Settings, chain: ChainClient) -> Iterator[TestClient]:
    """A client on loopback: /metrics answers it without a token outside production."""
    app = create_app(settings, chain=chain)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(
        app, base_url="http://testserver", client=LOOPBACK, raise_server_exceptions=False
    ) as test_client:
        yield test_client


def test_request_without_id_gets_a_new_one(local: TestClient) -> None:
    first = local.get("/livez").headers["x-request-id"]
    second = local.get("/livez").headers["x-request-id"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_request_id_of_the_caller_is_kept_when_sane(local: TestClient) -> None:
    answer = local.get("/livez", headers={"X-Request-ID": "lb-7f3a:42"})
    assert answer.headers["x-request-id"] == "lb-7f3a:42"


@pytest.mark.parametrize("bad", ["has space", "x" * 65, 'quote"d', "new\\nline", ""])
def test_request_id_that_is_not_sane_is_replaced(local: TestClient, bad: str) -> None:
    answer = local.get("/livez", headers={"X-Request-ID": bad})
    made = answer.headers["x-request-id"]
    assert made != bad and len(made) == 32


def test_problem_instance_names_the_request(local: TestClient) -> None:
    answer = local.get("/events/999999", headers={"X-Request-ID": "support-ticket-1"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["instance"] == "urn:fairtix:request:support-ticket-1"
    assert answer.headers["x-request-id"] == "support-ticket-1"


def test_request_guards_refusal_names_the_request_too(local: TestClient) -> None:
    # The guard answers before routing; the id's middleware is outside it.
    answer = local.get("/livez?q=%00", headers={"X-Request-ID": "nul-1"})
    assert answer.status_code == 400
    assert answer.json()["instance"] == "urn:fairtix:request:nul-1"
    assert answer.headers["x-request-id"] == "nul-1"


def test_unhandled_error_answers_and_logs_with_the_request_id(local: TestClient) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("fairtix.problems").addHandler(handler)
    try:
        answer = local.get("/boom", headers={"X-Request-ID": "boom-1"})
    finally:
        logging.getLogger("fairtix.problems").removeHandler(handler)
    assert answer.status_code == 500
    assert answer.json()["instance"] == "urn:fairtix:request:boom-1"
    assert answer.headers["x-request-id"] == "boom-1"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["boom-1"]
    assert "kaboom" in lines[0]["exc"]


def test_requests_are_counted_by_route_template_not_path(local: TestClient) -> None:
    def count(route: str, status: str) -> float:
        text = local.get("/metrics").text
        found = value(text, "fairtix_http_requests_total", route=route, status=status)
        return found or 0.0

    before_event = count("/events/{event_id}", "404")
    before_unmatched = count("unmatched", "404")
    before_boom = count("/boom", "500")
    for event_id in (424242, 424243, 424244):
        assert local.get(f"/events/{event_id}").status_code == 404
    for path in ("/no/such/thing/1", "/no/such/thing/2"):
        assert local.get(path).status_code == 404
    local.get("/boom")
    assert count("/events/{event_id}", "404") == before_event + 3
    assert count("unmatched", "404") == before_unmatched + 2
    assert count("/boom", "500") == before_boom + 1
    text = local.get("/metrics").text
    assert "/events/424242" not in text and "/no/such/thing" not in text
    histogram = value(
        text, "fairtix_http_request_duration_seconds_count", route="/events/{event_id}"
    )
    assert histogram is not None and histogram >= 3


def test_metrics_without_token_answer_loopback_only(
    local: TestClient, settings: Settings, chain: ChainClient
) -> None:
    assert local.get("/metrics").status_code == 200
    with TestClient(create_app(settings, chain=chain), base_url="http://testserver") as remote:
        # TestClient's default client host is not an address, so not loopback.
        refused = remote.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/metrics-loopback-only")


def test_metrics_with_token_want_it_from_everyone(settings: Settings, chain: ChainClient) -> None:
    with_token = settings.model_copy(update={"metrics_token": SecretStr("s3cret-scrape")})
    app = create_app(with_token, chain=chain)
    with TestClient(app, base_url="http://testserver", client=LOOPBACK) as test_client:
        assert test_client.get("/metrics").status_code == 401
        wrong = test_client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = test_client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert good.status_code == 200
    assert good.headers["content-type"].startswith("text/plain")
    assert "fairtix_http_requests_total" in good.text


def test_metrics_are_off_in_production_without_token() -> None:
    production = Settings(env="production")
    assert Access(production).check(None, "127.0.0.1") == 404
    with_token = Settings(env="production", metrics_token="t")  # type: ignore[arg-type]
    assert Access(with_token).check("Bearer t", "203.0.113.9") == 200
    assert Access(with_token).check("Bearer u", "127.0.0.1") == 401
    development = Settings(env="development")
    assert Access(development).check(None, "::1") == 200
    assert Access(development).check(None, "203.0.113.9") == 403


def test_worker_endpoint_serves_metrics_behind_the_token() -> None:
    settings = Settings(
        env="test",
        worker_metrics_port=0,
        metrics_token="worker-token",  # type: ignore[arg-type]
    )
    server = serve_worker_metrics(settings)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert httpx.get(url).status_code == 401
        answer = httpx.get(url, headers={"Authorization": "Bearer worker-token"})
        assert answer.status_code == 200
        assert "fairtix_indexer_lag_blocks" in answer.text
    finally:
        server.shutdown()
        server.server_close()


def test_worker_endpoint_is_off_without_a_port() -> None:
    assert serve_worker_metrics(Settings(env="test")) is None
