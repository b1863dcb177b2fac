"""The indexer on a real anvil devnet across a reorg: anvil's evm_snapshot/evm_revert drop the
block holding a purchase (a transfer, a refund claim) and new blocks take its place, as a chain
reorganisation would."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from web3 import Web3
from web3.types import RPCEndpoint

from backend.app import create_app
from backend.chain.client import connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.chain.models import AppliedLog
from backend.config import Settings
from backend.db.engine import transaction
from backend.demo import FairtixClient
from backend.notify.models import WebhookDelivery, WebhookEndpoint
from backend.runtime import Runtime
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.conftest import TEST_SERVER, WEBHOOK_SECRET
from tests.helpers import count, drain, make_event, signed_in
from tests.payments.wallets import send_raw, sign_checkout_tx
from tests.sales.onchain import transfer_tx

pytestmark = [pytest.mark.anvil, pytest.mark.db]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        yield net


def anvil_app_settings(
    tmp_path: Path, database_url: str, rpc_url: str, **overrides: Any
) -> Settings:
    """An API on the test database and a devnet, devnet account #1 its admin, no worker."""
    return Settings(
        env="test",
        var_dir=tmp_path / "var",
        database_url=database_url,
        rpc_url=rpc_url,
        deployments_dir=tmp_path / "deployments",
        admin_addresses=devnet_account(1).address,  # type: ignore[arg-type]
        secret_key="test-secret-key",  # type: ignore[arg-type]
        stripe_webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        public_base_url=TEST_SERVER,
        siwe_domain="testserver",
        run_worker=False,
        log_json=False,
        **overrides,
    )


@pytest.fixture
def anvil_client(tmp_path: Path, database_url: str, devnet: Devnet) -> Iterator[TestClient]:
    settings = anvil_app_settings(tmp_path, database_url, devnet.rpc_url)
    with TestClient(create_app(settings), base_url=TEST_SERVER) as test_client:
        yield test_client


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(RPCEndpoint(method), list(params))
    assert "error" not in response, response
    return response["result"]


def test_indexer_rolls_back_a_purchase_orphaned_by_a_reorg_and_reapplies_it_when_mined_again(
    anvil_client: TestClient, devnet: Devnet
) -> None:
    client = anvil_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=client)
    w3 = connect_rpc(devnet.rpc_url)
    organizer = signed_in(client, devnet_account(1))
    event = make_event(organizer, supply=3)
    buyer = signed_in(client, devnet_account(2))
    buyer.join_queue(event["id"])
    assert buyer.wait_admitted(event["id"], timeout=5)["state"] == "admitted"
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    drain(worker)

    snapshot = rpc(w3, "evm_snapshot")
    raw = sign_checkout_tx(w3, buyer.wallet, payment["transaction"])
    receipt = send_raw(w3, raw)
    assert worker.indexer.run_once() == 1
    assert buyer.order(order["id"])["status"] == "fulfilled"
    assert count(runtime, Ticket) == 2

    # The purchase's block is replaced: same height, other contents, so another hash.
    assert rpc(w3, "evm_revert", snapshot) is True
    rpc(w3, "evm_mine")
    rpc(w3, "evm_mine")
    replaced = w3.eth.get_block(receipt["blockNumber"])
    assert replaced["hash"] != receipt["blockHash"]

    assert worker.indexer.run_once() == 0
    rolled_back = buyer.order(order["id"])
    assert rolled_back["status"] == "awaiting_payment"
    assert rolled_back["token_ids"] == []
    assert rolled_back["mint_tx_hash"] is None
    assert rolled_back["transitions"][-1]["from_status"] == "fulfilled"
    assert "reorg" in rolled_back["transitions"][-1]["cause"]
    assert count(runtime, Ticket) == 0
    assert count(runtime, AppliedLog) == 0
    assert buyer.availability(event["id"])["tiers"][0]["remaining"] == 1  # still held

    again = send_raw(w3, raw)
    assert again["blockHash"] != receipt["blockHash"]
    assert worker.indexer.run_once() == 1
    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    assert final["mint_tx_hash"] == again["transactionHash"].to_0x_hex()
    assert final["token_ids"] == [order["id"] * 256, order["id"] * 256 + 1]
    with Session(runtime.engine) as session:
        applied = session.query(AppliedLog).one()
        assert applied.block_hash == again["blockHash"].to_0x_hex()
        assert applied.outcome == "fulfilled"


def crypto_sale(
    client: TestClient, worker: Worker, w3: Web3
) -> tuple[FairtixClient, dict[str, Any], dict[str, Any], FairtixClient]:
    """Devnet account 2 buys two tickets with ether; the indexer fulfils the order. Returns the
    buyer, the event, the fulfilled order and the organizer (devnet account 1, an admin)."""
    organizer = signed_in(client, devnet_account(1))
    # Direct transfers allowed (new events lock them by default): the transfer test moves one.
    event = make_event(organizer, supply=3, transfers_locked=False)
    buyer = signed_in(client, devnet_account(2))
    buyer.join_queue(event["id"])
    assert buyer.wait_admitted(event["id"], timeout=5)["state"] == "admitted"
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    send_raw(w3, sign_checkout_tx(w3, buyer.wallet, payment["transaction"]))
    drain(worker)
    order = buyer.order(order["id"])
    assert order["status"] == "fulfilled"
    return buyer, event, order, organizer


def holder_of(runtime: Runtime, token_id: int) -> str:
    with transaction(runtime.sessions) as session:
        ticket = session.query(Ticket).filter_by(token_id=token_id).one()
        return ticket.owner_address


def transfers_notified(runtime: Runtime) -> list[dict[str, Any]]:
    with transaction(runtime.sessions) as session:
        rows = session.query(WebhookDelivery).filter_by(kind="ticket.transferred")
        bodies = [json.loads(row.body)["data"] for row in rows.order_by(WebhookDelivery.id)]
    return [{key: body[key] for key in ("token_id", "from", "to", "reverted")} for body in bodies]


def test_indexer_gives_a_ticket_back_when_a_reorg_orphans_its_transfer(
    anvil_client: TestClient, devnet: Devnet
) -> None:
    client = anvil_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=client)
    w3 = connect_rpc(devnet.rpc_url)
    buyer, event, order, organizer = crypto_sale(client, worker, w3)
    with transaction(runtime.sessions) as session:
        # Recorded directly: only what is published counts here, not its delivery.
        session.add(
            WebhookEndpoint(
                owner_address=organizer.wallet.address.lower(),
                url="https://hooks.example.org/fairtix",
                events=["ticket.transferred"],
                secret_salt="00",
            )
        )
    token_id = order["token_ids"][0]
    seller, friend = buyer.wallet.address.lower(), devnet_account(3).address.lower()
    move = transfer_tx(runtime.chain, event["contract_address"], seller, friend, token_id)

    snapshot = rpc(w3, "evm_snapshot")
    raw = sign_checkout_tx(w3, buyer.wallet, move)
    receipt = send_raw(w3, raw)
    assert worker.indexer.run_once() == 1
    assert holder_of(runtime, token_id) == friend

    assert rpc(w3, "evm_revert", snapshot) is True
    for _ in range(2):
        rpc(w3, "evm_mine")
    assert w3.eth.get_block(receipt["blockNumber"])["hash"] != receipt["blockHash"]

    assert worker.indexer.run_once() == 0
    assert holder_of(runtime, token_id) == seller
    with Session(runtime.engine) as session:
        assert [a.kind for a in session.query(AppliedLog)] == ["purchase"]
    assert [t["token_id"] for t in buyer.my_tickets()["tickets"]] == order["token_ids"]

    again = send_raw(w3, raw)
    assert worker.indexer.run_once() == 1
    assert holder_of(runtime, token_id) == friend
    with Session(runtime.engine) as session:
        applied = session.query(AppliedLog).filter_by(kind="transfer").one()
        assert applied.block_hash == again["blockHash"].to_0x_hex()
    moved = {"token_id": token_id, "from": seller, "to": friend, "reverted": False}
    back = {"token_id": token_id, "from": friend, "to": seller, "reverted": True}
    assert transfers_notified(runtime) == [moved, back, moved]


def test_indexer_takes_back_a_refund_claim_a_reorg_orphaned(
    anvil_client: TestClient, devnet: Devnet
) -> None:
    client = anvil_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    worker = Worker(runtime, http=client)
    w3 = connect_rpc(devnet.rpc_url)
    buyer, event, order, organizer = crypto_sale(client, worker, w3)
    cancelled = organizer._call("POST", f"/events/{event['id']}/cancel", json={"reason": "storm"})
    assert cancelled["crypto_orders_claimable"] == 1
    drain(worker)  # the worker cancels the contract on anvil
    claims = buyer.order(order["id"])["refund"]["claims"]
    assert len(claims) == 2

    snapshot = rpc(w3, "evm_snapshot")
    raws, receipts = [], []
    for claim in claims:  # signed one after the other: each takes the wallet's next nonce
        raws.append(sign_checkout_tx(w3, buyer.wallet, claim["transaction"]))
        receipts.append(send_raw(w3, raws[-1]))
    assert worker.indexer.run_once() == 2
    refunded = buyer.order(order["id"])
    assert (refunded["status"], refunded["refund"]["state"]) == ("refunded", "claimed")
    assert buyer.my_tickets()["tickets"] == []

    assert rpc(w3, "evm_revert", snapshot) is True
    for _ in range(3):
        rpc(w3, "evm_mine")
    assert w3.eth.get_block(receipts[0]["blockNumber"])["hash"] != receipts[0]["blockHash"]

    assert worker.indexer.run_once() == 0
    restored = buyer.order(order["id"])
    assert restored["status"] == "fulfilled"
    assert "reorg" in restored["transitions"][-1]["cause"]
    assert restored["refund"]["state"] == "claimable_on_chain"
    assert restored["refund"]["claimed_token_ids"] == []
    assert len(buyer.my_tickets()["tickets"]) == 2

    for raw in raws:
        send_raw(w3, raw)
    assert worker.indexer.run_once() == 2
    final = buyer.order(order["id"])
    assert (final["status"], final["refund"]["state"]) == ("refunded", "claimed")
