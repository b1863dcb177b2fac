"""TicketFactory: roles, event creation as EIP-1167 clones, address prediction, and the
initializer's checks that surface through createEvent."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from backend.chain.artifacts import load_artifact
from tests.contracts.protocol import (
    DEFAULT_ADMIN_ROLE,
    ETHER,
    EVENT_CREATOR_ROLE,
    MINTER_ROLE,
    ORGANIZER_ROLE,
    RELAYER_ROLE,
    SCANNER_ROLE,
    SIGNER_ROLE,
    START,
    ZERO_ADDRESS,
    EventSpec,
    Protocol,
    TierSpec,
    digest_of,
)

ACCESS_CONTROL_INTERFACE = bytes.fromhex("7965db0b")
ERC165_INTERFACE = bytes.fromhex("01ffc9a7")


def clone_code(implementation: str) -> bytes:
    """EIP-1167's minimal proxy runtime code for ``implementation``."""
    return (
        bytes.fromhex("363d3d373d3d3d363d73")
        + bytes.fromhex(implementation[2:])
        + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
    )


def test_constructor_grants_admin_and_creator_roles(p: Protocol) -> None:
    factory = p.factory
    assert p.view(factory.functions.hasRole(DEFAULT_ADMIN_ROLE, p.admin.address))
    assert p.view(factory.functions.hasRole(EVENT_CREATOR_ROLE, p.admin.address))
    assert not p.view(factory.functions.hasRole(EVENT_CREATOR_ROLE, p.organizer.address))
    assert p.view(factory.functions.EVENT_CREATOR_ROLE()) == EVENT_CREATOR_ROLE
    assert p.view(factory.functions.getRoleAdmin(EVENT_CREATOR_ROLE)) == DEFAULT_ADMIN_ROLE


def test_constructor_deploys_an_implementation_that_is_already_initialized(
    p: Protocol, fans: tuple[LocalAccount, ...]
) -> None:
    implementation = p.event_at(p.view(p.factory.functions.implementation()))
    assert len(p.w3.eth.get_code(implementation.address)) > 1000
    with p.reverts(implementation, "AlreadyInitialized"):
        p.send(
            implementation.functions.initialize(
                p.event_config(EventSpec(event_id=99)), [TierSpec().as_tuple()]
            ),
            fans[0],
        )


def test_constructor_rejects_zero_admin(p: Protocol) -> None:
    artifact = load_artifact("TicketFactory")
    deployer = p.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    with p.reverts(p.factory, "ZeroAddressForRole", DEFAULT_ADMIN_ROLE):
        p.send(deployer.constructor(ZERO_ADDRESS), p.admin)


def test_create_event_deploys_an_initialized_clone_at_the_predicted_address(p: Protocol) -> None:
    spec = EventSpec(
        event_id=42,
        name="Autumn Gala",
        symbol="GALA",
        transfers_locked=True,
        tiers=[TierSpec(price=2 * ETHER // 10, supply=50, per_wallet_limit=4), TierSpec()],
    )
    predicted = p.view(p.factory.functions.predictEventAddress(42))
    assert p.view(p.factory.functions.eventAddress(42)) == ZERO_ADDRESS

    receipt = p.send(p.create_event_call(spec), p.admin)

    assert p.logs(p.factory, "EventCreated", receipt) == [
        {"eventId": 42, "ticketEvent": predicted, "organizer": p.organizer.address}
    ]
    assert p.view(p.factory.functions.eventAddress(42)) == predicted
    implementation = p.view(p.factory.functions.implementation())
    assert bytes(p.w3.eth.get_code(predicted)) == clone_code(implementation)
    event = p.event_at(predicted)
    assert p.logs(event, "EventInitialized", receipt) == [
        {"eventId": 42, "organizer": p.organizer.address}
    ]
    assert [log["tierId"] for log in p.logs(event, "TierConfigured", receipt)] == [0, 1]
    assert p.view(event.functions.name()) == "Autumn Gala"
    assert p.view(event.functions.symbol()) == "GALA"
    assert p.view(event.functions.eventInfo()) == [
        42,
        p.organizer.address,
        spec.sale_start,
        spec.sale_end,
        spec.event_end,
        11_000,
        500,
        2,
        False,
        False,
        False,
        True,
    ]


def test_create_event_grants_each_role_to_its_configured_account(p: Protocol) -> None:
    spec = EventSpec(event_id=7)
    receipt = p.send(p.create_event_call(spec), p.admin)
    event = p.event_at(p.view(p.factory.functions.eventAddress(7)))
    roles = [
        (DEFAULT_ADMIN_ROLE, p.admin),
        (ORGANIZER_ROLE, p.organizer),
        (MINTER_ROLE, p.minter),
        (SIGNER_ROLE, p.signer),
        (RELAYER_ROLE, p.relayer),
        (SCANNER_ROLE, p.scanner),
    ]
    assert p.logs(event, "RoleGranted", receipt) == [
        {"role": role, "account": account.address, "sender": p.factory.address}
        for role, account in roles
    ]
    for role, account in roles:
        assert p.view(event.functions.hasRole(role, account.address))
    assert not p.view(event.functions.hasRole(MINTER_ROLE, p.admin.address))
    for name, role in [
        ("ORGANIZER_ROLE", ORGANIZER_ROLE),
        ("MINTER_ROLE", MINTER_ROLE),
        ("SIGNER_ROLE", SIGNER_ROLE),
        ("SCANNER_ROLE", SCANNER_ROLE),
        ("RELAYER_ROLE", RELAYER_ROLE),
    ]:
        assert p.view(event.functions[name]()) == role


def test_create_event_clones_have_separate_storage(p: Protocol, event: Contract) -> None:
    other = p.create_event(EventSpec(event_id=2, name="Other", symbol="OTH"))
    p.mint(event, 5, [p.admin.address])
    assert p.view(event.functions.orderMinted(5))
    assert not p.view(other.functions.orderMinted(5))
    assert p.view(other.functions.name()) == "Other"


def test_create_event_with_a_reused_event_id_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(p.factory, "EventAlreadyCreated", 1, event.address):
        p.send(p.create_event_call(EventSpec(event_id=1)), p.admin)


def test_create_event_by_a_non_creator_reverts(p: Protocol, fans: tuple[LocalAccount, ...]) -> None:
    with p.reverts(
        p.factory, "AccessControlUnauthorizedAccount", fans[0].address, EVENT_CREATOR_ROLE
    ):
        p.send(p.create_event_call(EventSpec(event_id=3)), fans[0])


def test_create_event_by_a_granted_creator_succeeds(
    p: Protocol, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(p.factory.functions.grantRole(EVENT_CREATOR_ROLE, fans[0].address), p.admin)
    p.send(p.create_event_call(EventSpec(event_id=3)), fans[0])
    assert p.view(p.factory.functions.eventAddress(3)) != ZERO_ADDRESS


@pytest.mark.parametrize(
    ("index", "role"),
    [
        (3, DEFAULT_ADMIN_ROLE),
        (4, ORGANIZER_ROLE),
        (5, MINTER_ROLE),
        (6, SIGNER_ROLE),
    ],
)
def test_create_event_with_a_zero_role_address_reverts(
    p: Protocol, index: int, role: bytes
) -> None:
    spec = EventSpec(event_id=3)
    config = list(p.event_config(spec))
    config[index] = ZERO_ADDRESS
    with p.reverts(p.event_interface, "ZeroAddressForRole", role):
        p.send(p.create_event_call(spec, tuple(config)), p.admin)


def test_create_event_with_a_zero_scanner_grants_the_role_to_nobody(
    p: Protocol, fans: tuple[LocalAccount, ...]
) -> None:
    spec = EventSpec(event_id=3)
    config = list(p.event_config(spec))
    config[7] = ZERO_ADDRESS
    receipt = p.send(p.create_event_call(spec, tuple(config)), p.admin)
    (created,) = p.logs(p.factory, "EventCreated", receipt)
    event = p.event_at(created["ticketEvent"])
    assert not p.view(event.functions.hasRole(SCANNER_ROLE, ZERO_ADDRESS))
    assert not p.view(event.functions.hasRole(SCANNER_ROLE, p.scanner.address))
    p.send(event.functions.grantRole(SCANNER_ROLE, fans[0].address), p.admin)
    assert p.view(event.functions.hasRole(SCANNER_ROLE, fans[0].address))


@pytest.mark.parametrize(
    ("start", "end", "event_end"),
    [(START, START, START + 10), (START + 10, START, START + 20), (START, START + 20, START + 10)],
)
def test_create_event_with_an_invalid_schedule_reverts(
    p: Protocol, start: int, end: int, event_end: int
) -> None:
    spec = EventSpec(event_id=3, sale_start=start, sale_end=end, event_end=event_end)
    with p.reverts(p.event_interface, "InvalidSchedule", start, end, event_end):
        p.send(p.create_event_call(spec), p.admin)


def test_create_event_with_royalty_above_100_percent_reverts(p: Protocol) -> None:
    with p.reverts(p.event_interface, "RoyaltyTooHigh", 10_001):
        p.send(p.create_event_call(EventSpec(event_id=3, royalty_bps=10_001)), p.admin)


def test_create_event_with_more_than_max_tiers_reverts(p: Protocol) -> None:
    tiers = [TierSpec(supply=1, metadata=digest_of(f"t{i}")) for i in range(17)]
    with p.reverts(p.event_interface, "InvalidTierId", 16, 16):
        p.send(p.create_event_call(EventSpec(event_id=3, tiers=tiers)), p.admin)


def test_create_event_with_max_tiers_succeeds(p: Protocol) -> None:
    tiers = [TierSpec(supply=1, metadata=digest_of(f"t{i}")) for i in range(16)]
    event = p.create_event(EventSpec(event_id=3, tiers=tiers))
    assert p.view(event.functions.eventInfo())[7] == 16
    assert p.view(event.functions.MAX_TIERS()) == 16


def test_create_event_with_a_price_not_in_whole_gwei_reverts(p: Protocol) -> None:
    spec = EventSpec(event_id=3, tiers=[TierSpec(price=ETHER + 1)])
    with p.reverts(p.event_interface, "InvalidPrice", ETHER + 1):
        p.send(p.create_event_call(spec), p.admin)


def test_create_event_without_tier_metadata_reverts(p: Protocol) -> None:
    spec = EventSpec(event_id=3, tiers=[TierSpec(), TierSpec(metadata=b"\x00" * 32)])
    with p.reverts(p.event_interface, "MissingMetadata", 1):
        p.send(p.create_event_call(spec), p.admin)


def test_create_event_with_total_supply_above_uint32_reverts(p: Protocol) -> None:
    spec = EventSpec(event_id=3, tiers=[TierSpec(supply=2**32 - 1), TierSpec(supply=1)])
    with p.reverts(p.event_interface, "TotalSupplyTooLarge", 2**32):
        p.send(p.create_event_call(spec), p.admin)


def test_initialize_on_a_created_clone_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "AlreadyInitialized"):
        p.send(
            event.functions.initialize(p.event_config(EventSpec()), [TierSpec().as_tuple()]),
            fans[0],
        )


def test_initialize_of_a_clone_made_outside_the_factory_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    implementation = p.view(p.factory.functions.implementation())
    # EIP-1167's creation code for `implementation`: byte for byte the code the factory's clones
    # have, so only who initializes it could tell it apart.
    creation = bytes.fromhex(
        "3d602d80600a3d3981f3363d3d373d3d3d363d73"
        + implementation[2:].lower()
        + "5af43d82803e903d91602b57fd5bf3"
    )
    tx = p.w3.eth.send_transaction({"from": fans[0].address, "data": creation, "gas": 100_000})
    rogue = p.event_at(p.w3.eth.get_transaction_receipt(tx)["contractAddress"])
    assert p.w3.eth.get_code(rogue.address) == p.w3.eth.get_code(event.address)
    assert p.view(rogue.functions.factory()) == p.factory.address
    with p.reverts(rogue, "NotFactory", fans[0].address):
        p.send(
            rogue.functions.initialize(p.event_config(EventSpec()), [TierSpec().as_tuple()]),
            fans[0],
        )


def test_predict_event_address_differs_per_event_id(p: Protocol) -> None:
    addresses = {p.view(p.factory.functions.predictEventAddress(i)) for i in (1, 2, 2**64 - 1)}
    assert len(addresses) == 3
    assert all(Web3.is_checksum_address(a) for a in addresses)


def test_event_address_of_an_unknown_event_is_zero(p: Protocol) -> None:
    assert p.view(p.factory.functions.eventAddress(12345)) == ZERO_ADDRESS


def test_supports_interface_reports_access_control_and_erc165(p: Protocol) -> None:
    assert p.view(p.factory.functions.supportsInterface(ACCESS_CONTROL_INTERFACE))
    assert p.view(p.factory.functions.supportsInterface(ERC165_INTERFACE))
    assert not p.view(p.factory.functions.supportsInterface(bytes.fromhex("ffffffff")))


def test_renounce_role_for_another_account_reverts(
    p: Protocol, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(p.factory, "AccessControlBadConfirmation"):
        p.send(p.factory.functions.renounceRole(EVENT_CREATOR_ROLE, p.admin.address), fans[0])


def test_revoke_role_stops_event_creation(p: Protocol) -> None:
    receipt = p.send(p.factory.functions.revokeRole(EVENT_CREATOR_ROLE, p.admin.address), p.admin)
    assert p.logs(p.factory, "RoleRevoked", receipt) == [
        {"role": EVENT_CREATOR_ROLE, "account": p.admin.address, "sender": p.admin.address}
    ]
    with p.reverts(
        p.factory, "AccessControlUnauthorizedAccount", p.admin.address, EVENT_CREATOR_ROLE
    ):
        p.send(p.create_event_call(EventSpec(event_id=3)), p.admin)


def test_zero_address_for_role_has_the_same_signature_in_both_contracts(
    event: Contract, p: Protocol
) -> None:
    # ZeroAddressForRole has the same signature in both contracts, so the backend can decode it
    # whichever contract raised it.
    factory_error = next(e for e in p.factory.abi if e.get("name") == "ZeroAddressForRole")
    event_error = next(e for e in event.abi if e.get("name") == "ZeroAddressForRole")
    assert factory_error["inputs"] == event_error["inputs"]
