"""ChainClient.ticket_logs, what the indexer reads: purchases, refund claims and wallet-to-wallet
transfers, never the mint and burn Transfers around them; and node failures while reading."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint, RPCError, RPCResponse, TxReceipt

from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient, connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.chain.errors import ChainUnavailable, TransactionFailed
from backend.chain.protocol import CardMint
from backend.chain.testing import eth_tester_web3
from backend.chain.types import TRANSFER, PurchaseLog, RefundLog, TransferLog
from tests.chain.terms import FACE_PRICE_WEI, create_event
from tests.payments.wallets import buy, fund
from tests.sales.onchain import transfer_tx

EVENTS = Web3().eth.contract(abi=load_artifact("TicketEvent").abi).events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainClient]:
    """A client on each kind of chain: ticket_logs reads raw JSON-RPC from a node (anvil) and
    goes through web3's pipeline for the in-process eth-tester."""
    if request.param == "eth-tester":
        w3, signer = eth_tester_web3()
        yield ChainClient(w3, signer)
        return
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        # Not account 0: that one pays ``fund``, and its sends would race our nonces.
        yield ChainClient(connect_rpc(net.rpc_url), devnet_account(1))


def where(receipt: TxReceipt, event: str) -> dict[str, Any]:
    """The ChainLog position fields of the receipt's one ``event`` log."""
    topic = EVENTS[event]().topic
    [log] = [log for log in receipt["logs"] if log["topics"][0].to_0x_hex() == topic]
    return {
        "address": log["address"],
        "block_number": receipt["blockNumber"],
        "block_hash": receipt["blockHash"].to_0x_hex(),
        "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "log_index": log["logIndex"],
    }


def test_ticket_logs_report_a_purchase_a_wallet_transfer_and_a_refund_but_no_mint_or_burn(
    chain: ChainClient,
) -> None:
    w3: Web3 = chain._w3
    chain.deploy_factory()
    event = create_event(chain, 1, chain.signer_address).address
    first_block = chain.block_number() + 1
    holder: LocalAccount = Account.create()
    friend: LocalAccount = Account.create()
    fund(w3, holder.address)
    fund(w3, friend.address)
    # An on-sale: card orders minted by the backend, then a crypto purchase minting its own two.
    chain.mint_batch(event, [CardMint(order, 0, (holder.address,) * 20) for order in (1, 2, 3)])
    permit, signature = chain.sign_purchase_permit(
        event, holder.address, 0, 2, FACE_PRICE_WEI, 4, 2**40
    )
    tx = chain.purchase_transaction(event, permit, signature, 2 * FACE_PRICE_WEI)
    purchase = buy(w3, holder, {**tx, "value": hex(tx["value"])})
    ticket = 4 * 256
    moved = buy(w3, holder, transfer_tx(chain, event, holder.address, friend.address, ticket))
    chain.cancel_event(event)
    claim = chain.claim_refund_transaction(event, ticket)
    refund = buy(w3, friend, {**claim, "value": hex(claim["value"])})

    logs = chain.ticket_logs(event, first_block, chain.block_number())

    assert logs == [
        PurchaseLog(
            **where(purchase, "Purchased"),
            nonce=4,
            buyer=holder.address,
            tier=0,
            quantity=2,
            paid=2 * FACE_PRICE_WEI,
        ),
        TransferLog(
            **where(moved, "Transfer"),
            token_id=ticket,
            sender=holder.address,
            recipient=friend.address,
        ),
        RefundLog(
            **where(refund, "RefundClaimed"),
            token_id=ticket,
            owner=friend.address,
            amount=FACE_PRICE_WEI,
        ),
    ]
    only_transfers = chain.ticket_logs(
        event, first_block, refund["blockNumber"], frozenset({TRANSFER})
    )
    assert only_transfers == [logs[1]]


class RefusingNode(HTTPProvider):
    """A node that answers every request with a JSON-RPC error, as public RPCs answer a log
    query matching too many logs."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        error: RPCError = {"code": -32005, "message": "query returned more than 10000 results"}
        return {"jsonrpc": "2.0", "id": 1, "error": error}


def test_ticket_logs_raise_transaction_failed_when_the_node_answers_with_an_error() -> None:
    client = ChainClient(Web3(RefusingNode("http://127.0.0.1:1")), Account.create())

    with pytest.raises(TransactionFailed) as raised:
        client.ticket_logs("0x" + "ab" * 20, 0, 10)

    # web3 words the reason as the error object's repr; its message is what a reader needs.
    assert "query returned more than 10000 results" in raised.value.reason


class NullAnsweringNode(HTTPProvider):
    """A node (or a proxy in front of one) that answers eth_getLogs with a null result."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return {"jsonrpc": "2.0", "id": 1, "result": None}


def test_ticket_logs_raise_chain_unavailable_when_the_node_answers_no_list() -> None:
    client = ChainClient(Web3(NullAnsweringNode("http://127.0.0.1:1")), Account.create())

    with pytest.raises(ChainUnavailable) as raised:
        client.ticket_logs("0x" + "ab" * 20, 0, 10)

    assert "eth_getLogs answered None" in str(raised.value)


def test_ticket_logs_raise_chain_unavailable_when_the_node_goes_away() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = ChainClient(Web3(HTTPProvider(url, request_kwargs={"timeout": 2})), Account.create())

    with pytest.raises(ChainUnavailable) as raised:
        client.ticket_logs("0x" + "ab" * 20, 0, 10)

    assert raised.value.rpc_url == url
