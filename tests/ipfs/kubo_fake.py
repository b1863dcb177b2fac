"""A stand-in for Kubo's RPC API: the few calls ipfshttpclient 0.7.0 makes for KuboBlockstore.

ipfshttpclient POSTs everything to ``/api/v0/<command>`` with options in the query string
(``arg`` for positional arguments, plus ``stream-channels=true`` on every call) and streams
``add`` uploads as a chunked ``multipart/form-data`` body. Kubo answers errors with HTTP 500
and ``{"Message", "Code", "Type"}``, which the client turns into ``ErrorResponse``.

CIDs come from ``backend.ipfs.cid``; this fake only checks the transport, never the hashing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from backend.ipfs.cid import build_dag, compute_cid, parse_cid
from backend.ipfs.errors import InvalidCid

KUBO_VERSION = "0.32.1"  # far past the 0.7.0 ceiling ipfshttpclient.connect() enforces


@dataclass(frozen=True)
class RecordedCall:
    command: str
    params: dict[str, list[str]]

    def option(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None


@dataclass
class FakeKubo:
    """State of the fake node; flip the ``misreport_*``/``corrupt_*`` knobs to misbehave."""

    files: dict[bytes, bytes] = field(default_factory=dict)  # root multihash -> file bytes
    blocks: dict[bytes, bytes] = field(default_factory=dict)  # multihash -> block bytes
    pins: set[str] = field(default_factory=set)
    calls: list[RecordedCall] = field(default_factory=list)
    misreport_cid: bool = False
    corrupt_cat: bool = False
    port: int = 0

    @property
    def multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/http"

    def calls_to(self, command: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.command == command]


class _Reply:
    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> _Reply:
        return cls(status, json.dumps(payload).encode() + b"\n", "application/json")

    @classmethod
    def error(cls, message: str, status: int = 500) -> _Reply:
        return cls.json({"Message": message, "Code": 0, "Type": "error"}, status)


def _not_found(arg: str) -> _Reply:
    return _Reply.error(f"block was not found locally (offline): ipld: could not find {arg}")


def _add(node: FakeKubo, call: RecordedCall, body: bytes, content_type: str) -> _Reply:
    data = _multipart_first_file(body, content_type)
    raw_leaves = call.option("raw-leaves")
    dag = build_dag(
        data,
        cid_version=int(call.option("cid-version") or "0"),
        raw_leaves=None if raw_leaves is None else raw_leaves == "true",
    )
    for cid, block in dag.blocks.items():
        node.blocks[parse_cid(cid).multihash] = block
    node.files[parse_cid(dag.root).multihash] = data
    if call.option("pin") != "false":
        node.pins.add(dag.root)
    reported = compute_cid(data + b"\n") if node.misreport_cid else dag.root
    return _Reply.json({"Name": reported, "Hash": reported, "Size": str(dag.cumulative_size)})


def _cat(node: FakeKubo, call: RecordedCall, body: bytes, content_type: str) -> _Reply:
    arg = call.option("arg") or ""
    data = node.files.get(_multihash(arg))
    if data is None:
        return _not_found(arg)
    if node.corrupt_cat:
        data = data[::-1] + b"tampered"
    return _Reply(200, data, "text/plain")


def _block_stat(node: FakeKubo, call: RecordedCall, body: bytes, content_type: str) -> _Reply:
    arg = call.option("arg") or ""
    block = node.blocks.get(_multihash(arg))
    if block is None:
        return _not_found(arg)
    return _Reply.json({"Key": arg, "Size": len(block)})


def _pin_add(node: FakeKubo, call: RecordedCall, body: bytes, content_type: str) -> _Reply:
    arg = call.option("arg") or ""
    if _multihash(arg) not in node.blocks:
        return _not_found(arg)
    node.pins.add(arg)
    return _Reply.json({"Pins": [arg]})


def _version(node: FakeKubo, call: RecordedCall, body: bytes, content_type: str) -> _Reply:
    return _Reply.json(
        {"Version": KUBO_VERSION, "Commit": "", "Repo": "16", "System": "amd64/linux"}
    )


_Command = Callable[[FakeKubo, RecordedCall, bytes, str], _Reply]
_COMMANDS: dict[str, _Command] = {
    "add": _add,
    "cat": _cat,
    "block/stat": _block_stat,
    "pin/add": _pin_add,
    "version": _version,
}


def _multihash(arg: str) -> bytes:
    try:
        return parse_cid(arg).multihash
    except InvalidCid:
        return b""


def _multipart_first_file(body: bytes, content_type: str) -> bytes:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError(f"no multipart boundary in {content_type!r}")
    sections = body.split(b"--" + match.group(1).encode())
    # sections[0] is the preamble; each part is CRLF, headers, CRLF CRLF, content, CRLF.
    _, _, content = sections[1].partition(b"\r\n\r\n")
    return content.removesuffix(b"\r\n")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        command = url.path.removeprefix("/api/v0/")
        handler = _COMMANDS.get(command)
        if handler is None:
            self._send(_Reply(404, b"404 page not found", "text/plain"))
            return
        call = RecordedCall(command, parse_qs(url.query, keep_blank_values=True))
        self.server.node.calls.append(call)
        self._send(handler(self.server.node, call, body, self.headers.get("Content-Type", "")))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, node: FakeKubo) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.node = node


@contextmanager
def running_kubo_fake() -> Iterator[FakeKubo]:
    """Serve a fresh FakeKubo on an ephemeral localhost port for the duration of the block."""
    node = FakeKubo()
    server = _Server(node)
    node.port = server.server_address[1]
    # A short poll interval keeps shutdown() from stalling each test's teardown.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="kubo-fake", daemon=True
    )
    thread.start()
    try:
        yield node
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
