"""``fairtix scan``: the gate in a terminal."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.door.client import run_gate
from backend.worker import Worker
from tests.door.test_routes import _entry, _scanner, _sold_ticket


def test_fairtix_scan_help_says_how_to_use_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "scan", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "usage: fairtix scan" in done.stdout
    for option in ("--gate", "--credential", "--offline-ready"):
        assert option in done.stdout


@pytest.mark.db
def test_fairtix_scan_prints_one_answer_per_code(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    credential = _scanner(client, organizer, event["id"], "North")
    code = _entry(client, buyer, token_id).json()["code"]
    out = io.StringIO()

    status = run_gate(client, credential, "North", [code, "", "not a ticket\n", code], out, True)

    lines = out.getvalue().splitlines()
    assert status == 0
    assert lines[0] == f"manifest: 1 tickets of event {event['id']}"
    assert lines[1] == f"ADMITTED ticket {token_id} seat GA 1"
    assert lines[2] == "REFUSED malformed-code"
    assert lines[3].startswith("REFUSED already-used (at North, ")
