"""``fairtix rotate-key`` against anvil, as an operator runs it: grant with the current key,
switch FAIRTIX_MINTER_PRIVATE_KEY, revoke the old key with the new one."""

from __future__ import annotations

import pytest
from eth_account import Account

from backend.chain import rotation
from backend.chain.devnet import Devnet, devnet_account
from backend.cli import main
from backend.config import Settings
from backend.runtime import Runtime
from tests.fulfilment.conftest import anvil_rpc
from tests.fulfilment.factories import create_event

pytestmark = [pytest.mark.anvil, pytest.mark.db, pytest.mark.slow]


def test_rotate_key_grants_then_revokes_and_says_what_it_did(
    anvil_runtime: Runtime,
    anvil_settings: Settings,
    devnet: Devnet,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event_id = create_event(anvil_runtime)
    old, new = devnet_account(0), Account.create()
    anvil_rpc(devnet.rpc_url, "anvil_setBalance", new.address, hex(10**18))
    for name, value in {
        "ENV": "development",
        "DATABASE_URL": anvil_settings.database_url,
        "RPC_URL": devnet.rpc_url,
        "FACTORY_ADDRESS": str(anvil_settings.factory_address),
        "VAR_DIR": str(anvil_settings.var_dir),
        "SECRET_KEY": "rotate-key-test-secret",
        "MINTER_PRIVATE_KEY": old.key.hex(),
        "LOG_JSON": "false",
    }.items():
        monkeypatch.setenv(f"FAIRTIX_{name}", value)

    assert main(["rotate-key", "--grant", "0x123"]) == 2
    assert main(["rotate-key", "--grant", new.address, "--dry-run"]) == 0
    assert f"event {event_id}" in capsys.readouterr().out
    assert main(["rotate-key", "--grant", new.address]) == 0
    out = capsys.readouterr().out
    assert out.count(": granted") == 7 and "set FAIRTIX_MINTER_PRIVATE_KEY" in out

    # Still signing with the old key, it may not take its own roles away.
    assert main(["rotate-key", "--revoke", old.address]) == 1
    monkeypatch.setenv("FAIRTIX_MINTER_PRIVATE_KEY", new.key.hex())
    assert main(["rotate-key", "--revoke", old.address]) == 0
    assert capsys.readouterr().out.count(": revoked") == 7
    contracts = rotation.contracts_of(anvil_runtime.chain, anvil_runtime.sessions)
    for contract in contracts:
        for role in contract.roles.values():
            assert not anvil_runtime.chain.has_role(contract.address, role, old.address)
            assert anvil_runtime.chain.has_role(contract.address, role, new.address)
