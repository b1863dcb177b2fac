"""The resale marketplace's rules (issue 19): sell orders that name their buyer, gifts and the
transfer lock, contract-wallet sellers (ERC-1271), the backend's settlement for card buyers with
the seller's chosen payout rail, and refunds of resold tickets after a cancellation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import TxReceipt

from backend.chain.protocol import SELL_ORDER_TYPES, domain
from tests.contracts.protocol import (
    ETHER,
    RELAYER_ROLE,
    ZERO_ADDRESS,
    Protocol,
)

PRICE = ETHER // 10
CAP = PRICE * 11_000 // 10_000
ROYALTY_BPS = 500
TOKEN = 256  # the first ticket of permit nonce 1

WalletFactory = Callable[[LocalAccount], Contract]


def royalty(price: int) -> int:
    return price * ROYALTY_BPS // 10_000


def fee(receipt: TxReceipt) -> int:
    return int(receipt["gasUsed"] * receipt["effectiveGasPrice"])


@pytest.fixture
def seller(p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]) -> LocalAccount:
    """fans[0], holding ticket TOKEN bought with crypto at face price."""
    p.buy(event, fans[0], nonce=1)
    return fans[0]


# -- a named buyer ----------------------------------------------------------------------------


def test_buy_resale_of_an_order_naming_another_buyer_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    friend, sniper = fans[1], fans[2]
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, buyer=friend.address)
    # Someone who saw the signed order in the mempool can't take the friend's ticket.
    with p.reverts(event, "SellOrderNotForRecipient", TOKEN, friend.address, sniper.address):
        p.send(event.functions.buyResale(order, signature), sniper, value=PRICE)
    p.send(event.functions.buyResale(order, signature), friend, value=PRICE)
    assert p.view(event.functions.ownerOf(TOKEN)) == friend.address


def test_buy_resale_of_an_order_with_an_altered_buyer_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, buyer=fans[1].address)
    # The signature covers the buyer: rewritten, it recovers to some other account.
    message = dict(zip([f["name"] for f in SELL_ORDER_TYPES["SellOrder"]], order, strict=True))
    message["buyer"] = fans[2].address
    signable = encode_typed_data(
        domain(p.w3.eth.chain_id, event.address), SELL_ORDER_TYPES, message
    )
    forged = Account.recover_message(signable, signature=signature)
    with p.reverts(event, "SellOrderSignerNotOwner", forged, seller.address):
        p.send(event.functions.buyResale(tuple(message.values()), signature), fans[2], value=PRICE)


# -- gifts and the transfer lock ----------------------------------------------------------------


def test_buy_resale_of_a_gift_moves_the_ticket_without_royalty(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    friend = fans[1]
    order, signature = p.sell_order(event, seller, TOKEN, 0, buyer=friend.address)
    receipt = p.send(event.functions.buyResale(order, signature), friend)
    assert p.logs(event, "Resold", receipt) == [
        {
            "tokenId": TOKEN,
            "seller": seller.address,
            "buyer": friend.address,
            "payee": seller.address,
            "price": 0,
            "royalty": 0,
        }
    ]
    assert p.view(event.functions.ownerOf(TOKEN)) == friend.address
    assert p.view(event.functions.creditOf(seller.address)) == 0
    assert p.view(event.functions.creditOf(p.organizer.address)) == 0


def test_buy_resale_of_a_gift_without_a_named_buyer_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, 0)
    with p.reverts(event, "GiftWithoutBuyer", TOKEN):
        p.send(event.functions.buyResale(order, signature), fans[1])


def test_buy_resale_of_a_gift_while_transfers_are_locked_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    # A gift is a direct transfer by another name: with a side payment it would dodge the cap
    # and the royalty, which is what the lock is for.
    p.send(event.functions.setTransfersLocked(True), p.organizer)
    order, signature = p.sell_order(event, seller, TOKEN, 0, buyer=fans[1].address)
    with p.reverts(event, "TransfersLocked", TOKEN):
        p.send(event.functions.buyResale(order, signature), fans[1])
    # A priced sale to the same named buyer still goes through, and pays its royalty.
    p.resell(event, seller, fans[1], TOKEN, PRICE)
    assert p.view(event.functions.creditOf(p.organizer.address)) == royalty(PRICE)


# -- contract-wallet sellers (ERC-1271) ---------------------------------------------------------


def safe_with_ticket(
    p: Protocol, event: Contract, wallet_factory: WalletFactory, owner: LocalAccount
) -> Contract:
    """A contract wallet holding ticket TOKEN, bought through it with crypto."""
    wallet = wallet_factory(owner)
    permit, signature = p.permit(event, wallet.address)
    call = event.encode_abi("purchase", [permit, signature])
    p.send(wallet.functions.execute(event.address, call), owner, value=PRICE)
    assert p.view(event.functions.ownerOf(TOKEN)) == wallet.address
    return wallet


def test_buy_resale_of_a_contract_wallets_approved_order_succeeds_while_locked(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    p.send(event.functions.setTransfersLocked(True), p.organizer)
    safe = safe_with_ticket(p, event, wallet_factory, fans[3])
    message = p.sell_order_message(event, TOKEN, PRICE)
    p.send(safe.functions.approveHash(p.sell_order_digest(event, message)), fans[3])

    p.send(event.functions.buyResale(tuple(message.values()), b""), fans[1], value=PRICE)
    assert p.view(event.functions.ownerOf(TOKEN)) == fans[1].address
    assert p.view(event.functions.creditOf(safe.address)) == PRICE - royalty(PRICE)
    receipt = p.send(
        safe.functions.execute(event.address, event.encode_abi("withdraw", [])), fans[3]
    )
    assert p.logs(event, "Withdrawn", receipt) == [
        {"account": safe.address, "amount": PRICE - royalty(PRICE)}
    ]


def test_buy_resale_of_an_order_a_contract_wallet_did_not_approve_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    safe = safe_with_ticket(p, event, wallet_factory, fans[3])
    message = p.sell_order_message(event, TOKEN, PRICE)
    p.send(safe.functions.approveHash(p.sell_order_digest(event, message)), fans[3])
    cheaper = (TOKEN, PRICE // 2, *tuple(message.values())[2:])
    with p.reverts(event, "SellOrderSignerNotOwner", ZERO_ADDRESS, safe.address):
        p.send(event.functions.buyResale(cheaper, b""), fans[1], value=PRICE // 2)


def test_buy_resale_of_a_contract_wallets_order_signed_by_its_owner_key_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    safe = safe_with_ticket(p, event, wallet_factory, fans[3])
    # The key that drives the wallet isn't the wallet: only the wallet's own answer counts.
    order, signature = p.sell_order(event, fans[3], TOKEN, PRICE)
    with p.reverts(event, "SellOrderSignerNotOwner", fans[3].address, safe.address):
        p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)


# -- buyResaleFor: the backend settles for a card buyer -------------------------------------------


def test_buy_resale_for_a_card_buyer_of_an_ether_rail_order_credits_the_seller(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    card_buyer = fans[2]
    order, signature = p.sell_order(event, seller, TOKEN, CAP)
    receipt = p.send(
        event.functions.buyResaleFor(order, signature, card_buyer.address), p.relayer, value=CAP
    )
    assert p.logs(event, "Resold", receipt) == [
        {
            "tokenId": TOKEN,
            "seller": seller.address,
            "buyer": card_buyer.address,
            "payee": seller.address,
            "price": CAP,
            "royalty": royalty(CAP),
        }
    ]
    assert p.view(event.functions.ownerOf(TOKEN)) == card_buyer.address
    assert p.view(event.functions.creditOf(seller.address)) == CAP - royalty(CAP)
    assert p.view(event.functions.creditOf(p.organizer.address)) == royalty(CAP)
    assert p.view(event.functions.creditOf(p.relayer.address)) == 0
    assert p.balance(event.address) == PRICE + CAP


def test_buy_resale_for_a_card_buyer_of_a_card_rail_order_nets_the_treasurys_proceeds(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    # A card-minted ticket whose seller listed it to be paid back on their card: the payee is
    # the backend's treasury, here the relayer itself, so it pays only the royalty.
    card_seller, card_buyer = fans[0], fans[2]
    p.mint(event, 9, [card_seller.address])
    order, signature = p.sell_order(event, card_seller, 9 * 256, CAP, payee=p.relayer.address)
    before = p.balance(p.relayer.address)
    receipt = p.send(
        event.functions.buyResaleFor(order, signature, card_buyer.address),
        p.relayer,
        value=royalty(CAP),
    )
    assert p.logs(event, "Resold", receipt)[0]["payee"] == p.relayer.address
    assert p.view(event.functions.ownerOf(9 * 256)) == card_buyer.address
    assert p.balance(p.relayer.address) == before - royalty(CAP) - fee(receipt)
    # Paid once, off chain: nothing is credited to the seller or the treasury on chain.
    assert p.view(event.functions.creditOf(card_seller.address)) == 0
    assert p.view(event.functions.creditOf(p.relayer.address)) == 0
    assert p.view(event.functions.creditOf(p.organizer.address)) == royalty(CAP)
    assert p.balance(event.address) == royalty(CAP)


@pytest.mark.parametrize("paid", [0, PRICE])
def test_buy_resale_for_a_card_rail_order_paying_the_full_price_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], paid: int
) -> None:
    p.mint(event, 9, [fans[0].address])
    order, signature = p.sell_order(event, fans[0], 9 * 256, PRICE, payee=p.relayer.address)
    with p.reverts(event, "WrongPayment", royalty(PRICE), paid):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address), p.relayer, value=paid
        )


def test_buy_resale_of_a_card_rail_order_by_a_crypto_buyer_credits_the_treasury(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 9, [fans[0].address])
    order, signature = p.sell_order(event, fans[0], 9 * 256, PRICE, payee=p.relayer.address)
    p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)
    assert p.view(event.functions.creditOf(p.relayer.address)) == PRICE - royalty(PRICE)
    assert p.view(event.functions.creditOf(fans[0].address)) == 0


def test_buy_resale_for_a_recipient_other_than_the_named_buyer_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, buyer=fans[1].address)
    with p.reverts(event, "SellOrderNotForRecipient", TOKEN, fans[1].address, fans[2].address):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address),
            p.relayer,
            value=PRICE,
        )


def test_buy_resale_for_the_seller_reverts(
    p: Protocol, event: Contract, seller: LocalAccount
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    with p.reverts(event, "BuyerIsSeller", seller.address):
        p.send(
            event.functions.buyResaleFor(order, signature, seller.address), p.relayer, value=PRICE
        )


def test_buy_resale_for_the_zero_address_reverts(
    p: Protocol, event: Contract, seller: LocalAccount
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    with p.reverts(event, "ERC721InvalidReceiver", ZERO_ADDRESS):
        p.send(event.functions.buyResaleFor(order, signature, ZERO_ADDRESS), p.relayer, value=PRICE)


def test_buy_resale_for_above_the_cap_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, CAP + 1)
    with p.reverts(event, "PriceAboveCap", CAP + 1, CAP):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address),
            p.relayer,
            value=CAP + 1,
        )


def test_buy_resale_for_a_filled_order_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    p.send(event.functions.buyResale(order, signature), fans[1], value=PRICE)
    with p.reverts(event, "SellOrderInvalidated", TOKEN, 0, 1):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address),
            p.relayer,
            value=PRICE,
        )


def test_buy_resale_for_after_the_order_deadline_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    deadline = p.now() + 100
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, deadline=deadline)
    p.travel_to(deadline + 1)
    with p.reverts(event, "SellOrderExpired", TOKEN, deadline):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address),
            p.relayer,
            value=PRICE,
        )


def test_buy_resale_for_after_the_event_ends_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    event_end = p.view(event.functions.eventInfo())[4]
    order, signature = p.sell_order(event, seller, TOKEN, PRICE, deadline=event_end + 600)
    p.travel_to(event_end)
    with p.reverts(event, "ResaleClosed", event_end):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address),
            p.relayer,
            value=PRICE,
        )


def test_buy_resale_for_by_an_account_without_the_relayer_role_reverts(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    order, signature = p.sell_order(event, seller, TOKEN, PRICE)
    with p.reverts(event, "AccessControlUnauthorizedAccount", fans[1].address, RELAYER_ROLE):
        p.send(
            event.functions.buyResaleFor(order, signature, fans[2].address), fans[1], value=PRICE
        )


# -- refunds of resold tickets -------------------------------------------------------------------


def test_claim_refund_after_resales_pays_only_the_current_holder_the_face_price(
    p: Protocol, event: Contract, seller: LocalAccount, fans: tuple[LocalAccount, ...]
) -> None:
    # Bought at face, resold at the cap, resold to a card buyer by the backend, then cancelled.
    p.resell(event, seller, fans[1], TOKEN, CAP)
    order, signature = p.sell_order(event, fans[1], TOKEN, CAP)
    p.send(event.functions.buyResaleFor(order, signature, fans[2].address), p.relayer, value=CAP)
    p.send(event.functions.cancelEvent(), p.organizer)

    for previous in (seller, fans[1]):
        with p.reverts(event, "NotTicketOwner", TOKEN, previous.address):
            p.send(event.functions.claimRefund(TOKEN), previous)
    receipt = p.send(event.functions.claimRefund(TOKEN), fans[2])
    assert p.logs(event, "RefundClaimed", receipt) == [
        {"tokenId": TOKEN, "owner": fans[2].address, "amount": PRICE}
    ]
    with p.reverts(event, "NotTicketOwner", TOKEN, fans[2].address):
        p.send(event.functions.claimRefund(TOKEN), fans[2])
    # What is left covers every credit exactly: the sellers' proceeds and the royalties.
    credits = [p.view(event.functions.creditOf(a.address)) for a in (seller, fans[1], p.organizer)]
    assert credits == [CAP - royalty(CAP), CAP - royalty(CAP), 2 * royalty(CAP)]
    assert p.balance(event.address) == sum(credits)
    assert p.view(event.functions.tier(0))[4] == 0
