"""Packing paid orders into mint batches, and the fee bump of a replacement (pure functions)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.chain.types import Fees, Wei
from backend.config import Settings
from backend.fulfilment.planning import PendingMint, pack


def mint(order_id: int, quantity: int, contract: str = "0xA") -> PendingMint:
    return PendingMint(order_id, 1, contract, 0, 0, "0x" + "11" * 20, quantity)


def shape(batches: list[list[PendingMint]]) -> list[list[int]]:
    return [[m.order_id for m in batch] for batch in batches]


def test_pack_fills_batches_up_to_the_limit_in_order_id_order() -> None:
    mints = [mint(5, 2), mint(1, 3), mint(2, 1), mint(9, 4), mint(7, 1)]

    assert shape(pack(mints, 5)) == [[1, 2], [5, 7], [9]]


def test_pack_never_splits_an_order_larger_than_the_limit() -> None:
    assert shape(pack([mint(1, 1), mint(2, 7), mint(3, 1)], 4)) == [[1], [2], [3]]


def test_pack_keeps_each_event_contract_apart() -> None:
    mints = [mint(1, 1, "0xA"), mint(2, 1, "0xB"), mint(3, 1, "0xA"), mint(4, 1, "0xB")]

    assert shape(pack(mints, 100)) == [[1, 3], [2, 4]]


def test_pack_of_nothing_is_no_batch() -> None:
    assert pack([], 10) == []


def test_bumped_fees_rise_at_least_the_percentage_on_both_caps() -> None:
    fees = Fees(max_fee_per_gas=Wei(2_000_000_001), max_priority_fee_per_gas=Wei(7))

    bumped = fees.bumped(12.5)

    assert bumped.max_fee_per_gas == 2_250_000_002  # rounded up
    assert bumped.max_priority_fee_per_gas == 8
    assert bumped.gas_price is None


def test_bumped_fees_never_fall_below_the_market() -> None:
    fees = Fees(max_fee_per_gas=Wei(10), max_priority_fee_per_gas=Wei(1))
    market = Fees(max_fee_per_gas=Wei(1_000), max_priority_fee_per_gas=Wei(1))

    assert fees.bumped(25, floor=market) == Fees(Wei(1_000), Wei(2))


def test_bumped_legacy_gas_price() -> None:
    assert Fees(gas_price=Wei(100)).bumped(12.5) == Fees(gas_price=Wei(113))


def test_capped_fees_keep_every_price_and_the_tip_under_the_ceiling() -> None:
    fees = Fees(max_fee_per_gas=Wei(900), max_priority_fee_per_gas=Wei(700))

    assert fees.capped(Wei(500)) == Fees(Wei(500), Wei(500))
    assert fees.capped(Wei(1_000)) == fees
    assert Fees(gas_price=Wei(900)).capped(Wei(500)) == Fees(gas_price=Wei(500))


def test_a_replacement_outbids_only_if_it_pays_more_on_every_price() -> None:
    offered = Fees(max_fee_per_gas=Wei(100), max_priority_fee_per_gas=Wei(10))

    assert Fees(Wei(101), Wei(11)).outbids(offered)
    assert not Fees(Wei(101), Wei(10)).outbids(offered)  # the tip did not rise
    assert not offered.outbids(offered)
    assert not Fees(gas_price=Wei(500)).outbids(offered)  # another kind of transaction
    assert Fees(gas_price=Wei(2)).outbids(Fees(gas_price=Wei(1)))


def test_the_fee_ceiling_is_set_in_gwei_and_carried_in_wei() -> None:
    assert Settings(mint_max_fee_per_gas_gwei=1.5).mint_fee_ceiling_wei == 1_500_000_000
    with pytest.raises(ValidationError):
        Settings(mint_max_fee_per_gas_gwei=0)


def test_a_fee_bump_below_what_nodes_accept_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(mint_fee_bump_percent=10)


def test_a_batch_limit_past_the_block_gas_limit_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(mint_batch_max_recipients=1_000)
