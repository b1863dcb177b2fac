"""TicketFactory and TicketEvent on an in-process chain (eth-tester), through ChainClient and raw
contract calls. Reverts are asserted by decoded custom error name and arguments."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.chain.errors import ContractRevert, EventAlreadyCreated, OrderAlreadyMinted
from backend.chain.testing import eth_tester_web3, funded_account

CID_A = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
CID_B = "bafkreidvbhs33ighmljlvr7zbv2ywwzcmp5adtf4kqvlly67cy56bdtmve"
CID_C = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"

DEFAULT_ADMIN_ROLE = b"\x00" * 32
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
EVENT_CREATOR_ROLE = Web3.keccak(text="EVENT_CREATOR_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass
class Chain:
    w3: Web3
    backend: LocalAccount  # deploys the factory and is every event's minter
    organizer: LocalAccount
    client: ChainClient


@pytest.fixture
def chain() -> Chain:
    w3, signer = eth_tester_web3()
    client = ChainClient(w3, signer)
    client.deploy_factory()
    return Chain(w3, signer, funded_account(w3), client)


@pytest.fixture
def event_address(chain: Chain) -> str:
    return chain.client.create_event(1, "Spring Concert", "SPRING", chain.organizer.address).address


def ticket_event(chain: Chain, address: str) -> Contract:
    return chain.w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=load_artifact("TicketEvent").abi
    )


def factory(chain: Chain) -> Contract:
    assert chain.client.factory_address is not None
    return chain.w3.eth.contract(
        address=Web3.to_checksum_address(chain.client.factory_address),
        abi=load_artifact("TicketFactory").abi,
    )


def recipients(n: int) -> list[str]:
    return [Web3.to_checksum_address(f"0x{i + 1:040x}") for i in range(n)]


# -- TicketFactory ------------------------------------------------------------------------------


def test_deploy_factory_grants_signer_admin_and_creator_roles(chain: Chain) -> None:
    contract = factory(chain)
    assert chain.client.is_contract(contract.address)
    assert contract.functions.hasRole(DEFAULT_ADMIN_ROLE, chain.backend.address).call()
    assert contract.functions.hasRole(EVENT_CREATOR_ROLE, chain.backend.address).call()


def test_create_event_records_address_and_emits_event_created(chain: Chain) -> None:
    deployment = chain.client.create_event(7, "Jazz Night", "JAZZ", chain.organizer.address)

    assert chain.client.event_address(7) == deployment.address
    assert chain.client.is_contract(deployment.address)
    logs = factory(chain).events.EventCreated().get_logs(from_block=deployment.block_number)
    assert [dict(log["args"]) for log in logs] == [
        {
            "eventId": 7,
            "ticketEvent": deployment.address,
            "organizer": chain.organizer.address,
        }
    ]
    collection = ticket_event(chain, deployment.address)
    assert collection.functions.name().call() == "Jazz Night"
    assert collection.functions.symbol().call() == "JAZZ"
    assert collection.functions.hasRole(DEFAULT_ADMIN_ROLE, chain.organizer.address).call()
    assert collection.functions.hasRole(MINTER_ROLE, chain.backend.address).call()
    assert not collection.functions.hasRole(MINTER_ROLE, chain.organizer.address).call()


def test_event_address_is_none_for_unknown_event(chain: Chain) -> None:
    assert chain.client.event_address(404) is None


def test_create_event_reverts_on_reused_event_id(chain: Chain, event_address: str) -> None:
    with pytest.raises(EventAlreadyCreated) as raised:
        chain.client.create_event(1, "Again", "AGAIN", chain.organizer.address)

    assert raised.value.name == "EventAlreadyCreated"
    assert raised.value.error_args == (1, event_address)
    assert (raised.value.event_id, raised.value.address) == (1, event_address)


def test_create_event_reverts_for_non_creator(chain: Chain) -> None:
    outsider = ChainClient(chain.w3, chain.organizer, factory_address=chain.client.factory_address)

    with pytest.raises(ContractRevert) as raised:
        outsider.create_event(2, "Rogue", "ROGUE", chain.organizer.address)

    assert raised.value.name == "AccessControlUnauthorizedAccount"
    assert raised.value.error_args == (chain.organizer.address, EVENT_CREATOR_ROLE)


def test_create_event_raw_call_reverts_with_encoded_access_control_error(chain: Chain) -> None:
    contract = factory(chain)
    expected = contract.encode_abi(
        "AccessControlUnauthorizedAccount", args=[chain.organizer.address, EVENT_CREATOR_ROLE]
    )

    with pytest.raises(ContractCustomError) as raised:
        contract.functions.createEvent(
            2, "Rogue", "ROGUE", chain.organizer.address, chain.organizer.address
        ).call({"from": chain.organizer.address})

    assert raised.value.data == expected


def test_create_event_reverts_on_zero_organizer(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as raised:
        chain.client.create_event(3, "Nobody's", "NONE", ZERO_ADDRESS)

    assert raised.value.name == "ZeroAddressForRole"
    assert raised.value.error_args == (DEFAULT_ADMIN_ROLE,)


# -- TicketEvent.mintBatch ----------------------------------------------------------------------


def test_mint_batch_assigns_sequential_ids_owners_and_token_uris(
    chain: Chain, event_address: str
) -> None:
    owners = recipients(3)

    first = chain.client.mint_batch(event_address, 100, owners, [CID_A, CID_B, CID_C])
    second = chain.client.mint_batch(event_address, 101, owners[:1], [CID_C])

    assert first.token_ids == (1, 2, 3)
    assert second.token_ids == (4,)
    for token_id, owner, cid in zip((1, 2, 3), owners, (CID_A, CID_B, CID_C), strict=True):
        assert chain.client.owner_of(event_address, token_id) == owner
        assert chain.client.token_uri(event_address, token_id) == f"ipfs://{cid}"
    assert chain.client.owner_of(event_address, 4) == owners[0]
    assert ticket_event(chain, event_address).functions.totalMinted().call() == 4


def test_mint_batch_emits_order_minted_and_transfers(chain: Chain, event_address: str) -> None:
    result = chain.client.mint_batch(event_address, 100, recipients(2), [CID_A, CID_B])

    receipt = chain.w3.eth.get_transaction_receipt(HexStr(result.tx_hash))
    contract = ticket_event(chain, event_address)
    # DISCARD: each event's parser skips the other event's logs in the same receipt.
    minted = contract.events.OrderMinted().process_receipt(receipt, errors=DISCARD)
    transfers = contract.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert [dict(log["args"]) for log in minted] == [
        {"orderId": 100, "firstTokenId": 1, "quantity": 2}
    ]
    assert [(t["args"]["from"], t["args"]["to"], t["args"]["tokenId"]) for t in transfers] == [
        (ZERO_ADDRESS, recipients(2)[0], 1),
        (ZERO_ADDRESS, recipients(2)[1], 2),
    ]


def test_mint_batch_reverts_on_reused_order_id(chain: Chain, event_address: str) -> None:
    chain.client.mint_batch(event_address, 100, recipients(1), [CID_A])

    with pytest.raises(OrderAlreadyMinted) as raised:
        chain.client.mint_batch(event_address, 100, recipients(1), [CID_B])

    assert raised.value.name == "OrderAlreadyMinted"
    assert raised.value.error_args == (100,)
    assert raised.value.order_id == 100
    assert ticket_event(chain, event_address).functions.totalMinted().call() == 1


def test_mint_batch_reverts_on_length_mismatch(chain: Chain, event_address: str) -> None:
    with pytest.raises(ContractRevert) as raised:
        chain.client.mint_batch(event_address, 100, recipients(2), [CID_A])

    assert raised.value.name == "LengthMismatch"
    assert raised.value.error_args == (2, 1)


def test_mint_batch_reverts_on_empty_batch(chain: Chain, event_address: str) -> None:
    with pytest.raises(ContractRevert) as raised:
        chain.client.mint_batch(event_address, 100, [], [])

    assert raised.value.name == "EmptyBatch"
    assert raised.value.error_args == ()


def test_mint_batch_reverts_on_empty_cid(chain: Chain, event_address: str) -> None:
    with pytest.raises(ContractRevert) as raised:
        chain.client.mint_batch(event_address, 100, recipients(3), [CID_A, CID_B, ""])

    assert raised.value.name == "EmptyCid"
    assert raised.value.error_args == (2,)


def test_mint_batch_reverts_for_non_minter(chain: Chain, event_address: str) -> None:
    organizer_client = ChainClient(chain.w3, chain.organizer)

    with pytest.raises(ContractRevert) as raised:
        organizer_client.mint_batch(event_address, 100, recipients(1), [CID_A])

    assert raised.value.name == "AccessControlUnauthorizedAccount"
    assert raised.value.error_args == (chain.organizer.address, MINTER_ROLE)


def test_mint_batch_raw_call_reverts_with_encoded_order_already_minted(
    chain: Chain, event_address: str
) -> None:
    chain.client.mint_batch(event_address, 100, recipients(1), [CID_A])
    contract = ticket_event(chain, event_address)

    with pytest.raises(ContractCustomError) as raised:
        contract.functions.mintBatch(100, recipients(1), [CID_B]).call(
            {"from": chain.backend.address}
        )

    assert raised.value.data == contract.encode_abi("OrderAlreadyMinted", args=[100])


# -- views --------------------------------------------------------------------------------------


def test_token_uri_reverts_for_unknown_token(chain: Chain, event_address: str) -> None:
    with pytest.raises(ContractRevert) as raised:
        chain.client.token_uri(event_address, 99)

    assert raised.value.name == "ERC721NonexistentToken"
    assert raised.value.error_args == (99,)


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [
        ("0x01ffc9a7", True),  # ERC-165
        ("0x80ac58cd", True),  # ERC-721
        ("0x5b5e139f", True),  # ERC-721 Metadata
        ("0x7965db0b", True),  # AccessControl
        ("0xffffffff", False),  # ERC-165 says this id must never be supported
        ("0x780e9d63", False),  # ERC-721 Enumerable: deliberately not implemented
    ],
)
def test_supports_interface(
    chain: Chain, event_address: str, interface_id: str, supported: bool
) -> None:
    contract = ticket_event(chain, event_address)
    assert contract.functions.supportsInterface(bytes.fromhex(interface_id[2:])).call() is supported


def test_find_order_mint_recovers_the_same_mint_result(chain: Chain, event_address: str) -> None:
    chain.client.mint_batch(event_address, 100, recipients(1), [CID_A])
    minted = chain.client.mint_batch(event_address, 101, recipients(3), [CID_A, CID_B, CID_C])

    assert chain.client.find_order_mint(event_address, 101) == minted
    assert chain.client.find_order_mint(event_address, 102) is None


def test_order_minted_is_true_only_after_the_mint(chain: Chain, event_address: str) -> None:
    assert chain.client.order_minted(event_address, 100) is False

    chain.client.mint_batch(event_address, 100, recipients(1), [CID_A])

    assert chain.client.order_minted(event_address, 100) is True
    assert chain.client.order_minted(event_address, 101) is False
