"""The scanner's side: a small client a gate device runs (and the tests and bench/door.py).

Online, each scan is sent to ``POST /door/scans`` and the service's answer is the gate's. When
the network drops (or the device is told it is offline), the client decides on its own from the
door manifest it downloaded (``GET /door/manifest``): the same code checks as the service, the
tickets admitted so far at every gate as of its last sync, and its own admissions since. Those
scans are queued and uploaded by :meth:`ScannerClient.sync` in batches, which also pulls the
other gates' admissions. A ticket this gate let in offline that another gate had let in too is
reported back as a conflict.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from backend.door import codes

SYNC_BATCH = 500


class ScannerOffline(Exception):
    """Raised when the service can't be reached and the device has no manifest to fall back on."""


@dataclass
class OfflineDoor:
    """Decides scans from a manifest, without the service."""

    event_id: int
    secrets: dict[int, tuple[int, bytes]]
    """token id -> (epoch, secret) as of the manifest."""
    void: set[int]
    used: dict[int, str]
    """token id -> the gate that let it in, as far as this device knows."""
    cancelled: bool

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> OfflineDoor:
        tickets = manifest["tickets"]
        return cls(
            event_id=int(manifest["event_id"]),
            secrets={
                int(t["token_id"]): (int(t["epoch"]), codes.secret_from_text(t["secret"]))
                for t in tickets
            },
            void={int(t["token_id"]) for t in tickets if t["void"]},
            used={int(t["token_id"]): t["used_gate"] for t in tickets if t["used_gate"]},
            cancelled=bool(manifest["event_cancelled"]),
        )

    def decide(self, text: str, at: float) -> tuple[bool, str | None, int | None]:
        """(admitted, refusal reason, token id) for the code ``text`` scanned at ``at``."""
        code = codes.parse(text)
        if code is None:
            return False, "malformed-code", None
        if code.event_id != self.event_id:
            return False, "wrong-event", code.token_id
        if self.cancelled:
            return False, "event-cancelled", code.token_id
        known = self.secrets.get(code.token_id)
        if known is None:
            return False, "forged-code", code.token_id
        epoch, secret = known
        if code.epoch < epoch:
            return False, "not-current-holder", code.token_id
        if code.epoch > epoch:
            # A holder newer than the manifest: this device can't check the code.
            return False, "unverifiable-offline", code.token_id
        verdict = codes.check(code, secret, at)
        if verdict == codes.CodeCheck.FORGED:
            return False, "forged-code", code.token_id
        if code.token_id in self.void:
            return False, "ticket-void", code.token_id
        if verdict == codes.CodeCheck.EXPIRED:
            return False, "code-expired", code.token_id
        if verdict == codes.CodeCheck.EARLY:
            return False, "code-not-yet-valid", code.token_id
        if code.token_id in self.used:
            return False, "already-used", code.token_id
        return True, None, code.token_id


@dataclass
class ScannerClient:
    """One gate device. ``http`` points at the service (an httpx.Client, or a TestClient)."""

    http: httpx.Client
    credential: str
    gate: str
    clock: Callable[[], float] = time.time
    offline: bool = False
    """Forced offline (a test, a benchmark, a gate told the network is down)."""
    door: OfflineDoor | None = None
    cursor: int = 0
    queue: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    def load_manifest(self) -> dict[str, Any]:
        response = self.http.get("/door/manifest", headers=self._headers)
        response.raise_for_status()
        manifest: dict[str, Any] = response.json()
        self.door = OfflineDoor.from_manifest(manifest)
        self.cursor = max(self.cursor, int(manifest["admissions_cursor"]))
        return manifest

    def scan(self, code: str, scan_id: str | None = None) -> dict[str, Any]:
        """Scans one code: the service's answer when it can be reached, else this device's."""
        scan_id = scan_id or uuid.uuid4().hex
        at = self.clock()
        scanned_at = datetime.fromtimestamp(at, UTC).isoformat()
        body = {"code": code, "gate": self.gate, "scan_id": scan_id, "scanned_at": scanned_at}
        if not self.offline:
            try:
                response = self.http.post("/door/scans", json=body, headers=self._headers)
            except httpx.TransportError:
                pass  # the network dropped: decide here
            else:
                if response.status_code < 500:
                    response.raise_for_status()
                    answer: dict[str, Any] = response.json()
                    return answer
        return self._decide_offline(body, at)

    def _decide_offline(self, body: dict[str, Any], at: float) -> dict[str, Any]:
        if self.door is None:
            raise ScannerOffline("the service is unreachable and no manifest was downloaded")
        admitted, reason, token_id = self.door.decide(body["code"], at)
        if admitted and token_id is not None:
            self.door.used[token_id] = self.gate
        self.queue.append({**body, "admitted": admitted})
        return {
            "scan_id": body["scan_id"],
            "result": "admitted" if admitted else "refused",
            "reason": reason,
            "token_id": token_id,
            "gate": self.gate,
            "scanned_at": body["scanned_at"],
            "offline": True,
        }

    def sync(self) -> list[dict[str, Any]]:
        """Uploads the queued offline scans (batches of ``SYNC_BATCH``; a batch sent twice is
        answered the same) and pulls every gate's admissions; returns the service's answers to
        the uploaded scans. Conflicts found are added to ``conflicts``."""
        answers: list[dict[str, Any]] = []
        while True:
            batch = self.queue[:SYNC_BATCH]
            response = self.http.post(
                "/door/sync",
                json={"scans": batch, "since": self.cursor},
                headers=self._headers,
            )
            response.raise_for_status()
            body = response.json()
            del self.queue[: len(batch)]
            answers += body["answers"]
            self.conflicts += [a for a in body["answers"] if a["conflict"]]
            self.cursor = int(body["cursor"])
            if self.door is not None:
                for admission in body["admissions"]:
                    self.door.used.setdefault(int(admission["token_id"]), admission["gate"])
            if not self.queue and not body["admissions"]:
                return answers


def run_gate(
    http: httpx.Client,
    credential: str,
    gate: str,
    lines: Iterable[str],
    out: TextIO,
    offline_ready: bool = False,
) -> int:
    """``fairtix scan``: one answer line per code; queued offline scans uploaded at the end.
    Returns 0, or 1 if offline scans could not be uploaded."""
    scanner = ScannerClient(http, credential, gate)
    if offline_ready:
        manifest = scanner.load_manifest()
        print(
            f"manifest: {len(manifest['tickets'])} tickets of event {manifest['event_id']}",
            file=out,
        )
    for line in lines:
        code = line.strip()
        if not code:
            continue
        try:
            answer = scanner.scan(code)
        except httpx.HTTPStatusError as exc:
            print(f"ERROR {exc.response.status_code} {exc.response.text}", file=out)
            continue
        if answer["result"] == "admitted":
            where = f" seat {answer.get('seat')}" if answer.get("seat") else ""
            print(f"ADMITTED ticket {answer['token_id']}{where}", file=out)
        else:
            extra = ""
            if answer.get("used_gate"):
                extra = f" (at {answer['used_gate']}, {answer['used_at']})"
            print(f"REFUSED {answer['reason']}{extra}", file=out)
        if scanner.queue and answer.get("offline") is not True:
            # Back online: upload what was decided meanwhile.
            scanner.sync()
        out.flush()
    if scanner.queue:
        try:
            scanner.sync()
        except httpx.HTTPError as exc:
            print(f"offline scans not uploaded ({len(scanner.queue)}): {exc}", file=out)
            return 1
    for conflict in scanner.conflicts:
        print(f"CONFLICT ticket {conflict['token_id']}: {conflict['reason']}", file=out)
    return 0
