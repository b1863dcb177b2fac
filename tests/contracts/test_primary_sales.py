"""Primary sales: tier configuration, card mints in packed batches, crypto purchases with
permits."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from backend.chain.protocol import CardMint, encode_mint_batch
from tests.contracts.protocol import (
    ETHER,
    GWEI,
    MINTER_ROLE,
    ORGANIZER_ROLE,
    START,
    ZERO_ADDRESS,
    EventSpec,
    Protocol,
    digest_of,
)

PRICE = ETHER // 10


def tier_tuple(
    price: int = PRICE, supply: int = 10, limit: int = 0, name: str = "t"
) -> tuple[int, int, int, bytes]:
    return (price, supply, limit, digest_of(name))


# -- initialize and views -------------------------------------------------------------------------


def test_initialize_records_the_configuration(p: Protocol, event: Contract) -> None:
    spec = EventSpec()
    assert p.view(event.functions.eventInfo()) == [
        1,
        p.organizer.address,
        spec.sale_start,
        spec.sale_end,
        spec.event_end,
        11_000,
        500,
        1,
        False,
        False,
        False,
        False,
    ]
    assert p.view(event.functions.tier(0)) == [PRICE, 100, 0, 0, 0, digest_of("tier")]
    assert p.view(event.functions.MAX_ORDER_QUANTITY()) == 255


def test_tier_of_an_unknown_tier_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "UnknownTier", 1):
        p.view(event.functions.tier(1))


def test_primary_tickets_of_a_tier_beyond_max_tiers_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "UnknownTier", 16):
        p.view(event.functions.primaryTicketsOf(p.admin.address, 16))


# -- configureTier --------------------------------------------------------------------------------


def test_configure_tier_adds_the_next_tier(p: Protocol, event: Contract) -> None:
    receipt = p.send(
        event.functions.configureTier(1, tier_tuple(5 * GWEI, 7, 2, "vip")), p.organizer
    )
    assert p.logs(event, "TierConfigured", receipt) == [
        {
            "tierId": 1,
            "price": 5 * GWEI,
            "supply": 7,
            "perWalletLimit": 2,
            "metadataDigest": digest_of("vip"),
        }
    ]
    assert p.view(event.functions.tier(1)) == [5 * GWEI, 7, 0, 2, 0, digest_of("vip")]
    assert p.view(event.functions.eventInfo())[7] == 2


def test_configure_tier_changes_an_existing_tier_but_keeps_issued(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address, fans[1].address])
    p.send(event.functions.configureTier(0, tier_tuple(2 * PRICE, 2, 1, "new")), p.organizer)
    assert p.view(event.functions.tier(0)) == [2 * PRICE, 2, 2, 1, 0, digest_of("new")]


def test_configure_tier_with_new_metadata_emits_a_batch_metadata_update(
    p: Protocol, event: Contract
) -> None:
    receipt = p.send(
        event.functions.configureTier(0, tier_tuple(PRICE, 100, 0, "moved venue")), p.organizer
    )
    # A tier's tickets are spread over the whole id space (orderId * 256 + index).
    assert p.logs(event, "BatchMetadataUpdate", receipt) == [
        {"_fromTokenId": 0, "_toTokenId": 2**256 - 1}
    ]


def test_configure_tier_with_unchanged_metadata_emits_no_metadata_update(
    p: Protocol, event: Contract
) -> None:
    receipt = p.send(
        event.functions.configureTier(0, tier_tuple(2 * PRICE, 100, 0, "tier")), p.organizer
    )
    assert p.logs(event, "BatchMetadataUpdate", receipt) == []
    # Nor does a new tier, which has no tickets yet.
    receipt = p.send(event.functions.configureTier(1, tier_tuple(PRICE, 5, 0, "vip")), p.organizer)
    assert p.logs(event, "BatchMetadataUpdate", receipt) == []


def test_configure_tier_with_a_gap_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "InvalidTierId", 2, 1):
        p.send(event.functions.configureTier(2, tier_tuple()), p.organizer)


def test_configure_tier_below_issued_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address, fans[1].address])
    with p.reverts(event, "SupplyBelowIssued", 0, 1, 2):
        p.send(event.functions.configureTier(0, tier_tuple(supply=1)), p.organizer)


@pytest.mark.parametrize("price", [GWEI + 1, 2**72])
def test_configure_tier_with_an_invalid_price_reverts(
    p: Protocol, event: Contract, price: int
) -> None:
    with p.reverts(event, "InvalidPrice", price):
        p.send(event.functions.configureTier(0, tier_tuple(price=price)), p.organizer)


def test_configure_tier_without_metadata_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "MissingMetadata", 1):
        p.send(event.functions.configureTier(1, (PRICE, 1, 0, b"\x00" * 32)), p.organizer)


def test_configure_tier_above_total_supply_limit_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "TotalSupplyTooLarge", 2**32 - 1 + 100):
        p.send(event.functions.configureTier(1, tier_tuple(supply=2**32 - 1)), p.organizer)


def test_configure_tier_by_a_non_organizer_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "AccessControlUnauthorizedAccount", fans[0].address, ORGANIZER_ROLE):
        p.send(event.functions.configureTier(1, tier_tuple()), fans[0])


def test_configure_tier_after_cancellation_reverts(p: Protocol, event: Contract) -> None:
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "EventIsCancelled"):
        p.send(event.functions.configureTier(1, tier_tuple()), p.organizer)


def test_configure_tier_after_settlement_reverts(p: Protocol, event: Contract) -> None:
    p.travel_to(EventSpec().event_end)
    p.send(event.functions.settle(), p.organizer)
    with p.reverts(event, "EventAlreadySettled"):
        p.send(event.functions.configureTier(1, tier_tuple()), p.organizer)


def test_configure_tier_while_paused_keeps_the_new_tier_paused(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.pause(), p.organizer)
    p.send(event.functions.configureTier(1, tier_tuple()), p.organizer)
    with p.reverts(event, "SalesArePaused"):
        p.mint(event, 1, [fans[0].address], tier=1)


# -- mintBatch --------------------------------------------------------------------------------


def test_mint_batch_mints_every_order_of_a_batch(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(1, tier_tuple(supply=5, limit=2)), p.organizer)
    a, b, c = (f.address for f in fans[:3])
    receipt = p.mint_batch(
        event,
        [CardMint(7, 0, (a, b, a)), CardMint(2**64 - 1, 1, (c,)), CardMint(9, 1, (c,))],
    )
    first = 2**64 - 1 << 8
    assert p.logs(event, "Transfer", receipt) == [
        {"from": ZERO_ADDRESS, "to": a, "tokenId": 7 * 256},
        {"from": ZERO_ADDRESS, "to": b, "tokenId": 7 * 256 + 1},
        {"from": ZERO_ADDRESS, "to": a, "tokenId": 7 * 256 + 2},
        {"from": ZERO_ADDRESS, "to": c, "tokenId": first},
        {"from": ZERO_ADDRESS, "to": c, "tokenId": 9 * 256},
    ]
    assert p.view(event.functions.ownerOf(7 * 256 + 1)) == b
    assert p.view(event.functions.balanceOf(a)) == 2
    assert p.view(event.functions.balanceOf(c)) == 2
    assert p.view(event.functions.ticket(first)) == [1, False, 0, 0]
    assert p.view(event.functions.ticket(7 * 256)) == [0, False, 0, 0]
    assert p.view(event.functions.tier(0))[2] == 3
    assert p.view(event.functions.tier(1))[2:5] == [2, 2, 0]
    assert p.view(event.functions.orderMinted(7))
    assert p.view(event.functions.orderMinted(2**64 - 1))
    assert not p.view(event.functions.orderMinted(8))
    assert not p.view(event.functions.orderMinted(2**64))
    # Only tiers with a per-wallet limit count primary tickets.
    assert p.view(event.functions.primaryTicketsOf(c, 1)) == 2
    assert p.view(event.functions.primaryTicketsOf(a, 0)) == 0


def test_mint_batch_of_255_tickets_in_one_order_succeeds(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(0, tier_tuple(supply=300)), p.organizer)
    recipients = [fans[i % 4].address for i in range(255)]
    p.mint(event, 3, recipients)
    assert p.view(event.functions.ownerOf(3 * 256 + 254)) == recipients[254]
    assert p.view(event.functions.tier(0))[2] == 255


def test_mint_batch_with_a_reused_order_id_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 7, [fans[0].address])
    with p.reverts(event, "OrderAlreadyMinted", 7):
        p.mint_batch(
            event, [CardMint(8, 0, (fans[1].address,)), CardMint(7, 0, (fans[1].address,))]
        )
    assert not p.view(event.functions.orderMinted(8))


def test_mint_batch_with_an_order_id_twice_in_one_batch_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    order = CardMint(7, 0, (fans[0].address,))
    with p.reverts(event, "OrderAlreadyMinted", 7):
        p.mint_batch(event, [order, order])


def test_mint_batch_with_an_order_id_used_by_a_purchase_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=11)
    with p.reverts(event, "OrderAlreadyMinted", 11):
        p.mint(event, 11, [fans[1].address])


@pytest.mark.parametrize(
    ("batch_hex", "offset"),
    [
        ("00" * 5, 0),  # header cut short
        ("0000000000000001" + "00" + "02" + "11" * 39, 0),  # second recipient cut short
        ("0000000000000001" + "00" + "01" + "11" * 20 + "00" * 9, 30),  # second header cut short
        ("0000000000000001" + "00" + "01" + "11" * 20 + "0000000000000002" + "0001", 30),
    ],
)
def test_mint_batch_that_is_truncated_reverts(
    p: Protocol, event: Contract, batch_hex: str, offset: int
) -> None:
    with p.reverts(event, "MalformedBatch", offset):
        p.send(event.functions.mintBatch(bytes.fromhex(batch_hex)), p.minter)


def test_mint_batch_of_an_empty_order_reverts(p: Protocol, event: Contract) -> None:
    with p.reverts(event, "InvalidQuantity", 5, 0):
        p.send(event.functions.mintBatch(bytes.fromhex("0000000000000005" + "00" + "00")), p.minter)


def test_mint_batch_for_an_unknown_tier_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "UnknownTier", 3):
        p.mint(event, 1, [fans[0].address], tier=3)


def test_mint_batch_beyond_supply_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(0, tier_tuple(supply=3)), p.organizer)
    p.mint(event, 1, [fans[0].address, fans[1].address])
    with p.reverts(event, "TierSoldOut", 0, 1):
        p.mint(event, 2, [fans[2].address, fans[3].address])


def test_mint_batch_beyond_the_wallet_limit_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(0, tier_tuple(limit=2)), p.organizer)
    p.mint(event, 1, [fans[0].address])
    with p.reverts(event, "WalletLimitExceeded", fans[0].address, 0, 2):
        p.mint(event, 2, [fans[1].address, fans[0].address, fans[0].address])


def test_mint_batch_to_the_zero_address_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "ERC721InvalidReceiver", ZERO_ADDRESS):
        p.mint(event, 1, [fans[0].address, ZERO_ADDRESS])


def test_mint_batch_while_paused_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.pause(), p.organizer)
    with p.reverts(event, "SalesArePaused"):
        p.mint(event, 1, [fans[0].address])


def test_mint_batch_after_cancellation_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "EventIsCancelled"):
        p.mint(event, 1, [fans[0].address])


def test_mint_batch_after_settlement_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.travel_to(EventSpec().event_end)
    p.send(event.functions.settle(), p.organizer)
    with p.reverts(event, "EventAlreadySettled"):
        p.mint(event, 1, [fans[0].address])


def test_mint_batch_by_a_non_minter_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    batch = encode_mint_batch([CardMint(1, 0, (fans[0].address,))])
    with p.reverts(event, "AccessControlUnauthorizedAccount", p.organizer.address, MINTER_ROLE):
        p.send(event.functions.mintBatch(batch), p.organizer)


# -- purchase ---------------------------------------------------------------------------------


def test_purchase_issues_tickets_and_holds_payment_in_escrow(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    buyer = fans[0]
    before = p.balance(buyer.address)
    receipt = p.buy(event, buyer, quantity=3, nonce=77)
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]

    assert p.logs(event, "Purchased", receipt) == [
        {"nonce": 77, "buyer": buyer.address, "tierId": 0, "quantity": 3, "paid": 3 * PRICE}
    ]
    assert [log["tokenId"] for log in p.logs(event, "Transfer", receipt)] == [
        77 * 256,
        77 * 256 + 1,
        77 * 256 + 2,
    ]
    assert p.balance(buyer.address) == before - 3 * PRICE - fee
    assert p.balance(event.address) == 3 * PRICE
    assert p.view(event.functions.tier(0))[2:5] == [3, 0, 3 * PRICE]
    assert p.view(event.functions.ticket(77 * 256 + 2)) == [0, False, PRICE, 0]
    assert p.view(event.functions.balanceOf(buyer.address)) == 3
    assert p.view(event.functions.orderMinted(77))


def test_purchase_at_a_signed_price_other_than_face_escrows_what_was_paid(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=1, unit_price=PRICE // 2)
    assert p.view(event.functions.ticket(256))[2] == PRICE // 2
    assert p.view(event.functions.tier(0))[4] == PRICE // 2


def test_purchase_counts_against_the_wallet_limit(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(0, tier_tuple(limit=3)), p.organizer)
    p.mint(event, 1, [fans[0].address])
    p.buy(event, fans[0], quantity=2, nonce=2)
    assert p.view(event.functions.primaryTicketsOf(fans[0].address, 0)) == 3
    with p.reverts(event, "WalletLimitExceeded", fans[0].address, 0, 3):
        p.buy(event, fans[0], nonce=3)


def test_purchase_before_the_sale_starts_reverts(
    p: Protocol, fans: tuple[LocalAccount, ...]
) -> None:
    event = p.create_event(EventSpec(event_id=5, sale_start=START + 3600))
    with p.reverts(event, "SaleNotStarted", START + 3600):
        p.buy(event, fans[0])


def test_purchase_after_the_sale_ends_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    sale_end = EventSpec().sale_end
    p.travel_to(sale_end)
    permit, signature = p.permit(event, fans[0].address, deadline=sale_end + 600)
    with p.reverts(event, "SaleEnded", sale_end):
        p.send(event.functions.purchase(permit, signature), fans[0], value=PRICE)


@pytest.mark.parametrize("quantity", [0, 256])
def test_purchase_of_an_invalid_quantity_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], quantity: int
) -> None:
    with p.reverts(event, "InvalidQuantity", 4, quantity):
        p.buy(event, fans[0], quantity=quantity, nonce=4)


def test_purchase_with_a_nonce_beyond_64_bits_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "OrderIdTooLarge", 2**64):
        p.buy(event, fans[0], nonce=2**64)


@pytest.mark.parametrize("paid", [0, PRICE - 1, PRICE + 1])
def test_purchase_with_inexact_payment_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], paid: int
) -> None:
    permit, signature = p.permit(event, fans[0].address)
    with p.reverts(event, "WrongPayment", PRICE, paid):
        p.send(event.functions.purchase(permit, signature), fans[0], value=paid)


def test_purchase_at_a_price_not_in_whole_gwei_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "InvalidPrice", GWEI + 1):
        p.buy(event, fans[0], unit_price=GWEI + 1)


def test_purchase_from_an_unknown_tier_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "UnknownTier", 15):
        p.buy(event, fans[0], tier=15)


def test_purchase_beyond_supply_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(0, tier_tuple(supply=2)), p.organizer)
    with p.reverts(event, "TierSoldOut", 0, 2):
        p.buy(event, fans[0], quantity=3)


def test_purchase_while_paused_reverts_and_resumes_after_unpause(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.pause(), p.organizer)
    with p.reverts(event, "SalesArePaused"):
        p.buy(event, fans[0])
    p.send(event.functions.unpause(), p.organizer)
    p.buy(event, fans[0])
    assert p.view(event.functions.ownerOf(256)) == fans[0].address


def test_purchase_after_cancellation_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "EventIsCancelled"):
        p.buy(event, fans[0])
