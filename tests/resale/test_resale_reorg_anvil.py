"""A resale across a reorg on a real anvil devnet: the block holding the buyResale is replaced
(evm_snapshot/evm_revert), and the indexer puts the listing back on the market and the ticket
back with its seller; mined again, the sale is recorded again."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.chain.client import connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.chain.models import AppliedLog
from backend.db.engine import transaction
from backend.runtime import Runtime
from backend.worker import Worker
from tests.chain.test_indexer_reorg import (  # noqa: F401  (fixtures used by name)
    anvil_client,
    crypto_sale,
    devnet,
    holder_of,
    rpc,
)
from tests.helpers import signed_in
from tests.payments.wallets import send_raw, sign_checkout_tx
from tests.resale.market import list_ticket, notifications, subscribe

pytestmark = [pytest.mark.anvil, pytest.mark.db]


def test_a_reorg_orphaning_a_resale_restores_the_listing_and_the_holder(
    anvil_client: TestClient,  # noqa: F811
    devnet: Devnet,  # noqa: F811
) -> None:
    client = anvil_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=client)
    w3 = connect_rpc(devnet.rpc_url)
    seller, event, order, organizer = crypto_sale(client, worker, w3)
    subscribe(runtime, organizer.wallet.address, ["ticket.resold", "listing.created"])
    token_id = order["token_ids"][0]
    price = int(event["tiers"][0]["price_wei"])
    listed = list_ticket(seller, event["id"], token_id, price)
    buyer = signed_in(client, devnet_account(3))
    tx = buyer._call("POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"})

    snapshot = rpc(w3, "evm_snapshot")
    raw = sign_checkout_tx(w3, buyer.wallet, tx["transaction"])
    receipt = send_raw(w3, raw)
    assert worker.indexer.run_once() == 2  # the Transfer and the Resold log
    assert client.get(f"/listings/{listed['id']}").json()["status"] == "sold"
    assert holder_of(runtime, token_id) == buyer.wallet.address.lower()

    # The sale's block is replaced: same height, other contents.
    assert rpc(w3, "evm_revert", snapshot) is True
    for _ in range(2):
        rpc(w3, "evm_mine")
    assert w3.eth.get_block(receipt["blockNumber"])["hash"] != receipt["blockHash"]

    assert worker.indexer.run_once() == 0
    restored = client.get(f"/listings/{listed['id']}").json()
    assert restored["status"] == "live"
    assert restored["buyer_address"] is None and restored["sold_tx_hash"] is None
    assert holder_of(runtime, token_id) == seller.wallet.address.lower()
    page = client.get(f"/events/{event['id']}/listings").json()["listings"]
    assert [item["id"] for item in page] == [listed["id"]]
    resold = notifications(runtime, "ticket.resold")
    assert [n["reverted"] for n in resold] == [False, True]

    # The same signed transaction mined again: sold again, in its new block.
    again = send_raw(w3, raw)
    assert worker.indexer.run_once() == 2
    sold = client.get(f"/listings/{listed['id']}").json()
    assert sold["status"] == "sold"
    assert holder_of(runtime, token_id) == buyer.wallet.address.lower()
    with transaction(runtime.sessions) as session:
        kinds = session.scalars(
            select(AppliedLog.kind).where(AppliedLog.block_hash == again["blockHash"].to_0x_hex())
        ).all()
    assert sorted(kinds) == ["resale", "transfer"]
