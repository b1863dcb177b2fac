"""The race on a real anvil devnet, where both transactions meet in one block: the relayer's
settlement for a paid card buyer is pending when an ether buyer's buyResale, paying more for
gas, is mined before it in the same block. The settlement reverts; the worker finds out from
the receipt, and the card buyer is refunded automatically; the seller is paid once."""

from __future__ import annotations

from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxParams, Wei

from backend.chain.devnet import Devnet, devnet_account
from backend.runtime import Runtime
from backend.worker import Worker
from tests.chain.test_indexer_reorg import anvil_client, devnet, rpc  # noqa: F401
from tests.helpers import drain, signed_in
from tests.payments.wallets import fund
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

pytestmark = [pytest.mark.anvil, pytest.mark.db]


def test_a_settlement_mined_after_an_ether_buyer_in_one_block_reverts_and_is_refunded(
    anvil_client: TestClient,  # noqa: F811
    devnet: Devnet,  # noqa: F811
) -> None:
    client = anvil_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=client)
    chain = runtime.chain
    w3 = w3_of(chain)
    market = card_holding(client, worker, devnet_account(1))
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    price = market.face_wei
    royalty = price * event["royalty_bps"] // 10_000
    listed = list_ticket(seller, event["id"], token_id, price, payout="card")
    before = credits(chain, event)

    # The ether buyer holds the order's transaction before a card buyer reserves the listing.
    ether_buyer = signed_in(client)
    fund(w3, ether_buyer.wallet.address)
    tx = ether_buyer._call("POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"})
    card_buyer = signed_in(client)
    bought = buy_by_card(card_buyer, listed["id"])
    pay(card_buyer, bought)

    rpc(w3, "evm_setAutomine", False)
    try:
        drain(worker)  # the payment's webhook, then the settlement: signed, stored, pending
        [settling] = purchases(runtime)
        assert settling.status == "settling" and settling.settle_tx_hash is not None
        w3.eth.send_raw_transaction(_signed(w3, ether_buyer.wallet, tx["transaction"]))
        rpc(w3, "evm_mine")
    finally:
        rpc(w3, "evm_setAutomine", True)
    receipt = w3.eth.get_transaction_receipt(cast(Any, settling.settle_tx_hash))
    assert receipt["status"] == 0  # mined, after the ether buyer's sale

    drain(worker)
    assert owner_on_chain(chain, event, token_id) == ether_buyer.wallet.address.lower()
    [purchase] = purchases(runtime)
    assert purchase.status == "refunded", purchase.failure_reason
    assert refunded_cents(runtime, bought["payment_intent"]["id"]) == purchase.amount_cents
    [payout] = payouts(runtime)
    assert (payout.rail, payout.status) == ("card", "paid")
    assert refunded_cents(runtime, order_intent(runtime, seller.wallet.address)) == (
        payout.amount_cents
    )
    after = credits(chain, event)
    assert after.organizer - before.organizer == royalty
    assert after.relayer - before.relayer == price - royalty  # the ether buyer's, for the seller


def _signed(w3: Web3, wallet: Any, tx: dict[str, Any]) -> HexBytes:
    """The ether buyer's transaction, offering far more for gas than the relayer does."""
    params: TxParams = {
        "from": wallet.address,
        "to": Web3.to_checksum_address(tx["to"]),
        "data": tx["data"],
        "value": Wei(int(tx["value"], 16)),
        "chainId": tx["chainId"],
        "nonce": w3.eth.get_transaction_count(wallet.address),
        "gas": 300_000,
        "gasPrice": Wei(100 * 10**9),
    }
    return HexBytes(wallet.sign_transaction(cast(dict[str, Any], params)).raw_transaction)
