"""backend.chain.keepalive: the kept-alive JSON-RPC transport of the listing path's batched read,
used only where it does what requests would, and surviving a node that closed the connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.chain.keepalive import KeepAlivePoster, RpcHttpError, poster_for


class _Node(BaseHTTPRequestHandler):
    """Answers each POST with its body reversed, keeps the connection alive, and closes it
    without a word after every second request (as a node's idle timeout does)."""

    protocol_version = "HTTP/1.1"
    served = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 503 if body == b"busy" else 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])
        type(self).served += 1
        if type(self).served % 2 == 0:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/rpc"
    server.shutdown()
    server.server_close()


def test_posts_over_a_kept_alive_connection_and_reconnects_when_the_node_closed_it(
    node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    poster = poster_for(node, {"timeout": 5})
    assert isinstance(poster, KeepAlivePoster)

    answers = [poster.post(f"call {i}".encode()) for i in range(5)]
    poster.close()

    assert answers == [f"call {i}".encode()[::-1] for i in range(5)]


def test_an_http_error_status_is_an_os_error(node: str) -> None:
    poster = KeepAlivePoster("127.0.0.1", int(node.split(":")[2].split("/")[0]), "/", 5)

    with pytest.raises(RpcHttpError) as raised:
        poster.post(b"busy")
    poster.close()

    assert isinstance(raised.value, OSError) and raised.value.status == 503


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("https://rpc.example/v1/key", {"timeout": 10}),  # TLS: left to requests
        ("http://user:secret@127.0.0.1:8545", {"timeout": 10}),  # credentials in the URL
        ("http://127.0.0.1:8545", {"timeout": 10, "headers": {"X-Key": "k"}}),
        ("http://127.0.0.1:8545", {"timeout": (3, 10)}),
        ("ws://127.0.0.1:8545", {}),
    ],
)
def test_left_to_requests_where_it_would_do_otherwise(url: str, options: dict[str, object]) -> None:
    assert poster_for(url, options) is None


def test_left_to_requests_when_a_proxy_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert poster_for("http://node.internal:8545", {"timeout": 10}) is None

    monkeypatch.setenv("NO_PROXY", "node.internal")
    assert poster_for("http://node.internal:8545", {"timeout": 10}) is not None
