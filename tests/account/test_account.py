"""A wallet's own data: GET /me/export reads out everything kept about it, DELETE /me/data
erases what can be erased (the e-mail) and ends the session, and keeps what is owed."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.demo import SUCCESS_CARD, FairtixClient
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in

pytestmark = pytest.mark.db


def test_export_holds_every_row_of_mine_and_no_secret_and_erasure_keeps_what_is_owed(
    client: TestClient, worker: Worker, admin: LocalAccount
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer)
    buyer = admitted_buyer(client, event["id"])
    buyer._call("PUT", "/me/contact", json={"email": "fan@example.org"})
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
    drain(worker)

    exported = buyer._call("GET", "/me/export")
    sections = exported["sections"]
    assert exported["address"] == buyer.wallet.address.lower()
    assert [c["email"] for c in sections["contact"]] == ["fan@example.org"]
    assert [o["id"] for o in sections["orders"]] == [order["id"]]
    assert len(sections["tickets_held"]) == 2
    assert sections["sign_in_sessions"] and all(
        "token_hash" not in row for row in sections["sign_in_sessions"]
    )
    assert exported["truncated"] == []
    # Someone else's export has none of it.
    other = signed_in(client)._call("GET", "/me/export")["sections"]
    assert other["orders"] == [] and other["contact"] == []

    erased = buyer._call("DELETE", "/me/data")
    assert (erased["contact_email_erased"], erased["signed_out"]) == (True, True)
    assert erased["kept"]
    assert (
        client.get("/me/export", headers={"Authorization": f"Bearer {buyer.token}"}).status_code
        == 401
    )
    again = FairtixClient(client, buyer.wallet)
    again.sign_in()
    after = again._call("GET", "/me/export")["sections"]
    assert after["contact"] == []
    assert [o["id"] for o in after["orders"]] == [order["id"]]  # owed and kept
    assert again._call("DELETE", "/me/data")["contact_email_erased"] is False
    assert client.get("/me/export").status_code == 401
    assert client.delete("/me/data").status_code == 401
