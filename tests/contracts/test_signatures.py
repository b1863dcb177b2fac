"""Signature safety: permits and sell orders bind what they say, once, and only for their signer."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from backend.chain.protocol import (
    PERMIT_TYPES,
    SELL_ORDER_TYPES,
    as_tuple,
    domain,
    permit_message,
)
from tests.contracts.protocol import (
    ETHER,
    SIGNER_ROLE,
    EventSpec,
    Protocol,
    high_s,
)

PRICE = ETHER // 10
CAP = PRICE * 11_000 // 10_000
TOKEN = 256


def recovered(p: Protocol, event: Contract, permit: tuple[Any, ...], signature: bytes) -> str:
    """The address ``signature`` recovers to over ``permit`` in ``event``'s domain."""
    message = dict(zip([f["name"] for f in PERMIT_TYPES["PurchasePermit"]], permit, strict=True))
    signable = encode_typed_data(domain(p.w3.eth.chain_id, event.address), PERMIT_TYPES, message)
    return str(Account.recover_message(signable, signature=signature))


def purchase(
    p: Protocol, event: Contract, buyer: LocalAccount, permit: tuple[Any, ...], signature: bytes
) -> None:
    p.send(event.functions.purchase(permit, signature), buyer, value=permit[3] * permit[2])


# -- purchase permits -------------------------------------------------------------------------


def test_permit_signed_by_the_backend_encoding_is_accepted(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    message = permit_message(fans[0].address, 0, 2, PRICE, 12, p.now() + 600)
    signable = encode_typed_data(domain(p.w3.eth.chain_id, event.address), PERMIT_TYPES, message)
    signature = bytes(p.signer.sign_message(signable).signature)
    permit = as_tuple(message, PERMIT_TYPES["PurchasePermit"])
    purchase(p, event, fans[0], permit, signature)
    assert p.view(event.functions.balanceOf(fans[0].address)) == 2


def test_permit_replayed_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address, nonce=5)
    purchase(p, event, fans[0], permit, signature)
    with p.reverts(event, "PermitAlreadyUsed", 5):
        purchase(p, event, fans[0], permit, signature)


def test_permit_used_by_another_buyer_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address)
    with p.reverts(event, "PermitNotForCaller", fans[0].address, fans[1].address):
        purchase(p, event, fans[1], permit, signature)


@pytest.mark.parametrize(
    ("index", "value"),
    [(1, 1), (2, 2), (3, PRICE // 2), (4, 6), (5, None)],
    ids=["tier", "quantity", "unitPrice", "nonce", "deadline"],
)
def test_permit_with_an_altered_field_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], index: int, value: int | None
) -> None:
    p.send(
        event.functions.configureTier(1, (PRICE, 10, 0, p.view(event.functions.tier(0))[5])),
        p.organizer,
    )
    permit, signature = p.permit(event, fans[0].address, nonce=5)
    altered = list(permit)
    altered[index] = permit[5] + 60 if value is None else value
    forged_signer = recovered(p, event, tuple(altered), signature)
    with p.reverts(event, "InvalidPermitSigner", forged_signer):
        purchase(p, event, fans[0], tuple(altered), signature)


def test_permit_with_its_buyer_altered_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address)
    stolen = (fans[1].address, *permit[1:])
    with p.reverts(event, "InvalidPermitSigner", recovered(p, event, stolen, signature)):
        purchase(p, event, fans[1], stolen, signature)


def test_permit_for_another_event_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    other = p.create_event(EventSpec(event_id=2))
    permit, signature = p.permit(event, fans[0].address, verifying_contract=other.address)
    purchase(p, other, fans[0], permit, signature)  # valid where it was meant to be used
    with p.reverts(event, "InvalidPermitSigner", recovered(p, event, permit, signature)):
        purchase(p, event, fans[0], permit, signature)


def test_permit_for_another_chain_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address, chain_id=p.w3.eth.chain_id + 1)
    with p.reverts(event, "InvalidPermitSigner", recovered(p, event, permit, signature)):
        purchase(p, event, fans[0], permit, signature)


def test_permit_after_its_deadline_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    deadline = p.now() + 100
    permit, signature = p.permit(event, fans[0].address, deadline=deadline)
    p.travel_to(deadline + 1)
    with p.reverts(event, "PermitExpired", deadline):
        purchase(p, event, fans[0], permit, signature)


def test_permit_at_its_deadline_is_accepted(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    deadline = p.now() + 100
    permit, signature = p.permit(event, fans[0].address, deadline=deadline)
    p.travel_to(deadline)
    purchase(p, event, fans[0], permit, signature)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[0].address


def test_permit_with_a_high_s_signature_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address)
    malleable = high_s(signature)
    # The twin signature is valid for ecrecover; only the low-s rule rejects it.
    assert recovered(p, event, permit, malleable) == p.signer.address
    with p.reverts(event, "ECDSAInvalidSignatureS", malleable[32:64]):
        purchase(p, event, fans[0], permit, malleable)


@pytest.mark.parametrize("length", [0, 64, 66])
def test_permit_with_a_signature_of_the_wrong_length_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], length: int
) -> None:
    permit, signature = p.permit(event, fans[0].address)
    with p.reverts(event, "ECDSAInvalidSignatureLength", length):
        purchase(p, event, fans[0], permit, (signature + b"\x00")[:length])


def test_permit_with_an_unrecoverable_signature_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, _ = p.permit(event, fans[0].address)
    # r = 0 is no point on the curve: ecrecover returns the zero address.
    with p.reverts(event, "ECDSAInvalidSignature"):
        purchase(p, event, fans[0], permit, b"\x00" * 32 + (1).to_bytes(32, "big") + b"\x1b")


def test_permit_signed_by_an_account_without_the_signer_role_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address, signer=fans[0])
    with p.reverts(event, "InvalidPermitSigner", fans[0].address):
        purchase(p, event, fans[0], permit, signature)


def test_permit_signed_before_the_signer_role_was_revoked_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    permit, signature = p.permit(event, fans[0].address)
    p.send(event.functions.revokeRole(SIGNER_ROLE, p.signer.address), p.admin)
    with p.reverts(event, "InvalidPermitSigner", p.signer.address):
        purchase(p, event, fans[0], permit, signature)


def test_permit_signed_by_a_newly_granted_signer_is_accepted(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.grantRole(SIGNER_ROLE, fans[3].address), p.admin)
    permit, signature = p.permit(event, fans[0].address, signer=fans[3])
    purchase(p, event, fans[0], permit, signature)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[0].address


def test_revoke_role_by_a_non_admin_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "AccessControlUnauthorizedAccount", p.organizer.address, b"\x00" * 32):
        p.send(event.functions.revokeRole(SIGNER_ROLE, p.signer.address), p.organizer)


# -- revokePermit -------------------------------------------------------------------------------


def test_revoke_permit_stops_that_permit_before_its_deadline(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    revoked, revoked_signature = p.permit(event, fans[0].address, nonce=7)
    other, other_signature = p.permit(event, fans[0].address, nonce=8)
    receipt = p.send(event.functions.revokePermit(7), p.signer)
    assert p.logs(event, "PermitRevoked", receipt) == [{"nonce": 7}]
    with p.reverts(event, "PermitIsRevoked", 7):
        purchase(p, event, fans[0], revoked, revoked_signature)
    # Only that permit: the signer's other permits still buy.
    purchase(p, event, fans[0], other, other_signature)
    assert not p.view(event.functions.orderMinted(7))
    assert p.view(event.functions.orderMinted(8))
    with p.reverts(event, "ERC721NonexistentToken", 7 * 256):
        p.view(event.functions.ownerOf(7 * 256))
    # Its order id can't be minted by card either.
    with p.reverts(event, "OrderAlreadyMinted", 7):
        p.mint(event, 7, [fans[0].address])


def test_revoke_permit_twice_reverts(p: Protocol, event: Contract) -> None:
    p.send(event.functions.revokePermit(7), p.signer)
    with p.reverts(event, "PermitIsRevoked", 7):
        p.send(event.functions.revokePermit(7), p.signer)


def test_revoke_permit_of_a_used_permit_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=7)
    with p.reverts(event, "PermitAlreadyUsed", 7):
        p.send(event.functions.revokePermit(7), p.signer)


def test_revoke_permit_of_a_nonce_above_64_bits_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "OrderIdTooLarge", 2**64):
        p.send(event.functions.revokePermit(2**64), p.signer)


def test_revoke_permit_by_an_account_without_the_signer_role_reverts(
    p: Protocol, event: Contract
) -> None:
    with p.reverts(event, "AccessControlUnauthorizedAccount", p.minter.address, SIGNER_ROLE):
        p.send(event.functions.revokePermit(7), p.minter)


# -- sell orders ------------------------------------------------------------------------------


@pytest.fixture
def seller(p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]) -> LocalAccount:
    p.buy(event, fans[0], nonce=1)
    return fans[0]


def test_sell_order_filled_twice_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)
    with p.reverts(event, "SellOrderInvalidated", TOKEN, 0, 1):
        p.send(event.functions.buyResale(order, signature), fans[2], value=PRICE)


def test_sell_order_after_the_ticket_moved_away_and_back_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.send(event.functions.transferFrom(seller.address, fans[1].address, TOKEN), seller)
    p.send(event.functions.transferFrom(fans[1].address, seller.address, TOKEN), fans[1])
    assert p.view(event.functions.ownerOf(TOKEN)) == seller.address
    with p.reverts(event, "SellOrderInvalidated", TOKEN, 0, 2):
        p.send(event.functions.buyResale(order, signature), fans[2], value=PRICE)


def test_sell_order_after_cancel_sell_orders_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.send(event.functions.cancelSellOrders(TOKEN), seller)
    with p.reverts(event, "SellOrderInvalidated", TOKEN, 0, 1):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)
    # A fresh order at the new nonce still sells.
    p.resell(event, seller, fans[1], TOKEN, PRICE)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[1].address


def test_sell_order_signed_by_a_non_owner_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, fans[1], TOKEN, PRICE)
    with p.reverts(event, "SellOrderSignerNotOwner", fans[1].address, seller.address):
        p.send(event.functions.buyResale(order, signature), fans[2], value=PRICE)


def test_sell_order_signed_by_the_previous_owner_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.transferFrom(seller.address, fans[1].address, TOKEN), seller)
    # Signed at the current nonce, so only the owner check can stop it.
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    with p.reverts(event, "SellOrderSignerNotOwner", seller.address, fans[1].address):
        p.send(event.functions.buyResale(order, signature), fans[2], value=PRICE)


def test_sell_order_with_a_high_s_signature_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    malleable = high_s(signature)
    with p.reverts(event, "ECDSAInvalidSignatureS", malleable[32:64]):
        p.send(event.functions.buyResale(order, malleable), fans[1], value=PRICE)


def test_sell_order_after_its_deadline_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    deadline = p.now() + 100
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, deadline=deadline)
    p.travel_to(deadline + 1)
    with p.reverts(event, "SellOrderExpired", TOKEN, deadline):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


def test_sell_order_above_the_cap_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, CAP + 1)
    with p.reverts(event, "PriceAboveCap", CAP + 1, CAP):
        p.send(event.functions.buyResale(order, signature), fans[1], value=CAP + 1)


def test_sell_order_with_an_altered_price_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    cheaper = (order[0], PRICE // 2, *order[2:])
    message = dict(zip([f["name"] for f in SELL_ORDER_TYPES["SellOrder"]], cheaper, strict=True))
    signable = encode_typed_data(
        domain(p.w3.eth.chain_id, event.address), SELL_ORDER_TYPES, message
    )
    forged = Account.recover_message(signable, signature=signature)
    with p.reverts(event, "SellOrderSignerNotOwner", forged, seller.address):
        p.send(event.functions.buyResale(cheaper, signature), fans[1], value=PRICE // 2)
