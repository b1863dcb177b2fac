"""On anvil, where transactions can wait unmined: a mint stuck on too low a fee is replaced
with higher fees and whichever version is mined wins; the API's own transactions (event
creation) never take a nonce a stored batch holds."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from eth_account import Account

from backend.chain.client import ChainClient
from backend.chain.devnet import Devnet
from backend.db.base import utcnow
from backend.fulfilment.models import MINED
from backend.fulfilment.tracker import BatchTracker
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.worker import Worker
from tests.fulfilment.conftest import anvil_rpc
from tests.fulfilment.factories import create_event, paid_orders
from tests.fulfilment.helpers import batches, crash_after_storing, mint_txs, orders

pytestmark = [pytest.mark.anvil, pytest.mark.db, pytest.mark.slow]

GWEI = 10**9


def later_tracker(runtime: Runtime) -> BatchTracker:
    """A tracker whose clock says every transaction has waited past the replacement delay."""
    wait = timedelta(seconds=runtime.settings.mint_replace_after_seconds + 1)
    return BatchTracker(
        runtime.sessions, runtime.chain, runtime.settings, clock=lambda: utcnow() + wait
    )


def stuck_batch(runtime: Runtime, devnet: Devnet) -> list[int]:
    """Two paid orders whose batch is sent with the fees of a quiet chain, then priced out: the
    next block's base fee is far above what it offers."""
    order_ids = paid_orders(runtime, create_event(runtime), [2, 1])
    anvil_rpc(devnet.rpc_url, "evm_setAutomine", False)
    Worker(runtime).run_once()
    anvil_rpc(devnet.rpc_url, "anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
    anvil_rpc(devnet.rpc_url, "evm_mine")
    [batch] = batches(runtime)
    [original] = mint_txs(runtime, batch.id)
    assert runtime.chain.transaction_receipt(original.tx_hash) is None
    return order_ids


def test_stuck_mint_is_replaced_with_higher_fees_and_the_replacement_recorded(
    anvil_runtime: Runtime, devnet: Devnet
) -> None:
    order_ids = stuck_batch(anvil_runtime, devnet)
    tracker = later_tracker(anvil_runtime)

    assert tracker.advance() == 0
    [batch] = batches(anvil_runtime)
    original, replacement = mint_txs(anvil_runtime, batch.id)
    assert original.max_fee_per_gas and original.max_priority_fee_per_gas
    assert replacement.max_fee_per_gas and replacement.max_priority_fee_per_gas
    assert replacement.max_fee_per_gas * 1000 >= original.max_fee_per_gas * 1125
    assert replacement.max_priority_fee_per_gas * 1000 >= original.max_priority_fee_per_gas * 1125
    # Priced for the block it has to get into, not just 25% over a fee that was far too low.
    assert replacement.max_fee_per_gas > 100 * GWEI
    anvil_rpc(devnet.rpc_url, "evm_mine")

    assert tracker.advance() == 1
    [batch] = batches(anvil_runtime)
    assert (batch.status, batch.tx_hash, batch.nonce) == (MINED, replacement.tx_hash, batch.nonce)
    assert {o.mint_tx_hash for o in orders(anvil_runtime, order_ids)} == {replacement.tx_hash}
    assert {o.status for o in orders(anvil_runtime, order_ids)} == {sales.FULFILLED}


def test_original_mined_instead_of_its_replacement_is_the_one_recorded(
    anvil_runtime: Runtime, devnet: Devnet
) -> None:
    order_ids = stuck_batch(anvil_runtime, devnet)
    tracker = later_tracker(anvil_runtime)
    tracker.advance()
    [batch] = batches(anvil_runtime)
    original, replacement = mint_txs(anvil_runtime, batch.id)
    # The replacement never made it (another node had only the original), and fees fell back.
    anvil_rpc(devnet.rpc_url, "anvil_dropTransaction", replacement.tx_hash)
    anvil_rpc(devnet.rpc_url, "anvil_setNextBlockBaseFeePerGas", hex(1))
    anvil_rpc(devnet.rpc_url, "evm_mine")
    assert anvil_runtime.chain.broadcast(original.raw_tx) is None
    anvil_rpc(devnet.rpc_url, "evm_mine")

    assert tracker.advance() == 1
    [batch] = batches(anvil_runtime)
    assert (batch.status, batch.tx_hash) == (MINED, original.tx_hash)
    assert {o.mint_tx_hash for o in orders(anvil_runtime, order_ids)} == {original.tx_hash}


def test_event_created_while_a_stored_batch_is_unsent_takes_the_next_nonce(
    anvil_runtime: Runtime, devnet: Devnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_ids = paid_orders(anvil_runtime, create_event(anvil_runtime), [1, 2])
    stored = crash_after_storing(anvil_runtime, monkeypatch)
    assert anvil_runtime.chain.pending_nonce_count() == stored.nonce

    # The API deploys another event before the worker is back: its transaction must neither
    # take the batch's nonce nor wait behind it (the stored batch is sent first).
    create_event(anvil_runtime, name="Next night")

    [tx] = mint_txs(anvil_runtime, stored.id)
    assert anvil_runtime.chain.transaction_receipt(tx.tx_hash) is not None
    assert anvil_runtime.chain.mined_nonce_count() == stored.nonce + 2
    Worker(anvil_runtime).run_once()
    [batch] = batches(anvil_runtime)
    assert (batch.status, batch.tx_hash) == (MINED, tx.tx_hash)
    assert {o.status for o in orders(anvil_runtime, order_ids)} == {sales.FULFILLED}


def test_a_replacement_offers_no_more_than_the_fee_ceiling(
    anvil_runtime: Runtime, devnet: Devnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anvil_runtime.settings, "mint_max_fee_per_gas_gwei", 50)
    stuck_batch(anvil_runtime, devnet)

    later_tracker(anvil_runtime).advance()

    [batch] = batches(anvil_runtime)
    original, replacement = mint_txs(anvil_runtime, batch.id)
    # The market (a 100 gwei base fee) asks for more; the operator's ceiling wins.
    assert original.max_fee_per_gas is not None and original.max_fee_per_gas < 50 * GWEI
    assert replacement.max_fee_per_gas == 50 * GWEI
    assert replacement.max_priority_fee_per_gas is not None
    assert replacement.max_priority_fee_per_gas <= 50 * GWEI


def test_a_batch_at_the_fee_ceiling_waits_for_fees_to_fall(
    anvil_runtime: Runtime,
    devnet: Devnet,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(anvil_runtime.settings, "mint_max_fee_per_gas_gwei", 50)
    order_ids = paid_orders(anvil_runtime, create_event(anvil_runtime), [2, 1])
    anvil_rpc(devnet.rpc_url, "evm_setAutomine", False)
    anvil_rpc(devnet.rpc_url, "anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
    anvil_rpc(devnet.rpc_url, "evm_mine")

    Worker(anvil_runtime).run_once()  # a spike already: the first offer is capped too
    tracker = later_tracker(anvil_runtime)
    caplog.set_level(logging.DEBUG, logger="fairtix.fulfilment")
    tracker.advance()
    tracker.advance()
    tracker.advance()
    # anvil refuses it each pass; the same refusal is news once, not every pass.
    resent = [r for r in caplog.records if r.getMessage() == "mint transaction sent again"]
    assert [r.levelno for r in resent] == [logging.INFO, logging.DEBUG, logging.DEBUG]

    [batch] = batches(anvil_runtime)
    [only] = mint_txs(anvil_runtime, batch.id)
    assert only.max_fee_per_gas == 50 * GWEI
    warnings = [r for r in caplog.records if "fee ceiling" in r.getMessage()]
    assert len(warnings) == 1  # said once, not every pass

    # Fees fall. anvil refused the underpriced transaction outright (geth would have kept
    # it): the tracker sends it again as stored, and it is mined.
    anvil_rpc(devnet.rpc_url, "anvil_setNextBlockBaseFeePerGas", hex(GWEI))
    anvil_rpc(devnet.rpc_url, "evm_mine")
    tracker.advance()
    anvil_rpc(devnet.rpc_url, "evm_mine")

    assert tracker.advance() == 1
    [batch] = batches(anvil_runtime)
    assert (batch.status, batch.tx_hash) == (MINED, only.tx_hash)
    assert {o.status for o in orders(anvil_runtime, order_ids)} == {sales.FULFILLED}


def test_a_stuck_batch_of_a_rotated_out_key_waits_as_stored_and_is_said_once(
    anvil_runtime: Runtime, devnet: Devnet, caplog: pytest.LogCaptureFixture
) -> None:
    order_ids = stuck_batch(anvil_runtime, devnet)
    # The worker now signs with another key: it can't re-sign the old key's transaction.
    rotated = replace(anvil_runtime, chain=ChainClient(anvil_runtime.chain._w3, Account.create()))
    tracker = later_tracker(rotated)

    with caplog.at_level(logging.WARNING, logger="fairtix.fulfilment"):
        assert tracker.advance() == 0
        assert tracker.advance() == 0
    [batch] = batches(anvil_runtime)
    assert len(mint_txs(anvil_runtime, batch.id)) == 1  # not replaced
    said = [r for r in caplog.records if "key this worker does not hold" in r.getMessage()]
    assert len(said) == 1
    # Fees fall: the old key's transaction, sent again as stored if the node let it go, is mined.
    anvil_rpc(devnet.rpc_url, "anvil_setNextBlockBaseFeePerGas", hex(GWEI))
    anvil_rpc(devnet.rpc_url, "evm_mine")
    tracker.advance()
    anvil_rpc(devnet.rpc_url, "evm_mine")

    assert tracker.advance() == 1
    assert {o.status for o in orders(anvil_runtime, order_ids)} == {sales.FULFILLED}
