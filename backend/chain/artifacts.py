"""Loads the compiled contract artifacts committed under ``contracts/build/``.

The API reads these at runtime and never needs a compiler.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from backend.chain.errors import ArtifactMissing
from backend.chain.types import ABI

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Artifact:
    """A compiled contract: its ABI and 0x-prefixed creation and runtime bytecode."""

    name: str
    abi: ABI
    bytecode: str
    deployed_bytecode: str


def default_build_dir() -> Path:
    """``FAIRTIX_ARTIFACTS_DIR`` if set, else ``<repo root>/contracts/build``."""
    configured = os.environ.get("FAIRTIX_ARTIFACTS_DIR")
    return Path(configured) if configured else REPO_ROOT / "contracts" / "build"


def load_artifact(name: str, build_dir: Path | None = None) -> Artifact:
    """Reads ``<build_dir>/<name>.json``; raises ``ArtifactMissing`` if absent or unreadable."""
    path = (build_dir or default_build_dir()) / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactMissing(name, path) from exc
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
    )
