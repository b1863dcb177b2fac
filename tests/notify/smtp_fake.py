"""A tiny SMTP server for tests (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH).

The stdlib's smtpd is deprecated and gone in 3.12; this is just enough of RFC 5321 for smtplib.
Accepted messages are kept in ``messages`` with their envelope.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class FakeSmtp:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Mail] = field(default_factory=list)
    reject_recipients: set[str] = field(default_factory=set)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FakeSmtp:
        sock = socket.create_server((self.host, 0))
        sock.settimeout(0.1)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    self._session(conn.makefile("rb"), conn)

    def _session(self, reader: BinaryIO, conn: socket.socket) -> None:
        def reply(line: str) -> None:
            conn.sendall(line.encode() + b"\r\n")

        try:
            reply("220 fake.smtp.test ESMTP ready")
            sender, recipients = "", []
            while True:
                raw = reader.readline()
                if not raw:
                    return
                line = raw.decode("ascii", "replace").rstrip("\r\n")
                verb = line[:4].upper()
                if verb in ("EHLO", "HELO"):
                    if verb == "EHLO":
                        reply("250-fake.smtp.test")
                        reply("250 8BITMIME")
                    else:
                        reply("250 fake.smtp.test")
                elif verb == "MAIL":
                    sender, recipients = _address(line), []
                    reply("250 OK")
                elif verb == "RCPT":
                    recipient = _address(line)
                    if recipient in self.reject_recipients:
                        reply("550 no such mailbox")
                    else:
                        recipients.append(recipient)
                        reply("250 OK")
                elif verb == "DATA":
                    if not recipients:
                        reply("503 need RCPT first")
                        continue
                    reply("354 end with <CRLF>.<CRLF>")
                    lines: list[bytes] = []
                    while True:
                        chunk = reader.readline()
                        if chunk in (b".\r\n", b".\n", b""):
                            break
                        lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    self.messages.append(Mail(sender, recipients, b"".join(lines)))
                    reply("250 queued")
                elif verb == "RSET":
                    sender, recipients = "", []
                    reply("250 OK")
                elif verb == "NOOP":
                    reply("250 OK")
                elif verb == "QUIT":
                    reply("221 bye")
                    return
                else:
                    reply("502 command not implemented")
        finally:
            reader.close()


def _address(line: str) -> str:
    start, end = line.find("<"), line.find(">")
    return line[start + 1 : end] if 0 <= start < end else ""
