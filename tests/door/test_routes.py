"""The door over HTTP on eth-tester: a card ticket's entry code and QR, a gate admitting it, the
worker checking it in on chain, re-keying on transfer, offline gates, revocation."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.chain.client import ChainClient
from backend.demo import SUCCESS_CARD, FairtixClient
from backend.door import qr
from backend.door.client import ScannerClient
from backend.door.models import CHECKED_IN, DoorAdmission
from backend.runtime import Runtime
from backend.worker import Worker
from tests.door.qr_decode import decode_qr
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.sales.onchain import transfer

pytestmark = pytest.mark.db


def _sold_ticket(
    client: TestClient, worker: Worker, admin: LocalAccount, **event: Any
) -> tuple[dict[str, Any], FairtixClient, int, FairtixClient]:
    organizer = signed_in(client, admin)
    starts_at = datetime.now(UTC) + timedelta(hours=2)
    made = make_event(organizer, supply=3, starts_at=starts_at.isoformat(), **event)
    buyer = admitted_buyer(client, made["id"])
    order = buyer.place_order(made["id"], made["tiers"][0]["id"], 1)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
    drain(worker)
    assert buyer.order(order["id"])["status"] == "fulfilled"
    return made, buyer, order["id"] * 256, organizer


def _scanner(client: TestClient, organizer: FairtixClient, event_id: int, gate: str) -> str:
    response = client.post(
        f"/admin/events/{event_id}/scanners",
        json={"gate": gate, "label": "handheld"},
        headers={"Authorization": f"Bearer {organizer.token}"},
    )
    assert response.status_code == 201, response.text
    credential: str = response.json()["credential"]
    assert credential.startswith("fts_")
    return credential


def _entry(client: TestClient, holder: FairtixClient, token_id: int) -> Any:
    return client.get(
        f"/me/tickets/{token_id}/entry", headers={"Authorization": f"Bearer {holder.token}"}
    )


def _scan(client: TestClient, credential: str, code: str, scan_id: str, **more: Any) -> Any:
    body = {
        "code": code,
        "gate": "North",
        "scan_id": scan_id,
        "scanned_at": datetime.now(UTC).isoformat(),
        **more,
    }
    return client.post("/door/scans", json=body, headers={"Authorization": f"Bearer {credential}"})


def test_a_ticket_gets_in_once_and_is_checked_in_on_chain_by_the_worker(
    client: TestClient, worker: Worker, admin: LocalAccount, chain: ChainClient, runtime: Runtime
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    credential = _scanner(client, organizer, event["id"], "North")

    entry = _entry(client, buyer, token_id)
    assert entry.status_code == 200, entry.text
    code = entry.json()["code"]
    assert code.startswith(f"FTX1:{event['id']}:{token_id}:0:")
    assert buyer.wallet.address.lower() not in code.lower()  # no personal data in the code

    admitted = _scan(client, credential, code, "scan-1")
    second = _scan(client, credential, code, "scan-2")
    replay = _scan(client, credential, code, "scan-1")

    assert admitted.status_code == 200
    assert admitted.json()["result"] == "admitted" and admitted.json()["token_id"] == token_id
    assert (second.json()["result"], second.json()["reason"]) == ("refused", "already-used")
    assert second.json()["used_gate"] == "North"
    assert replay.json()["result"] == "admitted" and replay.json()["replayed"] is True

    assert not chain.ticket_used(event["contract_address"], token_id)
    drain(worker)
    assert chain.ticket_used(event["contract_address"], token_id)
    with Session(runtime.engine) as session:
        row = session.scalars(select(DoorAdmission)).one()
        assert row.chain_state == CHECKED_IN and row.chain_tx_hash is not None

    report = client.get(
        f"/admin/events/{event['id']}/door", headers={"Authorization": f"Bearer {organizer.token}"}
    ).json()
    assert report["admitted"] == 1
    assert report["refusals_by_reason"] == {"already-used": 1}
    assert report["chain"]["checked_in"] == 1
    assert report["devices"][0]["last_seen_at"] is not None


def test_the_entry_qr_decodes_to_the_code(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    _event, buyer, token_id, _organizer = _sold_ticket(client, worker, admin)
    entry = _entry(client, buyer, token_id).json()
    png = base64.b64decode(entry["qr_png_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_qr(Image.open(io.BytesIO(png))) == entry["code"]
    # The SVG: well-formed, and exactly segno's drawing of the payload the PNG decoded to.
    root = ElementTree.fromstring(entry["qr_svg"])
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert entry["qr_svg"] == qr.svg(entry["code"])


def test_a_transfer_re_keys_the_ticket_and_the_previous_holders_code_is_refused(
    client: TestClient, worker: Worker, admin: LocalAccount, chain: ChainClient
) -> None:
    # Direct transfers allowed: new events lock them by default.
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin, transfers_locked=False)
    credential = _scanner(client, organizer, event["id"], "North")
    old_code = _entry(client, buyer, token_id).json()["code"]
    friend: LocalAccount = Account.create()
    transfer(chain, event["contract_address"], buyer.wallet, friend.address, token_id)
    drain(worker)  # the indexer applies the Transfer

    assert _entry(client, buyer, token_id).status_code == 404
    new = _entry(client, signed_in(client, friend), token_id).json()
    assert new["holder_epoch"] == 1 and new["secret"] != ""

    refused = _scan(client, credential, old_code, "old").json()
    admitted = _scan(client, credential, new["code"], "new").json()
    assert (refused["result"], refused["reason"]) == ("refused", "not-current-holder")
    assert admitted["result"] == "admitted"


def test_codes_are_not_shown_before_the_organizers_reveal_time(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    headers = {"Authorization": f"Bearer {organizer.token}"}
    settings = client.put(
        f"/admin/events/{event['id']}/door/settings",
        json={"reveal_seconds_before_start": 3600},
        headers=headers,
    )
    assert settings.status_code == 200, settings.text
    hidden = _entry(client, buyer, token_id)
    assert hidden.status_code == 409
    assert hidden.json()["type"].endswith("/entry-codes-not-yet-revealed")
    client.put(
        f"/admin/events/{event['id']}/door/settings",
        json={"reveal_seconds_before_start": 3 * 3600},
        headers=headers,
    )
    assert _entry(client, buyer, token_id).status_code == 200


def test_a_revoked_device_and_a_wallet_session_are_refused_at_the_gate(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    credential = _scanner(client, organizer, event["id"], "North")
    code = _entry(client, buyer, token_id).json()["code"]
    devices = client.get(
        f"/admin/events/{event['id']}/scanners",
        headers={"Authorization": f"Bearer {organizer.token}"},
    ).json()
    revoked = client.post(
        f"/admin/events/{event['id']}/scanners/{devices[0]['id']}/revoke",
        headers={"Authorization": f"Bearer {organizer.token}"},
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None

    refused = _scan(client, credential, code, "x")
    as_wallet = _scan(client, buyer.token, code, "y")
    anonymous = client.post("/door/scans", json={})

    assert refused.status_code == 401 and refused.json()["type"].endswith("/scanner-revoked")
    assert as_wallet.status_code == 401
    assert anonymous.status_code in (401, 422)
    assert (
        client.get("/door/manifest", headers={"Authorization": f"Bearer {credential}"}).status_code
        == 401
    )
    fresh = _scanner(client, organizer, event["id"], "North")
    assert _scan(client, fresh, code, "z").json()["result"] == "admitted"


def test_another_events_device_answers_wrong_event(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    _event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    other = make_event(organizer, supply=1)
    credential = _scanner(client, organizer, other["id"], "North")
    code = _entry(client, buyer, token_id).json()["code"]
    answer = _scan(client, credential, code, "w").json()
    assert (answer["result"], answer["reason"]) == ("refused", "wrong-event")


def test_a_scan_from_the_future_is_refused_and_changes_nothing(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    credential = _scanner(client, organizer, event["id"], "North")
    code = _entry(client, buyer, token_id).json()["code"]
    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    response = _scan(client, credential, code, "f", scanned_at=future)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/scan-time-out-of-window")
    assert _scan(client, credential, code, "f").json()["result"] == "admitted"


def test_gates_offline_admit_on_their_own_and_uploads_find_the_double_admission(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    north = ScannerClient(client, _scanner(client, organizer, event["id"], "North"), "North")
    south = ScannerClient(client, _scanner(client, organizer, event["id"], "South"), "South")
    manifest = south.load_manifest()
    assert manifest["format"] == "fairtix-door-manifest/1"
    assert [t["token_id"] for t in manifest["tickets"]] == [token_id]
    code = _entry(client, buyer, token_id).json()["code"]

    south.offline = True
    offline_answer = south.scan(code)
    online_answer = north.scan(code)
    assert offline_answer["result"] == "admitted" and offline_answer["offline"] is True
    assert online_answer["result"] == "admitted"  # north could not know
    assert south.scan(code)["reason"] == "already-used"  # south remembers its own

    south.offline = False
    answers = south.sync()
    assert [a["conflict"] for a in answers] == [True, False]
    assert south.conflicts[0]["used_gate"] == "North"
    assert south.door is not None and south.door.used[token_id] == "South"
    again = south.sync()  # nothing left to upload; the answers are not repeated
    assert again == []

    report = client.get(
        f"/admin/events/{event['id']}/door", headers={"Authorization": f"Bearer {organizer.token}"}
    ).json()
    assert [(c["token_id"], c["gate"], c["first_gate"]) for c in report["conflicts"]] == [
        (token_id, "South", "North")
    ]
    assert report["admitted"] == 1


def test_any_other_qr_is_answered_malformed_and_counted(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    event, _buyer, _token_id, organizer = _sold_ticket(client, worker, admin)
    credential = _scanner(client, organizer, event["id"], "North")
    url = "https://example.com/" + "a" * 200
    answer = _scan(client, credential, url, "qr")
    assert answer.status_code == 200
    assert (answer.json()["result"], answer.json()["reason"]) == ("refused", "malformed-code")
    assert _scan(client, credential, "x" * 301, "long").status_code == 422
