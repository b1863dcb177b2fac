"""Cancelling an event through the API on eth-tester: open orders cancelled with their seats
released, card buyers refunded through the provider once, crypto buyers claiming from escrow,
the contract cancelled (its tickets invalid), and sales refused from then on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend import outbox
from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.db.base import utcnow
from backend.demo import SUCCESS_CARD, FairtixClient
from backend.runtime import Runtime
from backend.sales import cancellation, refunds
from backend.sales import service as sales
from backend.sales.errors import RefundNotYet
from backend.sales.models import Order
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.notify.helpers import call, make_due
from tests.payments.orders import assert_problem
from tests.payments.wallets import buy, fund
from tests.sales.onchain import revert_of, send, transfer_tx, w3_of

pytestmark = pytest.mark.db

REASON = "The venue flooded"


def cancel(api: FairtixClient, event_id: int, reason: str = REASON) -> httpx.Response:
    return call(api, "POST", f"/events/{event_id}/cancel", json={"reason": reason})


def card_order(
    client: TestClient, worker: Worker, event: dict[str, Any], quantity: int = 2
) -> tuple[FairtixClient, dict[str, Any]]:
    """A buyer's card order, paid and minted."""
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], quantity)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
    drain(worker)
    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    return buyer, final


def paid_card_order(
    client: TestClient, worker: Worker, event: dict[str, Any]
) -> tuple[FairtixClient, dict[str, Any]]:
    """A buyer's card order, paid, its mint queued but not run."""
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 1)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
    worker._work_outbox()  # the sandbox's webhook only: the order is paid, its mint queued
    assert buyer.order(order["id"])["status"] == "paid"
    return buyer, order


def crypto_order(
    client: TestClient, chain: ChainClient, event: dict[str, Any], *, pay: bool = True
) -> tuple[FairtixClient, dict[str, Any], dict[str, Any]]:
    """A buyer's crypto checkout and, with ``pay``, its purchase mined (not yet indexed)."""
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    fund(w3_of(chain), buyer.wallet.address)
    if pay:
        buy(w3_of(chain), buyer.wallet, payment["transaction"])
    return buyer, order, payment


def start_minting(runtime: Runtime, order_id: int) -> None:
    """Where a worker is between starting a mint and recording it."""
    with Session(runtime.engine) as session, session.begin():
        order = session.get(Order, order_id)
        assert order is not None
        sales.transition(session, order, sales.MINTING, "mint started")


def test_cancel_refunds_a_fulfilled_card_order_and_invalidates_its_tickets(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    provider_refunds: list[str],
) -> None:
    organizer = signed_in(client, admin)
    # The session's eth-tester chain is shared by every test: reading its logs from block 0
    # took this test half a minute late in the suite.
    first_block = w3_of(chain).eth.block_number
    event = make_event(organizer, supply=3)
    buyer, order = card_order(client, worker, event)
    assert order["refund"]["state"] == "none"

    response = cancel(organizer, event["id"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["orders_cancelled"], body["card_refunds_queued"]) == (0, 1)
    assert body["event"]["cancelled"] is True
    cancelled = body["event"]["cancellation"]
    assert (cancelled["reason"], cancelled["cancelled_by"]) == (
        REASON,
        organizer.wallet.address.lower(),
    )
    assert cancelled["on_chain"] is False
    queued = buyer.order(order["id"])["refund"]
    assert (queued["state"], queued["method"]) == ("pending", "card")
    assert queued["reason"] == f"event cancelled: {REASON}"

    drain(worker)

    contract = event["contract_address"]
    assert chain.event_cancelled(contract)
    shown = client.get(f"/events/{event['id']}").json()["cancellation"]
    assert shown["on_chain"] is True
    assert shown["tx_hash"] == chain.find_cancellation(contract, from_block=first_block)
    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert final["refund"]["state"] == "refunded" and final["refund"]["refunded_at"]
    assert final["transitions"][-1]["from_status"] == "fulfilled"
    assert provider_refunds == [order["payment_intent_id"]]
    # The contract refuses to move a ticket of the cancelled event: it is no longer valid.
    fund(w3_of(chain), buyer.wallet.address)
    move = transfer_tx(
        chain, contract, buyer.wallet.address, Account.create().address, order["token_ids"][0]
    )
    assert revert_of(chain, buyer.wallet, move) == "EventIsCancelled"
    assert all(t["event_cancelled"] for t in buyer.my_tickets()["tickets"])


def test_a_repeated_refund_or_cancellation_message_changes_nothing(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    provider_refunds: list[str],
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order = card_order(client, worker, event)
    assert cancel(organizer, event["id"]).status_code == 200
    drain(worker)
    cancel_tx = client.get(f"/events/{event['id']}").json()["cancellation"]["tx_hash"]

    # What a worker that died after acting but before marking its messages done would redo.
    with Session(runtime.engine) as session, session.begin():
        outbox.enqueue(session, sales.REFUND_ORDER, {"order_id": order["id"]})
        outbox.enqueue(session, cancellation.CANCEL_ON_CHAIN, {"event_id": event["id"]})
        event_row = session.get(Event, event["id"])
        assert event_row is not None
        event_row.chain_cancelled_at = None  # as if the cancel tx was mined but not recorded
    drain(worker)

    assert provider_refunds == [order["payment_intent_id"]]
    assert buyer.order(order["id"])["status"] == "refunded"
    assert client.get(f"/events/{event['id']}").json()["cancellation"]["tx_hash"] == cancel_tx


def test_cancel_releases_open_orders_and_refuses_further_sales(
    client: TestClient, worker: Worker, admin: LocalAccount, provider_refunds: list[str]
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=5)
    tier_id = event["tiers"][0]["id"]
    holding = admitted_buyer(client, event["id"])
    held = holding.place_order(event["id"], tier_id, 1)
    paying = admitted_buyer(client, event["id"])
    checking_out = paying.place_order(event["id"], tier_id, 2)
    intent = paying.checkout_card(checking_out["id"])["payment_intent"]
    late = admitted_buyer(client, event["id"])
    assert late.availability(event["id"])["tiers"][0]["remaining"] == 2

    response = cancel(organizer, event["id"])

    assert response.json()["orders_cancelled"] == 2
    for buyer, order in ((holding, held), (paying, checking_out)):
        final = buyer.order(order["id"])
        assert final["status"] == "cancelled"
        assert final["transitions"][-1]["cause"] == "event cancelled"
        assert final["refund"]["state"] == "none"
    availability = late.availability(event["id"])
    assert availability["tiers"][0]["remaining"] == 5
    assert availability["on_sale"] is False
    ordered = call(
        late, "POST", "/orders", json={"event_id": event["id"], "tier_id": tier_id, "quantity": 1}
    )
    assert_problem(ordered, 409, "event-cancelled")
    paid = call(holding, "POST", f"/orders/{held['id']}/checkout", json={"method": "card"})
    assert_problem(paid, 409, "event-cancelled")
    crypto = call(holding, "POST", f"/orders/{held['id']}/checkout", json={"method": "crypto"})
    assert_problem(crypto, 409, "event-cancelled")
    newcomer = signed_in(client)
    assert_problem(call(newcomer, "POST", f"/events/{event['id']}/queue"), 409, "queue-closed")

    # The card payment that was under way still succeeds at the provider: it goes back.
    paying.pay_in_sandbox(intent, SUCCESS_CARD)
    drain(worker)
    final = paying.order(checking_out["id"])
    assert final["status"] == "refunded"
    assert final["refund"]["state"] == "refunded"
    assert provider_refunds == [intent["id"]]
    assert paying.availability(event["id"])["tiers"][0]["remaining"] == 5


def test_only_the_events_organizer_or_an_admin_may_cancel(
    client: TestClient, admin: LocalAccount
) -> None:
    root = signed_in(client, admin)
    owner, rival = signed_in(client), signed_in(client)
    for wallet in (owner, rival):
        grant = {"address": wallet.wallet.address, "role": "organizer"}
        assert call(root, "POST", "/admin/roles", json=grant).status_code == 201
    first = make_event(owner)
    second = make_event(owner)
    buyer = signed_in(client)

    assert_problem(cancel(rival, first["id"]), 403, "not-event-organizer")
    assert_problem(cancel(buyer, first["id"]), 403, "not-event-organizer")
    anonymous = client.post(f"/events/{first['id']}/cancel", json={"reason": REASON})
    assert_problem(anonymous, 401, "not-authenticated")
    assert client.get(f"/events/{first['id']}").json()["cancelled"] is False

    assert cancel(owner, first["id"]).status_code == 200
    assert cancel(root, second["id"]).status_code == 200  # an admin may cancel any event


def test_cancelling_twice_or_after_the_event_ended_is_409(
    client: TestClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    first, second = make_event(organizer), make_event(organizer)
    assert cancel(organizer, first["id"]).status_code == 200

    again = assert_problem(cancel(organizer, first["id"], "twice"), 409, "event-cancelled")
    assert REASON in again["detail"]
    assert client.get(f"/events/{first['id']}").json()["cancellation"]["reason"] == REASON

    with Session(runtime.engine) as session, session.begin():
        ended = session.get(Event, second["id"])
        assert ended is not None
        ended.ends_at = utcnow() - timedelta(minutes=1)
    assert_problem(cancel(organizer, second["id"]), 409, "event-over")


@pytest.mark.parametrize(
    ("path", "body", "status", "slug"),
    [
        ("/events/999999/cancel", {"reason": REASON}, 404, "event-not-found"),
        ("/events/abc/cancel", {"reason": REASON}, 422, "validation-failed"),
        ("/events/{id}/cancel", {}, 422, "validation-failed"),
        ("/events/{id}/cancel", {"reason": ""}, 422, "validation-failed"),
        ("/events/{id}/cancel", {"reason": "x" * 501}, 422, "validation-failed"),
        ("/events/{id}/cancel", {"reason": REASON, "refund": False}, 422, "validation-failed"),
        ("/events/{id}/cancel", [REASON], 422, "validation-failed"),
    ],
)
def test_cancel_with_bad_input_is_a_problem_not_a_500(
    client: TestClient, admin: LocalAccount, path: str, body: Any, status: int, slug: str
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer)
    response = call(organizer, "POST", path.format(id=event["id"]), json=body)
    assert_problem(response, status, slug)
    assert client.get(f"/events/{event['id']}").json()["cancelled"] is False


def test_an_order_minting_at_the_cancellation_is_refunded_once_its_mint_is_recorded(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    provider_refunds: list[str],
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order = paid_card_order(client, worker, event)
    start_minting(runtime, order["id"])
    assert cancel(organizer, event["id"]).json()["card_refunds_queued"] == 1

    # Its mint may still land: the refund waits rather than give back money for tickets.
    with pytest.raises(RefundNotYet):
        refunds.refund_card_payment(runtime.sessions, chain, runtime.cards, order["id"])
    assert provider_refunds == []

    # The worker's pass: the mint lands before the contract is cancelled, then the refund.
    drain(worker)
    make_due(runtime)
    drain(worker)
    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert [t["to_status"] for t in final["transitions"]][-3:] == [
        "minting",
        "fulfilled",
        "refunded",
    ]
    assert len(final["token_ids"]) == 1
    assert chain.order_minted(event["contract_address"], order["id"])
    assert provider_refunds == [final["payment_intent_id"]]


def test_a_mint_the_cancelled_contract_refuses_is_refunded_without_tickets(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    provider_refunds: list[str],
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order = paid_card_order(client, worker, event)
    start_minting(runtime, order["id"])
    assert cancel(organizer, event["id"]).status_code == 200
    cancellation.cancel_on_chain(runtime.sessions, chain, runtime.queue, event["id"])

    for _ in range(3):  # the mint keeps failing on chain until the refund settles the order
        drain(worker)
        make_due(runtime)

    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert final["token_ids"] == []
    assert [t["to_status"] for t in final["transitions"]][-3:] == ["minting", "paid", "refunded"]
    assert not chain.order_minted(event["contract_address"], order["id"])
    assert provider_refunds == [final["payment_intent_id"]]


def test_crypto_buyers_claim_their_refund_on_chain_ticket_by_ticket(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order, payment = crypto_order(client, chain, event)
    drain(worker)
    assert buyer.order(order["id"])["status"] == "fulfilled"
    contract = event["contract_address"]
    claim_before = chain.claim_refund_transaction(contract, order["id"] * 256)
    claim_before_tx = {**claim_before, "value": "0x0"}
    assert revert_of(chain, buyer.wallet, claim_before_tx) == "EventNotCancelled"

    assert cancel(organizer, event["id"]).json()["crypto_orders_claimable"] == 1
    assert buyer.order(order["id"])["refund"]["state"] == "pending"  # not cancelled on chain yet
    drain(worker)

    refund = buyer.order(order["id"])["refund"]
    assert (refund["state"], refund["method"], refund["tickets"]) == (
        "claimable_on_chain",
        "crypto",
        2,
    )
    unit_price = int(payment["total_wei"]) // 2
    assert [(c["token_id"], c["holder"], int(c["amount_wei"])) for c in refund["claims"]] == [
        (order["id"] * 256 + i, buyer.wallet.address.lower(), unit_price) for i in range(2)
    ]
    # Only the ticket's holder can claim it.
    stranger: LocalAccount = Account.create()
    fund(w3_of(chain), stranger.address)
    assert revert_of(chain, stranger, refund["claims"][0]["transaction"]) == "NotTicketOwner"

    w3 = w3_of(chain)
    balance = w3.eth.get_balance(buyer.wallet.address)
    first = send(chain, buyer.wallet, refund["claims"][0]["transaction"])
    drain(worker)
    partial = buyer.order(order["id"])
    assert partial["status"] == "fulfilled"
    assert partial["refund"]["state"] == "claimable_on_chain"
    assert partial["refund"]["claimed_token_ids"] == [order["id"] * 256]
    assert [c["token_id"] for c in partial["refund"]["claims"]] == [order["id"] * 256 + 1]

    second = send(chain, buyer.wallet, partial["refund"]["claims"][0]["transaction"])
    drain(worker)
    final = buyer.order(order["id"])
    assert final["status"] == "refunded"
    assert final["refund"]["state"] == "claimed"
    assert final["refund"]["claims"] == []
    assert "refunds claimed on chain" in final["transitions"][-1]["cause"]
    gas = sum(r["gasUsed"] * r["effectiveGasPrice"] for r in (first, second))
    assert w3.eth.get_balance(buyer.wallet.address) == balance + 2 * unit_price - gas
    assert buyer.my_tickets()["tickets"] == []  # burned


def test_a_purchase_mined_before_the_contract_was_cancelled_is_claimable(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order, payment = crypto_order(client, chain, event, pay=False)
    assert cancel(organizer, event["id"]).json()["orders_cancelled"] == 1
    # The buyer's wallet sends the purchase before the worker cancels the contract.
    buy(w3_of(chain), buyer.wallet, payment["transaction"])
    drain(worker)

    final = buyer.order(order["id"])
    assert final["status"] == "cancelled" and final["token_ids"] == []
    refund = final["refund"]
    assert refund["state"] == "claimable_on_chain"
    assert [c["holder"] for c in refund["claims"]] == [buyer.wallet.address.lower()] * 2
    for claim in refund["claims"]:
        send(chain, buyer.wallet, claim["transaction"])
    drain(worker)
    claimed = buyer.order(order["id"])
    assert claimed["status"] == "cancelled"
    assert claimed["refund"]["state"] == "claimed"


def test_an_unpaid_crypto_order_of_a_cancelled_event_has_nothing_to_refund(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer, order, payment = crypto_order(client, chain, event, pay=False)
    cancel(organizer, event["id"])
    drain(worker)

    assert buyer.order(order["id"])["refund"]["state"] == "none"
    # The permit it was given can no longer buy anything: the contract is cancelled.
    assert revert_of(chain, buyer.wallet, payment["transaction"]) == "EventIsCancelled"
