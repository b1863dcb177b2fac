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
