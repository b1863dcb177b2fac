"""The same whole sale, on a real anvil devnet and a real uvicorn server, driven by the demo buyer
over HTTP; the in-process worker delivers the sandbox's webhook and mints."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from backend.app import create_app
from backend.chain.client import ChainClient, connect_rpc
from backend.chain.devnet import Devnet, devnet_account
from backend.config import Settings
from backend.demo import run_demo

pytestmark = [pytest.mark.anvil, pytest.mark.db, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as net:
        yield net


@pytest.fixture
def server(tmp_path: Path, database_url: str, devnet: Devnet) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        env="development",
        var_dir=tmp_path / "var",
        database_url=database_url,
        rpc_url=devnet.rpc_url,
        deployments_dir=tmp_path / "deployments",
        admin_addresses=devnet_account(1).address,  # type: ignore[arg-type]
        secret_key="anvil-e2e-secret",  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        log_json=False,
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API server did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        uv.should_exit = True
        thread.join(timeout=30)


def test_demo_buyer_gets_a_minted_ticket_on_anvil(server: str, devnet: Devnet) -> None:
    lines: list[str] = []
    result = run_demo(server, devnet_account(1), rpc_url=devnet.rpc_url, say=lines.append)

    ticket = result["ticket"]
    assert result["onchain_uri"] == ticket["metadata_uri"]
    assert ticket["metadata_uri"].startswith("ipfs://Qm")
    assert result["metadata"]["attributes"][3] == {
        "trait_type": "Tier",
        "value": "General Admission",
    }
    reader = ChainClient(connect_rpc(devnet.rpc_url), devnet_account(2))
    assert (
        reader.owner_of(ticket["contract_address"], ticket["token_id"]) != devnet_account(1).address
    )
    assert (
        reader.token_uri(ticket["contract_address"], ticket["token_id"]) == ticket["metadata_uri"]
    )
    assert any(line.startswith("token id:") for line in lines)
    with httpx.Client(base_url=server) as http:
        metadata = http.get("/ipfs/" + ticket["metadata_uri"].removeprefix("ipfs://"))
        assert metadata.status_code == 200
        assert metadata.json() == result["metadata"]
