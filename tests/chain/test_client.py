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
from backend.chain.client import (
    DEFAULT_ADMIN_ROLE,
    MINTER_ROLE,
    RELAYER_ROLE,
    SCANNER_ROLE,
    SIGNER_ROLE,
    ChainClient,
    connect_rpc,
)
from backend.chain.errors import (
    ERROR_FAMILIES,
    ChainUnavailable,
    EventAlreadyCreated,
    InvalidChainInput,
    NotAuthorized,
    OrderAlreadyMinted,
    RevertDecoder,
    SoldOut,
    TransactionFailed,
)
from backend.chain.protocol import CardMint, encode_mint_batch
from backend.chain.testing import eth_tester_web3
from tests.chain.terms import TIER_CID, create_event, tier_terms

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
    return client, create_event(client, 1, signer.address).address


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

    assert type(error) is NotAuthorized
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
    client.mint_batch(event, [CardMint(5, 0, (BUYER,))])
    contract = client._ticket_event(event)
    data = contract.encode_abi("mintBatch", args=[encode_mint_batch([CardMint(5, 0, (BUYER,))])])

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
    data = contract.encode_abi("mintBatch", args=[encode_mint_batch([CardMint(6, 0, (BUYER,))])])

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
        return client.mint_batch(event, [CardMint(order_id, 0, (BUYER,))]).token_ids

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(mint, range(1000, 1008)))

    token_ids = sorted(t for ids in results for t in ids)
    assert token_ids == [order_id * 256 for order_id in range(1000, 1008)]
    assert all(client.order_minted(event, order_id) for order_id in range(1000, 1008))


def test_two_clients_sharing_a_key_do_not_reuse_nonces(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    other = ChainClient(client._w3, client._signer)

    first = client.mint_batch(event, [CardMint(1, 0, (BUYER,))])
    second = other.mint_batch(event, [CardMint(2, 0, (BUYER,))])
    third = client.mint_batch(event, [CardMint(3, 0, (BUYER,))])

    assert (first.token_ids, second.token_ids, third.token_ids) == ((256,), (512,), (768,))


# -- the ticket protocol through the client -------------------------------------------------------


def test_every_contract_error_decodes_to_a_domain_error() -> None:
    names = {
        entry["name"]
        for artifact in ("TicketEvent", "TicketFactory")
        for entry in load_artifact(artifact).abi
        if entry["type"] == "error"
    }

    unmapped = names - set(ERROR_FAMILIES) - {"OrderAlreadyMinted", "EventAlreadyCreated"}

    assert unmapped == set()


def test_create_event_twice_raises_event_already_created(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event

    with pytest.raises(EventAlreadyCreated) as raised:
        create_event(client, 1, BUYER)

    assert (raised.value.event_id, raised.value.address) == (1, event)


def test_create_event_gives_the_backends_key_every_role_it_uses(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    # Scanner for the door's check-in batches, relayer for card buyers' resales.
    for role in (DEFAULT_ADMIN_ROLE, MINTER_ROLE, SIGNER_ROLE, SCANNER_ROLE, RELAYER_ROLE):
        assert client.has_role(event, role, client.signer_address)


def test_mint_batch_issues_order_token_ids_and_find_order_mint_reads_them_back(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event
    other = Web3.to_checksum_address("0x" + "cd" * 20)

    minted = client.mint_batch(event, [CardMint(7, 0, (BUYER, other)), CardMint(8, 0, (BUYER,))])

    assert minted.token_ids == (7 * 256, 7 * 256 + 1, 8 * 256)
    assert client.owner_of(event, 7 * 256 + 1) == other
    assert client.token_uri(event, 8 * 256) == f"ipfs://{TIER_CID}"
    recovered = client.find_order_mint(event, 7, 2)
    assert recovered is not None
    assert (recovered.tx_hash, recovered.token_ids) == (minted.tx_hash, (7 * 256, 7 * 256 + 1))
    assert client.find_order_mint(event, 9, 1) is None


def test_mint_of_an_unknown_tier_raises_invalid_chain_input(
    client_and_event: tuple[ChainClient, str],
) -> None:
    client, event = client_and_event

    with pytest.raises(InvalidChainInput) as raised:
        client.mint_batch(event, [CardMint(9, 3, (BUYER,))])

    assert (raised.value.name, raised.value.error_args) == ("UnknownTier", (3,))


def test_mint_beyond_supply_raises_sold_out() -> None:
    w3, signer = eth_tester_web3()
    client = ChainClient(w3, signer)
    client.deploy_factory()
    event = create_event(client, 2, signer.address, [tier_terms(supply=2)]).address

    with pytest.raises(SoldOut) as raised:
        client.mint_batch(event, [CardMint(1, 0, (BUYER,) * 3)])

    assert raised.value.error_args == (0, 2)
