"""KeepAlivePoster, the worker's webhook deliveries, against a real local HTTP/1.1 server: one
kept-alive connection per thread, a connection the server dropped replaced once, and the sandbox
delivering through it a webhook Stripe's own parser accepts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe
from sqlalchemy.orm import Session, sessionmaker

from backend.payments.keepalive import KeepAlivePoster
from backend.payments.sandbox import SandboxProvider
from tests.chain.test_ticket_logs import free_port
from tests.payments.test_sandbox import SECRET, queued_events
from tests.payments.test_sandbox import sessions as sessions  # the fixture


@dataclass
class Seen:
    """What the server received: each request's connection (client port), headers and body."""

    requests: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    close_after_answer: bool = False  # drop the connection after answering, without saying so


@pytest.fixture
def shop() -> Iterator[tuple[str, Seen]]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.requests.append((self.client_address[1], dict(self.headers), body))
            answer = b'{"received":true}'
            self.send_response(seen.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            self.close_connection = seen.close_after_answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/payments/stripe/webhook", seen
    server.shutdown()
    server.server_close()


def test_posts_from_one_thread_share_one_connection(shop: tuple[str, Seen]) -> None:
    url, seen = shop
    poster = KeepAlivePoster(url, timeout=5)

    answers = [poster.post(b'{"n":%d}' % n, {"X-Test": str(n)}) for n in range(3)]

    assert answers == [(200, b'{"received":true}')] * 3
    assert [body for _port, _headers, body in seen.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert [headers["X-Test"] for _port, headers, _body in seen.requests] == ["0", "1", "2"]
    assert len({port for port, _headers, _body in seen.requests}) == 1
    poster.close()


def test_a_connection_the_server_dropped_is_replaced_and_the_post_sent_again(
    shop: tuple[str, Seen],
) -> None:
    url, seen = shop
    seen.close_after_answer = True
    poster = KeepAlivePoster(url, timeout=5)

    first = poster.post(b"one", {})
    second = poster.post(b"two", {})

    assert (first[0], second[0]) == (200, 200)
    assert [body for _port, _headers, body in seen.requests] == [b"one", b"two"]
    assert len({port for port, _headers, _body in seen.requests}) == 2
    poster.close()


def test_each_thread_has_its_own_connection(shop: tuple[str, Seen]) -> None:
    url, seen = shop
    poster = KeepAlivePoster(url, timeout=5)
    threads = [threading.Thread(target=poster.post, args=(b"x", {})) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen.requests) == 3
    assert len({port for port, _headers, _body in seen.requests}) == 3
    poster.close()


def test_an_unreachable_server_raises() -> None:
    poster = KeepAlivePoster(f"http://127.0.0.1:{free_port()}/hook", timeout=2)
    with pytest.raises(OSError):
        poster.post(b"x", {})


def test_only_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="not an http"):
        KeepAlivePoster("ftp://127.0.0.1/hook", timeout=2)


def test_the_sandbox_delivers_a_signed_webhook_without_a_client_handed_in(
    shop: tuple[str, Seen], sessions: sessionmaker[Session]
) -> None:
    url, seen = shop
    sandbox = SandboxProvider(sessions, SECRET, url)
    intent = sandbox.create_payment(100, "eur", {}, "k")
    sandbox.confirm(intent.id, intent.client_secret, "4242424242424242")
    [event] = queued_events(sessions)

    sandbox.deliver(event)

    [(_port, headers, body)] = seen.requests
    parsed = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)
    assert parsed["id"] == event["id"] and parsed["type"] == "payment_intent.succeeded"
    seen.status = 503
    with pytest.raises(RuntimeError, match="503"):
        sandbox.deliver(event)
    sandbox.close()
