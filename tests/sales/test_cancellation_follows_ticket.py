"""Cancellation follows the ticket, on eth-tester through the API and the worker: a cancelled
event's face value goes to whoever holds each ticket when the cancellation is mined, never to a
previous holder, and nobody twice, whichever rail the ticket was first paid on."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.chain.client import ChainClient
from backend.db.engine import transaction
from backend.demo import FairtixClient
from backend.payments.models import SandboxPaymentIntent, SandboxRefund
from backend.runtime import Runtime
from backend.sales import holder_refunds
from backend.sales.errors import RefundNotYet
from backend.sales.models import HolderRefund
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.helpers import drain, make_event, signed_in
from tests.notify.helpers import make_due
from tests.payments.wallets import buy, fund
from tests.resale.cardmarket import buy_by_card, purchases, refunded_cents
from tests.resale.cardmarket import pay as pay_card
from tests.resale.market import list_ticket
from tests.sales.onchain import w3_of
from tests.sales.test_cancellation import cancel, card_order, crypto_order

pytestmark = pytest.mark.db


def resell(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    seller: FairtixClient,
    event: dict[str, Any],
    token_id: int,
    price: int,
) -> FairtixClient:
    """``seller`` lists the ticket; a new fan buys it with ether; the indexer records it."""
    listed = list_ticket(seller, event["id"], token_id, price)
    buyer = signed_in(client)
    bought = buyer._call("POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"})
    fund(w3_of(chain), buyer.wallet.address)
    buy(w3_of(chain), buyer.wallet, bought["transaction"])
    drain(worker)
    assert [t["token_id"] for t in buyer.my_tickets()["tickets"]] == [token_id]
    return buyer


def refunds_of(api: FairtixClient, token_id: int) -> list[dict[str, Any]]:
    [ticket] = [t for t in api.my_tickets()["tickets"] if t["token_id"] == token_id]
    found: list[dict[str, Any]] = ticket["refunds"]
    return found


def settle(runtime: Runtime, worker: Worker) -> None:
    """The worker until the cancellation, the indexer and every refund are through."""
    for _ in range(4):
        drain(worker)
        make_due(runtime)
    drain(worker)


def test_card_and_crypto_tickets_resold_before_a_cancellation_refund_their_holders_once(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=5)
    face_wei = int(event["tiers"][0]["price_wei"])
    # A paid two tickets by card and sold one on to B, who paid in ether.
    fan_a, card = card_order(client, worker, event, quantity=2)
    kept, sold_on = card["token_ids"]
    fan_b = resell(client, worker, chain, fan_a, event, sold_on, face_wei)
    # C paid two tickets in ether and sold one on to D, who paid in ether too.
    fan_c, crypto, _payment = crypto_order(client, chain, event)
    drain(worker)
    fan_d = resell(client, worker, chain, fan_c, event, crypto["id"] * 256, face_wei)
    w3 = w3_of(chain)
    b_balance = w3.eth.get_balance(fan_b.wallet.address)

    body = cancel(organizer, event["id"]).json()

    # A's order is not refunded whole: one of its tickets is B's now.
    assert (body["card_refunds_queued"], body["card_orders_following_tickets"]) == (0, 1)
    assert body["crypto_orders_claimable"] == 1
    waiting = fan_a.order(card["id"])["refund"]
    assert (waiting["state"], waiting["tickets"], waiting["resold_token_ids"]) == (
        "pending",
        1,
        [sold_on],
    )
    assert [(r["method"], r["state"], r["amount_wei"]) for r in refunds_of(fan_b, sold_on)] == [
        ("ether", "pending", str(face_wei))
    ]

    settle(runtime, worker)

    # A's card got back the one ticket A still held; B got the face value in ether from the
    # treasury; nobody else was paid anything.
    with transaction(runtime.sessions) as session:
        intent = session.get(SandboxPaymentIntent, card["payment_intent_id"])
        assert intent is not None
        assert (intent.amount_refunded, intent.status) == (card["unit_price_cents"], "succeeded")
        assert session.scalars(select(SandboxRefund.amount)).all() == [card["unit_price_cents"]]
        paid = session.scalars(select(HolderRefund).order_by(HolderRefund.id)).all()
        assert [(r.token_id, r.rail, r.status, r.holder_address) for r in paid] == [
            (kept, "card", "paid", fan_a.wallet.address.lower()),
            (sold_on, "ether", "paid", fan_b.wallet.address.lower()),
        ]
    assert w3.eth.get_balance(fan_b.wallet.address) == b_balance + face_wei
    final = fan_a.order(card["id"])["refund"]
    assert (final["state"], final["tickets"], final["resold_token_ids"]) == (
        "refunded",
        1,
        [sold_on],
    )
    assert [(r["method"], r["state"]) for r in refunds_of(fan_a, kept)] == [("card", "refunded")]
    [ether] = refunds_of(fan_b, sold_on)
    assert (ether["method"], ether["state"], ether["amount_wei"]) == (
        "ether",
        "refunded",
        str(face_wei),
    )
    assert ether["tx_hash"]
    # D, not C, claims the ticket C sold from escrow: the contract pays its current holder.
    claims = fan_c.order(crypto["id"])["refund"]["claims"]
    assert [c["holder"] for c in claims] == [
        fan_d.wallet.address.lower(),
        fan_c.wallet.address.lower(),
    ]
    assert [(r["method"], r["state"]) for r in refunds_of(fan_d, crypto["id"] * 256)] == [
        ("claim_on_chain", "claimable_on_chain")
    ]

    # Nobody twice: the decision and the payments run again and change nothing.
    assert holder_refunds.decide(runtime.sessions, chain, event["id"]) == holder_refunds.Decided()
    with transaction(runtime.sessions) as session:
        [first, second] = session.scalars(select(HolderRefund.id).order_by(HolderRefund.id))
    holder_refunds.pay(runtime.sessions, chain, runtime.cards, first)
    holder_refunds.pay(runtime.sessions, chain, runtime.cards, second)
    assert w3.eth.get_balance(fan_b.wallet.address) == b_balance + face_wei
    with transaction(runtime.sessions) as session:
        assert len(session.scalars(select(SandboxRefund)).all()) == 1


def test_a_card_order_whose_ticket_is_still_listed_waits_for_the_chain(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    # A signed sell order stays fillable on chain until the contract is cancelled, even once
    # fairtix has voided its listing: the order's refund can't be decided before that.
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    face_wei = int(event["tiers"][0]["price_wei"])
    fan_a, card = card_order(client, worker, event, quantity=1)
    [token_id] = card["token_ids"]
    list_ticket(fan_a, event["id"], token_id, face_wei)

    body = cancel(organizer, event["id"]).json()
    assert (body["card_refunds_queued"], body["card_orders_following_tickets"]) == (0, 1)
    settle(runtime, worker)

    # Nobody filled it: A held the ticket when the cancellation was mined, and A's card is
    # refunded its price, once.
    with transaction(runtime.sessions) as session:
        intent = session.get(SandboxPaymentIntent, card["payment_intent_id"])
        assert intent is not None and intent.amount_refunded == card["unit_price_cents"]
    refund = fan_a.order(card["id"])["refund"]
    assert (refund["state"], refund["tickets"], refund["resold_token_ids"]) == ("refunded", 1, [])


def ether_refund(runtime: Runtime, ticket: dict[str, Any], holder: str, wei: int) -> int:
    with transaction(runtime.sessions) as session:
        refund = HolderRefund(
            event_id=ticket["event_id"],
            ticket_id=ticket_row_id(session, ticket["token_id"]),
            token_id=ticket["token_id"],
            holder_address=holder.lower(),
            rail="ether",
            status="pending",
            amount_wei=str(wei),
        )
        session.add(refund)
        session.flush()
        return refund.id


def ticket_row_id(session: Any, token_id: int) -> int:
    found: int = session.scalars(select(Ticket.id).where(Ticket.token_id == token_id)).one()
    return found


def test_an_ether_refund_written_ahead_is_sent_once_across_a_crash_and_a_lost_nonce(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    fan, card = card_order(client, worker, event, quantity=2)
    tickets = fan.my_tickets()["tickets"]
    w3 = w3_of(chain)
    first_holder, second_holder = signed_in(client).wallet.address, signed_in(client).wallet.address

    # Signed and stored, then the process died before sending: the retry sends that very
    # transaction, and the one after it records it paid.
    crashed = ether_refund(runtime, tickets[0], first_holder, 7 * 10**15)
    stored_hash, _raw = holder_refunds._write_ahead(runtime.sessions, chain, crashed)
    with pytest.raises(RefundNotYet):
        holder_refunds.pay(runtime.sessions, chain, runtime.cards, crashed)
    holder_refunds.pay(runtime.sessions, chain, runtime.cards, crashed)
    holder_refunds.pay(runtime.sessions, chain, runtime.cards, crashed)
    assert w3.eth.get_balance(first_holder) == 7 * 10**15
    with transaction(runtime.sessions) as session:
        row = session.get(HolderRefund, crashed)
        assert row is not None and (row.status, row.tx_hash) == ("paid", stored_hash)

    # Stored, never sent, and its nonce went to another of the signer's transactions
    # meanwhile: it can never be mined, so a new one is signed, and the holder is paid once.
    lost = ether_refund(runtime, tickets[1], second_holder, 5 * 10**15)
    lost_hash, _raw = holder_refunds._write_ahead(runtime.sessions, chain, lost)
    with transaction(runtime.sessions) as session:
        row = session.get(HolderRefund, lost)
        assert row is not None and row.tx_nonce is not None
        taken = row.tx_nonce
    other = chain.sign_ether_transfer(admin.address, 1, nonce=taken, fees=chain.suggested_fees())
    assert chain.broadcast(other.raw) is None
    holder_refunds.pay(runtime.sessions, chain, runtime.cards, lost)
    holder_refunds.pay(runtime.sessions, chain, runtime.cards, lost)
    assert w3.eth.get_balance(second_holder) == 5 * 10**15
    with transaction(runtime.sessions) as session:
        row = session.get(HolderRefund, lost)
        assert row is not None and row.status == "paid" and row.tx_hash != lost_hash
    assert card["status"] == "fulfilled"


def test_every_rail_pair_of_a_resale_before_the_cancellation_refunds_the_holder_once(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=6)
    face_wei = int(event["tiers"][0]["price_wei"])
    # Paid by card: one ticket resold to a card buyer (the seller paid back on their card),
    # one to an ether buyer.
    fan_a, card = card_order(client, worker, event, quantity=2)
    to_card, to_ether = card["token_ids"]
    listed = list_ticket(fan_a, event["id"], to_card, face_wei, payout="card")
    card_buyer = signed_in(client)
    bought = buy_by_card(card_buyer, listed["id"])
    pay_card(card_buyer, bought)
    drain(worker)
    ether_buyer = resell(client, worker, chain, fan_a, event, to_ether, face_wei)
    # Paid in ether: one resold to a card buyer, one to an ether buyer.
    fan_c, crypto, _payment = crypto_order(client, chain, event)
    drain(worker)
    c_to_card, c_to_ether = crypto["id"] * 256, crypto["id"] * 256 + 1
    c_listed = list_ticket(fan_c, event["id"], c_to_card, face_wei)
    c_card_buyer = signed_in(client)
    pay_card(c_card_buyer, buy_by_card(c_card_buyer, c_listed["id"]))
    drain(worker)
    c_ether_buyer = resell(client, worker, chain, fan_c, event, c_to_ether, face_wei)
    w3 = w3_of(chain)
    ether_before = w3.eth.get_balance(ether_buyer.wallet.address)
    a_paid_back = refunded_cents(runtime, card["payment_intent_id"])
    assert a_paid_back == listed["payout_cents"]  # A's resale payout, on A's card

    body = cancel(organizer, event["id"]).json()
    assert (body["card_refunds_queued"], body["card_orders_following_tickets"]) == (0, 1)
    settle(runtime, worker)

    # card -> card: the card buyer's card gets the face value back; A nothing more.
    [purchase] = [
        p for p in purchases(runtime) if p.buyer_address == card_buyer.wallet.address.lower()
    ]
    assert purchase.payment_intent_id is not None
    assert refunded_cents(runtime, purchase.payment_intent_id) == card["unit_price_cents"]
    assert refunded_cents(runtime, card["payment_intent_id"]) == a_paid_back
    assert [(r["method"], r["state"]) for r in refunds_of(card_buyer, to_card)] == [
        ("card", "refunded")
    ]
    # card -> ether: the ether buyer gets the face value from the treasury.
    assert w3.eth.get_balance(ether_buyer.wallet.address) == ether_before + face_wei
    # ether -> card and ether -> ether: each holder claims from escrow; nobody else is paid.
    claims = fan_c.order(crypto["id"])["refund"]["claims"]
    assert [(c["token_id"], c["holder"]) for c in claims] == [
        (c_to_card, c_card_buyer.wallet.address.lower()),
        (c_to_ether, c_ether_buyer.wallet.address.lower()),
    ]
    assert [(r["method"], r["state"]) for r in refunds_of(c_card_buyer, c_to_card)] == [
        ("claim_on_chain", "claimable_on_chain")
    ]
    [c_purchase] = [
        p for p in purchases(runtime) if p.buyer_address == c_card_buyer.wallet.address.lower()
    ]
    assert c_purchase.payment_intent_id is not None
    assert refunded_cents(runtime, c_purchase.payment_intent_id) == 0
    # A's order: nothing left to refund to A's card; both tickets went to their holders.
    a_refund = fan_a.order(card["id"])["refund"]
    assert (a_refund["state"], a_refund["resold_token_ids"]) == ("none", [to_card, to_ether])
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            select(HolderRefund.token_id, HolderRefund.rail).order_by(HolderRefund.id)
        ).all()
    assert sorted(rows) == sorted([(to_card, "card"), (to_ether, "ether")])
