#!/usr/bin/env python3
"""Deploy the TicketFactory and record it in deployments/<chainId>.json.

The deployer key comes from FAIRTIX_DEPLOYER_PRIVATE_KEY. Only on the local devnet (chain id
31337) may it be omitted: the script then uses devnet account 0 of the public test mnemonic
(0xf39F...2266), which is funded on every anvil and must never hold real funds anywhere else.

Artifacts are recompiled first if they are stale. The deployer becomes the factory's admin and
event creator; the backend's signer must hold that key (or be granted EVENT_CREATOR_ROLE).

examples:
  python scripts/deploy.py                                  devnet at http://127.0.0.1:8545
  python scripts/deploy.py --if-missing                     no-op if already deployed (make run)
  FAIRTIX_DEPLOYER_PRIVATE_KEY=0x... python scripts/deploy.py --rpc-url https://rpc.example
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script, the package need not be installed

from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402

from backend.chain.client import connect_rpc  # noqa: E402
from backend.chain.compiler import (  # noqa: E402
    BUILD_DIR,
    compile_contracts,
    stale_artifacts,
    write_artifacts,
)
from backend.chain.deploy import deploy_factory_if_needed, existing_deployment  # noqa: E402
from backend.chain.devnet import DEVNET_CHAIN_ID, devnet_account  # noqa: E402
from backend.chain.errors import ChainError  # noqa: E402

KEY_ENV = "FAIRTIX_DEPLOYER_PRIVATE_KEY"


def _signer(chain_id: int) -> LocalAccount:
    key = os.environ.get(KEY_ENV)
    if key:
        account: LocalAccount = Account.from_key(key)
        return account
    if chain_id == DEVNET_CHAIN_ID:
        account = devnet_account(0)
        print(f"notice: {KEY_ENV} not set; using devnet account 0 ({account.address}), "
              "a public test key")  # fmt: skip
        return account
    raise ChainError(
        f"{KEY_ENV} is not set and chain {chain_id} is not the local devnet "
        f"({DEVNET_CHAIN_ID}); refusing to guess a deployer key"
    )


def _compile_if_stale() -> None:
    artifacts = compile_contracts(ROOT, report=lambda line: print(line, file=sys.stderr))
    stale = stale_artifacts(artifacts, ROOT / BUILD_DIR)
    if stale:
        names = ", ".join(p.name for p in stale)
        print(f"artifacts stale ({names}); rewriting them")
        write_artifacts(artifacts, ROOT / BUILD_DIR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/deploy.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rpc-url",
        default=os.environ.get("FAIRTIX_RPC_URL", "http://127.0.0.1:8545"),
        help="JSON-RPC endpoint (default: $FAIRTIX_RPC_URL or http://127.0.0.1:8545)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="skip if deployments/<chainId>.json exists and code is at its address",
    )
    parser.add_argument(
        "--skip-compile",
        action="store_true",
        help="use the committed artifacts as they are (no Node/compiler needed)",
    )
    args = parser.parse_args(argv)

    try:
        w3 = connect_rpc(args.rpc_url)
        chain_id = int(w3.eth.chain_id)
        existing = existing_deployment(w3, ROOT) if args.if_missing else None
        if existing is not None:
            # Checked before compiling or touching keys so `make run` stays fast and quiet.
            address = existing["TicketFactory"]["address"]
            print(f"TicketFactory already deployed on chain {chain_id} at {address}")
            return 0
        print(f"connected to {args.rpc_url} (chain id {chain_id})")
        signer = _signer(chain_id)
        if not args.skip_compile:
            _compile_if_stale()
        record = deploy_factory_if_needed(w3, signer, ROOT, force=not args.if_missing, report=print)
    except ChainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"TicketFactory: {record['TicketFactory']['address']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
