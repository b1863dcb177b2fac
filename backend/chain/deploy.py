"""Deploys the TicketFactory once per chain and records it in ``deployments/<chainId>.json``.

Used by ``scripts/deploy.py`` and by the API at startup on the devnet, so both agree on one
record format and on when a deployment is still valid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from backend.chain.client import ChainClient
from backend.chain.errors import ChainUnavailable

DEPLOYMENTS_DIR = "deployments"


def deployment_path(root: Path, chain_id: int) -> Path:
    return root / DEPLOYMENTS_DIR / f"{chain_id}.json"


def load_deployment(root: Path, chain_id: int) -> dict[str, Any] | None:
    """The recorded deployment for ``chain_id``, or None if there is no (readable) record."""
    try:
        record: dict[str, Any] = json.loads(
            deployment_path(root, chain_id).read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return None
    return record


def existing_deployment(w3: Web3, root: Path) -> dict[str, Any] | None:
    """The recorded deployment for the connected chain if code is still at its address."""
    chain_id = int(w3.eth.chain_id)
    record = load_deployment(root, chain_id)
    if record is None:
        return None
    address = str(record.get("TicketFactory", {}).get("address", ""))
    if not Web3.is_address(address):
        return None
    try:
        code = w3.eth.get_code(Web3.to_checksum_address(address))
    except OSError as exc:
        raise ChainUnavailable(str(getattr(w3.provider, "endpoint_uri", "")), str(exc)) from exc
    return record if code else None


def deploy_factory_if_needed(
    w3: Web3,
    signer: LocalAccount,
    root: Path,
    force: bool = False,
    report: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Returns the TicketFactory deployment record for the connected chain, deploying it first
    unless a record exists AND code is still at its address (a devnet restarted without its state
    file has lost the contract, so the stale record must not be trusted)."""
    client = ChainClient(w3, signer)
    chain_id = client.chain_id
    path = deployment_path(root, chain_id)
    if not force:
        existing = existing_deployment(w3, root)
        if existing is not None:
            address = existing["TicketFactory"]["address"]
            report(f"TicketFactory already deployed on chain {chain_id} at {address} ({path})")
            return existing
        if path.exists():
            report(f"{path} points at an address without code (devnet reset?); redeploying")

    report(f"deploying TicketFactory to chain {chain_id} from {client.signer_address} ...")
    deployment = client.deploy_factory()
    record: dict[str, Any] = {
        "chainId": chain_id,
        "TicketFactory": {
            "address": deployment.address,
            "txHash": deployment.tx_hash,
            "gasUsed": deployment.gas_used,
            "blockNumber": deployment.block_number,
        },
        "deployer": client.signer_address,
        "deployedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename so a crash never leaves a half-written record for the next start to trust.
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    report(
        f"TicketFactory deployed at {deployment.address} "
        f"(tx {deployment.tx_hash}, gas used {deployment.gas_used:,}, "
        f"block {deployment.block_number}); recorded in {path}"
    )
    return record
