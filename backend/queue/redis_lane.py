"""One pipelined, non-blocking Redis connection per event loop, for the waiting room's hot path.

redis-py's client blocks: a status poll or a join answered on the event loop waits there for its
Redis round trip, and the process serves nobody meanwhile. Under an on-sale's load that wait, not
the CPU, is what bounds a worker's throughput. This lane sends the fast lane's commands
(backend/queue/fast_lane.py) on one asyncio connection instead: the loop serves other requests
while Redis answers, and the commands of all requests waiting in one loop iteration go out in one
write, their replies parsed from one read (hiredis's C packer and reader). Redis answers in the
order it was asked, so a queue of futures pairs each reply with its request.

It is an optimisation only. It speaks plain ``redis://`` (password, username and database number
included); any other URL (TLS, a Unix socket) leaves it off, and every failure here (Redis
refused, silent, restarted without our scripts) makes the fast lane fall through to the ordinary
routes, whose blocking client and breaker answer as before. A Redis that takes a command and
never answers is given up on after the client's socket timeout: every command waiting on the
connection fails, the connection is dropped and the shared breaker is tripped, so the other
Redis calls of this process fail fast too (backend/queue/breaker.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

from backend.queue.breaker import RedisBreaker, RedisNotAnswering

log = logging.getLogger("fairtix.queue.redis")

CommandArg = str | int | float | bytes


class LaneUnavailable(Exception):
    """The lane can't answer this command now; take the blocking path instead."""


class LaneReplyError(LaneUnavailable):
    """Redis answered with an error (e.g. NOSCRIPT after a restart)."""


@dataclass(frozen=True)
class LaneAddress:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None


def lane_address(url: str) -> LaneAddress | None:
    """Where the lane connects, or None when the URL asks for more than it speaks."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.query:
        return None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        return None
    try:
        port = parts.port or 6379
    except ValueError:
        return None
    return LaneAddress(
        host=parts.hostname or "127.0.0.1",
        port=port,
        db=int(path or 0),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _pack(args: tuple[CommandArg | None, ...]) -> bytes:
    # hiredis's C packer; its stub types the tuple as one element, hence the cast.
    packed: bytes = hiredis.pack_command(cast(Any, args))
    return packed


class _Connection(asyncio.Protocol):
    """The wire: commands out in batches, replies matched to waiting futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.reader = hiredis.Reader(encoding="utf-8")
        # (future, monotonic time it was asked) per command sent or about to be, in order.
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.outgoing: list[bytes] = []
        self.flush_scheduled = False
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport has asyncio.Transport's methods without being its subclass.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not self.waiting:  # a reply nobody asked for: the stream is out of step
                self.fail(LaneUnavailable("an unexpected reply from Redis"))
                return
            future, _ = self.waiting.popleft()
            if future.done():  # its caller gave up (cancelled); the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(LaneReplyError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(LaneUnavailable(f"the connection to Redis closed: {exc}"))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        self.waiting.append((future, time.monotonic()))
        self.outgoing.append(command)
        if not self.flush_scheduled:
            # Every request that reaches its Redis call in this loop iteration joins one write.
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.outgoing and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def oldest_wait(self, now: float) -> float:
        return now - self.waiting[0][1] if self.waiting else 0.0

    def fail(self, error: Exception) -> None:
        self.closed = True
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        self.outgoing.clear()
        if self.transport is not None:
            self.transport.close()


class RedisLane:
    """Redis commands that wait without blocking the loop; see the module docstring."""

    def __init__(self, address: LaneAddress, breaker: RedisBreaker, timeout: float = 5.0) -> None:
        self._address = address
        self._breaker = breaker
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refused: str | None = None  # the handshake was refused: the lane stays off

    @classmethod
    def from_url(cls, url: str, breaker: RedisBreaker, timeout: float = 5.0) -> RedisLane | None:
        address = lane_address(url)
        return None if address is None else cls(address, breaker, timeout)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve the requests of this loop: the app's lifespan calls it on the loop that serves
        its requests, and closes the lane there (``aclose``). Calls from any other loop (a test
        client without its lifespan runs each request on a loop of its own) are refused, so no
        connection outlives the loop it was made on."""
        self._loop = loop

    async def call(self, *args: CommandArg) -> Any:
        """One command's reply; raises LaneUnavailable (or a subclass) when there is none."""
        if asyncio.get_running_loop() is not self._loop:
            raise LaneUnavailable("the lane serves its app's own event loop only")
        if self._breaker.is_open():
            raise LaneUnavailable("Redis did not answer a moment ago")
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect(self._loop)
        return await connection.send(_pack(args))

    async def evalsha(self, sha: str, keys: list[str], args: list[CommandArg]) -> Any:
        return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        if self._refused is not None:
            raise LaneUnavailable(self._refused)
        # Requests arriving while the connection is being made wait for the same one.
        pending = self._connecting
        if pending is not None and not pending.done():
            return await asyncio.shield(pending)
        connecting = self._connecting = loop.create_future()
        try:
            connection = await self._open(loop)
        except asyncio.CancelledError:
            connecting.set_exception(LaneUnavailable("connecting was cancelled"))
            connecting.exception()  # retrieved: nobody else may be waiting for it
            raise
        except LaneUnavailable as failure:
            connecting.set_exception(failure)
            connecting.exception()
            raise
        self._connection = connection
        connecting.set_result(connection)
        self._schedule_watchdog(loop)
        return connection

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        address = self._address
        handshake: list[tuple[CommandArg | None, ...]] = []
        if address.password is not None:
            if address.username:
                handshake.append(("AUTH", address.username, address.password))
            else:
                handshake.append(("AUTH", address.password))
        if address.db:
            handshake.append(("SELECT", address.db))
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop), address.host, address.port
                )
                for command in handshake:
                    await connection.send(_pack(command))
        except LaneReplyError as exc:
            # A wrong password or database: a setting, not an outage. The lane stays off (the
            # blocking client reports the same error on the ordinary route).
            self._refused = f"Redis refused the lane's handshake: {exc}"
            log.error("redis lane disabled", extra={"error": self._refused})
            if connection is not None:
                connection.fail(LaneUnavailable(self._refused))
            raise LaneUnavailable(self._refused) from exc
        except (OSError, TimeoutError, LaneUnavailable) as exc:
            if connection is not None:
                connection.fail(LaneUnavailable(str(exc)))
            self._breaker.trip(exc)
            raise LaneUnavailable(f"Redis did not take the lane's connection: {exc}") from exc
        return connection

    def _schedule_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = loop.call_later(min(1.0, self._timeout), self._watch, loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once a second: a command unanswered for the socket timeout fails the connection."""
        connection = self._connection
        if connection is None or connection.closed or connection.loop is not loop:
            self._watchdog = None
            return
        if connection.oldest_wait(time.monotonic()) > self._timeout:
            error = RedisNotAnswering(f"Redis did not answer within {self._timeout} s")
            self._breaker.trip(error)
            log.warning("redis lane: no answer; dropping the connection")
            connection.fail(LaneUnavailable(str(error)))
            self._watchdog = None
            return
        self._watchdog = loop.call_later(min(1.0, self._timeout), self._watch, loop)

    async def aclose(self) -> None:
        """Close the connection on its loop, and let the loop finish closing the socket."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        connection, self._connection = self._connection, None
        self._loop = None
        if connection is not None and not connection.closed:
            connection.fail(LaneUnavailable("the lane is closed"))
            await asyncio.sleep(0)  # the transport's connection_lost runs on the next turn
