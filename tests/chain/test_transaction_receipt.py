"""ChainClient.transaction_receipt, what the worker's batch tracker polls: read unformatted from
a node, formatted by web3 on the in-process eth-tester; the same answer either way."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint, RPCResponse

from backend.chain.client import ChainClient
from backend.chain.errors import ChainUnavailable
from backend.chain.protocol import CardMint
from tests.chain.terms import create_event
from tests.chain.test_ticket_logs import chain as chain  # the fixture: eth-tester and anvil


def test_a_mint_batch_receipt_reads_as_web3_formats_it(chain: ChainClient) -> None:
    chain.deploy_factory()
    event = create_event(chain, 1, chain.signer_address).address
    buyers = [Account.create().address for _ in range(3)]
    sent = chain.mint_batch(event, [CardMint(order_id, 0, (buyer,) * 2) for order_id, buyer
                                    in enumerate(buyers, start=1)])  # fmt: skip
    formatted = chain._w3.eth.get_transaction_receipt(sent.tx_hash)

    mined = chain.transaction_receipt(sent.tx_hash)

    assert mined is not None
    assert mined.tx_hash == formatted["transactionHash"].to_0x_hex()
    assert mined.succeeded and formatted["status"] == 1
    assert mined.block_number == formatted["blockNumber"]
    assert mined.gas_used == formatted["gasUsed"]


def test_an_unknown_transaction_has_no_receipt(chain: ChainClient) -> None:
    assert chain.transaction_receipt("0x" + "ab" * 32) is None


class AnsweringNode(HTTPProvider):
    """A node (or a proxy in front of one) that answers every request with ``result``."""

    def __init__(self, result: Any) -> None:
        super().__init__("http://127.0.0.1:1")
        self.result = result

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return {"jsonrpc": "2.0", "id": 1, "result": self.result}


def _client(result: Any) -> ChainClient:
    return ChainClient(Web3(AnsweringNode(result)), Account.create())


def test_a_pending_receipt_is_none() -> None:
    assert _client({"transactionHash": "0x" + "ab" * 32, "blockNumber": None}).transaction_receipt(
        "0x" + "ab" * 32
    ) is None  # fmt: skip


_MINED = {"transactionHash": "0x" + "ab" * 32, "blockNumber": "0x5", "status": "0x1",
          "gasUsed": "0x5208"}  # fmt: skip


def test_a_mined_receipt_is_read_from_hex() -> None:
    mined = _client(_MINED).transaction_receipt("0x" + "ab" * 32)

    assert mined is not None
    assert (mined.block_number, mined.gas_used, mined.succeeded) == (5, 21000, True)


@pytest.mark.parametrize(
    "answer", ["0x1", {"blockNumber": "0x5"}, {**_MINED, "blockNumber": "soon"}]
)
def test_a_receipt_the_worker_cant_read_is_the_node_failing(answer: Any) -> None:
    with pytest.raises(ChainUnavailable) as raised:
        _client(answer).transaction_receipt("0x" + "ab" * 32)

    assert "eth_getTransactionReceipt answered" in str(raised.value)
