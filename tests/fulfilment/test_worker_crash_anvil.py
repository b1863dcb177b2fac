"""Crash test: `fairtix worker` killed with SIGKILL at random points while it mints 200 card
orders on anvil, and started again each time. Every paid order must end fulfilled exactly once:
none lost, none minted twice, each recorded with the transaction that really minted it.

Blocks come every second and hold one batch, so at any moment batches are stored but
unsent, sent but unmined, mined but unrecorded, or being replaced with higher fees: the kills
land between all of those steps. Once, while the worker is down, another sender with the same
key takes the nonce of the batch next in line. The seed makes the kill points repeatable.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_typing import HexStr
from sqlalchemy import func, select
from web3 import Web3
from web3.exceptions import Web3RPCError

from backend.catalog.models import Event
from backend.chain.artifacts import load_artifact
from backend.chain.client import connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.chain.protocol import order_of
from backend.config import REPO_ROOT, Settings
from backend.db.engine import transaction
from backend.fulfilment.models import FAILED, SENT, MintBatch, MintTx
from backend.outbox import OutboxMessage
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket
from tests.fulfilment.conftest import anvil_rpc
from tests.fulfilment.factories import create_event, paid_orders

pytestmark = [pytest.mark.anvil, pytest.mark.db, pytest.mark.slow]

# Another seed explores other kill points: FAIRTIX_CRASH_TEST_SEED=7 pytest tests/fulfilment
SEED = int(os.environ.get("FAIRTIX_CRASH_TEST_SEED", "20261129"))
ORDERS = 200
KILLS = 5
BATCH_TICKETS = 20
# Room for one batch of 20 tickets (about 1M gas) per block.
BLOCK_GAS_LIMIT = 1_300_000
DEADLINE_SECONDS = 150
# After this kill a stranger takes the nonce of the batch next in line (see _send_as_stranger).
STRANGER_AFTER_KILL = 2
GWEI = 10**9


def test_worker_killed_at_random_points_fulfils_every_order_exactly_once(
    anvil_runtime: Runtime, anvil_settings: Settings, devnet: Devnet, tmp_path: Path
) -> None:
    if os.environ.get("CI") == "true" and anvil_settings.database_url.startswith("sqlite"):
        # CI runs it once, in the PostgreSQL pass: production's database, where the nonce lock
        # is an advisory lock and claims skip locked rows. Locally it runs on either.
        pytest.skip("under CI the crash test runs in the PostgreSQL pass")
    rng = random.Random(SEED)
    runtime = anvil_runtime
    events = [create_event(runtime, supply=600, name=f"Crash night {n}") for n in (1, 2)]
    order_ids: list[int] = []
    for _ in range(ORDERS):
        order_ids += paid_orders(runtime, rng.choice(events), [rng.randint(1, 4)], rng)
    anvil_rpc(devnet.rpc_url, "evm_setBlockGasLimit", hex(BLOCK_GAS_LIMIT))
    anvil_rpc(devnet.rpc_url, "evm_setIntervalMining", 1)

    started = time.monotonic()
    log_path = tmp_path / "worker.log"
    kills: list[dict[str, int]] = []
    robbed: int | None = None
    worker = _start_worker(anvil_settings, log_path)
    try:
        while len(kills) < KILLS and not _all_done(runtime, order_ids):
            # Kill only once this worker is at work (past its start-up), at a random moment.
            before = _progress(runtime)
            _wait_for(lambda: _progress(runtime) != before, worker, log_path)  # noqa: B023
            time.sleep(rng.uniform(0.0, 1.5))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills.append(_snapshot(runtime))
            if len(kills) == STRANGER_AFTER_KILL:
                robbed = _send_as_stranger(runtime)
            worker = _start_worker(anvil_settings, log_path)
        _wait_for(lambda: _all_done(runtime, order_ids), worker, log_path)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    elapsed = time.monotonic() - started

    _assert_fulfilled_exactly_once(runtime, order_ids, events)
    if robbed is not None:
        # The batch whose nonce the stranger took ended without minting; its orders were
        # queued again (and, as checked above, fulfilled once by a later batch).
        with transaction(runtime.sessions) as session:
            lost = session.get(MintBatch, robbed)
            assert lost is not None and lost.status == FAILED
            assert lost.failure == f"nonce {lost.nonce} was used by another transaction"
    with transaction(runtime.sessions) as session:
        batches = Counter(session.scalars(select(MintBatch.status)))
        replacements = int(session.scalar(select(func.count()).select_from(MintTx)) or 0) - sum(
            batches.values()
        )
    print(
        f"\ncrash test: {ORDERS} orders, {len(kills)} kills in {elapsed:.1f}s; "
        f"at each kill (fulfilled orders, unfinished batches): "
        f"{[(k['fulfilled'], k['unfinished']) for k in kills]}; "
        f"batches {dict(batches)}, fee replacements {replacements}, "
        f"batch whose nonce a stranger took: {robbed}"
    )
    assert len(kills) >= 4, "the worker finished before it could be killed a few times"
    assert sum(k["unfinished"] for k in kills) > 0, "no kill landed while a batch was in flight"


def _send_as_stranger(runtime: Runtime) -> int | None:
    """While the worker is down, another sender with the key that knows nothing of our batches
    sends at the next nonce to be mined, paying enough to replace whatever waits there. Returns
    the batch that held that nonce, if one did."""
    w3 = connect_rpc(runtime.settings.rpc_url)
    stranger = devnet_account(0)
    for _attempt in range(5):
        nonce = runtime.chain.mined_nonce_count()
        with transaction(runtime.sessions) as session:
            held = session.scalar(
                select(MintBatch.id).where(MintBatch.status == SENT, MintBatch.nonce == nonce)
            )
        tx: dict[str, Any] = {
            "to": stranger.address,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 500 * GWEI,
            "maxPriorityFeePerGas": 100 * GWEI,
            "nonce": nonce,
            "chainId": runtime.chain.chain_id,
        }
        try:
            w3.eth.send_raw_transaction(stranger.sign_transaction(tx).raw_transaction)
        except Web3RPCError:
            continue  # a block took that nonce in between: aim at the next one
        return held
    pytest.fail("the stranger's transaction was never accepted")


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FAIRTIX_ENV": "development",
        "FAIRTIX_DATABASE_URL": settings.database_url,
        "FAIRTIX_RPC_URL": settings.rpc_url,
        "FAIRTIX_FACTORY_ADDRESS": str(settings.factory_address),
        "FAIRTIX_VAR_DIR": str(settings.var_dir),
        "FAIRTIX_DEPLOYMENTS_DIR": str(settings.deployments_dir),
        "FAIRTIX_SECRET_KEY": "fulfilment-anvil-secret",
        "FAIRTIX_LOG_JSON": "true",
        "FAIRTIX_WORKER_POLL_SECONDS": "0.05",
        "FAIRTIX_MINT_BATCH_MAX_RECIPIENTS": str(BATCH_TICKETS),
        # Short, so the kills also hit replacements, and messages a killed worker held come back.
        "FAIRTIX_MINT_REPLACE_AFTER_SECONDS": "4",
        "FAIRTIX_MINT_LEASE_SECONDS": "1",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_for(done: Callable[[], bool], worker: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no progress in {DEADLINE_SECONDS}s:\n{_tail(log_path)}")
        time.sleep(0.05)


def _progress(runtime: Runtime) -> tuple[int, int, int]:
    with transaction(runtime.sessions) as session:
        return (
            int(session.scalar(select(func.count()).select_from(MintTx)) or 0),
            int(session.scalar(select(func.count()).where(MintBatch.status != SENT)) or 0),
            int(session.scalar(select(func.count()).where(Order.status == sales.FULFILLED)) or 0),
        )


def _snapshot(runtime: Runtime) -> dict[str, int]:
    with transaction(runtime.sessions) as session:
        return {
            "fulfilled": int(
                session.scalar(select(func.count()).where(Order.status == sales.FULFILLED)) or 0
            ),
            "unfinished": int(
                session.scalar(select(func.count()).where(MintBatch.status == SENT)) or 0
            ),
        }


def _all_done(runtime: Runtime, order_ids: list[int]) -> bool:
    with transaction(runtime.sessions) as session:
        fulfilled = session.scalar(
            select(func.count()).where(Order.id.in_(order_ids), Order.status == sales.FULFILLED)
        )
        return fulfilled == len(order_ids)


def _assert_fulfilled_exactly_once(
    runtime: Runtime, order_ids: list[int], event_ids: list[int]
) -> None:
    with transaction(runtime.sessions) as session:
        orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(order_ids)))}
        tickets = Counter(session.scalars(select(Ticket.order_id)))
        contracts = {
            e.id: e.contract_address
            for e in session.scalars(select(Event).where(Event.id.in_(event_ids)))
        }
        unsent = session.scalar(
            select(func.count()).where(
                OutboxMessage.kind == sales.MINT_ORDER, OutboxMessage.done_at.is_(None)
            )
        )
        unfinished = session.scalar(select(func.count()).where(MintBatch.status == SENT))
    assert {o.status for o in orders.values()} == {sales.FULFILLED}
    assert all(tickets[oid] == orders[oid].quantity for oid in order_ids)
    assert unsent == 0 and unfinished == 0

    # The chain's own account: every Transfer from the zero address of both contracts.
    w3 = connect_rpc(runtime.settings.rpc_url)
    transfer = w3.eth.contract(abi=load_artifact("TicketEvent").abi).events.Transfer()
    minted: dict[int, tuple[str, str]] = {}  # token id -> (owner, tx hash)
    total = 0
    for contract in contracts.values():
        logs = w3.eth.get_logs(
            {
                "address": Web3.to_checksum_address(contract),
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [HexStr(transfer.topic), HexStr("0x" + "00" * 32)],
            }
        )
        for raw in logs:
            event = transfer.process_log(raw)
            total += 1
            minted[int(event["args"]["tokenId"])] = (
                str(event["args"]["to"]).lower(),
                "0x" + bytes(event["transactionHash"]).hex(),
            )
    assert total == sum(o.quantity for o in orders.values())
    assert len(minted) == total, "a token id was minted twice"
    by_order = Counter(order_of(token_id) for token_id in minted)
    for oid, order in orders.items():
        assert by_order[oid] == order.quantity, f"order {oid} minted {by_order[oid]} tickets"
        for index in range(order.quantity):
            owner, tx_hash = minted[(oid << 8) + index]
            assert owner == order.buyer_address
            # Recorded with the transaction that really minted it, not another attempt's hash.
            assert tx_hash == order.mint_tx_hash


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
