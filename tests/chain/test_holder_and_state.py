"""ChainClient.holder_and_state, the read every listing request makes: ownerOf and ticket in one
JSON-RPC batch of raw eth_calls on a node (anvil), through web3's contract calls on eth-tester;
both must answer as owner_of and ticket_state do, a revert included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint, RPCResponse

from backend.chain.client import ChainClient, CountingHTTPProvider, connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.chain.errors import ContractRevert
from backend.chain.protocol import CardMint
from backend.chain.testing import eth_tester_web3
from backend.chain.types import TicketState
from tests.chain.terms import create_event
from tests.chain.test_ticket_logs import free_port
from tests.payments.wallets import fund
from tests.sales.onchain import send


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainClient]:
    if request.param == "eth-tester":
        w3, signer = eth_tester_web3()
        yield ChainClient(w3, signer)
        return
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        yield ChainClient(connect_rpc(net.rpc_url), devnet_account(1))


def test_holder_and_state_answers_as_owner_of_and_ticket_state(chain: ChainClient) -> None:
    chain.deploy_factory()
    event = create_event(chain, 1, chain.signer_address).address
    holder = Account.create()
    chain.mint_batch(event, [CardMint(3, 0, (holder.address, chain.signer_address))])
    token = 3 * 256

    owner, state = chain.holder_and_state(event, token)

    assert owner == holder.address  # checksummed, as owner_of answers
    assert (owner, state) == (chain.owner_of(event, token), chain.ticket_state(event, token))
    assert state == TicketState(tier=0, used=False, paid_wei=state.paid_wei, sale_nonce=0)

    # The holder voids their sell orders: the nonce read moves with the chain.
    cancel = chain.cancel_sell_orders_transaction(event, token)
    fund(chain._w3, holder.address)
    send(chain, holder, {**cancel, "value": hex(cancel["value"])})
    assert chain.holder_and_state(event, token)[1].sale_nonce == 1
    assert chain.holder_and_state(event, token + 1)[0] == chain.signer_address


def test_holder_and_state_of_a_token_never_minted_raises_the_decoded_revert(
    chain: ChainClient,
) -> None:
    chain.deploy_factory()
    event = create_event(chain, 1, chain.signer_address).address

    with pytest.raises(ContractRevert) as raised:
        chain.holder_and_state(event, 999)

    assert raised.value.name == "ERC721NonexistentToken"
    assert raised.value.error_args == (999,)


class NoBatches(CountingHTTPProvider):
    """A node that takes no JSON-RPC batches, as some hosted RPCs: one error for the request."""

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "batches not allowed"}}


@pytest.mark.anvil
def test_holder_and_state_reads_call_by_call_from_a_node_without_batches(tmp_path: Path) -> None:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        chain = ChainClient(Web3(NoBatches(net.rpc_url)), devnet_account(1))
        chain.deploy_factory()
        event = create_event(chain, 1, chain.signer_address).address
        holder = Account.create()
        chain.mint_batch(event, [CardMint(5, 0, (holder.address,))])

        owner, state = chain.holder_and_state(event, 5 * 256)

        assert (owner, state) == (holder.address, chain.ticket_state(event, 5 * 256))
        with pytest.raises(ContractRevert) as raised:
            chain.holder_and_state(event, 999)
        assert raised.value.name == "ERC721NonexistentToken"
