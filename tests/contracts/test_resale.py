"""Resale through signed sell orders, direct ERC-721 transfers and approvals, and withdrawals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from backend.chain.protocol import sell_order_signable
from tests.contracts.protocol import (
    ETHER,
    ZERO_ADDRESS,
    EventSpec,
    Protocol,
)

PRICE = ETHER // 10
CAP = PRICE * 11_000 // 10_000
TOKEN = 256  # the first ticket of order / permit nonce 1


@pytest.fixture
def seller(p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]) -> LocalAccount:
    """fans[0], holding ticket TOKEN bought with crypto at face price."""
    p.buy(event, fans[0], nonce=1)
    return fans[0]


# -- buyResale --------------------------------------------------------------------------------


def test_buy_resale_moves_the_ticket_and_credits_seller_and_organizer(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    buyer = fans[1]
    before = p.balance(buyer.address)
    receipt = p.resell(event, seller, buyer, TOKEN, CAP)
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    royalty = CAP * 500 // 10_000

    assert p.logs(event, "Resold", receipt) == [
        {
            "tokenId": TOKEN,
            "seller": seller.address,
            "buyer": buyer.address,
            "payee": seller.address,
            "price": CAP,
            "royalty": royalty,
        }
    ]
    assert p.logs(event, "Transfer", receipt) == [
        {"from": seller.address, "to": buyer.address, "tokenId": TOKEN}
    ]
    assert p.view(event.functions.ownerOf(TOKEN)) == buyer.address
    assert p.balance(buyer.address) == before - CAP - fee
    assert p.view(event.functions.creditOf(seller.address)) == CAP - royalty
    assert p.view(event.functions.creditOf(p.organizer.address)) == royalty
    assert p.view(event.functions.creditOf(buyer.address)) == 0
    # Escrow keeps the primary price; the resale payment is held as credits.
    assert p.balance(event.address) == PRICE + CAP
    assert p.view(event.functions.ticket(TOKEN)) == [0, False, PRICE, 1]


def test_buy_resale_of_a_card_ticket_succeeds(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 9, [fans[2].address])
    p.resell(event, fans[2], fans[3], 9 * 256, PRICE // 2)
    assert p.view(event.functions.ownerOf(9 * 256)) == fans[3].address


def test_buy_resale_while_transfers_are_locked_succeeds(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.setTransfersLocked(True), p.organizer)
    p.resell(event, seller, fans[1], TOKEN, PRICE)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[1].address
    # The lock still holds for the new owner's direct transfers.
    with p.reverts(event, "TransfersLocked", TOKEN):
        p.send(event.functions.transferFrom(fans[1].address, fans[2].address, TOKEN), fans[1])


def test_buy_resale_by_the_organizer_as_seller_pays_both_credits_in_one_withdrawal(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 9, [p.organizer.address])
    p.resell(event, p.organizer, fans[1], 9 * 256, PRICE)
    assert p.view(event.functions.creditOf(p.organizer.address)) == PRICE
    receipt = p.send(event.functions.withdraw(), p.organizer)
    assert p.logs(event, "Withdrawn", receipt) == [
        {"account": p.organizer.address, "amount": PRICE}
    ]
    assert p.balance(event.address) == 0


def test_a_sell_order_signed_over_the_backends_direct_digest_is_filled(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    """The API recovers sell orders' signers from backend.chain.protocol.sell_order_signable:
    the digest the contract checks must be that one, else it recovers another signer."""
    message = p.sell_order_message(event, TOKEN, PRICE)
    signable = sell_order_signable(p.w3.eth.chain_id, event.address, message)
    signature = bytes(seller.sign_message(signable).signature)

    receipt = p.send(
        event.functions.buyResale(tuple(message.values()), signature), fans[1], value=PRICE
    )

    assert p.logs(event, "Resold", receipt)[0]["seller"] == seller.address
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[1].address


def test_buy_resale_while_paused_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.send(event.functions.pause(), p.organizer)
    with p.reverts(event, "SalesArePaused"):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


def test_buy_resale_after_cancellation_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "EventIsCancelled"):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


def test_buy_resale_after_the_event_ends_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    event_end = EventSpec().event_end
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, deadline=event_end + 600)
    p.travel_to(event_end)
    with p.reverts(event, "ResaleClosed", event_end):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


def test_buy_resale_of_a_nonexistent_ticket_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, 999, PRICE, nonce=0)
    with p.reverts(event, "ERC721NonexistentToken", 999):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


def test_buy_resale_by_the_seller_reverts(
    p: Protocol, event: Contract, seller: LocalAccount
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    with p.reverts(event, "BuyerIsSeller", seller.address):
        p.send(event.functions.buyResale(order, signature), seller, value=PRICE)


@pytest.mark.parametrize("paid", [0, PRICE - 1, PRICE + 1])
def test_buy_resale_with_inexact_payment_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...], paid: int
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    with p.reverts(event, "WrongPayment", PRICE, paid):
        p.send(event.functions.buyResale(order, signature), fans[1], value=paid)


def test_buy_resale_of_a_used_ticket_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.check_in(event, [TOKEN])
    with p.reverts(event, "TicketAlreadyUsed", TOKEN):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


def test_buy_resale_cap_follows_a_changed_face_price(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(
        event.functions.configureTier(0, (2 * PRICE, 100, 0, p.view(event.functions.tier(0))[5])),
        p.organizer,
    )
    p.resell(event, seller, fans[1], TOKEN, 2 * CAP)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[1].address


# -- cancelSellOrders -------------------------------------------------------------------------


def test_cancel_sell_orders_moves_the_nonce_on(
    p: Protocol, event: Contract, seller: LocalAccount
) -> None:
    receipt = p.send(event.functions.cancelSellOrders(TOKEN), seller)
    assert p.logs(event, "SellOrdersCancelled", receipt) == [{"tokenId": TOKEN, "newNonce": 1}]
    receipt = p.send(event.functions.cancelSellOrders(TOKEN), seller)
    assert p.logs(event, "SellOrdersCancelled", receipt) == [{"tokenId": TOKEN, "newNonce": 2}]
    assert p.view(event.functions.ticket(TOKEN))[3] == 2


def test_cancel_sell_orders_by_a_non_owner_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "NotTicketOwner", TOKEN, fans[1].address):
        p.send(event.functions.cancelSellOrders(TOKEN), fans[1])


def test_cancel_sell_orders_of_a_nonexistent_ticket_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721NonexistentToken", 5):
        p.send(event.functions.cancelSellOrders(5), fans[1])


# -- withdraw ---------------------------------------------------------------------------------


def test_withdraw_pays_the_seller_its_credit_once(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.resell(event, seller, fans[1], TOKEN, PRICE)
    credit = PRICE - PRICE * 500 // 10_000
    before = p.balance(seller.address)
    receipt = p.send(event.functions.withdraw(), seller)
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert p.logs(event, "Withdrawn", receipt) == [{"account": seller.address, "amount": credit}]
    assert p.balance(seller.address) == before + credit - fee
    assert p.view(event.functions.creditOf(seller.address)) == 0
    with p.reverts(event, "NothingToWithdraw", seller.address):
        p.send(event.functions.withdraw(), seller)


def test_withdraw_without_credit_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "NothingToWithdraw", fans[2].address):
        p.send(event.functions.withdraw(), fans[2])


def test_withdraw_by_the_organizer_pays_royalties(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.resell(event, seller, fans[1], TOKEN, PRICE)
    royalty = PRICE * 500 // 10_000
    receipt = p.send(event.functions.withdraw(), p.organizer)
    assert p.logs(event, "Withdrawn", receipt) == [
        {"account": p.organizer.address, "amount": royalty}
    ]
    assert p.view(event.functions.creditOf(p.organizer.address)) == 0


# -- ERC-721 transfers and approvals ---------------------------------------------------------


def test_transfer_from_by_the_owner_moves_the_ticket_and_voids_sell_orders(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    receipt = p.send(event.functions.transferFrom(seller.address, fans[1].address, TOKEN), seller)
    assert p.logs(event, "Transfer", receipt) == [
        {"from": seller.address, "to": fans[1].address, "tokenId": TOKEN}
    ]
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[1].address
    assert p.view(event.functions.balanceOf(seller.address)) == 0
    assert p.view(event.functions.balanceOf(fans[1].address)) == 1
    assert p.view(event.functions.ticket(TOKEN))[3] == 1


def test_approve_lets_the_approved_account_transfer_once(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    receipt = p.send(event.functions.approve(fans[1].address, TOKEN), seller)
    assert p.logs(event, "Approval", receipt) == [
        {"owner": seller.address, "approved": fans[1].address, "tokenId": TOKEN}
    ]
    assert p.view(event.functions.getApproved(TOKEN)) == fans[1].address
    p.send(event.functions.transferFrom(seller.address, fans[2].address, TOKEN), fans[1])
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[2].address
    assert p.view(event.functions.getApproved(TOKEN)) == ZERO_ADDRESS


def test_set_approval_for_all_lets_the_operator_approve_and_transfer(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    operator = fans[1]
    receipt = p.send(event.functions.setApprovalForAll(operator.address, True), seller)
    assert p.logs(event, "ApprovalForAll", receipt) == [
        {"owner": seller.address, "operator": operator.address, "approved": True}
    ]
    assert p.view(event.functions.isApprovedForAll(seller.address, operator.address))
    p.send(event.functions.approve(fans[3].address, TOKEN), operator)
    assert p.view(event.functions.getApproved(TOKEN)) == fans[3].address
    p.send(event.functions.transferFrom(seller.address, fans[2].address, TOKEN), operator)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[2].address
    p.send(event.functions.setApprovalForAll(operator.address, False), seller)
    assert not p.view(event.functions.isApprovedForAll(seller.address, operator.address))


def test_safe_transfer_from_to_an_account_succeeds(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.safeTransferFrom(seller.address, fans[1].address, TOKEN), seller)
    p.send(
        event.functions.safeTransferFrom(fans[1].address, fans[2].address, TOKEN, b"hi"), fans[1]
    )
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[2].address


def test_transfer_while_locked_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.setTransfersLocked(True), p.organizer)
    with p.reverts(event, "TransfersLocked", TOKEN):
        p.send(event.functions.transferFrom(seller.address, fans[1].address, TOKEN), seller)


def test_transfer_of_a_used_ticket_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    p.check_in(event, [TOKEN])
    with p.reverts(event, "TicketAlreadyUsed", TOKEN):
        p.send(event.functions.transferFrom(seller.address, fans[1].address, TOKEN), seller)


def test_transfer_to_the_zero_address_reverts(
    p: Protocol, event: Contract, seller: LocalAccount
) -> None:
    with p.reverts(event, "ERC721InvalidReceiver", ZERO_ADDRESS):
        p.send(event.functions.transferFrom(seller.address, ZERO_ADDRESS, TOKEN), seller)


def test_transfer_from_the_wrong_owner_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721IncorrectOwner", fans[1].address, TOKEN, seller.address):
        p.send(event.functions.transferFrom(fans[1].address, fans[2].address, TOKEN), seller)


def test_transfer_by_a_stranger_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721InsufficientApproval", fans[1].address, TOKEN):
        p.send(event.functions.transferFrom(seller.address, fans[1].address, TOKEN), fans[1])


def test_transfer_of_a_nonexistent_ticket_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721NonexistentToken", 12):
        p.send(event.functions.transferFrom(fans[0].address, fans[1].address, 12), fans[0])


def test_approve_by_a_stranger_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721InvalidApprover", fans[1].address):
        p.send(event.functions.approve(fans[1].address, TOKEN), fans[1])


def test_set_approval_for_all_to_the_zero_address_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721InvalidOperator", ZERO_ADDRESS):
        p.send(event.functions.setApprovalForAll(ZERO_ADDRESS, True), fans[0])


def test_balance_of_the_zero_address_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "ERC721InvalidOwner", ZERO_ADDRESS):
        p.view(event.functions.balanceOf(ZERO_ADDRESS))


@pytest.mark.parametrize("view", ["ownerOf", "getApproved", "tokenURI", "ticket"])
def test_views_of_a_nonexistent_ticket_revert(p: Protocol, event: Contract, view: str) -> None:
    with p.reverts(event, "ERC721NonexistentToken", 77):
        p.view(event.functions[view](77))


# -- contract wallets (tests/contracts/fixtures/TestWallet.sol) ------------------------------

WalletFactory = Callable[[LocalAccount], Contract]


def test_safe_transfer_from_to_a_receiver_contract_calls_its_hook(
    p: Protocol,
    event: Contract,
    seller: LocalAccount,
    fans: tuple[LocalAccount, ...],
    wallet_factory: WalletFactory,
) -> None:
    wallet = wallet_factory(fans[3])
    p.send(event.functions.setApprovalForAll(fans[1].address, True), seller)
    p.send(
        event.functions.safeTransferFrom(seller.address, wallet.address, TOKEN, b"\x01\x02"),
        fans[1],
    )
    assert p.view(event.functions.ownerOf(TOKEN)) == wallet.address
    assert p.view(wallet.functions.lastOperator()) == fans[1].address
    assert p.view(wallet.functions.lastFrom()) == seller.address
    assert p.view(wallet.functions.lastTokenId()) == TOKEN
    assert p.view(wallet.functions.lastData()) == b"\x01\x02"


@pytest.mark.parametrize("hook", [1, 3])  # WrongValue, RevertEmpty
def test_safe_transfer_from_to_a_refusing_contract_reverts(
    p: Protocol,
    event: Contract,
    seller: LocalAccount,
    fans: tuple[LocalAccount, ...],
    wallet_factory: WalletFactory,
    hook: int,
) -> None:
    wallet = wallet_factory(fans[3])
    p.send(wallet.functions.setHook(hook), fans[3])
    with p.reverts(event, "ERC721InvalidReceiver", wallet.address):
        p.send(event.functions.safeTransferFrom(seller.address, wallet.address, TOKEN), seller)


def test_safe_transfer_from_to_a_reverting_receiver_bubbles_its_error(
    p: Protocol,
    event: Contract,
    seller: LocalAccount,
    fans: tuple[LocalAccount, ...],
    wallet_factory: WalletFactory,
) -> None:
    wallet = wallet_factory(fans[3])
    p.send(wallet.functions.setHook(2), fans[3])
    with p.reverts(wallet, "HookRejected", TOKEN):
        p.send(event.functions.safeTransferFrom(seller.address, wallet.address, TOKEN), seller)


def test_safe_transfer_from_to_a_contract_without_hook_reverts(
    p: Protocol, event: Contract, seller: LocalAccount
) -> None:
    # The factory has code but no onERC721Received: the call reverts without data.
    with p.reverts(event, "ERC721InvalidReceiver", p.factory.address):
        p.send(event.functions.safeTransferFrom(seller.address, p.factory.address, TOKEN), seller)


def test_transfer_from_to_a_contract_skips_the_hook(
    p: Protocol,
    event: Contract,
    seller: LocalAccount,
    fans: tuple[LocalAccount, ...],
    wallet_factory: WalletFactory,
) -> None:
    wallet = wallet_factory(fans[3])
    p.send(wallet.functions.setHook(3), fans[3])
    p.send(event.functions.transferFrom(seller.address, wallet.address, TOKEN), seller)
    assert p.view(event.functions.ownerOf(TOKEN)) == wallet.address


def test_withdraw_to_a_contract_that_rejects_ether_reverts(
    p: Protocol, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    wallet = wallet_factory(fans[3])
    spec = EventSpec(event_id=8)
    config = list(p.event_config(spec))
    config[4] = wallet.address  # the organizer is a contract wallet
    receipt = p.send(p.create_event_call(spec, tuple(config)), p.admin)
    (created,) = p.logs(p.factory, "EventCreated", receipt)
    event = p.event_at(created["ticketEvent"])
    p.buy(event, fans[0], nonce=1)
    p.resell(event, fans[0], fans[1], TOKEN, PRICE)
    royalty = PRICE * 500 // 10_000
    p.send(wallet.functions.setOnEther(1, ZERO_ADDRESS, b""), fans[3])
    withdraw = event.encode_abi("withdraw", [])
    with p.reverts(event, "PaymentFailed", wallet.address, royalty):
        p.send(wallet.functions.execute(event.address, withdraw), fans[3])
    p.send(wallet.functions.setOnEther(0, ZERO_ADDRESS, b""), fans[3])
    p.send(wallet.functions.execute(event.address, withdraw), fans[3])
    assert p.balance(wallet.address) == royalty
