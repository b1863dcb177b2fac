"""Fixtures for fulfilment tests on a real anvil devnet: its own node per test, the factory
deployed by devnet account #0 (the minter), and a runtime on the test database."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.app import build_runtime
from backend.chain.client import ChainClient, connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.config import Settings
from backend.runtime import Runtime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def anvil_rpc(url: str, method: str, *params: Any) -> Any:
    """One JSON-RPC call, for anvil's own methods (mining control, mempool surgery)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer.get("result")


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        yield net


@pytest.fixture
def anvil_settings(tmp_path: Path, database_url: str, devnet: Devnet) -> Settings:
    factory = ChainClient(connect_rpc(devnet.rpc_url), devnet_account(0)).deploy_factory()
    return Settings(
        env="development",
        var_dir=tmp_path / "var",
        database_url=database_url,
        rpc_url=devnet.rpc_url,
        factory_address=factory.address,
        deployments_dir=tmp_path / "deployments",
        secret_key="fulfilment-anvil-secret",
        run_worker=False,
        log_json=False,
    )


@pytest.fixture
def anvil_runtime(anvil_settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(anvil_settings)
    yield runtime
    runtime.chain.use_nonce_floor(None)
    runtime.queue.close()
    runtime.engine.dispose()
