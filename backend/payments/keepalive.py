"""POSTs to one URL over kept-alive connections, one per thread, on the standard library's
http.client: the sandbox's webhook deliveries, the worker's busiest HTTP in an on-sale.

httpx's client took some 18% of the worker's CPU in bench-onsale (py-spy); POSTing to a local
server, it cost about 1.2 ms of CPU per POST and http.client 0.5. Each thread keeps its own
connection (http.client's aren't thread-safe), so the worker's delivery threads never wait on
one another."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

# What a kept-alive connection raises when the server closed it while it sat idle: the request
# is sent once more, on a new connection. A webhook is idempotent by its event id, so even a
# request the server did read is safe to send again.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class KeepAlivePoster:
    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

    def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """The answer's status and body. Raises OSError if the server can't be reached or
        breaks off, http.client.HTTPException if it answers something that isn't HTTP; the
        worker's outbox takes either as a delivery to try again later."""
        for attempt in range(2):
            connection, reused = self._connection()
            try:
                connection.request("POST", self._target, body=body, headers=dict(headers))
                response = connection.getresponse()
                answer = response.read()
            except _STALE:
                self._drop(connection)
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                self._drop(connection)
                raise
            if response.will_close:
                self._drop(connection)
            return response.status, answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Closes every thread's connection (at shutdown)."""
        with self._lock:
            open_now, self._open = self._open, set()
        for connection in open_now:
            connection.close()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout)
        self._local.connection = connection
        with self._lock:
            self._open.add(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock:
            self._open.discard(connection)
