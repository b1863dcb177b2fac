"""The race for one listing: two card buyers and one ether buyer go for it at once. Exactly one
gets the ticket; the other card buyer is refused (409 listing-reserved) or refunded; the ether
buyer who lost reverts; the seller is paid once and the organizer's royalty credited once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3.exceptions import ContractCustomError

from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.chain.errors import RevertDecoder
from backend.demo import ApiError, FairtixClient
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import drain, signed_in
from tests.payments.wallets import buy, fund
from tests.resale.cardmarket import (
    buy_by_card,
    card_holding,
    credits,
    order_intent,
    owner_on_chain,
    pay,
    payouts,
    purchases,
    refunded_cents,
    w3_of,
)
from tests.resale.market import list_ticket

pytestmark = pytest.mark.db


@pytest.mark.parametrize("ether_first", [False, True], ids=["all-at-once", "ether-tx-first"])
def test_two_card_buyers_and_an_ether_buyer_race_for_one_listing(
    ether_first: bool,
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    price = market.face_wei
    royalty = price * event["royalty_bps"] // 10_000
    listed = list_ticket(seller, event["id"], token_id, price, payout="card")
    card_buyers = [signed_in(client), signed_in(client)]
    ether_buyer = signed_in(client)
    w3 = w3_of(chain)
    fund(w3, ether_buyer.wallet.address)
    before = credits(chain, event)

    def ether_buy() -> dict[str, Any] | ApiError:
        try:
            return dict(
                ether_buyer._call(
                    "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
                )
            )
        except ApiError as exc:
            return exc

    def card_buy(api: FairtixClient) -> dict[str, Any] | ApiError:
        try:
            return buy_by_card(api, listed["id"])
        except ApiError as exc:
            return exc

    answers: dict[str, dict[str, Any] | ApiError] = {}
    if ether_first:
        # The ether buyer has the transaction in hand before the card buyers reserve.
        answers["ether"] = ether_buy()
    start = threading.Barrier(len(card_buyers) + (0 if ether_first else 1))

    def run(name: str, call: Any) -> None:
        start.wait()
        answers[name] = call()

    threads = [
        threading.Thread(target=run, args=(f"card{i}", lambda api=api: card_buy(api)))
        for i, api in enumerate(card_buyers)
    ]
    if not ether_first:
        threads.append(threading.Thread(target=run, args=("ether", ether_buy)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # One card buyer holds the reservation; the other was refused while it did.
    held = [i for i in range(2) if isinstance(answers[f"card{i}"], dict)]
    assert len(held) == 1
    refused = answers[f"card{1 - held[0]}"]
    assert isinstance(refused, ApiError) and refused.status == 409
    assert str(refused.body["type"]).endswith("/listing-reserved")
    paying = card_buyers[held[0]]
    reserved = answers[f"card{held[0]}"]
    assert isinstance(reserved, dict)
    pay(paying, reserved)

    ether_answer = answers["ether"]
    ether_outcome = "refused"
    if isinstance(ether_answer, ApiError):
        assert ether_answer.status == 409  # the card buyer reserved it first
        assert str(ether_answer.body["type"]).endswith("/listing-reserved")

    def send_ether() -> str:
        assert isinstance(ether_answer, dict)
        try:
            buy(w3, ether_buyer.wallet, ether_answer["transaction"])
        except ContractCustomError as exc:
            decoder = RevertDecoder([load_artifact("TicketEvent").abi])
            return "reverted " + decoder.decode(bytes.fromhex(str(exc.data)[2:])).name
        return "bought"

    if isinstance(ether_answer, dict) and ether_first:
        ether_outcome = send_ether()  # mined before the relayer's settlement is sent
    drain(worker)
    if isinstance(ether_answer, dict) and not ether_first:
        ether_outcome = send_ether()  # after the card buyer's settlement
        drain(worker)

    # Exactly one of the three holds the ticket.
    owner = owner_on_chain(chain, event, token_id)
    wallets = [api.wallet.address.lower() for api in (*card_buyers, ether_buyer)]
    assert owner in wallets
    [purchase] = purchases(runtime)
    if owner == ether_buyer.wallet.address.lower():
        assert ether_outcome == "bought"
        # The card buyer who paid was refunded in full, automatically.
        assert purchase.status == "refunded", purchase.failure_reason
        assert refunded_cents(runtime, reserved["payment_intent"]["id"]) == purchase.amount_cents
    else:
        assert owner == paying.wallet.address.lower()
        assert purchase.status == "settled"
        assert ether_outcome in ("refused", "reverted SellOrderInvalidated")
        assert refunded_cents(runtime, reserved["payment_intent"]["id"]) == 0
    if ether_first:
        assert ether_outcome == "bought"

    # The seller is paid once, back on their card; the royalty credited once.
    [payout] = payouts(runtime)
    assert (payout.rail, payout.status) == ("card", "paid")
    assert refunded_cents(runtime, order_intent(runtime, seller.wallet.address)) == (
        payout.amount_cents
    )
    after = credits(chain, event)
    assert after.organizer - before.organizer == royalty
    # An ether buyer paid the treasury's proceeds on chain; a card settlement netted them.
    netted = 0 if owner != ether_buyer.wallet.address.lower() else price - royalty
    assert after.relayer - before.relayer == netted
