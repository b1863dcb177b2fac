"""The listing lane's JSON-RPC transport (backend/chain/keepalive.py's AsyncPoster) against a
local HTTP server that answers as a node would, and as a node might not: kept-alive
connections reused, a connection the server closed meanwhile replaced once, and answers this
small client does not read (chunked, no Content-Length, an error status) refused as OSError, so
the caller takes the blocking path."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from backend.chain.keepalive import AsyncPoster, RpcHttpError, async_poster_for

Handler = Callable[[bytes, int], bytes]
"""The raw answer to a request body, given how many requests that connection served before."""


def _answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _serve(
    handler: Handler, connections: list[int], close_after: int | None
) -> asyncio.Server:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        index = len(connections) - 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                writer.write(handler(body, connections[index]))
                await writer.drain()
                connections[index] += 1
                if close_after is not None and connections[index] >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        await writer.wait_closed()

    return await asyncio.start_server(on_connection, "127.0.0.1", 0)


def _run(
    handler: Handler,
    scenario: Callable[[AsyncPoster], Awaitable[None]],
    close_after: int | None = None,
) -> list[int]:
    """Runs ``scenario`` against a server answering with ``handler``; returns how many
    requests each connection the server accepted carried."""
    connections: list[int] = []

    async def main() -> None:
        server = await _serve(handler, connections, close_after)
        poster = AsyncPoster("127.0.0.1", server.sockets[0].getsockname()[1], "/", timeout=5)
        try:
            await scenario(poster)
        finally:
            poster.close_idle()
            server.close()
            await server.wait_closed()
            await asyncio.sleep(0.01)  # the closed transports let go of their sockets

    asyncio.run(main())
    return connections


def echo(body: bytes, _served: int) -> bytes:
    return _answer(body)


def test_requests_share_a_kept_alive_connection_and_concurrent_ones_open_their_own() -> None:
    async def scenario(poster: AsyncPoster) -> None:
        for n in range(3):
            assert await poster.post(b'{"n": %d}' % n) == b'{"n": %d}' % n
        answers = await asyncio.gather(*(poster.post(b'{"c": %d}' % n) for n in range(4)))
        assert answers == [b'{"c": %d}' % n for n in range(4)]

    connections = _run(echo, scenario)
    assert sum(connections) == 7
    assert connections[0] >= 3  # the three in a row went over the first connection
    assert len(connections) == 4  # at most one per request in flight


def test_a_connection_the_server_closed_meanwhile_is_replaced_once() -> None:
    async def scenario(poster: AsyncPoster) -> None:
        assert await poster.post(b"[1]") == b"[1]"
        await asyncio.sleep(0.05)  # the server has closed it by now
        assert await poster.post(b"[2]") == b"[2]"

    assert _run(echo, scenario, close_after=1) == [1, 1]


def test_connection_close_is_honoured() -> None:
    def closing(body: bytes, _served: int) -> bytes:
        return _answer(body, "Connection: close")

    async def scenario(poster: AsyncPoster) -> None:
        assert await poster.post(b"[1]") == b"[1]"
        assert await poster.post(b"[2]") == b"[2]"

    assert _run(closing, scenario) == [1, 1]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (_answer(b"7\r\n[1,2,3]\r\n0\r\n\r\n", "Transfer-Encoding: chunked"), OSError),
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1]", OSError),
        (_answer(b"[1]", "Content-Length: many"), OSError),
        (_answer(b"busy", status="503 Service Unavailable"), RpcHttpError),
        (b"SSH-2.0-OpenSSH\r\n\r\n", OSError),
    ],
    ids=["chunked", "no-length", "bad-length", "http-error", "not-http"],
)
def test_answers_it_does_not_read_are_refused_as_oserror(
    answer: bytes, error: type[Exception]
) -> None:
    async def scenario(poster: AsyncPoster) -> None:
        with pytest.raises(error):
            await poster.post(b"[1]")

    _run(lambda _body, _served: answer, scenario)


def test_a_poster_is_made_only_where_the_blocking_one_would_be() -> None:
    assert async_poster_for("http://127.0.0.1:8545", {"timeout": 10}) is not None
    assert async_poster_for("https://rpc.example.org", {"timeout": 10}) is None
    assert async_poster_for("http://user:pw@127.0.0.1:8545", {}) is None
    assert async_poster_for("http://127.0.0.1:8545", {"timeout": 10, "verify": False}) is None
