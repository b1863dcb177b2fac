"""The resale market's card rail on eth-tester, through the API, the sandbox card processor, the
worker and the indexer: a ticket bought by card is listed with a card payout, a card buyer
reserves and pays it, the relayer settles it on chain for the buyer's wallet, and the seller is
paid back on their card; an ether-payout seller is credited on chain and withdraws; the royalty
is credited once per sale. And every refusal of the rail, each changing nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from web3 import Web3

from backend.chain.client import ChainClient
from backend.chain.models import AppliedLog
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.resale.models import CardPurchase, Listing
from backend.runtime import Runtime
from backend.tickets.chain_logs import TicketLogApplier
from backend.worker import Worker
from tests.helpers import count, drain, signed_in
from tests.payments.wallets import buy, fund
from tests.resale.cardmarket import (
    WEI_PER_CENT,
    buy_by_card,
    card_holding,
    credits,
    listing,
    order_intent,
    owner_on_chain,
    pay,
    payouts,
    purchases,
    refunded_cents,
    w3_of,
)
from tests.resale.market import holding, list_ticket, problem, sell_order

pytestmark = pytest.mark.db


def test_a_card_bought_ticket_resold_to_a_card_buyer_pays_the_seller_back_on_their_card(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    price = market.face_wei  # within the cap; proceeds 95% of what the card paid
    royalty = price * event["royalty_bps"] // 10_000

    listed = list_ticket(seller, event["id"], token_id, price, payout="card")
    assert listed["payout"] == "card"
    assert listed["payee_address"] == chain.signer_address.lower()
    assert listed["payout_cents"] == (price - royalty) // WEI_PER_CENT
    before = credits(chain, event)

    # A card buyer reserves it and pays in the event's currency; nobody else can take it.
    buyer = signed_in(client)
    bought = buy_by_card(buyer, listed["id"])
    assert bought["listing"]["status"] == "reserved"
    assert bought["purchase"]["status"] == "reserved"
    assert bought["payment_intent"]["amount"] == listed["price_cents"]
    assert bought["payment_intent"]["currency"] == listed["currency"]
    assert bought["payment_intent"]["client_secret"]
    pay(buyer, bought)
    drain(worker)

    # Settled on chain for the buyer's wallet; the seller paid back on the card that bought it.
    assert owner_on_chain(chain, event, token_id) == buyer.wallet.address.lower()
    [purchase] = purchases(runtime)
    assert purchase.status == "settled" and purchase.settle_tx_hash is not None
    assert buyer._call("GET", f"/listings/{listed['id']}")["status"] == "sold"
    [payout] = payouts(runtime)
    assert (payout.rail, payout.status) == ("card", "paid")
    assert payout.amount_cents == listed["payout_cents"]
    assert (
        refunded_cents(runtime, order_intent(runtime, seller.wallet.address))
        == (listed["payout_cents"])
    )
    mine = seller._call("GET", "/me/payouts")["payouts"]
    assert [(p["rail"], p["status"], p["listing_id"]) for p in mine] == [
        ("card", "paid", listed["id"])
    ]
    # The relayer paid only the royalty (its proceeds netted); the organizer has it, once.
    after = credits(chain, event)
    assert after.organizer - before.organizer == royalty
    assert after.relayer == before.relayer
    assert buyer._call("GET", f"/resale/purchases/{purchase.id}")["status"] == "settled"

    # The card buyer resells with an ether payout to the next card buyer: the relayer pays the
    # price in ether, the seller is credited on chain and withdraws it.
    relisted = list_ticket(buyer, event["id"], token_id, price)
    assert relisted["payout"] == "ether" and relisted["payee_address"] is None
    third = signed_in(client)
    pay(third, buy_by_card(third, relisted["id"]))
    drain(worker)
    assert owner_on_chain(chain, event, token_id) == third.wallet.address.lower()
    credited = chain.credit_of(event["contract_address"], buyer.wallet.address)
    assert credited == price - royalty
    ether = [p for p in buyer._call("GET", "/me/payouts")["payouts"]]
    assert [(p["rail"], p["status"], p["amount_wei"]) for p in ether] == [
        ("ether", "credited", str(price - royalty))
    ]
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    withdraw = chain._ticket_event(event["contract_address"]).encode_abi("withdraw", args=[])
    buy(
        w3,
        buyer.wallet,
        {
            "to": event["contract_address"],
            "data": withdraw,
            "value": "0x0",
            "chainId": chain.chain_id,
        },
    )
    assert chain.credit_of(event["contract_address"], buyer.wallet.address) == 0
    assert credits(chain, event).organizer - before.organizer == 2 * royalty
    # Drained again: nothing is paid twice.
    drain(worker)
    assert len(payouts(runtime)) == 2
    assert (
        refunded_cents(runtime, order_intent(runtime, seller.wallet.address))
        == (listed["payout_cents"])
    )


def test_the_card_rails_refusals_each_change_nothing(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin, quantity=2, resale_cap_bps=20_000)
    event, seller = market.event, market.holder
    face = market.face_wei

    # A card payout can't give back more than the card paid for the ticket.
    assert problem(
        sell_order, seller, event["id"], market.token_ids[0], 2 * face, payout="card"
    ) == (422, "card-payout-above-payment")
    listed = list_ticket(seller, event["id"], market.token_ids[0], face, payout="card")

    buyer, other, eth_buyer = signed_in(client), signed_in(client), signed_in(client)
    assert problem(buy_by_card, seller, listed["id"]) == (409, "own-listing")
    bought = buy_by_card(buyer, listed["id"])
    rows = (count(runtime, CardPurchase), count(runtime, Listing))
    # Reserved: refused to everyone else, on both rails, and not replaceable by its seller.
    assert problem(buy_by_card, other, listed["id"]) == (409, "listing-reserved")
    crypto = {"method": "crypto"}
    assert problem(eth_buyer._call, "POST", f"/listings/{listed['id']}/buy", json=crypto) == (
        409,
        "listing-reserved",
    )
    assert problem(list_ticket, seller, event["id"], market.token_ids[0], face) == (
        409,
        "listing-reserved",
    )
    assert problem(seller._call, "DELETE", f"/listings/{listed['id']}") == (
        409,
        "listing-reserved",
    )
    assert (count(runtime, CardPurchase), count(runtime, Listing)) == rows
    browse = seller._call("GET", f"/events/{event['id']}/listings")["listings"]
    assert [entry["id"] for entry in browse] == []

    # Sold: refused as not on the market.
    pay(buyer, bought)
    drain(worker)
    assert problem(buy_by_card, other, listed["id"]) == (409, "listing-not-live")
    assert count(runtime, CardPurchase) == 1

    # An ether-bought ticket can't be paid out by card.
    eth_market = holding(client, worker, chain, admin)
    assert problem(
        sell_order,
        eth_market.holder,
        eth_market.event["id"],
        eth_market.token_ids[0],
        eth_market.face_wei,
        payout="card",
    ) == (422, "card-payout-not-allowed")
    # The card resale buyer may: back to the card that paid for the resale.
    resold = list_ticket(buyer, event["id"], market.token_ids[0], face, payout="card")
    assert resold["payout"] == "card"
    assert count(runtime, Listing) == 2


def test_a_lapsed_reservation_is_live_again_and_its_late_payment_is_refunded_if_taken(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    listed = list_ticket(seller, event["id"], token_id, market.face_wei)
    late, prompt = signed_in(client), signed_in(client)
    first = buy_by_card(late, listed["id"])
    # The payment window passes unpaid (moved into the past rather than waited for).
    past = utcnow() - timedelta(seconds=1)
    with transaction(runtime.sessions) as session:
        session.execute(update(CardPurchase).values(reserved_until=past))
        session.execute(update(Listing).values(reserved_until=past))
    assert late._call("GET", f"/listings/{listed['id']}")["status"] == "live"
    second = buy_by_card(prompt, listed["id"])  # the lapsed hold gives way at once
    pay(late, first)  # too late: the listing is someone else's now
    pay(prompt, second)
    drain(worker)
    assert owner_on_chain(chain, event, token_id) == prompt.wallet.address.lower()
    statuses = {p.buyer_address: (p.status, p.failure_reason) for p in purchases(runtime)}
    status, reason = statuses[late.wallet.address.lower()]
    assert status == "refunded" and reason is not None and "lapsed" in reason
    assert statuses[prompt.wallet.address.lower()][0] == "settled"
    assert (
        refunded_cents(runtime, first["payment_intent"]["id"]) == first["purchase"]["amount_cents"]
    )
    assert refunded_cents(runtime, second["payment_intent"]["id"]) == 0
    assert Web3.is_address(late.wallet.address)


def test_a_settlement_stored_but_never_sent_is_sent_once_after_a_crash(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id = market.event, market.token_ids[0]
    listed = list_ticket(market.holder, event["id"], token_id, market.face_wei)
    buyer = signed_in(client)
    pay(buyer, buy_by_card(buyer, listed["id"]))
    # The worker dies right after storing the signed settlement, before it reaches the node.
    with monkeypatch.context() as patched:
        patched.setattr(chain, "broadcast", lambda raw: "the worker died before sending it")
        for _ in range(3):
            worker.run_once()
        [stored] = purchases(runtime)
        assert stored.status == "settling" and stored.settle_raw_tx is not None
        assert owner_on_chain(chain, event, token_id) == market.holder.wallet.address.lower()
    # Restarted: the stored transaction itself is sent (no second one is signed), mined once.
    drain(worker)
    [settled] = purchases(runtime)
    assert settled.status == "settled"
    assert settled.settle_tx_hash == stored.settle_tx_hash
    assert settled.settle_nonce == stored.settle_nonce
    assert owner_on_chain(chain, event, token_id) == buyer.wallet.address.lower()
    assert chain.mined_nonce_count() == (stored.settle_nonce or 0) + 1
    [payout] = payouts(runtime)
    assert payout.rail == "ether" and payout.status == "credited"


def _orphan(runtime: Runtime, tx_hash: str) -> int:
    """A reorg orphans the block holding ``tx_hash``: its logs undone newest first, as the
    indexer does. Returns the block."""
    applier = TicketLogApplier()
    with transaction(runtime.sessions) as session:
        applied = session.scalars(
            select(AppliedLog)
            .where(AppliedLog.tx_hash == tx_hash)
            .order_by(AppliedLog.block_number.desc(), AppliedLog.log_index.desc())
        ).all()
        for entry in applied:
            applier.rollback(session, entry)
            session.delete(entry)
        return applied[0].block_number


def _mine_again(
    runtime: Runtime, chain: ChainClient, event: dict[str, Any], tx_hash: str, block: int
) -> None:
    """The same transaction mined again: its logs applied again."""
    applier = TicketLogApplier()
    with transaction(runtime.sessions) as session:
        for entry in chain.ticket_logs(event["contract_address"], block, block):
            if entry.tx_hash == tx_hash:
                applier.apply(session, entry)


def test_a_reorg_of_a_card_resale_undoes_nothing_twice_and_pays_nobody_twice(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    listed = list_ticket(seller, event["id"], token_id, market.face_wei, payout="card")
    buyer = signed_in(client)
    pay(buyer, buy_by_card(buyer, listed["id"]))
    drain(worker)
    [purchase] = purchases(runtime)
    assert purchase.settle_tx_hash is not None
    refunded = refunded_cents(runtime, order_intent(runtime, seller.wallet.address))

    block = _orphan(runtime, purchase.settle_tx_hash)
    # Orphaned: the refund already made to the seller's card is flagged, the purchase is
    # settling again (its transaction followed), the listing held for its card buyer.
    assert [p.status for p in payouts(runtime)] == ["reverted_after_paid"]
    assert [p.status for p in purchases(runtime)] == ["settling"]
    assert listing(runtime, listed["id"]).status == "reserved"
    # Mined again: the same payout stands, paid once; the purchase settled again.
    _mine_again(runtime, chain, event, purchase.settle_tx_hash, block)
    drain(worker)
    assert [(p.status, p.rail) for p in payouts(runtime)] == [("paid", "card")]
    assert [p.status for p in purchases(runtime)] == ["settled"]
    assert listing(runtime, listed["id"]).status == "sold"
    assert refunded_cents(runtime, order_intent(runtime, seller.wallet.address)) == refunded

    # An ether payout orphaned is taken back, and credited again when the sale is mined again.
    relisted = list_ticket(buyer, event["id"], token_id, market.face_wei)
    eth_buyer = signed_in(client)
    w3 = w3_of(chain)
    fund(w3, eth_buyer.wallet.address)
    tx = eth_buyer._call("POST", f"/listings/{relisted['id']}/buy", json={"method": "crypto"})
    receipt = buy(w3, eth_buyer.wallet, tx["transaction"])
    drain(worker)
    tx_hash = receipt["transactionHash"].to_0x_hex().lower()
    block = _orphan(runtime, tx_hash)
    assert [p.status for p in payouts(runtime)] == ["paid", "reverted"]
    _mine_again(runtime, chain, event, tx_hash, block)
    assert [p.status for p in payouts(runtime)] == ["paid", "credited"]


def test_a_private_sale_is_for_its_named_buyer_only(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    friend, stranger = signed_in(client), signed_in(client)
    listed = list_ticket(
        seller, event["id"], token_id, market.face_wei, buyer=friend.wallet.address
    )
    assert listed["named_buyer"] == friend.wallet.address.lower()
    browse = stranger._call("GET", f"/events/{event['id']}/listings")["listings"]
    assert browse == []  # not on the public market
    assert problem(buy_by_card, stranger, listed["id"]) == (403, "not-listing-buyer")
    crypto = {"method": "crypto"}
    assert problem(stranger._call, "POST", f"/listings/{listed['id']}/buy", json=crypto) == (
        403,
        "not-listing-buyer",
    )
    assert purchases(runtime) == []
    pay(friend, buy_by_card(friend, listed["id"]))
    drain(worker)
    assert owner_on_chain(chain, event, token_id) == friend.wallet.address.lower()


def test_a_payment_after_the_reservation_lapsed_still_settles_if_the_listing_is_free(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id = market.event, market.token_ids[0]
    listed = list_ticket(market.holder, event["id"], token_id, market.face_wei)
    buyer = signed_in(client)
    bought = buy_by_card(buyer, listed["id"])
    past = utcnow() - timedelta(seconds=1)
    with transaction(runtime.sessions) as session:
        session.execute(update(CardPurchase).values(reserved_until=past))
        session.execute(update(Listing).values(reserved_until=past))
    worker.run_once()  # the sweep: the purchase expired, the listing live again
    assert [p.status for p in purchases(runtime)] == ["expired"]
    assert listing(runtime, listed["id"]).status == "live"
    pay(buyer, bought)
    drain(worker)
    assert [p.status for p in purchases(runtime)] == ["settled"]
    assert owner_on_chain(chain, event, token_id) == buyer.wallet.address.lower()
