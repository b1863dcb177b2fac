"""The EIP712Domain note of docs/web-client.md, checked: ethers v6 throws on the API's sell-order
typed_data as it is, and signs it once the site's typedDataForEthers removed that entry, with
the same signature a wallet's eth_signTypedData_v4 (eth_account here) gives the whole document."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from eth_account import Account

from backend.chain.protocol import ZERO_ADDRESS, sell_order_typed_data

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "typed_data.mjs"


def test_ethers_signs_the_apis_typed_data_once_eip712domain_is_removed() -> None:
    wallet = Account.create()
    message = {
        "tokenId": 256,
        "price": 8 * 10**15,
        "nonce": 3,
        "deadline": 1_900_000_000,
        "buyer": ZERO_ADDRESS,
        "payee": ZERO_ADDRESS,
    }
    typed = sell_order_typed_data(31337, "0x" + "ab" * 20, message)
    # What POST /listings/sell-order answers: uint256 values as decimal strings.
    answered = {
        **typed,
        "message": {k: str(v) if isinstance(v, int) else v for k, v in message.items()},
    }
    node = shutil.which("node")
    assert node is not None, "node is needed (Node 20, as for the compiler and anvil)"
    result = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps({"typed_data": answered, "private_key": wallet.key.hex()}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    out = json.loads(result.stdout)
    assert out["raw_error"], "ethers accepted EIP712Domain in types: the note is out of date"
    assert out["recovered"].lower() == wallet.address.lower()
    expected = Account.sign_typed_data(wallet.key, full_message=typed).signature.hex()
    assert out["signature"].removeprefix("0x") == expected.removeprefix("0x")
