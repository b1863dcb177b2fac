"""ChainClient behaviour that is not about the contracts' rules: revert decoding, connection
failures, and nonce handling under concurrency."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_abi.abi import encode
from eth_typing import HexStr
from web3 import HTTPProvider, Web3

from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient, connect_rpc
from backend.chain.errors import (
    ChainUnavailable,
    ContractRevert,
    EventAlreadyCreated,
    OrderAlreadyMinted,
    RevertDecoder,
    TransactionFailed,
)
from backend.chain.testing import eth_tester_web3

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
BUYER = Web3.to_checksum_address("0x" + "ab" * 20)


def selector(signature: str) -> bytes:
    return Web3.keccak(text=signature)[:4]


@pytest.fixture
def decoder() -> RevertDecoder:
    return RevertDecoder([load_artifact("TicketEvent").abi, load_artifact("TicketFactory").abi])


@pytest.fixture
def client_and_event() -> tuple[ChainClient, str]:
    w3, signer = eth_tester_web3()
    client = ChainClient(w3, signer)
    client.deploy_factory()
    return client, client.create_event(1, "Show", "SHOW", signer.address).address


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- decoding -----------------------------------------------------------------------------------


def test_decode_order_already_minted_to_domain_error(decoder: RevertDecoder) -> None:
    data = selector("OrderAlreadyMinted(uint256)") + encode(["uint256"], [42])

    error = decoder.decode(data)

    assert isinstance(error, OrderAlreadyMinted)
    assert (error.name, error.error_args, error.order_id) == ("OrderAlreadyMinted", (42,), 42)


def test_decode_event_already_created_checksums_the_address(decoder: RevertDecoder) -> None:
    address = "0x" + "ab" * 20
    data = selector("EventAlreadyCreated(uint256,address)") + encode(
        ["uint256", "address"], [7, address]
    )

    error = decoder.decode(data, tx_hash="0x01")

    assert isinstance(error, EventAlreadyCreated)
    assert (error.event_id, error.address, error.tx_hash) == (7, BUYER, "0x01")


def test_decode_inherited_openzeppelin_error(decoder: RevertDecoder) -> None:
    role = Web3.keccak(text="MINTER_ROLE")
    data = selector("AccessControlUnauthorizedAccount(address,bytes32)") + encode(
        ["address", "bytes32"], [BUYER, role]
    )

    error = decoder.decode(data)

    assert type(error) is ContractRevert
    assert (error.name, error.error_args) == ("AccessControlUnauthorizedAccount", (BUYER, role))


def test_decode_builtin_error_string_and_panic(decoder: RevertDecoder) -> None:
    reason = decoder.decode(selector("Error(string)") + encode(["string"], ["sold out"]))
    panic = decoder.decode(selector("Panic(uint256)") + encode(["uint256"], [0x11]))

    assert (reason.name, reason.error_args) == ("Error", ("sold out",))
    assert (panic.name, panic.error_args) == ("Panic", (0x11,))


def test_decode_unknown_selector_keeps_the_raw_data(decoder: RevertDecoder) -> None:
    error = decoder.decode(bytes.fromhex("deadbeef") + b"\x01")

    assert (error.name, error.error_args) == ("0xdeadbeef", (b"\x01",))


def test_mined_revert_is_decoded_with_its_tx_hash(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    client.mint_batch(event, 5, [BUYER], [CID])
    contract = client._ticket_event(event)
    data = contract.encode_abi("mintBatch", args=[5, [BUYER], [CID]])

    # A fixed gas limit skips estimation, so the revert happens in a mined transaction (status 0)
    # and must be recovered by replaying it.
    with pytest.raises(OrderAlreadyMinted) as raised:
        client._transact({"to": contract.address, "data": data}, gas=300_000)

    assert raised.value.order_id == 5
    assert raised.value.tx_hash is not None
    receipt = client._w3.eth.get_transaction_receipt(HexStr(raised.value.tx_hash))
    assert receipt["status"] == 0


def test_out_of_gas_transaction_fails_with_its_tx_hash(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    contract = client._ticket_event(event)
    data = contract.encode_abi("mintBatch", args=[6, [BUYER], [CID]])

    with pytest.raises(TransactionFailed) as raised:
        client._transact({"to": contract.address, "data": data}, gas=40_000)

    assert raised.value.tx_hash.startswith("0x")
    assert "status 0" in raised.value.reason


# -- connection ---------------------------------------------------------------------------------


def test_connect_rpc_raises_chain_unavailable_on_closed_port() -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    with pytest.raises(ChainUnavailable) as raised:
        connect_rpc(url, timeout=2)

    assert raised.value.rpc_url == url
    assert url in str(raised.value)


def test_client_call_raises_chain_unavailable_when_node_goes_away() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    _, signer = eth_tester_web3()
    client = ChainClient(Web3(HTTPProvider(url, request_kwargs={"timeout": 2})), signer)

    with pytest.raises(ChainUnavailable) as raised:
        client.order_minted(BUYER, 1)

    assert raised.value.rpc_url == url


# -- nonces -------------------------------------------------------------------------------------


def test_concurrent_mints_from_threads_all_succeed_with_distinct_token_ids(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    start = threading.Barrier(8)

    def mint(order_id: int) -> tuple[int, ...]:
        start.wait()  # release all threads at once to maximise contention on the nonce
        return client.mint_batch(event, order_id, [BUYER], [CID]).token_ids

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(mint, range(1000, 1008)))

    token_ids = sorted(t for ids in results for t in ids)
    assert token_ids == list(range(1, 9))
    assert all(client.order_minted(event, order_id) for order_id in range(1000, 1008))


def test_two_clients_sharing_a_key_do_not_reuse_nonces(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    other = ChainClient(client._w3, client._signer)

    first = client.mint_batch(event, 1, [BUYER], [CID])
    second = other.mint_batch(event, 2, [BUYER], [CID])
    third = client.mint_batch(event, 3, [BUYER], [CID])

    assert (first.token_ids, second.token_ids, third.token_ids) == ((1,), (2,), (3,))
