"""Order fulfilment notifies: the organizer's webhook and the buyer's e-mailed receipt."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.message import Message

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.db.engine import transaction
from backend.demo import SUCCESS_CARD, FairtixClient
from backend.notify.models import ContactEmail, Receipt
from backend.notify.service import SEND_RECEIPT
from backend.notify.signing import verify_signature
from backend.outbox import OutboxMessage
from backend.runtime import Runtime
from backend.worker import Worker
from tests.e2e.test_bad_input import assert_problem
from tests.helpers import admitted_buyer, count, drain, make_event, signed_in
from tests.notify.helpers import call, register
from tests.notify.receiver import Receiver
from tests.notify.smtp_fake import FakeSmtp

pytestmark = pytest.mark.db

EMAIL = "buyer@example.org"


def fulfil(
    client: TestClient, admin: LocalAccount, worker: Worker, email: str | None
) -> tuple[dict[str, object], dict[str, object], FairtixClient]:
    """Sell two tickets by card, with the buyer giving ``email`` (or none); returns the event,
    the fulfilled order and the buyer."""
    event = make_event(signed_in(client, admin), supply=3, venue="Paradiso, Amsterdam")
    buyer = admitted_buyer(client, event["id"])
    if email is not None:
        assert call(buyer, "PUT", "/me/contact", json={"email": email}).status_code == 200
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
    drain(worker)
    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    return event, final, buyer


def receipt_status(runtime: Runtime, order_id: object) -> tuple[str, str] | None:
    with transaction(runtime.sessions) as session:
        receipt = session.get(Receipt, order_id)
        return None if receipt is None else (receipt.status, receipt.detail)


def receipt_messages(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        kinds = session.scalars(select(OutboxMessage.kind))
        return sum(kind == SEND_RECEIPT for kind in kinds)


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_fulfilled_order_emails_a_receipt_and_calls_the_webhook(
    client: TestClient,
    admin: LocalAccount,
    worker: Worker,
    runtime: Runtime,
    receiver: Receiver,
    smtp_server: FakeSmtp,
) -> None:
    hook = register(signed_in(client, admin), receiver.url)
    event, order, buyer = fulfil(client, admin, worker, EMAIL)

    [mail] = smtp_server.messages
    assert mail.recipients == [EMAIL]
    assert mail.sender == "receipts@fairtix.test"
    message = message_from_bytes(mail.data)
    assert message["To"] == EMAIL
    assert message["Message-ID"] == f"<receipt-{order['id']}@testserver>"
    assert "Test night" in message["Subject"]
    text = text_of(message)
    for expected in [
        "Test night",
        "Paradiso, Amsterdam",
        "GA",
        "Quantity:     2",
        ", ".join(str(t) for t in order["token_ids"]),  # type: ignore[attr-defined]
        str(order["mint_tx_hash"]),
        f"Order:        {order['id']}",
    ]:
        assert expected in text
    assert receipt_status(runtime, order["id"]) == ("sent", "sent by SMTP")

    [request] = receiver.requests
    verify_signature(hook["secret"], request.headers["Fairtix-Signature"], request.body)
    body = json.loads(request.body)
    assert body["type"] == "order.fulfilled"
    assert body["data"] == {
        "order_id": order["id"],
        "event_id": event["id"],
        "tier_id": event["tiers"][0]["id"],  # type: ignore[index]
        "buyer_address": buyer.wallet.address.lower(),
        "token_ids": order["token_ids"],
        "tx_hash": order["mint_tx_hash"],
    }
    assert EMAIL not in request.body.decode()

    drain(worker)  # a re-run sends nothing twice
    assert len(smtp_server.messages) == 1
    assert len(receiver.requests) == 1


def test_receipt_is_not_sent_without_a_contact_email(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime, smtp_server: FakeSmtp
) -> None:
    _, order, _ = fulfil(client, admin, worker, None)
    assert smtp_server.messages == []
    assert receipt_status(runtime, order["id"]) == ("skipped", "the buyer gave no contact e-mail")
    # Known when the mint was recorded: no message was queued only to find it out.
    assert receipt_messages(runtime) == 0


def test_a_receipt_the_mint_could_not_settle_goes_through_the_outbox(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime, smtp_server: FakeSmtp
) -> None:
    _, order, _ = fulfil(client, admin, worker, EMAIL)
    assert receipt_status(runtime, order["id"]) == ("sent", "sent by SMTP")
    assert receipt_messages(runtime) == 1


def test_receipt_is_skipped_when_smtp_is_not_configured(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime, smtp_server: FakeSmtp
) -> None:
    runtime.settings.smtp_host = None
    _, order, _ = fulfil(client, admin, worker, EMAIL)
    assert smtp_server.messages == []
    assert receipt_status(runtime, order["id"]) == ("skipped", "SMTP is not configured")


def test_receipt_refused_by_the_relay_is_recorded_as_failed(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime, smtp_server: FakeSmtp
) -> None:
    smtp_server.reject_recipients.add(EMAIL)
    _, order, _ = fulfil(client, admin, worker, EMAIL)
    status = receipt_status(runtime, order["id"])
    assert status is not None and status[0] == "failed"


def test_receipt_is_retried_while_the_relay_is_down(
    client: TestClient, admin: LocalAccount, worker: Worker, runtime: Runtime, smtp_server: FakeSmtp
) -> None:
    runtime.settings.smtp_port = 1  # nothing listens there
    _, order, _ = fulfil(client, admin, worker, EMAIL)
    assert receipt_status(runtime, order["id"]) is None  # not given up: still in the outbox


def test_contact_can_be_set_read_and_deleted(client: TestClient, runtime: Runtime) -> None:
    buyer = signed_in(client)
    assert_problem(call(buyer, "GET", "/me/contact"), 404, "contact-not-found")
    put = call(buyer, "PUT", "/me/contact", json={"email": "  Buyer@Example.ORG "})
    assert put.json() == {"address": buyer.wallet.address.lower(), "email": "Buyer@example.org"}
    call(buyer, "PUT", "/me/contact", json={"email": "new@example.org"})
    assert call(buyer, "GET", "/me/contact").json()["email"] == "new@example.org"
    assert call(buyer, "DELETE", "/me/contact").status_code == 204
    with transaction(runtime.sessions) as session:
        assert session.scalars(select(ContactEmail)).all() == []
    assert_problem(call(buyer, "DELETE", "/me/contact"), 404, "contact-not-found")


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"email": "buyer@example.org\r\nBcc: everyone@example.org"}, "invalid-contact"),
        ({"email": "not-an-address"}, "invalid-contact"),
        ({"email": "two@at@example.org"}, "invalid-contact"),
        ({"email": "buyer@localhost"}, "invalid-contact"),
        ({"email": "<buyer@example.org>"}, "invalid-contact"),
        ({"email": "bü@example.org"}, "invalid-contact"),
        ({"email": "a" * 65 + "@example.org"}, "invalid-contact"),
        ({"email": "a@" + "b" * 250 + ".org"}, "validation-failed"),
        ({"email": 42}, "validation-failed"),
        ({}, "validation-failed"),
    ],
)
def test_contact_with_bad_input_is_a_problem_not_a_500(
    body: object, slug: str, client: TestClient, runtime: Runtime
) -> None:
    buyer = signed_in(client)
    assert_problem(call(buyer, "PUT", "/me/contact", json=body), 422, slug)
    assert count(runtime, ContactEmail) == 0


def test_contact_needs_a_signed_in_wallet(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, "/me/contact", json={"email": EMAIL})
        assert_problem(response, 401, "not-authenticated")
