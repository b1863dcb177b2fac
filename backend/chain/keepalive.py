"""JSON-RPC over one keep-alive ``http.client`` connection per thread: the transport of the
reads a listing request makes (``ChainClient.holder_and_state``'s batch).

Through web3's HTTPProvider a POST goes through ``requests``: session and environment merging,
a proxy lookup in ``os.environ`` per request, urllib3's pool. That was about 0.6 ms of CPU of
the 0.75 ms a two-call batch cost, twice per listing. A plain connection per thread, opened once
and reused, asks the node the same thing for about 0.15 ms.

It is used only where it behaves as ``requests`` would: a plain ``http`` URL (a node of one's
own, as anvil or a node beside the API: over https ``requests`` verifies against certifi's CA
bundle, not the system's, and a hosted node's round trip dwarfs the CPU saved) with no
credentials in it, no request options but a timeout, and no proxy configured for its host in the
environment (``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY``, as ``requests`` reads them). Anywhere
else :func:`poster_for` answers None and the provider's own ``requests`` path is used.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import urllib.request
from typing import Any
from urllib.parse import urlsplit

# A kept-alive connection the node closed meanwhile fails on its next use with one of these:
# the request is sent again once on a new connection (JSON-RPC reads are safe to repeat).
_STALE = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    http.client.ResponseNotReady,
    ConnectionResetError,
    BrokenPipeError,
)


class RpcHttpError(OSError):
    """Raised when the node answers a POST with an HTTP status other than 2xx (an ``OSError``,
    as requests' ``HTTPError`` is, so the chain client reports the node unavailable)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        super().__init__(f"JSON-RPC endpoint answered HTTP {status} {reason}")


class KeepAlivePoster:
    """POSTs JSON bodies to one endpoint, each thread over its own kept-alive connection."""

    def __init__(self, host: str, port: int | None, path: str, timeout: float) -> None:
        self._host, self._port, self._path, self._timeout = host, port, path, timeout
        self._local = threading.local()

    def post(self, body: bytes) -> bytes:
        """The node's answer to ``body``; raises ``OSError`` when it can't be had."""
        try:
            return self._post_once(body)
        except _STALE:
            self._drop()
            return self._post_once(body)

    def close(self) -> None:
        """Closes this thread's connection (the next post opens another)."""
        self._drop()

    def _post_once(self, body: bytes) -> bytes:
        connection = self._connection()
        try:
            connection.request("POST", self._path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            self._drop()
            raise
        if response.will_close:
            self._drop()
        if not 200 <= response.status < 300:
            raise RpcHttpError(response.status, response.reason)
        return answer

    def _connection(self) -> http.client.HTTPConnection:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            held = _Held(http.client.HTTPConnection(self._host, self._port, timeout=self._timeout))
            self._local.held = held
        return held.connection

    def _drop(self) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.connection.close()


class _Held:
    """A thread's connection, closed when the thread's locals go (an idle worker thread ends,
    the poster is dropped) rather than left to the garbage collector as an open socket."""

    __slots__ = ("connection",)

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.connection = connection

    def __del__(self) -> None:
        self.connection.close()


def poster_for(endpoint_uri: str, request_kwargs: dict[str, Any]) -> KeepAlivePoster | None:
    """A poster for the endpoint, or None where it would not do what ``requests`` does (see the
    module's docstring): credentials in the URL, options beyond a timeout, a proxy."""
    parts = urlsplit(endpoint_uri)
    if parts.scheme != "http" or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    if set(request_kwargs) - {"timeout"}:
        return None
    timeout = request_kwargs.get("timeout", 30)
    if not isinstance(timeout, int | float):
        return None  # a (connect, read) pair, as requests takes: left to requests
    proxies = urllib.request.getproxies()
    if ("http" in proxies or "all" in proxies) and not urllib.request.proxy_bypass(parts.hostname):
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return KeepAlivePoster(parts.hostname, parts.port, path, float(timeout))


class AsyncPoster:
    """POSTs JSON bodies to one endpoint from an event loop, over kept-alive asyncio
    connections (one per request in flight, kept for the next): the listing lane's chain reads
    (backend/resale/quick.py), awaited so the loop serves other requests meanwhile.

    A small HTTP/1.1 client for one kind of exchange: a POST with a Content-Length, answered
    with a Content-Length (as anvil, geth and reth answer JSON-RPC). An answer of any other
    shape raises OSError, and the caller takes the blocking path, which reads anything."""

    MAX_IDLE = 16

    def __init__(self, host: str, port: int | None, path: str, timeout: float) -> None:
        self._host, self._port, self._path, self._timeout = host, port or 80, path, timeout
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{self._port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        # Idle connections per event loop (tests start and stop apps on several).
        self._idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def post(self, body: bytes) -> bytes:
        """The node's answer to ``body``; raises ``OSError`` (or TimeoutError) when it can't
        be had. A kept-alive connection the node closed meanwhile is replaced once."""
        idle = self._idle_list()
        reused = bool(idle)
        try:
            return await asyncio.wait_for(self._exchange(idle, body), self._timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
        return await asyncio.wait_for(self._exchange(idle, body, fresh=True), self._timeout)

    async def _exchange(
        self,
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
        body: bytes,
        *,
        fresh: bool = False,
    ) -> bytes:
        if idle and not fresh:
            reader, writer = idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _response_head(head)
            answer = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close or len(idle) >= self.MAX_IDLE:
            writer.close()
        else:
            idle.append((reader, writer))
        if not 200 <= status < 300:
            raise RpcHttpError(status, "")
        return answer

    def close_idle(self) -> None:
        """Closes the running loop's kept connections (its app is shutting down)."""
        for _reader, writer in self._idle.pop(id(asyncio.get_running_loop()), []):
            writer.close()

    def _idle_list(self) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        loop = id(asyncio.get_running_loop())
        idle = self._idle.get(loop)
        if idle is None:
            if len(self._idle) >= 16:  # loops of apps started and stopped (tests)
                self._idle.clear()
            idle = self._idle[loop] = []
        return idle


def _response_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server closes, of an HTTP/1.1 answer's head;
    OSError for a head this client does not read (no Content-Length, chunked, not HTTP/1.x)."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise OSError(f"not an HTTP/1.x answer: {lines[0][:40]!r}")
    try:
        status = int(rest[:3])
    except ValueError:
        raise OSError(f"no HTTP status in {lines[0][:40]!r}") from None
    length, close = None, version == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise OSError(f"Content-Length {value[:20]!r}") from None
        elif name == b"transfer-encoding":
            raise OSError("a chunked answer: left to the blocking client")
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if length is None or length < 0:
        raise OSError("an answer without Content-Length: left to the blocking client")
    return status, length, close


def async_poster_for(endpoint_uri: str, request_kwargs: dict[str, Any]) -> AsyncPoster | None:
    """An asyncio poster for the endpoint where :func:`poster_for` would give a blocking one."""
    poster = poster_for(endpoint_uri, request_kwargs)
    if poster is None:
        return None
    return AsyncPoster(poster._host, poster._port, poster._path, poster._timeout)
