"""The indexer on a real anvil devnet across a reorg: anvil's evm_snapshot/evm_revert drop the
block holding a purchase and new blocks take its place, as a chain reorganisation would."""

from __future__ import annotations

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
from backend.runtime import Runtime
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.conftest import TEST_SERVER, WEBHOOK_SECRET
from tests.helpers import count, drain, make_event, signed_in
from tests.payments.wallets import send_raw, sign_checkout_tx

pytestmark = [pytest.mark.anvil, pytest.mark.db]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        yield net


@pytest.fixture
def anvil_client(tmp_path: Path, database_url: str, devnet: Devnet) -> Iterator[TestClient]:
    settings = Settings(
        env="test",
        var_dir=tmp_path / "var",
        database_url=database_url,
        rpc_url=devnet.rpc_url,
        deployments_dir=tmp_path / "deployments",
        admin_addresses=devnet_account(1).address,  # type: ignore[arg-type]
        secret_key="test-secret-key",  # type: ignore[arg-type]
        stripe_webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        public_base_url=TEST_SERVER,
        siwe_domain="testserver",
        run_worker=False,
        log_json=False,
    )
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
