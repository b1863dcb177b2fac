"""Sign-in with messages written by the `siwe` npm package and signed by an `ethers` wallet,
as a new user's dApp would send them (node_modules, installed by `make install`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "siwe_sign_in.mjs"

pytestmark = pytest.mark.db


def _written_by_siwe(nonce_info: dict[str, Any], key: str, resources: list[str] | None) -> Any:
    node = shutil.which("node")
    assert node is not None, "node is needed (Node 20, as for the compiler and anvil)"
    payload = {"nonce_info": nonce_info, "private_key": key, "resources": resources}
    result = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "resources",
    [
        None,
        [],
        [
            "https://testserver/events/1",
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        ],
    ],
    ids=["no resources", "empty resources", "two resources"],
)
def test_sign_in_with_a_message_the_siwe_package_wrote(
    client: TestClient, resources: list[str] | None
) -> None:
    wallet = Account.create()
    nonce_info = client.post("/auth/nonce").json()
    signed = _written_by_siwe(nonce_info, wallet.key.hex(), resources)
    if resources == []:
        assert signed["message"].endswith("\nResources:")  # what siwe writes for []
    answer = client.post("/auth/verify", json=signed)
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["address"] == wallet.address.lower()
