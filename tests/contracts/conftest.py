"""One chain per session, rewound to a snapshot after every test.

Deploying the factory and an event takes longer than most tests, so the session deploys once
(factory, the default event, a few funded fans) and each test starts from that snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import solcx
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from backend.chain.compiler import compiler_settings, solc_binary
from tests.contracts.protocol import Protocol

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class World:
    protocol: Protocol
    event: Contract
    fans: tuple[LocalAccount, ...]


@pytest.fixture(scope="session")
def world() -> World:
    protocol = Protocol()
    event = protocol.create_event()
    fans = tuple(protocol.actor() for _ in range(4))
    return World(protocol, event, fans)


@pytest.fixture
def p(world: World) -> Iterator[Protocol]:
    """The session's chain; everything a test does to it is undone afterwards."""
    snapshot = world.protocol.tester.take_snapshot()
    fees = dict(world.protocol.fees)
    yield world.protocol
    world.protocol.tester.revert_to_snapshot(snapshot)
    world.protocol.fees.clear()
    world.protocol.fees.update(fees)


@pytest.fixture
def event(p: Protocol, world: World) -> Contract:
    """The default event (EventSpec()): one tier of 100 tickets at 0.1 ETH, sales open."""
    return world.event


@pytest.fixture
def fans(p: Protocol, world: World) -> tuple[LocalAccount, ...]:
    """Four funded wallets with no tickets."""
    return world.fans


@dataclass(frozen=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: str


@pytest.fixture(scope="session")
def fixture_contracts() -> dict[str, Compiled]:
    """tests/contracts/fixtures/*.sol, compiled with the project's solc in one run (a few
    seconds, once per session, only when a test needs one of them)."""
    sources = sorted(FIXTURES.glob("*.sol"))
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {s.name: {"content": s.read_text(encoding="utf-8")} for s in sources},
            "settings": compiler_settings(),
        },
        solc_binary=solc_binary(ROOT),
    )
    return {
        name: Compiled(compiled["abi"], "0x" + compiled["evm"]["bytecode"]["object"])
        for unit in output["contracts"].values()
        for name, compiled in unit.items()
    }


def deploy_fixture(p: Protocol, compiled: Compiled, deployer: LocalAccount) -> Contract:
    receipt = p.send(
        p.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode).constructor(), deployer
    )
    return p.w3.eth.contract(address=receipt["contractAddress"], abi=compiled.abi)


@pytest.fixture
def wallet_factory(
    p: Protocol, fixture_contracts: dict[str, Compiled]
) -> Callable[[LocalAccount], Contract]:
    """Deploys a TestWallet (tests/contracts/fixtures/TestWallet.sol); anyone may drive it."""

    def deploy(deployer: LocalAccount) -> Contract:
        return deploy_fixture(p, fixture_contracts["TestWallet"], deployer)

    return deploy
