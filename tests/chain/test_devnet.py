"""The anvil devnet from node_modules: start, deploy, mint, restart with --state, reuse rules."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.chain.client import ChainClient, connect_rpc
from backend.chain.deploy import deploy_factory_if_needed
from backend.chain.devnet import (
    DEVNET_CHAIN_ID,
    Devnet,
    anvil_binary,
    devnet_account,
    devnet_address,
    is_listening,
)
from backend.chain.errors import DevnetError
from backend.chain.protocol import CardMint
from tests.chain.terms import TIER_CID, create_event

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
CID = TIER_CID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def require_anvil() -> None:
    # Fail, never skip: a missing devnet binary is a broken checkout, not an optional extra.
    anvil_binary(ROOT)


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with Devnet(root=ROOT, port=free_port(), state_file=tmp_path / "anvil-state.json") as node:
        yield node


def test_devnet_accounts_are_the_public_anvil_defaults() -> None:
    assert devnet_account(0).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert devnet_account(1).address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_anvil_binary_missing_tells_to_run_npm_ci(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match="npm ci"):
        anvil_binary(tmp_path)


def test_devnet_state_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "anvil-state.json"
    buyer: str = devnet_account(2).address

    with Devnet(root=ROOT, port=port, state_file=state) as node:
        w3 = connect_rpc(node.rpc_url)
        assert w3.eth.chain_id == DEVNET_CHAIN_ID
        client = ChainClient(w3, devnet_account(0))
        factory = client.deploy_factory()
        event = create_event(client, 1, devnet_account(1).address)
        minted = client.mint_batch(event.address, [CardMint(77, 0, (buyer,))])
        assert client.token_uri(event.address, minted.token_ids[0]) == f"ipfs://{CID}"
    assert not is_listening(f"http://127.0.0.1:{port}")
    assert state.is_file(), "anvil should dump --state on SIGTERM"

    with Devnet(root=ROOT, port=port, state_file=state) as node:
        client = ChainClient(
            connect_rpc(node.rpc_url), devnet_account(0), factory_address=factory.address
        )
        assert client.event_address(1) == event.address
        assert client.owner_of(event.address, minted.token_ids[0]) == buyer
        assert client.token_uri(event.address, minted.token_ids[0]) == f"ipfs://{CID}"
        assert client.find_order_mint(event.address, 77, 1) == minted


def test_devnet_reuses_a_running_anvil_and_leaves_it_running(devnet: Devnet) -> None:
    second = Devnet(root=ROOT, port=devnet.port).start()
    assert second.reused
    second.stop()

    assert is_listening(devnet.rpc_url)


def test_devnet_refuses_a_port_taken_by_something_else() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        with pytest.raises(DevnetError, match=f"port {port}"):
            Devnet(root=ROOT, port=port).start()


def test_deploy_factory_if_needed_is_idempotent_and_redeploys_lost_code(
    devnet: Devnet, tmp_path: Path
) -> None:
    w3 = connect_rpc(devnet.rpc_url)
    deployer = devnet_account(0)

    first = deploy_factory_if_needed(w3, deployer, tmp_path)
    block_after_first = w3.eth.block_number
    again = deploy_factory_if_needed(w3, deployer, tmp_path)

    record_path = tmp_path / "deployments" / f"{DEVNET_CHAIN_ID}.json"
    assert again == first == json.loads(record_path.read_text())
    assert w3.eth.block_number == block_after_first, "no transaction when already deployed"
    assert first["chainId"] == DEVNET_CHAIN_ID
    assert first["deployer"] == deployer.address
    assert set(first["TicketFactory"]) == {"address", "txHash", "gasUsed", "blockNumber"}

    # A devnet restarted without its state has no code at the recorded address.
    w3.provider.make_request("anvil_reset", [])  # type: ignore[arg-type]
    redeployed = deploy_factory_if_needed(w3, deployer, tmp_path)
    assert ChainClient(w3, deployer).is_contract(redeployed["TicketFactory"]["address"])
    assert redeployed["TicketFactory"]["txHash"] != first["TicketFactory"]["txHash"]


def test_devnet_starts_where_the_rpc_url_points() -> None:
    # Two checkouts side by side: each names its own port in FAIRTIX_RPC_URL.
    assert devnet_address("http://127.0.0.1:8546") == ("127.0.0.1", 8546)
    assert devnet_address("http://localhost:9545/") == ("127.0.0.1", 9545)
    assert devnet_address("http://127.0.0.1") == ("127.0.0.1", 8545)


@pytest.mark.parametrize(
    "url", ["https://rpc.example.org", "http://10.0.0.5:8545", "ws://127.0.0.1:8545"]
)
def test_devnet_refuses_an_rpc_url_it_cannot_start(url: str) -> None:
    with pytest.raises(ValueError, match="--devnet"):
        devnet_address(url)
